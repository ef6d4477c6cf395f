// nginx sized for the chat's capacity within its open-files limit: every proxied WebSocket
// costs two of nginx's connections, so beyond what the limit allows /ws must answer a clean
// 503 -- not 500s, resets or a refused port (issue 9: "The public port runs out before the
// chat does"). nginx runs here under a hard limit of 1024 open files (prlimit), rendered by
// nginx/render-conf under the same limit, in front of a real website and chat daemon.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, NGINX, STATIC_DIR } from '../lib/stack.mjs';
import { ROOT, freePort, waitForPort, sleep } from '../lib/proc.mjs';
import { mintToken } from '../lib/token.mjs';
import { rawRequest, wsHandshake } from './raw.mjs';

const FILES = 1024;
let s;
let port;
let nginx;
let conf;
before(async () => {
  s = await startStack({ chatEnv: { CHAT_MAX_CONNECTIONS: '1000' } });
  port = await freePort();
  const dir = join(s.dir, 'small');
  spawnSync('mkdir', ['-p', dir]);
  spawnSync('chmod', ['755', dir]);
  const r = spawnSync('prlimit', [`--nofile=${FILES}:${FILES}`, 'bash', join(ROOT, 'nginx', 'render-conf')], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, NGINX_LISTEN: `127.0.0.1:${port}`, NGINX_WEBSITE: `127.0.0.1:${s.website.port}`,
      NGINX_CHAT: `127.0.0.1:${s.chat.port}`, NGINX_STATIC_DIR: STATIC_DIR, NGINX_RUN_DIR: dir,
      NGINX_ACCESS_LOG: join(dir, 'access.log'), NGINX_ERROR_LOG: join(dir, 'error.log'),
      NGINX_WORKERS: '1', NGINX_CHAT_CAPACITY: '1000', NGINX_WS_PER_ADDR: '1000', NGINX_HTTP_RESERVE: '256' } });
  assert.equal(r.status, 0, r.stderr);
  conf = r.stdout;
  // render-conf says that this limit carries fewer WebSockets than the chat's capacity.
  assert.match(r.stderr, /carry only \d+ WebSockets/);
  writeFileSync(join(dir, 'nginx.conf'), conf);
  nginx = spawn('prlimit', [`--nofile=${FILES}:${FILES}`, NGINX, '-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')],
    { stdio: 'ignore' });
  await waitForPort(port, '127.0.0.1', 30000);
});
after(async () => {
  if (nginx && nginx.exitCode === null) {
    nginx.kill('SIGTERM');
    await new Promise((res) => nginx.once('exit', res));
  }
  await s?.stop();
});

test('render-conf keeps worker_connections and the WebSocket cap within the open-files limit', () => {
  const wc = Number(conf.match(/worker_connections (\d+);/)[1]);
  const rl = Number(conf.match(/worker_rlimit_nofile (\d+);/)[1]);
  const ws = Number(conf.match(/limit_conn ws_total (\d+);/)[1]);
  assert.ok(rl <= FILES, `worker_rlimit_nofile ${rl} > ${FILES}`);
  assert.ok(wc < rl);
  assert.ok(2 * ws <= wc - 256, `${ws} WebSockets need ${2 * ws} connections of ${wc} (256 kept for pages)`);
  // Without a limit in the way, the default capacity (10000) gets room for all of it.
  const d = spawnSync('bash', [join(ROOT, 'nginx', 'render-conf')], { encoding: 'utf8',
    env: { PATH: process.env.PATH, NGINX_STATIC_DIR: STATIC_DIR, NGINX_RUN_DIR: s.dir, NGINX_MAX_FILES: '20000' } });
  assert.equal(d.status, 0, d.stderr);
  const workers = Number(d.stdout.match(/worker_processes (\d+);/)[1]);
  const wc2 = Number(d.stdout.match(/worker_connections (\d+);/)[1]);
  assert.ok(workers * wc2 >= 2 * 10000 + 4096, `${workers} x ${wc2} connections for 10000 WebSockets`);
  assert.ok(wc2 + 128 <= 20000);
  assert.match(d.stdout, /limit_conn ws_total 10000;/);
  if (workers > 1) assert.match(d.stdout, /listen 8080 reuseport;/, 'the kernel spreads connections over the workers');
});

test('WebSockets beyond what nginx can carry get 503 with JSON, never a 500 or a reset; pages still work', { timeout: 180000 }, async () => {
  const TRY = 520; // 1040 connections: more than 1024 files allow
  const socks = [];
  const results = [];
  try {
    for (let i = 0; i < TRY; i++) {
      const tok = mintToken(s.secret, { sub: `size${i}@example.com`, name: `S ${i}`, room: 'size' });
      const sock = connect({ port, host: '127.0.0.1', localAddress: `127.0.3.${1 + (i % 200)}` });
      socks.push(sock);
      results.push(await new Promise((res) => {
        let b = '';
        const t = setTimeout(() => res('timeout'), 15000);
        sock.on('data', (d) => {
          b += d;
          const e = b.indexOf('\r\n\r\n');
          if (e < 0) return;
          const st = Number(b.slice(9, 12));
          if (st !== 503) { clearTimeout(t); res(st); return; }
          const cl = Number((b.match(/\r\ncontent-length: *(\d+)/i) || [])[1]);
          if (b.length >= e + 4 + cl) {
            clearTimeout(t);
            let err = null;
            try { err = JSON.parse(b.slice(e + 4)).error; } catch { /* not JSON */ }
            res(err === 'unavailable' && /\r\nretry-after: \d+/i.test(b) ? 503 : `503 without the JSON: ${b.slice(0, 300)}`);
          }
        });
        sock.on('error', (e) => { clearTimeout(t); res(`error ${e.code}`); });
        sock.on('close', () => { clearTimeout(t); res(b ? Number(b.slice(9, 12)) : 'closed without an answer'); });
        sock.write(wsHandshake('/ws?room=size', `Authorization: Bearer ${tok}\r\n`, { host: `127.0.0.1:${port}` }));
      }));
    }
    const count = (v) => results.filter((r) => r === v).length;
    const other = results.filter((r) => r !== 101 && r !== 503);
    assert.deepEqual(other, [], `only 101 and 503: ${JSON.stringify(other.slice(0, 5))}`);
    assert.ok(count(101) >= 300, `${count(101)} WebSockets carried`);
    assert.ok(count(503) >= 1, 'the ones beyond got 503');
    // The site still answers, on the same nginx.
    const page = await rawRequest(port, 'GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
      { localAddress: '127.0.4.1' });
    assert.equal(page.status, 200);
  } finally {
    for (const x of socks) x.destroy();
  }
  await sleep(200);
});
