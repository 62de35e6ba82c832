#!/bin/bash
# kafka-run-class.sh - kafka TEST STAND-IN (see ../Dockerfile): run a Kafka
# class with the JVM settings the official script would use: KAFKA_HEAP_OPTS
# (default -Xmx256M), KAFKA_JVM_PERFORMANCE_OPTS (default G1), KAFKA_OPTS,
# and KAFKA_LOG4J_OPTS (default: tools logging, warnings to stderr).
set -euo pipefail
base=/opt/kafka
heap="${KAFKA_HEAP_OPTS:--Xmx256M}"
perf="${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true}"
log4j="${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:$base/config/tools-log4j.properties}"
# The option lists are word lists by contract, hence unquoted.
# shellcheck disable=SC2086
exec java $heap $perf $log4j ${KAFKA_OPTS:-} -cp "$base/libs/*" "$@"
