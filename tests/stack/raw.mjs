// Raw HTTP/1.1 over net.Socket for the nginx tests: requests no HTTP client would send
// (h2c upgrades, absolute-URI request lines, unnormalised paths), from any loopback source.
import { connect } from 'node:net';

// Sends `text` and resolves {status, headers, body, raw} once the response head (and the
// Content-Length body, if any) arrived, or the peer closed; a 101 resolves at its head.
export function rawRequest(port, text, { localAddress, timeoutMs = 15000 } = {}) {
  return new Promise((res, rej) => {
    const s = connect({ port, host: '127.0.0.1', localAddress });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      if (err) { rej(err); return; }
      const raw = buf.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      const head = end >= 0 ? raw.slice(0, end) : raw;
      const [statusLine, ...lines] = head.split('\r\n');
      const m = statusLine.match(/^HTTP\/1\.[01] (\d{3})/);
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      res({ status: m ? Number(m[1]) : null, headers, body: end >= 0 ? raw.slice(end + 4) : '', raw });
    };
    const t = setTimeout(() => finish(), timeoutMs);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const raw = buf.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (/^HTTP\/1\.1 101/.test(raw)) { finish(); return; }
      const cl = raw.slice(0, end).match(/\r\ncontent-length: *(\d+)/i);
      if (cl && buf.length >= end + 4 + Number(cl[1])) finish();
    });
    s.on('error', (e) => finish(buf.length ? undefined : e));
    s.on('close', () => finish());
    s.write(text);
  });
}

// A WebSocket handshake request head (RFC 6455 section 4.1) for `path`, with extra header lines.
// `host` is also the Origin (a browser's same-site handshake).
export function wsHandshake(path, extra = '', { upgrade = 'websocket', method = 'GET', host = '127.0.0.1' } = {}) {
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://${host}\r\nUpgrade: ${upgrade}\r\n` +
    'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    `Sec-WebSocket-Version: 13\r\n${extra}\r\n`;
}
