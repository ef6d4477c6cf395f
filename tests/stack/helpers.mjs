// Shared by the stack and compose tests: the user-level happy path through one public port
// (register, log in, create a room, get chat tokens, two WebSocket clients chat) and a
// WebSocket client that collects frames.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { WebClient } from '../lib/stack.mjs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { sleep, ROOT } from '../lib/proc.mjs';

export const WAIT_MS = Number(process.env.PARLEY_WAIT_MS || 20000);

// Opens a WebSocket and keeps every JSON frame it receives. next(pred) resolves with the
// first frame (not yet taken) that matches, or rejects after WAIT_MS. The token goes in
// Authorization: Bearer, or, with `cookie` (a WebClient's cookie jar, which holds the
// parley_ws_<room> cookie the token endpoint set), as a browser sends it: the cookie and
// the site as Origin, to `path` (the token response's ws_url). Never in the URL (nginx
// refuses a token in the URL: it would reach logs).
export function openChat(url, token, { headers, cookie, path = '/ws', localAddress } = {}) {
  const wsUrl = url.replace(/^http/, 'ws') + path;
  const auth = cookie ? { Cookie: cookie, Origin: url } : token ? { Authorization: `Bearer ${token}` } : {};
  const ws = new WebSocket(wsUrl, { headers: { ...auth, ...headers }, localAddress });
  const c = { ws, frames: [], waiters: [], closed: null };
  const feed = () => {
    for (const w of [...c.waiters]) {
      const i = c.frames.findIndex(w.pred);
      if (i >= 0) {
        const [f] = c.frames.splice(i, 1);
        c.waiters.splice(c.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.res(f);
      }
    }
  };
  ws.on('message', (data) => { c.frames.push(JSON.parse(data.toString())); feed(); });
  c.opened = new Promise((res, rej) => {
    ws.once('open', res);
    ws.once('unexpected-response', (_req, r) => rej(Object.assign(
      new Error(`WebSocket handshake answered ${r.statusCode}`), { statusCode: r.statusCode })));
    ws.once('error', rej);
  });
  c.closedP = new Promise((res) => ws.once('close', (code, reason) => {
    c.closed = { code, reason: reason.toString() };
    res(c.closed);
  }));
  c.next = (pred, what = 'a frame') => new Promise((res, rej) => {
    const w = { pred, res };
    w.timer = setTimeout(() => {
      c.waiters.splice(c.waiters.indexOf(w), 1);
      rej(new Error(`no ${what} within ${WAIT_MS} ms; got ${JSON.stringify(c.frames)}`));
    }, WAIT_MS);
    c.waiters.push(w);
    feed();
  });
  c.send = (obj) => ws.send(JSON.stringify(obj));
  c.close = async () => { if (ws.readyState < 2) ws.close(1000); await c.closedP; };
  return c;
}

export const uniq = () => randomBytes(4).toString('hex');

// Registers a user through the public port and checks what a user sees: a redirect to /rooms
// and a working session.
export async function registerUser(url, who) {
  const id = uniq();
  const u = { email: `${who}-${id}@example.com`, name: `${who[0].toUpperCase()}${who.slice(1)} ${id}`,
    password: `pw-${randomBytes(9).toString('base64url')}` };
  const c = new WebClient(url);
  const r = await c.register(u.email, u.name, u.password);
  assert.equal(r.status, 303, `register ${u.email}: ${r.status} ${r.text.slice(0, 500)}`);
  assert.match(r.location || '', /\/rooms$/);
  return { ...u, client: c };
}

export async function login(url, email, password) {
  const c = new WebClient(url);
  const r = await c.login(email, password);
  assert.equal(r.status, 303, `login ${email}: ${r.status} ${r.text.slice(0, 500)}`);
  assert.match(r.location || '', /\/rooms$/);
  const rooms = await c.get('/rooms');
  assert.equal(rooms.status, 200);
  return c;
}

// The whole user story through one port. Returns what later checks need.
export async function happyPath(url) {
  const ann = await registerUser(url, 'ann');
  const bob = await registerUser(url, 'bob');
  // Fresh log-ins (not only the sessions made by registering).
  const annC = await login(url, ann.email, ann.password);
  const bobC = await login(url, bob.email, bob.password);

  const room = `room-${uniq()}`;
  const created = await annC.createRoom(room, `Room ${room}`, 'made by the happy path');
  assert.equal(created.status, 303, `create room: ${created.status} ${created.text.slice(0, 500)}`);
  assert.equal(new URL(created.location, url).pathname, `/rooms/${room}`);
  const page = await bobC.get(`/rooms/${room}`);
  assert.equal(page.status, 200);
  assert.match(page.text, new RegExp(`data-room="${room}"`));

  const ta = await annC.chatToken(room);
  assert.equal(ta.status, 200, `token: ${ta.status} ${ta.text}`);
  assert.equal(ta.body.ws_url, `/ws?room=${room}`);
  assert.equal(ta.body.room, room);
  const tb = await bobC.chatToken(room);
  assert.equal(tb.status, 200, `token: ${tb.status} ${tb.text}`);

  // ann connects as the browser does (the cookie), bob as any other client (Bearer)
  const a = openChat(url, null, { cookie: annC.cookieHeader(), path: ta.body.ws_url });
  await a.opened;
  const wa = await a.next((f) => f.type === 'welcome', 'welcome');
  assert.equal(wa.room, room);
  assert.equal(wa.you.email, ann.email);
  assert.equal(wa.you.id, ta.body.user.id);
  const b = openChat(url, tb.body.token);
  await b.opened;
  const wb = await b.next((f) => f.type === 'welcome', 'welcome');
  assert.ok(wb.members.some((m) => m.id === ta.body.user.id && m.name === ann.name),
    'bob sees ann in the room');
  assert.ok(wb.members.every((m) => !('email' in m)), 'members carry no email (privacy)');
  const join = await a.next((f) => f.type === 'join', 'join');
  assert.deepEqual(join.user, { id: tb.body.user.id, name: bob.name });

  const text1 = `hello from ann ${uniq()} <b>&</b>`;
  a.send({ type: 'message', text: text1, client_id: 'c1' });
  for (const c of [a, b]) {
    const m = await c.next((f) => f.type === 'message' && f.text === text1, 'ann\'s message');
    assert.deepEqual(m.user, { id: ta.body.user.id, name: ann.name });
    assert.equal(m.room, room);
  }
  const text2 = `reply from bob ${uniq()} ✓`;
  b.send({ type: 'message', text: text2 });
  for (const c of [a, b]) {
    const m = await c.next((f) => f.type === 'message' && f.text === text2, 'bob\'s message');
    assert.deepEqual(m.user, { id: tb.body.user.id, name: bob.name });
  }
  await b.close();
  await a.next((f) => f.type === 'leave' && f.user.id === tb.body.user.id, 'bob\'s leave');
  await a.close();
  return { ann, bob, room, tokens: [ta.body.token, tb.body.token] };
}

// Polls fn() until it returns a truthy value (log lines are written when a connection
// ends, a moment after the client saw the close).
export async function eventually(fn, what) {
  const until = Date.now() + WAIT_MS;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await sleep(100);
  }
}

// scripts/run-native as `make run` starts it: state in `state`, the daemons of `build`,
// every port of `ports` ({PUBLIC_PORT: n, ...}), NGINX_WORKERS=1, plus extraEnv. In its own
// process group, so the test can play Ctrl-C (SIGINT to the whole group) like a terminal
// does. Returns {child, out, exited, stop(signal), ready}; while it runs it is in `running`.
export function runNative({ state, build, ports, running }, extraEnv = {}) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME || '/root',
    PARLEY_STATE_DIR: state, PARLEY_BUILD_DIR: build, NGINX_WORKERS: '1',
    ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])), ...extraEnv };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS']) if (process.env[k]) env[k] = process.env[k];
  const child = spawn(join(ROOT, 'scripts', 'run-native'), [], { env, detached: true,
    stdio: ['ignore', 'pipe', 'pipe'] });
  const r = { child, out: '' };
  child.stdout.on('data', (b) => { r.out += b; });
  child.stderr.on('data', (b) => { r.out += b; if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(b); });
  r.exited = new Promise((res) => child.on('exit', (code, signal) => { running.delete(r); res({ code, signal }); }));
  r.stop = async (signal = 'SIGINT') => {
    if (child.exitCode !== null || child.signalCode !== null) return r.exited;
    try { process.kill(-child.pid, signal); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 60000);
    const res = await r.exited;
    clearTimeout(t);
    return res;
  };
  r.ready = eventually(() => {
    if (child.exitCode !== null) throw new Error(`run-native exited: ${child.exitCode}\n${r.out}`);
    return r.out.includes('Parley is running at');
  }, 'run-native to print its URL').catch((e) => { throw new Error(`${e.message}\n${r.out}`); });
  r.ready.catch(() => {}); // awaited by the tests that expect a start; not by the others
  running.add(r);
  return r;
}
