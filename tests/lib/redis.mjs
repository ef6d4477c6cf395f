// A real redis-server for the tests (Debian's redis-server 7.0), on a free port, with no
// persistence unless asked, and a small RESP client to look at what the daemons stored.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort, sleep } from './proc.mjs';

const running = new Set();
process.on('exit', () => { for (const c of running) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

// Starts redis-server. opts.aof: appendonly yes with appendfsync opts.fsync (default
// everysec) in a temp dir that survives restarts of this server (start() again).
export async function startRedis({ port, aof = false, fsync = 'everysec' } = {}) {
  port = port || await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  const r = { port, dir, child: null };
  r.start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
      '--appendonly', aof ? 'yes' : 'no', '--appendfsync', fsync, '--daemonize', 'no',
      '--maxmemory-policy', 'noeviction'];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    r.log = '';
    child.stdout.on('data', (b) => { r.log += b; });
    child.stderr.on('data', (b) => { r.log += b; });
    // a test that fails before its cleanup must not keep its process alive (the exit hook
    // above kills what is left)
    child.unref();
    child.stdout.unref();
    child.stderr.unref();
    r.child = child;
    running.add(child);
    r.exited = new Promise((res) => child.on('exit', (code, signal) => { running.delete(child); res({ code, signal }); }));
    await waitForPort(port);
    // accepting connections is not the same as having loaded the AOF
    for (let i = 0; i < 200; i++) {
      try { if ((await r.cmd('PING')) === 'PONG') break; } catch { /* loading */ }
      await sleep(25);
    }
    return r;
  };
  r.stop = async (signal = 'SIGTERM') => {
    if (!r.child || r.child.exitCode !== null || r.child.signalCode !== null) return;
    r.child.ref(); // wait for it: its exit must keep the event loop alive
    r.child.kill(signal);
    await r.exited;
  };
  r.pause = () => r.child.kill('SIGSTOP');
  r.resume = () => r.child.kill('SIGCONT');
  r.cleanup = async () => { await r.stop('SIGKILL'); rmSync(dir, { recursive: true, force: true }); };
  r.cmd = (...args) => redisCommand(port, args);
  await r.start();
  return r;
}

function encode(args) {
  let s = `*${args.length}\r\n`;
  for (const a of args) { const b = Buffer.from(String(a)); s += `$${b.length}\r\n${b.toString('latin1')}\r\n`; }
  return Buffer.from(s, 'latin1');
}

// Parses one RESP2 value from buf at off: [value, next] or null if incomplete.
function parse(buf, off) {
  const nl = buf.indexOf('\r\n', off);
  if (nl < 0) return null;
  const t = String.fromCharCode(buf[off]);
  const line = buf.subarray(off + 1, nl).toString();
  if (t === '+') return [line, nl + 2];
  if (t === '-') return [new Error(line), nl + 2];
  if (t === ':') return [Number(line), nl + 2];
  if (t === '$') {
    const n = Number(line);
    if (n < 0) return [null, nl + 2];
    if (buf.length < nl + 2 + n + 2) return null;
    return [buf.subarray(nl + 2, nl + 2 + n).toString(), nl + 2 + n + 2];
  }
  if (t === '*') {
    const n = Number(line);
    if (n < 0) return [null, nl + 2];
    const out = [];
    let p = nl + 2;
    for (let i = 0; i < n; i++) {
      const v = parse(buf, p);
      if (!v) return null;
      out.push(v[0]);
      p = v[1];
    }
    return [out, p];
  }
  throw new Error(`bad RESP type ${t}`);
}

// One command on a new connection; resolves with the reply (errors reject).
export function redisCommand(port, args, timeout = 10000) {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => { s.destroy(); rej(new Error(`redis ${args[0]}: timeout`)); }, timeout);
    s.on('error', (e) => { clearTimeout(t); rej(e); });
    s.on('connect', () => s.write(encode(args)));
    s.on('data', (b) => {
      buf = Buffer.concat([buf, b]);
      const v = parse(buf, 0);
      if (!v) return;
      clearTimeout(t);
      s.end();
      if (v[0] instanceof Error) rej(v[0]); else res(v[0]);
    });
  });
}
