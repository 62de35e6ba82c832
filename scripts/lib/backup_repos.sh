# shellcheck shell=bash
#
# scripts/lib/backup_repos.sh - pgBackRest's repositories by name, the one
# an operator picked, and a backup in each: shared by the local stack's
# backups (scripts/lib/pg_backup.sh) and compose's
# (docker/postgres/backup.sh, whose image copies this file). Repository 1
# is the local one, beside the cluster; 2, when set up, the offsite one in
# an S3 bucket. Reports go through the caller's say.

# br_repo_name REPO: local or offsite.
br_repo_name() { if [ "$1" = 2 ]; then echo offsite; else echo local; fi; }

# br_chosen_repo REPOS: the repository BLAZZ_BACKUP_REPO names, among REPOS
# ("1" or "1 2"), as its number; nothing when it is unset. Status 1, with
# the reason on stderr, when it names none of them.
br_chosen_repo() {
    case "${BLAZZ_BACKUP_REPO:-}" in
        '') ;;
        local) echo 1 ;;
        offsite)
            if [ "$1" != "1 2" ]; then
                echo "BLAZZ_BACKUP_REPO=offsite: these backups have no offsite repository" >&2
                return 1
            fi
            echo 2 ;;
        *)
            echo "BLAZZ_BACKUP_REPO is local or offsite, not '$BLAZZ_BACKUP_REPO'" >&2
            return 1 ;;
    esac
}

# br_backup_each RUN LABEL TYPE REASON REPO...: a TYPE backup, annotated with
# REASON, in each REPO; RUN is the command that runs pgBackRest with its
# arguments, LABEL the one that prints a repository's newest backup. Each
# repository is tried, so a lost one does not stop the other's backups;
# status 1 when any failed, said naming them.
br_backup_each() {
    local run="$1" label="$2" type="$3" reason="$4" started=$SECONDS repo failed=""
    shift 4
    for repo in "$@"; do
        if "$run" --repo="$repo" --type="$type" --annotation="reason=$reason" backup; then
            say "$type backup taken in $((SECONDS - started)) s ($reason), $(br_repo_name "$repo") repository: $("$label" "$repo")"
        else
            failed+=" $(br_repo_name "$repo")"
        fi
    done
    [ -z "$failed" ] || { say "$type backup FAILED in the repository:$failed"; return 1; }
}
