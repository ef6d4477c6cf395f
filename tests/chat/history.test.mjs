// The invariants of the message pipeline (issue 10) against the real parley-chat and a real
// redis-server: one gap-free sequence per room, stored before seen, exactly the missed
// messages on resume, a retry is not a second message, bounded history requests.
// The archive writes to the MongoDB stand-in (tests/lib/mongo.mjs); what is asked for here is
// still in the Redis stream. Tests that look at the outbox point the archive at a closed port.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startChat, Client, metrics, until, sleep, T } from './lib.mjs';
import { startRedis } from '../lib/redis.mjs';

// A generous Redis timeout: under ASan on two busy cores a command can take seconds, and a
// timeout is an outage (the senders get unavailable), which only the outage tests want.
const FAST = { CHAT_RATE_PER_SEC: '100000', CHAT_RATE_BURST: '100000', CHAT_RING_SIZE: '8192',
  CHAT_REDIS_TIMEOUT_MS: '15000' };
const chats = [];
after(async () => { for (const c of chats) await c.d.stop('SIGKILL'); });

async function chatWith(env = {}, opts = {}) {
  const c = await startChat({ ...FAST, ...env }, opts);
  chats.push(c);
  return c;
}

const open = (chat, sub, room, q = '') =>
  Client.open(chat.url(chat.token({ sub, name: sub.split('@')[0], room }), q));

const seqs = (c) => c.of('message').map((m) => m.seq);
const range = (a, b) => Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);

async function stored(redis, rid) {
  const entries = await redis.cmd('XRANGE', `parley:{r${rid}}:stream`, '-', '+');
  return entries.map(([id, fields]) => ({ id, m: fields[1], f: JSON.parse(fields[1]) }));
}

// Sends n messages from c (client_id `${tag}-i`) and waits until c got each of them back.
async function sendAll(c, tag, n) {
  for (let i = 0; i < n; i++) c.send({ type: 'message', text: `${tag} ${i}`, client_id: `${tag}-${i}` });
  for (let i = 0; i < n; i++) await c.next((f) => f.type === 'message' && f.client_id === `${tag}-${i}`);
}

test('one sequence per room: concurrent senders, every client gets the same gap-free seq list', async () => {
  const chat = await chatWith();
  const room = 'seq-room';
  const cs = [];
  for (let i = 0; i < 6; i++) cs.push(await open(chat, `s${i}@x.org`, room));
  const other = await open(chat, 'o@x.org', 'seq-other');
  const N = 40;
  await Promise.all(cs.map((c, i) => sendAll(c, `s${i}`, N)));
  const total = cs.length * N;
  for (const c of cs) await until(() => seqs(c).length >= total, T, 'all messages');
  const want = range(1, total);
  for (const c of cs) assert.deepEqual(seqs(c), want, 'every client: 1..N in order, once each');
  // every client saw the same message under each seq
  const byseq = (c) => c.of('message').map((m) => `${m.seq}:${m.id}:${m.text}`);
  for (const c of cs.slice(1)) assert.deepEqual(byseq(c), byseq(cs[0]));
  // ids are "<rid>-<seq>"
  for (const m of cs[0].of('message')) assert.match(m.id, new RegExp(`^\\d+-${m.seq}$`));
  // another room has its own sequence, starting at 1
  other.send({ type: 'message', text: 'elsewhere' });
  assert.equal((await other.next((f) => f.type === 'message')).seq, 1);
  assert.equal(other.of('message').length, 1, 'nothing of the other room leaked');
});

const NO_ARCHIVE = { CHAT_MONGO_URI: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200' };
function ridOfRoom(chat, room) {
  // the token's rid claim for this room (tests/lib/token.mjs derives it from the name)
  const tok = chat.token({ room });
  return JSON.parse(Buffer.from(tok.split('.')[1], 'base64url')).rid;
}

test('stored before seen: every message a client received is in the room stream, byte for byte', async () => {
  const chat = await chatWith(NO_ARCHIVE);
  // without the archive a room's counter cannot be seeded: the room exists already
  await chat.redis.cmd('SET', `parley:{r${ridOfRoom(chat, 'stored')}}:seq`, '0');
  const a = await open(chat, 'a@x.org', 'stored');
  const raw = [];
  a.ws.on('message', (d) => { const s = d.toString(); if (s.startsWith('{"type":"message"')) raw.push(s); });
  await sendAll(a, 'st', 25);
  const rid = await stored(chat.redis, ridOfRoom(chat, 'stored'));
  assert.deepEqual(rid.map((e) => e.m), raw, 'the stream holds exactly the bytes clients got');
  assert.deepEqual(rid.map((e) => e.id), range(1, 25).map((s) => `${s}-1`), 'entry id is <seq>-1');
  const outbox = await chat.redis.cmd('XLEN', 'parley:outbox');
  assert.equal(outbox, 25, 'and one archive outbox entry per message');
});


test('a fresh joiner gets welcome.last_seq and the last 50 messages in order; paging back reaches seq 1', async () => {
  const chat = await chatWith();
  const room = 'paging';
  const w = await open(chat, 'w@x.org', room);
  await sendAll(w, 'p', 300);
  const j = new Client(chat.url(chat.token({ sub: 'j@x.org', name: 'j', room })));
  await j.opened;
  const welcome = await j.next((f) => f.type === 'welcome');
  assert.equal(welcome.last_seq, 300);
  const h = await j.next((f) => f.type === 'history');
  assert.deepEqual(j.frames.slice(0, 2).map((f) => f.type), ['welcome', 'history'], 'history right after welcome');
  assert.deepEqual(h.messages.map((m) => m.seq), range(251, 300));
  assert.deepEqual(h.messages.map((m) => m.text), range(250, 299).map((i) => `p ${i}`));
  assert.equal(h.more, true);
  // page back with before until more is false: every seq exactly once
  const got = [...h.messages];
  let before = h.messages[0].seq, pages = 0;
  for (;;) {
    j.send({ type: 'history', before, limit: 100 });
    const p = await j.next((f) => f.type === 'history' && f.before === before);
    pages++;
    got.unshift(...p.messages);
    if (!p.more) break;
    before = p.messages[0].seq;
  }
  assert.equal(pages, 3);
  assert.deepEqual(got.map((m) => m.seq), range(1, 300));
  // after: forwards, more says whether there is more
  j.send({ type: 'history', after: 290, limit: 5 });
  const a1 = await j.next((f) => f.type === 'history' && f.after === 290);
  assert.deepEqual([a1.messages.map((m) => m.seq), a1.more], [range(291, 295), true]);
  j.send({ type: 'history', after: 295, limit: 100 });
  const a2 = await j.next((f) => f.type === 'history' && f.after === 295);
  assert.deepEqual([a2.messages.map((m) => m.seq), a2.more], [range(296, 300), false]);
  j.send({ type: 'history', before: 1 });
  const b1 = await j.next((f) => f.type === 'history' && f.before === 1);
  assert.deepEqual([b1.messages, b1.more], [[], false]);
  // an empty room: last_seq 0, an empty history
  const e = new Client(chat.url(chat.token({ sub: 'e@x.org', name: 'e', room: 'empty-room' })));
  await e.opened;
  assert.equal((await e.next((f) => f.type === 'welcome')).last_seq, 0);
  assert.deepEqual(await e.next((f) => f.type === 'history'), { type: 'history', messages: [], more: false, __used: true });
});

// A crowd joining a room that is new on this daemon (issue 10, found by make bench: 1000
// joins each read 50 messages from Redis over the command connection, and the publishes
// behind them waited 1-2 s). The room's latest messages are read once and kept up by every
// delivery; joiners and short resumes are served from them, exactly as Redis holds them.
test('a crowd joining a busy room costs one read: everyone gets the same last 50, then live ones, gap-free', async () => {
  const redis = await startRedis();
  const a = await chatWith({}, { redis });
  const b = await chatWith({}, { redis, secret: a.secret });
  const room = 'crowd';
  const s = await open(b, 's@x.org', room);
  await sendAll(s, 'a', 120);
  const xranges = async () => Number(/cmdstat_xrange:calls=(\d+)/.exec(await redis.cmd('INFO', 'commandstats'))?.[1] || 0);
  const before = await xranges();
  const m0 = await metrics(a.port);
  const crowd = await Promise.all(range(1, 40).map((i) => open(a, `c${i}@x.org`, room)));
  assert.equal(await xranges() - before, 1, 'one XRANGE for 40 joiners');
  const m1 = await metrics(a.port);
  assert.equal(m1.chat_history_from_memory_total - m0.chat_history_from_memory_total, 40);
  const want = (await stored(redis, ridOfRoom(a, room))).slice(-50).map((e) => e.m);
  for (const c of crowd) {
    assert.equal(c.of('welcome')[0].last_seq, 120);
    const h = await c.next((f) => f.type === 'history');
    assert.deepEqual(h.messages.map((m) => m.seq), range(71, 120));
    assert.deepEqual(h.messages.map((m) => JSON.stringify(m)), want.map((m) => JSON.stringify(JSON.parse(m))), 'the stored frames');
    assert.equal(h.more, true);
  }
  // live messages keep the window going: joiners and resumes while messages flow
  let stop = false, i = 0;
  const pump = (async () => { while (!stop) { s.send({ type: 'message', text: `b${i}`, client_id: `b${i++}` }); await sleep(3); } })();
  const late = [];
  for (let k = 0; k < 8; k++) {
    late.push(await open(a, `l${k}@x.org`, room));
    await sleep(40);
  }
  const resumed = await Promise.all([30, 5].map(async (back) => {
    const last = crowd[0].of('message').at(-1)?.seq ?? 120;
    const c = new Client(a.url(a.token({ sub: `r${back}@x.org`, name: 'r', room }), `&since=${last - back}`));
    await c.opened;
    return { c, since: last - back };
  }));
  await sleep(200);
  stop = true;
  await pump;
  await until(() => seqs(s).length >= 120 + i, T, 'the sender got all');
  const top = 120 + i;
  for (const c of [...crowd, ...late]) {
    await until(() => seqs(c).at(-1) === top, T, 'every joiner got the last one');
    const w = c.of('welcome')[0], h = c.of('history')[0];
    assert.deepEqual(h.messages.map((m) => m.seq), range(Math.max(1, w.last_seq - 49), w.last_seq), 'history: the last 50 at joining');
    assert.deepEqual(seqs(c), range(w.last_seq + 1, top), 'then every later one once, in order');
  }
  for (const { c, since } of resumed) {
    await until(() => seqs(c).at(-1) === top, T, 'resumed got the last one');
    const h = c.of('history')[0];
    assert.deepEqual([...h.messages.map((m) => m.seq), ...seqs(c)], range(since + 1, top), `resume since ${since}: exactly the missed ones`);
  }
  const m2 = await metrics(a.port);
  assert.ok(m2.chat_history_from_memory_total - m1.chat_history_from_memory_total >= 8, 'late joiners from the window too');
  // a resume older than the window reads Redis and gets the same
  const old = new Client(a.url(a.token({ sub: 'o@x.org', name: 'o', room }), '&since=10'));
  await old.opened;
  const oh = await old.next((f) => f.type === 'history');
  assert.deepEqual(oh.messages.map((m) => m.seq), range(11, top));
});

test('resume with since gets exactly the missed messages, then live ones', async () => {
  const chat = await chatWith();
  const room = 'resume';
  const s = await open(chat, 's@x.org', room);
  const r = await open(chat, 'r@x.org', room);
  await sendAll(s, 'a', 10);
  await until(() => seqs(r).length === 10, T, 'r got 10');
  const last = seqs(r).at(-1);
  await r.close();
  await sendAll(s, 'b', 7);
  const back = new Client(chat.url(chat.token({ sub: 'r@x.org', name: 'r', room }), `&since=${last}`));
  await back.opened;
  assert.equal((await back.next((f) => f.type === 'welcome')).last_seq, 17);
  const h = await back.next((f) => f.type === 'history');
  assert.deepEqual(h.messages.map((m) => m.seq), range(11, 17));
  assert.equal(h.more, false);
  await sendAll(s, 'c', 3);
  await until(() => seqs(back).length === 3, T, 'live after resume');
  assert.deepEqual(seqs(back), range(18, 20), 'live continues at last_seq + 1');
  // since beyond the resume cap: 500 now, more = true, the rest with after
  await sendAll(s, 'd', 600);
  const far = new Client(chat.url(chat.token({ sub: 'f@x.org', name: 'f', room }), '&since=5'));
  await far.opened;
  const fh = await far.next((f) => f.type === 'history');
  assert.deepEqual([fh.messages[0].seq, fh.messages.length, fh.more], [6, 500, true]);
  far.send({ type: 'history', after: 505, limit: 100 });
  const fa = await far.next((f) => f.type === 'history' && f.after === 505);
  assert.equal(fa.messages[0].seq, 506);
});

test('a resume while messages are being published misses none and repeats none', async () => {
  const chat = await chatWith();
  const room = 'resume-live';
  const s = await open(chat, 's@x.org', room);
  let stop = false, i = 0;
  const pump = (async () => {
    while (!stop) { s.send({ type: 'message', text: `x${i}`, client_id: `x${i++}` }); await sleep(2); }
  })();
  await sleep(200);
  const seen = [];
  for (let round = 0; round < 5; round++) {
    const since = seen.length ? seen.at(-1) : 0;
    const c = new Client(chat.url(chat.token({ sub: 'c@x.org', name: 'c', room }), `&since=${since}`));
    await c.opened;
    const h = await c.next((f) => f.type === 'history');
    seen.push(...h.messages.map((m) => m.seq));
    await sleep(100 + round * 37);
    c.ws.terminate();
    await c.closed;
    seen.push(...seqs(c));
  }
  stop = true;
  await pump;
  assert.deepEqual(seen, range(1, seen.length), 'gap-free and without duplicates across 5 resumes');
  assert.ok(seen.length > 50);
});

test('20 concurrent retries of one client_id store one message; the sender gets it back each time', async () => {
  const chat = await chatWith();
  const room = 'retries';
  const tabs = [];
  for (let i = 0; i < 4; i++) tabs.push(await open(chat, 'same@x.org', room));
  const watcher = await open(chat, 'w@x.org', room);
  for (let i = 0; i < 20; i++) tabs[i % 4].send({ type: 'message', text: 'once', client_id: 'retry-1' });
  // every attempt is answered with the same stored message (seq and id)
  const answers = [];
  for (let i = 0; i < 20; i++) answers.push(await tabs[i % 4].next((f) => f.type === 'message' && f.client_id === 'retry-1'));
  assert.equal(new Set(answers.map((a) => `${a.seq}/${a.id}/${a.ts}`)).size, 1);
  watcher.send({ type: 'message', text: 'marker' });
  await watcher.next((f) => f.text === 'marker');
  assert.deepEqual(watcher.of('message').map((m) => m.text), ['once', 'marker'], 'broadcast once');
  const st = await stored(chat.redis, ridOfRoom(chat, room));
  assert.deepEqual(st.map((e) => e.f.text), ['once', 'marker'], 'stored once');
  assert.equal((await metrics(chat.port)).chat_messages_duplicate_total, 19);
  // the same client_id from another user, or in another room, is another message
  watcher.send({ type: 'message', text: 'mine', client_id: 'retry-1' });
  assert.equal((await watcher.next((f) => f.text === 'mine')).seq, 3);
});

test('hostile history requests get bad_request and the connection stays', async () => {
  const chat = await chatWith();
  const c = await open(chat, 'h@x.org', 'hostile');
  const bad = [
    { before: -1 }, { before: 0 }, { after: -1 }, { before: 1.5 }, { after: 1e300 },
    { before: 9007199254740993 }, { after: '5' }, { before: null }, { before: [1] }, { before: { a: 1 } },
    { before: 5, after: 3 }, {}, { before: 5, limit: 0 }, { before: 5, limit: 101 },
    { after: 0, limit: -5 }, { after: 0, limit: 2.5 }, { after: 0, limit: '10' }, { before: true },
  ];
  for (const b of bad) {
    c.send({ type: 'history', ...b });
    const e = await c.next((f) => f.type === 'error');
    assert.equal(e.code, 'bad_request', JSON.stringify(b));
  }
  c.send('{"type":"history","before":12345678901234567890123}');
  assert.equal((await c.next((f) => f.type === 'error')).code, 'bad_request');
  c.send({ type: 'history', after: 0, limit: 100 });
  const ok = await c.next((f) => f.type === 'history' && f.after === 0);
  assert.deepEqual(ok.messages, []);
  c.send({ type: 'message', text: 'still here' });
  assert.equal((await c.next((f) => f.type === 'message')).seq, 1);
  // the handshake's since: a decimal integer 0..2^53-1, else 400 before the upgrade
  for (const q of ['-1', '1.5', 'abc', '9007199254740992', '1e3', '', '00000000000000001', '%2B1']) {
    const x = new Client(chat.url(chat.token({ sub: 'q@x.org', name: 'q', room: 'hostile' }), `&since=${q}`));
    await assert.rejects(x.opened, (err) => err.status === 400, `since=${q}`);
  }
  const okSince = new Client(chat.url(chat.token({ sub: 'q@x.org', name: 'q', room: 'hostile' }), '&since=9007199254740991'));
  await okSince.opened;
  assert.deepEqual((await okSince.next((f) => f.type === 'history')).messages, []);
});

test('a full archive outbox refuses messages with unavailable; nothing is dropped', async () => {
  const chat = await chatWith({ CHAT_OUTBOX_MAX: '1000', ...NO_ARCHIVE });
  for (let i = 0; i < 1000; i += 100) {
    const args = [];
    for (let k = 0; k < 100; k++) args.push(['XADD', 'parley:outbox', '*', 'rid', '1', 'seq', String(i + k), 'm', '{}']);
    await Promise.all(args.map((a) => chat.redis.cmd(...a)));
  }
  await chat.redis.cmd('SET', `parley:{r${ridOfRoom(chat, 'outbox')}}:seq`, '0');
  const c = await open(chat, 'u@x.org', 'outbox');
  c.send({ type: 'message', text: 'nope', client_id: 'full-1' });
  const e = await c.next((f) => f.type === 'error');
  assert.deepEqual([e.code, e.client_id], ['unavailable', 'full-1']);
  // the archive drains it: the retry is stored
  await chat.redis.cmd('XTRIM', 'parley:outbox', 'MAXLEN', '0');
  c.send({ type: 'message', text: 'nope', client_id: 'full-1' });
  const m = await c.next((f) => f.type === 'message');
  assert.deepEqual([m.seq, m.client_id], [1, 'full-1']);
  assert.equal((await metrics(chat.port)).chat_messages_unavailable_total, 1);
});

test('a dropped subscriber connection (CLIENT KILL TYPE pubsub) loses and repeats nothing', async () => {
  const chat = await chatWith();
  const room = 'pubsub-kill';
  const cs = [];
  for (let i = 0; i < 3; i++) cs.push(await open(chat, `k${i}@x.org`, room));
  let stop = false, n = 0;
  const pump = (async () => {
    while (!stop) { cs[n % 3].send({ type: 'message', text: `k${n}`, client_id: `k${n}` }); n++; await sleep(1); }
  })();
  for (let k = 0; k < 3; k++) {
    await sleep(150);
    await chat.redis.cmd('CLIENT', 'KILL', 'TYPE', 'pubsub');
  }
  await sleep(150);
  stop = true;
  await pump;
  for (const c of cs) await until(() => seqs(c).length >= n, T, `all ${n} messages`);
  for (const c of cs) assert.deepEqual(seqs(c), range(1, n));
  const m = await metrics(chat.port);
  assert.ok(m['chat_redis_reconnects_total{conn="subscriber"}'] >= 3, 'the subscriber was dropped and came back');
});

test('Redis paused for 10 s: senders get unavailable, connections stay, then everything works with no seq skipped or repeated', async () => {
  const chat = await chatWith({ CHAT_REDIS_TIMEOUT_MS: '500' });
  const room = 'redis-pause';
  const a = await open(chat, 'a@x.org', room);
  const b = await open(chat, 'b@x.org', room);
  await sendAll(a, 'pre', 5);
  chat.redis.pause();
  try {
    await sleep(300);
    const refused = [];
    for (let i = 0; i < 5; i++) {
      a.send({ type: 'message', text: `during ${i}`, client_id: `during-${i}` });
      refused.push(await a.next((f) => f.type === 'error' && f.client_id === `during-${i}`));
    }
    assert.deepEqual(refused.map((e) => e.code), Array(5).fill('unavailable'));
    // new connections are refused while messages cannot be stored
    await until(async () => (await metrics(chat.port)).chat_redis_up === 0, T, 'redis down');
    const x = new Client(chat.url(chat.token({ sub: 'x@x.org', name: 'x', room })));
    await assert.rejects(x.opened, (e) => e.status === 503);
    await sleep(9000);
  } finally {
    chat.redis.resume();
  }
  await until(async () => { const m = await metrics(chat.port); return m.chat_redis_up === 1 && m.chat_redis_subscriber_up === 1; }, T, 'redis back');
  assert.equal(a.ws.readyState, 1, 'connections stayed');
  assert.equal(b.ws.readyState, 1);
  // the client resends what was refused (same client_id), as the page does
  for (let i = 0; i < 5; i++) a.send({ type: 'message', text: `during ${i}`, client_id: `during-${i}` });
  for (let i = 0; i < 5; i++) await a.next((f) => f.type === 'message' && f.client_id === `during-${i}`);
  await sendAll(b, 'post', 5);
  await until(() => seqs(b).length >= 15 && new Set(seqs(a)).size >= 15, T, '15 messages');
  assert.deepEqual(seqs(b), range(1, 15), 'a reader: every seq once, in order');
  // the sender may also get a stored frame again as the answer to its retry (when the refused
  // attempt had reached Redis after all): the same seq and id, and only for a retried client_id
  const first = new Map();
  for (const m of a.of('message')) {
    if (first.has(m.seq)) {
      assert.match(m.client_id, /^during-/);
      assert.deepEqual(first.get(m.seq), m.id);
    } else first.set(m.seq, m.id);
  }
  assert.deepEqual([...first.keys()], range(1, 15));
  const texts = b.of('message').map((m) => m.text);
  assert.equal(new Set(texts).size, 15, 'each refused message stored exactly once');
});

test('Redis restarted (stop + start, AOF): sequence continues, subscribers resubscribe', async () => {
  const redis = await startRedis({ aof: true });
  const chat = await chatWith({ CHAT_REDIS_TIMEOUT_MS: '500' }, { redis });
  const room = 'redis-restart';
  const a = await open(chat, 'a@x.org', room);
  const b = await open(chat, 'b@x.org', room);
  await sendAll(a, 'one', 5);
  await redis.stop();
  a.send({ type: 'message', text: 'while down', client_id: 'down-1' });
  assert.equal((await a.next((f) => f.type === 'error')).code, 'unavailable');
  await redis.start();
  await until(async () => (await metrics(chat.port)).chat_redis_up === 1, T, 'redis back');
  await until(async () => (await metrics(chat.port)).chat_redis_subscriber_up === 1, T, 'subscriber back');
  a.send({ type: 'message', text: 'while down', client_id: 'down-1' });
  await a.next((f) => f.type === 'message' && f.client_id === 'down-1');
  await sendAll(b, 'two', 4);
  await until(() => seqs(a).length >= 10, T, '10 messages');
  assert.deepEqual(seqs(a), range(1, 10));
  assert.deepEqual(seqs(b), range(1, 10));
  await chat.d.stop();
  await redis.cleanup();
});

test('kill -9 of the chat daemon mid-stream: history holds every message anyone saw, gap-free, and resume works', async () => {
  const redis = await startRedis({ aof: true });
  const first = await chatWith({}, { redis });
  const { port, secret } = first;
  const room = 'crash';
  const mk = (chat, sub, q = '') => new Client(chat.url(chat.token({ sub, name: sub.split('@')[0], room }), q));
  const open2 = async (chat, sub, q) => { const c = mk(chat, sub, q); await c.opened; return c; };
  const senders = [await open2(first, 's1@x.org'), await open2(first, 's2@x.org')];
  const reader = await open2(first, 'r@x.org');
  const sent = [];
  let stop = false;
  const pumps = senders.map((s, k) => (async () => {
    for (let i = 0; !stop; i++) {
      const cid = `c${k}-${i}`;
      sent.push({ cid, text: `from ${k}: ${i}` });
      s.send({ type: 'message', text: `from ${k}: ${i}`, client_id: cid });
      await sleep(3);
    }
  })());
  await sleep(400);
  first.d.child.kill('SIGKILL');
  await first.d.exited;
  stop = true;
  await Promise.all(pumps);
  const seenBefore = seqs(reader);
  const seenFrames = reader.of('message');
  assert.ok(seenBefore.length > 10);
  // restart on the same port with the same Redis (make run's supervisor does the same)
  const second = await chatWith({}, { redis, port, secret });
  // the reader resumes from the last seq it has
  const back = await open2(second, 'r@x.org', `&since=${seenBefore.at(-1)}`);
  const h = await back.next((f) => f.type === 'history');
  // each sender resends everything it has no confirmation for (same client_ids, same user)
  const confirmed = new Set(seenFrames.map((m) => m.client_id));
  for (let k = 0; k < 2; k++) {
    const s = await open2(second, `s${k + 1}@x.org`);
    const pending = sent.filter((m) => m.cid.startsWith(`c${k}-`) && !confirmed.has(m.cid));
    for (const m of pending) s.send({ type: 'message', text: m.text, client_id: m.cid });
    for (const m of pending) await s.next((f) => f.type === 'message' && f.client_id === m.cid);
  }
  const all = await stored(redis, ridOfRoom(second, room));
  const n = all.length;
  assert.deepEqual(all.map((e) => e.f.seq), range(1, n), 'stored seqs are gap-free');
  // every message the reader saw before the crash is stored with the same bytes
  for (const m of seenFrames) {
    const s = all[m.seq - 1].f;
    assert.deepEqual([s.id, s.text, s.user, s.ts, s.client_id], [m.id, m.text, m.user, m.ts, m.client_id]);
  }
  // exactly once per client_id
  assert.equal(new Set(all.map((e) => e.f.client_id)).size, n, 'no client_id stored twice');
  assert.equal(n, sent.length, 'every message sent is stored once');
  // the resumed reader has everything exactly once, in order
  await until(() => h.messages.length + seqs(back).length >= n - seenBefore.length, T, 'resumed reader complete');
  assert.deepEqual([...seenBefore, ...h.messages.map((m) => m.seq), ...seqs(back)], range(1, n));
  await second.d.stop();
  await redis.cleanup();
});

test('Redis loses a room (counter and stream): the counter is reseeded from the archive, history comes from it, no seq is reused', async () => {
  const chat = await chatWith();
  const room = 'lost-room';
  const rid = ridOfRoom(chat, room);
  const a = await open(chat, 'a@x.org', room);
  await sendAll(a, 'old', 5);
  // the archive (MongoDB stand-in) has them all
  await until(async () => (await metrics(chat.port)).chat_archive_archived_total >= 5, T, 'archived');
  await a.close();
  await until(async () => (await metrics(chat.port)).chat_rooms === 0, T, 'room freed');
  await chat.redis.cmd('DEL', `parley:{r${rid}}:seq`, `parley:{r${rid}}:stream`);
  const b = new Client(chat.url(chat.token({ sub: 'b@x.org', name: 'b', room })));
  await b.opened;
  assert.equal((await b.next((f) => f.type === 'welcome')).last_seq, 5, 'last_seq from the archive');
  const h = await b.next((f) => f.type === 'history');
  assert.deepEqual(h.messages.map((m) => [m.seq, m.text]), range(1, 5).map((s) => [s, `old ${s - 1}`]));
  b.send({ type: 'message', text: 'new', client_id: 'new-1' });
  assert.equal((await b.next((f) => f.type === 'message')).seq, 6, 'the sequence continues');
  assert.ok((await metrics(chat.port)).chat_seq_reseeds_total >= 1);
});

test('paging and resuming past the Redis stream window read the archive: seq 1..N, once each, in order', async () => {
  const chat = await chatWith({ CHAT_STREAM_LEN: '100' });
  const room = 'window';
  const rid = ridOfRoom(chat, room);
  const w = await open(chat, 'w@x.org', room);
  await sendAll(w, 'p', 600);
  const first = (await chat.redis.cmd('XRANGE', `parley:{r${rid}}:stream`, '-', '+', 'COUNT', '1'))[0][0];
  assert.ok(Number(first.split('-')[0]) > 100, `the stream was trimmed (first entry ${first})`);
  await until(async () => (await metrics(chat.port)).chat_archive_archived_total >= 600, T, 'archived');
  const reads0 = (await metrics(chat.port)).chat_history_archive_reads_total;
  const j = await open(chat, 'j@x.org', room);
  const h = j.of('history')[0] || await j.next((f) => f.type === 'history');
  const got = [...h.messages];
  let before = h.messages[0].seq;
  for (;;) {
    j.send({ type: 'history', before, limit: 100 });
    const p = await j.next((f) => f.type === 'history' && f.before === before);
    got.unshift(...p.messages);
    if (!p.more) break;
    before = p.messages[0].seq;
  }
  assert.deepEqual(got.map((m) => m.seq), range(1, 600));
  assert.deepEqual(got.map((m) => m.text), range(0, 599).map((i) => `p ${i}`));
  // a resume from far back: the first 500 after since, partly from the archive
  const r = new Client(chat.url(chat.token({ sub: 'r@x.org', name: 'r', room }), 'since=10'));
  await r.opened;
  const rh = await r.next((f) => f.type === 'history');
  assert.deepEqual([rh.messages.map((m) => m.seq), rh.more], [range(11, 510), true]);
  assert.ok((await metrics(chat.port)).chat_history_archive_reads_total > reads0, 'the archive was read');
});

test('a deleted room (the archive set its tombstone) refuses messages: room_deleted, then close', async () => {
  const chat = await chatWith();
  const room = 'doomed';
  const a = await open(chat, 'a@x.org', room);
  await sendAll(a, 'x', 2);
  await chat.redis.cmd('SET', `parley:{r${ridOfRoom(chat, room)}}:deleted`, '1');
  a.send({ type: 'message', text: 'after', client_id: 'after-1' });
  const e = await a.next((f) => f.type === 'error');
  assert.deepEqual([e.code, e.client_id], ['room_deleted', 'after-1']);
  assert.equal((await a.closed).code, 1000);
});
