#!/usr/bin/env bash
#
# scripts/stack.sh - a real local PostgreSQL 15 and Apache Kafka 3.9.1
# (KRaft), no Docker, for development and tests: one broker and one
# database by default, or a cluster (three brokers, a hot standby).
#
#   stack.sh up | down | status | env | principal NAME (its Kafka identity and, for a
#                                                     service, its PostgreSQL role)
#   stack.sh start-pg | stop-pg | restart-pg | start-kafka | stop-kafka | restart-kafka
#   stack.sh start-s3 | stop-s3   the S3 server, when BLAZZ_S3_PORT names its port
#                                 (scripts/lib/s3_server.sh; test.sh sets it)
#   cluster mode only:
#   stack.sh kill-broker N | stop-broker N | start-broker N | busiest-broker
#   stack.sh kill-busiest-broker
#   stack.sh demote-primary | promote-standby | stop-old-primary | rebuild-standby | switchover
#   stack.sh migrate          apply db/migrations (a backup first when some are pending)
#   stack.sh backup-enable | backup [full|diff|incr] | restore TIME|latest |
#            backup-verify | backup-info | check-retention [DSN] |
#            restore-fence [DSN] [LABEL]
#                             pgBackRest (scripts/lib/pg_backup.sh)
#
# Everything lives in one state folder ($BLAZZ_STATE_DIR, default <repo>/.run):
#   pg/data        the cluster (initdb once; auth trust, loopback only; as
#                  root, under /tmp when postgres cannot reach the folder,
#                  named in pg-root)
#   pg/            also its unix socket and server.log
#   kafka/         server.properties, log4j.properties, data/, server.log, kafka.pid
#   kafka/credentials/<principal>.password   SCRAM passwords (mode 600)
#   stack.env      `export BLAZZ_PG_DSN=... BLAZZ_KAFKA_BROKERS=...` for clients (and
#                  BLAZZ_MEDIA_LOCAL_DIR=media/, the local media store of every service)
# `up` starts what is not running, waits until both answer, applies
# db/migrations, creates the topics and the Kafka ACLs (all idempotent), so
# running it twice is safe.
#
# Kafka authenticates every client (SASL/SCRAM-SHA-512) and authorizes it
# with ACLs generated from ARCHITECTURE.md §9.1 (`blazzctl acls apply`): one
# principal per service, blazzctl, the CRM, a gateway principal for each of
# $BLAZZ_STACK_GATEWAYS (default "sim a b": gateway-sim, gateway-a,
# gateway-b) and `admin`, the super user the script itself uses. Their
# passwords are generated at the first `up` and the users created when the
# storage is formatted (kafka-configs adds the ones a later `up` needs).
# stack.env gives a shell the blazzctl principal; `stack.sh principal NAME`
# prints the variables that make a program run as NAME. Options:
#   BLAZZ_KAFKA_PLAINTEXT=1  no authentication at all (the quick local run;
#                            clients are told kafka.security_protocol=plaintext)
#   BLAZZ_KAFKA_TLS=1        SASL over TLS: a broker certificate is made in
#                            kafka/tls/ by the stack's CA (tls/ca.pem), which
#                            clients verify with
#   BLAZZ_PG_TLS=1           PostgreSQL over TLS only: a server certificate
#                            by the same CA, every network connection without
#                            TLS refused (pg_hba hostnossl ... reject), and
#                            stack.env's DSN says sslmode=verify-full
# The mode is fixed when the storage is formatted; changing it needs a
# fresh kafka/ folder. `down` stops both and keeps all data; the tests rely on that to
# prove nothing is lost across restarts. The start-/stop- commands touch one
# server only and do not migrate.
#
# Cluster mode (ARCHITECTURE.md §6.3, docs/SCALING.md):
#   BLAZZ_KAFKA_BROKERS_COUNT=3  three KRaft nodes, each broker and controller
#       at once (combined roles: three JVMs instead of six on a 2-core
#       machine, and losing a node exercises a controller election too; a
#       production cluster splits the roles). Node N (1-based) listens on
#       BLAZZ_KAFKA_PORT+N-1 and its controller on
#       BLAZZ_KAFKA_CONTROLLER_PORT+N-1, state in kafka/ (node 1) and
#       kafka-N/. Topics get replication factor 3 and min.insync.replicas 2;
#       so do __consumer_offsets and __transaction_state (broker defaults).
#       Every node has the single broker's listeners and SASL settings and
#       is formatted with the same SCRAM users; kafka/credentials serves all.
#   BLAZZ_PG_STANDBY=1  a hot standby by streaming replication: pg_basebackup
#       of the primary (a replication slot keeps its WAL) into pg2/ on
#       BLAZZ_PG_STANDBY_PORT (BLAZZ_PG_PORT+1). stack.env's DSN lists both
#       hosts with target_session_attrs=read-write, so clients find the
#       primary whichever node it is. demote-primary makes the primary
#       refuse writes (default_transaction_read_only: every session meets
#       SQLSTATE 25006, and libpq no longer takes it for read-write), the
#       first step of a switchover that loses nothing once the standby has
#       replayed its WAL. promote-standby makes the standby the
#       primary; stop-old-primary stops the node that was primary before and
#       marks it demoted (up never starts a demoted node: two primaries
#       would split the data); rebuild-standby turns the demoted node into a
#       fresh standby of the current primary. switchover runs demote,
#       waits until the standby has replayed the primary's WAL, promotes
#       and stops the old primary: the four steps of a failover that loses
#       no acknowledged commit.
#   busiest-broker prints the node id that leads the most partitions;
#       kill-busiest-broker waits until every partition is fully replicated
#       again, then SIGKILLs that node ("Kafka node N killed"); start-kafka
#       starts whichever nodes are down.
#
# PostgreSQL refuses to run as root. As root the pg folder is handed to the
# `postgres` user and the server tools run through runuser; when that user
# cannot reach the state folder (a checkout under /root), the cluster goes
# to a folder under /tmp named after the state folder instead, rather than
# loosening permissions on someone's home.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${BLAZZ_STATE_DIR:-$REPO/.run}"
PG_PORT="${BLAZZ_PG_PORT:-55432}"
KAFKA_PORT="${BLAZZ_KAFKA_PORT:-59092}"
KAFKA_CONTROLLER_PORT="${BLAZZ_KAFKA_CONTROLLER_PORT:-59093}"
PARTITIONS="${BLAZZ_TOPIC_PARTITIONS:-6}"
PREFIX="${BLAZZ_TOPIC_PREFIX:-}"
BIN_DIR="${BLAZZ_BIN_DIR:-$REPO/build/bin}"
CACHE="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}"
KAFKA_LIBS="$CACHE/kafka-3.9.1/libs"
PG_BIN=/usr/lib/postgresql/15/bin
KAFKA_WAIT_S="${BLAZZ_KAFKA_WAIT_S:-90}"
KAFKA_NODES="${BLAZZ_KAFKA_BROKERS_COUNT:-1}"
PG_STANDBY="${BLAZZ_PG_STANDBY:-0}"
PG_STANDBY_PORT="${BLAZZ_PG_STANDBY_PORT:-$((PG_PORT + 1))}"
KAFKA_HEAP="${BLAZZ_KAFKA_HEAP:-512m}"
# Durability and the broker's collector, for stacks whose figures nobody
# reads (scripts/test.sh sets them): fsync off, another GC (a java flag).
PG_FSYNC="${BLAZZ_PG_FSYNC:-on}"
KAFKA_GC="${BLAZZ_KAFKA_GC:--XX:+UseZGC}"
case "$KAFKA_NODES" in 1|3) ;; *) echo "stack: BLAZZ_KAFKA_BROKERS_COUNT must be 1 or 3" >&2; exit 2 ;; esac
case "$PG_STANDBY" in 0|1) ;; *) echo "stack: BLAZZ_PG_STANDBY must be 0 or 1" >&2; exit 2 ;; esac
case "$PG_FSYNC" in on|off) ;; *) echo "stack: BLAZZ_PG_FSYNC must be on or off" >&2; exit 2 ;; esac
case "$KAFKA_GC" in -XX:+Use*GC) ;; *) echo "stack: BLAZZ_KAFKA_GC must be a java flag -XX:+Use<name>GC" >&2; exit 2 ;; esac
if [ "$KAFKA_NODES" -gt 1 ] && [ "$KAFKA_CONTROLLER_PORT" -lt $((KAFKA_PORT + KAFKA_NODES)) ] &&
   [ "$KAFKA_PORT" -lt $((KAFKA_CONTROLLER_PORT + KAFKA_NODES)) ]; then
    echo "stack: broker ports $KAFKA_PORT.. and controller ports $KAFKA_CONTROLLER_PORT.. overlap" \
         "for $KAFKA_NODES nodes: set BLAZZ_KAFKA_CONTROLLER_PORT apart" >&2
    exit 2
fi
KAFKA_PLAINTEXT="${BLAZZ_KAFKA_PLAINTEXT:-0}"
KAFKA_TLS="${BLAZZ_KAFKA_TLS:-0}"
PG_TLS="${BLAZZ_PG_TLS:-0}"
STACK_GATEWAYS="${BLAZZ_STACK_GATEWAYS:-sim a b}"

mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
# shellcheck source=lib/s3_tls.sh
source "$REPO/scripts/lib/s3_tls.sh"
# shellcheck source=lib/s3_server.sh
source "$REPO/scripts/lib/s3_server.sh"
BLAZZCTL="$BIN_DIR/blazzctl"
# Node 1's folder; its credentials and certificates serve every node.
KAFKA_DIR="$STATE/kafka"
CRED_DIR="$KAFKA_DIR/credentials"
TLS_DIR="$KAFKA_DIR/tls"
# The stack's certificate authority: it signs the broker's and PostgreSQL's
# certificates; clients verify both with ca.pem.
CA_DIR="$STATE/tls"
if [ "$PG_STANDBY" = 1 ]; then
    PG_DSN="postgresql://blazz@127.0.0.1:$PG_PORT,127.0.0.1:$PG_STANDBY_PORT/blazz?target_session_attrs=read-write"
else
    PG_DSN="postgresql://blazz@127.0.0.1:$PG_PORT/blazz"
fi
if [ "$PG_TLS" = 1 ]; then
    case "$PG_DSN" in *\?*) PG_DSN="$PG_DSN&" ;; *) PG_DSN="$PG_DSN?" ;; esac
    PG_DSN="${PG_DSN}sslmode=verify-full&sslrootcert=$CA_DIR/ca.pem"
fi
BROKERS="127.0.0.1:$KAFKA_PORT"
for ((n = 2; n <= KAFKA_NODES; n++)); do BROKERS="$BROKERS,127.0.0.1:$((KAFKA_PORT + n - 1))"; done

say() { echo "stack: $*"; }
die() { echo "stack: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# The sockets on 127.0.0.1:port that stop a server from binding it: a
# listener, and outgoing connections that hold the port as their source
# port (their peer is a listening port): the stack's ports may lie in the
# kernel's ephemeral range (ip_local_port_range). What a stopped server
# leaves behind on its own port (accepted connections in TIME-WAIT,
# FIN-WAIT-2, CLOSE-WAIT..., whose peers are clients' ephemeral ports) does
# not stop PostgreSQL or Kafka, which bind with SO_REUSEADDR as their
# accepted sockets did; waiting for those held every restart for a minute
# (FIN-WAIT-2 lasts tcp_fin_timeout when a client keeps its end open).
port_blockers() {
    local port=$1 listening state here peer
    ss -Htln "( sport = :$port )" 2>/dev/null || true
    listening=" $(ss -Htln 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u | tr '\n' ' ') "
    while read -r state _ _ here peer; do
        case "$listening" in *" ${peer##*:} "*) echo "$state $here $peer" ;; esac
    done < <(ss -Htan exclude listening "( sport = :$port )" 2>/dev/null || true)
}

wait_port_free() {
    local port=$1 what=$2 deadline=$((SECONDS + 90)) said=0
    while [ -n "$(port_blockers "$port")" ]; do
        if [ "$said" = 0 ]; then
            say "port $port ($what) is still used by a connection; waiting for it to close"
            said=1
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "port $port ($what) stayed in use for 90 s: $(port_blockers "$port" | head -n 3)"
        sleep 1
    done
}

# Run a PostgreSQL server tool as the user that owns the cluster.
as_pg() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Where the cluster lives: $STATE/pg, unless the postgres user (when we are
# root) cannot traverse $STATE.
pg_root() {
    if is_root && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
        echo "/tmp/blazz-pg-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)"
    else
        echo "$STATE/pg"
    fi
}

PG_ROOT="$(pg_root)"
# Node 1 is the cluster initdb made; node 2 (BLAZZ_PG_STANDBY=1) is built
# from whichever node is primary. Roles move on promotion: pg-roles says
# which node is primary (1 when absent).
PG_NODE_ROOT=("" "$PG_ROOT" "${PG_ROOT}2")
PG_NODE_PORT=("" "$PG_PORT" "$PG_STANDBY_PORT")
PG_NODES=$((PG_STANDBY + 1))
PG_ROLES="$STATE/pg-roles"
# shellcheck source=lib/ports.sh
source "$REPO/scripts/lib/ports.sh"
# shellcheck source=lib/restore_window.sh
source "$REPO/scripts/lib/restore_window.sh"
# shellcheck source=lib/backup_repos.sh
source "$REPO/scripts/lib/backup_repos.sh"
# shellcheck source=lib/pg_backup.sh
source "$REPO/scripts/lib/pg_backup.sh"

pg_data() { echo "${PG_NODE_ROOT[$1]}/data"; }
pg_log() { echo "${PG_NODE_ROOT[$1]}/server.log"; }
pg_demoted() { [ -f "${PG_NODE_ROOT[$1]}/demoted" ]; }

# ---- certificates -----------------------------------------------------------

# The CA, made once per state folder.
tls_ca_ensure() {
    [ -s "$CA_DIR/ca.pem" ] && return 0
    mkdir -p "$CA_DIR"
    chmod 755 "$CA_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=blazz local CA" \
        -keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.pem" 2>/dev/null
    chmod 600 "$CA_DIR/ca.key"
    chmod 644 "$CA_DIR/ca.pem"
    say "made the stack's CA in $CA_DIR"
}

# A server certificate for 127.0.0.1 signed by the CA: $1.key and $1.crt.
tls_server_cert() {
    local base=$1
    tls_ca_ensure
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$base.key" -out "$base.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$base.san"
    openssl x509 -req -in "$base.csr" -CA "$CA_DIR/ca.pem" -CAkey "$CA_DIR/ca.key" \
        -CAcreateserial -days 3650 -extfile "$base.san" -out "$base.crt" 2>/dev/null
    rm -f "$base.csr" "$base.san"
    chmod 600 "$base.key"
}

# ---- PostgreSQL -------------------------------------------------------------

pg_node_running() {
    [ -f "$(pg_data "$1")/PG_VERSION" ] &&
        as_pg "$PG_BIN/pg_ctl" -D "$(pg_data "$1")" status >/dev/null 2>&1
}

# The node that takes writes (by the last promotion, else node 1).
pg_primary() {
    local p=1
    [ -f "$PG_ROLES" ] && p="$(sed -n 's/^primary=//p' "$PG_ROLES")"
    echo "${p:-1}"
}

pg_psql() {
    local node=$1
    shift
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PG_NODE_PORT[$node]}" -U postgres "$@"
}

pg_prepare_root() {
    local root="${PG_NODE_ROOT[$1]}"
    mkdir -p "$root"
    if is_root; then
        chown postgres:postgres "$root"
        chmod 0755 "$root"
    fi
}

pg_init_once() {
    local n
    for ((n = 1; n <= PG_NODES; n++)); do
        [ -f "$(pg_data "$n")/PG_VERSION" ] && return 0
    done
    pg_prepare_root 1
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 not found in $PG_BIN (run scripts/deps.sh)"
    if ! as_pg "$PG_BIN/initdb" -D "$(pg_data 1)" -U postgres --auth=trust --encoding=UTF8 \
            --locale=C >"$PG_ROOT/initdb.log" 2>&1; then
        tail -n 20 "$PG_ROOT/initdb.log" >&2
        die "initdb into $(pg_data 1) failed"
    fi
    echo "include_if_exists = 'blazz.conf'" >>"$(pg_data 1)/postgresql.conf"
    say "initialized PostgreSQL cluster in $(pg_data 1)"
}

# Settings are rewritten at every start so a changed port takes effect (a
# standby got its primary's file from pg_basebackup). Replication is
# asynchronous: commits do not wait for the standby, so a primary lost
# before streaming its last commits loses them, whole (ARCHITECTURE.md
# §3.6); the primary keeps the WAL the standby has not received through a
# replication slot.
pg_write_conf() {
    local node=$1
    pg_write_tls "$node"
    as_pg tee "$(pg_data "$node")/blazz.conf" >/dev/null <<EOF
# Written by scripts/stack.sh at every start; edits are lost.
listen_addresses = '127.0.0.1'
port = ${PG_NODE_PORT[$node]}
unix_socket_directories = '${PG_NODE_ROOT[$node]}'
max_connections = ${BLAZZ_PG_MAX_CONNECTIONS:-200}
shared_buffers = 256MB
fsync = $PG_FSYNC
synchronous_commit = on
full_page_writes = on
log_min_messages = warning
wal_level = replica
max_wal_senders = 10
hot_standby = on
$(pg_tls_settings "$node")
$(if [ "$node" = 1 ]; then bk_server_settings; fi)
EOF
}

# BLAZZ_PG_TLS=1: the node's certificate (made once, in its folder, the
# server's own) and pg_hba.conf refusing every network connection without
# TLS, replication included; rewritten at every start, like blazz.conf.
pg_write_tls() {
    local node=$1 root="${PG_NODE_ROOT[$1]}" hba
    hba="$(pg_data "$node")/pg_hba.conf"
    as_pg sed -i '/# blazz-tls$/d' "$hba"
    [ "$PG_TLS" = 1 ] || return 0
    if [ ! -s "$root/server.crt" ]; then
        tls_server_cert "$root/server"
        if is_root; then chown postgres:postgres "$root/server.key" "$root/server.crt"; fi
    fi
    as_pg sed -i -e '1i hostnossl all all 0.0.0.0/0 reject # blazz-tls' \
        -e '1i hostnossl all all ::/0 reject # blazz-tls' \
        -e '1i hostnossl replication all 0.0.0.0/0 reject # blazz-tls' "$hba"
}

pg_tls_settings() {
    local root="${PG_NODE_ROOT[$1]}"
    if [ "$PG_TLS" != 1 ]; then echo "ssl = off"; return; fi
    printf "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n" "$root/server.crt" \
        "$root/server.key"
}

pg_create_role_and_db() {
    local node
    node="$(pg_primary)"
    if [ "$(pg_psql "$node" -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'blazz'")" != 1 ]; then
        pg_psql "$node" -d postgres -c "CREATE ROLE blazz LOGIN SUPERUSER"
    fi
    if [ "$(pg_psql "$node" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'blazz'")" != 1 ]; then
        pg_psql "$node" -d postgres -c "CREATE DATABASE blazz OWNER blazz"
    fi
}

pg_start_node() {
    local node=$1
    pg_node_running "$node" && return 0
    wait_port_free "${PG_NODE_PORT[$node]}" "PostgreSQL node $node"
    pg_prepare_root "$node"
    pg_write_conf "$node"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$(pg_data "$node")" -l "$(pg_log "$node")" -w -t 60 start \
            >/dev/null 2>&1 8>&-; then
        tail -n 20 "$(pg_log "$node")" >&2 || true
        die "PostgreSQL did not start on port ${PG_NODE_PORT[$node]} (log: $(pg_log "$node"))"
    fi
}

# A fresh hot standby of the primary in node's folder: a base backup that
# also writes standby.signal and primary_conninfo (-R), with a replication
# slot so the primary keeps the WAL it has not streamed yet.
pg_build_standby() {
    local node=$1 primary slot
    primary="$(pg_primary)"
    slot="blazz_node$node"
    pg_node_running "$primary" || die "cannot build a standby: primary node $primary is not running"
    pg_psql "$primary" -d postgres -tAc "SELECT pg_drop_replication_slot(slot_name)
        FROM pg_replication_slots WHERE slot_name = '$slot'" >/dev/null
    rm -rf "$(pg_data "$node")"
    pg_prepare_root "$node"
    if ! as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "${PG_NODE_PORT[$primary]}" -U postgres \
            -D "$(pg_data "$node")" -R -X stream -C -S "$slot" --checkpoint=fast \
            >"${PG_NODE_ROOT[$node]}/basebackup.log" 2>&1; then
        cat "${PG_NODE_ROOT[$node]}/basebackup.log" >&2
        die "pg_basebackup of node $primary into $(pg_data "$node") failed"
    fi
    rm -f "${PG_NODE_ROOT[$node]}/demoted"
    say "built standby node $node (port ${PG_NODE_PORT[$node]}) from primary node $primary"
}

# primary, standby, demoted or stopped.
pg_role() {
    local node=$1
    if pg_demoted "$node"; then echo demoted; return; fi
    pg_node_running "$node" || { echo stopped; return; }
    if [ "$(pg_psql "$node" -d postgres -tAc "SELECT pg_is_in_recovery()" 2>/dev/null)" = t ]; then
        echo standby
    else
        echo primary
    fi
}

# A cluster outside the state folder (see pg_root) is the folder's only
# while the folder names it in pg-root. A folder removed and made again
# (rm -rf .run, a test's fresh state) leaves the old cluster under /tmp:
# another life's rows, maybe a node demoted by a switchover that `up` would
# refuse to start. That is stopped and removed, not reused. A folder from
# before pg-root existed that holds a stack (stack.env) keeps its cluster.
pg_claim_external_root() {
    local node
    [ "$PG_ROOT" != "$STATE/pg" ] && [ ! -f "$STATE/pg-root" ] || return 0
    if [ ! -f "$STATE/stack.env" ]; then
        for ((node = 1; node <= 2; node++)); do
            pg_stop_node "$node" immediate || true
            rm -rf "${PG_NODE_ROOT[$node]}"
        done
    fi
    echo "$PG_ROOT" >"$STATE/pg-root"
}

start_pg() {
    pg_claim_external_root
    if [ "$PG_NODES" = 1 ] && pg_node_running 1; then
        say "PostgreSQL already running on 127.0.0.1:$PG_PORT"
        return 0
    fi
    pg_init_once
    local node
    for ((node = 1; node <= PG_NODES; node++)); do
        if [ -f "$(pg_data "$node")/PG_VERSION" ] && ! pg_demoted "$node"; then
            pg_start_node "$node"
        fi
    done
    pg_create_role_and_db
    for ((node = 2; node <= PG_NODES; node++)); do
        if [ ! -f "$(pg_data "$node")/PG_VERSION" ]; then
            pg_build_standby "$node"
            pg_start_node "$node"
        fi
    done
    for ((node = 1; node <= PG_NODES; node++)); do
        pg_node_running "$node" && say "PostgreSQL node $node running on" \
            "127.0.0.1:${PG_NODE_PORT[$node]} ($(pg_role "$node"), data: $(pg_data "$node"))"
    done
    return 0
}

pg_stop_node() {
    local node=$1 mode=${2:-fast}
    pg_node_running "$node" || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$(pg_data "$node")" -m "$mode" -w -t 60 stop >/dev/null
}

stop_pg() {
    local node stopped=0
    for ((node = 1; node <= 2; node++)); do
        pg_node_running "$node" || continue
        pg_stop_node "$node"
        stopped=1
    done
    if [ "$stopped" = 1 ]; then say "PostgreSQL stopped"; else say "PostgreSQL not running"; fi
}

need_standby_mode() {
    [ "$PG_STANDBY" = 1 ] || die "$1 needs BLAZZ_PG_STANDBY=1"
}

# Make the standby the primary (pg_ctl promote waits until it takes
# writes). The old primary keeps running, writable, until stop-old-primary:
# the two steps of a failover, so that clients can be seen following it.
# Read-only only binds transactions that begin after the reload, so the
# client sessions are then ended: a transaction begun before cannot commit
# afterwards, and its client sees a lost connection (transient, retried on
# the new primary) instead.
demote_primary() {
    need_standby_mode demote-primary
    local node
    node="$(pg_primary)"
    pg_psql "$node" -d postgres -c "ALTER SYSTEM SET default_transaction_read_only = on" \
        -c "SELECT pg_reload_conf()" \
        -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" \
        >/dev/null || die "demoting node $node failed"
    say "node $node (port ${PG_NODE_PORT[$node]}) refuses writes now"
}

# Wait until the standby has replayed all the WAL the (demoted) primary
# wrote: from then on promoting it loses nothing.
wait_standby_caught_up() {
    local old new target deadline=$((SECONDS + 120))
    old="$(pg_primary)"
    new=$((3 - old))
    target="$(pg_psql "$old" -d postgres -tAc "SELECT pg_current_wal_lsn()")" ||
        die "reading node $old's WAL position failed"
    until [ "$(pg_psql "$new" -d postgres -tAc "SELECT pg_last_wal_replay_lsn() >= '$target'")" = t ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "standby node $new did not replay up to $target within 120 s"
        sleep 0.2
    done
    say "standby node $new has replayed node $old's WAL up to $target"
}

# A switchover that loses no commit: demote the primary, let the standby
# catch up, promote it, stop the old primary. Clients follow through the
# multi-host DSN.
switchover() {
    need_standby_mode switchover
    demote_primary
    wait_standby_caught_up
    promote_standby
    stop_old_primary
}

promote_standby() {
    need_standby_mode promote-standby
    local old new
    old="$(pg_primary)"
    new=$((3 - old))
    [ "$(pg_role "$new")" = standby ] || die "node $new is not a running standby (it is $(pg_role "$new"))"
    as_pg "$PG_BIN/pg_ctl" -D "$(pg_data "$new")" -w -t 60 promote >/dev/null ||
        die "promoting node $new failed (log: $(pg_log "$new"))"
    printf 'primary=%s\nold_primary=%s\n' "$new" "$old" >"$PG_ROLES"
    say "promoted node $new (port ${PG_NODE_PORT[$new]}) to primary; node $old was primary"
}

stop_old_primary() {
    need_standby_mode stop-old-primary
    local old
    old="$(sed -n 's/^old_primary=//p' "$PG_ROLES" 2>/dev/null)"
    [ -n "$old" ] || die "no promotion recorded: promote-standby first"
    pg_stop_node "$old"
    touch "${PG_NODE_ROOT[$old]}/demoted"
    say "stopped the old primary, node $old (port ${PG_NODE_PORT[$old]}); it stays down until rebuild-standby"
}

rebuild_standby() {
    need_standby_mode rebuild-standby
    local node
    node=$((3 - $(pg_primary)))
    pg_stop_node "$node" immediate
    pg_build_standby "$node"
    pg_start_node "$node"
    sed -i '/^old_primary=/d' "$PG_ROLES" 2>/dev/null || true
    say "node $node is a standby of node $(pg_primary) again"
}

# ---- Kafka ------------------------------------------------------------------

kafka_dir() { if [ "$1" = 1 ]; then echo "$STATE/kafka"; else echo "$STATE/kafka-$1"; fi; }
kafka_node_port() { echo $((KAFKA_PORT + $1 - 1)); }
kafka_controller_port() { echo $((KAFKA_CONTROLLER_PORT + $1 - 1)); }

kafka_node_pid() {
    local dir pid
    dir="$(kafka_dir "$1")"
    [ -f "$dir/kafka.pid" ] || return 1
    pid="$(cat "$dir/kafka.pid")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: it must still be our broker.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $dir/server.properties" || return 1
    echo "$pid"
}

kafka_node_running() { kafka_node_pid "$1" >/dev/null; }

kafka_running() {
    local n
    for ((n = 1; n <= KAFKA_NODES; n++)); do kafka_node_running "$n" || return 1; done
}

need_node() {
    case "${1:-}" in ''|*[!0-9]*) die "name a broker: 1..$KAFKA_NODES" ;; esac
    [ "$1" -ge 1 ] && [ "$1" -le "$KAFKA_NODES" ] || die "no broker $1: this stack has $KAFKA_NODES"
}

# Replication of a cluster: every record on three brokers, two of them in
# sync before a write is acknowledged (acks=all), so one broker may be lost
# without losing or refusing a write; the internal topics
# (__consumer_offsets, __transaction_state) likewise. A dead broker is
# fenced, and its partitions led elsewhere, after broker.session.timeout.ms
# (6 s rather than 9 s); leadership goes back to the preferred replicas
# within 30 s of its return.
kafka_replication_properties() {
    if [ "$KAFKA_NODES" = 1 ]; then
        cat <<EOF
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
EOF
    else
        cat <<EOF
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
unclean.leader.election.enable=false
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
leader.imbalance.check.interval.seconds=30
EOF
    fi
}

kafka_voters() {
    local n voters=""
    for ((n = 1; n <= KAFKA_NODES; n++)); do
        voters="$voters${voters:+,}$n@127.0.0.1:$(kafka_controller_port "$n")"
    done
    echo "$voters"
}

kafka_write_config() {
    local node=$1 dir port cport
    dir="$(kafka_dir "$node")"
    port="$(kafka_node_port "$node")"
    cport="$(kafka_controller_port "$node")"
    mkdir -p "$dir/data"
    # mode 600: the broker's JAAS lines below carry the admin password
    (umask 077; : >"$dir/server.properties")
    chmod 600 "$dir/server.properties"
    {
        cat <<EOF
# Written by scripts/stack.sh at every start; edits are lost.
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$(kafka_voters)
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=$PARTITIONS
auto.create.topics.enable=false
offsets.topic.num.partitions=6
transaction.state.log.num.partitions=6
group.initial.rebalance.delay.ms=0
EOF
        kafka_replication_properties
        kafka_auth_properties "$port" "$cport"
    } >"$dir/server.properties"
    cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF
}

# A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, not
# starting with '-' (which command lines would take for an option).
new_cluster_id() {
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
        [ "${id:0:1}" != "-" ] && { echo "$id"; return; }
    done
}

# Every node of one cluster is formatted with the same id.
kafka_cluster_id() {
    [ -s "$STATE/kafka-cluster.id" ] || new_cluster_id >"$STATE/kafka-cluster.id"
    cat "$STATE/kafka-cluster.id"
}

kafka_format_once() {
    local dir
    dir="$(kafka_dir "$1")"
    [ -f "$dir/data/meta.properties" ] && return 0
    local scram=()
    mapfile -t scram < <(kafka_scram_format_args)
    if ! kafka_java_tool kafka.tools.StorageTool format -t "$(kafka_cluster_id)" \
            -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1; then
        cat "$dir/format.log" >&2
        die "formatting Kafka storage in $dir/data failed"
    fi
    kafka_users_created
    say "formatted Kafka storage in $dir/data"
}

need_blazzctl() {
    [ -x "$BLAZZCTL" ] || die "$BLAZZCTL not found: build it first (make binaries, or set BLAZZ_BIN_DIR)"
}

# The cluster as `blazzctl topics brokers --json` describes it, waiting at
# most $1 ms: its live brokers, busiest leader first, and how many
# partitions are under-replicated or without a leader. Prints nothing when
# no broker answers.
cluster_json() {
    command -v jq >/dev/null || die "jq reads blazzctl's answers: install it (scripts/deps.sh)"
    as_principal admin "$BLAZZCTL" topics brokers --brokers "$BROKERS" --timeout "$1" --json
}

# How many live brokers the cluster reports (0 when it does not answer).
kafka_live_brokers() {
    local n
    n="$({ cluster_json 3000 2>/dev/null || true; } | jq -r '.brokers | length' 2>/dev/null)"
    echo "${n:-0}"
}

# Wait until the given nodes have exec'd java and the cluster answers, with
# every running node among its live brokers.
kafka_wait_ready() {
    local deadline=$((SECONDS + KAFKA_WAIT_S)) n running
    while [ "$SECONDS" -lt "$deadline" ]; do
        # First wait: until the background child has exec'd java, its
        # cmdline is still this script's and kafka_node_running says no.
        sleep 1
        for n in "$@"; do
            if ! kafka_node_running "$n"; then
                tail -n 30 "$(kafka_dir "$n")/server.log" "$(kafka_dir "$n")/stdout.log" >&2 2>/dev/null || true
                die "Kafka node $n exited during startup (log: $(kafka_dir "$n")/server.log)"
            fi
        done
        if [ "$KAFKA_NODES" = 1 ]; then
            as_principal admin "$BLAZZCTL" topics list --brokers "$BROKERS" --timeout 3000 >/dev/null 2>&1 &&
                return 0
            continue
        fi
        running=0
        for ((n = 1; n <= KAFKA_NODES; n++)); do
            if kafka_node_running "$n"; then running=$((running + 1)); fi
        done
        [ "$(kafka_live_brokers)" -ge "$running" ] && return 0
    done
    tail -n 30 "$(kafka_dir "$1")/server.log" >&2 2>/dev/null || true
    die "Kafka did not answer on $BROKERS within ${KAFKA_WAIT_S}s (log: $(kafka_dir "$1")/server.log)"
}

kafka_start_node() {
    local node=$1 dir
    dir="$(kafka_dir "$node")"
    [ -f "$KAFKA_LIBS/kafka_2.13-3.9.1.jar" ] || die "Kafka jars missing in $KAFKA_LIBS (run scripts/deps.sh)"
    wait_port_free "$(kafka_node_port "$node")" "Kafka node $node"
    wait_port_free "$(kafka_controller_port "$node")" "Kafka controller $node"
    kafka_auth_prepare
    kafka_write_config "$node"
    kafka_format_once "$node"
    # ZGC, with the modest fixed heap FIELD-NOTES asks for on 2 cores. G1
    # (Kafka's own default, 20 ms pause goal) stopped the broker for 10-40 ms
    # every few seconds under ingest's benchmark load (gc.log: median 10-12
    # ms, p90 21-23 ms); each stop delays every request in flight, which put
    # ingest's HTTP p99 at 8-16 ms. A 5 ms goal only made the pauses more
    # frequent (p50 8.6 ms, p99 worse). ZGC's pauses stay under a
    # millisecond; raw produce+consume is unchanged. gc.log shows its cycles.
    # The test suite, which measures no latency, picks ParallelGC (test.sh).
    setsid nohup java "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" "$KAFKA_GC" \
        -Djava.awt.headless=true \
        -Xlog:gc:file="$dir/gc.log":uptime,level:filecount=2,filesize=10m \
        -Dlog4j.configuration="file:$dir/log4j.properties" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" \
        >>"$dir/stdout.log" 2>&1 </dev/null 8>&- &
    echo $! >"$dir/kafka.pid"
}

start_kafka() {
    need_blazzctl
    if kafka_running; then
        say "Kafka already running on $BROKERS"
        return 0
    fi
    local n
    local -a started=()
    for ((n = 1; n <= KAFKA_NODES; n++)); do
        kafka_node_running "$n" && continue
        kafka_start_node "$n"
        started+=("$n")
    done
    kafka_wait_ready "${started[@]}"
    for n in "${started[@]}"; do
        say "Kafka node $n running on 127.0.0.1:$(kafka_node_port "$n")" \
            "(pid $(cat "$(kafka_dir "$n")/kafka.pid"), data: $(kafka_dir "$n")/data)"
    done
}

start_broker() {
    need_blazzctl
    need_node "${1:-}"
    if kafka_node_running "$1"; then
        say "Kafka node $1 already running"
        return 0
    fi
    kafka_start_node "$1"
    kafka_wait_ready "$1"
    say "Kafka node $1 running on 127.0.0.1:$(kafka_node_port "$1") (pid $(cat "$(kafka_dir "$1")/kafka.pid"))"
}

# Signal the given nodes together, then wait for them: TERM waits up to 30 s
# and then kills; KILL is a crash. Stopping a cluster node by node would
# leave the last ones unable to finish a controlled shutdown without a
# controller quorum. Returns 1 when none was running.
kafka_signal_nodes() {
    local signal=$1 n pid
    shift
    local -a pids=()
    for n in "$@"; do
        if pid="$(kafka_node_pid "$n")"; then
            kill "-$signal" "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            say "Kafka (pid $pid) did not stop within 30s: killed"
        fi
    done
    for n in "$@"; do rm -f "$(kafka_dir "$n")/kafka.pid"; done
    [ "${#pids[@]}" -gt 0 ]
}

stop_kafka() {
    local n
    local -a nodes=()
    for ((n = 1; n <= 3; n++)); do [ -d "$(kafka_dir "$n")" ] && nodes+=("$n"); done
    if [ "${#nodes[@]}" -gt 0 ] && kafka_signal_nodes TERM "${nodes[@]}"; then
        say "Kafka stopped"
    else
        say "Kafka not running"
    fi
}

kill_broker() {
    need_node "${1:-}"
    if kafka_signal_nodes KILL "$1"; then say "Kafka node $1 killed"; else say "Kafka node $1 not running"; fi
}

stop_broker() {
    need_node "${1:-}"
    if kafka_signal_nodes TERM "$1"; then say "Kafka node $1 stopped"; else say "Kafka node $1 not running"; fi
}

# The node id of the live broker that leads the most partitions.
busiest_broker() {
    need_blazzctl
    cluster_json 10000 | jq -er '.brokers[0].id' ||
        die "no live broker answered on $BROKERS"
}

# Wait (up to 180 s) until every broker is live and every partition has
# its three replicas in sync: only then can one more broker die without a
# partition falling under min.insync.replicas.
kafka_wait_replicated() {
    local deadline=$((SECONDS + 180)) summary=""
    while [ "$SECONDS" -lt "$deadline" ]; do
        summary="$({ cluster_json 5000 2>/dev/null || true; } | jq -r \
            '"\(.brokers | length) live broker(s), \(.under_replicated) under-replicated, \(.leaderless) without a leader"' \
            2>/dev/null)"
        [ "$summary" != "$KAFKA_NODES live broker(s), 0 under-replicated, 0 without a leader" ] || return 0
        sleep 1
    done
    die "the cluster did not get back to full replication within 180 s (${summary:-no answer})"
}

# SIGKILL the broker that leads the most partitions, once the cluster is
# fully replicated (so that a second loss is still survivable).
kill_busiest_broker() {
    local node
    kafka_wait_replicated
    node="$(busiest_broker)"
    kill_broker "$node"
}

# ---- Kafka authentication (SASL/SCRAM, ACLs) ---------------------------------

kafka_auth_on() { [ "$KAFKA_PLAINTEXT" != 1 ]; }

kafka_client_protocol() {
    if ! kafka_auth_on; then echo plaintext
    elif [ "$KAFKA_TLS" = 1 ]; then echo sasl_ssl
    else echo sasl_plaintext; fi
}

# Every SCRAM user of the stack: admin, the matrix's fixed principals, one
# per stack gateway.
kafka_principals() {
    echo admin
    "$BLAZZCTL" acls principals
    local g
    for g in $STACK_GATEWAYS; do echo "gateway-$g"; done
}

# --gateway arguments for blazzctl: the stack's gateways' topics and ACLs.
kafka_gateway_args() {
    local g
    for g in $STACK_GATEWAYS; do printf -- '--gateway %s ' "$g"; done
}

password_of() { cat "$CRED_DIR/$1.password"; }

kafka_credentials_ensure() {
    mkdir -p "$CRED_DIR"
    chmod 700 "$CRED_DIR"
    local p
    for p in $(kafka_principals); do
        [ -s "$CRED_DIR/$p.password" ] && continue
        (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$CRED_DIR/$p.password")
    done
}

kafka_tls_ensure() {
    [ "$KAFKA_TLS" = 1 ] || return 0
    [ -s "$TLS_DIR/broker.pem" ] && return 0
    mkdir -p "$TLS_DIR"
    chmod 700 "$TLS_DIR"
    tls_server_cert "$TLS_DIR/broker"
    openssl pkcs8 -topk8 -nocrypt -in "$TLS_DIR/broker.key" -out "$TLS_DIR/broker.pk8"
    cat "$TLS_DIR/broker.pk8" "$TLS_DIR/broker.crt" >"$TLS_DIR/broker.pem"
    say "made a broker certificate in $TLS_DIR"
}

# A store formatted before authentication has no SCRAM users, and the
# broker cannot add the first one without one: refuse rather than start a
# broker nobody can log in to. Then passwords (and certificates) for every
# user the stack needs.
kafka_auth_prepare() {
    if [ -f "$KAFKA_DIR/data/meta.properties" ]; then
        if kafka_auth_on && [ ! -f "$CRED_DIR/.users" ]; then
            die "$KAFKA_DIR/data was formatted without authentication: remove $KAFKA_DIR (its topics are lost) or run with BLAZZ_KAFKA_PLAINTEXT=1"
        fi
        if ! kafka_auth_on && [ -f "$CRED_DIR/.users" ]; then
            die "$KAFKA_DIR/data was formatted with authentication: unset BLAZZ_KAFKA_PLAINTEXT or remove $KAFKA_DIR"
        fi
    fi
    kafka_auth_on || return 0
    kafka_credentials_ensure
    kafka_tls_ensure
}

# Appended to a node's server.properties ($1 its port, $2 its controller
# port): later keys win, so the listener lines here replace the PLAINTEXT
# ones written above them. The controller listener
# authenticates with PLAIN against a static user (SCRAM users live in the
# metadata the controller serves, so they cannot guard its own door).
kafka_auth_properties() {
    kafka_auth_on || return 0
    local name=SASL_PLAINTEXT admin_pw
    [ "$KAFKA_TLS" = 1 ] && name=SASL_SSL
    admin_pw="$(password_of admin)"
    cat <<EOF
# authentication and authorization (kafka_auth_properties)
listeners=$name://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
advertised.listeners=$name://127.0.0.1:$1
inter.broker.listener.name=$name
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,$name:$name
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.${name,,}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
EOF
    if [ "$KAFKA_TLS" = 1 ]; then
        cat <<EOF
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CA_DIR/ca.pem
EOF
    fi
}

# --add-scram arguments for StorageTool format: every user of the stack.
kafka_scram_format_args() {
    kafka_auth_on || return 0
    local p
    for p in $(kafka_principals); do
        printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$p" "$(password_of "$p")"
    done
}

# After a format with --add-scram: remember who exists.
kafka_users_created() {
    kafka_auth_on || return 0
    kafka_principals >"$CRED_DIR/.users"
}

# A Java client configuration for Kafka's own tools, as admin.
kafka_admin_client_properties() {
    local f="$CRED_DIR/admin.client.properties"
    (
        umask 077
        cat >"$f" <<EOF
security.protocol=$(kafka_client_protocol | tr '[:lower:]' '[:upper:]')
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(password_of admin)";
EOF
        if [ "$KAFKA_TLS" = 1 ]; then
            printf 'ssl.truststore.type=PEM\nssl.truststore.location=%s\n' "$CA_DIR/ca.pem" >>"$f"
        fi
    )
    echo "$f"
}

# Run one of Kafka's own tools (main class and arguments). The arguments go
# through a java @argfile (mode 600, removed after), never the command
# line: some carry SCRAM passwords, and a command line is visible to every
# user of the machine.
kafka_java_tool() {
    local argfile rc=0 a
    argfile="$(umask 077; mktemp "$KAFKA_DIR/.java-args.XXXXXX")"
    {
        printf '%s\n' -cp "$KAFKA_LIBS/*" "-Dlog4j.configuration=file:$KAFKA_DIR/log4j.properties"
        for a in "$@"; do
            a="${a//\\/\\\\}"
            printf '"%s"\n' "${a//\"/\\\"}"
        done
    } >"$argfile"
    java "@$argfile" || rc=$?
    rm -f "$argfile"
    return "$rc"
}

# Users a later `up` needs that the store lacks (a new principal in the
# matrix, a new stack gateway): added with kafka-configs as admin.
kafka_users_ensure() {
    kafka_auth_on || return 0
    local p missing=() props
    for p in $(kafka_principals); do
        grep -qx "$p" "$CRED_DIR/.users" 2>/dev/null || missing+=("$p")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    props="$(kafka_admin_client_properties)"
    for p in "${missing[@]}"; do
        kafka_java_tool kafka.admin.ConfigCommand --bootstrap-server "$BROKERS" \
            --command-config "$props" --alter --entity-type users --entity-name "$p" \
            --add-config "SCRAM-SHA-512=[password=$(password_of "$p")]" >>"$KAFKA_DIR/users.log" 2>&1 ||
            die "adding Kafka user $p failed (log: $KAFKA_DIR/users.log)"
        echo "$p" >>"$CRED_DIR/.users"
        say "added Kafka user $p"
    done
}

# Run a program as the Kafka principal $1 (plaintext when authentication is off).
as_principal() {
    local who="$1" ca=""
    shift
    if ! kafka_auth_on; then
        BLAZZ_KAFKA_SECURITY_PROTOCOL=plaintext "$@"
        return
    fi
    [ "$KAFKA_TLS" = 1 ] && ca="$CA_DIR/ca.pem"
    BLAZZ_KAFKA_SECURITY_PROTOCOL="$(kafka_client_protocol)" BLAZZ_KAFKA_SASL_USERNAME="$who" \
        BLAZZ_KAFKA_SASL_PASSWORD_FILE="$CRED_DIR/$who.password" \
        BLAZZ_KAFKA_SSL_CA_LOCATION="$ca" "$@"
}

# The ACLs of ARCHITECTURE.md §9.1 for the stack's prefix and gateways;
# the transactional-id ones through Kafka's kafka-acls (librdkafka 2.0.2
# cannot create them), only when they changed.
kafka_acls_apply() {
    kafka_auth_on || return 0
    # shellcheck disable=SC2046
    as_principal admin "$BLAZZCTL" acls apply --brokers "$BROKERS" --prefix "$PREFIX" \
        $(kafka_gateway_args) --timeout 30000 | sed 's/^/stack: /'
    local wanted principal pattern name props
    wanted="$("$BLAZZCTL" acls apply --prefix "$PREFIX" --transactional-ids)"
    [ "$wanted" = "$(cat "$CRED_DIR/.txn-acls" 2>/dev/null)" ] && return 0
    props="$(kafka_admin_client_properties)"
    while read -r principal pattern name; do
        [ -n "$principal" ] || continue
        kafka_java_tool kafka.admin.AclCommand --bootstrap-server "$BROKERS" \
            --command-config "$props" --add --allow-principal "User:$principal" \
            --operation Write --operation Describe --transactional-id "$name" \
            --resource-pattern-type "$pattern" >>"$KAFKA_DIR/acls.log" 2>&1 ||
            die "creating the transactional-id ACL of $principal failed (log: $KAFKA_DIR/acls.log)"
    done <<<"$wanted"
    echo "$wanted" >"$CRED_DIR/.txn-acls"
    say "transactional-id ACLs applied with kafka-acls"
}

# Environment lines that make a client run as principal $1: stack.env has
# blazzctl's; `stack.sh principal NAME` prints anyone's.
kafka_principal_env() {
    echo "export BLAZZ_KAFKA_SECURITY_PROTOCOL=$(kafka_client_protocol)"
    kafka_auth_on || return 0
    echo "export BLAZZ_KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
    echo "export BLAZZ_KAFKA_SASL_USERNAME=$1"
    echo "export BLAZZ_KAFKA_SASL_PASSWORD_FILE=$CRED_DIR/$1.password"
    echo "export BLAZZ_KAFKA_CREDENTIALS_DIR=$CRED_DIR"
    if [ "$KAFKA_TLS" = 1 ]; then
        echo "export BLAZZ_KAFKA_SSL_CA_LOCATION=$CA_DIR/ca.pem"
    fi
}

# A service's DSN: it logs in as its own role (0027: blazz_<service>),
# trusted on the loopback stack. Nothing for other programs, which keep the
# owner's DSN.
pg_service_env() {
    case "$1" in
        ingest | chat-sync | webhook-dispatcher | campaign-sender | cleanup | meta-sender)
            echo "export BLAZZ_PG_DSN='${PG_DSN/:\/\/blazz@/://blazz_${1//-/_}@}'" ;;
    esac
}

# ---- the whole stack ----------------------------------------------------------

# A fresh copy of the migrated database, named $1 (dropped first when it
# exists), for a client that must not meet the others' rows (scripts/test.sh
# gives one to each program it runs at the same time); prints its DSN.
copy_db() {
    local name="$1" node
    [[ "$name" =~ ^[a-z][a-z0-9_]*$ ]] || die "copy-db: '$name' is not a plain database name"
    node="$(pg_primary)"
    PGOPTIONS="--client-min-messages=warning" pg_psql "$node" -d postgres -qc "DROP DATABASE IF EXISTS $name" >/dev/null
    pg_psql "$node" -d postgres -qc "CREATE DATABASE $name TEMPLATE blazz OWNER blazz" >/dev/null
    local base="${PG_DSN%%\?*}" query=""
    [ "$base" = "$PG_DSN" ] || query="?${PG_DSN#*\?}"
    echo "${base%/blazz}/$name$query"
}

write_env() {
    cat >"$STATE/stack.env" <<EOF
export BLAZZ_PG_DSN='$PG_DSN'
export BLAZZ_KAFKA_BROKERS=$BROKERS
export BLAZZ_TOPIC_PREFIX=$PREFIX
export BLAZZ_MEDIA_LOCAL_DIR='$STATE/media'
EOF
    kafka_principal_env blazzctl >>"$STATE/stack.env"
    s3_env >>"$STATE/stack.env"
}

# BLAZZ_MIGRATIONS_DIR names another folder (test_backup's extra one).
migrate() {
    local dir="${BLAZZ_MIGRATIONS_DIR:-$REPO/db/migrations}"
    if ! ls "$dir"/*.sql >/dev/null 2>&1; then
        say "no migrations in $dir yet"
        return 0
    fi
    bk_before_migrate "$dir"
    "$BLAZZCTL" migrate --dir "$dir" --dsn "$PG_DSN" | sed 's/^/stack: /'
}

ensure_topics() {
    local out
    # shellcheck disable=SC2046
    if ! out="$(as_principal admin "$BLAZZCTL" topics ensure --brokers "$BROKERS" --prefix "$PREFIX" \
            --partitions "$PARTITIONS" --replication "$KAFKA_NODES" --timeout 30000 $(kafka_gateway_args))"; then
        die "creating topics on $BROKERS failed"
    fi
    echo "stack: ${out##*$'\n'}"
}

# The lock serializes concurrent up/down on one state folder. Servers are
# started with fd 8 closed so they do not keep holding it.
up() {
    need_blazzctl
    exec 8>"$STATE/.lock"
    flock 8
    start_pg
    start_kafka
    s3_start
    kafka_users_ensure
    migrate
    ensure_topics
    kafka_acls_apply
    write_env
    say "ready: source $STATE/stack.env"
}

down() {
    exec 8>"$STATE/.lock"
    flock 8
    # PostgreSQL first: its archiver pushes the last WAL segments to the
    # offsite repository, which may be this stack's S3 server
    stop_pg
    s3_stop
    stop_kafka
}

status() {
    local rc=0 pid node n
    for ((node = 1; node <= PG_NODES; node++)); do
        if pg_node_running "$node"; then
            echo "postgres: node $node $(pg_role "$node") on 127.0.0.1:${PG_NODE_PORT[$node]} (data $(pg_data "$node"))"
        else
            echo "postgres: node $node $(pg_role "$node")"
            [ "$node" = "$(pg_primary)" ] && rc=3
        fi
    done
    for ((n = 1; n <= KAFKA_NODES; n++)); do
        if pid="$(kafka_node_pid "$n")"; then
            echo "kafka:    node $n running on 127.0.0.1:$(kafka_node_port "$n") (pid $pid, data $(kafka_dir "$n")/data)"
        else
            echo "kafka:    node $n stopped"; rc=3
        fi
    done
    s3_status || rc=3
    return "$rc"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) write_env; cat "$STATE/stack.env" ;;
    copy-db) copy_db "${2:?usage: $0 copy-db NAME}" ;;
    principal) kafka_principal_env "${2:?usage: $0 principal NAME}"; pg_service_env "$2" ;;
    start-pg) start_pg ;;
    stop-pg) stop_pg ;;
    restart-pg) stop_pg; start_pg ;;
    start-kafka) start_kafka ;;
    stop-kafka) stop_kafka ;;
    restart-kafka) stop_kafka; start_kafka ;;
    start-s3) s3_start ;;
    stop-s3) s3_stop ;;
    kill-broker) kill_broker "${2:-}" ;;
    stop-broker) stop_broker "${2:-}" ;;
    start-broker) start_broker "${2:-}" ;;
    busiest-broker) busiest_broker ;;
    kill-busiest-broker) need_blazzctl; kill_busiest_broker ;;
    demote-primary) demote_primary ;;
    promote-standby) promote_standby ;;
    stop-old-primary) stop_old_primary ;;
    rebuild-standby) rebuild_standby ;;
    switchover) switchover ;;
    migrate) need_blazzctl; migrate ;;
    backup-enable) bk_enable ;;
    backup) bk_backup "${2:-incr}" "${3:-make backup}" ;;
    restore) bk_restore "${2:-}" ;;
    backup-verify) bk_verify ;;
    backup-info) bk_info ;;
    check-retention) bk_check_retention "${2:-}" ;;
    restore-fence) bk_fence "${2:-}" "${3:-}" ;;
    *)
        echo "usage: $0 up|down|status|env|principal NAME|start-pg|stop-pg|restart-pg|start-kafka|stop-kafka|restart-kafka|start-s3|stop-s3" >&2
        echo "       $0 kill-broker N|stop-broker N|start-broker N|busiest-broker|kill-busiest-broker  (BLAZZ_KAFKA_BROKERS_COUNT=3)" >&2
        echo "       $0 demote-primary|promote-standby|stop-old-primary|rebuild-standby|switchover  (BLAZZ_PG_STANDBY=1)" >&2
        echo "       $0 migrate|backup-enable|backup [full|diff|incr]|restore TIME|latest|backup-verify|backup-info|check-retention [DSN]|restore-fence [DSN] [LABEL]" >&2
        exit 2
        ;;
esac
