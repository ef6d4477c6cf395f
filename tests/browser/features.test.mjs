// Issue 13 in a real browser (Chromium at 1280x800 and 390x844): formatting without HTML
// injection, @mentions with completion, unread count and "new messages" divider, desktop
// notifications (permission granted in the browser context), right-to-left and hostile text
// measured by element boxes, dark mode contrast, "Retry now", and the member list agreeing
// with the connection badge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/stack.mjs';
import {
  launch, newUser, register, createRoom, openRoom, say, messages, waitMessages, waitState,
  memberNames, uniq, screenshot, chromiumAvailable, CHROMIUM, DESKTOP, withReport,
} from './browser.mjs';

const PHONE = { width: 390, height: 844 };
const NARROW = { width: 360, height: 740 };
let stack;
let b;
let ann;
let bob;
const room = `feat-${uniq()}`;

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: run scripts/install-deps browser`);
  stack = await startStack();
  b = await launch();
  ann = await newUser(b, stack.url, { email: `ann-${uniq()}@example.com`, name: 'Ann Archer',
    password: 'correct horse battery staple' });
  bob = await newUser(b, stack.url, { email: `bob-${uniq()}@example.com`, name: 'Bob Baker',
    password: 'another long passphrase', viewport: PHONE });
  // Ann's browser allows notifications (as after a "yes" to the prompt); the page's
  // Notification is wrapped so the test sees each one it shows.
  await ann.context.grantPermissions(['notifications'], { origin: stack.url });
  await ann.context.addInitScript(() => {
    window.__shown = [];
    window.__asked = 0;
    const Real = window.Notification;
    if (!Real) return;
    class Spy extends Real {
      constructor(title, opts) {
        super(title, opts);
        window.__shown.push({ title, body: opts && opts.body });
      }
      static requestPermission(...a) { window.__asked++; return Real.requestPermission(...a); }
    }
    window.Notification = Spy;
  });
  await register(ann);
  await register(bob);
  await createRoom(ann, room, 'Features');
  await openRoom(ann, room);
  await openRoom(bob, room);
  await ann.page.waitForFunction(() => document.querySelectorAll('#chat .chat-member').length === 2);
});

after(async () => {
  if (b) await b.close();
  if (stack) await stack.stop();
});

const withLogs = (fn) => withReport(stack, [ann, bob], fn);

// Makes the page believe its tab is hidden (or visible again), as switching tabs does.
function setHidden(u, hiddenNow) {
  return u.page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { value: h ? 'hidden' : 'visible',
      configurable: true });
    Object.defineProperty(document, 'hidden', { value: h, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hiddenNow);
}

async function sendText(u, text) {
  await u.page.locator('#chat-input').fill(text);
  await u.page.locator('#chat-input').press('Enter');
}

test('formatting: strong, emphasis, code, code blocks, links; HTML and bad links stay text', () =>
  withLogs(async () => {
    const text = 'Plan: **bold** and *soft*, run `make test`\nsecond line ' +
      'https://example.com/a?b=1. javascript:alert(1) <b>not bold</b>\n```\nconst x = 1 < 2;\n```';
    await sendText(bob, text);
    const last = ann.page.locator('#chat .msg').last();
    await last.locator('.msg-text', { hasText: 'Plan:' }).waitFor();
    const t = last.locator('.msg-text');
    assert.equal(await t.locator('strong').textContent(), 'bold');
    assert.equal(await t.locator('em').textContent(), 'soft');
    assert.equal(await t.locator('code.fmt-code').textContent(), 'make test');
    assert.equal(await t.locator('pre code').textContent(), 'const x = 1 < 2;');
    const links = await t.locator('a').evaluateAll((as) => as.map((a) => ({
      href: a.getAttribute('href'), rel: a.rel, text: a.textContent })));
    assert.deepEqual(links, [{ href: 'https://example.com/a?b=1', rel: 'noopener noreferrer',
      text: 'https://example.com/a?b=1' }]);
    assert.equal(await t.locator('b').count(), 0, 'HTML is text');
    assert.match(await t.textContent(), /<b>not bold<\/b>/);
    assert.match(await t.textContent(), /make test\nsecond line/, 'line breaks kept');
    const mono = await t.locator('pre').evaluate((e) => getComputedStyle(e).fontFamily);
    assert.match(mono, /mono/i);
    assert.deepEqual(ann.pageErrors, []);
  }));

test('a very long message folds behind "Show more" and unfolds', () => withLogs(async () => {
  const long = Array.from({ length: 40 }, (_, i) => `line ${i + 1} of a long paste`).join('\n');
  await sendText(bob, long);
  const msg = ann.page.locator('#chat .msg', { hasText: 'line 40 of a long paste' });
  await msg.waitFor();
  const more = msg.locator('.msg-more');
  assert.equal(await more.textContent(), 'Show more');
  assert.equal(await more.getAttribute('aria-expanded'), 'false');
  const box = () => msg.locator('.msg-text').evaluate((e) => ({ h: e.clientHeight,
    full: e.scrollHeight }));
  const folded = await box();
  assert.ok(folded.h < folded.full / 2, `folded: ${JSON.stringify(folded)}`);
  await more.click();
  assert.equal(await more.getAttribute('aria-expanded'), 'true');
  assert.equal(await more.textContent(), 'Show less');
  const open = await box();
  assert.ok(open.h >= open.full - 1, `unfolded: ${JSON.stringify(open)}`);
}));

test('@mentions: completion while typing, highlighted for the person mentioned', () =>
  withLogs(async () => {
    const input = ann.page.locator('#chat-input');
    await input.click();
    await input.pressSequentially('hey @bo');
    const list = ann.page.locator('#chat-complete');
    await list.waitFor({ state: 'visible' });
    assert.deepEqual(await list.locator('[role="option"]').allTextContents(), ['@Bob Baker']);
    assert.equal(await input.getAttribute('aria-expanded'), 'true');
    await input.press('Enter'); // picks the name, does not send
    assert.equal(await input.inputValue(), 'hey @Bob Baker ');
    assert.equal(await list.isVisible(), false);
    await input.pressSequentially('lunch?');
    await input.press('Enter');
    const onBob = bob.page.locator('#chat .msg', { hasText: 'lunch?' });
    await onBob.waitFor();
    assert.equal(await onBob.evaluate((e) => e.classList.contains('msg-mention')), true);
    assert.equal(await onBob.locator('.fmt-mention.is-me').textContent(), '@Bob Baker');
    // On Ann's own screen the name is marked as a mention, not as a mention of her.
    const onAnn = ann.page.locator('#chat .msg', { hasText: 'lunch?' });
    await onAnn.locator('.fmt-mention').waitFor();
    assert.equal(await onAnn.locator('.fmt-mention.is-me').count(), 0);
    // A name that is nobody's is plain text.
    await sendText(bob, 'ping @Nobody Here');
    const plain = ann.page.locator('#chat .msg', { hasText: 'ping @Nobody' });
    await plain.waitFor();
    assert.equal(await plain.locator('.fmt-mention').count(), 0);
  }));

test('hidden tab: unread count in the title, divider at the first unread, notifications', () =>
  withLogs(async () => {
    const { page } = ann;
    const title = await page.title();
    assert.doesNotMatch(title, /^\(/);
    assert.equal(await page.evaluate(() => window.__asked), 0, 'permission never asked unprompted');
    assert.equal(await page.locator('#chat .chat-notify').textContent(), 'Notify: mentions');
    await setHidden(ann, true);
    await sendText(bob, 'first while away');
    await sendText(bob, 'second while away, @Ann Archer');
    await page.waitForFunction(() => /^\(2!?\) /.test(document.title));
    assert.equal(await page.title(), `(2!) ${title}`);
    // the divider sits right before the first message that arrived while away
    const next = await page.locator('#chat .chat-divider').evaluate((d) =>
      d.nextElementSibling.querySelector('.msg-text').textContent);
    assert.equal(next, 'first while away');
    // mentions-only by default: one notification, for the mention
    await page.waitForFunction(() => window.__shown.length >= 1);
    let shown = await page.evaluate(() => window.__shown);
    assert.equal(shown.length, 1, JSON.stringify(shown));
    assert.match(shown[0].title, /Bob Baker mentioned you in Features/);
    assert.match(shown[0].body, /second while away/);
    await screenshot(page, 'chat-divider.png');
    // back to the tab: the count goes
    await setHidden(ann, false);
    assert.equal(await page.title(), title);
    // opt in to every message
    await page.locator('#chat .chat-notify').click();
    assert.equal(await page.locator('#chat .chat-notify').textContent(), 'Notify: every message');
    await setHidden(ann, true);
    await sendText(bob, 'plain news');
    await page.waitForFunction(() => window.__shown.length >= 2);
    shown = await page.evaluate(() => window.__shown);
    assert.match(shown[1].title, /^Bob Baker in Features$/);
    await page.locator('#chat .chat-notify').click();
    assert.equal(await page.locator('#chat .chat-notify').textContent(), 'Notify: off');
    await sendText(bob, 'quiet news');
    await page.locator('#chat .msg-text', { hasText: 'quiet news' }).waitFor();
    assert.equal(await page.evaluate(() => window.__shown.length), 2, 'off: no notification');
    await setHidden(ann, false);
    await page.locator('#chat .chat-notify').click();
    assert.equal(await page.evaluate(() => window.__asked), 0);
  }));

test('the "new messages" divider on open, from the seq last seen in this browser', () =>
  withLogs(async () => {
    // Ann leaves the room; Bob writes; Ann comes back: the line is before Bob's first new one.
    await ann.page.goto('/rooms');
    await sendText(bob, 'said while Ann was on another page');
    await sendText(bob, 'and one more');
    await openRoom(ann, room);
    await ann.page.locator('#chat .msg-text', { hasText: 'and one more' }).waitFor();
    const history = await ann.page.evaluate(() => document.querySelectorAll('#chat .msg').length);
    if (history <= 2) {
      // (a chat daemon without history: nothing to mark)
      assert.equal(await ann.page.locator('#chat .chat-divider').count(), 0);
      return;
    }
    const next = await ann.page.locator('#chat .chat-divider').evaluate((d) =>
      d.nextElementSibling.querySelector('.msg-text').textContent);
    assert.equal(next, 'said while Ann was on another page');
    // and after a reload with nothing new, no line
    await ann.page.reload();
    await waitState(ann, 'online');
    await ann.page.locator('#chat .msg-text', { hasText: 'and one more' }).waitFor();
    assert.equal(await ann.page.locator('#chat .chat-divider').count(), 0);
  }));

// Direction and overflow are checked by the boxes the browser lays out.
async function checkContained(u, width) {
  return u.page.evaluate(() => {
    const bad = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > doc.clientWidth) bad.push(`page ${doc.scrollWidth} > ${doc.clientWidth}`);
    const log = document.querySelector('#chat .chat-log');
    if (log.scrollWidth > log.clientWidth) bad.push(`log ${log.scrollWidth} > ${log.clientWidth}`);
    const L = log.getBoundingClientRect();
    for (const e of document.querySelectorAll('#chat .msg, #chat .msg-text, #chat .chat-notice, ' +
      '#chat .msg-author, #chat .chat-member-name')) {
      const r = e.getBoundingClientRect();
      if (!r.width) continue;
      const box = e.matches('.chat-member-name') ? document.querySelector('#chat .chat-members')
        .getBoundingClientRect() : e.matches('.msg-author') ? e.closest('.msg').getBoundingClientRect() : L;
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5) {
        bad.push(`${e.className} [${r.left},${r.right}] outside [${box.left},${box.right}]`);
      }
      if (e.matches('.msg-text') && e.scrollWidth > e.clientWidth + 1) {
        bad.push(`msg-text scrolls ${e.scrollWidth} > ${e.clientWidth}`);
      }
      if (e.matches('.msg-text') && getComputedStyle(e).overflow.indexOf('visible') >= 0) {
        bad.push('msg-text does not clip its ink');
      }
    }
    return bad;
  }, width);
}

test('right-to-left and hostile names and text stay in their place and inside their boxes', () =>
  withLogs(async () => {
    // A name ending in U+202E (right-to-left override), and a 64-character name on a 360 px phone.
    const dev = await newUser(b, stack.url, { email: `dev-${uniq()}@example.com`,
      name: 'Dev\u202e', password: 'a devious passphrase' });
    const longName = 'W'.repeat(64);
    const wide = await newUser(b, stack.url, { email: `wide-${uniq()}@example.com`,
      name: longName, password: 'a very wide passphrase', viewport: NARROW });
    try {
      let devName = 'Dev\u202e';
      try {
        await register(dev);
      } catch (e) {
        // the website may refuse such a name (a rule of its own): then a right-to-left name
        assert.match(e.message, /name/i);
        dev.name = devName = '\u05d3\u05d1 Dev';
        await register(dev);
      }
      await register(wide);
      await openRoom(wide, room);
      await openRoom(dev, room);
      const notice = ann.page.locator('#chat .chat-notice', { hasText: 'joined' }).last();
      await notice.waitFor();
      // "joined" reads left to right after the name: each letter right of the one before
      const order = await notice.evaluate((li) => {
        const name = li.querySelector('bdi');
        const tn = [...li.childNodes].find((n) => n.nodeType === 3 && /joined/.test(n.data));
        const xs = [];
        for (let i = tn.data.indexOf('j'); i < tn.data.length; i++) {
          const r = document.createRange();
          r.setStart(tn, i);
          r.setEnd(tn, i + 1);
          xs.push(r.getBoundingClientRect().left);
        }
        return { xs, nameRight: name.getBoundingClientRect().right, dir: name.dir };
      });
      assert.equal(order.dir, 'auto');
      assert.ok(order.xs.every((x, i) => i === 0 || x > order.xs[i - 1]),
        `"joined" is drawn in order: ${order.xs}`);
      assert.ok(order.nameRight <= order.xs[0] + 1, 'the name comes before "joined"');

      // hostile text: unbroken strings, stacks of combining marks, overrides, RTL
      const zalgo = 'Z' + '\u0336\u0301\u0315\u0334\u035c'.repeat(60) + 'algo';
      await sendText(dev, 'x'.repeat(500));
      await sendText(dev, zalgo);
      await sendText(dev, '\u202eevil override then normal\u202c and \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627');
      await sendText(wide, 'https://example.com/' + 'a'.repeat(400));
      for (const u of [ann, bob, wide]) {
        await u.page.locator('#chat .msg-text', { hasText: 'example.com/aaaa' }).waitFor();
      }
      // message text is direction-isolated
      const dirs = await ann.page.$$eval('#chat .msg-text', (ts) => ts.map((t) => t.dir));
      assert.ok(dirs.every((d) => d === 'auto'), JSON.stringify(dirs));
      // the next message after the override is not affected: its author line is in order
      for (const [u, w] of [[ann, DESKTOP.width], [bob, PHONE.width], [wide, NARROW.width]]) {
        await u.page.locator('#chat .chat-members-toggle').isVisible().then(async (v) => {
          if (v) await u.page.locator('#chat .chat-members-toggle').click();
        });
        const bad = await checkContained(u, w);
        assert.deepEqual(bad, [], `at ${w} px`);
      }
      await screenshot(wide.page, 'chat-hostile-360.png');
      await wide.page.locator('#chat .chat-members-toggle').click();
    } finally {
      await dev.context.close();
      await wide.context.close();
    }
  }));

// WCAG 2.1 contrast of each element's text against the background it is drawn on.
async function contrasts(page, selectors) {
  return page.evaluate((sels) => {
    const rgb = (s) => {
      const m = s.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const lum = ({ r, g, b }) => {
      const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const bgOf = (e) => {
      for (let n = e; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c && c.a > 0.5) return c;
      }
      return { r: 255, g: 255, b: 255 };
    };
    const out = {};
    for (const s of sels) {
      const e = document.querySelector(s);
      if (!e) { out[s] = null; continue; }
      const fg = rgb(getComputedStyle(e).color);
      const l1 = lum(fg);
      const l2 = lum(bgOf(e));
      out[s] = Math.round(((Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05)) * 100) / 100;
    }
    return out;
  }, selectors);
}

test('dark mode follows the system and keeps the contrast of the light one', () =>
  withLogs(async () => {
    const sels = ['body', '.site-header .brand', '#chat .chat-title', '#chat .msg-other .msg-text',
      '#chat .msg-own .msg-text', '#chat .msg-author', '#chat .msg-time', '#chat .chat-status',
      '#chat .chat-member-name', '#chat .chat-input', '#chat .chat-send', '#chat .chat-notice',
      '.site-nav a'];
    await sendText(ann, 'checking the colours');
    await sendText(bob, 'looks fine here');
    await ann.page.locator('#chat .msg-other .msg-text', { hasText: 'looks fine here' }).waitFor();
    await ann.page.locator('#chat .msg-own:not(.msg-pending)', { hasText: 'checking' }).waitFor();
    const light = await contrasts(ann.page, sels);
    await ann.page.emulateMedia({ colorScheme: 'dark' });
    try {
      const bg = await ann.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.notEqual(bg, 'rgb(246, 247, 249)', 'the dark palette is in use');
      const dark = await contrasts(ann.page, sels);
      for (const s of sels) {
        assert.ok(light[s] >= 4.5, `light ${s}: ${light[s]}`);
        assert.ok(dark[s] >= 4.5, `dark ${s}: ${dark[s]}`);
      }
      await screenshot(ann.page, 'chat-dark.png');
    } finally {
      await ann.page.emulateMedia({ colorScheme: 'light' });
    }
  }));

test('server down: the member list never claims people while the badge is not online; ' +
  '"Retry now" reconnects at once', () => withLogs(async () => {
  await stack.stopChat();
  await waitState(ann, 'reconnecting');
  const view = () => ann.page.evaluate(() => ({
    state: document.querySelector('#chat .chat-status').dataset.state,
    members: document.querySelectorAll('#chat .chat-member').length,
    none: document.querySelector('#chat .chat-member-none')?.textContent || '',
  }));
  let v = await view();
  assert.deepEqual(v, { state: 'reconnecting', members: 0, none: 'Not connected' });
  // once the next attempt is a while away, the page offers to try now, and does so
  let tokens = 0;
  ann.page.on('request', (r) => { if (r.url().endsWith(`/api/rooms/${room}/token`)) tokens++; });
  const retry = ann.page.locator('#chat .chat-retry');
  await retry.waitFor({ state: 'visible', timeout: 60000 });
  const before = tokens;
  await retry.click();
  for (let i = 0; i < 100 && tokens === before; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(tokens > before, 'the click started a new attempt (a fresh token)');
  await waitState(ann, 'reconnecting');
  await stack.startChat();
  // back: online by itself, or at once with "Retry now" if the next attempt is far away
  await ann.page.waitForFunction(() =>
    document.querySelector('#chat .chat-status').dataset.state === 'online' ||
    !document.querySelector('#chat .chat-retry').hidden, null, { timeout: 60000 });
  await retry.click({ timeout: 1000 }).catch(() => { /* it reconnected meanwhile */ });
  await waitState(ann, 'online');
  await ann.page.waitForFunction(() => document.querySelectorAll('#chat .chat-member').length >= 1);
  v = await view();
  assert.equal(v.state, 'online');
  assert.ok(v.members >= 1);
  await waitState(bob, 'online');
  assert.ok((await memberNames(ann)).includes('Ann Archer'));
}));

test('no email address of anyone appears anywhere in the page', () => withLogs(async () => {
  for (const u of [ann, bob]) {
    const html = await u.page.content();
    for (const other of [ann, bob]) {
      assert.equal(html.includes(other.email), false, `${other.email} in ${u.email}'s page`);
    }
  }
  const shown = await messages(bob);
  assert.ok(shown.length > 3);
  await waitMessages(bob, 1);
}));
