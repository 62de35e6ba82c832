# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/lib/schemathesis.sh - where the pinned Schemathesis lives: a
# virtualenv of its own under the cache, made by scripts/deps.sh and used by
# tests/integration/test_openapi.c (scripts/test.sh exports
# BLAZZ_SCHEMATHESIS). The version is in the directory's name, so changing
# the pin installs the new one beside the old.

SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_HOME="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/schemathesis-$SCHEMATHESIS_VERSION"
SCHEMATHESIS_BIN="$SCHEMATHESIS_HOME/bin/schemathesis"
