// Activities, membership and private rooms through the real website and PostgreSQL: an
// activity with a time, place and places; 20 concurrent joins for 10 places; leave frees a
// place; hostile activity fields get clear 400s; a private room is invisible, unopenable and
// tokenless for a non-member.
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

const inDays = (d) => new Date(Date.now() + d * 86400e3);
// A datetime-local value (no offset) for a time d days ahead, as the wall clock of zone tz.
const local = (d, tz) => {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit',
    day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(inDays(d));
  const g = (t) => parts.find((p) => p.type === t).value;
  return `${g('year')}-${g('month')}-${g('day')}T${g('hour')}:${g('minute')}`;
};

async function create(client, fields) {
  await client.get('/rooms');
  return client.postForm('/rooms', { title: fields.name, description: '', ...fields });
}
async function join(client, name) {
  await client.get('/rooms');
  return client.postForm(`/rooms/${name}/join`);
}
async function leave(client, name) {
  await client.get('/rooms');
  return client.postForm(`/rooms/${name}/leave`);
}
const members = (name) => Number(site.pg.psql(`SELECT count(*) FROM room_members m
  JOIN rooms r ON r.id = m.room_id WHERE r.name = '${name}'`));

test('create an activity: time in the given zone, place, places; shown on the page and in lists', async () => {
  const name = `hike-${uniq()}`;
  const r = await create(ann.client, { name, title: 'Hike', starts_at: local(3, 'Europe/Berlin'),
    ends_at: local(3.1, 'Europe/Berlin'), tz: 'Europe/Berlin', location: 'Main station <clock>',
    capacity: '12' });
  assert.equal(r.status, 303, r.text.slice(0, 2000));
  // datetime-local was read in Europe/Berlin: stored as that instant (to the minute).
  const stored = Number(site.pg.psql(`SELECT extract(epoch FROM starts_at) FROM rooms WHERE name = '${name}'`));
  assert.ok(Math.abs(stored * 1000 - inDays(3).getTime()) < 61e3, `${stored}`);
  assert.equal(members(name), 1, 'the owner is a member');
  const iso = site.pg.psql(`SELECT to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM rooms WHERE name = '${name}'`);
  const page = await bob.client.get(`/rooms/${name}`);
  assert.equal(page.status, 200);
  assert.match(page.text, new RegExp(`<time class="starts" datetime="${iso}">${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC</time>`));
  assert.match(page.text, /Main station &lt;clock&gt;/);
  assert.match(page.text, /11 of 12 places left/);
  assert.match(page.text, new RegExp(`Members \\(1\\): <span class="members">${ann.name}</span>`), 'who is going');
  assert.match(page.text, /<script src="\/static\/localtime.js" defer><\/script>/);
  assert.match(page.text, new RegExp(`action="/rooms/${name}/join"`));
  const list = await bob.client.get('/rooms');
  const up = list.text.split('<h2>Upcoming activities</h2>')[1]?.split('</section>')[0] ?? '';
  assert.match(up, new RegExp(`href="/rooms/${name}"`), 'listed under Upcoming activities');
  const api = (await bob.client.get(`/api/rooms?q=${name}`)).json();
  assert.equal(api.length, 1);
  assert.equal(api[0].starts_at, iso);
  assert.equal(api[0].location, 'Main station <clock>');
  assert.equal(api[0].capacity, 12);
  assert.equal(api[0].members, 1);
  assert.equal(api[0].visibility, 'public');
  assert.equal(api[0].joined, false);
  // With an explicit offset the zone field is not needed.
  const n2 = `offset-${uniq()}`;
  const r2 = await create(ann.client, { name: n2, starts_at: '2099-06-01T10:00+02:00' });
  assert.equal(r2.status, 303, r2.text.slice(0, 2000));
  assert.equal(site.pg.psql(`SELECT to_char(starts_at AT TIME ZONE 'UTC', 'HH24:MI') FROM rooms WHERE name = '${n2}'`), '08:00');
});

test('upcoming activities are soonest first', async () => {
  const t = uniq();
  const later = `later-${t}`, sooner = `sooner-${t}`;
  assert.equal((await create(ann.client, { name: later, starts_at: '2098-01-02T10:00Z' })).status, 303);
  assert.equal((await create(ann.client, { name: sooner, starts_at: '2098-01-01T10:00Z' })).status, 303);
  const list = await bob.client.get('/rooms');
  const up = list.text.split('<h2>Upcoming activities</h2>')[1].split('</section>')[0];
  assert.ok(up.indexOf(`/rooms/${sooner}"`) < up.indexOf(`/rooms/${later}"`), 'sooner first');
});

test('hostile activity fields get clear 400s and nothing is created', async () => {
  const cases = [
    [{ starts_at: 'tomorrow' }, /id="room-starts-error">Give the start as a date and time/],
    [{ starts_at: 'now' }, /id="room-starts-error">Give the start as a date and time/],
    [{ starts_at: '2099-02-31T10:00Z' }, /id="room-starts-error">This start date or time does not exist/],
    [{ starts_at: '2099-01-01T25:00Z' }, /id="room-starts-error">This start date or time does not exist/],
    [{ starts_at: '2001-01-01T10:00Z' }, /id="room-starts-error">The start must be in the future/],
    [{ starts_at: '2099-01-01T10:00', tz: 'Mars/Olympus' }, /id="room-starts-error">Unknown time zone/],
    [{ starts_at: '2099-01-01T10:00', tz: "UTC'; DROP TABLE rooms; --" }, /id="room-starts-error">Unknown time zone/],
    [{ starts_at: '2099-01-01T10:00Z', ends_at: '2099-01-01T09:00Z' }, /id="room-ends-error">The end must be after the start/],
    [{ ends_at: '2099-01-01T09:00Z' }, /id="room-ends-error">An activity with an end needs a start too/],
    [{ capacity: '0' }, /id="room-capacity-error">The number of places must be a whole number from 1 to 10000/],
    [{ capacity: '10001' }, /id="room-capacity-error">The number of places must be/],
    [{ capacity: '99999999999999999999' }, /id="room-capacity-error">The number of places must be/],
    [{ capacity: 'ten' }, /id="room-capacity-error">The number of places must be/],
    [{ capacity: '-5' }, /id="room-capacity-error">The number of places must be/],
    [{ location: 'x'.repeat(201) }, /id="room-location-error">The place can have at most 200 characters/],
    [{ location: 'a\u202eb' }, /id="room-location-error">The place contains characters that are not allowed/],
    [{ visibility: 'secret' }, /id="room-visibility-error">Visibility must be public or private/],
  ];
  for (const [fields, re] of cases) {
    const name = `bad-${uniq()}`;
    const r = await create(ann.client, { name, ...fields });
    assert.equal(r.status, 400, JSON.stringify(fields));
    assert.match(r.text, re, JSON.stringify(fields));
    assert.equal(site.pg.psql(`SELECT count(*) FROM rooms WHERE name = '${name}'`), '0');
  }
  assert.ok(Number(site.pg.psql('SELECT count(*) FROM rooms')) > 0, 'the rooms table is still there');
});

test('20 concurrent joins for 10 places: exactly 10 members; full is a clear 409; leave frees a place', async () => {
  const name = `match-${uniq()}`;
  // capacity 11: the owner holds one place, 10 are left for the 20 joiners
  assert.equal((await create(ann.client, { name, starts_at: '2099-03-01T18:00Z', capacity: '11' })).status, 303);
  const users = [];
  for (let i = 0; i < 20; i++) users.push(await newUser(site, `j${i}`));
  await Promise.all(users.map((u) => u.client.get('/rooms')));
  const res = await Promise.all(users.map((u) => u.client.postForm(`/rooms/${name}/join`)));
  const codes = res.map((r) => r.status).sort();
  assert.deepEqual(codes, [...Array(10).fill(303), ...Array(10).fill(409)], codes.join(','));
  assert.equal(members(name), 11);
  const full = res.find((r) => r.status === 409);
  assert.match(full.text, /This activity is full/);
  assert.match((await bob.client.get(`/rooms/${name}`)).text, /Full \(11 places\)/);
  assert.equal((await join(bob.client, name)).status, 409);
  const winner = users[res.findIndex((r) => r.status === 303)];
  assert.equal((await leave(winner.client, name)).status, 303);
  assert.equal(members(name), 10);
  assert.equal((await join(bob.client, name)).status, 303);
  assert.equal(members(name), 11);
  // joining twice is harmless; the owner cannot leave
  assert.equal((await join(bob.client, name)).status, 303);
  assert.equal(members(name), 11);
  const ol = await leave(ann.client, name);
  assert.equal(ol.status, 409);
  assert.match(ol.text, /You own this room/);
});

test('join and leave need the CSRF token and a login', async () => {
  const name = `csrf-${uniq()}`;
  assert.equal((await create(ann.client, { name })).status, 303);
  assert.equal((await bob.client.postForm(`/rooms/${name}/join`, {}, { csrf: 'x'.repeat(64) })).status, 403);
  assert.equal(members(name), 1);
  const anon = site.client();
  assert.equal((await anon.postForm(`/rooms/${name}/join`, {}, { formPage: '/login' })).status, 303);
  assert.equal(members(name), 1);
});

test('a private room is invisible, unopenable, unjoinable and tokenless for a non-member', async () => {
  const name = `secret-${uniq()}`;
  assert.equal((await create(ann.client, { name, title: `Secret ${name}`, visibility: 'private' })).status, 303);
  assert.equal(site.pg.psql(`SELECT visibility FROM rooms WHERE name = '${name}'`), 'private');
  // the owner sees and uses it
  assert.equal((await ann.client.get(`/rooms/${name}`)).status, 200);
  assert.equal((await ann.client.chatToken(name)).status, 200);
  assert.match((await ann.client.get('/rooms')).text, new RegExp(`href="/rooms/${name}"`));
  // bob does not
  const page = await bob.client.get(`/rooms/${name}`);
  assert.equal(page.status, 404);
  const tok = await bob.client.chatToken(name);
  assert.equal(tok.status, 403);
  assert.equal(tok.body.error, 'not_member');
  assert.doesNotMatch((await bob.client.get('/rooms')).text, new RegExp(name));
  assert.doesNotMatch((await bob.client.get(`/rooms?q=${name}`)).text, new RegExp(`href="/rooms/${name}"`));
  assert.deepEqual((await bob.client.get(`/api/rooms?q=${name}`)).json(), []);
  assert.ok(!(await bob.client.get('/api/rooms')).json().some((x) => x.name === name));
  assert.equal((await join(bob.client, name)).status, 404);
  assert.equal(members(name), 1);
  // an admin sees it
  const adm = site.client();
  assert.equal((await adm.login(site.admin.email, site.admin.password)).status, 303);
  assert.equal((await adm.get(`/rooms/${name}`)).status, 200);
  assert.equal((await adm.chatToken(name)).status, 200);
  // a public room still gives bob a token
  const pub = `open-${uniq()}`;
  assert.equal((await create(ann.client, { name: pub })).status, 303);
  assert.equal((await bob.client.chatToken(pub)).status, 200);
});

test('the owner edits an activity; others cannot; capacity never below the members', async () => {
  const name = `edit-${uniq()}`;
  assert.equal((await create(ann.client, { name, title: 'Before', starts_at: '2099-05-01T10:00Z', capacity: '5' })).status, 303);
  const form = await ann.client.get(`/rooms/${name}/edit`);
  assert.equal(form.status, 200);
  assert.match(form.text, /name="starts_at" type="datetime-local" value="2099-05-01T10:00" data-utc="2099-05-01T10:00:00Z"/);
  assert.match(form.text, /name="capacity" type="number" min="1" max="10000" value="5"/);
  assert.equal((await bob.client.get(`/rooms/${name}/edit`)).status, 404);
  assert.equal((await bob.client.postForm(`/rooms/${name}/edit`, { title: 'Hijack' }, { formPage: '/rooms' })).status, 404);
  assert.equal(site.pg.psql(`SELECT title FROM rooms WHERE name = '${name}'`), 'Before');
  let r = await ann.client.postForm(`/rooms/${name}/edit`, { title: 'After', description: 'd',
    starts_at: '2099-05-02T09:30', tz: 'America/New_York', location: 'Park', capacity: '3' });
  assert.equal(r.status, 303, r.text.slice(0, 1500));
  assert.equal(site.pg.psql(`SELECT title || '|' || to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || '|' || location || '|' || capacity FROM rooms WHERE name = '${name}'`),
    'After|2099-05-02 13:30|Park|3');
  r = await ann.client.postForm(`/rooms/${name}/edit`, { title: 'After', capacity: '0' });
  assert.equal(r.status, 400);
  assert.match(r.text, /id="room-capacity-error">The number of places must be/);
  // 2 members (ann, bob): capacity 1 is refused, nothing changes
  assert.equal((await join(bob.client, name)).status, 303);
  r = await ann.client.postForm(`/rooms/${name}/edit`, { title: 'Smaller', capacity: '1' });
  assert.equal(r.status, 409);
  assert.match(r.text, /More people are already going than this number of places/);
  assert.equal(site.pg.psql(`SELECT title || '|' || capacity FROM rooms WHERE name = '${name}'`), 'After|3');
  // making it private keeps its members in and others out
  r = await ann.client.postForm(`/rooms/${name}/edit`, { title: 'After', visibility: 'private' });
  assert.equal(r.status, 303);
  assert.equal((await bob.client.get(`/rooms/${name}`)).status, 200);
  const eve = await newUser(site, 'eve');
  assert.equal((await eve.client.get(`/rooms/${name}`)).status, 404);
});

test('migration 005 runs again cleanly on a database that has it (idempotent)', async () => {
  const { readFileSync } = await import('node:fs');
  const { ROOT } = await import('../lib/proc.mjs');
  const sql = readFileSync(`${ROOT}/db/migrations/005_activities.sql`, 'utf8');
  const before = site.pg.psql('SELECT count(*) FROM room_members');
  // inside a transaction rolled back: a re-run must not fail, and leaves nothing changed
  site.pg.psql(`BEGIN; ${sql}; SELECT 1; ROLLBACK;`);
  site.pg.psql(`BEGIN; ${sql}; ${sql}; ROLLBACK;`);
  assert.equal(site.pg.psql('SELECT count(*) FROM room_members'), before);
});
