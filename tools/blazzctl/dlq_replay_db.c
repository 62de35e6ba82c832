/*
 * dlq_replay_db.c - dead letters replayed through PostgreSQL (see
 * dlq_replay_db.h).
 */
#include "dlq_replay_db.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/utf8.h"
#include "core/uuid.h"
#include "kafka/outbox.h"
#include "kafka/topics.h"
#include "pg/pg.h"

#define ENDPOINT_HEADER "webhook-endpoint-id"
#define MAX_HEADERS 16

struct bz_ctl_replay_db {
    PGconn *conn;
    int64_t requeued, outboxed;
};

static const char requeue_sql[] =
    "UPDATE webhook_retry_queue SET status = 'pending', retry_count = 0, next_retry_at = now(), "
    "  last_error = NULL, last_status_code = NULL, delivered_at = NULL "
    "WHERE event_id = $1::uuid AND endpoint_id = $2::bigint AND status = 'failed'";
static const char delivery_exists_sql[] =
    "SELECT 1 FROM webhook_retry_queue WHERE event_id = $1::uuid AND endpoint_id = $2::bigint";

/* The value of dl's header name as a NUL-terminated copy in buf, or NULL. */
static const char *header_text(const Blazz__V1__DeadLetter *dl, const char *name, char *buf,
                               size_t cap)
{
    for (size_t i = 0; i < dl->n_original_headers; i++) {
        const Blazz__V1__Header *h = dl->original_headers[i];
        if (strcmp(h->key, name) != 0 || h->value.len >= cap)
            continue;
        memcpy(buf, h->value.data, h->value.len);
        buf[h->value.len] = '\0';
        return buf;
    }
    return NULL;
}

/* The catalogue topic of a full name under prefix; for a gateway's outbound
 * topic, the shared one its row was written for, so the replayed row is
 * routed again, to whichever gateway serves the session now. */
static int base_topic(const char *prefix, const char *full, bz_topic *out)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    if (!full || strncmp(full, prefix ? prefix : "", plen) != 0)
        return 0;
    return bz_topic_lookup(full + plen, out, NULL) == BZ_OK ||
           bz_topic_gateway_route(full + plen, out);
}

int bz_ctl_replay_via_db(const char *prefix, const Blazz__V1__DeadLetter *dl)
{
    bz_topic t;
    return base_topic(prefix, dl->original_topic, &t) && bz_topic_via_outbox(t);
}

bz_status bz_ctl_replay_db_open(const char *dsn, bz_ctl_replay_db **out, bz_error *err)
{
    if (!dsn || !*dsn)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "replaying into an outbox topic goes through PostgreSQL: set "
                       "BLAZZ_PG_DSN or pass --dsn");
    bz_ctl_replay_db *db = calloc(1, sizeof *db);
    if (!db)
        return bz_fail(err, BZ_ERR_NOMEM, "replay: out of memory");
    db->conn = PQconnectdb(dsn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        bz_fail(err, BZ_ERR_TRANSIENT, "replay: connect to PostgreSQL: %s",
                PQerrorMessage(db->conn));
        bz_ctl_replay_db_free(db);
        return err->code;
    }
    *out = db;
    return BZ_OK;
}

void bz_ctl_replay_db_free(bz_ctl_replay_db *db)
{
    if (!db)
        return;
    PQfinish(db->conn);
    free(db);
}

static bz_status requeue_delivery(bz_ctl_replay_db *db, const Blazz__V1__DeadLetter *dl,
                                  const char *endpoint, bz_error *err)
{
    if (!bz_uuid_is_valid(dl->event_id))
        return bz_reject(err, "bad_event_id", "delivery %s: event id is not a UUID", dl->event_id);
    const char *params[] = {dl->event_id, endpoint};
    PGresult *res = PQexecParams(db->conn, requeue_sql, 2, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(db->conn, res, "re-queue delivery", err);
    int64_t changed = st == BZ_OK ? bz_pg_affected_rows(res) : 0;
    PQclear(res);
    if (st == BZ_OK && changed == 0) {
        /* not failed: pending or delivered already, which a replay leaves alone */
        res = PQexecParams(db->conn, delivery_exists_sql, 2, NULL, params, NULL, NULL, 0);
        st = bz_pg_check(db->conn, res, "look up delivery", err);
        if (st == BZ_OK && PQntuples(res) == 0)
            st = bz_fail(err, BZ_ERR_NOT_FOUND, "delivery of event %s to endpoint %s is gone",
                         dl->event_id, endpoint);
        PQclear(res);
    }
    if (st == BZ_OK && changed > 0)
        PQclear(PQexec(db->conn, BZ_PG_WEBHOOK_WAKE_SQL));
    if (st == BZ_OK)
        db->requeued++;
    return st;
}

/* Copy dl's headers as text; refuse ones that are not. Frees into *copies. */
static bz_status text_headers(const Blazz__V1__DeadLetter *dl, bz_outbox_header *out,
                              char **copies, size_t *n, bz_error *err)
{
    *n = 0;
    for (size_t i = 0; i < dl->n_original_headers && *n < MAX_HEADERS; i++) {
        const Blazz__V1__Header *h = dl->original_headers[i];
        if (memchr(h->value.data, '\0', h->value.len) ||
            !bz_utf8_valid((const char *)h->value.data, h->value.len))
            return bz_reject(err, "binary_header", "header %s is not text", h->key);
        char *v = malloc(h->value.len + 1);
        if (!v)
            return bz_fail(err, BZ_ERR_NOMEM, "replay: out of memory");
        memcpy(v, h->value.data, h->value.len);
        v[h->value.len] = '\0';
        copies[*n] = v;
        out[*n] = (bz_outbox_header){h->key, v};
        (*n)++;
    }
    return BZ_OK;
}

static bz_status add_outbox_row(bz_ctl_replay_db *db, const char *prefix,
                                const Blazz__V1__DeadLetter *dl, bz_error *err)
{
    bz_topic t;
    if (!base_topic(prefix, dl->original_topic, &t))
        return bz_fail(err, BZ_ERR_INTERNAL, "%s is not an outbox topic", dl->original_topic);
    if (!bz_uuid_is_valid(dl->event_id))
        return bz_reject(err, "bad_event_id",
                         "event %s: an outbox row needs a UUID event id", dl->event_id);
    bz_outbox_header headers[MAX_HEADERS];
    char *copies[MAX_HEADERS];
    size_t n = 0;
    bz_status st = text_headers(dl, headers, copies, &n, err);
    if (st == BZ_OK)
        st = bz_outbox_add(db->conn, bz_topic_base(t), dl->event_id, dl->original_key.data,
                           dl->original_key.len, dl->original_value.data,
                           dl->original_value.len, headers, n, err);
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    if (st == BZ_OK)
        db->outboxed++;
    return st;
}

bz_status bz_ctl_replay_db_send(bz_ctl_replay_db *db, const char *prefix,
                                const Blazz__V1__DeadLetter *dl, bz_error *err)
{
    char endpoint[32];
    if (header_text(dl, ENDPOINT_HEADER, endpoint, sizeof endpoint))
        return requeue_delivery(db, dl, endpoint, err);
    return add_outbox_row(db, prefix, dl, err);
}

int64_t bz_ctl_replay_db_requeued(const bz_ctl_replay_db *db)
{
    return db ? db->requeued : 0;
}

int64_t bz_ctl_replay_db_outboxed(const bz_ctl_replay_db *db)
{
    return db ? db->outboxed : 0;
}
