# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/compose/images.sh - every image compose.yaml names, made without
# a registry (sourced by scripts/compose_test.sh; bash).
#
# Base images: `debian:bookworm` and `debian:bookworm-slim` come from
# debootstrap (minbase, the official images' package set) with the
# official images' apt sources; the slim one also drops documentation,
# manual pages and locales and tells dpkg to keep them out, as the official
# slim image does. The two root filesystems are kept as tarballs in
# $CT_CACHE (made again when older than 30 days, or when the folder is
# removed), so a second run downloads no base system; they are imported into
# the private podman on every run.
#
# Then, one build at a time (two at once overload a 2-core machine), in
# Docker format (OCI images lose HEALTHCHECK), never pulling: the stand-ins
# of tests/compose/standins/ under the official images' names; our images
# of third-party software (docker/postgres: PostgreSQL with pgBackRest, on
# the postgres stand-in; docker/jmx-exporter: the JMX exporter's agent,
# fetched with Maven) under compose.yaml's names; and the project's images
# from docker/Dockerfile (the build stage is shared through the layer
# cache, so the code is compiled once). Each build's time and each image's
# size go to the report.

CT_DEBIAN_MIRROR="${BLAZZ_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CT_BASE_MAX_AGE_DAYS=30
CT_SERVICES=(ingest chat-sync webhook-dispatcher campaign-sender cleanup meta-sender)

# name:tag of each stand-in, as compose.yaml spells the official image.
declare -A CT_STANDINS=(
    [postgres]=docker.io/library/postgres:15-bookworm
    [kafka]=docker.io/apache/kafka:3.9.1
    [prometheus]=docker.io/prom/prometheus:v2.53.2
    [grafana]=docker.io/grafana/grafana:11.2.0
    [postgres-exporter]=quay.io/prometheuscommunity/postgres-exporter:v0.16.0
    [node-exporter]=docker.io/prom/node-exporter:v1.8.2
)
CT_STANDIN_ORDER=(postgres kafka prometheus grafana postgres-exporter node-exporter)

# name:tag of each of our images of third-party software, as compose.yaml
# spells it, by its folder under docker/.
declare -A CT_INFRA=(
    [postgres]=docker.io/library/postgres:15-bookworm-blazz
    [jmx-exporter]=docker.io/blazz/jmx-exporter:1.0.1
)
CT_INFRA_ORDER=(postgres jmx-exporter)

ct_debian_sources() {
    cat <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

ct_slim_dpkg_excludes() {
    cat <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
}

# Make $CT_CACHE/debian-bookworm{,-slim}.tar unless fresh ones are there.
ct_make_base_tarballs() {
    local full="$CT_CACHE/debian-bookworm.tar" slim="$CT_CACHE/debian-bookworm-slim.tar"
    if [ -s "$full" ] && [ -s "$slim" ] \
        && [ -z "$(find "$full" "$slim" -mtime +"$CT_BASE_MAX_AGE_DAYS")" ]; then
        echo "cached"
        return 0
    fi
    mkdir -p "$CT_CACHE"
    local root="$CT_STATE/rootfs"
    rm -rf "$root"
    if ! nice -n 10 debootstrap --variant=minbase bookworm "$root" "$CT_DEBIAN_MIRROR" \
            >"$CT_LOGS/debootstrap.log" 2>&1; then
        echo "compose-test: debootstrap failed (log: $CT_LOGS/debootstrap.log):" >&2
        tail -n 15 "$CT_LOGS/debootstrap.log" >&2
        return 1
    fi
    rm -f "$root/etc/apt/sources.list"
    ct_debian_sources >"$root/etc/apt/sources.list.d/debian.sources"
    rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    rm -rf "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/*
    tar --numeric-owner -C "$root" -cf "$full.tmp" .
    mv "$full.tmp" "$full"

    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    ct_slim_dpkg_excludes >"$root/etc/dpkg/dpkg.cfg.d/docker"
    find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    tar --numeric-owner -C "$root" -cf "$slim.tmp" .
    mv "$slim.tmp" "$slim"
    rm -rf "$root"
    echo "debootstrapped"
}

ct_import_base_images() {
    podman import --change 'CMD ["bash"]' "$CT_CACHE/debian-bookworm.tar" \
        docker.io/library/debian:bookworm >>"$CT_LOGS/import.log" 2>&1 \
    && podman import --change 'CMD ["bash"]' "$CT_CACHE/debian-bookworm-slim.tar" \
        docker.io/library/debian:bookworm-slim >>"$CT_LOGS/import.log" 2>&1
}

# ct_build TAG LOGNAME podman-build-arguments...: one image, niced, logged.
ct_build() {
    local tag="$1" log="$CT_LOGS/build-$2.log"
    shift 2
    if ! nice -n 10 podman build --format docker --pull=never --network host --layers \
            "${CT_BUILD_ULIMITS[@]}" --tag "$tag" "$@" >"$log" 2>&1; then
        echo "compose-test: building $tag failed (log: $log):" >&2
        tail -n 25 "$log" >&2
        return 1
    fi
}

ct_build_standin() {
    local name="$1" dir="$CT_REPO/tests/compose/standins/$1"
    local extra=()
    if [ "$name" = kafka ]; then
        extra=(--build-context "kafkalibs=$CT_KAFKA_LIBS")
    fi
    ct_build "${CT_STANDINS[$name]}" "standin-$name" "${extra[@]}" -f "$dir/Dockerfile" "$dir"
}

# The test S3 server of the backups' offsite repository (tests/compose/s3),
# on the Kafka stand-in.
ct_build_test_s3() {
    ct_build docker.io/blazz/test-s3:latest test-s3 --build-context "s3libs=$CT_S3PROXY_LIBS" \
        -f "$CT_REPO/tests/compose/s3/Dockerfile" "$CT_REPO/tests/compose/s3"
}

# Maven in docker/jmx-exporter's build checks Maven Central's certificate
# against the build's own trust store; a host whose HTTPS goes through an
# inspecting proxy trusts that proxy's CA in its Java trust store, which is
# lent to the build (read-only) and named in MAVEN_OPTS.
CT_HOST_CACERTS=/etc/ssl/certs/java/cacerts

ct_build_infra() {
    local extra=()
    if [ "$1" = jmx-exporter ] && [ -s "$CT_HOST_CACERTS" ]; then
        extra=(--volume "$CT_HOST_CACERTS:/blazz-build-cacerts:ro"
               --build-arg "MAVEN_OPTS=-Djavax.net.ssl.trustStore=/blazz-build-cacerts")
    fi
    # docker/postgres takes scripts/lib/restore_window.sh too: the repository is its context
    local context="$CT_REPO/docker/$1"
    [ "$1" != postgres ] || context="$CT_REPO"
    ct_build "${CT_INFRA[$1]}" "$1" "${extra[@]}" -f "$CT_REPO/docker/$1/Dockerfile" "$context"
}

# ct_build_project SERVICE: blazz/SERVICE (blazzctl: the toolbox) from docker/Dockerfile.
ct_build_project() {
    ct_build "docker.io/blazz/$1:latest" "$1" --build-arg "SERVICE=$1" \
        --build-arg "BLAZZ_VERSION=$CT_VERSION" -f "$CT_REPO/docker/Dockerfile" "$CT_REPO"
}

ct_image_size_mb() {
    podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f", $1 / 1000000}'
}

# "base B MB + libraries L MB + programs P MB" of a project image (all of
# them share these layers: one copy on disk).
ct_image_breakdown() {
    local total base programs
    total="$(ct_image_size_mb "$1")"
    base="$(ct_image_size_mb docker.io/library/debian:bookworm-slim)"
    programs="$(podman run --rm --network none --no-healthcheck --entrypoint /bin/sh "$1" \
        -c 'du -s --block-size=1000000 /usr/local/bin /usr/share/blazz | awk "{s += \$1} END {print s}"' 2>/dev/null)"
    echo "debian:bookworm-slim $base MB + runtime libraries $(( total - base - programs )) MB + programs and migrations $programs MB"
}

# What must hold for every project image: it runs as a non-root user and
# carries no compiler, linker, make or development headers. Prints what is
# wrong, nothing when all is well.
ct_image_problems() {
    local image="$1" user
    user="$(podman image inspect --format '{{.Config.User}}' "$image")"
    case "$user" in
        ''|root|0|root:*|0:*) echo "runs as '${user:-root}'" ;;
    esac
    podman run --rm --network none --no-healthcheck --entrypoint /bin/sh "$image" -c '
        for t in cc gcc c99 ld as make pkg-config protoc-c; do
            command -v "$t" >/dev/null 2>&1 && echo "has build tool $t"
        done
        for h in librdkafka libpq-fe.h curl openssl; do
            [ -e "/usr/include/$h" ] && echo "has headers /usr/include/$h"
        done
        exit 0' 2>/dev/null || echo "could not run a shell in it"
}
