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
  assert.equal(b.ws_url, '/ws');
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
