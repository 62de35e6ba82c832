/*
 * outside_window.c - which picked logs a free-form Meta campaign skips
 * (see outside_window.h): the window's one question for the logs of the
 * batch that still go.
 */
#include "outside_window.h"

#include <inttypes.h>
#include <stdlib.h>

int cmp_service_window_applies(const bz_account *acc, const cmp_message *msg)
{
    return bz_wa_service_window_applies(acc->provider,
                                        msg->is_template
                                            ? BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE
                                            : BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT);
}

bz_status cmp_service_window_apply(PGconn *conn, int64_t account, const int64_t *contacts,
                                   cmp_release_plan *plan, bz_error *err)
{
    size_t n = plan->n, m = 0;
    int64_t *accounts = calloc(n ? n : 1, sizeof *accounts);
    int64_t *asked = calloc(n ? n : 1, sizeof *asked);
    size_t *log_of = calloc(n ? n : 1, sizeof *log_of);
    int *open = calloc(n ? n : 1, sizeof *open);
    bz_status st = accounts && asked && log_of && open
                       ? BZ_OK
                       : bz_fail(err, BZ_ERR_NOMEM, "service window of %zu logs: out of memory", n);
    if (st == BZ_OK)
        m = cmp_release_plan_going(plan, contacts, log_of, asked);
    for (size_t k = 0; st == BZ_OK && k < m; k++)
        accounts[k] = account;
    if (st == BZ_OK)
        st = bz_wa_service_window_open(conn, accounts, asked, m, open, err);
    for (size_t k = 0; st == BZ_OK && k < m; k++)
        if (!open[k])
            cmp_release_plan_skip(plan, log_of[k], CMP_SKIP_OUTSIDE_WINDOW);
    free(open);
    free(log_of);
    free(asked);
    free(accounts);
    return st == BZ_OK ? BZ_OK : bz_wrap(err, "account %" PRId64, account);
}
