// Message history in the page (issue 10): a reload shows the conversation; scrolling to the
// top loads older messages and keeps the reader's place; a chat daemon restart while both
// people type loses nothing and shows nothing twice (both pages end with the same gap-free
// seq list); no email address of anyone is in the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startStack, WebClient } from '../lib/stack.mjs';
import {
  launch, newUser, register, createRoom, openRoom, say, messages, waitState, uniq,
  chromiumAvailable, CHROMIUM, withReport, WAIT_MS,
} from './browser.mjs';

let stack;
let b;
let ann;
let bob;
const room = `story-${uniq()}`;
const SEEDED = 130;

before(async () => {
  assert.ok(chromiumAvailable(), `${CHROMIUM} is missing: run scripts/install-deps browser`);
  // (the seeding client sends faster than a person may)
  stack = await startStack({ chatEnv: { CHAT_RATE_PER_SEC: '500', CHAT_RATE_BURST: '500' } });
  b = await launch();
  ann = await newUser(b, stack.url, { email: `ann-${uniq()}@example.com`, name: 'Ann',
    password: 'correct horse battery staple' });
  bob = await newUser(b, stack.url, { email: `bob-${uniq()}@example.com`, name: 'Bob',
    password: 'another long passphrase' });
  await register(ann);
  await register(bob);
  await createRoom(ann, room, 'Story');
});

after(async () => {
  if (b) await b.close();
  if (stack) await stack.stop();
});

const withLogs = (fn) => withReport(stack, [ann, bob], fn);

// Seq list of the confirmed messages on a page.
async function seqs(u) {
  return (await messages(u)).filter((m) => !m.pending).map((m) => m.seq);
}
function gapFree(list) {
  return list.every((s, i) => i === 0 || s === list[i - 1] + 1);
}

// A third user sends `n` messages over a plain WebSocket (token in the Authorization header),
// each after the previous one's echo.
async function seed(n) {
  const c = new WebClient(stack.url);
  await c.register(`seed-${uniq()}@example.com`, 'Seeder', 'seeding passphrase');
  await c.get('/rooms'); // (the session's CSRF token)
  const t = await c.chatToken(room);
  assert.equal(t.status, 200, JSON.stringify(t.body));
  const url = `${stack.url.replace(/^http/, 'ws')}${t.body.ws_url || '/ws'}`;
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${t.body.token}`,
    origin: stack.url } });
  await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
  let waiting = null;
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString());
    if (f.type === 'message' && waiting && f.client_id === waiting.cid) waiting.res(f);
    if (f.type === 'error' && waiting) waiting.rej(new Error(JSON.stringify(f)));
  });
  for (let i = 1; i <= n; i++) {
    const cid = `seed-${i}`;
    const p = new Promise((res, rej) => { waiting = { cid, res, rej }; });
    ws.send(JSON.stringify({ type: 'message', text: `old message ${i}`, client_id: cid }));
    await p;
  }
  ws.close();
}

test('a reload shows the conversation, in order, once', () => withLogs(async () => {
  await openRoom(ann, room);
  await openRoom(bob, room);
  for (let i = 1; i <= 3; i++) {
    await say(ann, `ann says ${i}`);
    await say(bob, `bob says ${i}`);
  }
  await bob.page.waitForFunction(() =>
    document.querySelectorAll('#chat .msg:not(.msg-pending)').length >= 6);
  const before = await messages(bob);
  await bob.page.reload();
  await waitState(bob, 'online');
  await bob.page.waitForFunction((n) =>
    document.querySelectorAll('#chat .msg:not(.msg-pending)').length >= n, before.length);
  const again = await messages(bob);
  assert.deepEqual(again.map((m) => [m.seq, m.author, m.text]),
    before.map((m) => [m.seq, m.author, m.text]));
  assert.ok(gapFree(again.map((m) => m.seq)) && again[0].seq >= 1);
  assert.equal(await bob.page.locator('#chat .chat-top').textContent(),
    'This is the beginning of the conversation.');
}));

test('scrolling to the top loads older messages and keeps the reader\'s place', () =>
  withLogs(async () => {
    await seed(SEEDED);
    await bob.page.reload();
    await waitState(bob, 'online');
    await bob.page.locator('#chat .msg-text', { hasText: `old message ${SEEDED}` }).waitFor();
    let list = await seqs(bob);
    // the latest 50 (and one older page if the place to show, the "new messages" line, was at
    // the top), not everything
    assert.ok(list.length <= 100 && list[0] > 1, `the latest pages only: ${list.length}`);
    assert.ok(gapFree(list));
    const total = list.at(-1);
    const log = bob.page.locator('#chat .chat-log');
    // scroll up: older ones come in above, and the message at the top stays where it was
    for (let round = 0; round < 10 && list[0] !== 1; round++) {
      const anchor = list[0];
      // (the bottom of the oldest message shown: its top moves when it joins the group of an
      // older message of the same author, which hides its name line)
      const y0 = await log.evaluate((e, s) => {
        e.scrollTop = 0;
        e.dispatchEvent(new WheelEvent('wheel', { deltaY: -120 })); // (if it was at 0 already)
        return e.querySelector(`.msg[data-seq="${s}"] .msg-text`).getBoundingClientRect().bottom;
      }, anchor);
      await bob.page.waitForFunction((s) => {
        const first = document.querySelector('#chat .msg[data-seq]');
        return first && Number(first.dataset.seq) < s;
      }, anchor, { timeout: WAIT_MS });
      await bob.page.waitForFunction(() =>
        !document.querySelector('#chat .chat-top.is-loading'));
      const y1 = await bob.page.locator(`#chat .msg[data-seq="${anchor}"] .msg-text`)
        .evaluate((e) => e.getBoundingClientRect().bottom);
      assert.ok(Math.abs(y1 - y0) < 3, `the reader's place moved from ${y0} to ${y1}`);
      list = await seqs(bob);
      assert.ok(gapFree(list), 'no gap, no duplicate');
    }
    assert.equal(list[0], 1, 'paged back to the first message');
    assert.equal(list.at(-1), total);
    assert.equal(list.length, total);
    await bob.page.locator('#chat .chat-top.is-start').waitFor();
  }));

test('a chat daemon restart while both type loses nothing and shows nothing twice', () =>
  withLogs(async () => {
    await waitState(ann, 'online');
    await waitState(bob, 'online');
    const sent = [];
    const typeMany = async (u, tag) => {
      for (let i = 1; i <= 8; i++) {
        const text = `${tag} during restart ${i}`;
        sent.push(text);
        await u.page.locator('#chat-input').fill(text);
        await u.page.locator('#chat-input').press('Enter');
        await new Promise((r) => setTimeout(r, 150));
      }
    };
    const typing = Promise.all([typeMany(ann, 'ann'), typeMany(bob, 'bob')]);
    await new Promise((r) => setTimeout(r, 400));
    await stack.restartChat();
    await typing;
    await Promise.all([waitState(ann, 'online'), waitState(bob, 'online')]);
    for (const u of [ann, bob]) {
      await u.page.waitForFunction(() => !document.querySelector('#chat .msg-pending'),
        null, { timeout: 60000 });
      await u.page.waitForFunction((want) => {
        const have = new Set([...document.querySelectorAll('#chat .msg-text')].map((e) => e.textContent));
        return want.every((t) => have.has(t));
      }, sent, { timeout: 60000 });
    }
    // (Ann has every message since she came; Bob what he paged back to: compare from the
    // oldest seq both show)
    const all = { ann: await messages(ann), bob: await messages(bob) };
    const from = Math.max(all.ann[0].seq, all.bob[0].seq);
    const onAnn = all.ann.filter((m) => m.seq >= from);
    const onBob = all.bob.filter((m) => m.seq >= from);
    const key = (list) => list.map((m) => `${m.seq} ${m.text}`);
    assert.deepEqual(key(onAnn), key(onBob), 'both pages show the same messages with the same seqs');
    assert.ok(gapFree(onAnn.map((m) => m.seq)), 'seq gap-free');
    for (const t of sent) {
      assert.equal(onAnn.filter((m) => m.text === t).length, 1, `once: ${t}`);
    }
    // nobody's email anywhere in either page
    for (const u of [ann, bob]) {
      const html = await u.page.content();
      for (const o of [ann, bob]) assert.equal(html.includes(o.email), false, `${o.email}`);
    }
  }));
