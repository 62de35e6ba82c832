#!/usr/bin/env bash
#
# scripts/upgrade_test.sh [DURATION] - the upgrade test (`make
# upgrade-test`): the last release (N-1, the last line of
# docs/releases.txt) runs under load, the schema migrates forward and the
# services are replaced one by one by this tree's (N) while the traffic
# goes on, and then rolled back to N-1 one by one, the schema staying N's;
# then the chaos test's checks: nothing lost, nothing applied twice, no
# consumer stuck on a record it cannot read.
#
# All of it is scripts/chaos.sh in its upgrade mode
# (BLAZZ_CHAOS_UPGRADE_FROM; see its header), which builds N-1 once in a
# worktree of its own and keeps it in build/releases/<commit>. Here only
# the choice of N-1 and defaults of its own: DURATION 60 s at 30 events/s,
# quiescence bounded at 120 s, and a stack of its own (state
# <repo>/.run/upgrade, PostgreSQL 19445, Kafka 19402/19403, admin ports
# from 9461, ingest from 8461) so it runs beside `make chaos`. Every
# BLAZZ_CHAOS_* variable chaos.sh reads still overrides them, and
# BLAZZ_CHAOS_UPGRADE_FROM another commit.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/release_build.sh
source "$REPO/scripts/lib/release_build.sh"
release=$(last_release "$REPO")
[ -n "$release" ] || { echo "upgrade_test: no release in docs/releases.txt" >&2; exit 2; }

export BLAZZ_CHAOS_UPGRADE_FROM="${BLAZZ_CHAOS_UPGRADE_FROM:-$release}"
export BLAZZ_CHAOS_STATE_DIR="${BLAZZ_CHAOS_STATE_DIR:-$REPO/.run/upgrade}"
export BLAZZ_CHAOS_PG_PORT="${BLAZZ_CHAOS_PG_PORT:-19445}"
export BLAZZ_CHAOS_KAFKA_PORT="${BLAZZ_CHAOS_KAFKA_PORT:-19402}"
export BLAZZ_CHAOS_KAFKA_CONTROLLER_PORT="${BLAZZ_CHAOS_KAFKA_CONTROLLER_PORT:-19403}"
export BLAZZ_CHAOS_ADMIN_PORT="${BLAZZ_CHAOS_ADMIN_PORT:-9461}"
export BLAZZ_CHAOS_INGEST_PORT="${BLAZZ_CHAOS_INGEST_PORT:-8461}"
export BLAZZ_CHAOS_RATE="${BLAZZ_CHAOS_RATE:-30}"
export BLAZZ_CHAOS_QUIESCE_S="${BLAZZ_CHAOS_QUIESCE_S:-120}"
exec "$REPO/scripts/chaos.sh" "${1:-60}"
