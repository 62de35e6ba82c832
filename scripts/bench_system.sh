#!/usr/bin/env bash
#
# scripts/bench_system.sh - the whole-system figure of `make bench`: the five
# services end to end under a fixed load, with latency and memory.
#
# Run by scripts/bench.sh against its stack (BLAZZ_PG_DSN, BLAZZ_KAFKA_BROKERS
# from its stack.env; binaries from $BLAZZ_BIN_DIR). Everything goes under a
# fresh topic prefix, so records other benchmarks left on the shared topics
# are never consumed here:
#  1. start the five services and a webhook receiver (every event of the
#     run's workspaces goes to an endpoint that answers 200 at once);
#  2. blazz-gateway-sim over HTTP through ingest for BLAZZ_BENCH_E2E_SECONDS
#     (20) at BLAZZ_BENCH_E2E_RATE (1,000) events/s, then wait (60 s at most)
#     until the rows and deliveries stop changing;
#  3. measure: end-to-end latency of live inbound messages, gateway
#     timestamp -> chats row committed (rows never updated since, so
#     updated_at is the insert time) and gateway timestamp -> webhook
#     received by the endpoint, for messages sent after the first
#     BLAZZ_BENCH_E2E_WARMUP_SECONDS (3) of the run (steady state), and the
#     row latency of the whole run printed apart: messages of the first
#     second or two of a freshly started stack take about a second longer
#     (new topics and transactions warming up; ingest's metrics show one
#     commit of 0.5-1 s), a start-up cost rather than the pipeline's
#     latency; each service's peak RSS (VmHWM of
#     /proc/<pid>/status, read just before stopping it) and its /metrics
#     (kept in $STATE/metrics-<service>.txt to explain the figures); and
#     the CPU time each service, the Kafka brokers and the PostgreSQL
#     primary (postmaster, backends, exited backends) used from the start
#     of the load until settled, with the events accepted per CPU second:
#     unlike a rate, that holds on a machine shared with other work, so it
#     sizes instances (docs/SCALING.md), and their sum per accepted event
#     (CPU-ms per event); and the latency waterfall: per hop of a message
#     (gateway -> 202, chat.sync stored -> chats row committed ->
#     chat.events published -> fan-out committed -> first attempt ->
#     endpoint answered), p50/p95/p99 over the steady window, from the
#     histograms the services export in production too, snapshotted when
#     the warm-up ends and again when settled;
#  4. stop everything (SIGTERM) and print a table plus "BENCH name value
#     unit" lines for scripts/bench.sh.
# Each service logs in to Kafka as itself, the simulator posts as the
# registered gateway "sim" (scripts/lib/sim_gateway.sh), whose own topics
# are created with the run's, as `blazzctl topics ensure --gateway` does in
# production (the sessions an earlier benchmark left are failed over to it,
# and their commands go there); the run's topics get the ACLs of
# ARCHITECTURE.md §9.1 (this script runs as the admin).
# Logs in $BLAZZ_STATE_DIR/logs/system-*.log. On a cluster stack
# (BLAZZ_KAFKA_BROKERS_COUNT=3, BLAZZ_PG_STANDBY=1) the run's topics get
# three replicas and the brokers' CPU is summed. The services' admin ports
# start at BLAZZ_BENCH_ADMIN_PORT (9541), ingest's at BLAZZ_BENCH_INGEST_PORT
# (8541).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${BLAZZ_BIN_DIR:-$REPO/build/bin}"
STATE="${BLAZZ_STATE_DIR:-$REPO/.run/bench}/system"
LOGS="${BLAZZ_STATE_DIR:-$REPO/.run/bench}/logs"
RATE="${BLAZZ_BENCH_E2E_RATE:-1000}"
WARMUP="${BLAZZ_BENCH_E2E_WARMUP_SECONDS:-3}"
SECS="${BLAZZ_BENCH_E2E_SECONDS:-20}"
# The burst mode (bench.sh's bench_system_burst): the run at RATE is a
# burst, BLAZZ_BENCH_E2E_AFTER_SECONDS at BLAZZ_BENCH_E2E_AFTER_RATE follow
# it while its backlog drains, and the figures are per phase.
AFTER_SECS="${BLAZZ_BENCH_E2E_AFTER_SECONDS:-0}"
AFTER_RATE="${BLAZZ_BENCH_E2E_AFTER_RATE:-1000}"
SETTLE_S="${BLAZZ_BENCH_E2E_SETTLE_SECONDS:-60}"
NAME="${BLAZZ_BENCH_E2E_NAME:-e2e}"
: "${BLAZZ_PG_DSN:?bench_system: BLAZZ_PG_DSN is not set}"
: "${BLAZZ_KAFKA_BROKERS:?bench_system: BLAZZ_KAFKA_BROKERS is not set}"

SERVICES=(ingest chat-sync webhook-dispatcher campaign-sender cleanup)
declare -A PID=() PORT=() RSS=()
RECEIVER_PID=""
TAG="e2e$(date +%s)"
PREFIX="$TAG."
# shellcheck disable=SC2034  # read by lib/sim_gateway.sh
STACK_SCRIPT="${BLAZZ_STACK_SCRIPT:-$REPO/scripts/stack.sh}"
# shellcheck source=lib/sim_gateway.sh
source "$REPO/scripts/lib/sim_gateway.sh"
# shellcheck source=lib/ports.sh
source "$REPO/scripts/lib/ports.sh"
# shellcheck source=lib/first_storage.sh
source "$REPO/scripts/lib/first_storage.sh"

say() { echo "bench_system: $*" >&2; }

stop_all() {
    local pid
    for pid in "${PID[@]}" $RECEIVER_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PID[@]}" $RECEIVER_PID; do
        for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PID=()
    RECEIVER_PID=""
}
trap stop_all EXIT

sql() { printf '%s\n' "$1" | psql "$BLAZZ_PG_DSN" -X -q -tA -v ON_ERROR_STOP=1 "${@:2}"; }

# CPU seconds a process used, with its reaped children (user + system);
# the fields after the command name, which may hold spaces.
TICKS=$(getconf CLK_TCK)
cpu_seconds() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    awk -v t="$TICKS" '{ printf "%.2f", ($12 + $13 + $14 + $15) / t }' <<<"${stat##*) }"
}

# The PostgreSQL primary: its postmaster (found as the checkpointer's
# parent) with every backend alive now; exited backends are in the
# postmaster's reaped-children time.
POSTMASTER=""
pg_cpu_seconds() {
    cat /proc/[0-9]*/stat 2>/dev/null | sed 's/^.*) //' |
        awk -v pm="$POSTMASTER" -v t="$TICKS" -v self="$(cpu_seconds "$POSTMASTER")" \
            '$2 == pm { s += $12 + $13 } END { printf "%.2f", self + s / t }'
}

BROKER_PIDS=()
for f in "${BLAZZ_STATE_DIR:-$REPO/.run/bench}"/kafka/kafka.pid "${BLAZZ_STATE_DIR:-$REPO/.run/bench}"/kafka-[0-9]/kafka.pid; do
    [ -s "$f" ] && BROKER_PIDS+=("$(cat "$f")")
done
brokers_cpu_seconds() {
    local total=0 pid
    for pid in "${BROKER_PIDS[@]}"; do
        total=$(awk -v a="$total" -v b="$(cpu_seconds "$pid")" 'BEGIN { printf "%.2f", a + b }')
    done
    echo "$total"
}

# Every service's /metrics into $STATE/<name>-<service>.txt.
snapshot_metrics() {
    local name
    for name in "${SERVICES[@]}"; do
        curl -sS "http://127.0.0.1:${PORT[$name]}/metrics" >"$STATE/$1-$name.txt" 2>/dev/null || true
    done
}

# The latency waterfall of a message: one hop a line, "name|label|process|
# histogram|labels it must match" (name: its BENCH figures are
# hop_<name>_p50/_p95/_p99); process "*" sums every service (the
# outbox relay runs where its lock was won). Each hop is a histogram the
# services export in production as well (ARCHITECTURE.md §8.1); the first
# one is the simulator's own measure of its requests.
HOPS=(
    "gateway_to_accepted|gateway send -> ingest 202 (chat.sync stored)|sim||"
    "accepted_to_sync_committed|(Kafka path) raw record -> chat.sync committed|ingest|blazz_ingest_accepted_to_committed_seconds|"
    "sync_to_row_committed|chat.sync produced -> chats row committed|chat-sync|blazz_consumer_record_age_seconds|"
    "row_to_event_published|chat-sync transaction -> chat.events published|*|blazz_outbox_row_age_seconds|topic=\"chat.events\""
    "event_to_fanout|chat.events published -> fan-out committed|webhook-dispatcher|blazz_consumer_record_age_seconds|"
    "fanout_to_first_attempt|fan-out committed -> first attempt started|webhook-dispatcher|blazz_webhook_dispatcher_enqueue_to_first_attempt_seconds|"
    "attempt_to_answer|attempt started -> endpoint answered|webhook-dispatcher|blazz_webhook_dispatcher_attempt_seconds|"
)

# "p50 p95 p99 count" of one hop over the steady window.
hop_quantiles() {
    local process=$1 metric=$2 labels=$3
    if [ "$process" = sim ]; then
        echo "$(value latency_p50_ms) $(value latency_p95_ms) $(value latency_p99_ms) $(value accepted)"
        return
    fi
    # shellcheck disable=SC2086 # the glob is the point
    awk -v metric="$metric" -v labels_match="$labels" -f "$REPO/scripts/lib/histogram_quantiles.awk" \
        "$STATE"/metrics0-$process.txt "$STATE"/metrics-$process.txt
}

declare -A CPU0=() CPU=()
cpu_snapshot() {
    local name
    for name in "${SERVICES[@]}"; do echo "$name $(cpu_seconds "${PID[$name]}")"; done
    echo "kafka $(brokers_cpu_seconds)"
    echo "postgresql $(pg_cpu_seconds)"
}

rm -rf "$STATE"
mkdir -p "$STATE" "$LOGS"
prefix_topics_ensure "$PREFIX" "$LOGS/system-topics.log" --partitions 6 --gateway sim \
    --replication "${BLAZZ_KAFKA_BROKERS_COUNT:-1}" || exit 1
# The key that seals endpoint secrets and gateway keys, and the simulator's
# gateway key: files, never arguments.
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STATE/secrets.key")
export BLAZZ_SECRETS_KEYS_FILE="$STATE/secrets.key"
sim_gateway_ensure "$STATE/gateway-sim.key" "$LOGS/system-sim.log" ||
    { say "registering the simulator's gateway failed"; exit 1; }

"$BIN_DIR/blazz-webhook-receiver" --listen 127.0.0.1:0 --record "$STATE/receiver.jsonl" \
    --port-file "$STATE/receiver.port" >"$LOGS/system-receiver.log" 2>&1 </dev/null &
RECEIVER_PID=$!
for _ in $(seq 1 50); do [ -s "$STATE/receiver.port" ] && break; sleep 0.1; done
[ -s "$STATE/receiver.port" ] || { say "the webhook receiver did not start"; exit 1; }

port=$(free_port "${BLAZZ_BENCH_ADMIN_PORT:-9541}")
INGEST="127.0.0.1:$(free_port "${BLAZZ_BENCH_INGEST_PORT:-8541}")"
echo "$INGEST" >"$STATE/ingest.address"
for name in "${SERVICES[@]}"; do
    PORT[$name]=$port
    service_start "$name" "$PREFIX" "$LOGS/system-$name.log" BLAZZ_HTTP_LISTEN="127.0.0.1:$port" \
        BLAZZ_INGEST_LISTEN="$INGEST" BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true
    PID[$name]=$STARTED_PID
    port=$(free_port $((port + 1)))
done
for name in "${SERVICES[@]}"; do
    service_ready "${PORT[$name]}" "${PID[$name]}" ||
        { say "$name exited (see $LOGS/system-$name.log)"; exit 1; }
done

SIM=("$BIN_DIR/blazz-gateway-sim" --mode http --ingest-url "http://$INGEST/v1/events"
     --key-file "$STATE/gateway-sim.key"
     --tag "$TAG" --seed 7 --workspaces 3 --accounts-per-workspace 2 --log-level warn)
"${SIM[@]}" --rate 0 --duration 1 >"$LOGS/system-sim.log" 2>&1
for ws in $(sql "SELECT id FROM workspaces WHERE metadata->>'sim_tag' = :'t'" -v t="$TAG"); do
    "$BIN_DIR/blazzctl" webhooks add --workspace "$ws" \
        --url "http://127.0.0.1:$(cat "$STATE/receiver.port")/ok/e2e" --rate 100000 \
        --concurrency 16 >>"$LOGS/system-sim.log" 2>&1
done

checkpointer=$(sql "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
POSTMASTER=$(sed 's/^.*) //' "/proc/$checkpointer/stat" | awk '{ print $2 }')
say "${SECS}s at $RATE events/s through all five services (topic prefix $PREFIX)"
while read -r name seconds; do CPU0[$name]=$seconds; done < <(cpu_snapshot)
START=$(date +%s%3N)
"${SIM[@]}" --rate "$RATE" --duration "$SECS" --history-chats 20 --history-messages 5 \
    --http-concurrency 16 --status-file "$STATE/sim.status" --accepted-log "$STATE/accepted.log" \
    >"$STATE/sim.report" 2>>"$LOGS/system-sim.log" &
SIM_PID=$!
# The waterfall's window opens after the warm-up: what the histograms hold
# then is subtracted from what they hold at the end.
sleep "$WARMUP"
snapshot_metrics metrics0
wait "$SIM_PID" || { say "the gateway simulator failed (see $LOGS/system-sim.log)"; exit 1; }
SIM_END=$(date +%s%3N)
if [ "$AFTER_SECS" -gt 0 ]; then
    say "then ${AFTER_SECS}s at $AFTER_RATE events/s while the burst drains"
    "${SIM[@]}" --rate "$AFTER_RATE" --duration "$AFTER_SECS" --history-chats 0 \
        --http-concurrency 16 --status-file "$STATE/sim-after.status" \
        --accepted-log "$STATE/accepted-after.log" >"$STATE/sim-after.report" \
        2>>"$LOGS/system-sim.log" ||
        { say "the gateway simulator failed (see $LOGS/system-sim.log)"; exit 1; }
fi

settled() {
    sql "SELECT (SELECT count(*) FROM chats c JOIN workspaces w ON w.id = c.workspace_id
                 WHERE w.metadata->>'sim_tag' = :'t') || '/' ||
                (SELECT count(*) FROM webhook_retry_queue q JOIN workspaces w ON w.id = q.workspace_id
                 WHERE w.metadata->>'sim_tag' = :'t' AND q.status = 'success') || '/' ||
                (SELECT count(*) FROM webhook_retry_queue q JOIN workspaces w ON w.id = q.workspace_id
                 WHERE w.metadata->>'sim_tag' = :'t' AND q.status IN ('pending', 'retrying'))" -v t="$TAG"
}
# Settled: nothing left to deliver and nothing moved for a second; the
# drain time runs from the simulator's end to the first such reading.
previous=""
SETTLED_AT=""
for _ in $(seq 1 $((SETTLE_S * 2))); do
    now=$(settled)
    if [ "$now" = "$previous" ] && [ "${now##*/}" = 0 ]; then
        [ -n "$SETTLED_AT" ] && [ $(( $(date +%s%3N) - SETTLED_AT )) -ge 1000 ] && break
        [ -n "$SETTLED_AT" ] || SETTLED_AT=$(date +%s%3N)
    else
        SETTLED_AT=""
    fi
    previous=$now
    sleep 0.5
done
[ -n "$SETTLED_AT" ] || say "not settled after ${SETTLE_S}s"

while read -r name seconds; do
    CPU[$name]=$(awk -v a="$seconds" -v b="${CPU0[$name]:-0}" 'BEGIN { printf "%.1f", a - b }')
done < <(cpu_snapshot)
snapshot_metrics metrics
for name in "${SERVICES[@]}"; do
    RSS[$name]=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/${PID[$name]}/status" 2>/dev/null || echo 0)
done
stop_all

quantiles() {
    sql "SELECT coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)::text, 'n/a') || ' ' ||
                coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)::text, 'n/a') || ' ' ||
                count(*) FROM ($1) x" -v t="$TAG" -v since="$START"
}
# Live messages created from $1 s after the start to $2 ms (epoch): the
# first storage of rows no later update changed (first_storage.sh).
row_latencies() {
    echo "SELECT extract(epoch FROM c.updated_at - c.created_at) * 1000 AS ms
          FROM chats c JOIN workspaces w ON w.id = c.workspace_id
          WHERE w.metadata->>'sim_tag' = :'t' AND c.type = 'inbound' AND NOT $(row_changed_sql c)
            AND c.metadata->>'source' IS DISTINCT FROM 'history_sync'
            AND c.created_at >= to_timestamp(:since / 1000.0 + $1)
            AND c.created_at < to_timestamp(${2:-99999999999999} / 1000.0)"
}
read -r row_p50 row_p99 row_n <<<"$(quantiles "$(row_latencies "$WARMUP" "$SIM_END")")"
read -r cold_p50 cold_p99 cold_n <<<"$(quantiles "$(row_latencies 0 "$SIM_END")")"
# psql's lines that load the receiver's record into the temporary view
# "delivered": (t_ms, body) of each message.created it answered 200.
load_delivered() {
    printf '%s\n' \
        "CREATE TEMP TABLE r (line text);" \
        "\\copy r FROM '$STATE/receiver.jsonl' WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')" \
        "CREATE TEMP VIEW delivered AS SELECT (j->>'t_ms')::float8 AS t_ms, b
         FROM (SELECT j, (j->>'body')::jsonb AS b FROM (SELECT line::jsonb AS j FROM r) x) y
         WHERE b->>'type' = 'message.created' AND (j->>'status')::int = 200;"
}
# Seconds from the burst's end to the last delivery of a message.created
# for a message sent during the burst (its body's timestamp is the
# gateway's).
burst_webhooks_drained() {
    { load_delivered
      echo "SELECT coalesce(round(((max(t_ms) - $SIM_END) / 1000)::numeric, 1)::text, 'n/a')
            FROM delivered WHERE (b->>'timestamp')::timestamptz < to_timestamp($SIM_END / 1000.0);"
    } | psql "$BLAZZ_PG_DSN" -X -q -tA -v ON_ERROR_STOP=1
}
# "p50 p99 n" of gateway -> the 2xx of message.created for messages sent
# in [from, to) (ms, epoch).
hook_latencies() {
    { load_delivered
      echo "SELECT coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)::text, 'n/a') || ' ' ||
                   coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)::text, 'n/a') || ' ' || count(*)
            FROM (SELECT t_ms - extract(epoch FROM (b->>'timestamp')::timestamptz) * 1000 AS ms FROM delivered
                  WHERE (b->>'timestamp')::timestamptz >= to_timestamp($1 / 1000.0)
                    AND (b->>'timestamp')::timestamptz < to_timestamp($2 / 1000.0)) z;"
    } | psql "$BLAZZ_PG_DSN" -X -q -tA -v ON_ERROR_STOP=1
}
read -r hook_p50 hook_p99 hook_n <<<"$(hook_latencies $((START + WARMUP * 1000)) "$SIM_END")"
# Nothing lost: every message of every event ingest accepted (the
# simulator's accepted logs, "session_id wam_id") has its row.
lost=$(cat "$STATE"/accepted*.log 2>/dev/null | printf '%s\n' \
    "CREATE TEMP TABLE a (session_id text, wam_id text);" \
    "\\copy a FROM STDIN WITH (DELIMITER ' ')" "$(cat)" '\.' \
    "SELECT count(*) || ' ' || (SELECT count(*) FROM (SELECT DISTINCT * FROM a) d)
     FROM (SELECT DISTINCT session_id, wam_id FROM a) x
     WHERE NOT EXISTS (SELECT 1 FROM chats c JOIN whatsapp_accounts w ON w.id = c.whatsapp_account_id
                       WHERE w.session_id = x.session_id AND c.wam_id = x.wam_id);" |
    psql "$BLAZZ_PG_DSN" -X -q -tA -v ON_ERROR_STOP=1)
read -r lost_n accepted_messages <<<"$lost"

value() { { sed -n "s/^$1=//p" "$STATE/sim.status" 2>/dev/null || true; } | head -n 1; }
accepted=$(value accepted)
rejected=$(value rejected)
elapsed=$(value elapsed_s)
accepted_rate=$(awk -v a="${accepted:-0}" -v s="${elapsed:-0}" 'BEGIN { printf "%.0f", (s > 0 ? a / s : 0) }')

echo "system end to end (${SECS}s at $RATE events/s over HTTP)      value"
printf '  %-52s %10s /s  (%s accepted, %s refused)\n' "events accepted by ingest" "$accepted_rate" \
    "${accepted:-0}" "${rejected:-0}"
printf '  %-52s %10s ms  (p99 %s ms, %s messages)\n' "gateway -> chats row, p50 (after ${WARMUP}s)" \
    "$row_p50" "$row_p99" "$row_n"
printf '  %-52s %10s ms  (p99 %s ms, %s messages)\n' "gateway -> chats row, p50 (whole run)" \
    "$cold_p50" "$cold_p99" "$cold_n"
printf '  %-52s %10s ms  (p99 %s ms, %s webhooks)\n' "gateway -> webhook received, p50 (after ${WARMUP}s)" \
    "$hook_p50" "$hook_p99" "$hook_n"
printf '  %-52s %10s     (of %s accepted)\n' "accepted messages not stored" "${lost_n:-?}" \
    "${accepted_messages:-?}"
if [ "$AFTER_SECS" -gt 0 ]; then
    # the burst drained when its last message was stored (first storage)
    # and its message.created delivered: the messages sent during the
    # burst, not those of the phase after it, nor a later reaction's update
    read -r drain_row drain_hook <<<"$(sql "SELECT round(extract(epoch FROM max(c.updated_at)) - :end / 1000.0, 1)
        FROM chats c JOIN workspaces w ON w.id = c.workspace_id
        WHERE w.metadata->>'sim_tag' = :'t' AND c.type = 'inbound' AND NOT $(row_changed_sql c)
          AND c.created_at < to_timestamp(:end / 1000.0)" -v t="$TAG" -v end="$SIM_END") \
        $(burst_webhooks_drained)"
    read -r after_row_p50 after_row_p99 after_row_n <<<"$(quantiles "$(row_latencies $(( (SIM_END - START) / 1000 )))")"
    read -r after_hook_p50 after_hook_p99 after_hook_n <<<"$(hook_latencies "$SIM_END" 99999999999999)"
    printf '  %-52s %10s s   (webhooks %s s)\n' "burst: drained, after its end" "$drain_row" "$drain_hook"
    printf '  %-52s %10s ms  (p99 %s ms, %s messages)\n' "after the burst: gateway -> chats row, p50" \
        "$after_row_p50" "$after_row_p99" "$after_row_n"
    printf '  %-52s %10s ms  (p99 %s ms, %s webhooks)\n' "after the burst: gateway -> webhook, p50" \
        "$after_hook_p50" "$after_hook_p99" "$after_hook_n"
fi
for name in "${SERVICES[@]}"; do
    printf '  %-52s %10s MB\n' "peak RSS $name" "${RSS[$name]}"
done
echo "latency waterfall of a message, steady (after ${WARMUP}s)   p50 ms   p95 ms   p99 ms   samples"
for hop in "${HOPS[@]}"; do
    IFS='|' read -r name label process metric labels <<<"$hop"
    read -r p50 p95 p99 n <<<"$(hop_quantiles "$process" "$metric" "$labels")"
    printf '  %-52s %8s %8s %8s %9s\n' "$label" "$p50" "$p95" "$p99" "$n"
    # a burst's waterfall is its table above: its figures must not replace
    # the steady run's in the summary
    if [ "$NAME" = e2e ]; then
        printf 'BENCH hop_%s_p50 %s ms\nBENCH hop_%s_p95 %s ms\nBENCH hop_%s_p99 %s ms\n' \
            "$name" "$p50" "$name" "$p95" "$name" "$p99"
    fi
done
echo "  (the gateway's own hop covers the whole run; quantiles of the services' hops are"
echo "   interpolated in their histograms' buckets)"
per_cpu_second() { awk -v n="${accepted:-0}" -v s="$1" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
for name in "${SERVICES[@]}" kafka postgresql; do
    printf '  %-52s %10s s   (%s events per CPU second)\n' "CPU $name" "${CPU[$name]}" \
        "$(per_cpu_second "${CPU[$name]}")"
done
total_cpu=$(for name in "${SERVICES[@]}" kafka postgresql; do echo "${CPU[$name]}"; done |
    awk '{ s += $1 } END { printf "%.1f", s }')
cpu_ms_per_event=$(awk -v s="$total_cpu" -v n="${accepted:-0}" 'BEGIN { printf "%.3f", (n > 0 ? 1000 * s / n : 0) }')
printf '  %-52s %10s s   (%s CPU-ms per event)\n' "CPU all processes" "$total_cpu" "$cpu_ms_per_event"
if [ "$NAME" != e2e ]; then
    # a burst: its own figures, apart from the steady run's
    echo "BENCH ${NAME}_accepted_rate $accepted_rate events/s"
    echo "BENCH ${NAME}_lost ${lost_n:-?} messages"
    echo "BENCH ${NAME}_row_p99 $row_p99 ms"
    echo "BENCH ${NAME}_webhook_p99 $hook_p99 ms"
    echo "BENCH ${NAME}_drain ${drain_row:-?} s"
    echo "BENCH ${NAME}_webhook_drain ${drain_hook:-?} s"
    echo "BENCH ${NAME}_after_row_p99 ${after_row_p99:-?} ms"
    echo "BENCH ${NAME}_after_webhook_p99 ${after_hook_p99:-?} ms"
    exit 0
fi
echo "BENCH e2e_accepted_rate $accepted_rate events/s"
echo "BENCH e2e_lost ${lost_n:-?} messages"
echo "BENCH cpu_ms_per_event $cpu_ms_per_event ms"
echo "BENCH e2e_row_p50 $row_p50 ms"
echo "BENCH e2e_row_p99 $row_p99 ms"
echo "BENCH e2e_row_whole_run_p50 $cold_p50 ms"
echo "BENCH e2e_row_whole_run_p99 $cold_p99 ms"
echo "BENCH e2e_webhook_p50 $hook_p50 ms"
echo "BENCH e2e_webhook_p99 $hook_p99 ms"
for name in "${SERVICES[@]}"; do
    echo "BENCH rss_peak_${name//-/_} ${RSS[$name]} MB"
done
for name in "${SERVICES[@]}" kafka postgresql; do
    echo "BENCH events_per_cpu_s_${name//-/_} $(per_cpu_second "${CPU[$name]}") events/s"
done
