#!/usr/bin/env bash
#
# scripts/run.sh - `make run`: bring the local stack up (default ports, see
# scripts/stack.sh) and show what is running: the connection settings, the
# topics with their partition counts and the applied migrations. The stack
# stays up afterwards; `make stack-down` stops it. Services join here as
# they are written.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${BLAZZ_STATE_DIR:-$REPO/.run}"
BIN_DIR="${BLAZZ_BIN_DIR:-$REPO/build/bin}"

"$REPO/scripts/stack.sh" up
# shellcheck source=/dev/null
source "$STATE/stack.env"

echo
echo "== stack =="
"$REPO/scripts/stack.sh" status
echo "BLAZZ_PG_DSN=$BLAZZ_PG_DSN"
echo "BLAZZ_KAFKA_BROKERS=$BLAZZ_KAFKA_BROKERS"
echo "BLAZZ_TOPIC_PREFIX=${BLAZZ_TOPIC_PREFIX}"
echo "(clients: source $STATE/stack.env)"

echo
echo "== topics =="
"$BIN_DIR/blazzctl" topics list

echo
echo "== migrations =="
if psql "$BLAZZ_PG_DSN" -X -q -tAc "SELECT to_regclass('schema_migrations') IS NOT NULL" | grep -q t; then
    psql "$BLAZZ_PG_DSN" -X -q -P pager=off \
        -c "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
else
    echo "(none applied)"
fi
