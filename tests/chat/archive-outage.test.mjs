// Issue 10: "MongoDB stopped for 10 s". Black-box through the real parley-chat and a real
// redis-server. The archive here is the MongoDB stand-in (scripts/mongo-standin via
// tests/lib/mongo.mjs), NOT mongod: Debian has no MongoDB server package. The stand-in does
// not enforce unique indexes, so a writer that inserted a message twice would leave two
// documents: the checks below read the archive collection itself and would see them.
//
// While the archive is gone, messages keep flowing (they are stored in Redis and fanned out
// from there; the archive's writer drains the outbox later); once it is back, the archive
// holds every message exactly once: seq 1..N, no gap, no duplicate, the exact frames clients got.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChat, Client, metrics, until, sleep, T } from './lib.mjs';
import { startMongo } from '../lib/mongo.mjs';
import { ROOT } from '../lib/proc.mjs';

// bson comes with the stand-in (scripts/mongo-standin/node_modules, installed by install-deps).
const { BSON } = createRequire(join(ROOT, 'scripts', 'mongo-standin', 'package.json'))('bson');

const OUTAGE_MS = 10000;
const FAST = { CHAT_RATE_PER_SEC: '100000', CHAT_RATE_BURST: '100000', CHAT_RING_SIZE: '8192' };
const cleanups = [];
after(async () => { for (const f of cleanups.reverse()) await f(); });

// One MongoDB command over the wire (OP_MSG, opcode 2013, MongoDB wire protocol "OP_MSG"),
// resolves with the reply document. Enough for find/getMore; a test helper, not a driver.
let requestId = 1;
function mongoCommand(port, doc, timeout = T) {
  return new Promise((resolve, reject) => {
    const body = BSON.serialize(doc);
    const head = Buffer.alloc(21);
    head.writeInt32LE(21 + body.length, 0);
    head.writeInt32LE(requestId++, 4);
    head.writeInt32LE(0, 8);
    head.writeInt32LE(2013, 12);
    head.writeUInt32LE(0, 16); // flagBits
    head.writeUInt8(0, 20); // section kind 0: the command document
    const s = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => { s.destroy(); reject(new Error(`mongo ${Object.keys(doc)[0]}: no reply`)); }, timeout);
    s.on('error', (e) => { clearTimeout(t); reject(e); });
    s.on('connect', () => s.write(Buffer.concat([head, body])));
    s.on('data', (b) => {
      buf = Buffer.concat([buf, b]);
      if (buf.length < 4 || buf.length < buf.readInt32LE(0)) return;
      clearTimeout(t);
      s.destroy();
      // header 16 bytes, flagBits 4, section kind 1 byte, then the document
      resolve(BSON.deserialize(buf.subarray(21, buf.readInt32LE(0)), { promoteLongs: true }));
    });
  });
}

// Every document of a room in the archive (db.messages.find({rid}) with all its batches).
async function archived(port, db, rid) {
  const r = await mongoCommand(port, { find: 'messages', filter: { rid }, batchSize: 100000, $db: db });
  assert.equal(r.ok, 1, `find: ${JSON.stringify(r)}`);
  const docs = [...r.cursor.firstBatch];
  let id = r.cursor.id;
  while (id && Number(id) !== 0) {
    const m = await mongoCommand(port, { getMore: id, collection: 'messages', batchSize: 100000, $db: db });
    assert.equal(m.ok, 1, `getMore: ${JSON.stringify(m)}`);
    docs.push(...m.cursor.nextBatch);
    id = m.cursor.id;
  }
  return docs;
}

const ridOfRoom = (chat, room) => JSON.parse(Buffer.from(chat.token({ room }).split('.')[1], 'base64url')).rid;
const range = (a, b) => Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);
const open = (chat, sub, room) => Client.open(chat.url(chat.token({ sub, name: sub.split('@')[0], room })));

// Starts a stand-in (file storage in a temp dir when asked) and a chat daemon archiving to it.
async function setup(storage) {
  const dir = storage ? mkdtempSync(join(tmpdir(), 'parley-archive-outage-')) : undefined;
  const mongo = await startMongo({ storage: dir });
  const db = 'outage';
  // a short server selection timeout: the writer notices the outage within a second
  const chat = await startChat({ ...FAST, CHAT_MONGO_DB: db,
    CHAT_MONGO_URI: `mongodb://127.0.0.1:${mongo.port}/?appname=parley-test&serverSelectionTimeoutMS=1000` });
  cleanups.push(async () => {
    try { mongo.child.kill('SIGCONT'); } catch { /* gone */ }
    await chat.d.stop('SIGKILL');
    await mongo.stop('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return { mongo, chat, db };
}

// Two members of one room; `a` sends `n` messages tagged `tag`, paced over `ms`, and both
// members must receive each of them (seq order, once each) before this returns.
async function talk(a, b, tag, n, ms) {
  for (let i = 0; i < n; i++) {
    a.send({ type: 'message', text: `${tag} ${i}`, client_id: `${tag}-${i}` });
    await sleep(ms / n);
  }
  for (const c of [a, b]) {
    await until(() => c.of('message').filter((m) => m.text.startsWith(`${tag} `)).length >= n, T, `${tag}: all delivered`);
  }
}

// What the archive must hold after the outage: seq 1..n once each, each document's frame
// byte for byte what the clients got (compared by seq), text and client_id as sent.
async function checkArchive(mongo, db, rid, frames) {
  const n = frames.length;
  const docs = await archived(mongo.port, db, rid);
  const seqs = docs.map((d) => Number(d.seq)).sort((x, y) => x - y);
  const dups = seqs.filter((s, i) => i > 0 && s === seqs[i - 1]);
  assert.deepEqual(dups, [], 'no message archived twice');
  assert.deepEqual(seqs, range(1, n), 'every message archived: seq 1..N, no gap');
  const bySeq = new Map(docs.map((d) => [Number(d.seq), d]));
  for (const f of frames) {
    const d = bySeq.get(f.seq);
    assert.equal(d.frame, f.raw, `seq ${f.seq}: the archived frame is the one clients got`);
    assert.equal(d.text, f.text);
    assert.equal(d.client_id, f.client_id);
  }
}

// The raw frames of the `message` type a client got, with their parsed seq/text/client_id.
function recordRaw(c) {
  const raw = [];
  c.ws.on('message', (d) => {
    const s = d.toString();
    if (s.startsWith('{"type":"message"')) { const f = JSON.parse(s); raw.push({ raw: s, seq: f.seq, text: f.text, client_id: f.client_id }); }
  });
  return raw;
}

for (const mode of ['stopped (SIGSTOP)', 'killed and restarted on the same port and data']) {
  test(`MongoDB (the stand-in) ${mode} for 10 s: messages keep flowing, the archive catches up once, no gap, no duplicate`, async () => {
    const restart = mode.startsWith('killed');
    const { mongo, chat, db } = await setup(restart);
    const room = 'outage';
    const rid = ridOfRoom(chat, room);
    const a = await open(chat, 'a@x.org', room);
    const b = await open(chat, 'b@x.org', room);
    const raw = recordRaw(b);
    // before: the room exists and its first messages are archived
    await talk(a, b, 'before', 10, 200);
    await until(async () => (await metrics(chat.port)).chat_archive_archived_total >= 10, T, 'archived before the outage');
    // the outage: SIGSTOP (connections hang), or SIGKILL (connections refused; the stand-in
    // writes its file storage on every write) and a restart on the same port and storage
    // 10 s later. (Not SIGTERM: the stand-in's stop waits for its clients to hang up, and the
    // daemon's driver keeps its connections.)
    if (restart) await mongo.stop('SIGKILL');
    else mongo.child.kill('SIGSTOP');
    const t0 = Date.now();
    // 60 messages spread over the outage: each one reaches both members while the archive is down
    await talk(a, b, 'during', 60, OUTAGE_MS - 2000);
    const m1 = await metrics(chat.port);
    const outbox = await chat.redis.cmd('XLEN', 'parley:outbox');
    assert.ok(m1.chat_archive_archived_total < 70,
      `the outage was real: not everything archived while it lasted (${m1.chat_archive_archived_total})`);
    assert.ok(outbox > 0, 'the outbox holds what waits for the archive');
    // no sender was told `unavailable`: the outbox bound is far away
    assert.deepEqual(a.of('error'), [], 'no error while the archive is away');
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - t0)));
    if (restart) await mongo.start();
    else mongo.child.kill('SIGCONT');
    // after: live traffic goes on, and the archive catches up
    await talk(a, b, 'after', 10, 200);
    await until(async () => Number(await chat.redis.cmd('XLEN', 'parley:outbox')) === 0, T * 2, 'outbox drained');
    await until(async () => (await metrics(chat.port)).chat_archive_archived_total >= 80, T, 'all archived');
    // every client saw 1..80 in order, once each
    for (const c of [a, b]) assert.deepEqual(c.of('message').map((m) => m.seq), range(1, 80), 'clients: seq 1..80');
    await checkArchive(mongo, db, rid, raw);
    assert.equal(raw.length, 80);
    assert.deepEqual(await chat.redis.cmd('XLEN', 'parley:outbox:dead'), 0, 'nothing given up on');
  });
}
