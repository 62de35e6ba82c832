#!/usr/bin/env bash
#
# scripts/compose_test.sh - `make compose-test`: build every image and bring
# compose.yaml up for real, check the stack end to end, tear it all down.
#
# No Docker and no registry are needed (issue 23): a private rootful podman
# (scripts/compose/engine.sh) serves the Docker API that Debian's
# docker-compose 1.29 talks to; the base images come from debootstrap and
# the third-party images are test stand-ins built from Debian packages and
# the Kafka jars scripts/deps.sh fetched (scripts/compose/images.sh,
# tests/compose/standins/). compose.yaml is used unchanged, with
# tests/compose/smoke.yaml layered on top (a webhook receiver, private
# webhook targets allowed). The checks are in scripts/compose/checks.sh.
#
# Steps, each timed: dependencies, engine, base images, stand-in images,
# project images, `up`, the checks, `down -v`, engine teardown. Whatever
# happens, the trap tears everything down and puts the host back (see
# engine.sh); only the installed packages and the base-image tarballs in
# ~/.cache/blazz/compose stay. Logs, the secrets-free env of the run and the
# report stay in .run/compose-test/ (BLAZZ_COMPOSE_RUN_DIR). Needs root.
#
# Knobs: BLAZZ_COMPOSE_PROJECT (blazzsmoke), BLAZZ_CACHE_DIR (~/.cache/blazz),
# BLAZZ_DEBIAN_MIRROR, PROMETHEUS_PORT / GRAFANA_PORT (default: free ports
# picked at run time, so nothing collides with a stack already running).
# BLAZZ_COMPOSE_KEEP=1 leaves the stack and the engine running after the
# checks, to look around (it prints how); `scripts/compose_test.sh down`
# then tears them down.

set -uo pipefail

CT_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CT_RUN="${BLAZZ_COMPOSE_RUN_DIR:-$CT_REPO/.run/compose-test}"
CT_STATE="$CT_RUN/engine"
CT_LOGS="$CT_RUN/logs"
CT_HOST="$CT_RUN/host"
# shellcheck disable=SC2034  # read by the compose/ files sourced below
CT_CACHE="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/compose"
# shellcheck disable=SC2034
CT_KAFKA_LIBS="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/kafka-3.9.1/libs"
# shellcheck disable=SC2034
CT_S3PROXY_LIBS="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/s3proxy-2.6.0/libs"
CT_PROJECT="${BLAZZ_COMPOSE_PROJECT:-blazzsmoke}"
# shellcheck disable=SC2034
CT_PARTITIONS=6
CT_VERSION="$(git -C "$CT_REPO" describe --always --dirty 2>/dev/null || echo dev)"
CT_ENV_FILE="$CT_STATE/smoke.env"
CT_FAILED=0
CT_STARTED="$(date +%s%N)"
CT_UP=0

# shellcheck source=compose/engine.sh
# shellcheck source=compose/engine.sh
. "$CT_REPO/scripts/compose/engine.sh"
# shellcheck source=compose/images.sh
# shellcheck source=compose/images.sh
. "$CT_REPO/scripts/compose/images.sh"
# shellcheck source=compose/checks.sh
# shellcheck source=compose/checks.sh
. "$CT_REPO/scripts/compose/checks.sh"
# shellcheck source=lib/s3_tls.sh
. "$CT_REPO/scripts/lib/s3_tls.sh"

say() {
    echo "compose-test: $*"
}

# ct_step NAME COMMAND...: run and time one step; its line goes to the report.
ct_step() {
    local name="$1" start rc
    shift
    say "$name ..."
    start="$(date +%s%N)"
    "$@"
    rc=$?
    awk -v n="$name" -v a="$start" -v b="$(date +%s%N)" -v rc="$rc" \
        'BEGIN {printf "%-34s %7.1f s%s\n", n, (b - a) / 1e9, rc ? "  FAILED" : ""}' \
        | tee -a "$CT_RUN/steps.txt"
    return "$rc"
}

ct_random_hex() {
    head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'
}

ct_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ct_install_dependencies() {
    BLAZZ_DEPS=compose "$CT_REPO/scripts/deps.sh"
}

ct_start_engine() {
    ct_engine_write_config && ct_engine_record_host && ct_engine_start_service \
        && ct_engine_start_health_ticker
}

ct_base_images() {
    local how
    how="$(ct_make_base_tarballs)" || return 1
    ct_import_base_images || return 1
    say "base images $how; debian:bookworm $(ct_image_size_mb debian:bookworm) MB, debian:bookworm-slim $(ct_image_size_mb debian:bookworm-slim) MB"
}

# The .env of the run: `make secrets`'s (scripts/secrets.sh: fresh random
# secrets from .env.example), its ports, and the gateway key the checks
# sign with. Mode 600, in the engine's folder.
ct_write_env_file() {
    export CT_GATEWAY_KEY BLAZZ_SECRETS_KEYS
    CT_GATEWAY_KEY="$(ct_random_hex 32)"
    CT_PROMETHEUS_PORT="${PROMETHEUS_PORT:-$(ct_free_port)}"
    CT_GRAFANA_PORT="${GRAFANA_PORT:-$(ct_free_port)}"
    rm -f "$CT_ENV_FILE"
    "$CT_REPO/scripts/secrets.sh" "$CT_ENV_FILE" >/dev/null || return 1
    sed -i -e "s/^PROMETHEUS_PORT=.*/PROMETHEUS_PORT=$CT_PROMETHEUS_PORT/" \
        -e "s/^GRAFANA_PORT=.*/GRAFANA_PORT=$CT_GRAFANA_PORT/" "$CT_ENV_FILE"
    BLAZZ_SECRETS_KEYS="$(sed -n 's/^SECRETS_KEYS=//p' "$CT_ENV_FILE")"
    ct_write_offsite_settings
}

# The backups' offsite repository on the test S3 server (smoke.yaml's s3):
# its TLS certificate (DNS name s3) and keystore, S3Proxy's settings with
# a fresh identity, and the offsite.conf (docker/postgres/offsite.conf)
# naming it, in $CT_RUN/s3; the env file points compose at both. Readable
# by the containers' users (appuser, postgres): test keys, thrown away
# with the run.
ct_write_offsite_settings() {
    local dir="$CT_RUN/s3" identity credential
    rm -rf "$dir"
    s3_tls_make "$dir" s3 "DNS:s3" || return 1
    identity="blazz$(ct_random_hex 8)"
    credential="$(ct_random_hex 30)"
    cat >"$dir/s3proxy.properties" <<EOF
s3proxy.secure-endpoint=https://0.0.0.0:8443
s3proxy.keystore-path=/etc/s3proxy/keystore.p12
s3proxy.keystore-password=$(cat "$dir/keystore_password")
s3proxy.authorization=aws-v4
s3proxy.identity=$identity
s3proxy.credential=$credential
jclouds.provider=filesystem
jclouds.filesystem.basedir=/data
EOF
    cp "$CT_REPO/scripts/s3proxy/logback.xml" "$dir/" || return 1
    cat >"$CT_RUN/offsite.conf" <<EOF
[global]
repo2-type=s3
repo2-path=/blazz
repo2-s3-endpoint=s3
repo2-storage-port=8443
repo2-s3-uri-style=path
repo2-s3-bucket=blazz-backups
repo2-s3-region=us-east-1
repo2-s3-key=$identity
repo2-s3-key-secret=$credential
repo2-storage-ca-file=/etc/pgbackrest/offsite-ca.pem
repo2-retention-full-type=time
repo2-retention-full=30
EOF
    chmod 755 "$dir" && chmod 644 "$dir"/* "$CT_RUN/offsite.conf" || return 1
    sed -i "s|^BLAZZ_BACKUP_OFFSITE_CONF=.*|BLAZZ_BACKUP_OFFSITE_CONF=$CT_RUN/offsite.conf|" "$CT_ENV_FILE" || return 1
    grep -q "^BLAZZ_BACKUP_OFFSITE_CONF=$CT_RUN/offsite.conf" "$CT_ENV_FILE" || return 1
    echo "BLAZZ_TEST_S3_DIR=$dir" >>"$CT_ENV_FILE"
}

ct_compose_up() {
    ct_write_env_file || return 1
    CT_UP=1
    timeout 900 "${CT_COMPOSE[@]}" up -d --no-build >>"$CT_LOGS/compose.log" 2>&1 || {
        say "docker-compose up failed:"
        tail -n 20 "$CT_LOGS/compose.log" >&2
        return 1
    }
}

ct_run_checks() {
    # shellcheck disable=SC2034  # ct_result's clock (compose/checks.sh)
    CT_CHECKS_SINCE="$(date +%s%N)"
    ct_check_healthy
    ct_check_migrate
    ct_check_ingest_to_postgres
    ct_check_backups
    ct_check_webhook
    ct_check_crm_send
    ct_check_alert_rules
    ct_check_exporters
    ct_check_scale
    ct_check_dlq
    # one wait for Prometheus to find every service's replicas: its DNS
    # discovery looks every 30 s (docker/prometheus/prometheus.yml), and a
    # check of one chat-sync before the scale-out waited for it once more
    ct_check_prometheus 3 "Prometheus scrapes every service"
    ct_check_stop_start
    ct_check_restore
    ct_check_healthy "every service healthy at the end"
    ct_check_no_restarts
}

# Keep each container's log tail for a failed run (the report points here).
ct_save_container_logs() {
    local name
    mkdir -p "$CT_LOGS/containers"
    for name in $(podman ps -a --filter "label=com.docker.compose.project=$CT_PROJECT" --format '{{.Names}}'); do
        podman logs --tail 200 "$name" >"$CT_LOGS/containers/$name.log" 2>&1 || true
    done
}

# `stop` first, in the order `down` would stop them, so that a container's
# last lines (how its stop went) can be read before `down` removes it.
ct_compose_down() {
    [ "$CT_FAILED" -eq 0 ] || ct_save_container_logs
    local before
    before="$(wc -l <"$CT_LOGS/podman-service.log")"
    ct_compose stop >>"$CT_LOGS/compose.log" 2>&1
    ct_save_stop_logs "$before"
    ct_compose down -v --remove-orphans >>"$CT_LOGS/compose.log" 2>&1
    local rc=$?
    ct_check_torn_down
    ct_check_stopped_on_signal "$before"
    return "$rc"
}

ct_report() {
    local total
    total="$(awk -v a="$CT_STARTED" -v b="$(date +%s%N)" 'BEGIN {printf "%.0f", (b - a) / 1e9}')"
    {
        echo
        echo "== compose-test report ($CT_VERSION) =="
        echo "-- steps"
        cat "$CT_RUN/steps.txt" 2>/dev/null
        printf '%-34s %7s s\n' "total" "$total"
        echo "-- images (size as podman reports it, uncompressed)"
        cat "$CT_RUN/images.txt" 2>/dev/null
        echo "-- checks"
        cat "$CT_RUN/checks.txt" 2>/dev/null
        if [ "$CT_FAILED" -eq 0 ]; then
            echo "compose-test: all checks passed"
        else
            echo "compose-test: FAILED (logs: $CT_LOGS)"
        fi
    } | tee "$CT_RUN/report.txt"
}

ct_print_keep_help() {
    cat <<EOF
compose-test: BLAZZ_COMPOSE_KEEP=1: the stack is still running. To look around:
  export CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF \\
         CONTAINERS_REGISTRIES_CONF=$CONTAINERS_REGISTRIES_CONF DOCKER_HOST=$DOCKER_HOST
  podman ps -a; ${CT_COMPOSE[*]} ps
When done: $CT_REPO/scripts/compose_test.sh down
EOF
}

ct_teardown() {
    trap - EXIT INT TERM
    if [ "${BLAZZ_COMPOSE_KEEP:-0}" = 1 ]; then
        ct_report
        ct_print_keep_help
        [ "$CT_FAILED" -eq 0 ]
        exit $?
    fi
    if [ "$CT_UP" -eq 1 ]; then
        ct_step "compose down -v" ct_compose_down || CT_FAILED=1
    fi
    ct_step "engine teardown" ct_engine_teardown
    local problems
    if problems="$(ct_engine_host_restored)"; then
        ct_result PASS "host left as it was" "no containers, storage, links, firewall rules or sysctl left"
    else
        ct_result FAIL "host left as it was" "$(echo $problems)"
    fi
    ct_report
    [ "$CT_FAILED" -eq 0 ]
    exit $?
}

ct_build_all_images() {
    local name service
    for name in "${CT_STANDIN_ORDER[@]}"; do
        ct_step "image ${CT_STANDINS[$name]#docker.io/}" ct_build_standin "$name" || return 1
        printf '%-40s %5s MB  (test stand-in)\n' "${CT_STANDINS[$name]#docker.io/}" \
            "$(ct_image_size_mb "${CT_STANDINS[$name]}")" >>"$CT_RUN/images.txt"
    done
    ct_step "image blazz/test-s3" ct_build_test_s3 || return 1
    printf '%-40s %5s MB  (test only)\n' "blazz/test-s3:latest" \
        "$(ct_image_size_mb docker.io/blazz/test-s3:latest)" >>"$CT_RUN/images.txt"
    for name in "${CT_INFRA_ORDER[@]}"; do
        ct_step "image ${CT_INFRA[$name]#docker.io/}" ct_build_infra "$name" || return 1
        printf '%-40s %5s MB\n' "${CT_INFRA[$name]#docker.io/}" \
            "$(ct_image_size_mb "${CT_INFRA[$name]}")" >>"$CT_RUN/images.txt"
    done
    for service in blazzctl "${CT_SERVICES[@]}"; do
        ct_step "image blazz/$service" ct_build_project "$service" || return 1
        printf '%-40s %5s MB\n' "blazz/$service:latest" \
            "$(ct_image_size_mb "docker.io/blazz/$service:latest")" >>"$CT_RUN/images.txt"
    done
    echo "blazz/* = $(ct_image_breakdown docker.io/blazz/blazzctl:latest); the six images differ only in a symlink layer (their entrypoint)" \
        >>"$CT_RUN/images.txt"
}

# `compose_test.sh down`: tear down what a BLAZZ_COMPOSE_KEEP=1 run left.
ct_down_kept() {
    if [ ! -f "$CT_STATE/containers.conf" ]; then
        say "nothing to tear down in $CT_STATE"
        return 0
    fi
    ct_engine_write_config
    ct_compose down -v --remove-orphans >>"$CT_LOGS/compose.log" 2>&1
    ct_engine_teardown
    ct_engine_host_restored && say "torn down; the host is as it was"
}

main() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "compose-test: needs root (rootful podman, debootstrap); run: sudo make compose-test" >&2
        exit 2
    fi
    if [ "${1:-}" = down ]; then
        ct_down_kept
        exit $?
    fi
    # A run that was killed before its teardown left an engine behind.
    if [ -f "$CT_STATE/containers.conf" ]; then
        say "tearing down the engine a previous run left in $CT_STATE"
        mkdir -p "$CT_LOGS"
        ct_engine_write_config >/dev/null
        ct_engine_teardown
    fi
    rm -rf "$CT_RUN"
    mkdir -p "$CT_LOGS" "$CT_HOST" "$CT_STATE"
    : >"$CT_RUN/steps.txt"
    : >"$CT_RUN/checks.txt"
    : >"$CT_RUN/images.txt"
    trap ct_teardown EXIT
    trap 'CT_FAILED=1; exit 1' INT TERM

    ct_step "dependencies" ct_install_dependencies || { CT_FAILED=1; exit 1; }
    ct_step "engine (private podman)" ct_start_engine || { CT_FAILED=1; exit 1; }
    ct_step "base images" ct_base_images || { CT_FAILED=1; exit 1; }
    ct_build_all_images || { CT_FAILED=1; exit 1; }
    local project_images=()
    local s
    for s in blazzctl "${CT_SERVICES[@]}"; do
        project_images+=("docker.io/blazz/$s:latest")
    done
    ct_check_images "${project_images[@]}"
    ct_step "compose up (healthy deps, migrate)" ct_compose_up || { CT_FAILED=1; exit 1; }
    ct_step "checks" ct_run_checks
    exit 0
}

main "$@"
