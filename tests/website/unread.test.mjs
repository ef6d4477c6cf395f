// Unread counts: the latest seq of a room comes from Redis (parley:{r<rid>}:seq, set here with
// redis-cli to simulate messages the chat daemon would have counted: the chat pipeline's own
// tests are in tests/chat), the last seq a member has seen from POST /api/rooms/NAME/read.
// Real PostgreSQL, a real Redis started by the test, the real website.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { startSite, newUser, uniq } from './helpers.mjs';
import { freePort, waitForPort, sleep } from '../lib/proc.mjs';

function startRedis(port) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', ''],
    { stdio: 'ignore' });
  const exited = new Promise((res) => child.on('exit', res));
  return waitForPort(port).then(() => ({
    stop: async () => { child.kill('SIGTERM'); await exited; },
  }));
}
const cli = (...args) => {
  const r = spawnSync('redis-cli', ['-p', String(redisPort), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-cli: ${r.stderr}`);
  return r.stdout.trim();
};

let site, redisPort, redis, ann, bob, cat;
before(async () => {
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  site = await startSite({ env: { WEB_REDIS_PORT: String(redisPort), WEB_REDIS_TIMEOUT_MS: '500' } });
  ann = await newUser(site, 'ann');
  bob = await newUser(site, 'bob');
  cat = await newUser(site, 'cat');
});
after(async () => {
  const r = await site?.stop();
  if (redis) await redis.stop();
  assert.deepEqual(r, { code: 0, signal: null }, site?.web.stderr.slice(-3000));
});

async function room(owner) {
  const name = `talk-${uniq()}`;
  await owner.client.get('/rooms');
  assert.equal((await owner.client.postForm('/rooms', { name, title: name })).status, 303);
  return { name, rid: site.pg.psql(`SELECT id FROM rooms WHERE name = '${name}'`) };
}
const apiRoom = async (u, name) => (await u.client.get(`/api/rooms?q=${name}`)).json().find((x) => x.name === name);
async function read(u, name, body, csrf = u.client.csrf) {
  const r = await u.client.request('POST', `/api/rooms/${name}/read`, {
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf || '' } });
  let json = null;
  try { json = r.json(); } catch { /* not JSON */ }
  return { status: r.status, json };
}
const myRooms = async (u) => (await u.client.get('/rooms')).text.split('<h2>My rooms</h2>')[1]?.split('</section>')[0] ?? '';

test('unread counts rise with messages and fall when read; read never moves backwards', async () => {
  const { name, rid } = await room(ann);
  await bob.client.get('/rooms');
  assert.equal((await bob.client.postForm(`/rooms/${name}/join`)).status, 303);
  assert.equal((await apiRoom(bob, name)).unread, 0, 'no message yet (key absent)');
  assert.equal((await apiRoom(cat, name)).unread, null, 'not a member: no count');
  cli('SET', `parley:{r${rid}}:seq`, '5');
  assert.equal((await apiRoom(bob, name)).unread, 5);
  assert.equal((await apiRoom(ann, name)).unread, 5);
  assert.match(await myRooms(bob), new RegExp(`href="/rooms/${name}"[\\s\\S]*5 unread`));
  await bob.client.get('/rooms');
  let r = await read(bob, name, { seq: 3 });
  assert.equal(r.status, 200);
  assert.equal(r.json.last_read_seq, 3);
  assert.equal((await apiRoom(bob, name)).unread, 2);
  r = await read(bob, name, { seq: 1 });
  assert.equal(r.status, 200);
  assert.equal(r.json.last_read_seq, 3, 'never backwards');
  assert.equal((await apiRoom(bob, name)).unread, 2);
  cli('INCR', `parley:{r${rid}}:seq`);
  assert.equal((await apiRoom(bob, name)).unread, 3);
  assert.equal((await read(bob, name, { seq: 6 })).status, 200);
  assert.equal((await apiRoom(bob, name)).unread, 0);
  assert.doesNotMatch(await myRooms(bob), /unread/);
  assert.equal((await apiRoom(ann, name)).unread, 6, "ann's count is her own");
  // a seq beyond the latest (a stale Redis) shows 0, never a negative count
  assert.equal((await read(ann, name, { seq: 100 })).status, 200);
  assert.equal((await apiRoom(ann, name)).unread, 0);
});

test('read: non-members get 404 not_member; bad bodies 400; no CSRF 403', async () => {
  const { name } = await room(ann);
  await cat.client.get('/rooms');
  let r = await read(cat, name, { seq: 1 });
  assert.equal(r.status, 404);
  assert.equal(r.json.error, 'not_member');
  assert.equal((await read(cat, `nope-${uniq()}`, { seq: 1 })).json.error, 'not_member');
  await ann.client.get('/rooms');
  for (const bad of [{ seq: -1 }, { seq: 1.5 }, { seq: '5' }, { seq: 2 ** 53 }, { seq: 1e300 }, {}, [], 'not json', '', { seq: null }]) {
    r = await read(ann, name, bad);
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.equal(r.json.error, 'bad_request');
  }
  assert.equal((await read(ann, name, { seq: 2 ** 53 - 1 })).status, 200);
  assert.equal(site.pg.psql(`SELECT last_read_seq FROM room_members m JOIN rooms r ON r.id = m.room_id WHERE r.name = '${name}'`), String(2 ** 53 - 1));
  assert.equal((await read(ann, name, { seq: 1 }, 'x'.repeat(64))).status, 403);
  assert.equal((await read({ client: site.client() }, name, { seq: 1 }, '')).status, 401);
});

test('Redis down: unread is shown as unknown, not as a wrong number; back when Redis is', async () => {
  const { name, rid } = await room(ann);
  cli('SET', `parley:{r${rid}}:seq`, '4');
  assert.equal((await apiRoom(ann, name)).unread, 4);
  await redis.stop();
  redis = null;
  assert.equal((await apiRoom(ann, name)).unread, null);
  assert.match(await myRooms(ann), /unread: unknown/);
  assert.equal((await ann.client.get('/rooms')).status, 200, 'the page still works');
  redis = await startRedis(redisPort);
  cli('SET', `parley:{r${rid}}:seq`, '7');
  const end = Date.now() + 20000;
  let u;
  while ((u = (await apiRoom(ann, name)).unread) !== 7 && Date.now() < end) await sleep(200);
  assert.equal(u, 7);
});
