# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/lib/sql.sh - `sql`, the one way the shell scripts query
# PostgreSQL (sourced by scripts/chaos.sh and scripts/run.sh).
#
# sql TEXT [name=value...]: run TEXT against $BLAZZ_PG_DSN with each
# name=value as a psql variable, so values are quoted by psql (:'name')
# rather than pasted into the SQL; unaligned, tuples only, stops at the
# first error and fails with it.
sql() {
    local text=$1
    shift
    local -a vars=()
    local kv
    for kv in "$@"; do vars+=(-v "$kv"); done
    printf '%s\n' "$text" | psql "$BLAZZ_PG_DSN" -X -q -tA -v ON_ERROR_STOP=1 "${vars[@]}"
}
