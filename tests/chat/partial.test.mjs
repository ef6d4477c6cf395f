// Partial messages have a deadline and a per-user share of the reassembly budget: the
// issue's example scaled down (many connections of one token each announcing a ~65,000-byte
// frame and trickling a byte at a time) no longer keeps everyone else's long messages out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChat, Client, RawWs, metrics, until, sleep, T } from './lib.mjs';

test('a trickler holds at most its share, others\' long messages go through, it is cut at the deadline', async (t) => {
  const chat = await startChat({
    CHAT_REASSEMBLY_BUDGET: '262144', CHAT_REASSEMBLY_PER_USER: '131072', CHAT_PARTIAL_TIMEOUT_MS: '4000',
    CHAT_MAX_CONNS_PER_USER: '16', CHAT_MAX_CONNS_PER_USER_ROOM: '16',
  });
  t.after(() => chat.d.stop());
  const watcher = await Client.open(chat.url(chat.token({ sub: 'w@x.org', room: 'trickle' })));
  const tok = chat.token({ sub: 'trickler@x.org', room: 'trickle' });
  // 16 connections of one token, each announcing a 65,000-byte frame and sending its first bytes
  const huge = RawWs.frame(0x1, JSON.stringify({ type: 'message', text: 'x'.repeat(64970) }));
  const tr = [];
  for (let i = 0; i < 16; i++) tr.push(await RawWs.open(chat.port, tok));
  for (const s of tr) s.write(huge.subarray(0, 20));
  // the user's share (131072 bytes) holds two such buffers; the others are closed 1008 at once
  await until(() => tr.filter((s) => s.closeCode() === 1008).length === 14, T, '14 closes');
  const held = tr.filter((s) => s.closeCode() === null);
  assert.equal(held.length, 2);
  const m0 = await metrics(chat.port);
  assert.ok(m0.chat_reassembly_bytes <= 131072, `held ${m0.chat_reassembly_bytes}`);
  // keep trickling a byte every 200 ms on the two that are left
  let off = 20;
  const drip = setInterval(() => { for (const s of held) s.write(huge.subarray(off, off + 1)); off++; }, 200);
  t.after(() => clearInterval(drip));
  // meanwhile, two other users' long messages (sent in pieces) are delivered
  for (const who of ['a', 'b']) {
    const s = await RawWs.open(chat.port, chat.token({ sub: `${who}@x.org`, room: 'trickle' }));
    const f = RawWs.frame(0x1, JSON.stringify({ type: 'message', client_id: who, text: '€'.repeat(4000) }));
    s.write(f.subarray(0, 5000));
    await sleep(100);
    s.write(f.subarray(5000));
    const m = await watcher.next((x) => x.type === 'message' && x.client_id === who);
    assert.equal(m.text, '€'.repeat(4000));
    assert.equal(s.closeCode(), null);
    s.sock.destroy();
  }
  // the trickler is still held (its deadline is later), then cut at the deadline (plus at most
  // a sweep tick), its budget released
  assert.deepEqual(held.map((s) => s.closeCode()), [null, null]);
  const t0 = Date.now();
  await Promise.all(held.map((s) => s.ended));
  t.diagnostic(`tricklers closed ${Date.now() - t0} ms after the long messages`);
  for (const s of held) assert.equal(s.closeCode(), 1008);
  clearInterval(drip);
  assert.match(chat.d.stderr, /reason=message not completed in time/);
  assert.match(chat.d.stderr, /reason=too many partial messages of this user/);
  const m = await metrics(chat.port);
  assert.equal(m.chat_reassembly_bytes, 0);
  assert.equal(m.chat_partial_timeouts_total, 2);
  await watcher.close();
});

test('a slow but complete fragmented message within the deadline is delivered', async (t) => {
  const chat = await startChat({ CHAT_PARTIAL_TIMEOUT_MS: '3000' });
  t.after(() => chat.d.stop());
  const watcher = await Client.open(chat.url(chat.token({ sub: 'w@x.org', room: 'frag' })));
  const s = await RawWs.open(chat.port, chat.token({ sub: 'f@x.org', room: 'frag' }));
  const text = JSON.stringify({ type: 'message', client_id: 'frag', text: 'z'.repeat(3000) });
  // three fragments (RFC 6455 §5.4), 300 ms apart
  s.write(RawWs.frame(0x1, text.slice(0, 1000), { fin: false }));
  await sleep(300);
  s.write(RawWs.frame(0x0, text.slice(1000, 2000), { fin: false }));
  await sleep(300);
  s.write(RawWs.frame(0x0, text.slice(2000)));
  assert.equal((await watcher.next((f) => f.client_id === 'frag')).text.length, 3000);
  assert.equal(s.closeCode(), null);
  s.sock.destroy();
  await watcher.close();
});
