// Raw HTTP/1.1 over a TCP socket, for requests fetch() will not send (malformed, oversized,
// odd methods, exact bytes). The WebClient for form-filling users is in ./stack.mjs.
import { connect } from 'node:net';

// Sends `request` (string or Buffer) to 127.0.0.1:port and reads until the server closes the
// connection or a complete response (by Content-Length) has arrived. Resolves with
// {status, headers (lower-case names), body, raw}; rejects on timeout.
export function rawHttp(port, request, { host = '127.0.0.1', timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = connect(port, host);
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err && buf.length === 0) return reject(err);
      resolve(parse(buf));
    };
    const timer = setTimeout(() => finish(new Error('rawHttp: timeout')), timeoutMs);
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const p = parse(buf);
      if (p.complete) finish();
    });
    // The server may close (or reset) the connection after answering: keep what arrived.
    sock.on('error', (e) => finish(e));
    sock.on('end', () => finish());
    sock.on('close', () => finish());
  });
}

function parse(buf) {
  const s = buf.toString('latin1');
  const end = s.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: '', raw: s, complete: false };
  const lines = s.slice(0, end).split('\r\n');
  const status = Number((lines[0].match(/^HTTP\/1\.[01] (\d{3})/) || [])[1] || 0);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const body = buf.subarray(Buffer.byteLength(s.slice(0, end + 4), 'latin1')).toString('utf8');
  const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : null;
  const complete = len !== null && Buffer.byteLength(body) >= len;
  return { status, headers, body, raw: s, complete };
}
