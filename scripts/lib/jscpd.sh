# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/lib/jscpd.sh - where the duplicate-code detector lives: jscpd from
# npm, pinned, installed by scripts/deps.sh into the cache and run by
# scripts/check_duplicates.sh. The version is in the directory's name, so
# changing the pin installs the new one beside the old.

JSCPD_VERSION=5.3.2
JSCPD_HOME="${BLAZZ_CACHE_DIR:-$HOME/.cache/blazz}/jscpd-$JSCPD_VERSION"
JSCPD_BIN="$JSCPD_HOME/node_modules/.bin/jscpd"
