# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the script that sources this file
#
# scripts/chaos/sessions.sh - whatsapp-web.js sessions under the
# backbone's command in the chaos test (sourced by scripts/chaos.sh;
# ARCHITECTURE.md §15).
#
# Three instances of gateway "sim" (blazz-gateway-sim --mode instance,
# indexes 0 to 2, INSTANCE_CAPACITY sessions each, a heartbeat a second, a
# 5 s lease) serve CHAOS_SESSIONS sessions of a workspace of their own.
# The sessions are created through the CRM API (POST /v1/sessions, under
# an API key made for the run) before the plan starts. Each QR code is
# scanned 300 ms after it shows, and each instance sends a customer
# message a second on its sessions.
#
# The plan SIGKILLs two different instances, beside the services' kills
# and the broker and database restarts: one in [15%, 25%] of the run and
# one in [55%, 65%]. Each is started again (a new boot) 15 s later.
# chat-sync (sessions.instance_timeout_s = INSTANCE_TIMEOUT_S here)
# declares a killed instance dead and restarts its sessions on the live
# ones.
#
# When the load is over, sessions_wind_down waits until every session is
# connected on a live instance (what the check reports), then stops the
# instances and waits until chat-sync has declared them dead: a live
# instance heartbeats for ever, and quiescence needs the pipeline still
# (the sessions wait as pending_assignment from then on).
#
# The checks:
#  - every session was connected on a live instance after the load;
#  - no session was served by two instances at once (each run's
#    --served-log; a killed or stopped run's open spans end when it was
#    gone);
#  - every customer message an instance logged as acknowledged is stored
#    exactly once.

CHAOS_SESSIONS=30
INSTANCE_COUNT=3
# Two live instances hold every session: a kill never leaves one waiting.
INSTANCE_CAPACITY=20
INSTANCE_TIMEOUT_S=10
INSTANCE_RESTART_MS=15000
SESSIONS_DIR="$STATE/sessions"
declare -A INSTANCE_PID=() INSTANCE_RUN=()
SS_WS=""
SESSIONS_UNSETTLED="?"

# start_instance INDEX: a new run (boot) of instance INDEX; its served and
# accepted logs are the run's own files.
start_instance() {
    local index=$1 run
    run=$(( ${INSTANCE_RUN[$index]:-0} + 1 ))
    INSTANCE_RUN[$index]=$run
    (as_principal gateway-sim && exec "$BIN_DIR/blazz-gateway-sim" --mode instance --gateway sim \
        --instance "$index" --capacity "$INSTANCE_CAPACITY" --heartbeat-ms 1000 --lease-ms 5000 \
        --scan-after-ms 300 --storage-dir "$SESSIONS_DIR/storage" \
        --served-log "$SESSIONS_DIR/served-$index-$run.txt" \
        --accepted-log "$SESSIONS_DIR/accepted-$index-$run.txt" --rate 1 --answer-outbound \
        --ack-delay-ms 200 --duration $(( DURATION + QUIESCE_S + 300 )) --log-level warn) \
        >>"$LOGS/instance-$index.log" 2>&1 </dev/null &
    INSTANCE_PID[$index]=$!
    note "started gateway instance $index (run $run, pid $!)"
}

# kill_instance INDEX: SIGKILL, and the time its run's open spans end.
kill_instance() {
    local index=$1
    kill -KILL "${INSTANCE_PID[$index]}" 2>/dev/null || true
    wait "${INSTANCE_PID[$index]}" 2>/dev/null || true
    echo "$SESSIONS_DIR/served-$index-${INSTANCE_RUN[$index]}.txt $(now_ms)" |
        tee -a "$SESSIONS_DIR/ends.txt" >>"$SESSIONS_DIR/kills.txt"
    say "t+$(elapsed)s SIGKILL gateway instance $index (back in $((INSTANCE_RESTART_MS / 1000)) s)"
}

# Each run stopped; its open spans (none, unless stop_pid had to SIGKILL
# it) end when it was gone.
stop_instances() {
    local index
    for index in "${!INSTANCE_PID[@]}"; do
        stop_pid "${INSTANCE_PID[$index]}"
        echo "$SESSIONS_DIR/served-$index-${INSTANCE_RUN[$index]}.txt $(now_ms)" \
            >>"$SESSIONS_DIR/ends.txt"
    done
    INSTANCE_PID=()
}

kill_instances() {
    local index
    for index in "${!INSTANCE_PID[@]}"; do kill -KILL "${INSTANCE_PID[$index]}" 2>/dev/null || true; done
}

start_instances() {
    (umask 077 && mkdir -p "$SESSIONS_DIR/storage")
    : >"$SESSIONS_DIR/kills.txt"
    : >"$SESSIONS_DIR/ends.txt"
    local index
    for index in $(seq 0 $((INSTANCE_COUNT - 1))); do start_instance "$index"; done
}

# The sessions, through the CRM API of the first ingest.
create_sessions() {
    local key i status
    SS_WS=$(sql "INSERT INTO workspaces (name, metadata)
                 VALUES ('chaos sessions', jsonb_build_object('chaos_tag', :'tag')) RETURNING id" \
                tag="$TAG") || return 1
    key=$("$BIN_DIR/blazzctl" apikeys create --workspace "$SS_WS" --name chaos --json \
              2>>"$LOGS/blazzctl.log" | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' | head -n 1)
    [ -n "$key" ] || return 1
    for i in $(seq 1 "$CHAOS_SESSIONS"); do
        # the key reaches curl on stdin, never on its command line
        status=$(printf 'header = "Authorization: Bearer %s"\n' "$key" |
                 curl -sS -o /dev/null -w '%{http_code}' -K - -X POST \
                      -H 'Content-Type: application/json' \
                      --data "{\"session_id\":\"chaos-$TAG-s$i\",\"gateway_id\":\"sim\"}" \
                      --retry 5 --retry-all-errors \
                      "http://${INGEST_LISTEN[${INGESTS[0]}]}/v1/sessions" 2>>"$LOGS/chaos.log")
        [ "$status" = 202 ] || { note "POST /v1/sessions answered $status"; return 1; }
    done
    say "$CHAOS_SESSIONS sessions created with POST /v1/sessions in workspace $SS_WS," \
        "served by $INSTANCE_COUNT gateway instances of $INSTANCE_CAPACITY sessions each"
}

# The plan's lines for the instance kills.
plan_instance_kills() {
    local first second k
    first=$(rand_between 0 $((INSTANCE_COUNT - 1)))
    second=$(( (first + $(rand_between 1 $((INSTANCE_COUNT - 1)))) % INSTANCE_COUNT ))
    k=$(rand_between $((T * 15 / 100)) $((T * 25 / 100)))
    PLAN+=("$k kill-instance $first" "$(( k + INSTANCE_RESTART_MS )) start-instance $first")
    k=$(rand_between $((T * 55 / 100)) $((T * 65 / 100)))
    PLAN+=("$k kill-instance $second" "$(( k + INSTANCE_RESTART_MS )) start-instance $second")
}

# Sessions not connected on a live instance.
sessions_unsettled() {
    sql "SELECT count(*) FROM whatsapp_accounts a
         WHERE a.workspace_id = :ws AND a.deleted_at IS NULL AND NOT (a.status = 'connected' AND
               EXISTS (SELECT 1 FROM gateway_instances i WHERE i.gateway_id = a.gateway_id
                         AND i.instance_index = a.assigned_instance_index AND i.status = 'live'))" \
        ws="$SS_WS" 2>/dev/null || echo "?"
}

sessions_wind_down() {
    local deadline=$((SECONDS + QUIESCE_S))
    while [ $SECONDS -lt $deadline ]; do
        supervise
        SESSIONS_UNSETTLED=$(sessions_unsettled)
        [ "$SESSIONS_UNSETTLED" = 0 ] && break
        sleep 2
    done
    say "t+$(elapsed)s sessions not connected on a live instance: $SESSIONS_UNSETTLED;" \
        "stopping the gateway instances"
    [ "$SESSIONS_UNSETTLED" = 0 ] || note "$(sql "
SELECT string_agg(a.session_id || ' ' || a.status || ' on ' || coalesce(a.assigned_instance_index::text, '-')
                  || ' (' || coalesce(i.status, 'unknown') || ') epoch ' || a.assignment_epoch
                  || ' moved ' || a.instance_migration_count, '; ')
FROM whatsapp_accounts a LEFT JOIN gateway_instances i
  ON i.gateway_id = a.gateway_id AND i.instance_index = a.assigned_instance_index
WHERE a.workspace_id = :ws AND a.deleted_at IS NULL AND NOT (a.status = 'connected' AND i.status = 'live')" \
        ws="$SS_WS" 2>&1)"
    stop_instances
    deadline=$((SECONDS + INSTANCE_TIMEOUT_S * 3))
    while [ $SECONDS -lt $deadline ] &&
          [ "$(sql "SELECT count(*) FROM gateway_instances WHERE status = 'live'" 2>/dev/null)" != 0 ]; do
        supervise
        sleep 1
    done
}

# Spans of a session served by two instance runs at once, from the served
# logs ("wall_ms index boot start|stop session epoch"); a run's open spans
# end when it was killed or stopped, a live one's now. Each overlap goes
# to the chaos log (session, then both spans and their runs).
sessions_served_twice() {
    local f now
    now=$(now_ms)
    for f in "$SESSIONS_DIR"/served-*.txt; do
        [ -f "$f" ] || continue
        awk -v run="${f##*/}" -v now="$now" \
            -v ended="$(awk -v f="$f" '$1 == f { print $2; exit }' "$SESSIONS_DIR/ends.txt")" '
            NF == 6 && $4 == "start" { open[$5] = $1 }
            NF == 6 && $4 == "stop" && ($5 in open) { print $5, open[$5], $1, run; delete open[$5] }
            END { for (s in open) print s, open[s], (ended != "" ? ended : now), run }' "$f"
    done | sort -k1,1 -k2,2n | awk -v logfile="$LOGS/chaos.log" '
        $1 == session && $2 < until {
            overlaps++
            printf "served twice: %s %s-%s on %s, %s-%s on %s\n",
                   $1, from, until, by, $2, $3, $4 >>logfile
        }
        { if ($1 != session || $3 > until) { from = $2; until = $3; by = $4 } session = $1 }
        END { print overlaps + 0 }'
}

check_sessions() {
    local f moved unsettled=$SESSIONS_UNSETTLED
    sql "CREATE TABLE chaos.instance_accepted (session_id text, wam_id text)" >/dev/null
    for f in "$SESSIONS_DIR"/accepted-*.txt; do
        [ -s "$f" ] || continue
        # a run killed mid-line leaves a partial last line
        awk 'NF == 2' "$f" >"$f.whole"
        psql "$BLAZZ_PG_DSN" -X -q -v ON_ERROR_STOP=1 \
            -c "\\copy chaos.instance_accepted FROM '$f.whole' WITH (DELIMITER ' ')"
    done
    read -r total once <<<"$(sql "
SELECT count(*), count(*) FILTER (WHERE n = 1)
FROM (SELECT a.wam_id, count(c.id) AS n FROM (SELECT DISTINCT wam_id FROM chaos.instance_accepted) a
      LEFT JOIN chats c ON c.workspace_id = :ws AND c.wam_id = a.wam_id GROUP BY 1) x" ws="$SS_WS" |
        tr '|' ' ')"
    moved=$(sql "SELECT coalesce(sum(instance_migration_count), 0) FROM whatsapp_accounts
                 WHERE workspace_id = :ws" ws="$SS_WS")
    check "gateway instance SIGKILLs" "-" "$(wc -l <"$SESSIONS_DIR/kills.txt")" info
    check "session moves to another instance" "-" "$moved" info
    [[ "$unsettled" =~ ^[0-9]+$ ]] || unsettled=$CHAOS_SESSIONS
    check "sessions connected, live instance, after load" "$CHAOS_SESSIONS" \
        "$(( CHAOS_SESSIONS - unsettled ))"
    check "sessions served by two instances at once" 0 "$(sessions_served_twice)"
    check "instance messages stored exactly once" "$total" "$once"
}
