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

test('sent too fast: refused messages come back into the box, accepted ones show once', () =>
  withLogs(async () => {
    // A fresh connection (fresh flood allowance), then ten messages as fast as a script can.
    await ann.page.reload();
    await waitState(ann, 'online');
    const texts = Array.from({ length: 10 }, (_, i) => `burst message ${i + 1}`);
    await ann.page.evaluate((list) => {
      const input = document.getElementById('chat-input');
      for (const t of list) {
        input.value = t;
        input.dispatchEvent(new Event('input', { bubbles: true }));
        input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
      }
    }, texts);
    const error = ann.page.locator('#chat .chat-error');
    await error.filter({ hasText: 'too fast' }).waitFor();
    // Settled: every message either confirmed or refused.
    await ann.page.waitForFunction(() => !document.querySelector('#chat .msg-pending'));
    const shown = (await messages(ann)).map((m) => m.text);
    const back = (await ann.page.locator('#chat-input').inputValue()).split('\n');
    assert.ok(shown.length >= 1, 'the first messages got through');
    assert.ok(back.length >= 1 && back[0] !== '', 'some were refused');
    assert.deepEqual([...shown, ...back].sort(), [...texts].sort(),
      `each message exactly once, shown or back in the box: ${JSON.stringify({ shown, back })}`);
    const inOrder = (list) =>
      list.every((t, i) => i === 0 || texts.indexOf(list[i - 1]) < texts.indexOf(t));
    assert.ok(inOrder(shown), 'accepted ones in the order they were written');
    assert.ok(inOrder(back), 'refused ones back in the order they were written');
    assert.equal(shown[0], texts[0]);
    // Bob saw exactly the accepted ones.
    await bob.page.waitForFunction((n) =>
      document.querySelectorAll('#chat .msg').length >= n, shown.length);
    assert.deepEqual((await messages(bob)).map((m) => m.text), shown);
  }));
