"""Broadcast server on Python websockets (Debian bookworm: python3-websockets 10.4), as small
as the library's own broadcast example: asyncio, one event loop, websockets.broadcast (added
in 10.0). The room comes from the URL (?room=NAME); every text message goes, unchanged, to
everyone in the room, sender included. Compression is off, as in the other peers.

usage: /usr/bin/python3 server.py PORT   (listens on 127.0.0.1)
"""
import asyncio
import signal
import sys
from urllib.parse import parse_qs, urlsplit

import websockets

ROOMS = {}


async def handler(ws):
    # websockets 10.x: the request path is ws.path (the (ws, path) handler form is deprecated)
    room = parse_qs(urlsplit(ws.path).query).get("room", ["default"])[0]
    members = ROOMS.setdefault(room, set())
    members.add(ws)
    try:
        async for message in ws:
            websockets.broadcast(members, message)
    except websockets.ConnectionClosed:
        pass  # the load generator drops its sockets without a close frame at the end
    finally:
        members.discard(ws)
        if not members:
            ROOMS.pop(room, None)


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(handler, "127.0.0.1", port, compression=None):
        print(f"python-websockets: listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
