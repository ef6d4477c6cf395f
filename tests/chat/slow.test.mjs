// A client that stops reading while others chat is disconnected once it lags the whole
// room ring (CHAT_RING_SIZE); the others keep receiving and the daemon's memory stays
// bounded. Then: idle connections are pinged and dead ones dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uidOf } from '../lib/token.mjs';
import { readFileSync } from 'node:fs';
import { startChat, Client, RawWs, metrics, until, sleep, ASAN, T } from './lib.mjs';

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

test('a client that stops reading is culled, the others keep receiving, memory stays bounded', async (t) => {
  const chat = await startChat({
    CHAT_RATE_PER_SEC: '100000', CHAT_RATE_BURST: '100000', CHAT_RING_SIZE: '128', CHAT_ROOM_BACKLOG_FRAMES: '256',
    // the archive holds one batch of messages at a time (CHAT_ARCHIVE_BATCH): keep it small,
    // so the RSS below measures the room's ring
    CHAT_ARCHIVE_BATCH: '20',
    // keep ASan's freed-memory quarantine small so VmRSS reflects live memory
    ASAN_OPTIONS: 'detect_leaks=1:quarantine_size_mb=8',
  });
  t.after(() => chat.d.stop());
  const open = (sub) => Client.open(chat.url(chat.token({ sub, name: sub, room: 'slow' })));
  const slow = await open('slow@x.org');
  const fast = await open('fast@x.org');
  const sender = await open('sender@x.org');
  slow.ws._socket.pause(); // stop reading: the kernel buffers fill, then the ring tail lags

  const text = 'y'.repeat(4000);
  const BATCH = 50;
  const rss0 = rssKiB(chat.d.pid);
  let sent = 0;
  let culledAt = 0;
  // keep chatting until the slow client was culled, then as much again (and at least 23 MiB, 57 MiB under ASan
  // through the daemon), pacing on the fast reader so it never lags itself
  while (!culledAt || sent < Math.max(2 * culledAt, ASAN ? 15000 : 6000)) {
    for (let i = 0; i < BATCH; i++) sender.send({ type: 'message', text, client_id: String(sent + i) });
    sent += BATCH;
    await fast.next((f) => f.type === 'message' && f.client_id === String(sent - 1));
    if (!culledAt && (await metrics(chat.port)).chat_slow_clients_dropped_total >= 1) culledAt = sent;
    assert.ok(sent < 40000, 'the slow client was never culled');
  }
  const rss1 = rssKiB(chat.d.pid);
  const m = await metrics(chat.port);
  assert.equal(m.chat_slow_clients_dropped_total, 1);
  assert.equal(m.chat_connections, 2);
  // everyone else got everything, in order
  for (const c of [fast, sender]) {
    const ids = c.of('message').map((f) => Number(f.client_id));
    assert.equal(ids.length, sent);
    assert.deepEqual(ids, Array.from({ length: sent }, (_, i) => i));
  }
  // the daemon held at most the ring, not the backlog of ~sent x 4 KB for the slow reader
  const grewMiB = (rss1 - rss0) / 1024;
  const sentMiB = (sent * 4000) / 2 ** 20;
  t.diagnostic(`sent ${sent} messages (${sentMiB.toFixed(0)} MiB), culled after ${culledAt}, RSS ${rss0} -> ${rss1} KiB`);
  assert.ok(grewMiB < (ASAN ? 32 : 8), `RSS grew by ${grewMiB.toFixed(1)} MiB`);
  assert.ok(grewMiB < sentMiB / 2);
  // the others saw the culled user leave
  await fast.next((f) => f.type === 'leave' && f.user.id === uidOf('slow@x.org'));
  // once it reads again, the slow client finds its stream ended, with a gap
  slow.ws._socket.resume();
  await slow.closed;
  assert.ok(slow.of('message').length < sent);
  await Promise.all([fast.close(), sender.close()]);
});

test('idle connections are pinged; a peer that never answers is dropped, a live one stays', async (t) => {
  const chat = await startChat({ CHAT_PING_INTERVAL: '1', CHAT_IDLE_TIMEOUT: '3' });
  t.after(() => chat.d.stop());
  const live = await Client.open(chat.url(chat.token({ sub: 'live@x.org', room: 'idle' })));
  const dead = await RawWs.open(chat.port, chat.token({ sub: 'dead@x.org', room: 'idle' }));
  // the raw socket reads but never answers pings: it must be dropped
  await dead.ended;
  assert.ok(dead.frames.some((f) => f.op === 0x9), 'the daemon pinged');
  await live.next((f) => f.type === 'leave' && f.user.id === uidOf('dead@x.org'));
  // the ws client answered every ping and is still usable
  live.send({ type: 'message', text: 'alive' });
  assert.equal((await live.next((f) => f.type === 'message')).text, 'alive');
  await live.close();
});

test('any input keeps a connection: a chatting client that never pongs stays; one that stops answering pings is dropped', async (t) => {
  const chat = await startChat({ CHAT_PING_INTERVAL: '1', CHAT_IDLE_TIMEOUT: '3' });
  t.after(() => chat.d.stop());
  const watcher = await Client.open(chat.url(chat.token({ sub: 'w@x.org', room: 'live' })));
  const chatty = await RawWs.open(chat.port, chat.token({ sub: 'chatty@x.org', room: 'live' }));
  const ponger = await RawWs.open(chat.port, chat.token({ sub: 'ponger@x.org', room: 'live' }));
  const gone = new Set();
  for (const [name, r] of [['chatty', chatty], ['ponger', ponger]]) r.ended.then(() => gone.add(name));
  // the ponger answers each ping with a pong (nothing else) while `answering`
  let answering = true;
  let answered = 0;
  ponger.sock.on('data', () => {
    const pings = ponger.frames.filter((f) => f.op === 0x9).length;
    for (; answering && answered < pings; answered++) ponger.write(RawWs.frame(0xa, ''));
  });
  // more than twice CHAT_IDLE_TIMEOUT: the chatty one sends messages and never pongs
  for (let i = 0; i < 16; i++) {
    chatty.write(RawWs.frame(0x1, JSON.stringify({ type: 'message', text: `m${i}` })));
    await sleep(500);
  }
  assert.deepEqual([...gone], [], 'both are still connected');
  assert.ok(answered >= 2, `the quiet one was pinged and answered (${answered})`);
  assert.equal((await watcher.next((f) => f.type === 'message' && f.text === 'm15')).user.id, uidOf('chatty@x.org'));
  // the ponger stops answering: it is dropped, the chatty one (still chatting) stays
  answering = false;
  let n = 0;
  const talk = setInterval(() => chatty.write(RawWs.frame(0x1, JSON.stringify({ type: 'message', text: `k${n++}` }))), 500);
  try {
    await ponger.ended;
    await watcher.next((f) => f.type === 'leave' && f.user.id === uidOf('ponger@x.org'));
  } finally {
    clearInterval(talk);
  }
  chatty.write(RawWs.frame(0x1, JSON.stringify({ type: 'message', text: 'still here' })));
  await watcher.next((f) => f.type === 'message' && f.text === 'still here');
  assert.ok(!gone.has('chatty'));
  const m = await metrics(chat.port);
  assert.equal(m.chat_idle_dropped_total, 1);
  chatty.sock.destroy();
  await watcher.close();
});
