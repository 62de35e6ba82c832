/*
 * main.c - blazz-gateway-sim: a reference WhatsApp gateway for demos, tests
 * and benchmarks (see sim.h for the parts and how they fit).
 *
 * main only wires: read the options and the environment, create the world
 * in PostgreSQL, start answering wa.outbound if asked, then pace the
 * generated traffic at --rate until --duration (or --events) is reached or
 * SIGINT/SIGTERM arrives, wait for the outcomes of what was sent, and print
 * the report. Every loop is bounded by the run's deadline. Only loopback
 * endpoints are accepted.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/uuid.h"
#include "kafka/topics.h"
#include "accepted_log.h"
#include "instance.h"
#include "outbound.h"
#include "media_upload.h"
#include "publish.h"
#include "report.h"
#include "sim.h"
#include "traffic.h"
#include "world.h"

#ifndef BZ_VERSION
#define BZ_VERSION "dev"
#endif

#define EXIT_RUN_FAILED 1
#define EXIT_USAGE 2
#define DRAIN_TIMEOUT_MS 15000
#define STATUS_EVERY_MS 1000

enum {
    OPT_MODE = 1000, OPT_RATE, OPT_DURATION, OPT_EVENTS, OPT_SEED, OPT_WORKSPACES,
    OPT_ACCOUNTS, OPT_INSTANCES, OPT_HISTORY_CHATS, OPT_HISTORY_MESSAGES, OPT_STRAY, OPT_INGEST_URL,
    OPT_GATEWAY, OPT_KEY_FILE, OPT_HTTP_CONCURRENCY, OPT_HTTP_RETRIES, OPT_ANSWER_OUTBOUND, OPT_FAIL_RATIO,
    OPT_READ_RATIO, OPT_ACK_DELAY, OPT_SENDS_LOG, OPT_ACCEPTED_LOG, OPT_OUTBOUND_GROUP, OPT_STATUS_FILE, OPT_TAG,
    OPT_JSON, OPT_LOG_LEVEL, OPT_HELP, OPT_VERSION, OPT_INSTANCE, OPT_INSTANCE_URL, OPT_CAPACITY,
    OPT_HEARTBEAT, OPT_LEASE, OPT_SCAN_AFTER, OPT_SCAN_DIR, OPT_STORAGE_DIR, OPT_STORAGE_NAME, OPT_SERVED_LOG,
    OPT_MEDIA_BYTES, OPT_HOLD_SENDS, OPT_LID_PEOPLE, OPT_PHONE_CHATS
};

static const struct option long_options[] = {
    {"mode", required_argument, NULL, OPT_MODE},
    {"rate", required_argument, NULL, OPT_RATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"events", required_argument, NULL, OPT_EVENTS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"workspaces", required_argument, NULL, OPT_WORKSPACES},
    {"accounts-per-workspace", required_argument, NULL, OPT_ACCOUNTS},
    {"instances", required_argument, NULL, OPT_INSTANCES},
    {"history-chats", required_argument, NULL, OPT_HISTORY_CHATS},
    {"history-messages", required_argument, NULL, OPT_HISTORY_MESSAGES},
    {"stray-events", required_argument, NULL, OPT_STRAY},
    {"ingest-url", required_argument, NULL, OPT_INGEST_URL},
    {"gateway", required_argument, NULL, OPT_GATEWAY},
    {"key-file", required_argument, NULL, OPT_KEY_FILE},
    {"http-concurrency", required_argument, NULL, OPT_HTTP_CONCURRENCY},
    {"http-retries", required_argument, NULL, OPT_HTTP_RETRIES},
    {"media-bytes", required_argument, NULL, OPT_MEDIA_BYTES},
    {"lid-people", required_argument, NULL, OPT_LID_PEOPLE},
    {"answer-outbound", no_argument, NULL, OPT_ANSWER_OUTBOUND},
    {"fail-ratio", required_argument, NULL, OPT_FAIL_RATIO},
    {"read-ratio", required_argument, NULL, OPT_READ_RATIO},
    {"ack-delay-ms", required_argument, NULL, OPT_ACK_DELAY},
    {"hold-sends", no_argument, NULL, OPT_HOLD_SENDS},
    {"sends-log", required_argument, NULL, OPT_SENDS_LOG},
    {"accepted-log", required_argument, NULL, OPT_ACCEPTED_LOG},
    {"outbound-group", required_argument, NULL, OPT_OUTBOUND_GROUP},
    {"status-file", required_argument, NULL, OPT_STATUS_FILE},
    {"tag", required_argument, NULL, OPT_TAG},
    {"json", no_argument, NULL, OPT_JSON},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"instance-url", required_argument, NULL, OPT_INSTANCE_URL},
    {"capacity", required_argument, NULL, OPT_CAPACITY},
    {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
    {"lease-ms", required_argument, NULL, OPT_LEASE},
    {"scan-after-ms", required_argument, NULL, OPT_SCAN_AFTER},
    {"scan-dir", required_argument, NULL, OPT_SCAN_DIR},
    {"storage-dir", required_argument, NULL, OPT_STORAGE_DIR},
    {"storage-name", required_argument, NULL, OPT_STORAGE_NAME},
    {"served-log", required_argument, NULL, OPT_SERVED_LOG},
    {"phone-chats", required_argument, NULL, OPT_PHONE_CHATS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

static void print_usage(FILE *out)
{
    fprintf(out,
        "usage: blazz-gateway-sim [options]\n"
        "\n"
        "A reference WhatsApp gateway fleet: creates demo workspaces and connected\n"
        "accounts in PostgreSQL, publishes seeded realistic traffic (session status,\n"
        "history sync in batches of <= 50 chats, live private and group messages of\n"
        "every type, receipts, group updates, session flaps) through ingest (http) or\n"
        "straight to its own topic <prefix>wa.inbound.gw.<gateway> (kafka), and\n"
        "optionally answers <prefix>wa.outbound with receipts. Its accounts are served\n"
        "by --gateway, which must be registered (blazzctl gateways add); over Kafka it\n"
        "runs as the principal of BLAZZ_KAFKA_SASL_USERNAME. Stops by itself after\n"
        "--duration.\n"
        "\n"
        "With --mode instance it is one gateway instance under the backbone's command\n"
        "instead (heartbeats, session commands, QR codes, failover: see below).\n"
        "\n"
        "traffic:\n"
        "  --mode kafka|http|instance   where events go                         (kafka)\n"
        "  --rate N                     generated events per second; 0 = none   (100)\n"
        "  --duration S                 run time in seconds                     (30)\n"
        "  --events N                   stop generating after N events; 0 = no cap (0)\n"
        "  --seed N                     fixes the sequence of events            (1)\n"
        "  --history-chats N            chats per account in the history sync   (100)\n"
        "  --history-messages N         last N messages per synced chat         (20)\n"
        "  --stray-events N             the first N live events go to a session no\n"
        "                               account has (sim-TAG-stray); ingest\n"
        "                               dead-letters them unknown_session       (0)\n"
        "world:\n"
        "  --workspaces N               demo workspaces                         (3)\n"
        "  --accounts-per-workspace N   connected accounts per workspace        (2)\n"
        "  --instances N                gateway instances; assigned index =\n"
        "                               workspace_id %% N                         (4)\n"
        "  --tag TAG                    names the world ([a-z0-9-], <= 24);\n"
        "                               same tag = same accounts          (random)\n"
        "  --gateway ID                 the gateway serving the accounts       (sim)\n"
        "http mode:\n"
        "  --ingest-url URL             POST target (http://$BLAZZ_INGEST_LISTEN/v1/events,\n"
        "                               else http://127.0.0.1:8080/v1/events)\n"
        "  --key-file F                 the gateway's signing key (- for stdin), else\n"
        "                               $BLAZZ_GATEWAY_KEY or $BLAZZ_GATEWAY_KEY_FILE;\n"
        "                               requests carry X-Blazz-Timestamp and\n"
        "                               X-Blazz-Key-Id, signed in the timestamped mode\n"
        "  --http-concurrency N         requests in flight                      (8)\n"
        "  --http-retries N             re-sends after 503/429/no answer        (5)\n"
        "  --media-bytes P              share of live images and voice notes whose\n"
        "                               real bytes (PNG, Ogg Opus) are uploaded\n"
        "                               first (POST /v1/gateway/media) and named by\n"
        "                               the event (stored_media_uuid)            (0)\n"
        "  --lid-people P               share of new live customers whatsapp-web.js\n"
        "                               knows first by a LID: their messages come\n"
        "                               from the LID or the phone, until a\n"
        "                               contact_mapping pairs them, then both    (0)\n"
        "outbound:\n"
        "  --answer-outbound            consume wa.outbound.gw.<ID> (the sends of the\n"
        "                               sessions it serves), answer with receipts\n"
        "  --fail-ratio F               share of sends answered FAILED          (0)\n"
        "  --read-ratio F               share of delivered sends that get read  (0.8)\n"
        "  --ack-delay-ms N             sent/delivered/read spread over ~N..3N ms (500)\n"
        "  --hold-sends                 take each send (logged) and never send or answer\n"
        "                               it: a phone stuck before the instance dies\n"
        "  --sends-log FILE             one line per SendMessage: wall_ms session_id key\n"
        "  --outbound-group G           consumer group: blazz-gateway-<ID>, or\n"
        "                               blazz-gateway-<ID>.<anything>  (blazz-gateway-<ID>;\n"
        "                               an instance: blazz-gateway-<ID>.i<N>, and\n"
        "                               G.commands for its commands)\n"
        "instance mode (--gateway's principal, over Kafka):\n"
        "  --instance N                 its index                               (0)\n"
        "  --instance-url U             its URL, reported                       (none)\n"
        "  --capacity N                 sessions it can serve                   (300)\n"
        "  --heartbeat-ms N             heartbeat period                        (2000)\n"
        "  --lease-ms N                 let its sessions go when no heartbeat sent\n"
        "                               in the last N ms was answered; below the backbone's\n"
        "                               sessions.instance_timeout_s            (20000)\n"
        "  --scan-after-ms N            a QR code is scanned N ms after it shows;\n"
        "                               0: when --scan-dir/<session_id> appears  (0)\n"
        "  --scan-dir D                 see --scan-after-ms\n"
        "  --storage-dir D              credentials shared by the instances\n"
        "                               (RemoteAuth): a restarted session resumes\n"
        "  --storage-name N             the store --storage-dir is, listed in its\n"
        "                               heartbeats and named in its reports (shared)\n"
        "  --served-log FILE            wall_ms index boot start|stop session epoch\n"
        "  --phone-chats N              private chats on each session's phone, each\n"
        "                               with --history-messages messages: a connect\n"
        "                               syncs them within the command's limits  (0)\n"
        "  --rate R                     customer messages per second on its sessions\n"
        "  --answer-outbound            answer the sends addressed to it\n"
        "output:\n"
        "  --accepted-log FILE          one line per message of every accepted event:\n"
        "                               session_id wam_id (history batches: each message)\n"
        "  --json                       machine-readable final report on stdout\n"
        "  --status-file FILE           key=value progress, rewritten every second\n"
        "  --log-level L                debug|info|warn|error                   (warn)\n"
        "  --help, --version\n"
        "\n"
        "environment: BLAZZ_PG_DSN (required), BLAZZ_KAFKA_BROKERS (required for kafka\n"
        "mode and --answer-outbound), BLAZZ_KAFKA_TOPIC_PREFIX (or BLAZZ_TOPIC_PREFIX).\n"
        "Endpoints must be loopback (127.0.0.1, localhost, ::1).\n");
}

static int parse_long(const char *opt, const char *text, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "blazz-gateway-sim: --%s wants a whole number in [%ld, %ld], got '%s'\n",
                opt, lo, hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *opt, const char *text, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (*text == '\0' || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "blazz-gateway-sim: --%s wants a number in [%g, %g], got '%s'\n", opt, lo,
                hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_int(const char *opt, const char *text, long lo, long hi, int *out)
{
    long v;
    if (parse_long(opt, text, lo, hi, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

static bool tag_is_valid(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > 24)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((tag[i] >= 'a' && tag[i] <= 'z') || (tag[i] >= '0' && tag[i] <= '9') || tag[i] == '-'))
            return false;
    return true;
}

static bool host_is_loopback(const char *host, size_t len)
{
    static const char *const names[] = {"127.0.0.1", "localhost", "::1", "[::1]"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && strncasecmp(host, names[i], len) == 0)
            return true;
    return false;
}

static bool url_is_loopback(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              host_is_loopback(host, strlen(host));
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* The host part of one bootstrap entry: "[::1]:9092" -> "[::1]",
 * "localhost:9092" -> "localhost", "127.0.0.1" -> itself. */
static size_t broker_host_len(const char *entry, size_t len)
{
    if (entry[0] == '[') {
        const char *close = memchr(entry, ']', len);
        return close ? (size_t)(close - entry) + 1 : len;
    }
    const char *colon = memchr(entry, ':', len);
    bool one_colon = colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - entry));
    return one_colon ? (size_t)(colon - entry) : len;
}

/* "127.0.0.1:9092,PLAINTEXT://localhost:9093,[::1]:9094" */
static bool brokers_are_loopback(const char *brokers)
{
    for (const char *p = brokers; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *scheme_end = strstr(p, "://");
        if (scheme_end && scheme_end < p + len) {
            len -= (size_t)(scheme_end + 3 - p);
            p = scheme_end + 3;
        }
        if (len == 0 || !host_is_loopback(p, broker_host_len(p, len)))
            return false;
        if (!end)
            break;
        p = end + 1;
    }
    return true;
}

typedef struct cli {
    bz_sim_options o;
    char tag[BZ_SIM_TAG_MAX];
    char ingest_url[256];
    char outbound_group[BZ_GATEWAY_ID_MAX + 16];
    const char *log_level;
} cli;

static void set_defaults(cli *c)
{
    bz_sim_options *o = &c->o;
    *o = (bz_sim_options){
        .mode = BZ_SIM_MODE_KAFKA, .rate = 100, .duration_s = 30, .seed = 1,
        .workspaces = 3, .accounts_per_workspace = 2, .instance_count = 4,
        .history_chats = 100, .history_messages = 20,
        .http_concurrency = 8, .http_retries = 5,
        .read_ratio = 0.8, .ack_delay_ms = 500, .gateway_id = "sim",
        .instance_url = "", .capacity = 300, .heartbeat_ms = 2000, .lease_ms = 20000,
        .storage_name = "shared",
        .brokers = bz_env_or("BLAZZ_KAFKA_BROKERS", NULL),
        .pg_dsn = bz_env_or("BLAZZ_PG_DSN", NULL),
        .topic_prefix = bz_topic_prefix_from_env(),
    };
    snprintf(c->ingest_url, sizeof c->ingest_url, "http://%s/v1/events",
             bz_env_or("BLAZZ_INGEST_LISTEN", "127.0.0.1:8080"));
    o->ingest_url = c->ingest_url;
    c->log_level = "warn";
}

/* One option; returns 0, or -1 after printing what is wrong. */
static int apply_option(cli *c, int opt, const char *arg)
{
    bz_sim_options *o = &c->o;
    long v;
    switch (opt) {
    case OPT_MODE:
        if (strcmp(arg, "kafka") == 0)
            o->mode = BZ_SIM_MODE_KAFKA;
        else if (strcmp(arg, "http") == 0)
            o->mode = BZ_SIM_MODE_HTTP;
        else if (strcmp(arg, "instance") == 0)
            o->mode = BZ_SIM_MODE_INSTANCE;
        else {
            fprintf(stderr, "blazz-gateway-sim: --mode is kafka, http or instance, got '%s'\n",
                    arg);
            return -1;
        }
        return 0;
    case OPT_RATE: return parse_double("rate", arg, 0, 1e6, &o->rate);
    case OPT_DURATION: return parse_int("duration", arg, 1, 86400, &o->duration_s);
    case OPT_EVENTS: return parse_long("events", arg, 0, 1000000000L, &o->max_events);
    case OPT_SEED:
        if (parse_long("seed", arg, 0, 0x7fffffffL, &v) != 0)
            return -1;
        o->seed = (uint64_t)v;
        return 0;
    case OPT_WORKSPACES: return parse_int("workspaces", arg, 1, 1000, &o->workspaces);
    case OPT_ACCOUNTS:
        return parse_int("accounts-per-workspace", arg, 1, 100, &o->accounts_per_workspace);
    case OPT_INSTANCES: return parse_int("instances", arg, 1, 256, &o->instance_count);
    case OPT_HISTORY_CHATS: return parse_int("history-chats", arg, 0, 5000, &o->history_chats);
    case OPT_HISTORY_MESSAGES:
        return parse_int("history-messages", arg, 0, 200, &o->history_messages);
    case OPT_STRAY: return parse_int("stray-events", arg, 0, 1000000, &o->stray_events);
    case OPT_INGEST_URL: o->ingest_url = arg; return 0;
    case OPT_GATEWAY: o->gateway_id = arg; return 0;
    case OPT_KEY_FILE: o->key_file = arg; return 0;
    case OPT_HTTP_CONCURRENCY:
        return parse_int("http-concurrency", arg, 1, 256, &o->http_concurrency);
    case OPT_HTTP_RETRIES: return parse_int("http-retries", arg, 0, 100, &o->http_retries);
    case OPT_MEDIA_BYTES: return parse_double("media-bytes", arg, 0, 1, &o->media_bytes);
    case OPT_LID_PEOPLE: return parse_double("lid-people", arg, 0, 1, &o->lid_people);
    case OPT_ANSWER_OUTBOUND: o->answer_outbound = true; return 0;
    case OPT_FAIL_RATIO: return parse_double("fail-ratio", arg, 0, 1, &o->fail_ratio);
    case OPT_READ_RATIO: return parse_double("read-ratio", arg, 0, 1, &o->read_ratio);
    case OPT_ACK_DELAY: return parse_int("ack-delay-ms", arg, 0, 600000, &o->ack_delay_ms);
    case OPT_HOLD_SENDS: o->hold_sends = true; return 0;
    case OPT_SENDS_LOG: o->sends_log = arg; return 0;
    case OPT_ACCEPTED_LOG: o->accepted_log_path = arg; return 0;
    case OPT_OUTBOUND_GROUP: o->outbound_group = arg; return 0;
    case OPT_STATUS_FILE: o->status_file = arg; return 0;
    case OPT_TAG: snprintf(c->tag, sizeof c->tag, "%s", arg); return 0;
    case OPT_JSON: o->json = true; return 0;
    case OPT_LOG_LEVEL: c->log_level = arg; return 0;
    case OPT_INSTANCE: return parse_int("instance", arg, 0, 32767, &o->instance_index);
    case OPT_INSTANCE_URL: o->instance_url = arg; return 0;
    case OPT_CAPACITY: return parse_int("capacity", arg, 0, 100000, &o->capacity);
    case OPT_HEARTBEAT: return parse_int("heartbeat-ms", arg, 50, 600000, &o->heartbeat_ms);
    case OPT_LEASE: return parse_int("lease-ms", arg, 100, 3600000, &o->lease_ms);
    case OPT_SCAN_AFTER: return parse_int("scan-after-ms", arg, 0, 3600000, &o->scan_after_ms);
    case OPT_SCAN_DIR: o->scan_dir = arg; return 0;
    case OPT_PHONE_CHATS: return parse_int("phone-chats", arg, 0, 10000, &o->phone_chats);
    case OPT_STORAGE_DIR: o->storage_dir = arg; return 0;
    case OPT_STORAGE_NAME:
        o->storage_name = arg;
        if (*arg && strlen(arg) <= 64 &&
            strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
                strlen(arg))
            return 0;
        fprintf(stderr, "--storage-name: 1 to 64 letters, digits, '.', '_', ':' or '-'\n");
        return -1;
    case OPT_SERVED_LOG: o->served_log = arg; return 0;
    default: return -1;
    }
}

static int check_options(cli *c)
{
    bz_sim_options *o = &c->o;
    const char *problem = NULL;
    int kafka = o->mode != BZ_SIM_MODE_HTTP || o->answer_outbound;
    if (!o->pg_dsn && o->mode != BZ_SIM_MODE_INSTANCE)
        problem = "BLAZZ_PG_DSN is not set";
    else if (kafka && !o->brokers)
        problem = "BLAZZ_KAFKA_BROKERS is not set";
    else if (o->brokers && !brokers_are_loopback(o->brokers))
        problem = "BLAZZ_KAFKA_BROKERS must be loopback addresses";
    else if (!bz_gateway_id_valid(o->gateway_id))
        problem = "--gateway wants 1-48 characters of [a-z0-9_-]";
    else if (o->mode == BZ_SIM_MODE_HTTP && !url_is_loopback(o->ingest_url))
        problem = "--ingest-url must be an http URL on a loopback host";
    else if (!tag_is_valid(c->tag))
        problem = "--tag wants 1-24 characters of [a-z0-9-]";
    else if (o->mode == BZ_SIM_MODE_INSTANCE && o->lease_ms <= o->heartbeat_ms)
        problem = "--lease-ms must be longer than --heartbeat-ms";
    if (problem) {
        fprintf(stderr, "blazz-gateway-sim: %s (see --help)\n", problem);
        return -1;
    }
    o->tag = c->tag;
    /* an instance reads every send and command of its gateway and keeps
     * its own: each has groups of its own */
    if (!o->outbound_group) {
        if (o->mode == BZ_SIM_MODE_INSTANCE)
            snprintf(c->outbound_group, sizeof c->outbound_group, "blazz-gateway-%s.i%d",
                     o->gateway_id, o->instance_index);
        else
            snprintf(c->outbound_group, sizeof c->outbound_group, "blazz-gateway-%s",
                     o->gateway_id);
        o->outbound_group = c->outbound_group;
    }
    return 0;
}

/* http mode signs with the gateway's key, never given on the command line. */
static int read_key(bz_sim_options *o)
{
    if (o->mode != BZ_SIM_MODE_HTTP)
        return 0;
    bz_error err;
    if (bz_config_read_secret(o->key_file, "BLAZZ_GATEWAY_KEY", &o->key, &err) != BZ_OK) {
        fprintf(stderr, "blazz-gateway-sim: %s\n", err.msg);
        return -1;
    }
    if (!o->key || !*o->key) {
        fprintf(stderr, "blazz-gateway-sim: http mode needs the gateway's key: --key-file, "
                        "BLAZZ_GATEWAY_KEY or BLAZZ_GATEWAY_KEY_FILE (see --help)\n");
        return -1;
    }
    return 0;
}

static int parse_cli(int argc, char **argv, cli *c, int *exit_code)
{
    set_defaults(c);
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        if (opt == OPT_HELP) {
            print_usage(stdout);
            *exit_code = 0;
            return -1;
        }
        if (opt == OPT_VERSION) {
            printf("blazz-gateway-sim %s\n", BZ_VERSION);
            *exit_code = 0;
            return -1;
        }
        if (opt == '?' || apply_option(c, opt, optarg) != 0) {
            if (opt == '?')
                fprintf(stderr, "blazz-gateway-sim: unknown or incomplete option '%s'\n",
                        argv[optind - 1]);
            *exit_code = EXIT_USAGE;
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "blazz-gateway-sim: unexpected argument '%s'\n", argv[optind]);
        *exit_code = EXIT_USAGE;
        return -1;
    }
    if (!c->tag[0]) {
        char uuid[BZ_UUID_STR_SIZE];
        bz_error err;
        if (bz_uuid_v4(uuid, &err) != BZ_OK) {
            fprintf(stderr, "blazz-gateway-sim: %s\n", err.msg);
            *exit_code = EXIT_RUN_FAILED;
            return -1;
        }
        snprintf(c->tag, sizeof c->tag, "r%.8s", uuid);
    }
    if (check_options(c) != 0 || read_key(&c->o) != 0) {
        *exit_code = EXIT_USAGE;
        return -1;
    }
    return 0;
}

typedef struct run {
    const bz_sim_options *o;
    bz_sim_stats stats;
    bz_sim_world world;
    bz_sim_traffic *traffic;
    bz_sim_publisher *pub;
    bz_sim_media_uploader *media;
    bz_sim_outbound *outbound;
    int64_t next_status_ms;
} run;

static void write_status(run *r, const char *phase, bool force)
{
    if (!r->o->status_file)
        return;
    int64_t now = bz_monotonic_ms();
    if (!force && now < r->next_status_ms)
        return;
    r->next_status_ms = now + STATUS_EVERY_MS;
    bz_error err;
    if (bz_sim_report_write_status(r->o->status_file, &r->stats, phase, &err) != BZ_OK)
        bz_warn("%s", err.msg);
}

static bz_status send_next_event(run *r, bz_error *err)
{
    bz_sim_event ev = {0};
    bz_status st = bz_sim_traffic_next(r->traffic, &ev, err);
    if (st == BZ_OK)
        st = bz_sim_publish(r->pub, &ev, err);
    bz_sim_event_clear(&ev);
    return st;
}

/* Pace generated events at --rate until the deadline, the event cap or a
 * shutdown signal; with --answer-outbound keep answering until the deadline. */
static bz_status pace_traffic(run *r, bz_error *err)
{
    const bz_sim_options *o = r->o;
    int64_t start = bz_monotonic_ms();
    int64_t deadline = start + (int64_t)o->duration_s * 1000;
    long generated = 0;
    bool generating = o->rate > 0;
    while (!bz_shutdown_requested()) {
        int64_t now = bz_monotonic_ms();
        if (now >= deadline)
            break;
        if (generating && o->max_events && generated >= o->max_events)
            generating = false;
        if (!generating && !o->answer_outbound)
            break;
        write_status(r, generating ? bz_sim_traffic_phase(r->traffic) : "answering", false);
        int64_t due = generating ? start + (int64_t)((double)generated * 1000.0 / o->rate)
                                 : deadline;
        if (now < due) {
            int64_t wait = due - now < 100 ? due - now : 100;
            bz_sim_publisher_poll(r->pub, (int)wait);
            continue;
        }
        bz_status st = send_next_event(r, err);
        if (st != BZ_OK)
            return st;
        generated++;
    }
    return BZ_OK;
}

static bz_status start_run(run *r, bz_error *err)
{
    const bz_sim_options *o = r->o;
    bz_status st = bz_sim_world_create(o, &r->world, err);
    if (st == BZ_OK)
        st = bz_sim_traffic_new(o, &r->world, &r->traffic, err);
    if (st == BZ_OK)
        st = o->mode == BZ_SIM_MODE_HTTP ? bz_sim_publisher_new_http(o, &r->stats, &r->pub, err)
                                         : bz_sim_publisher_new_kafka(o, &r->stats, &r->pub, err);
    if (st == BZ_OK)
        st = bz_sim_media_uploader_new(o, &r->stats, &r->media, err);
    if (st == BZ_OK)
        bz_sim_traffic_upload_media(r->traffic, r->media);
    if (st == BZ_OK && o->answer_outbound)
        st = bz_sim_outbound_start(o, &r->stats, NULL, &r->outbound, err);
    return st;
}

static void finish_run(run *r)
{
    bz_error err;
    write_status(r, "draining", true);
    if (r->pub && bz_sim_publisher_drain(r->pub, DRAIN_TIMEOUT_MS, &err) != BZ_OK)
        bz_warn("draining events: %s", err.msg);
    bz_sim_outbound_stop(r->outbound);
    r->outbound = NULL;
    bz_sim_publisher_free(r->pub);
    r->pub = NULL;
    r->stats.ended_ms = bz_wall_ms();
    write_status(r, "done", true);
}

static void free_run(run *r)
{
    bz_sim_outbound_stop(r->outbound);
    bz_sim_publisher_free(r->pub);
    bz_sim_traffic_free(r->traffic);
    bz_sim_media_uploader_free(r->media);
    bz_sim_world_free(&r->world);
}

int main(int argc, char **argv)
{
    cli c = {0};
    int exit_code = 0;
    if (parse_cli(argc, argv, &c, &exit_code) != 0)
        return exit_code;
    bz_log_level level;
    bz_error err;
    if (bz_log_level_parse(c.log_level, &level, &err) != BZ_OK) {
        fprintf(stderr, "blazz-gateway-sim: --log-level: %s\n", err.msg);
        return EXIT_USAGE;
    }
    bz_log_init("blazz-gateway-sim", level);
    if (bz_signals_install_shutdown() != BZ_OK || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "blazz-gateway-sim: cannot initialise signals or libcurl\n");
        return EXIT_RUN_FAILED;
    }

    run r = {.o = &c.o};
    bz_sim_stats_init(&r.stats);
    bz_status st = BZ_OK;
    if (c.o.accepted_log_path)
        st = bz_sim_accepted_log_open(c.o.accepted_log_path, &c.o.accepted_log, &err);
    if (st == BZ_OK && c.o.mode == BZ_SIM_MODE_INSTANCE)
        st = bz_sim_instance_run(&c.o, &r.stats, &err);
    else if (st == BZ_OK)
        st = start_run(&r, &err);
    if (st == BZ_OK && c.o.mode != BZ_SIM_MODE_INSTANCE)
        st = pace_traffic(&r, &err);
    if (st == BZ_OK && c.o.mode != BZ_SIM_MODE_INSTANCE) {
        finish_run(&r);
        if (c.o.json)
            st = bz_sim_report_print_json(stdout, &r.stats, &c.o, &r.world, &err);
        else
            bz_sim_report_print_text(stdout, &r.stats, &c.o, &r.world);
    }
    if (st != BZ_OK) {
        bz_error_log("%s", err.msg);
        fprintf(stderr, "blazz-gateway-sim: %s\n", err.msg);
    }
    free_run(&r);
    bz_sim_accepted_log_close(c.o.accepted_log);
    if (c.o.key) {
        OPENSSL_cleanse(c.o.key, strlen(c.o.key));
        free(c.o.key);
    }
    curl_global_cleanup();
    return st == BZ_OK ? 0 : EXIT_RUN_FAILED;
}
