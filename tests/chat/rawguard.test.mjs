// The frame guard (chat/src/rawguard.c) on the daemon's own port: request heads that
// libwebsockets 4.1.6 reads differently from the way they look must not let an unmasked
// frame through. Issue 9's example: an empty line written "\r\r\n", which lws takes for the
// start of a header name (and reads on, past line ends, to the next ':'), while the old
// guard took it for the end of the head and the bytes after it for a frame of ~2^63 bytes,
// so it stopped checking and the unmasked frame that followed the real end was broadcast.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { startChat, Client, RawWs, T } from './lib.mjs';

let chat;
before(async () => { chat = await startChat(); });
after(async () => { await chat.d.stop(); });

// bytes that look like a frame header announcing 2^63 - 1 bytes
const HUGE = Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

function head(token, hostile) {
  return Buffer.concat([
    Buffer.from('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
      `Authorization: Bearer ${token}\r\n`, 'latin1'),
    hostile,
  ]);
}

// Sends the hostile head; if the daemon answers 101, sends an unmasked message. Resolves
// with what came back and how the connection ended.
function attack(bytes, text) {
  return new Promise((res) => {
    const s = connect(chat.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const t = setTimeout(() => s.destroy(), T);
    s.on('error', () => {});
    s.on('connect', () => s.write(bytes));
    s.on('data', (b) => {
      buf = Buffer.concat([buf, b]);
      const i = buf.indexOf('\r\n\r\n');
      if (!upgraded && i >= 0 && buf.subarray(0, 12).toString() === 'HTTP/1.1 101') {
        upgraded = true;
        buf = buf.subarray(i + 4);
        s.write(RawWs.frame(1, JSON.stringify({ type: 'message', text }), { mask: false }));
      }
    });
    s.on('close', () => {
      clearTimeout(t);
      // a close frame from the server: 0x88, length, code
      const code = upgraded && buf.length >= 4 && buf[0] === 0x88 ? buf.readUInt16BE(2) : null;
      res({ upgraded, code });
    });
  });
}

const cases = [
  ['issue 9: "\\r\\r\\n" line, then frame-like bytes', Buffer.concat([
    Buffer.from('\r\r\n', 'latin1'), HUGE, Buffer.from('X-Y: z\r\n\r\n', 'latin1')])],
  ['a name lws extends past the line end ("Hos:")', Buffer.concat([
    Buffer.from('Hos: x\r\n\r\n', 'latin1'), HUGE, Buffer.from('Z: 1\r\n\r\n', 'latin1')])],
  ['a folded line (obs-fold) before the empty line', Buffer.concat([
    Buffer.from('X-A: a\r\n \r\n\r\n', 'latin1'), HUGE, Buffer.from('Z: 1\r\n\r\n', 'latin1')])],
  ['CR-only line ends', Buffer.concat([
    Buffer.from('X-A: a\r\r', 'latin1'), HUGE, Buffer.from('\r\nZ-Q: 1\r\n\r\n', 'latin1')])],
];

for (const [name, hostile] of cases) {
  test(`${name}: the unmasked frame is not broadcast and the sender is cut off`, async () => {
    const room = `rg${randomBytes(3).toString('hex')}`;
    const watcher = await Client.open(chat.url(chat.token({ sub: 'w@x.org', room })));
    const text = `UNMASKED-${room}`;
    const r = await attack(head(chat.token({ sub: 'evil@x.org', room }), hostile), text);
    // a marker from the watcher after it proves the unmasked text never reached the room
    watcher.send({ type: 'message', text: 'marker' });
    await watcher.next((f) => f.type === 'message' && f.text === 'marker');
    assert.ok(!watcher.of('message').some((m) => m.text === text), 'unmasked frame broadcast');
    // the connection ended: refused before the upgrade, or closed with 1002 after it
    if (r.upgraded) assert.equal(r.code, 1002);
    // and the daemon still serves a normal client in that room
    const ok = await Client.open(chat.url(chat.token({ sub: 'ok@x.org', room })));
    ok.send({ type: 'message', text: 'still fine' });
    assert.equal((await ok.next((f) => f.type === 'message' && f.text === 'still fine')).text,
      'still fine');
    await ok.close();
    await watcher.close();
  });
}

test('a refused head is logged with the rule it broke', async () => {
  await attack(head(chat.token({ sub: 'evil@x.org', room: 'rglog' }), Buffer.from('\r\r\n\r\n')), 'x');
  assert.match(chat.d.stderr, /connection refused before the upgrade: CR not followed by LF/);
});
