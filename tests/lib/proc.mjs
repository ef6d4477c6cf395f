// Process helpers for black-box tests: free ports, starting a real daemon and waiting until
// it answers, collecting its stderr, stopping it by PID.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD = process.env.PARLEY_BUILD_DIR || join(ROOT, 'build');
export const BIN = {
  website: join(BUILD, 'website', 'parley-website'),
  chat: join(BUILD, 'chat', 'parley-chat'),
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A port that is free now, below the ephemeral range like freePortRange's (the kernel's port
// 0 gave one from that range, which an outgoing connection could take as its source port
// before the daemon bound it: seen in CI as "ERROR on binding ... (-1 98)").
export function freePort(host = '127.0.0.1') {
  return freePortRange(1, host);
}

// n consecutive ports that are free now, for a daemon that takes a range (run-native's
// CHAT_PORT + i). Chosen below the kernel's ephemeral range (ip_local_port_range): a port in
// that range can be taken meanwhile as the source port of any outgoing connection (seen: a
// replica's port was gone by the time it started), one below it only by another listener.
export async function freePortRange(n, host = '127.0.0.1') {
  let lo = 32768;
  try { lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || lo; } catch { /* default */ }
  const min = 10000, max = Math.max(min + n + 1, lo) - n;
  const canListen = (port) => new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, host, () => s.close(() => res(true)));
  });
  for (let tries = 0; tries < 1000; tries++) {
    const p = min + Math.floor(Math.random() * (max - min));
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await canListen(p + i);
    if (ok) return p;
  }
  throw new Error(`no ${n} consecutive free ports below ${lo}`);
}

export function waitForPort(port, host = '127.0.0.1', timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  return new Promise((res, rej) => {
    const attempt = () => {
      const c = connect(port, host);
      c.once('connect', () => { c.destroy(); res(); });
      c.once('error', () => {
        c.destroy();
        if (Date.now() > until) rej(new Error(`port ${host}:${port} did not open`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

// Starts a daemon with exactly `env` (plus PATH and sanitizer options). Resolves when `port`
// (a number, or an array of them: every one) accepts connections. The returned object has
// .stderr (everything logged so far), .stop(signal) which resolves with {code, signal}, and
// .exited (a promise).
export async function startDaemon(bin, env, port, { host = '127.0.0.1', timeoutMs = 15000 } = {}) {
  const child = spawn(bin, [], {
    env: { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1',
      UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const d = { child, pid: child.pid, stderr: '' };
  child.stdout.on('data', (b) => { d.stderr += b.toString(); });
  child.stderr.on('data', (b) => {
    d.stderr += b.toString();
    if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(b);
  });
  d.exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  d.stop = async (signal = 'SIGTERM', timeout = 10000) => {
    if (child.exitCode !== null || child.signalCode !== null) return d.exited;
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), timeout);
    const r = await d.exited;
    clearTimeout(t);
    return r;
  };
  if (port) {
    try {
      const ports = Array.isArray(port) ? port : [port];
      const up = Promise.all(ports.map((p) => waitForPort(p, host, timeoutMs)));
      await Promise.race([up, d.exited.then((r) => {
        throw new Error(`${bin} exited early (${JSON.stringify(r)}):\n${d.stderr}`);
      })]);
    } catch (e) {
      await d.stop('SIGKILL');
      throw e;
    }
  }
  return d;
}

// Runs a daemon expecting it to exit (e.g. refusing a bad configuration).
export function runToExit(bin, env, timeoutMs = 10000) {
  return new Promise((res) => {
    const child = spawn(bin, [], { env: { PATH: process.env.PATH, ...env } });
    let out = '';
    child.stdout.on('data', (b) => { out += b; });
    child.stderr.on('data', (b) => { out += b; });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => { clearTimeout(t); res({ code, signal, output: out }); });
  });
}
