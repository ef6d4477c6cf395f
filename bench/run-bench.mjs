// The benchmark run behind `make bench` (started by bench/run-bench, which builds first and
// raises the open-files limit). Runs every workload against Parley's chat daemon and its
// peers one after the other, each server started fresh, then the website under wrk, and
// writes docs/benchmarks.md (and bench/results/results.json with every raw figure).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, cpus } from 'node:os';
import { SYSTEMS, runLoadgen, newSecret, haveBinaries, ROOT, BIN, CHAT_BENCH_ENV, CHAT_MEMORY_ENV, LOADGEN, DOC_SECTIONS, docSection } from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1'; // shorter runs while developing the bench
const DUR = QUICK ? 2 : 5; // seconds of sending per fan-out run
const WARMUP = 1; // seconds of unmeasured traffic before each traffic run
const TOTAL_BUDGET_MS = 9.5 * 60 * 1000; // make bench must finish in under 10 minutes
const T0 = Date.now();
const ALL = ['parley-chat', 'lws-bare', 'node-ws', 'python-websockets'];
// BENCH_ONLY=lws-bare,node-ws runs a subset (for debugging the bench itself).
const ORDER = process.env.BENCH_ONLY ? ALL.filter((n) => process.env.BENCH_ONLY.split(',').includes(n)) : ALL;
const PEERS = ORDER.slice(1);

// Workloads. Rooms of 100 members, 2 senders per room, 64-byte texts: a busy chat.
const FANOUT = { conns: 1000, rooms: 10, senders: 20, rate: 0, window: 4, duration: DUR, size: 64, procs: 1 };
const SMALL_ROOMS = { rooms: 100, senders: 100 };
const HANDSHAKE = { conns: QUICK ? 1000 : 2000, rooms: 200, senders: 0, duration: 0, concurrency: 200, procs: 2 };
const MEMORY = [1000, 10000].map((n) => ({ conns: n, rooms: n / 10, senders: 0, duration: 0, idle: 2,
  procs: n > 5000 ? 2 : 1 }));
const SWEEP = [0.25, 0.75]; // fractions of parley-chat's maximum sent/s (0.5 is the latency run)
const WRK = { threads: 2, conns: 32, dur: QUICK ? 3 : 8 };
// nginx limits POST /login to 10 per minute per client: the benchmark measures what a login
// costs, so that limit is lifted for it (the one change to the stack's defaults).
const NGINX_BENCH_ENV = { NGINX_AUTH_RATE: '100000r/s', NGINX_AUTH_BURST: '100000' };

const log = (...a) => console.error(`[bench ${((Date.now() - T0) / 1000).toFixed(0).padStart(3)}s]`, ...a);
const results = { started: new Date().toISOString(), workloads: {} };
const cmds = [];

function overBudget() {
  return Date.now() - T0 > TOTAL_BUDGET_MS;
}

async function onSystem(name, fn, workload) {
  const sys = SYSTEMS[name];
  const secret = newSecret();
  let server;
  // A port from freePort() can be taken again before the server binds it: retry.
  for (let attempt = 1; !server; attempt++) {
    try {
      server = await sys.start(secret, workload);
    } catch (e) {
      if (attempt === 3) return { error: `did not start: ${e.message.split('\n')[0]}` };
    }
  }
  try {
    return await fn(sys, server, secret);
  } finally {
    await server.stop();
  }
}

function shortCmd(r) {
  return r.argv ? r.argv.map((a) => a.replace(ROOT + '/', '')).join(' ').replace(/--server-pid \d+ /, '').replace(/--port \d+ /, '--port PORT ') : '';
}

// Traffic runs start with a short warm-up on the same server process (Node's JIT, Python's
// and glibc's allocators, lws's buffers), not counted, so each system is measured warm.
async function loadOn(name, opts, label, workload) {
  if (overBudget()) return { error: 'skipped: time budget spent' };
  const r = await onSystem(name, async (sys, server, secret) => {
    if (opts.duration > 0) {
      await runLoadgen(sys, server, { ...opts, duration: WARMUP, label: `${label}-warmup` }, { secret, timeoutMs: 60000 });
    }
    return runLoadgen(sys, server, { ...opts, label }, { secret, timeoutMs: 150000 });
  }, workload);
  if (r.argv && !cmds.some((c) => c.label === label)) cmds.push({ label, cmd: shortCmd(r) });
  const bad = r.error || r.rc !== 0;
  log(`${label} ${name}: ${bad ? `rc=${r.rc} ${r.error || ''} ${(r.stderr || '').split('\n')[0]}` : 'ok'}`
    + (r.deliveries_per_s ? ` ${Math.round(r.deliveries_per_s)} deliveries/s, ${Math.round(r.deliveries_per_cpu_s)}/server-CPU-s, p99 ${r.p99_ms} ms` : '')
    + (r.handshakes_per_s && !r.deliveries_per_s ? ` ${Math.round(r.handshakes_per_s)} handshakes/s` : ''));
  delete r.stderr;
  return r;
}

// ---- chat workloads ---------------------------------------------------------------------

async function memoryBenches() {
  const W = results.workloads;
  W.memory = {};
  for (const m of MEMORY) {
    W.memory[m.conns] = {};
    const names = ORDER.includes('parley-chat') && m.conns >= 10000 ? [...ORDER, 'parley-chat rx512'] : ORDER;
    for (const n of names) W.memory[m.conns][n] = await loadOn(n, m, `memory-${m.conns}`, 'memory');
  }
}

async function sweepBenches() {
  const W = results.workloads;
  const max = (W.fanout['parley-chat'] || W.fanout[ORDER[0]] || {}).sent_per_s || 0;
  // p99 against offered load, for parley-chat and the floor (lws-bare) side by side.
  const fr = SWEEP.filter((f) => max * f >= 20); // below 20 messages/s there is nothing to learn
  W.sweep = { fractions: fr, rates: fr.map((f) => Math.round((max * f) / 10) * 10 || 20) };
  for (const n of ['parley-chat', 'lws-bare'].filter((x) => ORDER.includes(x))) {
    W.sweep[n] = [];
    for (const r of W.sweep.rates) W.sweep[n].push(await loadOn(n, { ...FANOUT, rate: r, window: 0 }, `sweep-${r}`));
  }
}

async function chatBenches() {
  const W = results.workloads;
  W.fanout = {};
  for (const n of ORDER) W.fanout[n] = await loadOn(n, FANOUT, 'fanout');

  const max = (W.fanout['parley-chat'] || W.fanout[ORDER[0]] || {}).sent_per_s || 0;
  const rate = Math.max(20, Math.round(max / 2 / 10) * 10);
  W.latency = { rate };
  for (const n of ORDER) W.latency[n] = await loadOn(n, { ...FANOUT, rate, window: 0 }, 'latency');
  // The same messages per second in rooms of 10: each message is a burst of 10 frames, not 100.
  W.latencySmall = { rate };
  for (const n of ORDER) {
    W.latencySmall[n] = await loadOn(n, { ...FANOUT, ...SMALL_ROOMS, rate, window: 0 }, 'latency-rooms-of-10');
  }

  W.handshake = {};
  for (const n of ORDER) W.handshake[n] = await loadOn(n, HANDSHAKE, 'handshake');
}

// Where parley-chat's time goes: perf record (cpu-clock, call graphs) during a fan-out run.
async function profile(opts = FANOUT, secs = DUR) {
  if (overBudget()) return { error: 'skipped: time budget spent' };
  if (!ORDER.includes('parley-chat')) return { error: 'skipped: parley-chat not selected' };
  const dir = mkdtempSync(join(tmpdir(), 'parley-perf-'));
  const data = join(dir, 'perf.data');
  try {
    return await onSystem('parley-chat', async (sys, server, secret) => {
      const perf = spawn('perf', ['record', '-F', '999', '-g', '-o', data, '-p', String(server.pid), '--', 'sleep', String(secs)],
        { stdio: ['ignore', 'ignore', 'pipe'] });
      let perr = '';
      perf.stderr.on('data', (b) => { perr += b; });
      const perfDone = new Promise((res) => perf.on('exit', (rc) => res(rc)));
      const r = await runLoadgen(sys, server, { ...opts, label: 'profile' }, { secret });
      const prc = await perfDone;
      if (prc !== 0) return { error: `perf record failed: ${perr.split('\n').slice(-3).join(' ')}`, run: r };
      const rep = (sort) => spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', sort,
        '-g', 'none', '--percent-limit', '0.7'], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout
        .split('\n').filter((l) => /^\s+\d+\.\d+%/.test(l)).slice(0, 25)
        .map((l) => l.trim().replace(/(\s+-)+\s*$/, ''));
      // Inclusive shares: how much of the daemon's time is under send(), poll(), and the
      // loopback receive path that the kernel runs inside the sender's send() (softirq).
      const inc = spawnSync('perf', ['report', '-i', data, '--stdio', '--children', '--sort', 'symbol', '-g', 'none'],
        { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout;
      const share = (sym) => {
        const m = inc.match(new RegExp(`^\\s+([\\d.]+)%\\s+[\\d.]+%\\s+\\[[.k]\\] ${sym}\\s`, 'm'));
        return m ? Number(m[1]) : null;
      };
      delete r.stderr;
      return { run: r, byDso: rep('dso'), bySymbol: rep('dso,symbol'),
        inclusive: { send: share('__send'), poll: share('__poll'), softirq: share('handle_softirqs'),
          writeable: share('chat_conn_writeable'), sorted: share('lws_dll2_add_sorted') } };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- website ----------------------------------------------------------------------------

const WRK_LUA = join(ROOT, 'bench', 'wrk.lua');

// Runs wrk with bench/wrk.lua; the request's method, body and cookie go in the environment.
function wrk(url, { method = 'GET', body = '', cookie = '', conns = WRK.conns } = {}) {
  const args = ['-t', String(WRK.threads), '-c', String(conns), '-d', `${WRK.dur}s`, '--latency', '-s', WRK_LUA, url];
  const r = spawnSync('wrk', args, { encoding: 'utf8', timeout: (WRK.dur + 30) * 1000,
    env: { ...process.env, WRK_METHOD: method, WRK_BODY: body, WRK_COOKIE: cookie } });
  const out = r.stdout || '';
  const num = (re) => { const m = out.match(re); return m ? m[1] : null; };
  const ms = (s) => {
    if (!s) return null;
    const m = s.match(/^([\d.]+)(us|ms|s)$/);
    return m ? Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 }[m[2]]) : null;
  };
  const env = [`WRK_METHOD=${method}`, body ? "WRK_BODY='email=...&password=...&csrf_token=...'" : '',
    cookie ? "WRK_COOKIE='<cookies>'" : ''].filter(Boolean).join(' ');
  return {
    rps: Number(num(/Requests\/sec:\s+([\d.]+)/)),
    p50_ms: ms(num(/^\s+50%\s+(\S+)/m)), p99_ms: ms(num(/^\s+99%\s+(\S+)/m)),
    non2xx3xx: Number(num(/Non-2xx or 3xx responses:\s+(\d+)/) || 0),
    errors: num(/Socket errors:(.*)/),
    statuses: num(/^statuses: (.*)$/m),
    requests: Number(num(/(\d+) requests in/)),
    cmd: `${env} wrk ${args.join(' ').replace(WRK_LUA, 'bench/wrk.lua')}`,
    rc: r.status, raw: out.slice(0, 2000),
  };
}

async function websiteBench() {
  if (overBudget()) return { error: 'skipped: time budget spent' };
  let stack;
  if (!existsSync(BIN.website)) return { error: `${BIN.website} is not built` };
  try {
    const { startStack, WebClient } = await import('../tests/lib/stack.mjs');
    stack = await startStack({ chatEnv: CHAT_BENCH_ENV, webEnv: { LOG_LEVEL: 'warn' }, nginxEnv: NGINX_BENCH_ENV });
    const u = { email: 'bench@example.com', name: 'Bench', password: 'bench-password-123' };
    const c = new WebClient(stack.url);
    const reg = await c.register(u.email, u.name, u.password);
    if (reg.status !== 303) throw new Error(`register answered ${reg.status}`);
    const rooms = await c.get('/rooms');
    if (rooms.status !== 200) throw new Error(`GET /rooms answered ${rooms.status}`);
    // POST /login: one visitor's csrf cookie and form token (from GET /login), reused.
    const v = new WebClient(stack.url);
    await v.get('/login');
    const body = new URLSearchParams({ email: u.email, password: u.password, csrf_token: v.csrf || '' }).toString();
    const url = (p) => `${stack.url}${p}`;
    log('website: wrk static file via nginx');
    const stat = wrk(url('/static/chat.css'));
    log('website: wrk GET /rooms');
    const list = wrk(url('/rooms'), { cookie: c.cookieHeader() });
    log('website: wrk POST /login');
    const login = wrk(url('/login'), { method: 'POST', body, cookie: v.cookieHeader(), conns: 4 });
    for (const x of [stat, list, login]) x.cmd = x.cmd.replace(stack.url, 'http://127.0.0.1:PORT');
    return { static: stat, rooms: list, login };
  } catch (e) {
    log(`website: ${e.message.split('\n')[0]}`);
    return { error: e.message.split('\n')[0] };
  } finally {
    if (stack) await stack.stop();
  }
}

// ---- report -----------------------------------------------------------------------------

const f0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Math.round(x).toLocaleString('en-US'));
const f2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Number(x).toFixed(2));
const ratio = (a, b) => (a && b ? `${Number((a / b).toPrecision(3))}×` : '–');
const ok = (r) => r && !r.error && r.rc === 0;
const note = (r) => (!r ? 'not run' : r.error ? r.error : r.rc !== 0 ? `rc=${r.rc}: failed ${r.failed}, closed ${r.closed_early}, lost ${r.lost}, reordered ${r.reorders}`
  : r.rate > 0 && r.sent_per_s < 0.95 * r.rate ? `offered ${f0(r.rate)}/s, only ${f0(r.sent_per_s)}/s got out: the machine (server + load generator) was saturated` : '');

function machine() {
  const l = spawnSync('lscpu', [], { encoding: 'utf8' }).stdout || '';
  const get = (k) => (l.match(new RegExp(`^${k}:\\s+(.*)$`, 'm')) || [])[1] || '?';
  const ver = (cmd, args) => (spawnSync(cmd, args, { encoding: 'utf8' }).stdout || '').trim().split('\n')[0];
  return {
    cpu: get('Model name'), cores: cpus().length,
    loadStart: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '), kernel: ver('uname', ['-r']),
    lws: ver('pkg-config', ['--modversion', 'libwebsockets']).replace(/-$/, ''), node: process.version,
    python: ver('/usr/bin/python3', ['-c', 'import websockets,sys;print(sys.version.split()[0], "websockets", websockets.__version__)']),
    nodews: JSON.parse(readFileSync(join(ROOT, 'bench', 'peers', 'node-ws', 'node_modules', 'ws', 'package.json'), 'utf8')).version,
    nginx: (spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr || '').trim(),
    wrk: ver('dpkg-query', ['-W', '-f=${Version}', 'wrk']),
  };
}

function report(m, prof, web, profHs) {
  const W = results.workloads;
  const L = [];
  const P = 'parley-chat';
  L.push('# Benchmarks', '');
  L.push('Written by `make bench` (bench/run-bench): do not edit by hand; rerun it. Every figure below',
    'comes from one run on one machine, the load generator sharing the cores with the server, so',
    'absolute numbers move with the machine; the ratios measured in the same run are what count.', '');
  L.push('## Machine', '');
  L.push(`* CPU: ${m.cpu}, ${m.cores} cores (shared with the load generator; other work may run too)`);
  L.push(`* kernel ${m.kernel}; libwebsockets ${m.lws}; Node ${m.node} with ws ${m.nodews}; Python ${m.python}; ${m.nginx}; wrk ${m.wrk}`);
  results.loadEnd = results.loadEnd || readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  L.push(`* load average (1, 5, 15 min) when the run started: ${m.loadStart}; when it ended: ${results.loadEnd} (2 cores: anything above 2 means other work competed for the CPU)`);
  L.push(`* date: ${results.started}; run took ${results.seconds ?? Math.round((Date.now() - T0) / 1000)} s${QUICK ? ' (BENCH_QUICK=1: short runs)' : ''}`, '');
  L.push('## What runs', '');
  L.push('* **parley-chat**: our daemon (build/chat/parley-chat) with history on, as in production: every message',
    '  goes through the Redis publish script (a redis-server started with it, AOF, `appendfsync everysec`) and is',
    '  archived into the MongoDB stand-in (scripts/mongo-standin, not mongod). Token checked on every handshake, JSON in and out,',
    `  with the benchmark's limits raised through its environment: ${Object.entries(CHAT_BENCH_ENV).map(([k, v]) => `\`${k}=${v}\``).join(', ')}.`,
    '  "Server CPU" below is the daemon\'s alone; the "all" column adds redis-server and the stand-in (same window).',
    '* **lws-bare**: bench/peers/lws-bare, a bare libwebsockets room broadcaster (ring per room, tail per',
    '  client, no token, no JSON): the floor our protocol work sits on.',
    '* **node-ws**: bench/peers/node-ws, Node `ws` broadcast as in ws\'s own example (rooms from `?room=`).',
    '* **python-websockets**: bench/peers/python-websockets, asyncio + `websockets.broadcast`, Debian\'s python3-websockets.',
    '* Load: bench/loadgen (`parley-loadgen`, C, libwebsockets client): N connections over M rooms, forked',
    '  workers each on its own source address 127.0.0.2, .3, ...; connection *g* joins room `bench-(g mod M)`,',
    '  connections 0..S-1 send `{"type":"message","text":"<seq> <sender> <send-ns> xxx…"}` (64-byte text).',
    '  Parley wraps the text in its message JSON; the peers re-broadcast the frame as received; the same',
    '  parser reads both. Every receiver records end-to-end latency (CLOCK_MONOTONIC, one machine) in a',
    '  log-bucket histogram and checks per sender that sequence numbers arrive once and in order.',
    '* Every server broadcasts to the whole room, sender included. *Deliveries* = messages received by',
    '  clients. *Per server CPU-second* = deliveries / (utime+stime of the server process from',
    '  /proc/PID/stat over the run): fair even when the load generator is the bottleneck.', '');
  // bench/rate-sweep.mjs (run after this by bench/run-bench) fills this section; kept as it is
  // when only this part is re-rendered.
  L.push(keptSections(), '');

  // fan-out
  const fo = W.fanout || {};
  L.push('## Fan-out at maximum rate', '');
  L.push(`${FANOUT.conns} clients, ${FANOUT.rooms} rooms of ${FANOUT.conns / FANOUT.rooms}, ${FANOUT.senders} senders each keeping at most ${FANOUT.window} messages in flight (closed loop), ${FANOUT.duration} s, after ${WARMUP} s of unmeasured warm-up traffic on the same server process (every traffic run below does the same). In a closed loop the queues are as deep as the window allows, so the latency columns here describe saturation, not service: see the next table for latency.`, '');
  L.push('| system | sent/s | deliveries/s | server CPU s | deliveries per server CPU-s | per CPU-s, all (with Redis + stand-in) | p50 ms | p99 ms | p99.9 ms | lost | reordered | parley ÷ this (per CPU-s) | note |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const n of ORDER) {
    const r = fo[n] || {};
    const all = r.store_cpu_run_s !== undefined && r.server_cpu_run_s ? (r.deliveries_per_cpu_s * r.server_cpu_run_s) / (r.server_cpu_run_s + r.store_cpu_run_s) : r.deliveries_per_cpu_s;
    L.push(`| ${n} | ${f0(r.sent_per_s)} | ${f0(r.deliveries_per_s)} | ${f2(r.server_cpu_run_s)} | ${f0(r.deliveries_per_cpu_s)} | ${f0(all)} | ${f2(r.p50_ms)} | ${f2(r.p99_ms)} | ${f2(r.p999_ms)} | ${r.lost ?? '–'} | ${r.reorders ?? '–'} | ${n === P ? '–' : ratio(fo[P]?.deliveries_per_cpu_s, r.deliveries_per_cpu_s)} | ${note(r)} |`);
  }
  L.push('');

  const la = W.latency || {};
  L.push('## Latency at half of parley-chat\'s maximum rate', '');
  L.push(`Same rooms and clients; senders paced to ${f0(la.rate)} messages/s in total (half the sent/s parley-chat reached above), ${FANOUT.duration} s.`, '');
  L.push('| system | sent/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | deliveries per server CPU-s | lost | p99 parley ÷ this | note |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const n of ORDER) {
    const r = la[n] || {};
    L.push(`| ${n} | ${f0(r.sent_per_s)} | ${f0(r.deliveries_per_s)} | ${f2(r.p50_ms)} | ${f2(r.p99_ms)} | ${f2(r.p999_ms)} | ${f2(r.max_ms)} | ${f0(r.deliveries_per_cpu_s)} | ${r.lost ?? '–'} | ${n === P ? '–' : ratio(la[P]?.p99_ms, r.p99_ms)} | ${note(r)} |`);
  }
  L.push('');

  const ls = W.latencySmall || {};
  if (ls.rate) {
    L.push('### The same load in rooms of 10', '');
    L.push(`1000 clients in ${SMALL_ROOMS.rooms} rooms of 10, ${SMALL_ROOMS.senders} senders paced to ${f0(ls.rate)} messages/s in total: the same messages per second as above, each one a burst of 10 frames instead of 100 (so a tenth of the deliveries).`, '');
    L.push('| system | sent/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | deliveries per server CPU-s | lost | p99 parley ÷ this | note |');
    L.push('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const n of ORDER) {
      const r = ls[n] || {};
      L.push(`| ${n} | ${f0(r.sent_per_s)} | ${f0(r.deliveries_per_s)} | ${f2(r.p50_ms)} | ${f2(r.p99_ms)} | ${f2(r.p999_ms)} | ${f2(r.max_ms)} | ${f0(r.deliveries_per_cpu_s)} | ${r.lost ?? '–'} | ${n === P ? '–' : ratio(ls[P]?.p99_ms, r.p99_ms)} | ${note(r)} |`);
    }
    L.push('');
  }
  const sw = W.sweep || {};
  if (sw.rates) {
    L.push('### p99 against offered load', '');
    L.push('The same workload at other fractions of parley-chat\'s maximum rate (the 50% row is the table above).', '');
    L.push('| fraction of max | messages/s | deliveries/s | parley-chat p50 / p99 / p99.9 ms | lws-bare p50 / p99 / p99.9 ms |');
    L.push('|---|---|---|---|---|');
    const cell = (r) => (r && !r.error ? `${f2(r.p50_ms)} / ${f2(r.p99_ms)} / ${f2(r.p999_ms)}${r.rc ? ` (${note(r)})` : ''}` : note(r));
    const rows = sw.rates.map((rate, i) => ({ f: sw.fractions[i], rate, p: sw['parley-chat']?.[i], b: sw['lws-bare']?.[i] }));
    rows.push({ f: 0.5, rate: la.rate, p: la['parley-chat'], b: la['lws-bare'] });
    rows.sort((a, b) => a.f - b.f);
    for (const x of rows) L.push(`| ${x.f * 100}% | ${f0(x.rate)} | ${f0(x.p?.deliveries_per_s)} | ${cell(x.p)} | ${cell(x.b)} |`);
    L.push('');
  }

  const hs = W.handshake || {};
  L.push('## Handshakes', '');
  L.push(`${HANDSHAKE.conns} connections opened by ${HANDSHAKE.procs} processes, at most ${HANDSHAKE.concurrency} handshakes in flight each. parley-chat verifies an HS256 token (header \`Authorization: Bearer\`) and sends welcome/join frames; the peers do neither.`, '');
  L.push('| system | handshakes/s | server CPU s | handshakes per server CPU-s | parley ÷ this (per CPU-s) | note |');
  L.push('|---|---|---|---|---|---|');
  for (const n of ORDER) {
    const r = hs[n] || {};
    const pc = r.server_cpu_connect_s > 0 ? r.connected / r.server_cpu_connect_s : null;
    const pp = hs[P]?.server_cpu_connect_s > 0 ? hs[P].connected / hs[P].server_cpu_connect_s : null;
    L.push(`| ${n} | ${f0(r.handshakes_per_s)} | ${f2(r.server_cpu_connect_s)} | ${f0(pc)} | ${n === P ? '–' : ratio(pp, pc)} | ${note(r)} |`);
  }
  L.push('');

  L.push('## Memory per idle connection', '');
  L.push('VmRSS of the server (/proc/PID/status) fresh after start, and again 2 s after N connections opened (rooms of 10, no traffic): (after − before) / N.',
    `parley-chat runs here with its production defaults (ring of 512 frames per room, 1024-byte receive buffer per connection (CHAT_RX_BUFFER)) plus ${Object.entries(CHAT_MEMORY_ENV).map(([k, v]) => `\`${k}=${v}\``).join(', ')}; the extra row shows the same daemon with \`CHAT_RX_BUFFER=512\`. lws-bare preallocates a ring of 1024 entries (16 KiB) per room, about 1.6 KiB per connection at 10 per room.`, '');
  L.push('| system | N | RSS before KiB | RSS with N idle KiB | KiB per connection | parley ÷ this | note |');
  L.push('|---|---|---|---|---|---|---|');
  const per = (r) => (r && r.rss_idle_kb > 0 && r.connected ? (r.rss_idle_kb - r.rss_before_kb) / r.connected : null);
  for (const m of MEMORY) {
    const byN = W.memory?.[m.conns] || {};
    for (const n of [...ORDER, 'parley-chat rx512']) {
      const r = byN[n];
      if (!r) continue;
      L.push(`| ${n === 'parley-chat rx512' ? 'parley-chat with CHAT_RX_BUFFER=512' : n} | ${m.conns} | ${f0(r.rss_before_kb)} | ${f0(r.rss_idle_kb)} | ${f2(per(r))} | ${n === P || n === 'parley-chat rx512' ? '–' : ratio(per(byN[P]), per(r))} | ${note(r)} |`);
    }
  }
  L.push('');

  L.push('## Website (wrk through nginx)', '');
  if (!web || web.error) {
    L.push(`Not measured: ${web ? web.error : 'not run'}.`, '');
  } else {
    L.push(`A real stack (PostgreSQL, parley-website with its defaults, parley-chat, nginx with one worker, started by tests/lib/stack.mjs). wrk ${WRK.threads} threads, ${WRK.conns} connections (POST /login: 4, Argon2id is meant to be slow), ${WRK.dur} s, with bench/wrk.lua counting status codes (its per-response Lua hook costs wrk some speed, equally on every row). nginx's login rate limit is lifted for this run: ${Object.entries(NGINX_BENCH_ENV).map(([k, v]) => `\`${k}=${v}\``).join(', ')}.`, '');
    L.push('| request | requests/s | p50 ms | p99 ms | status codes | ÷ static file | command |');
    L.push('|---|---|---|---|---|---|---|');
    const rows = [['GET /static/chat.css (nginx alone)', web.static], ['GET /rooms (logged in)', web.rooms], ['POST /login (Argon2id)', web.login]];
    for (const [name, r] of rows) {
      L.push(`| ${name} | ${f0(r.rps)} | ${f2(r.p50_ms)} | ${f2(r.p99_ms)} | ${r.statuses || `non-2xx/3xx: ${r.non2xx3xx}`} | ${ratio(r.rps, web.static.rps)} | \`${r.cmd}\` |`);
    }
    L.push('');
  }

  L.push('## Where parley-chat spends its time', '');
  if (!prof || prof.error) {
    L.push(`Not measured: ${prof ? prof.error : 'not run'}.`, '');
  } else {
    L.push(`\`perf record -F 999 -g -p PID\` (cpu-clock) during a fan-out run like the one above (${f0(prof.run.deliveries_per_s)} deliveries/s, ${f0(prof.run.deliveries_per_cpu_s)} per server CPU-s). Self time, by shared object and by symbol (entries over 0.7%):`, '');
    L.push('```', ...prof.byDso, '```', '', '```', ...prof.bySymbol, '```', '');
    const i = prof.inclusive || {};
    L.push(`Inclusive (time under the function, callees included): \`send()\` ${f2(i.send)}%, of which the loopback receive path (softirq, run inside the sender's send) ${f2(i.softirq)}%; \`poll()\` ${f2(i.poll)}%; \`chat_conn_writeable\` ${f2(i.writeable)}%.`, '');
  }

  if (profHs && !profHs.error) {
    L.push(`During the handshake run (${f0(profHs.run.handshakes_per_s)} handshakes/s), by object and by symbol:`, '');
    L.push('```', ...profHs.byDso.slice(0, 8), '```', '', '```', ...profHs.bySymbol.slice(0, 12), '```', '');
    L.push(`\`lws_dll2_add_sorted\` (6000 connections; inclusive ${f2(profHs.inclusive?.sorted)}%) is libwebsockets 4.1 inserting a timer into its one sorted linked list of scheduled events (READMEs/README.lws_sul.md): every connection gets a validity timer from the ping/idle policy (\`retry_and_idle_policy\`), each later than all the others, so each insertion walks a list as long as the number of connections: O(N²) over N handshakes. lws-bare sets no such policy.`, '');
  }
  L.push('## Against the targets of issue 6 (closed-loop fan-out, idle memory)', '');
  L.push(...discussion(fo, la, W.memory, prof), '');
  L.push('## Commands', '');
  L.push('`make bench` = `bench/run-bench` = build, `ulimit -n 20000`, `node bench/run-bench.mjs`. The load generator runs were:', '');
  L.push('```');
  for (const c of cmds) L.push(`# ${c.label}`, c.cmd);
  L.push('```', '');
  L.push('Peers: `build/bench/lws-bare PORT`, `node bench/peers/node-ws/server.mjs PORT`, `/usr/bin/python3 bench/peers/python-websockets/server.py PORT`.',
    `parley-chat: \`JWT_SECRET=<random> CHAT_PORT=PORT ${Object.entries(CHAT_BENCH_ENV).map(([k, v]) => `${k}=${v}`).join(' ')} build/chat/parley-chat\`.`, '');
  return L.join('\n');
}

// The sections other commands (and people) write, kept as they are.
function keptSections() {
  return DOC_SECTIONS.map(([m]) => docSection(m)).join('\n\n');
}

function discussion(fo, la, mem, prof) {
  const P = 'parley-chat';
  const out = [];
  const p = fo[P] || {};
  const node = fo['node-ws'] || {};
  const bare = fo['lws-bare'] || {};
  const rN = p.deliveries_per_cpu_s && node.deliveries_per_cpu_s ? p.deliveries_per_cpu_s / node.deliveries_per_cpu_s : null;
  const rB = p.deliveries_per_cpu_s && bare.deliveries_per_cpu_s ? p.deliveries_per_cpu_s / bare.deliveries_per_cpu_s : null;
  out.push(`* **Fan-out ≥ 3× Node's deliveries per server CPU-second**: measured ${rN ? `${rN.toFixed(2)}×` : 'n/a'} — ${rN === null ? 'not measured' : rN >= 3 ? 'met' : 'NOT met'}.`);
  out.push(`* **Within 80% of bare libwebsockets**: measured ${rB ? `${(rB * 100).toFixed(0)}%` : 'n/a'} of lws-bare's deliveries per CPU-second — ${rB === null ? 'not measured' : rB >= 0.8 ? 'met' : 'NOT met'}.`);
  const lp = la[P] || {};
  out.push(`* **p99 < 10 ms at half our maximum rate, 1000 clients**: p99 ${f2(lp.p99_ms)} ms at ${f0(lp.sent_per_s)} messages/s (${f0(lp.deliveries_per_s)} deliveries/s) — ${lp.p99_ms === undefined ? 'not measured' : lp.p99_ms < 10 ? 'met' : 'NOT met'}.`);
  const lsp = (results.workloads.latencySmall || {})[P];
  if (lsp && lsp.p99_ms !== undefined) {
    out.push(`  The same ${f0(lsp.sent_per_s)} messages/s from 1000 clients in rooms of 10 (${f0(lsp.deliveries_per_s)} deliveries/s): p99 ${f2(lsp.p99_ms)} ms — ${lsp.p99_ms < 10 ? 'under' : 'over'} 10 ms.`,
      '  The room size, i.e. the frames written per message, decides the tail: a message to 100 members is',
      '  100 sends on one core before the last member has it.');
  }
  if (p.deliveries_per_cpu_s) {
    const us = 1e6 / p.deliveries_per_cpu_s;
    const room = FANOUT.conns / FANOUT.rooms;
    out.push(`  Measured cost: ${us.toFixed(1)} µs of server CPU per delivery, so one message to a room of ${room} is`,
      `  ${((us * room) / 1000).toFixed(2)} ms of work before its last member can have it, and the load generator pays about as`,
      '  much again to read it on the same 2 cores. p99 at a given rate is that burst time plus queueing behind',
      '  the bursts of the other rooms and behind whatever else runs on the machine (see the load average above);',
      '  the sweep table shows how it grows with offered load, and lws-bare, which does less work per delivery,',
      '  is held to the same bound.');
  }
  const m10 = mem?.[10000]?.[P];
  const kib = m10 && m10.rss_idle_kb > 0 ? (m10.rss_idle_kb - m10.rss_before_kb) / m10.connected : null;
  out.push(`* **≤ 4 KiB per idle connection at 10000**: ${kib === null ? 'not measured' : `${kib.toFixed(2)} KiB — ${kib <= 4 ? 'met' : 'NOT met'}`} (Centrifugo publishes about 27 KB).`);
  const r512 = mem?.[10000]?.['parley-chat rx512'];
  const kib512 = r512 && r512.rss_idle_kb > 0 ? (r512.rss_idle_kb - r512.rss_before_kb) / r512.connected : null;
  if (kib512 !== null) {
    out.push(`  With \`CHAT_RX_BUFFER=512\` instead of the default 1024 the same 10000 connections cost ${kib512.toFixed(2)} KiB each:`,
      '  libwebsockets allocates rx_buffer_size bytes for every established connection, whether it ever',
      '  receives a large message or not (messages longer than the buffer are reassembled by the daemon anyway).');
  }
  out.push('', 'Reading the figures:', '',
    '* The load generator and the server share 2 cores; in the closed-loop fan-out the client side',
    '  (parsing every delivered frame) costs about as much CPU as the server, so deliveries/s is bounded',
    '  by the machine, not by the server alone. Deliveries per server CPU-second is the figure to compare.',
    '* Every server here runs one event loop on one core (libwebsockets with one service thread, Node and',
    '  asyncio by design).');
  const kernelShare = prof && prof.byDso ? Number((prof.byDso.find((l) => l.includes('[kernel')) || '').split('%')[0]) / 100 : null;
  if (kernelShare && p.deliveries_per_cpu_s && node.deliveries_per_cpu_s) {
    const pu = 1e6 / p.deliveries_per_cpu_s;
    const nu = 1e6 / node.deliveries_per_cpu_s;
    const floorUs = pu * kernelShare;
    out.push(`* The kernel floor: parley-chat spends ${pu.toFixed(1)} µs of CPU per delivery, node-ws`,
      `  ${nu.toFixed(1)} µs. ${(kernelShare * 100).toFixed(0)}% of parley-chat's time is in the kernel, i.e. ${floorUs.toFixed(1)} µs per delivery that any server`,
      `  delivering these bytes pays (Node included). Even with our user-space cost at zero the ratio`,
      `  could be at most ${(nu / floorUs).toFixed(2)}×. parley-chat already writes up to CHAT_WRITE_BATCH (16) pending frames`,
      '  of a connection in one `send()`; more gain needs still fewer system calls per delivery, not faster C.');
  }
  const peersP99 = ['lws-bare', 'node-ws', 'python-websockets'].map((n) => la[n]?.p99_ms).filter((x) => x !== undefined);
  if (lp.p99_ms !== undefined && peersP99.length) {
    out.push(`* Latency: at the same offered rate the peers measured p99 of ${['lws-bare', 'node-ws', 'python-websockets'].map((n) => `${n} ${f2(la[n]?.p99_ms)} ms`).join(', ')};`,
      `  parley-chat ${f2(lp.p99_ms)} ms. The server CPU used per second at this rate is ${f2(lp.server_cpu_run_s / (lp.run_s || 1))} s for parley-chat, so the`,
      '  daemon is mostly idle: the p99 is the time to write and read a burst of 100 frames (above) plus',
      '  bursts of other rooms overlapping it plus waits for a CPU on a shared 2-core machine (load average in',
      '  the Machine section), for the server and the load generator alike; compare the rooms-of-10 table.',
      '  Node and asyncio write a broadcast straight into each socket from the receive handler; both',
      '  libwebsockets servers (ours and lws-bare) ask for a writable callback per recipient and write on the',
      '  next pass of the event loop: when bursts overlap, that extra round is where their tail comes from.');
  }
  const ls = results.workloads.latencySmall || {};
  const cpuPerMsg = (r) => (r && r.deliveries_per_cpu_s && r.deliveries_per_s ? (r.deliveries_per_s / r.deliveries_per_cpu_s) / (r.sent_per_s || 1) * 1e6 : null);
  if (cpuPerMsg(ls[P]) && cpuPerMsg(ls['node-ws'])) {
    out.push(`* With small rooms the per-wakeup cost shows: in rooms of 10 parley-chat used ${f0(cpuPerMsg(ls[P]))} µs of CPU per message`,
      `  (${f2(ls[P].deliveries_per_s / ls[P].deliveries_per_cpu_s)} CPU-s per second), node-ws ${f0(cpuPerMsg(ls['node-ws']))} µs.`,
      '  The event loop: parley-chat and the load generator run lws on libev (epoll, lws\'s evlib plugin) since commit',
      '  2877a8a; lws-bare stays on lws\'s own poll() loop. poll() costs a pass over every connection per wakeup: with',
      '  15,000 idle connections it kept 38% of a core busy (perf: sock_poll, fdget, tcp_poll), epoll 1%. At 1000',
      '  connections epoll costs a little more (an epoll_ctl whenever a socket starts or stops waiting to write):',
      '  about 5% fewer deliveries per CPU-s measured by hand on 2026-12-02.',
      '  Until commit b38758f parley-chat (and the load generator) passed lws 4.1.6 an fd_limit_per_thread below the open-files',
      '  limit, which makes lws find every descriptor by a linear search (wsi_from_fd: 63% of the daemon\'s CPU at',
      '  5,000 connections): figures from before then carry that cost, growing with the connections held.');
  }
  if (prof && prof.byDso && prof.byDso.length) {
    const i = prof.inclusive || {};
    out.push('', `* The profile says where the single loop goes: by object ${prof.byDso.slice(0, 4).map((l) => l.replace(/\s+/g, ' ')).join('; ')}.`,
      `  ${f2(i.send)}% of parley-chat's CPU time is under \`send()\`: at least one system call per recipient per`,
      '  wakeup (up to 16 pending frames batched into one), and on loopback that call also runs the',
      `  receiver's TCP input (softirq, ${f2(i.softirq)}%). \`poll()\` is ${f2(i.poll)}%. Our own code (JSON once per message,`,
      '  ring, per-connection tail) is a few percent: the protocol work is not the limit; the per-frame',
      '  system call is.',
      '* What a multi-core design would gain: the send path is per socket and scales with cores, so N lws',
      '  service threads (connections sharded by thread, each room keeping one ring per thread, fed by the',
      '  thread that received the message through a lock-free queue or lws_cancel_service) would multiply',
      '  deliveries by close to N on a machine with N free cores. On this 2-core machine, where the load',
      '  generator needs one core, it would gain nothing measurable. Batching the frames a connection has',
      '  pending into one `send()` (done: CHAT_WRITE_BATCH) gains on any machine; it doubled deliveries per',
      '  server CPU-second here (147k to 295k in the same workload).');
  }
  return out;
}

async function main() {
  if (process.env.BENCH_REPORT_ONLY === '1') { // re-render docs/benchmarks.md from the last results
    const saved = JSON.parse(readFileSync(join(ROOT, 'bench', 'results', 'results.json'), 'utf8'));
    Object.assign(results, saved);
    cmds.push(...(saved.cmds || []));
    writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), report(saved.machine, saved.profile, saved.website, saved.profileHandshake));
    log('re-rendered docs/benchmarks.md from bench/results/results.json');
    return;
  }
  const missing = haveBinaries().filter((f) => ORDER.includes('parley-chat') || !f.endsWith('parley-chat'));
  if (missing.length) {
    console.error(`run-bench: missing ${missing.join(', ')}: build first (make build)`);
    process.exit(1);
  }
  const m = machine();
  log(`machine: ${m.cpu}, ${m.cores} cores, kernel ${m.kernel}`);
  await chatBenches();
  log('profile: perf record on parley-chat during fan-out');
  const prof = await profile();
  results.profile = prof;
  log('profile: perf record on parley-chat during the handshake run');
  const profHs = await profile({ ...HANDSHAKE, conns: 6000, rooms: 600 }, QUICK ? 3 : 4);
  results.profileHandshake = profHs;
  log('website: starting the stack');
  const web = await websiteBench();
  results.website = web;
  // Last, so that on a slow day the time budget cuts these rather than the main tables.
  await memoryBenches();
  // (p99 against offered load is bench/rate-sweep.mjs's, run next by bench/run-bench)
  results.machine = m;
  results.cmds = cmds;
  results.seconds = Math.round((Date.now() - T0) / 1000);
  const md = report(m, prof, web, profHs);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'results.json'), JSON.stringify(results, null, 1));
  writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), md);
  log(`wrote docs/benchmarks.md and bench/results/results.json in ${Math.round((Date.now() - T0) / 1000)} s`);
  void LOADGEN; void BIN;
}

const watchdog = setTimeout(() => { console.error('run-bench: over 10 minutes, giving up'); process.exit(1); }, 10 * 60 * 1000);
watchdog.unref();
main().catch((e) => { console.error(e); process.exit(1); });
