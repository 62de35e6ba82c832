/*
 * cmd_cleanup.c - `blazzctl cleanup run`: ask blazz-cleanup for a manual
 * sweep, or preview one.
 *
 * Without --dry-run the command publishes a blazz.v1.CleanupRequest to
 * <prefix>cleanup.requests (key: workspace id) and waits for the broker's
 * acknowledgement; the service applies it exactly once and records who
 * asked in session_cleanup_logs (cleanup_type manual).
 *
 * With --dry-run nothing is published: the command evaluates the very same
 * rule queries the service runs (libs/wa/session_cleanup.h, one
 * implementation) read-only against PostgreSQL, inside a READ ONLY transaction that is
 * rolled back, and prints what a sweep would remove and why. So a dry run
 * answers at once, works while the service is down, and cannot change a
 * row. Thresholds default to the service's own settings when the same
 * environment is sourced (BLAZZ_CLEANUP_STALE_QR_MINUTES,
 * BLAZZ_CLEANUP_DISCONNECTED_HOURS), else to the documented defaults.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "blazz/v1/cleanup.pb-c.h"
#include "blazzctl.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "wa/session_cleanup.h"
#include "pg/pg.h"

#define MAX_RULES 8

static const char cleanup_help[] =
    "usage: blazzctl cleanup run [--dry-run] [--workspace ID] [--account ID] [--rule R]...\n"
    "                            [--actor NAME] [--user ID] [--reason TEXT]\n"
    "                            [--stale-qr-minutes N] [--disconnected-hours N] [--json]\n"
    "\n"
    "Run a manual session cleanup. Rules R: stale_qr, disconnected, duplicate, session\n"
    "(exactly --account), retention (purge old delivery rows; not previewed). Default:\n"
    "stale_qr, disconnected and duplicate, in every workspace unless --workspace.\n"
    "\n"
    "  --dry-run        print what would be removed and why; changes nothing. Reads\n"
    "                   PostgreSQL with the service's own rule queries.\n"
    "  --actor NAME     who asks (recorded in the cleanup log; default blazzctl)\n"
    "  --user ID        users.id recorded as executed_by\n"
    "  --stale-qr-minutes N, --disconnected-hours N\n"
    "                   thresholds (default $BLAZZ_CLEANUP_STALE_QR_MINUTES or 30,\n"
    "                   $BLAZZ_CLEANUP_DISCONNECTED_HOURS or 24)\n"
    "  --now-ms MS      dry run: evaluate at this time (ms since the epoch; default now)\n"
    "  --dsn DSN        PostgreSQL (default $BLAZZ_PG_DSN; dry run only)\n"
    "  --brokers B      Kafka (default $BLAZZ_KAFKA_BROKERS)\n"
    "  --prefix P       topic prefix (default $BLAZZ_KAFKA_TOPIC_PREFIX)\n"
    "  --json           print the outcome as JSON\n"
    "  --help           this text\n";

typedef struct cleanup_options {
    const char *dsn, *brokers, *prefix, *actor, *reason;
    int64_t workspace_id, account_id, user_id, now_ms;
    int64_t stale_qr_minutes, disconnected_hours;
    Blazz__V1__CleanupRule rules[MAX_RULES];
    size_t nrules;
    int dry_run, json;
    int stale_given, disconnected_given; /* else the service's own thresholds */
} cleanup_options;

static int parse_id(const char *text, const char *what, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v < 0) {
        bz_ctl_usage_error("cleanup", "%s '%s': expected a non-negative integer", what, text);
        return 1;
    }
    *out = v;
    return 0;
}

static int add_rule(cleanup_options *o, const char *name)
{
    static const struct {
        const char *name;
        Blazz__V1__CleanupRule rule;
    } names[] = {
        {"stale_qr", BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_STALE_QR},
        {"disconnected", BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_DISCONNECTED},
        {"duplicate", BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_DUPLICATES},
        {"session", BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_SESSION},
        {"retention", BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_RETENTION},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(names[i].name, name) == 0 && o->nrules < MAX_RULES) {
            o->rules[o->nrules++] = names[i].rule;
            return 0;
        }
    }
    bz_ctl_usage_error("cleanup", "unknown rule '%s'", name);
    return 1;
}

/* A positive integer from the environment, else fallback. */
static int64_t env_int(const char *name, int64_t fallback)
{
    const char *v = getenv(name);
    char *end = NULL;
    long long n = v && *v ? strtoll(v, &end, 10) : 0;
    return n > 0 && end && *end == '\0' ? n : fallback;
}

static int cleanup_option(void *opts, int option, char *value)
{
    cleanup_options *o = opts;
    switch (option) {
    case 'n': o->dry_run = 1; break;
    case 'w': return parse_id(value, "workspace", &o->workspace_id);
    case 'a': return parse_id(value, "account", &o->account_id);
    case 'r': return add_rule(o, value);
    case 'A': o->actor = value; break;
    case 'u': return parse_id(value, "user", &o->user_id);
    case 'R': o->reason = value; break;
    case 'q':
        o->stale_given = 1;
        return parse_id(value, "stale-qr-minutes", &o->stale_qr_minutes);
    case 'D':
        o->disconnected_given = 1;
        return parse_id(value, "disconnected-hours", &o->disconnected_hours);
    case 't': return parse_id(value, "now-ms", &o->now_ms);
    case 'd': o->dsn = value; break;
    case 'b': o->brokers = value; break;
    case 'p': o->prefix = value; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_cleanup_options(int argc, char **argv, cleanup_options *o)
{
    static const struct option longopts[] = {
        {"dry-run", no_argument, NULL, 'n'},       {"workspace", required_argument, NULL, 'w'},
        {"account", required_argument, NULL, 'a'}, {"rule", required_argument, NULL, 'r'},
        {"actor", required_argument, NULL, 'A'},   {"user", required_argument, NULL, 'u'},
        {"reason", required_argument, NULL, 'R'},  {"stale-qr-minutes", required_argument, NULL, 'q'},
        {"disconnected-hours", required_argument, NULL, 'D'},
        {"now-ms", required_argument, NULL, 't'},  {"dsn", required_argument, NULL, 'd'},
        {"brokers", required_argument, NULL, 'b'}, {"prefix", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    o->stale_qr_minutes = env_int("BLAZZ_CLEANUP_STALE_QR_MINUTES", BZ_CLEANUP_DEFAULT_STALE_QR_MINUTES);
    o->disconnected_hours =
        env_int("BLAZZ_CLEANUP_DISCONNECTED_HOURS", BZ_CLEANUP_DEFAULT_DISCONNECTED_HOURS);
    static const bz_ctl_command_line cl = {"cleanup", cleanup_help, longopts, cleanup_option, 0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind + 1 != argc || strcmp(argv[optind], "run") != 0) {
        bz_ctl_usage_error("cleanup", "say 'run'");
        return 1;
    }
    if (bz_ctl_dsn_setting("cleanup", o->dsn, &o->dsn))
        return 1;
    o->brokers = bz_ctl_setting(o->brokers, "BLAZZ_KAFKA_BROKERS", NULL);
    o->prefix = bz_ctl_setting(o->prefix, "BLAZZ_KAFKA_TOPIC_PREFIX", "");
    o->actor = o->actor ? o->actor : "blazzctl";
    return 0;
}

/* ---- dry run ---------------------------------------------------------------------- */

typedef struct report {
    json_t *rows;
    size_t count[BZ_CLEANUP_RULE_COUNT];
    int json;
} report;

static void report_candidate(void *arg, bz_cleanup_rule rule, const bz_cleanup_candidate *c)
{
    report *r = arg;
    r->count[rule]++;
    if (!r->json) {
        printf("%-10" PRId64 " %-10" PRId64 " %-28s %-13s %-16s %s\n", c->id, c->workspace_id,
               c->session_id ? c->session_id : "", c->status ? c->status : "",
               bz_cleanup_rule_reason(rule), c->details ? c->details : "");
        return;
    }
    json_t *row = json_pack("{s:I, s:s, s:I, s:s?, s:s?, s:s?, s:s, s:s?}", "whatsapp_account_id",
                            (json_int_t)c->id, "uuid", c->uuid ? c->uuid : "", "workspace_id",
                            (json_int_t)c->workspace_id, "session_id", c->session_id,
                            "phone_number", c->phone_number, "status", c->status, "reason",
                            bz_cleanup_rule_reason(rule), "details", c->details);
    if (row && c->keeper_id)
        json_object_set_new(row, "keeper_id", json_integer(c->keeper_id));
    if (row && c->instance_index >= 0)
        json_object_set_new(row, "assigned_instance_index", json_integer(c->instance_index));
    json_array_append_new(r->rows, row);
}

static size_t preview_rules(const cleanup_options *o, bz_cleanup_rule *out)
{
    size_t n = 0;
    for (size_t i = 0; i < o->nrules; i++) {
        switch (o->rules[i]) {
        case BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_STALE_QR: out[n++] = BZ_CLEANUP_RULE_STALE_QR; break;
        case BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_DISCONNECTED: out[n++] = BZ_CLEANUP_RULE_DISCONNECTED; break;
        case BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_DUPLICATES: out[n++] = BZ_CLEANUP_RULE_DUPLICATE; break;
        case BLAZZ__V1__CLEANUP_RULE__CLEANUP_RULE_SESSION: out[n++] = BZ_CLEANUP_RULE_SESSION; break;
        default: break;
        }
    }
    if (o->nrules == 0) {
        out[n++] = BZ_CLEANUP_RULE_STALE_QR;
        out[n++] = BZ_CLEANUP_RULE_DISCONNECTED;
        out[n++] = BZ_CLEANUP_RULE_DUPLICATE;
    }
    return n;
}

static int run_dry(const cleanup_options *o)
{
    if (!o->dsn) {
        bz_ctl_usage_error("cleanup", "no database: set BLAZZ_PG_DSN or pass --dsn");
        return 1;
    }
    PGconn *conn = bz_ctl_connect_pg("cleanup", o->dsn);
    if (!conn)
        return 1;
    bz_cleanup_rule rules[BZ_CLEANUP_RULE_COUNT + MAX_RULES];
    size_t nrules = preview_rules(o, rules);
    int64_t thresholds[BZ_CLEANUP_RULE_COUNT] = {
        [BZ_CLEANUP_RULE_STALE_QR] = o->stale_qr_minutes * 60,
        [BZ_CLEANUP_RULE_DISCONNECTED] = o->disconnected_hours * 3600};
    int64_t now_ms = o->now_ms ? o->now_ms : bz_wall_ms();
    report r = {.rows = json_array(), .json = o->json};
    if (!o->json)
        printf("%-10s %-10s %-28s %-13s %-16s %s\n", "ACCOUNT", "WORKSPACE", "SESSION", "STATUS",
               "REASON", "WHY");
    bz_error err;
    bz_status st = bz_pg_exec(conn, "BEGIN TRANSACTION READ ONLY", &err);
    if (st == BZ_OK)
        st = bz_cleanup_preview(conn, rules, nrules, thresholds, now_ms, o->workspace_id,
                        o->account_id, 1000, report_candidate, &r, &err);
    bz_pg_rollback(conn);
    PQfinish(conn);
    if (st != BZ_OK) {
        json_decref(r.rows);
        return bz_ctl_fail("cleanup", &err);
    }
    size_t total = 0;
    for (int i = 0; i < BZ_CLEANUP_RULE_COUNT; i++)
        total += r.count[i];
    if (!o->json) {
        json_decref(r.rows);
        printf("dry run: %zu sessions would be removed (stale_qr %zu, disconnected_24h %zu, "
               "duplicate %zu, manual_request %zu); nothing was changed\n",
               total, r.count[0], r.count[1], r.count[2], r.count[3]);
        return 0;
    }
    return bz_ctl_print_json(json_pack("{s:b, s:I, s:I, s:o}", "dry_run", 1, "now_ms",
                                       (json_int_t)now_ms, "total", (json_int_t)total,
                                       "candidates", r.rows));
}

/* ---- request ---------------------------------------------------------------------- */

static int send_request(const cleanup_options *o)
{
    if (!o->brokers) {
        bz_ctl_usage_error("cleanup", "no broker: set BLAZZ_KAFKA_BROKERS or pass --brokers");
        return 1;
    }
    bz_error err;
    char event_id[BZ_UUID_STR_SIZE], topic[BZ_TOPIC_NAME_MAX], key[24];
    if (bz_uuid_v4(event_id, &err) != BZ_OK ||
        bz_topic_name_checked(o->prefix, bz_topic_base(BZ_TOPIC_CLEANUP_REQUESTS), topic,
                              sizeof topic, &err) != BZ_OK)
        return bz_ctl_fail("cleanup", &err);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = env.produced_at_ms = bz_wall_ms();
    env.source = "blazzctl";
    env.workspace_id = o->workspace_id;
    env.whatsapp_account_id = o->account_id;
    env.trace_id = event_id;
    Blazz__V1__CleanupRequest req = BLAZZ__V1__CLEANUP_REQUEST__INIT;
    req.envelope = &env;
    req.requested_by = (char *)o->actor;
    req.requested_by_user_id = o->user_id;
    req.workspace_id = o->workspace_id;
    req.whatsapp_account_id = o->account_id;
    req.n_rules = o->nrules;
    req.rules = (Blazz__V1__CleanupRule *)o->rules;
    req.stale_qr_after_s = o->stale_given ? o->stale_qr_minutes * 60 : 0;
    req.disconnected_after_s = o->disconnected_given ? o->disconnected_hours * 3600 : 0;
    req.reason = (char *)(o->reason ? o->reason : "");
    size_t len = blazz__v1__cleanup_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fprintf(stderr, "blazzctl cleanup: out of memory\n");
        return 1;
    }
    blazz__v1__cleanup_request__pack(&req, buf);
    snprintf(key, sizeof key, "%" PRId64, o->workspace_id);
    bz_kafka_settings settings = {.brokers = o->brokers, .client_id = "blazzctl"};
    bz_producer *p = NULL;
    bz_kafka_header hdr[] = {{"event_id", event_id, strlen(event_id)},
                             {"trace_id", event_id, strlen(event_id)}};
    bz_status st = bz_producer_new(&settings, &p, &err);
    if (st == BZ_OK)
        st = bz_producer_send_sync(p, topic, key, strlen(key), buf, len, hdr, 2, 15000, &err);
    bz_producer_free(p, 1000);
    free(buf);
    if (st != BZ_OK)
        return bz_ctl_fail("cleanup", &err);
    if (o->json)
        return bz_ctl_print_json(json_pack("{s:s, s:s, s:I, s:I, s:s}", "event_id", event_id,
                                           "topic", topic, "workspace_id",
                                           (json_int_t)o->workspace_id, "whatsapp_account_id",
                                           (json_int_t)o->account_id, "requested_by", o->actor));
    printf("cleanup request %s published to %s; blazz-cleanup applies it (see "
           "session_cleanup_logs, cleanup_type manual)\n",
           event_id, topic);
    return 0;
}

int bz_ctl_cmd_cleanup(int argc, char **argv)
{
    cleanup_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_cleanup_options(argc, argv, &o);
    if (rc)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    return o.dry_run ? run_dry(&o) : send_request(&o);
}
