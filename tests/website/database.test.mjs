// The website and its database coming and going: PostgreSQL stopped and restarted under a
// running site, the site started before the database, migrations applied once, two replicas
// migrating the same fresh database at the same time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startSite, newUser, uniq, WebClient } from './helpers.mjs';
import { startPostgres } from '../lib/pg.mjs';
import { BIN, ROOT, freePort, startDaemon, sleep } from '../lib/proc.mjs';
import { newSecret } from '../lib/token.mjs';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';

const FAST_HASH = { PWHASH_MEMLIMIT_KIB: '8192', PWHASH_OPSLIMIT: '1' };

// Polls until GET path answers `status` (the site recovers by itself; no fixed sleeps).
async function until(url, status, timeoutMs = 60000) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const r = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(10000) });
      await r.arrayBuffer();
      last = r.status;
      if (r.status === status) return;
    } catch (e) { last = e.message; }
    if (Date.now() > end) throw new Error(`${url} never answered ${status} (last ${last})`);
    await sleep(100);
  }
}

test('database stopped while the site runs: 503 for health and pages; back without a restart', async () => {
  const site = await startSite();
  try {
    const u = await newUser(site, 'db');
    const room = `db-${uniq()}`;
    assert.equal((await u.client.createRoom(room, 'DB room')).status, 303);
    assert.equal((await u.client.get('/rooms')).status, 200);

    site.pg.stop();
    const h = await fetch(`${site.url}/healthz`);
    assert.equal(h.status, 503);
    assert.deepEqual(await h.json(), { status: 'unavailable' });
    const page = await u.client.get('/rooms');
    assert.equal(page.status, 503);
    assert.match(page.text, /database is not reachable/);
    assert.equal((await u.client.get(`/rooms/${room}`)).status, 503);
    const t = await u.client.chatToken(room);
    assert.equal(t.status, 503);
    assert.equal(t.body.error, 'unavailable');
    const login = await site.client().login(u.email, u.password);
    assert.equal(login.status, 503);
    // pages that need no database still answer
    assert.equal((await fetch(`${site.url}/static/style.css`)).status, 200);

    site.pg.start();
    await until(`${site.url}/healthz`, 200);
    const again = await u.client.get('/rooms');
    assert.equal(again.status, 200, 'the old session works again');
    assert.match(again.text, new RegExp(room));
    assert.equal((await u.client.chatToken(room)).status, 200);
    const v = await newUser(site, 'after');
    assert.equal(v.res.status, 303);
    assert.equal(site.web.child.exitCode, null, 'never restarted');
  } finally {
    const r = await site.stop();
    assert.deepEqual(r, { code: 0, signal: null }, site.web.stderr.slice(-3000));
  }
});

test('site started before the database: serves 503, then works once the database is up', async () => {
  const pg = await startPostgres();
  pg.stop();
  const port = await freePort();
  const admin = { email: `first-${uniq()}@example.com`, password: randomBytes(12).toString('hex') };
  const env = { ...pg.env, JWT_SECRET: newSecret(), WEB_PORT: String(port), DB_START_WAIT: '1',
    DB_CONNECT_TIMEOUT: '1', STATIC_DIR: join(ROOT, 'website', 'static'), ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password, ...FAST_HASH };
  const web = await startDaemon(BIN.website, env, port, { timeoutMs: 60000 });
  try {
    const url = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${url}/healthz`)).status, 503);
    const c = new WebClient(url);
    const r = await c.login(admin.email, admin.password);
    assert.equal(r.status, 503);
    pg.start();
    await until(`${url}/healthz`, 200);
    // migrations ran and the first admin was created on the first contact
    const ok = await new WebClient(url).login(admin.email, admin.password);
    assert.equal(ok.status, 303);
    const files = readdirSync(join(ROOT, 'db', 'migrations')).filter((f) => /^\d+_.*\.sql$/.test(f));
    assert.equal(pg.psql('SELECT count(*) FROM schema_migrations'), String(files.length));
    assert.match(web.stderr, /serving 503 until it answers/);
  } finally {
    const r = await web.stop();
    await pg.destroy();
    assert.deepEqual(r, { code: 0, signal: null }, web.stderr.slice(-3000));
  }
});

test('migrations: applied once, recorded, idempotent across restarts; replicas do not race', async () => {
  const pg = await startPostgres();
  const started = [];
  try {
    const secret = newSecret();
    const ports = [await freePort(), await freePort(), await freePort()];
    const envFor = (port) => ({ ...pg.env, JWT_SECRET: secret, WEB_PORT: String(port), ...FAST_HASH,
      ADMIN_EMAIL: 'boss@example.com', ADMIN_PASSWORD: 'boss password' });
    // two replicas on one fresh database at the same moment
    const both = await Promise.all(ports.slice(0, 2).map((p) => startDaemon(BIN.website, envFor(p), p, { timeoutMs: 60000 })));
    started.push(...both);
    for (const p of ports.slice(0, 2)) await until(`http://127.0.0.1:${p}/healthz`, 200);
    const all = readdirSync(join(ROOT, 'db', 'migrations')).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
    assert.equal(pg.psql('SELECT string_agg(version::text || name, \',\' ORDER BY version) FROM schema_migrations'),
      all.map((f) => `${Number(f.split('_')[0])}${f}`).join(','));
    assert.equal(pg.psql("SELECT count(*) FROM users WHERE email = 'boss@example.com'"), '1');
    const applied = both.map((d) => (d.stderr.match(/migrate: applied/g) || []).length);
    assert.deepEqual(applied.sort(), [0, all.length], 'exactly one replica applied the migrations');
    for (const d of both) assert.doesNotMatch(d.stderr, /migrate: .*(failed|ERROR)/);
    // a restart finds everything applied and keeps the data
    const third = await startDaemon(BIN.website, envFor(ports[2]), ports[2], { timeoutMs: 60000 });
    started.push(third);
    await until(`http://127.0.0.1:${ports[2]}/healthz`, 200);
    assert.doesNotMatch(third.stderr, /migrate: applied/);
    assert.equal(pg.psql('SELECT count(*) FROM schema_migrations'), String(all.length));
    // the schema's own constraints back the application's checks
    assert.throws(() => pg.psql("INSERT INTO users (email, name, password_hash) VALUES ('UP@X.COM', 'n', '$argon2id$x')"), /users_email_lower/);
    assert.throws(() => pg.psql("INSERT INTO rooms (name, title, owner_id) VALUES ('Bad Name', 't', 1)"), /rooms_name_format/);
  } finally {
    for (const d of started) {
      const r = await d.stop();
      assert.deepEqual(r, { code: 0, signal: null }, d.stderr.slice(-3000));
    }
    await pg.destroy();
  }
});
