// The admin page and actions: first admin from ADMIN_EMAIL, ban/unban/promote/delete-room,
// non-admins refused; what a ban does to sessions, logins and chat tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, newUser, uniq } from './helpers.mjs';

let site, admin;
before(async () => {
  site = await startSite();
  admin = site.client();
  const r = await admin.login(site.admin.email, site.admin.password);
  assert.equal(r.status, 303, 'the first admin from ADMIN_EMAIL/ADMIN_PASSWORD can log in');
});
after(async () => {
  const r = await site?.stop();
  assert.deepEqual(r, { code: 0, signal: null }, site?.web.stderr.slice(-3000));
});

const idOf = (email) => site.pg.psql(`SELECT id FROM users WHERE email = '${email}'`);

test('the admin sees the Admin link and page with users and rooms', async () => {
  const u = await newUser(site, 'listed');
  const room = `adm-${uniq()}`;
  await u.client.createRoom(room, 'Listed room');
  const rooms = await admin.get('/rooms');
  assert.match(rooms.text, /<a href="\/admin">Manage site<\/a>/);
  const r = await admin.get('/admin');
  assert.equal(r.status, 200);
  assert.match(r.text, new RegExp(`<td data-label="Email"><span class="email">${u.email.replace(/[.+]/g, '\\$&')}</span></td>`));
  assert.match(r.text, new RegExp(`action="/admin/users/${idOf(u.email)}/ban"`));
  assert.match(r.text, new RegExp(`action="/admin/rooms/${room}/delete"`));
  // no ban button for oneself
  assert.doesNotMatch(r.text, new RegExp(`action="/admin/users/${idOf(site.admin.email)}/ban"`));
});

test('a non-admin gets 403 for the page and every action, and nothing changes', async () => {
  const u = await newUser(site, 'plain');
  const victim = await newUser(site, 'victim');
  const room = `keep-${uniq()}`;
  await victim.client.createRoom(room, 'Keep me');
  const rooms = await u.client.get('/rooms');
  assert.doesNotMatch(rooms.text, /href="\/admin"/);
  assert.equal((await u.client.get('/admin')).status, 403);
  const vid = idOf(victim.email);
  for (const p of [`/admin/users/${vid}/ban`, `/admin/users/${vid}/unban`,
    `/admin/users/${idOf(u.email)}/promote`, `/admin/rooms/${room}/delete`]) {
    const r = await u.client.postForm(p, {});
    assert.equal(r.status, 403, p);
  }
  assert.equal(site.pg.psql(`SELECT banned_at IS NULL FROM users WHERE id = ${vid}`), 't');
  assert.equal(site.pg.psql(`SELECT is_admin FROM users WHERE email = '${u.email}'`), 'f');
  assert.equal(site.pg.psql(`SELECT count(*) FROM rooms WHERE name = '${room}'`), '1');
  // logged out: sent to /login
  const anon = site.client();
  assert.equal((await anon.get('/admin')).status, 303);
});

test('ban: sessions stop working at once (403 "banned"), login refused, no token; unban needs a new login', async () => {
  const u = await newUser(site, 'banme');
  const room = `ban-${uniq()}`;
  await u.client.createRoom(room, 'Ban room');
  assert.equal((await u.client.chatToken(room)).status, 200);
  const id = idOf(u.email);
  await admin.get('/admin');
  let r = await admin.postForm(`/admin/users/${id}/ban`, {});
  assert.equal(r.status, 303);
  assert.equal(r.location, '/admin');
  assert.equal(site.pg.psql(`SELECT count(*) FROM sessions WHERE user_id = ${id} AND revoked_at IS NULL`), '0',
    'every session of the user is revoked in the same statement as the ban');
  // the banned user's open browser can do nothing and is told why
  r = await u.client.get('/rooms');
  assert.equal(r.status, 403);
  assert.match(r.text, /banned/);
  assert.equal((await u.client.get(`/rooms/${room}`)).status, 403);
  const t = await u.client.chatToken(room);
  assert.equal(t.status, 403);
  assert.equal(t.body.error, 'banned');
  assert.equal((await u.client.get('/api/rooms')).status, 403);
  r = await u.client.postForm('/rooms', { name: `n-${uniq()}`, title: 'x' }, { csrf: u.client.csrf });
  assert.equal(r.status, 403);
  // and cannot log in again
  const again = site.client();
  r = await again.login(u.email, u.password);
  assert.equal(r.status, 403);
  assert.match(r.text, /banned/);
  assert.ok(!again.cookies.has('sid'));
  // a wrong password for a banned account is just a wrong login (no account probing)
  r = await site.client().login(u.email, 'not the password');
  assert.equal(r.status, 401);
  const page = await admin.get('/admin');
  assert.match(page.text, new RegExp(`action="/admin/users/${id}/unban"`));
  r = await admin.postForm(`/admin/users/${id}/unban`, {});
  assert.equal(r.status, 303);
  // the revoked session stays dead after the unban: log in again
  r = await u.client.get('/rooms');
  assert.equal(r.status, 303);
  assert.equal(r.location, '/login');
  assert.equal((await u.client.chatToken(room)).status, 401);
  r = await site.client().login(u.email, u.password);
  assert.equal(r.status, 303);
});

test('a user banned while holding a session (ban from elsewhere) gets 403 for tokens and pages', async () => {
  const u = await newUser(site, 'race');
  const room = `race-${uniq()}`;
  await u.client.createRoom(room, 'Race');
  await u.client.get('/rooms');
  // e.g. another replica banned them and this session row survived the race
  site.pg.psql(`UPDATE users SET banned_at = now() WHERE email = '${u.email}'`);
  const t = await u.client.chatToken(room);
  assert.equal(t.status, 403);
  assert.equal(t.body.error, 'banned');
  assert.equal((await u.client.get('/rooms')).status, 403);
  const r = await u.client.postForm('/rooms', { name: `n-${uniq()}`, title: 'x' });
  assert.equal(r.status, 403);
});

test('promote: the user becomes an admin and sees /admin', async () => {
  const u = await newUser(site, 'promo');
  assert.equal((await u.client.get('/admin')).status, 403);
  await admin.get('/admin');
  const r = await admin.postForm(`/admin/users/${idOf(u.email)}/promote`, {});
  assert.equal(r.status, 303);
  assert.equal((await u.client.get('/admin')).status, 200);
  assert.equal(site.pg.psql(`SELECT is_admin FROM users WHERE email = '${u.email}'`), 't');
});

test('admin deletes any room; unknown user or room ids are 404; cannot ban oneself', async () => {
  const u = await newUser(site, 'owner');
  const room = `gone-${uniq()}`;
  await u.client.createRoom(room, 'Gone');
  await admin.get('/admin');
  let r = await admin.postForm(`/admin/rooms/${room}/delete`, {});
  assert.equal(r.status, 303);
  assert.equal(r.location, '/admin');
  assert.equal(site.pg.psql(`SELECT count(*) FROM rooms WHERE name = '${room}'`), '0');
  // an admin may also use the owner's delete route on any room
  const room2 = `gone2-${uniq()}`;
  await u.client.createRoom(room2, 'Gone too');
  r = await admin.postForm(`/rooms/${room2}/delete`, {});
  assert.equal(r.status, 303);
  assert.equal(site.pg.psql(`SELECT count(*) FROM rooms WHERE name = '${room2}'`), '0');
  assert.equal((await admin.postForm(`/admin/rooms/${room}/delete`, {})).status, 404);
  assert.equal((await admin.postForm('/admin/users/999999/ban', {})).status, 404);
  assert.equal((await admin.postForm('/admin/users/abc/ban', {})).status, 404);
  assert.equal((await admin.postForm('/admin/users/99999999999999999999999/ban', {})).status, 404);
  r = await admin.postForm(`/admin/users/${idOf(site.admin.email)}/ban`, {});
  assert.equal(r.status, 400);
  assert.equal(site.pg.psql(`SELECT banned_at IS NULL FROM users WHERE email = '${site.admin.email}'`), 't');
  assert.equal((await admin.postForm('/admin/users/1/ban', {}, { csrf: null })).status, 403);
});

test('an admin cannot ban another admin (nor the last one, nor themself); a banned user cannot be promoted', async () => {
  // A second admin, promoted by the first.
  const second = await newUser(site, 'second');
  const sid = idOf(second.email);
  await admin.get('/admin');
  assert.equal((await admin.postForm(`/admin/users/${sid}/promote`, {}, { formPage: '/admin' })).status, 303);
  assert.equal(site.pg.psql(`SELECT is_admin FROM users WHERE id = ${sid}`), 't');
  const firstId = idOf(site.admin.email);
  await second.client.get('/admin'); // the session's CSRF token (the client held the pre-login one)
  // The second admin tries to ban the first: refused, with a message; nothing changes.
  let r = await second.client.postForm(`/admin/users/${firstId}/ban`, {}, { formPage: '/admin' });
  assert.equal(r.status, 403);
  assert.match(r.text, /Admins cannot be banned/);
  // ... and the first admin the second.
  r = await admin.postForm(`/admin/users/${sid}/ban`, {}, { formPage: '/admin' });
  assert.equal(r.status, 403);
  assert.match(r.text, /Admins cannot be banned/);
  assert.equal(site.pg.psql(`SELECT count(*) FROM users WHERE is_admin AND banned_at IS NOT NULL`), '0');
  assert.equal((await admin.get('/admin')).status, 200, 'both still admins with working sessions');
  assert.equal((await second.client.get('/admin')).status, 200);
  // No ban button for another admin on the page.
  const page = await second.client.get('/admin');
  assert.doesNotMatch(page.text, new RegExp(`action="/admin/users/${firstId}/ban"`));
  // Nor oneself.
  r = await second.client.postForm(`/admin/users/${sid}/ban`, {}, { formPage: '/admin' });
  assert.equal(r.status, 400);
  assert.match(r.text, /cannot ban yourself/);
  // A banned user cannot be promoted.
  const b = await newUser(site, 'bannedpromo');
  const bid = idOf(b.email);
  assert.equal((await admin.postForm(`/admin/users/${bid}/ban`, {}, { formPage: '/admin' })).status, 303);
  r = await admin.postForm(`/admin/users/${bid}/promote`, {}, { formPage: '/admin' });
  assert.equal(r.status, 409);
  assert.match(r.text, /banned and cannot be made an admin/);
  assert.equal(site.pg.psql(`SELECT is_admin FROM users WHERE id = ${bid}`), 'f');
  // After an unban the promotion works.
  assert.equal((await admin.postForm(`/admin/users/${bid}/unban`, {}, { formPage: '/admin' })).status, 303);
  assert.equal((await admin.postForm(`/admin/users/${bid}/promote`, {}, { formPage: '/admin' })).status, 303);
  assert.equal(site.pg.psql(`SELECT is_admin FROM users WHERE id = ${bid}`), 't');
});
