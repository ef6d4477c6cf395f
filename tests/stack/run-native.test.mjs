// `make run` for real: scripts/run-native on free ports with a temp state dir. It must bring
// up PostgreSQL, Redis, MongoDB (here: the stand-in, as no mongod is installed), website,
// chat and nginx, print the URL and the first admin's credentials, serve the site on the
// public port, stop everything on SIGINT, reuse its state (same database, same admin
// password) on the next start, restart a daemon that died, and give up on a crash loop.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, existsSync, chmodSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, BUILD, freePort } from '../lib/proc.mjs';
import { WebClient, SANITIZER_RE } from '../lib/stack.mjs';
import { happyPath, eventually, WAIT_MS, runNative as runNativeWith } from './helpers.mjs';

const STATE = mkdtempSync(join(tmpdir(), 'parley-native-'));
chmodSync(STATE, 0o755);
const running = new Set();
after(async () => {
  for (const r of running) await r.stop('SIGKILL');
  // The cluster's files belong to the postgres user; we made the dir, we remove it.
  rmSync(STATE, { recursive: true, force: true });
});

const ports = { PUBLIC_PORT: await freePort(), WEB_PORT: await freePort(),
  CHAT_PORT: await freePort(), CHAT_ADMIN_PORT: await freePort(), DB_PORT: await freePort(),
  REDIS_PORT: await freePort(), MONGO_PORT: await freePort() };

function portOpen(port) {
  return new Promise((res) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => { c.destroy(); res(true); });
    c.once('error', () => { c.destroy(); res(false); });
  });
}

const runNative = (extraEnv = {}) => runNativeWith({ state: STATE, build: BUILD, ports, running }, extraEnv);

const url = `http://127.0.0.1:${ports.PUBLIC_PORT}`;

// PIDs run-native printed for a service ("chat started (pid N)"), oldest first.
function startedPids(out, name) {
  return [...out.matchAll(new RegExp(`run-native \\| ${name} started \\(pid (\\d+)\\)`, 'g'))].map((m) => Number(m[1]));
}
function alivePid(pid) {
  try { process.kill(pid, 0); } catch { return false; }
  // A zombie is dead too.
  try { return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}
// After a stop: no port open and no process run-native ever started is left.
async function assertAllGone(r, what) {
  for (const [name, port] of Object.entries(ports)) {
    assert.equal(await portOpen(port), false, `${name} ${port} still open after ${what}`);
  }
  for (const name of ['db', 'redis', 'mongo', 'website', 'chat', 'nginx']) {
    for (const pid of startedPids(r.out, name)) assert.equal(alivePid(pid), false, `${name} pid ${pid} left after ${what}`);
  }
}
let adminPassword;
let first;

test('first start: brings everything up, prints the URL and the admin credentials', { timeout: 240000 }, async () => {
  const r = runNative();
  await r.ready;
  assert.match(r.out, new RegExp(`Parley is running at http://localhost:${ports.PUBLIC_PORT}`));
  const m = r.out.match(/First admin: (\S+)\s+Password: +(\S+)/);
  assert.ok(m, `credentials printed:\n${r.out}`);
  assert.equal(m[1], 'admin@example.com');
  adminPassword = m[2];
  assert.equal(adminPassword, readFileSync(join(STATE, 'secrets', 'admin_password'), 'utf8'));
  // Logs of every service come out prefixed.
  for (const p of ['db      | ', 'redis   | ', 'mongo   | ', 'website | ', 'nginx   | ']) assert.ok(r.out.includes(p), `no "${p}" lines`);
  // It says which MongoDB it started (no mongod here: the stand-in).
  assert.match(r.out, /MongoDB: no mongod installed, starting the wire-compatible stand-in/);
  assert.match(r.out, /mongo-standin listening on 127\.0\.0\.1:\d+ \(file storage in /);
  // Redis: append-only, no eviction, password required, only on 127.0.0.1.
  const conf = readFileSync(join(STATE, 'redis', 'redis.conf'), 'utf8');
  for (const l of ['appendonly yes', 'appendfsync everysec', 'maxmemory-policy noeviction', 'bind 127.0.0.1']) {
    assert.ok(conf.includes(`\n${l}\n`), `redis.conf has ${l}`);
  }
  assert.equal(statSync(join(STATE, 'redis', 'redis.conf')).mode & 0o077, 0, 'redis.conf (it has the password) is private');
  const pw = readFileSync(join(STATE, 'secrets', 'redis_password'), 'utf8');
  const cli = (env, ...args) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(ports.REDIS_PORT), ...args],
    { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  assert.match(cli({}, 'ping').stdout, /NOAUTH/, 'no password, no Redis');
  assert.equal(cli({ REDISCLI_AUTH: pw }, 'ping').stdout.trim(), 'PONG');
  assert.equal(cli({ REDISCLI_AUTH: pw }, 'config', 'get', 'appendonly').stdout.split('\n')[1], 'yes');
  assert.ok(existsSync(join(STATE, 'redis', 'appendonlydir')), 'the AOF is in the state dir');
  // The chat daemon gets Redis and MongoDB settings; the website gets Redis's address.
  const env = (name) => readFileSync(`/proc/${startedPids(r.out, name).at(-1)}/environ`, 'utf8').split('\0');
  const chatEnv = env('chat');
  assert.ok(chatEnv.includes(`CHAT_REDIS_PORT=${ports.REDIS_PORT}`), 'CHAT_REDIS_PORT');
  assert.ok(chatEnv.includes('CHAT_REDIS_HOST=127.0.0.1'));
  assert.ok(chatEnv.includes(`CHAT_REDIS_PASSWORD=${pw}`));
  assert.ok(chatEnv.includes(`CHAT_MONGO_URI=mongodb://127.0.0.1:${ports.MONGO_PORT}/?appname=parley-chat`));
  assert.ok(chatEnv.includes('CHAT_MONGO_DB=parley'));
  assert.ok(env('website').includes(`WEB_REDIS_PORT=${ports.REDIS_PORT}`), 'WEB_REDIS_PORT');
  assert.ok(!r.out.includes(pw), 'the Redis password is not printed');

  // The site works through the public port, the admin can log in and see /admin.
  const admin = new WebClient(url);
  const li = await admin.login('admin@example.com', adminPassword);
  assert.equal(li.status, 303, li.text.slice(0, 300));
  assert.equal((await admin.get('/admin')).status, 200);
  first = await happyPath(url);
  // nginx logs go to the terminal with the rest (the /ws lines included).
  await eventually(() => /nginx {3}\| .*"GET \/ws HTTP\/1\.1" 101 /.test(r.out), 'a /ws log line');
  assert.ok(!r.out.includes('access_token'), 'no token in the logs');

  // Ctrl-C: everything stops and the script exits by itself.
  const ex = await r.stop('SIGINT');
  assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}\n${r.out.slice(-2000)}`);
  assert.ok(!SANITIZER_RE.test(r.out), `sanitizer report:\n${r.out.slice(-6000)}`);
  await assertAllGone(r, 'Ctrl-C');
  assert.equal(existsSync(join(STATE, 'pg', 'data', 'postmaster.pid')), false, 'PostgreSQL stopped cleanly');
});

test('second start reuses the state: same admin password, data kept; SIGTERM stops it', { timeout: 240000 }, async () => {
  assert.ok(adminPassword && first, 'first start ran');
  const r = runNative();
  await r.ready;
  assert.ok(!r.out.includes(adminPassword), 'the password is not printed again');
  const admin = new WebClient(url);
  assert.equal((await admin.login('admin@example.com', adminPassword)).status, 303);
  assert.equal((await admin.get(`/rooms/${first.room}`)).status, 200, 'the room made in the first run is still there');
  const ann = new WebClient(url);
  assert.equal((await ann.login(first.ann.email, first.ann.password)).status, 303, 'and its users');
  // A plain SIGTERM to the script alone (as a service manager would send) also stops all.
  r.child.kill('SIGTERM');
  const t = setTimeout(() => r.stop('SIGKILL'), WAIT_MS * 3);
  const ex = await r.exited;
  clearTimeout(t);
  assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}\n${r.out.slice(-2000)}`);
  assert.ok(!SANITIZER_RE.test(r.out), `sanitizer report:\n${r.out.slice(-6000)}`);
  await assertAllGone(r, 'SIGTERM');
});

test('a daemon that dies is restarted, the reason logged, and the site answers again', { timeout: 240000 }, async () => {
  const r = runNative();
  await r.ready;
  try {
    const chat0 = startedPids(r.out, 'chat').at(-1);
    const web0 = startedPids(r.out, 'website').at(-1);
    const redis0 = startedPids(r.out, 'redis').at(-1);
    process.kill(chat0, 'SIGTERM');
    process.kill(web0, 'SIGKILL');
    process.kill(redis0, 'SIGKILL');
    await eventually(() => /chat exited with code 0 \(death 1 within 60s\): restarting it in 1s/.test(r.out), 'the chat death logged');
    await eventually(() => /website killed by signal KILL \(death 1 within 60s\)/.test(r.out), 'the website death logged');
    await eventually(() => /redis killed by signal KILL/.test(r.out), 'the Redis death logged');
    await eventually(() => startedPids(r.out, 'chat').length === 2 && startedPids(r.out, 'website').length === 2
      && startedPids(r.out, 'redis').length === 2, 'both restarted');
    // The site works again: pages, log-in, and chat through nginx.
    await eventually(async () => {
      try { return (await fetch(`${url}/login`)).status === 200; } catch { return false; }
    }, 'the site to answer again');
    await eventually(async () => {
      try { await happyPath(url); return true; } catch { return false; }
    }, 'the happy path after the restarts');
    // nginx too: its master dies, its workers with it, and a new nginx takes the port.
    const ngx0 = startedPids(r.out, 'nginx').at(-1);
    process.kill(ngx0, 'SIGKILL');
    await eventually(() => startedPids(r.out, 'nginx').length === 2, 'nginx restarted');
    await eventually(async () => {
      try { return (await fetch(`${url}/login`)).status === 200; } catch { return false; }
    }, 'the site through the new nginx');
    assert.equal(r.child.exitCode, null, 'run-native kept running');
  } finally {
    const ex = await r.stop('SIGINT');
    assert.equal(ex.code, 0, `exit ${JSON.stringify(ex)}\n${r.out.slice(-3000)}`);
  }
  await assertAllGone(r, 'Ctrl-C after restarts');
});

test('a crash loop makes run-native give up loudly and stop everything', { timeout: 240000 }, async () => {
  const r = runNative({ PARLEY_RESTART_LIMIT: '3' });
  await r.ready;
  for (let k = 1; k <= 3; k++) {
    const pids = startedPids(r.out, 'chat');
    assert.equal(pids.length, k, r.out.slice(-2000));
    process.kill(pids.at(-1), 'SIGKILL');
    if (k < 3) await eventually(() => startedPids(r.out, 'chat').length === k + 1, `restart ${k}`);
  }
  const ex = await r.exited;
  assert.equal(ex.code, 1, `exit ${JSON.stringify(ex)}`);
  assert.match(r.out, /error: chat killed by signal KILL; it died 3 times within 60s: crash loop, giving up and stopping everything/);
  await assertAllGone(r, 'giving up');
});

test('a bad setting is refused with a clear message', async () => {
  const r = runNative({ PUBLIC_PORT: 'eighty' });
  const ex = await r.exited;
  assert.notEqual(ex.code, 0);
  assert.match(r.out, /PUBLIC_PORT must be a port number/);
  for (const [k, v, msg] of [['REDIS_APPENDFSYNC', 'sometimes', /REDIS_APPENDFSYNC must be always, everysec or no/],
    ['PARLEY_RESTART_LIMIT', '0', /PARLEY_RESTART_LIMIT must be 1-100/], ['MONGO_PORT', '70000', /MONGO_PORT must be a port number/]]) {
    const b = runNative({ [k]: v });
    assert.notEqual((await b.exited).code, 0);
    assert.match(b.out, msg);
  }
});

test('a state dir that postgres and nginx cannot reach moves their files to /var/lib/parley', {
  skip: process.getuid() !== 0 ? 'only as root' : false, timeout: 240000 }, async () => {
  const priv = mkdtempSync(join(tmpdir(), 'parley-private-')); // mode 700, like /root
  const state = join(priv, 'state');
  let alt = null;
  try {
    const r = runNative({ PARLEY_STATE_DIR: state });
    await r.ready;
    const m = r.out.match(/files are in (\/var\/lib\/parley\/[0-9a-f]{16})/);
    assert.ok(m, r.out.slice(0, 2000));
    alt = m[1];
    const st = await fetch(`${url}/static/style.css`);
    assert.equal(st.status, 200, 'nginx workers can read the static files');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    r.child.kill('SIGTERM');
    assert.equal((await r.exited).code, 0);
  } finally {
    rmSync(priv, { recursive: true, force: true });
    if (alt) rmSync(alt, { recursive: true, force: true });
  }
});
