/*
 * metrics.c - blazz-meta-sender's metrics (see meta_sender.h).
 */
#include "meta_sender.h"

bz_status ms_metrics_register(ms_metrics *m, bz_metrics *reg, bz_error *err)
{
    const bz_metric_decl decls[] = {
        {.def = {.name = "blazz_meta_sender_requests_total",
                 .help = "Cloud API sends by outcome (sent, retry, throttled, token_invalid, "
                         "failed, ambiguous)",
                 .label_names = (const char *const[]){"outcome", NULL}},
         .counters = &m->requests},
        {.def = {.name = "blazz_meta_sender_ambiguous_resends_total",
                 .help = "sends repeated after an ambiguous failure (no answer, or in flight "
                         "at a crash)"},
         .counter = &m->ambiguous_resends},
        {.def = {.name = "blazz_meta_sender_settled_by_webhook_total",
                 .help = "ambiguous sends a status webhook showed at Meta, not repeated"},
         .counter = &m->settled_by_webhook},
        {.def = {.name = "blazz_meta_sender_proven_sent_total",
                 .help = "claimed sends that were not ambiguous and yet already at Meta "
                         "(queued again by a restore's replay), not sent"},
         .counter = &m->proven_sent},
        {.def = {.name = "blazz_meta_sender_restore_fence_records",
                 .help = "after a restore: records chat-sync and campaign-sender must re-read "
                         "before any send leaves (0: no fence up)"},
         .gauge = &m->restore_fence_records},
        {.def = {.name = "blazz_meta_sender_request_seconds",
                 .help = "Cloud API request duration"},
         .histogram = &m->request_seconds},
        {.def = {.name = "blazz_meta_sender_accepted_to_request_seconds",
                 .help = "from the message's acceptance upstream to its request leaving"},
         .histogram = &m->accepted_to_request_seconds},
        {.def = {.name = "blazz_meta_sender_in_flight", .help = "Cloud API requests in flight"},
         .gauge = &m->in_flight},
        {.def = {.name = "blazz_meta_sender_backlog",
                 .help = "sends queued in meta_sends, due or not (the active sender's count, "
                         "every 10 s)"},
         .gauge = &m->backlog},
        {.def = {.name = "blazz_meta_sender_backlog_oldest_seconds",
                 .help = "age of the oldest queued send"},
         .gauge = &m->backlog_oldest_seconds},
    };
    return BZ_METRICS_DECLARE(reg, decls, err);
}
