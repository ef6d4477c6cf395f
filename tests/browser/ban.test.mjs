// Moderation reaches open pages at once: the admin bans the user (through the admin page's
// form), the user logs out in another tab, or the room is deleted; the chat daemon closes the
// page's connection with the event's code (4003, 4001, 4004) and the page shows a final banner
// without asking for a new token. It stays stopped: restarting the chat daemon (as an upgrade
// does) brings no reconnect. A page that gets its token refused (403 banned) says why too.
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

// The page stopped for good: after a chat daemon restart (which makes every live page
// reconnect) and a while longer, it asked for no token and is still stopped.
async function staysStopped(u) {
  const count = u.tokens.length;
  await stack.restartChat();
  await u.page.waitForTimeout(3000);
  assert.equal(u.tokens.length, count, `token requests after the stop: ${u.tokens.slice(count)}`);
  assert.equal(await u.page.locator('#chat .chat-status').getAttribute('data-state'), 'stopped');
}

// The admin page lists users in a table, each row with its action forms: press "Ban" in
// the row that names `email`.
async function banThroughAdminPage(email) {
  const { page } = admin;
  await page.goto('/admin');
  const row = page.locator('tr', { hasText: email });
  await row.locator('form[action$="/ban"] [type="submit"]').click();
  await Promise.all([page.waitForEvent('load'), page.locator('dialog .confirm-yes').click()]);
}

test('an admin bans a user with the admin page form: the open page is told at once, says why and stops',
  () => withLogs(async () => {
    await say(bob, 'hello before the ban');
    await ann.page.locator('#chat .msg-text', { hasText: 'hello before the ban' }).waitFor();

    await banThroughAdminPage(bob.email);
    // The admin page now shows the user as banned (an unban form in the same row).
    await admin.page.goto('/admin');
    await admin.page.locator('tr', { hasText: bob.email }).locator('form[action$="/unban"]')
      .waitFor();

    const before = bob.tokens.length;
    // no restart, no reconnect: the open page is told at once (close 4003)
    const banner = bob.page.locator('#chat .chat-banner');
    await banner.waitFor({ state: 'visible' });
    assert.equal(bob.tokens.length, before, 'the page learnt it from the chat, not a token');
    assert.match(await banner.textContent(), /cannot chat here/i);
    assert.match(await banner.textContent(), /ban/i);
    assert.equal(await bob.page.locator('#chat .chat-banner').getAttribute('role'), 'alert');
    const status = bob.page.locator('#chat .chat-status');
    assert.equal(await status.getAttribute('data-state'), 'stopped');
    assert.equal(await bob.page.locator('#chat-input').isDisabled(), true);
    await screenshot(bob.page, 'chat-banned.png');
    // It stopped for good: no more token requests while the page stays open.
    await staysStopped(bob);
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
  const before = ann.tokens.length;
  const banner = ann.page.locator('#chat .chat-banner');
  await banner.waitFor({ state: 'visible' });
  assert.match(await banner.textContent(), /logged out/i);
  assert.equal(ann.tokens.length, before, 'the page learnt it from the chat (4001), not a token');
  // the login leads back into the room
  assert.equal(await banner.locator('a').getAttribute('href'),
    `/login?next=${encodeURIComponent(`/rooms/${room}`)}`);
  await staysStopped(ann);
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
    const before = carol.tokens.length;
    const banner = carol.page.locator('#chat .chat-banner');
    await banner.waitFor({ state: 'visible' });
    assert.match(await banner.textContent(), /no longer exists/);
    assert.equal(carol.tokens.length, before, 'the page learnt it from the chat (4004)');
    await staysStopped(carol);
  } finally {
    await carol.context.close();
  }
}));
