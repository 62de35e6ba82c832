/*
 * receipts_waiting.h - campaign receipts that a restore's replay brought
 * before the start that makes their logs (0049, ARCHITECTURE.md §6.5):
 * kept in campaign_receipts_waiting while a fence is up, taken back by the
 * batch that applies a command once their logs exist.
 */
#ifndef CMP_RECEIPTS_WAITING_H
#define CMP_RECEIPTS_WAITING_H

#include <libpq-fe.h>
#include <stddef.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/status.h"

/* *yes = 1 while a restore's replay is under way (an unlifted fence). */
bz_status cmp_replay_under_way(PGconn *conn, int *yes, bz_error *err);

/* Keep the n receipts until their logs exist; one row per event id, so a
 * receipt replayed again is kept once. */
bz_status cmp_receipts_wait(PGconn *conn, const Blazz__V1__CampaignReceipt *const *rcs, size_t n,
                            bz_error *err);

/* The waiting receipts whose logs exist now, out of the table, oldest
 * first: *out is a heap array the caller frees with cmp_receipts_free
 * (NULL and *n 0 when none). */
bz_status cmp_receipts_take_ready(PGconn *conn, Blazz__V1__CampaignReceipt ***out, size_t *n,
                                  bz_error *err);

void cmp_receipts_free(Blazz__V1__CampaignReceipt **rcs, size_t n);

#endif
