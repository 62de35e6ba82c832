/*
 * standing.c - whether Meta lets an account send a campaign now (see
 * standing.h): one read of the account's row, the rules of standing.h,
 * and the reason in words an operator can act on.
 */
#include "standing.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pg/pg.h"

#define SQL_STANDING                                                                              \
    "SELECT " CMP_FLAG_STOPS " AND $2::boolean, " CMP_RESTRICTION_STOPS ", " CMP_BAN_STOPS ", "   \
    "coalesce(a.meta_quality_event, ''), coalesce(a.meta_restriction, ''), "                      \
    "coalesce(to_char(a.meta_restricted_until AT TIME ZONE 'UTC', "                               \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') FROM whatsapp_accounts a WHERE a.id = $1::bigint"

bz_status cmp_standing_check(PGconn *conn, int64_t account, int marketing, int *stopped,
                             char *why, size_t cap, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, account);
    const char *params[] = {id, marketing ? "true" : "false"};
    PGresult *res = NULL;
    *stopped = 0;
    bz_status st = bz_pg_exec_params(conn, "read the account's standing at Meta", SQL_STANDING, 2,
                                     params, &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "account %" PRId64, account);
    if (PQntuples(res) == 1) {
        int flagged = PQgetvalue(res, 0, 0)[0] == 't';
        int restricted = PQgetvalue(res, 0, 1)[0] == 't';
        int disabled = PQgetvalue(res, 0, 2)[0] == 't';
        const char *until = PQgetvalue(res, 0, 5);
        *stopped = flagged || restricted || disabled;
        if (disabled)
            snprintf(why, cap,
                     CMP_STANDING_PAUSE ": Meta disabled the WhatsApp Business Account of account "
                     "%" PRId64 " (the campaign resumes when Meta reinstates it)", account);
        else if (restricted)
            snprintf(why, cap,
                     CMP_STANDING_PAUSE ": Meta restricts account %" PRId64 " (%s%s%s; the "
                     "campaign resumes when the restriction ends)",
                     account, PQgetvalue(res, 0, 4), *until ? " until " : "", until);
        else if (flagged)
            snprintf(why, cap,
                     CMP_STANDING_PAUSE ": Meta flagged the quality of account %" PRId64 " (%s; "
                     "its marketing campaigns resume when Meta clears the flag)",
                     account, PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    return BZ_OK;
}
