// A MongoDB stand-in for machines without mongod (Debian has no server package): the
// wire-compatible CongoServer of @push.rocks/smartmongo, which libmongoc 1.23 talks to.
// It is NOT MongoDB: it accepts duplicate keys under a unique index, its sort is not
// stable among equal keys, and it stores only ObjectId _ids (a string _id is refused), so
// Parley's code relies on none of these (writes are upserts on the natural key).
//
//   node server.mjs --port 27017 [--host 127.0.0.1] [--storage DIR]
//
// Without --storage the data lives in memory. Prints "mongo-standin listening on HOST:PORT"
// once it accepts connections; SIGTERM/SIGINT stop it (file storage is flushed first).
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { congodb } from '@push.rocks/smartmongo';

// Two fixes of the package, so that concurrent clients cannot lose data (seen with the chat
// archive's writer and deleter, two connections): its file storage rewrites a collection's
// JSON file in place (a reader that comes in meanwhile parses a partial file as empty, and a
// write based on that drops every document), and its commands interleave at every await (two
// read-modify-writes of one file lose one). So: commands run one at a time (as under a global
// lock), and files are replaced atomically (write a temporary file, then rename).
const route = congodb.CommandRouter.prototype.route;
let queue = Promise.resolve();
// And the awaitable hello of MongoDB 4.4+ (the SDAM spec's streaming protocol, which
// libmongoc 1.23 uses): a driver that has a server's topologyVersion sends hello with it and
// maxAwaitTimeMS, and the server answers when its topology changes or maxAwaitTimeMS has
// passed. The package answers at once, with a new processId every time, so libmongoc's monitor
// asked again at once: a busy loop costing ~30% of a core per client process, idle. The
// stand-in's topology never changes: one topologyVersion for the process, and the answer
// waits maxAwaitTimeMS (at most 10 s), outside the command queue (hello touches no data).
const TOPOLOGY = { processId: new congodb.ObjectId(), counter: congodb.Long.fromNumber(0) };
const HELLO = new Set(['hello', 'isMaster', 'ismaster']);
congodb.CommandRouter.prototype.route = function (command) {
  if (HELLO.has(command.commandName)) {
    const c = command.command || {};
    const wait = c.topologyVersion && c.maxAwaitTimeMS !== undefined
      ? Math.min(Math.max(Number(c.maxAwaitTimeMS) || 0, 0), 10000) : 0;
    return new Promise((res) => setTimeout(res, wait).unref())
      .then(() => route.call(this, command))
      .then((r) => (r && r.ok ? { ...r, topologyVersion: TOPOLOGY } : r));
  }
  const run = queue.then(() => route.call(this, command));
  queue = run.catch(() => {});
  return run;
};
// And one speed-up: every update and delete first filters the whole collection through mingo
// (about 5 ms per operation at 7000 documents, so ~200 upserts/s). A filter of plain
// equalities on top-level fields ({rid: 17, seq: 5}, the archive's upsert key) is decided by
// direct comparison, with MongoDB's meaning: equal scalars, or an array field containing the
// value (left to mingo). Anything else (operators, dotted paths, null, objects) goes to mingo.
const slowFilter = congodb.QueryEngine.filter;
const scalar = (v) => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean';
congodb.QueryEngine.filter = function (documents, filter) {
  const keys = filter ? Object.keys(filter) : [];
  if (keys.length === 0 || keys.some((k) => k.startsWith('$') || k.includes('.') || !scalar(filter[k])))
    return slowFilter.call(this, documents, filter);
  return documents.filter((doc) => keys.every((k) => {
    const d = doc[k];
    return Array.isArray(d) ? congodb.QueryEngine.matches(doc, { [k]: filter[k] }) : d === filter[k];
  }));
};
congodb.FileStorageAdapter.prototype.writeJsonFile = async function (filePath, data) {
  await mkdir(dirname(filePath), { recursive: true });
  const tmp = `${filePath}.tmp`;
  await writeFile(tmp, JSON.stringify(data));
  await rename(tmp, filePath);
};

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const port = Number(opt('port', '27017'));
const host = opt('host', '127.0.0.1');
const storagePath = opt('storage', '');
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`mongo-standin: bad --port ${opt('port')}\n`);
  process.exit(2);
}
const server = new congodb.CongoServer(storagePath
  ? { port, host, storage: 'file', storagePath }
  : { port, host });
await server.start();
process.stderr.write(`mongo-standin listening on ${host}:${port}` +
  `${storagePath ? ` (file storage in ${storagePath})` : ' (memory)'}\n`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  try { await server.stop(); } finally { process.exit(0); }
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
