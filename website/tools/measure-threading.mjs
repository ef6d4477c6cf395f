// Measures libmicrohttpd threading modes for the website with wrk (how WEB_THREADS's default
// was chosen; numbers in docs/website.md). Usage, from tests/ (for its node_modules):
//   PARLEY_BUILD_DIR=../build node ../website/tools/measure-threading.mjs
// For each WEB_THREADS value it starts a real PostgreSQL + website, logs a user in, then runs
// wrk against GET /rooms with that session (a session lookup and a rooms query per request)
// and GET /login (no database), at two concurrency levels.
import { spawnSync } from 'node:child_process';
import { startSite, newUser } from '../../tests/website/helpers.mjs';

const modes = (process.env.MODES || '0,1,2,4,8').split(',');
const conns = (process.env.CONNS || '16,128').split(',');
const secs = process.env.SECS || '5';
console.log('| WEB_THREADS | path | connections | req/s | p50 | p99 | errors |');
console.log('|---|---|---|---|---|---|---|');
for (const threads of modes) {
  const site = await startSite({ env: { WEB_THREADS: threads, DB_POOL_SIZE: '8', LOG_LEVEL: 'warn',
    WEB_MAX_CONNECTIONS: '2000' } });
  try {
    const u = await newUser(site, 'bench');
    for (let i = 0; i < 20; i++) await u.client.createRoom(`bench-room-${i}`, `Bench ${i}`, 'x');
    for (const path of ['/rooms', '/login']) {
      for (const c of conns) {
        const r = spawnSync('wrk', ['-t2', `-c${c}`, `-d${secs}s`, '--latency', '-H',
          `Cookie: ${u.client.cookieHeader()}`, `${site.url}${path}`], { encoding: 'utf8' });
        const rps = (r.stdout.match(/Requests\/sec:\s+([\d.]+)/) || [])[1];
        const p50 = (r.stdout.match(/50%\s+([\d.]+\w+)/) || [])[1];
        const p99 = (r.stdout.match(/99%\s+([\d.]+\w+)/) || [])[1];
        const errs = (r.stdout.match(/(Socket errors:.*|Non-2xx or 3xx responses: \d+)/g) || []).join('; ') || '0';
        console.log(`| ${threads === '0' ? '0 (thread per conn)' : threads} | ${path} | ${c} | ${rps} | ${p50} | ${p99} | ${errs} |`);
      }
    }
  } finally {
    await site.stop();
  }
}
