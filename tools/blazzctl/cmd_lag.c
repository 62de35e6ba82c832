/*
 * cmd_lag.c - `blazzctl lag [--group G]`: how far each consumer group is
 * behind, per partition.
 *
 * Our exactly-once consumers keep their real position in PostgreSQL
 * (kafka_offsets.next_offset, written in the same transaction as their
 * effects) and commit to Kafka only for monitoring, so the Kafka figure can
 * trail the truth. With a DSN the PostgreSQL offset is the committed offset
 * and the Kafka one is shown beside it; without, the Kafka committed offset
 * is all there is. Groups are the union of what Kafka lists and what
 * kafka_offsets holds (ingest's transactional group lives only in Kafka).
 * Lag = high watermark - committed; with nothing committed, the consumer
 * would start at the earliest record, so lag = high - low.
 *
 * The high watermark counts the transaction marker that ends a partition
 * written in transactions (chat.sync, by ingest): a consumer that applied
 * every record stores the offset after the last data record, one short of
 * it. --data-end finds that offset (data_end: the last committed data
 * record + 1, read from the partition's tail as a read_committed consumer,
 * dlq_reader.h), which is what "read to the end" means for a restore's
 * fence (scripts/lib/pg_backup.sh).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "blazzctl.h"
#include "core/log.h"
#include "dlq_reader.h"
#include "kafka/producer.h"

#define LAG_MAX_ROWS 4096
/* Records read back from a partition's end to find its last data record;
 * markers and aborted records are rarely more than a few in a row. */
#define DATA_END_TAIL 256

static const char lag_help[] =
    "usage: blazzctl lag [--group G] [--brokers B] [--dsn DSN] [--no-pg] [--timeout MS]\n"
    "                    [--data-end] [--json]\n"
    "\n"
    "Per consumer group and partition: the committed offset, the high watermark and\n"
    "the lag. The committed offset is PostgreSQL's kafka_offsets.next_offset (the\n"
    "exactly-once consumers' truth) when a DSN is available and the group has a row\n"
    "for the partition, else the offset committed to Kafka (kept for monitoring).\n"
    "Without --group, every group Kafka lists or kafka_offsets holds.\n"
    "\n"
    "  --group G      only this group\n"
    "  --brokers B    bootstrap brokers (default $BLAZZ_KAFKA_BROKERS)\n"
    "  --dsn DSN      PostgreSQL (default $BLAZZ_PG_DSN; without one, Kafka only)\n"
    "  --no-pg        ignore PostgreSQL even when a DSN is set\n"
    "  --timeout MS   give up on the broker after MS milliseconds (default 10000)\n"
    "  --data-end     also each partition's data end: the offset after its last committed\n"
    "                 data record (the high watermark counts a final transaction marker)\n"
    "  --json         print the outcome as JSON\n"
    "  --help         this text\n";

typedef struct lag_options {
    const char *group, *brokers, *dsn;
    int timeout_ms;
    int json, no_pg, data_end;
} lag_options;

/* One (topic, partition) of a group with what each side knows. */
typedef struct lag_row {
    char *topic;
    int32_t partition;
    int64_t pg_next;      /* -1: no row */
    int64_t kafka_commit; /* -1: none */
    int64_t low, high;
    int64_t data_end; /* -1: not asked */
} lag_row;

typedef struct lag_group {
    char *name;
    lag_row rows[LAG_MAX_ROWS];
    size_t nrows;
} lag_group;

typedef struct lag_ctx {
    const lag_options *o;
    rd_kafka_t *rk;
    PGconn *pg;
} lag_ctx;

static int lag_option(void *opts, int option, char *value)
{
    lag_options *o = opts;
    switch (option) {
    case 'g': o->group = value; break;
    case 'b': o->brokers = value; break;
    case 'd': o->dsn = value; break;
    case 'n': o->no_pg = 1; break;
    case 't': return bz_ctl_option_int("lag", value, 1, 3600000, "timeout", &o->timeout_ms);
    case 'j': o->json = 1; break;
    case 'e': o->data_end = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_lag_options(int argc, char **argv, lag_options *o)
{
    static const struct option longopts[] = {
        {"group", required_argument, NULL, 'g'}, {"brokers", required_argument, NULL, 'b'},
        {"dsn", required_argument, NULL, 'd'},   {"no-pg", no_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"data-end", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"lag", lag_help, longopts, lag_option, 0};
    o->timeout_ms = 10000;
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind < argc) {
        bz_ctl_usage_error("lag", "unexpected argument '%s'", argv[optind]);
        return 1;
    }
    if (o->no_pg)
        o->dsn = NULL;
    else if (bz_ctl_dsn_setting("lag", o->dsn, &o->dsn))
        return 1;
    return bz_ctl_require_brokers("lag", o->brokers, &o->brokers);
}

/* ---- Kafka ----------------------------------------------------------------- */

static bz_status open_kafka(lag_ctx *c, bz_error *err)
{
    bz_kafka_settings settings = {.brokers = c->o->brokers, .client_id = "blazzctl-lag"};
    rd_kafka_conf_t *conf;
    bz_status st = bz_kafka_conf_new(&settings, NULL, &conf, err);
    if (st != BZ_OK)
        return st;
    char errstr[256];
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        return bz_fail(err, BZ_ERR_CONFIG, "Kafka client for %s: %s", c->o->brokers, errstr);
    }
    return BZ_OK;
}

/* Run one admin request on a private queue and return its result event
 * (caller destroys), or NULL with err filled. */
static rd_kafka_event_t *admin_wait(lag_ctx *c, rd_kafka_queue_t *q, const char *what,
                                    bz_error *err)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, c->o->timeout_ms + 1000);
    if (!ev) {
        bz_fail(err, BZ_ERR_TRANSIENT, "%s on %s: no answer within %d ms", what, c->o->brokers,
                c->o->timeout_ms);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        bz_fail(err, BZ_ERR_TRANSIENT, "%s on %s: %s", what, c->o->brokers,
                rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static rd_kafka_AdminOptions_t *admin_options(lag_ctx *c, rd_kafka_admin_op_t op)
{
    char errstr[256];
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(c->rk, op);
    rd_kafka_AdminOptions_set_request_timeout(opts, c->o->timeout_ms, errstr, sizeof errstr);
    return opts;
}

static int has_name(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static bz_status add_name(char ***names, size_t *n, const char *name, bz_error *err)
{
    if (has_name(*names, *n, name))
        return BZ_OK;
    char **grown = realloc(*names, (*n + 1) * sizeof *grown);
    char *copy = strdup(name);
    if (!grown || !copy) {
        free(copy);
        if (grown)
            *names = grown;
        return bz_fail(err, BZ_ERR_NOMEM, "list groups: out of memory");
    }
    *names = grown;
    (*names)[(*n)++] = copy;
    return BZ_OK;
}

static bz_status kafka_groups(lag_ctx *c, char ***names, size_t *n, bz_error *err)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = admin_options(c, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_ListConsumerGroups(c->rk, opts, q);
    rd_kafka_event_t *ev = admin_wait(c, q, "list consumer groups", err);
    bz_status st = ev ? BZ_OK : err->code;
    if (ev) {
        size_t cnt = 0;
        const rd_kafka_ConsumerGroupListing_t **valid = rd_kafka_ListConsumerGroups_result_valid(
            rd_kafka_event_ListConsumerGroups_result(ev), &cnt);
        for (size_t i = 0; st == BZ_OK && i < cnt; i++)
            st = add_name(names, n, rd_kafka_ConsumerGroupListing_group_id(valid[i]), err);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return st;
}

static lag_row *find_or_add_row(lag_group *g, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < g->nrows; i++)
        if (g->rows[i].partition == partition && strcmp(g->rows[i].topic, topic) == 0)
            return &g->rows[i];
    if (g->nrows == LAG_MAX_ROWS)
        return NULL;
    char *copy = strdup(topic);
    if (!copy)
        return NULL;
    lag_row *r = &g->rows[g->nrows++];
    *r = (lag_row){copy, partition, -1, -1, 0, 0, -1};
    return r;
}

static bz_status kafka_committed(lag_ctx *c, lag_group *g, bz_error *err)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_AdminOptions_t *opts = admin_options(c, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(g->name, NULL);
    rd_kafka_ListConsumerGroupOffsets(c->rk, &req, 1, opts, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_event_t *ev = admin_wait(c, q, "list committed offsets", err);
    bz_status st = ev ? BZ_OK : err->code;
    if (ev) {
        size_t cnt = 0;
        const rd_kafka_group_result_t **groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
            rd_kafka_event_ListConsumerGroupOffsets_result(ev), &cnt);
        for (size_t i = 0; st == BZ_OK && i < cnt; i++) {
            const rd_kafka_topic_partition_list_t *parts =
                rd_kafka_group_result_partitions(groups[i]);
            for (int k = 0; parts && st == BZ_OK && k < parts->cnt; k++) {
                lag_row *r = find_or_add_row(g, parts->elems[k].topic, parts->elems[k].partition);
                if (!r)
                    st = bz_fail(err, BZ_ERR_NOMEM, "group %s: too many partitions", g->name);
                else
                    r->kafka_commit = parts->elems[k].offset;
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return st;
}

static bz_status read_watermarks(lag_ctx *c, lag_group *g, bz_error *err)
{
    for (size_t i = 0; i < g->nrows; i++) {
        lag_row *r = &g->rows[i];
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c->rk, r->topic, r->partition,
                                                                 &r->low, &r->high,
                                                                 c->o->timeout_ms);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            return bz_fail(err, BZ_ERR_TRANSIENT, "watermarks of %s[%d]: %s", r->topic,
                           (int)r->partition, rd_kafka_err2str(e));
    }
    return BZ_OK;
}

/* The last data record seen per partition of one topic. */
typedef struct tail_seen {
    int32_t partition;
    int64_t last;
} tail_seen;

typedef struct tail_read {
    tail_seen seen[LAG_MAX_ROWS];
    size_t n;
} tail_read;

static int note_tail_record(void *ctx, const rd_kafka_message_t *m,
                            const Blazz__V1__DeadLetter *dl)
{
    (void)dl;
    tail_read *t = ctx;
    size_t i = 0;
    while (i < t->n && t->seen[i].partition != m->partition)
        i++;
    if (i == t->n) {
        if (t->n == LAG_MAX_ROWS)
            return 0;
        t->seen[t->n++] = (tail_seen){m->partition, -1};
    }
    if (m->offset > t->seen[i].last)
        t->seen[i].last = m->offset;
    return 0;
}

/* The data end of g's rows of one topic: its partitions' tails read as a
 * read_committed consumer; a partition whose tail held no data record is
 * read again from its start. */
static bz_status topic_data_ends(lag_ctx *c, lag_group *g, const char *topic, bz_error *err)
{
    int64_t tail = DATA_END_TAIL;
    for (int pass = 0; pass < 2; pass++) {
        tail_read *t = calloc(1, sizeof *t);
        if (!t)
            return bz_fail(err, BZ_ERR_NOMEM, "data end of %s: out of memory", topic);
        bz_ctl_dlq_window w = {.since_ms = -1, .until_ms = -1, .tail = tail};
        bz_ctl_dlq_reader_fns fns = {.on_record = note_tail_record};
        bz_status st = bz_ctl_dlq_read(c->o->brokers, topic, &w, &fns, t, err);
        int64_t longest = 0;
        for (size_t i = 0; st == BZ_OK && i < g->nrows; i++) {
            lag_row *r = &g->rows[i];
            if (strcmp(r->topic, topic) != 0)
                continue;
            r->data_end = r->high > r->low && r->high - r->low > tail ? -1 : r->low;
            for (size_t k = 0; k < t->n; k++)
                if (t->seen[k].partition == r->partition)
                    r->data_end = t->seen[k].last + 1;
            if (r->data_end < 0 && r->high - r->low > longest)
                longest = r->high - r->low;
        }
        free(t);
        if (st != BZ_OK || longest == 0)
            return st;
        tail = longest;
    }
    return BZ_OK;
}

static bz_status read_data_ends(lag_ctx *c, lag_group *g, bz_error *err)
{
    bz_status st = BZ_OK;
    for (size_t i = 0; st == BZ_OK && i < g->nrows; i++)
        if (g->rows[i].data_end < 0)
            st = topic_data_ends(c, g, g->rows[i].topic, err);
    return st;
}

/* ---- PostgreSQL ------------------------------------------------------------ */

static bz_status open_pg(lag_ctx *c, bz_error *err)
{
    if (!c->o->dsn)
        return BZ_OK;
    c->pg = PQconnectdb(c->o->dsn);
    if (PQstatus(c->pg) != CONNECTION_OK)
        return bz_fail(err, BZ_ERR_TRANSIENT, "connect to PostgreSQL: %s",
                       PQerrorMessage(c->pg));
    return BZ_OK;
}

static PGresult *pg_query(lag_ctx *c, const char *sql, const char *param, bz_error *err)
{
    const char *params[1] = {param};
    PGresult *res = PQexecParams(c->pg, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bz_fail(err, BZ_ERR_TRANSIENT, "read kafka_offsets: %s", PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
    return res;
}

static bz_status pg_groups(lag_ctx *c, char ***names, size_t *n, bz_error *err)
{
    if (!c->pg)
        return BZ_OK;
    PGresult *res = pg_query(c, "SELECT DISTINCT group_id FROM kafka_offsets ORDER BY 1", NULL,
                             err);
    if (!res)
        return err->code;
    bz_status st = BZ_OK;
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++)
        st = add_name(names, n, PQgetvalue(res, i, 0), err);
    PQclear(res);
    return st;
}

static bz_status pg_offsets(lag_ctx *c, lag_group *g, bz_error *err)
{
    if (!c->pg)
        return BZ_OK;
    PGresult *res = pg_query(c,
                             "SELECT topic, partition, next_offset FROM kafka_offsets "
                             "WHERE group_id = $1",
                             g->name, err);
    if (!res)
        return err->code;
    bz_status st = BZ_OK;
    for (int i = 0; st == BZ_OK && i < PQntuples(res); i++) {
        lag_row *r = find_or_add_row(g, PQgetvalue(res, i, 0),
                                     (int32_t)strtol(PQgetvalue(res, i, 1), NULL, 10));
        if (!r)
            st = bz_fail(err, BZ_ERR_NOMEM, "group %s: too many partitions", g->name);
        else
            r->pg_next = strtoll(PQgetvalue(res, i, 2), NULL, 10);
    }
    PQclear(res);
    return st;
}

/* ---- report ---------------------------------------------------------------- */

static int64_t committed_of(const lag_row *r, const char **source)
{
    if (r->pg_next >= 0) {
        *source = "postgresql";
        return r->pg_next;
    }
    if (r->kafka_commit >= 0) {
        *source = "kafka";
        return r->kafka_commit;
    }
    *source = "none";
    return -1;
}

static int64_t lag_of(const lag_row *r)
{
    const char *source;
    int64_t committed = committed_of(r, &source);
    int64_t from = committed >= 0 ? committed : r->low;
    return r->high > from ? r->high - from : 0;
}

static int by_topic_partition(const void *a, const void *b)
{
    const lag_row *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static json_t *offset_json(int64_t v)
{
    return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static json_t *group_json(const lag_group *g)
{
    json_t *parts = json_array();
    int64_t total = 0;
    for (size_t i = 0; parts && i < g->nrows; i++) {
        const lag_row *r = &g->rows[i];
        const char *source;
        int64_t committed = committed_of(r, &source);
        total += lag_of(r);
        json_array_append_new(
            parts, json_pack("{s:s, s:i, s:o, s:s, s:o, s:o, s:I, s:I, s:I}", "topic", r->topic,
                             "partition", (int)r->partition, "committed", offset_json(committed),
                             "source", source, "pg_next_offset", offset_json(r->pg_next),
                             "kafka_committed", offset_json(r->kafka_commit), "low",
                             (json_int_t)r->low, "high", (json_int_t)r->high, "lag",
                             (json_int_t)lag_of(r)));
        if (r->data_end >= 0)
            json_object_set_new(json_array_get(parts, json_array_size(parts) - 1), "data_end",
                                json_integer((json_int_t)r->data_end));
    }
    return json_pack("{s:s, s:I, s:o}", "group", g->name, "total_lag", (json_int_t)total,
                     "partitions", parts);
}

static void print_offset(int64_t v)
{
    if (v >= 0)
        printf(" %12" PRId64, v);
    else
        printf(" %12s", "-");
}

static void print_group_human(const lag_group *g)
{
    int64_t total = 0;
    printf("group %s\n", g->name);
    printf("  %-36s %4s %12s %-10s %12s %12s %10s\n", "TOPIC", "PART", "COMMITTED", "SOURCE",
           "KAFKA", "HIGH", "LAG");
    for (size_t i = 0; i < g->nrows; i++) {
        const lag_row *r = &g->rows[i];
        const char *source;
        int64_t committed = committed_of(r, &source);
        printf("  %-36s %4d", r->topic, (int)r->partition);
        print_offset(committed);
        printf(" %-10s", source);
        print_offset(r->kafka_commit);
        printf(" %12" PRId64 " %10" PRId64 "\n", r->high, lag_of(r));
        total += lag_of(r);
    }
    printf("  total lag %" PRId64 "\n\n", total);
}

static bz_status load_group(lag_ctx *c, lag_group *g, bz_error *err)
{
    bz_status st = pg_offsets(c, g, err);
    if (st == BZ_OK)
        st = kafka_committed(c, g, err);
    if (st == BZ_OK)
        st = read_watermarks(c, g, err);
    if (st == BZ_OK && c->o->data_end)
        st = read_data_ends(c, g, err);
    if (st == BZ_OK)
        qsort(g->rows, g->nrows, sizeof g->rows[0], by_topic_partition);
    return st;
}

static void free_group(lag_group *g)
{
    for (size_t i = 0; i < g->nrows; i++)
        free(g->rows[i].topic);
    g->nrows = 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bz_status list_groups(lag_ctx *c, char ***names, size_t *n, bz_error *err)
{
    if (c->o->group)
        return add_name(names, n, c->o->group, err);
    bz_status st = kafka_groups(c, names, n, err);
    if (st == BZ_OK)
        st = pg_groups(c, names, n, err);
    if (st == BZ_OK && *n > 1)
        qsort(*names, *n, sizeof **names, cmp_names);
    return st;
}

/* Load and print each group in turn; the JSON document collects them. */
static bz_status report_groups(lag_ctx *c, char **names, size_t n, json_t *groups, bz_error *err)
{
    lag_group *g = calloc(1, sizeof *g);
    if (!g)
        return bz_fail(err, BZ_ERR_NOMEM, "lag: out of memory");
    bz_status st = BZ_OK;
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        g->name = names[i];
        st = load_group(c, g, err);
        if (st == BZ_OK && groups)
            json_array_append_new(groups, group_json(g));
        else if (st == BZ_OK)
            print_group_human(g);
        free_group(g);
    }
    free(g);
    return st;
}

int bz_ctl_cmd_lag(int argc, char **argv)
{
    lag_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_lag_options(argc, argv, &o);
    if (rc != 0)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    bz_log_init("blazzctl", BZ_LOG_ERROR);
    lag_ctx c = {.o = &o};
    bz_error err;
    bz_error_clear(&err);
    char **names = NULL;
    size_t n = 0;
    json_t *groups = o.json ? json_array() : NULL;
    bz_status st = open_kafka(&c, &err);
    if (st == BZ_OK)
        st = open_pg(&c, &err);
    if (st == BZ_OK)
        st = list_groups(&c, &names, &n, &err);
    if (st == BZ_OK)
        st = report_groups(&c, names, n, groups, &err);
    if (st != BZ_OK)
        rc = bz_ctl_fail("lag", &err);
    else if (o.json)
        rc = bz_ctl_print_json(json_pack("{s:s, s:b, s:O}", "brokers", o.brokers,
                                         "postgresql", c.pg != NULL, "groups", groups));
    else if (n == 0)
        printf("no consumer groups on %s%s\n", o.brokers, c.pg ? " or in kafka_offsets" : "");
    json_decref(groups);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (c.pg)
        PQfinish(c.pg);
    if (c.rk)
        rd_kafka_destroy(c.rk);
    return rc;
}
