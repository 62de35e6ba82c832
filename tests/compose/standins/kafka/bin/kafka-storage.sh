#!/bin/bash
# kafka-storage.sh - kafka TEST STAND-IN (see ../Dockerfile): StorageTool.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
