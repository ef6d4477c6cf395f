#!/usr/bin/env bash
# Entrypoint of the nginx image: renders nginx.conf from the shared template, waits until
# the upstream names resolve (nginx resolves them once, at start, and exits if it cannot;
# engines that do not wait for the health checks may start us first), then runs nginx in
# the foreground.
set -euo pipefail
run="${NGINX_RUN_DIR:-/run/parley-nginx}"
wait_s="${NGINX_RESOLVE_WAIT:-60}"
[[ "$wait_s" =~ ^[0-9]+$ ]] || { echo "nginx-entrypoint: NGINX_RESOLVE_WAIT must be seconds" >&2; exit 2; }

/etc/parley-nginx/render-conf >"$run/nginx.conf"

for hp in ${NGINX_WEBSITE:-} ${NGINX_CHAT:-}; do
    host="${hp%:*}"
    n=0
    until getent hosts "$host" >/dev/null; do
        if [ "$n" -ge "$wait_s" ]; then
            echo "nginx-entrypoint: cannot resolve upstream '$host' after ${wait_s}s" >&2
            exit 1
        fi
        [ "$n" -eq 0 ] && echo "nginx-entrypoint: waiting for '$host' to resolve" >&2
        sleep 1
        n=$((n + 1))
    done
done

exec nginx -e stderr -p "$run" -c "$run/nginx.conf"
