// Handshake authentication: every bad token is an HTTP 401 before any upgrade; capacity
// 503; the endpoints of the two ports; configuration refused at start-up. (Cookies, Origin
// and tokens in URLs: handshake.test.mjs; other upgrades: upgrade.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createSign } from 'node:crypto';
import { startChat, Client, httpGet, rawRequest, upgradeRequest, metrics, T } from './lib.mjs';
import { signRaw, claims, mintToken, newSecret } from '../lib/token.mjs';
import { BIN, runToExit } from '../lib/proc.mjs';

let chat;
before(async () => { chat = await startChat({ CHAT_MAX_CONNECTIONS: '3' }); });
after(async () => { await chat.d.stop(); });

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

function rs256(payload) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const h = b64({ alg: 'RS256', typ: 'JWT' });
  const p = b64(payload);
  const sig = createSign('RSA-SHA256').update(`${h}.${p}`).sign(privateKey).toString('base64url');
  return `${h}.${p}.${sig}`;
}

function badTokens(secret) {
  const noRoom = claims();
  delete noRoom.room;
  return {
    garbage: 'not-a-jwt',
    'three garbage parts': 'aaa.bbb.ccc',
    'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`,
    'alg none with a signature': signRaw({ alg: 'none', typ: 'JWT' }, claims(), secret),
    HS512: signRaw({ alg: 'HS512', typ: 'JWT' }, claims(), secret, 'sha512'),
    RS256: rs256(claims()),
    'wrong secret': mintToken(newSecret()),
    expired: signRaw({ alg: 'HS256', typ: 'JWT' }, claims({ now: now() - 120, ttl: 60 }), secret),
    'wrong aud': signRaw({ alg: 'HS256', typ: 'JWT' }, claims({ aud: 'website' }), secret),
    'wrong iss': signRaw({ alg: 'HS256', typ: 'JWT' }, claims({ iss: 'evil' }), secret),
    'no room': signRaw({ alg: 'HS256', typ: 'JWT' }, noRoom, secret),
    'bad room name': signRaw({ alg: 'HS256', typ: 'JWT' }, claims({ room: '../etc' }), secret),
    'tampered payload': (() => {
      const [h, , s] = mintToken(secret).split('.');
      return `${h}.${b64(claims({ room: 'other' }))}.${s}`;
    })(),
    'too long': `${'a'.repeat(3000)}.${'b'.repeat(3000)}.c`,
  };
}

test('every bad token gets HTTP 401 and no upgrade, in the header and in the cookie', async () => {
  const cases = { missing: null, ...badTokens(chat.secret) };
  const origin = 'http://127.0.0.1'; // upgradeRequest() sends Host: 127.0.0.1
  for (const [name, tok] of Object.entries(cases)) {
    const none = await rawRequest(chat.port, upgradeRequest('/ws'));
    assert.equal(none.status, 401, `${name}: ${none.head}`);
    assert.match(none.head, /WWW-Authenticate: Bearer/i);
    if (tok !== null) {
      const viaHeader = await rawRequest(chat.port, upgradeRequest('/ws', `Authorization: Bearer ${tok}\r\n`));
      assert.equal(viaHeader.status, 401, `${name} (header): ${viaHeader.head}`);
      assert.doesNotMatch(viaHeader.raw, /101 Switching|Sec-WebSocket-Accept/i, name);
      assert.match(viaHeader.head, /WWW-Authenticate: Bearer/i);
      const viaCookie = await rawRequest(chat.port, upgradeRequest('/ws?room=lobby',
        `Cookie: parley_ws_lobby=${tok}\r\nOrigin: ${origin}\r\n`));
      assert.equal(viaCookie.status, 401, `${name} (cookie): ${viaCookie.head}`);
      assert.doesNotMatch(viaCookie.raw, /101 Switching/i);
    }
    // and a real client sees the 401 too
    await assert.rejects(Client.open(chat.url(tok)), (e) => e.status === 401, name);
  }
  // the token never appears in the daemon's log
  for (const tok of Object.values(badTokens(chat.secret))) {
    if (tok.length > 20) assert.ok(!chat.d.stderr.includes(tok.slice(-20)), 'token logged');
  }
  const m = await metrics(chat.port);
  assert.ok(m['chat_handshakes_rejected_total{reason="missing_token"}'] >= 2);
  assert.ok(m['chat_handshakes_rejected_total{reason="bad_alg"}'] >= 3);
  assert.ok(m['chat_handshakes_rejected_total{reason="expired"}'] >= 2);
  assert.ok(m['chat_handshakes_rejected_total{reason="bad_signature"}'] >= 2);
  assert.equal(m.chat_connections, 0);
});

test('a good token works in the Authorization header, room from the token', async () => {
  const tok = chat.token({ sub: 'h@x.org', name: 'H', room: 'from-token' });
  const viaHeader = await Client.open(chat.url(tok));
  assert.equal(viaHeader.frames[0].room, 'from-token');
  // ?room= may name the room the token is for
  const named = await Client.open({ url: `ws://127.0.0.1:${chat.port}/ws?room=from-token`,
    headers: { Authorization: `Bearer ${chat.token({ sub: 'q@x.org', name: 'Q', room: 'from-token' })}` } });
  assert.equal(named.frames[0].room, 'from-token');
  assert.ok(!chat.d.stderr.includes(tok.split('.')[2]), 'the token signature is never logged');
  assert.match(chat.d.stderr, /connection accepted room=from-token user=u-[0-9a-f]{16} /); // uid, not email
  await Promise.all([viaHeader.close(), named.close()]);
});

test('an Authorization header of another scheme does not hide the cookie (Basic auth in front of the site)', async () => {
  // browsers send the Basic credentials of an auth layer in front of the site with the
  // WebSocket upgrade too; the chat page's token is in the cookie then
  const basic = `Basic ${Buffer.from('staging:secret').toString('base64')}`;
  const tok = chat.token({ sub: 'basic@x.org', name: 'B', room: 'behind-basic' });
  const c = await Client.open(chat.cookieTarget(tok, 'behind-basic'), { headers: { Authorization: basic } });
  assert.equal(c.frames[0].room, 'behind-basic');
  await c.close();
  // still a 401 without a token, and a bad Bearer header is not rescued by the cookie
  const none = await rawRequest(chat.port, upgradeRequest('/ws', `Authorization: ${basic}\r\n`));
  assert.equal(none.status, 401);
  const bad = await rawRequest(chat.port, upgradeRequest('/ws?room=behind-basic',
    `Authorization: Bearer nope.nope.nope\r\nCookie: parley_ws_behind-basic=${tok}\r\nOrigin: http://127.0.0.1\r\n`));
  assert.equal(bad.status, 401);
});

test('beyond CHAT_MAX_CONNECTIONS handshakes get 503; a freed slot is usable again', async () => {
  const cs = [];
  for (let i = 0; i < 3; i++) cs.push(await Client.open(chat.url(chat.token({ sub: `c${i}@x.org` }))));
  const r = await rawRequest(chat.port, upgradeRequest('/ws', `Authorization: Bearer ${chat.token()}\r\n`));
  assert.equal(r.status, 503);
  assert.doesNotMatch(r.raw, /101 Switching/);
  await cs.pop().close();
  let c;
  for (let i = 0; !c; i++) { // the close is processed asynchronously by the daemon
    try { c = await Client.open(chat.url(chat.token())); } catch (e) { if (e.status !== 503 || i > 100) throw e; }
  }
  cs.push(c);
  await Promise.all(cs.map((x) => x.close()));
});

test('/healthz and /metrics on the admin port only; the public port knows only /ws', async () => {
  const h = await httpGet(chat.adminPort, '/healthz');
  assert.equal(h.status, 200);
  assert.deepEqual(JSON.parse(h.body), { status: 'ok' });
  const m = await httpGet(chat.adminPort, '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.head, /Content-Type: text\/plain; version=0\.0\.4/);
  assert.match(m.body, /^# TYPE chat_connections gauge$/m);
  for (const p of ['/healthz', '/metrics', '/metrics?x=1', '/ws/../metrics', '//metrics', '/nope']) {
    const r = await httpGet(chat.port, p);
    assert.equal(r.status, 404, `public ${p}: ${r.head}`);
    assert.doesNotMatch(r.body, /# TYPE|"status"/);
  }
  assert.equal((await httpGet(chat.port, '/ws')).status, 426);
  assert.equal((await rawRequest(chat.port, upgradeRequest('/other'))).status, 404);
  // the admin port has no /ws and no upgrade at all
  assert.equal((await httpGet(chat.adminPort, '/ws')).status, 404);
  assert.equal((await httpGet(chat.adminPort, '/nope')).status, 404);
  const up = await rawRequest(chat.adminPort, upgradeRequest('/ws', `Authorization: Bearer ${chat.token()}\r\n`));
  assert.doesNotMatch(up.raw, /101 Switching/);
  assert.equal(up.status, 403);
});

test('the daemon refuses to start without a proper secret or with a bad limit', async () => {
  const base = { CHAT_PORT: '1' };
  let r = await runToExit(BIN.chat, base);
  assert.notEqual(r.code, 0);
  assert.match(r.output, /JWT_SECRET/);
  r = await runToExit(BIN.chat, { ...base, JWT_SECRET: 'short' });
  assert.notEqual(r.code, 0);
  assert.match(r.output, /JWT_SECRET/);
  assert.ok(!r.output.includes('short'), 'the secret is not echoed');
  r = await runToExit(BIN.chat, { ...base, JWT_SECRET: newSecret(), CHAT_MAX_TEXT_CHARS: '0' });
  assert.notEqual(r.code, 0);
  assert.match(r.output, /CHAT_MAX_TEXT_CHARS/);
  r = await runToExit(BIN.chat, { ...base, JWT_SECRET: newSecret(), LOG_LEVEL: 'loud' });
  assert.notEqual(r.code, 0);
  assert.match(r.output, /LOG_LEVEL/);
  r = await runToExit(BIN.chat, { ...base, CHAT_ADMIN_PORT: '1', JWT_SECRET: newSecret() });
  assert.notEqual(r.code, 0);
  assert.match(r.output, /CHAT_ADMIN_PORT .* must differ from CHAT_PORT/);
  for (const bad of ['*', 'https://a.example/', 'a.example', 'https://a.example,,https://b.example', 'null']) {
    r = await runToExit(BIN.chat, { ...base, JWT_SECRET: newSecret(), CHAT_ALLOWED_ORIGINS: bad });
    assert.notEqual(r.code, 0, bad);
    assert.match(r.output, /CHAT_ALLOWED_ORIGINS/, bad);
  }
}, { timeout: T });
