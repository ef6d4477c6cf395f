// The server refuses a message (too long for its configured limit, or sent too fast): the
// reason appears next to the box (a role=alert region, not a dialog), the text comes back
// into the box, and nothing refused is shown as sent. The stack runs with a tiny length
// limit and flood limit so a person's browser can reach them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/stack.mjs';
import {
  launch, newUser, register, createRoom, openRoom, messages, waitState, uniq,
  chromiumAvailable, CHROMIUM,
  withReport,
} from './browser.mjs';

const SERVER_MAX_CHARS = 100;
let stack;
let b;
let ann;
let bob;
const room = `limits-${uniq()}`;

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: run scripts/install-deps browser`);
  stack = await startStack({ chatEnv: { CHAT_MAX_TEXT_CHARS: String(SERVER_MAX_CHARS),
    CHAT_RATE_PER_SEC: '1', CHAT_RATE_BURST: '3', CHAT_RATE_STRIKES: '100',
    CHAT_MAX_PENDING_REPLIES: '100' } });
  b = await launch();
  ann = await newUser(b, stack.url, { email: `ann-${uniq()}@example.com`, name: 'Ann',
    password: 'correct horse battery staple' });
  bob = await newUser(b, stack.url, { email: `bob-${uniq()}@example.com`, name: 'Bob',
    password: 'another long passphrase' });
  await register(ann);
  await register(bob);
  await createRoom(ann, room, 'Limits');
  await openRoom(ann, room);
  await openRoom(bob, room);
});

after(async () => {
  if (b) await b.close();
  if (stack) await stack.stop();
});

const withLogs = (fn) => withReport(stack, [ann, bob], fn);

test('too long for the server: the error shows next to the box and the text stays', () =>
  withLogs(async () => {
    const text = 'x'.repeat(SERVER_MAX_CHARS + 50);
    const input = ann.page.locator('#chat-input');
    await input.fill(text);
    await input.press('Enter');
    const error = ann.page.locator('#chat .chat-error');
    await error.filter({ hasText: 'too long' }).waitFor();
    assert.equal(await error.getAttribute('role'), 'alert');
    assert.equal(await input.inputValue(), text, 'the text is back in the box');
    assert.equal(await ann.page.locator('#chat .msg').count(), 0, 'no bubble left behind');
    assert.deepEqual(ann.dialogs, []);
    assert.equal(await bob.page.locator('#chat .msg').count(), 0);
    // Typing again clears the error.
    await input.fill('shorter');
    assert.equal(await error.isVisible(), false);
    await input.fill('');
  }));

test('sent too fast: refused messages wait and go out as themselves, in order, none merged', () =>
  withLogs(async () => {
    // A fresh connection (fresh flood allowance), then ten messages as fast as a script can:
    // more than the server's burst (3) and rate (1/s) allow.
    await ann.page.reload();
    await waitState(ann, 'online');
    const texts = Array.from({ length: 10 }, (_, i) => `ok ${i + 11}`);
    await ann.page.evaluate((list) => {
      const input = document.getElementById('chat-input');
      for (const t of list) {
        input.value = t;
        input.dispatchEvent(new Event('input', { bubbles: true }));
        input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
      }
    }, texts);
    assert.equal(await ann.page.locator('#chat-input').inputValue(), '', 'nothing put back');
    // the server refuses some at first: they stay queued, marked, and are not in the box
    await ann.page.locator('#chat .msg-pending .msg-state', { hasText: /Not sent yet|Waiting/ })
      .first().waitFor();
    await ann.page.waitForFunction(() => !document.querySelector('#chat .msg-pending'),
      null, { timeout: 90000 });
    for (const u of [ann, bob]) {
      await u.page.waitForFunction((n) =>
        document.querySelectorAll('#chat .msg:not(.msg-pending)').length >= n, texts.length);
      const shown = (await messages(u)).map((m) => m.text).filter((t) => /^ok \d+/.test(t));
      assert.deepEqual(shown, texts, `each exactly once, as itself, in order: ${JSON.stringify(shown)}`);
    }
    assert.equal(await ann.page.locator('#chat-input').inputValue(), '');
    assert.deepEqual(ann.dialogs, []);
  }));

test('typing signals are throttled and never spend the message budget', () =>
  withLogs(async () => {
    await ann.page.reload();
    const frames = [];
    ann.page.on('websocket', (ws) => ws.on('framesent', (f) => {
      try { frames.push(JSON.parse(f.payload).type); } catch { /* not JSON */ }
    }));
    await ann.page.reload();
    await waitState(ann, 'online');
    const input = ann.page.locator('#chat-input');
    // three messages typed key by key, each sent at once: 3 is the server's burst
    let keys = 0;
    for (const t of ['typing one', 'typing two', 'typing three']) {
      keys += `${t} with quite a few keystrokes`.length;
      await input.pressSequentially(`${t} with quite a few keystrokes`);
      await input.press('Enter');
    }
    await ann.page.waitForFunction(() => !document.querySelector('#chat .msg-pending'));
    const typing = frames.filter((t) => t === 'typing').length;
    const sent = frames.filter((t) => t === 'message').length;
    assert.equal(sent, 3, `frames: ${frames}`);
    // throttled: a signal per few seconds of typing, not per key (a slow machine types slower,
    // so the count is bounded by the keys, not fixed)
    assert.ok(typing >= 1 && typing <= keys / 10, `${typing} typing signals for ${keys} keys: ${frames}`);
    const refused = await ann.page.locator('#chat .chat-error').textContent();
    assert.equal(refused, '', 'nothing was refused');
  }));

// (last in this file: it uses up this address's login allowance)
test('too many logins: the site\'s own 429 page, with a clear message', () =>
  withLogs(async () => {
    const u = await newUser(b, stack.url, { email: ann.email, name: 'x', password: 'wrong' });
    try {
      const { page } = u;
      let status = 0;
      page.on('response', (r) => { if (r.url().endsWith('/login')) status = r.status(); });
      for (let i = 0; i < 60 && status !== 429; i++) {
        await page.goto('/login');
        if (status === 429) break;
        await page.locator('[name="email"]').fill(ann.email);
        await page.locator('[name="password"]').fill(`wrong guess ${i}`);
        await Promise.all([page.waitForEvent('load'), page.locator('[name="password"]').press('Enter')]);
      }
      assert.equal(status, 429, 'the limit was reached');
      assert.equal(await page.locator('h1').textContent(), 'Too many attempts');
      assert.match(await page.locator('main').textContent(), /wait a minute, then try again/);
      // the site's look (its style sheet loaded), not nginx's bare page
      assert.equal(await page.locator('.site-header .brand').textContent(), 'Parley');
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(bg, 'rgb(246, 247, 249)');
    } finally {
      await u.context.close();
    }
  }));
