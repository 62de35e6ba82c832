#!/usr/bin/env bash
#
# scripts/check_error_msgs.sh [--self-test] [ROOT] - no error message is
# formatted from itself.
#
# bz_fail, bz_fail_because and bz_reject format into err->msg
# (libs/core/status.h); given err->msg as an argument too, they read the
# buffer they are writing (an overlap C leaves undefined) and answered e.g.
# "field contact_phone: field contact_phone: igits, need at least 8)". The
# same holds for snprintf into an error's msg. Context goes in front with
# bz_wrap and a new code or reason with bz_reclass. This script reads every C file in services/,
# libs/ and tools/ under ROOT, a call at a time (calls span lines), and
# prints path:line for each such call whose destination's own msg is among
# its arguments (`sizeof x->msg` is no read of it).
#
# `make test` runs it (scripts/test.sh) and so does `make lint`.
# --self-test runs it against a small made-up tree and fails unless it
# accepts a wrap and a copy made first, and reports both a bz_reject over
# two lines and an snprintf that read their own message.

set -euo pipefail
export LC_ALL=C

CODE=(services libs tools)

# "path:line: call" for every call under ROOT that formats an error's
# message from that same message.
self_formatted() {
    local root="$1" targets=() t
    for t in "${CODE[@]}"; do
        [ -d "$root/$t" ] && targets+=("$t")
    done
    [ "${#targets[@]}" -eq 0 ] && return 0
    (cd "$root" && find "${targets[@]}" -name '*.c' -print0 | sort -z |
        xargs -0 -r perl -0777 -ne '
            while (/\b(bz_fail|bz_fail_because|bz_reject|v?snprintf)\s*\(\s*&?\s*(\w+)(\s*(?:->|\.)\s*msg)?\s*,([^;]*)/g) {
                my ($call, $dest, $field, $args, $at) = ($1, $2, $3, $4, $-[0]);
                next if $call =~ /snprintf/ && !$field;
                $args =~ s/sizeof\s*\(?\s*\Q$dest\E\s*(->|\.)\s*msg//g;
                next unless $args =~ /\b\Q$dest\E\s*(->|\.)\s*msg\b/;
                my $line = 1 + (substr($_, 0, $at) =~ tr/\n//);
                print "$ARGV:$line: $call into $dest reads ${dest}->msg\n";
            }')
}

# Check ROOT; prints problems, returns non-zero when there are any.
check() {
    local found
    found="$(self_formatted "$1")"
    if [ -n "$found" ]; then
        echo "$found" >&2
        echo "check_error_msgs: a message formatted from itself (prefix with bz_wrap, re-class with bz_reclass)" >&2
        return 1
    fi
    echo "check_error_msgs: no message is formatted from itself"
}

self_test() {
    local tree rc=0 out
    tree="$(mktemp -d)"
    mkdir -p "$tree/services/x"
    cat >"$tree/services/x/a.c" <<'EOF'
bz_wrap(err, "field contact_phone");
return bz_reclass(err, BZ_ERR_INVALID, "invalid_field");
snprintf(inner, sizeof inner, "%s", err->msg);
snprintf(err->msg, sizeof err->msg, "%s %.480s", part, inner);
return bz_fail(&e, BZ_ERR_IO, "%s", other.msg);
EOF
    if ! check "$tree" >/dev/null 2>&1; then
        echo "self-test: a wrap or a copy made first was refused" >&2
        rc=1
    fi
    cat >"$tree/services/x/b.c" <<'EOF'
int f(void)
{
    return bz_reject(err, "invalid_field",
                     "field contact_phone: %s", err->msg);
}
void g(bz_error *e) { snprintf(e->msg, sizeof e->msg, "x: %s", e->msg); }
EOF
    out="$(check "$tree" 2>&1)" && rc=1
    if ! grep -qF 'services/x/b.c:3: bz_reject into err' <<<"$out" ||
        ! grep -qF 'services/x/b.c:6: snprintf into e' <<<"$out"; then
        echo "self-test: a message formatted from itself was not reported: $out" >&2
        rc=1
    fi
    rm -rf "$tree"
    [ "$rc" -eq 0 ] && echo "check_error_msgs: self-test passed"
    return "$rc"
}

case "${1:-}" in
    --self-test) self_test ;;
    *) check "${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}" ;;
esac
