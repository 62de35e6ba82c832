/*
 * account_select.h - which WhatsApp account sends a message: the seeds'
 * ProviderSelector (seed 002), shared by campaign-sender (campaigns, and
 * failover of agent messages at release) and chat-sync (agent messages).
 *
 * Order, among the workspace's connected accounts (status 'connected',
 * active, not deleted):
 *   1. the preferred account (a campaign's own, or the one an agent named);
 *      then, when a provider is preferred (campaigns.preferred_provider,
 *      seed 000), the accounts of that provider before the others;
 *   2. the sticky account: the one already in use (a campaign does not hop
 *      between accounts without reason), else, for a conversation, the
 *      account the contact or group last talked to (its newest chats row);
 *   3. the workspace's primary account;
 *   4. the best health_score (lowest id on ties).
 * Failover is the same question asked again: a disconnected account is
 * simply no longer a candidate. Neither is a Meta account whose access
 * token Meta refused (meta_credentials.status 'invalid', ARCHITECTURE.md
 * §12) until a new token is set.
 */
#ifndef BZ_WA_ACCOUNT_SELECT_H
#define BZ_WA_ACCOUNT_SELECT_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/status.h"

typedef struct bz_account {
    int64_t id;
    char session_id[128];
    int provider;        /* Blazz__V1__Provider */
    int instance_index;  /* -1 when not assigned */
    char instance_url[256];
    char *metadata_json; /* owned; rate limits live here */
} bz_account;

typedef struct bz_account_query {
    int64_t workspace_id;
    int64_t preferred_id; /* 0: none */
    int64_t sticky_id;    /* 0: the conversation's last account, if any */
    int64_t only_id;      /* not 0: only this account qualifies (a connectivity check) */
    int64_t contact_id;   /* the conversation, for the last-talked-to account; 0: none */
    int64_t group_id;
    int64_t provider;     /* Blazz__V1__Provider preferred; 0: none */
} bz_account_query;

/* Choose per q. *found is 0 when no account qualifies. out->metadata_json
 * is heap memory the caller frees (bz_account_clear). */
bz_status bz_account_select(PGconn *conn, const bz_account_query *q, bz_account *out, int *found,
                            bz_error *err);

/* The same for q[0..n) in one statement (chat-sync's batches): out[i] and
 * found[i] answer q[i]. On failure nothing is left to clear. */
bz_status bz_account_select_many(PGconn *conn, const bz_account_query *q, size_t n,
                                 bz_account *out, int *found, bz_error *err);

void bz_account_clear(bz_account *a);

#endif
