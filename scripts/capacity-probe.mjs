#!/usr/bin/env node
// The small measurements behind docs/capacity.md (not `make bench`, which is bench/'s): one
// and two chat daemons on one real Redis, driven by bench/loadgen (parley-loadgen), reading
// the CPU time (utime + stime, /proc/PID/stat) of every chat daemon and of redis-server and
// the daemons' RSS. Prints one JSON line per run.
//   PARLEY_BUILD_DIR=$PWD/build node scripts/capacity-probe.mjs [conns]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { startChat, sleep } from '../tests/chat/lib.mjs';
import { startRedis } from '../tests/lib/redis.mjs';
import { BUILD } from '../tests/lib/proc.mjs';

const LOADGEN = join(BUILD, 'bench', 'parley-loadgen');
const CONNS = Number(process.argv[2] || 4000);
const TICK = 100; // clock ticks per second (sysconf(_SC_CLK_TCK) on Linux)
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / TICK; };
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

function loadgen(port, secret, args, src) {
  return new Promise((res, rej) => {
    const p = spawn(LOADGEN, ['--port', String(port), '--token', '--src', src, ...args.map(String)],
      { env: { PATH: process.env.PATH, JWT_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { err += b; });
    p.on('exit', () => { try { res(JSON.parse(out.trim().split('\n').pop())); } catch { rej(new Error(`loadgen: ${err.slice(-2000)}`)); } });
  });
}

const ENV = { LOG_LEVEL: 'warn', CHAT_RATE_PER_SEC: '100000', CHAT_RATE_BURST: '100000', CHAT_RING_SIZE: '1024',
  CHAT_MAX_CONNECTIONS: '19000', CHAT_MAX_PENDING_HANDSHAKES: '1024', CHAT_MAX_CONNS_PER_USER: '100000',
  CHAT_MAX_CONNS_PER_USER_ROOM: '100000', CHAT_REDIS_TIMEOUT_MS: '15000' };

async function run(label, replicas, { conns, rooms, senders, rate, duration = 8 }) {
  const redis = await startRedis({ aof: true });
  const secret = 'c'.repeat(48);
  const ds = [];
  const db = `cap${Date.now()}`; // a fresh archive: a room's counter is new, not reseeded
  for (let i = 0; i < replicas; i++) ds.push(await startChat({ ...ENV, CHAT_MONGO_DB: db }, { redis, secret }));
  const rpid = redis.child.pid;
  const pids = ds.map((d) => d.d.pid);
  const rss0 = pids.map(rss);
  const c0 = pids.map(cpu), r0 = cpu(rpid);
  const load0 = loadavg()[0];
  const per = Math.floor(conns / replicas);
  // daemon 0's clients send (and check order and loss); the other daemons' clients only
  // receive, in the same rooms, for longer (the loadgen numbers senders from 0 in each
  // process, so two sending processes in one room would look like reordering)
  const results = await Promise.all(ds.map((d, i) => loadgen(d.port, secret, ['--conns', per, '--rooms', rooms,
    '--senders', i === 0 ? senders : 0, '--rate', rate, '--duration', i === 0 ? duration : duration + 4,
    '--idle', 2, '--procs', Math.max(1, Math.ceil(per / 4000)), '--server-pid', d.d.pid, '--label', label],
  `127.0.${10 + 20 * i}.2`)));
  const c1 = pids.map(cpu), r1 = cpu(rpid);
  const out = {
    label, replicas, conns: per * replicas, rooms, room_size: per * replicas / rooms, senders, rate,
    sent: results.reduce((a, r) => a + r.sent, 0), delivered: results.reduce((a, r) => a + r.delivered, 0),
    lost: results[0].lost, gaps: results[0].gaps + results[0].reorders,
    delivered_sender_daemon: results[0].delivered,
    chat_cpu_s: +(c1.reduce((a, b) => a + b, 0) - c0.reduce((a, b) => a + b, 0)).toFixed(2),
    chat_cpu_run_s: +results.reduce((a, r) => a + r.server_cpu_run_s, 0).toFixed(2),
    chat_cpu_connect_s: +results.reduce((a, r) => a + r.server_cpu_connect_s, 0).toFixed(2),
    redis_cpu_s: +(r1 - r0).toFixed(2),
    rss_kb_before: rss0, rss_kb_idle: results.map((r) => r.rss_idle_kb),
    kb_per_conn: +((results.reduce((a, r) => a + r.rss_idle_kb - r.rss_before_kb, 0)) / (per * replicas)).toFixed(2),
    p50_ms: Math.max(...results.map((r) => r.p50_ms)), p99_ms: Math.max(...results.map((r) => r.p99_ms)),
    load_before: +load0.toFixed(2), load_after: +loadavg()[0].toFixed(2),
  };
  console.log(JSON.stringify(out));
  for (const d of ds) await d.d.stop('SIGKILL');
  await redis.cleanup();
  await sleep(500);
  return out;
}

// rooms of 10 and of 100 at the same delivery rate separate the per-message from the
// per-delivery cost; two replicas show what sharing a room across daemons costs
await run('1 daemon, rooms of 100', 1, { conns: CONNS, rooms: CONNS / 100, senders: 40, rate: 300 });
await run('1 daemon, rooms of 10', 1, { conns: CONNS, rooms: CONNS / 10, senders: 400, rate: 3000 });
await run('2 daemons, rooms of 100 spread over both', 2, { conns: CONNS, rooms: CONNS / 100, senders: 40, rate: 300 });
// closed loop (each sender keeps 4 messages in flight): the most one daemon delivers
await run('1 daemon, rooms of 100, closed loop', 1, { conns: CONNS, rooms: CONNS / 100, senders: 40, rate: 0, duration: 5 });
await run('2 daemons, rooms of 100 spread over both, closed loop', 2, { conns: CONNS, rooms: CONNS / 100, senders: 40, rate: 0, duration: 5 });
process.exit(0);
