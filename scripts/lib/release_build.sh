# shellcheck shell=bash
#
# scripts/lib/release_build.sh - an earlier commit's build, made once and
# kept (sourced by chaos.sh for its upgrade mode, which runs a release's
# services before the current tree's, by upgrade_test.sh for the last
# release's commit, and by bench_gate.sh, which benchmarks that release
# beside the current tree).
#
# The earlier commit is checked out in a git worktree of its own under
# $TMPDIR, never inside the repository's build folder, and built there
# with its own Makefile, so it builds exactly as it did when released.
# What is needed is copied out and the worktree removed.

# last_release REPO: the commit of the last release docs/releases.txt lists.
last_release() {
    awk '$1 ~ /^v[0-9]/ && NF == 2 { last = $2 } END { print last }' "$1/docs/releases.txt"
}

# release_build REPO COMMIT DEST LOG [MAKE_ARG...]: COMMIT's `make programs`
# (the services and tools, release flags, nothing else) kept as DEST/bin
# and its db/migrations as DEST/migrations. With MAKE_ARGs, make builds
# those instead and the whole built tree is kept as DEST/tree: a release's
# benchmarks need its build/bench, its helper programs and its scripts. A
# DEST already complete (DEST/.complete) is reused as it is. The build's
# output goes to LOG.
release_build() {
    local repo=$1 commit=$2 dest=$3 log=$4 tmp rc=0
    shift 4
    [ -f "$dest/.complete" ] && return 0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/blazz-release.XXXXXX")
    if git -C "$repo" worktree add --detach "$tmp/src" "$commit" >"$log" 2>&1 &&
       make -C "$tmp/src" --no-print-directory -j"$(nproc 2>/dev/null || echo 2)" "${@:-programs}" >>"$log" 2>&1; then
        rm -rf "$dest"
        mkdir -p "$dest"
        if [ $# -gt 0 ]; then
            cp -a "$tmp/src" "$dest/tree"
            # The worktree's link to the repository, dangling once it is removed.
            rm -f "$dest/tree/.git"
        else
            cp -a "$tmp/src/build/bin" "$dest/bin"
            cp -a "$tmp/src/db/migrations" "$dest/migrations"
        fi
        touch "$dest/.complete"
    else
        rc=1
    fi
    git -C "$repo" worktree remove --force "$tmp/src" >>"$log" 2>&1 || true
    rm -rf "$tmp"
    return "$rc"
}
