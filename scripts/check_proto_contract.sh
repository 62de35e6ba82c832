#!/usr/bin/env bash
#
# scripts/check_proto_contract.sh [--self-test | --release] [ROOT] - the
# Kafka contracts (proto/blazz/v1/*.proto) only grow: every field and enum
# value of the last release is still there with its number, name, type and
# label (ARCHITECTURE.md §2, "Contract rules").
#
# A service of the previous release must decode what the new one writes,
# and the new one what the old one wrote, while an upgrade replaces them one
# by one (docs/decisions/0008-forward-only-migrations-and-additive-contracts.md).
# Adding a field or a value is safe; removing, renumbering, renaming or
# retyping one is not: the other side reads the bytes as something else, or
# loses them.
#
# The contract of the last release is kept in the tree,
# proto/released-contract.txt: one line per field ("field <message>
# <number> <name> <label> <type> [<type name>] [deprecated]"), per enum
# value ("enum <enum> <number> <name>") and per reserved field number
# ("reserved <message> <number>"), made from the compiler's own reading of the
# files (protoc-c's descriptor set, decoded with
# scripts/proto_contract/descriptor_subset.proto), so comments, order and
# layout do not count. The check fails naming every released line the
# current files no longer have, except a field the release marked
# [deprecated = true] that is now removed with its number reserved (the
# expand-then-contract rule: gone one release after it was marked, when
# no reader of the previous release still needs it). Kept in the tree
# rather than read from a
# release tag, so that it holds in any clone, with or without its tags.
#
#   (no flag)   compare ROOT's proto files (default: this repository) with
#               its proto/released-contract.txt
#   --release   write the current contract to proto/released-contract.txt
#               (part of cutting a release: README.md, "Releases")
#   --self-test run against a small made-up contract: an added field and
#               value pass; a removed, renumbered, renamed and retyped field,
#               a removed value and a reserved number used again each fail;
#               a field deprecated in a release may be removed in the next,
#               its number reserved
#
# `make test` runs it (scripts/test.sh) and so does `make lint`.

set -euo pipefail
export LC_ALL=C

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SUBSET_DIR="$(dirname "$SELF")/proto_contract"
RELEASED=proto/released-contract.txt

# The contract of the .proto files under ROOT/proto, one sorted line each:
#   field <message> <number> <name> <label> <type> [<type name>] [deprecated]
#   enum <enum> <number> <name>
#   reserved <message> <number>
contract_of() {
    local root="$1" set
    set="$(mktemp)"
    # shellcheck disable=SC2064  # the file's name is fixed now
    trap "rm -f '$set'" RETURN
    (cd "$root/proto" && protoc-c -I. --descriptor_set_out="$set" blazz/v1/*.proto)
    protoc-c --decode=google.protobuf.FileDescriptorSet -I"$SUBSET_DIR" \
        "$SUBSET_DIR/descriptor_subset.proto" <"$set" | awk '
        # A block opens as "<kind> {" and closes as "}"; name comes first in
        # each block (text format prints fields in number order).
        function scope_name(d) { return d > 0 && kind[d] != "file" ? full[d] : pkg }
        /^ *[a-z_0-9]+ \{$/ {
            depth++; kind[depth] = $1; full[depth] = scope_name(depth - 1)
            if ($1 == "field" || $1 == "value")
                fname = num = label = type = tname = dep = ""
            if ($1 == "reserved_range")
                rstart = rend = ""
            next
        }
        /^ *\}$/ {
            k = kind[depth]
            if (k == "field")
                print "field", full[depth - 1], num, fname, label, type, tname, dep
            else if (k == "value")
                print "enum", full[depth - 1], num, fname
            else if (k == "reserved_range")
                for (n = rstart; n < rend && n < rstart + 1000; n++)
                    print "reserved", full[depth - 1], n
            depth--
            next
        }
        # what the subset schema does not name (json names read as messages,
        # other options) is printed by number: not ours
        kind[depth] ~ /^[0-9]+$/ { next }
        {
            key = $1; value = $2; gsub(/"/, "", value)
        }
        key == "package:" { pkg = value }
        key == "name:" {
            k = kind[depth]
            if (k == "message_type" || k == "nested_type" || k == "enum_type")
                full[depth] = scope_name(depth - 1) "." value
            else
                fname = value
        }
        key == "number:" { num = value }
        key == "label:" { label = value }
        key == "type:" { type = value }
        key == "type_name:" { tname = value }
        key == "deprecated:" && value == "true" { dep = "deprecated" }
        key == "start:" { rstart = value + 0 }
        key == "end:" { rend = value + 0 }
    ' | sed 's/  */ /g; s/ *$//' | sort
}

# Released lines (deprecation marks aside) the current contract lacks,
# except a field deprecated in the release and reserved now: removed one
# release after it was marked, as the expand-then-contract rule allows.
lost_lines() {
    local released="$1" current="$2"
    comm -23 <(sed 's/ deprecated$//' "$released" | sort -u) \
             <(sed 's/ deprecated$//' "$current" | sort -u) |
        while read -r what scope number rest; do
            if [ "$what" = field ] && grep -qxF "field $scope $number $rest deprecated" "$released" &&
                grep -qxF "reserved $scope $number" "$current"; then
                continue
            fi
            echo "$what $scope $number${rest:+ $rest}"
        done
}

check() {
    local root="$1" released current missing
    [ -f "$root/$RELEASED" ] || { echo "check_proto_contract: no $RELEASED (cut a release: $0 --release)" >&2; return 1; }
    released="$(mktemp)"; current="$(mktemp)"
    # shellcheck disable=SC2064
    trap "rm -f '$released' '$current'" RETURN
    grep -v '^#' "$root/$RELEASED" >"$released" || true
    contract_of "$root" >"$current"
    missing="$(lost_lines "$released" "$current")"
    if [ -n "$missing" ]; then
        echo "check_proto_contract: the contracts lost what the last release has (removed, renumbered, renamed or retyped):" >&2
        sed 's/^/  /' <<<"$missing" >&2
        echo "  (contracts are additive: add a new field instead; a field marked [deprecated = true] in a release may go in the next, its number reserved)" >&2
        return 1
    fi
    echo "check_proto_contract: every field, value and reserved number of the last release is kept ($(wc -l <"$released") lines)"
}

release() {
    local root="$1"
    {
        echo "# The Kafka contracts of the last release (scripts/check_proto_contract.sh"
        echo "# --release writes this file; the check fails when a line goes missing)."
        contract_of "$root"
    } >"$root/$RELEASED"
    echo "check_proto_contract: wrote $RELEASED ($(grep -vc '^#' "$root/$RELEASED") lines)"
}

# A made-up tree with one contract, released, then changed.
self_test() {
    local tmp verdict
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    mkdir -p "$tmp/proto/blazz/v1"
    write() { printf 'syntax = "proto3";\npackage blazz.v1;\n%s\n' "$1" >"$tmp/proto/blazz/v1/t.proto"; }
    expect() {
        local want="$1" what="$2"
        if check "$tmp" >/dev/null 2>&1; then verdict=pass; else verdict=fail; fi
        [ "$verdict" = "$want" ] || { echo "check_proto_contract self-test: $what: $verdict, expected $want" >&2; return 1; }
    }
    local base='message M { string a = 1; int64 b = 2; message N { bool c = 1; } N n = 3; }
enum E { E_UNSPECIFIED = 0; E_ONE = 1; }'
    write "$base"
    release "$tmp" >/dev/null
    expect pass "unchanged"
    write "${base/int64 b = 2;/int64 b = 2; string d = 4;}"
    expect pass "a field added"
    write "${base/E_ONE = 1;/E_ONE = 1; E_TWO = 2;}"
    expect pass "an enum value added"
    write "${base/int64 b = 2;/reserved 2;}"
    expect fail "a field removed"
    write "${base/int64 b = 2;/int64 b = 5;}"
    expect fail "a field renumbered"
    write "${base/int64 b = 2;/int64 bb = 2;}"
    expect fail "a field renamed"
    write "${base/int64 b = 2;/string b = 2;}"
    expect fail "a field retyped"
    write "${base/bool c = 1;/bool c = 1; repeated int32 z = 2;}"
    expect pass "a nested field added"
    write "${base/bool c = 1;/int32 c = 1;}"
    expect fail "a nested field retyped"
    write "${base/ E_ONE = 1;/}"
    expect fail "an enum value removed"
    write "${base/int64 b = 2;/}"
    expect fail "a field removed, its number not reserved"
    write "${base/int64 b = 2;/int64 b = 2 [deprecated = true];}"
    expect pass "a field marked deprecated"
    release "$tmp" >/dev/null
    write "${base/int64 b = 2;/reserved 2;}"
    expect pass "a field deprecated in the release, removed and reserved in the next"
    write "${base/int64 b = 2;/}"
    expect fail "a deprecated field removed, its number not reserved"
    write "${base/int64 b = 2;/reserved 2;}"
    release "$tmp" >/dev/null
    write "${base/int64 b = 2;/int64 b2 = 2;}"
    expect fail "a reserved number used again"
    echo "check_proto_contract self-test: additions pass, removals and changes fail"
}

case "${1:-}" in
    --self-test) self_test ;;
    --release) release "${2:-$(dirname "$(dirname "$SELF")")}" ;;
    *) check "${1:-$(dirname "$(dirname "$SELF")")}" ;;
esac
