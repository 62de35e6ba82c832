/*
 * cmd_topics.c - `blazzctl topics list|ensure`: the Kafka topic catalogue.
 *
 * `ensure` creates every topic of libs/kafka/topics.h that the cluster lacks
 * (through the Admin API, never by auto-creation), plus the topic of each
 * gateway named with --gateway (ARCHITECTURE.md §9.1), and waits until they
 * all have leaders; `list` shows what the cluster has; `brokers` shows the
 * live brokers with the partitions each leads and holds, and how many
 * partitions are under-replicated or leaderless (after a broker loss). The
 * local stack uses `list` as its "is the broker up" probe, hence the
 * --timeout option, and `brokers` to find the broker that leads the most
 * partitions.
 */
#include <stdio.h>
#include <string.h>

#include "blazzctl.h"
#include "kafka/admin.h"

static const char topics_help[] =
    "usage: blazzctl topics list   [--brokers B] [--timeout MS] [--json]\n"
    "       blazzctl topics ensure [--brokers B] [--prefix P] [--partitions N]\n"
    "                              [--replication N] [--gateway ID]... [--timeout MS] [--json]\n"
    "       blazzctl topics brokers [--brokers B] [--timeout MS] [--json]\n"
    "\n"
    "list:    the cluster's topics (internal ones excluded) with partition counts.\n"
    "ensure:  create the missing topics of the catalogue, prefixed with P, and the\n"
    "         topic each gateway ID produces to (wa.inbound.gw.ID), with\n"
    "         min.insync.replicas 2 from 3 replicas up (else 1); existing topics\n"
    "         are left as they are.\n"
    "brokers: the live brokers, busiest leader first: partitions each leads and\n"
    "         holds (every topic, internal ones included), then how many\n"
    "         partitions are under-replicated or have no leader.\n"
    "\n"
    "  --brokers B       bootstrap brokers (default $BLAZZ_KAFKA_BROKERS)\n"
    "  --prefix P        topic name prefix (default $BLAZZ_TOPIC_PREFIX or none)\n"
    "  --partitions N    partitions of new topics (default $BLAZZ_TOPIC_PARTITIONS or 6)\n"
    "  --replication N   replicas of new topics (default $BLAZZ_TOPIC_REPLICATION or 1)\n"
    "  --timeout MS      give up on the broker after MS milliseconds (default 10000)\n"
    "  --json            print the outcome as JSON\n"
    "  --help            this text\n";

#define MAX_GATEWAYS 64

typedef struct topics_options {
    const char *action;
    const char *gateways[MAX_GATEWAYS];
    size_t ngateways;
    const char *brokers;
    const char *prefix;
    int partitions;
    int replication;
    int timeout_ms;
    int json;
} topics_options;

typedef struct raw_topics_options {
    const char *brokers, *prefix, *partitions, *replication, *timeout;
} raw_topics_options;

static int parse_topics_numbers(const raw_topics_options *raw, topics_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    const char *partitions = bz_ctl_setting(raw->partitions, "BLAZZ_TOPIC_PARTITIONS", "6");
    const char *replication = bz_ctl_setting(raw->replication, "BLAZZ_TOPIC_REPLICATION", "1");
    const char *timeout = raw->timeout ? raw->timeout : "10000";
    if (bz_ctl_parse_int(partitions, 1, 10000, "partitions", &o->partitions, &err) != BZ_OK ||
        bz_ctl_parse_int(replication, 1, 100, "replication", &o->replication, &err) != BZ_OK ||
        bz_ctl_parse_int(timeout, 1, 3600000, "timeout", &o->timeout_ms, &err) != BZ_OK) {
        bz_ctl_usage_error("topics", "%s", err.msg);
        return 1;
    }
    return 0;
}

typedef struct topics_reading {
    topics_options *o;
    raw_topics_options raw;
} topics_reading;

static int topics_option(void *opts, int option, char *value)
{
    topics_reading *r = opts;
    switch (option) {
    case 'b': r->raw.brokers = value; break;
    case 'p': r->raw.prefix = value; break;
    case 'n': r->raw.partitions = value; break;
    case 'r': r->raw.replication = value; break;
    case 't': r->raw.timeout = value; break;
    case 'j': r->o->json = 1; break;
    case 'g':
        if (r->o->ngateways == MAX_GATEWAYS) {
            bz_ctl_usage_error("topics", "at most %d --gateway options", MAX_GATEWAYS);
            return 1;
        }
        r->o->gateways[r->o->ngateways++] = value;
        break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_topics_options(int argc, char **argv, topics_options *o)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},  {"prefix", required_argument, NULL, 'p'},
        {"partitions", required_argument, NULL, 'n'}, {"replication", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},  {"json", no_argument, NULL, 'j'},
        {"gateway", required_argument, NULL, 'g'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"topics", topics_help, longopts, topics_option, 0};
    topics_reading r = {.o = o};
    int rc = bz_ctl_read_options(argc, argv, &cl, &r);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    const raw_topics_options raw = r.raw;
    if (optind >= argc) {
        bz_ctl_usage_error("topics", "say 'list', 'ensure' or 'brokers'");
        return 1;
    }
    if (optind + 1 < argc) {
        bz_ctl_usage_error("topics", "unexpected argument '%s'", argv[optind + 1]);
        return 1;
    }
    o->action = argv[optind];
    if (strcmp(o->action, "list") != 0 && strcmp(o->action, "ensure") != 0 &&
        strcmp(o->action, "brokers") != 0) {
        bz_ctl_usage_error("topics", "unknown action '%s' (list, ensure or brokers)", o->action);
        return 1;
    }
    o->prefix = bz_ctl_setting(raw.prefix, "BLAZZ_TOPIC_PREFIX", "");
    if (bz_ctl_require_brokers("topics", raw.brokers, &o->brokers))
        return 1;
    return parse_topics_numbers(&raw, o);
}

static int print_topic_list(const topics_options *o, const bz_kafka_topic_list *list)
{
    if (o->json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < list->count; i++)
            json_array_append_new(arr, json_pack("{s:s, s:i}", "name", list->topics[i].name,
                                                 "partitions", list->topics[i].partitions));
        return bz_ctl_print_json(arr ? json_pack("{s:s, s:o}", "brokers", o->brokers, "topics", arr)
                                     : NULL);
    }
    printf("%-40s %s\n", "TOPIC", "PARTITIONS");
    for (size_t i = 0; i < list->count; i++)
        printf("%-40s %d\n", list->topics[i].name, list->topics[i].partitions);
    printf("(%zu topic(s) on %s)\n", list->count, o->brokers);
    return 0;
}

static int run_list(const topics_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    bz_kafka_topic_list list;
    if (bz_kafka_topics_list(o->brokers, o->timeout_ms, &list, &err) != BZ_OK)
        return bz_ctl_fail("topics list", &err);
    int rc = print_topic_list(o, &list);
    bz_kafka_topic_list_free(&list);
    return rc;
}

static json_t *ensure_entry_json(const bz_kafka_ensure_entry *e)
{
    return json_pack("{s:s, s:i, s:b}", "name", e->name, "partitions", e->partitions, "created",
                     e->created == 1);
}

static void print_ensure_entry(const bz_kafka_ensure_entry *e)
{
    printf("%-8s %-40s %d partition(s)\n", e->created == 1 ? "created" : "exists", e->name,
           e->partitions);
}

/* The catalogue's topics, then the gateways' (gw[0..ngw)). */
static int print_ensure_report(const topics_options *o, const bz_kafka_ensure_report *r,
                               const bz_kafka_ensure_entry *gw, size_t ngw)
{
    size_t created = r->created, existing = r->existing;
    for (size_t i = 0; i < ngw; i++) {
        created += gw[i].created == 1;
        existing += gw[i].created != 1;
    }
    if (o->json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < r->count; i++)
            json_array_append_new(arr, ensure_entry_json(&r->topics[i]));
        for (size_t i = 0; arr && i < ngw; i++)
            json_array_append_new(arr, ensure_entry_json(&gw[i]));
        return bz_ctl_print_json(arr ? json_pack("{s:s, s:I, s:I, s:o}", "brokers", o->brokers,
                                                 "created", (json_int_t)created, "existing",
                                                 (json_int_t)existing, "topics", arr)
                                     : NULL);
    }
    for (size_t i = 0; i < r->count; i++)
        print_ensure_entry(&r->topics[i]);
    for (size_t i = 0; i < ngw; i++)
        print_ensure_entry(&gw[i]);
    printf("topics: %zu created, %zu already existed on %s\n", created, existing, o->brokers);
    return 0;
}

static int run_ensure(const topics_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    bz_kafka_ensure_report report;
    static bz_kafka_ensure_entry gateways[MAX_GATEWAYS * BZ_GATEWAY_TOPIC_COUNT];
    if (bz_kafka_topics_ensure(o->brokers, o->prefix, o->partitions, o->replication,
                               o->timeout_ms, &report, &err) != BZ_OK)
        return bz_ctl_fail("topics ensure", &err);
    if (bz_kafka_gateway_topics_ensure(o->brokers, o->prefix, o->gateways, o->ngateways,
                                       o->partitions, o->replication, o->timeout_ms, gateways,
                                       &err) != BZ_OK)
        return bz_ctl_fail("topics ensure", &err);
    return print_ensure_report(o, &report, gateways, o->ngateways * BZ_GATEWAY_TOPIC_COUNT);
}

/* Busiest leader first; ties by id. */
static int compare_by_leads(const void *a, const void *b)
{
    const bz_kafka_broker_info *x = a, *y = b;
    if (x->leads != y->leads)
        return x->leads < y->leads ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static int print_brokers(const topics_options *o, bz_kafka_cluster_info *info)
{
    qsort(info->brokers, info->count, sizeof *info->brokers, compare_by_leads);
    if (o->json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < info->count; i++) {
            const bz_kafka_broker_info *b = &info->brokers[i];
            json_array_append_new(arr, json_pack("{s:i, s:s, s:i, s:i, s:i}", "id", b->id, "host",
                                                 b->host, "port", b->port, "leads", b->leads,
                                                 "replicas", b->replicas));
        }
        return bz_ctl_print_json(arr ? json_pack("{s:s, s:o, s:i, s:i, s:i}", "bootstrap",
                                                 o->brokers, "brokers", arr, "partitions",
                                                 info->partitions, "under_replicated",
                                                 info->under_replicated, "leaderless",
                                                 info->leaderless)
                                     : NULL);
    }
    printf("%-8s %-24s %8s %9s\n", "BROKER", "ADDRESS", "LEADS", "REPLICAS");
    for (size_t i = 0; i < info->count; i++) {
        const bz_kafka_broker_info *b = &info->brokers[i];
        char address[300];
        snprintf(address, sizeof address, "%s:%d", b->host, b->port);
        printf("%-8d %-24s %8d %9d\n", b->id, address, b->leads, b->replicas);
    }
    printf("(%zu live broker(s); %d partition(s), %d under-replicated, %d without a leader)\n",
           info->count, info->partitions, info->under_replicated, info->leaderless);
    return 0;
}

static int run_brokers(const topics_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    bz_kafka_cluster_info info;
    if (bz_kafka_cluster_describe(o->brokers, o->timeout_ms, &info, &err) != BZ_OK)
        return bz_ctl_fail("topics brokers", &err);
    int rc = print_brokers(o, &info);
    bz_kafka_cluster_info_free(&info);
    return rc;
}

int bz_ctl_cmd_topics(int argc, char **argv)
{
    topics_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_topics_options(argc, argv, &o);
    if (rc != 0)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    if (strcmp(o.action, "brokers") == 0)
        return run_brokers(&o);
    return strcmp(o.action, "list") == 0 ? run_list(&o) : run_ensure(&o);
}
