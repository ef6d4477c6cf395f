// Message ids a client can de-duplicate by: "<rid>-<seq>" with the room's Redis sequence, so
// never reused by a restarted daemon or by a room that emptied and came back; and error frames
// that name the refused message's client_id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChat, Client } from './lib.mjs';
import { startRedis } from '../lib/redis.mjs';
import { ridOf } from '../lib/token.mjs';

const ID = /^([1-9][0-9]*)-([1-9][0-9]*)$/;

async function say(chat, room, sub, texts) {
  const c = await Client.open(chat.url(chat.token({ sub, name: sub, room })));
  const ids = [];
  for (const text of texts) {
    c.send({ type: 'message', text, client_id: `cid-${text}` });
    const m = await c.next((f) => f.type === 'message' && f.text === text);
    assert.equal(m.id, `${m.id.split('-')[0]}-${m.seq}`, 'the id ends with the seq');
    ids.push(m.id);
  }
  await c.close();
  return ids;
}

test('ids are unique across daemon restarts and rooms that empty, and increase within a room', async () => {
  const redis = await startRedis({ aof: true });
  const first = await startChat({}, { redis });
  const a = await say(first, 'ids', 'ann@x.org', ['a1', 'a2', 'a3']);
  // the room emptied (its only client left): it is created anew for the next client
  const b = await say(first, 'ids', 'bob@x.org', ['b1', 'b2']);
  const other = await say(first, 'other-room', 'cy@x.org', ['c1']);
  await first.d.stop();
  const second = await startChat({}, { redis });
  const c = await say(second, 'ids', 'ann@x.org', ['a4', 'a5']);
  await second.d.stop();
  await redis.cleanup();

  const all = [...a, ...b, ...other, ...c];
  for (const id of all) assert.match(id, ID, 'an id is "<rid>-<seq>"');
  assert.equal(new Set(all).size, all.length, `no id is ever repeated: ${all.join(' ')}`);
  const seq = (id) => Number(ID.exec(id)[2]);
  const room = (id) => Number(ID.exec(id)[1]);
  const ids = [...a, ...b, ...c];
  assert.deepEqual(ids.map(seq), [1, 2, 3, 4, 5, 6, 7], 'one sequence per room, across restarts');
  for (const id of ids) assert.equal(room(id), ridOf('ids'));
  assert.equal(seq(other[0]), 1, 'another room has its own sequence');
});

test('an error refusing a message frame carries its client_id', async () => {
  const chat = await startChat({ CHAT_RATE_PER_SEC: '1', CHAT_RATE_BURST: '3', CHAT_RATE_STRIKES: '50' });
  try {
    const c = await Client.open(chat.url(chat.token({ sub: 'err@x.org', name: 'E', room: 'errs' })));
    c.send({ type: 'message', text: '', client_id: 'empty-1' });
    let e = await c.next((f) => f.type === 'error');
    assert.deepEqual([e.code, e.client_id], ['bad_request', 'empty-1']);
    c.send({ type: 'message', text: 'x'.repeat(4001), client_id: 'long-1' });
    e = await c.next((f) => f.type === 'error');
    assert.deepEqual([e.code, e.client_id], ['too_long', 'long-1']);
    // no readable client_id: no client_id in the error
    c.send({ type: 'message', text: '', client_id: 5 });
    e = await c.next((f) => f.type === 'error');
    assert.equal(e.code, 'bad_request');
    assert.equal('client_id' in e, false);
    // the burst is spent: of five messages sent at once, those refused by the rate limit
    // are named, each exactly once, and the others are delivered
    const cids = ['fast-1', 'fast-2', 'fast-3', 'fast-4', 'fast-5'];
    for (const cid of cids) c.send({ type: 'message', text: cid, client_id: cid });
    const answers = [];
    for (const cid of cids) {
      answers.push(await c.next((f) => f.client_id === cid && (f.type === 'error' || f.type === 'message')));
    }
    const refused = answers.filter((f) => f.type === 'error');
    assert.ok(refused.length >= 3, `rate limited: ${JSON.stringify(answers)}`);
    for (const f of refused) assert.equal(f.code, 'rate_limited');
    await c.close();
  } finally {
    await chat.d.stop();
  }
});
