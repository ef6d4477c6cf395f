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
