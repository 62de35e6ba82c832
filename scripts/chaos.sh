#!/usr/bin/env bash
#
# scripts/chaos.sh [DURATION] - the system chaos test (`make chaos`): the
# whole pipeline under steady load while a driver kills things, then proof
# that nothing was lost, duplicated or left stuck.
#
# 1. A fresh stack of its own (state <repo>/.run/chaos, PostgreSQL 19435,
#    Kafka 19392/19393: below the ephemeral range, scripts/test.sh), the release binaries of build/bin, and a flaky
#    blazz-webhook-receiver.
# 2. Setup: the gateway simulator creates two worlds (inbound traffic: 3
#    workspaces x 2 accounts; campaign: 1 workspace x 2 accounts); webhook
#    endpoints are registered with `blazzctl webhooks add` (flaky paths that
#    answer 500 to an event's first one or two attempts, for the low-volume
#    event types; one that always answers 503 and must dead-letter; plain
#    200 for the message traffic, unless BLAZZ_CHAOS_FLAKY_MESSAGES=1);
#    a campaign (contacts, contact group, campaign rows) is inserted with
#    SQL; a workspace of sessions for cleanup gets keepers now and doomed
#    sessions (stale QR, disconnected for days, duplicates) in rounds during
#    the run; a workspace of its own gets a Meta Cloud API account, set up
#    as `make run` sets up its own (scripts/chaos/meta.sh).
# 3. Load for DURATION seconds: blazz-gateway-sim over HTTP through ingest
#    (connect, history sync, live messages, receipts, flaps) logging every
#    accepted message (--accepted-log); a second simulator answers
#    its own wa.outbound.gw.sim (--answer-outbound, a few failures, --sends-log); the
#    campaign starts with `blazzctl campaign start`; cleanup sweeps on a
#    10 s timer and once on request. Three gateway instances serve 30
#    sessions created through the CRM API (scripts/chaos/sessions.sh).
#    Meta traffic from customers known by their BSUID (username users
#    without a phone, users with phone and BSUID) goes through ingest's
#    Meta webhook, signed with the app secret by the Graph test server
#    playing Meta, and posted again until answered 200, as Meta retries
#    (scripts/chaos/meta.sh).
#    Meanwhile a seeded plan SIGKILLs and restarts every service several
#    times, SIGKILLs two gateway instances (their sessions move to the
#    others), restarts the Kafka broker once and PostgreSQL once
#    (scripts/stack.sh restart-kafka / restart-pg); a supervisor restarts
#    any service that dies on its own (and counts it).
# 4. The sessions connected on live instances, then the instances stopped
#    (chaos/sessions.sh: a live instance heartbeats for ever). Quiescence,
#    bounded (BLAZZ_CHAOS_QUIESCE_S): consumer lag 0 for every
#    group (blazzctl lag --json), outbox empty, no webhook delivery pending
#    or retrying, the campaign finished, and all of it unchanged across two
#    polls. Then every process is stopped with SIGTERM.
# 5. Checks, from PostgreSQL, the simulators' logs, the receiver's record
#    and the topics themselves (build/tests/integration/chaos_events dumps
#    chat/session/campaign events, webhook dead letters and session
#    commands): every accepted inbound message stored exactly once and no
#    other; unread counters exact for every contact; every merge of a
#    LID person's two contacts whole (the simulator's --lid-people); every
#    Meta message answered 200 stored once, under the one contact of its
#    customer's BSUID, its message.created delivered once; every (event,
#    endpoint) pair the filters select delivered (and seen by the receiver)
#    or failed and dead-lettered, none open; the campaign completed with one
#    idempotency key per contact and attempt and exact counters; doomed
#    sessions removed exactly once (one cleanup log, one REMOVED event, one
#    DESTROY command each), keepers untouched; every session connected on
#    a live instance, none served by two instances at once, every message
#    an instance sent stored once; nothing stuck, and no dead letter on
#    any DLQ but the dispatcher's give-ups (webhook_exhausted). A summary
#    table (check, expected, actual, verdict); exit 1 if any check failed.
#
# Logs: <state>/logs (one per service, appended across restarts; chaos.log
# is the driver's timeline).
#
# Cluster mode (BLAZZ_CHAOS_CLUSTER=1, `make chaos CLUSTER=1`): the stack is
# three Kafka brokers (replication 3, min.insync.replicas 2) and a
# PostgreSQL primary with a hot standby (scripts/stack.sh cluster mode), and
# every service runs twice (instances <service>.1 and .2; two inbound
# simulators, one per ingest instance, each with a world of its own and half
# the rate). Instead of restarting the broker and the database, the plan
# SIGKILLs the broker that leads the most partitions and starts it again,
# later SIGKILLs another broker and starts it again, then promotes the
# standby and stops the old primary (clients follow through the multi-host
# DSN); SIGKILLs of service instances go on throughout. The checks add, per
# topic, the records and event ids produced against what its consumers
# took (every raw event once on chat.sync, every wa.outbound key received
# by the gateway, nothing left unconsumed by any group), and that no
# partition is under-replicated at the end.
#
# Upgrade mode (BLAZZ_CHAOS_UPGRADE_FROM=COMMIT; `make upgrade-test` and
# scripts/upgrade_test.sh take the last release of docs/releases.txt): the
# release COMMIT, N-1, is built in a git worktree of its own and kept in
# build/releases/<commit> (scripts/lib/release_build.sh). The stack is
# created and migrated by N-1's blazzctl and db/migrations, and every
# service starts from N-1's binaries, meta-sender too (it sends the CRM's
# replies on the Meta account to the Graph test server, scripts/chaos/meta.sh).
# Instead of the SIGKILLs and the restarts, the plan upgrades
# under the load: at 15% of the run this tree's `stack.sh up` (its
# blazzctl, its migrations, its topics and ACLs) migrates forward while
# N-1 runs on; from 25% to 55% the services are replaced one by one,
# producers first (ingest, chat-sync, campaign-sender, cleanup,
# meta-sender, webhook-dispatcher), so the N-1 consumers still running
# read what N writes: SIGTERM, then N's binary, ready before the plan goes
# on. From 62% to 85% they are rolled back to N-1 one by one, consumers
# first, the schema staying N's (decision 0008: a release's services run
# on the next release's schema), so N-1 consumers read what N producers
# still write. Gateway instances are SIGKILLed as above.
# The checks add: the schema N-1's at the start and N's at the end, every
# service replaced and stopped cleanly as N-1, every one rolled back and
# stopped cleanly as N, webhooks delivered by both dispatchers. In both modes no dead letter but webhook_exhausted may be
# on any DLQ, decode_error least of all: a consumer that met a record it
# could not read.
#
# Tunables (environment): BLAZZ_CHAOS_RATE
# (inbound events/s, 60; cluster mode 1000), BLAZZ_CHAOS_META_RATE (Meta
# messages/s, 2; none in upgrade mode), BLAZZ_CHAOS_KILLS (SIGKILLs per service instance,
# max(2, DURATION/120); 0 in upgrade mode), BLAZZ_CHAOS_CAMPAIGN_RATE (sends/s, 4),
# BLAZZ_CHAOS_SEED (the plan and the traffic; printed, so a run can be
# replayed), BLAZZ_CHAOS_QUIESCE_S (300), BLAZZ_CHAOS_FLAKY_MESSAGES=1
# (message webhooks to flaky paths too), BLAZZ_CHAOS_KEEP=1 (leave the
# stack up), BLAZZ_CHAOS_STATE_DIR / _PG_PORT / _KAFKA_PORT /
# _KAFKA_CONTROLLER_PORT / _BIN_DIR (run next to another copy; in cluster
# mode the standby takes _PG_PORT + 1, the brokers _KAFKA_PORT .. + 2 and
# their controllers _KAFKA_CONTROLLER_PORT .. + 2, which defaults to
# _KAFKA_PORT + 3), BLAZZ_CHAOS_ADMIN_PORT / _INGEST_PORT (the first port
# tried for the services' admin listeners, for ingest's).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${1:-${DURATION:-600}}"
case "$DURATION" in ''|*[!0-9]*) echo "usage: $0 [DURATION seconds]" >&2; exit 2 ;; esac
[ "$DURATION" -ge 20 ] || { echo "chaos: DURATION must be at least 20 s" >&2; exit 2; }

STACK="$REPO/scripts/stack.sh"
# shellcheck disable=SC2034  # read by the files sourced below
STACK_SCRIPT="$STACK"
CLUSTER="${BLAZZ_CHAOS_CLUSTER:-0}"
case "$CLUSTER" in 0|1) ;; *) echo "chaos: BLAZZ_CHAOS_CLUSTER must be 0 or 1" >&2; exit 2 ;; esac
UPGRADE_FROM="${BLAZZ_CHAOS_UPGRADE_FROM:-}"
if [ -n "$UPGRADE_FROM" ]; then
    [ "$CLUSTER" = 0 ] || { echo "chaos: upgrade mode runs on a single node (not with BLAZZ_CHAOS_CLUSTER=1)" >&2; exit 2; }
    UPGRADE_FROM=$(git -C "$REPO" rev-parse --verify --quiet "$UPGRADE_FROM^{commit}") ||
        { echo "chaos: BLAZZ_CHAOS_UPGRADE_FROM=${BLAZZ_CHAOS_UPGRADE_FROM}: no such commit here" >&2; exit 2; }
fi
export BLAZZ_STATE_DIR="${BLAZZ_CHAOS_STATE_DIR:-$REPO/.run/chaos}"
export BLAZZ_PG_PORT="${BLAZZ_CHAOS_PG_PORT:-19435}"
export BLAZZ_KAFKA_PORT="${BLAZZ_CHAOS_KAFKA_PORT:-19392}"
if [ "$CLUSTER" = 1 ]; then
    export BLAZZ_KAFKA_CONTROLLER_PORT="${BLAZZ_CHAOS_KAFKA_CONTROLLER_PORT:-$((BLAZZ_KAFKA_PORT + 3))}"
    export BLAZZ_KAFKA_BROKERS_COUNT=3 BLAZZ_PG_STANDBY=1
    export BLAZZ_PG_STANDBY_PORT=$((BLAZZ_PG_PORT + 1))
else
    export BLAZZ_KAFKA_CONTROLLER_PORT="${BLAZZ_CHAOS_KAFKA_CONTROLLER_PORT:-19393}"
    export BLAZZ_KAFKA_BROKERS_COUNT=1 BLAZZ_PG_STANDBY=0
fi
export BLAZZ_TOPIC_PARTITIONS=6
export BLAZZ_TOPIC_PREFIX=""
export BLAZZ_BIN_DIR="${BLAZZ_CHAOS_BIN_DIR:-$REPO/build/bin}"
BIN_DIR="$BLAZZ_BIN_DIR"
EVENTS_DUMP="$(dirname "$BIN_DIR")/tests/integration/chaos_events"
STATE="$BLAZZ_STATE_DIR"
LOGS="$STATE/logs"

RATE="${BLAZZ_CHAOS_RATE:-$([ "$CLUSTER" = 1 ] && echo 1000 || echo 60)}"
# Requests in flight per inbound simulator: a broker loss holds requests
# for seconds, and the rate is kept only with enough of them open.
SIM_CONCURRENCY=$([ "$CLUSTER" = 1 ] && echo 32 || echo 8)
if [ -n "$UPGRADE_FROM" ]; then
    KILLS="${BLAZZ_CHAOS_KILLS:-0}"
else
    KILLS="${BLAZZ_CHAOS_KILLS:-$(( DURATION / 120 > 2 ? DURATION / 120 : 2 ))}"
fi
CAMPAIGN_RATE="${BLAZZ_CHAOS_CAMPAIGN_RATE:-4}"
SEED="${BLAZZ_CHAOS_SEED:-$(( $(date +%s) % 1000000 ))}"
QUIESCE_S="${BLAZZ_CHAOS_QUIESCE_S:-300}"
# The campaign keeps sending for about two thirds of the run.
AUDIENCE=$(( DURATION * CAMPAIGN_RATE * 2 / 3 ))
CLEANUP_ROUNDS=4

SERVICES=(ingest chat-sync webhook-dispatcher campaign-sender cleanup)
# Upgrade mode: N-1's services and migrations (release_build), and the
# order of the replacements, producers first.
OLD_BIN="" OLD_MIGRATIONS=""
UPGRADE_ORDER=(ingest chat-sync campaign-sender cleanup meta-sender webhook-dispatcher)
if [ -n "$UPGRADE_FROM" ]; then
    SERVICES+=(meta-sender)
    OLD_BIN="$(dirname "$BIN_DIR")/releases/$UPGRADE_FROM/bin"
    OLD_MIGRATIONS="$(dirname "$OLD_BIN")/migrations"
fi
# The processes: one per service, or two (<service>.1, <service>.2).
INSTANCES=()
for name in "${SERVICES[@]}"; do
    if [ "$CLUSTER" = 1 ]; then INSTANCES+=("$name.1" "$name.2"); else INSTANCES+=("$name"); fi
done
INGESTS=()
for name in "${INSTANCES[@]}"; do [ "${name%.[0-9]}" = ingest ] && INGESTS+=("$name"); done
# SVC_BIN: the folder an instance's binary is started from (N-1's until
# upgrade mode replaces it); UPGRADE_RC: how its N-1 process ended on SIGTERM.
declare -A PID=() PORT=() KILLED=() EXITED=() CRASHED=() STOP_RC=() INGEST_LISTEN=() SVC_BIN=() UPGRADE_RC=()
declare -A ROLLBACK_RC=()
SIM_PIDS=() ANSWER_PID="" RECEIVER_PID=""
KAFKA_RESTARTS=0 PG_RESTARTS=0 BROKER_KILLS=0 BROKER_STARTS=0 PG_FAILOVERS=0
UPGRADED=0 ROLLED_BACK=0 SCHEMA_START="?" SCHEMA_MIGRATED="?"
START_MS=0

TAG="chaos${SEED}"
CTAG="chaos${SEED}c"

now_ms() { date +%s%3N; }
elapsed() { echo "$(( ($(now_ms) - START_MS) / 1000 ))"; }
say() { echo "chaos: $*"; echo "[$(date +%T)] $*" >>"$LOGS/chaos.log"; }
note() { echo "[$(date +%T)] $*" >>"$LOGS/chaos.log"; }
die() { say "$*"; exit 1; }

# ---- processes ----------------------------------------------------------------

stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# After a SIGTERM: wait up to 30 s for the instance to exit (SIGKILL it
# then), and keep its exit status in STOP_RC.
wait_stopped() {
    local name=$1 rc=0 i
    for i in $(seq 1 300); do kill -0 "${PID[$name]}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${PID[$name]}" 2>/dev/null; then
        kill -KILL "${PID[$name]}" 2>/dev/null || true
        note "$name did not stop within 30 s of SIGTERM"
    fi
    wait "${PID[$name]}" 2>/dev/null || rc=$?
    STOP_RC[$name]=$rc
}

cleanup_on_exit() {
    local name
    for name in "${INSTANCES[@]}"; do
        if [ -n "${PID[$name]:-}" ] && kill -0 "${PID[$name]}" 2>/dev/null; then
            kill -KILL "${PID[$name]}" 2>/dev/null || true
        fi
    done
    for pid in "${SIM_PIDS[@]}" "$ANSWER_PID" "$RECEIVER_PID"; do
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    done
    kill_instances
    meta_stop
    for pid in "${JOB[@]}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    if [ "${BLAZZ_CHAOS_KEEP:-0}" = 1 ]; then
        echo "chaos: the stack stays up (BLAZZ_CHAOS_KEEP=1): source $STATE/stack.env"
    else
        "$STACK" down >/dev/null 2>&1 || true
    fi
}

# The service an instance runs ("chat-sync.2" -> chat-sync).
service_of() { echo "${1%.[0-9]}"; }

# The environment of a service instance: the stack, its own Kafka principal
# and PostgreSQL role (principal_env, whose DSN, given later, wins over the
# owner's), its admin port, fast failure detection (a SIGKILLed
# member's partitions move after 6 s), and what the chaos setup needs of it.
service_env() {
    local name=$1
    echo "BLAZZ_PG_DSN=$BLAZZ_PG_DSN"
    principal_env "$(service_of "$name")"
    echo "BLAZZ_KAFKA_BROKERS=$BLAZZ_KAFKA_BROKERS"
    echo "BLAZZ_KAFKA_TOPIC_PREFIX="
    echo "BLAZZ_HTTP_LISTEN=127.0.0.1:${PORT[$name]}"
    echo "BLAZZ_LOG_LEVEL=info"
    case "$(service_of "$name")" in
        ingest)
            echo "BLAZZ_INGEST_LISTEN=${INGEST_LISTEN[$name]}"
            echo "BLAZZ_INGEST_CONSUMER_SESSION_TIMEOUT_MS=6000" ;;
        chat-sync)
            echo "BLAZZ_KAFKA_SESSION_TIMEOUT_MS=6000"
            echo "BLAZZ_SESSIONS_INSTANCE_TIMEOUT_S=$INSTANCE_TIMEOUT_S" ;;
        webhook-dispatcher)
            echo "BLAZZ_CONSUMER_SESSION_TIMEOUT_MS=6000"
            echo "BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true"
            echo "BLAZZ_WEBHOOK_RETRY_SCHEDULE=0,1s,2s,3s"
            echo "BLAZZ_WEBHOOK_CLAIM_LEASE_MS=10000"
            echo "BLAZZ_WEBHOOK_TIMEOUT_MS=4000"
            echo "BLAZZ_WEBHOOK_CONNECT_TIMEOUT_MS=2000"
            # The flaky endpoints fail every event's first attempt, i.e. half
            # of all attempts, which the default breaker (50% of 20) takes
            # for a dead endpoint: open the circuit only after 64 failures
            # in a row (the 503 endpoint; a flaky one after a restart
            # burst), and briefly.
            echo "BLAZZ_WEBHOOK_CIRCUIT_WINDOW=64"
            echo "BLAZZ_WEBHOOK_CIRCUIT_MIN_REQUESTS=64"
            echo "BLAZZ_WEBHOOK_CIRCUIT_FAILURE_RATIO=1"
            echo "BLAZZ_WEBHOOK_CIRCUIT_OPEN_MS=300"
            echo "BLAZZ_WEBHOOK_CIRCUIT_OPEN_MAX_MS=2000" ;;
        campaign-sender)
            echo "BLAZZ_KAFKA_SESSION_TIMEOUT_MS=6000"
            echo "BLAZZ_RATE_ACCOUNT_PER_MINUTE=$(( CAMPAIGN_RATE * 60 ))"
            echo "BLAZZ_RATE_ACCOUNT_PER_HOUR=$(( CAMPAIGN_RATE * 3600 ))"
            echo "BLAZZ_EVENTS_PROGRESS_INTERVAL_MS=2000" ;;
        cleanup)
            echo "BLAZZ_KAFKA_SESSION_TIMEOUT_MS=6000"
            echo "BLAZZ_CLEANUP_INTERVAL_S=10" ;;
        meta-sender)
            # Upgrade mode only: it sends the CRM's replies to Meta, the
            # Graph test server (chaos/meta.sh).
            echo "BLAZZ_KAFKA_SESSION_TIMEOUT_MS=6000"
            echo "BLAZZ_META_BASE_URL=$META_GRAPH_URL" ;;
    esac
}

start_service() {
    local name=$1
    local -a envs
    mapfile -t envs < <(service_env "$name")
    env "${envs[@]}" "${SVC_BIN[$name]:-$BIN_DIR}/blazz-$(service_of "$name")" >>"$LOGS/$name.log" 2>&1 </dev/null &
    PID[$name]=$!
    note "started $name (pid ${PID[$name]}, ${SVC_BIN[$name]:-$BIN_DIR})"
}

# Ready enough for chaos: /readyz answers 200, or at least reports its
# partitions assigned. (webhook-dispatcher reports its database "down" until
# its first batch, so a quiet dispatcher would never be ready otherwise.)
is_ready() {
    local body
    body=$(curl -sS "http://127.0.0.1:${PORT[$1]}/readyz" 2>/dev/null) || return 1
    case "$body" in
        *'"ready":true'*|*'"name":"partitions","ok":true'*) return 0 ;;
    esac
    return 1
}

wait_ready() {
    local name=$1 deadline=$((SECONDS + ${2:-60}))
    until is_ready "$name"; do
        if ! kill -0 "${PID[$name]}" 2>/dev/null; then
            tail -n 15 "$LOGS/$name.log" >&2
            return 1
        fi
        [ $SECONDS -lt $deadline ] || { tail -n 15 "$LOGS/$name.log" >&2; return 1; }
        sleep 0.2
    done
}

kill_service() {
    local name=$1 pid=${PID[$1]}
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        KILLED[$name]=$(( ${KILLED[$name]:-0} + 1 ))
        say "t+$(elapsed)s SIGKILL $name (pid $pid)"
    fi
    # Down for 0-2 s, as a crashed container would be before its restart.
    sleep "0.$(( RANDOM % 10 ))$(( RANDOM % 10 ))"
    sleep $(( RANDOM % 2 ))
    start_service "$name"
}

# Upgrade mode: the forward migration as a deployment of N runs it before
# its services, this tree's `stack.sh up` (its blazzctl and migrations,
# its topics and ACLs), while N-1's services run on.
migrate_forward() {
    local t0
    t0=$(now_ms)
    if "$STACK" up >>"$LOGS/stack.log" 2>&1 </dev/null; then
        SCHEMA_MIGRATED=$(sql_retry "SELECT count(*) FROM schema_migrations")
        say "t+$(elapsed)s migrated forward in $(( $(now_ms) - t0 )) ms:" \
            "$SCHEMA_START -> $SCHEMA_MIGRATED migrations applied"
    else
        say "t+$(elapsed)s migrating forward FAILED (see $LOGS/stack.log)"
    fi
}

# Upgrade mode: an instance's process stopped with SIGTERM (its exit
# status in STOP_RC) and the other release's started in its place from bin
# ($BIN_DIR: N, $OLD_BIN: N-1); fails when that one is not ready in 60 s.
replace_service() {
    local name=$1 bin=$2
    kill -TERM "${PID[$name]}" 2>/dev/null || true
    wait_stopped "$name"
    SVC_BIN[$name]=$bin
    start_service "$name"
    wait_ready "$name" 60
}

# upgrade_service NAME / rollback_service NAME: replace_service towards N
# or back to N-1, counted, the stopped process's exit status kept.
upgrade_service() { swap_service "$1" "$BIN_DIR" upgraded; }
rollback_service() { swap_service "$1" "$OLD_BIN" "rolled back"; }

swap_service() {
    local name=$1 bin=$2 what=$3 t0 from=N-1 to=N
    [ "$bin" = "$BIN_DIR" ] || { from=N; to=N-1; }
    t0=$(now_ms)
    if ! replace_service "$name" "$bin"; then
        say "t+$(elapsed)s $name: $to not ready after the swap (see $LOGS/$name.log)"
        return
    fi
    if [ "$bin" = "$BIN_DIR" ]; then
        UPGRADE_RC[$name]=${STOP_RC[$name]}
        UPGRADED=$((UPGRADED + 1))
    else
        ROLLBACK_RC[$name]=${STOP_RC[$name]}
        ROLLED_BACK=$((ROLLED_BACK + 1))
    fi
    say "t+$(elapsed)s $name $what: $from exited ${STOP_RC[$name]} on SIGTERM," \
        "$to ready $(( $(now_ms) - t0 )) ms after it"
}

# Restart whatever died on its own, counting it; a death by a signal we did
# not send (SIGSEGV, SIGABRT...) is a crash.
supervise() {
    local name rc
    for name in "${INSTANCES[@]}"; do
        kill -0 "${PID[$name]}" 2>/dev/null && continue
        rc=0
        wait "${PID[$name]}" 2>/dev/null || rc=$?
        EXITED[$name]=$(( ${EXITED[$name]:-0} + 1 ))
        if [ "$rc" -gt 128 ]; then
            CRASHED[$name]=$(( ${CRASHED[$name]:-0} + 1 ))
            say "t+$(elapsed)s $name died by signal $((rc - 128)): restarting (see $LOGS/$name.log)"
        else
            say "t+$(elapsed)s $name exited by itself with status $rc: restarting"
        fi
        sleep 0.5
        start_service "$name"
    done
}

# Broker and database restarts, broker kills and starts and the switchover
# run in the background so the driver keeps supervising, in two lanes that
# each run one job at a time in plan order: Kafka's and PostgreSQL's (so a
# broker start that takes a minute never holds the switchover back). A job
# is a stack.sh command: kill-busiest-broker first waits until every
# partition is fully replicated, start-kafka starts the brokers that are
# down, switchover demotes the primary, promotes the standby once it has
# caught up, and stops the old primary.
declare -A JOB=() JOB_WHAT=()
PENDING_STACK=()
lane_of() { case "$1" in restart-pg|switchover) echo pg ;; *) echo kafka ;; esac; }

# 0 when the lane runs nothing (reaping and reporting a job that ended).
lane_idle() {
    local lane=$1 rc=0
    [ -n "${JOB[$lane]:-}" ] || return 0
    kill -0 "${JOB[$lane]}" 2>/dev/null && return 1
    wait "${JOB[$lane]}" || rc=$?
    if [ "$rc" -eq 0 ]; then
        case "${JOB_WHAT[$lane]}" in
            restart-kafka) KAFKA_RESTARTS=$((KAFKA_RESTARTS + 1)) ;;
            restart-pg) PG_RESTARTS=$((PG_RESTARTS + 1)) ;;
            kill-busiest-broker) BROKER_KILLS=$((BROKER_KILLS + 1)) ;;
            start-kafka) BROKER_STARTS=$((BROKER_STARTS + 1)) ;;
            switchover) PG_FAILOVERS=$((PG_FAILOVERS + 1)) ;;
        esac
        say "t+$(elapsed)s ${JOB_WHAT[$lane]} done"
    else
        say "t+$(elapsed)s ${JOB_WHAT[$lane]} FAILED (exit $rc, see $LOGS/stack.log)"
    fi
    JOB[$lane]=""
    return 0
}

# Report the jobs that ended, then start the first pending job of each
# idle lane.
start_pending_stack_jobs() {
    local job lane
    local -a rest=()
    local -A seen=()
    lane_idle kafka || true
    lane_idle pg || true
    for job in "${PENDING_STACK[@]}"; do
        lane=$(lane_of "$job")
        if [ -z "${seen[$lane]:-}" ] && lane_idle "$lane"; then
            say "t+$(elapsed)s $job"
            "$STACK" "$job" >>"$LOGS/stack.log" 2>&1 </dev/null &
            JOB[$lane]=$!
            JOB_WHAT[$lane]=$job
        else
            rest+=("$job")
        fi
        seen[$lane]=1
    done
    PENDING_STACK=("${rest[@]}")
}

start_stack_job() {
    PENDING_STACK+=("$1")
    start_pending_stack_jobs
}

stack_jobs_finished() {
    lane_idle kafka && lane_idle pg && [ "${#PENDING_STACK[@]}" -eq 0 ]
}

# ---- SQL ----------------------------------------------------------------------

# shellcheck source=lib/sql.sh
source "$REPO/scripts/lib/sql.sh"
# shellcheck source=lib/sim_gateway.sh
source "$REPO/scripts/lib/sim_gateway.sh"
# shellcheck source=lib/ports.sh
source "$REPO/scripts/lib/ports.sh"
# shellcheck source=lib/release_build.sh
source "$REPO/scripts/lib/release_build.sh"
# shellcheck source=chaos/sessions.sh
source "$REPO/scripts/chaos/sessions.sh"
# shellcheck source=chaos/meta.sh
source "$REPO/scripts/chaos/meta.sh"

# sql, retried for up to three minutes: for the driver's own writes while
# the database may be restarting (a restart waits for the connections still
# on its port to close, which took over a minute on a loaded machine).
sql_retry() {
    local deadline=$((SECONDS + 180))
    until sql "$@" 2>>"$LOGS/chaos.log"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 1
    done
}

sim_workspaces() {
    sql "SELECT id FROM workspaces WHERE metadata->>'sim_tag' = :'tag' ORDER BY id" tag="$1"
}

# ---- 1. stack, receiver, services ------------------------------------------------

for bin in blazz-gateway-sim blazz-webhook-receiver blazzctl; do
    [ -x "$BIN_DIR/$bin" ] || { echo "chaos: $BIN_DIR/$bin missing: run make build" >&2; exit 1; }
done
for name in "${SERVICES[@]}"; do
    [ -x "$BIN_DIR/blazz-$name" ] || { echo "chaos: $BIN_DIR/blazz-$name missing" >&2; exit 1; }
done
[ -x "$EVENTS_DUMP" ] || { echo "chaos: $EVENTS_DUMP missing: run make build" >&2; exit 1; }

"$STACK" down >/dev/null 2>&1 || true
rm -rf "$STATE"
mkdir -p "$LOGS"
trap cleanup_on_exit EXIT
trap 'exit 130' INT TERM

# Upgrade mode: N-1 creates and migrates the stack, and its services start.
STACK_UP_ENV=()
if [ -n "$UPGRADE_FROM" ]; then
    started=$SECONDS
    release_build "$REPO" "$UPGRADE_FROM" "$(dirname "$OLD_BIN")" "$LOGS/release-build.log" ||
        die "building N-1 ($UPGRADE_FROM) failed (see $LOGS/release-build.log)"
    # N-1's version names its webhooks (User-Agent). N's only shows here:
    # an incremental build can leave an older version in some objects.
    OLD_VERSION=$("$OLD_BIN/blazz-webhook-dispatcher" --version | awk '{ print $2 }')
    NEW_VERSION=$("$BIN_DIR/blazz-webhook-dispatcher" --version | awk '{ print $2 }')
    say "upgrade from N-1 $OLD_VERSION ($(dirname "$OLD_BIN"), ready in $((SECONDS - started)) s)" \
        "to N $NEW_VERSION ($BIN_DIR)"
    for name in "${INSTANCES[@]}"; do SVC_BIN[$name]=$OLD_BIN; done
    STACK_UP_ENV=(BLAZZ_BIN_DIR="$OLD_BIN" BLAZZ_MIGRATIONS_DIR="$OLD_MIGRATIONS")
fi
say "seed $SEED, ${DURATION}s at $RATE events/s, $KILLS SIGKILLs per service instance" \
    "(${#INSTANCES[@]} instances), campaign of $AUDIENCE contacts at $CAMPAIGN_RATE/s;" \
    "$([ "$CLUSTER" = 1 ] && echo "3 brokers and a standby; ")logs in $LOGS"
env "${STACK_UP_ENV[@]}" "$STACK" up >"$LOGS/stack.log" 2>&1 || { cat "$LOGS/stack.log"; exit 1; }
# shellcheck source=/dev/null
source "$STATE/stack.env"
SCHEMA_START=$(sql "SELECT count(*) FROM schema_migrations")
# The key that seals webhook endpoint secrets and gateway keys (ingest, the
# dispatcher, blazzctl), and the simulators' gateway with its signing key:
# files of the state folder, never arguments.
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STATE/secrets.key")
export BLAZZ_SECRETS_KEYS_FILE="$STATE/secrets.key"
sim_gateway_ensure "$STATE/gateway-sim.key" "$LOGS/blazzctl.log" ||
    die "registering the simulators' gateway failed (see $LOGS/blazzctl.log)"
meta_register_app || die "registering the Meta app's gateway failed (see $LOGS/blazzctl.log)"

"$BIN_DIR/blazz-webhook-receiver" --listen 127.0.0.1:0 --record "$STATE/receiver.jsonl" \
    --port-file "$STATE/receiver.port" >"$LOGS/receiver.log" 2>&1 </dev/null &
RECEIVER_PID=$!
for _ in $(seq 1 50); do [ -s "$STATE/receiver.port" ] && break; sleep 0.1; done
[ -s "$STATE/receiver.port" ] || die "the webhook receiver did not start (see $LOGS/receiver.log)"
RECEIVER="http://127.0.0.1:$(cat "$STATE/receiver.port")"

port=$(free_port "${BLAZZ_CHAOS_ADMIN_PORT:-9441}")
for name in "${INSTANCES[@]}"; do
    PORT[$name]=$port
    port=$(free_port $((port + 1)))
done
port=$(free_port "${BLAZZ_CHAOS_INGEST_PORT:-8441}")
for name in "${INGESTS[@]}"; do
    INGEST_LISTEN[$name]="127.0.0.1:$port"
    port=$(free_port $((port + 1)))
done
meta_start_graph || die "Meta, the Graph test server, did not start (see $LOGS/graph-server.log)"
for name in "${INSTANCES[@]}"; do start_service "$name"; done
for name in "${INSTANCES[@]}"; do
    wait_ready "$name" 90 || die "$name did not become ready (see $LOGS/$name.log)"
done
say "services ready; ingest on ${INGEST_LISTEN[*]}, receiver on $RECEIVER"
start_instances

# ---- 2. setup ---------------------------------------------------------------------

# One inbound simulator per ingest instance, each with a world of its own
# (tags TAG, TAG-2, ...) and its share of the rate; the campaign's gateway
# posts its receipts to the first instance.
sim_common() {
    echo --mode http --ingest-url "http://${INGEST_LISTEN[$1]}/v1/events" --key-file "$STATE/gateway-sim.key" \
         --seed "$SEED" --http-retries 100 --http-concurrency "$SIM_CONCURRENCY" --log-level warn
}
INBOUND_TAGS=()
for i in "${!INGESTS[@]}"; do
    if [ "$i" = 0 ]; then INBOUND_TAGS+=("$TAG"); else INBOUND_TAGS+=("$TAG-$((i + 1))"); fi
done
# Create the worlds first (no traffic), so endpoints exist before events flow.
: >"$LOGS/sim-world.log"
WS=()
for i in "${!INGESTS[@]}"; do
    # shellcheck disable=SC2046 # options, split on purpose
    "$BIN_DIR/blazz-gateway-sim" $(sim_common "${INGESTS[$i]}") --rate 0 --duration 1 \
        --tag "${INBOUND_TAGS[$i]}" --workspaces 3 --accounts-per-workspace 2 \
        >>"$LOGS/sim-world.log" 2>&1 || die "creating an inbound world failed (see $LOGS/sim-world.log)"
    mapfile -t world < <(sim_workspaces "${INBOUND_TAGS[$i]}")
    [ "${#world[@]}" -eq 3 ] || die "unexpected inbound world ${INBOUND_TAGS[$i]}: ${world[*]}"
    WS+=("${world[@]}")
done
# shellcheck disable=SC2046
"$BIN_DIR/blazz-gateway-sim" $(sim_common "${INGESTS[0]}") --rate 0 --duration 1 --tag "$CTAG" \
    --workspaces 1 --accounts-per-workspace 2 >>"$LOGS/sim-world.log" 2>&1 ||
    die "creating the campaign world failed (see $LOGS/sim-world.log)"
mapfile -t CWS < <(sim_workspaces "$CTAG")
[ "${#CWS[@]}" -eq 1 ] || die "unexpected campaign world: ${CWS[*]}"
CAMPAIGN_WS=${CWS[0]}
CL_WS=$(sql "INSERT INTO workspaces (name, metadata) VALUES ('chaos cleanup', jsonb_build_object('chaos_tag', :'tag')) RETURNING id" tag="$TAG")

add_endpoint() {
    local ws=$1 path=$2 events=$3 out
    out=$("$BIN_DIR/blazzctl" webhooks add --workspace "$ws" --url "$RECEIVER$path" \
        --events "$events" --rate 1000 --concurrency 8 --timeout-ms 4000 --name "chaos $path") ||
        die "blazzctl webhooks add $path failed: $out"
    note "$out"
}
# The receiver counts failures per webhook-id, so one workspace's endpoints
# take disjoint event types. Flaky paths serve the low-volume types: on an
# endpoint with a burst of new events (message traffic) they make the
# dispatcher's breaker starve retries (see BLAZZ_CHAOS_FLAKY_MESSAGES=1).
MESSAGES=/ok
[ "${BLAZZ_CHAOS_FLAKY_MESSAGES:-0}" = 1 ] && MESSAGES=/flaky/1
for ((w = 0; w < ${#WS[@]}; w += 3)); do
    add_endpoint "${WS[w]}" "$MESSAGES/messages" message.created,message.status
    add_endpoint "${WS[w]}" /flaky/1/sessions session.status,sync.progress
    add_endpoint "${WS[w + 1]}" "$MESSAGES/all" '*'
    add_endpoint "${WS[w + 2]}" /ok/messages message.created
    add_endpoint "${WS[w + 2]}" /flaky/2/sync sync.progress
    add_endpoint "${WS[w + 2]}" /status/503/dead session.status
done
add_endpoint "$CAMPAIGN_WS" /flaky/1/campaign campaign.progress,campaign.completed
add_endpoint "$CL_WS" /flaky/1/cleanup '*'
meta_setup || die "setting up Meta or its account failed (see $LOGS/graph-server.log, $LOGS/blazzctl.log)"

CAMPAIGN_ACCOUNT=$(sql "SELECT id FROM whatsapp_accounts WHERE workspace_id = :ws ORDER BY id LIMIT 1" ws="$CAMPAIGN_WS")
# an established number (warmup_since): past a new webjs number's warm-up (ARCHITECTURE.md §11.3)
sql "UPDATE whatsapp_accounts SET metadata = metadata || '{\"warmup_since\": \"2020-01-01\"}'
     WHERE id = :acct" acct="$CAMPAIGN_ACCOUNT" >/dev/null
CAMPAIGN_ID=$(sql "
WITH g AS (INSERT INTO contact_groups (workspace_id, name) VALUES (:ws, 'chaos audience') RETURNING id),
c AS (INSERT INTO contacts (workspace_id, first_name, last_name, phone, source_type)
      SELECT :ws, 'Chaos', 'Contact ' || n, '+62857' || lpad(n::text, 7, '0'), 'manual'
      FROM generate_series(1, :n) n RETURNING id),
m AS (INSERT INTO contact_group_members (workspace_id, contact_group_id, contact_id)
      SELECT :ws, g.id, c.id FROM g, c)
INSERT INTO campaigns (workspace_id, whatsapp_account_id, name, campaign_type, contact_group_id,
                       message_content, status)
SELECT :ws, :acct, 'chaos campaign', 'instant', g.id,
       'Hi {{first_name}}, this is the chaos test.', 'draft' FROM g RETURNING id" \
    ws="$CAMPAIGN_WS" n="$AUDIENCE" acct="$CAMPAIGN_ACCOUNT")

sql "INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, status, last_connected_at, metadata)
     SELECT :ws, 'chaos-cl-keeper' || n, '+6281800000' || n, 'connected', now(), '{\"chaos_role\": \"keeper\"}'
     FROM generate_series(1, 3) n" ws="$CL_WS" >/dev/null

# One round of sessions for cleanup: 3 stale QR, 3 disconnected for two
# days and 2 duplicates (an older connected session sharing its phone with
# a newer one, the keeper).
seed_cleanup_round() {
    local r=$1
    sql_retry "
INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, status, last_activity_at,
                               disconnected_at, disconnect_reason, last_connected_at, metadata)
SELECT :ws, 'chaos-cl-r' || :r || '-qr' || n, NULL, 'qr_scanning', now() - interval '2 hours',
       NULL, NULL, NULL, '{\"chaos_role\": \"doomed\"}'::jsonb FROM generate_series(1, 3) n
UNION ALL
SELECT :ws, 'chaos-cl-r' || :r || '-dc' || n, '+628190' || :r || '00' || n, 'disconnected',
       now() - interval '3 days', now() - interval '2 days', 'timeout', now() - interval '3 days',
       '{\"chaos_role\": \"doomed\"}'::jsonb FROM generate_series(1, 3) n
UNION ALL
SELECT :ws, 'chaos-cl-r' || :r || '-dup-old' || n, '+628191' || :r || '00' || n, 'connected',
       now(), NULL, NULL, now() - interval '1 day', '{\"chaos_role\": \"doomed\"}'::jsonb
FROM generate_series(1, 2) n
UNION ALL
SELECT :ws, 'chaos-cl-r' || :r || '-dup-new' || n, '+628191' || :r || '00' || n, 'connected',
       now(), NULL, NULL, now(), '{\"chaos_role\": \"keeper\"}'::jsonb FROM generate_series(1, 2) n" \
        ws="$CL_WS" r="$r" >/dev/null || die "seeding cleanup round $r failed"
}

# ---- 3. load and chaos ----------------------------------------------------------------

# The plan: "ms action target" lines, sorted. Kills fall in [10%, 85%] of
# the run, the broker restart in [25%, 40%], the database one in [55%, 70%]
# (cluster mode: broker kills and starts, the failover, below).
RANDOM=$SEED
rand_between() { echo $(( $1 + ( (RANDOM << 15 | RANDOM) % ($2 - $1 + 1) ) )); }
T=$(( DURATION * 1000 ))
PLAN=()
for name in "${INSTANCES[@]}"; do
    for _ in $(seq 1 "$KILLS"); do PLAN+=("$(rand_between $((T / 10)) $((T * 85 / 100))) kill $name"); done
done
if [ "$CLUSTER" = 1 ]; then
    # The busiest broker dies in [15%, 25%] and is started again 15% of the
    # run later; the then busiest one dies in [45%, 50%] (or, on a short
    # run, once the first has caught up: stack jobs run in order) and is
    # back 10% later; the standby is promoted and the old primary stopped
    # in [60%, 70%].
    k1=$(rand_between $((T * 15 / 100)) $((T * 25 / 100)))
    k2=$(rand_between $((T * 45 / 100)) $((T * 50 / 100)))
    PLAN+=("$k1 stack kill-busiest-broker")
    PLAN+=("$(( k1 + T * 15 / 100 )) stack start-kafka")
    PLAN+=("$k2 stack kill-busiest-broker")
    PLAN+=("$(( k2 + T / 10 )) stack start-kafka")
    PLAN+=("$(rand_between $((T * 60 / 100)) $((T * 70 / 100))) stack switchover")
elif [ -n "$UPGRADE_FROM" ]; then
    # Migrate forward at 15%; replace the services at even steps from 25%
    # to 55% (the order of UPGRADE_ORDER), roll them back from 62% to 85%
    # in the reverse order.
    PLAN+=("$(( T * 15 / 100 )) migrate -")
    last=$(( ${#UPGRADE_ORDER[@]} - 1 ))
    for i in "${!UPGRADE_ORDER[@]}"; do
        PLAN+=("$(( T * (25 + 30 * i / last) / 100 )) upgrade ${UPGRADE_ORDER[$i]}")
        PLAN+=("$(( T * (62 + 23 * i / last) / 100 )) rollback ${UPGRADE_ORDER[$((last - i))]}")
    done
else
    PLAN+=("$(rand_between $((T / 4)) $((T * 40 / 100))) stack restart-kafka")
    PLAN+=("$(rand_between $((T * 55 / 100)) $((T * 70 / 100))) stack restart-pg")
fi
for r in $(seq 1 "$CLEANUP_ROUNDS"); do
    PLAN+=("$(( T * (r * 20 - 5) / 100 )) seed-cleanup $r")
done
PLAN+=("$(( T * 62 / 100 )) cleanup-request $CL_WS")
plan_instance_kills
mapfile -t PLAN < <(printf '%s\n' "${PLAN[@]}" | sort -n)
printf '%s\n' "${PLAN[@]}" >"$STATE/plan.txt"

# shellcheck disable=SC2046 # options, split on purpose
(as_principal gateway-sim && exec "$BIN_DIR/blazz-gateway-sim" $(sim_common "${INGESTS[0]}") --rate 0 --tag "$CTAG" --workspaces 1 \
    --accounts-per-workspace 2 --duration $(( DURATION + QUIESCE_S + 120 )) --answer-outbound \
    --fail-ratio 0.03 --read-ratio 0.6 --ack-delay-ms 300 --outbound-group blazz-gateway-sim.chaos \
    --sends-log "$STATE/sends.log" --accepted-log "$STATE/accepted-campaign.log" \
    --status-file "$STATE/sim-answer.status") >"$STATE/sim-answer.report" 2>"$LOGS/sim-answer.log" </dev/null &
ANSWER_PID=$!
for i in "${!INGESTS[@]}"; do
    # shellcheck disable=SC2046
    (as_principal gateway-sim && exec "$BIN_DIR/blazz-gateway-sim" $(sim_common "${INGESTS[$i]}") \
        --rate $(( RATE / ${#INGESTS[@]} )) --duration "$DURATION" --tag "${INBOUND_TAGS[$i]}" \
        --workspaces 3 --accounts-per-workspace 2 --history-chats 40 --history-messages 5 \
        --lid-people 0.2 --accepted-log "$STATE/accepted-inbound-$((i + 1)).log" \
        --status-file "$STATE/sim-inbound-$((i + 1)).status") \
        >"$STATE/sim-inbound-$((i + 1)).report" 2>"$LOGS/sim-inbound-$((i + 1)).log" </dev/null &
    SIM_PIDS+=($!)
done
meta_start_traffic
create_sessions || die "creating the sessions through the CRM API failed (see $LOGS/chaos.log)"
START_MS=$(now_ms)
"$BIN_DIR/blazzctl" campaign start "$CAMPAIGN_ID" --actor chaos >>"$LOGS/chaos.log" 2>&1 ||
    die "blazzctl campaign start $CAMPAIGN_ID failed (see $LOGS/chaos.log)"
say "load running: inbound worlds ${INBOUND_TAGS[*]} (workspaces ${WS[*]}), campaign $CAMPAIGN_ID in workspace $CAMPAIGN_WS"

# 0 while any inbound simulator still runs.
sims_done() {
    local pid
    for pid in "${SIM_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && return 1; done
    return 0
}

run_step() {
    local action=$1 target=$2 out
    case "$action" in
        kill) kill_service "$target" ;;
        migrate) migrate_forward ;;
        upgrade) upgrade_service "$target" ;;
        rollback) rollback_service "$target" ;;
        kill-instance) kill_instance "$target" ;;
        start-instance) start_instance "$target" ;;
        stack) start_stack_job "$target" ;;
        seed-cleanup)
            seed_cleanup_round "$target"
            note "cleanup round $target seeded" ;;
        cleanup-request)
            if out=$("$BIN_DIR/blazzctl" cleanup run --workspace "$target" --actor chaos \
                    --reason "chaos manual sweep" 2>&1); then
                say "t+$(elapsed)s manual cleanup requested"
            else
                say "t+$(elapsed)s manual cleanup request refused: $out"
            fi
            note "$out" ;;
    esac
}

step=0
until sims_done; do
    at=$(( $(now_ms) - START_MS ))
    while [ $step -lt ${#PLAN[@]} ]; do
        read -r due action target <<<"${PLAN[$step]}"
        [ "$due" -le "$at" ] || break
        run_step "$action" "$target"
        step=$((step + 1))
    done
    start_pending_stack_jobs
    supervise
    sleep 0.5
done
SIM_RC=0
for pid in "${SIM_PIDS[@]}"; do
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || SIM_RC=$rc
done
SIM_PIDS=()
while [ $step -lt ${#PLAN[@]} ]; do
    read -r _ action target <<<"${PLAN[$step]}"
    run_step "$action" "$target"
    step=$((step + 1))
done
until stack_jobs_finished; do
    start_pending_stack_jobs
    supervise
    sleep 0.5
done
supervise
say "load finished (simulator exit $SIM_RC) after $(elapsed)s; waiting for every service to be ready"
for name in "${INSTANCES[@]}"; do
    for attempt in 1 2 3; do
        wait_ready "$name" 60 && break
        [ "$attempt" -lt 3 ] || die "$name does not become ready (see $LOGS/$name.log)"
        say "$name is not ready; restarting it"
        supervise
        kill_service "$name"
    done
done

# ---- 4. quiescence --------------------------------------------------------------------

sessions_wind_down

# Records not yet consumed: for the exactly-once groups (offsets in
# kafka_offsets) counted by reading from their offsets, since a watermark
# difference would count the transaction marker that ends every chat.sync
# partition; for ingest (offsets committed to Kafka, on a topic written
# without transactions) blazzctl lag's figure.
LAST_LAG="?"
consumer_lag() {
    local backlog json ingest
    backlog=$( (as_principal admin && exec "$EVENTS_DUMP" --backlog) 2>>"$LOGS/chaos_events.log" |
              awk -F'\t' '$1 == "B" { s += $4 } END { print s + 0 }') || { echo "?"; return; }
    json=$("$BIN_DIR/blazzctl" lag --group blazz-ingest --json 2>/dev/null | tr -d '\n') ||
        { echo "?"; return; }
    ingest=$(sql "SELECT coalesce(sum((g->>'total_lag')::bigint), 0)
                  FROM jsonb_array_elements((:'j')::jsonb->'groups') g" j="$json" 2>/dev/null) ||
        { echo "?"; return; }
    echo $(( backlog + ingest ))
}

# (outbox: the relay's rows, and Meta sends not yet sent or not yet known sent)
open_work() {
    sql "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM meta_sends WHERE state IN ('queued', 'in_flight'))
                + (SELECT count(*) FROM chats WHERE provider_type = 'meta' AND type = 'outbound'
                   AND message_status = 'pending') || ' ' ||
                (SELECT count(*) FROM webhook_retry_queue WHERE status IN ('pending', 'retrying')) || ' ' ||
                (SELECT count(*) FROM campaign_logs WHERE campaign_id = :cid AND status IN ('pending', 'queued')) || ' ' ||
                (SELECT status FROM campaigns WHERE id = :cid)" cid="$CAMPAIGN_ID" 2>/dev/null || echo "? ? ? ?"
}

fingerprint() {
    sql "SELECT (SELECT count(*) FROM chats) || '/' || (SELECT count(*) FROM chats WHERE is_read) || '/' ||
                (SELECT count(*) FROM webhook_retry_queue) || '/' ||
                (SELECT count(*) FROM webhook_retry_queue WHERE status IN ('success', 'failed')) || '/' ||
                (SELECT messages_sent + messages_delivered + messages_read + messages_failed
                 FROM campaigns WHERE id = :cid) || '/' || (SELECT count(*) FROM session_cleanup_logs)" \
        cid="$CAMPAIGN_ID" 2>/dev/null || echo "?"
}

QUIET=0
deadline=$((SECONDS + QUIESCE_S))
previous=""
while [ $SECONDS -lt $deadline ]; do
    supervise
    LAST_LAG=$(consumer_lag)
    read -r outbox wh_open logs_open campaign_status <<<"$(open_work)"
    print=$(fingerprint)
    note "quiescence: lag $LAST_LAG, outbox $outbox, webhooks open $wh_open, campaign $campaign_status ($logs_open open), state $print"
    if [ "$LAST_LAG" = 0 ] && [ "$outbox" = 0 ] && [ "$wh_open" = 0 ] && [ "$logs_open" = 0 ] &&
       [ "$campaign_status" = completed ] && [ "$print" = "$previous" ]; then
        QUIET=1
        break
    fi
    previous=$print
    sleep 3
done
if [ "$QUIET" = 1 ]; then
    say "quiet after $(elapsed)s (lag 0, outbox empty, no open delivery, campaign completed)"
else
    say "NOT quiet after ${QUIESCE_S}s: lag $LAST_LAG, outbox $outbox, webhooks open $wh_open," \
        "campaign $campaign_status with $logs_open logs open"
fi

# ---- 5. stop and check ------------------------------------------------------------------

stop_pid "$ANSWER_PID"
ANSWER_PID=""
stop_instances
for name in "${INSTANCES[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
for name in "${INSTANCES[@]}"; do wait_stopped "$name"; done
stop_pid "$RECEIVER_PID"
RECEIVER_PID=""
meta_stop

(as_principal admin && exec "$EVENTS_DUMP") >"$STATE/events.tsv" 2>"$LOGS/chaos_events.log" ||
    die "reading the topics failed (see $LOGS/chaos_events.log)"
(as_principal admin && exec "$EVENTS_DUMP" --backlog) >"$STATE/backlog.tsv" 2>>"$LOGS/chaos_events.log" ||
    die "reading the groups' backlogs failed (see $LOGS/chaos_events.log)"

load_checks_data() {
    sql "CREATE SCHEMA chaos;
         CREATE TABLE chaos.accepted (session_id text, wam_id text);
         CREATE TABLE chaos.sends (wall_ms bigint, session_id text, key text);
         CREATE TABLE chaos.events (topic text, event_id text, workspace_id bigint, type text,
                                    kind text, account_id bigint);
         CREATE TABLE chaos.dead_letters (event_id text, endpoint_id text);
         CREATE TABLE chaos.commands (event_id text, session_id text, action text);
         CREATE TABLE chaos.outbound (key text);
         CREATE TABLE chaos.received_raw (line text);" >/dev/null
    local f
    for f in "$STATE"/accepted-inbound-*.log "$STATE/accepted-campaign.log"; do
        [ -f "$f" ] && psql "$BLAZZ_PG_DSN" -X -q -v ON_ERROR_STOP=1 \
            -c "\\copy chaos.accepted FROM '$f' WITH (DELIMITER ' ')"
    done
    meta_load_evidence || return 1
    [ -f "$STATE/sends.log" ] && psql "$BLAZZ_PG_DSN" -X -q -v ON_ERROR_STOP=1 \
        -c "\\copy chaos.sends FROM '$STATE/sends.log' WITH (DELIMITER ' ')"
    awk -F'\t' -v OFS='\t' '$1 == "E" { print $2, $3, $4, $5, $6, $7 }' "$STATE/events.tsv" >"$STATE/events-e.tsv"
    awk -F'\t' -v OFS='\t' '$1 == "D" { print $2, $3 }' "$STATE/events.tsv" >"$STATE/events-d.tsv"
    awk -F'\t' -v OFS='\t' '$1 == "C" { print $2, $3, $4 }' "$STATE/events.tsv" >"$STATE/events-c.tsv"
    awk -F'\t' '$1 == "O" { print $2 }' "$STATE/events.tsv" >"$STATE/events-o.tsv"
    psql "$BLAZZ_PG_DSN" -X -q -v ON_ERROR_STOP=1 \
        -c "\\copy chaos.events FROM '$STATE/events-e.tsv'" \
        -c "\\copy chaos.dead_letters FROM '$STATE/events-d.tsv'" \
        -c "\\copy chaos.commands FROM '$STATE/events-c.tsv'" \
        -c "\\copy chaos.outbound FROM '$STATE/events-o.tsv'"
    # JSON lines, one text column: CSV with quote and delimiter characters
    # that JSON never contains raw.
    [ -f "$STATE/receiver.jsonl" ] && psql "$BLAZZ_PG_DSN" -X -q -v ON_ERROR_STOP=1 \
        -c "\\copy chaos.received_raw FROM '$STATE/receiver.jsonl' WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
    sql "
CREATE TABLE chaos.received AS
    SELECT r->'headers'->>'webhook-id' AS webhook_id, r->>'path' AS path, (r->>'status')::int AS status,
           r->'headers'->>'user-agent' AS agent
    FROM (SELECT line::jsonb AS r FROM chaos.received_raw) x;
CREATE INDEX ON chaos.received (webhook_id);
CREATE INDEX ON chaos.accepted (session_id, wam_id);
CREATE TABLE chaos.expected_pairs AS
    SELECT DISTINCT e.event_id::uuid AS event_id, ep.id AS endpoint_id
    FROM chaos.events e JOIN webhook_endpoints ep ON ep.workspace_id = e.workspace_id
     AND ('*' = ANY (ep.event_types) OR e.type = ANY (ep.event_types))
    WHERE e.type <> '-' AND e.event_id ~ '^[0-9a-f-]{36}$';
CREATE UNIQUE INDEX ON chaos.expected_pairs (event_id, endpoint_id);
ANALYZE chaos.accepted; ANALYZE chaos.events; ANALYZE chaos.received;" >/dev/null
}
load_checks_data || die "loading the evidence into PostgreSQL failed"

# ---- the checks ---------------------------------------------------------------------------

CHECK_NAMES=() CHECK_EXPECTED=() CHECK_ACTUAL=() CHECK_VERDICT=()
FAILED=0
# check NAME EXPECTED ACTUAL [info]: passes when ACTUAL's first word equals
# EXPECTED; "info" rows only report.
check() {
    local verdict
    if [ "${4:-}" = info ]; then
        verdict="-"
    elif [ "${3%% *}" = "$2" ]; then
        verdict=PASS
    else
        verdict=FAIL
        FAILED=$((FAILED + 1))
    fi
    CHECK_NAMES+=("$1") CHECK_EXPECTED+=("$2") CHECK_ACTUAL+=("$3") CHECK_VERDICT+=("$verdict")
}

# A number from a simulator's status file (0 when absent).
status_number() {
    local v
    v=$({ sed -n "s/^$2=//p" "$1" 2>/dev/null || true; } | head -n 1)
    echo "${v:-0}"
}

RUN_WS="$(IFS=,; echo "${WS[*]}"),$CAMPAIGN_WS${META_WS:+,$META_WS}"

# Inbound: every accepted message stored exactly once, nothing else stored.
read -r acc_total acc_once acc_missing acc_dup <<<"$(sql "
SELECT count(*), count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n > 1)
FROM (SELECT a.session_id, a.wam_id, count(c.id) AS n
      FROM (SELECT DISTINCT session_id, wam_id FROM chaos.accepted) a
      LEFT JOIN whatsapp_accounts w ON w.session_id = a.session_id
      LEFT JOIN chats c ON c.whatsapp_account_id = w.id AND c.wam_id = a.wam_id
      GROUP BY 1, 2) x" | tr '|' ' ')"
extra=$(sql "SELECT count(*) FROM chats c LEFT JOIN whatsapp_accounts w ON w.id = c.whatsapp_account_id
             WHERE c.workspace_id IN ($RUN_WS) AND NOT EXISTS
             (SELECT 1 FROM chaos.accepted a WHERE a.session_id = w.session_id AND a.wam_id = c.wam_id)")
inbound_sent=0 rejected=$(status_number "$STATE/sim-answer.status" rejected)
for f in "$STATE"/sim-inbound-*.status; do
    inbound_sent=$(( inbound_sent + $(status_number "$f" sent) ))
    rejected=$(( rejected + $(status_number "$f" rejected) ))
done
sent=$(( inbound_sent + $(status_number "$STATE/sim-answer.status" sent) ))
check "events sent by the simulators" "-" "$sent" info
check "inbound events/s over the run (target $RATE)" "-" "$(( inbound_sent / DURATION ))" info
check "inbound simulator exit status" 0 "$SIM_RC"
check "events refused by ingest (after retries)" 0 "$rejected"
check "accepted messages stored exactly once" "$acc_total" "$acc_once (missing $acc_missing, doubled $acc_dup)"
if [ "$rejected" = 0 ]; then
    check "stored messages nobody accepted" 0 "$extra"
else
    check "stored messages nobody accepted" "-" "$extra (refused events may be stored)" info
fi

# Counters: unread_messages of every contact equals its unread inbound chats
# (a message deleted for everyone by its sender still counts: only the CRM's
# soft deletes do not).
read -r contacts wrong <<<"$(sql "
SELECT count(*), count(*) FILTER (WHERE ct.unread_messages <> coalesce(u.n, 0))
FROM contacts ct LEFT JOIN (SELECT contact_id, count(*) AS n FROM chats
                            WHERE type = 'inbound' AND NOT is_read
                              AND (deleted_at IS NULL OR metadata ? 'revoked') GROUP BY 1) u
  ON u.contact_id = ct.id
WHERE ct.workspace_id IN ($RUN_WS) AND ct.deleted_at IS NULL" | tr '|' ' ')"
check "contacts with unread_messages != unread chats" 0 "$wrong (of $contacts contacts)"

# Merges (the simulator's LID people, decision 0010): each merged contact
# names a live survivor that holds its LID, and kept no message.
read -r merged bad <<<"$(sql "
SELECT count(*), count(*) FILTER (WHERE s.id IS NULL OR s.deleted_at IS NOT NULL
                                     OR s.lid IS DISTINCT FROM coalesce(m.lid, m.phone)
                                     OR EXISTS (SELECT 1 FROM chats WHERE contact_id = m.id))
FROM contacts m LEFT JOIN contacts s ON s.uuid::text = m.metadata->>'merged_into'
WHERE m.workspace_id IN ($RUN_WS) AND m.metadata ? 'merged_into'" | tr '|' ' ')"
check "LID contacts merged wrongly (survivor, LID, messages)" 0 "$bad (of $merged merges)"
check_meta

# Webhooks: every (event, endpoint) pair the filters select is settled.
read -r pairs settled ok dead <<<"$(sql "
SELECT count(*), count(q.id), count(*) FILTER (WHERE q.status = 'success'), count(*) FILTER (WHERE q.status = 'failed')
FROM chaos.expected_pairs p LEFT JOIN webhook_retry_queue q
  ON q.event_id = p.event_id AND q.endpoint_id = p.endpoint_id AND q.status IN ('success', 'failed')" | tr '|' ' ')"
check "webhook pairs delivered or dead-lettered" "$pairs" "$settled ($ok delivered, $dead failed)"
check "webhook deliveries pending or retrying" 0 "$(sql "SELECT count(*) FROM webhook_retry_queue WHERE status IN ('pending', 'retrying')")"
check "webhook rows without a published event" 0 "$(sql "
SELECT count(*) FROM webhook_retry_queue q WHERE NOT EXISTS
  (SELECT 1 FROM chaos.expected_pairs p WHERE p.event_id = q.event_id AND p.endpoint_id = q.endpoint_id)")"
read -r failed_rows failed_dlq <<<"$(sql "
SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM chaos.dead_letters d
                                                WHERE d.event_id = q.event_id::text AND d.endpoint_id = q.endpoint_id::text))
FROM webhook_retry_queue q WHERE q.status = 'failed'" | tr '|' ' ')"
check "failed deliveries on webhook.dlq" "$failed_rows" "$failed_dlq"
check "dead letters of deliveries not failed" 0 "$(sql "
SELECT count(DISTINCT (d.event_id, d.endpoint_id)) FROM chaos.dead_letters d WHERE NOT EXISTS
  (SELECT 1 FROM webhook_retry_queue q WHERE q.event_id::text = d.event_id AND q.endpoint_id::text = d.endpoint_id
   AND q.status = 'failed')")"
read -r success_rows seen <<<"$(sql "
SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM chaos.received r
     WHERE r.webhook_id = q.event_id::text AND r.status BETWEEN 200 AND 299
       AND r.path = regexp_replace(ep.url, '^https?://[^/]+', '')))
FROM webhook_retry_queue q JOIN webhook_endpoints ep ON ep.id = q.endpoint_id WHERE q.status = 'success'" | tr '|' ' ')"
check "delivered webhooks the receiver answered 2xx" "$success_rows" "$seen"
check "always-503 endpoint: pairs failed" \
    "$(sql "SELECT count(*) FROM chaos.expected_pairs p JOIN webhook_endpoints ep ON ep.id = p.endpoint_id WHERE ep.url LIKE '%/status/503/%'")" \
    "$(sql "SELECT count(*) FROM webhook_retry_queue q JOIN webhook_endpoints ep ON ep.id = q.endpoint_id WHERE ep.url LIKE '%/status/503/%' AND q.status = 'failed'")"

# Campaign: completed, one idempotency key per contact and attempt, exact counters.
check "campaign status" completed "$(sql "SELECT status FROM campaigns WHERE id = :c" c="$CAMPAIGN_ID")"
read -r logs final retried <<<"$(sql "
SELECT count(*), count(*) FILTER (WHERE status IN ('sent', 'delivered', 'read', 'failed')),
       count(*) FILTER (WHERE retry_count > 0) FROM campaign_logs WHERE campaign_id = :c" c="$CAMPAIGN_ID" | tr '|' ' ')"
check "campaign contacts with a final log" "$AUDIENCE" "$final (of $logs logs)"
read -r one_key_per_attempt single_key <<<"$(sql "
SELECT count(*) FILTER (WHERE k.keys = l.retry_count + 1), count(*) FILTER (WHERE k.keys = 1)
FROM campaign_logs l
LEFT JOIN LATERAL (SELECT count(DISTINCT s.key) AS keys FROM chaos.sends s
                   WHERE split_part(s.key, '/', 1) = l.uuid::text) k ON true
WHERE l.campaign_id = :c" c="$CAMPAIGN_ID" | tr '|' ' ')"
check "contacts with one idempotency key per attempt" "$AUDIENCE" \
    "$one_key_per_attempt ($single_key with one key, $retried retried)"
check "sent keys matching no campaign log" 0 "$(sql "
SELECT count(DISTINCT key) FROM chaos.sends s WHERE NOT EXISTS
  (SELECT 1 FROM campaign_logs l WHERE l.uuid::text = split_part(s.key, '/', 1) AND l.campaign_id = :c)" c="$CAMPAIGN_ID")"
counts_expected=$(sql "
SELECT count(*) || '/' || count(*) FILTER (WHERE status IN ('sent', 'delivered', 'read')) || '/' ||
       count(*) FILTER (WHERE status IN ('delivered', 'read')) || '/' || count(*) FILTER (WHERE status = 'read') || '/' ||
       count(*) FILTER (WHERE status = 'failed') FROM campaign_logs WHERE campaign_id = :c" c="$CAMPAIGN_ID")
counts_actual=$(sql "SELECT contacts_count || '/' || messages_sent || '/' || messages_delivered || '/' ||
                            messages_read || '/' || messages_failed FROM campaigns WHERE id = :c" c="$CAMPAIGN_ID")
check "campaign counters (contacts/sent/dlvd/read/fail)" "$counts_expected" "$counts_actual"

# Cleanup: doomed sessions removed exactly once, keepers untouched.
DOOMED="SELECT id, session_id FROM whatsapp_accounts WHERE workspace_id = $CL_WS AND metadata->>'chaos_role' = 'doomed'"
doomed=$(( CLEANUP_ROUNDS * 8 ))
check "doomed sessions removed" "$doomed" "$(sql "SELECT count(*) FROM whatsapp_accounts WHERE workspace_id = $CL_WS AND metadata->>'chaos_role' = 'doomed' AND deleted_at IS NOT NULL")"
check "removed sessions with exactly one cleanup log" "$doomed" "$(sql "
SELECT count(*) FROM ($DOOMED) d WHERE (SELECT count(*) FROM session_cleanup_logs l WHERE l.whatsapp_account_id = d.id) = 1")"
check "cleanup logs in the cleanup workspace" "$doomed" "$(sql "SELECT count(*) FROM session_cleanup_logs WHERE workspace_id = $CL_WS")"
check "keeper sessions still live" "$(( 3 + CLEANUP_ROUNDS * 2 ))" "$(sql "SELECT count(*) FROM whatsapp_accounts WHERE workspace_id = $CL_WS AND metadata->>'chaos_role' = 'keeper' AND deleted_at IS NULL")"
check "removed sessions with a REMOVED event" "$doomed" "$(sql "
SELECT count(DISTINCT e.account_id) FROM chaos.events e JOIN ($DOOMED) d ON d.id = e.account_id
WHERE e.topic = 'session.events' AND e.kind = 'SESSION_EVENT_KIND_REMOVED'")"
check "removed sessions with a DESTROY command" "$doomed" "$(sql "
SELECT count(DISTINCT c.session_id) FROM chaos.commands c JOIN ($DOOMED) d ON d.session_id = c.session_id
WHERE c.action = 'SESSION_ACTION_DESTROY'")"

# Nothing stuck.
check "pipeline quiet within ${QUIESCE_S}s" 1 "$QUIET"
check "records not consumed (all groups)" 0 "$LAST_LAG"
check "outbox rows" 0 "$(sql "SELECT count(*) FROM outbox")"
dlq_records=$(awk -F'\t' '$1 == "Q" { s += $3; if ($3) { d = d sep $2 "=" $3; sep = ", " } }
                          END { print s + 0 (d == "" ? "" : " (" d ")") }' "$STATE/events.tsv")
check "records on inbound/sync/campaign/cleanup DLQs" 0 "$dlq_records"
check "undecodable or id-less events on topics" 0 "$(( $(awk -F'\t' '$1 == "X" || ($1 == "E" && $3 == "-")' "$STATE/events.tsv" | wc -l) ))"
# Every DLQ by reason ("topic error_code service count" lines). A consumer
# that meets a record it cannot read dead-letters it as decode_error (the
# dispatcher an event it cannot render as unknown_kind); only the
# dispatcher's give-ups, webhook_exhausted, belong here, and the webhook
# checks above account for each of them.
dead_letters=$(for topic in wa.inbound.dlq chat.sync.dlq webhook.dlq campaign.dlq cleanup.dlq wa.outbound.dlq outbox.dlq; do
    json=$("$BIN_DIR/blazzctl" dlq stats "$topic" --json 2>>"$LOGS/blazzctl.log" | tr -d '\n') ||
        { echo "$topic unreadable - 1"; continue; }
    sql "SELECT :'t' || ' ' || (p->>'error_code') || ' ' || (p->>'service') || ' ' || (p->>'count')
         FROM jsonb_array_elements((:'j')::jsonb->'by_error_and_service') p" t="$topic" j="$json"
done)
printf '%s\n' "$dead_letters" >"$STATE/dead-letters.txt"
sum_dead_letters() {
    awk -v want="$1" 'NF == 4 && (want == "decode_error" ? $2 == want : $2 != "decode_error" && $2 != "webhook_exhausted") {
                          s += $4; d = d sep $1 ":" $2 "=" $4; sep = ", " }
                      END { print s + 0 (d == "" ? "" : " (" d ")") }' <<<"$dead_letters"
}
check "dead letters for decode_error, any DLQ" 0 "$(sum_dead_letters decode_error)"
check "dead letters for other reasons, any DLQ" 0 "$(sum_dead_letters other)"

# The chaos itself, and the services' behaviour under it.
kills=0 exits=0 crashes=0 clean=0
for name in "${INSTANCES[@]}"; do
    kills=$(( kills + ${KILLED[$name]:-0} ))
    exits=$(( exits + ${EXITED[$name]:-0} ))
    crashes=$(( crashes + ${CRASHED[$name]:-0} ))
    [ "${STOP_RC[$name]:-1}" = 0 ] && clean=$((clean + 1))
done
check "service instances SIGKILLed and restarted" "$(( KILLS * ${#INSTANCES[@]} ))" "$kills"
if [ "$CLUSTER" = 1 ]; then
    killed_nodes=$(sed -n 's/^stack: Kafka node \([0-9]*\) killed$/\1/p' "$LOGS/stack.log" | tr '\n' ' ')
    check "brokers SIGKILLed (the busiest leader)" 2 "$BROKER_KILLS (nodes ${killed_nodes% })"
    check "brokers started again" 2 "$BROKER_STARTS"
    check "standby promoted, old primary stopped" 1 "$PG_FAILOVERS"
    under=$( (as_principal admin && exec "$BIN_DIR/blazzctl" topics brokers --brokers "$BLAZZ_KAFKA_BROKERS") 2>/dev/null |
            sed -n 's/^(\([0-9]*\) live broker(s); [0-9]* partition(s), \([0-9]*\) under-replicated.*/\2 (\1 live brokers)/p')
    check "under-replicated partitions at the end" 0 "${under:-?}"
elif [ -n "$UPGRADE_FROM" ]; then
    check "schema at the start: N-1's migrations" "$(find "$OLD_MIGRATIONS" -maxdepth 1 -name '*.sql' | wc -l)" \
        "$SCHEMA_START"
    check "schema after migrating forward: N's" "$(find "$REPO/db/migrations" -maxdepth 1 -name '*.sql' | wc -l)" \
        "$(sql "SELECT count(*) FROM schema_migrations")"
    check "services replaced by N, ready under load" "${#INSTANCES[@]}" "$UPGRADED"
    old_clean=0
    for name in "${INSTANCES[@]}"; do [ "${UPGRADE_RC[$name]:-1}" = 0 ] && old_clean=$((old_clean + 1)); done
    check "N-1 services stopping cleanly on SIGTERM" "${#INSTANCES[@]}" "$old_clean"
    check "services rolled back to N-1, ready on N's schema" "${#INSTANCES[@]}" "$ROLLED_BACK"
    new_clean=0
    for name in "${INSTANCES[@]}"; do [ "${ROLLBACK_RC[$name]:-1}" = 0 ] && new_clean=$((new_clean + 1)); done
    check "N services stopping cleanly on SIGTERM" "${#INSTANCES[@]}" "$new_clean"
    read -r by_old by_new <<<"$(sql "
SELECT count(*) FILTER (WHERE agent = 'blazz-webhook-dispatcher/' || :'old'),
       count(*) FILTER (WHERE agent <> 'blazz-webhook-dispatcher/' || :'old')
FROM chaos.received WHERE agent LIKE 'blazz-webhook-dispatcher/%'" old="$OLD_VERSION" | tr '|' ' ')"
    check "webhooks sent by both dispatchers" both \
        "$([ "$by_old" -gt 0 ] && [ "$by_new" -gt 0 ] && echo both || echo "not") (N-1 $by_old, N $by_new)"
else
    check "Kafka broker restarts" 1 "$KAFKA_RESTARTS"
    check "PostgreSQL restarts" 1 "$PG_RESTARTS"
fi
check "service crashes (death by signal)" 0 "$crashes"
check_sessions
check "services that exited by themselves" "-" "$exits" info
check "service instances stopping cleanly on SIGTERM" "${#INSTANCES[@]}" "$clean"

# Per topic: what was produced, and what each consumer left behind.
# Exactly-once groups from kafka_offsets (backlog.tsv), the Kafka-committed
# ones (ingest, the simulated gateway) from blazzctl lag.
kafka_lag() {
    local json
    json=$("$BIN_DIR/blazzctl" lag --group "$1" --json 2>/dev/null | tr -d '\n') || { echo "?"; return; }
    sql "SELECT coalesce(sum((g->>'total_lag')::bigint), 0)
         FROM jsonb_array_elements((:'j')::jsonb->'groups') g" j="$json" 2>/dev/null || echo "?"
}
topic_number() { awk -F'\t' -v t="$1" -v c="$2" '$1 == "T" && $2 == t { print $c }' "$STATE/events.tsv"; }
consumers_of() {
    local topic=$1 out=""
    out=$(awk -F'\t' -v t="$topic" '$1 == "B" && $3 == t { printf "%s%s=%s", sep, $2, $4; sep = ", " }' \
          "$STATE/backlog.tsv")
    case "$topic" in
        wa.inbound.raw) out="${out:+$out, }blazz-ingest=$(kafka_lag blazz-ingest)" ;;
        wa.outbound.gw.sim) out="${out:+$out, }blazz-gateway-sim.chaos=$(kafka_lag blazz-gateway-sim.chaos)" ;;
    esac
    echo "${out:--}"
}
TOPIC_ROWS=()
unconsumed_total=0
for topic in $(awk -F'\t' '$1 == "T" { print $2 }' "$STATE/events.tsv"); do
    consumers=$(consumers_of "$topic")
    TOPIC_ROWS+=("$(printf '%-28s %10s %10s   %s' "$topic" "$(topic_number "$topic" 3)" \
                    "$(topic_number "$topic" 4)" "$consumers")")
    for n in $(grep -o '=[0-9?]*' <<<"$consumers" | tr -d '='); do
        [ "$n" = "?" ] && n=1
        unconsumed_total=$(( unconsumed_total + n ))
    done
done
# What ingest's Kafka path forwards: the events on wa.inbound.raw and
# those the gateway's instances publish to its own topic, each on chat.sync
# or the DLQ (where the HTTP edge's events go straight, ARCHITECTURE.md §8).
raw_events=$(( $(topic_number wa.inbound.raw 4) + $(topic_number wa.inbound.gw.sim 4) ))
sync_events=$(topic_number chat.sync 4)
inbound_dlq=$(topic_number wa.inbound.dlq 3)
not_forwarded=$(comm -23 <(awk -F'\t' '$1 == "R" { print $2 }' "$STATE/events.tsv" | sort -u) \
                         <(awk -F'\t' '$1 == "S" { print $2 }' "$STATE/events.tsv" | sort -u) | wc -l)
check "raw and gateway events not on chat.sync nor the DLQ" 0 \
    "$not_forwarded (of ${raw_events:-?}; chat.sync $sync_events, DLQ $inbound_dlq)"
check "chat.sync records repeating an event_id" "-" \
    "$(( $(topic_number chat.sync 3) - ${sync_events:-0} )) (chat-sync's unique keys absorb them)" info
# (the Meta replies' keys are meta-sender's, not the gateway's: check_meta_replies)
check "wa.outbound keys the gateway never received" 0 "$(sql "
SELECT count(DISTINCT o.key) FROM chaos.outbound o WHERE NOT EXISTS (SELECT 1 FROM chaos.sends s WHERE s.key = o.key)
  AND NOT EXISTS (SELECT 1 FROM chaos.meta_replies r WHERE r.message_id = o.key)")"
check "records left unconsumed, every topic and group" 0 "$unconsumed_total"

echo
echo "=========================== records per topic (seed $SEED, ${DURATION}s) ==========================="
printf '%-28s %10s %10s   %s\n' topic records "event ids" "consumer group=records not consumed"
printf '%s\n' "${TOPIC_ROWS[@]}"

echo
echo "================================ chaos summary (seed $SEED, ${DURATION}s) ================================"
printf '%-50s %-22s %-36s %s\n' check expected actual verdict
printf '%-50s %-22s %-36s %s\n' "$(printf '%.0s-' {1..50})" "$(printf '%.0s-' {1..22})" "$(printf '%.0s-' {1..36})" -------
for i in "${!CHECK_NAMES[@]}"; do
    printf '%-50s %-22s %-36s %s\n' "${CHECK_NAMES[$i]}" "${CHECK_EXPECTED[$i]}" "${CHECK_ACTUAL[$i]}" "${CHECK_VERDICT[$i]}"
done
echo
if [ "$FAILED" -eq 0 ]; then
    echo "chaos: PASS (${#CHECK_NAMES[@]} rows; logs in $LOGS)"
    exit 0
fi
# CI keeps only the end of what this prints: the first overlaps name
# themselves there (session, both spans and their runs).
grep -m 3 'served twice:' "$LOGS/chaos.log" | sed 's/^/chaos: /' || true
echo "chaos: FAIL: $FAILED check(s) failed (logs in $LOGS, timeline in $LOGS/chaos.log, plan in $STATE/plan.txt)"
exit 1
