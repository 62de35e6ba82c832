/*
 * intake.c - wa.outbound -> meta_sends, exactly once (see meta_sender.h).
 *
 * The exactly-once consumer (libs/kafka/eo_consumer.h) calls apply inside
 * the transaction that stores the partitions' offsets. One INSERT ... SELECT
 * over the batch keeps the records whose session is a Meta account's
 * (whatsapp_accounts.provider_type = 'meta'; webjs sessions belong to the
 * gateways and are skipped here), with the account, its workspace and the
 * outcome's chat.sync key, ON CONFLICT (idempotency_key) DO NOTHING: a
 * SendMessage published twice (an outbox relay repeating a publish) is
 * stored once, so it is sent at most once by this path. The row's trigger
 * wakes the worker at commit.
 *
 * A record that does not decode, or has no session or idempotency key, is
 * dead-lettered by the consumer (reason decode_error / invalid_send).
 */
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "meta_sender.h"
#include "pg/columns.h"
#include "pg/pg.h"

#define SQL_INTAKE                                                                                \
    "INSERT INTO meta_sends (idempotency_key, whatsapp_account_id, workspace_id, msg_key, "      \
    "payload) "                                                                                   \
    "SELECT u.key, a.id, a.workspace_id, a.workspace_id::text || ':' || u.conv, "               \
    "decode(u.payload, 'hex') "                                                                   \
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY "              \
    "  AS u(key, session, conv, payload, ord) "                                                   \
    "JOIN whatsapp_accounts a ON a.session_id = u.session AND a.provider_type = 'meta' "        \
    "ORDER BY u.ord "                                                                             \
    "ON CONFLICT (idempotency_key) DO NOTHING"

typedef struct intake_record {
    Blazz__V1__SendMessage *m;
    const char *key; /* idempotency key, or the envelope's event id for read marks */
} intake_record;

static bz_status decode(void *ctx, const rd_kafka_message_t *msg, void **decoded, bz_error *err)
{
    (void)ctx;
    Blazz__V1__SendMessage *m =
        blazz__v1__send_message__unpack(NULL, msg->len, (const uint8_t *)msg->payload);
    if (!m)
        return bz_reject(err, "decode_error", "wa.outbound offset %lld: not a SendMessage",
                         (long long)msg->offset);
    intake_record *r = calloc(1, sizeof *r);
    if (!r) {
        blazz__v1__send_message__free_unpacked(m, NULL);
        return bz_fail(err, BZ_ERR_NOMEM, "wa.outbound offset %lld: out of memory",
                       (long long)msg->offset);
    }
    r->m = m;
    r->key = m->idempotency_key && *m->idempotency_key ? m->idempotency_key
             : m->envelope && m->envelope->event_id    ? m->envelope->event_id
                                                       : "";
    const char *session = m->session_id && *m->session_id ? m->session_id
                          : m->envelope && m->envelope->session_id ? m->envelope->session_id
                                                                   : "";
    if (!*r->key || !*session) {
        blazz__v1__send_message__free_unpacked(m, NULL);
        free(r);
        return bz_reject(err, "invalid_send",
                         "wa.outbound offset %lld: SendMessage without idempotency key or session",
                         (long long)msg->offset);
    }
    *decoded = r;
    return BZ_OK;
}

static void release(void *ctx, void *decoded)
{
    (void)ctx;
    intake_record *r = decoded;
    if (!r)
        return;
    blazz__v1__send_message__free_unpacked(r->m, NULL);
    free(r);
}

static const char *session_of(const Blazz__V1__SendMessage *m)
{
    return m->session_id && *m->session_id ? m->session_id : m->envelope->session_id;
}

static const char *conversation_of(const Blazz__V1__SendMessage *m)
{
    if (m->to_phone && *m->to_phone)
        return m->to_phone;
    if (m->to_jid && *m->to_jid)
        return m->to_jid;
    return m->to_bsuid ? m->to_bsuid : "";
}

typedef struct intake_arrays {
    const char **keys, **sessions, **convs;
    char **hex;
    size_t n;
} intake_arrays;

static void arrays_free(intake_arrays *a)
{
    for (size_t i = 0; a->hex && i < a->n; i++)
        free(a->hex[i]);
    free(a->keys);
    free(a->sessions);
    free(a->convs);
    free(a->hex);
}

static bz_status arrays_fill(intake_arrays *a, bz_eo_record *records, size_t n, bz_error *err)
{
    a->keys = calloc(n, sizeof *a->keys);
    a->sessions = calloc(n, sizeof *a->sessions);
    a->convs = calloc(n, sizeof *a->convs);
    a->hex = calloc(n, sizeof *a->hex);
    if (!a->keys || !a->sessions || !a->convs || !a->hex)
        return bz_fail(err, BZ_ERR_TRANSIENT, "meta intake: out of memory");
    for (size_t i = 0; i < n; i++) {
        const intake_record *r = records[i].decoded;
        const rd_kafka_message_t *msg = records[i].msg;
        a->keys[a->n] = r->key;
        a->sessions[a->n] = session_of(r->m);
        a->convs[a->n] = conversation_of(r->m);
        a->hex[a->n] = bz_hex_dup("", msg->payload, msg->len);
        if (!a->hex[a->n++])
            return bz_fail(err, BZ_ERR_TRANSIENT, "meta intake: out of memory");
    }
    return BZ_OK;
}

static bz_status apply(void *ctx, PGconn *conn, bz_eo_record *records, size_t n, bz_error *err)
{
    (void)ctx;
    intake_arrays a = {0};
    bz_status st = arrays_fill(&a, records, n, err);
    char *params[4] = {NULL};
    if (st == BZ_OK) {
        params[0] = bz_pg_text_array(a.keys, a.n);
        params[1] = bz_pg_text_array(a.sessions, a.n);
        params[2] = bz_pg_text_array(a.convs, a.n);
        params[3] = bz_pg_text_array((const char *const *)a.hex, a.n);
        for (int i = 0; i < 4 && st == BZ_OK; i++)
            if (!params[i])
                st = bz_fail(err, BZ_ERR_TRANSIENT, "meta intake: out of memory");
    }
    if (st == BZ_OK)
        st = bz_pg_exec_params(conn, "store Meta sends", SQL_INTAKE, 4,
                               (const char *const *)params, NULL, err);
    for (int i = 0; i < 4; i++)
        free(params[i]);
    arrays_free(&a);
    return st;
}

const bz_eo_handler ms_intake_handler = {
    .decode = decode,
    .apply = apply,
    .release = release,
};
