#!/usr/bin/env bash
#
# scripts/run.sh - `make run`: the backbone end to end, in one command.
#
#  1. bring the local stack up (scripts/stack.sh up: PostgreSQL, Kafka,
#     migrations, topics);
#  2. start every service built so far (services/<name> whose
#     $BIN_DIR/blazz-<name> exists) in the background, configured through the
#     environment (BLAZZ_KAFKA_BROKERS, BLAZZ_PG_DSN, an admin endpoint on
#     127.0.0.1:91xx, a demo gateway secret), logs in $STATE/logs/<name>.log,
#     and wait for each /readyz; services not built yet are named;
#  3. run blazz-gateway-sim for a short demo under a fresh world tag: connect,
#     history sync, then live traffic at a moderate rate, through ingest over
#     HTTP when ingest runs, else straight to Kafka; a progress line shows
#     events sent / accepted / stored every second;
#  4. wait for the pipeline to settle and print a report: events sent,
#     accepted, stored, dead-lettered; chats, contacts and groups created;
#     latency gateway -> row (sampled from the rows: chats.updated_at is the
#     insert transaction's time, created_at the message's gateway timestamp)
#     and chat-sync's record-age histogram; a few sample rows;
#  5. stop the services (SIGTERM, then wait). Ctrl-C does the same at any
#     point. The stack stays up: `make stack-down` stops it.
#
# Tunables (environment): BLAZZ_DEMO_SECONDS (25), BLAZZ_DEMO_RATE (150
# events/s), BLAZZ_INGEST_LISTEN (127.0.0.1:8080), BLAZZ_DEMO_ADMIN_PORT
# (9101, first admin port), BLAZZ_INGEST_GATEWAY_SECRET (a demo value).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${BLAZZ_STATE_DIR:-$REPO/.run}"
BIN_DIR="${BLAZZ_BIN_DIR:-$REPO/build/bin}"
LOGS="$STATE/logs"
SIM="$BIN_DIR/blazz-gateway-sim"
DEMO_SECONDS="${BLAZZ_DEMO_SECONDS:-25}"
DEMO_RATE="${BLAZZ_DEMO_RATE:-150}"
ADMIN_PORT="${BLAZZ_DEMO_ADMIN_PORT:-9101}"
INGEST_LISTEN="${BLAZZ_INGEST_LISTEN:-127.0.0.1:8080}"
export BLAZZ_INGEST_GATEWAY_SECRET="${BLAZZ_INGEST_GATEWAY_SECRET:-demo-gateway-secret-not-for-production}"

SVC_NAMES=()
SVC_PIDS=()
SVC_PORTS=()
SIM_PID=""
STOPPED=0

say() { echo "run: $*"; }

# ---- processes ----------------------------------------------------------------

# SIGTERM everything we started, wait (bounded), SIGKILL what is left.
stop_all() {
    [ "$STOPPED" = 1 ] && return 0
    STOPPED=1
    local pids=()
    [ -n "$SIM_PID" ] && pids+=("$SIM_PID")
    pids+=("${SVC_PIDS[@]+"${SVC_PIDS[@]}"}")
    [ ${#pids[@]} -eq 0 ] && return 0
    say "stopping ${#SVC_PIDS[@]} service(s)"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 200); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            say "pid $pid did not stop in 20 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
}

on_interrupt() {
    echo
    say "interrupted"
    stop_all
    say "the stack is still running; \`make stack-down\` stops it"
    exit 130
}
trap on_interrupt INT TERM
trap stop_all EXIT

# First port >= $1 on 127.0.0.1 that nobody answers on.
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

start_service() {
    local name=$1 bin=$2 port=$3
    local -a extra=()
    if [ "$name" = ingest ]; then extra=(BLAZZ_INGEST_LISTEN="$INGEST_LISTEN"); fi
    env BLAZZ_KAFKA_BROKERS="$BLAZZ_KAFKA_BROKERS" BLAZZ_PG_DSN="$BLAZZ_PG_DSN" \
        BLAZZ_KAFKA_TOPIC_PREFIX="${BLAZZ_TOPIC_PREFIX:-}" \
        BLAZZ_HTTP_LISTEN="127.0.0.1:$port" BLAZZ_LOG_LEVEL=info \
        "${extra[@]+"${extra[@]}"}" "$bin" >>"$LOGS/$name.log" 2>&1 &
    SVC_NAMES+=("$name")
    SVC_PIDS+=("$!")
    SVC_PORTS+=("$port")
}

# Wait until every started service answers /readyz (60 s at most).
wait_ready() {
    local deadline=$((SECONDS + 60))
    for i in "${!SVC_NAMES[@]}"; do
        local name=${SVC_NAMES[$i]} pid=${SVC_PIDS[$i]} port=${SVC_PORTS[$i]}
        until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
            if ! kill -0 "$pid" 2>/dev/null; then
                say "$name exited during start-up; last lines of $LOGS/$name.log:"
                tail -n 15 "$LOGS/$name.log" >&2
                exit 1
            fi
            if [ $SECONDS -ge $deadline ]; then
                say "$name is not ready after 60 s; last lines of $LOGS/$name.log:"
                tail -n 15 "$LOGS/$name.log" >&2
                exit 1
            fi
            sleep 0.2
        done
        say "$name ready (admin http://127.0.0.1:$port, pid $pid)"
    done
}

service_port() {
    for i in "${!SVC_NAMES[@]}"; do
        [ "${SVC_NAMES[$i]}" = "$1" ] && { echo "${SVC_PORTS[$i]}"; return 0; }
    done
    return 1
}

# Sum of every sample of metric families matching regex $1 over all services.
metrics_sum() {
    local total=0 v
    for port in "${SVC_PORTS[@]+"${SVC_PORTS[@]}"}"; do
        v=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null |
            awk -v re="$1" '$1 ~ re { s += $NF } END { printf "%d", s }') || v=0
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# p50 and p99 (ms) of a Prometheus histogram $2 served on port $1.
histogram_quantiles() {
    curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v name="$2_bucket" '
        index($1, name "{") == 1 {
            match($1, /le="[^"]*"/); le = substr($1, RSTART + 4, RLENGTH - 5)
            n++; bound[n] = le; count[n] = $NF
        }
        END {
            if (n == 0 || count[n] == 0) { print "n/a"; exit }
            split("0.5 0.99", qs, " ")
            out = ""
            for (k = 1; k <= 2; k++) {
                want = qs[k] * count[n]
                for (i = 1; i <= n; i++) if (count[i] >= want) break
                v = bound[i] == "+Inf" ? "> " bound[i-1] * 1000 : bound[i] * 1000
                out = out sprintf("%s%s ms", (k == 1 ? "p50 <= " : ", p99 <= "), v)
            }
            print out " (" count[n] " records)"
        }'
}

# ---- queries (the run's rows only: workspaces carrying its sim_tag) ----------

q() {
    printf '%s\n' "$1" | psql "$BLAZZ_PG_DSN" -X -q -tA -v ON_ERROR_STOP=1 -v tag="$TAG" \
        -v since="$DEMO_START_MS" 2>/dev/null || echo "?"
}

RUN_WS="(SELECT id FROM workspaces WHERE metadata->>'sim_tag' = :'tag')"

stored_chats() { q "SELECT count(*) FROM chats WHERE workspace_id IN $RUN_WS"; }

status_value() { { sed -n "s/^$1=//p" "$STATUS" 2>/dev/null || true; } | head -n 1; }

# ---- 1. stack -------------------------------------------------------------------

"$REPO/scripts/stack.sh" up
# shellcheck source=/dev/null
source "$STATE/stack.env"
mkdir -p "$LOGS"
if [ ! -x "$SIM" ]; then
    say "$SIM is missing: run \`make build\` first"
    exit 1
fi

# ---- 2. services ------------------------------------------------------------------

# Services are the folders of services/ (tools/ builds blazz-* helpers too,
# such as the webhook receiver, which are not services).
MISSING=()
port=$ADMIN_PORT
for dir in "$REPO"/services/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    bin="$BIN_DIR/blazz-$name"
    if [ ! -x "$bin" ]; then
        MISSING+=("$name")
        continue
    fi
    port=$(free_port "$port")
    if [ "$name" = ingest ]; then
        INGEST_LISTEN="127.0.0.1:$(free_port "${INGEST_LISTEN##*:}")"
    fi
    : >"$LOGS/$name.log"
    start_service "$name" "$bin" "$port"
    port=$((port + 1))
done
echo
if [ ${#SVC_NAMES[@]} -gt 0 ]; then
    say "started: ${SVC_NAMES[*]} (logs in $LOGS/)"
    wait_ready
else
    say "no service is built yet"
fi
[ ${#MISSING[@]} -gt 0 ] && say "not built yet (skipped): ${MISSING[*]}"

# ---- 3. the demo ---------------------------------------------------------------------

TAG="demo$(date +%s)"
STATUS="$STATE/gateway-sim.status"
SIM_REPORT="$STATE/gateway-sim.report"
rm -f "$STATUS"
if service_port ingest >/dev/null; then
    MODE=http
    ROUTE="through ingest (POST http://$INGEST_LISTEN/v1/events)"
else
    MODE=kafka
    ROUTE="straight to Kafka (${BLAZZ_TOPIC_PREFIX:-}wa.inbound.raw; ingest is not running)"
fi
HAVE_CHAT_SYNC=0
service_port chat-sync >/dev/null && HAVE_CHAT_SYNC=1
DEMO_START_MS=$(($(date +%s) * 1000))
echo
say "gateway simulator: ${DEMO_SECONDS}s at ${DEMO_RATE} events/s, world '$TAG', $ROUTE"
"$SIM" --mode "$MODE" --ingest-url "http://$INGEST_LISTEN/v1/events" \
    --rate "$DEMO_RATE" --duration "$DEMO_SECONDS" --seed "$(date +%s)" --tag "$TAG" \
    --workspaces 3 --accounts-per-workspace 2 --history-chats 100 --history-messages 10 \
    --answer-outbound --status-file "$STATUS" --log-level warn \
    >"$SIM_REPORT" 2>"$LOGS/gateway-sim.log" &
SIM_PID=$!

progress() {
    local line
    line=$(printf '[%5ss] %-9s sent %7s  accepted %7s  rejected %4s  stored %7s' \
        "$(status_value elapsed_s)" "$(status_value phase)" "$(status_value sent)" \
        "$(status_value accepted)" "$(status_value rejected)" "$1")
    if [ -t 1 ]; then printf '\r%s' "$line"; else echo "$line"; fi
}

tick=0
while kill -0 "$SIM_PID" 2>/dev/null; do
    sleep 1
    tick=$((tick + 1))
    if [ -t 1 ] || [ $((tick % 5)) -eq 0 ]; then progress "$(stored_chats)"; fi
done
SIM_RC=0
wait "$SIM_PID" || SIM_RC=$?
SIM_PID=""
[ -t 1 ] && echo
if [ "$SIM_RC" -ne 0 ]; then
    say "the simulator failed (exit $SIM_RC); see $LOGS/gateway-sim.log:"
    tail -n 15 "$LOGS/gateway-sim.log" >&2
    exit 1
fi

# Let chat-sync finish what is in flight: stop when the row count holds
# still for 3 s (30 s at most).
if [ "$HAVE_CHAT_SYNC" = 1 ]; then
    last=-1 still=0
    for _ in $(seq 1 30); do
        now=$(stored_chats)
        [ -t 1 ] && progress "$now"
        if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; fi
        [ $still -ge 3 ] && break
        last=$now
        sleep 1
    done
    [ -t 1 ] && echo
fi

# ---- 4. report ---------------------------------------------------------------------------

DEAD=$(metrics_sum '^blazz_[a-z_]*dead_lettered_total')
CS_AGE="n/a (chat-sync not running)"
if port=$(service_port chat-sync); then
    CS_AGE=$(histogram_quantiles "$port" blazz_consumer_record_age_seconds)
fi

echo
echo "================ Blazz demo report ================"
echo "services running : ${SVC_NAMES[*]:-none}"
[ ${#MISSING[@]} -gt 0 ] && echo "not built yet    : ${MISSING[*]}"
echo "route            : $ROUTE"
echo
echo "events sent      : $(status_value sent)" \
     "(session $(status_value sent_session_status), history batches $(status_value sent_history_sync)," \
     "private $(status_value sent_message_private), group $(status_value sent_message_group)," \
     "from phone $(status_value sent_message_echo), receipts $(status_value sent_ack)," \
     "group updates $(status_value sent_group_update))"
echo "accepted         : $(status_value accepted)   rejected: $(status_value rejected)   retries: $(status_value retries)"
echo "send latency     : p50 $(status_value latency_p50_ms) ms, p99 $(status_value latency_p99_ms) ms (simulator -> $MODE ack)"
echo "stored (chats)   : $(stored_chats)"
echo "dead-lettered    : $DEAD"
echo "contacts created : $(q "SELECT count(*) FROM contacts WHERE workspace_id IN $RUN_WS")"
echo "groups created   : $(q "SELECT count(*) FROM whatsapp_groups WHERE workspace_id IN $RUN_WS")"
echo "history sync     : $(q "SELECT coalesce(string_agg(s || ' x' || n, ', '), 'none') FROM (SELECT coalesce(metadata->>'sync_status', '-') s, count(*) n FROM whatsapp_accounts WHERE workspace_id IN $RUN_WS GROUP BY 1 ORDER BY 1) x")"
echo "latency e2e      : $(q "SELECT CASE WHEN count(*) = 0 THEN 'n/a (no live message stored)' ELSE
        'p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ms, p99 ' ||
        round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ms (' || count(*) ||
        ' live inbound messages, gateway timestamp -> row inserted)' END
    FROM (SELECT extract(epoch FROM updated_at - created_at) * 1000 AS ms FROM chats
          WHERE workspace_id IN $RUN_WS AND type = 'inbound'
            AND created_at >= to_timestamp(:since / 1000.0)) x")"
echo "chat.sync age    : $CS_AGE"
echo
echo "latest chats:"
printf '%s\n' "SELECT to_char(c.created_at, 'HH24:MI:SS') AS at, c.chat_type AS chat, c.type AS dir,
        left(coalesce(g.name, ct.full_name, ct.phone, ''), 28) AS \"with\",
        left(coalesce(nullif(c.metadata->>'body', ''), '[' || coalesce(c.metadata->>'message_type',
             c.metadata->>'type', 'media') || ']'), 44) AS message,
        coalesce(c.message_status, '') AS status
    FROM chats c LEFT JOIN contacts ct ON ct.id = c.contact_id
    LEFT JOIN whatsapp_groups g ON g.id = c.group_id
    WHERE c.workspace_id IN $RUN_WS ORDER BY c.created_at DESC, c.id DESC LIMIT 8" |
    psql "$BLAZZ_PG_DSN" -X -q -P pager=off -v tag="$TAG" 2>/dev/null || echo "(no chats table?)"
echo "simulator report ($SIM_REPORT):"
sed 's/^/  /' "$SIM_REPORT"
[ "$HAVE_CHAT_SYNC" = 0 ] && echo "(chat-sync is not built yet: events wait on Kafka until it runs)"
echo "==================================================="

stop_all
say "done; logs in $LOGS/. The stack is still running: \`make stack-down\` stops it."
