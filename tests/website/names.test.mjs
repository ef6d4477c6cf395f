// Display names (and room titles) that would deceive or vanish on other people's pages are
// refused with a message that says why (docs/names.md); accepted names are stored normalised.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, newUser, uniq } from './helpers.mjs';

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
