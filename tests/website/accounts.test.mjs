// Accounts through the real website and a real PostgreSQL: register, login, logout, session
// expiry, duplicate email, validation messages, CSRF, what is stored, what is logged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startSite, newUser, uniq } from './helpers.mjs';

let site;
before(async () => { site = await startSite(); });
after(async () => {
  const r = await site?.stop();
  // A clean SIGTERM shutdown (and, under ASan, no leak report).
  assert.deepEqual(r, { code: 0, signal: null }, site?.web.stderr.slice(-3000));
});

const sidOf = (c) => c.cookies.get('sid');

test('register logs the user in: 303 to /rooms with an HttpOnly SameSite=Lax session cookie', async () => {
  const c = site.client();
  await c.get('/register');
  const id = uniq();
  const r = await c.request('POST', '/register', {
    body: new URLSearchParams({ email: `Mixed.Case-${id}@Example.COM`, name: 'Ann', password: 'correct horse',
      csrf_token: c.csrf }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(r.status, 303);
  assert.equal(r.location, '/rooms');
  const cookie = r.headers.getSetCookie().find((x) => x.startsWith('sid='));
  assert.ok(cookie, 'a sid cookie is set');
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Lax/);
  assert.match(cookie, /Path=\//);
  assert.doesNotMatch(cookie, /Secure/, 'COOKIE_SECURE=0 here');
  assert.match(sidOf(c), /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
  const rooms = await c.get('/rooms');
  assert.equal(rooms.status, 200);
  assert.match(rooms.text, /<span class="who"><span class="visually-hidden">Signed in as <\/span><bdi>Ann<\/bdi><\/span>/);
  // Stored: email lower-cased, Argon2id hash, the session id only as its SHA-256.
  const email = `mixed.case-${id}@example.com`;
  assert.equal(site.pg.psql(`SELECT count(*) FROM users WHERE email = '${email}'`), '1');
  assert.match(site.pg.psql(`SELECT password_hash FROM users WHERE email = '${email}'`), /^\$argon2id\$/);
  const hash = createHash('sha256').update(Buffer.from(sidOf(c), 'base64url')).digest('hex');
  assert.equal(site.pg.psql(`SELECT count(*) FROM sessions WHERE id = '\\x${hash}'::bytea`), '1');
  assert.equal(site.pg.psql(`SELECT count(*) FROM sessions WHERE encode(id, 'escape') LIKE '%${sidOf(c)}%'`), '0');
});

test('duplicate email (any case): 409 and the form again with the input kept', async () => {
  const u = await newUser(site, 'dup');
  assert.equal(u.res.status, 303);
  const c = site.client();
  const r = await c.register(u.email.toUpperCase(), 'Second <b>Try</b>', 'another password');
  assert.equal(r.status, 409);
  assert.match(r.text, /already exists/);
  assert.match(r.text, /value="Second &lt;b&gt;Try&lt;\/b&gt;"/, 'name kept, escaped');
  assert.ok(!c.cookies.has('sid'), 'no session for a failed registration');
  assert.equal(site.pg.psql(`SELECT count(*) FROM users WHERE email = '${u.email}'`), '1');
});

test('invalid input: 400, each message next to its field, other input kept, nothing stored', async () => {
  const c = site.client();
  const before = site.pg.psql('SELECT count(*) FROM users');
  let r = await c.register('not-an-email', 'Bob "the" <Builder>', 'short');
  assert.equal(r.status, 400);
  assert.match(r.text, /<p class="error" id="email-error">Enter an email address like name@example.com.<\/p>/);
  assert.match(r.text, /<p class="error" id="password-error">The password must have at least 8 characters.<\/p>/);
  assert.match(r.text, /<p class="error" id="name-error"><\/p>/, 'the name was fine');
  assert.match(r.text, /value="Bob &quot;the&quot; &lt;Builder&gt;"/);
  assert.match(r.text, /value="not-an-email"/);
  r = await c.register(`x-${uniq()}@example.com`, 'n'.repeat(65), 'long enough');
  assert.equal(r.status, 400);
  assert.match(r.text, /id="name-error">The name is longer than 64 characters/);
  r = await c.register(`x-${uniq()}@example.com`, 'tab\there', 'long enough');
  assert.equal(r.status, 400);
  assert.match(r.text, /id="name-error">The name contains control characters/);
  r = await c.register(`x-${uniq()}@example.com`, 'Ok', 'p'.repeat(1025));
  assert.equal(r.status, 400);
  assert.match(r.text, /id="password-error">The password is longer than 1024 bytes/);
  r = await c.register(`x-${uniq()}@example.com`, '   ', 'long enough');
  assert.equal(r.status, 400);
  assert.match(r.text, /id="name-error">Enter a name/);
  // 64 characters of a two-byte script is fine: the limit is in characters
  r = await c.register(`x-${uniq()}@example.com`, 'é'.repeat(64), 'long enough');
  assert.equal(r.status, 303);
  assert.equal(Number(site.pg.psql('SELECT count(*) FROM users')), Number(before) + 1);
});

test('login: 303 with a session; wrong password and unknown email get the same 401', async () => {
  const u = await newUser(site, 'log');
  const c = site.client();
  let r = await c.login(u.email.toUpperCase(), u.password);
  assert.equal(r.status, 303);
  assert.equal(r.location, '/rooms');
  assert.equal((await c.get('/rooms')).status, 200);

  const bad = site.client();
  const wrongPw = await bad.login(u.email, 'wrong password');
  const noUser = await bad.login(`nobody-${uniq()}@example.com`, 'wrong password');
  assert.equal(wrongPw.status, 401);
  assert.equal(noUser.status, 401);
  const msg = (t) => t.match(/<p class="error form-error"[^>]*>([^<]*)<\/p>/)[1];
  assert.equal(msg(wrongPw.text), 'The email or password is wrong.');
  assert.equal(msg(noUser.text), msg(wrongPw.text), 'the page does not tell whether the email exists');
  assert.ok(!bad.cookies.has('sid'));
  r = await bad.get('/rooms');
  assert.equal(r.status, 303);
  assert.equal(r.location, '/login');
});

test('logout deletes the session server-side: the old cookie no longer works', async () => {
  const u = await newUser(site, 'out');
  const c = u.client;
  const sid = sidOf(c);
  await c.get('/rooms');
  const r = await c.postForm('/logout', {});
  assert.equal(r.status, 303);
  assert.equal(r.location, '/login');
  assert.ok(!c.cookies.has('sid'), 'cookie expired');
  // Replaying the old cookie (e.g. stolen before logout) gets nothing.
  const replay = site.client();
  replay.cookies.set('sid', sid);
  const rr = await replay.get('/rooms');
  assert.equal(rr.status, 303);
  assert.equal(rr.location, '/login');
  const hash = createHash('sha256').update(Buffer.from(sid, 'base64url')).digest('hex');
  assert.equal(site.pg.psql(`SELECT count(*) FROM sessions WHERE id = '\\x${hash}'::bytea`), '0');
});

test('a new session on login and on register replaces the browser\'s old one, which stops working', async () => {
  const a = await newUser(site, 'fixa');
  const c = a.client;
  for (const step of ['login', 'register']) {
    const old = sidOf(c);
    await c.get(step === 'login' ? '/rooms' : '/register');
    const b = { email: `fix${step}-${uniq()}@example.com`, password: `pw-${uniq()}-long` };
    if (step === 'login') {
      await site.client().register(b.email, 'Fix B', b.password);
      // the login form's token is the current session's (the page is not shown to a
      // signed-in user, but the form may still be open in another tab)
      const r = await c.postForm('/login', { email: b.email, password: b.password }, { csrf: c.csrf });
      assert.equal(r.status, 303, step);
    } else {
      const r = await c.postForm('/register', { email: b.email, name: 'Fix B', password: b.password },
        { csrf: c.csrf });
      assert.equal(r.status, 303, step);
    }
    assert.notEqual(sidOf(c), old, `${step}: a fresh session id`);
    const replay = site.client();
    replay.cookies.set('sid', old);
    const rr = await replay.get('/rooms');
    assert.equal(rr.status, 303, `${step}: the old session no longer works`);
    assert.equal(rr.location, '/login');
    const hash = createHash('sha256').update(Buffer.from(old, 'base64url')).digest('hex');
    assert.equal(site.pg.psql(`SELECT count(*) FROM sessions WHERE id = '\\x${hash}'::bytea`), '0', step);
  }
});

test('an expired session is refused', async () => {
  const u = await newUser(site, 'exp');
  assert.equal((await u.client.get('/rooms')).status, 200);
  const uid = site.pg.psql(`SELECT id FROM users WHERE email = '${u.email}'`);
  site.pg.psql(`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = ${uid}`);
  const r = await u.client.get('/rooms');
  assert.equal(r.status, 303);
  assert.equal(r.location, '/login');
  const t = await u.client.chatToken('anything');
  assert.equal(t.status, 401);
});

test('CSRF: a POST without the token, with a wrong one, or with another session\'s is refused (403)', async () => {
  const u = await newUser(site, 'csrf');
  const other = await newUser(site, 'csrf2');
  await u.client.get('/rooms');
  await other.client.get('/rooms');
  const name = `r-${uniq()}`;
  let r = await u.client.postForm('/rooms', { name, title: 'T' }, { csrf: null });
  assert.equal(r.status, 403);
  r = await u.client.postForm('/rooms', { name, title: 'T' }, { csrf: 'f'.repeat(64) });
  assert.equal(r.status, 403);
  r = await u.client.postForm('/rooms', { name, title: 'T' }, { csrf: other.client.csrf });
  assert.equal(r.status, 403);
  assert.equal(site.pg.psql(`SELECT count(*) FROM rooms WHERE name = '${name}'`), '0');
  // logout without a token does not log out
  r = await u.client.postForm('/logout', {}, { csrf: null });
  assert.equal(r.status, 403);
  assert.equal((await u.client.get('/rooms')).status, 200);
  // register/login forms before any session: the pre-login token must match its cookie
  const anon = site.client();
  await anon.get('/login');
  r = await anon.postForm('/login', { email: u.email, password: u.password }, { csrf: 'a'.repeat(64) });
  assert.equal(r.status, 403);
  const fresh = site.client(); // no cookie at all
  r = await fresh.postForm('/register', { email: `z-${uniq()}@example.com`, name: 'Z', password: 'long enough' },
    { csrf: anon.csrf });
  assert.equal(r.status, 403);
  // and with the right token it works
  r = await anon.postForm('/login', { email: u.email, password: u.password });
  assert.equal(r.status, 303);
});

test('every page with a form carries the token in a hidden field and in <meta name="csrf-token">', async () => {
  const u = await newUser(site, 'meta');
  for (const [c, path] of [[site.client(), '/login'], [site.client(), '/register'], [u.client, '/rooms']]) {
    const r = await c.get(path);
    const meta = r.text.match(/<meta name="csrf-token" content="([0-9a-f]{64})">/);
    assert.ok(meta, `${path} has the meta tag`);
    for (const m of r.text.matchAll(/<form method="post"[\s\S]*?<\/form>/g)) {
      assert.match(m[0], new RegExp(`<input type="hidden" name="csrf_token" value="${meta[1]}">`), path);
    }
  }
});

test('the log never contains a password, a session id or a CSRF token', async () => {
  const u = await newUser(site, 'logcheck');
  await u.client.get('/rooms');
  await site.client().login(u.email, u.password);
  const log = site.web.stderr;
  assert.ok(log.includes('POST /register 303'), 'requests are logged');
  assert.ok(!log.includes(u.password), 'no password');
  assert.ok(!log.includes(sidOf(u.client)), 'no sid');
  assert.ok(!log.includes(u.client.csrf), 'no csrf token');
  assert.ok(!log.includes(site.admin.password), 'no admin password');
  assert.ok(!log.includes(site.env.DB_PASSWORD), 'no database password');
  assert.ok(!log.includes(site.secret), 'no JWT secret');
});

test('landing page: 200 for visitors; signed-in users are sent to /rooms', async () => {
  const anon = site.client();
  const r = await anon.get('/');
  assert.equal(r.status, 200);
  assert.match(r.text, /href="\/register"/);
  assert.match(r.text, /href="\/login"/);
  const u = await newUser(site, 'land');
  const s = await u.client.get('/');
  assert.equal(s.status, 303);
  assert.equal(s.location, '/rooms');
  const l = await u.client.get('/login');
  assert.equal(l.status, 303);
  assert.equal(l.location, '/rooms');
});
