#!/usr/bin/env bash
#
# scripts/deps.sh - install what building, testing and running Blazz needs.
#
# Idempotent and quick when nothing is missing: one dpkg-query for the Debian
# packages, one marker-file check each for the Kafka broker jars and the
# S3Proxy jars (the tests' S3 server, scripts/s3proxy/pom.xml, the same way
# into $BLAZZ_CACHE_DIR/s3proxy-2.6.0/libs). Only when
# something is missing does it touch the network: `apt-get update` once, then
# `apt-get install` of the missing packages; Maven (scripts/kafka/pom.xml)
# for the broker jars, copied into $BLAZZ_CACHE_DIR/kafka-3.9.1/libs. The
# marker records the pom's checksum, so editing the pom refetches and a second
# run downloads nothing. Schemathesis (tests/integration/test_openapi.c) and
# the Standard Webhooks library (test_sessions) go into one virtualenv from
# PyPI, pinned in scripts/lib/schemathesis.sh (Debian packages neither); its
# marker is its own `schemathesis` program. openapi-python-client
# (tests/integration/test_openapi_client.c), pinned there too, gets a
# virtualenv of its own, its program the marker. openapi-generator
# (tests/integration/test_openapi_client.c too) is one jar from Maven Central
# (scripts/openapi-generator/pom.xml, scripts/lib/openapi_generator.sh),
# fetched the way the S3Proxy jars are. Prints one line saying what it did.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_VERSION=3.9.1
CACHE="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}"
KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
POM="$REPO/scripts/kafka/pom.xml"
# The tests' S3 server (scripts/s3proxy/pom.xml, scripts/lib/s3_server.sh).
S3PROXY_VERSION=2.6.0
S3PROXY_HOME="$CACHE/s3proxy-$S3PROXY_VERSION"
S3PROXY_POM="$REPO/scripts/s3proxy/pom.xml"
# The second client generator the API description must satisfy.
# shellcheck source=lib/openapi_generator.sh
source "$REPO/scripts/lib/openapi_generator.sh"

# What compiling needs; BLAZZ_DEPS=build (the container image's build stage)
# checks only these and fetches no broker jars.
BUILD_PACKAGES=(librdkafka-dev libpq-dev libprotobuf-c-dev protobuf-c-compiler
                libcurl4-openssl-dev libssl-dev libconfig-dev libjansson-dev
                libmicrohttpd-dev libcmocka-dev pkg-config)
# libclang-rt-dev is clang's runtime libraries (libFuzzer, the sanitizers) for
# `make fuzz`; the unversioned package follows the default clang. jq reads
# blazzctl's --json answers (scripts/stack.sh); shellcheck is in `make lint`;
# prometheus brings promtool, which tests the alert rules in `make test`;
# pgbackrest backs the local stack's PostgreSQL up (make backup).
PACKAGES=("${BUILD_PACKAGES[@]}" postgresql postgresql-contrib
          maven clang libclang-rt-dev clang-tidy cppcheck shellcheck valgrind curl
          docker-compose iproute2 python3-venv jq prometheus pgbackrest)
# BLAZZ_DEPS=compose (make compose-test) adds what runs the compose stack
# without Docker: rootful podman with runc and netavark/aardvark-dns
# networking, debootstrap for the base image, iptables for netavark.
COMPOSE_PACKAGES=(podman runc netavark aardvark-dns debootstrap iptables)
[ "${BLAZZ_DEPS:-}" = "compose" ] && PACKAGES+=("${COMPOSE_PACKAGES[@]}")
BUILD_ONLY=0
[ "${BLAZZ_DEPS:-}" = "build" ] && BUILD_ONLY=1

done_parts=()

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The major version of the `java` on PATH, or 0 when there is none.
java_major() {
    local line
    line="$(java -version 2>&1 | head -n 1)" || { echo 0; return; }
    line="${line#*\"}"
    line="${line%%\"*}"
    case "$line" in
        1.*) line="${line#1.}" ;;
    esac
    line="${line%%[.+-]*}"
    case "$line" in
        ''|*[!0-9]*) echo 0 ;;
        *) echo "$line" ;;
    esac
}

missing_packages() {
    local want=("${PACKAGES[@]}")
    if [ "$BUILD_ONLY" -eq 1 ]; then
        want=("${BUILD_PACKAGES[@]}")
    elif [ "$(java_major)" -lt 17 ]; then
        want+=(default-jdk-headless)
    fi
    local installed
    installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${want[@]}" 2>/dev/null || true)"
    local p
    for p in "${want[@]}"; do
        grep -qx "$p installed" <<<"$installed" || echo "$p"
    done
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    [ "${#missing[@]}" -eq 0 ] && return 0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
    done_parts+=("installed ${missing[*]}")
}

# fetch_jars WHAT POM HOME JAR: the jars of POM copied by Maven into
# HOME/libs, unless HOME/.complete holds the pom's checksum already; JAR is
# the one that must be there afterwards.
fetch_jars() {
    local what="$1" pom="$2" home="$3" jar="$4" sum marker="$3/.complete"
    sum="$(sha256sum "$pom" | cut -d' ' -f1)"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$sum" ]; then
        return 0
    fi
    mkdir -p "$home"
    # Several builds may start at once (parallel engineers, make -j): one fetches.
    exec 9>"$home/.lock"
    flock 9
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$sum" ]; then
        exec 9>&-
        return 0
    fi
    rm -rf "$home/libs"
    local log="$home/maven.log"
    if ! mvn -q -B -f "$pom" dependency:copy-dependencies \
            -DoutputDirectory="$home/libs" >"$log" 2>&1; then
        echo "deps: maven could not fetch the $what jars (log: $log):" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    if ! ls "$home/libs/$jar" >/dev/null 2>&1; then
        echo "deps: maven finished but $jar is missing in $home/libs" >&2
        exit 1
    fi
    echo "$sum" >"$marker"
    exec 9>&-
    done_parts+=("fetched $(find "$home/libs" -name '*.jar' | wc -l) $what jars")
}

# shellcheck source=lib/schemathesis.sh
source "$REPO/scripts/lib/schemathesis.sh"

# install_venv HOME PROGRAM WHAT PACKAGE...: the pinned PACKAGEs in a
# virtualenv at HOME, installed last-to-first as given (PROGRAM, which the
# last package brings, is the marker); an interrupted install is removed
# and redone (pip leaves no program behind until it is complete).
install_venv() {
    local home="$1" program="$2" what="$3"
    shift 3
    [ -x "$program" ] && return 0
    mkdir -p "$(dirname "$home")"
    exec 8>"$home.lock"
    flock 8
    if [ ! -x "$program" ]; then
        local log="$home.log"
        rm -rf "$home"
        if ! { /usr/bin/python3 -m venv "$home" &&
               "$home/bin/pip" install -q --disable-pip-version-check "$@"; } >"$log" 2>&1; then
            echo "deps: could not install $what (log: $log):" >&2
            tail -n 20 "$log" >&2
            rm -rf "$home"
            exit 1
        fi
        done_parts+=("installed $what")
    fi
    exec 8>&-
}

# Schemathesis beside the Standard Webhooks library; openapi-python-client
# in a virtualenv of its own, so that neither's pins constrain the other's.
install_python_tools() {
    install_venv "$SCHEMATHESIS_HOME" "$SCHEMATHESIS_BIN" \
        "schemathesis $SCHEMATHESIS_VERSION and standardwebhooks $STANDARDWEBHOOKS_VERSION" \
        "standardwebhooks==$STANDARDWEBHOOKS_VERSION" "schemathesis==$SCHEMATHESIS_VERSION"
    install_venv "$OPENAPI_CLIENT_HOME" "$OPENAPI_CLIENT_BIN" \
        "openapi-python-client $OPENAPI_CLIENT_VERSION" \
        "openapi-python-client==$OPENAPI_CLIENT_VERSION"
}

# shellcheck source=lib/jscpd.sh
source "$REPO/scripts/lib/jscpd.sh"

# The duplicate-code detector (scripts/check_duplicates.sh), pinned, from
# npm into its own folder (no package.json of the project's); npm itself
# comes with Node.js, Debian's packages when the machine has none.
install_jscpd() {
    [ -x "$JSCPD_BIN" ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends nodejs npm >/dev/null
    fi
    local log="$JSCPD_HOME.log"
    mkdir -p "$JSCPD_HOME"
    exec 7>"$JSCPD_HOME.lock"
    flock 7
    if [ ! -x "$JSCPD_BIN" ] &&
       ! npm install --prefix "$JSCPD_HOME" --no-save --no-audit --no-fund \
             "jscpd@$JSCPD_VERSION" >"$log" 2>&1; then
        echo "deps: could not install jscpd $JSCPD_VERSION (log: $log):" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    exec 7>&-
    done_parts+=("installed jscpd $JSCPD_VERSION")
}

install_packages
[ "$BUILD_ONLY" -eq 1 ] || fetch_jars "Kafka $KAFKA_VERSION" "$POM" "$KAFKA_HOME" \
    "kafka_2.13-$KAFKA_VERSION.jar"
[ "$BUILD_ONLY" -eq 1 ] || fetch_jars "S3Proxy $S3PROXY_VERSION" "$S3PROXY_POM" "$S3PROXY_HOME" \
    "s3proxy-$S3PROXY_VERSION.jar"
[ "$BUILD_ONLY" -eq 1 ] || fetch_jars "openapi-generator $OPENAPI_GENERATOR_VERSION" \
    "$REPO/scripts/openapi-generator/pom.xml" "$OPENAPI_GENERATOR_HOME" "$OPENAPI_GENERATOR_JAR_NAME"
[ "$BUILD_ONLY" -eq 1 ] || install_python_tools
[ "$BUILD_ONLY" -eq 1 ] || install_jscpd

if [ "${#done_parts[@]}" -eq 0 ]; then
    echo "deps: all present"
else
    (IFS=';'; echo "deps: ${done_parts[*]}" | sed 's/;/; /g')
fi
