/*
 * service_window.c - Meta's 24-hour customer-service window (see
 * service_window.h): one EXISTS per (account, contact) pair over the
 * contact's messages of the last 24 hours, all pairs in one statement.
 */
#include "wa/service_window.h"

#include <inttypes.h>
#include <stdlib.h>

#include "pg/columns.h"
#include "pg/pg.h"

/* The pairs whose contact wrote to the account within the window, by
 * position (1-based). created_at is the message's own time, when the
 * contact sent it, as Meta counts the window. */
#define SQL_WINDOW_OPEN                                                                           \
    "SELECT p.ord FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS p(acct, contact, "   \
    "ord) WHERE EXISTS (SELECT 1 FROM chats c WHERE c.contact_id = p.contact AND "                \
    "c.created_at > now() - interval '24 hours' AND c.type = 'inbound' AND "                      \
    "c.whatsapp_account_id = p.acct)"

int bz_wa_service_window_applies(int provider, Blazz__V1__MessageType type)
{
    return provider == BLAZZ__V1__PROVIDER__PROVIDER_META &&
           type != BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE;
}

bz_status bz_wa_service_window_open(PGconn *conn, const int64_t *accounts,
                                    const int64_t *contacts, size_t n, int *open,
                                    bz_error *err)
{
    for (size_t i = 0; i < n; i++)
        open[i] = 0;
    if (n == 0)
        return BZ_OK;
    char *acct = bz_pg_int64_array(accounts, n), *contact = bz_pg_int64_array(contacts, n);
    bz_status st = acct && contact ? BZ_OK
                                   : bz_fail(err, BZ_ERR_NOMEM, "service window: out of memory");
    PGresult *res = NULL;
    if (st == BZ_OK) {
        const char *params[] = {acct, contact};
        st = bz_pg_exec_params(conn, "check the customer-service window", SQL_WINDOW_OPEN, 2,
                               params, &res, err);
    }
    for (int r = 0; st == BZ_OK && r < PQntuples(res); r++) {
        int64_t ord = bz_pg_get_int64(res, r, 0);
        if (ord >= 1 && (size_t)ord <= n)
            open[ord - 1] = 1;
    }
    PQclear(res);
    free(acct);
    free(contact);
    return st;
}

bz_status bz_wa_service_window_refuse(bz_error *err, int64_t account_id)
{
    return bz_reject(err, BZ_WA_SERVICE_WINDOW_REASON,
                     "field message_type: the contact has not written to Meta account %" PRId64
                     " in the last 24 hours (Meta's customer-service window): only a template "
                     "may be sent",
                     account_id);
}
