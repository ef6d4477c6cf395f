// Display names (and room titles) that would deceive or vanish on other people's pages are
// refused with a message that says why (docs/names.md); accepted names are stored normalised.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSite, newUser, uniq } from './helpers.mjs';
import { startPostgres } from '../lib/pg.mjs';
import { BIN, ROOT, freePort, startDaemon } from '../lib/proc.mjs';
import { newSecret } from '../lib/token.mjs';
import { waitForHttp } from '../lib/stack.mjs';

let site;
before(async () => { site = await startSite(); });
after(async () => {
  const r = await site?.stop();
  assert.deepEqual(r, { code: 0, signal: null }, site?.web.stderr.slice(-3000));
});

const nameOf = (email) => site.pg.psql(`SELECT name FROM users WHERE email = '${email}'`);
const nameError = (text) => (text.match(/<p class="error" id="name-error">([^<]*)<\/p>/) || [])[1];

test('"Dev" + U+202E (the issue\'s example) is refused with a clear message; nothing stored', async () => {
  const email = `rlo-${uniq()}@example.com`;
  const r = await site.client().register(email, 'Dev\u202E', 'long enough');
  assert.equal(r.status, 400);
  assert.match(nameError(r.text), /invisible formatting characters \(such as text-direction overrides/);
  assert.equal(nameOf(email), '', 'no account was made');
});

test('every kind of reordering, invisible, unassigned, private-use or stacked character is refused', async () => {
  const cases = {
    '\u202Aevil': /invisible/, 'x\u2066y\u2069': /invisible/, 'a\u200Fb': /invisible/,
    'Ad\u200Bmin': /invisible/, 'x\u200Dy': /invisible/, '\uFEFFAnn': /invisible/,
    '\u3164': /invisible/, 'x\u00ADy': /invisible/,
    'x\uE000': /private-use/, 'x\u0378': /unassigned/,
    'a\u2028b': /line breaks/, 'a\u2029b': /line breaks/,
    'Zalgo\u030D\u030E\u0304': /marks/, '\u0301abc': /marks/,
    '!!!': /letter or digit/, '\u00A0\u3000': /letter or digit|Enter a name/,
  };
  for (const [name, why] of Object.entries(cases)) {
    const email = `bad-${uniq()}@example.com`;
    const r = await site.client().register(email, name, 'long enough');
    assert.equal(r.status, 400, JSON.stringify(name));
    assert.match(nameError(r.text) || '', why, JSON.stringify(name));
    assert.equal(nameOf(email), '', JSON.stringify(name));
  }
});

test('accepted names are stored NFC-normalised, with runs of spaces collapsed', async () => {
  const u = await newUser(site, 'nfc', { name: '  Re\u0301my \u00A0\u3000 Lee ' });
  assert.equal(u.res.status, 303);
  assert.equal(nameOf(u.email), 'R\u00E9my Lee');
  // Scripts written right to left are names like any other.
  const ar = await newUser(site, 'ar', { name: '\u0639\u0644\u064A' });
  assert.equal(ar.res.status, 303);
  // The chat token carries the stored (clean) name.
  const room = `nm-${uniq()}`;
  assert.equal((await u.client.createRoom(room, 'Names')).status, 303);
  const t = await u.client.chatToken(room);
  assert.equal(t.status, 200);
  assert.equal(t.body.user.name, 'R\u00E9my Lee');
});

test('room titles and descriptions refuse bidi controls and invisible characters too', async () => {
  const u = await newUser(site, 'titles');
  for (const [title, description] of [['News\u202E', ''], ['x\u2067y', ''], ['ok', 'fine\n\u202Eexe.gnp'],
    ['ok', 'x\u200By']]) {
    const room = `bt-${uniq()}`;
    const r = await u.client.createRoom(room, title, description);
    assert.equal(r.status, 400, JSON.stringify([title, description]));
    assert.match(r.text, /invisible formatting characters/);
    assert.equal(site.pg.psql(`SELECT count(*) FROM rooms WHERE name = '${room}'`), '0');
  }
  const room = `ok-${uniq()}`;
  assert.equal((await u.client.createRoom(room, 'Caf\u00E9 \u2615', 'line one\nline two')).status, 303);
});

test('the admin page tells same-looking names apart: email, name and public id', async () => {
  const a = await newUser(site, 'twin', { name: 'Same Name' });
  const b = await newUser(site, 'twin', { name: 'Same Name' });
  const admin = site.client();
  assert.equal((await admin.login(site.admin.email, site.admin.password)).status, 303);
  const page = await admin.get('/admin');
  for (const u of [a, b]) {
    const pid = site.pg.psql(`SELECT public_id FROM users WHERE email = '${u.email}'`);
    assert.match(page.text, new RegExp(`data-public-id="${pid}"`));
    assert.ok(page.text.includes(pid));
  }
});

test('migration 003 cleans names stored before these rules (bidi and invisible characters)', async () => {
  const pg = await startPostgres();
  let web;
  try {
    // A database at migration 002, as an older website left it, with names it accepted then.
    const mig = (f) => readFileSync(join(ROOT, 'db', 'migrations', f), 'utf8');
    pg.psql(`SET ROLE ${pg.user};
      CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now());
      ${mig('001_init.sql')}
      ${mig('002_public_id.sql')}
      INSERT INTO schema_migrations (version, name) VALUES (1, '001_init.sql'), (2, '002_public_id.sql');
      INSERT INTO users (email, name, password_hash) VALUES
        ('rlo@example.com', E'Dev\\u202E', '$argon2id$x'),
        ('zw@example.com', E'A\\u200Bd\\u200Dmin', '$argon2id$x'),
        ('iso@example.com', E'\\u2067x\\u2069  y\\t', '$argon2id$x'),
        ('empty@example.com', E'\\u202E\\u200F', '$argon2id$x'),
        ('fine@example.com', E'J\\u00FCrgen', '$argon2id$x');`);
    const port = await freePort();
    web = await startDaemon(BIN.website, { ...pg.env, JWT_SECRET: newSecret(), WEB_PORT: String(port),
      STATIC_DIR: join(ROOT, 'website', 'static'), PWHASH_MEMLIMIT_KIB: '8192', PWHASH_OPSLIMIT: '1' },
    port, { timeoutMs: 60000 });
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, { exited: web.exited, timeoutMs: 60000 });
    const name = (e) => pg.psql(`SELECT name FROM users WHERE email = '${e}'`);
    assert.equal(name('rlo@example.com'), 'Dev');
    assert.equal(name('zw@example.com'), 'Admin');
    assert.equal(name('iso@example.com'), 'x y');
    assert.equal(name('empty@example.com'), 'user');
    assert.equal(name('fine@example.com'), 'J\u00FCrgen');
    assert.ok(Number(pg.psql('SELECT max(version) FROM schema_migrations')) >= 3, 'migration 003 ran');
  } finally {
    if (web) await web.stop();
    await pg.destroy();
  }
});
