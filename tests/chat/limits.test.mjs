// Frame limits: size (1009), UTF-8 (1007), binary (1003), bad requests answered with an
// error frame on a connection that stays usable, rate limiting (rate_limited, then 1008), the
// shared reassembly budget (1013).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { uidOf } from '../lib/token.mjs';
import { startChat, Client, RawWs, metrics, until, T } from './lib.mjs';

let chat;
before(async () => {
  chat = await startChat({ CHAT_RATE_PER_SEC: '1000', CHAT_RATE_BURST: '1000' });
});
after(async () => { await chat.d.stop(); });

const open = (sub, room = 'limits') => Client.open(chat.url(chat.token({ sub, name: sub, room })));

test('a 70 KiB frame closes with 1009 and others are unaffected', async () => {
  const a = await open('big@x.org');
  const b = await open('peer@x.org');
  a.send({ type: 'message', text: 'x'.repeat(70 * 1024) });
  assert.equal((await a.closed).code, 1009);
  b.send({ type: 'message', text: 'still here' });
  assert.equal((await b.next((f) => f.type === 'message')).text, 'still here');
  assert.equal(b.of('message').length, 1, 'the oversized message was not broadcast');
  await b.close();
});

test('fragments are reassembled up to the cap; over it is 1009', async () => {
  const a = await open('frag@x.org');
  const text = 'é'.repeat(3000); // 6000 bytes, sent in 3 fragments
  const json = JSON.stringify({ type: 'message', text });
  const cut = [0, 2000, 4000, json.length];
  for (let i = 0; i < 3; i++) a.ws.send(json.slice(cut[i], cut[i + 1]), { fin: i === 2 });
  assert.equal((await a.next((f) => f.type === 'message')).text, text);
  // 40 fragments of 2 KiB = 80 KiB, each frame small: the total still counts
  for (let i = 0; i < 40; i++) a.ws.send('x'.repeat(2048), { fin: i === 39 });
  assert.equal((await a.closed).code, 1009);
});

test('invalid UTF-8 in a text frame closes with 1007', async () => {
  const a = await open('utf8@x.org');
  a.ws.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
  assert.equal((await a.closed).code, 1007);
  const b = await open('utf8b@x.org');
  // an overlong encoding and a lone surrogate (CESU) are invalid too
  b.ws.send(Buffer.from([0xed, 0xa0, 0x80]), { binary: false });
  assert.equal((await b.closed).code, 1007);
});

test('a binary frame closes with 1003', async () => {
  const a = await open('bin@x.org');
  a.ws.send(Buffer.from('{"type":"message","text":"hi"}'), { binary: true });
  assert.equal((await a.closed).code, 1003);
});

test('bad JSON, unknown type, empty or too long text: an error frame, and the connection stays usable', async () => {
  const a = await open('bad@x.org');
  const cases = [
    ['not json', 'bad_request'],
    ['[1,2,3]', 'bad_request'],
    ['{"type":"dance"}', 'bad_request'],
    ['{"text":"no type"}', 'bad_request'],
    ['{"type":"message"}', 'bad_request'],
    ['{"type":"message","text":""}', 'bad_request'],
    ['{"type":"message","text":42}', 'bad_request'],
    [JSON.stringify({ type: 'message', text: 'a', client_id: 'c'.repeat(65) }), 'bad_request'],
    [JSON.stringify({ type: 'message', text: '€'.repeat(4001) }), 'too_long'],
  ];
  for (const [frame, code] of cases) {
    a.send(frame);
    const e = await a.next((f) => f.type === 'error');
    assert.equal(e.code, code, frame.slice(0, 40));
    assert.equal(typeof e.message, 'string');
  }
  // exactly 4000 characters (12000 bytes) is accepted
  a.send({ type: 'message', text: '€'.repeat(4000), client_id: 'c'.repeat(64) });
  const m = await a.next((f) => f.type === 'message');
  assert.equal([...m.text].length, 4000);
  assert.equal(a.of('message').length, 1, 'no bad frame was broadcast');
  await a.close();
});

test('a flood gets rate_limited, and if it goes on, close 1008', async (t) => {
  const slow = await startChat({ CHAT_RATE_PER_SEC: '2', CHAT_RATE_BURST: '5', CHAT_RATE_STRIKES: '10' });
  t.after(() => slow.d.stop());
  const open2 = (sub) => Client.open(slow.url(slow.token({ sub, name: sub, room: 'flood' })));
  // just over the burst: an error, not a close
  const a = await open2('polite@x.org');
  for (let i = 0; i < 6; i++) a.send({ type: 'message', text: `m${i}` });
  assert.equal((await a.next((f) => f.type === 'error')).code, 'rate_limited');
  await until(() => a.of('message').length === 5, T, 'burst delivered');
  // once tokens refill, the same connection can talk again
  let ok = false;
  for (let i = 0; !ok && i < 200; i++) {
    a.send({ type: 'message', text: `retry ${i}` });
    const f = await a.next((x) => x.type === 'error' || (x.type === 'message' && x.text === `retry ${i}`));
    ok = f.type === 'message';
    if (!ok) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ok, 'the connection is usable after the rate limit');
  // a real flood: close 1008 after CHAT_RATE_STRIKES refused frames
  const f = await open2('flood@x.org');
  for (let i = 0; i < 200; i++) f.send({ type: 'message', text: `flood ${i}` });
  assert.equal((await f.closed).code, 1008);
  assert.ok(f.of('error').some((e) => e.code === 'rate_limited'));
  assert.ok(f.of('message').length <= 5 + 2, 'at most the burst (plus refill) was broadcast');
  assert.ok((await metrics(slow.port)).chat_rate_limited_total >= 10);
  await a.close();
});

test('partial messages share CHAT_REASSEMBLY_BUDGET: over it a client gets 1013, the others are unaffected', async (t) => {
  const small = await startChat({ CHAT_MAX_MESSAGE_BYTES: '20000', CHAT_REASSEMBLY_BUDGET: '30000' });
  t.after(() => small.d.stop());
  const tok = (sub) => small.token({ sub, name: sub, room: 'budget' });
  const watcher = await Client.open(small.url(tok('w@x.org')));
  // a text frame of about 11.7 KB (3900 three-byte characters), written in two halves: between
  // them the daemon holds a reassembly buffer for the whole announced frame
  const big = (cid) => RawWs.frame(0x1, JSON.stringify({ type: 'message', client_id: cid, text: '€'.repeat(3900) }));
  const half = (f) => [f.subarray(0, 4000), f.subarray(4000)];
  const held = async (bytes) => until(async () => (await metrics(small.port)).chat_reassembly_bytes >= bytes, T, `${bytes} bytes held`);

  const a = await RawWs.open(small.port, tok('a@x.org'));
  const b = await RawWs.open(small.port, tok('b@x.org'));
  const c = await RawWs.open(small.port, tok('c@x.org'));
  const [a1, a2] = half(big('a'));
  const [b1, b2] = half(big('b'));
  const [c1] = half(big('c'));
  a.write(a1);
  await held(11000);
  b.write(b1);
  await held(22000);
  // a third partial message does not fit in 30000 bytes: try again later
  c.write(c1);
  await c.ended;
  assert.equal(c.closeCode(), 1013);
  await watcher.next((f) => f.type === 'leave' && f.user.id === uidOf('c@x.org'));
  // the two others complete their messages, which are delivered whole
  a.write(a2);
  b.write(b2);
  for (const cid of ['a', 'b']) {
    const m = await watcher.next((f) => f.type === 'message' && f.client_id === cid);
    assert.equal(m.text, '€'.repeat(3900));
  }
  // the budget is free again: a newcomer's partial message fits
  await until(async () => (await metrics(small.port)).chat_reassembly_bytes === 0, T, 'budget released');
  const d = await RawWs.open(small.port, tok('d@x.org'));
  const [d1, d2] = half(big('d'));
  d.write(d1);
  await held(11000);
  d.write(d2);
  assert.equal((await watcher.next((f) => f.type === 'message' && f.client_id === 'd')).user.id, uidOf('d@x.org'));
  const m = await metrics(small.port);
  assert.equal(m.chat_reassembly_refused_total, 1);
  assert.equal(m.chat_reassembly_bytes, 0);
  for (const r of [a, b, d]) r.sock.destroy();
  await watcher.close();
});
