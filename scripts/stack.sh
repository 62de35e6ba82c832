#!/usr/bin/env bash
#
# scripts/stack.sh - a real local PostgreSQL 15 and Apache Kafka 3.9.1 (KRaft,
# single node), no Docker, for development and tests.
#
#   stack.sh up | down | status | env | principal NAME
#   stack.sh start-pg | stop-pg | restart-pg | start-kafka | stop-kafka | restart-kafka
#
# Everything lives in one state folder ($BLAZZ_STATE_DIR, default <repo>/.run):
#   pg/data        the cluster (initdb once; auth trust, loopback only)
#   pg/            also its unix socket and server.log
#   kafka/         server.properties, log4j.properties, data/, server.log, kafka.pid
#   kafka/credentials/<principal>.password   SCRAM passwords (mode 600)
#   stack.env      `export BLAZZ_PG_DSN=... BLAZZ_KAFKA_BROKERS=...` for clients
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
#   BLAZZ_KAFKA_TLS=1        SASL over TLS: a CA and a broker certificate are
#                            made in kafka/tls/, clients verify with ca.pem
# The mode is fixed when the storage is formatted; changing it needs a
# fresh kafka/ folder. `down` stops both and keeps all data; the tests rely on that to
# prove nothing is lost across restarts. The start-/stop- commands touch one
# server only and do not migrate.
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
KAFKA_PLAINTEXT="${BLAZZ_KAFKA_PLAINTEXT:-0}"
KAFKA_TLS="${BLAZZ_KAFKA_TLS:-0}"
STACK_GATEWAYS="${BLAZZ_STACK_GATEWAYS:-sim a b}"

mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
KAFKA_DIR="$STATE/kafka"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
BLAZZCTL="$BIN_DIR/blazzctl"
CRED_DIR="$KAFKA_DIR/credentials"
TLS_DIR="$KAFKA_DIR/tls"
PG_DSN="postgresql://blazz@127.0.0.1:$PG_PORT/blazz"
BROKERS="127.0.0.1:$KAFKA_PORT"

say() { echo "stack: $*"; }
die() { echo "stack: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

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
PG_DATA="$PG_ROOT/data"
PG_LOG="$PG_ROOT/server.log"

# ---- PostgreSQL -------------------------------------------------------------

pg_running() {
    [ -f "$PG_DATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_prepare_root() {
    mkdir -p "$PG_ROOT"
    if is_root; then
        chown postgres:postgres "$PG_ROOT"
        chmod 0755 "$PG_ROOT"
    fi
}

pg_init_once() {
    [ -f "$PG_DATA/PG_VERSION" ] && return 0
    pg_prepare_root
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 not found in $PG_BIN (run scripts/deps.sh)"
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
            --locale=C >"$PG_ROOT/initdb.log" 2>&1; then
        tail -n 20 "$PG_ROOT/initdb.log" >&2
        die "initdb into $PG_DATA failed"
    fi
    echo "include_if_exists = 'blazz.conf'" >>"$PG_DATA/postgresql.conf"
    say "initialized PostgreSQL cluster in $PG_DATA"
}

# Settings are rewritten at every start so a changed port takes effect.
pg_write_conf() {
    local conf="$PG_DATA/blazz.conf"
    as_pg tee "$conf" >/dev/null <<EOF
# Written by scripts/stack.sh at every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_ROOT'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
log_min_messages = warning
EOF
}

pg_create_role_and_db() {
    local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)
    if [ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'blazz'")" != 1 ]; then
        "${psql[@]}" -d postgres -c "CREATE ROLE blazz LOGIN SUPERUSER"
    fi
    if [ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'blazz'")" != 1 ]; then
        "${psql[@]}" -d postgres -c "CREATE DATABASE blazz OWNER blazz"
    fi
}

start_pg() {
    if pg_running; then
        say "PostgreSQL already running on 127.0.0.1:$PG_PORT"
        return 0
    fi
    pg_init_once
    pg_prepare_root
    pg_write_conf
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null 2>&1 8>&-; then
        tail -n 20 "$PG_LOG" >&2 || true
        die "PostgreSQL did not start on port $PG_PORT (log: $PG_LOG)"
    fi
    pg_create_role_and_db
    say "PostgreSQL running on 127.0.0.1:$PG_PORT (data: $PG_DATA)"
}

stop_pg() {
    if ! pg_running; then
        say "PostgreSQL not running"
        return 0
    fi
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
    say "PostgreSQL stopped"
}

# ---- Kafka ------------------------------------------------------------------

kafka_pid() {
    local pid
    [ -f "$KAFKA_PID" ] || return 1
    pid="$(cat "$KAFKA_PID")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: it must still be our broker.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $KAFKA_DIR/server.properties" || return 1
    echo "$pid"
}

kafka_running() { kafka_pid >/dev/null; }

kafka_write_config() {
    mkdir -p "$KAFKA_DIR/data"
    # mode 600: the broker's JAAS lines below carry the admin password
    (umask 077; : >"$KAFKA_DIR/server.properties")
    chmod 600 "$KAFKA_DIR/server.properties"
    cat >"$KAFKA_DIR/server.properties" <<EOF
# Written by scripts/stack.sh at every start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=$PARTITIONS
auto.create.topics.enable=false
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
group.initial.rebalance.delay.ms=0
EOF
    kafka_auth_properties >>"$KAFKA_DIR/server.properties"
    cat >"$KAFKA_DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$KAFKA_DIR/server.log
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

kafka_format_once() {
    [ -f "$KAFKA_DIR/data/meta.properties" ] && return 0
    local scram=()
    mapfile -t scram < <(kafka_scram_format_args)
    if ! kafka_java_tool kafka.tools.StorageTool format -t "$(new_cluster_id)" \
            -c "$KAFKA_DIR/server.properties" "${scram[@]}" >"$KAFKA_DIR/format.log" 2>&1; then
        cat "$KAFKA_DIR/format.log" >&2
        die "formatting Kafka storage in $KAFKA_DIR/data failed"
    fi
    kafka_users_created
    say "formatted Kafka storage in $KAFKA_DIR/data"
}

need_blazzctl() {
    [ -x "$BLAZZCTL" ] || die "$BLAZZCTL not found: build it first (make binaries, or set BLAZZ_BIN_DIR)"
}

kafka_wait_ready() {
    local deadline=$((SECONDS + KAFKA_WAIT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
        # First wait: until the background child has exec'd java, its
        # cmdline is still this script's and kafka_running says no.
        sleep 1
        if ! kafka_running; then
            tail -n 30 "$KAFKA_DIR/server.log" "$KAFKA_DIR/stdout.log" >&2 2>/dev/null || true
            die "Kafka exited during startup (log: $KAFKA_DIR/server.log)"
        fi
        if as_principal admin "$BLAZZCTL" topics list --brokers "$BROKERS" --timeout 3000 >/dev/null 2>&1; then
            return 0
        fi
    done
    tail -n 30 "$KAFKA_DIR/server.log" >&2 2>/dev/null || true
    die "Kafka did not answer on $BROKERS within ${KAFKA_WAIT_S}s (log: $KAFKA_DIR/server.log)"
}

start_kafka() {
    need_blazzctl
    if kafka_running; then
        say "Kafka already running on $BROKERS"
        return 0
    fi
    [ -f "$KAFKA_LIBS/kafka_2.13-3.9.1.jar" ] || die "Kafka jars missing in $KAFKA_LIBS (run scripts/deps.sh)"
    kafka_auth_prepare
    kafka_write_config
    kafka_format_once
    # ZGC, with the modest fixed heap FIELD-NOTES asks for on 2 cores. G1
    # (Kafka's own default, 20 ms pause goal) stopped the broker for 10-40 ms
    # every few seconds under ingest's benchmark load (gc.log: median 10-12
    # ms, p90 21-23 ms); each stop delays every request in flight, which put
    # ingest's HTTP p99 at 8-16 ms. A 5 ms goal only made the pauses more
    # frequent (p50 8.6 ms, p99 worse). ZGC's pauses stay under a
    # millisecond; raw produce+consume is unchanged. gc.log shows its cycles.
    setsid nohup java -Xms512m -Xmx512m -XX:+UseZGC \
        -Djava.awt.headless=true \
        -Xlog:gc:file="$KAFKA_DIR/gc.log":uptime,level:filecount=2,filesize=10m \
        -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
        >>"$KAFKA_DIR/stdout.log" 2>&1 </dev/null 8>&- &
    echo $! >"$KAFKA_PID"
    kafka_wait_ready
    say "Kafka running on $BROKERS (pid $(cat "$KAFKA_PID"), data: $KAFKA_DIR/data)"
}

stop_kafka() {
    local pid
    if ! pid="$(kafka_pid)"; then
        rm -f "$KAFKA_PID"
        say "Kafka not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        say "Kafka did not stop within 30s: killed"
    fi
    rm -f "$KAFKA_PID"
    say "Kafka stopped"
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
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=blazz local CA" \
        -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$TLS_DIR/broker.key" -out "$TLS_DIR/broker.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$TLS_DIR/san.ext"
    openssl x509 -req -in "$TLS_DIR/broker.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
        -CAcreateserial -days 3650 -extfile "$TLS_DIR/san.ext" -out "$TLS_DIR/broker.crt" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$TLS_DIR/broker.key" -out "$TLS_DIR/broker.pk8"
    cat "$TLS_DIR/broker.pk8" "$TLS_DIR/broker.crt" >"$TLS_DIR/broker.pem"
    say "made a CA and a broker certificate in $TLS_DIR"
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

# Appended to server.properties: later keys win, so the listener lines here
# replace the PLAINTEXT ones written above them. The controller listener
# authenticates with PLAIN against a static user (SCRAM users live in the
# metadata the controller serves, so they cannot guard its own door).
kafka_auth_properties() {
    kafka_auth_on || return 0
    local name=SASL_PLAINTEXT admin_pw
    [ "$KAFKA_TLS" = 1 ] && name=SASL_SSL
    admin_pw="$(password_of admin)"
    cat <<EOF
# authentication and authorization (kafka_auth_properties)
listeners=$name://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=$name://127.0.0.1:$KAFKA_PORT
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
            printf 'ssl.truststore.type=PEM\nssl.truststore.location=%s\n' "$TLS_DIR/ca.pem" >>"$f"
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
    [ "$KAFKA_TLS" = 1 ] && ca="$TLS_DIR/ca.pem"
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
        echo "export BLAZZ_KAFKA_SSL_CA_LOCATION=$TLS_DIR/ca.pem"
    fi
}

# ---- the whole stack ----------------------------------------------------------

write_env() {
    cat >"$STATE/stack.env" <<EOF
export BLAZZ_PG_DSN=$PG_DSN
export BLAZZ_KAFKA_BROKERS=$BROKERS
export BLAZZ_TOPIC_PREFIX=$PREFIX
EOF
    kafka_principal_env blazzctl >>"$STATE/stack.env"
}

migrate() {
    local dir="$REPO/db/migrations"
    if ! ls "$dir"/*.sql >/dev/null 2>&1; then
        say "no migrations in $dir yet"
        return 0
    fi
    "$BLAZZCTL" migrate --dir "$dir" --dsn "$PG_DSN" | sed 's/^/stack: /'
}

ensure_topics() {
    local out
    # shellcheck disable=SC2046
    if ! out="$(as_principal admin "$BLAZZCTL" topics ensure --brokers "$BROKERS" --prefix "$PREFIX" \
            --partitions "$PARTITIONS" --replication 1 --timeout 30000 $(kafka_gateway_args))"; then
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
    stop_kafka
    stop_pg
}

status() {
    local rc=0 pid
    if pg_running; then
        echo "postgres: running on 127.0.0.1:$PG_PORT (data $PG_DATA)"
    else
        echo "postgres: stopped"; rc=3
    fi
    if pid="$(kafka_pid)"; then
        echo "kafka:    running on $BROKERS (pid $pid, data $KAFKA_DIR/data)"
    else
        echo "kafka:    stopped"; rc=3
    fi
    return "$rc"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) write_env; cat "$STATE/stack.env" ;;
    principal) kafka_principal_env "${2:?usage: $0 principal NAME}" ;;
    start-pg) start_pg ;;
    stop-pg) stop_pg ;;
    restart-pg) stop_pg; start_pg ;;
    start-kafka) start_kafka ;;
    stop-kafka) stop_kafka ;;
    restart-kafka) stop_kafka; start_kafka ;;
    *)
        echo "usage: $0 up|down|status|env|principal NAME|start-pg|stop-pg|restart-pg|start-kafka|stop-kafka|restart-kafka" >&2
        exit 2
        ;;
esac
