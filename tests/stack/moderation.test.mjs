// Moderation reaching live connections, through the real website, Redis, PostgreSQL and two
// chat daemons on one Redis (two replicas: each must act). Each event closes exactly the
// connections it concerns, with its code, within 2 s (the contract), and leaves everyone
// else connected; old tokens are refused afterwards, also by a daemon started after the
// events (it rebuilds its revocations from the stream); unban / re-add then a new token works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, SANITIZER_RE } from '../lib/stack.mjs';
import { BIN, freePort, startDaemon, sleep } from '../lib/proc.mjs';
import { openChat, registerUser, login, uniq } from './helpers.mjs';

const ASAN = process.env.PARLEY_ASAN === '1' || process.env.PARLEY_ASAN === 'ON';
// The contract is 2 s; an ASan build on two shared cores gets more.
const DEADLINE_MS = ASAN ? 10000 : 2000;

let stack;
let admin;
const chats = []; // [{port, adminPort, d}] — chats[0] is the stack's own daemon
const latencies = [];

async function metricsOf(adminPort) {
  const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  return r.text();
}

async function startExtraChat() {
  const port = await freePort();
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  const d = await startDaemon(BIN.chat, { ...stack.chatEnv, CHAT_PORT: String(port),
    CHAT_ADMIN_PORT: String(adminPort) }, [port, adminPort], { timeoutMs: 60000 });
  const end = Date.now() + 60000;
  for (;;) {
    const t = await metricsOf(adminPort).catch(() => '');
    if (/^chat_redis_up 1$/m.test(t) && /^chat_moderation_synced 1$/m.test(t)) break;
    if (Date.now() > end) throw new Error(`second chat daemon not ready:\n${d.stderr}`);
    await sleep(50);
  }
  return { port, adminPort, d };
}

before(async () => {
  // many accounts and log-ins from one address: above nginx's default log-in rate
  stack = await startStack({ nginxEnv: { NGINX_AUTH_RATE: '600r/m', NGINX_AUTH_BURST: '200' } });
  chats.push({ port: stack.chat.port, adminPort: stack.chat.adminPort, d: null });
  chats.push(await startExtraChat());
  admin = await login(stack.url, stack.admin.email, stack.admin.password);
});

after(async () => {
  const reports = [];
  for (const c of chats.slice(1)) {
    await c.d.stop().catch(() => {});
    if (SANITIZER_RE.test(c.d.stderr)) reports.push(c.d.stderr.slice(-6000));
  }
  if (latencies.length) process.stderr.write(`moderation close latency ms: ${latencies.join(' ')}\n`);
  if (stack) await stack.stop();
  assert.deepEqual(reports, [], 'sanitizer reports of the extra chat daemons');
});

// A connection straight to chat daemon i (Bearer token), once its welcome came.
async function connect(i, token) {
  const c = openChat(`http://127.0.0.1:${chats[i].port}`, token);
  await c.opened;
  await c.next((f) => f.type === 'welcome', 'welcome');
  return c;
}

async function token(client, room) {
  const t = await client.chatToken(room);
  assert.equal(t.status, 200, `token for ${room}: ${t.status} ${t.text}`);
  return t.body.token;
}

// c is closed with `code` within the deadline (counted from t0), after an error frame
// naming `errCode`.
async function expectClosed(c, code, errCode, t0, what) {
  const r = await Promise.race([c.closedP, sleep(DEADLINE_MS + 200).then(() => null)]);
  assert.ok(r, `${what}: not closed within ${DEADLINE_MS} ms`);
  const ms = Date.now() - t0;
  latencies.push(ms);
  assert.equal(r.code, code, `${what}: close code`);
  assert.ok(ms <= DEADLINE_MS, `${what}: closed after ${ms} ms`);
  assert.ok(c.frames.some((f) => f.type === 'error' && f.code === errCode),
    `${what}: the error frame ${errCode} came first: ${JSON.stringify(c.frames)}`);
}

// c is still connected and working: a message it sends comes back to it.
async function expectAlive(c, what) {
  assert.equal(c.closed, null, `${what} was closed: ${JSON.stringify(c.closed)}`);
  const text = `still here ${uniq()}`;
  c.send({ type: 'message', text });
  await c.next((f) => f.type === 'message' && f.text === text, `${what}'s own message`);
  assert.equal(c.closed, null, `${what} was closed: ${JSON.stringify(c.closed)}`);
}

// A token refused after the event: the upgrade succeeds, then the error frame and the code.
async function expectRefused(i, tok, code, errCode, what) {
  const c = openChat(`http://127.0.0.1:${chats[i].port}`, tok);
  await c.opened;
  const r = await c.closedP;
  assert.equal(r.code, code, `${what} on daemon ${i}: ${JSON.stringify(c.frames)}`);
  assert.ok(!c.frames.some((f) => f.type === 'welcome'), `${what}: no welcome`);
  assert.ok(c.frames.some((f) => f.type === 'error' && f.code === errCode), `${what}: error frame`);
}

// A new account whose session's CSRF token is known (registering leaves the anonymous one).
async function newUser(who) {
  const u = await registerUser(stack.url, who);
  await u.client.get('/rooms');
  return u;
}

const userId = (email) => stack.pg.psql(`SELECT id FROM users WHERE email = '${email}'`);

async function publicRoom(client) {
  const name = `mod-${uniq()}`;
  const r = await client.createRoom(name, `Room ${name}`);
  assert.equal(r.status, 303, r.text.slice(0, 500));
  return name;
}

async function privateRoom(client) {
  const name = `priv-${uniq()}`;
  await client.get('/rooms');
  const r = await client.postForm('/rooms', { name, title: `Private ${name}`, visibility: 'private' });
  assert.equal(r.status, 303, r.text.slice(0, 500));
  return name;
}

test('a ban closes every connection of the user on every daemon (4003), refuses older tokens, and an unban lets new ones in',
  async () => {
    const ann = await newUser('ann');
    const bob = await newUser('bob');
    const roomA = await publicRoom(ann.client);
    const roomB = await publicRoom(ann.client);
    const bobA0 = await connect(0, await token(bob.client, roomA));
    const bobB1 = await connect(1, await token(bob.client, roomB));
    const annA0 = await connect(0, await token(ann.client, roomA));
    const annB1 = await connect(1, await token(ann.client, roomB));
    const early = await token(bob.client, roomA); // issued before the ban, never used
    const t0 = Date.now();
    const r = await admin.postForm(`/admin/users/${userId(bob.email)}/ban`, {}, { formPage: '/admin' });
    assert.equal(r.status, 303, r.text.slice(0, 500));
    await expectClosed(bobA0, 4003, 'banned', t0, 'bob on daemon 0');
    await expectClosed(bobB1, 4003, 'banned', t0, 'bob on daemon 1');
    await expectAlive(annA0, 'ann in the same room on daemon 0');
    await expectAlive(annB1, 'ann on daemon 1');
    for (const i of [0, 1]) await expectRefused(i, early, 4003, 'banned', 'a token from before the ban');
    assert.equal((await bob.client.chatToken(roomA)).status, 403);

    // unbanned, bob logs in again (the ban ended his sessions) and a new token works
    const u = await admin.postForm(`/admin/users/${userId(bob.email)}/unban`, {}, { formPage: '/admin' });
    assert.equal(u.status, 303);
    await sleep(1100); // iat has 1 s granularity: a token of the ban's own second is refused
    const bob2 = await login(stack.url, bob.email, bob.password);
    const fresh = await token(bob2, roomA);
    for (const i of [0, 1]) await (await connect(i, fresh)).close();
    await annA0.close();
    await annB1.close();
  });

test('a room deletion closes every connection in it on every daemon (4004) and only those', async () => {
  const ann = await newUser('ann');
  const cat = await newUser('cat');
  const doomed = await publicRoom(ann.client);
  const other = await publicRoom(ann.client);
  const annD0 = await connect(0, await token(ann.client, doomed));
  const catD1 = await connect(1, await token(cat.client, doomed));
  const catO0 = await connect(0, await token(cat.client, other));
  const annO1 = await connect(1, await token(ann.client, other));
  const old = await token(cat.client, doomed);
  const t0 = Date.now();
  await ann.client.get(`/rooms/${doomed}`);
  const r = await ann.client.postForm(`/rooms/${doomed}/delete`);
  assert.equal(r.status, 303, r.text.slice(0, 500));
  await expectClosed(annD0, 4004, 'room_deleted', t0, 'ann in the deleted room on daemon 0');
  await expectClosed(catD1, 4004, 'room_deleted', t0, 'cat in the deleted room on daemon 1');
  await expectAlive(catO0, 'cat in another room on daemon 0');
  await expectAlive(annO1, 'ann in another room on daemon 1');
  for (const i of [0, 1]) await expectRefused(i, old, 4004, 'room_deleted', 'a token of the deleted room');
  await catO0.close();
  await annO1.close();
});

test('removal from a private room closes that member\'s connections to it (4005), not to other rooms, nor other members\'',
  async () => {
    const ann = await newUser('ann');
    const cat = await newUser('cat');
    const dan = await newUser('dan');
    const priv = await privateRoom(ann.client);
    const pub = await publicRoom(ann.client);
    await ann.client.get(`/rooms/${priv}`);
    for (const u of [cat, dan]) {
      const a = await ann.client.postForm(`/rooms/${priv}/members`, { email: u.email });
      assert.equal(a.status, 303, a.text.slice(0, 500));
    }
    const catP0 = await connect(0, await token(cat.client, priv));
    const catP1 = await connect(1, await token(cat.client, priv));
    const catPub0 = await connect(0, await token(cat.client, pub));
    const danP1 = await connect(1, await token(dan.client, priv));
    const annP0 = await connect(0, await token(ann.client, priv));
    const old = await token(cat.client, priv);
    const t0 = Date.now();
    const r = await ann.client.postForm(`/rooms/${priv}/members/remove`, { email: cat.email });
    assert.equal(r.status, 303, r.text.slice(0, 500));
    await expectClosed(catP0, 4005, 'removed', t0, 'cat in the private room on daemon 0');
    await expectClosed(catP1, 4005, 'removed', t0, 'cat in the private room on daemon 1');
    await expectAlive(catPub0, 'cat in a public room');
    await expectAlive(danP1, 'dan, another member');
    await expectAlive(annP0, 'ann, the owner');
    for (const i of [0, 1]) await expectRefused(i, old, 4005, 'removed', 'the removed member\'s old token');
    assert.equal((await cat.client.chatToken(priv)).status, 403);
    // the owner cannot be removed
    const own = await ann.client.postForm(`/rooms/${priv}/members/remove`, { email: ann.email });
    assert.equal(own.status, 409);

    // added again, cat gets in with a new token
    await sleep(1100);
    const a = await ann.client.postForm(`/rooms/${priv}/members`, { email: cat.email });
    assert.equal(a.status, 303);
    for (const i of [0, 1]) await (await connect(i, await token(cat.client, priv))).close();
    for (const c of [catPub0, danP1, annP0]) await c.close();
  });

test('revoking the invite a member used removes them and closes their connections to the room (4005)',
  async () => {
    const ann = await newUser('ann');
    const eve = await newUser('eve');
    const priv = await privateRoom(ann.client);
    await ann.client.get(`/rooms/${priv}`);
    const inv = await ann.client.postForm(`/rooms/${priv}/invites`);
    assert.equal(inv.status, 201, inv.text.slice(0, 500));
    const link = inv.text.match(/value="(\/invite\/[A-Za-z0-9_-]{43})"/)[1];
    await eve.client.get(link);
    assert.equal((await eve.client.postForm(link)).status, 303);
    const eveP1 = await connect(1, await token(eve.client, priv));
    const annP0 = await connect(0, await token(ann.client, priv));
    const old = await token(eve.client, priv);
    // the owner's room page lists the used invite with a revoke form
    const page = await ann.client.get(`/rooms/${priv}`);
    const m = page.text.match(/Invite used by <bdi>[^<]*<\/bdi>[^]*?name="invite" value="([0-9a-f]{64})"/);
    assert.ok(m, 'the used invite is listed with a revoke form');
    const t0 = Date.now();
    const r = await ann.client.postForm(`/rooms/${priv}/invites/revoke`, { invite: m[1] });
    assert.equal(r.status, 303, r.text.slice(0, 500));
    await expectClosed(eveP1, 4005, 'removed', t0, 'eve (joined by the invite) on daemon 1');
    await expectAlive(annP0, 'ann, the owner');
    assert.equal(stack.pg.psql(`SELECT count(*) FROM room_members m JOIN rooms r ON r.id = m.room_id
      JOIN users u ON u.id = m.user_id WHERE r.name = '${priv}' AND u.email = '${eve.email}'`), '0');
    assert.equal((await eve.client.chatToken(priv)).status, 403);
    for (const i of [0, 1]) await expectRefused(i, old, 4005, 'removed', 'the revoked member\'s old token');
    await annP0.close();
  });

test('logging out closes the connections opened with that session\'s tokens (4001), not another session\'s',
  async () => {
    const ann = await newUser('ann');
    const fay = await newUser('fay');
    const room = await publicRoom(ann.client);
    const s2 = await login(stack.url, fay.email, fay.password); // a second session of fay's
    const s1a0 = await connect(0, await token(fay.client, room));
    const s1a1 = await connect(1, await token(fay.client, room));
    const s2a0 = await connect(0, await token(s2, room));
    const annA1 = await connect(1, await token(ann.client, room));
    const old = await token(fay.client, room);
    const t0 = Date.now();
    await fay.client.get('/rooms');
    const r = await fay.client.postForm('/logout');
    assert.equal(r.status, 303);
    await expectClosed(s1a0, 4001, 'logged_out', t0, 'the logged-out session on daemon 0');
    await expectClosed(s1a1, 4001, 'logged_out', t0, 'the logged-out session on daemon 1');
    await expectAlive(s2a0, 'fay\'s other session');
    await expectAlive(annA1, 'ann in the same room');
    for (const i of [0, 1]) await expectRefused(i, old, 4001, 'logged_out', 'the logged-out session\'s token');
    await (await connect(0, await token(s2, room))).close();
    await s2a0.close();
    await annA1.close();
  });

test('a daemon started after the events refuses the revoked tokens too (it reads the stream back)',
  async () => {
    const ann = await newUser('ann');
    const gus = await newUser('gus');
    const room = await publicRoom(ann.client);
    const doomed = await publicRoom(ann.client);
    const banned = await token(gus.client, room);
    const deleted = await token(ann.client, doomed);
    const fine = await token(ann.client, room);
    const count = async (k) => Number(((await metricsOf(chats[0].adminPort)).match(
      new RegExp(`^chat_moderation_events_total\\{kind="${k}"\\} (\\d+)$`, 'm')) || [])[1] || 0);
    const bans = await count('ban');
    const deletions = await count('room_deleted');
    assert.equal((await admin.postForm(`/admin/users/${userId(gus.email)}/ban`, {}, { formPage: '/admin' })).status, 303);
    await ann.client.get(`/rooms/${doomed}`);
    assert.equal((await ann.client.postForm(`/rooms/${doomed}/delete`)).status, 303);
    // both events are out (daemon 0 counted them) before the new daemon starts
    const end = Date.now() + 20000;
    while (!(await count('ban') > bans && await count('room_deleted') > deletions)) {
      assert.ok(Date.now() < end, 'daemon 0 did not see the events');
      await sleep(50);
    }
    const late = await startExtraChat();
    chats.push(late);
    const i = chats.length - 1;
    await expectRefused(i, banned, 4003, 'banned', 'a banned user\'s token on a new daemon');
    await expectRefused(i, deleted, 4004, 'room_deleted', 'a deleted room\'s token on a new daemon');
    await (await connect(i, fine)).close();
    const m = await metricsOf(late.adminPort);
    assert.match(m, /^chat_moderation_refused_total\{kind="ban"\} 1$/m);
    assert.match(m, /^chat_moderation_refused_total\{kind="room_deleted"\} 1$/m);
  });
