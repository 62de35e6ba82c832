# scripts/lib/bench_gate_verdict.awk - the regression gate's comparison
# (scripts/bench_gate.sh): the figures of two builds, several rounds each,
# reduced to one side-by-side table with a verdict per figure.
#
# Input lines: "BUILD ROUND NAME VALUE UNIT", BUILD "base" (the release) or
# "head"; values that are not numbers (a benchmark's "?") are left out.
# Variables (-v): tol, the tolerance in percent; tail_tol, the one of
# p95/p99 figures (tail latencies move most between runs); overrides,
# "REGEX=PERCENT,..." over figure names, the first match winning over both;
# min_ms, a difference of latency (ms) too small to call worse or better
# whatever the ratio (a 0.4 ms hop at 0.6 is +50% and means nothing).
#
# Per figure: the median of each build's rounds, HEAD/base, the spread (the
# largest distance of one round from its build's median, in percent of
# it: what the tolerance must stay above) and the verdict. The direction
# comes from the unit: rates (…/s) and percentages are better higher, as
# are ratios and x to a baseline, except the "_beside_" ones, a latency
# disturbed over alone; ms, us, s and MB are better lower. Not gated, shown
# with "-": the stack's own baselines (raw_… and …baseline… rates measure
# Kafka, PostgreSQL and libcurl, not the code), counts and unknown units,
# and figures only one build printed. HEAD is WORSE past the tolerance in
# the bad direction, better past it in the good one, ok within. A p95 or
# p99 must also be past the release's own worst round to be WORSE (its
# best to be better): a tail the release itself reached in one of its
# rounds is run-to-run noise (a p99 of 30 ms against 20, where one of the
# release's three rounds measured 30, is no regression). Other figures
# keep the median alone, so one wild release round widens nothing. Exits 1
# when any figure is WORSE.

# 1 higher is better, -1 lower is better, 0 not gated.
function direction(name, unit) {
    if (unit ~ /\/s$/ && name ~ /(^|_)(raw|baseline)(_|$)/) return 0
    if (unit ~ /\/s$/ || unit == "percent" || unit == "%") return 1
    if (unit == "ratio" || unit == "x") return name ~ /_beside_/ ? -1 : 1
    if (unit == "ms" || unit == "us" || unit == "s" || unit == "MB") return -1
    return 0
}

function tolerance_of(name,    i, n, pair, parts) {
    n = split(overrides, pair, ",")
    for (i = 1; i <= n; i++) {
        if (split(pair[i], parts, "=") == 2 && name ~ parts[1]) return parts[2] + 0
    }
    return name ~ /_p9[59](_|$)/ ? tail_tol + 0 : tol + 0
}

# The median of the count values of build b's figure k (sorted in place).
function median(b, k,    c, i, j, t, v) {
    c = count[b, k]
    for (i = 1; i <= c; i++) v[i] = vals[b, k, i]
    for (i = 2; i <= c; i++) {
        t = v[i]
        for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
        v[j + 1] = t
    }
    return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
}

# The largest distance of one of build b's rounds from median m, in %.
function spread(b, k, m,    i, d, worst) {
    worst = 0
    for (i = 1; i <= count[b, k]; i++) {
        d = vals[b, k, i] - m
        if (d < 0) d = -d
        if (m != 0 && 100 * d / (m < 0 ? -m : m) > worst) worst = 100 * d / (m < 0 ? -m : m)
    }
    return worst
}

# The smallest (sign 1) or largest (sign -1) of build b's rounds.
function extreme(b, k, sign,    i, e) {
    e = vals[b, k, 1]
    for (i = 2; i <= count[b, k]; i++)
        if (sign * vals[b, k, i] < sign * e) e = vals[b, k, i]
    return e
}

# lo and hi: the release's smallest and largest round (its median for
# figures other than tails).
function verdict(dir, base, head, t, unit, lo, hi,    up, down) {
    up = head > base * (1 + t / 100) && head > hi && !(unit == "ms" && head - base < min_ms)
    down = head < base * (1 - t / 100) && head < lo && !(unit == "ms" && base - head < min_ms)
    if (dir > 0) return down ? "WORSE" : up ? "better" : "ok"
    return up ? "WORSE" : down ? "better" : "ok"
}

$4 ~ /^-?[0-9]+(\.[0-9]+)?$/ && NF >= 5 {
    if (!(($3) in unit_of)) order[++n] = $3
    unit_of[$3] = $5
    vals[$1, $3, ++count[$1, $3]] = $4 + 0
}

END {
    printf "%-44s %-10s %10s %10s %8s %7s %6s  %s\n", "figure", "unit", "release", "HEAD", \
        "HEAD/rel", "spread", "tol", "verdict"
    worse = 0
    for (i = 1; i <= n; i++) {
        k = order[i]
        u = unit_of[k]
        hb = count["base", k] > 0
        hh = count["head", k] > 0
        mb = hb ? median("base", k) : 0
        mh = hh ? median("head", k) : 0
        s = (hb ? spread("base", k, mb) : 0)
        if (hh && spread("head", k, mh) > s) s = spread("head", k, mh)
        dir = direction(k, u)
        t = tolerance_of(k)
        v = !hb || !hh ? "- (one build)" : dir == 0 ? "-" : verdict(dir, mb, mh, t, u, \
                k ~ /_p9[59](_|$)/ ? extreme("base", k, 1) : mb, \
                k ~ /_p9[59](_|$)/ ? extreme("base", k, -1) : mb)
        if (v == "WORSE") worse++
        printf "%-44s %-10s %10s %10s %8s %6.0f%% %6s  %s\n", k, u, hb ? sprintf("%.6g", mb) : "n/a", \
            hh ? sprintf("%.6g", mh) : "n/a", hb && hh && mb != 0 ? sprintf("%.2f", mh / mb) : "-", \
            s, dir == 0 ? "-" : t "%", v
    }
    printf "bench_gate: %d figure(s) worse beyond the tolerance\n", worse
    exit worse > 0
}
