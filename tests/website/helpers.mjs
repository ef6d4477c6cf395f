// Shared by the website black-box tests: a real PostgreSQL and the real parley-website on
// free ports of 127.0.0.1, and a cookie-keeping client (WebClient from tests/lib/stack.mjs).
import { randomBytes } from 'node:crypto';
import { startPostgres } from '../lib/pg.mjs';
import { BIN, ROOT, freePort, startDaemon } from '../lib/proc.mjs';
import { newSecret } from '../lib/token.mjs';
import { WebClient, waitForHttp } from '../lib/stack.mjs';
import { join } from 'node:path';

export { WebClient };
export const uniq = () => randomBytes(4).toString('hex');

// Cheap Argon2id parameters for tests (the production defaults are libsodium's
// "interactive" 64 MiB / 2 passes); the algorithm and code path are the same.
const FAST_HASH = { PWHASH_MEMLIMIT_KIB: '8192', PWHASH_OPSLIMIT: '1' };

// Starts PostgreSQL and the website. Returns {pg, web, url, env, secret, admin, stop()}.
export async function startSite({ env = {}, admin = true } = {}) {
  const pg = await startPostgres();
  const port = await freePort();
  const secret = newSecret();
  const adm = { email: `admin-${uniq()}@example.com`, password: randomBytes(12).toString('base64url') };
  const siteEnv = { ...pg.env, JWT_SECRET: secret, WEB_PORT: String(port),
    STATIC_DIR: join(ROOT, 'website', 'static'), LOG_LEVEL: 'debug', ...FAST_HASH,
    ...(admin ? { ADMIN_EMAIL: adm.email, ADMIN_PASSWORD: adm.password } : {}), ...env };
  let web;
  try {
    web = await startDaemon(BIN.website, siteEnv, port, { timeoutMs: 60000 });
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, { exited: web.exited, timeoutMs: 60000 });
  } catch (e) {
    if (web) await web.stop();
    await pg.destroy();
    throw e;
  }
  const site = { pg, web, port, url: `http://127.0.0.1:${port}`, env: siteEnv, secret, admin: adm };
  site.client = () => new WebClient(site.url);
  site.stop = async () => {
    const r = await web.stop();
    await pg.destroy();
    return r;
  };
  return site;
}

// Registers a fresh user through the forms; returns {email, name, password, client, res}.
export async function newUser(site, who = 'user', extra = {}) {
  const id = uniq();
  const u = { email: `${who}-${id}@example.com`, name: `${who} ${id}`,
    password: `pw-${randomBytes(9).toString('base64url')}`, ...extra };
  const c = site.client();
  u.res = await c.register(u.email, u.name, u.password);
  u.client = c;
  return u;
}
