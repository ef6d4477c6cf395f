// Room deletions reach the chat archive through Redis (website/src/events.h): deleting a room
// (owner's route or the admin's) XADDs `rid` to the stream parley:room-deletions; while Redis
// is down the deletion waits in the room_deletions table and is sent once Redis is back — it
// is never lost. Real PostgreSQL, real Redis, the real website.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { startSite, newUser, uniq } from './helpers.mjs';
import { freePort, waitForPort, sleep } from '../lib/proc.mjs';

const STREAM = 'parley:room-deletions';

function startRedis(port) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', ''],
    { stdio: 'ignore' });
  const exited = new Promise((res) => child.on('exit', res));
  return waitForPort(port).then(() => ({
    stop: async () => { child.kill('SIGTERM'); await exited; },
  }));
}

const cli = (port, ...args) => {
  const r = spawnSync('redis-cli', ['-p', String(port), '--no-raw', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-cli: ${r.stderr}`);
  return r.stdout;
};
// The rids in the stream, in order.
const streamRids = (port) => [...cli(port, 'XRANGE', STREAM, '-', '+').matchAll(/"rid"\n\s*\d+\) "(\d+)"/g)]
  .map((m) => m[1]);

async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

let site, redisPort, redis, owner, admin;

before(async () => {
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  site = await startSite({ env: { WEB_REDIS_PORT: String(redisPort), WEB_REDIS_TIMEOUT_MS: '500' } });
  owner = await newUser(site, 'owner');
  admin = site.client();
  assert.equal((await admin.login(site.admin.email, site.admin.password)).status, 303);
});

after(async () => {
  if (site) await site.stop();
  if (redis) await redis.stop();
});

const ridOf = (name) => site.pg.psql(`SELECT id FROM rooms WHERE name = '${name}'`);
const outboxRows = () => site.pg.psql('SELECT count(*) FROM room_deletions');

test('deleting a room (owner or admin) puts its rid on parley:room-deletions', async () => {
  const a = `del-${uniq()}`, b = `del-${uniq()}`;
  await owner.client.createRoom(a, 'A');
  await owner.client.createRoom(b, 'B');
  const ridA = ridOf(a), ridB = ridOf(b);
  assert.match(ridA, /^\d+$/);
  assert.equal((await owner.client.postForm(`/rooms/${a}/delete`, {})).status, 303);
  await admin.get('/admin');
  assert.equal((await admin.postForm(`/admin/rooms/${b}/delete`, {})).status, 303);
  await until('both rids in the stream', () => streamRids(redisPort).includes(ridB));
  assert.deepEqual(streamRids(redisPort), [ridA, ridB]);
  await until('the outbox emptied', () => outboxRows() === '0');
  // a refused delete (not the owner) sends nothing
  const c = `keep-${uniq()}`;
  await owner.client.createRoom(c, 'C');
  const bob = await newUser(site, 'bob');
  await bob.client.get('/rooms');
  assert.equal((await bob.client.postForm(`/rooms/${c}/delete`, {})).status, 403);
  await sleep(300);
  assert.deepEqual(streamRids(redisPort), [ridA, ridB]);
  assert.equal(outboxRows(), '0');
});

test('Redis down: the deletion waits in room_deletions and is sent when Redis is back', async () => {
  const before = streamRids(redisPort);
  await redis.stop();
  redis = null;
  const name = `down-${uniq()}`;
  await owner.client.createRoom(name, 'Down');
  const rid = ridOf(name);
  const r = await owner.client.postForm(`/rooms/${name}/delete`, {});
  assert.equal(r.status, 303, 'the room is deleted at once, Redis or not');
  assert.equal(ridOf(name), '');
  assert.equal(site.pg.psql('SELECT string_agg(rid::text, \',\') FROM room_deletions'), rid);
  // the name can be taken again at once: a new room, a new rid (history is keyed by rid)
  await owner.client.createRoom(name, 'Again');
  assert.notEqual(ridOf(name), rid);
  await sleep(1000); // a retry or two against the stopped Redis
  assert.equal(outboxRows(), '1');
  redis = await startRedis(redisPort); // empty: the earlier entries are gone with it
  await until('the waiting deletion sent', () => streamRids(redisPort).includes(rid), 30000);
  assert.deepEqual(streamRids(redisPort), [rid]);
  await until('the outbox emptied', () => outboxRows() === '0');
  assert.ok(before.length >= 2);
  assert.match(site.web.stderr, /room deletion\(s\) sent/);
  assert.match(site.web.stderr, /warn website: events: redis.*room deletions wait in room_deletions/);
});
