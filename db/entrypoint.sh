#!/usr/bin/env bash
# Entrypoint of the db image. First start (empty $PGDATA): initdb with scram-sha-256 for
# every TCP connection and peer auth on the local socket, then creates the application role
# and database from DB_USER, DB_NAME and DB_PASSWORD or DB_PASSWORD_FILE. Later starts reuse
# the data as it is (changing DB_PASSWORD later does not change the role's password: see
# docs/operations.md). The server runs in the foreground as the postgres user.
set -euo pipefail

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
DB_NAME="${DB_NAME:-parley}"
DB_USER="${DB_USER:-parley}"

die() { echo "db-entrypoint: $*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
    # Bind mounts arrive owned by the host's user: the cluster must belong to postgres.
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    # Secret files may be readable by root only: read it here, hand it over in the env.
    if [ -n "${DB_PASSWORD_FILE:-}" ]; then
        [ -r "$DB_PASSWORD_FILE" ] || die "DB_PASSWORD_FILE '$DB_PASSWORD_FILE' is not readable"
        DB_PASSWORD="$(head -n1 "$DB_PASSWORD_FILE")"
        export DB_PASSWORD
        unset DB_PASSWORD_FILE
    fi
    # setpriv execs (runuser would fork and stay as PID 1 without passing on SIGINT).
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$0" "$@"
fi

if [ -n "${DB_PASSWORD_FILE:-}" ]; then
    DB_PASSWORD="$(head -n1 "$DB_PASSWORD_FILE")"
fi

[[ "$DB_NAME" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "DB_NAME must match [a-z_][a-z0-9_]{0,62}"
[[ "$DB_USER" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "DB_USER must match [a-z_][a-z0-9_]{0,62}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    [ -n "${DB_PASSWORD:-}" ] || die "DB_PASSWORD or DB_PASSWORD_FILE is required to create the database"
    [ "${#DB_PASSWORD}" -ge 16 ] || die "DB_PASSWORD must be at least 16 characters"
    echo "db-entrypoint: first start, creating the cluster in $PGDATA" >&2
    # The superuser gets no password at all: it can log in only over the local socket
    # (peer), inside this container.
    initdb -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >/dev/null
    {
        echo "# Parley: every TCP client authenticates with a scram-sha-256 password."
        echo "host all all 0.0.0.0/0 scram-sha-256"
        echo "host all all ::/0 scram-sha-256"
    } >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /run/postgresql" -w start >/dev/null
    # psql variables quote the values (:'pw' literal, :"user" identifier): no SQL is built
    # by pasting strings together.
    psql -h /run/postgresql -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
        -v user="$DB_USER" -v db="$DB_NAME" -v pw="$DB_PASSWORD" <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE :"user" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"user" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "db-entrypoint: created role '$DB_USER' and database '$DB_NAME'" >&2
else
    echo "db-entrypoint: reusing the cluster in $PGDATA" >&2
fi
unset DB_PASSWORD

exec postgres -D "$PGDATA" -c listen_addresses='*' -k /run/postgresql "$@"
