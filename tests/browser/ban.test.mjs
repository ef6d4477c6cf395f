// When the website refuses a chat token, the page stops reconnecting and says why: the
// admin banned the user (through the admin page's form), the user logged out in another tab,
// or the room was deleted. Reconnects are forced by restarting the chat daemon, as happens
// when it is upgraded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/stack.mjs';
import {
  launch, newUser, screenshot, register, login, createRoom, openRoom, say, waitState, uniq,
  chromiumAvailable, CHROMIUM,
  withReport,
} from './browser.mjs';

let stack;
let b;
let admin;
let ann;
let bob;
const room = `town-${uniq()}`;

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: run scripts/install-deps browser`);
  stack = await startStack();
  b = await launch();
  admin = await newUser(b, stack.url, { ...stack.admin, name: 'Admin' });
  ann = await newUser(b, stack.url, { email: `ann-${uniq()}@example.com`, name: 'Ann',
    password: 'correct horse battery staple' });
  bob = await newUser(b, stack.url, { email: `bob-${uniq()}@example.com`, name: 'Bob',
    password: 'another long passphrase' });
  for (const u of [ann, bob]) {
    u.tokens = [];
    u.page.on('response', (r) => {
      if (r.url().includes('/api/rooms/') && r.url().endsWith('/token')) u.tokens.push(r.status());
    });
  }
  await login(admin);
  await register(ann);
  await register(bob);
  await createRoom(ann, room, 'Town square');
  await openRoom(ann, room);
  await openRoom(bob, room);
});

after(async () => {
  if (b) await b.close();
  if (stack) await stack.stop();
});

const withLogs = (fn) => withReport(stack, [admin, ann, bob], fn);

// The admin page lists users in a table, each row with its action forms: press "Ban" in
// the row that names `email`.
async function banThroughAdminPage(email) {
  const { page } = admin;
  await page.goto('/admin');
  const row = page.locator('tr', { hasText: email });
  await row.locator('form[action$="/ban"] [type="submit"]').click();
  await Promise.all([page.waitForEvent('load'), page.locator('dialog .confirm-yes').click()]);
}

test('an admin bans a user with the admin page form: the next token fails and the page says why',
  () => withLogs(async () => {
    await say(bob, 'hello before the ban');
    await ann.page.locator('#chat .msg-text', { hasText: 'hello before the ban' }).waitFor();

    await banThroughAdminPage(bob.email);
    // The admin page now shows the user as banned (an unban form in the same row).
    await admin.page.goto('/admin');
    await admin.page.locator('tr', { hasText: bob.email }).locator('form[action$="/unban"]')
      .waitFor();

    const before = bob.tokens.length;
    await stack.restartChat();
    const banner = bob.page.locator('#chat .chat-banner');
    await banner.waitFor({ state: 'visible' });
    // 403 as ARCHITECTURE.md says: a 401 (sessions deleted by the ban) would leave the page
    // unable to say more than "logged out".
    assert.equal(bob.tokens.at(-1), 403, `token answers: ${bob.tokens.slice(before)}`);
    assert.match(await banner.textContent(), /cannot chat here/i);
    assert.match(await banner.textContent(), /ban/i);
    assert.equal(await bob.page.locator('#chat .chat-banner').getAttribute('role'), 'alert');
    const status = bob.page.locator('#chat .chat-status');
    assert.equal(await status.getAttribute('data-state'), 'stopped');
    assert.equal(await bob.page.locator('#chat-input').isDisabled(), true);
    await screenshot(bob.page, 'chat-banned.png');
    // It stopped for good: no more token requests while the page stays open.
    const count = bob.tokens.length;
    await waitState(ann, 'online');
    await say(ann, 'is Bob gone?');
    await ann.page.locator('#chat .msg-own', { hasText: 'is Bob gone?' }).waitFor();
    assert.equal(bob.tokens.length, count);
    assert.equal(await bob.page.locator('#chat .msg-text', { hasText: 'is Bob gone?' }).count(), 0);
    const annSees = await ann.page.locator('#chat .chat-member-name').allTextContents();
    assert.ok(!annSees.includes('Bob'), `Ann's member list: ${annSees}`);
  }));

test('a user who logged out in another tab is told to log in again', () => withLogs(async () => {
  const other = await ann.context.newPage();
  try {
    await other.goto('/rooms');
    await Promise.all([other.waitForURL(/\/login/),
      other.locator('form[action="/logout"] [type="submit"]').first().click()]);
  } finally {
    await other.close();
  }
  await stack.restartChat();
  const banner = ann.page.locator('#chat .chat-banner');
  await banner.waitFor({ state: 'visible' });
  assert.match(await banner.textContent(), /logged out/i);
  // the login leads back into the room
  assert.equal(await banner.locator('a').getAttribute('href'),
    `/login?next=${encodeURIComponent(`/rooms/${room}`)}`);
  assert.equal(ann.tokens.at(-1), 401);
}));

test('a deleted room: the page says the room is gone', () => withLogs(async () => {
  const carol = await newUser(b, stack.url, { email: `carol-${uniq()}@example.com`,
    name: 'Carol', password: 'yet another passphrase' });
  carol.tokens = [];
  carol.page.on('response', (r) => {
    if (r.url().endsWith('/token')) carol.tokens.push(r.status());
  });
  try {
    await register(carol);
    await createRoom(carol, `gone-${uniq()}`, 'Short-lived');
    const name = new URL(carol.page.url()).pathname.split('/').pop();
    await openRoom(carol, name);
    // Delete through the admin page's form for that room.
    await admin.page.goto('/admin');
    await admin.page.locator(`form[action="/admin/rooms/${name}/delete"] [type="submit"]`).click();
    await Promise.all([admin.page.waitForEvent('load'),
      admin.page.locator('dialog .confirm-yes').click()]);
    await stack.restartChat();
    const banner = carol.page.locator('#chat .chat-banner');
    await banner.waitFor({ state: 'visible' });
    assert.match(await banner.textContent(), /no longer exists/);
    assert.equal(carol.tokens.at(-1), 404);
  } finally {
    await carol.context.close();
  }
}));
