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
}
