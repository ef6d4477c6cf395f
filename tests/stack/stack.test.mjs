// The native stack through its single Nginx port: PostgreSQL, website, chat and Nginx are all
// real (tests/lib/stack.mjs), the client is an HTTP client plus `ws` WebSockets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { startStack, STATIC_DIR, WebClient } from '../lib/stack.mjs';
import { happyPath, openChat, eventually } from './helpers.mjs';

let s;
before(async () => { s = await startStack(); });
after(async () => { await s?.stop(); });

test('register, log in, create a room, get tokens and chat through /ws on one port', async () => {
  const r = await happyPath(s.url);
  // The chat daemon saw real clients: both users' messages went through nginx.
  assert.ok(r.room);
});

test('every response carries the security headers', async () => {
  for (const path of ['/', '/login', '/static/chat.js', '/no-such-page', '/metrics']) {
    const res = await fetch(s.url + path, { redirect: 'manual' });
    await res.arrayBuffer();
    const csp = res.headers.get('content-security-policy') || '';
    assert.match(csp, /default-src 'self'/, path);
    assert.match(csp, /script-src 'self'(;|$)/, `${path}: no unsafe script sources`);
    assert.match(csp, /style-src 'self'(;|$)/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    // The page's own WebSocket is allowed, explicitly (older browsers do not let 'self'
    // cover ws:), and no other host is.
    assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${s.port} wss://127\\.0\\.0\\.1:${s.port};`), path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
    assert.equal(res.headers.get('referrer-policy'), 'same-origin', path);
    // One CSP header only (the website's own copy is hidden), and no version banner.
    assert.ok(!csp.includes(','), `${path}: a single CSP header, got ${csp}`);
    assert.equal(res.headers.get('server'), 'nginx', path);
  }
});

test('a hostile Host header cannot add CSP directives', async () => {
  const { request } = await import('node:http');
  const headers = await new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port: s.port, path: '/login',
      headers: { host: "evil.example;script-src 'unsafe-inline'" } }, (r) => { r.resume(); res(r.headers); });
    req.on('error', rej);
    req.end();
  });
  const csp = headers['content-security-policy'] || '';
  assert.ok(!csp.includes('unsafe-inline'), csp);
  assert.match(csp, /script-src 'self';/);
});

test('static files come from nginx with cache headers', async () => {
  for (const [name, type] of [['style.css', /^text\/css/], ['chat.js', /javascript/], ['chat.css', /^text\/css/]]) {
    const res = await fetch(`${s.url}/static/${name}`);
    assert.equal(res.status, 200, name);
    assert.match(res.headers.get('content-type') || '', type, name);
    assert.match(res.headers.get('cache-control') || '', /max-age=\d+/, name);
    assert.equal(await res.text(), readFileSync(join(STATIC_DIR, name), 'utf8'), name);
    // Served by nginx itself: the log line has no upstream time.
    const line = await eventually(() => s.nginxAccessLog().split('\n')
      .find((l) => l.includes(`"GET /static/${name} `)), `the log line of /static/${name}`);
    assert.match(line, / urt=- /, line);
  }
  const missing = await fetch(`${s.url}/static/no-such-file.js`);
  assert.equal(missing.status, 404);
  const traversal = await fetch(`${s.url}/static/../CMakeLists.txt`);
  assert.notEqual(traversal.status, 200);
});

test('the /ws access log line has neither the token nor the query string', async () => {
  const u = new WebClient(s.url);
  const email = `log-${Date.now()}@example.com`;
  assert.equal((await u.register(email, 'Log Tester', 'a-long-password-1')).status, 303);
  const room = `logs-${Date.now().toString(36)}`;
  assert.equal((await u.createRoom(room)).status, 303);
  const t = await u.chatToken(room);
  assert.equal(t.status, 200);
  const before = s.nginxAccessLog().split('\n').filter((l) => l.includes('"GET /ws ')).length;
  const c = openChat(s.url, t.body.token);
  await c.opened;
  await c.next((f) => f.type === 'welcome', 'welcome');
  await c.close();
  const lines = await eventually(() => {
    const l = s.nginxAccessLog().split('\n').filter((x) => x.includes('"GET /ws '));
    return l.length > before && l;
  }, 'the /ws access log line');
  assert.match(lines.at(-1), /"GET \/ws HTTP\/1\.1" 101 /);
  const all = s.nginxAccessLog() + s.nginxErrorLog();
  const [, payload, sig] = t.body.token.split('.');
  for (const secret of [t.body.token, payload, sig, 'access_token']) {
    assert.ok(!all.includes(secret), `nginx logs contain ${secret.slice(0, 12)}...`);
  }
  // No cookie value either.
  for (const v of u.cookies.values()) assert.ok(!all.includes(v), 'nginx logs contain a cookie');
});

test('a WebSocket without a valid token is refused with 401 before the upgrade', async () => {
  for (const token of [null, 'not-a-jwt']) {
    const c = openChat(s.url, token);
    await assert.rejects(c.opened, (e) => e.statusCode === 401);
  }
});

test('internal endpoints of the daemons are not reachable through nginx', async () => {
  const m = await fetch(`${s.url}/metrics`);
  assert.equal(m.status, 404);
  assert.ok(!(await m.text()).includes('# TYPE'), 'no Prometheus text through nginx');
  // The chat daemon answers it only on its admin port; its public port (nginx's upstream)
  // knows only /ws.
  const direct = await fetch(`http://127.0.0.1:${s.chat.adminPort}/metrics`);
  assert.equal(direct.status, 200);
  assert.match(await direct.text(), /# TYPE/);
  assert.equal((await fetch(`http://127.0.0.1:${s.chat.port}/metrics`)).status, 404);
  // /healthz through nginx is the website's (JSON), never the chat daemon's.
  const h = await fetch(`${s.url}/healthz`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), { status: 'ok' });
});

test('the body size is capped', async () => {
  const big = 'x'.repeat(256 * 1024); // over NGINX_BODY_MAX (64k)
  const res = await fetch(`${s.url}/login`, { method: 'POST', body: `email=${big}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(res.status, 413);
  // The JSON API's 413 is the contract's JSON error, not nginx's HTML page.
  const api = await fetch(`${s.url}/api/rooms/any-room/token`, { method: 'POST', body: big,
    headers: { 'x-csrf-token': 'x' } });
  assert.equal(api.status, 413);
  assert.match(api.headers.get('content-type') || '', /^application\/json/);
  const b = await api.json();
  assert.equal(b.error, 'too_large');
  assert.equal(typeof b.message, 'string');
  assert.match(api.headers.get('content-security-policy') || '', /default-src 'self'/);
});

// A request from another loopback address, with optional extra headers.
function requestFrom(localAddress, method, path, { headers = {}, body } = {}) {
  return new Promise((res, rej) => {
    const req = httpRequest({ host: '127.0.0.1', port: s.port, path, method, localAddress,
      headers: { ...headers, ...(body ? { 'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(body) } : {}) } }, (r) => {
      r.resume();
      r.on('end', () => res({ status: r.statusCode, headers: r.headers }));
    });
    req.on('error', rej);
    req.end(body);
  });
}

test('the website sees the real client address, not one the client claims', async () => {
  const r = await requestFrom('127.0.0.2', 'GET', '/login?from=proxy-test',
    { headers: { 'x-real-ip': '6.6.6.6', 'x-forwarded-for': '7.7.7.7' } });
  assert.equal(r.status, 200);
  const line = await eventually(() => s.website.stderr.split('\n')
    .find((l) => / GET \/login/.test(l) && !l.includes(' 127.0.0.1 ')), 'the website log line');
  assert.match(line, / 127\.0\.0\.2 GET \/login/, line);
  assert.ok(!s.website.stderr.includes('6.6.6.6') && !s.website.stderr.includes('7.7.7.7'),
    'a forged X-Real-IP / X-Forwarded-For is replaced by nginx');
});

// Last: it uses up this client address's login allowance.
test('POST /login is rate limited per client, GET /login is not', async () => {
  const statuses = [];
  for (let i = 0; i < 40; i++) {
    const res = await fetch(`${s.url}/login`, { method: 'POST', redirect: 'manual',
      body: 'email=nobody%40example.com&password=wrong-password&csrf_token=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  assert.ok(statuses.includes(429), `some of 40 quick POSTs are refused: ${statuses.join(',')}`);
  assert.equal(statuses.at(-1), 429, 'and they stay refused');
  assert.ok(statuses.every((x) => x === 429 || (x >= 400 && x < 500)), statuses.join(','));
  const reg = await fetch(`${s.url}/register`, { method: 'POST', body: 'email=x',
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(reg.status, 429, '/register shares the allowance');
  for (let i = 0; i < 5; i++) {
    const g = await fetch(`${s.url}/login`);
    assert.equal(g.status, 200, 'GET /login is never limited');
    await g.arrayBuffer();
  }
  // The allowance is per client address: another client is not refused.
  const other = await requestFrom('127.0.0.3', 'POST', '/login',
    { body: 'email=nobody%40example.com&password=wrong-password&csrf_token=x' });
  assert.notEqual(other.status, 429);
});
