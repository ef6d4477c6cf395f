// The connection drops under two people chatting in a real browser: the chat daemon is
// restarted, it is down while someone types, and the browser goes offline. The pages say
// what is happening, reconnect by themselves (fresh token each time), and nothing typed is
// lost, all without a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/stack.mjs';
import {
  launch, newUser, register, createRoom, openRoom, say, messages, waitMessages, waitState,
  memberNames, uniq, screenshot, chromiumAvailable, CHROMIUM,
  withReport,
} from './browser.mjs';

let stack;
let b;
let ann;
let bob;
const room = `relay-${uniq()}`;

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: run scripts/install-deps browser`);
  stack = await startStack();
  b = await launch();
  ann = await newUser(b, stack.url, { email: `ann-${uniq()}@example.com`, name: 'Ann',
    password: 'correct horse battery staple' });
  bob = await newUser(b, stack.url, { email: `bob-${uniq()}@example.com`, name: 'Bob',
    password: 'another long passphrase' });
  // Count token requests per page: each (re)connection must fetch a fresh token.
  for (const u of [ann, bob]) {
    u.tokens = [];
    u.page.on('response', (r) => {
      if (r.url().endsWith(`/api/rooms/${room}/token`)) u.tokens.push(r.status());
    });
  }
  await register(ann);
  await register(bob);
  await createRoom(ann, room, 'Relay');
  await openRoom(ann, room);
  await openRoom(bob, room);
  await ann.page.waitForFunction(() =>
    document.querySelectorAll('#chat .chat-member').length === 2);
});

after(async () => {
  if (b) await b.close();
  if (stack) await stack.stop();
});

const withLogs = (fn) => withReport(stack, [ann, bob], fn);

test('chat daemon restarted: both pages show reconnecting, then online, and chat goes on', () =>
  withLogs(async () => {
    await say(ann, 'before the restart');
    await waitMessages(bob, 1);
    const annTokens = ann.tokens.length;
    const bobTokens = bob.tokens.length;
    const pageLoads = () =>
      Promise.all([ann, bob].map((u) => u.page.evaluate(() => performance.timeOrigin)));
    const loads = await pageLoads();

    await stack.stopChat();
    await Promise.all([waitState(ann, 'reconnecting'), waitState(bob, 'reconnecting')]);
    assert.match(await ann.page.locator('#chat .chat-status').textContent(), /Reconnecting/);
    await stack.startChat();
    await Promise.all([waitState(ann, 'online'), waitState(bob, 'online')]);

    // Fresh tokens were fetched, the pages were not reloaded, and the members are back.
    assert.ok(ann.tokens.length > annTokens && bob.tokens.length > bobTokens);
    assert.ok(ann.tokens.slice(annTokens).every((s) => s === 200 || s >= 500));
    const again = await pageLoads();
    assert.deepEqual(again, loads, 'no page reload');
    await ann.page.waitForFunction(() =>
      document.querySelectorAll('#chat .chat-member').length === 2);
    assert.deepEqual((await memberNames(ann)).sort(), ['Ann', 'Bob']);
    // The page fills in what was missed instead of saying something was missed.
    assert.equal(await ann.page.locator('#chat .chat-notice', { hasText: /missed|not shown/ })
      .count(), 0);

    await say(bob, 'after the restart');
    await waitMessages(ann, 2);
    assert.deepEqual((await messages(ann)).map((m) => m.text),
      ['before the restart', 'after the restart']);
  }));

// Ann is kept off the network until Bob is back, so the message is sent after both
// reconnected (tests/browser/history.test.mjs covers messages sent while the other is away).
test('a message typed while the chat is down is kept, marked, and sent on reconnect', () =>
  withLogs(async () => {
    await stack.stopChat();
    await Promise.all([waitState(ann, 'reconnecting'), waitState(bob, 'reconnecting')]);
    await ann.context.setOffline(true);
    await waitState(ann, 'offline');
    const text = 'typed while the server was down';
    await say(ann, text);
    const pending = ann.page.locator('#chat .msg-pending', { hasText: text });
    await pending.waitFor();
    assert.match(await pending.locator('.msg-state').textContent(), /Not sent yet/);
    await screenshot(ann.page, 'chat-offline-pending.png');
    assert.equal(await ann.page.locator('#chat-input').inputValue(), '', 'the box is free again');

    await stack.startChat();
    await waitState(bob, 'online');
    await ann.context.setOffline(false);
    await waitState(ann, 'online');
    await bob.page.locator('#chat .msg-text', { hasText: text }).waitFor();
    await pending.waitFor({ state: 'detached' });
    // Exactly once on both screens, confirmed on Ann's.
    for (const u of [ann, bob]) {
      const hits = (await messages(u)).filter((m) => m.text === text);
      assert.equal(hits.length, 1, 'not duplicated');
      assert.equal(hits[0].pending, false);
    }
    // Bob was there before the restart: his return is not announced as a new arrival.
    const joins = ann.page.locator('#chat .chat-notice', { hasText: 'Bob joined' });
    assert.equal(await joins.count(), 1);
  }));

test('the browser going offline and online again is shown and recovered from', () =>
  withLogs(async () => {
    await waitState(bob, 'online');
    await bob.context.setOffline(true);
    await waitState(bob, 'offline');
    assert.match(await bob.page.locator('#chat .chat-status').textContent(), /Offline/);
    await bob.context.setOffline(false);
    await waitState(bob, 'online');
    await say(bob, 'back on the network');
    await ann.page.locator('#chat .msg-text', { hasText: 'back on the network' }).waitFor();
  }));
