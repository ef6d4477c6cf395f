// The whole native stack for black-box tests: a real PostgreSQL (pg.mjs), the website and chat
// daemons of this build tree, and Nginx in front of them on one free port of 127.0.0.1, its
// nginx.conf rendered from nginx/nginx.conf.template by nginx/render-conf exactly as
// `make run` does. Everything lives in a temp dir and is stopped by PID in stop().
//
//   const s = await startStack({ webEnv: {...}, chatEnv: {...}, nginxEnv: {...} });
//   s.url            'http://127.0.0.1:PORT' (the only port a test should talk to)
//   s.secret         the JWT secret both daemons share
//   s.admin          {email, password} of the first admin
//   s.pg, s.website, s.chat, s.nginx   the parts (daemons have .stderr, .pid, .port)
//   s.nginxAccessLog(), s.nginxErrorLog()   the log files' text so far
//   await s.restartChat() / s.stopChat() / s.startChat()
//   await s.stop()
//
// Also exported: WebClient, a cookie-keeping HTTP client that fills in CSRF tokens, so tests
// can register, log in and create rooms as a user would with forms.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, chmodSync, readFileSync, writeFileSync, rmSync, existsSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startPostgres } from './pg.mjs';
import { BIN, ROOT, freePort, waitForPort, startDaemon, sleep } from './proc.mjs';
import { newSecret } from './token.mjs';
import { startRedis } from './redis.mjs';
import { startMongo } from './mongo.mjs';

export const NGINX = process.env.NGINX || '/usr/sbin/nginx';
export const STATIC_DIR = join(ROOT, 'website', 'static');
const START_TIMEOUT_MS = Number(process.env.PARLEY_START_TIMEOUT_MS || 60000);
export const SANITIZER_RE = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: /;

// Polls GET url until it answers `status` (the website is ready once its /healthz says the
// database answers, which is after its migrations ran).
// The chat daemon answers 503 to upgrades until it has connected to Redis: wait for that.
async function waitForRedis(port, d) {
  const end = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < end) {
    if (d.child.exitCode !== null || d.child.signalCode !== null) throw new Error(`chat exited:\n${d.stderr}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/metrics`);
      const t = await r.text();
      // and has read the moderation stream (until then new connections are closed 1013)
      if (/^chat_redis_up 1$/m.test(t) && /^chat_redis_subscriber_up 1$/m.test(t)
        && /^chat_moderation_synced 1$/m.test(t)) return;
    } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`chat did not connect to Redis:\n${d.stderr}`);
}

export async function waitForHttp(url, { status = 200, timeoutMs = START_TIMEOUT_MS, exited } = {}) {
  const until = Date.now() + timeoutMs;
  let last = 'no answer';
  let dead = null;
  if (exited) exited.then((r) => { dead = r; });
  for (;;) {
    if (dead) throw new Error(`process exited while waiting for ${url}: ${JSON.stringify(dead)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await r.arrayBuffer();
      if (r.status === status) return;
      last = `status ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > until) throw new Error(`${url} did not answer ${status} (last: ${last})`);
    await sleep(100);
  }
}

// Renders nginx.conf with nginx/render-conf (the same step `make run` and the container use).
export function renderNginxConf(env) {
  const r = spawnSync('bash', [join(ROOT, 'nginx', 'render-conf')],
    { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  if (r.status !== 0) throw new Error(`nginx/render-conf failed: ${r.stderr}`);
  return r.stdout;
}

// Starts `nginx -p dir -c conf` in the foreground (daemon off in the template).
export async function startNginx(dir, conf, port) {
  const t = spawnSync(NGINX, ['-t', '-q', '-e', 'stderr', '-p', dir, '-c', conf], { encoding: 'utf8' });
  if (t.status !== 0) throw new Error(`nginx -t failed:\n${t.stderr}`);
  const child = spawn(NGINX, ['-e', join(dir, 'error.log'), '-p', dir, '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const n = { child, pid: child.pid, port, stderr: '' };
  child.stdout.on('data', (b) => { n.stderr += b.toString(); });
  child.stderr.on('data', (b) => { n.stderr += b.toString(); });
  n.exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  n.stop = async (signal = 'SIGTERM', timeout = 10000) => {
    if (child.exitCode !== null || child.signalCode !== null) return n.exited;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    const r = await n.exited;
    clearTimeout(timer);
    return r;
  };
  try {
    await Promise.race([waitForPort(port, '127.0.0.1', START_TIMEOUT_MS), n.exited.then((r) => {
      throw new Error(`nginx exited early (${JSON.stringify(r)}):\n${n.stderr}`);
    })]);
  } catch (e) {
    await n.stop('SIGKILL');
    throw e;
  }
  return n;
}

// Nginx's workers run as "nobody" under root: in a clone inside a private home (/root is
// mode 700) they cannot read website/static, so they get a copy in the stack's temp dir.
function nginxStaticDir(dir) {
  if (process.getuid() !== 0) return STATIC_DIR;
  const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--',
    'test', '-x', STATIC_DIR]);
  if (r.status === 0) return STATIC_DIR;
  const copy = join(dir, 'static');
  cpSync(STATIC_DIR, copy, { recursive: true });
  spawnSync('chmod', ['-R', 'a+rX', copy]);
  return copy;
}

export async function startStack(opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-stack-'));
  // Nginx workers run as "nobody" when the master is root: they must reach the temp dirs.
  chmodSync(dir, 0o755);
  const secret = opts.secret || newSecret();
  const admin = { email: opts.adminEmail || 'admin@example.com',
    password: opts.adminPassword || randomBytes(12).toString('base64url') };
  const s = { dir, secret, admin, pg: null, redis: null, website: null, chat: null, nginx: null,
    sanitizerReports: [] };
  const accessLog = join(dir, 'access.log');
  const errorLog = join(dir, 'error.log');

  // Stops everything (reverse order). Then throws if a daemon printed a sanitizer report
  // (ASan/UBSan/LSan builds): a test that passed over a memory error has not passed.
  s.stop = async () => {
    for (const part of [s.nginx, s.chat, s.website]) {
      if (part) await part.stop().catch(() => {});
    }
    if (s.pg) await s.pg.destroy().catch(() => {});
    if (s.redis) await s.redis.cleanup().catch(() => {});
    if (s.mongo) await s.mongo.stop().catch(() => {});
    if (process.env.PARLEY_KEEP_TMP) process.stderr.write(`stack: kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
    const reports = [...s.sanitizerReports];
    for (const [name, part] of [['website', s.website], ['chat', s.chat]]) {
      if (part && SANITIZER_RE.test(part.stderr)) reports.push(`${name}:\n${part.stderr.slice(-6000)}`);
    }
    if (reports.length) throw new Error(`sanitizer report(s):\n${reports.join('\n')}`);
  };

  try {
    s.pg = await startPostgres();
    // Redis orders and stores messages (the chat daemon refuses upgrades until it has it)
    s.redis = await startRedis({ aof: true });
    // MongoDB archives every message; a room's first message also asks it whether the room
    // has history (a counter Redis lost is reseeded from it), so the stack needs it. The
    // stand-in (tests/lib/mongo.mjs: not MongoDB, see scripts/mongo-standin) unless
    // opts.mongo === false.
    if (opts.mongo !== false) s.mongo = await startMongo({ storage: join(dir, 'mongo') });
    const redisEnv = { CHAT_REDIS_HOST: '127.0.0.1', CHAT_REDIS_PORT: String(s.redis.port) };
    const webPort = await freePort();
    const chatPort = await freePort();
    const chatAdminPort = await freePort();
    const port = opts.port || await freePort();
    s.port = port;
    s.url = `http://127.0.0.1:${port}`;

    s.webEnv = { ...s.pg.env, JWT_SECRET: secret, WEB_LISTEN_ADDR: '127.0.0.1',
      WEB_PORT: String(webPort), ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password,
      STATIC_DIR, TRUST_PROXY: '1', COOKIE_SECURE: '0', LOG_LEVEL: 'info',
      WEB_REDIS_HOST: '127.0.0.1', WEB_REDIS_PORT: String(s.redis.port), ...opts.webEnv };
    s.chatEnv = { JWT_SECRET: secret, CHAT_LISTEN_ADDR: '127.0.0.1', CHAT_PORT: String(chatPort),
      CHAT_ADMIN_PORT: String(chatAdminPort), LOG_LEVEL: 'info', ...redisEnv,
      ...(s.mongo ? { CHAT_MONGO_URI: s.mongo.uri } : {}), ...opts.chatEnv };

    s.website = await startDaemon(BIN.website, s.webEnv, webPort, { timeoutMs: START_TIMEOUT_MS });
    s.website.port = webPort;
    await waitForHttp(`http://127.0.0.1:${webPort}/healthz`, { exited: s.website.exited });

    s.startChat = async () => {
      if (s.chat && s.chat.child.exitCode === null && s.chat.child.signalCode === null) return;
      s.chat = await startDaemon(BIN.chat, s.chatEnv, [chatPort, chatAdminPort],
        { timeoutMs: START_TIMEOUT_MS });
      s.chat.port = chatPort;
      s.chat.adminPort = chatAdminPort; // /healthz, /metrics (never proxied by nginx)
      await waitForRedis(chatAdminPort, s.chat);
    };
    s.stopChat = async () => {
      if (!s.chat) return;
      await s.chat.stop();
      // A restarted chat daemon gets a new stderr: keep the old one's reports.
      if (SANITIZER_RE.test(s.chat.stderr)) s.sanitizerReports.push(`chat:\n${s.chat.stderr.slice(-6000)}`);
    };
    s.restartChat = async () => { await s.stopChat(); await s.startChat(); };
    await s.startChat();

    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, renderNginxConf({
      NGINX_LISTEN: `127.0.0.1:${port}`, NGINX_WEBSITE: `127.0.0.1:${webPort}`,
      NGINX_CHAT: `127.0.0.1:${chatPort}`, NGINX_STATIC_DIR: nginxStaticDir(dir), NGINX_RUN_DIR: dir,
      NGINX_ACCESS_LOG: accessLog, NGINX_ERROR_LOG: errorLog, NGINX_WORKERS: '1',
      ...opts.nginxEnv }));
    s.nginx = await startNginx(dir, conf, port);
  } catch (e) {
    const logs = [s.website && `website:\n${s.website.stderr}`, s.chat && `chat:\n${s.chat.stderr}`]
      .filter(Boolean).join('\n');
    await s.stop().catch((e2) => { e.message += `\n${e2.message}`; });
    e.message += logs ? `\n${logs}` : '';
    throw e;
  }

  const readLog = (f) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  s.nginxAccessLog = () => readLog(accessLog);
  s.nginxErrorLog = () => readLog(errorLog);
  // Everything the parts logged so far (for assertion messages).
  s.logs = () => [`--- website\n${s.website?.stderr || ''}`, `--- chat\n${s.chat?.stderr || ''}`,
    `--- nginx access\n${s.nginxAccessLog()}`, `--- nginx error\n${s.nginxErrorLog()}`].join('\n');
  return s;
}

// A cookie-keeping HTTP client for one user. Redirects are NOT followed (tests check them).
// postForm() fetches the form page first when no CSRF token is known yet, and adds the
// hidden csrf_token from the page's <meta name="csrf-token">.
// How long one HTTP request of a test may take before it fails, naming the request.
const REQUEST_TIMEOUT_MS = 30000;

export class WebClient {
  constructor(baseUrl, { headers = {} } = {}) {
    this.base = baseUrl;
    this.cookies = new Map();
    this.csrf = null;
    this.headers = headers;
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  keepCookies(res) {
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)
        || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(method, path, { body, headers = {} } = {}) {
    const h = { ...this.headers, ...headers };
    if (this.cookies.size) h.cookie = this.cookieHeader();
    const t0 = Date.now();
    let res;
    let text;
    try {
      res = await fetch(this.base + path, { method, body, headers: h, redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      this.keepCookies(res);
      text = await res.text();
    } catch (e) {
      // A DOMException (the timeout) prints as "{}" in node:test: name the request instead.
      throw new Error(`${method} ${this.base}${path}: ${e.name}: ${e.message}`
        + `${e.cause ? ` (${e.cause.code || e.cause.message})` : ''} after ${Date.now() - t0} ms`);
    }
    const m = text.match(/<meta name="csrf-token" content="([^"]*)"/);
    if (m) this.csrf = m[1];
    return { status: res.status, headers: res.headers, text,
      location: res.headers.get('location'),
      json() { return JSON.parse(text); } };
  }

  get(path, opts) { return this.request('GET', path, opts); }

  async postForm(path, fields = {}, { formPage = path, csrf } = {}) {
    if (csrf === undefined) {
      if (!this.csrf) await this.get(formPage);
      csrf = this.csrf;
    }
    const body = new URLSearchParams({ ...fields, ...(csrf !== null ? { csrf_token: csrf } : {}) });
    return this.request('POST', path, { body: body.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  }

  async register(email, name, password) {
    await this.get('/register');
    return this.postForm('/register', { email, name, password });
  }

  async login(email, password) {
    await this.get('/login');
    return this.postForm('/login', { email, password });
  }

  async createRoom(name, title = name, description = '') {
    await this.get('/rooms');
    return this.postForm('/rooms', { name, title, description });
  }

  // POST /api/rooms/NAME/token with the X-CSRF-Token header; returns {status, body}.
  async chatToken(room) {
    if (!this.csrf) await this.get('/rooms');
    const r = await this.request('POST', `/api/rooms/${encodeURIComponent(room)}/token`,
      { headers: { 'x-csrf-token': this.csrf || '' } });
    let body = null;
    try { body = r.json(); } catch { /* not JSON: leave null */ }
    return { status: r.status, body, text: r.text, headers: r.headers };
  }
}
