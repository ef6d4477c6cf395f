// Shared by bench/run-bench.mjs and bench/smoke.test.mjs: the systems under test (Parley's
// chat daemon and its three peers), each started fresh on a free 127.0.0.1 port, and a
// runner for the C load generator that returns its aggregated JSON result.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

// For idle memory the daemon runs with its production defaults (ring of 512 frames per room,
// 2048-byte receive buffer per connection), only allowed enough connections.
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
    pid: d.pid, port, adminPort, redisPid: redis.child.pid, mongoPid: mongo.child.pid, logs: () => d.stderr,
    redisCpuS: () => cpuSeconds(redis.child.pid),
    mongoCpuS: () => cpuSeconds(mongo.child.pid),
    storeCpuS: () => cpuSeconds(redis.child.pid) + cpuSeconds(mongo.child.pid),
    metrics: () => fetch(`http://127.0.0.1:${adminPort}/metrics`).then((x) => x.text()).catch(() => ''),
    async stop() { await d.stop(); await redis.cleanup(); await mongo.stop(); },
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
      return startChat(secret, workload === 'memory' ? CHAT_MEMORY_ENV : CHAT_BENCH_ENV);
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

async function startPlain(bin, args, name) {
  const port = await benchPort();
  const child = spawn(bin, [...args, String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
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
// {rc, stderr, argv}. Killed (by PID) after timeoutMs.
// With Redis and the MongoDB stand-in behind the server (parley-chat), the load generator
// samples their CPU time over the same window as the server's (--also-pid): store_cpu_run_s,
// and deliveries_per_cpu_s_with_store counts all three processes. redis_cpu_s / mongo_cpu_s
// are each one's CPU over the whole load generator run (connecting included).
export function runLoadgen(sys, server, opts, { secret, timeoutMs = 120000 } = {}) {
  const redis0 = server.redisCpuS ? server.redisCpuS() : 0;
  const mongo0 = server.mongoCpuS ? server.mongoCpuS() : 0;
  const argv = ['--port', String(server.port), '--path', sys.path, sys.token ? '--token' : '--no-token',
    '--server-pid', String(server.pid)];
  for (const p of [server.redisPid, server.mongoPid]) if (p) argv.push('--also-pid', String(p));
  for (const [k, v] of Object.entries(opts)) argv.push(`--${k}`, String(v));
  return new Promise((resolve) => {
    const child = spawn(LOADGEN, argv, { env: { ...process.env, ...(secret ? { JWT_SECRET: secret } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => { out += b.toString(); });
    child.stderr.on('data', (b) => { err += b.toString(); });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (rc, signal) => {
      clearTimeout(t);
      const line = out.trim().split('\n').pop() || '';
      let r = {};
      try { r = JSON.parse(line); } catch { r = { error: `no result (${signal || rc})` }; }
      if (server.redisCpuS) {
        r.redis_cpu_s = +(server.redisCpuS() - redis0).toFixed(2);
        r.mongo_cpu_s = +(server.mongoCpuS() - mongo0).toFixed(2);
        // the load generator's --also-pid samples, in the order given: Redis, the stand-in
        const [redisRun = 0, mongoRun = 0] = r.also_cpu_run_s || [];
        r.redis_cpu_run_s = redisRun;
        r.mongo_cpu_run_s = mongoRun;
        r.store_cpu_run_s = +(redisRun + mongoRun).toFixed(3);
        if (r.deliveries_per_s && r.deliveries_per_cpu_s && r.server_cpu_run_s) {
          r.deliveries_per_cpu_s_with_redis = Math.round(r.deliveries_per_cpu_s * r.server_cpu_run_s / (r.server_cpu_run_s + redisRun));
        }
        if (r.deliveries_per_s && r.deliveries_per_cpu_s && r.server_cpu_run_s) {
          // deliveries / (server CPU + Redis CPU + stand-in CPU), the same window
          const deliveries = r.deliveries_per_cpu_s * r.server_cpu_run_s;
          r.deliveries_per_cpu_s_with_store = Math.round(deliveries / (r.server_cpu_run_s + (r.store_cpu_run_s || 0)));
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
