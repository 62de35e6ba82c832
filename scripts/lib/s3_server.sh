# shellcheck shell=bash
#
# scripts/lib/s3_server.sh - the stack's S3-compatible server, for the media
# store's S3 backend (ARCHITECTURE.md §16.1); sourced by scripts/stack.sh,
# which provides REPO, STATE, CACHE, say, die and wait_port_free.
#
# S3Proxy (scripts/s3proxy/pom.xml, fetched by scripts/deps.sh) with its
# filesystem backend, listening on 127.0.0.1:$BLAZZ_S3_PORT; no port, no
# server (make run and the benchmarks need none; scripts/test.sh sets one).
# It checks AWS Signature Version 4 on every request (authorization aws-v4:
# header-signed and presigned, a presigned URL's expiry too) against one
# identity, whose keys are generated at the first start into
#   s3/credentials/access_key, s3/credentials/secret_key   (mode 600)
# and written into s3/s3proxy.properties (mode 600: S3Proxy takes them from
# its properties file only, never from its command line). The bucket
# $S3_BUCKET is the folder s3/data/<bucket>. stack.env then names the
# server for the media.* settings (BLAZZ_MEDIA_S3_ENDPOINT, _REGION, _BUCKET,
# and the keys as _ACCESS_KEY_FILE, _SECRET_KEY_FILE); media.location stays
# whatever each program says (local unless set), so the server changes
# nothing for programs that do not ask for it.
# The same server also listens with TLS on 127.0.0.1:$BLAZZ_S3_TLS_PORT
# (BLAZZ_S3_PORT + 1 unless set): pgBackRest speaks S3 over TLS only, and
# its offsite repository is the bucket $S3_BACKUP_BUCKET
# (scripts/lib/pg_backup.sh). Its certificate, for 127.0.0.1 and
# localhost, is self-signed (scripts/lib/s3_tls.sh) and made at the first
# start into s3/tls/ (cert.pem is what a client trusts; the key and the keystore S3Proxy reads
# stay mode 600, the keystore's password in s3proxy.properties only);
# stack.env names it as BLAZZ_S3_TLS_ENDPOINT and BLAZZ_S3_CA_FILE.

S3_PORT="${BLAZZ_S3_PORT:-}"
S3_DIR="$STATE/s3"
S3_LIBS="$CACHE/s3proxy-2.6.0/libs"
S3_TLS_PORT="${BLAZZ_S3_TLS_PORT:-${S3_PORT:+$((S3_PORT + 1))}}"
S3_BUCKET=blazz-media
S3_BACKUP_BUCKET=blazz-backups
S3_REGION=us-east-1
S3_WAIT_S=60

s3_pid() {
    local pid
    [ -f "$S3_DIR/s3proxy.pid" ] || return 1
    pid="$(cat "$S3_DIR/s3proxy.pid")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: it must still be our server.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
        grep -q "org.gaul.s3proxy.Main --properties $S3_DIR/s3proxy.properties" || return 1
    echo "$pid"
}

# The identity's keys, made once.
s3_credentials() {
    local dir="$S3_DIR/credentials"
    [ -s "$dir/secret_key" ] && return 0
    (
        umask 077
        mkdir -p "$dir"
        echo "blazz$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$dir/access_key"
        head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/secret_key"
        echo >>"$dir/secret_key"
    )
}

# The TLS endpoint's certificate and the keystore S3Proxy reads it from
# (scripts/lib/s3_tls.sh), made once.
s3_tls() {
    [ -s "$S3_DIR/tls/keystore.p12" ] && return 0
    s3_tls_make "$S3_DIR/tls" 127.0.0.1 "IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost" ||
        die "S3 server: its TLS certificate could not be made in $S3_DIR/tls"
    chmod 644 "$S3_DIR/tls/cert.pem"
}

s3_write_properties() {
    (
        umask 077
        cat >"$S3_DIR/s3proxy.properties" <<PROPS
s3proxy.endpoint=http://127.0.0.1:$S3_PORT
s3proxy.secure-endpoint=https://127.0.0.1:$S3_TLS_PORT
s3proxy.keystore-path=$S3_DIR/tls/keystore.p12
s3proxy.keystore-password=$(cat "$S3_DIR/tls/keystore_password")
s3proxy.authorization=aws-v4
s3proxy.identity=$(cat "$S3_DIR/credentials/access_key")
s3proxy.credential=$(cat "$S3_DIR/credentials/secret_key")
jclouds.provider=filesystem
jclouds.filesystem.basedir=$S3_DIR/data
PROPS
    )
}

s3_wait_ready() {
    local deadline=$((SECONDS + S3_WAIT_S)) code
    while :; do
        # any HTTP answer (an unsigned request is refused) means it listens
        code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/" 2>/dev/null || true)"
        if [ -n "$code" ] && [ "$code" != 000 ]; then
            code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$S3_DIR/tls/cert.pem" \
                "https://127.0.0.1:$S3_TLS_PORT/" 2>/dev/null || true)"
            [ -n "$code" ] && [ "$code" != 000 ] && return 0
        fi
        s3_pid >/dev/null || { tail -n 20 "$S3_DIR/server.log" >&2; die "S3Proxy exited while starting"; }
        [ "$SECONDS" -lt "$deadline" ] || die "S3Proxy did not answer on ports $S3_PORT and $S3_TLS_PORT (TLS) within ${S3_WAIT_S}s"
        sleep 0.2
    done
}

s3_start() {
    [ -n "$S3_PORT" ] || return 0
    if s3_pid >/dev/null; then
        say "S3 server already running on 127.0.0.1:$S3_PORT"
        return 0
    fi
    ls "$S3_LIBS"/s3proxy-*.jar >/dev/null 2>&1 || die "S3Proxy jars missing in $S3_LIBS: run scripts/deps.sh"
    wait_port_free "$S3_PORT" "S3"
    wait_port_free "$S3_TLS_PORT" "S3 (TLS)"
    mkdir -p "$S3_DIR/data/$S3_BUCKET" "$S3_DIR/data/$S3_BACKUP_BUCKET"
    s3_credentials
    s3_tls
    s3_write_properties
    java -Xmx256m -Dlogback.configurationFile="$REPO/scripts/s3proxy/logback.xml" \
        -cp "$S3_LIBS/*" org.gaul.s3proxy.Main \
        --properties "$S3_DIR/s3proxy.properties" >"$S3_DIR/server.log" 2>&1 </dev/null 8>&- &
    echo $! >"$S3_DIR/s3proxy.pid"
    s3_wait_ready
    say "S3 server (S3Proxy) running on 127.0.0.1:$S3_PORT and with TLS on $S3_TLS_PORT (pid $(cat "$S3_DIR/s3proxy.pid"), bucket $S3_BUCKET in $S3_DIR/data)"
}

s3_stop() {
    local pid
    if ! pid="$(s3_pid)"; then
        [ -z "$S3_PORT" ] || say "S3 server not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$S3_DIR/s3proxy.pid"
    say "S3 server stopped"
}

# stack.env's lines for the server, when this stack has one.
s3_env() {
    [ -n "$S3_PORT" ] || return 0
    cat <<ENV
export BLAZZ_MEDIA_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export BLAZZ_MEDIA_S3_REGION=$S3_REGION
export BLAZZ_MEDIA_S3_BUCKET=$S3_BUCKET
export BLAZZ_MEDIA_S3_ACCESS_KEY_FILE='$S3_DIR/credentials/access_key'
export BLAZZ_MEDIA_S3_SECRET_KEY_FILE='$S3_DIR/credentials/secret_key'
export BLAZZ_S3_TLS_ENDPOINT=https://127.0.0.1:$S3_TLS_PORT
export BLAZZ_S3_CA_FILE='$S3_DIR/tls/cert.pem'
ENV
}

s3_status() {
    local pid
    [ -n "$S3_PORT" ] || return 0
    if pid="$(s3_pid)"; then
        echo "s3:       running on 127.0.0.1:$S3_PORT (pid $pid, bucket $S3_BUCKET in $S3_DIR/data)"
    else
        echo "s3:       stopped"
        return 3
    fi
}
