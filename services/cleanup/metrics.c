/*
 * metrics.c - blazz_cleanup_* metrics: sweeps run (by type and outcome),
 * sessions removed (by reason and type), dry-run candidates, rows purged (by
 * table: webhook_retry_queue, send_ledger, pending_receipts,
 * campaign_receipts_waiting, meta_message_proofs, outbox,
 * chat_media), sweep duration, and the number of stuck outbox rows last
 * seen.
 */
#include "cleanup.h"

bz_status cl_metrics_register(cl_metrics *m, bz_metrics *reg, bz_error *err)
{
    static const double sweep_buckets[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800};
    const bz_metric_decl decls[] = {
        {.def = {.name = "blazz_cleanup_sweeps_total",
                 .help = "Cleanup sweeps run, by type and outcome.",
                 .label_names = (const char *const[]){"type", "outcome", NULL}},
         .counters = &m->sweeps},
        {.def = {.name = "blazz_cleanup_sessions_removed_total",
                 .help = "Sessions soft-deleted by cleanup, by reason and type.",
                 .label_names = (const char *const[]){"reason", "type", NULL}},
         .counters = &m->removed},
        {.def = {.name = "blazz_cleanup_dry_run_candidates_total",
                 .help = "Sessions a dry run reported as removable, by reason.",
                 .label_names = (const char *const[]){"reason", NULL}},
         .counters = &m->dry_run},
        {.def = {.name = "blazz_cleanup_rows_purged_total",
                 .help = "Rows deleted by retention, by table (webhook_endpoints: replaced "
                         "signing secrets emptied once their overlap ended).",
                 .label_names = (const char *const[]){"table", NULL}},
         .counters = &m->purged},
        {.def = {.name = "blazz_cleanup_media_bytes_purged_total",
                 .help = "Bytes of the media objects retention removed."},
         .counter = &m->purged_media_bytes},
        {.def = {.name = "blazz_cleanup_sweep_seconds",
                 .help = "Duration of timer sweeps.",
                 .buckets = sweep_buckets,
                 .n_buckets = sizeof sweep_buckets / sizeof sweep_buckets[0]},
         .histogram = &m->sweep_seconds},
        {.def = {.name = "blazz_cleanup_outbox_stuck_rows",
                 .help = "Outbox rows older than cleanup.outbox_retention_hours at the last "
                         "sweep."},
         .gauge = &m->stuck_outbox},
    };
    return BZ_METRICS_DECLARE(reg, decls, err);
}
