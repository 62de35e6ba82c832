# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/compose/checks.sh - what `make compose-test` checks on the running
# compose stack (sourced by scripts/compose_test.sh; bash).
#
# Each ct_check_* function exercises the stack the way an operator or a
# gateway would (docker-compose against compose.yaml, blazzctl in the
# toolbox container, HTTP to ingest's published port, Prometheus' API on its
# published port) and ends with ct_result PASS|FAIL NAME DETAIL. Waiting is
# always bounded: every wait has a deadline and says what it saw last.
# Messages are gateway JSON from the gateway `smoke`, registered with
# blazzctl and bound to one seeded workspace's WhatsApp account, signed
# with its key (HMAC-SHA256, the key read from the environment, never from
# argv).

CT_SEED_SESSION=smoke-session-1
CT_GATEWAY=smoke
CT_WEBHOOK_PATH=/ok/smoke

# docker-compose on compose.yaml (unchanged) plus the smoke test's additions.
CT_COMPOSE=(docker-compose --env-file "$CT_ENV_FILE" --project-name "$CT_PROJECT"
            -f "$CT_REPO/compose.yaml" -f "$CT_REPO/tests/compose/smoke.yaml")
ct_compose() {
    "${CT_COMPOSE[@]}" "$@"
}

# ct_result VERDICT NAME DETAIL: one line of the report's checks, with the
# seconds since the one before (or since the checks began: CT_CHECKS_SINCE),
# so that the report shows which check the step's time went to.
ct_result() {
    local verdict="$1" name="$2" detail="$3" now
    now="$(date +%s%N)"
    printf '%-4s  %-34s %5.1f s  %s\n' "$verdict" "$name" \
        "$(awk -v a="${CT_CHECKS_SINCE:-$now}" -v b="$now" 'BEGIN {print (b - a) / 1e9}')" \
        "$detail" | tee -a "$CT_RUN/checks.txt"
    CT_CHECKS_SINCE="$now"
    [ "$verdict" = PASS ] || CT_FAILED=1
}

# Container names of one compose service (all states), one a line.
ct_containers() {
    podman ps -a --filter "label=com.docker.compose.project=$CT_PROJECT" \
        --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | sort
}

# "status health exit-code" of a container.
ct_container_state() {
    podman inspect "$1" | jq -r '.[0].State | "\(.Status) \((.Health // .Healthcheck // {}).Status // "none") \(.ExitCode)"'
}

ct_psql() {
    local pg
    pg="$(ct_containers postgres | head -n 1)"
    podman exec -i "$pg" psql -U blazz -d blazz -v ON_ERROR_STOP=1 -tAq "$@"
}

# blazzctl in the toolbox container, inside the compose network, as the
# Kafka admin (the migrate job's principal). Secrets reach it through the
# environment (-e NAME takes the value from ours), never through argv.
# --no-deps: the stack is up, and `run` would otherwise start migrate's
# dependencies again, one-shot jobs included.
# A container just created can start before the engine's DNS knows the
# stack's service names: blazzctl then fails to connect ("could not
# translate host name"), having done nothing, and is run again (3 times at
# most). 3b86fc6's CI run lost its compose checks to one such start.
ct_toolbox() {
    local err rc tries=0
    err="$(mktemp)"
    while :; do
        rc=0
        ct_compose run --rm -T --no-deps -e BLAZZ_SECRETS_KEYS -e BLAZZ_GATEWAY_KEY \
            --entrypoint blazzctl migrate "$@" 2>"$err" || rc=$?
        if [ "$rc" -ne 0 ] && [ "$tries" -lt 3 ] && grep -q 'could not translate host name' "$err"; then
            tries=$((tries + 1))
            cat "$err" >&2
            sleep 2
            continue
        fi
        cat "$err" >&2
        rm -f "$err"
        return "$rc"
    done
}

# ct_wait SECONDS COMMAND...: run COMMAND every 2 s until it succeeds.
ct_wait() {
    local deadline=$(( $(date +%s) + $1 ))
    shift
    while ! "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 2
    done
}

# ---- gateway traffic ---------------------------------------------------------

ct_message_json() {
    local session="$1" wam_id="$2" phone="$3"
    printf '{"session_id":"%s","chat_type":"private","contact_phone":"%s","contact_name":"Smoke %s",' \
        "$session" "$phone" "$phone"
    printf '"message_body":"compose smoke test %s","message_type":"chat","timestamp":%s,' \
        "$wam_id" "$(date +%s)"
    printf '"has_media":false,"message_id":"%s"}' "$wam_id"
}

# ct_post_event JSON: POST it to ingest's published port, signed as our
# gateways sign (the timestamped mode, ARCHITECTURE.md §9.2). Prints the
# HTTP status; the answer's body is in $CT_RUN/post.out.
ct_post_event() {
    local body="$1" signed ts key_id sig
    signed="$(printf '%s' "$body" | python3 -c '
import hashlib, hmac, os, sys, time
key = os.environ["CT_GATEWAY_KEY"].encode()
ts = str(int(time.time()))
mac = lambda k, m: hmac.new(k, m, hashlib.sha256)
key_id = mac(key, b"blazz-gateway-key-id").hexdigest()[:16]
signing_key = mac(key, b"blazz-gateway-timestamped-v1").digest()
print(ts, key_id, mac(signing_key, ts.encode() + b"." + sys.stdin.buffer.read()).hexdigest())')"
    read -r ts key_id sig <<<"$signed"
    curl -sS --max-time 20 -o "$CT_RUN/post.out" -w '%{http_code}' \
        -H 'Content-Type: application/json' -H "X-Blazz-Gateway: $CT_GATEWAY" \
        -H "X-Blazz-Timestamp: $ts" -H "X-Blazz-Key-Id: $key_id" \
        -H "X-WhatsApp-Signature: $sig" \
        --data-binary "$body" "http://127.0.0.1:$CT_INGEST_PORT/v1/events"
}

# ct_post_messages PREFIX COUNT: COUNT messages of the seeded account, each
# in its own conversation (so they spread over the partitions), wam ids
# PREFIX-1..COUNT. Fails on the first answer that is not 202.
ct_post_messages() {
    local prefix="$1" count="$2" i status
    for i in $(seq 1 "$count"); do
        status="$(ct_post_event "$(ct_message_json "$CT_SEED_SESSION" "$prefix-$i" "62813$(printf '%07d' "$i")")")"
        if [ "$status" != 202 ]; then
            echo "message $prefix-$i: ingest answered $status $(head -c 300 "$CT_RUN/post.out")"
            return 1
        fi
    done
}

ct_stored_count() {
    ct_psql -v prefix="$1-%" <<<"SELECT count(*) FROM chats WHERE wam_id LIKE :'prefix';"
}

ct_stored_at_least() {
    [ "$(ct_stored_count "$1")" -ge "$2" ]
}

# ---- the checks ----------------------------------------------------------------

# The one-shot jobs, one a line: the services another one waits for with
# `condition: service_completed_successfully` (migrate, and whatever else
# compose.yaml runs once before the services).
ct_oneshot_services() {
    ct_compose config 2>/dev/null | python3 -c '
import sys, yaml
services = yaml.safe_load(sys.stdin)["services"]
jobs = set()
for service in services.values():
    deps = service.get("depends_on") or {}
    if isinstance(deps, dict):
        jobs.update(name for name, dep in deps.items()
                    if (dep or {}).get("condition") == "service_completed_successfully")
print("\n".join(sorted(jobs)))'
}

# ct_check_healthy [NAME]: every long-running service's containers.
ct_check_healthy() {
    local check="${1:-every service healthy}" services service name state bad=() count=0
    services="$(ct_compose config --services | grep -vxF -f <(ct_oneshot_services))"
    ct_all_healthy() {
        bad=()
        count=0
        for service in $services; do
            for name in $(ct_containers "$service"); do
                state="$(ct_container_state "$name")"
                count=$((count + 1))
                [[ "$state" == "running healthy "* ]] || bad+=("$name: $state")
            done
        done
        [ "${#bad[@]}" -eq 0 ] && [ "$count" -gt 0 ]
    }
    if ct_wait 240 ct_all_healthy; then
        ct_result PASS "$check" "$count containers: $(echo $services)"
    else
        ct_result FAIL "$check" "not healthy: ${bad[*]}"
    fi
}

# Every one-shot job exited 0, and migrate's topic catalogue is there.
ct_check_migrate() {
    local job name state jobs_ok=() jobs_bad=() topics want missing=() wrong=() t
    for job in $(ct_oneshot_services); do
        name="$(ct_containers "$job" | head -n 1)"
        state="$(ct_container_state "$name" 2>/dev/null)"
        if [[ "$state" == "exited "*" 0" ]]; then
            jobs_ok+=("$job")
        else
            jobs_bad+=("$job: ${state:-no container}")
        fi
    done
    [ "${#jobs_ok[@]}" -gt 0 ] || jobs_bad+=("no one-shot job found")
    topics="$(ct_toolbox topics list --json 2>>"$CT_LOGS/toolbox.err")"
    want="$(sed -n 's/^ *\[BZ_TOPIC_[A-Z_]*\] = "\([a-z.]*\)",$/\1/p' "$CT_REPO/libs/kafka/topics.c")"
    for t in $want; do
        local partitions
        partitions="$(jq -r --arg t "$t" '.topics[] | select(.name == $t) | .partitions' <<<"$topics" 2>/dev/null)"
        if [ -z "$partitions" ]; then
            missing+=("$t")
        elif [ "$partitions" != "$CT_PARTITIONS" ]; then
            wrong+=("$t:$partitions")
        fi
    done
    if [ "${#jobs_bad[@]}" -eq 0 ] && [ "${#missing[@]}" -eq 0 ] && [ "${#wrong[@]}" -eq 0 ]; then
        ct_result PASS "one-shot jobs exit 0, topics" \
            "${jobs_ok[*]} exited 0; $(wc -w <<<"$want") topics x $CT_PARTITIONS partitions; migrations: $(ct_psql <<<'SELECT count(*) FROM schema_migrations;' 2>/dev/null || echo '?')"
    else
        ct_result FAIL "one-shot jobs exit 0, topics" \
            "jobs: ${jobs_bad[*]:-ok}; missing: ${missing[*]:-none}; partitions: ${wrong[*]:-ok}"
    fi
}

ct_seed_account() {
    local ws
    ws="$(ct_psql <<<"INSERT INTO workspaces (name, metadata) VALUES ('compose smoke test', '{\"smoke\": true}') RETURNING id;")" \
        || return 1
    ct_psql -v ws="$ws" -v session="$CT_SEED_SESSION" >/dev/null <<'SQL' || return 1
INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, provider_type, status,
                               last_connected_at)
VALUES (:ws, :'session', '+628110000001', 'webjs', 'connected', now()) RETURNING id;
SQL
    CT_WORKSPACE="$ws"
    BLAZZ_GATEWAY_KEY="$CT_GATEWAY_KEY" ct_toolbox gateways add "$CT_GATEWAY" --name "compose smoke" \
        >>"$CT_LOGS/toolbox.out" 2>>"$CT_LOGS/toolbox.err" \
    && ct_toolbox topics ensure --gateway "$CT_GATEWAY" --timeout 60000 \
        >>"$CT_LOGS/toolbox.out" 2>>"$CT_LOGS/toolbox.err" \
    && ct_toolbox gateways bind "$CT_GATEWAY" --session "$CT_SEED_SESSION" \
        >>"$CT_LOGS/toolbox.out" 2>>"$CT_LOGS/toolbox.err"
}

# ingest reads its gateways and their keys every gateway_keys_refresh_s
# (10 s, services/ingest/README.md), so the gateway ct_seed_account just
# added is unknown to it for up to that long: post until it is known. An
# unknown gateway is answered as a wrong key is (401 signature_mismatch,
# stores nothing), so every 401 is retried; a key that is really wrong is
# still 401 when the wait ends. The status is left in CT_FIRST_STATUS.
ct_post_first_event() {
    CT_FIRST_STATUS="$(ct_post_event "$(ct_message_json "$CT_SEED_SESSION" smoke-first-1 6281300000000)")"
    [ "$CT_FIRST_STATUS" != 401 ]
}

ct_check_ingest_to_postgres() {
    local port started status
    port="$(ct_compose port ingest 8080 2>/dev/null)"
    CT_INGEST_PORT="${port##*:}"
    if [ -z "$CT_INGEST_PORT" ] || ! ct_seed_account; then
        ct_result FAIL "gateway -> ingest -> PostgreSQL" "no published port ('$port') or seeding failed"
        return
    fi
    started="$(date +%s)"
    ct_wait 30 ct_post_first_event
    status="$CT_FIRST_STATUS"
    if [ "$status" = 202 ] && ct_wait 90 ct_stored_at_least smoke-first 1; then
        ct_result PASS "gateway -> ingest -> PostgreSQL" \
            "POST 127.0.0.1:$CT_INGEST_PORT/v1/events 202 ($(jq -r .event_id "$CT_RUN/post.out")), row in chats after $(( $(date +%s) - started )) s"
    else
        ct_result FAIL "gateway -> ingest -> PostgreSQL" \
            "POST answered $status $(head -c 200 "$CT_RUN/post.out"); stored: $(ct_stored_count smoke-first)"
    fi
}

# ct_prometheus_jobs_up MIN_CHAT_SYNC: every job has a target up, chat-sync
# at least MIN_CHAT_SYNC of them. Leaves the per-job counts in CT_PROM_UP.
ct_prometheus_jobs_up() {
    local min_chat_sync="$1" targets job n ok=0
    targets="$(curl -fsS --max-time 10 "http://127.0.0.1:$CT_PROMETHEUS_PORT/api/v1/targets" 2>/dev/null)" \
        || { CT_PROM_UP="prometheus not answering"; return 1; }
    CT_PROM_UP=""
    for job in ingest chat-sync webhook-dispatcher campaign-sender cleanup meta-sender prometheus; do
        n="$(jq --arg j "$job" '[.data.activeTargets[] | select(.labels.job == $j and .health == "up")] | length' <<<"$targets")"
        CT_PROM_UP+="$job=$n "
        [ "$n" -ge 1 ] || ok=1
        [ "$job" != chat-sync ] || [ "$n" -ge "$min_chat_sync" ] || ok=1
    done
    return "$ok"
}

ct_check_prometheus() {
    local min="$1" name="$2"
    if ct_wait 120 ct_prometheus_jobs_up "$min"; then
        ct_result PASS "$name" "targets up: ${CT_PROM_UP% }"
    else
        ct_result FAIL "$name" "targets up: ${CT_PROM_UP% }"
    fi
}

# Prometheus loaded every alert of docker/prometheus/alerts.yml (compose
# mounts it beside prometheus.yml, which names it in rule_files).
ct_check_alert_rules() {
    local want got
    want="$(grep -c '^ *- alert:' "$CT_REPO/docker/prometheus/alerts.yml")"
    got="$(curl -fsS --max-time 10 "http://127.0.0.1:$CT_PROMETHEUS_PORT/api/v1/rules?type=alert" 2>/dev/null |
           jq '[.data.groups[].rules[] | select(.type == "alerting")] | length' 2>/dev/null || echo 0)"
    if [ "$got" = "$want" ]; then
        ct_result PASS "Prometheus loaded the alert rules" "$got alerting rules of docker/prometheus/alerts.yml"
    else
        ct_result FAIL "Prometheus loaded the alert rules" "$got alerting rules loaded, alerts.yml has $want"
    fi
}

# ---- exporters and backups -------------------------------------------------------

# ct_prom_value PROMQL: the first sample of an instant query, empty when none.
ct_prom_value() {
    curl -fsS --max-time 10 -G --data-urlencode "query=$1" \
        "http://127.0.0.1:$CT_PROMETHEUS_PORT/api/v1/query" 2>/dev/null \
        | jq -r '.data.result[0].value[1] // empty' 2>/dev/null
}

# The exporters' jobs up and the series the blazz-infrastructure alerts read:
# Kafka's under-replicated partitions (the JMX agent's rule), the host's CPU
# and filesystems, and pg_up for PostgreSQL (pg_replication_lag_seconds
# comes with the official exporter image only: the stand-in's is older).
# What was seen is left in CT_EXPORTERS.
ct_exporters_report() {
    local job v urp pgup cpus fs
    CT_EXPORTERS=""
    for job in kafka postgres node; do
        v="$(ct_prom_value "up{job=\"$job\"}")"
        CT_EXPORTERS+="up{job=$job} ${v:-none}, "
        [ "$v" = 1 ] || return 1
    done
    urp="$(ct_prom_value 'kafka_server_replicamanager_underreplicatedpartitions')"
    pgup="$(ct_prom_value 'pg_up')"
    cpus="$(ct_prom_value 'count(node_cpu_seconds_total{mode="idle"})')"
    fs="$(ct_prom_value 'count(node_filesystem_avail_bytes)')"
    CT_EXPORTERS+="kafka_server_replicamanager_underreplicatedpartitions ${urp:-none}, pg_up ${pgup:-none}, "
    CT_EXPORTERS+="node_cpu_seconds_total for ${cpus:-no} CPUs, node_filesystem_avail_bytes for ${fs:-no} filesystems"
    [ -n "$urp" ] && [ "$pgup" = 1 ] && [ -n "$cpus" ] && [ -n "$fs" ]
}

# Prometheus scrapes the exporters, and postgres-exporter's role is a
# member of pg_monitor, not a superuser.
ct_check_exporters() {
    local role
    role="$(ct_psql <<<"SELECT CASE WHEN rolsuper THEN 'superuser' ELSE 'not superuser' END
                              || CASE WHEN pg_has_role('blazz_monitor', 'pg_monitor', 'member')
                                      THEN ', member of pg_monitor' ELSE ', not in pg_monitor' END
                         FROM pg_roles WHERE rolname = 'blazz_monitor';" 2>/dev/null)"
    if ct_wait 120 ct_exporters_report && [ "$role" = "not superuser, member of pg_monitor" ]; then
        ct_result PASS "Prometheus scrapes the exporters" "$CT_EXPORTERS; blazz_monitor: $role"
    else
        ct_result FAIL "Prometheus scrapes the exporters" "${CT_EXPORTERS:-prometheus not answering}; blazz_monitor: ${role:-missing}"
    fi
}

# blazz-pg-backup in the backup service's container (as its user, postgres).
ct_backup() {
    podman exec -i "$(ct_containers backup | head -n 1)" /usr/local/bin/blazz-pg-backup "$@"
}

ct_full_backup_taken() {
    CT_BACKUP_INFO="$(ct_backup info --output=json 2>>"$CT_LOGS/backup.err")"
    [ "$(jq '[.[0].backup[]? | select(.type == "full")] | length' <<<"$CT_BACKUP_INFO" 2>/dev/null)" -ge 1 ]
}

# The backup service took its first full backup on its own, and
# `pgbackrest check` sees a forced WAL switch archived by the postgres
# container's archive_command. Then an operator's differential backup and
# the newest backup restored, started and read (blazz-pg-backup verify).
ct_check_backups() {
    local name="pgBackRest: full backup, WAL archived" full checked wal
    if ! ct_wait 180 ct_full_backup_taken; then
        ct_result FAIL "$name" "no full backup after 180 s: $(head -c 300 <<<"${CT_BACKUP_INFO:-}") $(tail -n 3 "$CT_LOGS/backup.err" 2>/dev/null)"
        return
    fi
    full="$(jq -r '[.[0].backup[] | select(.type == "full")][0] | "\(.label) (\(.info.size) bytes)"' <<<"$CT_BACKUP_INFO")"
    if checked="$(ct_backup check 2>&1)" && ct_full_backup_taken; then
        wal="$(jq -r '.[0].archive[0] | "\(.min) .. \(.max)"' <<<"$CT_BACKUP_INFO")"
        ct_result PASS "$name" "scheduled full backup $full; archived WAL $wal; pgbackrest check passed"
    else
        ct_result FAIL "$name" "full backup $full; pgbackrest check: $(tail -n 3 <<<"$checked")"
    fi
    local diff verified name="backup restores (diff, verify; local and offsite)"
    if diff="$(ct_backup backup diff 2>&1)" && verified="$(ct_backup verify 2>&1)" \
        && grep -q 'diff backup taken.*offsite repository' <<<"$diff" \
        && grep -q '(offsite): restored, started and read' <<<"$verified"; then
        ct_result PASS "$name" \
            "$(grep -o 'diff backup taken.*' <<<"$diff" | paste -sd ';'); $(grep -o 'verified.*' <<<"$verified" | paste -sd ';')"
    else
        ct_result FAIL "$name" "$(tail -n 3 <<<"$diff"); $(tail -n 5 <<<"${verified:-}")"
    fi
}

# README's restore-check in the running backup service, reading the
# offsite repository (a one-off `compose run` of it next to the running
# postgres asks podman for the links compose v1 adds, which it refuses).
ct_restore_check() {
    podman exec -i -e BLAZZ_BACKUP_REPO=offsite "$(ct_containers backup | head -n 1)" \
        /usr/local/bin/blazz-pg-backup restore-check "$1"
}

# The services that write to PostgreSQL, and what else uses it, stopped for
# a restore (README.md, "Running with compose").
CT_RESTORE_STOP=(ingest chat-sync webhook-dispatcher campaign-sender cleanup meta-sender
                 backup postgres-exporter postgres)

# The operator's restore of README.md, step by step, from the offsite
# repository alone: Kafka's retention checked against the backup at the
# restore point before anything changes (refused, exit 3, for a report
# whose partitions were all emptied past it; passed for the real one),
# then the local repository lost (the pgbackrest volume emptied, as with
# the disk it was on), then BLAZZ_BACKUP_REPO=offsite; the backup service
# makes the local repository's stanza again when it starts. A workspace
# written before the restore point is there afterwards, one written after
# it is not; the retention check passes and the restore fence is recorded
# before the services start again.
ct_check_restore() {
    local name="restore to a moment from the offsite repository (README steps)" target rows fence failed="" drill
    drill="restore drill $(date +%s)"
    ct_psql -v n="$drill: before" <<<"INSERT INTO workspaces (name, metadata) VALUES (:'n', '{}');" >/dev/null
    sleep 1
    target="$(ct_psql <<<"SELECT now()::text;")"
    sleep 1
    ct_psql -v n="$drill: after" <<<"INSERT INTO workspaces (name, metadata) VALUES (:'n', '{}');" >/dev/null
    # both inserts archived: check switches the WAL and waits for it
    ct_backup check >>"$CT_LOGS/restore.log" 2>&1 || failed+="pgbackrest check failed; "
    ct_compose run --rm -T --no-deps --entrypoint blazzctl migrate lag --json >"$CT_RUN/lag-now.json" \
        2>>"$CT_LOGS/restore.log" || failed+="blazzctl lag failed; "
    jq '.groups[].partitions[].low |= 1000000000000' "$CT_RUN/lag-now.json" >"$CT_RUN/lag-emptied.json"
    local refused=0
    ct_restore_check "$target" <"$CT_RUN/lag-emptied.json" >>"$CT_LOGS/restore.log" 2>&1 || refused=$?
    [ "$refused" -eq 3 ] || failed+="restore-check with every partition emptied exited $refused, not 3; "
    {
        ct_restore_check "$target" <"$CT_RUN/lag-now.json" \
        && ct_compose stop "${CT_RESTORE_STOP[@]}" \
        && ct_compose run --rm -T --no-deps --entrypoint sh backup \
            -c 'rm -rf /var/lib/pgbackrest/archive /var/lib/pgbackrest/backup' \
        && ct_compose run --rm -T --no-deps -e BLAZZ_BACKUP_REPO=offsite backup restore "$target" \
        && ct_compose up -d --no-build postgres \
        && ct_compose run --rm -T --no-deps backup recovered \
        && ct_compose run --rm -T --no-deps --entrypoint blazzctl migrate lag --data-end --json >"$CT_RUN/lag.json" \
        && ct_compose run --rm -T --no-deps backup check-retention <"$CT_RUN/lag.json" \
        && ct_compose run --rm -T --no-deps backup restore-fence "$target" <"$CT_RUN/lag.json" \
        && ct_compose up -d --no-build
    } >>"$CT_LOGS/restore.log" 2>&1 || failed+="a step failed (logs/restore.log: $(tail -n 2 "$CT_LOGS/restore.log" | tr '\n' ' ')); "
    rows="$(ct_psql -v d="$drill:%" <<<"SELECT string_agg(name, ', ' ORDER BY id) FROM workspaces WHERE name LIKE :'d';" 2>/dev/null)"
    fence="$(ct_psql -v t="$target" <<<"SELECT count(o.*) FROM restore_fences f LEFT JOIN restore_fence_offsets o ON o.fence_id = f.id WHERE f.restored_to = :'t' GROUP BY f.id;" 2>/dev/null)"
    [ "$rows" = "$drill: before" ] || failed+="workspaces after the restore: '${rows:-none}'; "
    [ -n "$fence" ] || failed+="no restore fence recorded for $target; "
    grep -q "restored to $target from the offsite repository" "$CT_LOGS/restore.log" ||
        failed+="the restore did not say it read the offsite repository; "
    if [ -z "$failed" ]; then
        ct_result PASS "$name" "retention checked before (an emptied report refused); restored to $target: the row before it back, the one after gone; retention checked; fence on $fence chat.sync partitions; stack started again"
    else
        ct_result FAIL "$name" "$failed"
    fi
    ct_check_backup_before_migrate
}

# The stack's first start found a new database (nothing to back up); its
# start after the restore, a migrated one: migrate waited for a
# pre-migration backup in both repositories.
ct_check_backup_before_migrate() {
    local name="a backup before migrate (compose)" log
    log="$(ct_compose logs --no-color backup-before-migrate 2>&1)"
    if grep -q 'a new database, nothing to back up' <<<"$log" \
        && grep -q 'backup taken.*(pre-migration: .*), local repository' <<<"$log" \
        && grep -q 'backup taken.*(pre-migration: .*), offsite repository' <<<"$log"; then
        ct_result PASS "$name" "first start: nothing to back up; after the restore: $(grep -o 'incr backup taken.*' <<<"$log" | head -n 1 | cut -c1-120)"
    else
        ct_result FAIL "$name" "backup-before-migrate said: $(tail -n 4 <<<"$log" | tr '\n' ' ')"
    fi
}

ct_receiver_records() {
    podman exec "$(ct_containers webhook-receiver | head -n 1)" cat /tmp/requests.jsonl 2>/dev/null
}

# Verify the Standard Webhooks signatures of the recorded requests that
# carry the wanted wam ids; prints "<ids delivered with a valid signature>
# <requests with a bad one>".
ct_signed_deliveries() {
    ct_receiver_records | CT_WHSEC="$CT_WHSEC" python3 -c '
import base64, hashlib, hmac, json, os, sys
key = base64.b64decode(os.environ["CT_WHSEC"].split("_", 1)[1])
want, ok, bad = set(sys.argv[1:]), set(), 0
for line in sys.stdin:
    r = json.loads(line)
    h, body = r["headers"], r["body"]
    signed = "%s.%s.%s" % (h.get("webhook-id"), h.get("webhook-timestamp"), body)
    sig = base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest()).decode()
    valid = any(s == "v1," + sig for s in h.get("webhook-signature", "").split())
    for w in want:
        if ("\"%s\"" % w) in body:
            if valid:
                ok.add(w)
            else:
                bad += 1
print(len(ok), bad)' "$@"
}

ct_all_signed() {
    local seen
    seen="$(ct_signed_deliveries "$@")"
    CT_WEBHOOK_SEEN="$seen"
    [ "${seen%% *}" -eq "$#" ] && [ "${seen##* }" -eq 0 ]
}

ct_check_webhook() {
    local added endpoint
    added="$(ct_toolbox webhooks add --workspace "$CT_WORKSPACE" \
        --url "http://webhook-receiver:8000$CT_WEBHOOK_PATH" --events message.created \
        --name "compose smoke" --json 2>>"$CT_LOGS/toolbox.err")"
    endpoint="$(jq -r '.id // empty' <<<"$added" 2>/dev/null)"
    CT_WHSEC="$(jq -r '.secret // empty' <<<"$added" 2>/dev/null)"
    if [ -z "$endpoint" ] || [ -z "$CT_WHSEC" ]; then
        ct_result FAIL "blazzctl webhook -> signed delivery" "webhooks add said: $(head -c 300 <<<"$added")"
        return
    fi
    local failed
    if failed="$(ct_post_messages smoke-hook 3)" \
        && ct_wait 90 ct_all_signed smoke-hook-1 smoke-hook-2 smoke-hook-3; then
        ct_result PASS "blazzctl webhook -> signed delivery" \
            "endpoint $endpoint (toolbox); 3 message.created deliveries, signatures valid"
    else
        ct_result FAIL "blazzctl webhook -> signed delivery" \
            "${failed:-delivered with a valid signature / bad: ${CT_WEBHOOK_SEEN:-none}}"
    fi
}

# ---- the CRM's send path ---------------------------------------------------------

ct_agent_send_released() {
    CT_CRM_STATE="$(ct_psql -v id="$1" <<'SQL'
SELECT coalesce((SELECT message_status FROM chats WHERE uuid::text = :'id'), 'no chats row')
       || ', ' || (SELECT count(*) FROM send_ledger WHERE reference = :'id' AND kind = 'agent')
       || ' send_ledger row(s)';
SQL
)"
    [[ "$CT_CRM_STATE" == *", 1 send_ledger row(s)" ]]
}

# An API key made with blazzctl in the toolbox; the CRM's POST /v1/messages
# on ingest's published port (the key goes to curl in a file, never on
# argv); then the route of ARCHITECTURE.md §11.1 up to the provider:
# crm.commands, chat-sync's chats row, campaign-sender's release under the
# send budget (its send_ledger row).
ct_check_crm_send() {
    local name="CRM message -> send released" key contact status message_id headers="$CT_STATE/crm.headers"
    key="$(ct_toolbox apikeys create --workspace "$CT_WORKSPACE" --name "compose smoke" --json \
        2>>"$CT_LOGS/toolbox.err" | jq -r '.key // empty' 2>/dev/null)"
    contact="$(ct_psql -v ws="$CT_WORKSPACE" <<<"SELECT min(id) FROM contacts WHERE workspace_id = :ws;")"
    if [ -z "$key" ] || [ -z "$contact" ]; then
        ct_result FAIL "$name" "no API key from blazzctl apikeys create, or no contact ('$contact')"
        return
    fi
    ( umask 077; printf 'Authorization: Bearer %s\nContent-Type: application/json\n' "$key" >"$headers" )
    status="$(curl -sS --max-time 20 -o "$CT_RUN/post.out" -w '%{http_code}' -H "@$headers" \
        --data-binary "{\"idempotency_key\":\"compose-smoke-1\",\"contact_id\":$contact,\"body\":\"compose smoke reply\"}" \
        "http://127.0.0.1:$CT_INGEST_PORT/v1/messages")"
    rm -f "$headers"
    message_id="$(jq -r '.message_id // empty' "$CT_RUN/post.out" 2>/dev/null)"
    if [ "$status" = 202 ] && [ -n "$message_id" ] && ct_wait 90 ct_agent_send_released "$message_id"; then
        ct_result PASS "$name" \
            "POST /v1/messages 202 ($message_id) with a blazzctl API key; chats row $CT_CRM_STATE"
    else
        ct_result FAIL "$name" \
            "POST /v1/messages answered $status $(head -c 200 "$CT_RUN/post.out"); ${CT_CRM_STATE:-nothing stored}"
    fi
}

# Partitions each chat-sync replica reports in /readyz, one number a line.
ct_chat_sync_assignments() {
    local name body
    for name in $(ct_containers chat-sync); do
        body="$(podman exec "$name" /usr/local/bin/blazzctl health --json http://127.0.0.1:9100/readyz 2>/dev/null \
            | jq -r '.body' 2>/dev/null)"
        jq -r '.checks[] | select(.name == "partitions") | .detail' <<<"$body" 2>/dev/null \
            | awk '{print $1 + 0}' | grep . || echo 0
    done
}

# ct_partitions_shared TOTAL: three replicas, each with some of the
# group's TOTAL partitions, all of them assigned.
ct_partitions_shared() {
    local total="$1" counts
    counts="$(ct_chat_sync_assignments)"
    CT_ASSIGNED="$(echo $counts)"
    [ "$(wc -l <<<"$counts")" -eq 3 ] && ! grep -qx 0 <<<"$counts" \
        && [ "$(awk '{s += $1} END {print s}' <<<"$counts")" -eq "$total" ]
}

# The group's partitions are whatever the lone replica holds before scaling
# (chat-sync consumes several topics: the check need not know which).
ct_check_scale() {
    local total
    total="$(ct_chat_sync_assignments)"
    if ! [[ "$total" =~ ^[0-9]+$ ]] || [ "$total" -lt "$CT_PARTITIONS" ]; then
        ct_result FAIL "--scale chat-sync=3 shares partitions" "before scaling, one replica held: $(echo $total)"
        return
    fi
    if ! ct_compose up -d --no-build --scale chat-sync=3 >>"$CT_LOGS/compose.log" 2>&1; then
        ct_result FAIL "--scale chat-sync=3 shares partitions" "docker-compose up --scale failed (logs/compose.log)"
        return
    fi
    if ct_wait 120 ct_partitions_shared "$total"; then
        ct_result PASS "--scale chat-sync=3 shares partitions" \
            "partitions per replica: $CT_ASSIGNED (of the $total one replica held alone)"
    else
        ct_result FAIL "--scale chat-sync=3 shares partitions" "per replica: ${CT_ASSIGNED:-none} (of $total)"
    fi
}

ct_check_stop_start() {
    local failed="" started stop_s name state exits=()
    failed="$(ct_post_messages smoke-before-stop 30)" || { ct_result FAIL "stop chat-sync: exit 0, no loss" "$failed"; return; }
    started="$(date +%s%N)"
    ct_compose stop chat-sync >>"$CT_LOGS/compose.log" 2>&1
    stop_s="$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}')"
    for name in $(ct_containers chat-sync); do
        state="$(ct_container_state "$name")"
        exits+=("${state##* }")
        [[ "$state" == "exited "*" 0" ]] || failed+="$name: $state; "
    done
    failed+="$(ct_post_messages smoke-while-stopped 30)" || true
    ct_compose start chat-sync >>"$CT_LOGS/compose.log" 2>&1 || failed+="start failed; "
    local stored=0
    ct_both_batches_stored() {
        stored=$(( $(ct_stored_count smoke-before-stop) + $(ct_stored_count smoke-while-stopped) ))
        [ "$stored" -ge 60 ]
    }
    ct_wait 120 ct_both_batches_stored || failed+="stored $stored of 60; "
    # Exactly once: no message stored twice either.
    [ "$stored" -eq 60 ] || failed+="stored $stored rows for 60 messages; "
    if ! awk -v s="$stop_s" 'BEGIN {exit !(s < 30)}'; then
        failed+="stop took $stop_s s (grace 30 s); "
    fi
    if [ -z "$failed" ]; then
        ct_result PASS "stop chat-sync: exit 0, no loss" \
            "3 replicas stopped in $stop_s s (grace 30 s), exit codes ${exits[*]}; 30 sent before + 30 while stopped: 60 stored once each after start"
    else
        ct_result FAIL "stop chat-sync: exit 0, no loss" "$failed"
    fi
}

ct_dlq_shows() {
    local event_id="$1"
    CT_DLQ_TAIL="$(ct_toolbox dlq tail wa.inbound.dlq --limit 20 2>>"$CT_LOGS/toolbox.err")"
    grep -q "$event_id" <<<"$CT_DLQ_TAIL" && grep -q unknown_session <<<"$CT_DLQ_TAIL"
}

ct_check_dlq() {
    local status event_id
    status="$(ct_post_event "$(ct_message_json smoke-no-such-session smoke-dead-letter 6281399999999)")"
    event_id="$(jq -r '.event_id // empty' "$CT_RUN/post.out" 2>/dev/null)"
    if [ "$status" = 202 ] && [ -n "$event_id" ] && ct_wait 60 ct_dlq_shows "$event_id"; then
        ct_result PASS "bad event -> DLQ -> blazzctl dlq tail" \
            "event $event_id (unknown session) in wa.inbound.dlq, shown by the toolbox"
    else
        ct_result FAIL "bad event -> DLQ -> blazzctl dlq tail" \
            "POST $status $(head -c 200 "$CT_RUN/post.out"); tail: $(head -c 300 <<<"${CT_DLQ_TAIL:-}")"
    fi
}

ct_check_images() {
    local image problems all=""
    for image in "$@"; do
        problems="$(ct_image_problems "$image")"
        [ -z "$problems" ] || all+="$image: $(echo $problems); "
    done
    if [ -z "$all" ]; then
        ct_result PASS "project images non-root, no build tools" "$# images, user blazz, no cc/ld/make/headers"
    else
        ct_result FAIL "project images non-root, no build tools" "$all"
    fi
}

# A container that crashed and came back (restart: unless-stopped) can look
# healthy by the time anyone looks: count restarts and memory-limit kills.
ct_check_no_restarts() {
    local name restarts problems=""
    for name in $(podman ps -a --filter "label=com.docker.compose.project=$CT_PROJECT" --format '{{.Names}}'); do
        restarts="$(podman inspect "$name" | jq -r '.[0].RestartCount // 0')"
        [ "$restarts" = 0 ] || problems+="$name restarted $restarts times; "
    done
    if [ -e "$CT_STATE/oom" ]; then
        problems+="a container hit its memory limit (conmon wrote $CT_STATE/oom); "
    fi
    if [ -z "$problems" ]; then
        ct_result PASS "no restart, no memory-limit kill" "restart counts all 0"
    else
        ct_result FAIL "no restart, no memory-limit kill" "$problems"
    fi
}

# compose stops a container with its stop signal and kills it at its grace
# period; podman's service log names each one it had to kill ("NAME
# SECONDS" lines). A kill at the stack's stop is a shutdown stuck on
# something already gone (a service on its database, PostgreSQL's archiver
# on the offsite repository) or a PID 1 that ignores the signal. $1: the
# log's lines before the stop.
ct_killed_at_grace() {
    tail -n +"$(($1 + 1))" "$CT_LOGS/podman-service.log" |
        sed -n 's/.*failed to stop container \([^ ]*\) in \([0-9]*\) seconds.*/\1 \2/p'
}

# The last lines of each container killed at its grace period, kept in
# logs/containers/<name>.stop.log: what it was doing when the kill came.
ct_save_stop_logs() {
    local name seconds
    mkdir -p "$CT_LOGS/containers"
    while read -r name seconds; do
        podman logs --tail 40 "$name" >"$CT_LOGS/containers/$name.stop.log" 2>&1 || true
    done < <(ct_killed_at_grace "$1")
}

ct_check_stopped_on_signal() {
    local name seconds killed=""
    while read -r name seconds; do
        killed+="$name ($seconds s; its last line: $(tail -n 1 "$CT_LOGS/containers/$name.stop.log" 2>/dev/null | head -c 300)) "
    done < <(ct_killed_at_grace "$1")
    if [ -z "$killed" ]; then
        ct_result PASS "down: each container stops on its signal" "none killed at its grace period"
    else
        ct_result FAIL "down: each container stops on its signal" \
            "killed at the grace period: ${killed}(logs/containers/*.stop.log)"
    fi
}

ct_check_torn_down() {
    local left
    left="$(podman ps -aq --filter "label=com.docker.compose.project=$CT_PROJECT" | wc -l) containers, "
    left+="$(podman volume ls -q | grep -c "^${CT_PROJECT}_") volumes, "
    left+="$(podman network ls -q --filter "name=${CT_PROJECT}_" | wc -l) networks"
    if [ "$left" = "0 containers, 0 volumes, 0 networks" ]; then
        ct_result PASS "down -v removes everything" "$left left"
    else
        ct_result FAIL "down -v removes everything" "$left left"
    fi
}
