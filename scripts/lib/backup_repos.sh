# shellcheck shell=bash
#
# scripts/lib/backup_repos.sh - pgBackRest's repositories by name, and the
# one an operator picked: shared by the local stack's backups
# (scripts/lib/pg_backup.sh) and compose's (docker/postgres/backup.sh,
# whose image copies this file). Repository 1 is the local one, beside the
# cluster; 2, when set up, the offsite one in an S3 bucket.

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
