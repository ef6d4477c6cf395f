// `CHAT_REPLICAS=3 WEB_REPLICAS=2 make run` for real (issue 11): scripts/run-native starts three
// chat daemons on consecutive ports (admin listeners on their own consecutive ports) and two
// websites, lists all of them in nginx's upstreams, and the happy path works through the one
// public port with its WebSockets spread over the chat replicas (so two users of one room sit
// on different replicas and still see each other join, chat and leave). Bad replica counts
// and overlapping port ranges are refused with a clear message.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, BUILD, freePort, freePortRange } from '../lib/proc.mjs';
import { SANITIZER_RE } from '../lib/stack.mjs';
import { happyPath, eventually, runNative as runNativeWith } from './helpers.mjs';

const STATE = mkdtempSync(join(tmpdir(), 'parley-replicas-'));
chmodSync(STATE, 0o755);
const running = new Set();
after(async () => {
  // SIGINT: run-native stops every service it started (each runs in a session of its own, so
  // a SIGKILL of run-native's group would leave them running)
  for (const r of running) await r.stop('SIGINT');
  rmSync(STATE, { recursive: true, force: true });
});

// n consecutive free ports (below the ephemeral range: proc.mjs)
const freeRange = freePortRange;

const CHATS = 3, WEBS = 2;
const ports = { PUBLIC_PORT: await freePort(), WEB_PORT: await freeRange(WEBS),
  CHAT_PORT: await freeRange(CHATS), CHAT_ADMIN_PORT: await freeRange(CHATS), DB_PORT: await freePort(),
  REDIS_PORT: await freePort(), MONGO_PORT: await freePort() };

const runNative = (extraEnv = {}) => runNativeWith({ state: STATE, build: BUILD, ports, running }, extraEnv);

async function metrics(port) {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Object.fromEntries([...body.matchAll(/^([a-z_]+) (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

test('CHAT_REPLICAS=3 WEB_REPLICAS=2: every replica in nginx, the happy path across replicas', { timeout: 300000 }, async () => {
  const r = runNative({ CHAT_REPLICAS: String(CHATS), WEB_REPLICAS: String(WEBS),
    // a generous Redis timeout: five daemons start at once on two shared cores
    CHAT_REDIS_TIMEOUT_MS: '15000',
    // three happy paths register and log in six users from one address: above nginx's
    // default login rate (10/min, burst 10), which is not what this test is about
    NGINX_AUTH_RATE: '600r/m', NGINX_AUTH_BURST: '100' });
  await r.ready;
  for (let k = 1; k <= CHATS; k++) assert.match(r.out, new RegExp(`run-native \\| chat${k} +started \\(pid \\d+\\)`));
  for (let k = 1; k <= WEBS; k++) assert.match(r.out, new RegExp(`run-native \\| website${k} +started \\(pid \\d+\\)`));
  const conf = readFileSync(join(STATE, 'nginx', 'nginx.conf'), 'utf8');
  for (let k = 0; k < CHATS; k++) assert.ok(conf.includes(`server 127.0.0.1:${ports.CHAT_PORT + k};`), `chat ${k} upstream`);
  for (let k = 0; k < WEBS; k++) assert.ok(conf.includes(`server 127.0.0.1:${ports.WEB_PORT + k};`), `website ${k} upstream`);
  for (let k = 0; k < CHATS; k++) {
    const h = await fetch(`http://127.0.0.1:${ports.CHAT_ADMIN_PORT + k}/healthz`);
    assert.equal(h.status, 200, `chat ${k} admin listener`);
  }
  const url = `http://127.0.0.1:${ports.PUBLIC_PORT}`;
  // happyPath: two users register (on either website), chat and see each other's join and
  // leave; with three upstreams and round robin their sockets are on different replicas
  for (let i = 0; i < 3; i++) await happyPath(url);
  const per = [];
  for (let k = 0; k < CHATS; k++) per.push((await metrics(ports.CHAT_ADMIN_PORT + k)).chat_handshakes_accepted_total);
  assert.ok(per.every((n) => n >= 1), `every chat replica took WebSockets: ${per}`);
  const ids = new Set((r.out.match(/presence: replica id [0-9a-f]{16}/g) || []).map((s) => s.slice(-16)));
  assert.ok(ids.size >= CHATS, 'each replica has its own presence id');
  const ex = await r.stop('SIGINT');
  assert.equal(ex.code, 0, r.out.slice(-3000));
  assert.ok(!SANITIZER_RE.test(r.out), `sanitizer report:\n${r.out.slice(-6000)}`);
});

test('bad replica counts and overlapping port ranges are refused with a clear message', async () => {
  for (const [env, msg] of [
    [{ CHAT_REPLICAS: '0' }, /CHAT_REPLICAS must be a whole number from 1 to 8, got '0'/],
    [{ CHAT_REPLICAS: '9' }, /CHAT_REPLICAS must be a whole number from 1 to 8, got '9'/],
    [{ CHAT_REPLICAS: 'two' }, /CHAT_REPLICAS must be a whole number from 1 to 8/],
    [{ WEB_REPLICAS: '-1' }, /WEB_REPLICAS must be a whole number from 1 to 8/],
    [{ CHAT_REPLICAS: '3', CHAT_ADMIN_PORT: String(ports.CHAT_PORT + 2) }, /would both use port/],
    [{ CHAT_REPLICAS: '2', CHAT_PORT: '65535' }, /beyond 65535/],
  ]) {
    const b = runNative(env);
    assert.notEqual((await b.exited).code, 0, JSON.stringify(env));
    assert.match(b.out, msg);
  }
});
