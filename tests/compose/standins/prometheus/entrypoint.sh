#!/bin/sh
# entrypoint.sh - the prometheus TEST STAND-IN's entrypoint (see
# Dockerfile): Debian's prometheus with upstream's default storage path
# (data/, relative to the working directory /prometheus) unless the
# command line names one.
set -eu
for arg in "$@"; do
    case "$arg" in
        --storage.tsdb.path|--storage.tsdb.path=*) exec /usr/bin/prometheus "$@" ;;
    esac
done
exec /usr/bin/prometheus --storage.tsdb.path=data/ "$@"
