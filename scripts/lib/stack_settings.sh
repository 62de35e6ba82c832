# shellcheck shell=bash
#
# scripts/lib/stack_settings.sh - the settings scripts/stack.sh reads, for
# a stack of one's own: the test stack (scripts/test.sh) and the bench
# stack (scripts/lib/bench_stack.sh) differ only in their state directory
# and ports. Six partitions a topic and no topic prefix, as the tests and
# benchmarks expect.

# export_stack_settings STATE_DIR PG_PORT KAFKA_PORT CONTROLLER_PORT BIN_DIR STACK_SCRIPT
export_stack_settings() {
    export BLAZZ_STATE_DIR="$1" BLAZZ_PG_PORT="$2" BLAZZ_KAFKA_PORT="$3"
    export BLAZZ_KAFKA_CONTROLLER_PORT="$4" BLAZZ_BIN_DIR="$5" BLAZZ_STACK_SCRIPT="$6"
    export BLAZZ_TOPIC_PARTITIONS=6
    export BLAZZ_TOPIC_PREFIX=""
    # the broker's jars (scripts/deps.sh), for tests that run a Java client
    export BLAZZ_KAFKA_LIBS="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/kafka-3.9.1/libs"
}
