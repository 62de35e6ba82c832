/*
 * cmd_dlq.c - `blazzctl dlq tail|stats|replay TOPIC`: the dead-letter
 * topics, for the people on call.
 *
 * tail   shows dead letters decoded: where the record came from, who gave
 *        up on it and why, and its payload as JSON when it decodes as the
 *        message its original topic carries (pbjson.h) or is JSON already
 *        (webhook bodies), else as bytes (dlq_tail.c, dlq_json.c).
 * stats  counts dead letters by error code and service over a time window
 *        (dlq_stats.c).
 * replay republishes each selected dead letter's original key, value and
 *        headers to its original topic with the idempotent producer, or,
 *        for the topics only outbox relays write, through PostgreSQL
 *        (dlq_replay.c, dlq_replay_db.h: blazzctl's principal may not write
 *        them). It is at-least-once (a record can arrive twice if replay is
 *        interrupted and re-run); consumers de-duplicate by event_id, so
 *        that is safe.
 *
 * All three read the topic through dlq_reader.h, which never joins a
 * consumer group, so looking at a DLQ never moves anyone's offsets. TOPIC is
 * a catalogue base name ("chat.sync.dlq") that gets the deployment prefix,
 * or a full topic name used as given. This file parses and checks the
 * options (dlq_options.h) and runs the action.
 */
#include <stdio.h>
#include <string.h>

#include "blazzctl.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/timespec.h"
#include "dlq_options.h"
#include "kafka/topics.h"

#define TAIL_DEFAULT 20

static const char dlq_help[] =
    "usage: blazzctl dlq tail   TOPIC [--follow] [--since T] [--limit N] [--json]\n"
    "       blazzctl dlq stats  TOPIC [--since T] [--until T] [--json]\n"
    "       blazzctl dlq replay TOPIC [--filter error=CODE] [--filter service=S]\n"
    "                                 [--since T] [--until T] [--dry-run] [--json]\n"
    "\n"
    "TOPIC is a dead-letter topic: wa.inbound.dlq, chat.sync.dlq, webhook.dlq,\n"
    "campaign.dlq, cleanup.dlq, outbox.dlq or wa.outbound.dlq (the deployment\n"
    "prefix is added), or a full topic name.\n"
    "\n"
    "tail:   the newest dead letters (default the last 20; with --since all since T),\n"
    "        oldest first: original topic/partition/offset, service, error code and\n"
    "        message, attempts, failure times, and the payload as JSON when it decodes\n"
    "        as the message of its original topic (or is JSON), else as hex. A payload\n"
    "        too large to keep whole was cut: its full size and SHA-256 are shown.\n"
    "        --follow then prints new dead letters as they arrive until Ctrl-C.\n"
    "stats:  counts by error code, by service and by original topic in [since, until).\n"
    "replay: republish the original key, value and headers of the matching dead\n"
    "        letters to their original topics (at-least-once; downstream de-duplicates\n"
    "        by event_id). Records for topics only outbox relays write go through\n"
    "        PostgreSQL instead: an undeliverable webhook re-queues its delivery, any\n"
    "        other becomes an outbox row. Repeated --filter keys of one kind match any\n"
    "        of the values.\n"
    "        Dead letters with a cut payload are counted and skipped.\n"
    "        Only dead letters that exist when replay starts are read.\n"
    "\n"
    "T is ISO-8601 (2025-01-31T10:00:00Z; UTC when no zone) or a duration back from\n"
    "now: 90s, 15m, 2h, 1d, 1w.\n"
    "\n"
    "  --brokers B      bootstrap brokers (default $BLAZZ_KAFKA_BROKERS)\n"
    "  --prefix P       topic prefix (default $BLAZZ_KAFKA_TOPIC_PREFIX, $BLAZZ_TOPIC_PREFIX)\n"
    "  --dsn DSN        replay: PostgreSQL, for outbox topics (default $BLAZZ_PG_DSN)\n"
    "  --since T        first dead-letter time to read\n"
    "  --until T        read dead letters before T only (stats, replay)\n"
    "  --limit N        tail: show at most the newest N\n"
    "  --follow         tail: keep printing new dead letters\n"
    "  --filter K=V     replay: error=CODE or service=NAME\n"
    "  --dry-run        replay: count what would be replayed, produce nothing\n"
    "  --json           JSON output (tail --follow --json: one object per line)\n"
    "  --help           this text\n";

static int add_filter(bz_ctl_dlq_filters *f, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || !eq[1]) {
        bz_ctl_usage_error("dlq", "filter '%s': expected error=CODE or service=NAME", spec);
        return 1;
    }
    size_t klen = (size_t)(eq - spec);
    int is_error = (klen == 5 && strncmp(spec, "error", 5) == 0) ||
                   (klen == 10 && strncmp(spec, "error_code", 10) == 0);
    int is_service = klen == 7 && strncmp(spec, "service", 7) == 0;
    if (!is_error && !is_service) {
        bz_ctl_usage_error("dlq", "filter '%s': the key must be error or service", spec);
        return 1;
    }
    int *n = is_error ? &f->nerrors : &f->nservices;
    if (*n == MAX_FILTERS) {
        bz_ctl_usage_error("dlq", "at most %d filters of one kind", MAX_FILTERS);
        return 1;
    }
    (is_error ? f->errors : f->services)[(*n)++] = eq + 1;
    return 0;
}

static int parse_action(const char *word, bz_ctl_dlq_action *out)
{
    if (strcmp(word, "tail") == 0)
        *out = BZ_CTL_DLQ_TAIL;
    else if (strcmp(word, "stats") == 0)
        *out = BZ_CTL_DLQ_STATS;
    else if (strcmp(word, "replay") == 0)
        *out = BZ_CTL_DLQ_REPLAY;
    else {
        bz_ctl_usage_error("dlq", "unknown action '%s' (tail, stats or replay)", word);
        return 1;
    }
    return 0;
}

/* A catalogue base name gets the prefix; anything else is a full name. */
static int resolve_topic(const char *given, const char *prefix, char *out, size_t cap)
{
    bz_topic t;
    bz_error err;
    bz_error_clear(&err);
    const char *use_prefix = bz_topic_lookup(given, &t, NULL) == BZ_OK ? prefix : "";
    if (bz_topic_name_checked(use_prefix, given, out, cap, &err) != BZ_OK) {
        bz_ctl_usage_error("dlq", "%s", err.msg);
        return 1;
    }
    return 0;
}

static int parse_times(bz_ctl_dlq_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    int64_t now = bz_wall_ms();
    o->since_ms = o->until_ms = -1;
    if ((o->since_text && bz_time_parse(o->since_text, now, &o->since_ms, &err) != BZ_OK) ||
        (o->until_text && bz_time_parse(o->until_text, now, &o->until_ms, &err) != BZ_OK)) {
        bz_ctl_usage_error("dlq", "%s", err.msg);
        return 1;
    }
    return 0;
}

/* Options that make no sense for the chosen action are refused, so a typo
 * in a replay command cannot silently widen what gets replayed. */
static int check_combination(const bz_ctl_dlq_options *o, int limit_given)
{
    if (o->action != BZ_CTL_DLQ_TAIL && (o->follow || limit_given)) {
        bz_ctl_usage_error("dlq", "--follow and --limit belong to tail");
        return 1;
    }
    if (o->action != BZ_CTL_DLQ_REPLAY &&
        (o->dry_run || o->filters.nerrors > 0 || o->filters.nservices > 0)) {
        bz_ctl_usage_error("dlq", "--filter and --dry-run belong to replay");
        return 1;
    }
    if (o->action == BZ_CTL_DLQ_TAIL && o->until_text) {
        bz_ctl_usage_error("dlq", "--until belongs to stats and replay");
        return 1;
    }
    return 0;
}

/* The options as given (o->limit stays 0 without --limit) become what the
 * actions use. */
static int finish_options(bz_ctl_dlq_options *o, const char *topic)
{
    if (bz_ctl_require_brokers("dlq", o->brokers, &o->brokers))
        return 1;
    o->prefix = bz_ctl_topic_prefix(o->prefix);
    if (bz_ctl_dsn_setting("dlq", o->dsn, &o->dsn))
        return 1;
    int limit_given = o->limit > 0;
    if (resolve_topic(topic, o->prefix, o->topic, sizeof o->topic) || parse_times(o) ||
        check_combination(o, limit_given))
        return 1;
    if (o->action == BZ_CTL_DLQ_TAIL && !limit_given && !o->since_text)
        o->limit = TAIL_DEFAULT;
    return 0;
}

static int dlq_option(void *opts, int option, char *value)
{
    bz_ctl_dlq_options *o = opts;
    switch (option) {
    case 'b': o->brokers = value; break;
    case 'p': o->prefix = value; break;
    case 'd': o->dsn = value; break;
    case 's': o->since_text = value; break;
    case 'u': o->until_text = value; break;
    case 'l': return bz_ctl_option_int("dlq", value, 1, 100000000, "limit", &o->limit);
    case 'f': return add_filter(&o->filters, value);
    case 'F': o->follow = 1; break;
    case 'n': o->dry_run = 1; break;
    case 'j': o->json = 1; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_dlq_options(int argc, char **argv, bz_ctl_dlq_options *o)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"prefix", required_argument, NULL, 'p'},
        {"since", required_argument, NULL, 's'},   {"until", required_argument, NULL, 'u'},
        {"limit", required_argument, NULL, 'l'},   {"filter", required_argument, NULL, 'f'},
        {"follow", no_argument, NULL, 'F'},        {"dry-run", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
        {"dsn", required_argument, NULL, 'd'},     {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"dlq", dlq_help, longopts, dlq_option, 0};
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (argc - optind != 2) {
        bz_ctl_usage_error("dlq", "say tail, stats or replay, then the topic");
        return 1;
    }
    if (parse_action(argv[optind], &o->action))
        return 1;
    return finish_options(o, argv[optind + 1]);
}

int bz_ctl_cmd_dlq(int argc, char **argv)
{
    bz_ctl_dlq_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_dlq_options(argc, argv, &o);
    if (rc != 0)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    bz_log_init("blazzctl", BZ_LOG_ERROR);
    switch (o.action) {
    case BZ_CTL_DLQ_TAIL: return bz_ctl_dlq_tail(&o);
    case BZ_CTL_DLQ_STATS: return bz_ctl_dlq_stats(&o);
    case BZ_CTL_DLQ_REPLAY: return bz_ctl_dlq_replay(&o);
    }
    return 1;
}
