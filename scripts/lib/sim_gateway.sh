# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/lib/sim_gateway.sh - the gateway and Kafka principals of the
# programs a script starts on the local stack, and their start (sourced by
# scripts/run.sh, scripts/chaos.sh, scripts/bench_system.sh and
# scripts/bench_reads.sh; needs BIN_DIR, STACK_SCRIPT and the stack's
# environment).
#
# blazz-gateway-sim posts through ingest as the registered gateway "sim"
# (ARCHITECTURE.md §9.2), whose Kafka principal is gateway-sim. Its signing
# key lives in a mode-600 file the simulators read (--key-file), never on a
# command line. Each service logs in to Kafka as itself (§9.1) and to
# PostgreSQL as its own role (§9): the variables `scripts/stack.sh principal
# NAME` prints.

# gateway_ensure ID KIND KEY_FILE LOG: gateway ID (webjs or meta) registered
# and its key in KEY_FILE. A stack that already has the gateway but not the
# file (a new state folder) gets a new key, the old ones ended at once. Its
# Kafka principal is gateway-sim's: the demo's gateways post over HTTP.
gateway_ensure() {
    local id=$1 kind=$2 key_file=$3 log=$4 known=0
    if "$BIN_DIR/blazzctl" gateways list --json 2>>"$log" | grep -q "\"id\": *\"$id\""; then
        known=1
    fi
    [ "$known" = 1 ] && [ -s "$key_file" ] && return 0
    rm -f "$key_file"
    if [ "$known" = 1 ]; then
        "$BIN_DIR/blazzctl" gateways rotate-key "$id" --overlap 0 --key-out "$key_file" >>"$log" 2>&1
    else
        "$BIN_DIR/blazzctl" gateways add "$id" --kind "$kind" --principal gateway-sim \
            --key-out "$key_file" >>"$log" 2>&1
    fi
}

# sim_gateway_ensure KEY_FILE LOG: the simulators' gateway "sim".
sim_gateway_ensure() {
    gateway_ensure sim webjs "$1" "$2"
}

# as_principal NAME: export the Kafka identity of NAME in this shell (call it
# in the subshell that execs the program).
as_principal() {
    local lines
    lines="$("$STACK_SCRIPT" principal "$1")" || return 1
    eval "$lines"
}

# principal_env NAME: the same variables as NAME=VALUE lines for env(1), the
# shell quotes around the DSN removed.
principal_env() {
    "$STACK_SCRIPT" principal "$1" | sed -e 's/^export //' -e "s/^\([A-Z_]*\)='\(.*\)'\$/\1=\2/"
}

# prefix_topics_ensure PREFIX LOG [ARG...]: the topics of PREFIX made
# (blazzctl topics ensure with ARGs: partitions, replicas, gateways) and,
# on a stack with Kafka credentials, their ACLs (ARCHITECTURE.md §9.1); the
# output in LOG. 1 (said on stderr) when either failed.
prefix_topics_ensure() {
    local prefix=$1 log=$2
    "$BIN_DIR/blazzctl" topics ensure --prefix "$prefix" "${@:3}" >"$log" 2>&1 || {
        echo "creating the topics of $prefix failed (see $log)" >&2
        return 1
    }
    [ -z "${BLAZZ_KAFKA_CREDENTIALS_DIR:-}" ] ||
        "$BIN_DIR/blazzctl" acls apply --prefix "$prefix" >>"$log" 2>&1 || {
        echo "creating the ACLs of $prefix failed (see $log)" >&2
        return 1
    }
}

# service_start NAME PREFIX LOG [VAR=VALUE...]: blazz-NAME started in the
# background as its own principals on the topics of PREFIX, logging
# warnings to LOG, with the variables given; its pid in STARTED_PID.
service_start() {
    local name=$1 prefix=$2 log=$3 identity
    mapfile -t identity < <(principal_env "$name")
    env "${identity[@]}" BLAZZ_KAFKA_TOPIC_PREFIX="$prefix" BLAZZ_LOG_LEVEL=warn "${@:4}" \
        "$BIN_DIR/blazz-$name" >"$log" 2>&1 </dev/null &
    STARTED_PID=$!
}

# service_ready ADMIN_PORT PID: waits until the service on ADMIN_PORT is
# ready enough (partitions assigned: a quiet webhook-dispatcher reports its
# database down until its first batch) or 60 s have passed; 1 when it
# exited meanwhile.
service_ready() {
    local body
    for _ in $(seq 1 300); do
        body=$(curl -sS "http://127.0.0.1:$1/readyz" 2>/dev/null || true)
        case "$body" in *'"ready":true'*|*'"name":"partitions","ok":true'*) return 0 ;; esac
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.2
    done
}
