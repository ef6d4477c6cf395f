#!/bin/sh
# Entrypoint of the redis image: as root, hands the bind-mounted /data to the redis user,
# then runs redis-server in the foreground as that user with Parley's settings
# (docs/operations.md, "Redis"): append-only file on, no eviction, no RDB snapshots.
# Settings: REDIS_APPENDFSYNC (always|everysec|no, default everysec), REDIS_MAXMEMORY
# (like 512mb; default 512mb). The container is on the internal network only, so there is
# no password (protected mode off: Redis would refuse the other containers otherwise).
set -eu
if [ "$(id -u)" = 0 ]; then
    mkdir -p /data
    chown redis:redis /data
    chmod 700 /data
    # setpriv execs (redis-server stays PID 1 and gets the container's SIGTERM).
    exec setpriv --reuid=redis --regid=redis --init-groups -- "$0" "$@"
fi
fsync="${REDIS_APPENDFSYNC:-everysec}"
case "$fsync" in always | everysec | no) ;;
    *) echo "redis-entrypoint: REDIS_APPENDFSYNC must be always, everysec or no" >&2; exit 2 ;;
esac
maxmem="${REDIS_MAXMEMORY:-512mb}"
case "$maxmem" in *[!0-9mgb]* | "") echo "redis-entrypoint: REDIS_MAXMEMORY must look like 512mb" >&2; exit 2 ;; esac
exec redis-server --bind 0.0.0.0 --port 6379 --protected-mode no --daemonize no --dir /data \
    --appendonly yes --appenddirname appendonlydir --appendfsync "$fsync" --save '' \
    --maxmemory "$maxmem" --maxmemory-policy noeviction "$@"
