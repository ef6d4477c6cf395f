// Helpers for the chat daemon's black-box tests: start the real parley-chat, connect real
// WebSocket clients (the `ws` package) and raw TCP sockets for what clients cannot send.
import { connect as netConnect } from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { BIN, freePort, startDaemon, sleep } from '../lib/proc.mjs';
import { mintToken, newSecret } from '../lib/token.mjs';
import { startRedis } from '../lib/redis.mjs';
import { startMongo } from '../lib/mongo.mjs';

// One MongoDB stand-in per test process (each daemon gets a database of its own).
let mongo;
async function sharedMongo() {
  if (!mongo) mongo = startMongo({ unref: true });
  return mongo;
}

export const ASAN = process.env.PARLEY_ASAN === '1' || process.env.PARLEY_ASAN === 'ON';
// Generous: everything also runs under ASan on two shared cores.
export const T = ASAN ? 60000 : 20000;

// The daemon's admin port (/healthz, /metrics) by its public port, for metrics(port).
const adminPorts = new Map();

// Starts parley-chat on two free ports: `port` (public: only /ws) and `adminPort` (/healthz,
// /metrics), with a Redis of its own (a real redis-server on a free port) unless opts.redis
// (a startRedis() handle) is shared, and waits until the daemon has connected to it
// (upgrades are refused with 503 before). opts.port / opts.secret restart a daemon in place.
// The archive writes to the MongoDB stand-in (a database per daemon) unless CHAT_MONGO_URI is
// passed (e.g. an unreachable one, so the outbox keeps what it holds).
// chat.url(token, query) is a connect target for Client: the URL (never with the token in
// it; query such as 'since=5' or '&since=5') and the Authorization: Bearer header;
// chat.cookieTarget(token, room, origin) is how a browser connects: /ws?room=ROOM with the
// parley_ws_ROOM cookie and an Origin header.
export async function startChat(env = {}, { redis, port, adminPort, secret, waitRedis = true, bin = BIN.chat } = {}) {
  port = port || await freePort();
  adminPort = adminPort || await freePort();
  while (adminPort === port) adminPort = await freePort();
  secret = secret || newSecret();
  const r = redis || await startRedis();
  const m = env.CHAT_MONGO_URI ? null : await sharedMongo();
  const mongoEnv = m ? { CHAT_MONGO_URI: m.uri, CHAT_MONGO_DB: `t${randomBytes(6).toString('hex')}` } : {};
  const d = await startDaemon(bin, {
    JWT_SECRET: secret, CHAT_PORT: String(port), CHAT_LISTEN_ADDR: '127.0.0.1',
    CHAT_ADMIN_PORT: String(adminPort), LOG_LEVEL: 'info',
    // a generous Redis timeout: under ASan on two busy cores a round trip can take seconds,
    // and a timeout is an outage (unavailable), which only the outage tests cause on purpose
    CHAT_REDIS_HOST: '127.0.0.1', CHAT_REDIS_PORT: String(r.port), CHAT_REDIS_TIMEOUT_MS: '15000',
    ...mongoEnv, ...env,
  }, [port, adminPort]);
  adminPorts.set(port, adminPort);
  if (!redis) {
    // this Redis lives as long as the daemon
    const stop = d.stop;
    d.stop = async (...a) => { const x = await stop(...a); await r.cleanup(); return x; };
  }
  if (waitRedis) {
    await until(async () => { const m = await metrics(port); return m.chat_redis_up === 1 && m.chat_redis_subscriber_up === 1
      && m.chat_moderation_synced === 1; },
      T, 'chat connected to redis');
  }
  const base = `ws://127.0.0.1:${port}/ws`;
  return {
    d, port, adminPort, secret, redis: r, mongoDb: mongoEnv.CHAT_MONGO_DB,
    token: (opts = {}) => mintToken(secret, opts),
    url: (tok, query = '') => ({ url: query ? `${base}?${query.replace(/^[?&]/, '')}` : base,
      headers: tok ? { Authorization: `Bearer ${tok}` } : {} }),
    cookieTarget: (tok, room, origin = `http://127.0.0.1:${port}`) => ({
      url: `${base}?room=${encodeURIComponent(room)}`,
      headers: { Cookie: `parley_ws_${room}=${tok}`, ...(origin ? { Origin: origin } : {}) },
    }),
  };
}

// A WebSocket client that records every frame; next(pred) waits for the next matching one.
export class Client {
  // target: a URL, or {url, headers} (startChat's url() and cookieTarget())
  constructor(target, opts = {}) {
    this.frames = [];
    this.waiters = [];
    const url = typeof target === 'string' ? target : target.url;
    const headers = { ...(typeof target === 'string' ? {} : target.headers), ...opts.headers };
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...opts, headers });
    this.opened = new Promise((res, rej) => {
      this.ws.once('open', res);
      this.ws.once('error', rej);
      this.ws.once('unexpected-response', (req, resp) => {
        rej(Object.assign(new Error(`HTTP ${resp.statusCode}`), { status: resp.statusCode }));
      });
    });
    this.closed = new Promise((res) => {
      this.ws.on('close', (code, reason) => res({ code, reason: reason.toString() }));
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => {
      const f = isBinary ? { binary: data } : JSON.parse(data.toString());
      this.frames.push(f);
      this.waiters = this.waiters.filter((w) => {
        if (w.pred(f)) { w.res(f); clearTimeout(w.t); return false; }
        return true;
      });
    });
  }

  static async open(url, opts) {
    const c = new Client(url, opts);
    await c.opened;
    await c.next((f) => f.type === 'welcome');
    return c;
  }

  // Resolves with the first frame (already received or future) matching pred after `from`.
  next(pred, timeout = T) {
    const seen = this.frames.find((f) => !f.__used && pred(f));
    if (seen) { seen.__used = true; return Promise.resolve(seen); }
    return new Promise((res, rej) => {
      const w = { pred: (f) => { if (!f.__used && pred(f)) { f.__used = true; return true; } return false; }, res };
      w.t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        rej(new Error(`timeout waiting for a frame; got ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeout);
      this.waiters.push(w);
    });
  }

  of(type) { return this.frames.filter((f) => f.type === type); }
  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }
  close() { this.ws.close(); return this.closed; }
  terminate() { this.ws.terminate(); return this.closed; }
}

// GET over plain HTTP/1.1; resolves {status, headers, body}.
export function httpGet(port, path, headers = {}) {
  return rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${
    Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
}

// Sends raw bytes and collects the whole reply until the server closes.
export function rawRequest(port, text, timeout = T) {
  return new Promise((res, rej) => {
    const s = netConnect(port, '127.0.0.1');
    const chunks = [];
    const t = setTimeout(() => { s.destroy(); rej(new Error('no reply')); }, timeout);
    s.on('connect', () => s.write(text));
    s.on('data', (b) => chunks.push(b));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      const raw = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      const [head, ...rest] = raw.split('\r\n\r\n');
      res({ status: m ? Number(m[1]) : 0, head, body: rest.join('\r\n\r\n'), raw });
    });
  });
}

export function upgradeRequest(path, extra = '') {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

// Raw TCP WebSocket: performs the handshake, then lets the test write arbitrary bytes and
// parses the server's (unmasked) frames.
export class RawWs {
  static async open(port, token) {
    const r = new RawWs();
    r.sock = netConnect(port, '127.0.0.1');
    r.sock.on('error', () => {});
    r.buf = Buffer.alloc(0);
    r.frames = [];
    r.ended = new Promise((res) => r.sock.on('close', res));
    await new Promise((res) => r.sock.once('connect', res));
    r.sock.write(upgradeRequest('/ws', `Authorization: Bearer ${token}\r\n`));
    await new Promise((res, rej) => {
      const onData = (b) => {
        r.buf = Buffer.concat([r.buf, b]);
        const i = r.buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const head = r.buf.subarray(0, i).toString();
        r.buf = r.buf.subarray(i + 4);
        r.sock.off('data', onData);
        if (!head.startsWith('HTTP/1.1 101')) rej(new Error(head));
        else res();
      };
      r.sock.on('data', onData);
    });
    r.sock.on('data', (b) => {
      r.buf = Buffer.concat([r.buf, b]);
      const before = r.frames.length;
      r.parse();
      // like a real client, answer the server's close (so the daemon need not wait for it)
      if (r.frames.slice(before).some((f) => f.op === 8) && !r.sock.destroyed) {
        r.sock.end(RawWs.frame(8, r.frames.find((f) => f.op === 8).payload.subarray(0, 2)));
      }
    });
    r.parse();
    return r;
  }

  parse() {
    for (;;) {
      if (this.buf.length < 2) return;
      const op = this.buf[0] & 0x0f;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (this.buf.length < 4) return; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (this.buf.length < 10) return; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      if (this.buf.length < off + len) return;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      this.frames.push({ op, payload });
    }
  }

  // Frame bytes: masked unless told otherwise.
  static frame(op, payload, { mask = true, fin = true, rsv = 0 } = {}) {
    const p = Buffer.from(payload);
    const head = [(fin ? 0x80 : 0) | rsv | op];
    const m = mask ? 0x80 : 0;
    if (p.length < 126) head.push(m | p.length);
    else if (p.length < 65536) head.push(m | 126, p.length >> 8, p.length & 0xff);
    else { head.push(m | 127, 0, 0, 0, 0, (p.length >>> 24) & 0xff, (p.length >> 16) & 0xff, (p.length >> 8) & 0xff, p.length & 0xff); }
    if (!mask) return Buffer.concat([Buffer.from(head), p]);
    const key = randomBytes(4);
    const out = Buffer.from(p);
    for (let i = 0; i < out.length; i++) out[i] ^= key[i & 3];
    return Buffer.concat([Buffer.from(head), key, out]);
  }

  write(bytes) { this.sock.write(bytes); }

  // The close frame's status code, or null if the socket closed without one.
  closeCode() {
    const c = this.frames.find((f) => f.op === 8);
    return c && c.payload.length >= 2 ? c.payload.readUInt16BE(0) : null;
  }

  texts() { return this.frames.filter((f) => f.op === 1).map((f) => JSON.parse(f.payload.toString())); }
}

// The daemon's /metrics as {name: value}; port is its public port (or its admin port).
export async function metrics(port) {
  const r = await httpGet(adminPorts.get(port) || port, '/metrics');
  const out = {};
  for (const line of r.body.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\d+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export async function until(fn, timeout = T, what = 'condition') {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export { sleep };
