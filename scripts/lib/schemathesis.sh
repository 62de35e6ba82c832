# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/lib/schemathesis.sh - where the test suite's pinned Python tools
# live: Schemathesis (tests/integration/test_openapi.c) and, beside it, the
# Standard Webhooks library (tests/integration/standard_webhooks_verify.py,
# the verifier no one here wrote), in one virtualenv under the cache made by
# scripts/deps.sh; scripts/test.sh exports BLAZZ_SCHEMATHESIS and
# BLAZZ_TEST_PYTHON. The versions are in the directory's name, so changing
# a pin installs the new set beside the old.

SCHEMATHESIS_VERSION=4.32.5
STANDARDWEBHOOKS_VERSION=1.1.0
SCHEMATHESIS_HOME="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/schemathesis-$SCHEMATHESIS_VERSION-standardwebhooks-$STANDARDWEBHOOKS_VERSION"
SCHEMATHESIS_BIN="$SCHEMATHESIS_HOME/bin/schemathesis"
TEST_PYTHON="$SCHEMATHESIS_HOME/bin/python"
