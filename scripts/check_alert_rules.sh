#!/usr/bin/env bash
#
# scripts/check_alert_rules.sh [ROOT] - the alert rules are valid, tested and
# documented (docker/prometheus/alerts.yml, ARCHITECTURE.md §6.2):
#
#   - `promtool check rules` accepts alerts.yml, and `promtool check config`
#     the prometheus.yml that loads it;
#   - `promtool test rules alerts_test.yml` passes;
#   - every alert has, in alerts_test.yml, at least one case where it fires
#     and one where it must stay quiet (`exp_alerts: []`);
#   - every blazz_* series a rule reads is a metric the services register;
#   - every alert's runbook annotation names a heading of README.md.
#
# `make test` runs it (scripts/test.sh, check_alert_rules); promtool is
# Debian's prometheus package (scripts/deps.sh).

set -euo pipefail
export LC_ALL=C

ROOT="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
DIR="$ROOT/docker/prometheus"
status=0
fail() {
    echo "check_alert_rules: $*" >&2
    status=1
}

promtool check rules "$DIR/alerts.yml" >/dev/null || fail "promtool check rules refused alerts.yml"
promtool check config --syntax-only "$DIR/prometheus.yml" >/dev/null ||
    fail "promtool check config refused prometheus.yml"
(cd "$DIR" && promtool test rules alerts_test.yml) >/dev/null ||
    fail "promtool test rules failed: (cd docker/prometheus && promtool test rules alerts_test.yml)"

mapfile -t alerts < <(sed -n 's/^ *- alert: *//p' "$DIR/alerts.yml")
[ "${#alerts[@]}" -gt 0 ] || fail "no alert in alerts.yml"

# "<alert> fires|quiet" for each case of alerts_test.yml: the line after an
# alertname says whether alerts are expected.
cases="$(awk '
    /alertname:/ { name = $2; next }
    name != "" && /exp_alerts:/ { print name, ($2 == "[]" ? "quiet" : "fires"); name = "" }
' "$DIR/alerts_test.yml" | sort -u)"
for a in "${alerts[@]}"; do
    grep -qx "$a fires" <<<"$cases" || fail "$a: no case in alerts_test.yml where it fires"
    grep -qx "$a quiet" <<<"$cases" || fail "$a: no case in alerts_test.yml where it stays quiet"
done

# The services' series a rule reads exist: a misspelt name would never fire.
while read -r metric; do
    grep -rqF "\"$metric\"" "$ROOT/services" "$ROOT/libs" ||
        fail "$metric (read by alerts.yml) is no metric of the services"
done < <(grep -o 'blazz_[a-z_]*' "$DIR/alerts.yml" | sed 's/_bucket$//' | sort -u)

# README's headings as GitHub makes their anchors.
anchors="$(sed -n 's/^#\{1,6\} //p' "$ROOT/README.md" | tr '[:upper:]' '[:lower:]' |
           sed 's/[^a-z0-9 _-]//g; s/ /-/g')"
while read -r anchor; do
    grep -qx "$anchor" <<<"$anchors" || fail "runbook README.md#$anchor: no such heading in README.md"
done < <(sed -n 's/^ *runbook: *"README.md#\([^"]*\)"/\1/p' "$DIR/alerts.yml" | sort -u)
if grep -q '^ *- alert:' "$DIR/alerts.yml" &&
    [ "$(grep -c '^ *- alert:' "$DIR/alerts.yml")" -ne "$(grep -c '^ *runbook:' "$DIR/alerts.yml")" ]; then
    fail "every alert needs a runbook annotation"
fi

[ "$status" -eq 0 ] &&
    echo "check_alert_rules: ${#alerts[@]} alerts valid, each tested firing and quiet, each with its runbook"
exit "$status"
