// Cheap writes, expensive reads (issue 9): room creation is throttled per user in the database
// (WEB_ROOMS_PER_HOUR), and room search reads the trigram indexes of migration 003 instead of
// every row.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, newUser, uniq } from './helpers.mjs';

let site;
before(async () => { site = await startSite({ env: { WEB_ROOMS_PER_HOUR: '3' } }); });
after(async () => {
  const r = await site?.stop();
  assert.deepEqual(r, { code: 0, signal: null }, site?.web.stderr.slice(-3000));
});

const rooms = (email) => Number(site.pg.psql(
  `SELECT count(*) FROM rooms r JOIN users u ON u.id = r.owner_id WHERE u.email = '${email}'`));

test('room creation per user is throttled: 429 with the form and a message; others unaffected', async () => {
  const u = await newUser(site, 'maker');
  for (let i = 0; i < 3; i++)
    assert.equal((await u.client.createRoom(`mk-${uniq()}`, `Room ${i}`)).status, 303);
  const name = `mk-${uniq()}`;
  const r = await u.client.createRoom(name, 'One too many', 'kept');
  assert.equal(r.status, 429);
  assert.match(r.text, /You have created 3 rooms within the last hour, the most allowed/);
  assert.match(r.text, new RegExp(`value="${name}"`), 'the form comes back with the input');
  assert.match(r.headers.get('retry-after') || '', /^\d+$/);
  assert.equal(rooms(u.email), 3);
  // Deleting a room gives nothing back: create-and-delete cannot go around the limit.
  const victim = site.pg.psql(`SELECT r.name FROM rooms r JOIN users u ON u.id = r.owner_id WHERE u.email = '${u.email}' LIMIT 1`);
  assert.equal((await u.client.postForm(`/rooms/${victim}/delete`, {}, { formPage: '/rooms' })).status, 303);
  assert.equal((await u.client.createRoom(`mk-${uniq()}`, 'After delete')).status, 429);
  // Another user is not affected.
  const other = await newUser(site, 'other');
  assert.equal((await other.client.createRoom(`ot-${uniq()}`, 'Mine')).status, 303);
});

test('the limit holds for concurrent requests (it is counted in the database)', async () => {
  const u = await newUser(site, 'burst');
  await u.client.get('/rooms');
  const results = await Promise.all(Array.from({ length: 12 }, () =>
    u.client.postForm('/rooms', { name: `bu-${uniq()}`, title: 'Burst', description: '' })));
  const statuses = results.map((r) => r.status).sort();
  assert.equal(statuses.filter((s) => s === 303).length, 3, JSON.stringify(statuses));
  assert.equal(statuses.filter((s) => s === 429).length, 9, JSON.stringify(statuses));
  assert.equal(rooms(u.email), 3);
});

test('search uses the trigram indexes (EXPLAIN on 20k rooms) and needs 3 characters', async () => {
  const u = await newUser(site, 'bulk');
  const owner = site.pg.psql(`SELECT id FROM users WHERE email = '${u.email}'`);
  // 20,000 rooms in one statement (not through HTTP: the throttle would rightly refuse).
  site.pg.psql(`INSERT INTO rooms (name, title, description, owner_id)
    SELECT 'gen-' || g, 'Room ' || g || ' about ' || w[1 + g % 10], 'We talk about ' || w[1 + (g * 7) % 10] || ' and ' || w[1 + (g * 3) % 10], ${owner}
    FROM generate_series(1, 20000) g,
      (SELECT ARRAY['cats', 'dogs', 'chess', 'music', 'films', 'books', 'cooking', 'travel', 'gardens', 'code'] AS w) words`);
  // A word none of the generated rooms holds (letters only: uniq() is hex, which the generated
  // numbers share trigrams with).
  const tag = `zyx${uniq().replace(/[0-9]/g, (d) => 'ghijklmnop'[d])}`;
  site.pg.psql(`INSERT INTO rooms (name, title, description, owner_id)
    VALUES ('needle-${tag}', 'Haystack ${tag}', 'find me', ${owner})`);
  site.pg.psql('ANALYZE rooms');
  // The statement inside rooms_search (migrations 003, 005), with its setting and a literal pattern.
  const plan = site.pg.psql(`SET random_page_cost = 1.1; EXPLAIN SELECT r.name, r.title, r.description, u.name, r.owner_id
    FROM rooms r JOIN users u ON u.id = r.owner_id
    WHERE (r.name || E'\\n' || r.title || E'\\n' || r.description) ILIKE '%' || '${tag}' || '%' ESCAPE '\\'
    ORDER BY r.name LIMIT 200`);
  assert.match(plan, /Bitmap Index Scan on rooms_search_trgm_idx/, plan);
  assert.doesNotMatch(plan, /Seq Scan on rooms/, plan);
  assert.equal(site.pg.psql("SELECT proconfig::text FROM pg_proc WHERE proname = 'rooms_search'"),
    '{random_page_cost=1.1}');
  // The function's own plan, as the server runs it (auto_explain logs nested statements).
  const logStart = site.pg.log().length;
  site.pg.psql(`LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;
    SET auto_explain.log_nested_statements = on;
    SELECT count(*) FROM rooms_search('${tag}', 200, 0, false)`);
  const logged = site.pg.log().slice(logStart);
  assert.match(logged, /Bitmap Index Scan on rooms_search_trgm_idx/, logged);
  // And the running website's own query reads them: the indexes' scan counters move.
  const scans = () => Number(site.pg.psql(`SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes
    WHERE indexrelname = 'rooms_search_trgm_idx'`));
  const before = scans();
  const page = await u.client.get(`/rooms?q=${tag}`);
  assert.equal(page.status, 200);
  assert.match(page.text, new RegExp(`href="/rooms/needle-${tag}"`));
  const api = await u.client.get(`/api/rooms?q=${encodeURIComponent('FIND ME')}`);
  assert.deepEqual(api.json().map((x) => x.name), [`needle-${tag}`]);
  let after = before;
  for (let i = 0; i < 150 && after <= before; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = scans();
  }
  assert.ok(after > before, `index scans ${before} -> ${after}`);
  // Shorter than one trigram: refused with a message (page and API); empty lists, bounded.
  const short = await u.client.get('/rooms?q=ab');
  assert.equal(short.status, 400);
  assert.match(short.text, /Type at least 3 characters to search/);
  assert.equal((await u.client.get('/api/rooms?q=ab')).status, 400);
  const all = await u.client.get('/api/rooms');
  assert.equal(all.json().length, 200, 'the list is bounded');
});
