// The JSON API through nginx while the website daemon is down: the contract's JSON error
// ({"error","message"}), not nginx's HTML 502 page. A stack of its own: this test stops the
// website.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/stack.mjs';

let s;
before(async () => { s = await startStack(); });
after(async () => { await s?.stop(); });

test('website down: /api/ answers 503 with a JSON error; pages keep nginx\'s own error', async () => {
  assert.equal((await fetch(`${s.url}/api/rooms`)).status, 401, 'up: the website answers');
  await s.website.stop();
  for (const [method, path] of [['GET', '/api/rooms'], ['POST', '/api/rooms/some-room/token']]) {
    const r = await fetch(s.url + path, { method, headers: { 'x-csrf-token': 'x' } });
    assert.equal(r.status, 503, `${method} ${path}`);
    assert.match(r.headers.get('content-type') || '', /^application\/json/, `${method} ${path}`);
    const b = await r.json();
    assert.equal(b.error, 'unavailable');
    assert.equal(typeof b.message, 'string');
    assert.match(r.headers.get('content-security-policy') || '', /default-src 'self'/);
  }
  const page = await fetch(`${s.url}/login`);
  await page.arrayBuffer();
  assert.equal(page.status, 502, 'HTML pages are not the JSON API');
});
