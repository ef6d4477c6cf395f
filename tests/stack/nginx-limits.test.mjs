// nginx bounds what one client address can hold and sizes itself for the chat's capacity
// (issue 9: "One address can take the whole site down", "The public port runs out before
// the chat does", and the graceful reload that never finished while WebSockets were open).
// The attacker is 127.0.0.1; the logged-in user next to it comes from 127.0.0.2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { startStack, WebClient } from '../lib/stack.mjs';
import { mintToken } from '../lib/token.mjs';
import { sleep } from '../lib/proc.mjs';
import { openChat, eventually, uniq } from './helpers.mjs';
import { rawRequest, wsHandshake } from './raw.mjs';

const PER_ADDR = 20;
const CAPACITY = 50;
let s;
before(async () => {
  s = await startStack({ chatEnv: { CHAT_MAX_CONNECTIONS: String(CAPACITY) },
    nginxEnv: { NGINX_HEADER_TIMEOUT: '3s', NGINX_BODY_TIMEOUT: '3s', NGINX_SEND_TIMEOUT: '3s',
      NGINX_CONN_PER_ADDR: String(PER_ADDR), NGINX_CHAT_CAPACITY: String(CAPACITY),
      NGINX_WS_PER_ADDR: String(CAPACITY), NGINX_SHUTDOWN_TIMEOUT: '3s' } });
});
after(async () => { await s?.stop(); });

// WebClient over node:http from a chosen source address (fetch cannot bind one).
class BoundClient extends WebClient {
  constructor(base, localAddress) { super(base); this.localAddress = localAddress; }

  async request(method, path, { body, headers = {} } = {}) {
    const h = { ...this.headers, ...headers };
    if (this.cookies.size) h.cookie = this.cookieHeader();
    if (body !== undefined) h['content-length'] = Buffer.byteLength(body);
    const u = new URL(this.base + path);
    const { status, headers: rh, text } = await new Promise((res, rej) => {
      const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname + u.search, method,
        headers: h, localAddress: this.localAddress, timeout: 30000 }, (r) => {
        let t = '';
        r.setEncoding('utf8');
        r.on('data', (d) => { t += d; });
        r.on('end', () => res({ status: r.statusCode, headers: r.headers, text: t }));
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', rej);
      req.end(body);
    });
    const hs = new Headers();
    for (const [k, v] of Object.entries(rh)) for (const x of [].concat(v)) hs.append(k, x);
    this.keepCookies({ headers: hs });
    const m = text.match(/<meta name="csrf-token" content="([^"]*)"/);
    if (m) this.csrf = m[1];
    return { status, headers: hs, text, location: hs.get('location'), json() { return JSON.parse(text); } };
  }
}

// A socket from 127.0.0.1 that sends `head`, then `trickle()` every `everyMs` until stopped;
// records when nginx closed it and the status line it answered.
function slowClient(head, trickle, everyMs) {
  const c = { closed: false, status: null, data: '' };
  const sock = connect({ port: s.port, host: '127.0.0.1', localAddress: '127.0.0.1' });
  c.sock = sock;
  sock.on('error', () => {});
  sock.on('data', (d) => {
    c.data += d;
    const m = c.data.match(/^HTTP\/1\.1 (\d{3})/);
    if (m) c.status = Number(m[1]);
  });
  c.done = new Promise((res) => sock.on('close', () => { c.closed = true; clearInterval(c.timer); res(); }));
  sock.on('connect', () => {
    sock.write(head);
    c.timer = setInterval(() => { if (!sock.destroyed) sock.write(trickle()); }, everyMs);
  });
  c.stopTrickle = () => clearInterval(c.timer);
  return c;
}

test('slow headers and slow bodies from one address: bounded, cut, and another user is served', { timeout: 180000 }, async () => {
  // A user who logged in before the attack, from another address.
  const email = `calm-${uniq()}@example.com`;
  const password = 'a-long-password-1';
  const user = new BoundClient(s.url, '127.0.0.2');
  assert.equal((await user.register(email, 'Calm User', password)).status, 303);
  assert.equal((await user.get('/rooms')).status, 200);

  const host = `127.0.0.1:${s.port}`;
  let k = 0;
  const heads = [];
  const bodies = [];
  for (let i = 0; i < 300; i++) {
    // slowhttptest's slow headers: a header line now and then, never the blank line.
    heads.push(slowClient(`GET /rooms HTTP/1.1\r\nHost: ${host}\r\n`, () => `X-Slow-${k++}: y\r\n`, 500));
    // slowhttptest's slow body: a complete head announcing 60000 bytes, a byte per 500 ms.
    bodies.push(slowClient(`POST /rooms HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
      'Content-Length: 60000\r\n\r\nname=', () => 'x', 500));
  }
  await sleep(1500);
  // Meanwhile the other user gets pages (and a page of the JSON API).
  for (let i = 0; i < 5; i++) {
    const r = await user.get('/rooms');
    assert.equal(r.status, 200, `GET /rooms during the attack: ${r.status}`);
    await sleep(200);
  }
  assert.equal((await user.get('/static/style.css')).status, 200);

  // Slow bodies beyond the address's share got 429 at once; at most PER_ADDR are held.
  await eventually(() => bodies.filter((b) => b.status === 429).length >= 300 - PER_ADDR,
    `at least ${300 - PER_ADDR} slow bodies refused with 429`);
  const held = bodies.filter((b) => !b.closed && b.status === null);
  assert.ok(held.length <= PER_ADDR, `${held.length} slow bodies held, more than ${PER_ADDR}`);
  // The refusal is the site's own page, not nginx's.
  const refused = bodies.find((b) => b.status === 429);
  assert.match(refused.data, /Too many attempts/);
  assert.match(refused.data, /\r\nRetry-After: \d+\r\n/i);

  // Slow headers are cut once the head took longer than client_header_timeout (3 s here),
  // however busy they keep the connection.
  await eventually(() => heads.every((h) => h.closed), 'every slow-header connection closed by nginx');
  // A body that stops is cut after client_body_timeout (3 s here).
  for (const b of held) b.stopTrickle();
  await eventually(() => bodies.every((b) => b.closed), 'every stalled body closed by nginx');

  // And the user is still fine.
  assert.equal((await user.get('/rooms')).status, 200);
  for (const c of [...heads, ...bodies]) c.sock.destroy();
});

test('the JSON API answers a too-many-connections refusal with JSON', async () => {
  const hold = [];
  for (let i = 0; i < PER_ADDR; i++) {
    hold.push(slowClient(`POST /api/rooms/x/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n`, () => 'x', 500));
  }
  await sleep(1000);
  const r = await rawRequest(s.port, 'GET /api/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  for (const c of hold) c.sock.destroy();
  assert.equal(r.status, 429, r.raw.slice(0, 300));
  assert.match(r.headers['content-type'] || '', /^application\/json/);
  assert.equal(JSON.parse(r.body).error, 'rate_limited');
  assert.match(r.headers['retry-after'] || '', /^\d+$/);
  assert.match(r.headers['content-security-policy'] || '', /default-src 'self'/);
});

test('the login rate limit answers with the site\'s own page', async () => {
  let last;
  for (let i = 0; i < 40; i++) {
    last = await rawRequest(s.port, 'POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n' +
      'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nemail=x&p', { localAddress: '127.0.0.4' });
    if (last.status === 429) break;
  }
  assert.equal(last.status, 429);
  assert.match(last.headers['content-type'] || '', /^text\/html/);
  assert.match(last.body, /<link rel="stylesheet" href="\/static\/style.css">/);
  assert.match(last.body, /Too many attempts/);
  assert.match(last.body, /wait a minute/);
  assert.match(last.headers['content-security-policy'] || '', /default-src 'self'/);
  assert.equal(last.headers['x-frame-options'], 'DENY');
});

const token = (i, room = 'capacity') => mintToken(s.secret, { sub: `cap${i}-${uniq()}@example.com`, name: `Cap ${i}`, room });

test(`beyond the chat's capacity (${CAPACITY}) a WebSocket gets a clean 503, and pages still work`, { timeout: 120000 }, async () => {
  const open = [];
  try {
    for (let i = 0; i < CAPACITY; i++) {
      // Over several source addresses, as many users would come.
      const c = openChat(s.url, token(i), { localAddress: `127.0.1.${1 + (i % 10)}` });
      open.push(c);
      await c.opened;
    }
    const r = await rawRequest(s.port, wsHandshake('/ws?room=capacity', `Authorization: Bearer ${token(999)}\r\n`,
      { host: `127.0.0.1:${s.port}` }), { localAddress: '127.0.2.1' });
    assert.equal(r.status, 503, r.raw.slice(0, 300));
    assert.equal(JSON.parse(r.body).error, 'unavailable');
    assert.match(r.headers['retry-after'] || '', /^\d+$/);
    const page = await new BoundClient(s.url, '127.0.2.2').get('/login');
    assert.equal(page.status, 200);
  } finally {
    await Promise.all(open.map((c) => c.close().catch(() => {})));
  }
  // Room again once they left.
  await eventually(async () => {
    const c = openChat(s.url, token(1000));
    try { await c.opened; await c.close(); return true; } catch { return false; }
  }, 'a WebSocket after the others closed');
});

// The worker processes of the stack's nginx master.
function workers() {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === s.nginx.pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

test('a graceful reload finishes while WebSockets are open (worker_shutdown_timeout)', { timeout: 120000 }, async () => {
  const old = workers();
  assert.ok(old.length >= 1, 'nginx has workers');
  const c = openChat(s.url, token(2000, 'reload'));
  await c.opened;
  await c.next((f) => f.type === 'welcome', 'welcome');
  process.kill(s.nginx.pid, 'SIGHUP');
  // The old worker exits once worker_shutdown_timeout (3 s here) is over, closing the
  // WebSocket it still held; without the timeout it would wait for the WebSocket.
  await eventually(() => old.every((p) => !workers().includes(p)), 'the old workers to exit');
  await eventually(() => c.closed, 'the old WebSocket to be closed');
  const c2 = openChat(s.url, token(2001, 'reload'));
  await c2.opened;
  await c2.next((f) => f.type === 'welcome', 'welcome through the new workers');
  await c2.close();
  assert.ok(workers().length >= 1);
});
