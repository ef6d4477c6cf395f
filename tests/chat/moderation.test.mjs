// The chat daemon's side of moderation, against the real parley-chat and a real Redis: events
// XADDed to parley:moderation (as the website's sender writes them) close the matching
// connections and refuse the matching tokens; malformed entries change nothing; after Redis
// restarts the daemon goes on from the last event it saw (an event written while it was
// reconnecting still arrives); a token only a dropped revocation could match is refused
// (fail closed) once the revocation table is full.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { uidOf, ridOf } from '../lib/token.mjs';
import { startRedis } from '../lib/redis.mjs';
import { SANITIZER_RE } from '../lib/stack.mjs';
import { startChat, Client, metrics, until, T } from './lib.mjs';

let redis;
let chat;
before(async () => {
  redis = await startRedis({ aof: true });
  chat = await startChat({ CHAT_MODERATION_MAX_ENTRIES: '100' }, { redis });
});
after(async () => {
  const r = await chat?.d.stop();
  await redis?.cleanup();
  // a clean exit, and no sanitizer report (ASan/UBSan builds)
  assert.deepEqual(r, { code: 0, signal: null }, chat?.d.stderr.slice(-4000));
  assert.doesNotMatch(chat?.d.stderr || '', SANITIZER_RE);
});

const STREAM = 'parley:moderation';
const xadd = (fields) => redis.cmd('XADD', STREAM, '*', ...Object.entries(fields).flat().map(String));
const nowS = () => Math.floor(Date.now() / 1000);
const open = (opts) => Client.open(chat.url(chat.token(opts)));

// The token is refused right after the upgrade: the error frame, then the code; no welcome.
async function refused(opts, code, errCode) {
  const c = new Client(chat.url(chat.token(opts)));
  await c.opened;
  const r = await c.closed;
  assert.equal(r.code, code, JSON.stringify(c.frames));
  assert.ok(!c.frames.some((f) => f.type === 'welcome'));
  assert.ok(c.frames.some((f) => f.type === 'error' && f.code === errCode), JSON.stringify(c.frames));
}

test('a logout closes only the connections of that session (sid), not the same user\'s others', async () => {
  const sub = 'lou@x.org';
  const s1 = await open({ sub, room: 'lobby', sid: 'sessionone' });
  const s1b = await open({ sub, room: 'other', sid: 'sessionone' });
  const s2 = await open({ sub, room: 'lobby', sid: 'sessiontwo' });
  const nosid = await open({ sub, room: 'lobby' });
  await xadd({ kind: 'logout', uid: uidOf(sub), sid: 'sessionone', at_ms: Date.now() });
  for (const c of [s1, s1b]) {
    assert.equal((await c.closed).code, 4001);
    assert.ok(c.frames.some((f) => f.type === 'error' && f.code === 'logged_out'));
  }
  // the others still work
  for (const c of [s2, nosid]) {
    const text = `here ${Math.random()}`;
    c.send({ type: 'message', text });
    await c.next((f) => f.type === 'message' && f.text === text);
  }
  await refused({ sub, room: 'lobby', sid: 'sessionone', now: nowS() - 5 }, 4001, 'logged_out');
  s2.close();
  nosid.close();
});

test('entries that are no valid event are ignored and counted; the stream goes on', async () => {
  const before = (await metrics(chat.port)).chat_moderation_invalid_total;
  const sub = 'val@x.org';
  const c = await open({ sub, room: 'lobby' });
  await xadd({ kind: 'ban', uid: 'not a uid', at_ms: Date.now() });
  await xadd({ kind: 'explode', uid: uidOf(sub), at_ms: Date.now() });
  await xadd({ kind: 'ban', uid: uidOf(sub) }); // no at_ms
  await xadd({ kind: 'member_removed', uid: uidOf(sub), at_ms: Date.now() }); // no rid
  await xadd({ kind: 'logout', uid: uidOf(sub), at_ms: Date.now() }); // no sid
  await until(async () => (await metrics(chat.port)).chat_moderation_invalid_total === before + 5,
    T, 'five invalid entries counted');
  const text = 'still connected';
  c.send({ type: 'message', text });
  await c.next((f) => f.type === 'message' && f.text === text);
  // a valid one after them is applied
  await xadd({ kind: 'member_removed', uid: uidOf(sub), rid: ridOf('lobby'), at_ms: Date.now() });
  assert.equal((await c.closed).code, 4005);
});

test('a ban written while Redis restarts is applied once the daemon is back (it reads on from its last id)',
  async () => {
    const sub = 'rex@x.org';
    const c = await open({ sub, room: 'lobby' });
    const other = await open({ sub: 'ok@x.org', room: 'lobby' });
    await redis.stop();
    await redis.start();
    // at once, before the daemon's reconnect (it backs off from 100 ms)
    await xadd({ kind: 'ban', uid: uidOf(sub), at_ms: Date.now() });
    assert.equal((await c.closed).code, 4003);
    assert.ok(c.frames.some((f) => f.type === 'error' && f.code === 'banned'));
    assert.equal(other.ws.readyState, 1, 'another user stays connected');
    // a token from after the ban works (unban, then a new token)
    await new Promise((r) => setTimeout(r, 1100));
    (await open({ sub, room: 'lobby' })).close();
    other.close();
  });

test('over CHAT_MODERATION_MAX_ENTRIES the oldest revocation is forgotten and tokens as old are refused (1013)',
  async () => {
    const at = Date.now();
    for (let i = 0; i < 101; i++) await xadd({ kind: 'ban', uid: `filler-${i}`, at_ms: at });
    await until(async () => (await metrics(chat.port)).chat_moderation_dropped_total >= 1, T, 'a drop');
    const m = await metrics(chat.port);
    assert.ok(m.chat_moderation_revocations <= 100, `revocations ${m.chat_moderation_revocations}`);
    // a token issued before the forgotten revocation: refused, try again with a new one
    const c = new Client(chat.url(chat.token({ sub: 'old@x.org', room: 'lobby', now: Math.floor(at / 1000) - 2 })));
    await c.opened;
    assert.equal((await c.closed).code, 1013);
    // a newer token is fine
    (await open({ sub: 'new@x.org', room: 'lobby', now: Math.floor(at / 1000) + 2 })).close();
  });
