// Emails are personal data: frames to others carry a stable user id and the display name,
// never the email; only welcome.you (the reader's own) has it. The log names users by id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChat, Client, sleep } from './lib.mjs';
import { uidOf } from '../lib/token.mjs';

test('no frame to another user holds an email: welcome, join, leave, typing, message', async (t) => {
  const chat = await startChat({ CHAT_RATE_PER_SEC: '1000', CHAT_RATE_BURST: '1000' });
  t.after(() => chat.d.stop());
  const open = (sub, name) => Client.open(chat.url(chat.token({ sub, name, room: 'private' })));
  const ann = await open('ann.secret@x.org', 'Ann');
  const bob = await open('bob.secret@x.org', 'Bob');
  // a second user whose uid was chosen by the website, not derived: the id is the token's uid
  const carl = await Client.open(chat.url(chat.token({ sub: 'carl.secret@x.org', uid: 'carl-0001', name: 'Carl', room: 'private' })));
  bob.send({ type: 'typing' });
  bob.send({ type: 'message', text: 'hi', client_id: 'b1' });
  // two senders on two connections arrive in either order: carl speaks once bob's is stored
  await ann.next((f) => f.type === 'message' && f.client_id === 'b1');
  carl.send({ type: 'message', text: 'yo', client_id: 'c1' });
  await ann.next((f) => f.type === 'message' && f.client_id === 'c1');
  await bob.next((f) => f.type === 'message' && f.client_id === 'c1');
  await carl.close();
  await ann.next((f) => f.type === 'leave');
  // what each reader got, raw: only its own email, only in welcome.you
  for (const [c, own] of [[ann, 'ann.secret@x.org'], [bob, 'bob.secret@x.org']]) {
    for (const f of c.frames) {
      const { __used, ...frame } = f;
      const raw = JSON.stringify(f.type === 'welcome' ? { ...frame, you: undefined } : frame);
      assert.doesNotMatch(raw, /secret@x\.org/, `a ${f.type} frame holds an email: ${raw}`);
    }
    const w = c.frames[0];
    assert.equal(w.type, 'welcome');
    assert.deepEqual(w.you, { id: uidOf(own), email: own, name: own === 'ann.secret@x.org' ? 'Ann' : 'Bob' });
    for (const m of w.members) assert.deepEqual(Object.keys(m).sort(), ['id', 'name']);
  }
  const join = ann.of('join');
  assert.deepEqual(join.map((f) => f.user), [{ id: uidOf('bob.secret@x.org'), name: 'Bob' }, { id: 'carl-0001', name: 'Carl' }]);
  assert.deepEqual(ann.of('typing')[0].user, { id: uidOf('bob.secret@x.org'), name: 'Bob' });
  assert.deepEqual(ann.of('message').map((f) => f.user.id), [uidOf('bob.secret@x.org'), 'carl-0001']);
  assert.deepEqual(ann.of('leave')[0].user, { id: 'carl-0001', name: 'Carl' });
  assert.deepEqual(bob.frames[0].members.map((m) => m.id), [uidOf('ann.secret@x.org'), uidOf('bob.secret@x.org')]);
  await Promise.all([ann.close(), bob.close()]);
  await sleep(200);
  // the daemon's log names users by id only
  assert.doesNotMatch(chat.d.stderr, /secret@x\.org/);
  assert.match(chat.d.stderr, /connection accepted room=private user=carl-0001/);
});

test('two emails with one uid are one member; one email under two uids are two', async (t) => {
  const chat = await startChat();
  t.after(() => chat.d.stop());
  const tok = (sub, uid) => chat.token({ sub, uid, name: sub, room: 'same' });
  const a = await Client.open(chat.url(tok('a@x.org', 'user-1')));
  // the same user after an email change: still one member (no join), listed once
  const a2 = await Client.open(chat.url(tok('a-new@x.org', 'user-1')));
  assert.equal(a2.frames[0].members.length, 1);
  const b = await Client.open(chat.url(tok('a@x.org', 'user-2')));
  assert.deepEqual(b.frames[0].members.map((m) => m.id), ['user-1', 'user-2']);
  await a.next((f) => f.type === 'join' && f.user.id === 'user-2');
  assert.equal(a.of('join').length, 1);
  await Promise.all([a.close(), a2.close(), b.close()]);
});
