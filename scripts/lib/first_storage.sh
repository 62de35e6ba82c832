# shellcheck shell=bash
#
# scripts/lib/first_storage.sh - what "first storage" of an inbound message
# means in the figures of make run (scripts/demo/figures.sh) and make bench
# (scripts/bench_system.sh): the gateway's timestamp (chats.created_at) to
# the insert (chats.updated_at), which only holds while no later update
# moved updated_at. A reaction, edit, deletion or read mark landing on the
# message later does, so such rows are counted apart, never measured (a
# run's slowest "rows" were all messages that got a reaction seconds later);
# so does a merge, which moves the merged contact's rows to the survivor
# (a LID person's first messages, once the gateway pairs LID and phone:
# the survivor's rows are all counted apart), and the link to a Meta
# message's media, stored after the row by meta-sender (§16.2).
#
# row_changed_sql [ALIAS]: the SQL condition, true for a row of chats (as
# ALIAS, chats by default) that a later update changed.
row_changed_sql() {
    local c=${1:-chats}.
    # a survivor is named by its id or its uuid; a group's message has no
    # contact (NULL, which IN would carry through NOT)
    local merged="SELECT metadata->>'merged_into' FROM contacts WHERE metadata ? 'merged_into'"
    printf '(%sis_read OR %sread_at IS NOT NULL OR %sdeleted_at IS NOT NULL OR %smetadata ?| array['"'"'reactions'"'"', '"'"'edits'"'"', '"'"'edited_at'"'"', '"'"'revoked'"'"'] OR (%sprovider_type = '"'"'meta'"'"' AND %smedia_id IS NOT NULL) OR coalesce(%scontact_id IN (SELECT s.id FROM contacts s WHERE s.id::text IN (%s) OR s.uuid::text IN (%s)), false))' \
        "$c" "$c" "$c" "$c" "$c" "$c" "$c" "$merged" "$merged"
}
