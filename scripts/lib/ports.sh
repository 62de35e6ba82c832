# shellcheck shell=bash
#
# scripts/lib/ports.sh - the one way the scripts find a TCP port to listen
# on (sourced by chaos.sh, bench_system.sh, run.sh's demo and stack.sh's
# backup-verify).

# free_port FROM: the first port >= FROM on 127.0.0.1 that nobody answers on.
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}
