# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/demo/sessions.sh - the sessions part of `make run` (sourced by
# scripts/run.sh): whatsapp-web.js sessions under the backbone's command
# (ARCHITECTURE.md §15), driven through the CRM API only.
#
#  - Two instances of the gateway "sim" (blazz-gateway-sim --mode instance,
#    indexes 0 and 1, SESSIONS_CAPACITY sessions each) heartbeat over the
#    gateway's Kafka principal. They share a storage folder (RemoteAuth: a
#    session restarted on the other instance resumes without a QR code),
#    and a scan folder, where a file named for a session is its QR code
#    scanned by a phone. Each session's phone holds SESSIONS_PHONE_CHATS
#    chats of SESSIONS_PHONE_MESSAGES messages, which a connect syncs under
#    the limits the CREATE or RESTART carries (seed 002's, chat-sync's
#    history_sync settings; the instance paces them at 10 chats a second).
#  - At the start of the demo, SESSIONS_COUNT sessions are created with
#    POST /v1/sessions in the second inbound workspace (the first one's
#    session events go to the flaky endpoint too, whose breaker a burst of
#    first attempts failed on purpose would open), under an API key made
#    for the run (`blazzctl apikeys create`). Each answer is 202 with the
#    session's id.
#  - sessions_tick, called every second of the demo and while it settles:
#    - each session's session.qr webhook reaches the receiver (/ok/sessions,
#      signature verified), and the demo scans that code;
#    - once all are connected (session.status connected) and the warm-up
#      is over, the instance serving most of them is SIGKILLed (the
#      assignment keeps a workspace's sessions together, so usually all);
#    - chat-sync declares it dead after BLAZZ_DEMO_INSTANCE_TIMEOUT_S of
#      silence (8 s here, 30 s by default) and restarts its sessions on
#      the other instance, which has room;
#    - done when every one of them is connected there.
# Its figures are collect_sessions' (figures.sh), its report lines
# print_sessions' (report.sh).

SESSIONS_COUNT=4
SESSIONS_CAPACITY=6
SESSIONS_PHONE_CHATS=20
SESSIONS_PHONE_MESSAGES=4
SESSIONS_LEASE_MS=5000
INSTANCE_TIMEOUT_S="${BLAZZ_DEMO_INSTANCE_TIMEOUT_S:-8}"
SESSIONS_STEP=create
SESSION_IDS=()
SESSIONS_KILL_MS=0
SESSIONS_MOVED_MS=0
SESSIONS_ON_KILLED=0
KILLED_INDEX=""
KEPT_INDEX=""

# One instance of gateway "sim": index $1.
exec_instance() {
    local index=$1
    as_principal gateway-sim
    export BLAZZ_KAFKA_TOPIC_PREFIX="${BLAZZ_TOPIC_PREFIX:-}"
    exec "$BIN_DIR/blazz-gateway-sim" --mode instance --gateway sim --instance "$index" \
        --capacity "$SESSIONS_CAPACITY" --heartbeat-ms 1000 --lease-ms "$SESSIONS_LEASE_MS" \
        --scan-dir "$SESSIONS_DIR/scan" --storage-dir "$SESSIONS_DIR/storage" \
        --served-log "$SESSIONS_DIR/served-$index.txt" --rate 0 --answer-outbound \
        --phone-chats "$SESSIONS_PHONE_CHATS" --history-messages "$SESSIONS_PHONE_MESSAGES" \
        --duration 3600 --log-level warn
}

start_instances() {
    SESSIONS_DIR="$STATE/sessions"
    rm -rf "$SESSIONS_DIR"
    (umask 077 && mkdir -p "$SESSIONS_DIR/scan" "$SESSIONS_DIR/storage")
    local index
    for index in 0 1; do
        : >"$LOGS/instance-$index.log"
        start_process "instance-$index" "$LOGS/instance-$index.log" exec_instance "$index"
    done
}

# POST /v1/sessions for each demo session; its id from the answer.
create_sessions() {
    local key i answer id
    key=$("$BIN_DIR/blazzctl" apikeys create --workspace "${WS[1]}" --name "demo $TAG" --json \
              2>>"$LOGS/blazzctl.log" | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' | head -n 1)
    [ -n "$key" ] || { note "blazzctl apikeys create failed (see $LOGS/blazzctl.log)"; return 1; }
    for i in $(seq 1 "$SESSIONS_COUNT"); do
        # the key goes to curl on stdin, never on its command line
        answer=$(printf 'header = "Authorization: Bearer %s"\n' "$key" |
                 curl -sS -K - -X POST -H 'Content-Type: application/json' \
                      --data "{\"session_id\":\"$TAG-s$i\",\"gateway_id\":\"sim\"}" \
                      -w ' %{http_code}' "http://$INGEST_LISTEN/v1/sessions" 2>>"$LOGS/run.log")
        [ "${answer##* }" = 202 ] ||
            { note "POST /v1/sessions answered ${answer##* }: ${answer% *}"; return 1; }
        id=$(sed -n 's/.*"session_id": *"\([^"]*\)".*/\1/p' <<<"${answer% *}")
        SESSION_IDS+=("$id")
    done
    note "sessions: ${#SESSION_IDS[@]} created with POST /v1/sessions (202, ids ${SESSION_IDS[*]})"
}

# Whether the receiver recorded a webhook of type $1 for session $2 (with
# data.status $3 when given). One awk over the whole file (grep -q ending
# a pipeline early fails it under pipefail); the patterns reach awk through
# its environment, which, unlike -v, keeps their backslashes.
webhook_seen() {
    local status=""
    if [ -n "${3:-}" ]; then status="\\\"status\\\":\\\"$3\\\""; fi
    WH_TYPE="\\\"type\\\":\\\"$1\\\"" WH_SESSION="\\\"session_id\\\":\\\"$2\\\"" WH_STATUS="$status" \
        awk 'index($0, ENVIRON["WH_TYPE"]) && index($0, ENVIRON["WH_SESSION"]) &&
             (ENVIRON["WH_STATUS"] == "" || index($0, ENVIRON["WH_STATUS"])) { found = 1 }
             END { exit !found }' "$RECEIVER_RECORD" 2>/dev/null
}

scan_shown_codes() {
    local id left=0
    for id in "${SESSION_IDS[@]}"; do
        [ -e "$SESSIONS_DIR/scan/$id" ] && continue
        if webhook_seen session.qr "$id"; then
            : >"$SESSIONS_DIR/scan/$id"
        else
            left=$((left + 1))
        fi
    done
    [ "$left" = 0 ]
}

sessions_where() {
    qd "SELECT count(*) FROM whatsapp_accounts WHERE session_id = ANY (:'sessions'::text[])
        AND deleted_at IS NULL AND $1" sessions="{$(IFS=,; echo "${SESSION_IDS[*]}")}"
}

moved_sessions() {
    sessions_where "previous_instance_index = $KILLED_INDEX AND
                    assigned_instance_index = $KEPT_INDEX AND instance_migration_count = 1 AND
                    status = 'connected'"
}

# SIGKILL the instance that serves most of the sessions; its exit is
# recorded here, so the shell reports nothing and stop_all waits for nothing.
kill_busiest_instance() {
    local pid
    KILLED_INDEX=$(qd "SELECT assigned_instance_index FROM whatsapp_accounts
                       WHERE session_id = ANY (:'sessions'::text[])
                       GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1" \
                      sessions="{$(IFS=,; echo "${SESSION_IDS[*]}")}")
    case "$KILLED_INDEX" in 0|1) ;; *) note "sessions: no instance serves them ($KILLED_INDEX)"; return 1 ;; esac
    KEPT_INDEX=$((1 - KILLED_INDEX))
    SESSIONS_ON_KILLED=$(sessions_where "assigned_instance_index = $KILLED_INDEX")
    pid=$(pid_of "instance-$KILLED_INDEX")
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || PROC_EXIT["instance-$KILLED_INDEX"]=$?
    SESSIONS_KILL_MS=$(now_ms)
    note "sessions: all ${#SESSION_IDS[@]} connected; instance $KILLED_INDEX (serving" \
         "$SESSIONS_ON_KILLED) SIGKILLed, chat-sync declares it dead after" \
         "${INSTANCE_TIMEOUT_S} s of silence"
}

# One step of the sessions' story; returns non-zero only when it cannot go on.
sessions_tick() {
    case "$SESSIONS_STEP" in
        create) create_sessions || return 1; SESSIONS_STEP=scan ;;
        scan) scan_shown_codes && SESSIONS_STEP=connect ;;
        connect)
            if [ "$(sessions_where "status = 'connected'")" = "$SESSIONS_COUNT" ] &&
               [ $(( $(now_ms) - DEMO_START_MS )) -ge $((WARMUP_S * 1000)) ]; then
                kill_busiest_instance || return 1
                SESSIONS_STEP=moving
            fi ;;
        moving)
            if [ "$(moved_sessions)" = "$SESSIONS_ON_KILLED" ]; then
                SESSIONS_MOVED_MS=$(now_ms)
                note "sessions: the $SESSIONS_ON_KILLED of instance $KILLED_INDEX connected again" \
                     "on instance $KEPT_INDEX," \
                     "$(( (SESSIONS_MOVED_MS - SESSIONS_KILL_MS) / 1000 )) s after the kill"
                SESSIONS_STEP="finished"
            fi ;;
    esac
    return 0
}

sessions_done() { [ "$SESSIONS_STEP" = finished ]; }
