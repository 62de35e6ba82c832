/*
 * cmd_dlq.c - `blazzctl dlq tail|stats|replay TOPIC`: the dead-letter
 * topics, for the people on call.
 *
 * tail   shows dead letters decoded: where the record came from, who gave
 *        up on it and why, and its payload as JSON when it decodes as the
 *        message its original topic carries (pbjson.h) or is JSON already
 *        (webhook bodies), else as bytes.
 * stats  counts dead letters by error code and service over a time window.
 * replay republishes each selected dead letter's original key, value and
 *        headers to its original topic with the idempotent producer, or,
 *        for the topics only outbox relays write, through PostgreSQL
 *        (dlq_replay_db.h: blazzctl's principal may not write them). It is
 *        at-least-once (a record can arrive twice if replay is interrupted
 *        and re-run); consumers de-duplicate by event_id, so that is safe.
 *
 * All three read the topic through dlq_reader.h, which never joins a
 * consumer group, so looking at a DLQ never moves anyone's offsets. TOPIC is
 * a catalogue base name ("chat.sync.dlq") that gets the deployment prefix,
 * or a full topic name used as given.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blazzctl.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/timespec.h"
#include "dlq_reader.h"
#include "dlq_replay_db.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "proto/pbjson.h"

#define MAX_FILTERS 8
#define TAIL_DEFAULT 20
#define REPLAY_FLUSH_MS 60000
#define HEX_PREVIEW_BYTES 48

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

typedef enum dlq_action { DLQ_TAIL, DLQ_STATS, DLQ_REPLAY } dlq_action;

typedef struct dlq_filters {
    const char *errors[MAX_FILTERS];
    int nerrors;
    const char *services[MAX_FILTERS];
    int nservices;
} dlq_filters;

typedef struct dlq_options {
    dlq_action action;
    const char *brokers, *prefix, *dsn;
    char topic[BZ_TOPIC_NAME_MAX];
    const char *since_text, *until_text;
    int64_t since_ms, until_ms;
    int limit;
    int follow, dry_run, json;
    dlq_filters filters;
} dlq_options;

/* ---- options ------------------------------------------------------------ */

static int add_filter(dlq_filters *f, const char *spec)
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

static int parse_action(const char *word, dlq_action *out)
{
    if (strcmp(word, "tail") == 0)
        *out = DLQ_TAIL;
    else if (strcmp(word, "stats") == 0)
        *out = DLQ_STATS;
    else if (strcmp(word, "replay") == 0)
        *out = DLQ_REPLAY;
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

static int parse_times(dlq_options *o)
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
static int check_combination(const dlq_options *o, int limit_given)
{
    if (o->action != DLQ_TAIL && (o->follow || limit_given)) {
        bz_ctl_usage_error("dlq", "--follow and --limit belong to tail");
        return 1;
    }
    if (o->action != DLQ_REPLAY &&
        (o->dry_run || o->filters.nerrors > 0 || o->filters.nservices > 0)) {
        bz_ctl_usage_error("dlq", "--filter and --dry-run belong to replay");
        return 1;
    }
    if (o->action == DLQ_TAIL && o->until_text) {
        bz_ctl_usage_error("dlq", "--until belongs to stats and replay");
        return 1;
    }
    return 0;
}

static int finish_options(dlq_options *o, const char *brokers, const char *prefix,
                          const char *topic, int limit_given)
{
    o->brokers = bz_ctl_setting(brokers, "BLAZZ_KAFKA_BROKERS", NULL);
    if (!o->brokers) {
        bz_ctl_usage_error("dlq", "no brokers: set BLAZZ_KAFKA_BROKERS or pass --brokers");
        return 1;
    }
    prefix = bz_ctl_setting(prefix, "BLAZZ_KAFKA_TOPIC_PREFIX",
                            bz_ctl_setting(NULL, "BLAZZ_TOPIC_PREFIX", ""));
    o->prefix = prefix;
    o->dsn = bz_ctl_setting(o->dsn, "BLAZZ_PG_DSN", NULL);
    if (resolve_topic(topic, prefix, o->topic, sizeof o->topic) || parse_times(o) ||
        check_combination(o, limit_given))
        return 1;
    if (o->action == DLQ_TAIL && !limit_given && !o->since_text)
        o->limit = TAIL_DEFAULT;
    return 0;
}

/* 0: run, 1: error, 2: --help printed. */
static int parse_dlq_options(int argc, char **argv, dlq_options *o)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"prefix", required_argument, NULL, 'p'},
        {"since", required_argument, NULL, 's'},   {"until", required_argument, NULL, 'u'},
        {"limit", required_argument, NULL, 'l'},   {"filter", required_argument, NULL, 'f'},
        {"follow", no_argument, NULL, 'F'},        {"dry-run", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
        {"dsn", required_argument, NULL, 'd'},     {NULL, 0, NULL, 0}};
    const char *brokers = NULL, *prefix = NULL;
    int c, limit_given = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        bz_error err;
        switch (c) {
        case 'b': brokers = optarg; break;
        case 'p': prefix = optarg; break;
        case 'd': o->dsn = optarg; break;
        case 's': o->since_text = optarg; break;
        case 'u': o->until_text = optarg; break;
        case 'l':
            if (bz_ctl_parse_int(optarg, 1, 100000000, "limit", &o->limit, &err) != BZ_OK) {
                bz_ctl_usage_error("dlq", "%s", err.msg);
                return 1;
            }
            limit_given = 1;
            break;
        case 'f': if (add_filter(&o->filters, optarg)) return 1; break;
        case 'F': o->follow = 1; break;
        case 'n': o->dry_run = 1; break;
        case 'j': o->json = 1; break;
        case 'h': fputs(dlq_help, stdout); return 2;
        default:
            bz_ctl_usage_error("dlq", "bad option '%s'", argv[optind - 1]);
            return 1;
        }
    }
    if (argc - optind != 2) {
        bz_ctl_usage_error("dlq", "say tail, stats or replay, then the topic");
        return 1;
    }
    if (parse_action(argv[optind], &o->action))
        return 1;
    return finish_options(o, brokers, prefix, argv[optind + 1], limit_given);
}

/* ---- one dead letter as JSON -------------------------------------------- */

static json_t *time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char text[40];
    bz_time_format(ms, text, sizeof text);
    return json_string(text);
}

/* Text as a JSON string under name when it is UTF-8, else base64 under
 * name + "_base64". */
static void set_bytes(json_t *obj, const char *name, const uint8_t *data, size_t len)
{
    json_t *s = json_stringn((const char *)data, len);
    if (s) {
        json_object_set_new(obj, name, s);
        return;
    }
    char key[64];
    snprintf(key, sizeof key, "%s_base64", name);
    json_object_set_new(obj, key, bz_json_base64(data, len));
}

/* A protobuf string field: bytes from whoever wrote the dead letter (a
 * receiver's reply can end up in error_message), not necessarily UTF-8. */
static void set_text(json_t *obj, const char *name, const char *text)
{
    set_bytes(obj, name, (const uint8_t *)text, strlen(text));
}

static json_t *hex_json(const uint8_t *data, size_t len)
{
    char *hex = malloc(2 * len + 1);
    if (!hex)
        return NULL;
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", data[i]);
    hex[2 * len] = '\0';
    json_t *out = json_string(hex);
    free(hex);
    return out;
}

static json_t *headers_json(const Blazz__V1__DeadLetter *dl)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < dl->n_original_headers; i++) {
        const Blazz__V1__Header *hdr = dl->original_headers[i];
        json_t *h = json_object();
        if (h) {
            set_text(h, "key", hdr->key);
            set_bytes(h, "value", hdr->value.data, hdr->value.len);
        }
        json_array_append_new(arr, h);
    }
    return arr;
}

/* A JSON document (webhook-dispatcher dead-letters the webhook body it
 * could not deliver), or NULL. Protobuf never starts with '{' or '[': those
 * bytes would open a group, which proto3 does not have. */
static json_t *json_payload(const Blazz__V1__DeadLetter *dl)
{
    const uint8_t *v = dl->original_value.data;
    if (dl->original_value.len == 0 || (v[0] != '{' && v[0] != '['))
        return NULL;
    return json_loadb((const char *)v, dl->original_value.len, 0, NULL);
}

/* 1 when the dead letter keeps only the start of the original value. */
static int payload_is_cut(const Blazz__V1__DeadLetter *dl)
{
    return dl->original_value_size > (int64_t)dl->original_value.len;
}

/* The payload as the message of its original topic when it decodes so. */
static void set_payload(json_t *obj, const Blazz__V1__DeadLetter *dl)
{
    json_object_set_new(obj, "payload_truncated", json_boolean(payload_is_cut(dl)));
    if (payload_is_cut(dl)) {
        json_object_set_new(obj, "original_value_size", json_integer(dl->original_value_size));
        json_object_set_new(obj, "original_value_sha256",
                            hex_json(dl->original_value_sha256.data,
                                     dl->original_value_sha256.len));
    }
    const char *base = bz_topic_base_of(dl->original_topic);
    const ProtobufCMessageDescriptor *type = base ? bz_topic_message_type(base) : NULL;
    json_t *decoded = json_payload(dl);
    if (decoded)
        json_object_set_new(obj, "payload_type", json_string("json"));
    else
        json_object_set_new(obj, "payload_type", type ? json_string(type->name) : json_null());
    json_object_set_new(obj, "payload_bytes", json_integer((json_int_t)dl->original_value.len));
    if (!decoded && type)
        decoded = bz_pb_decode_json(type, dl->original_value.data, dl->original_value.len);
    json_object_set_new(obj, "payload_decoded", json_boolean(decoded != NULL));
    if (decoded) {
        json_object_set_new(obj, "payload", decoded);
        return;
    }
    json_object_set_new(obj, "payload_hex", hex_json(dl->original_value.data,
                                                     dl->original_value.len));
    json_object_set_new(obj, "payload_base64", bz_json_base64(dl->original_value.data,
                                                              dl->original_value.len));
}

/* The value of header name on m as a new JSON string, or null. */
static json_t *header_json(const rd_kafka_message_t *m, const char *name)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *value;
    size_t size;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !value)
        return json_null();
    json_t *s = json_stringn(value, size);
    return s ? s : json_null();
}

/* A record whose value is not a DeadLetter still shows what its dlt-*
 * headers say, so a broken producer can be traced. */
static void set_undecodable(json_t *obj, const rd_kafka_message_t *m)
{
    json_object_set_new(obj, "dead_letter_decoded", json_false());
    json_object_set_new(obj, "original_topic", header_json(m, "dlt-original-topic"));
    json_object_set_new(obj, "service", header_json(m, "dlt-service"));
    json_object_set_new(obj, "error_code", header_json(m, "dlt-error-code"));
    json_object_set_new(obj, "error_message", header_json(m, "dlt-exception-message"));
    json_object_set_new(obj, "raw_base64", bz_json_base64(m->payload, m->len));
}

void bz_ctl_set_dead_letter(json_t *obj, const Blazz__V1__DeadLetter *dl)
{
    json_object_set_new(obj, "dead_letter_decoded", json_true());
    set_text(obj, "original_topic", dl->original_topic);
    json_object_set_new(obj, "original_partition", json_integer(dl->original_partition));
    json_object_set_new(obj, "original_offset", json_integer(dl->original_offset));
    set_bytes(obj, "original_key", dl->original_key.data, dl->original_key.len);
    set_text(obj, "event_id", dl->event_id);
    set_text(obj, "service", dl->service);
    set_text(obj, "error_code", dl->error_code);
    set_text(obj, "error_message", dl->error_message);
    json_object_set_new(obj, "attempts", json_integer(dl->attempts));
    json_object_set_new(obj, "first_failed_at", time_json(dl->first_failed_at_ms));
    json_object_set_new(obj, "last_failed_at", time_json(dl->last_failed_at_ms));
    json_object_set_new(obj, "original_headers", headers_json(dl));
    set_payload(obj, dl);
}

static json_t *record_json(const rd_kafka_message_t *m, const Blazz__V1__DeadLetter *dl)
{
    rd_kafka_timestamp_type_t type;
    json_t *obj = json_pack("{s:i, s:I}", "dlq_partition", (int)m->partition, "dlq_offset",
                            (json_int_t)m->offset);
    if (!obj)
        return NULL;
    json_object_set_new(obj, "dlq_timestamp", time_json(rd_kafka_message_timestamp(m, &type)));
    if (dl)
        bz_ctl_set_dead_letter(obj, dl);
    else
        set_undecodable(obj, m);
    return obj;
}

static const char *json_text(const json_t *obj, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : fallback;
}

/* A text field as set_text left it: the text, else its base64. */
static const char *json_shown(const json_t *obj, const char *key, const char *fallback)
{
    char b64[64];
    snprintf(b64, sizeof b64, "%s_base64", key);
    return json_text(obj, key, json_text(obj, b64, fallback));
}

static void print_payload_line(const json_t *r)
{
    json_t *payload = json_object_get(r, "payload");
    if (payload) {
        char *text = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("    payload   %s %s\n", json_text(r, "payload_type", "?"), text ? text : "?");
        free(text);
        return;
    }
    const char *hex = json_text(r, "payload_hex", "");
    size_t shown = strlen(hex) > 2 * HEX_PREVIEW_BYTES ? 2 * HEX_PREVIEW_BYTES : strlen(hex);
    printf("    payload   %" JSON_INTEGER_FORMAT " bytes, not a %s: %.*s%s\n",
           json_integer_value(json_object_get(r, "payload_bytes")),
           json_text(r, "payload_type", "known message"), (int)shown, hex,
           strlen(hex) > shown ? "..." : "");
}

static void print_record_human(const json_t *r)
{
    printf("%s  dlq[%" JSON_INTEGER_FORMAT "]@%" JSON_INTEGER_FORMAT "  %s  by %s\n",
           json_text(r, "dlq_timestamp", "-"),
           json_integer_value(json_object_get(r, "dlq_partition")),
           json_integer_value(json_object_get(r, "dlq_offset")), json_shown(r, "error_code", "?"),
           json_shown(r, "service", "?"));
    if (!json_is_true(json_object_get(r, "dead_letter_decoded"))) {
        printf("    (value is not a blazz.v1.DeadLetter; original topic %s)\n    error     %s\n",
               json_shown(r, "original_topic", "?"), json_shown(r, "error_message", "-"));
        return;
    }
    printf("    original  %s[%" JSON_INTEGER_FORMAT "]@%" JSON_INTEGER_FORMAT "  key %s  event %s\n",
           json_shown(r, "original_topic", "?"),
           json_integer_value(json_object_get(r, "original_partition")),
           json_integer_value(json_object_get(r, "original_offset")),
           json_text(r, "original_key", json_object_get(r, "original_key_base64") ? "(binary)"
                                                                                  : "-"),
           json_shown(r, "event_id", "-"));
    printf("    error     %s\n", json_shown(r, "error_message", "-"));
    printf("    failed    %" JSON_INTEGER_FORMAT " attempt(s), first %s, last %s\n",
           json_integer_value(json_object_get(r, "attempts")),
           json_text(r, "first_failed_at", "-"), json_text(r, "last_failed_at", "-"));
    if (json_is_true(json_object_get(r, "payload_truncated")))
        printf("    original  value cut to %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
               " bytes, sha256 %s (not replayable)\n",
               json_integer_value(json_object_get(r, "payload_bytes")),
               json_integer_value(json_object_get(r, "original_value_size")),
               json_text(r, "original_value_sha256", "-"));
    print_payload_line(r);
}

/* ---- tail ------------------------------------------------------------------ */

typedef struct tail_entry {
    int64_t ts;
    int32_t partition;
    int64_t offset;
    json_t *record;
} tail_entry;

typedef struct tail_run {
    const dlq_options *o;
    tail_entry *entries;
    size_t count, cap;
    int streaming;
    int failed;
} tail_run;

static void emit_record(const tail_run *t, json_t *record)
{
    if (!t->o->json) {
        print_record_human(record);
    } else {
        char *line = json_dumps(record, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line)
            puts(line);
        free(line);
    }
    fflush(stdout);
}

static int keep_entry(tail_run *t, const rd_kafka_message_t *m, json_t *record)
{
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        tail_entry *grown = realloc(t->entries, cap * sizeof *grown);
        if (!grown) {
            json_decref(record);
            t->failed = 1;
            return 1;
        }
        t->entries = grown;
        t->cap = cap;
    }
    rd_kafka_timestamp_type_t type;
    t->entries[t->count++] = (tail_entry){rd_kafka_message_timestamp(m, &type), m->partition,
                                          m->offset, record};
    return 0;
}

static int tail_on_record(void *ctx, const rd_kafka_message_t *m, const Blazz__V1__DeadLetter *dl)
{
    tail_run *t = ctx;
    json_t *record = record_json(m, dl);
    if (!record) {
        t->failed = 1;
        return 1;
    }
    if (t->streaming) {
        emit_record(t, record);
        json_decref(record);
        return 0;
    }
    return keep_entry(t, m, record);
}

static int by_time(const void *a, const void *b)
{
    const tail_entry *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The window in time order, newest `limit` only; printed at once when
 * following (the stream continues below it), else kept for the document. */
static void tail_on_caught_up(void *ctx)
{
    tail_run *t = ctx;
    if (t->count > 0) /* entries is NULL until the first record */
        qsort(t->entries, t->count, sizeof *t->entries, by_time);
    size_t first = t->o->limit > 0 && t->count > (size_t)t->o->limit
                       ? t->count - (size_t)t->o->limit
                       : 0;
    for (size_t i = 0; i < first; i++)
        json_decref(t->entries[i].record);
    if (first > 0)
        memmove(t->entries, t->entries + first, (t->count - first) * sizeof *t->entries);
    t->count -= first;
    if (!t->o->follow)
        return;
    for (size_t i = 0; i < t->count; i++) {
        emit_record(t, t->entries[i].record);
        json_decref(t->entries[i].record);
    }
    t->count = 0;
    t->streaming = 1;
}

static int print_tail(const tail_run *t)
{
    if (t->o->json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < t->count; i++)
            json_array_append(arr, t->entries[i].record);
        return bz_ctl_print_json(arr ? json_pack("{s:s, s:I, s:o}", "topic", t->o->topic,
                                                 "count", (json_int_t)t->count, "records", arr)
                                     : NULL);
    }
    for (size_t i = 0; i < t->count; i++)
        print_record_human(t->entries[i].record);
    printf("(%zu dead letter(s) on %s)\n", t->count, t->o->topic);
    return 0;
}

static int run_tail(const dlq_options *o)
{
    tail_run t = {.o = o};
    bz_dlq_window w = {.since_ms = o->since_ms, .until_ms = -1,
                       .tail = o->since_ms < 0 ? o->limit : 0, .follow = o->follow};
    bz_dlq_reader_fns fns = {.on_record = tail_on_record, .on_caught_up = tail_on_caught_up};
    bz_error err;
    bz_error_clear(&err);
    if (o->follow)
        bz_signals_install_shutdown();
    bz_status st = bz_dlq_read(o->brokers, o->topic, &w, &fns, &t, &err);
    int rc = 0;
    if (st != BZ_OK)
        rc = bz_ctl_fail("dlq tail", &err);
    else if (t.failed)
        rc = fprintf(stderr, "blazzctl dlq tail: out of memory\n") > 0;
    else if (!o->follow)
        rc = print_tail(&t);
    for (size_t i = 0; i < t.count; i++)
        json_decref(t.entries[i].record);
    free(t.entries);
    return rc;
}

/* ---- stats ----------------------------------------------------------------- */

typedef struct stats_run {
    json_t *by_error, *by_service, *by_topic, *by_pair;
    int64_t total;
    int64_t first_ms, last_ms;
} stats_run;

static void count_in(json_t *obj, const char *key)
{
    json_t *n = json_object_get(obj, key);
    json_object_set_new(obj, key, json_integer(n ? json_integer_value(n) + 1 : 1));
}

static int stats_on_record(void *ctx, const rd_kafka_message_t *m, const Blazz__V1__DeadLetter *dl)
{
    stats_run *s = ctx;
    const char *code = dl ? dl->error_code : "(not a DeadLetter)";
    const char *service = dl ? dl->service : "(unknown)";
    count_in(s->by_error, code);
    count_in(s->by_service, service);
    count_in(s->by_topic, dl ? dl->original_topic : "(unknown)");
    char pair[512];
    snprintf(pair, sizeof pair, "%s\t%s", code, service);
    count_in(s->by_pair, pair);
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);
    if (s->total == 0 || ts < s->first_ms)
        s->first_ms = ts;
    if (s->total == 0 || ts > s->last_ms)
        s->last_ms = ts;
    s->total++;
    return 0;
}

static json_t *pairs_json(json_t *by_pair)
{
    json_t *arr = json_array();
    const char *key;
    json_t *n;
    json_object_foreach(by_pair, key, n) {
        const char *tab = strchr(key, '\t');
        json_t *code = json_stringn(key, (size_t)(tab - key));
        json_array_append_new(arr, json_pack("{s:o, s:s, s:O}", "error_code", code, "service",
                                             tab + 1, "count", n));
    }
    return arr;
}

static void print_counts(const char *title, json_t *counts)
{
    printf("%-40s %s\n", title, "COUNT");
    const char *key;
    json_t *n;
    json_object_foreach(counts, key, n) {
        printf("  %-38s %" JSON_INTEGER_FORMAT "\n", key, json_integer_value(n));
    }
}

static int print_stats(const dlq_options *o, stats_run *s)
{
    if (o->json) {
        return bz_ctl_print_json(json_pack(
            "{s:s, s:o, s:o, s:I, s:o, s:o, s:O, s:O, s:O, s:o}", "topic", o->topic, "since",
            time_json(o->since_ms), "until", time_json(o->until_ms), "total",
            (json_int_t)s->total, "first", time_json(s->total ? s->first_ms : 0), "last",
            time_json(s->total ? s->last_ms : 0), "by_error_code", s->by_error, "by_service",
            s->by_service, "by_original_topic", s->by_topic, "by_error_and_service",
            pairs_json(s->by_pair)));
    }
    char first[40] = "-", last[40] = "-";
    if (s->total) {
        bz_time_format(s->first_ms, first, sizeof first);
        bz_time_format(s->last_ms, last, sizeof last);
    }
    printf("%s: %" PRId64 " dead letter(s), first %s, last %s\n\n", o->topic, s->total, first,
           last);
    print_counts("ERROR CODE", s->by_error);
    print_counts("SERVICE", s->by_service);
    print_counts("ORIGINAL TOPIC", s->by_topic);
    return 0;
}

static int run_stats(const dlq_options *o)
{
    stats_run s = {json_object(), json_object(), json_object(), json_object(), 0, 0, 0};
    bz_dlq_window w = {.since_ms = o->since_ms, .until_ms = o->until_ms};
    bz_dlq_reader_fns fns = {.on_record = stats_on_record};
    bz_error err;
    bz_error_clear(&err);
    int rc;
    if (!s.by_error || !s.by_service || !s.by_topic || !s.by_pair)
        rc = fprintf(stderr, "blazzctl dlq stats: out of memory\n") > 0;
    else if (bz_dlq_read(o->brokers, o->topic, &w, &fns, &s, &err) != BZ_OK)
        rc = bz_ctl_fail("dlq stats", &err);
    else
        rc = print_stats(o, &s);
    json_decref(s.by_error);
    json_decref(s.by_service);
    json_decref(s.by_topic);
    json_decref(s.by_pair);
    return rc;
}

/* ---- replay ---------------------------------------------------------------- */

typedef struct replay_run {
    bz_delivery delivery; /* first: on_done gets back to the run from it */
    const dlq_options *o;
    bz_producer *producer;
    bz_ctl_replay_db *db; /* opened for the first record that needs it */
    json_t *by_topic;
    int64_t window, scanned, matched, undecodable, not_replayable, queued;
    uint64_t delivered, failed;
    int show_progress;
    int64_t progress_at_ms;
    bz_error send_err;
    int send_failed;
} replay_run;

static void replay_delivered(bz_delivery *d, rd_kafka_resp_err_t e, int32_t partition,
                             int64_t offset)
{
    (void)partition;
    (void)offset;
    replay_run *r = (replay_run *)d;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        r->delivered++;
    else
        r->failed++;
}

static int is_listed(const char *value, const char *const *list, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(value, list[i]) == 0)
            return 1;
    return 0;
}

static int matches_filters(const dlq_filters *f, const Blazz__V1__DeadLetter *dl)
{
    return (f->nerrors == 0 || is_listed(dl->error_code, f->errors, f->nerrors)) &&
           (f->nservices == 0 || is_listed(dl->service, f->services, f->nservices));
}

static void draw_progress(replay_run *r, int final)
{
    if (!r->show_progress)
        return;
    int64_t now = bz_monotonic_ms();
    if (!final && now - r->progress_at_ms < 100)
        return;
    r->progress_at_ms = now;
    int width = 30;
    int filled = r->window > 0 ? (int)(r->scanned * width / r->window) : width;
    if (filled > width)
        filled = width;
    fprintf(stderr, "\rreplay [%.*s%*s] %3d%%  %" PRId64 "/%" PRId64 " scanned, %" PRId64
                    " matched, %" PRIu64 " sent",
            filled, "##############################", width - filled, "",
            r->window > 0 ? (int)(r->scanned * 100 / r->window) : 100, r->scanned, r->window,
            r->matched, r->delivered);
    if (final)
        fputc('\n', stderr);
}

static void replay_on_total(void *ctx, int64_t records)
{
    ((replay_run *)ctx)->window = records;
}

/* Queue dl's original record for its original topic. */
static int republish(replay_run *r, const Blazz__V1__DeadLetter *dl)
{
    bz_kafka_header *headers = calloc(dl->n_original_headers + 1, sizeof *headers);
    if (!headers) {
        bz_fail(&r->send_err, BZ_ERR_NOMEM, "replay: out of memory");
        return 1;
    }
    for (size_t i = 0; i < dl->n_original_headers; i++)
        headers[i] = (bz_kafka_header){dl->original_headers[i]->key,
                                       dl->original_headers[i]->value.data,
                                       dl->original_headers[i]->value.len};
    bz_status st = bz_producer_send(
        r->producer, dl->original_topic, RD_KAFKA_PARTITION_UA,
        dl->original_key.len ? dl->original_key.data : NULL, dl->original_key.len,
        dl->original_value.data, dl->original_value.len, headers, dl->n_original_headers,
        &r->delivery, &r->send_err);
    free(headers);
    if (st != BZ_OK)
        return 1;
    r->queued++;
    bz_producer_poll(r->producer, 0);
    return 0;
}

/* Send dl through PostgreSQL (dlq_replay_db.h). A record the database
 * cannot take counts as failed; losing the database stops the replay. */
static int replay_through_db(replay_run *r, const Blazz__V1__DeadLetter *dl)
{
    if (!r->db && bz_ctl_replay_db_open(r->o->dsn, &r->db, &r->send_err) != BZ_OK)
        return 1;
    bz_error err;
    bz_error_clear(&err);
    bz_status st = bz_ctl_replay_db_send(r->db, r->o->prefix, dl, &err);
    if (st == BZ_OK) {
        r->queued++;
        r->delivered++;
        return 0;
    }
    if (st == BZ_ERR_INVALID || st == BZ_ERR_NOT_FOUND) {
        fprintf(stderr, "blazzctl dlq replay: %s\n", err.msg);
        r->failed++;
        return 0;
    }
    r->send_err = err;
    return 1;
}

static int replay_on_record(void *ctx, const rd_kafka_message_t *m,
                            const Blazz__V1__DeadLetter *dl)
{
    (void)m;
    replay_run *r = ctx;
    r->scanned++;
    if (!dl || !dl->original_topic[0]) {
        r->undecodable++;
    } else if (matches_filters(&r->o->filters, dl)) {
        r->matched++;
        count_in(r->by_topic, dl->original_topic);
        if (payload_is_cut(dl)) {
            r->not_replayable++; /* its bytes are not the original's */
        } else if (r->o->dry_run) {
            /* counted only */
        } else if (bz_ctl_replay_via_db(r->o->prefix, dl) ? replay_through_db(r, dl)
                                                          : republish(r, dl)) {
            r->send_failed = 1;
            return 1;
        }
    }
    draw_progress(r, 0);
    return 0;
}

static int print_replay(const replay_run *r)
{
    const dlq_options *o = r->o;
    if (o->json)
        return bz_ctl_print_json(json_pack(
            "{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:O}", "topic", o->topic,
            "dry_run", o->dry_run, "scanned", (json_int_t)r->scanned, "matched",
            (json_int_t)r->matched, "replayed", (json_int_t)r->delivered, "failed",
            (json_int_t)r->failed, "requeued", (json_int_t)bz_ctl_replay_db_requeued(r->db),
            "outboxed", (json_int_t)bz_ctl_replay_db_outboxed(r->db), "not_dead_letters",
            (json_int_t)r->undecodable, "not_replayable", (json_int_t)r->not_replayable,
            "by_original_topic", r->by_topic));
    printf("%s %" PRId64 " of %" PRId64 " dead letter(s) from %s", o->dry_run ? "would replay"
                                                                              : "replayed",
           o->dry_run ? r->matched - r->not_replayable : (int64_t)r->delivered, r->scanned,
           o->topic);
    if (r->undecodable)
        printf(" (%" PRId64 " were not DeadLetters and were skipped)", r->undecodable);
    if (r->not_replayable)
        printf(" (%" PRId64 " had a cut payload and cannot be replayed)", r->not_replayable);
    if (r->db)
        printf(" (through PostgreSQL: %" PRId64 " deliveries re-queued, %" PRId64
               " outbox rows)",
               bz_ctl_replay_db_requeued(r->db), bz_ctl_replay_db_outboxed(r->db));
    printf("\n");
    const char *key;
    json_t *n;
    json_object_foreach(r->by_topic, key, n) {
        printf("  -> %-40s %" JSON_INTEGER_FORMAT "\n", key, json_integer_value(n));
    }
    return 0;
}

static int finish_replay(replay_run *r, bz_status read_st, bz_error *read_err)
{
    bz_error err;
    bz_error_clear(&err);
    if (r->producer && bz_producer_flush(r->producer, REPLAY_FLUSH_MS, &err) != BZ_OK)
        r->send_failed = 1;
    draw_progress(r, 1);
    if (read_st != BZ_OK)
        return bz_ctl_fail("dlq replay", read_err);
    if (r->send_failed && r->send_err.msg[0])
        return bz_ctl_fail("dlq replay", &r->send_err);
    if (r->send_failed || r->failed > 0 || r->delivered != (uint64_t)r->queued) {
        print_replay(r);
        fprintf(stderr,
                "blazzctl dlq replay: %" PRIu64 " of %" PRId64
                " record(s) not acknowledged by the broker; re-running is safe\n",
                (uint64_t)r->queued - r->delivered, r->queued);
        return 1;
    }
    return print_replay(r);
}

static int run_replay(const dlq_options *o)
{
    replay_run r = {.delivery = {.on_done = replay_delivered}, .o = o, .by_topic = json_object(),
                    .show_progress = !o->json && isatty(STDERR_FILENO)};
    bz_error_clear(&r.send_err);
    bz_error err;
    bz_error_clear(&err);
    if (!r.by_topic)
        return fprintf(stderr, "blazzctl dlq replay: out of memory\n") > 0;
    bz_kafka_settings settings = {.brokers = o->brokers, .client_id = "blazzctl-replay"};
    bz_status st = o->dry_run ? BZ_OK : bz_producer_new(&settings, &r.producer, &err);
    if (st == BZ_OK) {
        bz_dlq_window w = {.since_ms = o->since_ms, .until_ms = o->until_ms};
        bz_dlq_reader_fns fns = {.on_record = replay_on_record, .on_total = replay_on_total};
        st = bz_dlq_read(o->brokers, o->topic, &w, &fns, &r, &err);
    }
    int rc = finish_replay(&r, st, &err);
    if (r.producer)
        bz_producer_free(r.producer, 1000);
    bz_ctl_replay_db_free(r.db);
    json_decref(r.by_topic);
    return rc;
}

int bz_ctl_cmd_dlq(int argc, char **argv)
{
    dlq_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_dlq_options(argc, argv, &o);
    if (rc != 0)
        return rc == 2 ? 0 : rc;
    bz_log_init("blazzctl", BZ_LOG_ERROR);
    switch (o.action) {
    case DLQ_TAIL: return run_tail(&o);
    case DLQ_STATS: return run_stats(&o);
    case DLQ_REPLAY: return run_replay(&o);
    }
    return 1;
}
