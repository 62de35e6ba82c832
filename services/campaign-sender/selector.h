/*
 * selector.h - which account sends a campaign (the seeds' ProviderSelector).
 *
 * Order: the campaign's own account if connected, else the account already
 * in use if still connected (so a campaign does not hop between accounts
 * without reason), else the workspace's primary connected account, else
 * the connected account with the best health_score (lowest id on ties).
 * "Connected" means status = 'connected', active and not deleted.
 */
#ifndef CMP_SELECTOR_H
#define CMP_SELECTOR_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/status.h"

typedef struct cmp_account {
    int64_t id;
    char session_id[128];
    int provider;        /* Blazz__V1__Provider */
    int instance_index;  /* -1 when not assigned */
    char instance_url[256];
    char *metadata_json; /* owned; rate limits live here */
} cmp_account;

/* Choose for workspace_id: preferred_id and sticky_id may be 0. When only_id
 * is not 0 the choice is restricted to that account (a connectivity check).
 * *found is 0 when no account qualifies. out->metadata_json is heap memory
 * the caller frees (cmp_account_clear). */
bz_status cmp_select_account(PGconn *conn, int64_t workspace_id, int64_t preferred_id,
                             int64_t sticky_id, int64_t only_id, cmp_account *out, int *found,
                             bz_error *err);

void cmp_account_clear(cmp_account *a);

#endif
