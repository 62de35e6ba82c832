# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/lib/openapi_generator.sh - where openapi-generator's command line
# lives: the one self-contained jar of org.openapitools:openapi-generator-cli
# from Maven Central (scripts/openapi-generator/pom.xml), fetched by
# scripts/deps.sh into the cache and run with the default java by
# tests/integration/test_openapi_client.c; scripts/test.sh exports
# BLAZZ_OPENAPI_GENERATOR_JAR. The version is in the directory's name, so
# changing the pin (here and in the pom) fetches the new one beside the old.

OPENAPI_GENERATOR_VERSION=7.25.0
OPENAPI_GENERATOR_HOME="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/openapi-generator-$OPENAPI_GENERATOR_VERSION"
OPENAPI_GENERATOR_JAR_NAME="openapi-generator-cli-$OPENAPI_GENERATOR_VERSION.jar"
OPENAPI_GENERATOR_JAR="$OPENAPI_GENERATOR_HOME/libs/$OPENAPI_GENERATOR_JAR_NAME"
