/*
 * report.c - run counters (atomics shared by the traffic and outbound
 * threads) and the status file, text and JSON reports built from them.
 *
 * Latency bucket i counts samples up to 10 us * 1.1^i, so 192 buckets reach
 * past an hour and a quantile is off by at most 10%.
 */
#include "report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

#define LATENCY_BASE_US 10.0
#define LATENCY_GROWTH 1.1

void bz_sim_stats_init(bz_sim_stats *s)
{
    memset(s, 0, sizeof *s);
    s->started_ms = bz_wall_ms();
}

void bz_sim_stats_count_sent(bz_sim_stats *s, bz_sim_kind kind)
{
    if ((unsigned)kind < BZ_SIM_KIND_COUNT)
        atomic_fetch_add(&s->sent[kind], 1);
}

static int latency_bucket_of(int64_t us)
{
    if (us <= LATENCY_BASE_US)
        return 0;
    int i = (int)ceil(log((double)us / LATENCY_BASE_US) / log(LATENCY_GROWTH));
    return i < BZ_SIM_LATENCY_BUCKETS ? i : BZ_SIM_LATENCY_BUCKETS - 1;
}

static double latency_bucket_bound_ms(int i)
{
    return LATENCY_BASE_US * pow(LATENCY_GROWTH, i) / 1000.0;
}

void bz_sim_stats_count_accepted(bz_sim_stats *s, int64_t latency_us)
{
    atomic_fetch_add(&s->accepted, 1);
    if (latency_us < 0)
        latency_us = 0;
    atomic_fetch_add(&s->latency[latency_bucket_of(latency_us)], 1);
    uint64_t prev = atomic_load(&s->latency_max_us);
    while ((uint64_t)latency_us > prev &&
           !atomic_compare_exchange_weak(&s->latency_max_us, &prev, (uint64_t)latency_us))
        ;
}

void bz_sim_stats_count_http_rejected(bz_sim_stats *s, long status)
{
    if (status <= 0 || status >= BZ_SIM_HTTP_STATUS_MAX)
        atomic_fetch_add(&s->transport_errors, 1);
    else
        atomic_fetch_add(&s->http_status[status], 1);
}

uint64_t bz_sim_stats_total_sent(const bz_sim_stats *s)
{
    uint64_t n = 0;
    for (int k = 0; k < BZ_SIM_KIND_COUNT; k++)
        n += atomic_load(&s->sent[k]);
    return n;
}

uint64_t bz_sim_stats_total_rejected(const bz_sim_stats *s)
{
    uint64_t n = atomic_load(&s->transport_errors) + atomic_load(&s->kafka_errors);
    for (int i = 0; i < BZ_SIM_HTTP_STATUS_MAX; i++)
        n += atomic_load(&s->http_status[i]);
    return n;
}

uint64_t bz_sim_stats_in_flight(const bz_sim_stats *s)
{
    uint64_t done = atomic_load(&s->accepted) + bz_sim_stats_total_rejected(s);
    uint64_t sent = bz_sim_stats_total_sent(s);
    return sent > done ? sent - done : 0;
}

double bz_sim_stats_latency_ms(const bz_sim_stats *s, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < BZ_SIM_LATENCY_BUCKETS; i++)
        total += atomic_load(&s->latency[i]);
    if (total == 0)
        return 0.0;
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    uint64_t seen = 0;
    for (int i = 0; i < BZ_SIM_LATENCY_BUCKETS; i++) {
        seen += atomic_load(&s->latency[i]);
        if (seen >= rank) {
            double bound = latency_bucket_bound_ms(i);
            double max_ms = (double)atomic_load(&s->latency_max_us) / 1000.0;
            return bound < max_ms ? bound : max_ms;
        }
    }
    return (double)atomic_load(&s->latency_max_us) / 1000.0;
}

static double elapsed_s(const bz_sim_stats *s)
{
    int64_t end = s->ended_ms ? s->ended_ms : bz_wall_ms();
    return (double)(end - s->started_ms) / 1000.0;
}

bz_status bz_sim_report_write_status(const char *path, const bz_sim_stats *s, const char *phase,
                                     bz_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return bz_fail(err, BZ_ERR_CONFIG, "status file %s: path too long", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return bz_fail(err, BZ_ERR_IO, "status file %s: %s", tmp, strerror(errno));
    fprintf(f, "phase=%s\nelapsed_s=%.1f\nsent=%llu\naccepted=%llu\nrejected=%llu\nretries=%llu\n",
            phase, elapsed_s(s), (unsigned long long)bz_sim_stats_total_sent(s),
            (unsigned long long)atomic_load(&s->accepted),
            (unsigned long long)bz_sim_stats_total_rejected(s),
            (unsigned long long)atomic_load(&s->retries));
    for (int k = 0; k < BZ_SIM_KIND_COUNT; k++)
        fprintf(f, "sent_%s=%llu\n", bz_sim_kind_name((bz_sim_kind)k),
                (unsigned long long)atomic_load(&s->sent[k]));
    fprintf(f, "latency_p50_ms=%.2f\nlatency_p95_ms=%.2f\nlatency_p99_ms=%.2f\n"
               "outbound_received=%llu\noutbound_duplicates=%llu\noutbound_reads=%llu\n"
               "media_uploaded=%llu\nmedia_upload_failed=%llu\n",
            bz_sim_stats_latency_ms(s, 0.50), bz_sim_stats_latency_ms(s, 0.95),
            bz_sim_stats_latency_ms(s, 0.99),
            (unsigned long long)atomic_load(&s->outbound_received),
            (unsigned long long)atomic_load(&s->outbound_duplicates),
            (unsigned long long)atomic_load(&s->outbound_reads),
            (unsigned long long)atomic_load(&s->media_uploaded),
            (unsigned long long)atomic_load(&s->media_upload_failed));
    int failed = ferror(f);
    if (fclose(f) != 0 || failed) {
        remove(tmp);
        return bz_fail(err, BZ_ERR_IO, "status file %s: write failed", tmp);
    }
    if (rename(tmp, path) != 0)
        return bz_fail(err, BZ_ERR_IO, "status file %s: rename: %s", path, strerror(errno));
    return BZ_OK;
}

void bz_sim_report_print_text(FILE *out, const bz_sim_stats *s, const bz_sim_options *o,
                              const bz_sim_world *w)
{
    double secs = elapsed_s(s);
    uint64_t sent = bz_sim_stats_total_sent(s);
    fprintf(out, "blazz-gateway-sim: %s mode, seed %llu, tag %s, %zu workspaces, %zu accounts\n",
            o->mode == BZ_SIM_MODE_HTTP ? "http" : "kafka", (unsigned long long)o->seed, o->tag,
            w->nworkspaces, w->naccounts);
    fprintf(out, "  events sent      %10llu  in %.1f s (%.0f/s)\n", (unsigned long long)sent,
            secs, secs > 0 ? (double)sent / secs : 0.0);
    for (int k = 0; k < BZ_SIM_KIND_COUNT; k++)
        fprintf(out, "    %-16s %10llu\n", bz_sim_kind_name((bz_sim_kind)k),
                (unsigned long long)atomic_load(&s->sent[k]));
    fprintf(out, "  accepted         %10llu\n", (unsigned long long)atomic_load(&s->accepted));
    fprintf(out, "  rejected         %10llu\n",
            (unsigned long long)bz_sim_stats_total_rejected(s));
    for (int i = 0; i < BZ_SIM_HTTP_STATUS_MAX; i++)
        if (atomic_load(&s->http_status[i]))
            fprintf(out, "    http %-11d %10llu\n", i,
                    (unsigned long long)atomic_load(&s->http_status[i]));
    if (atomic_load(&s->transport_errors))
        fprintf(out, "    no answer        %10llu\n",
                (unsigned long long)atomic_load(&s->transport_errors));
    if (atomic_load(&s->kafka_errors))
        fprintf(out, "    kafka error      %10llu\n",
                (unsigned long long)atomic_load(&s->kafka_errors));
    fprintf(out, "  retries          %10llu\n", (unsigned long long)atomic_load(&s->retries));
    fprintf(out, "  send latency     p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
            bz_sim_stats_latency_ms(s, 0.50), bz_sim_stats_latency_ms(s, 0.99),
            (double)atomic_load(&s->latency_max_us) / 1000.0);
    if (o->media_bytes > 0.0)
        fprintf(out, "  media uploaded   %10llu  (%llu bytes; %llu failed, sent as references)\n",
                (unsigned long long)atomic_load(&s->media_uploaded),
                (unsigned long long)atomic_load(&s->media_bytes_uploaded),
                (unsigned long long)atomic_load(&s->media_upload_failed));
    if (o->answer_outbound)
        fprintf(out, "  outbound         %llu SendMessages (%llu duplicates, %llu failed), "
                     "%llu read receipts, %llu receipts still pending at exit\n",
                (unsigned long long)atomic_load(&s->outbound_received),
                (unsigned long long)atomic_load(&s->outbound_duplicates),
                (unsigned long long)atomic_load(&s->outbound_failed),
                (unsigned long long)atomic_load(&s->outbound_reads),
                (unsigned long long)atomic_load(&s->receipts_pending));
}

static int json_set_u64(json_t *obj, const char *key, uint64_t v)
{
    return json_object_set_new(obj, key, json_integer((json_int_t)v));
}

static json_t *json_world(const bz_sim_world *w)
{
    json_t *ws = json_array();
    json_t *sessions = json_array();
    json_t *world = json_object();
    if (!ws || !sessions || !world) {
        json_decref(ws);
        json_decref(sessions);
        json_decref(world);
        return NULL;
    }
    for (size_t i = 0; i < w->nworkspaces; i++)
        json_array_append_new(ws, json_integer(w->workspace_ids[i]));
    for (size_t i = 0; i < w->naccounts; i++)
        json_array_append_new(sessions, json_string(w->accounts[i].session_id));
    json_object_set_new(world, "workspace_ids", ws);
    json_object_set_new(world, "session_ids", sessions);
    return world;
}

bz_status bz_sim_report_print_json(FILE *out, const bz_sim_stats *s, const bz_sim_options *o,
                                   const bz_sim_world *w, bz_error *err)
{
    json_t *root = json_object();
    json_t *sent = json_object();
    json_t *rejected = json_object();
    json_t *latency = json_object();
    json_t *outbound = json_object();
    json_t *world = json_world(w);
    if (!root || !sent || !rejected || !latency || !outbound || !world) {
        json_decref(root);
        json_decref(sent);
        json_decref(rejected);
        json_decref(latency);
        json_decref(outbound);
        json_decref(world);
        return bz_fail(err, BZ_ERR_NOMEM, "json report: out of memory");
    }
    json_object_set_new(root, "mode", json_string(o->mode == BZ_SIM_MODE_HTTP ? "http" : "kafka"));
    json_set_u64(root, "seed", o->seed);
    json_object_set_new(root, "tag", json_string(o->tag));
    json_object_set_new(root, "elapsed_s", json_real(elapsed_s(s)));
    for (int k = 0; k < BZ_SIM_KIND_COUNT; k++)
        json_set_u64(sent, bz_sim_kind_name((bz_sim_kind)k), atomic_load(&s->sent[k]));
    json_set_u64(sent, "total", bz_sim_stats_total_sent(s));
    json_object_set_new(root, "sent", sent);
    json_set_u64(root, "accepted", atomic_load(&s->accepted));
    for (int i = 0; i < BZ_SIM_HTTP_STATUS_MAX; i++)
        if (atomic_load(&s->http_status[i])) {
            char key[16];
            snprintf(key, sizeof key, "%d", i);
            json_set_u64(rejected, key, atomic_load(&s->http_status[i]));
        }
    json_set_u64(rejected, "no_answer", atomic_load(&s->transport_errors));
    json_set_u64(rejected, "kafka_error", atomic_load(&s->kafka_errors));
    json_set_u64(rejected, "total", bz_sim_stats_total_rejected(s));
    json_object_set_new(root, "rejected", rejected);
    json_set_u64(root, "retries", atomic_load(&s->retries));
    json_object_set_new(latency, "p50", json_real(bz_sim_stats_latency_ms(s, 0.50)));
    json_object_set_new(latency, "p99", json_real(bz_sim_stats_latency_ms(s, 0.99)));
    json_object_set_new(latency, "max",
                        json_real((double)atomic_load(&s->latency_max_us) / 1000.0));
    json_object_set_new(root, "send_latency_ms", latency);
    json_set_u64(outbound, "received", atomic_load(&s->outbound_received));
    json_set_u64(outbound, "duplicates", atomic_load(&s->outbound_duplicates));
    json_set_u64(outbound, "failed", atomic_load(&s->outbound_failed));
    json_set_u64(outbound, "reads", atomic_load(&s->outbound_reads));
    json_set_u64(outbound, "receipts_pending", atomic_load(&s->receipts_pending));
    json_object_set_new(root, "outbound", outbound);
    json_t *media = json_object();
    if (media) {
        json_set_u64(media, "uploaded", atomic_load(&s->media_uploaded));
        json_set_u64(media, "bytes", atomic_load(&s->media_bytes_uploaded));
        json_set_u64(media, "failed", atomic_load(&s->media_upload_failed));
        json_object_set_new(root, "media", media);
    }
    json_object_set_new(root, "world", world);

    int rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    fputc('\n', out);
    if (rc != 0)
        return bz_fail(err, BZ_ERR_IO, "json report: write failed");
    return BZ_OK;
}
