/*
 * cmd_campaign.c - `blazzctl campaign start|pause|resume|cancel|status ID`:
 * control campaign-sender and look at a campaign.
 *
 * The four actions do not touch the database: they read the campaign's
 * workspace (a command must name the owning workspace) and publish a
 * CampaignCommand, keyed by campaign id, to <prefix>campaign.commands with
 * the idempotent producer, waiting for the broker's acknowledgement. The
 * sender applies it exactly once; repeating an action is harmless. `status`
 * reads the campaign and the number of its logs in each status from
 * PostgreSQL, and why its sending account is slowed when Meta throttled it
 * lately (meta_throttle: the factor of the account's pace now, by the rule
 * campaign-sender's budget applies, wa/meta_throttle.h, on PostgreSQL's
 * clock), and the logs Meta's per-user marketing limit put off
 * (campaign_logs.retry_at). All SQL is parameterized.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazzctl.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "pg/pg.h"
#include "wa/meta_throttle.h"

static const char campaign_help[] =
    "usage: blazzctl campaign start|pause|resume|cancel ID [--actor NAME] [--reason TEXT]\n"
    "       blazzctl campaign status ID [--json]\n"
    "\n"
    "start:   draft or scheduled -> running now (the audience is expanded once)\n"
    "pause:   running -> paused;  resume: paused -> running, continuing with pending logs\n"
    "cancel:  any unfinished campaign -> cancelled\n"
    "status:  state, counters and logs per status (skipped ones by reason), from\n"
    "         PostgreSQL, and why the sending account is slowed (throttled by\n"
    "         Meta) or the campaign waits: a limit reached, or a rule of the\n"
    "         release holding its next messages (e.g. Meta's messaging limit,\n"
    "         the warm-up of a new whatsapp-web.js number), and the messages\n"
    "         Meta's per-user marketing limit (131049) kept back, sent again later\n"
    "\n"
    "  --actor NAME    recorded with the command (default \"blazzctl\")\n"
    "  --reason TEXT   recorded with the command (e.g. why it was paused)\n"
    "  --dsn DSN       PostgreSQL (default $BLAZZ_PG_DSN)\n"
    "  --brokers B     Kafka (default $BLAZZ_KAFKA_BROKERS)\n"
    "  --prefix P      topic prefix (default $BLAZZ_KAFKA_TOPIC_PREFIX, $BLAZZ_TOPIC_PREFIX or none)\n"
    "  --json          print the outcome as JSON\n"
    "  --help          this text\n";

#define SQL_WORKSPACE "SELECT workspace_id FROM campaigns WHERE id = $1 AND deleted_at IS NULL"
#define SQL_STATUS                                                                               \
    "SELECT c.id, c.uuid::text, c.workspace_id, c.name, c.status, coalesce(c.error_message, ''), " \
    "coalesce(c.pause_reason, ''), c.contacts_count, c.messages_sent, c.messages_delivered, "    \
    "c.messages_read, c.messages_failed, coalesce(c.metadata->'last_command'->>'actor', ''), "   \
    "(SELECT count(*) FROM campaign_logs l WHERE l.campaign_id = c.id AND l.status = 'pending'), " \
    "(SELECT count(*) FROM campaign_logs l WHERE l.campaign_id = c.id AND l.status = 'queued'), "  \
    "c.messages_skipped, coalesce(t.whatsapp_account_id, 0), coalesce(t.factor, 1), "            \
    "coalesce((extract(epoch FROM t.throttled_at) * 1000)::bigint, 0), coalesce(t.last_code, ''), " \
    "(extract(epoch FROM clock_timestamp()) * 1000)::bigint, "                                    \
    "coalesce(c.metadata->'held', 'null')::text, coalesce(c.metadata->'held'->>'reason', ''), "   \
    "coalesce(c.metadata->'held'->>'until', ''), coalesce(c.metadata->'held'->>'held', ''), "      \
    "coalesce(c.metadata->'held'->>'tier', ''), coalesce(c.metadata->'held'->>'warmup', ''), "  \
    "(SELECT coalesce(json_object_agg(r.skip_reason, r.n ORDER BY r.skip_reason), '{}')::text "   \
    "FROM (SELECT skip_reason, count(*) AS n FROM campaign_logs l WHERE l.campaign_id = c.id "    \
    "AND l.status = 'skipped' GROUP BY skip_reason) r), "                                         \
    "(SELECT count(*) FILTER (WHERE l.status = 'pending' AND l.retry_at > now()) FROM "         \
    "campaign_logs l WHERE l.campaign_id = c.id AND l.retry_at IS NOT NULL), "                   \
    "(SELECT count(*) FROM campaign_logs l WHERE l.campaign_id = c.id AND l.retry_at IS NOT NULL), " \
    "coalesce((SELECT min(l.retry_at)::text FROM campaign_logs l WHERE l.campaign_id = c.id "     \
    "AND l.status = 'pending' AND l.retry_at > now()), '') "                                      \
    "FROM campaigns c LEFT JOIN meta_throttle t ON t.whatsapp_account_id = "                     \
    "coalesce((c.metadata->>'sending_account_id')::bigint, c.whatsapp_account_id) WHERE c.id = $1"
/* SQL_STATUS's columns of the sending account's throttle state. */
#define COL_THROTTLED_ACCOUNT 16
#define COL_THROTTLE_FACTOR 17
#define COL_THROTTLED_AT 18
#define COL_THROTTLE_CODE 19
#define COL_NOW 20
/* SQL_STATUS's columns of why its next messages wait (campaign-sender's
 * metadata.held): the object as JSON text, its reason, until, how many,
 * and the details a rule adds. */
#define COL_HELD 21
#define COL_HELD_REASON 22
#define COL_HELD_UNTIL 23
#define COL_HELD_COUNT 24
#define COL_HELD_TIER 25
#define COL_HELD_WARMUP 26
/* SQL_STATUS's column of the skipped logs by skip_reason: a JSON object. */
#define COL_SKIPPED_BY_REASON 27
/* SQL_STATUS's columns of the contacts Meta's per-user marketing limit
 * (131049) kept a message from (ARCHITECTURE.md §12.11): how many wait to
 * be sent again, how many were put back for it in all, the next retry. */
#define COL_LIMIT_WAITING 28
#define COL_LIMIT_RETRIED 29
#define COL_LIMIT_NEXT 30

typedef struct campaign_options {
    const char *action, *id, *actor, *reason, *dsn, *brokers, *prefix;
    int json;
} campaign_options;

static const struct {
    const char *name;
    Blazz__V1__CampaignAction action;
} actions[] = {
    {"start", BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_START},
    {"pause", BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_PAUSE},
    {"resume", BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_RESUME},
    {"cancel", BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_CANCEL},
};

static Blazz__V1__CampaignAction action_named(const char *name)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(actions[i].name, name) == 0)
            return actions[i].action;
    return BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_UNSPECIFIED;
}

static int campaign_option(void *opts, int option, char *value)
{
    campaign_options *o = opts;
    switch (option) {
    case 'a': o->actor = value; break;
    case 'r': o->reason = value; break;
    case 'd': o->dsn = value; break;
    case 'b': o->brokers = value; break;
    case 'p': o->prefix = value; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_campaign_options(int argc, char **argv, campaign_options *o)
{
    static const struct option longopts[] = {
        {"actor", required_argument, NULL, 'a'},   {"reason", required_argument, NULL, 'r'},
        {"dsn", required_argument, NULL, 'd'},     {"brokers", required_argument, NULL, 'b'},
        {"prefix", required_argument, NULL, 'p'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"campaign", campaign_help, longopts, campaign_option,
                                           0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind + 2 != argc) {
        bz_ctl_usage_error("campaign", "expected an action and a campaign id");
        return 1;
    }
    o->action = argv[optind];
    o->id = argv[optind + 1];
    char *end = NULL;
    if (strtoll(o->id, &end, 10) <= 0 || *end) {
        bz_ctl_usage_error("campaign", "campaign id '%s' is not a positive integer", o->id);
        return 1;
    }
    if (strcmp(o->action, "status") != 0 &&
        action_named(o->action) == BLAZZ__V1__CAMPAIGN_ACTION__CAMPAIGN_ACTION_UNSPECIFIED) {
        bz_ctl_usage_error("campaign", "unknown action '%s'", o->action);
        return 1;
    }
    o->prefix = bz_ctl_topic_prefix(o->prefix);
    if (!o->actor)
        o->actor = "blazzctl";
    if (bz_ctl_require_dsn("campaign", o->dsn, &o->dsn))
        return 1;
    if (strcmp(o->action, "status") == 0)
        return 0;
    return bz_ctl_require_brokers("campaign", o->brokers, &o->brokers);
}

static bz_status query(PGconn *conn, const char *what, const char *sql, const char *id,
                       PGresult **out, bz_error *err)
{
    const char *params[] = {id};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    bz_status st = bz_pg_check(conn, res, what, err);
    if (st == BZ_OK && PQntuples(res) != 1)
        st = bz_fail(err, BZ_ERR_NOT_FOUND, "campaign %s does not exist", id);
    if (st != BZ_OK)
        PQclear(res);
    else
        *out = res;
    return st;
}

static bz_status connect_db(const char *dsn, PGconn **out, bz_error *err)
{
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        bz_status st = bz_fail(err, BZ_ERR_TRANSIENT, "connect to PostgreSQL: %s",
                               PQerrorMessage(conn));
        PQfinish(conn);
        return st;
    }
    *out = conn;
    return BZ_OK;
}

static bz_status publish_command(const campaign_options *o, int64_t workspace, char *event_id,
                                 bz_error *err)
{
    bz_status st = bz_uuid_v4(event_id, err);
    if (st != BZ_OK)
        return st;
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = env.produced_at_ms = bz_wall_ms();
    env.source = "blazzctl";
    env.workspace_id = workspace;
    Blazz__V1__CampaignCommand cmd = BLAZZ__V1__CAMPAIGN_COMMAND__INIT;
    cmd.envelope = &env;
    cmd.campaign_id = strtoll(o->id, NULL, 10);
    cmd.action = action_named(o->action);
    cmd.actor = (char *)o->actor;
    cmd.reason = (char *)(o->reason ? o->reason : "");
    size_t len = blazz__v1__campaign_command__get_packed_size(&cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return bz_fail(err, BZ_ERR_NOMEM, "encode command: out of memory");
    blazz__v1__campaign_command__pack(&cmd, buf);
    char topic[BZ_TOPIC_NAME_MAX];
    st = bz_topic_name_checked(o->prefix, bz_topic_base(BZ_TOPIC_CAMPAIGN_COMMANDS), topic,
                               sizeof topic, err);
    bz_producer *p = NULL;
    bz_kafka_settings ks = {.brokers = o->brokers, .client_id = "blazzctl"};
    if (st == BZ_OK)
        st = bz_producer_new(&ks, &p, err);
    if (st == BZ_OK)
        st = bz_producer_send_sync(p, topic, o->id, strlen(o->id), buf, len, NULL, 0, 15000, err);
    if (p)
        bz_producer_free(p, 5000);
    free(buf);
    return st == BZ_OK ? st : bz_wrap(err, "publish %s command for campaign %s", o->action, o->id);
}

static int run_action(const campaign_options *o, PGconn *conn)
{
    bz_error err;
    bz_error_clear(&err);
    PGresult *res;
    if (query(conn, "look up campaign", SQL_WORKSPACE, o->id, &res, &err) != BZ_OK)
        return bz_ctl_fail("campaign", &err);
    int64_t workspace = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    char event_id[BZ_UUID_STR_SIZE];
    if (publish_command(o, workspace, event_id, &err) != BZ_OK)
        return bz_ctl_fail("campaign", &err);
    if (o->json)
        return bz_ctl_print_json(json_pack("{s:s, s:I, s:I, s:s, s:s}", "action", o->action,
                                           "campaign_id", (json_int_t)strtoll(o->id, NULL, 10),
                                           "workspace_id", (json_int_t)workspace, "actor",
                                           o->actor, "event_id", event_id));
    printf("%s requested for campaign %s by %s (event %s)\n", o->action, o->id, o->actor,
           event_id);
    return 0;
}

static json_int_t int_at(const PGresult *res, int col)
{
    return (json_int_t)strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* The factor of the sending account's pace now: below 1 while it recovers
 * from Meta's throttling. */
static double pace_factor(const PGresult *res)
{
    bz_meta_throttle t = {strtod(PQgetvalue(res, 0, COL_THROTTLE_FACTOR), NULL),
                          int_at(res, COL_THROTTLED_AT)};
    return bz_meta_throttle_factor(&t, int_at(res, COL_NOW));
}

/* campaign-sender's note of why the next messages wait, or null (new
 * reference). */
static json_t *held_json(const PGresult *res)
{
    json_t *held = json_loads(PQgetvalue(res, 0, COL_HELD), JSON_DECODE_ANY, NULL);
    return held ? held : json_null();
}

/* The skipped logs by reason ({"opted_out": 2, ...}; new reference). */
static json_t *skipped_by_reason(const PGresult *res)
{
    json_t *by = json_loads(PQgetvalue(res, 0, COL_SKIPPED_BY_REASON), 0, NULL);
    return by ? by : json_object();
}

/* " (opted_out 2, outside_service_window 3)" after the skipped count, or
 * nothing when none was skipped. */
static void print_skipped_by_reason(const PGresult *res)
{
    json_t *by = skipped_by_reason(res);
    const char *reason, *sep = " (";
    json_t *n;
    json_object_foreach(by, reason, n) {
        printf("%s%s %" JSON_INTEGER_FORMAT, sep, reason, json_integer_value(n));
        sep = ", ";
    }
    if (json_object_size(by))
        printf(")");
    json_decref(by);
}

/* {"waiting", "retried", "next_retry_at"} of Meta's per-user marketing
 * limit, or null when it kept no message of the campaign (new reference). */
static json_t *marketing_limit_json(const PGresult *res)
{
    if (int_at(res, COL_LIMIT_RETRIED) == 0)
        return json_null();
    const char *next = PQgetvalue(res, 0, COL_LIMIT_NEXT);
    return json_pack("{s:I, s:I, s:o}", "waiting", int_at(res, COL_LIMIT_WAITING), "retried",
                     int_at(res, COL_LIMIT_RETRIED), "next_retry_at",
                     *next ? json_string(next) : json_null());
}

static void print_marketing_limit(const PGresult *res)
{
    if (int_at(res, COL_LIMIT_RETRIED) == 0)
        return;
    printf("  marketing limit: Meta kept %s messages from their recipients for the per-user "
           "marketing limit (131049), each sent again once; %s wait",
           PQgetvalue(res, 0, COL_LIMIT_RETRIED), PQgetvalue(res, 0, COL_LIMIT_WAITING));
    if (*PQgetvalue(res, 0, COL_LIMIT_NEXT))
        printf(", the next at %s", PQgetvalue(res, 0, COL_LIMIT_NEXT));
    printf("\n");
}

/* Why campaign-sender's rules and rates keep the campaign waiting, in
 * words (ARCHITECTURE.md §11.3); the reason itself for one this blazzctl
 * does not know. */
static const struct {
    const char *reason, *words;
} wait_words[] = {
    {"meta_messaging_limit", "Meta's messaging limit reached by the portfolio"},
    {"agents_first", "agents' messages through the same account go first"},
    {"account_rate", "the account's send limits are reached"},
    {"workspace_rate", "the workspace's send limits are reached"},
    {"meta_throttled", "the account's send limits, slowed by Meta's throttling, are reached"},
    {"warmup_cap", "the number warms up: its new recipients of the day are reached"},
    {"warmup_jitter", "the number warms up: its sends leave a random gap apart"},
    {"account_pace", "the account's pace between two campaign sends"},
    {"workspace_pace", "the workspace's pace between two campaign sends"},
    {"pair_rate", "Meta's pair rate: their recipients had messages from the account too lately "
                  "(budget.pair_interval_s each, longer after an agent's burst)"},
};

static void print_held(const PGresult *res)
{
    const char *reason = PQgetvalue(res, 0, COL_HELD_REASON), *words = reason;
    for (size_t i = 0; i < sizeof wait_words / sizeof wait_words[0]; i++)
        if (strcmp(reason, wait_words[i].reason) == 0)
            words = wait_words[i].words;
    if (*PQgetvalue(res, 0, COL_HELD_COUNT))
        printf("  held:          %s messages wait: %s", PQgetvalue(res, 0, COL_HELD_COUNT), words);
    else
        printf("  held:          the campaign waits: %s", words);
    for (int col = COL_HELD_TIER; col <= COL_HELD_WARMUP; col++)
        if (*PQgetvalue(res, 0, col))
            printf(" (%s)", PQgetvalue(res, 0, col));
    printf("; the next may go at %s\n", PQgetvalue(res, 0, COL_HELD_UNTIL));
}

static int run_status(const campaign_options *o, PGconn *conn)
{
    bz_error err;
    bz_error_clear(&err);
    PGresult *res;
    if (query(conn, "read campaign", SQL_STATUS, o->id, &res, &err) != BZ_OK)
        return bz_ctl_fail("campaign status", &err);
    int rc;
    double factor = pace_factor(res);
    if (o->json) {
        json_t *pace = factor < 1.0 ? json_pack("{s:s, s:I, s:f, s:s}", "reason", "meta_throttled",
                                                "account_id", int_at(res, COL_THROTTLED_ACCOUNT),
                                                "factor", factor, "last_code",
                                                PQgetvalue(res, 0, COL_THROTTLE_CODE))
                                    : json_null();
        rc = bz_ctl_print_json(json_pack(
            "{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}, "
            "s:o, s:o, s:o}",
            "id", int_at(res, 0), "uuid", PQgetvalue(res, 0, 1), "workspace_id", int_at(res, 2),
            "name", PQgetvalue(res, 0, 3), "status", PQgetvalue(res, 0, 4), "error_message",
            PQgetvalue(res, 0, 5), "pause_reason", PQgetvalue(res, 0, 6), "last_actor",
            PQgetvalue(res, 0, 12), "counters", "contacts_count", int_at(res, 7), "pending",
            int_at(res, 13), "queued", int_at(res, 14), "messages_sent", int_at(res, 8),
            "messages_delivered", int_at(res, 9), "messages_read", int_at(res, 10),
            "messages_failed", int_at(res, 11), "messages_skipped", int_at(res, 15),
            "skipped_by_reason", skipped_by_reason(res), "pace", pace, "held", held_json(res),
            "marketing_limit", marketing_limit_json(res)));
    } else {
        printf("campaign %s (%s) in workspace %s: %s\n", PQgetvalue(res, 0, 0),
               PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 4));
        if (*PQgetvalue(res, 0, 6))
            printf("  pause reason:  %s\n", PQgetvalue(res, 0, 6));
        if (*PQgetvalue(res, 0, 5))
            printf("  error:         %s\n", PQgetvalue(res, 0, 5));
        if (factor < 1.0)
            printf("  pace:          throttled by Meta (%s), account %s at x%.2f of its rate "
                   "(recovering 0.1 a second)\n",
                   PQgetvalue(res, 0, COL_THROTTLE_CODE),
                   PQgetvalue(res, 0, COL_THROTTLED_ACCOUNT), factor);
        if (*PQgetvalue(res, 0, COL_HELD_REASON))
            print_held(res);
        print_marketing_limit(res);
        printf("  recipients %s: pending %s, queued %s, sent %s, delivered %s, read %s, failed %s, "
               "skipped %s",
               PQgetvalue(res, 0, 7), PQgetvalue(res, 0, 13), PQgetvalue(res, 0, 14),
               PQgetvalue(res, 0, 8), PQgetvalue(res, 0, 9), PQgetvalue(res, 0, 10),
               PQgetvalue(res, 0, 11), PQgetvalue(res, 0, 15));
        print_skipped_by_reason(res);
        printf("\n");
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int bz_ctl_cmd_campaign(int argc, char **argv)
{
    campaign_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_campaign_options(argc, argv, &o);
    if (rc)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    bz_error err;
    bz_error_clear(&err);
    PGconn *conn = NULL;
    if (connect_db(o.dsn, &conn, &err) != BZ_OK)
        return bz_ctl_fail("campaign", &err);
    rc = strcmp(o.action, "status") == 0 ? run_status(&o, conn) : run_action(&o, conn);
    PQfinish(conn);
    return rc;
}
