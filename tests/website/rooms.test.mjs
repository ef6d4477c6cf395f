// Rooms through the real website: create, list, search, the chat page shell, delete; XSS and
// SQL metacharacters harmless; the rooms JSON API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, newUser, uniq } from './helpers.mjs';

let site, ann, bob;
before(async () => {
  site = await startSite();
  ann = await newUser(site, 'ann');
  bob = await newUser(site, 'bob');
});
after(async () => {
  const r = await site?.stop();
  assert.deepEqual(r, { code: 0, signal: null }, site?.web.stderr.slice(-3000));
});

const roomCount = (name) => site.pg.psql(`SELECT count(*) FROM rooms WHERE name = '${name}'`);

test('not logged in: the rooms pages send you to /login (and a room\'s back after it)', async () => {
  const c = site.client();
  for (const [p, to] of [['/rooms', '/login'], ['/rooms/whatever', '/login?next=/rooms/whatever']]) {
    const r = await c.get(p);
    assert.equal(r.status, 303, p);
    assert.equal(r.location, to);
  }
});

test('create a room: 303 to its page, listed, and the chat page follows the contract', async () => {
  const name = `lobby-${uniq()}`;
  const r = await ann.client.createRoom(name, 'The Lobby', 'Say hi');
  assert.equal(r.status, 303);
  assert.equal(r.location, `/rooms/${name}`);
  const list = await bob.client.get('/rooms');
  assert.equal(list.status, 200);
  assert.match(list.text, new RegExp(`href="/rooms/${name}"`));
  assert.match(list.text, /The Lobby/);
  const page = await bob.client.get(`/rooms/${name}`);
  assert.equal(page.status, 200);
  const main = page.text.match(/<main id="chat"([^>]*)>/);
  assert.ok(main, 'a <main id="chat"> element');
  assert.match(main[1], new RegExp(`data-room="${name}"`));
  assert.match(main[1], /data-room-title="The Lobby"/);
  // the reader's public id, not the email (the page holds nobody's email)
  assert.match(main[1], /data-user-id="[0-9a-f-]{36}"/);
  assert.equal(page.text.includes(bob.email), false);
  assert.match(main[1], new RegExp(`data-user-name="${bob.name}"`));
  assert.match(main[1], new RegExp(`data-csrf="${bob.client.csrf}"`));
  assert.match(page.text, /<link rel="stylesheet" href="\/static\/chat.css">/);
  assert.match(page.text, /<script src="\/static\/chat.js" defer><\/script>/);
  assert.match(page.text, /<noscript>/);
  assert.doesNotMatch(page.text, /<script>|style=/, 'no inline script or style');
  assert.equal(site.pg.psql(`SELECT u.email FROM rooms r JOIN users u ON u.id = r.owner_id WHERE r.name = '${name}'`), ann.email);
});

test('a taken name gets 409; invalid fields get 400 with messages and the input kept', async () => {
  const name = `taken-${uniq()}`;
  assert.equal((await ann.client.createRoom(name, 'First')).status, 303);
  let r = await bob.client.createRoom(name, 'Second');
  assert.equal(r.status, 409);
  assert.match(r.text, /id="room-name-error">A room with this name already exists./);
  assert.match(r.text, /value="Second"/);
  assert.equal(site.pg.psql(`SELECT title FROM rooms WHERE name = '${name}'`), 'First');
  for (const bad of ['ab', '-abc', 'Upper', 'a_b', 'x'.repeat(33), 'a b c', '../etc']) {
    r = await bob.client.createRoom(bad, 'Title kept', 'desc kept');
    assert.equal(r.status, 400, bad);
    assert.match(r.text, /id="room-name-error">Use 3 to 32 lower-case letters/);
    assert.match(r.text, /value="Title kept"/);
    assert.match(r.text, />desc kept<\/textarea>/);
  }
  r = await bob.client.createRoom(`ok-${uniq()}`, '', 'd');
  assert.equal(r.status, 400);
  assert.match(r.text, /id="room-title-error">Enter a title./);
  r = await bob.client.createRoom(`ok-${uniq()}`, 't'.repeat(101));
  assert.equal(r.status, 400);
  assert.match(r.text, /id="room-title-error">The title is longer than 100 characters./);
  r = await bob.client.createRoom(`ok-${uniq()}`, 'T', 'd'.repeat(1001));
  assert.equal(r.status, 400);
  assert.match(r.text, /id="room-description-error">The description is longer than 1000 characters./);
});

test('XSS payloads in a display name, room title and description are shown as text', async () => {
  const evil = await newUser(site, 'evil', { name: '<script>alert(1)</script>' });
  assert.equal(evil.res.status, 303);
  const name = `xss-${uniq()}`;
  const title = '<img src=x onerror=alert(1)>"\'';
  const desc = '</textarea><script>alert(2)</script>';
  assert.equal((await evil.client.createRoom(name, title, desc)).status, 303);
  for (const c of [evil.client, bob.client]) {
    const list = await c.get(`/rooms?q=${name}`);
    assert.doesNotMatch(list.text, /<script>alert|<img src=x/);
    assert.match(list.text, /&lt;img src=x onerror=alert\(1\)&gt;&quot;&#39;/);
    assert.match(list.text, /&lt;\/textarea&gt;&lt;script&gt;alert\(2\)&lt;\/script&gt;/);
    assert.match(list.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, 'owner name escaped');
    const page = await c.get(`/rooms/${name}`);
    assert.doesNotMatch(page.text, /<script>alert|<img src=x/);
    assert.match(page.text, /data-room-title="&lt;img src=x onerror=alert\(1\)&gt;&quot;&#39;"/);
  }
  const own = await evil.client.get(`/rooms/${name}`);
  assert.match(own.text, /data-user-name="&lt;script&gt;alert\(1\)&lt;\/script&gt;"/);
  assert.match(own.text, /<bdi>&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/bdi><\/span>/);
  // and the API returns the text verbatim (JSON, not HTML)
  const api = await bob.client.get(`/api/rooms?q=${name}`);
  assert.equal(api.json()[0].title, title);
});

test('SQL metacharacters are stored and shown verbatim', async () => {
  const name = `sql-${uniq()}`;
  const title = "Robert'); DROP TABLE rooms;-- \\ % _";
  const desc = "1' OR '1'='1; SELECT * FROM users; $1 $$";
  assert.equal((await ann.client.createRoom(name, title, desc)).status, 303);
  assert.equal(site.pg.psql(`SELECT title FROM rooms WHERE name = '${name}'`), title);
  assert.equal(site.pg.psql(`SELECT description FROM rooms WHERE name = '${name}'`), desc);
  const api = (await ann.client.get('/api/rooms')).json().find((r) => r.name === name);
  assert.equal(api.title, title);
  assert.equal(api.description, desc);
  const sqlUser = await newUser(site, 'sql', { name: "O'Brien\"; DELETE FROM users;--" });
  assert.equal(sqlUser.res.status, 303);
  assert.equal(site.pg.psql(`SELECT name FROM users WHERE email = '${sqlUser.email}'`), sqlUser.name);
  assert.ok(Number(site.pg.psql('SELECT count(*) FROM users')) >= 3, 'users still there');
  // Login with an injection attempt in the email is just a wrong login.
  const r = await site.client().login("' OR 1=1 --@x.com", 'whatever1');
  assert.equal(r.status, 401);
});

test('search matches name, title and description; % and _ are literal', async () => {
  const tag = uniq();
  const names = [`alpha-${tag}`, `beta-${tag}`, `gamma-${tag}`];
  await ann.client.createRoom(names[0], `Knitting ${tag}`, 'wool');
  await ann.client.createRoom(names[1], `Cooking ${tag}`, 'recipes with 100% butter');
  await ann.client.createRoom(names[2], `Chess_${tag}`, '');
  const found = async (q) => {
    const r = await bob.client.get(`/rooms?q=${encodeURIComponent(q)}`);
    assert.equal(r.status, 200);
    return [...r.text.matchAll(/href="\/rooms\/([a-z0-9-]+)"/g)].map((m) => m[1]).filter((n) => n.endsWith(tag)).sort();
  };
  assert.deepEqual(await found(`knitting ${tag}`), [names[0]]);
  assert.deepEqual(await found('RECIPES'), [names[1]]);
  assert.deepEqual(await found(tag), names);
  assert.deepEqual(await found('100%'), [names[1]]);
  assert.deepEqual(await found('0% b'), [names[1]]);
  assert.deepEqual(await found('0%b'), [], '% is not a wildcard');
  assert.deepEqual(await found(`s_${tag}`), [names[2]], '_ is not a wildcard');
  assert.deepEqual(await found('nothing-like-this'), []);
  const r = await bob.client.get(`/rooms?q=${encodeURIComponent('<b>x</b>')}`);
  assert.match(r.text, /value="&lt;b&gt;x&lt;\/b&gt;"/);
  assert.match(r.text, /No room matches your search/);
  assert.equal((await bob.client.get(`/rooms?q=${'q'.repeat(101)}`)).status, 400);
  const api = (await bob.client.get(`/api/rooms?q=${encodeURIComponent('cooking ' + tag)}`)).json();
  assert.deepEqual(api.map((x) => x.name), [names[1]]);
  assert.deepEqual(Object.keys(api[0]).sort(), ['capacity', 'description', 'ends_at', 'joined',
    'location', 'members', 'name', 'owner', 'starts_at', 'title', 'unread', 'visibility']);
  assert.equal(api[0].owner, ann.name);
  // One search for the page and the API: the same fields (description too) and the same cap.
  const apiFound = async (q) => {
    const res = await bob.client.get(`/api/rooms?q=${encodeURIComponent(q)}`);
    assert.equal(res.status, 200, q);
    return res.json().map((x) => x.name).filter((n) => n.endsWith(tag)).sort();
  };
  assert.deepEqual(await apiFound('RECIPES'), [names[1]], 'the API searches descriptions');
  assert.deepEqual(await apiFound(`knitting ${tag}`), await found(`knitting ${tag}`));
  for (const q of ['q'.repeat(101), '\u00e9'.repeat(101)]) {
    assert.equal((await bob.client.get(`/rooms?q=${encodeURIComponent(q)}`)).status, 400);
    const a = await bob.client.get(`/api/rooms?q=${encodeURIComponent(q)}`);
    assert.equal(a.status, 400, 'the API caps the search text as the page does');
    assert.equal(a.json().error, 'bad_request');
  }
  assert.equal((await bob.client.get(`/api/rooms?q=${'\u00e9'.repeat(100)}`)).status, 200);
});

test('a missing room is 404', async () => {
  assert.equal((await bob.client.get('/rooms/no-such-room')).status, 404);
  assert.equal((await bob.client.get('/rooms/NOT_VALID')).status, 404);
});

test('delete: only the owner (or an admin); others get 403 and nothing changes', async () => {
  const name = `del-${uniq()}`;
  await ann.client.createRoom(name, 'To delete');
  await bob.client.get('/rooms');
  let r = await bob.client.postForm(`/rooms/${name}/delete`, {});
  assert.equal(r.status, 403);
  assert.equal(roomCount(name), '1');
  const list = await bob.client.get('/rooms');
  assert.doesNotMatch(list.text, new RegExp(`action="/rooms/${name}/delete"`), 'no delete button for others');
  const own = await ann.client.get('/rooms');
  assert.match(own.text, new RegExp(`action="/rooms/${name}/delete"`), 'the owner sees one');
  r = await ann.client.postForm(`/rooms/${name}/delete`, {}, { csrf: null });
  assert.equal(r.status, 403, 'no CSRF token');
  assert.equal(roomCount(name), '1');
  r = await ann.client.postForm(`/rooms/${name}/delete`, {});
  assert.equal(r.status, 303);
  assert.equal(r.location, '/rooms');
  assert.equal(roomCount(name), '0');
  assert.equal((await ann.client.get(`/rooms/${name}`)).status, 404);
  r = await ann.client.postForm(`/rooms/${name}/delete`, {});
  assert.equal(r.status, 404);
});

test('GET /api/rooms needs a session (401 JSON)', async () => {
  const r = await site.client().get('/api/rooms');
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.deepEqual(Object.keys(r.json()).sort(), ['error', 'message']);
  assert.equal(r.json().error, 'unauthorized');
});
