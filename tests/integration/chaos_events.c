/*
 * chaos_events.c - the topic side of scripts/chaos.sh's checks: prints, as
 * tab-separated lines, what the services published, so the script can load
 * it into PostgreSQL and compare it with the tables.
 *
 *   E  topic  event_id  workspace_id  webhook_type  kind  account_id
 *        one per record of chat.events, session.events and campaign.events;
 *        webhook_type is the event type a webhook endpoint filters on
 *        (message.created, message.status, message.reaction,
 *        message.edited, message.deleted, group.updated, contact.updated,
 *        contact.merged, contact.opted_out, contact.opted_in,
 *        chat.read, sync.progress, session.status, campaign.progress,
 *        campaign.completed), worked out here from the
 *        protobuf on its own rather than with the dispatcher's code, so the
 *        check does not trust what it checks;
 *   D  event_id  endpoint_id
 *        one per dead letter on webhook.dlq (from its headers);
 *   C  event_id  session_id  action
 *        one per wa.session.commands record;
 *   Q  topic  count
 *        the number of records on each other dead-letter topic (the
 *        pipeline under test should put none there);
 *   O  idempotency_key
 *        one per wa.outbound record (a SendMessage), the gateway's own
 *        wa.outbound.gw.sim included;
 *   R  event_id
 *        one per distinct event id read by ingest's Kafka path: on
 *        wa.inbound.raw and the chaos gateway's own inbound topic;
 *   S  event_id
 *        one per distinct event id on chat.sync and wa.inbound.dlq, where
 *        ingest leaves what it read (and what its HTTP path accepted);
 *   T  topic  records  event_ids
 *        for every topic of the catalogue and the chaos gateway's own three
 *        (its instances publish to its inbound topic; the outbox routes its
 *        sessions' sends and commands to the other two): how many records it holds
 *        (read_committed) and how many distinct event_id headers among
 *        them, so the script can match what was produced with what was
 *        consumed topic by topic.
 * A record republished by an outbox relay after a crash appears twice with
 * the same event_id; the script counts distinct ids. Undecodable records
 * are printed as "X topic partition offset" so they cannot hide.
 *
 * Every topic is read from the beginning to the end (partition EOF) with
 * read_committed, by assignment (no consumer group). Meant to run once the
 * pipeline is quiet.
 *
 * chaos_events --backlog instead prints, per consumer group and topic of
 * the kafka_offsets table, "B group topic records": how many committed
 * records wait at or after the group's stored offsets. Unlike a high watermark minus
 * offset, this does not count transaction markers (ingest writes chat.sync
 * in transactions, so every partition ends with one) or aborted records,
 * so a quiet pipeline reads exactly 0.
 *
 * Environment: BLAZZ_KAFKA_BROKERS, BLAZZ_TOPIC_PREFIX (optional),
 * BLAZZ_PG_DSN (--backlog). Exit 0 on success, 1 when a topic or the
 * database cannot be read.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "kafka/producer.h"
#include "kafka/topics.h"

#define READ_TIMEOUT_MS 60000

/* The gateway of chaos.sh's webjs accounts: blazz-gateway-sim's default id. */
#define CHAOS_GATEWAY "sim"

typedef void (*record_fn)(const char *base, const rd_kafka_message_t *m);

/* The event ids of the topic being read (every record, "-" without one):
 * read_to_end fills it for the T line. */
static struct {
    char **ids;
    size_t n, cap;
} tally;

static const char *chat_type(const Blazz__V1__ChatEvent *e)
{
    if (e->kind == BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_UPDATED && e->merge)
        return "contact.merged";
    switch (e->kind) {
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED: return "message.created";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_STATUS_CHANGED: return "message.status";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_SYNC_PROGRESS: return "sync.progress";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CHAT_READ: return "chat.read";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_REACTION: return "message.reaction";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_EDITED: return "message.edited";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_DELETED: return "message.deleted";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_GROUP_UPDATED: return "group.updated";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_UPDATED: return "contact.updated";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_TEMPLATE_UPDATED: return "template.updated";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_OPTED_OUT: return "contact.opted_out";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_OPTED_IN: return "contact.opted_in";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_ACCOUNT_UPDATED: return "account.updated";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MEDIA_READY: return "message.media_ready";
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CALL_UPDATED: return "call.updated";
    default: return "-";
    }
}

static const char *campaign_type(int kind)
{
    switch (kind) {
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_UNSPECIFIED: return "-";
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_COMPLETED:
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_FAILED:
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_CANCELLED: return "campaign.completed";
    default: return "campaign.progress";
    }
}

static void print_undecodable(const char *base, const rd_kafka_message_t *m)
{
    printf("X\t%s\t%" PRId32 "\t%" PRId64 "\n", base, m->partition, m->offset);
}

static void print_event(const char *base, const Blazz__V1__Envelope *env, const char *type,
                        const char *kind)
{
    printf("E\t%s\t%s\t%" PRId64 "\t%s\t%s\t%" PRId64 "\n", base,
           env && env->event_id && *env->event_id ? env->event_id : "-",
           env ? env->workspace_id : 0, type, kind, env ? env->whatsapp_account_id : 0);
}

static void on_chat_event(const char *base, const rd_kafka_message_t *m)
{
    Blazz__V1__ChatEvent *e = blazz__v1__chat_event__unpack(NULL, m->len, m->payload);
    if (!e) {
        print_undecodable(base, m);
        return;
    }
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&blazz__v1__chat_event_kind__descriptor, e->kind);
    print_event(base, e->envelope, chat_type(e), v ? v->name : "?");
    blazz__v1__chat_event__free_unpacked(e, NULL);
}

static void on_session_event(const char *base, const rd_kafka_message_t *m)
{
    Blazz__V1__SessionEvent *e = blazz__v1__session_event__unpack(NULL, m->len, m->payload);
    if (!e) {
        print_undecodable(base, m);
        return;
    }
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&blazz__v1__session_event_kind__descriptor, e->kind);
    const char *type = e->kind == BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_UNSPECIFIED
                           ? "-"
                       : e->kind == BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_QR
                           ? "session.qr"
                           : "session.status";
    print_event(base, e->envelope, type, v ? v->name : "?");
    blazz__v1__session_event__free_unpacked(e, NULL);
}

static void on_campaign_event(const char *base, const rd_kafka_message_t *m)
{
    Blazz__V1__CampaignEvent *e = blazz__v1__campaign_event__unpack(NULL, m->len, m->payload);
    if (!e) {
        print_undecodable(base, m);
        return;
    }
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &blazz__v1__campaign_event_kind__descriptor, e->kind);
    print_event(base, e->envelope, campaign_type(e->kind), v ? v->name : "?");
    blazz__v1__campaign_event__free_unpacked(e, NULL);
}

/* The value of header name as a printable token, or "-". */
static void header_text(const rd_kafka_message_t *m, const char *name, char *out, size_t cap)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *value = NULL;
    size_t size = 0;
    snprintf(out, cap, "-");
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !value || size == 0 || size >= cap)
        return;
    memcpy(out, value, size);
    out[size] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '\t' || *p == '\n' || *p == ' ')
            *p = '_';
}

/* Remember m's event_id for the topic's T line; 0 when out of memory. */
static int tally_record(const rd_kafka_message_t *m)
{
    if (tally.n == tally.cap) {
        size_t cap = tally.cap ? 2 * tally.cap : 4096;
        char **grown = realloc(tally.ids, cap * sizeof *grown);
        if (!grown)
            return 0;
        tally.ids = grown;
        tally.cap = cap;
    }
    char id[64];
    header_text(m, "event_id", id, sizeof id);
    if (!(tally.ids[tally.n] = strdup(id)))
        return 0;
    tally.n++;
    return 1;
}

static int compare_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Print the T line of the topic just read, and, with a line kind ('R',
 * 'S'), one line of that kind per distinct id; then forget its ids. */
static void print_tally(const char *base, char kind)
{
    qsort(tally.ids, tally.n, sizeof *tally.ids, compare_text);
    size_t distinct = 0;
    for (size_t i = 0; i < tally.n; i++) {
        int first = i == 0 || strcmp(tally.ids[i], tally.ids[i - 1]) != 0;
        distinct += first;
        if (kind && first)
            printf("%c\t%s\n", kind, tally.ids[i]);
    }
    printf("T\t%s\t%zu\t%zu\n", base, tally.n, distinct);
    for (size_t i = 0; i < tally.n; i++)
        free(tally.ids[i]);
    tally.n = 0;
}

static void on_outbound(const char *base, const rd_kafka_message_t *m)
{
    Blazz__V1__SendMessage *s = blazz__v1__send_message__unpack(NULL, m->len, m->payload);
    if (!s) {
        print_undecodable(base, m);
        return;
    }
    printf("O\t%s\n", s->idempotency_key && *s->idempotency_key ? s->idempotency_key : "-");
    blazz__v1__send_message__free_unpacked(s, NULL);
}

static void ignore_record(const char *base, const rd_kafka_message_t *m)
{
    (void)base, (void)m;
}

static void on_webhook_dead_letter(const char *base, const rd_kafka_message_t *m)
{
    (void)base;
    char event_id[64], endpoint[32];
    header_text(m, "event_id", event_id, sizeof event_id);
    header_text(m, "webhook-endpoint-id", endpoint, sizeof endpoint);
    printf("D\t%s\t%s\n", event_id, endpoint);
}

static void on_session_command(const char *base, const rd_kafka_message_t *m)
{
    Blazz__V1__SessionCommand *c = blazz__v1__session_command__unpack(NULL, m->len, m->payload);
    if (!c) {
        print_undecodable(base, m);
        return;
    }
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&blazz__v1__session_action__descriptor, c->action);
    const Blazz__V1__Envelope *env = c->envelope;
    printf("C\t%s\t%s\t%s\n", env && env->event_id && *env->event_id ? env->event_id : "-",
           env && env->session_id && *env->session_id ? env->session_id : "-", v ? v->name : "?");
    blazz__v1__session_command__free_unpacked(c, NULL);
}

static rd_kafka_t *new_reader(const char *brokers)
{
    char errstr[512];
    static const char *const defaults[] = {"group.id", "chaos-events-reader",
                                           "enable.auto.commit", "false",
                                           "enable.partition.eof", "true",
                                           "isolation.level", "read_committed", NULL};
    bz_kafka_settings settings = {.brokers = brokers, .client_id = "chaos-events"};
    rd_kafka_conf_t *conf;
    bz_error err;
    if (bz_kafka_conf_new(&settings, defaults, &conf, &err) != BZ_OK) {
        fprintf(stderr, "chaos_events: consumer config: %s\n", err.msg);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "chaos_events: consumer: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static int partition_count(rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && !md->topics[0].err)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Assign list to rk and poll until each of its partitions reported its end
 * (EOF comes again after more records arrive: each partition counts once),
 * passing every record to fn. what names the reading in messages. */
static int read_to_end(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list, const char *what,
                       record_fn fn, const char *base)
{
    int nparts = list->cnt;
    if (rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "chaos_events: %s: cannot assign partitions\n", what);
        return -1;
    }
    char *ended = calloc(nparts > 0 ? (size_t)nparts : 1, 1);
    if (!ended)
        return -1;
    int rc = 0, at_end = 0, idle_ms = 0;
    while (rc == 0 && at_end < nparts) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if ((idle_ms += 200) >= READ_TIMEOUT_MS) {
                fprintf(stderr, "chaos_events: %s: %d of %d partitions read to the end after %d s\n",
                        what, at_end, nparts, READ_TIMEOUT_MS / 1000);
                rc = -1;
            }
            continue;
        }
        idle_ms = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_topic_partition_t *tp =
                rd_kafka_topic_partition_list_find(list, rd_kafka_topic_name(m->rkt), m->partition);
            int i = tp ? (int)(tp - list->elems) : -1;
            if (i >= 0 && !ended[i]) {
                ended[i] = 1;
                at_end++;
            }
        } else if (m->err) {
            fprintf(stderr, "chaos_events: %s: %s\n", what, rd_kafka_message_errstr(m));
        } else if (!tally_record(m)) {
            fprintf(stderr, "chaos_events: %s: out of memory\n", what);
            rc = -1;
        } else {
            fn(base, m);
        }
        rd_kafka_message_destroy(m);
    }
    free(ended);
    return rc;
}

/* Read the topic prefix + base from the beginning of every partition to
 * its end. */
static int read_topic(const char *brokers, const char *prefix, const char *base, record_fn fn)
{
    char topic[BZ_TOPIC_NAME_MAX];
    if (bz_topic_name(prefix, base, topic, sizeof topic) != BZ_OK) {
        fprintf(stderr, "chaos_events: bad topic prefix '%s'\n", prefix);
        return -1;
    }
    rd_kafka_t *rk = new_reader(brokers);
    if (!rk)
        return -1;
    int nparts = partition_count(rk, topic);
    int rc = nparts > 0 ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "chaos_events: no metadata for topic %s\n", topic);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(nparts > 0 ? nparts : 1);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rc == 0)
        rc = read_to_end(rk, list, topic, fn, base);
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

static long backlog_counted;

static void count_backlog(const char *base, const rd_kafka_message_t *m)
{
    (void)base, (void)m;
    backlog_counted++;
}

/* Records waiting for one group on one topic: rows [first, last) of res
 * (group_id, topic, partition, next_offset). */
static int print_group_backlog(const char *brokers, const PGresult *res, int first, int last)
{
    const char *group = PQgetvalue(res, first, 0), *topic = PQgetvalue(res, first, 1);
    rd_kafka_t *rk = new_reader(brokers);
    if (!rk)
        return -1;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(last - first);
    for (int r = first; r < last; r++)
        rd_kafka_topic_partition_list_add(list, PQgetvalue(res, r, 1),
                                          (int32_t)strtol(PQgetvalue(res, r, 2), NULL, 10))
            ->offset = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    backlog_counted = 0;
    int rc = read_to_end(rk, list, group, count_backlog, "");
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (rc == 0)
        printf("B\t%s\t%s\t%ld\n", group, topic, backlog_counted);
    for (size_t i = 0; i < tally.n; i++)
        free(tally.ids[i]);
    tally.n = 0;
    return rc;
}

static int print_backlogs(const char *brokers)
{
    const char *dsn = getenv("BLAZZ_PG_DSN");
    if (!dsn || !*dsn) {
        fprintf(stderr, "chaos_events: BLAZZ_PG_DSN is not set\n");
        return 1;
    }
    PGconn *conn = PQconnectdb(dsn);
    PGresult *res = NULL;
    int rc = 1;
    if (PQstatus(conn) != CONNECTION_OK)
        fprintf(stderr, "chaos_events: connect to PostgreSQL: %s", PQerrorMessage(conn));
    else if (PQresultStatus(res = PQexec(conn, "SELECT group_id, topic, partition, next_offset "
                                               "FROM kafka_offsets ORDER BY 1, 2, 3")) !=
             PGRES_TUPLES_OK)
        fprintf(stderr, "chaos_events: read kafka_offsets: %s", PQerrorMessage(conn));
    else
        rc = 0;
    int n = rc == 0 ? PQntuples(res) : 0;
    for (int first = 0, r = 1; rc == 0 && first < n; r++)
        if (r == n || strcmp(PQgetvalue(res, r, 0), PQgetvalue(res, first, 0)) != 0 ||
            strcmp(PQgetvalue(res, r, 1), PQgetvalue(res, first, 1)) != 0) {
            rc = print_group_backlog(brokers, res, first, r) == 0 ? 0 : 1;
            first = r;
        }
    PQclear(res);
    PQfinish(conn);
    free(tally.ids);
    return rc != 0 || fflush(stdout) != 0;
}

/* What ingest's Kafka path reads (R) and where it leaves it (S). */
static char id_line_kind(bz_topic t)
{
    return t == BZ_TOPIC_WA_INBOUND_RAW                                  ? 'R'
           : t == BZ_TOPIC_CHAT_SYNC || t == BZ_TOPIC_WA_INBOUND_DLQ ? 'S'
                                                                     : 0;
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("BLAZZ_KAFKA_BROKERS");
    const char *prefix = getenv("BLAZZ_TOPIC_PREFIX");
    if (!brokers || !*brokers) {
        fprintf(stderr, "chaos_events: BLAZZ_KAFKA_BROKERS is not set\n");
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "--backlog") == 0)
        return print_backlogs(brokers);
    if (argc != 1) {
        fprintf(stderr, "usage: chaos_events [--backlog]\n");
        return 2;
    }
    record_fn fn[BZ_TOPIC_COUNT];
    for (int t = 0; t < BZ_TOPIC_COUNT; t++)
        fn[t] = ignore_record;
    fn[BZ_TOPIC_CHAT_EVENTS] = on_chat_event;
    fn[BZ_TOPIC_SESSION_EVENTS] = on_session_event;
    fn[BZ_TOPIC_CAMPAIGN_EVENTS] = on_campaign_event;
    fn[BZ_TOPIC_WEBHOOK_DLQ] = on_webhook_dead_letter;
    fn[BZ_TOPIC_WA_SESSION_COMMANDS] = on_session_command;
    fn[BZ_TOPIC_WA_OUTBOUND] = on_outbound;
    static const bz_topic counted[] = {BZ_TOPIC_WA_INBOUND_DLQ, BZ_TOPIC_CHAT_SYNC_DLQ,
                                       BZ_TOPIC_CAMPAIGN_DLQ, BZ_TOPIC_CLEANUP_DLQ};
    /* the gateway's own topics (ARCHITECTURE.md §9.1), read like the
     * shared ones: what its instances publish, and the sends and commands
     * of its sessions */
    static const struct {
        bz_topic from;
        bz_gateway_topic to;
    } routed[] = {{BZ_TOPIC_WA_INBOUND_RAW, BZ_GATEWAY_TOPIC_INBOUND},
                  {BZ_TOPIC_WA_OUTBOUND, BZ_GATEWAY_TOPIC_OUTBOUND},
                  {BZ_TOPIC_WA_SESSION_COMMANDS, BZ_GATEWAY_TOPIC_COMMANDS}};
    if (!prefix)
        prefix = "";
    for (int t = 0; t < BZ_TOPIC_COUNT; t++) {
        if (read_topic(brokers, prefix, bz_topic_base((bz_topic)t), fn[t]) != 0)
            return 1;
        for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++)
            if (counted[i] == (bz_topic)t)
                printf("Q\t%s\t%zu\n", bz_topic_base((bz_topic)t), tally.n);
        print_tally(bz_topic_base((bz_topic)t), id_line_kind((bz_topic)t));
    }
    for (size_t i = 0; i < sizeof routed / sizeof *routed; i++) {
        char base[BZ_TOPIC_NAME_MAX];
        if (bz_topic_gateway_name("", routed[i].to, CHAOS_GATEWAY, base, sizeof base, NULL) !=
                BZ_OK ||
            read_topic(brokers, prefix, base, fn[routed[i].from]) != 0)
            return 1;
        print_tally(base, id_line_kind(routed[i].from));
    }
    free(tally.ids);
    return fflush(stdout) == 0 ? 0 : 1;
}
