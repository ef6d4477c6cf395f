// Invitations to private rooms through the real website: a link works once, expires,
// can be revoked; adding an existing user by email; only the owner (or an admin) invites.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, newUser, uniq } from './helpers.mjs';

let site, ann, bob, cat;
before(async () => {
  site = await startSite();
  ann = await newUser(site, 'ann');
  bob = await newUser(site, 'bob');
  cat = await newUser(site, 'cat');
});
after(async () => {
  const r = await site?.stop();
  assert.deepEqual(r, { code: 0, signal: null }, site?.web.stderr.slice(-3000));
});

async function privateRoom(owner, extra = {}) {
  const name = `priv-${uniq()}`;
  await owner.client.get('/rooms');
  const r = await owner.client.postForm('/rooms', { name, title: `Private ${name}`, visibility: 'private', ...extra });
  assert.equal(r.status, 303, r.text.slice(0, 1500));
  return name;
}
async function post(client, path, fields = {}) {
  await client.get('/rooms');
  return client.postForm(path, fields);
}
async function newInvite(owner, name) {
  const r = await post(owner.client, `/rooms/${name}/invites`);
  assert.equal(r.status, 201, r.text.slice(0, 1500));
  const m = r.text.match(/value="(\/invite\/[A-Za-z0-9_-]{43})"/);
  assert.ok(m, 'the page shows the link');
  return m[1];
}
const isMember = (name, email) => site.pg.psql(`SELECT count(*) FROM room_members m JOIN rooms r ON r.id = m.room_id
  JOIN users u ON u.id = m.user_id WHERE r.name = '${name}' AND u.email = '${email}'`) === '1';

test('an invite link works once: bob joins and can chat, cat cannot reuse it', async () => {
  const name = await privateRoom(ann);
  const link = await newInvite(ann, name);
  // only the hash is stored
  const code = link.split('/')[2];
  assert.equal(site.pg.psql(`SELECT count(*) FROM room_invites WHERE code_hash = sha256(decode(translate('${code}', '-_', '+/') || '=', 'base64'))`), '1');
  assert.equal((await bob.client.chatToken(name)).status, 403);
  const page = await bob.client.get(link);
  assert.equal(page.status, 200);
  assert.match(page.text, new RegExp(`Private ${name}`));
  const r = await bob.client.postForm(link);
  assert.equal(r.status, 303);
  assert.equal(r.location, `/rooms/${name}`);
  assert.ok(isMember(name, bob.email));
  assert.equal((await bob.client.get(`/rooms/${name}`)).status, 200);
  assert.equal((await bob.client.chatToken(name)).status, 200);
  assert.match((await bob.client.get('/rooms')).text, new RegExp(`href="/rooms/${name}"`));
  // used: cat gets the same clear 404 on both GET and POST
  const g = await cat.client.get(link);
  assert.equal(g.status, 404);
  assert.match(g.text, /This invite link is not valid/);
  assert.equal((await cat.client.postForm(link, {}, { formPage: '/rooms' })).status, 404);
  assert.ok(!isMember(name, cat.email));
  // garbage codes
  for (const bad of ['/invite/x', `/invite/${'A'.repeat(43)}`, `/invite/${'%00'.repeat(43)}`]) {
    assert.equal((await cat.client.get(bad)).status, 404, bad);
  }
});

test('an expired invite does not work; a revoked one does not either', async () => {
  const name = await privateRoom(ann);
  const link = await newInvite(ann, name);
  site.pg.psql(`UPDATE room_invites SET expires_at = now() - interval '1 second'
    WHERE room_id = (SELECT id FROM rooms WHERE name = '${name}')`);
  assert.equal((await bob.client.get(link)).status, 404);
  assert.equal((await bob.client.postForm(link, {}, { formPage: '/rooms' })).status, 404);
  assert.ok(!isMember(name, bob.email));
  // revoke: the owner's room page lists the open invite with a revoke form
  const link2 = await newInvite(ann, name);
  const own = await ann.client.get(`/rooms/${name}`);
  const inv = own.text.match(/name="invite" value="([0-9a-f]{64})"/);
  assert.ok(inv, 'open invite listed');
  assert.equal((await post(ann.client, `/rooms/${name}/invites/revoke`, { invite: inv[1] })).status, 303);
  assert.equal((await bob.client.get(link2)).status, 404);
  assert.equal((await bob.client.postForm(link2, {}, { formPage: '/rooms' })).status, 404);
  assert.ok(!isMember(name, bob.email));
  assert.equal((await post(ann.client, `/rooms/${name}/invites/revoke`, { invite: inv[1] })).status, 404);
  assert.equal((await post(ann.client, `/rooms/${name}/invites/revoke`, { invite: 'zz' })).status, 400);
});

test('only the owner (or an admin) invites; add by email; a full activity stays full', async () => {
  const name = await privateRoom(ann, { capacity: '2' });
  assert.equal((await post(bob.client, `/rooms/${name}/invites`)).status, 404);
  assert.equal((await post(bob.client, `/rooms/${name}/members`, { email: cat.email })).status, 404);
  const none = await post(ann.client, `/rooms/${name}/members`, { email: `nobody-${uniq()}@example.com` });
  assert.equal(none.status, 404);
  assert.match(none.text, /Nobody has an account with this email/);
  assert.equal((await post(ann.client, `/rooms/${name}/members`, { email: 'not an email' })).status, 400);
  assert.equal((await post(ann.client, `/rooms/${name}/members`, { email: cat.email.toUpperCase() })).status, 303);
  assert.ok(isMember(name, cat.email));
  assert.equal((await cat.client.chatToken(name)).status, 200);
  // two places, both taken (ann, cat): an invite cannot overbook, and is not spent
  const link = await newInvite(ann, name);
  const r = await bob.client.postForm(link, {}, { formPage: '/rooms' });
  assert.equal(r.status, 409);
  assert.match(r.text, /This activity is full/);
  assert.ok(!isMember(name, bob.email));
  assert.equal((await bob.client.get(link)).status, 200, 'still usable once a place frees');
  // cat leaves: bob's invite now works
  assert.equal((await post(cat.client, `/rooms/${name}/leave`)).status, 303);
  assert.equal((await bob.client.postForm(link, {}, { formPage: '/rooms' })).status, 303);
  assert.ok(isMember(name, bob.email));
});

test('an invite link opened while logged out leads back to the invite after registering or logging in', async () => {
  const name = await privateRoom(ann);
  // a newcomer without an account
  const link = await newInvite(ann, name);
  const c = site.client();
  const g = await c.get(link);
  assert.equal(g.status, 303);
  assert.equal(g.location, `/login?next=${link}`);
  const login = await c.get(g.location);
  assert.match(login.text, new RegExp(`<input type="hidden" name="next" value="${link}">`));
  assert.match(login.text, new RegExp(`href="/register\\?next=${link}"`), 'the way to register keeps it');
  const reg = await c.get(`/register?next=${link}`);
  assert.match(reg.text, new RegExp(`<input type="hidden" name="next" value="${link}">`));
  const id = uniq();
  const r = await c.postForm('/register', { email: `dan-${id}@example.com`, name: `dan ${id}`,
    password: `pw-${id}-long-enough`, next: link }, { formPage: `/register?next=${link}` });
  assert.equal(r.status, 303, r.text.slice(0, 800));
  assert.equal(r.location, link, 'registering returns to the invite');
  assert.equal((await c.get(link)).status, 200);
  assert.equal((await c.postForm(link)).status, 303);
  assert.ok(isMember(name, `dan-${id}@example.com`));
  // an existing user who is logged out: the login returns to the invite
  const link2 = await newInvite(ann, name);
  const e = site.client();
  assert.equal((await e.get(link2)).location, `/login?next=${link2}`);
  await e.get(`/login?next=${link2}`);
  const li = await e.postForm('/login', { email: cat.email, password: cat.password, next: link2 });
  assert.equal(li.status, 303);
  assert.equal(li.location, link2);
  // only this site's own pages, and only well-formed codes
  for (const bad of ['/invite/', '/invite/a%2F..', `/invite/${'a'.repeat(49)}`, '//evil.example/invite/x', '/invite/a?b=1']) {
    const p = await site.client().get(`/register?next=${encodeURIComponent(bad)}`);
    assert.match(p.text, /<input type="hidden" name="next" value="">/, bad);
  }
});
