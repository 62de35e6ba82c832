#!/usr/bin/env bash
#
# scripts/bench_reads.sh - `make bench-reads`: the CRM's reads
# (db/read_contract.sql) at 10 M messages, alone and while the whole
# pipeline writes beside them, and the write path's figures with and
# without the readers.
#
# Outside `make bench` because of its budget on a 2-core machine: the data
# set (scripts/make_dataset.sh, BLAZZ_READS_SCALE, 1 = 10 M messages) takes
# about 9 GB of disk and a third of the run's time to make. Then, on that
# database, BLAZZ_READS_RUNS (3) times:
#  A. the readers alone: pgbench at BLAZZ_READS_RATE (50) statements/s for
#     BLAZZ_READS_SECONDS (60), about 1,000 agents refreshing their inbox
#     every 20 s, after as long a warm-up (the warm cache);
#  B. the writers alone: scripts/bench_system.sh (1,000 events/s through
#     ingest, chat-sync and the webhook dispatcher);
#  C. both: the readers run in 10 s rounds until bench_system ends, and
#     their latencies count only while its simulator sends (B and C swap
#     their order every other run).
# The readers log in as crm_bench, a login of blazz_crm whose defaults set
# the role and the largest workspace, as a CRM's connection would. Each
# statement of the contract becomes a pgbench script with its parameters
# drawn from the data set's facts (dataset.facts): a random contact or
# group of the largest workspace, one of its accounts, first pages (the
# refresh an agent waits for). Per statement: p50/p95/p99 of the
# statement's own time (pgbench's per-transaction log, schedule lag apart).
# The CRM's list routes over HTTP (ingest's CRM edge) are read beside the
# statements they wrap: in phase A, after the statements, the routes alone
# at the same rate through an ingest of their own, with the key a CRM would
# hold; in phase C, through bench_system's ingest while it takes the
# gateways' events, so that the write path's table shows the gateways' 202
# (gateway_to_accepted) with this whole read load beside it against without.
# Each route's figure is its request on a kept-alive connection, from sent to
# answered (http_read_for).
# With BLAZZ_PG_STANDBY=1 the stack has a streaming standby and phase C
# reports how far behind it replays.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BLAZZ_BENCH_STATE_DIR="${BLAZZ_BENCH_STATE_DIR:-$REPO/.run/bench-reads}"
export BLAZZ_BENCH_PG_PORT="${BLAZZ_BENCH_PG_PORT:-55436}"
export BLAZZ_BENCH_KAFKA_PORT="${BLAZZ_BENCH_KAFKA_PORT:-59296}"
export BLAZZ_BENCH_KAFKA_CONTROLLER_PORT="${BLAZZ_BENCH_KAFKA_CONTROLLER_PORT:-59297}"
SCALE="${BLAZZ_READS_SCALE:-1}"
RUNS="${BLAZZ_READS_RUNS:-3}"
RATE="${BLAZZ_READS_RATE:-50}"
SECONDS_PER_PHASE="${BLAZZ_READS_SECONDS:-60}"
# shellcheck source=lib/bench_stack.sh
source "$REPO/scripts/lib/bench_stack.sh"
bench_stack_up "$REPO"
BIN_DIR="$BLAZZ_BIN_DIR"
# shellcheck disable=SC2034  # read by lib/sim_gateway.sh
STACK_SCRIPT="$BLAZZ_STACK_SCRIPT"
# shellcheck source=lib/sim_gateway.sh
source "$REPO/scripts/lib/sim_gateway.sh"
# shellcheck source=lib/ports.sh
source "$REPO/scripts/lib/ports.sh"

WORK="$BLAZZ_STATE_DIR/reads"
mkdir -p "$WORK"
say() { echo "bench_reads: $*" >&2; }
sql() { psql "$BLAZZ_PG_DSN" -X -q -tA -v ON_ERROR_STOP=1 -c "$1"; }
fact() { sql "SELECT value FROM dataset.facts WHERE name = '$1'"; }

say "making the data set at scale $SCALE"
"$REPO/scripts/make_dataset.sh" "$BLAZZ_PG_DSN" "$SCALE"
settle_database

WS=$(fact largest_workspace_id)
sql "DROP ROLE IF EXISTS crm_bench" >/dev/null
sql "CREATE ROLE crm_bench LOGIN IN ROLE blazz_crm" >/dev/null
sql "ALTER ROLE crm_bench SET role = 'blazz_crm'" >/dev/null
sql "ALTER ROLE crm_bench SET blazz.workspace_id = '$WS'" >/dev/null
CRM_DSN="${BLAZZ_PG_DSN/:\/\/blazz@/://crm_bench@}"

# ---- the readers' scripts ------------------------------------------------------------

# The statement named $1 of the contract, comments dropped, with :q renamed
# :$2 when given (a search runs with several terms).
statement() {
    awk -v name="$1" '
        /^-- name: / { on = ($3 == name); next }
        on && !/^--/ && NF { print }' "$REPO/db/read_contract.sql" |
        if [ -n "${2:-}" ]; then sed "s/:q\\b/:$2/g"; else cat; fi
}

# name weight [query variable]; the weights are the mix of an inbox screen
SCRIPTS=(
    "inbox 30" "inbox_by_session 10" "sessions 10" "contact_messages 17" "group_messages 5"
    "contact_calls 3"
    "search_conversations 5 q_name" "search_conversations 3 q_phone"
    "search_messages 5 q_rare" "search_messages 2 q_common"
    "campaign_progress 4" "campaign_recipients 3" "webhook_deliveries 3"
)
ACCOUNT_LIST=$(fact largest_workspace_account_ids)
IFS=, read -r -a ACCOUNTS <<<"$ACCOUNT_LIST"
PGBENCH_ARGS=(-n -M prepared -c 4 -j 2 -R "$RATE" --log
    -D ws="$WS" -D at=infinity -D kind=contact -D id=0 -D status=failed
    -D cmin="$(fact largest_workspace_contact_min)" -D cmax="$(fact largest_workspace_contact_max)"
    -D gmin="$(fact largest_workspace_group_min)" -D gmax="$(fact largest_workspace_group_max)"
    -D campaign="$(fact campaign_id)" -D endpoint="$(fact endpoint_id)"
    -D q_name="$(fact name_prefix)" -D q_phone="$(fact phone_prefix)"
    -D q_rare="$(fact rare_word)" -D q_common="$(fact frequent_word)")
LABELS=()
for entry in "${SCRIPTS[@]}"; do
    read -r name weight var <<<"$entry"
    file="$WORK/${name}${var:+-$var}.sql"
    {
        echo "\\set contact random(:cmin, :cmax)"
        echo "\\set group random(:gmin, :gmax)"
        echo "\\set pick random(0, $((${#ACCOUNTS[@]} - 1)))"
        statement "$name" "$var" | sed "s/:account\\b/(ARRAY[$ACCOUNT_LIST]::bigint[])[:pick + 1]/g"
    } >"$file"
    PGBENCH_ARGS+=(-f "$file@$weight")
    LABELS+=("${name}${var:+ ($var)}")
done

# pgbench for $1 seconds, its per-transaction logs under the prefix $2.
read_for() {
    (cd "$WORK" && pgbench "${PGBENCH_ARGS[@]}" -T "$1" --log-prefix="$2" "$CRM_DSN" \
        >"$WORK/out-$2.txt" 2>&1) || { cat "$WORK/out-$2.txt" >&2; return 1; }
}

# ---- the readers over HTTP -------------------------------------------------------------

# label weight path: the CRM's list routes, first pages, with the ids the
# scripts draw; each is labelled by the statement it wraps, but GET
# /v1/sessions, which reads one of its own (every state, no unread count).
HTTP_ROUTES=(
    "inbox 30 /v1/conversations"
    "contact_messages 17 /v1/contacts/{contact}/messages"
    "group_messages 5 /v1/groups/{group}/messages"
    "contact_calls 3 /v1/contacts/{contact}/calls"
    "webhook_deliveries 3 /v1/webhook-endpoints/{endpoint}/deliveries"
    "GET_sessions 10 /v1/sessions"
)
HTTP_CLIENTS=4
# The workspace's agents make RATE requests a second; its operator sets the
# CRM's limit (crm.rate_per_second, per workspace) above that, here twice.
export BLAZZ_CRM_RATE_PER_SECOND=$((2 * RATE))
CONTACT_MIN=$(fact largest_workspace_contact_min) CONTACT_MAX=$(fact largest_workspace_contact_max)
GROUP_MIN=$(fact largest_workspace_group_min) GROUP_MAX=$(fact largest_workspace_group_max)
ENDPOINT=$(fact endpoint_id)
HTTP_PER_MINUTE=$((RATE * 60 / HTTP_CLIENTS))
HTTP_LABELS=()
for entry in "${HTTP_ROUTES[@]}"; do HTTP_LABELS+=("${entry%% *}"); done

# Phase A's ingest starts on topics of its own, though it publishes nothing.
HTTP_TOPIC_PREFIX="reads$(date +%s)."
prefix_topics_ensure "$HTTP_TOPIC_PREFIX" "$WORK/topics.log" --partitions 1 || exit 1

# The largest workspace's API key, as a CRM keeps it: in a file of mode
# 600 (a curl config), never on a command line.
key=$(umask 077 && "$BIN_DIR/blazzctl" apikeys create --workspace "$WS" --name bench-reads | head -n 1)
(umask 077 && printf 'header = "Authorization: Bearer %s"\nsilent\n' "$key" >"$WORK/http-key.cfg")
unset key

# http_read_for SECONDS PREFIX ADDRESS: HTTP_CLIENTS curls, each at its
# share of RATE on one kept-alive connection, read the routes of ingest at
# ADDRESS for SECONDS; their requests become lines of pgbench's log shape
# in PREFIX.c<n> (time, route, estimated start: the client's start plus its
# schedule) for percentiles, and those not answered 200 lines of
# failed.PREFIX. A request's time runs from the moment curl is ready to
# send it to its answer's last byte (time_total - time_pretransfer): curl's
# own setup of each transfer (0.13 ms on average) is the client's, as
# pgbench's is not in a statement's time either.
http_read_for() {
    local seconds=$1 prefix=$2 address=$3 client start pids=()
    for client in $(seq 1 "$HTTP_CLIENTS"); do
        printf '%s\n' "${HTTP_ROUTES[@]}" |
            awk -v n=$((HTTP_PER_MINUTE * seconds / 60)) -v seed="$RANDOM" -v base="http://$address" \
                -v cmin="$CONTACT_MIN" -v cmax="$CONTACT_MAX" -v gmin="$GROUP_MIN" \
                -v gmax="$GROUP_MAX" -v endpoint="$ENDPOINT" '
                { path[NR] = $3; weight[NR] = $2; total += $2 }
                END {
                    srand(seed)
                    for (i = 0; i < n; i++) {
                        r = rand() * total
                        for (k = 1; r >= weight[k]; k++) r -= weight[k]
                        url = path[k]
                        sub(/[{]contact[}]/, cmin + int(rand() * (cmax - cmin + 1)), url)
                        sub(/[{]group[}]/, gmin + int(rand() * (gmax - gmin + 1)), url)
                        sub(/[{]endpoint[}]/, endpoint, url)
                        printf "url = \"%s%s\"\noutput = \"/dev/null\"\n", base, url
                    }
                }' >"$WORK/curl-$prefix.c$client.cfg"
        start=$(date +%s.%N)
        curl -K "$WORK/http-key.cfg" -K "$WORK/curl-$prefix.c$client.cfg" --rate "$HTTP_PER_MINUTE/m" \
            -w "$start %{urlnum} %{http_code} %{time_pretransfer} %{time_total} %{url_effective}\n" \
            >"$WORK/curl-$prefix.c$client.raw" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    for client in $(seq 1 "$HTTP_CLIENTS"); do
        printf '%s\n' "${HTTP_ROUTES[@]}" |
            awk -v per_minute="$HTTP_PER_MINUTE" -v failed="$WORK/failed.$prefix" '
                NR == FNR { route[NR - 1] = "^" $3 "$"; gsub(/[{][a-z]+[}]/, "[^/]+", route[NR - 1]); next }
                {
                    at = $1 + $2 * 60 / per_minute
                    path = $6
                    sub(/^http:[/][/][^/]+/, "", path)
                    if ($3 != "200") { printf "%d %s %s\n", at, $3, path >>failed; next }
                    for (k in route) if (path ~ route[k]) printf "0 0 %d %d %d 0 0\n", ($5 - $4) * 1e6, k, at
                }' - "$WORK/curl-$prefix.c$client.raw" >"$WORK/$prefix.c$client"
    done
}

# The requests of phase $1 not answered 200 within [$2, $3] (epoch
# seconds; 0 0: all), said.
http_failures() {
    local failed
    failed=$(cat "$WORK/failed.$1".* 2>/dev/null |
        awk -v from="$2" -v to="$3" 'to == 0 || ($1 >= from && $1 <= to)' || true)
    [ -z "$failed" ] ||
        say "$(wc -l <<<"$failed") HTTP reads of $1 were not answered 200, the first: $(head -n 1 <<<"$failed")"
}

# p50/p95/p99 (ms) per script of the logs $1.*, counting transactions that
# ended within [$2, $3] (epoch seconds; 0 0: all). A log line is "client
# transaction time_us script epoch epoch_us lag_us"; with --rate, time runs
# from the scheduled start, so the statement's own time is time - lag.
percentiles() {
    { cat "$1".* 2>/dev/null || true; } |
        awk -v from="$2" -v to="$3" 'to == 0 || ($5 >= from && $5 <= to) { print $4, ($3 - $7) / 1000 }' |
        sort -k1,1n -k2,2g |
        awk 'function at(p) { i = int(p * c + 0.999999); return v[i < 1 ? 1 : i] }
             function flush() { if (c) printf "%s %d %.2f %.2f %.2f\n", s, c, at(0.50), at(0.95), at(0.99) }
             NR == 1 || $1 != s { flush(); s = $1; c = 0 }
             { v[++c] = $2 }
             END { flush() }'
}

# print_reads TITLE FIGURES PHASE LABELS: a table of FIGURES (percentiles'
# lines), its scripts named by the array LABELS.
print_reads() {
    local title=$1 file=$2 phase=$3 key
    local -n names=$4
    printf '\n%s\n%-36s %8s %8s %8s %8s\n' "$title" "statement" "count" "p50 ms" "p95 ms" "p99 ms"
    while read -r script count p50 p95 p99; do
        printf '%-36s %8s %8s %8s %8s\n' "${names[$script]}" "$count" "$p50" "$p95" "$p99"
        key=${names[$script],,}
        echo "BENCH reads_${phase}_${key//[^a-z_]/}_p95 $p95 ms" >>"$WORK/results.txt"
    done <"$file"
}

# Run $1's routes against the statements they wrap, both alone: p95 and
# their ratio (the goal: 1.5x at most).
http_against_statements() {
    local run=$1 script count p50 p95 p99 label ratio
    local -A statement_p95=()
    while read -r script count p50 p95 p99; do
        statement_p95[${LABELS[$script]}]=$p95
    done <"$WORK/alone-$run.txt"
    printf '\nrun %s: each route against the statement it wraps, both alone (goal: p95 within 1.5x)\n' "$run"
    printf '%-36s %12s %12s %8s\n' "route" "HTTP p95 ms" "SQL p95 ms" "ratio"
    while read -r script count p50 p95 p99; do
        label=${HTTP_LABELS[$script]}
        [ -n "${statement_p95[$label]:-}" ] || continue
        ratio=$(awk -v a="${statement_p95[$label]}" -v b="$p95" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')
        printf '%-36s %12s %12s %8s\n' "$label" "$p95" "${statement_p95[$label]}" "${ratio}x"
        echo "BENCH reads_http_over_statement_${label}_p95 $ratio x" >>"$WORK/results.txt"
    done <"$WORK/http-alone-$run.txt"
}

# bench_system's figure $2 (its BENCH line) from its output $1.
system_figure() { awk -v n="$2" '$1 == "BENCH" && $2 == n { print $3 }' "$1"; }

# Phase A of run $1: the readers alone, in 10 s rounds as in phase C.
readers_alone() {
    rm -f "$WORK"/alone.*
    for round in $(seq 1 $((SECONDS_PER_PHASE / 10))); do read_for 10 "alone.r$round"; done
    percentiles "$WORK/alone" 0 0 >"$WORK/alone-$1.txt"
}

# Phase A of run $1 over HTTP: the routes alone, in 10 s rounds, through an
# ingest of their own that no gateway posts to.
http_readers_alone() {
    local admin address round
    rm -f "$WORK"/http-alone.* "$WORK"/failed.http-alone.*
    admin=$(free_port 9641)
    address="127.0.0.1:$(free_port 8641)"
    service_start ingest "$HTTP_TOPIC_PREFIX" "$WORK/ingest-$1.log" \
        BLAZZ_HTTP_LISTEN="127.0.0.1:$admin" BLAZZ_INGEST_LISTEN="$address"
    service_ready "$admin" "$STARTED_PID" || {
        say "ingest exited (see $WORK/ingest-$1.log)"
        kill -TERM "$STARTED_PID" 2>/dev/null || true
        return 1
    }
    for round in $(seq 1 $((SECONDS_PER_PHASE / 10))); do http_read_for 10 "http-alone.r$round" "$address"; done
    kill -TERM "$STARTED_PID" 2>/dev/null || true
    wait "$STARTED_PID" || say "ingest of phase A ended with status $? (see $WORK/ingest-$1.log)"
    percentiles "$WORK/http-alone" 0 0 >"$WORK/http-alone-$1.txt"
    http_failures http-alone 0 0
}

# Phase B of run $1.
writers_alone() {
    "$REPO/scripts/bench_system.sh" >"$WORK/system-alone-$1.txt" 2>"$WORK/system-alone-$1.log"
}

# Phase C of run $1: readers in 10 s rounds until bench_system ends; their
# figures count while the simulator sends (its window in load-window-$1),
# and with a standby, how far behind it replays meanwhile (ms, lag-$1.txt).
readers_and_writers() {
    local run=$1 readers http_readers watcher from to
    rm -f "$WORK"/beside.* "$WORK"/http-beside.* "$WORK"/failed.http-beside.* "$WORK/stop"
    : >"$WORK/load-window-$run"
    : >"$WORK/lag-$run.txt"
    (round=0
     while [ ! -e "$WORK/stop" ]; do round=$((round + 1)); read_for 10 "beside.r$round" || break; done) &
    readers=$!
    # over HTTP through bench_system's ingest, once the simulator sends
    (address=""
     until [ -e "$WORK/stop" ] || { pgrep -f blazz-gateway-sim >/dev/null && [ -n "$address" ]; }; do
         address=$(cat "$BLAZZ_STATE_DIR/system/ingest.address" 2>/dev/null || true)
         sleep 0.2
     done
     round=0
     while [ ! -e "$WORK/stop" ]; do round=$((round + 1)); http_read_for 10 "http-beside.r$round" "$address"; done) &
    http_readers=$!
    (while [ ! -e "$WORK/stop" ]; do
         if pgrep -f blazz-gateway-sim >/dev/null; then
             date +%s >>"$WORK/load-window-$run"
             sql "SELECT round(extract(epoch FROM replay_lag) * 1000) FROM pg_stat_replication
                  WHERE replay_lag IS NOT NULL" >>"$WORK/lag-$run.txt" || true
         fi
         sleep 0.5
     done) &
    watcher=$!
    "$REPO/scripts/bench_system.sh" >"$WORK/system-beside-$run.txt" 2>"$WORK/system-beside-$run.log"
    touch "$WORK/stop"
    wait "$readers" "$http_readers" "$watcher"
    if [ ! -s "$WORK/load-window-$run" ]; then
        say "run $run: the simulator was never seen running; the readers' figures cover the whole phase"
        echo 0 >"$WORK/load-window-$run"
    fi
    from=$(head -n 1 "$WORK/load-window-$run") to=$(tail -n 1 "$WORK/load-window-$run")
    percentiles "$WORK/beside" "$from" "$to" >"$WORK/beside-$run.txt"
    percentiles "$WORK/http-beside" "$from" "$to" >"$WORK/http-beside-$run.txt"
    http_failures http-beside "$from" "$to"
}

report_run() {
    local run=$1 from to
    from=$(head -n 1 "$WORK/load-window-$run") to=$(tail -n 1 "$WORK/load-window-$run")
    print_reads "run $run: readers alone (${SECONDS_PER_PHASE} s at $RATE/s)" "$WORK/alone-$run.txt" \
        alone LABELS
    print_reads "run $run: readers while bench_system writes ($((to - from)) s of load)" \
        "$WORK/beside-$run.txt" beside LABELS
    print_reads "run $run: the list routes over HTTP alone (${SECONDS_PER_PHASE} s at $RATE/s)" \
        "$WORK/http-alone-$run.txt" http_alone HTTP_LABELS
    http_against_statements "$run"
    print_reads "run $run: the list routes over HTTP while bench_system writes, beside the readers" \
        "$WORK/http-beside-$run.txt" http_beside HTTP_LABELS
    if [ -s "$WORK/lag-$run.txt" ]; then
        sort -n "$WORK/lag-$run.txt" | awk -v run="$run" '{ v[++n] = $1 }
            END { printf "run %d: the standby replays %d ms behind at p50, %d ms at p99, %d ms at most (%d samples)\n",
                         run, v[int(n * 0.5 + 0.5) ? int(n * 0.5 + 0.5) : 1],
                         v[int(n * 0.99 + 0.5) ? int(n * 0.99 + 0.5) : 1], v[n], n }'
    fi
    printf '\nrun %s: the write path (bench_system) %28s %12s %8s\n' "$run" "without readers" \
        "with readers" "ratio"
    for figure in hop_gateway_to_accepted_p50 hop_gateway_to_accepted_p99 e2e_row_p50 e2e_row_p99 \
        e2e_webhook_p50 e2e_webhook_p99 cpu_ms_per_event; do
        a=$(system_figure "$WORK/system-alone-$run.txt" "$figure")
        b=$(system_figure "$WORK/system-beside-$run.txt" "$figure")
        printf '%-52s %15s %12s %8s\n' "$figure" "$a" "$b" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "-" }')"
    done
}

: >"$WORK/results.txt"
say "warming the cache: $SECONDS_PER_PHASE s of reads"
read_for "$SECONDS_PER_PHASE" warm
for run in $(seq 1 "$RUNS"); do
    say "run $run/$RUNS: A. readers alone"
    readers_alone "$run"
    say "run $run/$RUNS: A. the list routes over HTTP alone"
    http_readers_alone "$run"
    # B and C alternate their order, so that neither always meets the
    # database right after the other's writes
    if [ $((run % 2)) = 1 ]; then
        say "run $run/$RUNS: B. writers alone"
        writers_alone "$run"
        say "run $run/$RUNS: C. readers and writers"
        readers_and_writers "$run"
    else
        say "run $run/$RUNS: C. readers and writers"
        readers_and_writers "$run"
        say "run $run/$RUNS: B. writers alone"
        writers_alone "$run"
    fi
    report_run "$run"
done
# EXPLAIN (ANALYZE, BUFFERS) of every script's statement with its first
# parameters, as blazz_crm; auto_explain shows the plans inside the search
# functions too (LOAD needs the superuser this script connects as).
explain_all() {
    local file contact group
    contact=$(sql "SELECT id FROM contacts WHERE workspace_id = $WS
                   ORDER BY latest_chat_created_at DESC NULLS LAST LIMIT 1")
    group=$(sql "SELECT id FROM whatsapp_groups WHERE workspace_id = $WS
                 ORDER BY latest_chat_created_at DESC NULLS LAST LIMIT 1")
    for file in "$WORK"/*.sql; do
        echo "=== $(basename "$file" .sql)"
        {
            echo "LOAD 'auto_explain';"
            echo "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;"
            echo "SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on;"
            echo "SET auto_explain.log_level = notice; SET blazz.workspace_id = '$WS'; SET ROLE blazz_crm;"
            echo "EXPLAIN (ANALYZE, BUFFERS)"
            grep -v '^\\set' "$file" | sed -e 's/:pick + 1/1/'
        } | psql "$BLAZZ_PG_DSN" -X -q -v ON_ERROR_STOP=1 -v ws="$WS" -v at="'infinity'" \
            -v kind="'contact'" -v id=0 -v status="'failed'" -v contact="$contact" -v group="$group" \
            -v campaign="$(fact campaign_id)" -v endpoint="$(fact endpoint_id)" \
            -v q_name="'$(fact name_prefix)'" -v q_phone="'$(fact phone_prefix)'" \
            -v q_rare="'$(fact rare_word)'" -v q_common="'$(fact frequent_word)'" 2>&1
    done
}
explain_all >"$WORK/explain.txt" 2>&1 || say "EXPLAIN failed: see $WORK/explain.txt"
echo
echo "bench_reads: plans in $WORK/explain.txt"
echo "bench_reads: data set $(sql "SELECT value FROM dataset.facts WHERE name = 'total_messages'") messages," \
    "database $(sql "SELECT pg_size_pretty(pg_database_size(current_database()))")"
