# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/lib/schemathesis.sh - where the test suite's pinned Python tools
# live: Schemathesis (tests/integration/test_openapi.c) and, beside it, the
# Standard Webhooks library (tests/integration/standard_webhooks_verify.py,
# the verifier no one here wrote), in one virtualenv under the cache made by
# scripts/deps.sh; scripts/test.sh exports BLAZZ_SCHEMATHESIS and
# BLAZZ_TEST_PYTHON. openapi-python-client
# (tests/integration/test_openapi_client.c) has a virtualenv of its own,
# whose Python also runs the client it generates (httpx, attrs and
# python-dateutil come with the generator); scripts/test.sh exports
# BLAZZ_OPENAPI_CLIENT_HOME. The versions are in the directories' names,
# so changing a pin installs the new set beside the old.

SCHEMATHESIS_VERSION=4.32.5
STANDARDWEBHOOKS_VERSION=1.1.0
SCHEMATHESIS_HOME="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/schemathesis-$SCHEMATHESIS_VERSION-standardwebhooks-$STANDARDWEBHOOKS_VERSION"
SCHEMATHESIS_BIN="$SCHEMATHESIS_HOME/bin/schemathesis"
TEST_PYTHON="$SCHEMATHESIS_HOME/bin/python"
OPENAPI_CLIENT_VERSION=0.29.1
OPENAPI_CLIENT_HOME="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/openapi-python-client-$OPENAPI_CLIENT_VERSION"
OPENAPI_CLIENT_BIN="$OPENAPI_CLIENT_HOME/bin/openapi-python-client"
