// Two people chat in a real browser (Debian's Chromium) through the real stack: PostgreSQL,
// the website and chat daemons, and Nginx on one port. They register with the forms, one
// creates a room, both open it, see each other arrive, see each other typing, and talk.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/stack.mjs';
import {
  launch, newUser, register, createRoom, openRoom, say, messages, waitMessages, memberNames,
  screenshot, chromiumAvailable, CHROMIUM, PHONE,
  withReport,
} from './browser.mjs';

let stack;
let b;
let ann;
let bob;
const room = 'weekend-plans'; // every run has its own fresh database

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: run scripts/install-deps browser`);
  stack = await startStack();
  b = await launch();
  ann = await newUser(b, stack.url, { email: 'ann@example.com', name: 'Ann Archer',
    password: 'correct horse battery staple' });
  bob = await newUser(b, stack.url, { email: 'bob@example.com', name: 'Bob Baker',
    password: 'another long passphrase' });
});

after(async () => {
  if (b) await b.close();
  if (stack) await stack.stop();
});

const withLogs = (fn) => withReport(stack, [ann, bob], fn);

test('both register, one creates a room, both open it and see each other arrive', () =>
  withLogs(async () => {
    await register(ann);
    await register(bob);
    await createRoom(ann, room, 'Weekend plans');
    await openRoom(ann, room);
    assert.equal(await ann.page.locator('#chat .chat-title').textContent(), 'Weekend plans');
    assert.deepEqual(await memberNames(ann), ['Ann Archer']);

    await openRoom(bob, room);
    // Ann sees Bob arrive: in the member list and as a quiet notice in the log.
    await ann.page.waitForFunction((n) => [...document.querySelectorAll('#chat .chat-member-name')]
      .some((e) => e.textContent === n), bob.name);
    assert.deepEqual(await memberNames(ann), ['Ann Archer', 'Bob Baker']);
    await ann.page.locator('#chat .chat-notice', { hasText: 'Bob Baker joined' }).waitFor();
    // Bob's own list puts himself first.
    assert.deepEqual(await memberNames(bob), ['Bob Baker', 'Ann Archer']);
    assert.equal(await bob.page.locator('#chat .chat-member.is-me .chat-member-name').textContent(),
      'Bob Baker');
  }));

test('typing shows "X is typing…" to the other person, and it fades away', () =>
  withLogs(async () => {
    const typing = ann.page.locator('#chat .chat-typing');
    assert.equal(await typing.evaluate((e) => e.classList.contains('is-visible')), false);
    await bob.page.locator('#chat-input').pressSequentially('Are we still');
    await ann.page.waitForSelector('#chat .chat-typing.is-visible');
    assert.equal(await typing.textContent(), 'Bob Baker is typing…');
    // Bob stops typing: the indicator goes away by itself a few seconds later.
    await ann.page.waitForSelector('#chat .chat-typing:not(.is-visible)');
    // Bob never sees his own typing.
    assert.equal(await bob.page.locator('#chat .chat-typing.is-visible').count(), 0);
    await bob.page.locator('#chat-input').fill('');
  }));

test('messages appear in the same order on both screens, own and others styled apart', () =>
  withLogs(async () => {
    const lines = [
      [ann, 'Morning! Are we still on for the hike on Saturday?'],
      [bob, 'Yes! Meet at the station at 8?'],
      [ann, '8 works. I will bring sandwiches.'],
      [bob, 'Great, I have the map and the first-aid kit.'],
    ];
    for (const [who, text] of lines) await say(who, text);
    // Then both talk at once: the server decides the order, and both screens must agree.
    await Promise.all([say(ann, 'Should we invite Carol too?'), say(bob, 'Weather looks sunny.')]);
    await Promise.all([waitMessages(ann, 6), waitMessages(bob, 6)]);

    const onAnn = await messages(ann);
    const onBob = await messages(bob);
    const view = (list) => list.map((m) => `${m.author}: ${m.text}`);
    assert.deepEqual(view(onAnn), view(onBob), 'both screens: same messages, same order');
    assert.deepEqual(view(onAnn).slice(0, 4), lines.map(([w, t]) => `${w.name}: ${t}`));
    assert.equal(onAnn.length, 6, 'no duplicates of own messages');
    for (const m of onAnn) {
      assert.equal(m.pending, false);
      assert.equal(m.own, m.author === ann.name, `on Ann's screen: ${m.text}`);
      assert.equal(m.other, m.author !== ann.name);
    }
    for (const m of onBob) {
      assert.equal(m.own, m.author === bob.name, `on Bob's screen: ${m.text}`);
    }

    // Own bubbles sit on the right, the others' on the left, in different colours.
    const geo = await ann.page.evaluate(() => {
      const log = document.querySelector('#chat .chat-log').getBoundingClientRect();
      const pick = (sel) => {
        const e = document.querySelector(sel);
        const r = e.getBoundingClientRect();
        return { left: r.left - log.left, right: log.right - r.right,
          bg: getComputedStyle(e).backgroundColor };
      };
      return { own: pick('.msg-own .msg-text'), other: pick('.msg-other .msg-text'),
        width: log.width };
    });
    assert.ok(geo.own.right < geo.own.left, `own bubble on the right: ${JSON.stringify(geo)}`);
    assert.ok(geo.other.left < geo.other.right, `other bubble on the left: ${JSON.stringify(geo)}`);
    assert.notEqual(geo.own.bg, geo.other.bg, 'own and other bubbles differ in colour');

    // Each message says who wrote it and when.
    const firstOther = ann.page.locator('#chat .msg-other').first();
    assert.equal(await firstOther.locator('.msg-author').textContent(), 'Bob Baker');
    assert.match(await firstOther.locator('time').getAttribute('datetime'), /^\d{4}-\d\d-\d\dT/);
  }));

test('Shift+Enter makes a new line, Enter sends the whole text', () =>
  withLogs(async () => {
    const input = ann.page.locator('#chat-input');
    await input.click();
    await input.pressSequentially('Packing list:');
    await input.press('Shift+Enter');
    await input.pressSequentially('water, boots');
    assert.equal(await input.inputValue(), 'Packing list:\nwater, boots');
    await input.press('Enter');
    await waitMessages(bob, 7);
    const last = (await messages(bob)).at(-1);
    assert.equal(last.text, 'Packing list:\nwater, boots');
    assert.equal(await input.inputValue(), '', 'the box is empty after sending');
  }));

test('the desktop chat page looks right (screenshot)', () =>
  withLogs(async () => {
    await say(bob, 'See you Saturday!');
    await waitMessages(ann, 8);
    await bob.page.locator('#chat-input').pressSequentially('Bring a');
    await ann.page.waitForSelector('#chat .chat-typing.is-visible');
    await ann.page.locator('#chat-input').fill('');
    await ann.page.locator('#chat-input').blur();
    const path = await screenshot(ann.page, 'chat-desktop.png');
    assert.ok(path);
    await ann.page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(ann.page, 'chat-desktop-dark.png');
    await ann.page.emulateMedia({ colorScheme: 'light' });
    await bob.page.locator('#chat-input').fill('');
  }));

test('a message with HTML is shown as text and runs nothing', () =>
  withLogs(async () => {
    const evil = '<img src=x onerror=alert(1)>';
    await say(bob, evil);
    await Promise.all([waitMessages(ann, 9), waitMessages(bob, 9)]);
    for (const u of [ann, bob]) {
      const last = (await messages(u)).at(-1);
      assert.equal(last.text, evil);
      assert.equal(await u.page.locator('#chat img').count(), 0, 'no <img> element was created');
      assert.deepEqual(u.dialogs, [], 'no dialog opened');
      assert.deepEqual(u.pageErrors, [], 'no script error on the page');
    }
  }));

test('everything comes from this site, and nothing breaks the Content-Security-Policy', () =>
  withLogs(async () => {
    const origin = new URL(stack.url).origin;
    const wsOrigin = origin.replace(/^http/, 'ws');
    for (const u of [ann, bob]) {
      assert.ok(u.requests.length > 0);
      const foreign = u.requests.filter((r) => !r.startsWith(`${origin}/`) &&
        !r.startsWith(`${wsOrigin}/`) && !r.startsWith('data:'));
      assert.deepEqual(foreign, [], 'no request leaves the site');
      const csp = u.console.filter((l) => /Content Security Policy|Refused to/i.test(l));
      assert.deepEqual(csp, [], 'no CSP violation');
    }
    // The policy is really in force on the chat page (so the check above means something).
    const res = await ann.page.request.get(`/rooms/${room}`);
    assert.match(res.headers()['content-security-policy'] || '', /script-src 'self'/);
  }));

test('a length counter appears near the limit, counts characters, and blocks too long text', () =>
  withLogs(async () => {
    const input = ann.page.locator('#chat-input');
    const counter = ann.page.locator('#chat-counter');
    const send = ann.page.locator('#chat .chat-send');
    await input.fill('short');
    assert.equal(await counter.isVisible(), false);
    // 3999 emoji are 3999 characters (code points), not 7998 UTF-16 units.
    await input.fill('😀'.repeat(3999));
    assert.equal(await counter.textContent(), '3999 / 4000');
    assert.equal(await counter.isVisible(), true);
    assert.equal(await send.isDisabled(), false);
    await input.fill('a'.repeat(4010));
    assert.match(await counter.textContent(), /10 characters too many/);
    assert.equal(await send.isDisabled(), true);
    await input.press('Enter');
    assert.equal((await input.inputValue()).length, 4010, 'the text stays in the box');
    await input.fill('');
    assert.equal(await counter.isVisible(), false);
  }));

test('a phone-sized screen (360x740) shows a usable chat', () =>
  withLogs(async () => {
    const cat = await newUser(b, stack.url, { email: 'cat@example.com',
      name: 'Cat Cooper', password: 'a phone user passphrase', viewport: PHONE });
    try {
      await register(cat);
      await openRoom(cat, room);
      const page = cat.page;
      // Nothing sticks out sideways, and the box and button are on screen.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(overflow <= PHONE.width, `page is ${overflow}px wide`);
      for (const sel of ['#chat-input', '#chat .chat-send', '#chat .chat-status']) {
        const r = await page.locator(sel).boundingBox();
        assert.ok(r && r.y >= 0 && r.y + r.height <= PHONE.height && r.x >= 0 &&
          r.x + r.width <= PHONE.width, `${sel} is on screen: ${JSON.stringify(r)}`);
      }
      // The member list is folded away behind a button, which opens it.
      const toggle = page.locator('#chat .chat-members-toggle');
      assert.equal(await page.locator('#chat-members').isVisible(), false);
      await toggle.click();
      assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
      assert.equal(await page.locator('#chat-members').isVisible(), true);
      assert.ok((await memberNames(cat)).includes('Ann Archer'));
      await screenshot(page, 'chat-phone-members.png');
      await toggle.click();
      assert.equal(await page.locator('#chat-members').isVisible(), false);

      await say(ann, 'Welcome, Cat! We are planning a hike on Saturday.');
      await say(bob, 'Bring good shoes, the trail is rocky.');
      await waitMessages(cat, 2);
      await page.locator('#chat-input').fill('Hi from my phone!');
      await page.locator('#chat .chat-send').tap();
      await ann.page.locator('#chat .msg-other .msg-text', { hasText: 'Hi from my phone!' })
        .waitFor();
      const mine = page.locator('#chat .msg-own', { hasText: 'Hi from my phone!' });
      await mine.waitFor();
      assert.equal(await mine.evaluate((e) => e.classList.contains('msg-pending')), false);
      // (after Bob's typing notice has faded out, so the picture shows a settled page)
      await page.waitForFunction(() =>
        getComputedStyle(document.querySelector('#chat .chat-typing')).opacity === '0');
      await screenshot(page, 'chat-phone.png');
    } finally {
      await cat.context.close();
    }
  }));

test('new messages do not yank a reader who scrolled up; a button offers to jump down', () =>
  withLogs(async () => {
    // Enough messages that the log scrolls.
    for (let i = 1; i <= 12; i++) await say(bob, `Filler message number ${i} to fill the screen.`);
    await ann.page.locator('#chat .msg-text', { hasText: 'Filler message number 12 ' }).waitFor();
    const log = ann.page.locator('#chat .chat-log');
    const atBottom = () => log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight < 50);
    assert.equal(await atBottom(), true, 'at the bottom while following the conversation');
    await log.evaluate((e) => { e.scrollTop = 0; });
    await say(bob, 'Did you see this?');
    await ann.page.locator('#chat .msg-text', { hasText: 'Did you see this?' }).waitFor();
    assert.equal(await log.evaluate((e) => e.scrollTop), 0, 'the reader stays where they were');
    const jump = ann.page.locator('#chat .chat-newbelow');
    await jump.waitFor({ state: 'visible' });
    await jump.click();
    assert.equal(await atBottom(), true);
    assert.equal(await jump.isVisible(), false);
  }));

test('screen readers hear new messages, and the keyboard reaches everything', () =>
  withLogs(async () => {
    const log = ann.page.locator('#chat .chat-log');
    assert.equal(await log.getAttribute('aria-live'), 'polite');
    assert.equal(await log.getAttribute('role'), 'log');
    assert.equal(await ann.page.locator('#chat .chat-error').getAttribute('role'), 'alert');
    assert.equal(await ann.page.locator('#chat .chat-status').getAttribute('role'), 'status');
    // From the message log, Tab moves to the text box, which sends with Enter.
    await log.focus();
    const seen = [];
    for (let i = 0; i < 4 && seen.at(-1) !== 'chat-input'; i++) {
      await ann.page.keyboard.press('Tab');
      seen.push(await ann.page.evaluate(() =>
        document.activeElement.id || document.activeElement.className));
    }
    assert.equal(seen.at(-1), 'chat-input', `focus went ${seen.join(' -> ')}`);
    await ann.page.keyboard.type('Typed without a mouse');
    await ann.page.keyboard.press('Enter');
    await bob.page.locator('#chat .msg-text', { hasText: 'Typed without a mouse' }).waitFor();
  }));
