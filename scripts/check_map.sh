#!/usr/bin/env bash
#
# scripts/check_map.sh [--self-test] [ROOT] - the architecture map's tables
# hold against the code: a service produces no topic, and writes no table,
# that its row in docs/ARCHITECTURE.md does not name.
#
# The map has two tables for this, each after a marker line:
#   "<!-- map:topics"  | topic | key | value | written by | read by |, one
#                      topic (or a list of them, in backticks) per row; a
#                      service is named in a cell by its folder's name
#                      ("chat-sync's outbox", "every ingest instance");
#   "<!-- map:tables"  | service | writes (PostgreSQL) |, one row per
#                      service folder; its tables in backticks
#                      (`chats.media_id` names chats).
#
# What the code does is read from services/<name>/*.c and *.h (and those
# of its subfolders), comments
# left out, one C statement at a time, plus the libs modules the service
# includes: "#include "kafka/outbox.h"" brings libs/kafka/outbox*.c, a
# module being the files sharing its header's first word
# ("kafka/eo_consumer.h" brings libs/kafka/eo_*.c, where the consumer
# stores its offsets). Heuristics:
#   - a topic is named by its catalogue constant (BZ_TOPIC_CHAT_SYNC,
#     BZ_GATEWAY_TOPIC_COMMANDS for "wa.session.commands.gw.<id>", as
#     libs/kafka/topics.c spells them) or by its base name as a string
#     literal ("chat.events");
#   - a service produces a topic it names in a statement that calls a
#     writing function (a name holding outbox, emit, produce or _send:
#     bz_outbox_batch_add, cs_emit_record, bz_producer_send), and every
#     dead-letter topic (*.dlq) it names; such a topic must be in the
#     service's "written by";
#   - any other topic it names must be in its "written by" or "read by"
#     (a subscription, a name built for a producer held elsewhere);
#   - a service writes a table when a string literal of its statements
#     holds INSERT INTO, UPDATE or DELETE FROM before a table that
#     db/migrations creates; the table must be on its row.
# What it does not see: a topic reached through a variable alone (ingest
# names its topics where it builds them, so they count as named, not
# produced); rows the outbox's trigger routes to a gateway's topics
# (0029); tables written by SQL functions and triggers of db/migrations
# (blazz_template_report, blazz_account_report), by libs the service
# reaches only through another lib, or by tools/ (blazzctl); SQL built
# from pieces in several statements. The check is one way: a name on the
# map that the code no longer uses is not an error, except a service or
# a topic that no longer exists.
#
# `make lint` runs it (scripts/lint.sh) and so does `make test`.
# --self-test copies the tables of a made-up tree, plants a mismatch
# (a topic produced, a topic named, a table written, each missing from
# the map) and expects each to be refused, so the check is known to fail.

set -euo pipefail
export LC_ALL=C
shopt -s nullglob

MAP="docs/ARCHITECTURE.md"
CATALOGUE="libs/kafka/topics.c"
# A call to a function whose name says it writes a record (a bracket for
# the parenthesis: awk -v would read "\(" as an escape).
WRITING_CALL='[A-Za-z_]*(outbox|emit|produce|_send)[A-Za-z_]*[ ]*[(]'

# One line per C statement of the files given: "path<TAB>line<TAB>code
# without comments or string contents<TAB>the string literals' contents".
# A statement ends at ; { } or the end of a preprocessor line.
statements() {
    awk '
function add(piece) {
    if (code !~ /[^ \t]/ && piece ~ /[^ \t]/) start = FNR
    code = code piece
}
function flush() {
    if (code ~ /[^ \t]/ || lits ~ /[^ \t]/)
        printf "%s\t%d\t%s\t%s\n", FILENAME, start, code, lits
    code = ""; lits = ""; start = FNR
}
FNR == 1 { if (NR > 1) flush(); state = "code"; start = 1; code = ""; lits = "" }
{
    line = $0
    gsub(/\t/, " ", line)
    directive = (state == "code" && line ~ /^[ ]*#/)
    if (directive) flush()
    while (line != "") {
        if (state == "code") {
            if (!match(line, /"|'\''|\/\*|\/\/|[;{}]/)) { add(line); break }
            add(substr(line, 1, RSTART - 1))
            tok = substr(line, RSTART, RLENGTH)
            line = substr(line, RSTART + RLENGTH)
            if (tok == "\"") { state = "str"; add("\"\""); lits = lits " " }
            else if (tok == "'\''") state = "chr"
            else if (tok == "/*") { state = "com"; add(" ") }
            else if (tok == "//") line = ""
            else flush()
        } else if (state == "com") {
            if (!match(line, /\*\//)) break
            line = substr(line, RSTART + 2); state = "code"
        } else if (state == "str") {
            if (!match(line, /\\.|"/)) { lits = lits line; break }
            lits = lits substr(line, 1, RSTART - 1)
            tok = substr(line, RSTART, RLENGTH)
            line = substr(line, RSTART + RLENGTH)
            if (tok == "\"") state = "code"; else lits = lits tok
        } else {
            if (!match(line, /\\.|'\''/)) break
            tok = substr(line, RSTART, RLENGTH)
            line = substr(line, RSTART + RLENGTH)
            if (tok == "'\''") state = "code"
        }
    }
    if (state == "code") add(" ")
    if (directive && $0 !~ /\\$/) flush()
}
END { flush() }' "$@"
}

# The files that speak for service folder DIR (relative to ROOT): its own
# sources and the libs modules it includes.
service_files() {
    local root="$1" dir="$2" f lib module own=()
    for f in "$root/$dir"/*.c "$root/$dir"/*.h "$root/$dir"/*/*.c "$root/$dir"/*/*.h; do
        [ -f "$f" ] && own+=("$f")
    done
    [ "${#own[@]}" -eq 0 ] && return 0
    printf '%s\n' "${own[@]#"$root"/}"
    sed -nE 's|^[[:space:]]*#[[:space:]]*include[[:space:]]*"([a-z_]+)/([a-z0-9_]+)\.h".*|\1 \2|p' "${own[@]}" |
        sort -u | while read -r lib module; do
            for f in "$root/libs/$lib/$module.c" "$root/libs/$lib/${module%%_*}"_*.c; do
                [ -f "$f" ] && echo "${f#"$root"/}"
            done
        done | sort -u
}

# "CONSTANT name" for every catalogue topic; a gateway's own topics are
# named "<base><id>".
catalogue() {
    sed -nE 's/^[[:space:]]*\[(BZ_TOPIC_[A-Z_]+)\][[:space:]]*=[[:space:]]*"([^"]+)".*/\1 \2/p
              s/^[[:space:]]*\[(BZ_GATEWAY_TOPIC_[A-Z_]+)\][[:space:]]*=[[:space:]]*"([^"]+)".*/\1 \2<id>/p' "$1"
}

# The tables db/migrations creates, one per line.
schema_tables() {
    cat "$1"/*.sql 2>/dev/null |
        grep -oiE 'CREATE TABLE( IF NOT EXISTS)?[[:space:]]+[a-z_][a-z0-9_]*' |
        awk '{ print tolower($NF) }' | sort -u
}

# The map's facts: "map-produce S T", "map-consume S T" from the topic
# table, "map-topic T" for each topic it lists, "map-write S TABLE" and
# "map-service S" from the table of writes. SERVICES is the folders' names.
map_facts() {
    awk -v services="$2" '
function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
# Is service s named in cell c as a word of its own ("chat-sync" in
# "chat-sync'"'"'s outbox"; not "cleanup" in "cleanup.requests")?
function names(c, s,    i, rest, before, after, next2) {
    rest = c
    while ((i = index(rest, s)) > 0) {
        before = i > 1 ? substr(rest, i - 1, 1) : ""
        after = substr(rest, i + length(s), 1)
        next2 = substr(rest, i + length(s) + 1, 1)
        if (before !~ /[A-Za-z0-9_.-]/ && after !~ /[A-Za-z0-9_-]/ &&
            !(after == "." && next2 ~ /[A-Za-z0-9]/))
            return 1
        rest = substr(rest, i + length(s))
    }
    return 0
}
# The backticked words of cell c into list[1..n]; returns n.
function ticked(c, list,    n) {
    n = 0
    while (match(c, /`[^`]+`/)) {
        list[++n] = substr(c, RSTART + 1, RLENGTH - 2)
        c = substr(c, RSTART + RLENGTH)
    }
    return n
}
BEGIN { ns = split(services, svc, " ") }
/<!-- map:topics/ { table = "topics"; state = 1; next }
/<!-- map:tables/ { table = "tables"; state = 1; next }
state == 1 && /^\|/ {
    n = split($0, head, "|")
    for (i = 2; i < n; i++) col[table, tolower(trim(head[i]))] = i
    state = 2; next
}
state == 2 && /^\|[-| ]+\|$/ { state = 3; next }
state == 3 && /^\|/ {
    split($0, cell, "|")
    if (table == "topics") {
        w = 0; r = 0
        for (k in col) {
            split(k, kk, SUBSEP)
            if (kk[1] != "topics") continue
            if (kk[2] ~ /^written by/) w = col[k]
            if (kk[2] ~ /^read by/) r = col[k]
        }
        nt = ticked(cell[col["topics", "topic"]], topic)
        for (t = 1; t <= nt; t++) {
            print "map-topic", topic[t]
            for (s = 1; s <= ns; s++) {
                if (w && names(cell[w], svc[s])) print "map-produce", svc[s], topic[t]
                if (r && names(cell[r], svc[s])) print "map-consume", svc[s], topic[t]
            }
        }
    } else {
        name = trim(cell[2]); gsub(/`/, "", name)
        print "map-service", name
        nt = ticked(cell[3], tab)
        for (t = 1; t <= nt; t++) { sub(/\..*/, "", tab[t]); print "map-write", name, tab[t] }
    }
    next
}
state == 3 { state = 0 }' "$1"
}

# The code's facts for service S from its statements on stdin:
# "code-produce S T where", "code-name S T where", "code-write S TABLE where".
code_facts() {
    awk -F'\t' -v svc="$1" -v cat="$2" -v tables="$3" -v call="$WRITING_CALL" '
BEGIN {
    n = split(cat, c, "\n")
    for (i = 1; i <= n; i++) { split(c[i], kv, " "); byconst[kv[1]] = kv[2]; bylit[kv[2]] = kv[2] }
    n = split(tables, t, "\n")
    for (i = 1; i <= n; i++) known[t[i]] = 1
}
function topic(name, writes, where) {
    if (name ~ /\.dlq$/) writes = 1
    print (writes ? "code-produce" : "code-name"), svc, name, where
}
{
    where = $1 ":" $2
    writes = ($3 ~ call)
    if ($1 ~ /^services\//) topics()
    s = $4
    while (match(s, /(INSERT[ ]+INTO|UPDATE|DELETE[ ]+FROM)[ ]+(ONLY[ ]+)?[a-z_][a-z0-9_]*/)) {
        m = substr(s, RSTART, RLENGTH); s = substr(s, RSTART + RLENGTH)
        k = split(m, word, /[ ]+/)
        if (word[k] in known) print "code-write", svc, word[k], where
    }
}
# The topics a statement of the service'"'"'s own names (a lib names topics
# for whoever calls it, the catalogue all of them).
function topics(    s, k, n, i, w) {
    s = $3
    while (match(s, /BZ_(GATEWAY_)?TOPIC_[A-Z_]+/)) {
        k = substr(s, RSTART, RLENGTH); s = substr(s, RSTART + RLENGTH)
        if (k in byconst) topic(byconst[k], writes, where)
    }
    n = split($4, w, /[ ]+/)
    for (i = 1; i <= n; i++) if (w[i] in bylit) topic(w[i], writes, where)
}'
}

# Check ROOT; prints problems, returns non-zero when there are any.
check() {
    local root="$1" map="$1/$MAP" cat tables services=() dir s f files
    for f in "$map" "$root/$CATALOGUE"; do
        if [ ! -f "$f" ]; then
            echo "check_map: ${f#"$root"/} is missing under $root" >&2
            return 1
        fi
    done
    cat="$(catalogue "$root/$CATALOGUE")"
    tables="$(schema_tables "$root/db/migrations")"
    if [ -z "$cat" ] || [ -z "$tables" ]; then
        echo "check_map: no topic catalogue in $CATALOGUE or no table in db/migrations" >&2
        return 1
    fi
    for dir in "$root"/services/*/; do
        [ -d "$dir" ] && services+=("$(basename "$dir")")
    done
    if [ "${#services[@]}" -eq 0 ]; then
        echo "check_map: no service folders under $root/services" >&2
        return 1
    fi
    {
        map_facts "$map" "${services[*]}"
        for s in "${services[@]}"; do
            echo "service $s"
            mapfile -t files < <(service_files "$root" "services/$s")
            [ "${#files[@]}" -eq 0 ] && continue
            (cd "$root" && statements "${files[@]}") | code_facts "$s" "$cat" "$tables"
        done
        awk '{ print "catalogue", $2 }' <<<"$cat"
    } | awk -v map="$MAP" '
$1 == "catalogue" { defined[$2] = 1; next }
$1 == "service" { folder[$2] = 1; next }
$1 == "map-service" { row[$2] = 1; next }
$1 == "map-topic" { listed[$2] = 1; next }
$1 ~ /^map-/ { fact[$1, $2, $3] = 1; next }
{ code[++n] = $0 }
END {
    bad = 0
    err = "/dev/stderr"
    for (s in folder) if (!(s in row)) { print map ": no row for service " s " in its table of writes" > err; bad++ }
    for (s in row) if (!(s in folder)) { print map ": the table of writes names " s ", which has no services/ folder" > err; bad++ }
    for (t in listed) if (!(t in defined)) { print map ": the topic table lists " t ", which the catalogue does not define" > err; bad++ }
    for (i = 1; i <= n; i++) {
        split(code[i], f, " ")
        key = f[2] SUBSEP f[3]
        if (dup[f[1], key]++) continue
        count[f[1]]++
        if (f[1] == "code-produce" && !(("map-produce", f[2], f[3]) in fact)) {
            print f[4] ": " f[2] " produces " f[3] ", and the map does not list it as written by " f[2] > "/dev/stderr"; bad++
        } else if (f[1] == "code-name" && !(("map-produce", f[2], f[3]) in fact) && !(("map-consume", f[2], f[3]) in fact)) {
            print f[4] ": " f[2] " names " f[3] ", and the map lists it neither as written nor as read by " f[2] > "/dev/stderr"; bad++
        } else if (f[1] == "code-write" && !(("map-write", f[2], f[3]) in fact)) {
            print f[4] ": " f[2] " writes " f[3] ", and the map does not name it on " f[2] "'"'"'s row" > "/dev/stderr"; bad++
        }
    }
    if (bad) { print "check_map: " bad " differences between the code and " map > err; exit 1 }
    for (s in folder) services++
    printf "check_map: %d services: the topics they produce (%d), otherwise name (%d) and the tables they write (%d) are on %s\n",
        services, count["code-produce"], count["code-name"], count["code-write"], map
}' || return 1
}

# shellcheck source=lib/self_test.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/self_test.sh"

self_test() {
    local tree rc=0
    tree="$(mktemp -d)"
    self_test_cases "$tree" || rc=1
    rm -rf "$tree"
    [ "$rc" -eq 0 ] && echo "check_map: self-test passed"
    return "$rc"
}

# A tree of two services, a catalogue, a schema, a lib module and a map
# that agree; then one mismatch at a time.
self_test_cases() {
    local t="$1"
    mkdir -p "$t/docs" "$t/libs/kafka" "$t/db/migrations" "$t/services/alpha" "$t/services/beta"
    cat >"$t/$CATALOGUE" <<'EOF'
static const char *const topic_bases[BZ_TOPIC_COUNT] = {
    [BZ_TOPIC_IN] = "in.events",
    [BZ_TOPIC_OUT] = "out.events",
    [BZ_TOPIC_ALPHA_DLQ] = "alpha.dlq",
};
static const char *const gateway_topic_bases[BZ_GATEWAY_TOPIC_COUNT] = {
    [BZ_GATEWAY_TOPIC_OWN] = "own.gw.",
};
EOF
    printf 'CREATE TABLE items (id bigint);\nCREATE TABLE IF NOT EXISTS outbox (id bigint);\nCREATE TABLE logs (id bigint);\n' \
        >"$t/db/migrations/0001_x.sql"
    printf '/* outbox.h - the module the services include */\n' >"$t/libs/kafka/outbox.h"
    # shellcheck disable=SC2016 # the $1 is SQL's, not the shell's
    printf '/* DELETE FROM logs: a comment, not SQL */\nstatic const char *q = "DELETE FROM outbox WHERE id = $1";\n' \
        >"$t/libs/kafka/outbox_relay.c"
    cat >"$t/services/alpha/a.c" <<'EOF'
#include "kafka/outbox.h"
/* reads in.events; "out.events" in a comment is no use */
static void wire(void) { subscribe(bz_topic_base(BZ_TOPIC_IN)); dlq = "alpha.dlq"; }
static int put(PGconn *c) {
    return bz_outbox_add(c, bz_topic_base(BZ_TOPIC_OUT), "INSERT INTO "
                         "items (id) VALUES (1)");
}
EOF
    printf 'static void go(void) { cs_emit_record(b, "out.events", key); }\n' >"$t/services/beta/b.c"
    cat >"$t/$MAP" <<'EOF'
# Map

<!-- map:topics -->
| topic | key | value | written by | read by |
|---|---|---|---|---|
| `in.events` | k | `In` | gateways | alpha |
| `out.events` | k | `Out` | alpha's outbox; beta | nobody |
| `alpha.dlq` | k | `DeadLetter` | alpha | operators |
| `own.gw.<id>` | k | `Own` | gateway `<id>` | beta |

<!-- map:tables -->
| service | writes (PostgreSQL) |
|---|---|
| alpha | `items.id`, `outbox` |
| beta | nothing |
EOF
    expect 0 "$t" || return 1
    # a topic produced that the map lists only as read by the service
    printf 'static void lease(void) { cs_emit_record(b, "in.events", key); }\n' >"$t/services/alpha/c.c"
    expect 1 "$t" "alpha produces in.events" || return 1
    rm "$t/services/alpha/c.c"
    # a dead letter written by a service the map does not name for it
    printf 'static const char *d = "alpha.dlq";\n' >"$t/services/beta/c.c"
    expect 1 "$t" "beta produces alpha.dlq" || return 1
    # a topic named that the map lists neither way for the service
    printf 'static void x(void) { name(BZ_GATEWAY_TOPIC_OWN); name(BZ_TOPIC_IN); }\n' >"$t/services/beta/c.c"
    expect 1 "$t" "beta names in.events" || return 1
    rm "$t/services/beta/c.c"
    # a table written, in its own SQL and through a lib module it includes
    printf 'static const char *q = "UPDATE logs SET id = 2";\n' >"$t/services/alpha/c.c"
    expect 1 "$t" "alpha writes logs" || return 1
    rm "$t/services/alpha/c.c"
    printf '#include "kafka/outbox.h"\n' >"$t/services/beta/c.h"
    expect 1 "$t" "beta writes outbox" || return 1
    rm "$t/services/beta/c.h"
    # a service without a row, a topic the catalogue lost
    mkdir "$t/services/gamma"
    expect 1 "$t" "no row for service gamma" || return 1
    rmdir "$t/services/gamma"
    sed -i '/BZ_TOPIC_OUT\]/d' "$t/$CATALOGUE"
    expect 1 "$t" "lists out.events, which the catalogue does not define" || return 1
}

case "${1:-}" in
    --self-test) self_test ;;
    *) check "${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}" ;;
esac
