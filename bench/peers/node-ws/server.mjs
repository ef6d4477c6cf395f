// Broadcast server on Node's `ws`, as small as ws's own broadcast example: the room comes
// from the URL (?room=NAME) and every text message goes, unchanged, to everyone in the room,
// sender included. usage: node server.mjs PORT (listens on 127.0.0.1)
import { WebSocketServer, WebSocket } from 'ws';

const port = Number(process.argv[2]);
const rooms = new Map();
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  const room = new URL(req.url, 'http://x').searchParams.get('room') || 'default';
  if (!rooms.has(room)) rooms.set(room, new Set());
  const members = rooms.get(room);
  members.add(ws);
  ws.on('message', (data, isBinary) => {
    for (const client of members) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
  ws.on('close', () => {
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  });
});
wss.on('listening', () => console.error(`node-ws: listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => process.exit(0));
