#!/usr/bin/env bash
# Entrypoint of the nginx image: waits until the upstream names resolve (engines that do not
# wait for the health checks may start us first), lists EVERY address a name resolves to as
# its own upstream server (a scaled service - `docker compose up --scale chat=3`, or
# CHAT_REPLICAS=3 with podman-compose - is one DNS name with one A record per replica), renders
# nginx.conf from the shared template and runs nginx in the foreground.
#   NGINX_RESOLVE_WAIT       seconds to wait for the names (default 60)
#   NGINX_CHAT_REPLICAS      addresses the chat name must have before nginx starts (1..64,
#   NGINX_WEBSITE_REPLICAS   default 1); the website's likewise
#   NGINX_CHAT_CAPACITY_EACH when set, NGINX_CHAT_CAPACITY = this x the chat addresses found
#                            (each daemon's CHAT_MAX_CONNECTIONS)
# nginx resolves upstream names once, at start: replicas added later are reached after
# `docker compose restart nginx` (docs/operations.md, "Several chat daemons").
set -euo pipefail
run="${NGINX_RUN_DIR:-/run/parley-nginx}"
wait_s="${NGINX_RESOLVE_WAIT:-60}"
[[ "$wait_s" =~ ^[0-9]+$ ]] || { echo "nginx-entrypoint: NGINX_RESOLVE_WAIT must be seconds" >&2; exit 2; }
for v in NGINX_CHAT_REPLICAS NGINX_WEBSITE_REPLICAS; do
    val="${!v:-1}"
    [[ "$val" =~ ^[0-9]{1,2}$ ]] && [ "$val" -ge 1 ] && [ "$val" -le 64 ] ||
        { echo "nginx-entrypoint: $v must be a whole number from 1 to 64, got '$val'" >&2; exit 2; }
done

# expand VAR MIN: every host:port of VAR becomes address:port for each IPv4 address of host,
# waiting until host has at least MIN of them
expand() {
    local hp host port addrs count n out=""
    for hp in ${!1:-}; do
        host="${hp%:*}"
        port="${hp##*:}"
        n=0
        while :; do
            if [[ "$host" =~ ^[0-9.]+$ ]]; then
                addrs="$host"
            else
                addrs="$(getent ahostsv4 "$host" 2>/dev/null | awk '$2 == "STREAM" { print $1 }' | sort -u || true)"
            fi
            count=$(printf '%s\n' "$addrs" | grep -c . || true)
            [ "$count" -ge "$2" ] && break
            if [ "$n" -ge "$wait_s" ]; then
                echo "nginx-entrypoint: '$host' resolves to $count address(es), $2 wanted, after ${wait_s}s" >&2
                exit 1
            fi
            [ "$n" -eq 0 ] && echo "nginx-entrypoint: waiting for '$host' to resolve to $2 address(es)" >&2
            sleep 1
            n=$((n + 1))
        done
        for a in $addrs; do out+="${out:+ }$a:$port"; done
    done
    printf -v "$1" '%s' "$out"
}
[ -n "${NGINX_WEBSITE:-}" ] && expand NGINX_WEBSITE "${NGINX_WEBSITE_REPLICAS:-1}"
[ -n "${NGINX_CHAT:-}" ] && expand NGINX_CHAT "${NGINX_CHAT_REPLICAS:-1}"
export NGINX_WEBSITE NGINX_CHAT
if [ -n "${NGINX_CHAT_CAPACITY_EACH:-}" ]; then
    [[ "$NGINX_CHAT_CAPACITY_EACH" =~ ^[0-9]{1,7}$ ]] ||
        { echo "nginx-entrypoint: NGINX_CHAT_CAPACITY_EACH must be a number" >&2; exit 2; }
    set -- $NGINX_CHAT
    export NGINX_CHAT_CAPACITY=$((NGINX_CHAT_CAPACITY_EACH * $#))
    set --
fi
echo "nginx-entrypoint: website upstream: $NGINX_WEBSITE; chat upstream: $NGINX_CHAT" >&2

/etc/parley-nginx/render-conf >"$run/nginx.conf"
exec nginx -e stderr -p "$run" -c "$run/nginx.conf"
