// The compose stack for real: builds every image of docker-compose.yml and runs it with
// podman-compose (no Docker engine here; tests/compose/podman-env.sh prepares podman and the
// debian:bookworm-slim base image). Then: the happy path through the published port, only
// nginx publishes a port, the health checks pass, and `down` + `up` keeps users and rooms.
// Registered only with -DPARLEY_COMPOSE_TEST=ON (CI, `make test-compose`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ROOT, freePort } from '../lib/proc.mjs';
import { WebClient, waitForHttp } from '../lib/stack.mjs';
import { happyPath, login } from '../stack/helpers.mjs';

const BUILD_TIMEOUT_MS = 20 * 60 * 1000;
const UP_TIMEOUT_MS = 5 * 60 * 1000;
const project = `parleyct${randomBytes(3).toString('hex')}`;
const dataDir = mkdtempSync(join(tmpdir(), 'parley-compose-db-'));
chmodSync(dataDir, 0o755);
let env;
let url;

function log(msg) { process.stderr.write(`compose-test: ${msg}\n`); }

// Runs a command to completion, streaming nothing; resolves {code, out}.
function run(cmd, args, { timeoutMs = 10 * 60 * 1000, allowFail = false } = {}) {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b) => { out += b; });
    child.stderr.on('data', (b) => { out += b; if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(b); });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      if ((code !== 0 || signal) && !allowFail) {
        rej(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}):\n${out.slice(-4000)}`));
      } else res({ code, out });
    });
  });
}
const compose = (...args) => run('podman-compose', ['-p', project, '-f', 'docker-compose.yml', ...args]);
const podman = (...args) => run('podman', args);

async function containers() {
  const { out } = await podman('ps', '-a', '--filter', `label=io.podman.compose.project=${project}`,
    '--format', '{{.Names}}');
  return out.split('\n').filter(Boolean);
}

// podman-compose 1.0.3 lets a .env in the project dir override the environment: refuse to
// run against someone's real settings.
function checkDotEnv() {
  const f = join(ROOT, '.env');
  if (!existsSync(f)) return null;
  const text = readFileSync(f, 'utf8');
  if (/^\s*(DB_DATA_DIR|PUBLIC_PORT|PUBLIC_ADDR|DB_PASSWORD|ADMIN_PASSWORD|ADMIN_EMAIL|JWT_SECRET)\s*=/m.test(text)) {
    return `${f} exists and podman-compose would use its values instead of the test's; move it away to run this test`;
  }
  return null;
}
const skip = checkDotEnv() || false;

before(async () => {
  if (skip) return;
  const setup = spawnSync(join(ROOT, 'tests', 'compose', 'podman-env.sh'), [],
    { encoding: 'utf8', timeout: 10 * 60 * 1000 });
  if (setup.status !== 0) throw new Error(`podman-env.sh failed:\n${setup.stderr}`);
  env = { ...process.env, CONTAINERS_CONF: setup.stdout.trim(), PUBLIC_ADDR: '127.0.0.1',
    DB_DATA_DIR: dataDir, DB_PASSWORD: randomBytes(24).toString('hex'),
    JWT_SECRET: randomBytes(32).toString('hex'), ADMIN_EMAIL: 'admin@example.com',
    // Its own image tags, so a concurrent run (another checkout) cannot swap images under it.
    PARLEY_IMAGE_TAG: project,
    ADMIN_PASSWORD: randomBytes(12).toString('base64url') };
  log(`building images (project ${project}; the first build takes several minutes)`);
  const t0 = Date.now();
  await run('podman-compose', ['-p', project, '-f', 'docker-compose.yml', 'build'], { timeoutMs: BUILD_TIMEOUT_MS });
  log(`images built in ${Math.round((Date.now() - t0) / 1000)} s`);
});

after(async () => {
  if (skip || !env) return;
  await compose('down').catch((e) => log(e.message));
  for (const c of await containers().catch(() => [])) await podman('rm', '-f', c).catch(() => {});
  for (const n of ['internal', 'public']) {
    await run('podman', ['network', 'rm', '-f', `${project}_${n}`], { allowFail: true });
  }
  // Only the tags go: the layers stay in podman's cache for the next build.
  for (const i of ['db', 'website', 'chat', 'nginx']) {
    await run('podman', ['rmi', `localhost/parley-${i}:${project}`], { allowFail: true });
  }
  rmSync(dataDir, { recursive: true, force: true });
});

// Picks the published port just before `up` (a port chosen before a build of minutes may
// be taken by then).
async function up() {
  env.PUBLIC_PORT = String(await freePort());
  url = `http://127.0.0.1:${env.PUBLIC_PORT}`;
  await compose('up', '-d');
  try {
    await waitForHttp(`${url}/healthz`, { timeoutMs: UP_TIMEOUT_MS });
  } catch (e) {
    const logs = [];
    for (const c of await containers()) logs.push(`--- ${c}\n${(await run('podman', ['logs', c], { allowFail: true })).out.slice(-3000)}`);
    throw new Error(`${e.message}\n${logs.join('\n')}`);
  }
}

let first;
test('compose stack: happy path through the published port', { skip, timeout: UP_TIMEOUT_MS * 2 }, async () => {
  await up();
  first = await happyPath(url);
  const page = await fetch(`${url}/static/chat.js`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('cache-control') || '', /max-age=/);
  assert.match(page.headers.get('content-security-policy') || '', /script-src 'self'/);
  const admin = new WebClient(url);
  assert.equal((await admin.login(env.ADMIN_EMAIL, env.ADMIN_PASSWORD)).status, 303, 'first admin from .env');
  assert.equal((await admin.get('/admin')).status, 200);
});

test('only nginx publishes a port, and only the one asked for', { skip }, async () => {
  const names = await containers();
  assert.equal(names.length, 4, names.join(' '));
  for (const c of names) {
    const { out } = await podman('inspect', c, '--format', '{{json .HostConfig.PortBindings}}');
    const bindings = JSON.parse(out.trim() || 'null') || {};
    const published = Object.entries(bindings).flatMap(([k, v]) => (v || []).map((b) => `${k}->${b.HostIp}:${b.HostPort}`));
    if (c.includes('_nginx_')) assert.deepEqual(published, [`8080/tcp->127.0.0.1:${env.PUBLIC_PORT}`], c);
    else assert.deepEqual(published, [], `${c} publishes ${published.join(',')}`);
  }
});

test('the health checks of db, website and chat pass', { skip }, async () => {
  for (const c of await containers()) {
    if (c.includes('_nginx_')) continue;
    const r = await run('podman', ['healthcheck', 'run', c], { allowFail: true });
    assert.equal(r.code, 0, `${c} healthcheck: ${r.out}`);
  }
});

test('the nginx log of the /ws connections holds no token', { skip }, async () => {
  assert.ok(first, 'the happy path ran');
  const ng = (await containers()).find((c) => c.includes('_nginx_'));
  const { out } = await run('podman', ['logs', ng]);
  assert.match(out, /"GET \/ws HTTP\/1\.1" 101 /);
  for (const t of first.tokens) assert.ok(!out.includes(t.split('.')[2]), 'token in nginx log');
  assert.ok(!out.includes('access_token'));
});

test('down then up keeps users and rooms (data in the bind-mounted dir)', { skip, timeout: UP_TIMEOUT_MS * 2 }, async () => {
  assert.ok(first, 'the happy path ran');
  await compose('down');
  assert.equal((await containers()).length, 0, 'down removed the containers');
  assert.ok(existsSync(join(dataDir, 'PG_VERSION')), 'the cluster is on the host');
  await up();
  const ann = await login(url, first.ann.email, first.ann.password);
  const room = await ann.get(`/rooms/${first.room}`);
  assert.equal(room.status, 200, 'the room survived');
  const t = await ann.chatToken(first.room);
  assert.equal(t.status, 200);
  await login(url, first.bob.email, first.bob.password);
});
