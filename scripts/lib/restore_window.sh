# shellcheck shell=bash
#
# scripts/lib/restore_window.sh - what a database restored to an earlier
# point needs from Kafka (docs/ARCHITECTURE.md §6.5), read from a
# `blazzctl lag --data-end --json` report of its restored offsets. Shared
# by the local stack's restore (scripts/lib/pg_backup.sh) and compose's
# blazz-pg-backup (docker/postgres/backup.sh, which has no Kafka
# credentials and is given the report on stdin).
#
#   rw_retention_gaps REPORT  one line per partition whose records after a
#                             restored offset Kafka's retention deleted
#                             (those effects cannot be replayed); none: ok
#   rw_window_gaps REPORT OFFSETS  the same before a restore: one line per
#                             row of OFFSETS (a backup's kafka_offsets:
#                             group, topic, partition, next offset, tab-
#                             separated) whose partition's first kept
#                             record (REPORT, of the running database) is
#                             past it, or that REPORT does not show ("not
#                             in the report": it cannot tell)
#   rw_checked REPORT         how many restored offsets the report holds
#   rw_fence_rows REPORT      group, topic, partition and data end (tab-
#                             separated) of every chat.sync,
#                             campaign.commands and campaign.receipts
#                             partition a restored offset names: where
#                             chat-sync and campaign-sender must read back
#                             to before anything is sent again
#   rw_fence_sql ROWS         the transaction recording the restore fence
#                             (restore_fences, restore_fence_offsets) with
#                             those rows, for `psql -v label=...`

rw_retention_gaps() {
    jq -r '.groups[] | .group as $g | .partitions[]
           | select(.pg_next_offset != null and .pg_next_offset < .low)
           | "\($g) \(.topic)[\(.partition)]: restored offset \(.pg_next_offset), first record kept \(.low)"' <<<"$1"
}

rw_window_gaps() {
    jq -r --rawfile o <(printf '%s' "$2") '
        ([.groups[].partitions[] | select(.low != null)
          | {key: "\(.topic)[\(.partition)]", value: .low}] | from_entries) as $low
        | $o | split("\n")[] | select(length > 0) | split("\t") as [$g, $t, $p, $n]
        | "\($t)[\($p)]" as $k
        | if $low[$k] == null then "\($g) \($k): restored offset \($n), not in the report"
          elif ($n | tonumber) < $low[$k] then "\($g) \($k): restored offset \($n), first record kept \($low[$k])"
          else empty end' <<<"$1"
}

rw_checked() {
    jq '[.groups[].partitions[] | select(.pg_next_offset != null)] | length' <<<"$1"
}

# The data end, not the high watermark: ingest writes chat.sync in
# transactions and the watermark counts the commit marker that ends them,
# which no consumer stores an offset past.
rw_fence_rows() {
    jq -r '.groups[] | .group as $g | .partitions[]
           | select(.pg_next_offset != null
                    and (.topic | test("(chat\\.sync|campaign\\.commands|campaign\\.receipts)$")))
           | "\($g)\t\(.topic)\t\(.partition)\t\(.data_end // error("the report has no data_end: blazzctl lag --data-end"))"' <<<"$1"
}

# A fence with no rows is recorded all the same: the restore happened.
rw_fence_sql() {
    echo "BEGIN;"
    echo "CREATE TEMP TABLE fence_offsets (group_id text, topic text, partition int, end_offset bigint);"
    echo "COPY fence_offsets FROM STDIN;"
    [ -z "$1" ] || printf '%s\n' "$1"
    echo '\.'
    echo "WITH f AS (INSERT INTO restore_fences (restored_to) VALUES (:'label') RETURNING id)"
    echo "INSERT INTO restore_fence_offsets SELECT f.id, o.* FROM f, fence_offsets o;"
    echo "COMMIT;"
}
