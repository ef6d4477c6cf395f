// SIGTERM: every client gets a close frame with 1001 (going away), then the daemon exits 0
// (under ASan that also means LeakSanitizer found nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChat, Client } from './lib.mjs';

test('SIGTERM closes every client with 1001 and exits 0', async () => {
  const chat = await startChat();
  const clients = [];
  for (const room of ['room-one', 'room-two']) {
    for (const sub of ['a@x.org', 'b@x.org', 'c@x.org']) {
      clients.push(await Client.open(chat.url(chat.token({ sub, room }))));
    }
  }
  // some traffic in flight, and a half-received fragmented message
  clients[0].send({ type: 'message', text: 'before shutdown' });
  await clients[1].next((f) => f.type === 'message');
  clients[3].ws.send('{"type":"message",', { fin: false });
  const r = await chat.d.stop('SIGTERM');
  assert.deepEqual(r, { code: 0, signal: null });
  const closes = await Promise.all(clients.map((c) => c.closed));
  for (const c of closes) assert.equal(c.code, 1001);
  assert.match(chat.d.stderr, /shutting down: closing 6 connections/);
  assert.match(chat.d.stderr, /reason=server shutdown/);
  assert.match(chat.d.stderr, /stopped/);
});

test('SIGINT does the same, and a daemon without clients exits at once', async () => {
  const chat = await startChat();
  const c = await Client.open(chat.url(chat.token()));
  assert.deepEqual(await chat.d.stop('SIGINT'), { code: 0, signal: null });
  assert.equal((await c.closed).code, 1001);
  const idle = await startChat();
  assert.deepEqual(await idle.d.stop('SIGTERM'), { code: 0, signal: null });
});

test('a big room shutting down: the leaves do not make the daemon drop closing clients as slow', async () => {
  // more users than the ring holds: every closed tab broadcasts a leave into the room's ring,
  // and the clients still waiting for their close used to be culled as "too slow" once it
  // wrapped (and counted in chat_slow_clients_dropped_total)
  const chat = await startChat({ CHAT_RING_SIZE: '8' });
  const clients = [];
  for (let i = 0; i < 30; i++) {
    clients.push(await Client.open(chat.url(chat.token({ sub: `u${i}@x.org`, room: 'big-room' }))));
  }
  assert.deepEqual(await chat.d.stop('SIGTERM'), { code: 0, signal: null });
  for (const c of await Promise.all(clients.map((x) => x.closed))) assert.equal(c.code, 1001);
  assert.doesNotMatch(chat.d.stderr, /too slow/);
  assert.equal((chat.d.stderr.match(/reason=server shutdown/g) || []).length, 30);
});
