# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/demo/processes.sh - the processes of `make run` (sourced by
# scripts/run.sh): start them, know when they are ready, stop them all.
#
# Every program the demo starts goes through start_process, which records
# its name and pid; stop_all SIGTERMs them all (simulators first, so they
# stop sending, then the services, the receiver last), waits up to 20 s and
# SIGKILLs what is left, recording each exit status. Settings reach a
# program only through its environment, set in a subshell that then execs
# it, so no setting (the database DSN, the webhook key) is ever on a
# command line. A Ctrl-C runs stop_all through the INT trap: background
# children of a script ignore the terminal's SIGINT (the services catch it
# and stop by themselves as well), so the trap is what ends them.

PROC_NAMES=()
PROC_PIDS=()
declare -A PROC_EXIT=()
STOPPED=0

say() { echo "run: $*"; }

# start_process NAME LOG FUNCTION [ARGS...]: run FUNCTION ARGS in the
# background (the function sets the environment and execs the program),
# output appended to LOG.
start_process() {
    local name=$1 log=$2
    shift 2
    "$@" >>"$log" 2>&1 </dev/null &
    PROC_NAMES+=("$name")
    PROC_PIDS+=("$!")
}

pid_of() {
    local i
    for i in "${!PROC_NAMES[@]}"; do
        [ "${PROC_NAMES[$i]}" = "$1" ] && { echo "${PROC_PIDS[$i]}"; return 0; }
    done
    return 1
}

is_running() {
    local pid
    pid=$(pid_of "$1") && kill -0 "$pid" 2>/dev/null
}

# SIGTERM one process and wait for it (20 s, then SIGKILL); its exit status
# goes to PROC_EXIT[name] (128 + signal when a signal ended it).
stop_process() {
    local name=$1 pid rc=0
    pid=$(pid_of "$name") || return 0
    [ -n "${PROC_EXIT[$name]:-}" ] && return 0
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) did not stop within 20 s of SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    PROC_EXIT[$name]=$rc
}

# Stop everything started, in an order that lets work drain: the
# simulators stop sending first, the receiver goes last so deliveries in
# flight still find it. The services are signalled together and then
# waited for, so a slow one does not hold the others up.
stop_all() {
    [ "$STOPPED" = 1 ] && return 0
    STOPPED=1
    local name
    for name in traffic-sim gateway-sim; do stop_process "$name"; done
    for name in "${PROC_NAMES[@]}"; do
        case "$name" in traffic-sim|gateway-sim|webhook-receiver) ;;
            *) kill -TERM "$(pid_of "$name")" 2>/dev/null || true ;;
        esac
    done
    for name in "${PROC_NAMES[@]}"; do
        [ "$name" = webhook-receiver ] || stop_process "$name"
    done
    stop_process webhook-receiver
}

# How many of the named processes exited 0 (after stop_all).
count_clean_exits() {
    local n=0 name
    for name in "$@"; do [ "${PROC_EXIT[$name]:-x}" = 0 ] && n=$((n + 1)); done
    echo "$n"
}

# PICKED = the first port >= $1 that is free and not promised to another
# program of the demo yet (they all listen only once started, so a port
# chosen for one would still look free for the next).
CHOSEN_PORTS=" "
pick_port() {
    local port=$1
    while :; do
        port=$(free_port "$port")
        case "$CHOSEN_PORTS" in
            *" $port "*) port=$((port + 1)) ;;
            *) break ;;
        esac
    done
    CHOSEN_PORTS+="$port "
    PICKED=$port
}

# Wait until http://127.0.0.1:$2/readyz answers 200 (60 s at most) while
# process $1 lives; on failure show the end of its log and fail.
wait_ready() {
    local name=$1 port=$2 log=$3 deadline=$((SECONDS + 60))
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
        if ! is_running "$name"; then
            say "$name exited during start-up; last lines of $log:"
            tail -n 15 "$log" >&2
            return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            say "$name is not ready after 60 s; last lines of $log:"
            tail -n 15 "$log" >&2
            return 1
        fi
        sleep 0.2
    done
}

# Wait until something listens on 127.0.0.1:$2 (10 s) while $1 lives.
wait_listening() {
    local name=$1 port=$2 deadline=$((SECONDS + 10))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        is_running "$name" || return 1
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

# Wait until file $2 is not empty (10 s) while $1 lives: a program that
# writes its port there once it listens.
wait_for_file() {
    local name=$1 file=$2 deadline=$((SECONDS + 10))
    until [ -s "$file" ]; do
        is_running "$name" || return 1
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

on_interrupt() {
    [ -t 1 ] && echo
    say "interrupted: stopping everything the demo started"
    stop_all
    say "stopped: $(count_clean_exits "${PROC_NAMES[@]}") of ${#PROC_NAMES[@]} processes exited cleanly;" \
        "PostgreSQL and Kafka keep running (\`make stack-down\` stops them)"
    exit 130
}
