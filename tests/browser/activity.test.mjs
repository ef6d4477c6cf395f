// An activity through the pages, as people in two time zones see it: Ann (New York) creates
// it with the form's "This is an activity" section, typing her own wall-clock time; Bob
// (Tokyo) finds it under "Upcoming activities", sees the time in his zone, and joins.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/stack.mjs';
import { launch, register, uniq, chromiumAvailable, CHROMIUM, WAIT_MS, createRoom, openRoom,
  waitState, say, waitMessages } from './browser.mjs';

let stack, b;
const users = {};

async function person(name, timezoneId) {
  const context = await b.browser.newContext({ baseURL: stack.url, timezoneId, locale: 'en-US' });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const u = { context, page, name, email: `${name.toLowerCase()}-${uniq()}@example.com`,
    password: `pw-${uniq()}-${uniq()}`, pageErrors: [] };
  page.on('pageerror', (e) => u.pageErrors.push(e.message));
  await register(u);
  return u;
}

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: run scripts/install-deps browser`);
  stack = await startStack();
  b = await launch();
  users.ann = await person('Ann', 'America/New_York');
  users.bob = await person('Bob', 'Asia/Tokyo');
});
after(async () => {
  if (b) await b.close();
  if (stack) await stack.stop();
});

test('an activity is created in one zone, shown in another, and joined', async () => {
  const { ann, bob } = users;
  const name = `picnic-${uniq()}`;
  await ann.page.goto('/rooms');
  const form = ann.page.locator('form[action="/rooms"]');
  await form.locator('[name="name"]').fill(name);
  await form.locator('[name="title"]').fill('Picnic');
  await form.locator('summary').click();
  // 2099-07-01 10:00 in New York (EDT, UTC-4) is 14:00 UTC and 23:00 in Tokyo
  await form.locator('[name="starts_at"]').fill('2099-07-01T10:00');
  await form.locator('[name="location"]').fill('Central Park');
  await form.locator('[name="capacity"]').fill('2');
  assert.equal(await form.locator('[name="tz"]').inputValue(), 'America/New_York');
  await Promise.all([ann.page.waitForURL(`**/rooms/${name}`), form.locator('button[type="submit"]', { hasText: 'Create room' }).click()]);
  assert.equal(stack.pg.psql(`SELECT to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM rooms WHERE name = '${name}'`),
    '2099-07-01 14:00');
  const annTime = await ann.page.locator('.room-info time.starts').textContent();
  assert.match(annTime, /Jul 1, 2099.*10:00\s?AM/, annTime);

  await bob.page.goto('/rooms');
  const item = bob.page.locator('.upcoming li', { hasText: 'Picnic' });
  const bobTime = await item.locator('time.starts').textContent();
  assert.match(bobTime, /Jul 1, 2099.*11:00\s?PM/, bobTime);
  assert.match(await item.textContent(), /Central Park/);
  assert.match(await item.textContent(), /1 of 2 places left/);
  await Promise.all([bob.page.waitForURL(`**/rooms/${name}`), item.locator('button', { hasText: 'Join' }).click()]);
  assert.match(await bob.page.locator('.room-info').textContent(), /Full \(2 places\)/);
  assert.match(await bob.page.locator('.room-info .members').textContent(), /Ann, Bob/);
  assert.deepEqual([...ann.pageErrors, ...bob.pageErrors], []);
});

test('unread counts on /rooms rise with messages and fall once the reader has seen them', async () => {
  const { ann, bob } = users;
  const name = `unread-${uniq()}`;
  await createRoom(ann, name, 'Unread counts');
  await bob.page.goto(`/rooms/${name}`);
  await bob.page.locator('form[action$="/join"] button').click();
  await bob.page.goto('/rooms');
  await openRoom(ann, name);
  await waitState(ann, 'online');
  for (const t of ['one', 'two', 'three']) await say(ann, `unread ${t}`);
  await waitMessages(ann, 3);
  // Bob is on /rooms: his count is what he has not seen (the page counts by the room's seq)
  const mine = bob.page.locator('.my-rooms li', { hasText: 'Unread counts' });
  await assert.doesNotReject(async () => {
    for (let i = 0; ; i++) {
      await bob.page.reload();
      if (/\b3 unread\b/.test(await mine.textContent())) return;
      if (i > 30) throw new Error(`no "3 unread": ${await mine.textContent()}`);
      await bob.page.waitForTimeout(300);
    }
  });
  // he opens the room and reads; the page reports the seq it has shown
  await openRoom(bob, name);
  await waitMessages(bob, 3);
  const api = async () => (await bob.page.request.get('/api/rooms')).json();
  for (let i = 0; ; i++) {
    const r = (await api()).find((x) => x.name === name);
    if (r && r.unread === 0) break;
    if (i > 50) throw new Error(`unread stays ${JSON.stringify(r)}`);
    await bob.page.waitForTimeout(200);
  }
  assert.deepEqual([...ann.pageErrors, ...bob.pageErrors], []);
});
