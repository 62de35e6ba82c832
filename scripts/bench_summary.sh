#!/usr/bin/env bash
#
# scripts/bench_summary.sh RESULTS - the one summary table `make bench` ends
# with, built from the "BENCH name value unit" lines scripts/bench.sh
# collected in RESULTS (.run/bench/results.txt).
#
# Sections:
#  - throughput: every figure whose unit is a rate (…/s), each with its
#    ratio to the raw Kafka produce+consume and raw PostgreSQL batched
#    insert baselines bench_foundation measured in the same run (not for
#    the end-to-end run, which is a fixed load rather than a maximum);
#  - end-to-end latency (bench_system: gateway -> chats row, gateway ->
#    webhook received) and the other latency figures (… ms);
#  - the latency waterfall of one message (bench_system: p50/p95/p99 per
#    hop) and the CPU the whole system spent per accepted event;
#  - the goals (issue 37's latencies, the cleanup sweep's time): goal,
#    figure and figure/goal, a ratio at most 1 meaning met and above 1
#    marked MISSED;
#  - webhook isolation (bench_webhook): a healthy endpoint's latency alone
#    and beside endpoints that never answer, with the ratio;
#  - media (bench_media): the fetcher's throughput and its ratio to libcurl
#    loops, a message row's latency alone and beside a media fetch;
#  - each service's peak RSS (bench_system);
#  - whatever else was reported (durations, ratios), as is.
# A figure reported twice keeps its last value. Names unknown here are shown
# as they are, so a new benchmark appears without editing this script.

set -euo pipefail

RESULTS="${1:?usage: scripts/bench_summary.sh RESULTS}"
[ -r "$RESULTS" ] || { echo "bench_summary: cannot read $RESULTS" >&2; exit 1; }

awk '
function label(name) {
    if (name in labels) return labels[name]
    gsub(/_/, " ", name)
    return name
}
function goal(key, text, bound, u) {
    goal_key[++ngoals] = key
    goal_label[ngoals] = text
    goal_value[ngoals] = bound
    goal_unit[ngoals] = u
}
function ratio(v, base) {
    if (base <= 0) return "n/a"
    return 100 * v / base < 1 ? "<1%" : sprintf("%.0f%%", 100 * v / base)
}
BEGIN {
    labels["raw_kafka_produce_consume"] = "raw Kafka produce+consume (baseline)"
    labels["raw_pg_batched_insert"] = "raw PostgreSQL batched insert (baseline)"
    labels["eo_consumer_applied"] = "exactly-once consumer (foundation)"
    labels["ingest_kafka_path"] = "ingest: wa.inbound.raw -> chat.sync"
    labels["ingest_http_rate"] = "ingest: HTTP POST /v1/events"
    labels["ingest_http_p50_beside_slow"] = "ingest: HTTP p50 beside 600 slow connections"
    labels["ingest_http_p99_beside_slow"] = "ingest: HTTP p99 beside 600 slow connections"
    labels["ingest_http_p50_beside_slow_ratio"] = "ingest: HTTP p50 beside 600 slow / alone"
    labels["ingest_http_p99_beside_slow_ratio"] = "ingest: HTTP p99 beside 600 slow / alone"
    labels["ingest_forged_rate"] = "ingest: forged 950 kB requests answered"
    labels["ingest_http_p99_beside_forged"] = "ingest: HTTP p99 beside 300 forged 950 kB/s"
    labels["ingest_http_p99_beside_forged_ratio"] = "ingest: HTTP p99 beside forged / alone"
    labels["chat_sync_applied"] = "chat-sync: commands applied"
    labels["webhook_deliveries_per_s"] = "webhook-dispatcher: deliveries"
    labels["campaign_audience_expansion"] = "campaign-sender: audience expansion"
    labels["campaign_sustained_sends"] = "campaign-sender: sends queued"
    labels["campaign_gateway_received"] = "campaign-sender: sends at the gateway"
    labels["campaign_sends_alone"] = "campaign-sender: sends, budget counted (bench_agent)"
    labels["campaign_sends_with_agents"] = "campaign-sender: sends with agents at 200/s"
    labels["agent_accept_to_gateway_p50"] = "agent message 202 -> gateway, p50 (200/s, 20 accounts)"
    labels["agent_accept_to_gateway_p99"] = "agent message 202 -> gateway, p99 (goal < 50 ms)"
    labels["agent_accept_to_release_p50"] = "  of which 202 -> released by campaign-sender, p50"
    labels["agent_accept_to_release_p99"] = "  of which 202 -> released by campaign-sender, p99"
    labels["agent_release_to_gateway_p50"] = "  of which released -> gateway, p50"
    labels["agent_release_to_gateway_p99"] = "  of which released -> gateway, p99"
    labels["agent_unreceived"] = "agent messages not at the gateway within a minute"
    labels["meta_graph_baseline"] = "Graph API test server driven directly (meta baseline)"
    labels["meta_sends_per_second"] = "meta-sender: Cloud API sends, 30 numbers (goal >= 2000/s)"
    labels["meta_accept_to_request_p50"] = "meta-sender: wa.outbound ack -> Graph request, p50 (600/s)"
    labels["meta_accept_to_request_p99"] = "meta-sender: wa.outbound ack -> Graph request, p99"
    labels["media_fetch_steady_vs_durable_baseline"] = "media fetch, steady / durable loops"
    labels["cleanup_removal_rate"] = "cleanup: sessions removed"
    labels["cleanup_purge_rate"] = "cleanup: retention purge"
    labels["e2e_accepted_rate"] = "whole system at a fixed load (bench_system)"
    hop_label["gateway_to_accepted"] = "gateway send -> 202, chat.sync stored (whole run)"
    hop_label["accepted_to_sync_committed"] = "(Kafka path) raw record -> chat.sync committed"
    hop_label["sync_to_row_committed"] = "chat.sync produced -> chats row committed"
    hop_label["row_to_event_published"] = "chat-sync transaction -> chat.events published"
    hop_label["event_to_fanout"] = "chat.events published -> fan-out committed"
    hop_label["fanout_to_first_attempt"] = "fan-out committed -> first attempt started"
    hop_label["attempt_to_answer"] = "attempt started -> endpoint answered"
    # The goals of issue 37 (fewer hops), at 1,000 events/s on two cores.
    goal("e2e_row_p50", "gateway -> chats row committed, p50", 20, "ms")
    goal("e2e_row_p99", "gateway -> chats row committed, p99", 50, "ms")
    goal("e2e_webhook_p50", "gateway -> webhook received, p50", 30, "ms")
    goal("e2e_webhook_p99", "gateway -> webhook received, p99", 100, "ms")
    goal("agent_accept_to_gateway_p99", "agent message 202 -> gateway, p99", 50, "ms")
    goal("webhook_first_attempt_p95", "webhook produced -> first attempt, p95", 25, "ms")
    goal("ingest_http_p99", "ingest HTTP at 2,000 req/s, p99", 5, "ms")
    goal("cpu_ms_per_event", "CPU per accepted event (all processes)", 0.75, "ms")
    # bench_cleanup fails past it too: its 12x regression went unseen (issue 52).
    goal("cleanup_sweep_1m_seconds", "cleanup sweep over 1M accounts (bench_cleanup)", 30, "s")
    labels["burst_accepted_rate"] = "burst: accepted (bench_system_burst, 5,000/s offered)"
}
$1 == "BENCH" && NF >= 4 {
    if (!($2 in value)) order[++n] = $2
    value[$2] = $3
    unit[$2] = $4
}
END {
    kafka = value["raw_kafka_produce_consume"] + 0
    pg = value["raw_pg_batched_insert"] + 0
    line = "================================================================================================"
    print line
    print "Blazz backbone: system benchmark summary (every figure from this run, this machine)"
    print line
    printf "%-50s %12s %-10s %10s %10s\n", "throughput", "value", "unit", "vs Kafka", "vs PG"
    for (i = 1; i <= n; i++) {
        k = order[i]
        # The media rates (bench_media) have a section of their own.
        if (unit[k] !~ /\/s$/ || k ~ /^media_/) continue
        # The end-to-end run is a fixed load, not a maximum: no ratio.
        fixed = k ~ /^(e2e|burst)_/
        printf "  %-48s %12s %-10s %10s %10s\n", label(k), value[k], unit[k],
            fixed ? "-" : ratio(value[k], kafka), fixed ? "-" : ratio(value[k], pg)
        shown[k] = 1
    }
    print ""
    printf "%-50s %12s %12s\n", "end-to-end latency (bench_system)", "p50", "p99"
    printf "  %-48s %9s ms %9s ms\n", "gateway -> chats row committed (steady)", \
        ("e2e_row_p50" in value ? value["e2e_row_p50"] : "n/a"), ("e2e_row_p99" in value ? value["e2e_row_p99"] : "n/a")
    printf "  %-48s %9s ms %9s ms\n", "gateway -> chats row committed (whole run)", \
        ("e2e_row_whole_run_p50" in value ? value["e2e_row_whole_run_p50"] : "n/a"), \
        ("e2e_row_whole_run_p99" in value ? value["e2e_row_whole_run_p99"] : "n/a")
    printf "  %-48s %9s ms %9s ms\n", "gateway -> webhook received (steady)", \
        ("e2e_webhook_p50" in value ? value["e2e_webhook_p50"] : "n/a"), ("e2e_webhook_p99" in value ? value["e2e_webhook_p99"] : "n/a")
    shown["e2e_row_p50"] = shown["e2e_row_p99"] = shown["e2e_webhook_p50"] = shown["e2e_webhook_p99"] = 1
    shown["e2e_row_whole_run_p50"] = shown["e2e_row_whole_run_p99"] = 1
    if ("hop_gateway_to_accepted_p50" in value) {
        print ""
        printf "%-50s %12s %12s %12s\n", "latency waterfall (bench_system, steady)", "p50", "p95", "p99"
        # The hops in the order bench_system reported them.
        for (i = 1; i <= n; i++) {
            if (order[i] !~ /^hop_.*_p50$/) continue
            k = substr(order[i], 1, length(order[i]) - 4)
            h = substr(k, 5)
            printf "  %-48s %9s ms %9s ms %9s ms\n", (h in hop_label ? hop_label[h] : h), value[k "_p50"], \
                value[k "_p95"], value[k "_p99"]
            shown[k "_p50"] = shown[k "_p95"] = shown[k "_p99"] = 1
        }
    }
    if ("cpu_ms_per_event" in value) {
        printf "  %-48s %9s ms\n", "CPU of all processes per accepted event", value["cpu_ms_per_event"]
        shown["cpu_ms_per_event"] = 1
    }
    print ""
    printf "%-50s %12s %12s %12s\n", "goals", "goal", "figure", "figure/goal"
    for (g = 1; g <= ngoals; g++) {
        k = goal_key[g]
        r = k in value && value[k] != "n/a" ? value[k] / goal_value[g] : -1
        printf "  %-48s %9s %-2s %9s %-2s %12s\n", goal_label[g], "< " goal_value[g], goal_unit[g], \
            (k in value ? value[k] : "n/a"), goal_unit[g], \
            (r < 0 ? "n/a" : sprintf("%.2f", r) (r > 1 ? " MISSED" : ""))
        shown[k] = 1
    }
    if ("burst_lost" in value) {
        print ""
        printf "%-50s %12s\n", "headroom (bench_system_burst: 20 s burst, then 20 s at 1,000/s)", "value"
        printf "  %-48s %9s messages\n", "accepted messages not stored", value["burst_lost"]
        printf "  %-48s %9s s (webhooks %s s)\n", "drained after the burst ended", value["burst_drain"], \
            value["burst_webhook_drain"]
        printf "  %-48s %9s ms (webhook %s ms)\n", "during the burst: gateway -> row, p99", \
            value["burst_row_p99"], value["burst_webhook_p99"]
        printf "  %-48s %9s ms (webhook %s ms)\n", "after it: gateway -> row, p99", \
            value["burst_after_row_p99"], value["burst_after_webhook_p99"]
        split("lost drain webhook_drain row_p99 webhook_p99 after_row_p99 after_webhook_p99", bk, " ")
        for (j in bk) shown["burst_" bk[j]] = 1
    }
    if ("webhook_healthy_alone_p50" in value) {
        print ""
        printf "%-50s %12s %12s\n", "webhook: first attempt of a healthy endpoint", "p50", "p99"
        printf "  %-48s %9s ms %9s ms\n", "alone", value["webhook_healthy_alone_p50"], \
            value["webhook_healthy_alone_p99"]
        printf "  %-48s %9s ms %9s ms\n", "beside endpoints that never answer", \
            value["webhook_healthy_beside_dead_p50"], value["webhook_healthy_beside_dead_p99"]
        printf "  %-48s %10s x %10s x\n", "ratio", value["webhook_healthy_beside_dead_p50_ratio"], \
            value["webhook_healthy_beside_dead_p99_ratio"]
        split("alone_p50 alone_p99 beside_dead_p50 beside_dead_p99 beside_dead_p50_ratio " \
              "beside_dead_p99_ratio", iso, " ")
        for (j in iso) shown["webhook_healthy_" iso[j]] = 1
    }
    if ("media_fetch_mb_per_s" in value) {
        print ""
        printf "%-50s %12s %12s %12s\n", "media fetch (bench_media)", "MB/s", "objects/s", "x baseline"
        split("baseline baseline_durable fetch fetch_steady", mrow, " ")
        mlabel["baseline"] = "libcurl loops, GET id + URL (baseline)"
        mlabel["baseline_durable"] = "the loops keeping the bytes durably"
        mlabel["fetch"] = "meta-sender fetcher, start -> all done"
        mlabel["fetch_steady"] = "meta-sender fetcher, first -> last done"
        mratio["fetch"] = "media_fetch_vs_baseline"
        mratio["fetch_steady"] = "media_fetch_steady_vs_baseline"
        for (j = 1; j <= 4; j++) {
            m = "media_" mrow[j]
            printf "  %-48s %12s %12s %12s\n", mlabel[mrow[j]], value[m "_mb_per_s"], \
                value[m "_objects_per_s"], (mrow[j] in mratio ? value[mratio[mrow[j]]] : "-")
            shown[m "_mb_per_s"] = shown[m "_objects_per_s"] = 1
        }
        shown["media_fetch_vs_baseline"] = shown["media_fetch_steady_vs_baseline"] = 1
        printf "%-50s %12s %12s\n", "Meta webhook 200 -> chats row (50/s)", "p50", "p99"
        printf "  %-48s %9s ms %9s ms\n", "alone", value["media_row_alone_p50"], value["media_row_alone_p99"]
        printf "  %-48s %9s ms %9s ms\n", "beside the media fetch", value["media_row_beside_fetch_p50"], \
            value["media_row_beside_fetch_p99"]
        printf "  %-48s %10s x %10s x\n", "ratio", value["media_row_beside_fetch_p50_ratio"], \
            value["media_row_beside_fetch_p99_ratio"]
        split("alone_p50 alone_p99 beside_fetch_p50 beside_fetch_p99 beside_fetch_p50_ratio " \
              "beside_fetch_p99_ratio", mlat, " ")
        for (j in mlat) shown["media_row_" mlat[j]] = 1
    }
    header = 0
    for (i = 1; i <= n; i++) {
        k = order[i]
        if (k in shown || unit[k] != "ms") continue
        if (!header++) print "other latencies"
        printf "  %-48s %12s %-10s\n", label(k), value[k], unit[k]
        shown[k] = 1
    }
    print ""
    print "peak RSS per service (bench_system)"
    rss = 0
    for (i = 1; i <= n; i++) {
        k = order[i]
        if (k !~ /^rss_peak_/) continue
        name = substr(k, 10)
        gsub(/_/, "-", name)
        printf "  %-48s %12s %-10s\n", name, value[k], unit[k]
        shown[k] = 1
        rss++
    }
    if (!rss) print "  n/a (bench_system did not report)"
    header = 0
    for (i = 1; i <= n; i++) {
        k = order[i]
        if (k in shown) continue
        if (!header++) { print ""; print "other figures" }
        printf "  %-48s %12s %-10s\n", label(k), value[k], unit[k]
    }
    print line
}' "$RESULTS"
