// A MongoDB stand-in for machines without mongod (Debian has no server package): the
// wire-compatible CongoServer of @push.rocks/smartmongo, which libmongoc 1.23 talks to.
// It is NOT MongoDB: it accepts duplicate keys under a unique index and its sort is not
// stable among equal keys, so Parley's code never relies on either (writes are upserts).
//
//   node server.mjs --port 27017 [--host 127.0.0.1] [--storage DIR]
//
// Without --storage the data lives in memory. Prints "mongo-standin listening on HOST:PORT"
// once it accepts connections; SIGTERM/SIGINT stop it (file storage is flushed first).
import { congodb } from '@push.rocks/smartmongo';

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
