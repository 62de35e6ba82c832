#!/bin/sh
# run.sh - the grafana TEST STAND-IN's start-up (see Dockerfile): refuse to
# start unless the provisioning compose.yaml mounts is complete (a
# datasource, a dashboard provider and at least one dashboard, all
# readable) and the admin password is set, then serve GET /api/health
# like Grafana does, and nothing else.
set -eu

need() {
    if [ ! -r "$1" ]; then
        echo "grafana stand-in: $1 is missing or unreadable" >&2
        exit 1
    fi
}

need /etc/grafana/provisioning/datasources
need /etc/grafana/provisioning/dashboards
found=0
for f in /etc/grafana/provisioning/datasources/*.y*ml /etc/grafana/provisioning/dashboards/*.y*ml \
         /var/lib/grafana/dashboards/*.json; do
    need "$f"
    found=$((found + 1))
done
if [ "$found" -lt 3 ]; then
    echo "grafana stand-in: expected a datasource, a dashboard provider and a dashboard" >&2
    exit 1
fi
if [ -z "${GF_SECURITY_ADMIN_PASSWORD:-}" ]; then
    echo "grafana stand-in: GF_SECURITY_ADMIN_PASSWORD is empty" >&2
    exit 1
fi

www="$(mktemp -d)"
mkdir -p "$www/api"
printf '{"commit":"stand-in","database":"ok","version":"11.2.0"}\n' >"$www/api/health"
echo "grafana stand-in: provisioning present ($found files); serving /api/health on :3000"
# PID 1 ignores a signal it has no handler for: stop on compose's SIGTERM
# as Grafana does, not at the grace period's kill.
busybox httpd -f -p 3000 -h "$www" &
trap 'kill "$!" 2>/dev/null; exit 0' TERM INT
wait "$!"
