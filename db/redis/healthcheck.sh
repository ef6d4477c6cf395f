#!/bin/sh
# Health check of the redis image (one word for podman-compose 1.0.3): PONG from redis-cli.
[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
