# scripts/lib/histogram_quantiles.awk - quantiles of one Prometheus
# histogram over a window, from /metrics snapshots taken at its start and
# its end, summed over every process that exports it.
#
#   awk -v metric=blazz_consumer_record_age_seconds -v labels_match='group="blazz-chat-sync"' \
#       -f histogram_quantiles.awk START_FILES... END_FILES...
#
# A file whose name holds "metrics0-" is a start snapshot; its counts are
# subtracted, so the quantiles speak of the observations made inside the
# window only. `labels_match` (optional) is a regular expression the sample's
# labels must match. Prints "p50 p95 p99 count", in milliseconds with one
# decimal, interpolated linearly inside the bucket a quantile falls in (as
# PromQL's histogram_quantile does); "n/a n/a n/a 0" when the window has no
# observation. A quantile in the +Inf bucket is given as the largest finite
# bound, the most the buckets can say.

function bound(le) { return le == "+Inf" ? 1e300 : le + 0 }

index($0, metric "_bucket{") == 1 {
    labels = $1
    if (labels_match != "" && labels !~ labels_match) next
    if (!take_le(labels)) next
    sign = FILENAME ~ /metrics0-/ ? -1 : 1
    count[le] += sign * $2
    seen[le] = 1
}

function take_le(labels,    at, rest) {
    at = index(labels, "le=\"")
    if (!at) return 0
    rest = substr(labels, at + 4)
    le = substr(rest, 1, index(rest, "\"") - 1)
    return 1
}

function quantile(q,    rank, i, lower, below) {
    rank = q * total
    lower = 0
    below = 0
    for (i = 1; i <= n; i++) {
        if (cum[i] >= rank && cum[i] > below) {
            if (upper[i] >= 1e300) return lower * 1000
            return (lower + (upper[i] - lower) * (rank - below) / (cum[i] - below)) * 1000
        }
        lower = upper[i]
        below = cum[i]
    }
    return lower * 1000
}

END {
    n = 0
    for (le in seen) upper[++n] = bound(le)
    # Insertion sort: a histogram has a few dozen buckets.
    for (i = 2; i <= n; i++) {
        v = upper[i]
        for (j = i - 1; j >= 1 && upper[j] > v; j--) upper[j + 1] = upper[j]
        upper[j + 1] = v
    }
    for (le in seen) for (i = 1; i <= n; i++) if (upper[i] == bound(le)) cum[i] = count[le]
    total = n ? cum[n] : 0
    if (total <= 0) { print "n/a n/a n/a 0"; exit }
    printf "%.1f %.1f %.1f %d\n", quantile(0.50), quantile(0.95), quantile(0.99), total
}
