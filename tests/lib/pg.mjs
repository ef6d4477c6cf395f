// Starts a real, throw-away PostgreSQL 15 cluster for a test: initdb in a temp dir with
// scram-sha-256 password auth on a free port of 127.0.0.1. Stop it with `await pg.stop()`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort } from './proc.mjs';

const PGBIN = process.env.PGBIN || '/usr/lib/postgresql/15/bin';

function asPostgres(cmd, args) {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export async function startPostgres({ db = 'parley', user = 'parley' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-pg-'));
  chmodSync(dir, 0o755);
  execFileSync('chown', ['postgres:', dir]);
  const data = join(dir, 'data');
  const superPw = randomBytes(16).toString('hex');
  const password = randomBytes(16).toString('hex');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, superPw + '\n');
  execFileSync('chown', ['postgres:', pwfile]);
  asPostgres(`${PGBIN}/initdb`, ['-D', data, '-U', 'postgres', '--auth=scram-sha-256',
    `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C.UTF-8']);
  const port = await freePort();
  const pg = {
    dir, data, port, host: '127.0.0.1', db, user, password,
    url: `postgresql://${user}:${password}@127.0.0.1:${port}/${db}`,
    start() {
      asPostgres(`${PGBIN}/pg_ctl`, ['-D', data, '-l', join(data, 'server.log'), '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
        '-w', 'start']);
    },
    stop() {
      spawnSync('runuser', ['-u', 'postgres', '--', `${PGBIN}/pg_ctl`, '-D', data, '-m', 'fast',
        '-w', 'stop'], { encoding: 'utf8' });
    },
    // Runs SQL as the superuser (for setting up or inspecting state in a test).
    psql(sql) {
      const r = spawnSync('/usr/bin/psql',
        ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-At', '-v',
          'ON_ERROR_STOP=1', '-c', sql],
        { encoding: 'utf8', env: { ...process.env, PGPASSWORD: superPw } });
      if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
      return r.stdout.trim();
    },
    log() { try { return readFileSync(join(data, 'server.log'), 'utf8'); } catch { return ''; } },
    async destroy() { pg.stop(); rmSync(dir, { recursive: true, force: true }); },
  };
  pg.start();
  const r = spawnSync('/usr/bin/psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres',
    '-d', 'postgres', '-v', 'ON_ERROR_STOP=1',
    '-c', `CREATE ROLE ${user} LOGIN PASSWORD '${password}'`,
    '-c', `CREATE DATABASE ${db} OWNER ${user}`],
    { encoding: 'utf8', env: { ...process.env, PGPASSWORD: superPw } });
  if (r.status !== 0) throw new Error(`creating role/db failed: ${r.stderr}`);
  // Environment for the website daemon.
  pg.env = { DB_HOST: '127.0.0.1', DB_PORT: String(port), DB_NAME: db, DB_USER: user,
    DB_PASSWORD: password };
  return pg;
}
