// HTTP-level behaviour of the real website: 404/405/413/400/415, HEAD, security headers,
// static files (types, no traversal), start-up refusals, clean shutdown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSite, newUser } from './helpers.mjs';
import { rawHttp } from '../lib/http.mjs';
import { BIN, runToExit, sleep } from '../lib/proc.mjs';
import { newSecret } from '../lib/token.mjs';

let site;
before(async () => { site = await startSite(); });
after(async () => {
  const r = await site?.stop();
  assert.deepEqual(r, { code: 0, signal: null }, site?.web.stderr.slice(-3000));
});

const raw = (req) => rawHttp(site.port, req);

test('unknown path 404 (HTML page), unknown API path 404 (JSON)', async () => {
  let r = await fetch(`${site.url}/no/such/page`);
  assert.equal(r.status, 404);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  assert.match(await r.text(), /<h1>Not found<\/h1>/);
  r = await fetch(`${site.url}/api/nothing`);
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error, 'not_found');
  assert.equal((await fetch(`${site.url}/rooms/`)).status, 404);
});

test('wrong method: 405 with Allow', async () => {
  const cases = [['POST', '/', 'GET, HEAD'], ['DELETE', '/rooms', 'GET, HEAD, POST'],
    ['GET', '/logout', 'POST'], ['PUT', '/healthz', 'GET, HEAD'], ['GET', '/rooms/x/delete', 'POST']];
  for (const [m, p, allow] of cases) {
    const r = await fetch(`${site.url}${p}`, { method: m, redirect: 'manual' });
    assert.equal(r.status, 405, `${m} ${p}`);
    assert.equal(r.headers.get('allow'), allow, `${m} ${p}`);
    await r.arrayBuffer();
  }
});

test('HEAD works where GET does, with the same status and headers and no body', async () => {
  for (const p of ['/', '/login', '/healthz', '/static/style.css', '/nope']) {
    const g = await fetch(`${site.url}${p}`, { redirect: 'manual' });
    await g.arrayBuffer();
    const h = await raw(`HEAD ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.equal(h.status, g.status, p);
    assert.equal(h.headers['content-type'], g.headers.get('content-type'), p);
    assert.equal(h.body, '', `${p}: no body`);
  }
});

test('security headers on every response', async () => {
  for (const p of ['/', '/login', '/healthz', '/static/style.css', '/nope']) {
    const r = await fetch(`${site.url}${p}`);
    await r.arrayBuffer();
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', p);
    assert.equal(r.headers.get('x-frame-options'), 'DENY', p);
    assert.equal(r.headers.get('referrer-policy'), 'same-origin', p);
    const csp = r.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self'/, p);
    assert.match(csp, /style-src 'self'/, p);
    assert.match(csp, /frame-ancestors 'none'/, p);
    assert.doesNotMatch(csp, /unsafe-inline/, p);
  }
  const page = await fetch(`${site.url}/login`);
  assert.equal(page.headers.get('cache-control'), 'no-store');
  assert.doesNotMatch(await page.text(), /style=|<script>/);
});

test('a body over WEB_MAX_BODY gets 413 (declared length and chunked) and is not processed', async () => {
  const u = await newUser(site, 'big');
  await u.client.get('/rooms');
  const cookie = u.client.cookieHeader();
  const before = site.pg.psql('SELECT count(*) FROM rooms');
  const form = `csrf_token=${u.client.csrf}&name=bigroom&title=x&description=${'d'.repeat(70000)}`;
  let r = await raw(`POST /rooms HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\n`
    + `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`);
  assert.equal(r.status, 413);
  // only the declared length: refused before the body is read
  r = await raw('POST /register HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n'
    + 'Content-Length: 100000000\r\n\r\n');
  assert.equal(r.status, 413);
  // chunked, no declared length: counted as it arrives
  const chunk = 'a'.repeat(16000);
  let body = '';
  for (let i = 0; i < 5; i++) body += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
  body += '0\r\n\r\n';
  r = await raw(`POST /rooms HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\nConnection: close\r\n`
    + `Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
  assert.equal(r.status, 413);
  // a chunked body that goes on far past the limit: the connection is cut, not read forever
  let huge = '';
  for (let i = 0; i < 100; i++) huge += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
  r = await raw(`POST /rooms HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\n`
    + `Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n${huge}`);
  assert.notEqual(r.status, 200);
  assert.notEqual(r.status, 303);
  assert.equal(site.pg.psql('SELECT count(*) FROM rooms'), before);
  assert.equal((await fetch(`${site.url}/healthz`)).status, 200);
  // just under the limit is fine (and then fails validation as a too-long description)
  const ok = `csrf_token=${u.client.csrf}&name=bigroom&title=x&description=${'d'.repeat(60000)}`;
  r = await raw(`POST /rooms HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}\r\nConnection: close\r\n`
    + `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${ok.length}\r\n\r\n${ok}`);
  assert.equal(r.status, 400);
  assert.match(r.body, /The description is longer than 1000 characters/);
});

test('the JSON API answers 413 and an unexpected body with JSON errors, as the contract says', async () => {
  const u = await newUser(site, 'apibig');
  await u.client.get('/rooms');
  const head = `Host: x\r\nCookie: ${u.client.cookieHeader()}\r\nX-CSRF-Token: ${u.client.csrf}\r\n`;
  const json = (r) => {
    assert.match(r.headers['content-type'] ?? '', /^application\/json/, r.raw);
    const b = JSON.parse(r.body);
    assert.equal(typeof b.error, 'string');
    assert.equal(typeof b.message, 'string');
    return b;
  };
  // declared length over the limit: refused before the body is read
  let r = await raw(`POST /api/rooms/any-room/token HTTP/1.1\r\n${head}Content-Length: 100000000\r\n\r\n`);
  assert.equal(r.status, 413);
  assert.equal(json(r).error, 'too_large');
  // chunked: counted as it arrives, 413 at the end
  const chunk = 'a'.repeat(16000);
  let body = '';
  for (let i = 0; i < 5; i++) body += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
  body += '0\r\n\r\n';
  r = await raw(`POST /api/rooms/any-room/token HTTP/1.1\r\n${head}Connection: close\r\n`
    + `Transfer-Encoding: chunked\r\n\r\n${body}`);
  assert.equal(r.status, 413);
  assert.equal(json(r).error, 'too_large');
  // a GET with a body
  r = await raw(`GET /api/rooms HTTP/1.1\r\n${head}Connection: close\r\nContent-Length: 2\r\n\r\n{}`);
  assert.equal(r.status, 400);
  assert.equal(json(r).error, 'bad_request');
});

test('a malformed form is 400; a non-form body is 415; nothing is stored', async () => {
  const u = await newUser(site, 'mal');
  await u.client.get('/rooms');
  const before = site.pg.psql('SELECT count(*) FROM rooms');
  const post = (body, type = 'application/x-www-form-urlencoded') => u.client.request('POST', '/rooms',
    { body, headers: { 'content-type': type } });
  const tok = `csrf_token=${u.client.csrf}`;
  for (const bad of [`${tok}&name=abc%zz&title=t`, `${tok}&name=abc&title=%`, `${tok}&name=abc&title=%ff%fe`,
    `${tok}&name=abc&name=def&title=t`, `${tok}&name=a%00bc&title=t`, `${tok}&=x`]) {
    const r = await post(bad);
    assert.equal(r.status, 400, bad);
    assert.match(r.text, /The form data is malformed/);
  }
  let r = await post(JSON.stringify({ name: 'abc', title: 't' }), 'application/json');
  assert.equal(r.status, 415);
  r = await post(`${tok}&name=abc-def&title=t`, 'multipart/form-data; boundary=x');
  assert.equal(r.status, 415);
  assert.equal(site.pg.psql('SELECT count(*) FROM rooms'), before);
  // a body on a GET is refused
  r = await raw('GET /login HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
  assert.equal(r.status, 400);
  // garbage request line: MHD answers 400 itself
  r = await raw('NOT A REQUEST\r\n\r\n');
  assert.ok(r.status === 400 || r.status === 0, `status ${r.status}`);
  // the site still works
  assert.equal((await fetch(`${site.url}/healthz`)).status, 200);
});

test('static files: right content types; no traversal, hidden files or unknown types', async () => {
  const css = await fetch(`${site.url}/static/style.css`);
  assert.equal(css.status, 200);
  assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
  assert.match(await css.text(), /:root\s*{[^}]*--accent:/, 'CSS custom properties for chat.css');
  for (const p of ['/static/../src/main.c', '/static/%2e%2e/src/main.c', '/static/..%2fsrc%2fmain.c',
    '/static/.hidden.css', '/static//etc/passwd', '/static/', '/static/nope.css', '/static/style.css/',
    '/static/a/../style.css', '/static/%00style.css']) {
    const r = await raw(`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
    assert.doesNotMatch(r.body, /#include|root:/, p);
  }
});

test('start-up refuses bad configuration with a clear message', async () => {
  const base = { ...site.pg.env, JWT_SECRET: newSecret(), WEB_PORT: '1' };
  const cases = [
    [{ DB_PASSWORD: '' }, /DB_PASSWORD \(or DB_PASSWORD_FILE\) is required/],
    [{ JWT_SECRET: '' }, /JWT_SECRET \(or JWT_SECRET_FILE\) is required/],
    [{ JWT_SECRET: 'short-secret' }, /JWT_SECRET: length 12 is out of range/],
    [{ ADMIN_EMAIL: 'a@example.com' }, /ADMIN_EMAIL is set but ADMIN_PASSWORD/],
    [{ ADMIN_EMAIL: 'nope', ADMIN_PASSWORD: 'long enough' }, /ADMIN_EMAIL: Enter an email address/],
    [{ ADMIN_EMAIL: 'a@example.com', ADMIN_PASSWORD: 'short' }, /ADMIN_PASSWORD: The password must have/],
    [{ WEB_MAX_BODY: '10' }, /WEB_MAX_BODY: 10 is out of range/],
    [{ WEB_THREADS: 'many' }, /WEB_THREADS: 'many' is not an integer/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ WEB_LISTEN_ADDR: 'not-an-ip', WEB_PORT: '8' }, /WEB_LISTEN_ADDR/],
  ];
  for (const [env, msg] of cases) {
    const r = await runToExit(BIN.website, { ...base, DB_START_WAIT: '0', ...env });
    assert.notEqual(r.code, 0, JSON.stringify(env));
    assert.match(r.output, msg, JSON.stringify(env));
    if (env.JWT_SECRET) assert.ok(!r.output.includes(env.JWT_SECRET), 'the bad secret is not echoed');
  }
});

test('log lines: one per request, client address not taken from X-Real-IP unless TRUST_PROXY=1, no injection', async () => {
  await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Real-IP: 203.0.113.9\r\nConnection: close\r\n\r\n');
  const r = await raw('GET /a%0aFAKE%20LINE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(r.status, 404);
  // The line is written when MHD reports the request complete, just after the response left:
  // wait for it (bounded) rather than assume it is there already.
  for (let i = 0; i < 200 && !/GET \/a\\x0a/.test(site.web.stderr); i++) await sleep(50);
  const log = site.web.stderr;
  assert.doesNotMatch(log, /203\.0\.113\.9/, 'TRUST_PROXY=0: the header is ignored');
  assert.match(log, /127\.0\.0\.1 GET \/healthz 200/);
  assert.doesNotMatch(log, /^FAKE LINE/m, 'a %0a in the path does not start a new log line');
  assert.match(log, /GET \/a\\x0aFAKE LINE 404/);
});
