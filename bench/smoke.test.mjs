// bench.smoke: a few seconds of the load generator against the real chat daemon, set up as
// `make bench` runs it (history on: Redis with AOF and the MongoDB stand-in, not mongod). It
// checks what a user of the chat would: every message reaches every member of its room exactly
// once and in the order it was sent; and what the benchmark claims: history was on (every
// message archived) and Redis's and the stand-in's CPU were sampled with the daemon's.
// No timing is asserted (that is `make bench`'s job).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SYSTEMS, runLoadgen, newSecret, haveBinaries } from './lib.mjs';

const CONNS = 200;
const ROOMS = 4;
const SENDERS = 8;

test('load generator: every message delivered once, in order, to every room member', async () => {
  assert.deepEqual(haveBinaries(), [], 'build parley-loadgen, lws-bare and parley-chat first');
  const secret = newSecret();
  const sys = SYSTEMS['parley-chat'];
  const server = await sys.start(secret, 'sweep'); // Redis timeout 15 s, as in the chat tests
  try {
    const r = await runLoadgen(sys, server, {
      conns: CONNS, rooms: ROOMS, senders: SENDERS, rate: 400, duration: 3, drain: 20, size: 64,
      procs: 2, label: 'smoke',
    }, { secret, timeoutMs: 120000 });
    const detail = `${JSON.stringify(r)}\nloadgen stderr:\n${r.stderr}\nchat stderr:\n${server.logs()}`;
    assert.equal(r.connected, CONNS, `all connections open\n${detail}`);
    assert.equal(r.failed, 0, detail);
    assert.equal(r.closed_early, 0, `no connection closed by the server\n${detail}`);
    assert.ok(r.sent > 0, detail);
    // Each room holds CONNS/ROOMS members, the sender included: that many copies per message.
    assert.equal(r.expected, r.sent * (CONNS / ROOMS), detail);
    assert.equal(r.delivered, r.expected, `no message lost\n${detail}`);
    assert.equal(r.lost, 0, detail);
    assert.equal(r.gaps, 0, `no sequence gaps\n${detail}`);
    assert.equal(r.reorders, 0, `order kept per sender\n${detail}`);
    assert.equal(r.bad_frames, 0, `no error frames\n${detail}`);
    assert.equal(r.rc, 0, detail);
    // the CPU of redis-server and of the stand-in, sampled over the same window (--also-pid)
    assert.equal(r.also_cpu_run_s.length, 4, detail);
    for (const k of ['redis_cpu_run_s', 'mongo_cpu_run_s', 'store_cpu_run_s']) {
      assert.ok(Number.isFinite(r[k]) && r[k] >= 0, `${k} measured\n${detail}`);
    }
    // history was on: the archive holds every message sent (the writer drains the outbox)
    let archived = -1;
    for (let i = 0; i < 600 && archived !== r.sent; i++) {
      const m = (await server.metrics()).match(/^chat_archive_archived_total (\d+)$/m);
      archived = m ? Number(m[1]) : -1;
      if (archived !== r.sent) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(archived, r.sent, `every message archived\n${detail}`);
  } finally {
    await server.stop();
  }
});

test('two chat daemons on one Redis (make bench-cluster): a room spans both, every message reaches every member once, in order', async () => {
  const secret = newSecret();
  const sys = SYSTEMS['parley-chat x2'];
  const server = await sys.start(secret, 'sweep'); // Redis timeout 15 s, as in the chat tests
  try {
    assert.equal(server.ports.length, 2);
    const r = await runLoadgen(sys, server, {
      conns: CONNS, rooms: ROOMS, senders: SENDERS, rate: 200, duration: 2, drain: 20, size: 64,
      procs: 1, label: 'smoke-cluster',
    }, { secret, timeoutMs: 120000 });
    const detail = `${JSON.stringify(r)}\nloadgen stderr:\n${r.stderr}\nchat stderr:\n${server.logs()}`;
    assert.equal(r.connected, CONNS, detail);
    assert.ok(r.sent > 0, detail);
    // half of each room's members are on the other daemon: only Redis can bring them the message
    assert.equal(r.expected, r.sent * (CONNS / ROOMS), detail);
    assert.equal(r.delivered, r.expected, `no message lost\n${detail}`);
    assert.equal(r.gaps + r.reorders + r.bad_frames + r.closed_early, 0, detail);
    assert.deepEqual(Object.keys(r.cpu_run_by), ['chat2', 'redis', 'mongo'], 'the second daemon, Redis and the stand-in sampled');
  } finally {
    await server.stop();
  }
});
