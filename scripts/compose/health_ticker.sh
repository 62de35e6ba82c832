#!/usr/bin/env bash
#
# scripts/compose/health_ticker.sh SOCKET STOP_FILE - run the containers'
# health checks, as systemd timers would, for a podman without systemd.
#
# Podman schedules HEALTHCHECKs with systemd timers; on a host without
# systemd nothing ever runs them, every container stays "starting" and
# compose's `condition: service_healthy` never passes. This loop asks
# podman's API (SOCKET) every second for the running containers, learns
# each one's health-check interval once, and runs the check
# (GET /libpod/containers/ID/healthcheck: podman executes it and records
# the result, retries and start period included) whenever the interval has
# passed. It stops when STOP_FILE appears (or on SIGTERM).

set -uo pipefail

SOCKET="$1"
STOP_FILE="$2"
API=http://d/v4.0.0/libpod

declare -A interval_s due_s

api() {
    curl -fsS --max-time 30 --unix-socket "$SOCKET" "$API$1"
}

# Seconds between checks of container $1 (Docker's default 30 s when the
# check sets none), 0 when it has no health check.
learn_interval() {
    local ns
    ns="$(api "/containers/$1/json" | jq -r '
        if ((.Config.Healthcheck.Test // []) | length > 0 and .[0] != "NONE")
        then (.Config.Healthcheck.Interval // 0) else -1 end' 2>/dev/null)" || ns=-1
    case "$ns" in
        ''|-1) interval_s[$1]=0 ;;
        0) interval_s[$1]=30 ;;
        *) interval_s[$1]=$(( ns / 1000000000 > 0 ? ns / 1000000000 : 1 )) ;;
    esac
}

trap 'exit 0' TERM INT
while [ ! -e "$STOP_FILE" ]; do
    now="$(date +%s)"
    ids="$(api /containers/json | jq -r '.[].Id' 2>/dev/null)" || ids=""
    for id in $ids; do
        [ -n "${interval_s[$id]:-}" ] || learn_interval "$id"
        [ "${interval_s[$id]}" -gt 0 ] || continue
        if [ "${due_s[$id]:-0}" -le "$now" ]; then
            due_s[$id]=$(( now + interval_s[$id] ))
            result="$(api "/containers/$id/healthcheck" 2>&1 | jq -r '.Status' 2>/dev/null)"
            echo "$(date +%T) ${id:0:12} ${result:-error}"
        fi
    done
    sleep 1
done
