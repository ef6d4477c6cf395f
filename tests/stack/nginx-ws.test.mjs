// nginx in front of the chat daemon lets only a WebSocket handshake through, to exactly /ws,
// never with a token in its URL, and keeps the chat daemon's internal endpoints (/metrics,
// /healthz) unreachable by any spelling of the path (issue 9: "Any upgrade but WebSocket
// reaches the chat daemon", "A token in a log").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startStack } from '../lib/stack.mjs';
import { mintToken } from '../lib/token.mjs';
import { sleep } from '../lib/proc.mjs';
import { rawRequest, wsHandshake } from './raw.mjs';

let s;
let host;
before(async () => {
  s = await startStack({ chatEnv: { CHAT_MAX_CONNECTIONS: '20' },
    nginxEnv: { NGINX_CHAT_CAPACITY: '20', NGINX_WS_PER_ADDR: '20', NGINX_ERROR_LOG_LEVEL: 'info' } });
  host = `127.0.0.1:${s.port}`;
});
after(async () => { await s?.stop(); });

let n = 0;
const token = (room = 'lobby') => { n += 1; return mintToken(s.secret, { sub: `u${n}@example.com`, name: `U ${n}`, room }); };
const bearer = (t) => `Authorization: Bearer ${t}\r\n`;
const isChatInternal = (r) => /# TYPE|chat_[a-z_]+ \d/.test(r.raw);

test('the h2c upgrade of the issue is refused with 400 and never reaches the chat daemon', async () => {
  const r = await rawRequest(s.port, `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: h2c\r\n` +
    'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n');
  assert.equal(r.status, 400, r.raw.slice(0, 300));
  assert.equal(JSON.parse(r.body).error, 'bad_request');
  // The same with a valid token and on HTTP/2's preface right after it: still 400, no tunnel.
  const t = token();
  const r2 = await rawRequest(s.port, `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: h2c\r\n` +
    `HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n${bearer(t)}\r\n` +
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  assert.equal(r2.status, 400);
  assert.ok(!isChatInternal(r2));
});

test('every upgrade but WebSocket, and every non-GET handshake, is refused with 400', async () => {
  for (const [upgrade, method] of [['h2c', 'GET'], ['H2C', 'GET'], ['websocket, h2c', 'GET'],
    ['h2c, websocket', 'GET'], ['TLS/1.0', 'GET'], ['websocketx', 'GET'], ['', 'GET'],
    ['websocket', 'POST'], ['websocket', 'PUT'], ['websocket', 'OPTIONS']]) {
    const r = await rawRequest(s.port, wsHandshake('/ws', bearer(token()), { upgrade, method, host }));
    assert.equal(r.status, 400, `${method} Upgrade: ${upgrade} -> ${r.raw.slice(0, 200)}`);
  }
  // No Upgrade header at all (a plain GET of /ws).
  const plain = await rawRequest(s.port, `GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  assert.equal(plain.status, 400);
  // The WebSocket token is case-insensitive (RFC 6455 section 4.2.1): these pass.
  for (const upgrade of ['websocket', 'WebSocket', 'WEBSOCKET']) {
    const r = await rawRequest(s.port, wsHandshake('/ws?room=lobby', bearer(token()), { upgrade, host }));
    assert.equal(r.status, 101, `Upgrade: ${upgrade} -> ${r.raw.slice(0, 200)}`);
  }
});

test('an HTTP2-Settings header does not turn a WebSocket handshake into anything else', async () => {
  const r = await rawRequest(s.port, wsHandshake('/ws', `${bearer(token())}HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n`, { host }));
  assert.equal(r.status, 101);
  assert.match(r.headers.upgrade || '', /^websocket$/i);
});

test('the chat daemon\'s /metrics and /healthz are unreachable through nginx by any path', async () => {
  // The positive control: they exist on the daemon's admin listener (never proxied).
  const direct = await rawRequest(s.chat.adminPort, `GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.ok(isChatInternal(direct), 'the daemon answers /metrics on its admin port');
  const paths = ['/metrics', '/metrics/', '/metrics?x=1', '//metrics', '/./metrics', '/%6detrics',
    '/ws/../metrics', '/ws/..%2fmetrics', '/ws%2F..%2Fmetrics', '/ws/%2e%2e/metrics',
    '/ws;/../metrics', '/static/../metrics', '/internal/metrics', '/x/../../metrics',
    `http://127.0.0.1:${s.chat.port}/metrics`, 'http://chat/metrics', '/ws/../healthz',
    '/%2e%2e/metrics', '/ws/metrics', '/ws?/../metrics', '/ws#/../metrics'];
  for (const p of paths) {
    for (const extra of ['', 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n',
      'Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n']) {
      const r = await rawRequest(s.port, `GET ${p} HTTP/1.1\r\nHost: ${host}\r\n${extra}${bearer(token())}\r\n`);
      assert.ok(!isChatInternal(r), `${p} reached the chat daemon's metrics: ${r.raw.slice(0, 200)}`);
      // Only a WebSocket handshake may switch protocols (a path nginx reads as /ws may).
      if (!extra.includes('websocket')) assert.notEqual(r.status, 101, `${p} with ${extra.slice(0, 20)}: 101`);
    }
  }
});

test('any spelling of /ws reaches the chat daemon as exactly /ws', async () => {
  // nginx normalises these to /ws; the daemon must get "/ws", not the raw spelling.
  for (const p of ['//ws', '/%77s', '/metrics/../ws', '/healthz/../ws', `http://${host}/ws`, '/./ws']) {
    const r = await rawRequest(s.port, wsHandshake(p, bearer(token()), { host }));
    assert.equal(r.status, 101, `${p}: ${r.raw.slice(0, 200)}`);
  }
});

test('a token in the /ws URL is refused with 400, in every spelling', async () => {
  const t = token();
  for (const q of [`access_token=${t}`, `room=lobby&access_token=${t}`, `ACCESS_TOKEN=${t}`,
    `access%5Ftoken=${t}`, `access_token`, `access_token=`, `token=${t}`, `room=lobby&jwt=${t}`,
    `room=${t}`, `room=lobby&room=lobby&room=x`, `room=Lobby`, `since=-1`]) {
    const r = await rawRequest(s.port, wsHandshake(`/ws?${q}`, '', { host }));
    assert.equal(r.status, 400, `?${q.slice(0, 40)}: ${r.raw.slice(0, 200)}`);
    assert.equal(JSON.parse(r.body).error, 'bad_request');
  }
  // What a browser sends passes.
  for (const [q, room] of [['room=lobby', 'lobby'], ['room=lobby&since=42', 'lobby'],
    ['since=0&room=a-b-c', 'a-b-c'], ['', 'lobby']]) {
    const r = await rawRequest(s.port, wsHandshake(`/ws${q ? `?${q}` : ''}`, bearer(token(room)), { host }));
    assert.equal(r.status, 101, `?${q}: ${r.raw.slice(0, 200)}`);
  }
});

// Holds `count` WebSockets open through nginx (raw sockets; the caller destroys them).
async function holdWebSockets(count) {
  const socks = [];
  for (let i = 0; i < count; i++) {
    const sock = connect(s.port, '127.0.0.1');
    const ok = await new Promise((res) => {
      let b = '';
      sock.on('data', (d) => { b += d; if (b.includes('\r\n\r\n')) res(/^HTTP\/1\.1 101/.test(b)); });
      sock.on('error', () => res(false));
      sock.write(wsHandshake('/ws?room=lobby', bearer(token()), { host }));
    });
    assert.ok(ok, `WebSocket ${i + 1} of ${count} opened`);
    socks.push(sock);
  }
  return socks;
}

test('no token reaches a log line under pressure: chat at capacity, chat down, error_log at info', { timeout: 240000 }, async () => {
  const tokens = [];
  const mark = () => { const t = token(); tokens.push(t); return t; };
  const burst = async (label) => {
    const reqs = [];
    for (let i = 0; i < 60; i++) {
      reqs.push(rawRequest(s.port, wsHandshake('/ws?room=lobby', bearer(mark()), { host })));
      reqs.push(rawRequest(s.port, wsHandshake('/ws?room=lobby', `Cookie: parley_ws_lobby=${mark()}; other=1\r\n`, { host })));
      reqs.push(rawRequest(s.port, wsHandshake(`/ws?access_token=${mark()}`, '', { host })));
      reqs.push(rawRequest(s.port, wsHandshake(`/ws?room=lobby&access_token=${mark()}`, `Cookie: parley_ws_lobby=${mark()}\r\n`, { host })));
      // Clients that give up in the middle of their handshake (info-level lines).
      const cut = connect(s.port, '127.0.0.1');
      cut.on('error', () => {});
      cut.write(`GET /ws?room=lobby HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${mark()}\r\nUpgr`);
      setTimeout(() => cut.destroy(), 50);
    }
    const rs = await Promise.all(reqs);
    const statuses = rs.map((r) => r.status);
    return { label, statuses };
  };

  // 1. The chat daemon at its capacity (20): nginx answers the rest 503 itself.
  const held = await holdWebSockets(20);
  const full = await burst('at capacity');
  assert.ok(full.statuses.includes(503), `503s at capacity: ${full.statuses.join(',')}`);
  assert.ok(!full.statuses.includes(101), 'nothing got past a full chat');
  for (const sock of held) sock.destroy();
  await sleep(500);

  // 2. The chat daemon stopped: every handshake fails upstream (error-level lines).
  await s.stopChat();
  try {
    const down = await burst('chat down');
    assert.ok(down.statuses.every((x) => x === 503 || x === 400), down.statuses.join(','));
    const u = await rawRequest(s.port, wsHandshake('/ws', bearer(mark()), { host }));
    assert.equal(u.status, 503);
    assert.equal(JSON.parse(u.body).error, 'unavailable');
  } finally {
    await s.startChat();
  }
  await sleep(1000);
  const logs = s.nginxAccessLog() + s.nginxErrorLog() + s.nginx.stderr;
  assert.match(s.nginxErrorLog(), /\[(info|warn|error)\]/, 'the error log has lines to check');
  assert.ok(!/access_token=ey/i.test(logs), 'access_token=ey in an nginx log');
  for (const t of tokens) {
    const sig = t.split('.')[2];
    assert.ok(!logs.includes(sig), `a token's signature is in an nginx log: ${sig}`);
  }
  assert.ok(!/authorization|cookie/i.test(s.nginxAccessLog()), 'no header names of secrets in the access log');
});
