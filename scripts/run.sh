#!/usr/bin/env bash
#
# scripts/run.sh - `make run`: the whole backbone on one machine, with a
# demo that puts all six services to work, and a one-screen report.
#
#  1. The local stack (scripts/stack.sh up: PostgreSQL, Kafka, migrations,
#     topics); the secrets key (webhook-secret.key), the gateways "sim"
#     (the simulators) and "meta" (the Meta app, its key the app secret in
#     $STATE/meta-app-secret) are registered once.
#  2. The Graph API test server (tests/integration/graph_test_server, from
#     BLAZZ_GRAPH_SERVER; loopback, any free port) playing Meta's Cloud API:
#     it accepts the tokens in $STATE/graph-tokens and posts signed status
#     webhooks (sent, delivered, read) to ingest's /v1/meta/webhook with
#     the app secret (the key of ingest.meta_gateway, "meta").
#     Then the six services
#     (ingest, chat-sync, webhook-dispatcher, campaign-sender, cleanup,
#     meta-sender with meta.base_url = the test server), configured through
#     their environment (admin endpoints from BLAZZ_DEMO_ADMIN_PORT up,
#     ingest on BLAZZ_INGEST_LISTEN, logs in $STATE/logs/<name>.log), each
#     waited for on /readyz.
#  3. The worlds of earlier runs on this stack retired (scripts/demo/
#     retire.sh: their endpoints disabled now, their sessions logged out
#     once the instances run), then the demo's world, under a fresh tag
#     (scripts/demo/setup.sh): simulator
#     workspaces and accounts, a Meta account next to them with its token
#     set by `blazzctl meta token --token-file`, three paced campaigns to
#     generated audiences (one through the Meta account), stale sessions for
#     a sweep, webhook endpoints on blazz-webhook-receiver, which then
#     starts and verifies every signature.
#  4. The demo, BLAZZ_DEMO_SECONDS long: blazz-gateway-sim sends inbound
#     traffic through ingest (connect, history sync, live messages; its very
#     first live message is for a session nobody connected, which ingest
#     dead-letters), and a contact of the Meta campaign writes STOP to the
#     Meta account (Meta's messages webhook, from the Graph test server);
#     a second simulator plays the gateway that sends what
#     campaign-sender puts on wa.outbound for the webjs accounts and answers
#     with receipts (the Meta account's sends go through meta-sender to the
#     Graph test server). After BLAZZ_DEMO_WARMUP_S, once chat-sync opted
#     that contact out, Meta approves the Meta account's template (its
#     status webhook, from the Graph test server), the campaigns start
#     (`blazzctl campaign start`; the Meta one sends that template, the only
#     kind Meta takes outside a contact's 24-hour window), an agent message
#     leaves from the Meta account (`blazzctl send`), the owner answers that
#     customer from the phone and the customer calls (the Graph test
#     server's smb_message_echoes and calls webhooks), media goes both ways
#     (scripts/demo/media.sh: a photo from that contact, fetched from the
#     Graph test server's --media registry, stored and opened through its
#     link; an agent's image uploaded with POST /v1/media and sent by the
#     id Meta answered, the test server's --bodies showing which) and a
#     sweep is requested (`blazzctl cleanup run`); once the Meta campaign
#     completed (skipping the contact), the contact writes START and is
#     opted back in. A progress line
#     shows events, chats, webhooks, campaign sends, removals, dead letters.
#     Beside it, sessions under the backbone's command (scripts/demo/
#     sessions.sh): two gateway instances, sessions created with POST
#     /v1/sessions, their session.qr webhooks and scans, then one instance
#     SIGKILLed and its sessions moved to the other.
#  5. Settling, bounded (BLAZZ_DEMO_SETTLE_S): the campaigns finish and their
#     receipts arrive (the Meta account's through its status webhooks), the
#     killed instance's sessions are connected again on the other, the
#     gateway simulator stops, then the pipeline goes
#     quiet (no webhook open, nothing moving for 3 s).
#  6. The figures (scripts/demo/figures.sh, also written to $BLAZZ_RUN_REPORT
#     as key=value), every process stopped with SIGTERM, the report and
#     "what next" (scripts/demo/report.sh).
# Ctrl-C at any point stops every process the demo started (SIGTERM, then
# SIGKILL after 20 s) and exits 130. The stack stays up: `make stack-down`.
#
# Tunables (environment): BLAZZ_DEMO_SECONDS (60), BLAZZ_DEMO_WARMUP_S (10),
# BLAZZ_DEMO_RATE (100 events/s), BLAZZ_DEMO_AUDIENCE (150 contacts),
# BLAZZ_DEMO_SETTLE_S (60), BLAZZ_INGEST_LISTEN (127.0.0.1:8080),
# BLAZZ_DEMO_ADMIN_PORT (9101: first admin port; the receiver from +100),
# BLAZZ_GRAPH_SERVER (BLAZZ_BIN_DIR/../tests/integration/graph_test_server,
# which `make run` builds), BLAZZ_RUN_REPORT ($STATE/run-report.txt); the
# stack's own (BLAZZ_STATE_DIR, ports: README). Every program logs in to
# Kafka as its own principal, the simulators as the registered gateway "sim"
# (scripts/lib/sim_gateway.sh); the key that seals secrets in PostgreSQL
# (webhook secrets, gateway keys, the Meta access token), the gateway's
# signing key and the Meta app's (the key of the registered gateway "meta")
# are files in $STATE (mode 600).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${BLAZZ_STATE_DIR:-$REPO/.run}"
BIN_DIR="${BLAZZ_BIN_DIR:-$REPO/build/bin}"
LOGS="$STATE/logs"
DEMO_SECONDS="${BLAZZ_DEMO_SECONDS:-60}"
WARMUP_S="${BLAZZ_DEMO_WARMUP_S:-10}"
DEMO_RATE="${BLAZZ_DEMO_RATE:-100}"
AUDIENCE="${BLAZZ_DEMO_AUDIENCE:-150}"
SETTLE_MAX_S="${BLAZZ_DEMO_SETTLE_S:-60}"
ADMIN_PORT="${BLAZZ_DEMO_ADMIN_PORT:-9101}"
INGEST_LISTEN="${BLAZZ_INGEST_LISTEN:-127.0.0.1:8080}"
REPORT_FILE="${BLAZZ_RUN_REPORT:-$STATE/run-report.txt}"
# shellcheck disable=SC2034  # read by the files sourced below
STACK_SCRIPT="$REPO/scripts/stack.sh"
GRAPH_SERVER="${BLAZZ_GRAPH_SERVER:-$BIN_DIR/../tests/integration/graph_test_server}"

SERVICES=(ingest chat-sync webhook-dispatcher campaign-sender cleanup meta-sender)
declare -A SVC_PORT=()
SVC_PORTS=()
SETTLED=0

# shellcheck source=lib/sql.sh
source "$REPO/scripts/lib/sql.sh"
# shellcheck source=lib/first_storage.sh
source "$REPO/scripts/lib/first_storage.sh"
# shellcheck source=lib/sim_gateway.sh
source "$REPO/scripts/lib/sim_gateway.sh"
# shellcheck source=lib/ports.sh
source "$REPO/scripts/lib/ports.sh"
# shellcheck source=demo/processes.sh
source "$REPO/scripts/demo/processes.sh"
# shellcheck source=demo/setup.sh
source "$REPO/scripts/demo/setup.sh"
# shellcheck source=demo/figures.sh
source "$REPO/scripts/demo/figures.sh"
# shellcheck source=demo/report.sh
source "$REPO/scripts/demo/report.sh"
# shellcheck source=demo/sessions.sh
source "$REPO/scripts/demo/sessions.sh"
# shellcheck source=demo/media.sh
source "$REPO/scripts/demo/media.sh"
# shellcheck source=demo/retire.sh
source "$REPO/scripts/demo/retire.sh"

usage_error() { echo "run: $*" >&2; exit 2; }
for knob in DEMO_SECONDS WARMUP_S DEMO_RATE AUDIENCE SETTLE_MAX_S ADMIN_PORT; do
    case "${!knob}" in ''|*[!0-9]*) usage_error "$knob must be a whole number, got '${!knob}'" ;; esac
done
[ "$DEMO_SECONDS" -ge $((WARMUP_S + 5)) ] ||
    usage_error "BLAZZ_DEMO_SECONDS ($DEMO_SECONDS) must be at least BLAZZ_DEMO_WARMUP_S + 5"
[ "$AUDIENCE" -ge 4 ] || usage_error "BLAZZ_DEMO_AUDIENCE must be at least 4 (three campaigns)"

trap on_interrupt INT TERM
trap stop_all EXIT

now_ms() { date +%s%3N; }

# A line that does not garble the progress line on a terminal.
note() {
    [ -t 1 ] && printf '\r\033[K'
    say "$@"
}

# ---- the programs, each started by start_process in a subshell that execs ----

exec_service() {
    local name=$1
    as_principal "$name"
    export BLAZZ_KAFKA_TOPIC_PREFIX="${BLAZZ_TOPIC_PREFIX:-}" BLAZZ_LOG_LEVEL=info
    export BLAZZ_HTTP_LISTEN="127.0.0.1:${SVC_PORT[$name]}"
    case "$name" in
        ingest)
            export BLAZZ_INGEST_LISTEN="$INGEST_LISTEN"
            # The media store (§16) under the state directory, its links
            # signed with a key of this run's own (never a default one).
            export BLAZZ_MEDIA_LOCAL_DIR="$STATE/media" \
                BLAZZ_MEDIA_LINK_SECRET_FILE="$MEDIA_LINK_SECRET_FILE" \
                BLAZZ_MEDIA_LINK_BASE_URL="http://$INGEST_LISTEN" ;;
        webhook-dispatcher)
            # The receiver is on loopback, which production refuses.
            export BLAZZ_WEBHOOK_ALLOW_PRIVATE_TARGETS=true
            # Retries within the demo's minute rather than 5 s, 5 min, 30 min...
            export BLAZZ_WEBHOOK_RETRY_SCHEDULE="0,1s,2s,5s,10s"
            # The flaky endpoint fails each event's first attempt, half of
            # its attempts, which the default breaker (opens at 50 %) would
            # take for a dead endpoint.
            export BLAZZ_WEBHOOK_CIRCUIT_FAILURE_RATIO=0.75 ;;
        campaign-sender) export BLAZZ_EVENTS_PROGRESS_INTERVAL_MS=2000 ;;
        # A killed gateway instance is declared dead within the demo's minute.
        chat-sync) export BLAZZ_SESSIONS_INSTANCE_TIMEOUT_S="$INSTANCE_TIMEOUT_S" ;;
        # Its media fetcher keeps what it fetches in the run's own store.
        meta-sender) export BLAZZ_META_BASE_URL="http://127.0.0.1:$GRAPH_PORT" \
                            BLAZZ_MEDIA_LOCAL_DIR="$STATE/media" ;;
    esac
    exec "$BIN_DIR/blazz-$name"
}

# Meta's Cloud API on loopback: accepts the tokens of $GRAPH_TOKENS (re-read
# when setup.sh adds the demo account's), records what it accepted, and
# posts the statuses of each accepted message to ingest's Meta webhook.
exec_graph_server() {
    exec "$GRAPH_SERVER" --port-file "$GRAPH_PORT_FILE" --record "$GRAPH_RECORD" \
        --bodies "$GRAPH_BODIES" --media "$GRAPH_MEDIA" \
        --tokens "$GRAPH_TOKENS" --webhook "http://$INGEST_LISTEN/v1/meta/webhook" \
        --app-secret-file "$META_APP_SECRET_FILE"
}

exec_receiver() {
    exec "$BIN_DIR/blazz-webhook-receiver" --listen "127.0.0.1:$RECEIVER_PORT" \
        --record "$RECEIVER_RECORD" --secrets "$RECEIVER_SECRETS"
}

exec_traffic_sim() {
    as_principal gateway-sim
    exec "$BIN_DIR/blazz-gateway-sim" --mode http --ingest-url "http://$INGEST_LISTEN/v1/events" \
        --key-file "$GATEWAY_KEY_FILE" \
        --rate "$DEMO_RATE" --duration "$DEMO_SECONDS" --seed "$SEED" --tag "$TAG" \
        --workspaces 3 --accounts-per-workspace 2 --history-chats 100 --history-messages 10 \
        --stray-events 1 --media-bytes 1 --lid-people 0.3 --status-file "$TRAFFIC_STATUS" \
        --log-level warn >"$STATE/traffic-sim.report"
}

# The gateway of the campaign accounts: sends nothing of its own, answers
# wa.outbound with receipts (through ingest, like a real gateway) until
# stopped.
exec_gateway_sim() {
    as_principal gateway-sim
    exec "$BIN_DIR/blazz-gateway-sim" --mode http --ingest-url "http://$INGEST_LISTEN/v1/events" \
        --key-file "$GATEWAY_KEY_FILE" \
        --rate 0 --duration 3600 --seed "$SEED" --tag "${TAG}c" --workspaces 1 \
        --accounts-per-workspace 2 --answer-outbound --ack-delay-ms 300 \
        --status-file "$GATEWAY_STATUS" --log-level warn >"$STATE/gateway-sim.report"
}

# ---- progress -------------------------------------------------------------------

PROGRESS_TICK=0
progress() {
    local phase=$1 chats webhooks sent contacts removed dead line
    PROGRESS_TICK=$((PROGRESS_TICK + 1))
    [ -t 1 ] || [ $((PROGRESS_TICK % 5)) -eq 0 ] || return 0
    IFS='|' read -r chats webhooks sent contacts removed <<<"$(qd "
SELECT (SELECT count(*) FROM chats WHERE workspace_id = ANY (:'ws'::bigint[])) || '|' ||
       (SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = ANY (:'endpoints'::bigint[])
          AND status = 'success') || '|' ||
       (SELECT sum(messages_sent) || '|' || sum(contacts_count) FROM campaigns
          WHERE id = ANY (:'campaigns'::bigint[])) || '|' ||
       (SELECT count(*) FROM session_cleanup_logs WHERE workspace_id = :'cleanup_ws'::bigint)")"
    dead=$(curl -fsS "http://127.0.0.1:${SVC_PORT[ingest]}/metrics" 2>/dev/null |
           awk '$1 ~ /^blazz_ingest_dead_lettered_total/ { s += $NF } END { printf "%d", s }') || dead="?"
    line=$(printf '[%4ss] %-8s events %s/%s  chats %s  webhooks %s  campaign %s/%s  cleanup %s  dlq %s' \
        "$(( ($(now_ms) - DEMO_START_MS) / 1000 ))" "$phase" \
        "$(status_value "$TRAFFIC_STATUS" accepted)" "$(status_value "$TRAFFIC_STATUS" sent)" \
        "$chats" "$webhooks" "$sent" "$contacts" "$removed" "$dead")
    if [ -t 1 ]; then printf '\r\033[K%s' "${line:0:$REPORT_WIDTH}"; else echo "$line"; fi
}

# ---- what happens during the demo ------------------------------------------------

# A service (or the Graph test server) that dies under the demo ends it: the
# figures would describe a broken pipeline.
require_services() {
    local name
    for name in "${SERVICES[@]}" graph-server; do
        is_running "$name" && continue
        note "$name exited during the demo; last lines of $LOGS/$name.log:"
        tail -n 15 "$LOGS/$name.log" >&2
        exit 1
    done
}

start_campaigns() {
    local id
    wait_opt_state out ||
        { note "chat-sync did not opt contact $OPTOUT_PHONE out (see $LOGS/chat-sync.log)"; return 1; }
    approve_meta_template ||
        { note "Meta's review of the demo's template failed (see $LOGS/run.log)"; return 1; }
    wait_template_approved ||
        { note "chat-sync did not apply Meta's approval of order_update (see $LOGS/chat-sync.log)"; return 1; }
    for id in "${CAMPAIGN_IDS[@]}"; do
        "$BIN_DIR/blazzctl" campaign start "$id" --actor make-run >>"$LOGS/blazzctl.log" 2>&1 ||
            { note "blazzctl campaign start $id failed (see $LOGS/blazzctl.log)"; return 1; }
    done
    note "warm-up over: campaigns ${CAMPAIGN_IDS[*]} started (blazzctl campaign start)"
    send_meta_agent_message ||
        { note "blazzctl send from the Meta account failed (see $LOGS/blazzctl.log)"; return 1; }
    owner_answers_then_customer_calls ||
        { note "the Graph test server's echo or call webhooks failed (see $LOGS/run.log)"; return 1; }
}

# Once the Meta campaign completed (the opted-out contact skipped), the
# contact writes START and is opted back in; OPTED_IN=1 after.
OPTED_IN=0
opt_in_tick() {
    [ "$OPTED_IN" = 0 ] || return 0
    [ "$(qd "SELECT status FROM campaigns WHERE id = :id" id="$META_CAMPAIGN")" = completed ] ||
        return 0
    contact_writes START ||
        { note "contact $OPTOUT_PHONE could not write START (see $LOGS/run.log)"; return 1; }
    wait_opt_state in ||
        { note "chat-sync did not opt contact $OPTOUT_PHONE in (see $LOGS/chat-sync.log)"; return 1; }
    OPTED_IN=1
}

request_cleanup() {
    "$BIN_DIR/blazzctl" cleanup run --workspace "$CL_WS" --actor make-run \
        --reason "demo: stale sessions" >>"$LOGS/blazzctl.log" 2>&1 ||
        { note "blazzctl cleanup run failed (see $LOGS/blazzctl.log)"; return 1; }
    note "sweep of workspace $CL_WS requested (blazzctl cleanup run)"
}

# ---- settling ---------------------------------------------------------------------

# Everything the demo's services still change, as one string.
fingerprint() {
    qd "SELECT (SELECT count(*) FROM chats WHERE workspace_id = ANY (:'ws'::bigint[])) || '/' ||
               (SELECT count(*) || ':' || count(*) FILTER (WHERE status IN ('success', 'failed'))
                FROM webhook_retry_queue WHERE endpoint_id = ANY (:'endpoints'::bigint[])) || '/' ||
               (SELECT string_agg(status || ':' || messages_sent || ':' || messages_delivered || ':' ||
                                  messages_read || ':' || messages_failed, ',' ORDER BY id)
                FROM campaigns WHERE id = ANY (:'campaigns'::bigint[])) || '/' ||
               (SELECT count(*) FROM session_cleanup_logs WHERE workspace_id = :'cleanup_ws'::bigint)
               || '/' || (SELECT count(*) FROM outbox) || '/' ||
               (SELECT count(*) || ':' || count(*) FILTER (WHERE state IN ('queued', 'in_flight'))
                FROM meta_sends WHERE whatsapp_account_id = :'meta_account'::bigint) || '/' ||
               (SELECT count(*) FROM chats WHERE whatsapp_account_id = :'meta_account'::bigint
                  AND message_status = 'read')"
}

campaigns_finished() {
    [ "$(qd "SELECT count(*) FROM campaigns WHERE id = ANY (:'campaigns'::bigint[])
             AND status NOT IN ('completed', 'failed', 'cancelled')")" = 0 ]
}

webhooks_open() {
    qd "SELECT count(*) FROM webhook_retry_queue WHERE endpoint_id = ANY (:'endpoints'::bigint[])
        AND status IN ('pending', 'retrying')"
}

# Poll once a second until the campaigns are finished, the opted-out
# contact opted back in and nothing moved for 3 polls (their last receipts
# are in), stop the gateway simulator, then
# until nothing moves for 3 polls with no webhook delivery open.
settle() {
    local deadline=$((SECONDS + SETTLE_MAX_S)) previous="" now still=0 stage=campaigns
    while [ $SECONDS -lt $deadline ]; do
        require_services
        progress settling
        now=$(fingerprint)
        if [ "$now" = "$previous" ]; then still=$((still + 1)); else still=0; fi
        previous=$now
        sessions_tick || exit 1
        opt_in_tick || exit 1
        media_tick || exit 1
        if [ "$stage" = campaigns ] && [ $still -ge 3 ] && campaigns_finished && sessions_done &&
            [ "$OPTED_IN" = 1 ] && media_done; then
            stop_process gateway-sim
            stage=quiet
            still=0
        elif [ "$stage" = quiet ] && [ $still -ge 3 ] && [ "$(webhooks_open)" = 0 ]; then
            SETTLED=1
            break
        fi
        sleep 1
    done
    [ -t 1 ] && echo
    return 0
}

# ---- 1. stack ---------------------------------------------------------------------

"$REPO/scripts/stack.sh" up
# shellcheck source=/dev/null
source "$STATE/stack.env"
mkdir -p "$LOGS"
: >"$LOGS/run.log"
: >"$LOGS/blazzctl.log"
for bin in "${SERVICES[@]/#/blazz-}" blazz-gateway-sim blazz-webhook-receiver blazzctl; do
    [ -x "$BIN_DIR/$bin" ] || { say "$BIN_DIR/$bin is missing: run \`make build\` first"; exit 1; }
done
[ -x "$GRAPH_SERVER" ] || { say "$GRAPH_SERVER is missing: run \`make build\` first"; exit 1; }
# The key that seals webhook endpoint secrets, gateway keys and Meta access
# tokens (a lone key: id 0), for ingest, the dispatcher, meta-sender and
# blazzctl.
WEBHOOK_KEY_FILE="$STATE/webhook-secret.key"
if [ ! -s "$WEBHOOK_KEY_FILE" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WEBHOOK_KEY_FILE")
fi
export BLAZZ_SECRETS_KEYS_FILE="$WEBHOOK_KEY_FILE"
# The key of ingest's signed media links (media.link_secret).
MEDIA_LINK_SECRET_FILE="$STATE/media-link-secret.key"
if [ ! -s "$MEDIA_LINK_SECRET_FILE" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$MEDIA_LINK_SECRET_FILE")
fi
GATEWAY_KEY_FILE="$STATE/gateway-sim.key"
sim_gateway_ensure "$GATEWAY_KEY_FILE" "$LOGS/blazzctl.log" ||
    { say "registering the simulators' gateway failed (see $LOGS/blazzctl.log)"; exit 1; }
# The Meta app's secret: the key of gateway "meta" (ingest.meta_gateway), with
# which ingest checks the Meta webhook's signatures and the Graph test server
# signs its status webhooks.
META_APP_SECRET_FILE="$STATE/meta-app-secret"
gateway_ensure meta meta "$META_APP_SECRET_FILE" "$LOGS/blazzctl.log" ||
    { say "registering the Meta app's gateway failed (see $LOGS/blazzctl.log)"; exit 1; }

# ---- 2. services ---------------------------------------------------------------------

echo
port=$ADMIN_PORT
for name in "${SERVICES[@]}"; do
    pick_port "$port"
    SVC_PORT[$name]=$PICKED
    SVC_PORTS+=("$PICKED")
    port=$((PICKED + 1))
done
pick_port "${INGEST_LISTEN##*:}"
INGEST_LISTEN="127.0.0.1:$PICKED"
pick_port $((ADMIN_PORT + 100))
RECEIVER_PORT=$PICKED
GRAPH_PORT_FILE="$STATE/graph-server.port"
GRAPH_RECORD="$STATE/graph-server.record"
GRAPH_TOKENS="$STATE/graph-tokens"
GRAPH_BODIES="$STATE/graph-server.bodies"
GRAPH_MEDIA="$STATE/graph-server.media"
rm -f "$GRAPH_PORT_FILE" "$GRAPH_RECORD" "$GRAPH_BODIES"
: >"$GRAPH_MEDIA"
(umask 077 && : >"$GRAPH_TOKENS")
: >"$LOGS/graph-server.log"
start_process graph-server "$LOGS/graph-server.log" exec_graph_server
wait_for_file graph-server "$GRAPH_PORT_FILE" ||
    { say "the Graph test server did not start (see $LOGS/graph-server.log)"; exit 1; }
GRAPH_PORT=$(head -n 1 "$GRAPH_PORT_FILE")
say "Graph API test server (Meta's Cloud API) on 127.0.0.1:$GRAPH_PORT"
for name in "${SERVICES[@]}"; do
    : >"$LOGS/$name.log"
    start_process "$name" "$LOGS/$name.log" exec_service "$name"
done
say "started ${SERVICES[*]} (logs in $LOGS/)"
for name in "${SERVICES[@]}"; do
    wait_ready "$name" "${SVC_PORT[$name]}" "$LOGS/$name.log" || exit 1
    say "$name ready (admin http://127.0.0.1:${SVC_PORT[$name]}, pid $(pid_of "$name"))"
done

# ---- 3. the demo's world -----------------------------------------------------------------

TAG="demo$(date +%s)"
SEED=$(( $(date +%s) % 1000000 ))
# shellcheck disable=SC2034  # read by the files sourced below
RECEIVER_URL="http://127.0.0.1:$RECEIVER_PORT"
RECEIVER_SECRETS="$STATE/receiver.secrets"
RECEIVER_RECORD="$STATE/receiver.jsonl"
TRAFFIC_STATUS="$STATE/traffic-sim.status"
GATEWAY_STATUS="$STATE/gateway-sim.status"
rm -f "$RECEIVER_RECORD" "$TRAFFIC_STATUS" "$GATEWAY_STATUS" "$REPORT_FILE"
: >"$LOGS/gateway-sim.log"
echo
retire_endpoints || { say "disabling the earlier worlds' webhook endpoints failed (see $LOGS/run.log)"; exit 1; }
setup_demo || exit 1
say "world '$TAG': inbound workspaces ${WS[*]}, campaigns ${CAMPAIGN_IDS[*]} in workspace $CAMPAIGN_WS" \
    "(#$META_CAMPAIGN through Meta account $META_ACCOUNT, phone_number_id $META_PNID)," \
    "$STALE_CREATED stale sessions in workspace $CL_WS, ${#ENDPOINT_IDS[@]} webhook endpoints"
: >"$LOGS/webhook-receiver.log"
start_process webhook-receiver "$LOGS/webhook-receiver.log" exec_receiver
wait_listening webhook-receiver "$RECEIVER_PORT" ||
    { say "blazz-webhook-receiver did not start (see $LOGS/webhook-receiver.log)"; exit 1; }

# ---- 4. the demo -------------------------------------------------------------------------

start_process gateway-sim "$LOGS/gateway-sim.log" exec_gateway_sim
start_instances
retire_sessions || { say "logging out the earlier worlds' sessions failed (see $LOGS/blazzctl.log)"; exit 1; }
[ $((RETIRED_ENDPOINTS + RETIRED_SESSIONS)) = 0 ] ||
    say "earlier worlds on this stack retired: $RETIRED_ENDPOINTS webhook endpoints disabled," \
        "$RETIRED_SESSIONS sessions logged out"
: >"$LOGS/traffic-sim.log"
DEMO_START_MS=$(now_ms)
# shellcheck disable=SC2034  # read by the files sourced below
STEADY_START_MS=$((DEMO_START_MS + WARMUP_S * 1000))
start_process traffic-sim "$LOGS/traffic-sim.log" exec_traffic_sim
contact_writes STOP || { say "contact $OPTOUT_PHONE could not write STOP (see $LOGS/run.log)"; exit 1; }
username_customer_writes || { say "the username customer could not write (see $LOGS/run.log)"; exit 1; }
say "demo: ${DEMO_SECONDS} s of traffic at ${DEMO_RATE} events/s through ingest on $INGEST_LISTEN;" \
    "warm-up ${WARMUP_S} s, then the campaigns and the sweep"
campaigns_started=0
cleanup_requested=0
while is_running traffic-sim; do
    require_services
    elapsed=$(( $(now_ms) - DEMO_START_MS ))
    if [ $campaigns_started = 0 ] && [ $elapsed -ge $((WARMUP_S * 1000)) ]; then
        start_campaigns || exit 1
        campaigns_started=1
    fi
    sessions_tick || exit 1
    [ $campaigns_started = 0 ] || opt_in_tick || exit 1
    [ $campaigns_started = 0 ] || media_tick || exit 1
    if [ $cleanup_requested = 0 ] && [ $elapsed -ge $((WARMUP_S * 1000 + 3000)) ]; then
        request_cleanup || exit 1
        cleanup_requested=1
    fi
    if [ $elapsed -lt $((WARMUP_S * 1000)) ]; then progress warm-up; else progress steady; fi
    sleep 1
done
stop_process traffic-sim
if [ "${PROC_EXIT[traffic-sim]}" != 0 ]; then
    note "the traffic simulator failed (exit ${PROC_EXIT[traffic-sim]}); last lines of $LOGS/traffic-sim.log:"
    tail -n 15 "$LOGS/traffic-sim.log" >&2
    exit 1
fi
[ $campaigns_started = 1 ] || start_campaigns || exit 1
[ $cleanup_requested = 1 ] || request_cleanup || exit 1

# ---- 5. settling ---------------------------------------------------------------------------

settle
[ "$SETTLED" = 1 ] || say "not settled after ${SETTLE_MAX_S} s; reporting what is there"

# ---- 6. figures, stop, report ---------------------------------------------------------------

collect_figures
stop_all
collect_shutdown
write_figures
print_report
