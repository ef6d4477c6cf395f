// bench.smoke: a few seconds of the load generator against the real chat daemon. It checks
// what a user of the chat would: every message reaches every member of its room exactly
// once and in the order it was sent. No timing is asserted (that is `make bench`'s job).
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
  const server = await sys.start(secret);
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
  } finally {
    await server.stop();
  }
});
