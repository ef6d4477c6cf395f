// Does password hashing stall other requests? For each WEB_THREADS value: real Argon2id
// parameters (64 MiB, 2 passes), 8 clients logging in in a loop, and wrk measuring GET
// /healthz at the same time. Usage as measure-threading.mjs.
import { spawnSync, spawn } from 'node:child_process';
import { startSite, newUser } from '../../tests/website/helpers.mjs';

const modes = (process.env.MODES || '0,4').split(',');
console.log('| WEB_THREADS | logins/s | /healthz req/s | p50 | p99 | max |');
console.log('|---|---|---|---|---|---|');
for (const threads of modes) {
  const site = await startSite({ env: { WEB_THREADS: threads, LOG_LEVEL: 'warn',
    PWHASH_MEMLIMIT_KIB: '65536', PWHASH_OPSLIMIT: '2' } });
  try {
    const u = await newUser(site, 'stall');
    let logins = 0;
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const c = site.client();
        const r = await c.login(u.email, u.password);
        if (r.status === 303) logins++;
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    const t0 = Date.now();
    const wrk = await new Promise((res) => {
      const p = spawn('wrk', ['-t1', '-c16', '-d6s', '--latency', `${site.url}/healthz`]);
      let out = '';
      p.stdout.on('data', (d) => { out += d; });
      p.on('exit', () => res(out));
    });
    stop = true;
    await Promise.all(loops);
    const secs = (Date.now() - t0) / 1000;
    const g = (re) => (wrk.match(re) || [])[1];
    console.log(`| ${threads} | ${(logins / secs).toFixed(1)} | ${g(/Requests\/sec:\s+([\d.]+)/)} | ${g(/50%\s+([\d.]+\w+)/)} | ${g(/99%\s+([\d.]+\w+)/)} | ${g(/Latency\s+\S+\s+\S+\s+([\d.]+\w+)/)} |`);
  } finally {
    await site.stop();
  }
}
