# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/compose/engine.sh - a private podman for `make compose-test`
# (sourced by scripts/compose_test.sh; bash).
#
# Everything podman keeps lives under $CT_STATE: its configuration
# (containers.conf, storage.conf, registries.conf, pointed at through
# CONTAINERS_CONF / CONTAINERS_STORAGE_CONF / CONTAINERS_REGISTRIES_CONF),
# image and volume storage, run state, network definitions and the
# Docker-compatible API socket that docker-compose talks to. The host's own
# /etc/containers and /var/lib/containers are never touched, so tearing
# down is `podman system reset` on this root and removing the folder.
#
# What this kind of host needs (issue 23): the runc runtime, cgroupfs (no
# systemd), explicit ulimits for every container and build (podman's
# defaults exceed what setrlimit allows here: nofile no higher than the
# calling shell's hard limit, nproc at most 32768), events in a file.
# Without systemd nobody runs health checks: scripts/compose/health_ticker.sh
# does, through the API. Networks get a subnet pool of their own so they
# do not collide with a system podman's 10.88/10.89 defaults.
#
# The host state podman changes is recorded first and put back at the end:
# net.ipv4.ip_forward (netavark sets it), the NETAVARK iptables chains
# (netavark leaves them behind) and the few system paths podman 4.3 uses
# whatever it is configured with (netavark's run directory, the blob info
# cache), each unless it was there before. /run/netns (where netavark
# keeps the containers' network namespaces, a mount point) goes only when
# empty: other programs may put namespaces of their own there meanwhile.

CT_HOST_PATHS=(/run/containers /run/libpod /var/lib/containers /etc/containers/networks)
CT_HOST_SHARED_DIRS=(/run/netns)

ct_engine_write_config() {
    local nofile nproc
    nofile="$(ulimit -Hn)"
    nproc="$(ulimit -Hu)"
    if [ "$nofile" = unlimited ]; then nofile=1048576; fi
    # Measured on these hosts: any nproc above 32768 fails with EPERM in
    # runc's setrlimit, whatever the hard limit says.
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
    # Builds do not read default_ulimits: podman build gets them as options.
    CT_BUILD_ULIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
    mkdir -p "$CT_STATE"/{storage,run,tmp,networks}
    cat >"$CT_STATE/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[network]
network_backend = "netavark"
network_config_dir = "$CT_STATE/networks"
default_subnet = "10.213.0.0/24"
default_subnet_pools = [{"base" = "10.214.0.0/16", "size" = 24}]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$CT_STATE/events.log"
tmp_dir = "$CT_STATE/tmp"
volume_path = "$CT_STATE/storage/volumes"
static_dir = "$CT_STATE/storage/libpod"
EOF
    cat >"$CT_STATE/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$CT_STATE/storage"
runroot = "$CT_STATE/run"
EOF
    # Nothing is ever pulled (every build says --pull=never); short names
    # resolve to docker.io like Docker's, so "debian:bookworm" in a
    # Dockerfile finds the imported base image.
    cat >"$CT_STATE/registries.conf" <<EOF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
EOF
    export CONTAINERS_CONF="$CT_STATE/containers.conf"
    export CONTAINERS_STORAGE_CONF="$CT_STATE/storage.conf"
    export CONTAINERS_REGISTRIES_CONF="$CT_STATE/registries.conf"
    export DOCKER_HOST="unix://$CT_STATE/podman.sock"
}

# The iptables rules of every table and family, without counters.
ct_engine_firewall_rules() {
    local cmd table
    for cmd in iptables ip6tables; do
        command -v "$cmd" >/dev/null || continue
        for table in filter nat; do
            echo "## $cmd $table"
            "$cmd" -w -t "$table" -S 2>/dev/null || true
        done
    done
}

ct_engine_record_host() {
    cat /proc/sys/net/ipv4/ip_forward >"$CT_HOST/ip_forward"
    ct_engine_firewall_rules >"$CT_HOST/firewall.before"
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$CT_HOST/links.before"
    local p
    for p in "${CT_HOST_PATHS[@]}" "${CT_HOST_SHARED_DIRS[@]}"; do
        if [ -e "$p" ]; then
            echo "$p"
        fi
    done >"$CT_HOST/paths.before"
}

ct_engine_remove_created_paths() {
    local p
    for p in "${CT_HOST_PATHS[@]}"; do
        grep -qxF "$p" "$CT_HOST/paths.before" 2>/dev/null || rm -rf "$p"
    done
    for p in "${CT_HOST_SHARED_DIRS[@]}"; do
        if [ -d "$p" ] && ! grep -qxF "$p" "$CT_HOST/paths.before" 2>/dev/null \
            && [ -z "$(ls -A "$p")" ]; then
            # netavark, like `ip netns`, bind-mounts the folder onto itself.
            while mountpoint -q "$p"; do umount "$p" 2>/dev/null || break; done
            rmdir "$p" 2>/dev/null || true
        fi
    done
}

ct_engine_start_service() {
    # The containers are children of this service (through conmon), so
    # they inherit its niceness: the whole stack yields to other work. Its
    # working directory is the state folder: conmon drops files such as
    # `oom` (a container hit its memory limit) into the current directory.
    (cd "$CT_STATE" && exec nice -n 10 podman system service --time=0 "$DOCKER_HOST") \
        >"$CT_LOGS/podman-service.log" 2>&1 &
    echo $! >"$CT_STATE/service.pid"
    local i
    for _ in $(seq 1 100); do
        if curl -fsS --unix-socket "$CT_STATE/podman.sock" http://d/_ping >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "compose-test: podman's API service did not answer on $CT_STATE/podman.sock" >&2
    tail -n 20 "$CT_LOGS/podman-service.log" >&2
    return 1
}

ct_engine_start_health_ticker() {
    "$CT_REPO/scripts/compose/health_ticker.sh" "$CT_STATE/podman.sock" "$CT_STATE/ticker.stop" \
        >"$CT_LOGS/health-ticker.log" 2>&1 &
    echo $! >"$CT_STATE/ticker.pid"
}

ct_engine_stop_pid_file() {
    local file="$1" pid
    [ -f "$file" ] || return 0
    pid="$(cat "$file")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        # Our own child: wait reaps it (no zombie) and returns once it is gone.
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

# Delete the NETAVARK chains (and the jumps into them) that were not there
# before this run.
ct_engine_remove_netavark_chains() {
    local cmd table chain num
    for cmd in iptables ip6tables; do
        command -v "$cmd" >/dev/null || continue
        for table in filter nat; do
            if grep -A1000 "^## $cmd $table\$" "$CT_HOST/firewall.before" \
                | sed '1d;/^## /,$d' | grep -q NETAVARK; then
                continue
            fi
            # Jumps into NETAVARK chains from the built-in ones, by rule
            # number, last first so the numbers stay valid.
            for chain in INPUT FORWARD OUTPUT PREROUTING POSTROUTING; do
                for num in $("$cmd" -w -t "$table" -L "$chain" -n --line-numbers 2>/dev/null \
                             | awk '$2 ~ /^NETAVARK/ {print $1}' | sort -rn); do
                    "$cmd" -w -t "$table" -D "$chain" "$num" 2>/dev/null || true
                done
            done
            for chain in $("$cmd" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^NETAVARK/ {print $2}'); do
                "$cmd" -w -t "$table" -F "$chain" 2>/dev/null || true
            done
            for chain in $("$cmd" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^NETAVARK/ {print $2}'); do
                "$cmd" -w -t "$table" -X "$chain" 2>/dev/null || true
            done
        done
    done
}

# Stop everything this engine runs and remove its storage; put the host
# back. Safe to call twice, and after a partial start.
ct_engine_teardown() {
    touch "$CT_STATE/ticker.stop" 2>/dev/null || true
    ct_engine_stop_pid_file "$CT_STATE/ticker.pid"
    if [ -f "$CT_STATE/containers.conf" ]; then
        podman system reset --force >>"$CT_LOGS/podman-reset.log" 2>&1 || true
    fi
    ct_engine_stop_pid_file "$CT_STATE/service.pid"
    ct_engine_remove_netavark_chains
    if [ -f "$CT_HOST/ip_forward" ]; then
        cat "$CT_HOST/ip_forward" >/proc/sys/net/ipv4/ip_forward
        ct_engine_remove_created_paths
    fi
    # Overlay mounts left by a killed build would make rm fail: unmount
    # whatever is still mounted under the storage root first.
    local m
    for m in $(awk -v root="$CT_STATE/" 'index($2, root) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$CT_STATE"
}

# 0 when the host's firewall rules and network links are as recorded.
ct_engine_host_restored() {
    local ok=0
    ct_engine_firewall_rules >"$CT_HOST/firewall.after"
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$CT_HOST/links.after"
    if ! diff -q "$CT_HOST/firewall.before" "$CT_HOST/firewall.after" >/dev/null; then
        echo "firewall rules differ: $(diff "$CT_HOST/firewall.before" "$CT_HOST/firewall.after" | grep -c '^[<>]') lines"
        ok=1
    fi
    if ! diff -q "$CT_HOST/links.before" "$CT_HOST/links.after" >/dev/null; then
        echo "network links differ: $(diff "$CT_HOST/links.before" "$CT_HOST/links.after" | grep '^[<>]' | tr '\n' ' ')"
        ok=1
    fi
    if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != "$(cat "$CT_HOST/ip_forward")" ]; then
        echo "net.ipv4.ip_forward is $(cat /proc/sys/net/ipv4/ip_forward), was $(cat "$CT_HOST/ip_forward")"
        ok=1
    fi
    local p
    for p in "$CT_STATE" "${CT_HOST_PATHS[@]}" "${CT_HOST_SHARED_DIRS[@]}"; do
        if [ -e "$p" ] && ! grep -qxF "$p" "$CT_HOST/paths.before"; then
            echo "$p was left behind"
            ok=1
        fi
    done
    return "$ok"
}
