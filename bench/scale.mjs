// `make bench-scale` (issue 11, "Performance"): BENCH_SCALE_CONNS (default 50,000) concurrent
// WebSocket connections held across BENCH_SCALE_REPLICAS (default 3) parley-chat daemons on
// one Redis (AOF) and one MongoDB stand-in, history on as in production, then paced traffic
// in rooms of 100 checked for loss, gaps and reorders.
//
// * The per-process file limit here is 20,000: each daemon holds at most 17,500 connections
//   (CHAT_MAX_CONNECTIONS is set to that, so a replica count too small for the connections is
//   refused before anything starts), and bench/loadgen forks one worker per 12,500
//   connections, worker w binding its sockets to source address 127.0.0.(2+w) (each worker
//   under 15,000 files, each source address under the 28,232 ephemeral ports).
// * Connection g joins room bench-(g mod R) (R = conns / 100) on daemon (g / R) mod replicas:
//   every room of 100 has about 100 / replicas members on every daemon.
// * Phases: connect (all at once, at most --concurrency handshakes in flight per worker), hold
//   (BENCH_SCALE_HOLD s idle; VmRSS of every process sampled at its end), traffic
//   (BENCH_SCALE_RATE msg/s in total from 2 senders per room, one on each of two daemons, for
//   BENCH_SCALE_DUR s; the load generator checks that every member got every message once and
//   in order).
// * Reported: VmRSS of each daemon, Redis and the stand-in before and while holding; KiB per
//   connection per daemon; the time to connect all and handshakes/s; CPU seconds of every
//   process per phase (/proc/PID/stat); the machine's load and what else used its CPU
//   in the 3 s before the run (/proc/*/stat).
// Daemon settings: production defaults except LOG_LEVEL=warn, CHAT_MAX_CONNECTIONS=17500,
// CHAT_MAX_PENDING_HANDSHAKES=1024, CHAT_REDIS_TIMEOUT_MS=15000 (the join storm's history
// reads, see the rate sweep's notes), CHAT_PRESENCE_TTL_MS=30000 (BENCH_SCALE_PRESENCE_TTL_MS;
// with the production 3000 the replicas expired and re-registered during the join storm). The paced rate stays under the production per-user
// rate limit (5 frames/s), so that is not raised.
// Env: BENCH_SCALE_CONNS, BENCH_SCALE_REPLICAS, BENCH_SCALE_RATE (msg/s, default 400),
// BENCH_SCALE_DUR (s, 15), BENCH_SCALE_HOLD (s, 10), BENCH_SCALE_CONNECT_TIMEOUT (s, 300),
// BENCH_SCALE_PROCS (load generator processes, default one per 12,500 connections),
// BENCH_SCALE_NOTE (free text about the machine, copied into the report), BENCH_SCALE_DOC=1
// (write the section of docs/benchmarks.md between its markers), PARLEY_BUILD_DIR.
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import { spawnSync } from 'node:child_process';
import { SYSTEMS, startChatCluster, runLoadgen, newSecret, cpuSeconds, ROOT, FSYNC, writeDocSection } from './lib.mjs';

const num = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);
const CONNS = num('BENCH_SCALE_CONNS', 50000);
const REPLICAS = num('BENCH_SCALE_REPLICAS', 3);
const ROOM = 100;
const ROOMS = Math.ceil(CONNS / ROOM);
const SENDERS = Math.min(2 * ROOMS, CONNS); // sender g is in room g mod ROOMS, on daemon (g / ROOMS) mod replicas
const RATE = num('BENCH_SCALE_RATE', 400);
const DUR = num('BENCH_SCALE_DUR', 15);
const HOLD = num('BENCH_SCALE_HOLD', 10);
const CONNECT_TIMEOUT = num('BENCH_SCALE_CONNECT_TIMEOUT', 300);
const PER_WORKER = 12500;
const PROCS = num('BENCH_SCALE_PROCS', Math.max(1, Math.ceil(CONNS / PER_WORKER)));
const MAX_PER_DAEMON = 17500;
const ENV = {
  LOG_LEVEL: 'warn',
  CHAT_MAX_CONNECTIONS: String(MAX_PER_DAEMON),
  CHAT_MAX_PENDING_HANDSHAKES: '1024',
  CHAT_REDIS_TIMEOUT_MS: '15000',
  // production 3000: see the notes under the section in docs/benchmarks.md (the join storm
  // delays the heartbeats, which share the Redis command connection, past 3 s)
  CHAT_PRESENCE_TTL_MS: String(num('BENCH_SCALE_PRESENCE_TTL_MS', 30000)),
};
const T0 = Date.now();
const log = (...a) => console.error(`[scale ${((Date.now() - T0) / 1000).toFixed(0).padStart(3)}s]`, ...a);
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const sh = (cmd) => (spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout || '').trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssKb(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

// Kernel memory, machine-wide: Slab (socket structures) from /proc/meminfo and the TCP buffer
// pages from /proc/net/sockstat, KiB; with both ends of every connection on this machine.
function kernelMem() {
  const mi = readFileSync('/proc/meminfo', 'utf8');
  const slab = Number((/^Slab:\s+(\d+)/m.exec(mi) || [])[1]);
  const ss = readFileSync('/proc/net/sockstat', 'utf8');
  const tcp = /^TCP: inuse (\d+).* mem (\d+)/m.exec(ss);
  return { slabKb: slab, tcpInuse: tcp ? Number(tcp[1]) : null, tcpMemKb: tcp ? Number(tcp[2]) * 4 : null };
}

// VmRSS of this run's load generator processes (parent and workers), KiB.
function loadgenRss() {
  let kb = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (!s.includes('(parley-loadgen)')) continue;
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      const pp = ppid === process.pid ? '' : readFileSync(`/proc/${ppid}/stat`, 'utf8');
      if (ppid === process.pid || Number(pp.slice(pp.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) kb += rssKb(p) || 0;
    } catch { /* gone */ }
  }
  return kb;
}

// CPU used by every process of the machine over ms milliseconds: {busy (cores), top: [[comm, cores]]}.
async function machineCpu(ms) {
  const snap = () => {
    const o = new Map();
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try {
        const s = readFileSync(`/proc/${p}/stat`, 'utf8');
        const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        o.set(p, [comm, Number(f[11]) + Number(f[12])]);
      } catch { /* gone */ }
    }
    return o;
  };
  const total = () => readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  const a = snap(), ta = total();
  await sleep(ms);
  const b = snap(), tb = total();
  const d = tb.map((x, i) => x - ta[i]);
  const all = d.reduce((x, y) => x + y, 0);
  const idle = d[3] + d[4];
  const byComm = new Map();
  for (const [p, [comm, t]] of b) {
    const dt = t - (a.get(p)?.[1] ?? t);
    if (dt > 0) byComm.set(comm, (byComm.get(comm) || 0) + dt);
  }
  const top = [...byComm].filter(([, t]) => t >= 2).sort((x, y) => y[1] - x[1]).slice(0, 6).map(([c, t]) => [c, +(t / 100 / (ms / 1000)).toFixed(2)]);
  return { busy: +(((all - idle) / all) * cpus().length).toFixed(2), top };
}

// Connections per daemon as the load generator places them: g on (floor(g / ROOMS)) mod REPLICAS.
function placed() {
  const n = new Array(REPLICAS).fill(0);
  for (let g = 0; g < CONNS; g++) n[Math.floor(g / ROOMS) % REPLICAS]++;
  return n;
}

// A daemon's /metrics (admin port): {name: the sum of its samples over all label sets}.
const WATCH = ['chat_connections', 'chat_handshakes_accepted_total', 'chat_handshakes_rejected_total',
  'chat_presence_reincarnations_total', 'chat_presence_reaped_replicas_total', 'chat_presence_heartbeat_failures_total',
  'chat_redis_reconnects_total', 'chat_redis_latency_ms_sum', 'chat_redis_latency_ms_count',
  'chat_slow_clients_dropped_total', 'chat_idle_dropped_total', 'chat_frames_sent_total', 'chat_messages_delivered_total'];
async function metrics(adminPort) {
  const t = await fetch(`http://127.0.0.1:${adminPort}/metrics`).then((x) => x.text()).catch(() => '');
  const o = {};
  for (const name of WATCH) {
    for (const m of t.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.]+)$`, 'gm'))) o[name] = (o[name] || 0) + Number(m[1]);
  }
  return o;
}
const metricsAll = () => Promise.all(cluster.daemons.map((d) => metrics(d.adminPort)));

const perDaemon = placed();
if (Math.max(...perDaemon) > MAX_PER_DAEMON) {
  console.error(`scale: ${CONNS} connections over ${REPLICAS} daemons is ${Math.max(...perDaemon)} on one, more than ${MAX_PER_DAEMON} (the file limit is 20000): raise BENCH_SCALE_REPLICAS`);
  process.exit(2);
}
const nofile = sh('ulimit -n');
if (nofile !== 'unlimited' && Number(nofile) < MAX_PER_DAEMON + 1200) {
  console.error(`scale: the open-files limit is ${nofile}; each daemon needs ${MAX_PER_DAEMON + 1200} (run through bench/run-scale)`);
  process.exit(2);
}

const commit = sh(`git -C ${ROOT} rev-parse --short HEAD`) || '?';
const dirty = sh(`git -C ${ROOT} status --porcelain -- chat common bench/loadgen`) ? ' (chat/, common/ or bench/loadgen modified)' : '';
const uptimeStart = sh('uptime');
log(`uptime: ${uptimeStart}`);
const before = await machineCpu(3000);
log(`machine before the run: ${before.busy} of ${cpus().length} cores busy; top: ${before.top.map(([c, x]) => `${c} ${x}`).join(', ')}`);

const secret = newSecret();
const cluster = await startChatCluster(secret, ENV, REPLICAS);
const procs = [...cluster.daemons.map((d, i) => [`chat${i + 1}`, d.pid]), ['redis', cluster.redisPid], ['mongo', cluster.mongoPid]];
const cpuAll = () => Object.fromEntries(procs.map(([k, pid]) => [k, cpuSeconds(pid)]));
const rssAll = () => Object.fromEntries(procs.map(([k, pid]) => [k, rssKb(pid)]));
let result;
const marks = {};
const rssHeld = {};
let rssAfter, accepted, rejected, lgStderr;
let daemonLogs = [];
let heldMetrics = null, endMetrics = null, startMetrics = null, heldConns = null;
try {
  await sleep(1000); // the daemons' threads settle (the archive's connections, the first heartbeats)
  startMetrics = await metricsAll();
  marks.start = { t: Date.now(), cpu: cpuAll(), rss: rssAll(), load: loadavg(), kernel: kernelMem() };
  log(`${REPLICAS} daemons up (ports ${cluster.ports.join(', ')}); RSS KiB ${JSON.stringify(marks.start.rss)}`);
  const sys = SYSTEMS['parley-chat x2']; // token, path /ws
  const server = { pid: cluster.daemons[0].pid, port: cluster.ports[0], ports: cluster.ports, also: [] };
  const opts = { conns: CONNS, rooms: ROOMS, senders: SENDERS, procs: PROCS, rate: RATE, duration: DUR, idle: HOLD,
    drain: 30, size: 64, concurrency: 200, 'connect-timeout': CONNECT_TIMEOUT, progress: 2, label: 'scale' };
  let holdSampled = false;
  const timeoutMs = (CONNECT_TIMEOUT + 30 + HOLD + DUR + 30 + 60) * 1000;
  log(`loadgen: ${CONNS} connections, ${ROOMS} rooms of ${ROOM}, ${PROCS} processes, ${SENDERS} senders at ${RATE} msg/s for ${DUR} s after a ${HOLD} s hold`);
  result = await runLoadgen(sys, server, opts, {
    secret, timeoutMs,
    onStderr(line) {
      if (!line.startsWith('loadgen: ')) { log(line); return; }
      const what = line.split(' ')[1];
      if (what === 'ready' && !marks.ready) marks.ready = { t: Date.now(), cpu: cpuAll(), rss: rssAll(), load: loadavg(), line };
      if (what === 'holding') {
        // the last sample of the hold, about 2 s before it ends
        Object.assign(rssHeld, rssAll());
        marks.heldKernel = kernelMem();
        marks.heldLoadgenKb = loadgenRss();
        heldMetrics = metricsAll();
        marks.held0 = marks.held;
        marks.held = { t: Date.now(), cpu: cpuAll(), load: loadavg(), line };
        holdSampled = true;
      }
      if (what === 'sending' && !marks.send) marks.send = { t: Date.now(), cpu: cpuAll(), load: loadavg(), line };
      log(line);
    },
  });
  marks.end = { t: Date.now(), cpu: cpuAll(), load: loadavg() };
  rssAfter = rssAll();
  if (!holdSampled) Object.assign(rssHeld, marks.ready?.rss || {});
  heldMetrics = heldMetrics ? await heldMetrics : null;
  heldConns = heldMetrics ? heldMetrics.map((m) => m.chat_connections) : null;
  await sleep(2000); // the leaves of the load generator's closes
  endMetrics = await metricsAll();
  accepted = endMetrics.map((m) => m.chat_handshakes_accepted_total);
  rejected = endMetrics.map((m) => m.chat_handshakes_rejected_total);
  lgStderr = (result.stderr || '').split('\n').filter((l) => l && !/^loadgen: (connecting|holding|ready|sending) /.test(l)).slice(0, 12);
  delete result.stderr;
} finally {
  daemonLogs = cluster.daemons.map((d) => d.logs().split('\n').filter(Boolean).slice(-5));
  await cluster.stop();
}
const loadEnd = loadavg();
const uptimeEnd = sh('uptime');
log(`uptime: ${uptimeEnd}`);

// ---- report ------------------------------------------------------------------------------
const f0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Math.round(x).toLocaleString('en-US'));
const f1 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Number(x).toFixed(1));
const f2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Number(x).toFixed(2));
const cpuDelta = (a, b) => (a && b ? Object.fromEntries(procs.map(([k]) => [k, +(b.cpu[k] - a.cpu[k]).toFixed(2)])) : null);
const phases = {
  connect: cpuDelta(marks.start, marks.ready),
  hold: cpuDelta(marks.ready, marks.send),
  traffic: cpuDelta(marks.send, marks.end),
};
const r = result || {};
const connectedAll = r.connected === CONNS && !r.failed;
const zeroLoss = r.rc === 0 && !r.lost && !r.gaps && !r.reorders && !r.closed_early && r.delivered > 0 && r.delivered === r.expected;
const ok = connectedAll && zeroLoss;
const kib = cluster.daemons.map((_, i) => {
  const k = `chat${i + 1}`;
  return rssHeld[k] && marks.start.rss[k] ? (rssHeld[k] - marks.start.rss[k]) / perDaemon[i] : null;
});
const redisKib = rssHeld.redis && marks.start.rss.redis ? (rssHeld.redis - marks.start.rss.redis) / CONNS : null;
const why = [];
if (r.error) why.push(r.error);
if (r.rc !== 0) why.push(`load generator rc ${r.rc}${r.signal ? ` (${r.signal})` : ''}`);
if (r.connected !== CONNS) why.push(`${f0(r.connected)} of ${f0(CONNS)} connected, ${f0(r.failed)} failed`);
if (r.closed_early) why.push(`${r.closed_early} closed by the server`);
if (r.lost) why.push(`${r.lost} deliveries lost`);
if (r.gaps) why.push(`${r.gaps} gaps`);
if (r.reorders) why.push(`${r.reorders} reordered`);

const L = [];
L.push(`## ${f0(CONNS)} connections on ${REPLICAS} daemons (issue 11)`, '');
L.push(`Written by \`make bench-scale\` (bench/run-scale, bench/scale.mjs) on ${new Date(T0).toISOString()}, commit ${commit}${dirty}; ${cpus().length} CPUs and ${Math.round(totalmem() / 2 ** 30)} GiB shared by the daemons, Redis, the stand-in and the load generator; open-files limit ${nofile} per process.`,
  `Load average (1, 5, 15 min) ${marks.start.load} when the daemons were up, ${marks.ready?.load ?? '–'} when all were connected, ${loadEnd} at the end.`,
  `What else the machine was doing: in the 3 s before the run ${before.busy} of ${cpus().length} cores were busy; the processes using them: ${before.top.length ? before.top.map(([c, x]) => `${c} ${x}`).join(', ') : 'none'} (cores, /proc/*/stat).${process.env.BENCH_SCALE_NOTE ? ` ${process.env.BENCH_SCALE_NOTE}` : ''}`, '');
L.push(`* ${REPLICAS} parley-chat daemons (history on: one redis-server, AOF \`appendfsync ${FSYNC}\`, and one MongoDB stand-in, scripts/mongo-standin, not mongod), production defaults except \`LOG_LEVEL=warn\`, \`CHAT_MAX_CONNECTIONS=${MAX_PER_DAEMON}\`, \`CHAT_MAX_PENDING_HANDSHAKES=1024\`, \`CHAT_REDIS_TIMEOUT_MS=15000\`, \`CHAT_PRESENCE_TTL_MS=${ENV.CHAT_PRESENCE_TTL_MS}\` (production 3000).`,
  `* bench/loadgen: ${f0(CONNS)} connections in ${f0(ROOMS)} rooms of ${ROOM}, forked into ${PROCS} processes of ≤ ${f0(Math.ceil(CONNS / PROCS))} connections, process w on source address 127.0.0.(2+w); connection g joins room bench-(g mod ${ROOMS}) on daemon (g / ${ROOMS}) mod ${REPLICAS}, so every room has members on every daemon (${perDaemon.map(f0).join(' / ')} connections per daemon). Each handshake carries its own HS256 token (its own user); at most 200 handshakes in flight per process.`,
  `* Phases: connect all; hold ${HOLD} s idle (VmRSS of every process read at the end of the hold); then ${SENDERS} senders (2 per room, on two different daemons) paced to ${RATE} msg/s in total for ${DUR} s, 64-byte texts; every member checks that every message of its room arrives once and in order.`, '');
L.push(`**Result: ${ok ? `${f0(CONNS)} connections held, traffic with zero loss` : `NOT ok: ${why.join('; ')}`}.**`);
const warnHeld = heldMetrics ? ['chat_presence_reincarnations_total', 'chat_presence_reaped_replicas_total', 'chat_redis_reconnects_total']
  .map((k) => [k, heldMetrics.reduce((a, m, i) => a + (m[k] || 0) - (startMetrics?.[i]?.[k] || 0), 0)]).filter(([, v]) => v > 0) : [];
if (warnHeld.length) L.push(`But while connecting and holding: ${warnHeld.map(([k, v]) => `${k} +${v}`).join(', ')} (see the counters below).`);
L.push('');
L.push('| | value |', '|---|---|');
L.push(`| connections open (load generator) | ${f0(r.connected)} of ${f0(CONNS)} (${f0(r.failed)} failed, ${f0(r.closed_early)} closed by a server) |`,
  `| connections per daemon while holding (chat_connections) | ${(heldConns || []).map(f0).join(' / ')} |`,
  `| handshakes accepted per daemon (chat_handshakes_accepted_total; rejected) | ${(accepted || []).map(f0).join(' / ')} (${(rejected || []).map(f0).join(' / ')}) |`,
  `| time to connect all | ${f1(r.connect_s)} s (${f0(r.handshakes_per_s)} handshakes/s) |`,
  `| messages sent / expected deliveries / delivered | ${f0(r.sent)} / ${f0(r.expected)} / ${f0(r.delivered)} |`,
  `| lost / gaps / reordered | ${r.lost ?? '–'} / ${r.gaps ?? '–'} / ${r.reorders ?? '–'} |`,
  `| deliveries/s (sending + drain ${f1(r.run_s)} s) | ${f0(r.deliveries_per_s)} |`,
  `| latency p50 / p99 / p99.9 / max ms | ${f2(r.p50_ms)} / ${f2(r.p99_ms)} / ${f2(r.p999_ms)} / ${f2(r.max_ms)} |`);
L.push('', 'Memory (VmRSS, /proc/PID/status): fresh, while holding every connection idle (the end of the hold), and after the traffic and the load generator\'s closes. KiB per connection = (holding − fresh) / connections on that daemon.', '');
L.push('| process | connections | RSS fresh KiB | RSS holding KiB | RSS after traffic + closes KiB | KiB per connection |', '|---|---|---|---|---|---|');
cluster.daemons.forEach((_, i) => {
  const k = `chat${i + 1}`;
  L.push(`| ${k} | ${f0(perDaemon[i])} | ${f0(marks.start.rss[k])} | ${f0(rssHeld[k])} | ${f0(rssAfter?.[k])} | ${f2(kib[i])} |`);
});
L.push(`| redis-server | (all ${f0(CONNS)}) | ${f0(marks.start.rss.redis)} | ${f0(rssHeld.redis)} | ${f0(rssAfter?.redis)} | ${f2(redisKib)} |`,
  `| stand-in | – | ${f0(marks.start.rss.mongo)} | ${f0(rssHeld.mongo)} | ${f0(rssAfter?.mongo)} | – |`);
// health of the cluster: while connecting and holding, and over the whole run (closes included)
if (heldMetrics && endMetrics) {
  const col = (ms, k) => ms.map((m, i) => (m[k] === undefined ? '– (no answer)' : f0(m[k] - (startMetrics?.[i]?.[k] || 0)))).join(' / ');
  const lat = (ms) => ms.map((m, i) => {
    const n = (m.chat_redis_latency_ms_count || 0) - (startMetrics?.[i]?.chat_redis_latency_ms_count || 0);
    return n ? f1(((m.chat_redis_latency_ms_sum || 0) - (startMetrics?.[i]?.chat_redis_latency_ms_sum || 0)) / n) : '–';
  }).join(' / ');
  L.push('', 'The daemons\' own counters (/metrics, per daemon), from start to the end of the hold | to 2 s after the load generator closed everything:', '');
  L.push('| counter | to the end of the hold | whole run |', '|---|---|---|');
  for (const k of ['chat_presence_reincarnations_total', 'chat_presence_reaped_replicas_total', 'chat_presence_heartbeat_failures_total',
    'chat_redis_reconnects_total', 'chat_slow_clients_dropped_total', 'chat_idle_dropped_total', 'chat_frames_sent_total']) {
    L.push(`| ${k} | ${col(heldMetrics, k)} | ${col(endMetrics, k)} |`);
  }
  L.push(`| Redis command latency, mean ms | ${lat(heldMetrics)} | ${lat(endMetrics)} |`);
}
const kS = marks.start.kernel, kH = marks.heldKernel;
if (kS && kH) {
  L.push('', `Kernel, machine-wide (both ends of every connection are on this machine, ${f0(2 * CONNS)} sockets): TCP sockets in use ${f0(kS.tcpInuse)} → ${f0(kH.tcpInuse)}; Slab ${f0(kS.slabKb)} → ${f0(kH.slabKb)} KiB (${f2((kH.slabKb - kS.slabKb) / (2 * CONNS))} KiB per socket), TCP buffer pages ${f0(kS.tcpMemKb)} → ${f0(kH.tcpMemKb)} KiB (/proc/meminfo, /proc/net/sockstat; other work on the machine moves these too).` +
    ` The load generator's ${PROCS} processes held ${f0(marks.heldLoadgenKb)} KiB RSS.`);
}
const sum = (o) => (o ? Object.values(o).reduce((a, b) => a + b, 0) : null);
L.push('', 'CPU seconds (utime + stime) by phase:', '');
L.push(`| phase | wall s | ${procs.map(([k]) => k).join(' | ')} | all |`, `|---|---|${procs.map(() => '---|').join('')}---|`);
const wall = (a, b) => (a && b ? (b.t - a.t) / 1000 : null);
for (const [name, a, b] of [['connect', marks.start, marks.ready], ['hold', marks.ready, marks.send],
  ['(of the hold: its last 2 s, idle)', marks.held0, marks.held], ['traffic + drain', marks.send, marks.end]]) {
  const d = cpuDelta(a, b);
  L.push(`| ${name} | ${f1(wall(a, b))} | ${procs.map(([k]) => f2(d?.[k])).join(' | ')} | ${f2(sum(d))} |`);
}
const cHand = sum(phases.connect);
const daemonsOnly = (o) => (o ? procs.filter(([k]) => k.startsWith('chat')).reduce((a, [k]) => a + o[k], 0) : null);
if (cHand && r.connected) {
  L.push('', `Per handshake (token check, join, presence, the welcome and the join frames to the room): ${f2((daemonsOnly(phases.connect) / r.connected) * 1000)} ms of daemon CPU, ${f2((cHand / r.connected) * 1000)} ms of all server processes.` +
    ` Per delivery in the traffic phase: ${phases.traffic && r.delivered ? `${f1((daemonsOnly(phases.traffic) / r.delivered) * 1e6)} µs of daemon CPU, ${f1((sum(phases.traffic) / r.delivered) * 1e6)} µs of all server processes` : '–'} (idle costs included: see the hold row).`);
}
if (lgStderr?.length) L.push('', 'Load generator messages:', '', '```', ...lgStderr, '```');
const dl = daemonLogs.flat();
if (dl.length) L.push('', 'Last daemon log lines:', '', '```', ...dl.slice(0, 15), '```');

const MARK = 'scale';
console.log(`\n${L.join('\n')}`);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'scale.json'), JSON.stringify({ started: new Date(T0).toISOString(), commit, uptimeStart, uptimeEnd, before, conns: CONNS, replicas: REPLICAS, perDaemon, marks, rssHeld, heldConns, startMetrics, heldMetrics, endMetrics, rssAfter, kib, redisKib, phases, accepted, rejected, result }, null, 1));
if (process.env.BENCH_SCALE_DOC === '1') {
  writeDocSection(MARK, L);
  log('wrote its section of docs/benchmarks.md and bench/results/scale.json');
}
process.exit(ok ? 0 : 1);
