// Only a WebSocket upgrade reaches the daemon: issue 9 found that `Upgrade: h2c` got
// "101 Switching Protocols" on the chat port and HTTP/2 inside the connection then read
// /metrics and /healthz. lws 4.1.6 switches to HTTP/2 on h2c by itself
// (lib/roles/http/server/server.c); the daemon refuses it, every other upgrade, HTTP/2 with
// prior knowledge, and CONNECT (which lws turns into a raw socket with no timeout).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startChat, Client, upgradeRequest, httpGet, metrics, T } from './lib.mjs';

let chat;
before(async () => { chat = await startChat(); });
after(async () => { await chat.d.stop(); });

// HTTP/2 connection preface, an empty SETTINGS frame, and a HEADERS frame for GET /metrics
// (HPACK: :method GET, :scheme http, :path /metrics as a literal, :authority 127.0.0.1).
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
function headersFrame(path) {
  const lit = (idx, v) => Buffer.concat([Buffer.from([idx, v.length]), Buffer.from(v)]);
  const block = Buffer.concat([Buffer.from([0x82, 0x86]), lit(0x04, path), lit(0x01, '127.0.0.1')]);
  const h = Buffer.from([0, 0, block.length, 1, 0x05, 0, 0, 0, 1]); // END_STREAM | END_HEADERS, stream 1
  return Buffer.concat([h, block]);
}

// Writes bytes, collects everything until the server closes (or T passes: then it failed to).
function exchange(port, bytes) {
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    const chunks = [];
    let closed = false;
    const t = setTimeout(() => { s.destroy(); }, T);
    s.on('connect', () => s.write(bytes));
    s.on('data', (b) => chunks.push(b));
    s.on('error', () => {});
    s.on('close', () => { closed = true; clearTimeout(t); res({ raw: Buffer.concat(chunks), closed }); });
  });
}

// The reply is one HTTP/1.x response and nothing after it (no HTTP/2 frame, no 101).
function assertPlainRefusal(r, what) {
  const text = r.raw.toString('latin1');
  assert.doesNotMatch(text, /101 Switching/i, what);
  assert.doesNotMatch(text, /# TYPE|"status":"ok"/, `${what}: internal endpoint answered`);
  if (r.raw.length === 0) return; // closed without a word is fine too
  const m = /^HTTP\/1\.[01] (\d{3}) /.exec(text);
  assert.ok(m, `${what}: not an HTTP/1 response: ${JSON.stringify(text.slice(0, 80))}`);
  assert.ok(Number(m[1]) >= 400, `${what}: status ${m[1]}`);
  const i = text.indexOf('\r\n\r\n');
  const cl = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, i));
  assert.ok(cl, `${what}: no Content-Length`);
  assert.equal(r.raw.length, i + 4 + Number(cl[1]), `${what}: bytes after the response (HTTP/2?)`);
}

const h2cRequest = (path = '/ws', extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: h2c\r\n` +
  `HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n${extra}\r\n`;

test('the issue\'s h2c upgrade gets no 101 and no HTTP/2, with or without a valid token', async () => {
  const tok = chat.token({ room: 'h2c-room' });
  const cases = {
    'issue request': h2cRequest(),
    'with a valid token': h2cRequest('/ws', `Authorization: Bearer ${tok}\r\n`),
    'on /metrics': h2cRequest('/metrics'),
    'on /healthz': h2cRequest('/healthz'),
    'lowercase': h2cRequest().replace('Upgrade: h2c', 'upgrade: H2C'),
  };
  for (const [name, req] of Object.entries(cases)) {
    // what an attacker sends after the 101: the preface and a request for /metrics
    const r = await exchange(chat.port, Buffer.concat([Buffer.from(req, 'latin1'), PREFACE, SETTINGS,
      headersFrame('/metrics')]));
    assert.ok(r.closed, `${name}: the connection stays open`);
    assertPlainRefusal(r, name);
    // refused by the upgrade filter (403) or, before lws sees the whole head, by the framing
    // guard (rawguard.c fails closed on any Upgrade but websocket): either way nothing follows
    assert.match(r.raw.toString('latin1'), /^(HTTP\/1\.1 403 |$)/, name);
  }
});

test('other upgrades than websocket are refused; HTTP/2 prior knowledge and CONNECT too', async () => {
  const tok = chat.token({ room: 'up-room' });
  const ws = (up) => upgradeRequest('/ws', `Authorization: Bearer ${tok}\r\n`).replace('Upgrade: websocket', `Upgrade: ${up}`);
  const cases = {
    'Upgrade: foo': ws('foo'),
    'Upgrade: websocket, h2c': ws('websocket, h2c'),
    'Upgrade: h2c, websocket': ws('h2c, websocket'),
    'Upgrade: h2c with websocket headers': ws('h2c'),
    'Upgrade: HTTP/2.0': ws('HTTP/2.0'),
    'Upgrade: TLS/1.2': ws('TLS/1.2'),
    'prior-knowledge preface': Buffer.concat([PREFACE, SETTINGS, headersFrame('/metrics')]),
    'preface after a request': Buffer.concat([Buffer.from('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'), PREFACE]),
    CONNECT: 'CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n',
    'CONNECT then bytes': 'CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n',
  };
  for (const [name, req] of Object.entries(cases)) {
    const r = await exchange(chat.port, Buffer.isBuffer(req) ? req : Buffer.from(req, 'latin1'));
    assert.ok(r.closed, `${name}: the connection stays open`);
    const text = r.raw.toString('latin1');
    if (name === 'preface after a request') {
      // the plain GET /ws is answered (426), then the preface is not HTTP/1: dropped
      assert.match(text, /^HTTP\/1\.1 426 /);
      assert.doesNotMatch(text, /101 Switching|# TYPE/);
      continue;
    }
    assertPlainRefusal(r, name);
  }
  // the daemon still serves WebSocket clients
  const c = await Client.open(chat.url(chat.token({ room: 'up-room' })));
  await c.close();
});

test('/metrics and /healthz are unreachable on the public port by any route', async () => {
  for (const p of ['/metrics', '/healthz', '/ws/../metrics', '/./healthz', '/%6detrics', '/metrics/',
    '/ws?x=/metrics']) {
    const r = await httpGet(chat.port, p);
    assert.ok(r.status === 404 || r.status === 400 || r.status === 426, `${p}: ${r.status}`);
    assert.doesNotMatch(r.raw, /# TYPE|"status":"ok"/, p);
  }
  // a Host naming the admin vhost does not select it (lws picks vhosts by port, then Host)
  for (const host of ['parley-chat-admin', `127.0.0.1:${chat.adminPort}`, 'parley-chat-admin:80']) {
    const r = await httpGet(chat.port, '/metrics', { Host: host });
    assert.equal(r.status, 404, host);
  }
  // pipelined behind a plain request
  const r = await exchange(chat.port, Buffer.from('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' +
    'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
  assert.doesNotMatch(r.raw.toString('latin1'), /# TYPE/);
  // ...and on the admin port they answer
  assert.equal((await httpGet(chat.adminPort, '/healthz')).status, 200);
  assert.match((await httpGet(chat.adminPort, '/metrics')).body, /# TYPE chat_connections gauge/);
  // where the h2c request gets a refusal too
  const a = await exchange(chat.adminPort, Buffer.concat([Buffer.from(h2cRequest('/metrics'), 'latin1'), PREFACE]));
  assertPlainRefusal(a, 'h2c on the admin port');
});

test('the admin listener binds CHAT_ADMIN_ADDR, and a daemon whose admin port is taken does not start', async () => {
  assert.match(chat.d.stderr, new RegExp(`admin on 127\\.0\\.0\\.1:${chat.adminPort} \\(/healthz, /metrics\\)`));
  const { BIN, runToExit, freePort } = await import('../lib/proc.mjs');
  const r = await runToExit(BIN.chat, { JWT_SECRET: chat.secret, CHAT_PORT: String(await freePort()),
    CHAT_ADMIN_PORT: String(chat.adminPort) });
  assert.notEqual(r.code, 0);
  assert.match(r.output, /cannot listen on 127\.0\.0\.1:\d+ \(CHAT_ADMIN_ADDR:CHAT_ADMIN_PORT\)/);
});
