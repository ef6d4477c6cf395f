// `make run` for real: scripts/run-native on free ports with a temp state dir. It must bring
// up PostgreSQL, website, chat and nginx, print the URL and the first admin's credentials,
// serve the site on the public port, stop everything on SIGINT, and reuse its state (same
// database, same admin password) on the next start.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, BUILD, freePort } from '../lib/proc.mjs';
import { WebClient, SANITIZER_RE } from '../lib/stack.mjs';
import { happyPath, eventually, WAIT_MS } from './helpers.mjs';

const STATE = mkdtempSync(join(tmpdir(), 'parley-native-'));
chmodSync(STATE, 0o755);
const running = new Set();
after(async () => {
  for (const r of running) await r.stop('SIGKILL');
  // The cluster's files belong to the postgres user; we made the dir, we remove it.
  rmSync(STATE, { recursive: true, force: true });
});

const ports = { PUBLIC_PORT: await freePort(), WEB_PORT: await freePort(),
  CHAT_PORT: await freePort(), CHAT_ADMIN_PORT: await freePort(), DB_PORT: await freePort() };

function portOpen(port) {
  return new Promise((res) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => { c.destroy(); res(true); });
    c.once('error', () => { c.destroy(); res(false); });
  });
}

function runNative(extraEnv = {}) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME || '/root',
    PARLEY_STATE_DIR: STATE, PARLEY_BUILD_DIR: BUILD, NGINX_WORKERS: '1',
    ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])), ...extraEnv };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS']) if (process.env[k]) env[k] = process.env[k];
  // Its own process group, so the test can play Ctrl-C (SIGINT to the whole group) like a
  // terminal does.
  const child = spawn(join(ROOT, 'scripts', 'run-native'), [], { env, detached: true,
    stdio: ['ignore', 'pipe', 'pipe'] });
  const r = { child, out: '' };
  child.stdout.on('data', (b) => { r.out += b; });
  child.stderr.on('data', (b) => { r.out += b; if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(b); });
  r.exited = new Promise((res) => child.on('exit', (code, signal) => { running.delete(r); res({ code, signal }); }));
  r.stop = async (signal = 'SIGINT') => {
    if (child.exitCode !== null || child.signalCode !== null) return r.exited;
    try { process.kill(-child.pid, signal); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 60000);
    const res = await r.exited;
    clearTimeout(t);
    return res;
  };
  r.ready = eventually(() => {
    if (child.exitCode !== null) throw new Error(`run-native exited: ${child.exitCode}\n${r.out}`);
    return r.out.includes('Parley is running at');
  }, 'run-native to print its URL').catch((e) => { throw new Error(`${e.message}\n${r.out}`); });
  r.ready.catch(() => {}); // awaited by the tests that expect a start; not by the others
  running.add(r);
  return r;
}

const url = `http://127.0.0.1:${ports.PUBLIC_PORT}`;
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
  for (const p of ['db      | ', 'website | ', 'nginx   | ']) assert.ok(r.out.includes(p), `no "${p}" lines`);

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
  for (const [name, port] of Object.entries(ports)) {
    assert.equal(await portOpen(port), false, `${name} ${port} still open after Ctrl-C`);
  }
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
  for (const [name, port] of Object.entries(ports)) {
    assert.equal(await portOpen(port), false, `${name} ${port} still open after SIGTERM`);
  }
});

test('a bad setting is refused with a clear message', async () => {
  const r = runNative({ PUBLIC_PORT: 'eighty' });
  const ex = await r.exited;
  assert.notEqual(ex.code, 0);
  assert.match(r.out, /PUBLIC_PORT must be a port number/);
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
