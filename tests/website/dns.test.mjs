// A slow name server never holds a page. Found in use: after `compose down` + `up`, the
// container DNS did not answer for a while, and GET /rooms took 30 s because looking up
// Redis's name (for the unread counts) blocked the request. The website now asks a
// background resolver (common/cm_resolve.h) and pages only read its cache; the chat daemon's
// event loop does the same.
//
// The website runs against a name server of the test's (tests/lib/dns.mjs) that first never
// answers, then answers. Real PostgreSQL (by address), a real Redis (by name), the real website.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BIN, ROOT, freePort, waitForPort, startDaemon, sleep } from '../lib/proc.mjs';
import { startPostgres } from '../lib/pg.mjs';
import { waitForHttp, WebClient } from '../lib/stack.mjs';
import { startDns, canUnshare } from '../lib/dns.mjs';

const REDIS_NAME = 'redis.parley-test';
let dns, pg, web, redis, url, unshareOk;

before(async () => {
  unshareOk = canUnshare();
  if (!unshareOk) return;
  dns = await startDns({ [REDIS_NAME]: '127.0.0.1' });
  const redisPort = await freePort();
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', ''],
    { stdio: 'ignore' });
  await waitForPort(redisPort);
  pg = await startPostgres();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  web = await startDaemon(dns.wrap(BIN.website), { ...pg.env, JWT_SECRET: randomBytes(32).toString('hex'),
    WEB_PORT: String(port), STATIC_DIR: join(ROOT, 'website', 'static'), LOG_LEVEL: 'debug',
    PWHASH_MEMLIMIT_KIB: '8192', PWHASH_OPSLIMIT: '1',
    WEB_REDIS_HOST: REDIS_NAME, WEB_REDIS_PORT: String(redisPort), WEB_REDIS_TIMEOUT_MS: '500' },
  port, { timeoutMs: 60000 });
  await waitForHttp(`${url}/healthz`, { exited: web.exited, timeoutMs: 60000 });
});

after(async () => {
  const r = await web?.stop();
  redis?.kill('SIGTERM');
  await pg?.destroy();
  dns?.close();
  if (web) assert.deepEqual(r, { code: 0, signal: null }, web.stderr.slice(-3000));
});

const myRooms = async (c) => {
  const r = await c.get('/rooms');
  assert.equal(r.status, 200);
  return r.text.split('<h2>My rooms</h2>')[1]?.split('</section>')[0] ?? '';
};

test('pages answer at once while the name server is silent, and unread counts come back when it answers', async (t) => {
  if (!unshareOk) { t.skip('cannot make a mount namespace here (unshare -m needs root)'); return; }
  const c = new WebClient(url);
  const id = randomBytes(4).toString('hex');
  assert.equal((await c.register(`dns-${id}@example.com`, `dns ${id}`, `pw-${id}-long-enough`)).status, 303);
  const name = `dns-${id}`;
  await c.get('/rooms');
  assert.equal((await c.postForm('/rooms', { name, title: name })).status, 303);

  // Silent server: a lookup blocks for dns.lookupMs. Every page answers well before one
  // lookup could have ended (the margin is the whole lookup: this is not a speed test).
  assert.ok(dns.queries.some((q) => q.includes(REDIS_NAME)), `the website asked the DNS: ${dns.queries}`);
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const mine = await myRooms(c);
    const took = Date.now() - t0;
    assert.ok(took < dns.lookupMs / 2, `GET /rooms took ${took} ms while DNS was silent`);
    assert.match(mine, new RegExp(`${name}[\\s\\S]*unread: unknown`), 'the count is unknown, and says so');
  }
  const t1 = Date.now();
  assert.equal((await c.get(`/rooms/${name}`)).status, 200);
  assert.ok(Date.now() - t1 < dns.lookupMs / 2, 'the room page did not wait on DNS');

  // The server answers: the background lookup that is under way times out, the next one
  // gets the address, and the counts are known again without a restart.
  dns.answer();
  const until = Date.now() + dns.lookupMs * 3;
  let mine = await myRooms(c);
  while (/unread: unknown/.test(mine) && Date.now() < until) {
    await sleep(1000);
    mine = await myRooms(c);
  }
  assert.ok(mine.includes(name));
  assert.doesNotMatch(mine, /unread: unknown/, 'unread counts are back once the name resolves');
  assert.match(web.stderr, new RegExp(`resolve: ${REDIS_NAME.replace('.', '\\.')} is 127\\.0\\.0\\.1`));
});
