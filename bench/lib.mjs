// Shared by bench/run-bench.mjs and bench/smoke.test.mjs: the systems under test (Parley's
// chat daemon and its three peers), each started fresh on a free 127.0.0.1 port, and a
// runner for the C load generator that returns its aggregated JSON result.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, BUILD, ROOT, startDaemon } from '../tests/lib/proc.mjs';
import { newSecret } from '../tests/lib/token.mjs';
import { startRedis } from '../tests/lib/redis.mjs';
import { startMongo } from '../tests/lib/mongo.mjs';

export { ROOT, BUILD, BIN };
export const LOADGEN = join(BUILD, 'bench', 'parley-loadgen');
export const LWS_BARE = join(BUILD, 'bench', 'lws-bare');
export const PYTHON = '/usr/bin/python3'; // Debian's python3-websockets is only visible here
export const NODE = process.execPath;

// The chat daemon's limits are set for real users (5 messages/s, 512 frames of lag). A
// benchmark is a flood by design, so these are raised; everything else stays at its default.
export const CHAT_BENCH_ENV = {
  LOG_LEVEL: 'warn', // the peers log nothing per connection either
  CHAT_RATE_PER_SEC: '100000',
  CHAT_RATE_BURST: '100000',
  CHAT_RING_SIZE: '1024', // the same lag budget as lws-bare's ring
  CHAT_MAX_CONNECTIONS: '19000',
  CHAT_MAX_PENDING_HANDSHAKES: '1024',
};

// The rate sweep (bench/rate-sweep.mjs) also gives Redis commands 15 s instead of the
// production 2 s (as the tests do): on this shared 2-core machine the join storm of 1000
// connections (each one's history read through the one command connection) has taken more
// than 2 s, the daemon then drops the connection, fails every command in flight and closes
// the joiners whose history failed (1013): a real behaviour, reported in docs/benchmarks.md,
// but not the fan-out the sweep measures.
export const CHAT_SWEEP_ENV = { ...CHAT_BENCH_ENV, CHAT_REDIS_TIMEOUT_MS: '15000' };

// For idle memory the daemon runs with its production defaults (ring of 512 frames per room,
// 1024-byte receive buffer per connection, CHAT_RX_BUFFER), only allowed enough connections.
export const CHAT_MEMORY_ENV = {
  LOG_LEVEL: 'warn',
  CHAT_MAX_CONNECTIONS: '19000',
  CHAT_MAX_PENDING_HANDSHAKES: '1024',
};

// The chat daemon stores every message in Redis (AOF, appendfsync as in production:
// BENCH_FSYNC, default everysec) and archives it in MongoDB (the stand-in here): both are
// started with it, and their CPU time is counted with the daemon's (storeCpuS(): redis-server
// and the stand-in, from /proc/PID/stat). BENCH_CHAT_BIN runs another chat binary the same way.
// base: the daemon from before history (BENCH_BASE_BIN, built by bench/run-bench from commit
// BASE_COMMIT): it knows neither Redis, MongoDB nor an admin port, so none is started for it.
export const FSYNC = process.env.BENCH_FSYNC || 'everysec';
export const BASE_COMMIT = '3427d90';
async function startChat(secret, env, { base = false } = {}) {
  const port = await benchPort();
  if (base) {
    if (!process.env.BENCH_BASE_BIN) throw new Error('BENCH_BASE_BIN is not set');
    const d = await startDaemon(process.env.BENCH_BASE_BIN, { JWT_SECRET: secret,
      CHAT_LISTEN_ADDR: '127.0.0.1', CHAT_PORT: String(port), ...env }, [port]);
    return { pid: d.pid, port, logs: () => d.stderr, storeCpuS: () => 0, async stop() { await d.stop(); } };
  }
  let adminPort = await benchPort(); // /healthz, /metrics (unused here, but must be free)
  while (adminPort === port) adminPort = await benchPort();
  const redis = await startRedis({ aof: true, fsync: FSYNC });
  const mongo = await startMongo();
  const d = await startDaemon(process.env.BENCH_CHAT_BIN || BIN.chat, { JWT_SECRET: secret,
    CHAT_LISTEN_ADDR: '127.0.0.1', CHAT_PORT: String(port), CHAT_ADMIN_PORT: String(adminPort),
    CHAT_REDIS_PORT: String(redis.port), CHAT_MONGO_URI: mongo.uri, ...env }, [port, adminPort]);
  // upgrades are refused (503) until the daemon has Redis
  for (let i = 0; i < 400; i++) {
    const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`).then((x) => x.text()).catch(() => '');
    if ((/^chat_redis_up 1$/m.test(r) && /^chat_redis_subscriber_up 1$/m.test(r)) || (r && !/chat_redis_up/.test(r))) break;
    await new Promise((res) => setTimeout(res, 25));
  }
  return {
    pid: d.pid, port, adminPort, logs: () => d.stderr,
    also: [['redis', redis.child.pid], ['mongo', mongo.child.pid]],
    redisCpuS: () => cpuSeconds(redis.child.pid),
    mongoCpuS: () => cpuSeconds(mongo.child.pid),
    storeCpuS: () => cpuSeconds(redis.child.pid) + cpuSeconds(mongo.child.pid),
    metrics: () => fetch(`http://127.0.0.1:${adminPort}/metrics`).then((x) => x.text()).catch(() => ''),
    async stop() { await d.stop(); await redis.cleanup(); await mongo.stop(); },
  };
}

// n chat daemons on one Redis and one stand-in: {pid (the first daemon), ports, also: the
// other daemons, Redis and the stand-in, daemons: [{pid, port, adminPort, logs()}], redisPid,
// mongoPid, stop()}. bench/scale.mjs uses it directly.
export async function startChatCluster(secret, env, n) {
  const redis = await startRedis({ aof: true, fsync: FSYNC });
  const mongo = await startMongo();
  const ds = [];
  const ports = [];
  const admins = [];
  try {
    for (let i = 0; i < n; i++) {
      const port = await benchPort();
      let adminPort = await benchPort();
      while (adminPort === port) adminPort = await benchPort();
      const d = await startDaemon(BIN.chat, { JWT_SECRET: secret, CHAT_LISTEN_ADDR: '127.0.0.1',
        CHAT_PORT: String(port), CHAT_ADMIN_PORT: String(adminPort), CHAT_REDIS_PORT: String(redis.port),
        CHAT_MONGO_URI: mongo.uri, ...env }, [port, adminPort]);
      ds.push(d);
      ports.push(port);
      admins.push(adminPort);
      for (let k = 0; k < 400; k++) {
        const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`).then((x) => x.text()).catch(() => '');
        if (/^chat_redis_up 1$/m.test(r) && /^chat_redis_subscriber_up 1$/m.test(r)) break;
        await new Promise((res) => setTimeout(res, 25));
      }
    }
  } catch (e) {
    for (const d of ds) await d.stop();
    await redis.cleanup(); await mongo.stop();
    throw e;
  }
  return {
    pid: ds[0].pid, port: ports[0], ports, logs: () => ds.map((d) => d.stderr).join('\n'),
    also: [...ds.slice(1).map((d, i) => [`chat${i + 2}`, d.pid]), ['redis', redis.child.pid], ['mongo', mongo.child.pid]],
    daemons: ds.map((d, i) => ({ pid: d.pid, port: ports[i], adminPort: admins[i], logs: () => d.stderr })),
    redisPid: redis.child.pid, mongoPid: mongo.child.pid,
    async stop() { for (const d of ds) await d.stop(); await redis.cleanup(); await mongo.stop(); },
  };
}

async function startSocketIoCluster(n) {
  const redis = await startRedis({ aof: false });
  const nodes = [];
  try {
    for (let i = 0; i < n; i++) {
      nodes.push(await startPlain(NODE, [join(ROOT, 'bench', 'peers', 'socketio', 'server.mjs')], 'socketio', [String(redis.port)]));
    }
  } catch (e) {
    for (const x of nodes) await x.stop();
    await redis.cleanup();
    throw e;
  }
  return {
    pid: nodes[0].pid, port: nodes[0].port, ports: nodes.map((x) => x.port), logs: () => nodes.map((x) => x.logs()).join('\n'),
    also: [...nodes.slice(1).map((x, i) => [`node${i + 2}`, x.pid]), ['redis', redis.child.pid]],
    async stop() { for (const x of nodes) await x.stop(); await redis.cleanup(); },
  };
}

// utime + stime of a process, seconds (/proc/PID/stat fields 14 and 15, clock ticks of 100 Hz).
export function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch { return 0; }
}

// Each system: start(secret, workload) resolves to {pid, port, stop(), logs()}.
export const SYSTEMS = {
  'parley-chat': {
    token: true,
    path: '/ws',
    async start(secret, workload = 'traffic') {
      return startChat(secret, workload === 'memory' ? CHAT_MEMORY_ENV : workload === 'sweep' ? CHAT_SWEEP_ENV : CHAT_BENCH_ENV);
    },
  },
  // The same daemon with a smaller per-connection receive buffer (lws allocates
  // rx_buffer_size for every established connection): what that one setting saves.
  'parley-chat rx512': {
    token: true,
    path: '/ws',
    env: { CHAT_RX_BUFFER: '512' },
    async start(secret, workload = 'traffic') {
      return startChat(secret, { ...(workload === 'memory' ? CHAT_MEMORY_ENV : CHAT_BENCH_ENV), ...this.env });
    },
  },
  // BENCH_BASE_BIN: the chat daemon from before history (built from BASE_COMMIT), run with
  // the same settings and no Redis or MongoDB: what persistence costs.
  'parley-chat (no history)': {
    token: true,
    path: '/ws',
    async start(secret) { return startChat(secret, CHAT_BENCH_ENV, { base: true }); },
  },
  // Issue 11: two chat daemons on one Redis (and one archive), each on its own port, both
  // subscribed through Redis, so a room spans them (the load generator's --ports).
  'parley-chat x2': {
    token: true,
    path: '/ws',
    async start(secret, workload) { return startChatCluster(secret, workload === 'sweep' ? CHAT_SWEEP_ENV : CHAT_BENCH_ENV, 2); },
  },
  // Socket.IO 4 with @socket.io/redis-adapter, two nodes on one Redis (bench/peers/socketio).
  'socketio x2': {
    token: false,
    socketio: true,
    path: '/socket.io/?EIO=4&transport=websocket',
    async start() { return startSocketIoCluster(2); },
  },
  'lws-bare': {
    token: false,
    path: '/',
    async start() { return startPlain(LWS_BARE, [], 'lws-bare'); },
  },
  'node-ws': {
    token: false,
    path: '/',
    async start() {
      return startPlain(NODE, [join(ROOT, 'bench', 'peers', 'node-ws', 'server.mjs')], 'node-ws');
    },
  },
  'python-websockets': {
    token: false,
    path: '/',
    async start() {
      return startPlain(PYTHON, [join(ROOT, 'bench', 'peers', 'python-websockets', 'server.py')],
        'python-websockets');
    },
  },
};

// A port outside the kernel's ephemeral range (32768-60999 here), so that it is never in
// TIME_WAIT from an earlier run's connections: lws 4.1 binds its listener without
// SO_REUSEADDR and would fail with EADDRINUSE.
export async function benchPort() {
  const { createServer } = await import('node:net');
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => res(true)));
    });
    if (free) return port;
  }
}

async function startPlain(bin, args, name, tail = []) {
  const port = await benchPort();
  const child = spawn(bin, [...args, String(port), ...tail], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b) => { err += b.toString(); if (err.length > 100000) err = err.slice(-50000); });
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  const { waitForPort } = await import('../tests/lib/proc.mjs');
  await Promise.race([waitForPort(port, '127.0.0.1', 20000),
    exited.then((r) => { throw new Error(`${name} exited early ${JSON.stringify(r)}: ${err}`); })]);
  return {
    pid: child.pid, port, logs: () => err,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

export { newSecret };

// Runs the load generator against a started system and resolves with its JSON result plus
// {rc, stderr, argv}. Killed (by PID) after timeoutMs. onStderr(line) sees each stderr line as
// it comes (the --progress lines).
// Processes behind the server (server.also: [label, pid] pairs: Redis, the MongoDB stand-in,
// a cluster's other nodes) are sampled by the load generator over the same window as the
// server (--also-pid): cpu_run_by = {label: CPU s}, redis_cpu_run_s / mongo_cpu_run_s,
// store_cpu_run_s (all of them), deliveries_per_cpu_s_with_redis (server + Redis) and
// deliveries_per_cpu_s_all (server + everything behind it).
export function runLoadgen(sys, server, opts, { secret, timeoutMs = 120000, onStderr = null } = {}) {
  const also = server.also || [];
  const argv = ['--port', String(server.port), '--path', sys.path, sys.token ? '--token' : '--no-token',
    '--server-pid', String(server.pid)];
  if (server.ports && server.ports.length > 1) argv.push('--ports', server.ports.join(','));
  if (sys.socketio) argv.push('--socketio');
  for (const [, pid] of also) argv.push('--also-pid', String(pid));
  for (const [k, v] of Object.entries(opts)) argv.push(`--${k}`, String(v));
  return new Promise((resolve) => {
    const child = spawn(LOADGEN, argv, { env: { ...process.env, ...(secret ? { JWT_SECRET: secret } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => { out += b.toString(); });
    let partial = '';
    child.stderr.on('data', (b) => {
      err += b.toString();
      if (!onStderr) return;
      const lines = (partial + b.toString()).split('\n');
      partial = lines.pop();
      for (const l of lines) onStderr(l);
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (rc, signal) => {
      clearTimeout(t);
      const line = out.trim().split('\n').pop() || '';
      let r = {};
      try { r = JSON.parse(line); } catch { r = { error: `no result (${signal || rc})` }; }
      if (also.length && Array.isArray(r.also_cpu_run_s)) {
        r.cpu_run_by = Object.fromEntries(also.map(([label], i) => [label, r.also_cpu_run_s[i]]));
        r.redis_cpu_run_s = r.cpu_run_by.redis;
        r.mongo_cpu_run_s = r.cpu_run_by.mongo;
        r.store_cpu_run_s = +also.reduce((a, _, i) => a + r.also_cpu_run_s[i], 0).toFixed(3);
        if (r.delivered && r.server_cpu_run_s) {
          r.deliveries_per_cpu_s_with_redis = Math.round(r.delivered / (r.server_cpu_run_s + (r.redis_cpu_run_s || 0)));
          r.deliveries_per_cpu_s_all = Math.round(r.delivered / (r.server_cpu_run_s + r.store_cpu_run_s));
        }
      }
      resolve({ ...r, rc, signal, stderr: err, argv: [LOADGEN, ...argv] });
    });
  });
}

export function haveBinaries() {
  return [LOADGEN, LWS_BARE, BIN.chat].filter((f) => !existsSync(f));
}

export function readJson(f) { return JSON.parse(readFileSync(f, 'utf8')); }

// docs/benchmarks.md is written by several commands, each owning the part between its
// markers (<!-- MARK begin --> ... <!-- MARK end -->); 'notes' is written by hand.
export const DOC = join(ROOT, 'docs', 'benchmarks.md');
export const DOC_SECTIONS = [['rate-sweep', 'make bench'], ['cluster-sweep', 'make bench-cluster'],
  ['scale', 'make bench-scale'], ['notes', 'written by hand']];
const marks = (m) => [`<!-- ${m} begin -->`, `<!-- ${m} end -->`];

// The text of section m (markers included) as docs/benchmarks.md has it now, or a
// placeholder saying which command writes it.
export function docSection(m) {
  let text = '';
  try { text = readFileSync(DOC, 'utf8'); } catch { /* first run */ }
  const [begin, end] = marks(m);
  const i = text.indexOf(begin), j = text.indexOf(end);
  if (i >= 0 && j > i) return text.slice(i, j + end.length);
  const by = (DOC_SECTIONS.find(([k]) => k === m) || [m, 'its command'])[1];
  return `${begin}
(not run yet: ${by})
${end}`;
}

// Replaces section m of docs/benchmarks.md with lines (markers added); appends it if absent.
export function writeDocSection(m, lines) {
  const [begin, end] = marks(m);
  const section = [begin, ...lines, end].join('\n');
  let text = readFileSync(DOC, 'utf8');
  const i = text.indexOf(begin), j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(DOC, text);
}
