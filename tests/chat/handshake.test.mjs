// Where the token may come from: the Authorization header (any client) or, for browsers, the
// per-room cookie parley_ws_<room> with /ws?room=<room> and an Origin of this site; never the
// URL. Cross-site WebSocket hijacking (a foreign page makes the browser send the cookie),
// cookie tossing (a second cookie of the same name), and tokens in no log line, even with
// lws's own debug logging on and under connection pressure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startChat, Client, rawRequest, upgradeRequest, metrics, T } from './lib.mjs';

let chat;
before(async () => { chat = await startChat(); });
after(async () => { await chat.d.stop(); });

const HOST_ORIGIN = 'http://127.0.0.1'; // upgradeRequest() sends Host: 127.0.0.1
const cookieReq = (room, cookie, extra = `Origin: ${HOST_ORIGIN}\r\n`) =>
  upgradeRequest(`/ws?room=${room}`, `Cookie: ${cookie}\r\n${extra}`);

// The response head only (a 101 keeps the socket open, so rawRequest would wait).
function head(port, text) {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    const t = setTimeout(() => { s.destroy(); rej(new Error(`no head: ${buf}`)); }, T);
    s.on('connect', () => s.write(text));
    s.on('data', (b) => {
      buf += b.toString('latin1');
      const i = buf.indexOf('\r\n\r\n');
      if (i >= 0) { clearTimeout(t); s.destroy(); res(buf.slice(0, i)); }
    });
    s.on('error', () => {});
  });
}

function jsonBody(r) {
  try { return JSON.parse(r.body); } catch { return null; }
}

test('the cookie of the ?room= argument, with this site as Origin, opens the room', async () => {
  const tok = chat.token({ sub: 'ck@x.org', name: 'Ck', room: 'cookie-room' });
  const c = await Client.open(chat.cookieTarget(tok, 'cookie-room'));
  assert.equal(c.frames[0].type, 'welcome');
  assert.equal(c.frames[0].room, 'cookie-room');
  await c.close();
  // the same over a raw socket, among other cookies
  const h = await head(chat.port, cookieReq('cookie-room',
    `sid=abc; parley_csrf=x; parley_ws_cookie-room=${chat.token({ room: 'cookie-room' })}; theme=dark`));
  assert.match(h, /^HTTP\/1\.1 101/);
  // a Host with its default port written out is the same origin
  const h80 = await head(chat.port, upgradeRequest('/ws?room=cookie-room',
    `Cookie: parley_ws_cookie-room=${chat.token({ room: 'cookie-room' })}\r\nOrigin: ${HOST_ORIGIN}\r\n`)
    .replace('Host: 127.0.0.1\r\n', 'Host: 127.0.0.1:80\r\n'));
  assert.match(h80, /^HTTP\/1\.1 101/);
});

test('two tabs in two rooms: each handshake takes only its own room\'s cookie', async () => {
  const ta = chat.token({ sub: 'tabs@x.org', name: 'Tabs', room: 'tab-one' });
  const tb = chat.token({ sub: 'tabs@x.org', name: 'Tabs', room: 'tab-two' });
  const both = `parley_ws_tab-one=${ta}; parley_ws_tab-two=${tb}`;
  const origin = `http://127.0.0.1:${chat.port}`;
  const one = await Client.open({ url: `ws://127.0.0.1:${chat.port}/ws?room=tab-one`, headers: { Cookie: both, Origin: origin } });
  const two = await Client.open({ url: `ws://127.0.0.1:${chat.port}/ws?room=tab-two`, headers: { Cookie: both, Origin: origin } });
  assert.equal(one.frames[0].room, 'tab-one');
  assert.equal(two.frames[0].room, 'tab-two');
  await Promise.all([one.close(), two.close()]);
  // a room with no cookie of its own gets none of the others'
  const three = await rawRequest(chat.port, cookieReq('tab-three', both));
  assert.equal(three.status, 401);
  // and a cookie whose token is for another room than its name says is refused
  const swapped = await rawRequest(chat.port, cookieReq('tab-one', `parley_ws_tab-one=${tb}`));
  assert.equal(swapped.status, 403);
  assert.equal(jsonBody(swapped).error, 'wrong_room');
});

test('a token for another room than ?room= is refused (header and cookie)', async () => {
  const tok = chat.token({ room: 'right-room' });
  const h = await rawRequest(chat.port, upgradeRequest('/ws?room=wrong-room', `Authorization: Bearer ${tok}\r\n`));
  assert.equal(h.status, 403, h.head);
  assert.equal(jsonBody(h).error, 'wrong_room');
  assert.doesNotMatch(h.raw, /101 Switching/);
  await assert.rejects(Client.open({ url: `ws://127.0.0.1:${chat.port}/ws?room=wrong-room`,
    headers: { Authorization: `Bearer ${tok}` } }), (e) => e.status === 403);
  const c = await rawRequest(chat.port, cookieReq('wrong-room', `parley_ws_wrong-room=${tok}`));
  assert.equal(c.status, 403);
  assert.equal(jsonBody(c).error, 'wrong_room');
  assert.ok((await metrics(chat.port))['chat_handshakes_rejected_total{reason="wrong_room"}'] >= 3);
});

test('a cookie handshake from a foreign Origin, or without Origin, is refused with 403', async () => {
  const tok = chat.token({ sub: 'victim@x.org', room: 'csrf-room' });
  const cookie = `parley_ws_csrf-room=${tok}`;
  const cases = {
    'no Origin': '',
    'foreign site': 'Origin: http://evil.example\r\n',
    'same host, other port': 'Origin: http://127.0.0.1:1\r\n',
    'look-alike host': 'Origin: http://127.0.0.1.evil.example\r\n',
    'opaque origin': 'Origin: null\r\n',
    'origin with a path': 'Origin: http://127.0.0.1/\r\n',
    'two Origins': `Origin: ${HOST_ORIGIN}\r\nOrigin: http://evil.example\r\n`,
    'the same Origin twice': `Origin: ${HOST_ORIGIN}\r\nOrigin: ${HOST_ORIGIN}\r\n`,
    'empty Origin': 'Origin: \r\n',
  };
  for (const [name, extra] of Object.entries(cases)) {
    const r = await rawRequest(chat.port, cookieReq('csrf-room', cookie, extra));
    assert.equal(r.status, 403, `${name}: ${r.head}`);
    assert.equal(jsonBody(r).error, 'forbidden_origin', name);
    assert.doesNotMatch(r.raw, /101 Switching/, name);
  }
  // the same through a real client, which sends whatever Origin it is given
  await assert.rejects(Client.open(chat.cookieTarget(tok, 'csrf-room', 'http://evil.example')),
    (e) => e.status === 403);
  await assert.rejects(Client.open(chat.cookieTarget(tok, 'csrf-room', null)), (e) => e.status === 403);
  // a Bearer client needs no Origin, and any Origin it sends does not matter (a foreign
  // page cannot set Authorization on a WebSocket)
  const b = await Client.open(chat.url(chat.token({ room: 'csrf-room' })), { headers: { Origin: 'http://evil.example' } });
  await b.close();
  const m = await metrics(chat.port);
  assert.ok(m['chat_handshakes_rejected_total{reason="bad_origin"}'] >= Object.keys(cases).length + 2);
});

test('CHAT_ALLOWED_ORIGINS replaces the Host rule', async () => {
  const other = await startChat({ CHAT_ALLOWED_ORIGINS: 'https://chat.example, http://127.0.0.1:8080' });
  try {
    const tok = () => other.token({ room: 'allow-room' });
    for (const ok of ['https://chat.example', 'http://127.0.0.1:8080']) {
      const c = await Client.open(other.cookieTarget(tok(), 'allow-room', ok));
      assert.equal(c.frames[0].room, 'allow-room', ok);
      await c.close();
    }
    // now the request's own Host is not enough, and entries match exactly
    for (const bad of [`http://127.0.0.1:${other.port}`, 'http://chat.example', 'https://chat.example:443', 'https://evil.example']) {
      await assert.rejects(Client.open(other.cookieTarget(tok(), 'allow-room', bad)), (e) => e.status === 403, bad);
    }
  } finally {
    await other.d.stop();
  }
});

test('the room\'s cookie twice with different values is refused (cookie tossing); the same value twice is fine', async () => {
  const good = chat.token({ room: 'toss-room' });
  const evil = chat.token({ sub: 'attacker@x.org', room: 'toss-room' });
  const r = await rawRequest(chat.port, cookieReq('toss-room', `parley_ws_toss-room=${evil}; parley_ws_toss-room=${good}`));
  assert.equal(r.status, 400, r.head);
  assert.equal(jsonBody(r).error, 'bad_request');
  // in two Cookie header lines (HTTP/2 style; lws keeps them as two fragments)
  const r2 = await rawRequest(chat.port, upgradeRequest('/ws?room=toss-room',
    `Cookie: a=1; parley_ws_toss-room=${evil}\r\nCookie: parley_ws_toss-room=${good}\r\nOrigin: ${HOST_ORIGIN}\r\n`));
  assert.equal(r2.status, 400, r2.head);
  // two header lines, one cookie each: both pairs are seen (not glued into one)
  const c = await Client.open({ url: `ws://127.0.0.1:${chat.port}/ws?room=toss-room`,
    headers: { Cookie: ['sid=1', `parley_ws_toss-room=${good}`], Origin: `http://127.0.0.1:${chat.port}` } });
  assert.equal(c.frames[0].room, 'toss-room');
  await c.close();
  const same = await Client.open({ url: `ws://127.0.0.1:${chat.port}/ws?room=toss-room`,
    headers: { Cookie: `parley_ws_toss-room=${good}; parley_ws_toss-room=${good}`, Origin: `http://127.0.0.1:${chat.port}` } });
  await same.close();
  assert.ok((await metrics(chat.port))['chat_handshakes_rejected_total{reason="bad_cookie"}'] >= 2);
});

test('without ?room= no cookie is used; a bad ?room=, since= twice or any other argument is a 400', async () => {
  const tok = chat.token({ room: 'arg-room' });
  const noRoom = await rawRequest(chat.port, upgradeRequest('/ws', `Cookie: parley_ws_arg-room=${tok}\r\nOrigin: ${HOST_ORIGIN}\r\n`));
  assert.equal(noRoom.status, 401);
  for (const q of ['room=AB', 'room=../x', 'room=arg-room&room=arg-room', 'room=arg-room&x=1',
    'x=1', 'token=abc', 'room=arg-room;v=2', `room=${'a'.repeat(40)}`, 'room', 'since=1&since=2',
    `jwt=${tok}`]) {
    const r = await rawRequest(chat.port, upgradeRequest(`/ws?${q}`, `Authorization: Bearer ${tok}\r\n`));
    assert.equal(r.status, 400, `${q}: ${r.head}`);
    assert.equal(jsonBody(r).error, 'bad_request', q);
  }
  // empty arguments are nothing; since= (history's resume point) may come once
  for (const q of ['&room=arg-room&', 'room=arg-room&since=0', 'since=0']) {
    const c = await Client.open({ url: `ws://127.0.0.1:${chat.port}/ws?${q}`, headers: { Authorization: `Bearer ${tok}` } });
    await c.close();
  }
});

test('a token in the URL is refused with 400 in every spelling, even alongside a good header', async () => {
  const tok = chat.token({ sub: 'url@x.org', room: 'url-room' });
  const spellings = [
    `access_token=${tok}`,
    `access_token=${encodeURIComponent(tok)}`,
    `room=url-room&access_token=${tok}`,
    `access_token=${tok}&room=url-room`,
    `room=url-room;access_token=${tok}`,
    `ACCESS_TOKEN=${tok}`,
    `%61ccess_token=${tok}`,
    'access_token=',
    'access_token',
  ];
  for (const q of spellings) {
    for (const extra of ['', `Authorization: Bearer ${tok}\r\n`]) {
      const r = await rawRequest(chat.port, upgradeRequest(`/ws?${q}`, extra));
      assert.equal(r.status, 400, `${q} ${extra ? '+ header' : ''}: ${r.head}`);
      assert.equal(jsonBody(r).error, 'token_in_url', q);
      assert.match(jsonBody(r).message, /tokens in URLs are not accepted/);
      assert.doesNotMatch(r.raw, /101 Switching/);
    }
  }
  await assert.rejects(Client.open(`ws://127.0.0.1:${chat.port}/ws?access_token=${tok}`), (e) => e.status === 400);
  // refused even when the daemon could not take the connection anyway: the client learns
  // the rule first, whatever the load
  const m = await metrics(chat.port);
  assert.ok(m['chat_handshakes_rejected_total{reason="token_in_url"}'] >= spellings.length * 2 + 1);
  assert.ok(!chat.d.stderr.includes(tok.split('.')[2]), 'the token is not logged');
  assert.ok(!chat.d.stderr.includes(tok.split('.')[1].slice(0, 30)), 'the token is not logged');
});

test('no token reaches a log line: lws debug logging on, LOG_LEVEL=debug, under connection pressure', async () => {
  const noisy = await startChat({ LOG_LEVEL: 'debug', CHAT_LWS_DEBUG: '1', CHAT_MAX_CONNECTIONS: '3',
    CHAT_MAX_PENDING_HANDSHAKES: '2' });
  const toks = [];
  const mk = (room) => { const t = noisy.token({ sub: `p${toks.length}@x.org`, room }); toks.push(t); return t; };
  const origin = 'http://127.0.0.1';
  const held = [];
  try {
    for (let i = 0; i < 3; i++) held.push(await Client.open(noisy.url(mk('press-room'))));
    // the daemon is full: everything below is refused (503) or refused anyway (URL, origin)
    const reqs = [];
    for (let i = 0; i < 40; i++) {
      const kind = i % 4;
      const t = mk(i % 2 ? 'press-room' : 'other-room');
      const req = kind === 0 ? upgradeRequest('/ws', `Authorization: Bearer ${t}\r\n`)
        : kind === 1 ? upgradeRequest(`/ws?access_token=${t}`)
          : kind === 2 ? cookieReq('press-room', `parley_ws_press-room=${t}`, `Origin: ${origin}\r\n`)
            : cookieReq('press-room', `parley_ws_press-room=${t}`, 'Origin: http://evil.example\r\n');
      reqs.push(rawRequest(noisy.port, req));
    }
    const rs = await Promise.all(reqs);
    assert.ok(rs.every((r) => r.status >= 400), rs.map((r) => r.status).join());
    assert.ok(rs.some((r) => r.status === 503), 'the pressure was real');
    await Promise.all(held.map((c) => c.close()));
    // and accepted ones, while lws logs every step of them
    held.length = 0;
    held.push(await Client.open(noisy.cookieTarget(mk('press-room'), 'press-room')));
    held.push(await Client.open(noisy.url(mk('press-room'))));
  } finally {
    await Promise.all(held.map((c) => c.close()));
    await noisy.d.stop();
  }
  const log = noisy.d.stderr;
  assert.match(log, /lws: /, 'lws debug lines are in the log');
  for (const t of toks) {
    const [, payload, sig] = t.split('.');
    assert.ok(!log.includes(sig.slice(0, 16)), 'a token signature is in the log');
    assert.ok(!log.includes(payload.slice(8, 40)), 'a token payload is in the log');
  }
  assert.doesNotMatch(log, /eyJ/, 'nothing that looks like a JWT');
}, { timeout: 4 * T });
