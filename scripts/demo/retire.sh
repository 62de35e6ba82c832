# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/demo/retire.sh - the worlds of earlier `make run`s on the same
# stack are retired before a new one runs (sourced by scripts/run.sh), so
# the second run's report speaks only of its own world (issue 55).
#
# An earlier world leaves two things that reach the next one:
#  - webhook endpoints still enabled at the demo receiver's address, with
#    secrets only that run's receiver knew: every delivery to them would
#    count as a bad signature. retire_endpoints disables them (`blazzctl
#    webhooks disable`) before the new world's are added.
#  - sessions under the backbone's command of the gateway "sim": when the
#    new instances start, chat-sync restarts there those still assigned to
#    them (a new boot id) and places those waiting for an instance (their
#    instance was declared dead after the earlier run), and they take the
#    capacity the demo's failover needs. retire_sessions logs them out
#    through the backbone (`blazzctl sessions logout`) once the instances
#    run, the way a CRM would; one waiting for an instance is parked at
#    once. A LOGOUT that reaches an instance before the RESTART of the
#    same session changes nothing there, so it is asked again every
#    RETIRE_EVERY_S until each one is logged out, for at most
#    RETIRE_MAX_S.
# Nothing is deleted: the earlier worlds' rows stay readable.

RETIRE_EVERY_S=2
RETIRE_MAX_S=40
RETIRED_ENDPOINTS=0
RETIRED_SESSIONS=0

# Disable every enabled endpoint at the receiver's address (none of this
# world exists yet).
retire_endpoints() {
    local ids id
    ids=$(sql "SELECT id FROM webhook_endpoints WHERE enabled AND starts_with(url, :'receiver' || '/')
               ORDER BY id" receiver="$RECEIVER_URL" 2>>"$LOGS/run.log") || return 1
    for id in $ids; do
        "$BIN_DIR/blazzctl" webhooks disable --endpoint "$id" \
            --reason "make run: an earlier demo world, retired" >>"$LOGS/blazzctl.log" 2>&1 || return 1
        RETIRED_ENDPOINTS=$((RETIRED_ENDPOINTS + 1))
    done
}

# "workspace session" lines: earlier worlds' sessions of the gateway "sim"
# not logged out (chat-sync's CS_LOGGED_OUT): those that hold a place on
# an instance, and those waiting for one, which would take one: also one
# never placed yet (assignment epoch 0, pending_assignment: a run
# interrupted right after it created its sessions, before the sweep ran).
# The traffic's accounts (epoch 0, connected) are not the backbone's.
sessions_to_retire() {
    sql "SELECT workspace_id || ' ' || session_id FROM whatsapp_accounts a
         WHERE gateway_id = 'sim' AND deleted_at IS NULL
           AND (assignment_epoch > 0 OR a.status = 'pending_assignment')
           AND NOT starts_with(session_id, :'tag' || '-')
           AND NOT (a.status = 'disconnected'
                    AND a.disconnect_reason IS NOT DISTINCT FROM 'user_initiated')
         ORDER BY id" tag="$TAG" 2>>"$LOGS/run.log"
}

retire_sessions() {
    local deadline=$((SECONDS + RETIRE_MAX_S)) rows ws session round=0
    while :; do
        rows=$(sessions_to_retire) || return 1
        [ -n "$rows" ] || return 0
        [ $SECONDS -lt $deadline ] ||
            { note "earlier worlds' sessions still not logged out after ${RETIRE_MAX_S} s"; return 1; }
        while read -r ws session; do
            "$BIN_DIR/blazzctl" sessions logout --workspace "$ws" --session "$session" \
                >>"$LOGS/blazzctl.log" 2>&1 || return 1
            [ $round -gt 0 ] || RETIRED_SESSIONS=$((RETIRED_SESSIONS + 1))
        done <<<"$rows"
        round=$((round + 1))
        sleep "$RETIRE_EVERY_S"
    done
}
