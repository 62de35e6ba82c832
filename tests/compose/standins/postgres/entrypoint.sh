#!/bin/bash
# entrypoint.sh - the postgres TEST STAND-IN's start-up (see Dockerfile):
# the official image's environment contract, reimplemented for CI.
#
# As root: own $PGDATA and the socket folder, then re-run as postgres. As postgres, when $PGDATA
# holds no cluster: initdb with POSTGRES_USER as the superuser and
# POSTGRES_PASSWORD as its password (read from a private file, never from
# argv), local socket trusted, every host connection scram-sha-256 (unless
# POSTGRES_HOST_AUTH_METHOD says otherwise), listen on all addresses; then
# create POSTGRES_DB on a server bound to the socket only, run
# /docker-entrypoint-initdb.d/*.sql and *.sh, stop it. Last, exec the server.
set -euo pipefail

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    # the socket folder too, as the official entrypoint does: it may be a
    # volume, which starts out owned by root
    chown postgres:postgres /var/run/postgresql
    chmod 3775 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

init_cluster() {
    local user="${POSTGRES_USER:-postgres}" db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
    local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
        echo "postgres stand-in: POSTGRES_PASSWORD is empty (set it, or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    local pwfile
    pwfile="$(mktemp)"
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    # POSTGRES_INITDB_ARGS is a word list by contract, hence unquoted.
    # shellcheck disable=SC2086
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
        ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
    printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.auto.conf"

    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -v db="$db" -q <<<'CREATE DATABASE :"db";'
    fi
    local f
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) psql -v ON_ERROR_STOP=1 -U "$user" -d "$db" -q -f "$f" ;;
            *.sh) bash "$f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres stand-in: initialised $PGDATA (superuser $user, database $db)"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    init_cluster
fi
exec "$@"
