/*
 * admin.c - creating and listing topics with librdkafka's Admin API.
 *
 * bz_kafka_topics_ensure works in three steps: read the cluster metadata to
 * see which catalogue topics are missing, create those in one CreateTopics
 * request (TOPIC_ALREADY_EXISTS counts as success, since another runner may
 * have won the race), then poll the metadata until every topic has a leader
 * for each partition, as every broker of the cluster reports it: a topic
 * that was just created is not immediately usable, and callers (the stack
 * script, tests) produce to it and subscribe to it right away.
 */
#include "kafka/admin.h"

#include "core/clock.h"
#include "kafka/limits.h"
#include "kafka/producer.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METADATA_RETRY_PAUSE_MS 200

/* Admin clients live for one call: librdkafka's reconnect chatter on stderr
 * would only repeat what the returned error says. */
static void drop_log_line(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static int effective_timeout(int timeout_ms)
{
    return timeout_ms > 0 ? timeout_ms : BZ_KAFKA_ADMIN_TIMEOUT_MS;
}

static bz_status admin_client_new(const char *brokers, rd_kafka_t **out, bz_error *err)
{
    char errstr[512];
    *out = NULL;
    if (!brokers || !*brokers)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "kafka admin: no brokers given (set BLAZZ_KAFKA_BROKERS or --brokers)");
    bz_kafka_settings settings = {.brokers = brokers, .client_id = "blazz-admin"};
    /* asking about a topic that does not exist yet must never create it
     * with the broker's defaults */
    static const char *const defaults[] = {"allow.auto.create.topics", "false", NULL};
    rd_kafka_conf_t *conf;
    bz_status st = bz_kafka_conf_new(&settings, defaults, &conf, err);
    if (st != BZ_OK)
        return bz_wrap(err, "kafka admin: brokers '%s'", brokers);
    rd_kafka_conf_set_log_cb(conf, drop_log_line);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return bz_fail(err, BZ_ERR_CONFIG, "kafka admin: create client for %s: %s", brokers,
                       errstr);
    }
    *out = rk;
    return BZ_OK;
}

/* The metadata of every topic of the cluster (all_topics), or only of the
 * topics rk holds handles for (watched_topics_new): a cluster of thousands
 * of partitions answers the first with hundreds of kilobytes, and the
 * waits below ask ten times a second. */
static bz_status fetch_metadata(rd_kafka_t *rk, int all_topics, const char *brokers,
                                int timeout_ms, const struct rd_kafka_metadata **md,
                                bz_error *err)
{
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, all_topics, NULL, md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return bz_fail(err, BZ_ERR_TRANSIENT, "kafka metadata from %s: %s", brokers,
                       rd_kafka_err2str(e));
    return BZ_OK;
}

/* An admin client that holds a handle for each topic of rep, so that its
 * metadata requests can name those alone. */
typedef struct watched_topics {
    rd_kafka_t *rk;
    rd_kafka_topic_t *handles[BZ_TOPIC_COUNT];
    size_t count;
} watched_topics;

static void watched_topics_free(watched_topics *w)
{
    for (size_t i = 0; i < w->count; i++)
        rd_kafka_topic_destroy(w->handles[i]);
    w->count = 0;
    if (w->rk)
        rd_kafka_destroy(w->rk);
    w->rk = NULL;
}

static bz_status watched_topics_new(const char *brokers, const bz_kafka_ensure_report *rep,
                                    watched_topics *w, bz_error *err)
{
    memset(w, 0, sizeof *w);
    bz_status st = admin_client_new(brokers, &w->rk, err);
    for (size_t i = 0; st == BZ_OK && i < rep->count; i++) {
        if (!(w->handles[w->count] = rd_kafka_topic_new(w->rk, rep->topics[i].name, NULL)))
            st = bz_fail(err, BZ_ERR_INTERNAL, "kafka admin: a handle for topic %s: %s",
                         rep->topics[i].name, rd_kafka_err2str(rd_kafka_last_error()));
        else
            w->count++;
    }
    if (st != BZ_OK)
        watched_topics_free(w);
    return st;
}

static const struct rd_kafka_metadata_topic *find_topic(const struct rd_kafka_metadata *md,
                                                        const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0 &&
            md->topics[i].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            return &md->topics[i];
    return NULL;
}

/* 1 when the topic is known and every partition has a leader. */
static int topic_is_ready(const struct rd_kafka_metadata_topic *t)
{
    if (!t || t->err != RD_KAFKA_RESP_ERR_NO_ERROR || t->partition_cnt <= 0)
        return 0;
    for (int p = 0; p < t->partition_cnt; p++)
        if (t->partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR || t->partitions[p].leader < 0)
            return 0;
    return 1;
}

static bz_status fill_catalogue_names(const char *prefix, bz_kafka_ensure_report *rep,
                                      bz_error *err)
{
    memset(rep, 0, sizeof *rep);
    for (int t = 0; t < BZ_TOPIC_COUNT; t++) {
        bz_status st = bz_topic_name_checked(prefix, bz_topic_base((bz_topic)t),
                                             rep->topics[t].name, sizeof rep->topics[t].name,
                                             err);
        if (st != BZ_OK)
            return bz_wrap(err, "ensure topics");
    }
    rep->count = BZ_TOPIC_COUNT;
    return BZ_OK;
}

/* min.insync.replicas of topics created with `replication` replicas: 2 from
 * three replicas up (an acknowledged record is on two brokers, and one
 * broker may be down without stopping writes), else 1. */
static int min_insync_replicas(int replication)
{
    return replication >= 3 ? 2 : 1;
}

/* Build NewTopic objects for the entries still marked missing (created == -1). */
static bz_status new_topics_for_missing(bz_kafka_ensure_report *rep, int partitions,
                                        int replication, rd_kafka_NewTopic_t **nts, size_t *n,
                                        bz_error *err)
{
    char errstr[512], min_insync[16];
    snprintf(min_insync, sizeof min_insync, "%d", min_insync_replicas(replication));
    *n = 0;
    for (size_t i = 0; i < rep->count; i++) {
        if (rep->topics[i].created != -1)
            continue;
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(rep->topics[i].name, partitions,
                                                        replication, errstr, sizeof errstr);
        if (!nt)
            return bz_fail(err, BZ_ERR_CONFIG, "create topic %s: %s", rep->topics[i].name,
                           errstr);
        nts[(*n)++] = nt;
        if (rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "delete") !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", min_insync) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            rd_kafka_NewTopic_set_config(nt, "max.message.bytes",
                                         BZ_LIMIT_TEXT(BZ_KAFKA_TOPIC_MAX_MESSAGE_BYTES)) !=
                RD_KAFKA_RESP_ERR_NO_ERROR)
            return bz_fail(err, BZ_ERR_INTERNAL, "create topic %s: set its configuration",
                           rep->topics[i].name);
    }
    return BZ_OK;
}

static bz_kafka_ensure_entry *entry_named(bz_kafka_ensure_report *rep, const char *name)
{
    for (size_t i = 0; i < rep->count; i++)
        if (strcmp(rep->topics[i].name, name) == 0)
            return &rep->topics[i];
    return NULL;
}

static bz_status read_create_results(rd_kafka_event_t *ev, bz_kafka_ensure_report *rep,
                                     bz_error *err)
{
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return bz_fail(err, BZ_ERR_TRANSIENT, "create topics: %s",
                       rd_kafka_event_error_string(ev));
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    if (!res)
        return bz_fail(err, BZ_ERR_INTERNAL, "create topics: unexpected event %s",
                       rd_kafka_event_name(ev));
    size_t cnt = 0;
    const rd_kafka_topic_result_t **results = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        const char *name = rd_kafka_topic_result_name(results[i]);
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
        bz_kafka_ensure_entry *entry = entry_named(rep, name);
        if (!entry)
            continue;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            entry->created = 1;
        else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            entry->created = 0;
        else
            return bz_fail(err, BZ_ERR_CONFIG, "create topic %s: %s", name,
                           rd_kafka_topic_result_error_string(results[i])
                               ? rd_kafka_topic_result_error_string(results[i])
                               : rd_kafka_err2str(e));
    }
    return BZ_OK;
}

static bz_status create_missing(rd_kafka_t *rk, bz_kafka_ensure_report *rep, int partitions,
                                int replication, int timeout_ms, bz_error *err)
{
    rd_kafka_NewTopic_t *nts[BZ_TOPIC_COUNT];
    size_t n = 0;
    bz_status st = new_topics_for_missing(rep, partitions, replication, nts, &n, err);
    if (st == BZ_OK && n > 0) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        char errstr[256];
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof errstr);
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof errstr);
        rd_kafka_CreateTopics(rk, nts, n, opts, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
        if (!ev)
            st = bz_fail(err, BZ_ERR_TRANSIENT, "create topics: no answer within %d ms",
                         timeout_ms + 2000);
        else
            st = read_create_results(ev, rep, err);
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
    }
    rd_kafka_NewTopic_destroy_array(nts, n);
    return st;
}

/* Mark entries missing from md with created = -1, and the others 0. */
static void mark_missing(const struct rd_kafka_metadata *md, bz_kafka_ensure_report *rep)
{
    for (size_t i = 0; i < rep->count; i++)
        rep->topics[i].created = find_topic(md, rep->topics[i].name) ? 0 : -1;
}

/* The metadata, asked again while the deadline allows: a broker busy
 * creating other clients' partitions can leave one request unanswered past
 * its timeout (make test, four programs side by side: test_webhook_instances
 * failed on 'kafka metadata ... Local: Timed out' in its topics' wait), and
 * a broker just started can drop the connection a request went out on,
 * which fails it at once ('Local: Broker transport failure': compose's
 * migrate, its first request, in CI); a failure that quick is asked again
 * after a pause, not in a spin. */
static bz_status fetch_metadata_until(rd_kafka_t *rk, const char *brokers, long long deadline,
                                      const struct rd_kafka_metadata **md, bz_error *err)
{
    for (;;) {
        long long started = bz_monotonic_ms();
        long long timeout_ms = deadline - started;
        if (timeout_ms > BZ_KAFKA_ADMIN_TIMEOUT_MS)
            timeout_ms = BZ_KAFKA_ADMIN_TIMEOUT_MS;
        if (timeout_ms < 1000)
            timeout_ms = 1000;
        bz_status st = fetch_metadata(rk, 0, brokers, (int)timeout_ms, md, err);
        if (st == BZ_OK || bz_monotonic_ms() + 1000 >= deadline)
            return st;
        if (bz_monotonic_ms() - started < METADATA_RETRY_PAUSE_MS)
            bz_sleep_ms(METADATA_RETRY_PAUSE_MS);
    }
}

/* Poll the metadata until every catalogue topic is ready or the deadline passes;
 * records each topic's partition count. */
static bz_status wait_until_ready(rd_kafka_t *rk, const char *brokers,
                                  bz_kafka_ensure_report *rep, long long deadline,
                                  bz_error *err)
{
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        bz_status st = fetch_metadata_until(rk, brokers, deadline, &md, err);
        if (st != BZ_OK)
            return st;
        const char *not_ready = NULL;
        for (size_t i = 0; i < rep->count; i++) {
            const struct rd_kafka_metadata_topic *t = find_topic(md, rep->topics[i].name);
            rep->topics[i].partitions = t ? t->partition_cnt : 0;
            if (!not_ready && !topic_is_ready(t))
                not_ready = rep->topics[i].name;
        }
        char waiting_for[BZ_TOPIC_NAME_MAX];
        if (not_ready)
            snprintf(waiting_for, sizeof waiting_for, "%s", not_ready);
        rd_kafka_metadata_destroy(md);
        if (!not_ready)
            return BZ_OK;
        if (bz_monotonic_ms() >= deadline)
            return bz_fail(err, BZ_ERR_TRANSIENT,
                           "ensure topics on %s: topic %s has no leader for every partition yet",
                           brokers, waiting_for);
        bz_sleep_ms(100);
    }
}

/* A broker learns new topics from the controller on its own time, and a
 * client that asks one which has not learned a topic yet is told it does
 * not exist: a consumer subscribing then waits for its next metadata
 * refresh (five minutes by default) before it consumes anything. So wait
 * until every broker rk knows reports the topics ready, asking each through
 * a client bootstrapped with its address alone (its first request goes
 * there). */
static bz_status wait_until_every_broker_knows(rd_kafka_t *rk, const char *brokers,
                                               bz_kafka_ensure_report *rep, long long deadline,
                                               bz_error *err)
{
    const struct rd_kafka_metadata *md = NULL;
    bz_status st = fetch_metadata_until(rk, brokers, deadline, &md, err);
    for (int b = 0; st == BZ_OK && b < md->broker_cnt; b++) {
        char address[300];
        snprintf(address, sizeof address, "%s:%d", md->brokers[b].host, md->brokers[b].port);
        watched_topics one;
        st = watched_topics_new(address, rep, &one, err);
        if (st == BZ_OK)
            st = wait_until_ready(one.rk, address, rep, deadline, err);
        watched_topics_free(&one);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    return st;
}

/* Make sure every topic named in rep exists, creating the missing ones, and
 * wait until all have leaders; counts and partitions land in rep. */
static bz_status ensure_named_topics(const char *brokers, int partitions, int replication,
                                     int timeout_ms, bz_kafka_ensure_report *rep, bz_error *err)
{
    if (partitions < 1 || replication < 1)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "ensure topics: partitions (%d) and replication (%d) must be >= 1",
                       partitions, replication);
    timeout_ms = effective_timeout(timeout_ms);
    long long deadline = bz_monotonic_ms() + timeout_ms;
    watched_topics w;
    bz_status st = watched_topics_new(brokers, rep, &w, err);
    if (st != BZ_OK)
        return st;
    const struct rd_kafka_metadata *md = NULL;
    st = fetch_metadata_until(w.rk, brokers, deadline, &md, err);
    if (st == BZ_OK) {
        mark_missing(md, rep);
        rd_kafka_metadata_destroy(md);
        st = create_missing(w.rk, rep, partitions, replication, timeout_ms, err);
    }
    if (st == BZ_OK)
        st = wait_until_ready(w.rk, brokers, rep, deadline + 2000, err);
    if (st == BZ_OK)
        st = wait_until_every_broker_knows(w.rk, brokers, rep, deadline + 2000, err);
    watched_topics_free(&w);
    if (st != BZ_OK)
        return st;
    for (size_t i = 0; i < rep->count; i++) {
        if (rep->topics[i].created == 1)
            rep->created++;
        else
            rep->existing++;
    }
    return BZ_OK;
}

bz_status bz_kafka_topics_ensure(const char *brokers, const char *prefix, int partitions,
                                 int replication, int timeout_ms,
                                 bz_kafka_ensure_report *report, bz_error *err)
{
    bz_kafka_ensure_report rep;
    bz_status st = fill_catalogue_names(prefix, &rep, err);
    if (st == BZ_OK)
        st = ensure_named_topics(brokers, partitions, replication, timeout_ms, &rep, err);
    if (st == BZ_OK && report)
        *report = rep;
    return st;
}

/* Gateways whose topics fit one report. */
#define GATEWAYS_PER_ROUND (BZ_TOPIC_COUNT / BZ_GATEWAY_TOPIC_COUNT)

bz_status bz_kafka_gateway_topics_ensure(const char *brokers, const char *prefix,
                                         const char *const *gateway_ids, size_t ngateways,
                                         int partitions, int replication, int timeout_ms,
                                         bz_kafka_ensure_entry *entries, bz_error *err)
{
    bz_status st = BZ_OK;
    for (size_t first = 0; st == BZ_OK && first < ngateways; first += GATEWAYS_PER_ROUND) {
        bz_kafka_ensure_report rep;
        memset(&rep, 0, sizeof rep);
        for (size_t g = first; st == BZ_OK && g < ngateways && g < first + GATEWAYS_PER_ROUND;
             g++)
            for (int which = 0; st == BZ_OK && which < BZ_GATEWAY_TOPIC_COUNT; which++) {
                st = bz_topic_gateway_name(prefix, (bz_gateway_topic)which, gateway_ids[g],
                                           rep.topics[rep.count].name,
                                           sizeof rep.topics[rep.count].name, err);
                rep.count++;
            }
        if (st == BZ_OK)
            st = ensure_named_topics(brokers, partitions, replication, timeout_ms, &rep, err);
        if (st == BZ_OK && entries)
            memcpy(entries + first * BZ_GATEWAY_TOPIC_COUNT, rep.topics,
                   rep.count * sizeof *entries);
    }
    return st;
}

static int compare_topic_info(const void *a, const void *b)
{
    return strcmp(((const bz_kafka_topic_info *)a)->name, ((const bz_kafka_topic_info *)b)->name);
}

static bz_status copy_user_topics(const struct rd_kafka_metadata *md, bz_kafka_topic_list *out,
                                  bz_error *err)
{
    if (md->topic_cnt == 0)
        return BZ_OK;
    out->topics = calloc((size_t)md->topic_cnt, sizeof *out->topics);
    if (!out->topics)
        return bz_fail(err, BZ_ERR_NOMEM, "list topics: out of memory for %d topics",
                       md->topic_cnt);
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strncmp(t->topic, "__", 2) == 0 || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            continue;
        char *name = strdup(t->topic);
        if (!name) {
            bz_kafka_topic_list_free(out);
            return bz_fail(err, BZ_ERR_NOMEM, "list topics: out of memory copying %s", t->topic);
        }
        out->topics[out->count].name = name;
        out->topics[out->count].partitions = t->partition_cnt;
        out->count++;
    }
    qsort(out->topics, out->count, sizeof *out->topics, compare_topic_info);
    return BZ_OK;
}

typedef bz_status (*metadata_fn)(const struct rd_kafka_metadata *md, void *out, bz_error *err);

/* Fetch the metadata of every topic through a fresh admin client and hand
 * it to use (which fills out). */
static bz_status with_metadata(const char *brokers, int timeout_ms, metadata_fn use, void *out,
                               bz_error *err)
{
    rd_kafka_t *rk = NULL;
    bz_status st = admin_client_new(brokers, &rk, err);
    if (st != BZ_OK)
        return st;
    const struct rd_kafka_metadata *md = NULL;
    st = fetch_metadata(rk, 1, brokers, effective_timeout(timeout_ms), &md, err);
    if (st == BZ_OK) {
        st = use(md, out, err);
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return st;
}

static bz_status use_topic_list(const struct rd_kafka_metadata *md, void *out, bz_error *err)
{
    return copy_user_topics(md, out, err);
}

bz_status bz_kafka_topics_list(const char *brokers, int timeout_ms, bz_kafka_topic_list *out,
                               bz_error *err)
{
    out->topics = NULL;
    out->count = 0;
    return with_metadata(brokers, timeout_ms, use_topic_list, out, err);
}

void bz_kafka_topic_list_free(bz_kafka_topic_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->topics[i].name);
    free(list->topics);
    list->topics = NULL;
    list->count = 0;
}

static int compare_broker_info(const void *a, const void *b)
{
    int x = ((const bz_kafka_broker_info *)a)->id, y = ((const bz_kafka_broker_info *)b)->id;
    return (x > y) - (x < y);
}

static bz_kafka_broker_info *broker_with_id(bz_kafka_cluster_info *info, int id)
{
    for (size_t i = 0; i < info->count; i++)
        if (info->brokers[i].id == id)
            return &info->brokers[i];
    return NULL;
}

/* Count, for every partition of md, its leader and replicas against the
 * brokers already in info, and the partitions that are short of replicas. */
static void count_partitions(const struct rd_kafka_metadata *md, bz_kafka_cluster_info *info)
{
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *topic = &md->topics[t];
        for (int p = 0; p < topic->partition_cnt; p++) {
            const struct rd_kafka_metadata_partition *part = &topic->partitions[p];
            info->partitions++;
            bz_kafka_broker_info *leader = broker_with_id(info, part->leader);
            if (part->leader < 0)
                info->leaderless++;
            else if (leader)
                leader->leads++;
            if (part->isr_cnt < part->replica_cnt)
                info->under_replicated++;
            for (int r = 0; r < part->replica_cnt; r++) {
                bz_kafka_broker_info *holder = broker_with_id(info, part->replicas[r]);
                if (holder)
                    holder->replicas++;
            }
        }
    }
}

static bz_status copy_brokers(const struct rd_kafka_metadata *md, bz_kafka_cluster_info *out,
                              bz_error *err)
{
    if (md->broker_cnt <= 0)
        return BZ_OK;
    out->brokers = calloc((size_t)md->broker_cnt, sizeof *out->brokers);
    if (!out->brokers)
        return bz_fail(err, BZ_ERR_NOMEM, "describe cluster: out of memory for %d brokers",
                       md->broker_cnt);
    for (int i = 0; i < md->broker_cnt; i++) {
        bz_kafka_broker_info *b = &out->brokers[out->count];
        if (!(b->host = strdup(md->brokers[i].host))) {
            bz_kafka_cluster_info_free(out);
            return bz_fail(err, BZ_ERR_NOMEM, "describe cluster: out of memory");
        }
        b->id = md->brokers[i].id;
        b->port = md->brokers[i].port;
        out->count++;
    }
    qsort(out->brokers, out->count, sizeof *out->brokers, compare_broker_info);
    return BZ_OK;
}

static bz_status use_cluster_info(const struct rd_kafka_metadata *md, void *out, bz_error *err)
{
    bz_status st = copy_brokers(md, out, err);
    if (st == BZ_OK)
        count_partitions(md, out);
    return st;
}

bz_status bz_kafka_cluster_describe(const char *brokers, int timeout_ms,
                                    bz_kafka_cluster_info *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    return with_metadata(brokers, timeout_ms, use_cluster_info, out, err);
}

void bz_kafka_cluster_info_free(bz_kafka_cluster_info *info)
{
    if (!info)
        return;
    for (size_t i = 0; i < info->count; i++)
        free(info->brokers[i].host);
    free(info->brokers);
    memset(info, 0, sizeof *info);
}
