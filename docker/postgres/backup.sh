#!/bin/bash
# docker/postgres/backup.sh - compose's `backup` service and the operator's
# restore tool, installed as blazz-pg-backup in docker/postgres/Dockerfile's
# image (pgBackRest settings: pgbackrest.conf beside this file; the local
# stack's counterpart is scripts/lib/pg_backup.sh, docs/ARCHITECTURE.md §6.5).
#
#   schedule          (the service) sets up, then loops forever: a full
#                     backup when none is younger than
#                     BLAZZ_BACKUP_FULL_EVERY_HOURS (24), otherwise a
#                     BLAZZ_BACKUP_BETWEEN one (diff, or incr) once the
#                     newest is BLAZZ_BACKUP_EVERY_MINUTES (60) old. The
#                     schedule is read from the repository, so a restarted
#                     container does not take an extra backup. One line per
#                     backup in the log; `health` answers from the last one.
#   backup [full|diff|incr]  one backup now (full by default).
#                     With an offsite repository (repo2, defined by the
#                     file .env's BLAZZ_BACKUP_OFFSITE_CONF names:
#                     offsite.conf) every backup, scheduled or not, is
#                     taken in both; archive_command pushes each WAL
#                     segment to both already.
#   before-migrate    (compose's backup-before-migrate job, which migrate
#                     waits for) an incremental backup annotated
#                     "pre-migration" of a database that has migrations
#                     already; a new one has nothing to lose. This image
#                     cannot see which migrations the blazzctl image
#                     brings, so it takes one whenever the job runs (each
#                     `docker compose up` that starts migrate again):
#                     seed 004's backup before every schema change.
#   info [ARGS]       pgbackrest info (e.g. --output=json).
#   check             pgbackrest check: a WAL switch, archived and found in
#                     the repository.
#   verify            the newest backup (of each repository, or of the
#                     one BLAZZ_BACKUP_REPO names: local or offsite)
#                     restored into a scratch folder of this container (as
#                     much space as the database), started on its own
#                     socket, read (migrations and messages) and removed: a
#                     backup is only as good as its last restore.
#   restore-check TIME|latest  before a restore changes anything, with
#                     `blazzctl lag --json` of the running database on
#                     stdin: the backup restored to TIME in a scratch
#                     folder (as verify), its kafka_offsets read, and each
#                     compared with its partition's first record Kafka
#                     keeps now. One retention has emptied past, or one
#                     the report does not show, is named and refused (exit
#                     3, or 4: cannot tell); with
#                     BLAZZ_RESTORE_IGNORE_RETENTION=1 it passes unchecked
#                     (the fence is recorded either way), as the local
#                     stack's restore does. `latest` is checked at the
#                     newest backup's end, the archive's end being known
#                     only once replayed: a gap it names may be one the
#                     replay would close.
#   restore TIME|latest  with PostgreSQL stopped: the cluster restored in
#                     place (--delta; from the repository BLAZZ_BACKUP_REPO
#                     names, else the first that has what it needs) and set
#                     to recover to TIME (any form
#                     PostgreSQL reads, "2026-11-25 08:30:00+00") or to the
#                     end of the archive, then promote. The server does the
#                     recovery when it starts again.
#   recovered         after a restore, once `postgres` is started again:
#                     waits (10 min at most) until its WAL replay has ended
#                     and it accepts writes.
#   check-retention   after a restore, with `blazzctl lag --data-end --json`
#                     on stdin: restore-check's comparison again, on the
#                     restored database; the partitions Kafka's retention
#                     emptied past it are named and the exit status is 3.
#   restore-fence LABEL  after a restore, with the same report on stdin,
#                     before the senders start: the restore fence
#                     (db/migrations/0045, 0054): where the data of
#                     chat.sync and the campaign topics ends, which
#                     chat-sync and campaign-sender must re-read to before
#                     anything is sent. Both read the report with
#                     restore_window.sh, the local stack's restore's own.
#   health            0 while the repository's newest backups keep to the
#                     schedule (an hour of slack for a backup's own run) and
#                     this container's last scheduled backup did not fail:
#                     read from the repository, so a recreated container is
#                     healthy at once.
#
# Setting up (schedule): the stanza (idempotent) and postgres-exporter's
# login role blazz_monitor, a member of pg_monitor only, with the password
# BLAZZ_PG_PASSWORD_MONITOR (.env's PG_PASSWORD_MONITOR; refused when short
# or the example), given to psql through its environment (\getenv), never
# argv. This container reaches the server through the shared socket folder
# as the cluster's owner (PGUSER), like `podman exec psql` would: it holds the
# data files anyway. blazzctl (Kafka's admin) is not in this image, hence the
# lag report on stdin.
set -euo pipefail

# shellcheck source=../../scripts/lib/restore_window.sh
. /usr/local/lib/blazz/restore_window.sh
# shellcheck source=../../scripts/lib/backup_repos.sh
. /usr/local/lib/blazz/backup_repos.sh

STANZA=blazz
STATE=/tmp/blazz-backup.state
SOCKET_DIR=/run/postgresql
EVERY_S=$(( ${BLAZZ_BACKUP_EVERY_MINUTES:-60} * 60 ))
FULL_EVERY_S=$(( ${BLAZZ_BACKUP_FULL_EVERY_HOURS:-24} * 3600 ))
BETWEEN="${BLAZZ_BACKUP_BETWEEN:-diff}"
export PGHOST="$SOCKET_DIR" PGDATABASE="${PGDATABASE:-blazz}"

say() { echo "backup: $(date -u '+%F %T') $*"; }
die() { echo "backup: $*" >&2; exit 1; }

pgbr() { pgbackrest --stanza="$STANZA" "$@"; }

# pgbr_when_free ARGS...: pgbr, tried again every 5 s for up to 30 minutes
# while another pgBackRest process holds the stanza's lock (its error 50):
# `docker compose up` starts this service's set-up and
# backup-before-migrate's backup together.
pgbr_when_free() {
    local tries=0 rc
    while :; do
        rc=0
        pgbr "$@" || rc=$?
        [ "$rc" -eq 50 ] && [ "$tries" -lt 360 ] || return "$rc"
        tries=$((tries + 1))
        sleep 5
    done
}

# The repositories: 1, and 2 when the offsite settings define one.
repos() {
    if grep -qs '^repo2-type' /etc/pgbackrest/conf.d/*.conf; then echo "1 2"; else echo 1; fi
}

server_up() { pg_isready -q -h "$SOCKET_DIR" -t 3; }

wait_for_server() {
    local deadline=$((SECONDS + 300))
    until server_up; do
        [ "$SECONDS" -lt "$deadline" ] || die "PostgreSQL did not answer on $SOCKET_DIR for 300 s"
        sleep 2
    done
}

ensure_monitor_role() {
    local pw="${BLAZZ_PG_PASSWORD_MONITOR:-}"
    if [ "${#pw}" -lt 16 ] || [ "$pw" = change-me ]; then
        die "PG_PASSWORD_MONITOR in .env is empty, the example value or shorter than 16 characters; run \`make secrets\` for a .env with fresh random secrets"
    fi
    psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
\getenv password BLAZZ_PG_PASSWORD_MONITOR
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'blazz_monitor') AS missing \gset
\if :missing
CREATE ROLE blazz_monitor LOGIN;
\endif
ALTER ROLE blazz_monitor NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT LOGIN CONNECTION LIMIT 5
    PASSWORD :'password';
GRANT pg_monitor TO blazz_monitor;
SQL
}

set_up() {
    wait_for_server
    ensure_monitor_role
    pgbr_when_free stanza-create
    # WAL that failed to archive before the stanza existed must go first
    # (PostgreSQL retries it on its own), or the first backup's wait for its
    # last segment times out.
    pgbr_when_free --archive-timeout=300 check
    say "stanza $STANZA ready, WAL archived; postgres-exporter's role blazz_monitor (pg_monitor) set"
}

info_json() { pgbr --output=json info; }

# "<label> <type>, <size> in the database, <delta> copied" of the newest
# backup (of repository $1 when given).
newest_backup() {
    pgbr --output=json ${1:+--repo="$1"} info | jq -r '.[0].backup[-1] // empty
        | "\(.label) (\(.type)), \(.info.size / 1048576 * 10 | floor / 10) MiB in the database, \(.info.delta / 1048576 * 10 | floor / 10) MiB copied"'
}

# backup TYPE REASON
take_backup() {
    local type="$1" reason="$2"
    case "$type" in full|diff|incr) ;; *) die "backup type is full, diff or incr, not '$type'" ;; esac
    # the status says whether every repository took its backup (schedule
    # calls this as an if's condition, where set -e is off)
    # shellcheck disable=SC2046 # one argument per repository
    br_backup_each pgbr_when_free newest_backup "$type" "$reason" $(repos)
}

# The stop times (epoch) of the newest full backup and of the newest of any
# type, 0 when there is none.
last_backups() {
    info_json | jq -r '[.[0].backup[]?] as $b
        | "\([$b[] | select(.type == "full") | .timestamp.stop] | max // 0) \([$b[].timestamp.stop] | max // 0)"'
}

schedule() {
    case "$BETWEEN" in diff|incr) ;; *) die "BLAZZ_BACKUP_BETWEEN is diff or incr, not '$BETWEEN'" ;; esac
    trap 'exit 0' TERM INT
    set_up
    say "schedule: full every $((FULL_EVERY_S / 3600)) h, $BETWEEN every $((EVERY_S / 60)) min, full backups kept ${PGBACKREST_REPO1_RETENTION_FULL:-30} days"
    local now last_full last type
    while true; do
        now="$(date +%s)"
        read -r last_full last <<<"$(last_backups)"
        if [ "$((now - last_full))" -ge "$FULL_EVERY_S" ]; then
            type=full
        elif [ "$((now - last))" -ge "$EVERY_S" ]; then
            type="$BETWEEN"
        else
            # in the background, so that SIGTERM ends the wait at once
            sleep "$((last + EVERY_S - now))" &
            wait $! || true
            continue
        fi
        if take_backup "$type" scheduled; then
            echo ok >"$STATE"
        else
            echo failed >"$STATE"
            say "$type backup FAILED (pgBackRest's message above); next try in 5 min"
            sleep 300 &
            wait $! || true
        fi
    done
}

# How many migrations the database has applied (0: a new one).
applied_migrations() {
    local exists
    exists="$(psql -X -tAc "SELECT to_regclass('schema_migrations') IS NOT NULL")" || return 1
    if [ "$exists" = t ]; then psql -X -tAc "SELECT count(*) FROM schema_migrations"; else echo 0; fi
}

before_migrate() {
    local applied tries=0
    wait_for_server
    applied="$(applied_migrations)" || die "pre-migration: could not read schema_migrations"
    if [ "${applied:-0}" -eq 0 ]; then
        say "pre-migration: a new database, nothing to back up"
        return 0
    fi
    # the scheduled backup may hold the stanza's lock: wait for it
    until take_backup incr "pre-migration: $applied applied"; do
        tries=$((tries + 1))
        [ "$tries" -lt 30 ] || die "pre-migration: no backup after 30 tries; migrate does not start"
        say "pre-migration: backup failed (pgBackRest's message above); again in 10 s"
        sleep 10
    done
}

restore() {
    local target="${1:?usage: blazz-pg-backup restore TIME|latest}" started=$SECONDS args=(--delta) repo
    repo="$(br_chosen_repo "$(repos)")" || exit 1
    [ -z "$repo" ] || args+=(--repo="$repo")
    if server_up; then
        die "PostgreSQL is running: stop it first (docker compose stop postgres; see README.md, \"Running with compose\")"
    fi
    if [ "$target" != latest ]; then
        args+=(--type=time "--target=$target" --target-action=promote)
    fi
    pgbr "${args[@]}" --log-level-console=info restore
    say "restored to $target${repo:+ from the $(br_repo_name "$repo") repository} in $((SECONDS - started)) s; PostgreSQL replays the WAL up to it when it starts:"
    say "  docker compose up -d postgres; then recovered, check-retention and restore-fence before starting the services (README.md)"
}

recovered() {
    local deadline=$((SECONDS + 600))
    wait_for_server
    until [ "$(psql -X -tAc 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "PostgreSQL still replays WAL after 600 s (docker compose logs postgres)"
        sleep 1
    done
    say "PostgreSQL recovered and accepts writes"
}

# The `blazzctl lag --json` report on stdin.
lag_report() {
    local report
    report="$(cat)"
    jq -e '.groups | type == "array"' >/dev/null 2>&1 <<<"$report" \
        || die "stdin is not blazzctl lag --json (docker compose run --rm -T --entrypoint blazzctl migrate lag --data-end --json)"
    printf '%s' "$report"
}

check_retention() {
    local report gaps
    report="$(lag_report)"
    gaps="$(rw_retention_gaps "$report")"
    if [ -n "$gaps" ]; then
        echo "backup: Kafka's retention no longer covers the restore window; these effects cannot be replayed:" >&2
        sed 's/^/  /' <<<"$gaps" >&2
        exit 3
    fi
    say "every restored offset is still in its topic ($(rw_checked "$report") partitions checked)"
}

# restored_offsets TARGET (in a subshell of its own): kafka_offsets of the
# backup restored to TARGET in a scratch copy, from the repository
# BLAZZ_BACKUP_REPO names (else pgBackRest's choice): group, topic,
# partition and next offset, tab-separated.
restored_offsets() {
    local target="$1" repo args=(--type=immediate)
    [ "$target" = latest ] || args=(--type=time "--target=$target")
    repo="$(br_chosen_repo "$(repos)")" || exit 1
    [ -z "$repo" ] || args+=(--repo="$repo")
    scratch_up "restore-check: the backup at $target" "${args[@]}"
    psql -X -h "$SCRATCH" -tA -F $'\t' -v ON_ERROR_STOP=1 \
        -c 'SELECT group_id, topic, partition, next_offset FROM kafka_offsets ORDER BY 1, 2, 3' ||
        die "restore-check: the restored copy's kafka_offsets could not be read"
}

restore_check() {
    local target="${1:?usage: blazz-pg-backup restore-check TIME|latest <lag.json}" report offsets gaps
    if [ "${BLAZZ_RESTORE_IGNORE_RETENTION:-0}" = 1 ]; then
        say "restore-check: BLAZZ_RESTORE_IGNORE_RETENTION=1: Kafka's retention is not checked; effects past it would not be replayed"
        return 0
    fi
    report="$(lag_report)"
    offsets="$(restored_offsets "$target")" || exit 1
    gaps="$(rw_window_gaps "$report" "$offsets")"
    if grep -q 'not in the report' <<<"$gaps"; then
        echo "backup: restore-check: the report does not show every partition the backup at $target names; nothing was changed:" >&2
        sed 's/^/  /' <<<"$gaps" >&2
        exit 4
    fi
    if [ -n "$gaps" ]; then
        echo "backup: restore-check: Kafka's retention no longer covers the window back to $target; these effects could not be replayed, nothing was changed (BLAZZ_RESTORE_IGNORE_RETENTION=1 to go on all the same):" >&2
        sed 's/^/  /' <<<"$gaps" >&2
        exit 3
    fi
    say "restore-check: every offset of the backup at $target is still in its topic ($(grep -c . <<<"$offsets") partitions checked): restore"
}

restore_fence() {
    local label="${1:?usage: blazz-pg-backup restore-fence LABEL <lag.json}" report rows
    report="$(lag_report)"
    rows="$(rw_fence_rows "$report")" || die "restore-fence: stdin must be blazzctl lag --data-end --json"
    rw_fence_sql "$rows" | psql -X -q -v ON_ERROR_STOP=1 -v label="$label" >/dev/null
    say "restore fence recorded: nothing is sent until chat-sync and campaign-sender have re-read $(grep -c . <<<"$rows") partitions to where their data ends"
}

health() {
    local now last_full last slack=3600
    [ "$(cat "$STATE" 2>/dev/null)" != failed ] || return 1
    read -r last_full last <<<"$(last_backups)"
    now="$(date +%s)"
    [ "${last:-0}" -gt 0 ] && [ "$((now - last))" -le "$((EVERY_S + slack))" ] \
        && [ "$((now - last_full))" -le "$((FULL_EVERY_S + slack))" ]
}

verify() {
    local chosen repo
    chosen="$(br_chosen_repo "$(repos)")" || exit 1
    for repo in ${chosen:-$(repos)}; do
        (verify_repo "$repo") || exit 1
    done
}

# scratch_up WHAT [pgBackRest restore options] (in a subshell of its own:
# its EXIT trap stops and removes the copy): a backup restored into a
# scratch folder of this container and started, promoted, on its own
# socket, the folder in SCRATCH. No TCP and no archiving: the copy must not
# push WAL into the repository it came from. WHAT names it in errors.
scratch_up() {
    local what="$1"
    shift
    SCRATCH="$(mktemp -d)"
    trap 'pg_ctl -D "$SCRATCH/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$SCRATCH"' EXIT
    mkdir -m 700 "$SCRATCH/data"
    # pgBackRest's console messages go to stderr: a caller may read the
    # copy's rows from stdout
    pgbr --pg1-path="$SCRATCH/data" --target-action=promote "$@" restore >&2 ||
        die "$what could not be restored"
    if ! pg_ctl -D "$SCRATCH/data" -l "$SCRATCH/server.log" -w -t 120 \
            -o "-c listen_addresses='' -c unix_socket_directories='$SCRATCH' -c archive_mode=off" start >/dev/null; then
        tail -n 20 "$SCRATCH/server.log" >&2
        die "the restored copy of $what did not start"
    fi
    local deadline=$((SECONDS + 120))
    until [ "$(psql -X -h "$SCRATCH" -tAc 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "the restored copy of $what is still recovering after 120 s"
        sleep 0.5
    done
}

# verify_repo REPO (in a subshell of its own: the scratch copy goes with it)
verify_repo() {
    local repo="$1" started=$SECONDS label migrations chats name
    name="$(br_repo_name "$repo")"
    label="$(pgbr --output=json --repo="$repo" info | jq -r '.[0].backup[-1].label // empty')"
    [ -n "$label" ] || die "verify: no backup in the $name repository yet"
    scratch_up "verify: $label ($name)" --repo="$repo" --type=immediate
    migrations="$(psql -X -h "$SCRATCH" -tAc 'SELECT count(*) FROM schema_migrations' 2>/dev/null || echo 0)"
    chats="$(psql -X -h "$SCRATCH" -tAc 'SELECT count(*) FROM chats' 2>/dev/null || echo '?')"
    [ "${migrations:-0}" -gt 0 ] || die "verify: $label restored but its database is not readable"
    say "verified $label ($name): restored, started and read in $((SECONDS - started)) s ($migrations migrations, $chats messages)"
}

cmd="${1:-schedule}"
[ "$#" -eq 0 ] || shift
case "$cmd" in
    schedule) schedule ;;
    before-migrate) before_migrate ;;
    backup) wait_for_server; take_backup "${1:-full}" "operator" ;;
    info) pgbr "$@" info ;;
    check) pgbr check && say "check passed: WAL is archived to the repository" ;;
    verify) verify ;;
    restore-check) restore_check "$@" ;;
    restore) restore "$@" ;;
    recovered) recovered ;;
    check-retention) check_retention ;;
    restore-fence) restore_fence "$@" ;;
    health) health ;;
    *) die "usage: blazz-pg-backup schedule|before-migrate|backup [full|diff|incr]|info|check|verify|restore-check TIME|latest|restore TIME|latest|recovered|check-retention|restore-fence LABEL" ;;
esac
