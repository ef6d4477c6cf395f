// Per-user budgets: one user (one uid, whatever the token) cannot take every connection slot,
// flood a room through many connections, spend the message budget with typing, or burn the
// daemon's CPU with control frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChat, Client, RawWs, metrics, until, sleep, T } from './lib.mjs';
import { uidOf } from '../lib/token.mjs';

// Opens a connection; resolves 'open' once welcomed, else the refusal: {status} for an HTTP
// answer to the upgrade (the upgrade filter's 429/503), {code, reason} for a close.
async function attempt(url) {
  const c = new Client(url);
  try {
    await c.opened;
  } catch (e) {
    return { status: e.status };
  }
  const r = await Promise.race([c.next((f) => f.type === 'welcome').then(() => 'open'), c.closed]);
  return r === 'open' ? { open: true, c } : r;
}
const refused = (r) => r.status === 429 || (r.code === 1008 && /too many connections/.test(r.reason));

test('connections per user and per user+room are bounded; other users still get in', async (t) => {
  const chat = await startChat({ CHAT_MAX_CONNECTIONS: '50', CHAT_MAX_CONNS_PER_USER: '6', CHAT_MAX_CONNS_PER_USER_ROOM: '3' });
  t.after(() => chat.d.stop());
  const url = (sub, room, extra = {}) => chat.url(chat.token({ sub, room, ...extra }));
  const open = [];
  // one token tries to take all 50 slots of one room: 3 get in
  const tok = url('hog@x.org', 'room-a');
  for (let i = 0; i < 10; i++) {
    const r = await attempt(tok);
    if (r.open) open.push(r.c);
    else assert.ok(refused(r), `refusal ${JSON.stringify(r)}`);
  }
  assert.equal(open.length, 3);
  // the same user (same uid, another email) in other rooms: up to 6 in all
  for (const room of ['room-b', 'room-b', 'room-b', 'room-c', 'room-c']) {
    const r = await attempt(url('hog-alias@x.org', room, { uid: uidOf('hog@x.org') }));
    if (r.open) open.push(r.c);
    else assert.ok(refused(r), `refusal ${JSON.stringify(r)}`);
  }
  assert.equal(open.length, 6);
  // everyone else still gets in
  const others = [];
  for (let i = 0; i < 10; i++) others.push(await Client.open(url(`other${i}@x.org`, 'room-a')));
  const m = await metrics(chat.port);
  assert.equal(m.chat_connections, 16);
  assert.equal(m.chat_users, 11);
  // one of the hog's tabs closes: one more may come back
  await open.shift().close();
  await until(async () => (await metrics(chat.port)).chat_connections === 15, T, 'close counted');
  const back = await attempt(tok);
  assert.ok(back.open, JSON.stringify(back));
  open.push(back.c);
  await Promise.all([...open, ...others].map((c) => c.close()));
});

test('the message rate limit is per user, across all of that user\'s connections', async (t) => {
  const chat = await startChat({ CHAT_RATE_PER_SEC: '1', CHAT_RATE_BURST: '10', CHAT_RATE_STRIKES: '100' });
  t.after(() => chat.d.stop());
  const watcher = await Client.open(chat.url(chat.token({ sub: 'w@x.org', room: 'flood' })));
  const tabs = [];
  for (let i = 0; i < 5; i++) tabs.push(await Client.open(chat.url(chat.token({ sub: 'many@x.org', room: 'flood' }))));
  // 5 connections x 6 messages = 30, each connection within a per-connection burst of 10
  for (const [i, c] of tabs.entries()) for (let k = 0; k < 6; k++) c.send({ type: 'message', text: `m${i}-${k}`, client_id: `${i}-${k}` });
  await Promise.all(tabs.map((c) => c.next((f) => (f.type === 'message' || f.type === 'error') && f.client_id === `${tabs.indexOf(c)}-5`)));
  watcher.send({ type: 'message', text: 'marker', client_id: 'marker' });
  await watcher.next((f) => f.client_id === 'marker');
  const got = watcher.of('message').filter((f) => f.client_id !== 'marker').length;
  const limited = tabs.reduce((n, c) => n + c.of('error').filter((e) => e.code === 'rate_limited').length, 0);
  t.diagnostic(`${got} of 30 delivered, ${limited} rate_limited`);
  assert.ok(got <= 10 + 3, `at most the user's burst (plus refill) got through: ${got}`);
  assert.equal(got + limited, 30);
  await Promise.all([watcher.close(), ...tabs.map((c) => c.close())]);
});

test('typing has its own budget: it never uses up the message budget, and its excess is dropped', async (t) => {
  const chat = await startChat({ CHAT_RATE_PER_SEC: '1', CHAT_RATE_BURST: '10', CHAT_TYPING_PER_SEC: '1', CHAT_TYPING_BURST: '3' });
  t.after(() => chat.d.stop());
  const watcher = await Client.open(chat.url(chat.token({ sub: 'w@x.org', room: 'typing' })));
  const u = await Client.open(chat.url(chat.token({ sub: 'typist@x.org', room: 'typing' })));
  for (let i = 0; i < 8; i++) u.send({ type: 'typing' });
  for (let i = 0; i < 10; i++) u.send({ type: 'message', text: `t${i}`, client_id: `t${i}` });
  await watcher.next((f) => f.type === 'message' && f.client_id === 't9');
  assert.equal(watcher.of('message').length, 10, 'every message of the burst went through');
  assert.equal(u.of('error').length, 0, 'no rate_limited, typing is never answered with an error');
  assert.equal(watcher.of('typing').length, 3, 'typing beyond its burst is dropped');
  const m = await metrics(chat.port);
  assert.equal(m.chat_typing_dropped_total, 5);
  assert.equal(m.chat_rate_limited_total, 0);
  await Promise.all([watcher.close(), u.close()]);
});

test('pings and pongs count: a client flooding control frames is closed 1008, across its connections', async (t) => {
  const chat = await startChat({ CHAT_CONTROL_PER_SEC: '2', CHAT_CONTROL_BURST: '10' });
  t.after(() => chat.d.stop());
  const watcher = await Client.open(chat.url(chat.token({ sub: 'w@x.org', room: 'pings' })));
  const tok = chat.token({ sub: 'pinger@x.org', room: 'pings' });
  const socks = [];
  for (let i = 0; i < 4; i++) socks.push(await RawWs.open(chat.port, tok));
  // 4 connections x 4 pings: within 10 per connection, over 10 for the user
  for (const s of socks) for (let k = 0; k < 4; k++) s.write(RawWs.frame(0x9, 'hi'));
  await until(() => socks.some((s) => s.closeCode() === 1008), T, 'a 1008 close');
  // a pong flood on a fresh user's single connection
  const p = await RawWs.open(chat.port, chat.token({ sub: 'ponger@x.org', room: 'pings' }));
  for (let k = 0; k < 50; k++) p.write(RawWs.frame(0xa, ''));
  await p.ended;
  assert.equal(p.closeCode(), 1008);
  assert.match(chat.d.stderr, /reason=too many control frames/);
  assert.ok((await metrics(chat.port)).chat_control_limited_total >= 2);
  // a client pinging within the budget is fine
  const ok = await RawWs.open(chat.port, chat.token({ sub: 'calm@x.org', room: 'pings' }));
  for (let k = 0; k < 5; k++) { ok.write(RawWs.frame(0x9, 'x')); await sleep(50); }
  await until(() => ok.frames.filter((f) => f.op === 0xa).length === 5, T, 'five pongs');
  assert.equal(ok.closeCode(), null);
  for (const s of [...socks, ok]) s.sock.destroy();
  await watcher.close();
});
