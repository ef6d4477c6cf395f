// Closes that libwebsockets makes itself (1007 invalid UTF-8, 1002 for a continuation frame with
// no message to continue; reserved opcodes are the framing guard's, see rawguard.test.mjs) are
// logged with their code and counted in /metrics, not reported as "connection lost".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChat, Client, RawWs, metrics, until, T } from './lib.mjs';
import { uidOf } from '../lib/token.mjs';

test('lws closes (1007, 1002) are logged with their code and counted', async (t) => {
  const chat = await startChat();
  t.after(() => chat.d.stop());
  const watcher = await Client.open(chat.url(chat.token({ sub: 'w@x.org', room: 'lwsclose' })));
  const bad = await RawWs.open(chat.port, chat.token({ sub: 'utf@x.org', room: 'lwsclose' }));
  bad.write(RawWs.frame(0x1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
  await bad.ended;
  assert.equal(bad.closeCode(), 1007);
  const opc = await RawWs.open(chat.port, chat.token({ sub: 'opc@x.org', room: 'lwsclose' }));
  opc.write(RawWs.frame(0x0, 'x')); // RFC 6455 §5.4: a continuation with nothing to continue
  await opc.ended;
  assert.equal(opc.closeCode(), 1002);
  await watcher.next((f) => f.type === 'leave' && f.user.id === uidOf('opc@x.org'));
  await until(async () => (await metrics(chat.port))['chat_closed_total{code="1002"}'] === 1, T, '1002 counted');
  const m = await metrics(chat.port);
  assert.equal(m['chat_closed_total{code="1007"}'], 1);
  assert.match(chat.d.stderr, new RegExp(`user=${uidOf('utf@x.org')} reason=closed by libwebsockets: code 1007`));
  assert.match(chat.d.stderr, new RegExp(`user=${uidOf('opc@x.org')} reason=closed by libwebsockets: code 1002`));
  assert.doesNotMatch(chat.d.stderr, /reason=connection lost/);
  await watcher.close();
});
