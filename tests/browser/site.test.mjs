// The website's own pages in Chromium (issue 13): a room link followed while logged out lands
// in that room after the login (and only same-site room paths are accepted as the target);
// destructive admin actions ask first and say what they did; forms put the focus on the first
// field with an error and mark it; a duplicate email offers "log in instead"; the admin table
// reads on a phone without words broken mid-word; the header names "Admin" once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, WebClient } from '../lib/stack.mjs';
import {
  launch, newUser, register, login, createRoom, waitState, uniq, screenshot,
  chromiumAvailable, CHROMIUM, withReport,
} from './browser.mjs';

const PHONE = { width: 390, height: 844 };
let stack;
let b;
let admin;
let ann;
const room = `door-${uniq()}`;

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: run scripts/install-deps browser`);
  // (many logins from one address: above nginx's per-address limit for login and register)
  stack = await startStack({ nginxEnv: { NGINX_AUTH_RATE: '6000r/m', NGINX_AUTH_BURST: '1000' } });
  b = await launch();
  admin = await newUser(b, stack.url, { ...stack.admin, name: 'Admin', viewport: PHONE });
  ann = await newUser(b, stack.url, { email: `ann-${uniq()}@example.com`, name: 'Ann Archer',
    password: 'correct horse battery staple' });
  await register(ann);
  await createRoom(ann, room, 'Front door');
});

after(async () => {
  if (b) await b.close();
  if (stack) await stack.stop();
});

const withLogs = (fn) => withReport(stack, [admin, ann], fn);

test('a room link followed while logged out lands in that room after the login', () =>
  withLogs(async () => {
    const carol = await newUser(b, stack.url, { email: `carol-${uniq()}@example.com`,
      name: 'Carol', password: 'carol passphrase here' });
    try {
      await register(carol);
      await carol.context.clearCookies();
      const { page } = carol;
      await page.goto(`/rooms/${room}`);
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.equal(new URL(page.url()).searchParams.get('next'), `/rooms/${room}`);
      await page.locator('[name="email"]').fill(carol.email);
      await page.locator('[name="password"]').fill('wrong password');
      await Promise.all([page.waitForEvent('load'), page.locator('[name="password"]').press('Enter')]);
      // a failed attempt keeps the target
      assert.equal(await page.locator('input[name="next"]').inputValue(), `/rooms/${room}`);
      await page.locator('[name="password"]').fill(carol.password);
      await Promise.all([page.waitForEvent('load'), page.locator('[name="password"]').press('Enter')]);
      assert.equal(new URL(page.url()).pathname, `/rooms/${room}`);
      await waitState(carol, 'online');
    } finally {
      await carol.context.close();
    }
  }));

test('only this site\'s room paths are accepted as the target of a login', async () => {
  const c = new WebClient(stack.url);
  const email = `dave-${uniq()}@example.com`;
  await c.register(email, 'Dave', 'dave passphrase here');
  const bad = ['//evil.example', 'https://evil.example/rooms/x', '/\\evil.example', '\\\\evil',
    '/rooms/../admin', '/rooms//evil.example', '/rooms/x?y=1', '/rooms/UPPER', '/roomsx',
    '/rooms/a b', '/rooms/%2e%2e', 'javascript:alert(1)', '/admin', `/rooms/${'a'.repeat(33)}`,
    '/rooms/ok\r\nSet-Cookie: x=1', ''];
  for (const next of bad) {
    const fresh = new WebClient(stack.url);
    await fresh.get('/login');
    const r = await fresh.postForm('/login', { email, password: 'dave passphrase here', next });
    assert.equal(r.status, 303, `next=${JSON.stringify(next)}`);
    assert.equal(r.location, '/rooms', `next=${JSON.stringify(next)} -> ${r.location}`);
    // and the login page does not carry it into its form
    const page = await fresh.get(`/login?next=${encodeURIComponent(next)}`);
    assert.equal(page.status, 303, 'logged in: the login page redirects');
    assert.equal(page.location, '/rooms');
  }
  for (const next of [`/rooms/${room}`, '/rooms']) {
    const fresh = new WebClient(stack.url);
    await fresh.get('/login');
    const r = await fresh.postForm('/login', { email, password: 'dave passphrase here', next });
    assert.equal(r.location, next);
  }
  const anon = new WebClient(stack.url);
  const form = await anon.get(`/login?next=${encodeURIComponent('//evil.example')}`);
  assert.match(form.text, /name="next" value=""/);
  const redirect = await anon.get(`/rooms/${room}`);
  assert.equal(redirect.location, `/login?next=/rooms/${room}`);
});

async function confirmAction(page, button, { cancel = false } = {}) {
  await button.click();
  const dialog = page.locator('dialog.confirm-dialog');
  await dialog.waitFor({ state: 'visible' });
  const text = await dialog.locator('.confirm-text').textContent();
  if (cancel) {
    await dialog.locator('.confirm-no').click();
    await dialog.waitFor({ state: 'hidden' });
    return text;
  }
  await Promise.all([page.waitForEvent('load'), dialog.locator('.confirm-yes').click()]);
  return text;
}

test('ban, unban, promote and delete ask first, naming whom, and say what was done', () =>
  withLogs(async () => {
    await login(admin);
    const { page } = admin;
    await page.goto('/admin');
    const row = () => page.locator('tr', { hasText: ann.email });
    // cancel: nothing happens
    let text = await confirmAction(page, row().locator('form[action$="/ban"] button'), { cancel: true });
    assert.match(text, /^Ban Ann Archer \(.*\)\?/);
    assert.equal(await row().locator('form[action$="/ban"]').count(), 1, 'not banned');
    text = await confirmAction(page, row().locator('form[action$="/ban"] button'));
    const flash = page.locator('.flash[role="status"]');
    assert.match(await flash.textContent(), /^Ann Archer \(.*\) was banned: their open chats were closed\.$/);
    assert.equal(await row().locator('form[action$="/unban"]').count(), 1);
    await confirmAction(page, row().locator('form[action$="/unban"] button'));
    assert.match(await flash.textContent(), /was unbanned\./);
    await confirmAction(page, row().locator('form[action$="/promote"] button'));
    assert.match(await flash.textContent(), /is now an admin\./);
    const roomRow = page.locator(`tr[data-room="${room}"]`);
    text = await confirmAction(page, roomRow.locator('button'), { cancel: true });
    assert.match(text, new RegExp(`Delete the room ${room} and its whole conversation`));
    await confirmAction(page, roomRow.locator('button'));
    assert.equal(await flash.textContent(), `The room ${room} was deleted: everyone in it was disconnected.`);
    assert.equal(await page.locator(`tr[data-room="${room}"]`).count(), 0);
    // the message does not come back on the next page
    await page.goto('/admin');
    assert.equal(await page.locator('.flash').count(), 0);
  }));

test('the admin table reads on a phone: no word broken, "Admin" once in the header', () =>
  withLogs(async () => {
    const { page } = admin;
    await page.goto('/admin');
    const broken = await page.evaluate(() => {
      const out = [];
      for (const td of document.querySelectorAll('.table-wrap td')) {
        const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          const re = /\S+/g;
          let m;
          while ((m = re.exec(n.data))) {
            const r = document.createRange();
            r.setStart(n, m.index);
            r.setEnd(n, m.index + m[0].length);
            const lines = new Set([...r.getClientRects()].map((x) => Math.round(x.top)));
            if (lines.size > 1) out.push(m[0]);
          }
        }
      }
      return out;
    });
    assert.deepEqual(broken, [], 'words split across lines');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= PHONE.width, `the page is ${wide}px wide`);
    const header = await page.locator('.site-header').innerText();
    assert.equal((header.match(/Admin/g) || []).length, 1, `header: ${header}`);
    await screenshot(page, 'admin-phone.png');
  }));

test('forms: focus on the first field with an error, marked; a duplicate email offers login', () =>
  withLogs(async () => {
    const u = await newUser(b, stack.url, { email: ann.email, name: '', password: 'short' });
    try {
      const { page } = u;
      await page.goto('/register');
      await page.locator('[name="email"]').fill('not-an-email');
      await page.locator('[name="password"]').fill('short');
      await Promise.all([page.waitForEvent('load'), page.locator('[name="password"]').press('Enter')]);
      const invalid = await page.$$eval('[aria-invalid="true"]', (es) => es.map((e) => e.name));
      assert.deepEqual(invalid, ['email', 'name', 'password']);
      assert.equal(await page.evaluate(() => document.activeElement.name), 'email');
      // typing fixes the mark
      await page.locator('[name="email"]').fill(ann.email);
      assert.equal(await page.locator('[name="email"]').getAttribute('aria-invalid'), null);
      await page.locator('[name="name"]').fill('Another Ann');
      await page.locator('[name="password"]').fill('a long enough password');
      await Promise.all([page.waitForEvent('load'), page.locator('[name="password"]').press('Enter')]);
      assert.match(await page.locator('#email-error').textContent(), /already exists/);
      const instead = page.locator('a.login-instead');
      assert.equal(await instead.textContent(), 'Log in instead');
      assert.equal(await page.evaluate(() => document.activeElement.name), 'email');
      await Promise.all([page.waitForEvent('load'), instead.click()]);
      assert.equal(new URL(page.url()).pathname, '/login');
      // a failed login: the password is marked and focused (the email is kept)
      await page.locator('[name="email"]').fill(ann.email);
      await page.locator('[name="password"]').fill('wrong');
      await Promise.all([page.waitForEvent('load'), page.locator('[name="password"]').press('Enter')]);
      assert.equal(await page.evaluate(() => document.activeElement.name), 'password');
      assert.equal(await page.locator('[name="password"]').getAttribute('aria-invalid'), 'true');
    } finally {
      await u.context.close();
    }
  }));
