# shellcheck shell=bash
#
# scripts/lib/first_storage.sh - what "first storage" of an inbound message
# means in the figures of make run (scripts/demo/figures.sh) and make bench
# (scripts/bench_system.sh): the gateway's timestamp (chats.created_at) to
# the insert (chats.updated_at), which only holds while no later update
# moved updated_at. A reaction, edit, deletion or read mark landing on the
# message later does, so such rows are counted apart, never measured (a
# run's slowest "rows" were all messages that got a reaction seconds later).
#
# row_changed_sql [ALIAS]: the SQL condition, true for a row of chats (as
# ALIAS, none by default) that a later update changed.
row_changed_sql() {
    local c=${1:+$1.}
    printf '(%sis_read OR %sread_at IS NOT NULL OR %sdeleted_at IS NOT NULL OR %smetadata ?| array['"'"'reactions'"'"', '"'"'edits'"'"', '"'"'edited_at'"'"', '"'"'revoked'"'"'])' \
        "$c" "$c" "$c" "$c"
}
