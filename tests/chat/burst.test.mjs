// Healthy readers are never dropped for a burst the server has not yet had a chance to write:
// 200 users each sending 3 messages at the same moment, and a join burst of 1000, reach
// everyone (a read-only observer included) in one order. A reader that really stops reading
// is still dropped, for its own socket staying full past CHAT_SLOW_GRACE_MS. A crowd that
// joins at once, each reading its history, is a long Redis queue, not a dead Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChat, Client, metrics, until, ASAN } from './lib.mjs';
import { uidOf } from '../lib/token.mjs';

const LONG = ASAN ? 240000 : 120000;

test('200 users x 3 messages at once: nobody is dropped, everyone gets all 600 in one order', { timeout: LONG }, async (t) => {
  const chat = await startChat(); // the default ring (512 frames) and rate limit (burst 20)
  t.after(() => chat.d.stop());
  const url = (sub) => chat.url(chat.token({ sub, name: sub.split('@')[0], room: 'burst' }));
  const observer = await Client.open(url('observer@x.org'));
  const users = [];
  for (let i = 0; i < 200; i++) users.push(await Client.open(url(`u${i}@x.org`)));
  await observer.next((f) => f.type === 'join' && f.user.name === 'u199', LONG);
  // all 600 frames at the same moment: each user's 3 in one TCP segment, all sockets at once
  for (const u of users) u.ws._socket.cork();
  for (const [i, u] of users.entries()) for (let k = 0; k < 3; k++) u.send({ type: 'message', text: `${i}-${k}` });
  for (const u of users) u.ws._socket.uncork();
  const all = [observer, ...users];
  await Promise.all(all.map((c) => until(() => c.of('message').length >= 600 || c.ws.readyState !== 1, LONG, 'all 600')));
  const m = await metrics(chat.port);
  assert.equal(m.chat_slow_clients_dropped_total, 0);
  assert.equal(m.chat_connections, 201);
  const order = observer.of('message').map((f) => f.id);
  assert.equal(order.length, 600);
  for (const c of users) assert.deepEqual(c.of('message').map((f) => f.id), order);
  await Promise.all(all.map((c) => c.close()));
});

test('a join burst of 1000 connections in one room drops nobody', { timeout: LONG }, async (t) => {
  // all 1000 handshakes may be in flight at once (the default CHAT_MAX_PENDING_HANDSHAKES,
  // 64, refuses the rest: a capacity guard, not what this test is about)
  const chat = await startChat({ CHAT_MAX_PENDING_HANDSHAKES: '1100' });
  t.after(() => chat.d.stop());
  const url = (sub) => chat.url(chat.token({ sub, name: sub.split('@')[0], room: 'joins' }));
  const observer = await Client.open(url('observer@x.org'));
  const N = 1000;
  const clients = await Promise.all(Array.from({ length: N }, (_, i) => Client.open(url(`j${i}@x.org`))));
  await until(() => observer.of('join').length === N, LONG, `${N} joins`);
  // everyone is still there and hears a message
  clients[0].send({ type: 'message', text: 'after the burst', client_id: 'after' });
  await Promise.all([observer, ...clients].map((c) => c.next((f) => f.client_id === 'after', LONG)));
  const m = await metrics(chat.port);
  assert.equal(m.chat_slow_clients_dropped_total, 0);
  assert.equal(m.chat_connections, N + 1);
  assert.equal(observer.of('leave').length, 0);
  await Promise.all([observer, ...clients].map((c) => c.terminate()));
});

test('a crowd joining at once, each reading its history, is a long Redis queue, not an outage', { timeout: LONG }, async (t) => {
  // Found by the rate sweep: 1000 joins into rooms with history took longer than
  // CHAT_REDIS_TIMEOUT_MS to be answered in full on a busy machine; the daemon called the
  // oldest waiting command a timeout, dropped its Redis connection and closed most joiners
  // (1013). Here the timeout is short and every history read is large, so the queue takes far
  // longer than the timeout to drain, while Redis answers all along.
  const chat = await startChat({ CHAT_MAX_PENDING_HANDSHAKES: '1100', CHAT_REDIS_TIMEOUT_MS: '200',
    CHAT_RATE_PER_SEC: '100000', CHAT_RATE_BURST: '100000' });
  t.after(() => chat.d.stop());
  const url = (sub) => chat.url(chat.token({ sub, name: sub.split('@')[0], room: 'crowd' }));
  const seeder = await Client.open(url('seed@x.org'));
  const text = 'x'.repeat(3900);
  for (let i = 0; i < 50; i++) seeder.send({ type: 'message', text, client_id: `s${i}` });
  await until(() => seeder.of('message').length === 50, LONG, 'the 50 seed messages stored');
  // each reads ~200 KB of history: 60 MB (20 MB under ASan) through the one command connection
  const N = ASAN ? 100 : 300;
  const clients = await Promise.all(Array.from({ length: N }, (_, i) => Client.open(url(`c${i}@x.org`))));
  await Promise.all(clients.map((c) => c.next((f) => f.type === 'history', LONG)));
  for (const c of clients) {
    const h = c.of('history')[0];
    assert.equal(h.messages.length, 50, 'the whole latest page of history');
    assert.deepEqual(h.messages.map((m) => m.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(c.of('error').length, 0, JSON.stringify(c.of('error')[0]));
  }
  const m = await metrics(chat.port);
  assert.equal(m.chat_redis_timeouts_total, 0, 'a busy Redis connection is not a dead one');
  assert.equal(m.chat_connections, N + 1, 'nobody was closed');
  await Promise.all([seeder, ...clients].map((c) => c.terminate()));
});

test('a reader whose socket stays full past CHAT_SLOW_GRACE_MS is dropped; the others get everything', { timeout: LONG }, async (t) => {
  const chat = await startChat({ CHAT_SLOW_GRACE_MS: '1000', CHAT_RATE_PER_SEC: '100000', CHAT_RATE_BURST: '100000' });
  t.after(() => chat.d.stop());
  const url = (sub) => chat.url(chat.token({ sub, room: 'grace' }));
  const slow = await Client.open(url('slow@x.org'));
  const reader = await Client.open(url('reader@x.org'));
  const sender = await Client.open(url('sender@x.org'));
  slow.ws._socket.pause();
  const text = 'g'.repeat(4000);
  let sent = 0;
  // ~4 MB, far more than the slow client's socket buffers take, paced on the reader
  while (sent < 1000) {
    for (let i = 0; i < 50; i++) sender.send({ type: 'message', text, client_id: String(sent + i) });
    sent += 50;
    await reader.next((f) => f.type === 'message' && f.client_id === String(sent - 1));
  }
  await until(async () => (await metrics(chat.port)).chat_slow_clients_dropped_total === 1, LONG, 'the slow reader dropped');
  await reader.next((f) => f.type === 'leave' && f.user.id === uidOf('slow@x.org'));
  assert.match(chat.d.stderr, /reason=too slow: socket not writable for the grace period/);
  for (const c of [reader, sender]) assert.equal(c.of('message').length, sent);
  assert.equal((await metrics(chat.port)).chat_connections, 2);
  await Promise.all([reader.close(), sender.close()]);
});
