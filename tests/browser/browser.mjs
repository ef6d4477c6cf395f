// Helpers for the browser tests: Debian's Chromium driven by playwright-core against the real
// stack (tests/lib/stack.mjs) through its single Nginx port. Users act through the pages as a
// person would: they fill in the register, login, room and admin forms and type in the chat.
import { createRequire } from 'node:module';
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD } from '../lib/proc.mjs';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Generous: under the ASan build every request of the daemons is several times slower.
export const WAIT_MS = Number(process.env.PARLEY_BROWSER_WAIT_MS || 30000);
export const SCREENSHOT_DIR = join(BUILD, 'screenshots');
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 360, height: 740 };

// Flags from docs of this machine (../shared/notes/RUNNING-SERVERS-HERE.md "Browsers").
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function chromiumAvailable() {
  return existsSync(CHROMIUM);
}

// Launches Chromium headless. playwright-core gives every launch() a fresh, empty profile
// directory of its own (it refuses a --user-data-dir argument) and deletes it on close, so no
// state leaks between runs. Each user then gets an isolated context (own cookies).
export async function launch() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS,
    timeout: WAIT_MS * 2 });
  return {
    browser,
    async close() { await browser.close().catch(() => {}); },
  };
}

// A user with their own browser context (own cookies, like a separate browser).
export async function newUser(b, baseUrl, { email, name, password, viewport = DESKTOP } = {}) {
  const context = await b.browser.newContext({ baseURL: baseUrl, viewport,
    hasTouch: viewport.width < 600, isMobile: viewport.width < 600 });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  const page = await context.newPage();
  const u = { context, page, email, name, password, dialogs: [], pageErrors: [], console: [],
    requests: [] };
  page.on('request', (r) => {
    u.requests.push(r.url().replace(/access_token=[^&]+/, 'access_token=REDACTED'));
  });
  page.on('dialog', (d) => { u.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => { u.pageErrors.push(e.message); });
  // Chromium logs a failed WebSocket's URL, token included: keep tokens out of test output.
  page.on('console', (m) => {
    const text = m.text().replace(/access_token=[^'"\s&]+/g, 'access_token=REDACTED');
    u.console.push(`${m.type()}: ${text}`);
  });
  return u;
}

// Fills the register form and submits it; the website answers 303 to /rooms.
export async function register(u) {
  const { page } = u;
  await page.goto('/register');
  const form = page.locator('form[action="/register"]');
  await form.locator('[name="email"]').fill(u.email);
  await form.locator('[name="name"]').fill(u.name);
  await form.locator('[name="password"]').fill(u.password);
  await submitAndExpect(page, form.locator('[name="password"]'), '/register', /\/rooms$/);
}

// Presses Enter in a form field (submitting the form as a person would) and waits for the
// next page. Landing anywhere but `want` (say, the form again with an error) fails with the
// error text shown, rather than with a bare timeout.
async function submitAndExpect(page, field, from, want) {
  await Promise.all([page.waitForEvent('load'), field.press('Enter')]);
  if (!want.test(new URL(page.url()).pathname)) {
    const errs = await page.locator('.error:not(:empty)').allTextContents();
    throw new Error(`submitting ${from} led to ${page.url()}: ${errs.join(' | ') || '(no error)'}`);
  }
}

export async function login(u) {
  const { page } = u;
  await page.goto('/login');
  const form = page.locator('form[action="/login"]');
  await form.locator('[name="email"]').fill(u.email);
  await form.locator('[name="password"]').fill(u.password);
  await submitAndExpect(page, form.locator('[name="password"]'), '/login', /\/rooms$/);
}

// Uses the create form on /rooms; lands on the new room's chat page.
export async function createRoom(u, name, title) {
  const { page } = u;
  await page.goto('/rooms');
  const form = page.locator('form[action="/rooms"]');
  await form.locator('[name="name"]').fill(name);
  await form.locator('[name="title"]').fill(title);
  await submitAndExpect(page, form.locator('[name="title"]'), '/rooms',
    new RegExp(`^/rooms/${name}$`));
}

// Opens the chat page and waits until the connection badge says online.
export async function openRoom(u, name) {
  await u.page.goto(`/rooms/${name}`);
  await waitState(u, 'online');
}

export function waitState(u, state, timeout = WAIT_MS) {
  return u.page.waitForSelector(`#chat .chat-status[data-state="${state}"]`, { timeout });
}

// Types a message the way a person does (key presses) and sends it with Enter.
export async function say(u, text) {
  const input = u.page.locator('#chat-input');
  await input.click();
  await input.pressSequentially(text);
  await input.press('Enter');
}

// Every message shown in the log, in order: {author (display name), authorId (public id), seq,
// text, own, other, pending}.
export function messages(u) {
  return u.page.$$eval('#chat .chat-log .msg', (lis) => lis.map((li) => ({
    author: (() => {
      const a = li.querySelector('.msg-author');
      const m = /^You \((.*)\)$/s.exec(a.getAttribute('aria-label') || '');
      return m ? m[1] : a.textContent;
    })(),
    authorId: li.dataset.author,
    seq: li.dataset.seq ? Number(li.dataset.seq) : null,
    text: li.querySelector('.msg-text').textContent,
    own: li.classList.contains('msg-own'),
    other: li.classList.contains('msg-other'),
    pending: li.classList.contains('msg-pending'),
  })));
}

// Waits until the log holds `n` confirmed (not pending) messages.
export function waitMessages(u, n, timeout = WAIT_MS) {
  return u.page.waitForFunction((count) =>
    document.querySelectorAll('#chat .chat-log .msg:not(.msg-pending)').length >= count,
  n, { timeout });
}

export function memberNames(u) {
  return u.page.$$eval('#chat .chat-members-list .chat-member-name', (els) =>
    els.map((e) => e.textContent));
}

export async function screenshot(page, file) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, file);
  await page.screenshot({ path });
  return path;
}

// A short unique suffix so names never collide between runs against one database.
export function uniq() {
  return Math.random().toString(36).slice(2, 8);
}

// What a failing test should print: each page's connection state, members and messages, the
// browser console, and the daemons' logs.
export async function describe(stack, users) {
  const parts = [];
  for (const u of users) {
    let view = '(page closed)';
    try {
      view = JSON.stringify(await u.page.evaluate(() => ({
        url: location.pathname,
        state: document.querySelector('#chat .chat-status')?.textContent,
        banner: document.querySelector('#chat .chat-banner')?.textContent,
        error: document.querySelector('#chat .chat-error')?.textContent,
        members: [...document.querySelectorAll('#chat .chat-member-name')]
          .map((e) => e.textContent),
        log: [...document.querySelectorAll('#chat .chat-log > li')].map((e) => e.textContent),
      })), null, 1);
    } catch { /* keep the placeholder */ }
    parts.push(`--- page of ${u.email}\n${view}`,
      `--- console of ${u.email}\n${u.console.join('\n')}`);
  }
  return `${parts.join('\n')}\n${stack ? stack.logs() : ''}`;
}

// Runs a test body; on failure the error carries describe()'s report.
export async function withReport(stack, users, fn) {
  try {
    await fn();
  } catch (e) {
    const report = await describe(stack, users.filter(Boolean)).catch((x) => String(x));
    const err = new Error(`${e.message}\n${report}`);
    err.stack = `${e.stack}\n${report}`;
    throw err;
  }
}
