// A TCP relay between a daemon and a real server (Redis), so a test can put an order of
// events on the wire that timing alone gives only now and then: hold() keeps the server's
// answers back (every connection through the relay) until release(); what the daemon sends
// is passed on at once and counted (sent(text): how often text went upstream). Nothing is
// changed or made up: the bytes are the server's own.
import { createServer, connect } from 'node:net';

export async function startTcpProxy(targetPort, host = '127.0.0.1') {
  const socks = new Set();
  const held = [];
  let holding = false;
  let upstream = '';
  const server = createServer((down) => {
    const up = connect(targetPort, host);
    socks.add(down);
    socks.add(up);
    down.on('data', (b) => { upstream += b.toString('latin1'); up.write(b); });
    up.on('data', (b) => { if (holding) held.push([down, b]); else down.write(b); });
    const end = () => { down.destroy(); up.destroy(); socks.delete(down); socks.delete(up); };
    down.on('close', end);
    up.on('close', end);
    down.on('error', end);
    up.on('error', end);
  });
  await new Promise((res) => server.listen(0, host, res));
  return {
    port: server.address().port,
    hold() { holding = true; },
    release() {
      holding = false;
      for (const [down, b] of held.splice(0)) if (!down.destroyed) down.write(b);
    },
    sent: (text) => upstream.split(text).length - 1,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise((res) => server.close(res));
    },
  };
}
