// A slow name server never freezes the chat daemon. hiredis's redisAsyncConnect resolves a
// host name with a blocking getaddrinfo: on the event loop that would stop every WebSocket,
// /healthz and /metrics for as long as the name server takes (found in use after a compose
// `down` + `up`: the container DNS did not answer for a while). The loop now only reads the
// background resolver's cache (common/cm_resolve.h).
//
// The chat runs against a name server of the test's (tests/lib/dns.mjs) that first never
// answers, then answers. A real Redis (by name), the MongoDB stand-in, the real daemon.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChat, Client, metrics, until, T } from './lib.mjs';
import { startRedis } from '../lib/redis.mjs';
import { BIN, sleep } from '../lib/proc.mjs';
import { startDns, canUnshare } from '../lib/dns.mjs';

const REDIS_NAME = 'redis.parley-test';
const cleanup = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

test('the event loop serves while the name server is silent; Redis is reached once it answers', async (t) => {
  if (!canUnshare()) { t.skip('cannot make a mount namespace here (unshare -m needs root)'); return; }
  const dns = await startDns({ [REDIS_NAME]: '127.0.0.1' }, { addr: '127.0.0.154' });
  cleanup.push(() => dns.close());
  const redis = await startRedis();
  cleanup.push(() => redis.cleanup());
  const chat = await startChat({ CHAT_REDIS_HOST: REDIS_NAME, CHAT_REDIS_TIMEOUT_MS: '2000' },
    { redis, waitRedis: false, bin: dns.wrap(BIN.chat) });
  cleanup.push(() => chat.d.stop('SIGKILL'));

  // Silent server: one lookup blocks for dns.lookupMs. The admin listener answers well within
  // that, again and again over more than one lookup's time (the margin is the whole lookup:
  // this is not a speed test).
  const end = Date.now() + dns.lookupMs * 1.5;
  let n = 0;
  while (Date.now() < end) {
    const t0 = Date.now();
    const m = await metrics(chat.port);
    const took = Date.now() - t0;
    assert.ok(took < dns.lookupMs / 2, `GET /metrics took ${took} ms while DNS was silent`);
    assert.equal(m.chat_redis_up, 0, 'no Redis without its address');
    n++;
    await sleep(2000);
  }
  assert.ok(n >= 5, `the admin listener answered ${n} times`);
  assert.ok(dns.queries.some((q) => q.includes(REDIS_NAME)), `the daemon asked the DNS: ${dns.queries}`);

  // The server answers: the daemon gets the address, connects, and the chat works.
  dns.answer();
  await until(async () => { const m = await metrics(chat.port); return m.chat_redis_up === 1 && m.chat_redis_subscriber_up === 1
      && m.chat_moderation_synced === 1; },
    dns.lookupMs * 3, 'chat connected to redis once the name resolved');
  const c = await Client.open(chat.url(chat.token({ sub: 'ann@example.com', name: 'ann', room: 'lobby' })));
  c.send({ type: 'message', text: 'hello by name', client_id: 'dns-1' });
  const got = await c.next((f) => f.type === 'message' && f.client_id === 'dns-1', T);
  assert.equal(got.text, 'hello by name');
  assert.equal(got.seq, 1);
  c.close();
  assert.match(chat.d.stderr, new RegExp(`resolve: ${REDIS_NAME.replace('.', '\\.')} is 127\\.0\\.0\\.1`));
});
