// Socket.IO peer (issue 11): one node of a Socket.IO cluster on its Redis adapter
// (@socket.io/redis-adapter, node-redis), as in Socket.IO's own adapter docs. Several nodes on
// one Redis form one cluster: a room spans them, `io.to(room).emit` reaches its members on
// every node through Redis pub/sub. WebSocket transport only (the load generator speaks
// Engine.IO 4 / Socket.IO 5 over a plain WebSocket), no HTTP long-polling. The room comes
// from the handshake query (?room=NAME); every "m" event goes to the whole room, sender
// included. Stores nothing.
//   node server.mjs PORT REDIS_PORT   (listens on 127.0.0.1)
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';

const port = Number(process.argv[2]);
const redisPort = Number(process.argv[3]);
const pub = createClient({ socket: { host: '127.0.0.1', port: redisPort } });
const sub = pub.duplicate();
pub.on('error', (e) => console.error(`socketio: redis: ${e.message}`));
sub.on('error', (e) => console.error(`socketio: redis: ${e.message}`));
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false,
  adapter: createAdapter(pub, sub) });
io.on('connection', (socket) => {
  const room = String(socket.handshake.query.room || 'default');
  socket.join(room);
  socket.on('m', (msg) => io.to(room).emit('m', msg));
});
http.listen(port, '127.0.0.1', () => console.error(`socketio: listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => process.exit(0));
