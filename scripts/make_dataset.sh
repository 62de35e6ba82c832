#!/usr/bin/env bash
#
# scripts/make_dataset.sh DSN SCALE - fill a migrated, empty database with
# the data set of the CRM read-path benchmark (scripts/bench_reads.sh):
# at SCALE 1, 10 M messages in 1,000 workspaces, the largest with 2 M
# messages, 200,000 contacts and 2,000 groups; every size scales with
# SCALE (the test suite uses about 0.03).
#
# All the work is db/dataset/generate.sql, run by psql in one session: it
# writes the rows with INSERT ... SELECT in the shapes the services write,
# without any service running, which is what makes 10 M messages take
# minutes instead of hours. It refuses a database whose chats table is
# not empty (it chooses ids and rebuilds indexes), and it leaves the facts a
# benchmark needs (largest workspace, id ranges, search terms) in
# dataset.facts. This script adds the timing and the sizes it made.

set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 DSN SCALE   (SCALE 1 = 10 M messages; e.g. 0.03 for tests)" >&2
    exit 2
fi
DSN=$1
SCALE=$2
# checked here too so that a typo fails before psql connects
if ! [[ $SCALE =~ ^([0-9]+([.][0-9]*)?|[.][0-9]+)$ ]]; then
    echo "make_dataset: SCALE must be a positive number, not '$SCALE'" >&2
    exit 2
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "make_dataset: $*" >&2; }

start=$(date +%s)
say "scale $SCALE into $(psql "$DSN" -X -q -tA -c 'SELECT current_database()')"
psql "$DSN" -X -q -v ON_ERROR_STOP=1 -v scale="$SCALE" -f "$REPO/db/dataset/generate.sql"
elapsed=$(($(date +%s) - start))
say "done in ${elapsed} s"

# Exact row counts: after the VACUUM the visibility map is set, so
# count(*) on the large tables is an index-only scan.
psql "$DSN" -X -q -v ON_ERROR_STOP=1 -P footer=off <<'SQL'
SELECT t AS "table", to_char(n, 'FM999,999,999,990') AS "rows",
       pg_size_pretty(pg_total_relation_size(t::regclass)) AS "size with indexes"
FROM (VALUES ('workspaces', (SELECT count(*) FROM workspaces)),
             ('users', (SELECT count(*) FROM users)),
             ('whatsapp_accounts', (SELECT count(*) FROM whatsapp_accounts)),
             ('contacts', (SELECT count(*) FROM contacts)),
             ('whatsapp_groups', (SELECT count(*) FROM whatsapp_groups)),
             ('chats', (SELECT count(*) FROM chats)),
             ('calls', (SELECT count(*) FROM calls)),
             ('campaigns', (SELECT count(*) FROM campaigns)),
             ('campaign_logs', (SELECT count(*) FROM campaign_logs)),
             ('webhook_endpoints', (SELECT count(*) FROM webhook_endpoints)),
             ('webhook_retry_queue', (SELECT count(*) FROM webhook_retry_queue))) v(t, n);
SELECT pg_size_pretty(pg_database_size(current_database())) AS "database size";
SELECT name AS fact, value FROM dataset.facts ORDER BY name;
SQL
