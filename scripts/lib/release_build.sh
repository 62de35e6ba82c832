# shellcheck shell=bash
#
# scripts/lib/release_build.sh - the programs and migrations of an earlier
# commit, built once and kept (sourced by chaos.sh for its upgrade mode,
# which runs a release's services before the current tree's).
#
# The earlier commit is checked out in a git worktree of its own under
# $TMPDIR, never inside the repository's build folder, and built there
# with its own Makefile (`make programs`: the services and tools, release
# flags, nothing else), so it builds exactly as it did when released. Its
# build/bin and db/migrations are copied out and the worktree removed.

# release_build REPO COMMIT DEST LOG: DEST/bin and DEST/migrations of
# COMMIT; a DEST already complete (DEST/.complete) is reused as it is. The
# build's output goes to LOG.
release_build() {
    local repo=$1 commit=$2 dest=$3 log=$4 tmp rc=0
    [ -f "$dest/.complete" ] && return 0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/blazz-release.XXXXXX")
    if git -C "$repo" worktree add --detach "$tmp/src" "$commit" >"$log" 2>&1 &&
       make -C "$tmp/src" --no-print-directory -j"$(nproc 2>/dev/null || echo 2)" programs >>"$log" 2>&1; then
        rm -rf "$dest"
        mkdir -p "$dest"
        cp -a "$tmp/src/build/bin" "$dest/bin"
        cp -a "$tmp/src/db/migrations" "$dest/migrations"
        touch "$dest/.complete"
    else
        rc=1
    fi
    git -C "$repo" worktree remove --force "$tmp/src" >>"$log" 2>&1 || true
    rm -rf "$tmp"
    return "$rc"
}
