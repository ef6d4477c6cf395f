// Rooms, fan-out, ordering and presence against the real parley-chat binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { uidOf } from '../lib/token.mjs';
import { startChat, Client, metrics, until, T } from './lib.mjs';

let chat;
before(async () => {
  // generous rate limit and ring: these tests send fast on purpose
  chat = await startChat({ CHAT_RATE_PER_SEC: '10000', CHAT_RATE_BURST: '10000', CHAT_RING_SIZE: '4096' });
});
after(async () => { await chat.d.stop(); });

const open = (sub, room, name = sub.split('@')[0]) =>
  Client.open(chat.url(chat.token({ sub, name, room })));

test('a message reaches everyone in its room, sender included, and nobody outside it', async () => {
  const a = [await open('a1@x.org', 'room-a'), await open('a2@x.org', 'room-a'), await open('a3@x.org', 'room-a')];
  const b = [await open('b1@x.org', 'room-b'), await open('b2@x.org', 'room-b')];
  a[1].send({ type: 'message', text: 'hello room a', client_id: 'c-1' });
  b[0].send({ type: 'message', text: 'hello room b' });
  for (const c of a) {
    const m = await c.next((f) => f.type === 'message');
    assert.equal(m.text, 'hello room a');
    assert.equal(m.room, 'room-a');
    assert.equal(m.client_id, 'c-1');
    assert.deepEqual(m.user, { id: uidOf('a2@x.org'), name: 'a2' });
    assert.match(m.id, /^\d+-\d+$/);
    assert.equal(typeof m.ts, 'number');
    assert.ok(Math.abs(m.ts - Date.now()) < 600000, 'ts is unix milliseconds');
  }
  for (const c of b) {
    const m = await c.next((f) => f.type === 'message');
    assert.equal(m.text, 'hello room b');
    assert.equal(m.client_id, null);
  }
  // a marker after the cross-room messages: once it arrived, nothing else can be in flight
  a[0].send({ type: 'message', text: 'marker a' });
  b[1].send({ type: 'message', text: 'marker b' });
  for (const c of a) await c.next((f) => f.text === 'marker a');
  for (const c of b) await c.next((f) => f.text === 'marker b');
  for (const c of a) assert.ok(!c.of('message').some((m) => m.room !== 'room-a' || m.text.includes(' b')));
  for (const c of b) assert.ok(!c.of('message').some((m) => m.room !== 'room-b' || m.text.includes(' a')));
  // text is delivered verbatim (the browser escapes it, the daemon must not mangle it)
  const tricky = '<script>alert("x")</script> & \\ "quotes" é 😀 \n newline';
  a[2].send({ type: 'message', text: tricky });
  assert.equal((await a[0].next((f) => f.type === 'message' && f.user.id === uidOf('a3@x.org'))).text, tricky);
  await Promise.all([...a, ...b].map((c) => c.close()));
});

test('5 senders x 200 messages arrive in the same order at every client', async () => {
  const senders = await Promise.all([1, 2, 3, 4, 5].map((i) => open(`s${i}@x.org`, 'order')));
  const watchers = await Promise.all([1, 2, 3].map((i) => open(`w${i}@x.org`, 'order')));
  const all = [...senders, ...watchers];
  const N = 200;
  // all five send concurrently, interleaving on the wire
  await Promise.all(senders.map(async (s, i) => {
    for (let k = 0; k < N; k++) s.send({ type: 'message', text: `s${i}-${k}`, client_id: `${i}-${k}` });
  }));
  await Promise.all(all.map((c) => until(() => c.of('message').length >= 5 * N, T * 2, 'all messages')));
  const order0 = all[0].of('message').map((m) => `${m.id}:${m.text}`);
  assert.equal(order0.length, 5 * N);
  for (const c of all) assert.deepEqual(c.of('message').map((m) => `${m.id}:${m.text}`), order0);
  // ids increase in delivery order, and each sender's own messages keep their order
  const ids = all[0].of('message').map((m) => Number(m.id.split('-')[1]));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1]);
  for (let i = 0; i < 5; i++) {
    const mine = all[0].of('message').filter((m) => m.text.startsWith(`s${i}-`)).map((m) => m.text);
    assert.deepEqual(mine, Array.from({ length: N }, (_, k) => `s${i}-${k}`));
  }
  await Promise.all(all.map((c) => c.close()));
});

test('presence: welcome lists members, join/leave once per user, tabs are one member', async () => {
  const ann = await open('ann@x.org', 'presence', 'Ann');
  assert.deepEqual(ann.frames[0].members, [{ id: uidOf('ann@x.org'), name: 'Ann' }]);
  assert.deepEqual(ann.frames[0].you, { id: uidOf('ann@x.org'), email: 'ann@x.org', name: 'Ann' });
  assert.equal(ann.frames[0].room, 'presence');

  const bob1 = await open('bob@x.org', 'presence', 'Bob');
  assert.deepEqual(bob1.frames[0].members.map((m) => m.id).sort(), [uidOf('ann@x.org'), uidOf('bob@x.org')].sort());
  assert.deepEqual((await ann.next((f) => f.type === 'join')).user, { id: uidOf('bob@x.org'), name: 'Bob' });

  // second tab of Bob: welcome lists Bob once, nobody gets a second join
  const bob2 = await open('bob@x.org', 'presence', 'Bob');
  assert.equal(bob2.frames[0].members.filter((m) => m.id === uidOf('bob@x.org')).length, 1);
  // typing goes to the others (Ann and Bob's other tab), not back to the sender
  bob2.send({ type: 'typing' });
  assert.deepEqual((await ann.next((f) => f.type === 'typing')).user, { id: uidOf('bob@x.org'), name: 'Bob' });
  await bob1.next((f) => f.type === 'typing');

  // closing one tab: no leave; a marker message proves nothing else was pending
  await bob1.close();
  ann.send({ type: 'message', text: 'after tab 1 closed' });
  await ann.next((f) => f.text === 'after tab 1 closed');
  assert.equal(ann.of('join').length, 1);
  assert.equal(ann.of('leave').length, 0);
  assert.equal(bob2.of('typing').length, 0, 'the sender does not get its own typing');

  // last tab closes: one leave
  await bob2.close();
  assert.deepEqual((await ann.next((f) => f.type === 'leave')).user, { id: uidOf('bob@x.org'), name: 'Bob' });
  const carl = await open('carl@x.org', 'presence', 'Carl');
  assert.deepEqual(carl.frames[0].members.map((m) => m.id).sort(), [uidOf('ann@x.org'), uidOf('carl@x.org')].sort());
  await ann.next((f) => f.type === 'join' && f.user.id === uidOf('carl@x.org'));
  assert.equal(ann.of('leave').length, 1);
  await Promise.all([ann.close(), carl.close()]);
});

test('/metrics counts connections, rooms and messages', async () => {
  const before = await metrics(chat.port);
  const x = await open('m1@x.org', 'metrics-room');
  const y = await open('m2@x.org', 'metrics-room');
  const m0 = await metrics(chat.port);
  assert.equal(m0.chat_connections, before.chat_connections + 2);
  assert.equal(m0.chat_rooms, before.chat_rooms + 1);
  x.send({ type: 'message', text: 'count me' });
  await y.next((f) => f.type === 'message');
  await x.next((f) => f.type === 'message');
  const m1 = await metrics(chat.port);
  assert.equal(m1.chat_messages_received_total, before.chat_messages_received_total + 1);
  assert.equal(m1.chat_messages_delivered_total, before.chat_messages_delivered_total + 2);
  await Promise.all([x.close(), y.close()]);
  await until(async () => (await metrics(chat.port)).chat_rooms === before.chat_rooms, T, 'room freed');
  assert.equal((await metrics(chat.port)).chat_connections, before.chat_connections);
});
