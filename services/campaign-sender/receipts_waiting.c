/*
 * receipts_waiting.c - receipts before their logs in a restore's replay
 * (see receipts_waiting.h). A receipt is kept as its protobuf bytes with
 * the log it names (uuid or id); the take-back is one DELETE ... RETURNING
 * of the rows whose log exists, in the consumer's transaction, so a
 * receipt leaves the table exactly when it is applied.
 */
#include "receipts_waiting.h"

#include <stdint.h>
#include <stdlib.h>

#include "campaign_sender.h"
#include "pg/columns.h"
#include "pg/pg.h"

#define SQL_FENCE_UP "SELECT EXISTS (SELECT 1 FROM restore_fences WHERE lifted_at IS NULL)"
#define SQL_WAIT                                                                                 \
    "INSERT INTO campaign_receipts_waiting (event_id, log_uuid, log_id, receipt) "               \
    "SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::bytea[]) "                   \
    "ON CONFLICT (event_id) DO NOTHING"
#define SQL_TAKE_READY                                                                           \
    "DELETE FROM campaign_receipts_waiting w WHERE EXISTS (SELECT 1 FROM campaign_logs l "       \
    "WHERE l.uuid = w.log_uuid OR l.id = w.log_id) RETURNING w.id, w.receipt"

enum { COL_EVENT, COL_UUID, COL_LOG_ID, COL_RECEIPT, NCOLS };

bz_status cmp_replay_under_way(PGconn *conn, int *yes, bz_error *err)
{
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "look for a restore fence", SQL_FENCE_UP, 0, NULL,
                                     &res, err);
    *yes = st == BZ_OK && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return st;
}

bz_status cmp_receipts_wait(PGconn *conn, const Blazz__V1__CampaignReceipt *const *rcs, size_t n,
                            bz_error *err)
{
    bz_pg_array a[NCOLS];
    bz_pg_array_init_all(a, NCOLS);
    bz_status st = BZ_OK;
    for (size_t i = 0; i < n && st == BZ_OK; i++) {
        const Blazz__V1__CampaignReceipt *rc = rcs[i];
        size_t len = blazz__v1__campaign_receipt__get_packed_size(rc);
        uint8_t *bytes = malloc(len ? len : 1);
        if (!bytes) {
            st = bz_fail(err, BZ_ERR_NOMEM, "keep a receipt for its log: out of memory");
            break;
        }
        blazz__v1__campaign_receipt__pack(rc, bytes);
        bz_pg_array_text(&a[COL_EVENT], rc->envelope ? rc->envelope->event_id : NULL);
        bz_pg_array_text(&a[COL_UUID], cmp_receipt_log_uuid(rc));
        bz_pg_array_int64(&a[COL_LOG_ID], rc->campaign_log_id);
        bz_pg_array_bytea(&a[COL_RECEIPT], bytes, len);
        free(bytes);
    }
    if (st == BZ_OK)
        st = bz_pg_arrays_exec(conn, "keep receipts until their logs exist", SQL_WAIT, a, NCOLS,
                               NULL, err);
    bz_pg_array_free_all(a, NCOLS);
    return st;
}

typedef struct ready_row {
    int64_t id;
    Blazz__V1__CampaignReceipt *rc;
} ready_row;

static int compare_ready(const void *a, const void *b)
{
    int64_t x = ((const ready_row *)a)->id, y = ((const ready_row *)b)->id;
    return (x > y) - (x < y);
}

/* Row i of res unpacked into *out. */
static bz_status unpack_row(const PGresult *res, int i, ready_row *out, bz_error *err)
{
    out->id = bz_pg_get_int64(res, i, 0);
    size_t len = 0;
    unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 1), &len);
    out->rc = bytes ? blazz__v1__campaign_receipt__unpack(NULL, len, bytes) : NULL;
    PQfreemem(bytes);
    return out->rc ? BZ_OK
                   : bz_fail(err, BZ_ERR_INTERNAL, "waiting receipt %lld: not a CampaignReceipt",
                             (long long)out->id);
}

bz_status cmp_receipts_take_ready(PGconn *conn, Blazz__V1__CampaignReceipt ***out, size_t *n,
                                  bz_error *err)
{
    *out = NULL;
    *n = 0;
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "take back receipts whose logs exist", SQL_TAKE_READY,
                                     0, NULL, &res, err);
    int rows = st == BZ_OK ? PQntuples(res) : 0;
    ready_row *ready = rows > 0 ? calloc((size_t)rows, sizeof *ready) : NULL;
    if (rows > 0 && !ready)
        st = bz_fail(err, BZ_ERR_NOMEM, "take back receipts: out of memory");
    int got = 0;
    for (; st == BZ_OK && got < rows; got++)
        st = unpack_row(res, got, &ready[got], err);
    PQclear(res);
    if (st == BZ_OK && rows > 0) {
        qsort(ready, (size_t)rows, sizeof *ready, compare_ready);
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, sized as such */
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out)
            st = bz_fail(err, BZ_ERR_NOMEM, "take back receipts: out of memory");
    }
    for (int i = 0; i < got; i++) {
        if (st == BZ_OK)
            (*out)[i] = ready[i].rc;
        else if (ready[i].rc)
            blazz__v1__campaign_receipt__free_unpacked(ready[i].rc, NULL);
    }
    if (st == BZ_OK)
        *n = (size_t)rows;
    free(ready);
    return st;
}

void cmp_receipts_free(Blazz__V1__CampaignReceipt **rcs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        blazz__v1__campaign_receipt__free_unpacked(rcs[i], NULL);
    free(rcs);
}
