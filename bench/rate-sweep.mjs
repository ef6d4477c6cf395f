// Open-loop rate sweep (issue 10): paced senders at rising rates, for Parley's chat daemon
// with history (Redis AOF + the archive) and the systems given in BENCH_SWEEP (lws-bare,
// node-ws; BENCH_CHAT_BIN=<binary> adds "parley-chat (binary)" run the same way, e.g. the
// daemon from before history, which ignores Redis). Reports for each the highest delivered
// rate with zero loss (no lost, gap or reordered message) and p99 < 50 ms. Redis's CPU is
// counted with the chat daemon's. Prints one JSON line per run and a summary table.
//   node bench/rate-sweep.mjs [msgs/s ...]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { SYSTEMS, runLoadgen, newSecret, ROOT, FSYNC } from './lib.mjs';

const RATES = process.argv.slice(2).map(Number).filter((x) => x > 0);
const rates = RATES.length ? RATES : [1000, 2500, 5000, 7500, 10000, 12500, 15000, 20000];
const DUR = Number(process.env.BENCH_SWEEP_DUR || 4);
const W = { conns: 1000, rooms: 10, senders: 20, window: 0, duration: DUR, size: 64, procs: 1 };
const names = (process.env.BENCH_SWEEP || 'parley-chat,lws-bare').split(',');

const summary = {};
for (const name of names) {
  const sys = SYSTEMS[name];
  let best = null;
  // one server per system, warmed up first (a room's first message creates its counter,
  // which asks the archive once)
  const secret = newSecret();
  const server = await sys.start(secret, 'traffic');
  await runLoadgen(sys, server, { ...W, rate: rates[0], duration: 1, label: 'warmup' }, { secret });
  for (const rate of rates) {
    const r = await runLoadgen(sys, server, { ...W, rate, label: `sweep-${rate}` }, { secret });
    const ok = r.rc === 0 && !r.lost && !r.gaps && !r.reorders && r.p99_ms < 50;
    console.log(JSON.stringify({ system: name, rate, ok, deliveries_per_s: Math.round(r.deliveries_per_s || 0),
      p50_ms: r.p50_ms, p99_ms: r.p99_ms, lost: r.lost, gaps: r.gaps, server_cpu_run_s: r.server_cpu_run_s,
      redis_cpu_s: r.redis_cpu_s, per_cpu_s: Math.round(r.deliveries_per_cpu_s || 0),
      per_cpu_s_with_redis: r.deliveries_per_cpu_s_with_redis, error: r.error }));
    if (ok) best = { rate, ...r };
    else break; // rising rates: the first failure ends this system's sweep
  }
  await server.stop();
  summary[name] = best;
}
const lines = ['| system | highest zero-loss rate, p99 < 50 ms | deliveries/s | p99 ms | deliveries per CPU-s (with Redis) |',
  '|---|---|---|---|---|'];
for (const [n, b] of Object.entries(summary)) {
  if (!b) { lines.push(`| ${n} | none of the rates (${rates[0]} msg/s failed) | | | |`); continue; }
  lines.push(`| ${n} | ${b.rate} msg/s | ${Math.round(b.deliveries_per_s)} | ${b.p99_ms} | ${Math.round(b.deliveries_per_cpu_s)}${b.deliveries_per_cpu_s_with_redis ? ` (${b.deliveries_per_cpu_s_with_redis})` : ''} |`);
}
console.log(`\n${lines.join('\n')}`);
// BENCH_SWEEP_DOC=1 (make bench): the table goes into docs/benchmarks.md between markers.
if (process.env.BENCH_SWEEP_DOC === '1') {
  const doc = join(ROOT, 'docs', 'benchmarks.md');
  const begin = '<!-- rate-sweep begin -->', end = '<!-- rate-sweep end -->';
  const section = [begin, '## Open-loop rate sweep (with history)', '',
    `${new Date().toISOString()}, ${cpus().length} CPUs, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end;`,
    `1000 connections in rooms of 100, 20 paced senders, ${DUR} s per rate (${rates.join(', ')} msg/s, rising until one fails);`,
    `parley-chat stores every message in Redis (AOF, appendfsync ${FSYNC}) and archives it (MongoDB stand-in); Redis's CPU is counted`,
    'in the last column. "zero loss": no message lost, skipped or reordered.', '', ...lines, '', end].join('\n');
  let text = readFileSync(doc, 'utf8');
  const i = text.indexOf(begin), j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(doc, text);
}
