#!/bin/sh
# As root: hands the bind-mounted /data/db to the stand-in's user, then runs it (PID 1).
set -eu
if [ "$(id -u)" = 0 ]; then
    chown parley-mongo:parley-mongo /data/db
    exec setpriv --reuid=parley-mongo --regid=parley-mongo --init-groups -- "$0" "$@"
fi
exec node /opt/mongo-standin/server.mjs --host 0.0.0.0 --port 27017 --storage /data/db
