// POST /api/rooms/NAME/token and /healthz: the token's claims decoded and verified with the
// test's own secret, and every refusal of the contract.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startSite, newUser, uniq } from './helpers.mjs';

const TTL = 45; // not the default, to see that TOKEN_TTL is honoured
let site, u, room;
before(async () => {
  site = await startSite({ env: { TOKEN_TTL: String(TTL) } });
  u = await newUser(site, 'tok', { name: 'Tök <Tester>' });
  room = `tok-${uniq()}`;
  assert.equal((await u.client.createRoom(room, 'Token room')).status, 303);
});
after(async () => {
  const r = await site?.stop();
  assert.deepEqual(r, { code: 0, signal: null }, site?.web.stderr.slice(-3000));
});

const b64json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));

test('a token for (user, room): HS256, signed with JWT_SECRET, claims as in the contract', async () => {
  const before = Math.floor(Date.now() / 1000);
  const r = await u.client.chatToken(room);
  const after = Math.floor(Date.now() / 1000);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const b = r.body;
  assert.deepEqual(Object.keys(b).sort(), ['expires_in', 'room', 'token', 'user', 'ws_url']);
  assert.equal(b.expires_in, TTL);
  assert.equal(b.ws_url, `/ws?room=${room}`, 'the room in the URL, the token not');
  assert.equal(b.room, room);
  assert.match(b.user.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    'the public id is a UUID');
  assert.deepEqual(b.user, { id: b.user.id, email: u.email, name: u.name });
  const [h, p, sig] = b.token.split('.');
  assert.deepEqual(b64json(h).alg, 'HS256');
  const expect = createHmac('sha256', site.secret).update(`${h}.${p}`).digest('base64url');
  assert.equal(sig, expect, 'signature verifies with the shared secret');
  const wrong = createHmac('sha256', site.secret + 'x').update(`${h}.${p}`).digest('base64url');
  assert.notEqual(sig, wrong);
  const c = b64json(p);
  assert.equal(c.iss, 'website');
  assert.equal(c.aud, 'chat');
  assert.equal(c.sub, u.email);
  assert.equal(c.uid, b.user.id, 'uid: the public id, the same in every token of the user');
  assert.equal(c.name, u.name);
  assert.equal(c.room, room);
  assert.ok(Number.isSafeInteger(c.rid) && c.rid > 0, 'rid: the room id');
  assert.equal(c.exp - c.iat, TTL);
  assert.ok(c.iat >= before - 1 && c.iat <= after + 1, 'iat is now');
  assert.match(c.jti, /^[0-9a-f]{32}$/);
  const second = await u.client.chatToken(room);
  assert.notEqual(b64json(second.body.token.split('.')[1]).jti, c.jti, 'a fresh jti each time');
  assert.equal(b64json(second.body.token.split('.')[1]).uid, c.uid);
  const other = await newUser(site, 'tok2');
  await other.client.get('/rooms'); // the session's CSRF token (register left the pre-session one)
  const o = await other.client.chatToken(room);
  assert.equal(o.status, 200, o.text);
  assert.notEqual(o.body.user.id, b.user.id, 'each user has their own public id');
  assert.ok(!site.web.stderr.includes(b.token), 'the token is never logged');
  assert.ok(!site.web.stderr.includes(sig), 'not even its signature');
});

// Set-Cookie of the chat handshake's cookie for room, parsed: {value, attrs (lowercased names)}.
function wsCookie(res, room) {
  const all = res.headers.getSetCookie().filter((c) => c.startsWith(`parley_ws_${room}=`));
  assert.equal(all.length, 1, `one parley_ws_${room} cookie: ${res.headers.getSetCookie()}`);
  const [pair, ...attrs] = all[0].split(';').map((x) => x.trim());
  return { raw: all[0], value: pair.slice(pair.indexOf('=') + 1),
    attrs: Object.fromEntries(attrs.map((a) => { const [k, v = true] = a.split('='); return [k.toLowerCase(), v]; })) };
}

test('the token is also set as the cookie parley_ws_ROOM: only for /ws, as long as the token lives, HttpOnly, SameSite=Strict', async () => {
  const r = await u.client.chatToken(room);
  assert.equal(r.status, 200, r.text);
  const c = wsCookie(r, room);
  assert.equal(c.value, r.body.token, 'the cookie holds the same token');
  assert.deepEqual(c.attrs, { path: '/ws', 'max-age': String(TTL), httponly: true, samesite: 'Strict' },
    c.raw);
  // one cookie per room: a token for another room comes under another name, and leaves this one
  const second = `tok2-${uniq()}`;
  assert.equal((await u.client.createRoom(second, 'Second')).status, 303);
  const r2 = await u.client.chatToken(second);
  const c2 = wsCookie(r2, second);
  assert.equal(c2.value, r2.body.token);
  assert.ok(!r2.headers.getSetCookie().some((x) => x.startsWith(`parley_ws_${room}=`)));
  assert.equal(JSON.parse(Buffer.from(c2.value.split('.')[1], 'base64url')).room, second);
  // refusals set no cookie
  const anon = await site.client().request('POST', `/api/rooms/${room}/token`, { headers: { 'x-csrf-token': 'x' } });
  assert.ok(!anon.headers.getSetCookie().some((x) => x.startsWith('parley_ws_')));
  const missing = await u.client.chatToken('no-such-room');
  assert.ok(!missing.headers.getSetCookie().some((x) => x.startsWith('parley_ws_')));
});

test('the cookie fits a token of the longest email and name, and is Secure with COOKIE_SECURE=1', async () => {
  const secure = await startSite({ env: { COOKIE_SECURE: '1' } });
  try {
    // a 64-byte local part (251 bytes in all), 64 four-byte characters of name (U+20000,
    // a CJK ideograph), a 32-character room: the Set-Cookie line is longer than 1 KiB
    const email = `${'a'.repeat(64)}@${['b', 'c', 'd'].map((x) => x.repeat(60)).join('.')}.org`;
    const big = await newUser(secure, 'big', { email, name: '\u{20000}'.repeat(64) });
    assert.equal(big.res.status, 303, `registered: ${big.res.text.slice(0, 300)}`);
    const name = `big-${uniq()}`.padEnd(32, 'x');
    assert.equal((await big.client.createRoom(name, 'Big')).status, 303);
    const r = await big.client.chatToken(name);
    assert.equal(r.status, 200, r.text);
    const c = wsCookie(r, name);
    assert.ok(c.raw.length > 1024, `a long Set-Cookie (${c.raw.length} bytes)`);
    assert.equal(c.value, r.body.token);
    assert.equal(c.attrs.secure, true);
    assert.equal(c.attrs.samesite, 'Strict');
  } finally {
    await secure.stop();
  }
});

test('no session: 401; bad or missing X-CSRF-Token: 403; no such room: 404 (all JSON errors)', async () => {
  const anon = site.client();
  let r = await anon.request('POST', `/api/rooms/${room}/token`, { headers: { 'x-csrf-token': 'x' } });
  assert.equal(r.status, 401);
  assert.equal(r.json().error, 'unauthorized');
  r = await u.client.request('POST', `/api/rooms/${room}/token`);
  assert.equal(r.status, 403);
  assert.equal(r.json().error, 'csrf');
  r = await u.client.request('POST', `/api/rooms/${room}/token`, { headers: { 'x-csrf-token': '0'.repeat(64) } });
  assert.equal(r.status, 403);
  const other = await newUser(site, 'other');
  await other.client.get('/rooms');
  r = await u.client.request('POST', `/api/rooms/${room}/token`, { headers: { 'x-csrf-token': other.client.csrf } });
  assert.equal(r.status, 403, 'another session\'s token');
  for (const missing of ['no-such-room', 'BAD_NAME', 'ab']) {
    const t = await u.client.chatToken(missing);
    assert.equal(t.status, 404, missing);
    assert.equal(t.body.error, 'not_found');
    assert.equal(typeof t.body.message, 'string');
  }
  r = await u.client.get(`/api/rooms/${room}/token`);
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'POST');
  assert.equal(r.json().error, 'method_not_allowed');
});

test('a deleted room gets no more tokens', async () => {
  const gone = `gone-${uniq()}`;
  await u.client.createRoom(gone, 'Gone');
  assert.equal((await u.client.chatToken(gone)).status, 200);
  assert.equal((await u.client.postForm(`/rooms/${gone}/delete`, {})).status, 303);
  assert.equal((await u.client.chatToken(gone)).status, 404);
});

test('GET /healthz answers {"status":"ok"} while the database answers', async () => {
  const r = await fetch(`${site.url}/healthz`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: 'ok' });
});
