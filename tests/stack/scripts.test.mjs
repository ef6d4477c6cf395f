// The operator scripts around the stack: scripts/gen-env (secrets for compose) and
// nginx/render-conf (the one nginx.conf template of every run mode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../lib/proc.mjs';

const tmp = () => mkdtempSync(join(tmpdir(), 'parley-scripts-'));
const parse = (text) => Object.fromEntries(text.split('\n').filter((l) => /^[A-Z_]+=/.test(l))
  .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

test('gen-env writes every secret, random and private, and never overwrites', () => {
  const d = tmp();
  try {
    const f = join(d, 'env');
    const r = spawnSync(join(ROOT, 'scripts', 'gen-env'), [f], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const v = parse(readFileSync(f, 'utf8'));
    assert.match(v.DB_PASSWORD, /^[0-9a-f]{48}$/);
    assert.match(v.JWT_SECRET, /^[0-9a-f]{64}$/, 'at least 32 bytes, as both daemons require');
    assert.match(v.ADMIN_PASSWORD, /^[0-9a-f]{24}$/);
    assert.equal(v.ADMIN_EMAIL, 'admin@example.com');
    assert.equal(statSync(f).mode & 0o777, 0o600);
    // A second file gets different secrets.
    const f2 = join(d, 'env2');
    assert.equal(spawnSync(join(ROOT, 'scripts', 'gen-env'), [f2]).status, 0);
    assert.notEqual(parse(readFileSync(f2, 'utf8')).JWT_SECRET, v.JWT_SECRET);
    // Never overwrites.
    writeFileSync(f, 'MINE=1\n');
    const again = spawnSync(join(ROOT, 'scripts', 'gen-env'), [f], { encoding: 'utf8' });
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /exists; not touching it/);
    assert.equal(readFileSync(f, 'utf8'), 'MINE=1\n');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('render-conf refuses values that could inject nginx directives', () => {
  const d = tmp();
  chmodSync(d, 0o755);
  try {
    const base = { PATH: process.env.PATH, NGINX_RUN_DIR: d, NGINX_STATIC_DIR: join(ROOT, 'website', 'static') };
    const ok = spawnSync('bash', [join(ROOT, 'nginx', 'render-conf')], { encoding: 'utf8', env: base });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /listen 8080( reuseport)?;/);
    assert.match(ok.stdout, /server 127\.0\.0\.1:8082;/);
    assert.ok(!/\$\{NGINX_/.test(ok.stdout), 'every placeholder filled');
    // nginx itself accepts the result.
    writeFileSync(join(d, 'nginx.conf'), ok.stdout);
    const t = spawnSync('/usr/sbin/nginx', ['-t', '-q', '-e', 'stderr', '-p', d, '-c', join(d, 'nginx.conf')], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    for (const [k, v] of [['NGINX_LISTEN', '8080; include /etc/passwd'], ['NGINX_CHAT', 'a:1;b'],
      ['NGINX_STATIC_DIR', '/tmp/x;}'], ['NGINX_AUTH_RATE', 'lots'], ['NGINX_STATIC_DIR', 'relative'],
      ['NGINX_WEBSITE', 'x{']]) {
      const r = spawnSync('bash', [join(ROOT, 'nginx', 'render-conf')], { encoding: 'utf8', env: { ...base, [k]: v } });
      assert.notEqual(r.status, 0, `${k}=${v} accepted`);
      assert.match(r.stderr, new RegExp(`render-conf: .*(${k}|NGINX_CHAT)`), r.stderr);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('render-conf: no secret-bearing variable in any log format, debug refused, limits checked', () => {
  const d = tmp();
  chmodSync(d, 0o755);
  try {
    const base = { PATH: process.env.PATH, NGINX_RUN_DIR: d, NGINX_STATIC_DIR: join(ROOT, 'website', 'static') };
    const render = (env = {}) => spawnSync('bash', [join(ROOT, 'nginx', 'render-conf')], { encoding: 'utf8', env: { ...base, ...env } });
    const ok = render({ NGINX_REAL_IP_FROM: '10.0.0.0/8 192.168.1.1' });
    assert.equal(ok.status, 0, ok.stderr);
    const formats = ok.stdout.match(/log_format[^;]*;/g);
    assert.ok(formats && formats.length >= 1);
    for (const f of formats) {
      // $request, $request_uri and $args carry the query; cookies and Authorization the token.
      assert.ok(!/\$(request|request_uri|args|query_string|arg_\w+|http_cookie|cookie_\w+|http_authorization|http_referer|request_body)\b/.test(f), f);
    }
    assert.match(ok.stdout, /set_real_ip_from 10\.0\.0\.0\/8;\n\s*set_real_ip_from 192\.168\.1\.1;\n\s*real_ip_header X-Forwarded-For;/);
    assert.match(ok.stdout, /worker_shutdown_timeout 10s;/);
    assert.match(ok.stdout, /client_body_timeout 10s;/);
    assert.match(ok.stdout, /client_header_timeout 10s;/);
    writeFileSync(join(d, 'nginx.conf'), ok.stdout);
    const t = spawnSync('/usr/sbin/nginx', ['-t', '-q', '-e', 'stderr', '-p', d, '-c', join(d, 'nginx.conf')], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    for (const [k, v, msg] of [['NGINX_ERROR_LOG_LEVEL', 'debug', /debug is refused/],
      ['NGINX_ERROR_LOG_LEVEL', 'loud', /must be one of/], ['NGINX_HEADER_TIMEOUT', '0s', /seconds from 1 to 300/],
      ['NGINX_BODY_TIMEOUT', '301', /seconds from 1 to 300/], ['NGINX_CHAT_CAPACITY', '0', /whole number from 1/],
      ['NGINX_CONN_PER_ADDR', '-1', /NGINX_CONN_PER_ADDR/], ['NGINX_WORKERS', '65', /NGINX_WORKERS/],
      ['NGINX_REAL_IP_FROM', 'evil;', /NGINX_REAL_IP_FROM/], ['NGINX_WS_PER_ADDR', '20000', /NGINX_WS_PER_ADDR/]]) {
      const r = render({ [k]: v });
      assert.notEqual(r.status, 0, `${k}=${v} accepted`);
      assert.match(r.stderr, msg, `${k}=${v}: ${r.stderr}`);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
