#!/bin/bash
# kafka-broker-api-versions.sh - kafka TEST STAND-IN (see ../Dockerfile):
# what compose.yaml's health check runs.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.admin.BrokerApiVersionsCommand "$@"
