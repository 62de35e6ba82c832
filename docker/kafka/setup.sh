#!/bin/bash
# docker/kafka/setup.sh - compose's one-shot `kafka-setup` job: the SCRAM
# users of ARCHITECTURE.md §9.1 and the one ACL librdkafka cannot create.
#
# The broker of compose.yaml knows a single static user, `admin` (SASL/PLAIN,
# from its own configuration), because SCRAM users live in the cluster's
# metadata and the first one has to be created by someone who can already
# log in. This job logs in as that admin and creates, with Kafka's own
# ConfigCommand, a SCRAM-SHA-512 user for admin itself and for each
# principal whose password .env gives (BLAZZ_KAFKA_PASSWORD_<NAME>: INGEST,
# CHAT_SYNC, WEBHOOK_DISPATCHER, CAMPAIGN_SENDER, CLEANUP, META_SENDER,
# CRM), then the transactional-id ACL of the `ingest` row (the rest of the
# matrix is created by `blazzctl acls apply` in the migrate job). Passwords
# reach the tools in files of this container (java @argfile and a client
# properties file, mode 600), never on a command line. Running it again only resets
# the same passwords, so it is idempotent.
#
# Before anything, it refuses to run on secrets nobody should run with: a
# password shorter than 16 characters or one equal to its example in
# .env.example (mounted at $BLAZZ_ENV_EXAMPLE), for the Kafka principals,
# PostgreSQL (its owner and postgres-exporter's role) and Grafana (which
# start only after this job). `make secrets`
# writes a .env with fresh ones. The services check theirs again
# (libs/core/weak_secret.h), so does nothing started without compose.
set -euo pipefail
umask 077

ENV_EXAMPLE="${BLAZZ_ENV_EXAMPLE:-/etc/blazz/env.example}"

# The value .env.example gives NAME (empty when it gives none).
example_value() { sed -n "s/^$1=//p" "$ENV_EXAMPLE" 2>/dev/null | tail -n 1; }

# refuse_weak VAR NAME: VAR holds .env's NAME.
refuse_weak() {
    local value="${!1:-}" name=$2
    if [ "${#value}" -lt 16 ] || [ "$value" = "$(example_value "$name")" ]; then
        echo "kafka-setup: $name in .env is the example value or shorter than 16 characters;" \
            "run \`make secrets\` for a .env with fresh random secrets" >&2
        return 1
    fi
}

weak=0
refuse_weak BLAZZ_KAFKA_ADMIN_PASSWORD KAFKA_ADMIN_PASSWORD || weak=1
for principal in ingest chat-sync webhook-dispatcher campaign-sender cleanup meta-sender crm; do
    name="KAFKA_PASSWORD_$(printf '%s' "$principal" | tr 'a-z-' 'A-Z_')"
    refuse_weak "BLAZZ_$name" "$name" || weak=1
done
refuse_weak BLAZZ_POSTGRES_PASSWORD POSTGRES_PASSWORD || weak=1
refuse_weak BLAZZ_PG_PASSWORD_MONITOR PG_PASSWORD_MONITOR || weak=1
refuse_weak BLAZZ_GRAFANA_ADMIN_PASSWORD GRAFANA_ADMIN_PASSWORD || weak=1
[ "$weak" = 0 ] || exit 1

BOOTSTRAP="${BLAZZ_KAFKA_BROKERS:-kafka:9092}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

: "${BLAZZ_KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD in .env}"

cat >"$WORK/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$BLAZZ_KAFKA_ADMIN_PASSWORD";
PROPS

# Kafka's tool $1 (a main class) with the rest as arguments, read from a
# file; tried up to 5 times, 3 s apart. compose's DNS once answered "No
# resolvable bootstrap urls" for kafka in the middle of this job, while a
# restore brought the project up again (compose-test, 3ae0f19), and every
# command here is idempotent.
kafka_tool() {
    local a attempt
    {
        printf '"-cp"\n"/opt/kafka/libs/*"\n'
        for a in "$@"; do
            a="${a//\\/\\\\}"
            printf '"%s"\n' "${a//\"/\\\"}"
        done
    } >"$WORK/args"
    for attempt in 1 2 3 4 5; do
        "$JAVA" "@$WORK/args" && return 0
        [ "$attempt" = 5 ] || { echo "kafka-setup: $1 failed (attempt $attempt of 5); again in 3 s" >&2; sleep 3; }
    done
    return 1
}

scram_user() {
    kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$BOOTSTRAP" \
        --command-config "$WORK/admin.properties" --alter --entity-type users \
        --entity-name "$1" --add-config "SCRAM-SHA-512=[password=$2]" >/dev/null
    echo "kafka-setup: SCRAM user $1"
}

scram_user admin "$BLAZZ_KAFKA_ADMIN_PASSWORD"
for principal in ingest chat-sync webhook-dispatcher campaign-sender cleanup meta-sender crm; do
    var="BLAZZ_KAFKA_PASSWORD_$(printf '%s' "$principal" | tr 'a-z-' 'A-Z_')"
    scram_user "$principal" "${!var}"
done

kafka_tool kafka.admin.AclCommand --bootstrap-server "$BOOTSTRAP" \
    --command-config "$WORK/admin.properties" --add --allow-principal User:ingest \
    --operation Write --operation Describe --transactional-id '*' \
    --resource-pattern-type literal >/dev/null
echo "kafka-setup: transactional ids of ingest"
