/*
 * sessions.c - the session cache (see sessions.h).
 *
 * A chained hash map keyed by session_id string; when it holds more than
 * CACHE_MAX entries it is simply emptied (sessions are few next to events,
 * so this only matters under a flood of bogus session ids).
 */
#include "events/sessions.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/session.pb-c.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "kafka/producer.h"
#include "pg/pg.h"

#define NBUCKETS 4096
#define CACHE_MAX 100000
#define WATCH_RETRY_MS 10000
#define UNAVAILABLE_HOLD_MS 1000

typedef struct cached {
    struct cached *next;
    ing_session_info info;
    int found;
    int64_t expires_ms;
    char session_id[];
} cached;

struct ing_sessions {
    ing_sessions_config cfg;
    char *topic;
    bz_pg *pg;
    cached *buckets[NBUCKETS];
    size_t count;
    rd_kafka_t *watcher;
    int64_t next_watch_attempt_ms;
    uint64_t queries;
    PGconn *timed_conn;     /* the session whose statement_timeout is set */
    int64_t unavailable_until_ms; /* with a lookup timeout: fail lookups until then */
};

/* The owning gateway counts only while it is enabled (ARCHITECTURE.md §9.2). */
#define SQL_SELECT_ACCOUNT                                                                       \
    "SELECT a.id, a.workspace_id, coalesce(g.id, ''), a.session_id FROM whatsapp_accounts a "    \
    "LEFT JOIN gateways g ON g.id = a.gateway_id AND g.disabled_at IS NULL "
static const char *const SQL_RESOLVE =
    SQL_SELECT_ACCOUNT "WHERE a.session_id = $1 AND a.deleted_at IS NULL";
static const char *const SQL_RESOLVE_ACCOUNT =
    SQL_SELECT_ACCOUNT "WHERE a.id = $1::bigint AND a.deleted_at IS NULL";
/* The accounts of one WABA are one workspace's (0032): any of them says
 * which, and their gateway is Meta's. */
static const char *const SQL_RESOLVE_BUSINESS =
    SQL_SELECT_ACCOUNT "WHERE a.meta_waba_id = $1 AND a.provider_type = 'meta' "
    "AND a.deleted_at IS NULL ORDER BY a.id LIMIT 1";

/* Cache keys: "session <session_id>", "account <id>" and "business
 * <waba_id>" (a session id holds no space, so they never meet). */
#define KEY_MAX (ING_SESSION_ID_MAX + 16)

static size_t bucket_of(const char *session_id)
{
    return (size_t)(bz_hash_string(session_id) % NBUCKETS);
}

static void clear_cache(ing_sessions *s)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        while (s->buckets[i]) {
            cached *c = s->buckets[i];
            s->buckets[i] = c->next;
            free(c);
        }
    }
    s->count = 0;
}

static void stop_watcher(ing_sessions *s)
{
    if (!s->watcher)
        return;
    rd_kafka_consumer_close(s->watcher);
    rd_kafka_destroy(s->watcher);
    s->watcher = NULL;
}

/* Assign every partition of session.events at its end. */
static void start_watcher(ing_sessions *s, int64_t now_ms)
{
    if (s->watcher || !s->topic || now_ms < s->next_watch_attempt_ms)
        return;
    s->next_watch_attempt_ms = now_ms + WATCH_RETRY_MS;
    bz_kafka_settings settings = {.brokers = s->cfg.brokers, .client_id = "blazz-ingest-sessions"};
    /* librdkafka 2.0 wants a group.id even for assign(); the watcher never
     * joins the group nor commits, so one shared name is harmless. */
    static const char *const defaults[] = {"group.id", "blazz-ingest-session-watch",
                                           "enable.auto.commit", "false",
                                           "enable.partition.eof", "false", NULL};
    rd_kafka_conf_t *conf;
    bz_error err;
    char errstr[256];
    if (bz_kafka_conf_new(&settings, defaults, &conf, &err) != BZ_OK) {
        bz_warn("session.events watcher: %s", err.msg);
        return;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        bz_warn("session.events watcher: %s", errstr);
        return;
    }
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, s->topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 2000);
    rd_kafka_topic_destroy(rkt);
    if (e || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0) {
        bz_warn("session.events watcher: no metadata for %s; relying on the cache TTL", s->topic);
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return;
    }
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(parts, s->topic, p)->offset = RD_KAFKA_OFFSET_END;
    e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        bz_warn("session.events watcher: assign: %s", rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return;
    }
    s->watcher = rk;
}

bz_status ing_sessions_new(const ing_sessions_config *cfg, ing_sessions **out, bz_error *err)
{
    ing_sessions *s = calloc(1, sizeof *s);
    if (!s)
        return bz_fail(err, BZ_ERR_NOMEM, "session cache: out of memory");
    s->cfg = *cfg;
    if (cfg->session_events_topic && !(s->topic = strdup(cfg->session_events_topic))) {
        free(s);
        return bz_fail(err, BZ_ERR_NOMEM, "session cache: out of memory");
    }
    bz_status st = bz_pg_open(cfg->pg_dsn, &s->pg, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(s->pg, "ingest_resolve_session", SQL_RESOLVE, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(s->pg, "ingest_resolve_account", SQL_RESOLVE_ACCOUNT, err);
    if (st == BZ_OK)
        st = bz_pg_prepare(s->pg, "ingest_resolve_business", SQL_RESOLVE_BUSINESS, err);
    if (st != BZ_OK) {
        ing_sessions_free(s);
        return bz_wrap(err, "session cache");
    }
    start_watcher(s, bz_monotonic_ms());
    *out = s;
    return BZ_OK;
}

void ing_sessions_free(ing_sessions *s)
{
    if (!s)
        return;
    stop_watcher(s);
    clear_cache(s);
    bz_pg_close(s->pg);
    free(s->topic);
    free(s);
}

static cached *lookup(ing_sessions *s, const char *session_id, cached ***link_out)
{
    cached **link = &s->buckets[bucket_of(session_id)];
    for (; *link; link = &(*link)->next) {
        if (strcmp((*link)->session_id, session_id) == 0) {
            if (link_out)
                *link_out = link;
            return *link;
        }
    }
    return NULL;
}

static void forget(ing_sessions *s, const char *key)
{
    cached **link;
    cached *c = lookup(s, key, &link);
    if (!c)
        return;
    *link = c->next;
    free(c);
    s->count--;
}

static void remember(ing_sessions *s, const char *session_id, int found, ing_session_info info,
                     int64_t expires_ms)
{
    forget(s, session_id);
    if (s->count >= CACHE_MAX)
        clear_cache(s);
    size_t len = strlen(session_id);
    cached *c = malloc(sizeof *c + len + 1);
    if (!c)
        return; /* not caching is always correct */
    memcpy(c->session_id, session_id, len + 1);
    c->info = info;
    c->found = found;
    c->expires_ms = expires_ms;
    size_t b = bucket_of(session_id);
    c->next = s->buckets[b];
    s->buckets[b] = c;
    s->count++;
}

/* A connection for lookups, a fresh one when the server closed the last
 * (a restart must not fail the first lookup after it); with a lookup
 * timeout, its statement_timeout is set once per session. */
static bz_status lookup_connection(ing_sessions *s, bz_error *err)
{
    bz_pg_drop_if_closed(s->pg);
    bz_status st = bz_pg_ensure(s->pg, err);
    PGconn *conn = bz_pg_conn(s->pg);
    if (st != BZ_OK || s->cfg.lookup_timeout_ms <= 0 || conn == s->timed_conn)
        return st;
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %d", s->cfg.lookup_timeout_ms);
    st = bz_pg_exec(conn, sql, err);
    if (st == BZ_OK)
        s->timed_conn = conn;
    return st;
}

/* Run statement with param and cache its answer under key. */
static bz_status query(ing_sessions *s, const char *statement, const char *param, const char *key,
                       int64_t now_ms, ing_session_info *out, bz_error *err)
{
    if (s->cfg.lookup_timeout_ms > 0 && bz_monotonic_ms() < s->unavailable_until_ms)
        return bz_fail(err, BZ_ERR_TRANSIENT,
                       "resolve %s: PostgreSQL failed a lookup less than %d ms ago", key,
                       UNAVAILABLE_HOLD_MS);
    bz_status st = lookup_connection(s, err);
    PGresult *res = NULL;
    const char *params[1] = {param};
    if (st == BZ_OK) {
        s->queries++;
        st = bz_pg_exec_prepared(bz_pg_conn(s->pg), statement, 1, params, NULL, NULL, &res, err);
    }
    if (st != BZ_OK) {
        if (st == BZ_ERR_TRANSIENT) {
            bz_pg_reset(s->pg);
            s->timed_conn = NULL;
            s->unavailable_until_ms = bz_monotonic_ms() + UNAVAILABLE_HOLD_MS;
        }
        return bz_wrap(err, "resolve %s", key);
    }
    ing_session_info info;
    memset(&info, 0, sizeof info);
    int found = PQntuples(res) == 1;
    if (found) {
        info.account_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        info.workspace_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        snprintf(info.gateway_id, sizeof info.gateway_id, "%s", PQgetvalue(res, 0, 2));
        snprintf(info.session_id, sizeof info.session_id, "%s", PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    remember(s, key, found, info, now_ms + (found ? s->cfg.ttl_ms : s->cfg.negative_ttl_ms));
    if (!found)
        return bz_fail(err, BZ_ERR_NOT_FOUND, "%s: no live whatsapp account", key);
    *out = info;
    return BZ_OK;
}

/* key from the cache while fresh, else from PostgreSQL. */
static bz_status resolve(ing_sessions *s, const char *statement, const char *param,
                         const char *key, int64_t now_ms, ing_session_info *out, bz_error *err)
{
    cached *c = lookup(s, key, NULL);
    if (c && c->expires_ms > now_ms) {
        if (!c->found)
            return bz_fail(err, BZ_ERR_NOT_FOUND, "%s: no live whatsapp account", key);
        *out = c->info;
        return BZ_OK;
    }
    return query(s, statement, param, key, now_ms, out, err);
}

bz_status ing_sessions_resolve(ing_sessions *s, const char *session_id, int64_t now_ms,
                              ing_session_info *out, bz_error *err)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "session %s", session_id);
    return resolve(s, "ingest_resolve_session", session_id, key, now_ms, out, err);
}

bz_status ing_sessions_resolve_account(ing_sessions *s, const char *account_id, int64_t now_ms,
                                      ing_session_info *out, bz_error *err)
{
    size_t len = strlen(account_id);
    if (len == 0 || len > 18 || account_id[0] == '0' || strspn(account_id, "0123456789") != len)
        return bz_fail(err, BZ_ERR_NOT_FOUND, "'%s' is no account id", account_id);
    char key[KEY_MAX];
    snprintf(key, sizeof key, "account %s", account_id);
    return resolve(s, "ingest_resolve_account", account_id, key, now_ms, out, err);
}

bz_status ing_sessions_resolve_business(ing_sessions *s, const char *waba_id, int64_t now_ms,
                                       ing_session_info *out, bz_error *err)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "business %.*s", ING_SESSION_ID_MAX, waba_id);
    return resolve(s, "ingest_resolve_business", waba_id, key, now_ms, out, err);
}

/* Forget what is cached about session_id and the account account_id. */
static void invalidate(ing_sessions *s, const char *session_id, int64_t account_id)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "session %s", session_id);
    forget(s, key);
    snprintf(key, sizeof key, "account %" PRId64, account_id);
    forget(s, key);
}

static void apply_session_event(ing_sessions *s, const rd_kafka_message_t *m)
{
    Blazz__V1__SessionEvent *ev = blazz__v1__session_event__unpack(NULL, m->len, m->payload);
    if (!ev)
        return;
    if (ev->envelope && ev->envelope->session_id && *ev->envelope->session_id)
        invalidate(s, ev->envelope->session_id, ev->envelope->whatsapp_account_id);
    blazz__v1__session_event__free_unpacked(ev, NULL);
}

void ing_sessions_poll(ing_sessions *s)
{
    if (!s->watcher) {
        start_watcher(s, bz_monotonic_ms());
        return;
    }
    rd_kafka_message_t *m;
    while ((m = rd_kafka_consumer_poll(s->watcher, 0)) != NULL) {
        if (!m->err)
            apply_session_event(s, m);
        rd_kafka_message_destroy(m);
    }
}

uint64_t ing_sessions_queries(const ing_sessions *s)
{
    return s->queries;
}

