// The MongoDB stand-in for the tests (scripts/mongo-standin: Debian has no mongod and the
// real image cannot be pulled here). It is NOT MongoDB: tests must not rely on unique indexes
// or a stable sort among equal keys (see the stand-in's header).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort, waitForPort, ROOT } from './proc.mjs';

const running = new Set();
process.on('exit', () => { for (const c of running) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

let announced = false;
// unref: a stand-in shared by a whole test file must not keep the file's process alive (it is
// killed when the process exits).
export async function startMongo({ port, storage, unref = false } = {}) {
  port = port || await freePort();
  if (!announced) {
    announced = true;
    process.stdout.write('# MongoDB here is the wire-compatible stand-in (scripts/mongo-standin), not mongod\n');
  }
  const m = { port, uri: `mongodb://127.0.0.1:${port}/?appname=parley-test`, log: '' };
  m.start = async () => {
    const args = [join(ROOT, 'scripts', 'mongo-standin', 'server.mjs'), '--port', String(port)];
    if (storage) args.push('--storage', storage);
    const child = spawn(process.execPath, args, { stdio: ['ignore', unref ? 'ignore' : 'pipe', unref ? 'ignore' : 'pipe'] });
    if (unref) child.unref();
    else {
      child.stdout.on('data', (b) => { m.log += b; });
      child.stderr.on('data', (b) => { m.log += b; });
    }
    running.add(child);
    m.child = child;
    m.exited = new Promise((res) => child.on('exit', (code, signal) => { running.delete(child); res({ code, signal }); }));
    await waitForPort(port);
    return m;
  };
  m.stop = async (signal = 'SIGTERM') => {
    if (!m.child || m.child.exitCode !== null || m.child.signalCode !== null) return;
    m.child.ref(); // wait for it: its exit must keep the event loop alive
    m.child.kill(signal);
    await m.exited;
  };
  await m.start();
  return m;
}
