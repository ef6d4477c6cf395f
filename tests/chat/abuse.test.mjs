// Raw-socket abuse that normal clients cannot produce. What libwebsockets 4.1.6 does with
// each case is documented in docs/protocol.md ("Abuse findings"); where lws does not end
// the connection as RFC 6455 requires, the daemon does (unmasked frames, rawguard.c).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startChat, Client, RawWs, rawRequest, metrics, httpGet, until, T } from './lib.mjs';
import { uidOf } from '../lib/token.mjs';

let chat;
before(async () => { chat = await startChat({ CHAT_HANDSHAKE_TIMEOUT: '2' }); });
after(async () => { await chat.d.stop(); });

const msg = (text) => JSON.stringify({ type: 'message', text });

// The daemon must still serve others after each abuse case.
async function stillServes(room) {
  const a = await Client.open(chat.url(chat.token({ sub: 'ok@x.org', room })));
  a.send({ type: 'message', text: 'still fine' });
  assert.equal((await a.next((f) => f.type === 'message')).text, 'still fine');
  await a.close();
}

test('an unmasked client frame ends the connection with 1002 and is not broadcast', async () => {
  const watcher = await Client.open(chat.url(chat.token({ sub: 'w@x.org', room: 'unmasked' })));
  const r = await RawWs.open(chat.port, chat.token({ sub: 'raw@x.org', room: 'unmasked' }));
  // a masked frame first: accepted
  r.write(RawWs.frame(1, msg('masked ok')));
  assert.equal((await watcher.next((f) => f.type === 'message')).text, 'masked ok');
  r.write(RawWs.frame(1, msg('UNMASKED'), { mask: false }));
  await r.ended;
  assert.equal(r.closeCode(), 1002);
  // a marker after it proves the unmasked text never reached the room
  watcher.send({ type: 'message', text: 'marker' });
  await watcher.next((f) => f.text === 'marker');
  assert.ok(!watcher.of('message').some((m) => m.text === 'UNMASKED'));
  await watcher.next((f) => f.type === 'leave' && f.user.id === uidOf('raw@x.org'));
  assert.ok((await metrics(chat.port)).chat_framing_violations_total >= 1);
  assert.match(chat.d.stderr, new RegExp(`user=${uidOf('raw@x.org')} reason=unmasked client frame`));
  await watcher.close();
});

test('an unmasked frame sent together with the handshake is refused too', async () => {
  const s = connect(chat.port, '127.0.0.1');
  s.on('error', () => {});
  const chunks = [];
  s.on('data', (b) => chunks.push(b));
  const ended = new Promise((res) => s.on('close', res));
  await new Promise((res) => s.once('connect', res));
  const { upgradeRequest } = await import('./lib.mjs');
  s.write(Buffer.concat([
    Buffer.from(upgradeRequest('/ws', `Authorization: Bearer ${chat.token({ room: 'unmasked2' })}\r\n`)),
    RawWs.frame(1, msg('sneaky'), { mask: false }),
  ]));
  await ended;
  const raw = Buffer.concat(chunks).toString('latin1');
  assert.ok(!raw.includes('sneaky'), 'the unmasked message was not echoed');
});

test('an unmasked frame after pipelined plain requests on the same connection is refused too', async () => {
  // GET /ws (426), then the upgrade and an unmasked frame, all in one write: the guard used to
  // take the second request head for frames and give up, so the frame was broadcast
  const watcher = await Client.open(chat.url(chat.token({ sub: 'w2@x.org', room: 'unmasked3' })));
  const s = connect(chat.port, '127.0.0.1');
  s.on('error', () => {});
  const chunks = [];
  s.on('data', (b) => chunks.push(b));
  const ended = new Promise((res) => s.on('close', res));
  await new Promise((res) => s.once('connect', res));
  const { upgradeRequest } = await import('./lib.mjs');
  const tok = chat.token({ sub: 'pipe@x.org', room: 'unmasked3' });
  s.write(Buffer.concat([
    Buffer.from('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'),
    Buffer.from(upgradeRequest('/ws', `Authorization: Bearer ${tok}\r\n`)),
    RawWs.frame(1, msg('piped'), { mask: false }),
  ]));
  await ended;
  const raw = Buffer.concat(chunks).toString('latin1');
  assert.ok(raw.startsWith('HTTP/1.1 426'), 'the plain request was answered');
  assert.ok(!raw.includes('piped'), 'the unmasked message was not echoed');
  watcher.send({ type: 'message', text: 'marker' });
  await watcher.next((f) => f.text === 'marker');
  assert.ok(!watcher.of('message').some((m) => m.text === 'piped'));
  await watcher.close();
});

test('a violation after the server has sent its close frame gets no second close frame', async () => {
  // the daemon closes with 1003 (binary frame); before acknowledging, the client sends an
  // unmasked frame: the connection ends, and the 1003 close stays the only one sent
  const s = connect(chat.port, '127.0.0.1');
  s.on('error', () => {});
  let buf = Buffer.alloc(0);
  s.on('data', (b) => { buf = Buffer.concat([buf, b]); });
  const ended = new Promise((res) => s.on('close', res));
  await new Promise((res) => s.once('connect', res));
  const { upgradeRequest } = await import('./lib.mjs');
  s.write(upgradeRequest('/ws', `Authorization: Bearer ${chat.token({ sub: 'twice@x.org', room: 'twice' })}\r\n`));
  await until(() => buf.includes('"welcome"'), T, 'welcome');
  s.write(RawWs.frame(2, 'binary'));
  await until(() => buf.includes(Buffer.from([0x88, 0x02, 0x03, 0xeb])) ||
    buf.includes(Buffer.from([0x03, 0xeb])), T, 'the 1003 close');
  s.write(RawWs.frame(1, msg('late'), { mask: false }));
  await ended;
  const frames = [];
  let i = buf.indexOf('\r\n\r\n') + 4;
  while (i + 2 <= buf.length) {
    let len = buf[i + 1] & 0x7f; // server frames here are small (welcome < 65536 bytes)
    const h = len === 126 ? 4 : 2;
    if (len === 126) len = buf.readUInt16BE(i + 2);
    frames.push({ op: buf[i] & 0x0f, code: len >= 2 ? buf.readUInt16BE(i + h) : null });
    i += h + len;
  }
  const closes = frames.filter((f) => f.op === 8);
  assert.deepEqual(closes.map((f) => f.code), [1003]);
});

test('a reserved opcode ends the connection with 1002', async () => {
  const r = await RawWs.open(chat.port, chat.token({ room: 'opcode' }));
  r.write(RawWs.frame(0x3, 'x'));
  await r.ended;
  assert.equal(r.closeCode(), 1002);
  const r2 = await RawWs.open(chat.port, chat.token({ room: 'opcode' }));
  r2.write(RawWs.frame(0xb, 'x')); // reserved control opcode
  await r2.ended;
  assert.equal(r2.closeCode(), 1002);
  await stillServes('opcode');
});

test('a control frame over 125 bytes ends the connection', async () => {
  const r = await RawWs.open(chat.port, chat.token({ room: 'ctl' }));
  r.write(RawWs.frame(0x9, 'p'.repeat(126))); // ping with a 16-bit length
  await r.ended;
  // lws alone drops the TCP connection without a close frame; the daemon sends 1002 first.
  // Either way it must not answer with a pong.
  assert.ok(!r.frames.some((f) => f.op === 0xa), 'no pong for an illegal ping');
  assert.equal(r.closeCode(), 1002);
  // a fragmented control frame is illegal too
  const r2 = await RawWs.open(chat.port, chat.token({ room: 'ctl' }));
  r2.write(RawWs.frame(0x9, 'p', { fin: false }));
  await r2.ended;
  assert.equal(r2.closeCode(), 1002);
  // RSV bits without a negotiated extension
  const r3 = await RawWs.open(chat.port, chat.token({ room: 'ctl' }));
  r3.write(RawWs.frame(1, msg('rsv'), { rsv: 0x40 }));
  await r3.ended;
  assert.equal(r3.closeCode(), 1002);
  await stillServes('ctl');
});

test('a handshake cut in half is dropped after CHAT_HANDSHAKE_TIMEOUT, others unaffected', async () => {
  const s = connect(chat.port, '127.0.0.1');
  s.on('error', () => {});
  const chunks = [];
  s.on('data', (b) => chunks.push(b));
  const ended = new Promise((res) => s.on('close', res));
  await new Promise((res) => s.once('connect', res));
  s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${chat.token()}\r\nUpgrade: webs`);
  await stillServes('half'); // the half-open handshake does not block anyone
  await ended; // the daemon closes it (the test would time out otherwise)
  assert.ok(!Buffer.concat(chunks).toString().includes('101'), 'never upgraded');
});

test('an oversized request head is refused before authentication', async () => {
  const r = await rawRequest(chat.port,
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Junk: ${'j'.repeat(20000)}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
  assert.ok(r.status === 0 || r.status >= 400, `status ${r.status}`);
  assert.doesNotMatch(r.raw, /101 Switching/);
  assert.equal((await httpGet(chat.adminPort, '/healthz')).status, 200);
});

test('garbage instead of HTTP is dropped', async () => {
  const r = await rawRequest(chat.port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0, 0, 0, 0, 0, 0, 0]).toString('latin1') + '\r\n\r\n');
  assert.doesNotMatch(r.raw, /101 Switching/);
  await stillServes('garbage');
});
