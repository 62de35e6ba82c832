# shellcheck shell=bash
#
# scripts/lib/pg_backup.sh - backups of the local stack's PostgreSQL with
# pgBackRest (sourced by scripts/stack.sh; `make backup`, `make restore
# TIME=...`, `make backup-verify`; docs/ARCHITECTURE.md §6.5).
#
# Continuous WAL archiving plus base backups, in a pgBackRest repository
# beside the cluster ($PG_ROOT/backup/repo, owned by the server's user):
#   backup-enable  writes $PG_ROOT/backup/pgbackrest.conf, restarts
#                  PostgreSQL with archive_mode on (archive_command pushes
#                  each WAL segment to the repository, archive_timeout 60 s
#                  so a quiet database still ships its last commits),
#                  creates the stanza and takes the first full backup. The
#                  configuration file's presence is what "enabled" means:
#                  pg_write_conf adds the archive settings while it exists.
#   backup [full|diff|incr]  a base backup (incr by default; the first is
#                  always full). Retention: full backups older than
#                  BLAZZ_BACKUP_RETENTION_DAYS (30, seed 004) expire with the
#                  WAL only they need, so any moment of the last 30 days can
#                  be restored.
#   restore TIME|latest  PostgreSQL stopped, the cluster restored in place
#                  (--delta: only changed files are rewritten) and
#                  recovered to TIME (any form PostgreSQL reads, e.g.
#                  "2026-11-25 08:30:00+00") or to the end of the archive,
#                  then promoted and started: consumers then re-read from
#                  Kafka what their restored offsets have not seen
#                  (ARCHITECTURE.md §3). Before anything is changed, the
#                  backup is restored to TIME in a scratch copy and its
#                  offsets compared with each topic's first kept record
#                  (blazzctl lag): a partition Kafka's retention emptied
#                  past one is named and the restore refuses (exit 3; exit
#                  4 when Kafka or blazzctl cannot tell). An operator who
#                  accepts losing those effects sets
#                  BLAZZ_RESTORE_IGNORE_RETENTION=1: the restore then goes
#                  on, and records its fence all the same.
#   backup-verify  the newest backup restored into a scratch folder, started
#                  on a port of its own, read (its migrations and a count of
#                  messages), stopped and removed: a backup is only as good
#                  as its last restore.
#   backup-info    pgBackRest's list of backups and archive.
#                  Last, a restore fence (bk_fence): the end offsets of
#                  chat.sync and the campaign topics now, which chat-sync
#                  and campaign-sender must re-read to before anything is
#                  sent (Meta has no idempotency key: the proofs of the
#                  sends made after TIME are on chat.sync; the receipts of
#                  campaign sends on campaign.receipts).
#   check-retention [DSN]  the restore's check of Kafka's retention alone
#                  (on DSN's offsets as they stand).
#   restore-fence [DSN] [LABEL]  the restore's fence alone (when Kafka was
#                  unreachable at restore time: before the senders start).
# Before migrate applies anything to a database that has migrations
# already, an incremental backup is taken, annotated "pre-migration"
# (bk_before_migrate; seed 004's habit made a rule).
#
# The offsite repository (repo2): the same archive and backups in an S3
# bucket, over TLS (pgBackRest's S3 client speaks nothing else), so losing
# the database's host loses neither (seed 004: "consider offsite backup").
# It is on when backups are enabled with BLAZZ_BACKUP_S3_ENDPOINT set
# (https://HOST:PORT), with BLAZZ_BACKUP_S3_BUCKET, _REGION (us-east-1),
# _ACCESS_KEY_FILE, _SECRET_KEY_FILE, _CA_FILE (the CA to verify the
# server with; the system's when unset) and _PATH (the repository's folder
# in the bucket; /blazz-<the cluster's system identifier> by default, so
# clusters sharing a bucket never meet). A stack with an S3 server of its
# own (BLAZZ_S3_PORT, scripts/lib/s3_server.sh) uses that server's TLS
# endpoint and bucket unless told otherwise. The keys go into
# pgbackrest.conf (mode 600, the server's user), never onto a command line.
# archive_command then pushes every WAL segment to both repositories and
# fails while either cannot take it (PostgreSQL keeps the segment and tries
# again), and `backup` takes its backup in each. `restore` and
# `backup-verify` read the repository BLAZZ_BACKUP_REPO names (local or
# offsite); unset, a restore takes the first that has what it needs and
# backup-verify restores the newest backup of each.
#
# Single PostgreSQL node only: with a standby (BLAZZ_PG_STANDBY=1) the
# archive would follow the primary across switchovers, which this script
# does not manage; it refuses.

BK_DIR="$PG_ROOT/backup"
BK_CONF="$BK_DIR/pgbackrest.conf"
BK_STANZA=blazz
BK_RETENTION_DAYS="${BLAZZ_BACKUP_RETENTION_DAYS:-30}"

BK_S3_ENDPOINT="${BLAZZ_BACKUP_S3_ENDPOINT:-}"
BK_S3_BUCKET="${BLAZZ_BACKUP_S3_BUCKET:-}"
BK_S3_ACCESS_KEY_FILE="${BLAZZ_BACKUP_S3_ACCESS_KEY_FILE:-}"
BK_S3_SECRET_KEY_FILE="${BLAZZ_BACKUP_S3_SECRET_KEY_FILE:-}"
BK_S3_CA_FILE="${BLAZZ_BACKUP_S3_CA_FILE:-}"
if [ -z "$BK_S3_ENDPOINT" ] && [ -n "$S3_PORT" ]; then
    BK_S3_ENDPOINT="https://127.0.0.1:$S3_TLS_PORT"
    BK_S3_BUCKET="${BK_S3_BUCKET:-$S3_BACKUP_BUCKET}"
    BK_S3_ACCESS_KEY_FILE="${BK_S3_ACCESS_KEY_FILE:-$S3_DIR/credentials/access_key}"
    BK_S3_SECRET_KEY_FILE="${BK_S3_SECRET_KEY_FILE:-$S3_DIR/credentials/secret_key}"
    BK_S3_CA_FILE="${BK_S3_CA_FILE:-$S3_DIR/tls/cert.pem}"
fi

bk_enabled() { [ -f "$BK_CONF" ]; }

bk_has_offsite() { bk_enabled && as_pg grep -q '^repo2-type=s3' "$BK_CONF"; }

# The repositories backups go to: 1, and 2 when there is an offsite one.
bk_repos() {
    if bk_has_offsite; then echo "1 2"; else echo 1; fi
}


bk_pgbackrest() {
    as_pg pgbackrest --config="$BK_CONF" --stanza="$BK_STANZA" "$@"
}

# The archive settings pg_write_conf adds to blazz.conf while backups are on.
bk_server_settings() {
    bk_enabled || return 0
    printf "archive_mode = on\narchive_command = 'pgbackrest --config=%s --stanza=%s archive-push %%p'\narchive_timeout = 60\n" \
        "$BK_CONF" "$BK_STANZA"
}

bk_need_single_node() {
    [ "$PG_NODES" = 1 ] || die "backups: one PostgreSQL node only (not with BLAZZ_PG_STANDBY=1)"
    command -v pgbackrest >/dev/null || die "backups: pgbackrest is not installed (scripts/deps.sh)"
}

# The offsite repository's lines of pgbackrest.conf, when one is named.
bk_offsite_conf() {
    [ -n "$BK_S3_ENDPOINT" ] || return 0
    local hostport host port path sysid
    case "$BK_S3_ENDPOINT" in
        https://*) hostport="${BK_S3_ENDPOINT#https://}" ;;
        *) die "backups: BLAZZ_BACKUP_S3_ENDPOINT must be https://HOST:PORT (pgBackRest speaks S3 over TLS only), not '$BK_S3_ENDPOINT'" ;;
    esac
    hostport="${hostport%/}"
    host="${hostport%:*}"
    port=443
    [ "$host" = "$hostport" ] || port="${hostport##*:}"
    [ -n "$BK_S3_BUCKET" ] || die "backups: BLAZZ_BACKUP_S3_BUCKET names no bucket"
    [ -r "$BK_S3_ACCESS_KEY_FILE" ] && [ -r "$BK_S3_SECRET_KEY_FILE" ] ||
        die "backups: the offsite repository's keys (BLAZZ_BACKUP_S3_ACCESS_KEY_FILE, _SECRET_KEY_FILE) are not readable"
    sysid="$(pg_psql 1 -d postgres -tAc 'SELECT system_identifier FROM pg_control_system()')" ||
        die "backups: the cluster's system identifier could not be read"
    path="${BLAZZ_BACKUP_S3_PATH:-/blazz-$sysid}"
    echo "repo2-type=s3"
    echo "repo2-path=$path"
    echo "repo2-s3-endpoint=$host"
    echo "repo2-storage-port=$port"
    echo "repo2-s3-uri-style=path"
    echo "repo2-s3-bucket=$BK_S3_BUCKET"
    echo "repo2-s3-region=${BLAZZ_BACKUP_S3_REGION:-us-east-1}"
    echo "repo2-s3-key=$(tr -d '\n' <"$BK_S3_ACCESS_KEY_FILE")"
    echo "repo2-s3-key-secret=$(tr -d '\n' <"$BK_S3_SECRET_KEY_FILE")"
    if [ -n "$BK_S3_CA_FILE" ]; then
        as_pg tee "$BK_DIR/offsite-ca.pem" >/dev/null <"$BK_S3_CA_FILE" ||
            die "backups: the offsite repository's CA file $BK_S3_CA_FILE could not be copied"
        echo "repo2-storage-ca-file=$BK_DIR/offsite-ca.pem"
    fi
    echo "repo2-retention-full-type=time"
    echo "repo2-retention-full=$BK_RETENTION_DAYS"
}

bk_write_conf() {
    local offsite
    as_pg mkdir -p "$BK_DIR/repo" "$BK_DIR/log" "$BK_DIR/lock" "$BK_DIR/spool"
    offsite="$(bk_offsite_conf)" || exit 1
    # mode 600 before a key is written into it
    as_pg touch "$BK_CONF"
    as_pg chmod 600 "$BK_CONF"
    as_pg tee "$BK_CONF" >/dev/null <<EOF
# Written by scripts/stack.sh backup-enable (scripts/lib/pg_backup.sh).
[global]
repo1-path=$BK_DIR/repo
repo1-retention-full-type=time
repo1-retention-full=$BK_RETENTION_DAYS
$offsite
log-path=$BK_DIR/log
lock-path=$BK_DIR/lock
spool-path=$BK_DIR/spool
start-fast=y
log-level-console=warn
log-level-file=info

[$BK_STANZA]
pg1-path=$(pg_data 1)
pg1-port=$PG_PORT
pg1-socket-path=$PG_ROOT
pg1-user=postgres
EOF
}

bk_enable() {
    bk_need_single_node
    if bk_enabled; then
        say "backups already enabled ($BK_CONF)"
        return 0
    fi
    pg_node_running 1 || die "backups: start PostgreSQL first (stack.sh up)"
    bk_write_conf
    pg_stop_node 1
    pg_start_node 1
    bk_pgbackrest stanza-create
    bk_pgbackrest check
    say "backups enabled: WAL archived to $BK_DIR/repo$(bk_has_offsite && echo " and offsite to $BK_S3_ENDPOINT"), full backups kept $BK_RETENTION_DAYS days"
    bk_backup full "enabled"
}

# bk_backup TYPE REASON
bk_backup() {
    local type="${1:-incr}" reason="${2:-make backup}"
    case "$type" in full|diff|incr) ;; *) die "backup: type is full, diff or incr, not '$type'" ;; esac
    bk_need_single_node
    bk_enabled || { bk_enable; return; }
    # shellcheck disable=SC2046 # one argument per repository
    br_backup_each bk_pgbackrest bk_latest_label "$type" "$reason" $(bk_repos) ||
        die "backup: the $type backup failed (pgBackRest's message above)"
}

# bk_latest_label [REPO]: the newest backup's label (in REPO, 1 unless named).
bk_latest_label() {
    bk_pgbackrest --repo="${1:-1}" --output=json info | jq -r '.[0].backup[-1].label // "none"'
}

# Wait until node 1 accepts writes (recovery over), at most 120 s.
bk_wait_writable() {
    local deadline=$((SECONDS + 120))
    until [ "$(pg_psql 1 -d postgres -tAc 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "restore: PostgreSQL still in recovery after 120 s ($(pg_log 1))"
        sleep 0.5
    done
}

bk_restore() {
    local target="${1:?usage: stack.sh restore TIME|latest}" started=$SECONDS args=(--delta) repo
    bk_need_single_node
    bk_enabled || die "restore: no backups here (stack.sh backup-enable)"
    repo="$(br_chosen_repo "$(bk_repos)")" || exit 1
    [ -z "$repo" ] || args+=(--repo="$repo")
    if [ "$target" != latest ]; then
        args+=(--type=time "--target=$target" --target-action=promote)
    fi
    bk_window_covered "$target" "${repo:+--repo=$repo}"
    pg_stop_node 1
    bk_pgbackrest "${args[@]}" restore
    pg_start_node 1
    bk_wait_writable
    # a repository lost with the host it was on (why one restores from the
    # other) is made again, or archive_command fails on it from now on; a
    # few tries, since the promoted server's first archive pushes run beside
    # it (a suite's CI run once saw it fail and the next backup then wait
    # out its archive timeout on the missing stanza)
    as_pg mkdir -p "$BK_DIR/repo"
    local attempt
    for attempt in 1 2 3 4 5; do
        bk_pgbackrest stanza-create >/dev/null && break
        if [ "$attempt" -eq 5 ]; then
            say "restore: WARNING: the stanza could not be made again in every repository: WAL archiving fails until 'pgbackrest stanza-create' succeeds"
        else
            say "restore: stanza-create failed (attempt $attempt of 5, pgBackRest's message above); again in 2 s"
            sleep 2
        fi
    done
    say "restored to $target${repo:+ from the $BLAZZ_BACKUP_REPO repository} in $((SECONDS - started)) s (restore and WAL replay); consumers re-read what came after from Kafka"
    bk_fence "$PG_DSN" "$target"
}

# bk_window_covered TARGET [REPO-OPTION] - before a restore changes
# anything: the backup (from the repository REPO-OPTION names) restored to
# TARGET in a scratch copy, and its offsets checked against
# Kafka's retention (bk_check_retention, which exits 3 naming what is
# lost). Kafka or blazzctl unable to tell: exit 4. Either refusal is
# overridden by BLAZZ_RESTORE_IGNORE_RETENTION=1 (the fence is recorded
# all the same).
bk_window_covered() {
    if [ "${BLAZZ_RESTORE_IGNORE_RETENTION:-0}" = 1 ]; then
        say "restore: BLAZZ_RESTORE_IGNORE_RETENTION=1: Kafka's retention is not checked; effects past it would not be replayed"
        return 0
    fi
    local port args=(--type=immediate) rc=0
    [ "$1" = latest ] || args=(--type=time "--target=$1")
    [ -z "${2:-}" ] || args+=("$2")
    port="$(bk_scratch_up "${args[@]}")" || die "restore: the backup restored to $1 in a scratch copy did not start; nothing was changed"
    ( bk_check_retention "host=127.0.0.1 port=$port user=postgres dbname=blazz" strict ) || rc=$?
    bk_scratch_down
    [ "$rc" -eq 0 ] || { echo "stack: restore: refused, nothing was changed (BLAZZ_RESTORE_IGNORE_RETENTION=1 to restore all the same)" >&2; exit "$rc"; }
}

# The consumer-group report of DSN's restored offsets against Kafka
# (blazzctl lag --json) on stdout; status 1 when it cannot be had.
bk_lag_report() {
    [ -x "$BLAZZCTL" ] || return 1
    as_principal admin "$BLAZZCTL" lag --brokers "$BROKERS" --dsn "$1" --timeout 5000 --json "${@:2}" 2>/dev/null
}

# bk_fence [DSN] [LABEL] - after a restore, before the senders start: the
# restore fence (db/migrations/0045, 0054): where the data of every
# chat.sync, campaign.commands and campaign.receipts partition a restored
# kafka_offsets row names ends (blazzctl lag --data-end: the high watermark
# counts the transaction marker a transaction ends a partition with, which
# no consumer ever stores). meta-sender and campaign-sender send nothing
# until those offsets are reached again (libs/pg/restore_fence.c). Without
# Kafka there is no end to record: exit 4, and the operator runs
# `stack.sh restore-fence` before starting the senders.
bk_fence() {
    local dsn="${1:-$PG_DSN}" label="${2:-restore}" report rows
    if ! report="$(bk_lag_report "$dsn" --data-end)"; then
        echo "stack: restore: Kafka did not answer, no restore fence recorded: run 'stack.sh restore-fence' before starting the senders" >&2
        exit 4
    fi
    rows="$(rw_fence_rows "$report")"
    rw_fence_sql "$rows" | "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v label="$label" -d "$dsn" >/dev/null ||
        die "restore: the restore fence could not be recorded: start no sender before 'stack.sh restore-fence' succeeds"
    say "restore: fence recorded: nothing is sent until chat-sync and campaign-sender have re-read $(grep -c . <<<"$rows") partitions to their ends (every send made after $label is proven there)"
}

# bk_check_retention [DSN] [strict] - does every topic still hold the
# records the offsets of DSN (kafka_offsets; the stack's database by
# default; a restore's scratch copy) name next? A partition whose first
# record is past its offset lost what came between to Kafka's retention:
# those effects cannot be replayed. Exit status 3, naming each such
# partition. Without blazzctl or Kafka it cannot tell: it says so, and
# exits 4 when strict.
bk_check_retention() {
    local dsn="${1:-$PG_DSN}" strict="${2:-}" report gaps
    if [ ! -x "$BLAZZCTL" ]; then
        say "restore: no blazzctl to compare offsets with Kafka's retention: run blazzctl lag before starting the services"
        [ -z "$strict" ] || exit 4
        return 0
    fi
    if ! report="$(bk_lag_report "$dsn")"; then
        say "restore: Kafka did not answer: run blazzctl lag before starting the services (every restored offset must still be in its topic)"
        [ -z "$strict" ] || exit 4
        return 0
    fi
    gaps="$(rw_retention_gaps "$report")"
    if [ -n "$gaps" ]; then
        echo "stack: restore: Kafka's retention no longer covers the restore window; these effects cannot be replayed:" >&2
        sed 's/^/  /' <<<"$gaps" >&2
        exit 3
    fi
    say "restore: every restored offset is still in its topic ($(rw_checked "$report") partitions checked)"
}

BK_SCRATCH="$BK_DIR/verify"

# bk_scratch_up [pgBackRest restore options] - the backup restored (to the
# point the options name) into a scratch folder and started, promoted, on
# a port of its own; the port on stdout. Status 1 when it did not start.
bk_scratch_up() {
    local port
    port="$(free_port $((PG_PORT + 100)))"
    as_pg rm -rf "$BK_SCRATCH"
    as_pg mkdir -p "$BK_SCRATCH/data"
    as_pg chmod 700 "$BK_SCRATCH/data"
    bk_pgbackrest --pg1-path="$BK_SCRATCH/data" "$@" --target-action=promote restore >&2
    # the cluster's own settings (a recovering server needs them at least as
    # high as its primary's), then its own port and socket and no archiving:
    # the copy must not push WAL into the repository it came from
    as_pg tee -a "$BK_SCRATCH/data/blazz.conf" >/dev/null <<EOF
# a scratch copy (backup-verify, a restore's check)
port = $port
unix_socket_directories = '$BK_SCRATCH'
archive_mode = off
EOF
    if ! as_pg "$PG_BIN/pg_ctl" -D "$BK_SCRATCH/data" -l "$BK_SCRATCH/server.log" -w -t 120 start >/dev/null 2>&1 8>&-; then
        tail -n 20 "$BK_SCRATCH/server.log" >&2 || true
        as_pg rm -rf "$BK_SCRATCH"
        return 1
    fi
    local deadline=$((SECONDS + 120))
    until [ "$("$PG_BIN/psql" -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ]; do
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.5
    done
    echo "$port"
}

bk_scratch_down() {
    as_pg "$PG_BIN/pg_ctl" -D "$BK_SCRATCH/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    as_pg rm -rf "$BK_SCRATCH"
}

bk_verify() {
    bk_need_single_node
    bk_enabled || die "backup-verify: no backups here (stack.sh backup-enable)"
    local chosen repo
    chosen="$(br_chosen_repo "$(bk_repos)")" || exit 1
    for repo in ${chosen:-$(bk_repos)}; do
        bk_verify_repo "$repo"
    done
}

# bk_verify_repo REPO: its newest backup restored, started and read.
bk_verify_repo() {
    local repo="$1" port started=$SECONDS label migrations chats name
    name="$(br_repo_name "$repo")"
    label="$(bk_latest_label "$repo")"
    port="$(bk_scratch_up --type=immediate --repo="$repo")" || die "backup-verify: the restored copy of $label ($name) did not start"
    migrations="$("$PG_BIN/psql" -X -h 127.0.0.1 -p "$port" -U postgres -d blazz -tAc 'SELECT count(*) FROM schema_migrations' 2>/dev/null || echo "?")"
    chats="$("$PG_BIN/psql" -X -h 127.0.0.1 -p "$port" -U postgres -d blazz -tAc 'SELECT count(*) FROM chats' 2>/dev/null || echo "?")"
    bk_scratch_down
    case "$migrations" in ''|'?'|0) die "backup-verify: $label restored but its database is not readable (migrations: ${migrations:-none})" ;; esac
    say "verified $label ($name): restored, started and read in $((SECONDS - started)) s ($migrations migrations, $chats messages)"
}

bk_info() {
    bk_enabled || { say "no backups here (stack.sh backup-enable)"; return 0; }
    bk_pgbackrest info
}

# Called by migrate: a backup before the first pending migration, when the
# database has migrations already (a new one has nothing to lose).
bk_before_migrate() {
    local dir="$1" files applied
    bk_enabled || return 0
    files="$(find "$dir" -maxdepth 1 -name '*.sql' | wc -l)"
    applied="$(pg_psql "$(pg_primary)" -d blazz -tAc \
        "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0 ELSE (SELECT count(*) FROM schema_migrations) END" \
        2>/dev/null || echo 0)"
    [ "$applied" -gt 0 ] && [ "$files" -gt "$applied" ] || return 0
    bk_backup incr "pre-migration: $((files - applied)) to apply"
}
