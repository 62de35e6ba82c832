/*
 * metrics.c - blazz-meta-sender's metrics (see meta_sender.h).
 */
#include "meta_sender.h"

bz_status ms_metrics_register(ms_metrics *m, bz_metrics *reg, bz_error *err)
{
    static const char *const verdict[] = {"outcome", NULL};
    bz_status st = bz_metrics_counter_family(
        reg,
        &(bz_metric_def){.name = "blazz_meta_sender_requests_total",
                         .help = "Cloud API sends by outcome (sent, retry, throttled, "
                                 "token_invalid, failed, ambiguous)",
                         .label_names = verdict},
        &m->requests, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg,
                                BZ_METRIC("blazz_meta_sender_ambiguous_resends_total",
                                          "sends repeated after an ambiguous failure (no answer, "
                                          "or in flight at a crash)"),
                                &m->ambiguous_resends, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg,
                                BZ_METRIC("blazz_meta_sender_settled_by_webhook_total",
                                          "ambiguous sends a status webhook showed at Meta, not "
                                          "repeated"),
                                &m->settled_by_webhook, err);
    if (st == BZ_OK)
        st = bz_metrics_counter(reg,
                                BZ_METRIC("blazz_meta_sender_proven_sent_total",
                                          "claimed sends that were not ambiguous and yet already "
                                          "at Meta (queued again by a restore's replay), not sent"),
                                &m->proven_sent, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg,
                              BZ_METRIC("blazz_meta_sender_restore_fence_records",
                                        "after a restore: chat.sync records chat-sync must re-read "
                                        "before any send leaves (0: no fence up)"),
                              &m->restore_fence_records, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(reg,
                                  BZ_METRIC("blazz_meta_sender_request_seconds",
                                            "Cloud API request duration"),
                                  &m->request_seconds, err);
    if (st == BZ_OK)
        st = bz_metrics_histogram(reg,
                                  BZ_METRIC("blazz_meta_sender_accepted_to_request_seconds",
                                            "from the message's acceptance upstream to its "
                                            "request leaving"),
                                  &m->accepted_to_request_seconds, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg,
                              BZ_METRIC("blazz_meta_sender_in_flight", "Cloud API requests in flight"),
                              &m->in_flight, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg,
                              BZ_METRIC("blazz_meta_sender_backlog",
                                        "sends queued in meta_sends, due or not (the active "
                                        "sender's count, every 10 s)"),
                              &m->backlog, err);
    if (st == BZ_OK)
        st = bz_metrics_gauge(reg,
                              BZ_METRIC("blazz_meta_sender_backlog_oldest_seconds",
                                        "age of the oldest queued send"),
                              &m->backlog_oldest_seconds, err);
    return st;
}
