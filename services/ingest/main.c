/*
 * main.c - blazz-ingest: the trusted edge for every inbound WhatsApp event.
 *
 * Wiring only: configuration and logging (bz_service_init), the session
 * cache and the duplicate window, the gateways' keys and owners
 * (gateway_auth.h, opened with the secrets.keys ring), the Kafka path
 * (txn_pipeline.h) on the main thread, the public HTTP API (http_api.h,
 * with its router to chat.sync and the CRM's endpoints of crm_api.h) and
 * the admin endpoint on their own threads. Shutdown on SIGTERM/SIGINT: the pipeline commits its
 * open transaction and leaves the group, then the HTTP API stops accepting,
 * finishes its requests and flushes, then everything is freed.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/signals.h"
#include "crm/crm_api.h"
#include "events/sessions.h"
#include "gateway/gateway_auth.h"
#include "gateway/gateway_rate.h"
#include "http_api.h"
#include "ingest_metrics.h"
#include "kafka/limits.h"
#include "kafka/topics.h"
#include "kafka_path/dedupe.h"
#include "kafka_path/txn_pipeline.h"
#include "media/store.h"
#include "media_edge/media_api.h"
#include "pg_probe.h"
#include "runtime/service.h"

static const bz_config_key ingest_keys[] = {
    {.name = "ingest.listen", .type = BZ_CFG_STRING, .def = "127.0.0.1:8080",
     .help = "public API (POST /v1/events, GET/POST /v1/meta/webhook, POST /v1/messages, "
             "POST /v1/chats/read) as host:port"},
    {.name = "secrets.keys", .type = BZ_CFG_STRING, .secret = 1,
     .help = "keys the gateways' signing keys are sealed with, oldest first: ID:KEY[,ID:KEY]; "
             "the newest also seals the webhook secrets the CRM rotates; unset: every signed "
             "POST is refused (401) and a rotation answers 503"},
    {.name = "ingest.meta_gateway", .type = BZ_CFG_STRING, .def = "meta",
     .help = "the gateway (of kind meta) whose keys verify /v1/meta/webhook"},
    {.name = "ingest.gateway_keys_refresh_s", .type = BZ_CFG_INT, .def = "10", .min = 1,
     .max = 3600, .help = "gateways' keys and the sessions they serve are re-read this often, "
                          "in the background: a new key or binding works within this time"},
    {.name = "ingest.unnamed_gateway", .type = BZ_CFG_STRING,
     .help = "the gateway (of kind webjs) of POST /v1/events without X-Blazz-Gateway, such as "
             "the seeds' notifier; unset: such requests are refused (401)"},
    {.name = "ingest.signature_tolerance_s", .type = BZ_CFG_INT, .def = "300", .min = 1,
     .max = 86400, .help = "an X-Blazz-Timestamp further than this from now is refused (401)"},
    {.name = "ingest.require_signed_timestamp", .type = BZ_CFG_BOOL, .def = "true",
     .help = "refuse gateway POSTs naming their gateway without X-Blazz-Timestamp (replay "
             "protection); the unnamed gateway (the seeds' notifier) signs none"},
    /* Twice the most the project's goals push through one gateway (make
     * bench: 5,000 events/s from one simulator), a second's worth at once
     * (a gateway back from a 2 s pause at that rate). The seeds' 60 a
     * minute was one notifier's; a gateway here serves many sessions. */
    {.name = "ingest.gateway_rate_per_second", .type = BZ_CFG_DOUBLE, .def = "10000", .min = 0,
     .max = 1000000,
     .help = "requests per second one verified gateway may make to this instance (POST "
             "/v1/events, /v1/gateway/media; Meta's webhook never counts): 429 with Retry-After "
             "above; 0: no limit"},
    {.name = "ingest.gateway_rate_burst", .type = BZ_CFG_DOUBLE, .def = "10000", .min = 1,
     .max = 10000000, .help = "requests a gateway may make at once before its rate applies"},
    {.name = "ingest.meta_verify_token", .type = BZ_CFG_STRING, .secret = 1,
     .help = "token Meta's GET handshake must present; unset: handshakes are refused (403)"},
    {.name = "ingest.max_body_bytes", .type = BZ_CFG_INT,
     .def = BZ_LIMIT_TEXT(BZ_INBOUND_BODY_MAX_BYTES), .min = 1024,
     .max = BZ_INBOUND_BODY_MAX_BYTES,
     .help = "largest accepted HTTP body (413 above); at most what the Kafka record limit allows"},
    {.name = "ingest.dedupe_window_s", .type = BZ_CFG_INT, .def = "600", .min = 0, .max = 604800,
     .help = "Kafka path: duplicate event_ids within this many seconds are dropped"},
    {.name = "ingest.dedupe_capacity", .type = BZ_CFG_INT, .def = "200000", .min = 1000,
     .max = 50000000, .help = "most event_ids the duplicate window remembers"},
    {.name = "ingest.group_id", .type = BZ_CFG_STRING, .def = "blazz-ingest",
     .help = "consumer group of the Kafka path"},
    {.name = "ingest.transactional_id", .type = BZ_CFG_STRING,
     .help = "transactional.id of the Kafka path (default <group_id>-<hostname>-<HTTP port>); "
             "unique per live instance, stable across its restarts"},
    {.name = "ingest.default_country_code", .type = BZ_CFG_STRING, .def = "62",
     .help = "country calling code for national numbers (0812... -> +62812...)"},
    {.name = "ingest.txn_max_events", .type = BZ_CFG_INT, .def = "10000", .min = 1, .max = 100000,
     .help = "raw events per Kafka transaction at most"},
    {.name = "ingest.txn_max_ms", .type = BZ_CFG_INT, .def = "25", .min = 1, .max = 60000,
     .help = "a Kafka transaction commits after this many milliseconds at most"},
    {.name = "ingest.transaction_timeout_ms", .type = BZ_CFG_INT, .def = "30000", .min = 1000,
     .max = 900000, .help = "broker-side transaction timeout (an abandoned transaction aborts)"},
    {.name = "ingest.consumer_session_timeout_ms", .type = BZ_CFG_INT, .def = "10000",
     .min = 3000, .max = 300000, .help = "consumer group session timeout of the Kafka path"},
    {.name = "ingest.fetch_wait_ms", .type = BZ_CFG_INT, .def = "10", .min = 1, .max = 1000,
     .help = "Kafka path: the broker gathers records this long per fetch (fewer round trips)"},
    {.name = "ingest.produce_timeout_ms", .type = BZ_CFG_INT, .def = "5000", .min = 100,
     .max = 60000, .help = "HTTP: wait this long for the broker's ack before answering 503"},
    {.name = "ingest.http_max_connections", .type = BZ_CFG_INT, .def = "1024", .min = 1,
     .max = 65536, .help = "open HTTP connections at most (more wait to be accepted)"},
    {.name = "ingest.http_max_connections_per_address", .type = BZ_CFG_INT, .def = "256",
     .min = 1, .max = 65536,
     .help = "open HTTP connections from one client address at most (more are refused)"},
    {.name = "ingest.http_idle_timeout_s", .type = BZ_CFG_INT, .def = "30", .min = 1,
     .max = 3600, .help = "an HTTP connection must start a request this soon after it opened "
                          "or got its last answer"},
    {.name = "ingest.http_request_deadline_s", .type = BZ_CFG_INT, .def = "10", .min = 1,
     .max = 3600, .help = "an HTTP request must arrive whole (headers and body) this soon "
                          "after its request line; slower ones are cut"},
    {.name = "ingest.http_min_upload_rate", .type = BZ_CFG_INT, .def = "65536", .min = 1024,
     .max = 1073741824LL,
     .help = "bytes/s: a media upload whose sender is proven before its body (API key, signed "
             "statement) may take its length at this rate beyond http_request_deadline_s"},
    {.name = "ingest.http_max_buffered_bytes", .type = BZ_CFG_INT, .def = "67108864",
     .min = 1024, .max = 17179869184LL,
     .help = "HTTP request bodies held at once, in bytes (503 with Retry-After above); at "
             "least max_body_bytes"},
    {.name = "ingest.http_max_buffered_bytes_per_address", .type = BZ_CFG_INT, .def = "0",
     .min = 0, .max = 17179869184LL,
     .help = "bytes of unauthenticated request bodies one client address (IPv4, IPv6 /64) may "
             "hold (503 above); 0: a sixteenth of http_max_buffered_bytes, at least "
             "max_body_bytes"},
    {.name = "ingest.http_threads", .type = BZ_CFG_INT, .def = "2", .min = 1, .max = 64,
     .help = "HTTP event-loop threads"},
    {.name = "ingest.http_linger_ms", .type = BZ_CFG_INT, .def = "0", .min = 0, .max = 1000,
     .help = "HTTP producer batching delay; 0 sends at once (records still batch while earlier "
             "ones are in flight)"},
    {.name = "ingest.max_future_s", .type = BZ_CFG_INT, .def = "86400", .min = 0,
     .max = 31536000, .help = "timestamps further in the future than this are invalid"},
    {.name = "ingest.session_ttl_s", .type = BZ_CFG_INT, .def = "60", .min = 0, .max = 86400,
     .help = "how long a resolved session is cached"},
    {.name = "ingest.session_negative_ttl_s", .type = BZ_CFG_INT, .def = "5", .min = 0,
     .max = 3600, .help = "how long an unknown session is cached"},
    {.name = "ingest.session_lookup_timeout_ms", .type = BZ_CFG_INT, .def = "200", .min = 10,
     .max = 60000,
     .help = "HTTP: an uncached session's owner not found in PostgreSQL within this time is "
             "answered 503 (the sender retries), and lookups fail at once for a second after"},
    {.name = "ingest.pg_probe_interval_ms", .type = BZ_CFG_INT, .def = "1000", .min = 100,
     .max = 60000,
     .help = "/readyz: how often PostgreSQL is probed (SELECT 1 on a connection of its own)"},
    {.name = "crm.enabled", .type = BZ_CFG_BOOL, .def = "true",
     .help = "serve the CRM's POST /v1/messages and /v1/chats/read (API keys)"},
    {.name = "crm.api_key_cache_s", .type = BZ_CFG_INT, .def = "10", .min = 0, .max = 3600,
     .help = "how long a key's row is cached: a revoked key is refused within this time"},
    {.name = "crm.rate_per_second", .type = BZ_CFG_DOUBLE, .def = "50", .min = 0, .max = 100000,
     .help = "requests per second per workspace and instance (429 above; 0: no limit)"},
    {.name = "crm.rate_burst", .type = BZ_CFG_DOUBLE, .def = "100", .min = 1, .max = 1000000,
     .help = "requests a workspace may make at once before the rate applies"},
    {.name = "crm.sessions_per_workspace", .type = BZ_CFG_INT, .def = "100", .min = 0,
     .max = 1000000,
     .help = "live sessions (whatsapp_accounts) a workspace may hold: POST /v1/sessions past "
             "it is 409 session_quota_exceeded, and chat-sync refuses the create (0: no limit)"},
    {.name = "crm.webhook_endpoints_per_workspace", .type = BZ_CFG_INT, .def = "10", .min = 0,
     .max = 10000,
     .help = "live webhook endpoints a workspace may hold: POST /v1/webhook-endpoints past it "
             "is 409 endpoint_quota_exceeded (each endpoint is a delivery per event; 0: no "
             "limit)"},
    {.name = "crm.unsent_media_bytes_per_workspace", .type = BZ_CFG_INT, .def = "1073741824",
     .min = 0, .max = 1099511627776LL,
     .help = "bytes of POST /v1/media uploads no message refers to a workspace may hold: an "
             "upload past it is 409 media_quota_exceeded (0: no limit)"},
    {.name = "crm.read_dsn", .type = BZ_CFG_STRING, .def = "", .secret = 1,
     .help = "PostgreSQL connection string of a replica that answers the CRM's reads (its GET "
             "routes), one connection per worker; empty: pg.dsn answers them"},
    {.name = "crm.workers", .type = BZ_CFG_INT, .def = "4", .min = 1, .max = 64,
     .help = "threads answering the CRM endpoints, each with a PostgreSQL connection for the "
             "lookups and a producer"},
    /* the media store: uploads kept, links served (§16.3) */
    BZ_MEDIA_STORE_CONFIG_KEYS,
};

typedef struct ingest {
    bz_service svc;
    ing_metrics metrics;
    char raw_topic[BZ_TOPIC_NAME_MAX], sync_topic[BZ_TOPIC_NAME_MAX], dlq_topic[BZ_TOPIC_NAME_MAX];
    char session_topic[BZ_TOPIC_NAME_MAX], crm_topic[BZ_TOPIC_NAME_MAX];
    char transactional_id[512];
    ing_sessions *sessions;
    bz_keyring keyring;
    ing_gateway_auth *gateways;
    ing_gateway_rate *gateway_rate;
    ing_dedupe *dedupe;
    ing_pipeline *pipeline;
    ing_crm_api *crm;
    bz_media_store *media_store;
    ing_media_api *media;
    ing_http_api *http;
    ing_pg_probe *pg_probe;
} ingest;

static int64_t cfg_int(const ingest *app, const char *key)
{
    return bz_config_int(app->svc.config, key);
}

static const char *cfg_str(const ingest *app, const char *key)
{
    return bz_config_string(app->svc.config, key);
}

static void readiness(void *ctx, bz_readiness *r)
{
    ingest *app = ctx;
    int assigned = app->pipeline ? ing_pipeline_assigned(app->pipeline) : 0;
    if (app->http)
        ing_http_api_report_readiness(app->http, r);
    else
        bz_readiness_add(r, "http", false, "down");
    bz_readiness_add(r, "partitions", assigned > 0, "%d assigned", assigned);
    if (app->gateways)
        ing_gateway_auth_report_readiness(app->gateways, r);
    if (app->pg_probe)
        ing_pg_probe_report_readiness(app->pg_probe, r);
    else
        bz_readiness_add(r, "postgresql", false, "not probed");
}

/* Two live producers with one transactional.id fence each other, so each
 * instance needs its own; and an instance restarted after a crash should
 * get its old one back, which fences the dead process and aborts its open
 * transaction at once (otherwise chat.sync readers wait for it until
 * ingest.transaction_timeout_ms). The host name and the port the HTTP API
 * is bound to give both: no two live processes hold one host:port, and a
 * restart listens where it did before (with ingest.listen port 0 the port
 * changes on each start, so a restart waits out the timeout instead). */
static void derive_transactional_id(ingest *app)
{
    const char *given = cfg_str(app, "ingest.transactional_id");
    if (given && *given) {
        snprintf(app->transactional_id, sizeof app->transactional_id, "%s", given);
        return;
    }
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(app->transactional_id, sizeof app->transactional_id, "%s-%s-%u",
             cfg_str(app, "ingest.group_id"), host, (unsigned)ing_http_api_port(app->http));
}

static bz_status name_topics(ingest *app, bz_error *err)
{
    const char *prefix = cfg_str(app, "kafka.topic_prefix");
    bz_status st = bz_topic_name_checked(prefix, bz_topic_base(BZ_TOPIC_WA_INBOUND_RAW),
                                         app->raw_topic, sizeof app->raw_topic, err);
    if (st == BZ_OK)
        st = bz_topic_name_checked(prefix, bz_topic_base(BZ_TOPIC_CHAT_SYNC), app->sync_topic,
                                   sizeof app->sync_topic, err);
    if (st == BZ_OK)
        st = bz_topic_name_checked(prefix, bz_topic_base(BZ_TOPIC_WA_INBOUND_DLQ), app->dlq_topic,
                                   sizeof app->dlq_topic, err);
    if (st == BZ_OK)
        st = bz_topic_name_checked(prefix, bz_topic_base(BZ_TOPIC_SESSION_EVENTS),
                                   app->session_topic, sizeof app->session_topic, err);
    if (st == BZ_OK)
        st = bz_topic_name_checked(prefix, bz_topic_base(BZ_TOPIC_CRM_COMMANDS), app->crm_topic,
                                   sizeof app->crm_topic, err);
    return st;
}

/* The ring that opens the gateways' stored keys, the keys and owners the
 * HTTP path checks requests against, and the rate a verified gateway may
 * have. */
static bz_status start_gateway_auth(ingest *app, bz_error *err)
{
    bz_status st = bz_keyring_from_config(app->svc.config, NULL, &app->keyring, err);
    if (st != BZ_OK)
        return st;
    ing_gateway_auth_config gcfg = {
        .pg_dsn = cfg_str(app, "pg.dsn"), .keyring = &app->keyring,
        .refresh_ms = cfg_int(app, "ingest.gateway_keys_refresh_s") * 1000,
        .timestamp_tolerance_ms = cfg_int(app, "ingest.signature_tolerance_s") * 1000,
        .require_timestamp = bz_config_bool(app->svc.config, "ingest.require_signed_timestamp"),
        .unnamed_gateway = cfg_str(app, "ingest.unnamed_gateway"), .metrics = &app->metrics};
    st = ing_gateway_auth_new(&gcfg, &app->gateways, err);
    const bz_config *c = app->svc.config;
    if (st == BZ_OK)
        st = ing_gateway_rate_new(bz_config_double(c, "ingest.gateway_rate_per_second"),
                                  bz_config_double(c, "ingest.gateway_rate_burst"),
                                  &app->gateway_rate, err);
    return st;
}

/* Whether dsn (URI or key=value) lets libpq connect to a standby: libs/pg
 * asks for a writable server (target_session_attrs=read-write) unless the
 * DSN says another. */
static int dsn_takes_a_standby(const char *dsn)
{
    static const char *const standby_ok[] = {"any", "prefer-standby", "standby", "read-only"};
    const char *at = strstr(dsn, "target_session_attrs");
    if (!at)
        return 0;
    at += strlen("target_session_attrs");
    at += strspn(at, " ");
    if (*at++ != '=')
        return 0;
    at += strspn(at, " '");
    for (size_t i = 0; i < sizeof standby_ok / sizeof standby_ok[0]; i++) {
        size_t n = strlen(standby_ok[i]);
        if (strncmp(at, standby_ok[i], n) == 0 && strchr(" '&", at[n]))
            return 1;
    }
    return 0;
}

/* The buffered-bytes bound and one address's share of it: the share holds
 * one largest body at least, and a sixteenth of the bound by default, so
 * that 15 addresses cannot fill the bound. */
static bz_status share_buffered_bytes(ingest *app, ing_http_api_config *hcfg, bz_error *err)
{
    size_t share = (size_t)cfg_int(app, "ingest.http_max_buffered_bytes_per_address");
    if (hcfg->max_buffered_bytes < hcfg->max_body_bytes)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "ingest.http_max_buffered_bytes must be at least ingest.max_body_bytes");
    if (share == 0) {
        share = hcfg->max_buffered_bytes / 16;
        share = share < hcfg->max_body_bytes ? hcfg->max_body_bytes : share;
    }
    if (share < hcfg->max_body_bytes || share > hcfg->max_buffered_bytes)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "ingest.http_max_buffered_bytes_per_address must lie between "
                       "ingest.max_body_bytes and ingest.http_max_buffered_bytes");
    hcfg->max_buffered_per_address = share;
    return BZ_OK;
}

/* The media endpoints (media_api.h) need the CRM's workers and a store
 * whose links can be signed: a local store is opened only with
 * media.link_secret set (no default credential), an S3 one always.
 * Without, the endpoints answer 404 and start-up says why. */
static int media_configured(const ingest *app)
{
    const char *location = cfg_str(app, "media.location");
    const char *secret = cfg_str(app, "media.link_secret");
    return (location && strcmp(location, "s3") == 0) || (secret && *secret);
}

static bz_status start_media(ingest *app, bz_error *err)
{
    if (!app->crm || !media_configured(app))
        return BZ_OK;
    bz_status st = bz_media_store_open(app->svc.config, &app->media_store, err);
    ing_media_api_config mcfg = {.store = app->media_store, .crm = app->crm,
                                 .gateways = app->gateways, .gateway_rate = app->gateway_rate,
                                 .link_ttl_s = cfg_int(app, "media.link_ttl_s"),
                                 .metrics = &app->metrics};
    if (st == BZ_OK)
        st = ing_media_api_new(&mcfg, &app->media, err);
    return st;
}

static bz_status build(ingest *app, bz_error *err)
{
    const char *brokers = cfg_str(app, "kafka.brokers");
    bz_status st = name_topics(app, err);
    if (st == BZ_OK)
        st = ing_metrics_register(app->svc.metrics, &app->metrics, err);
    ing_sessions_config scfg = {.pg_dsn = cfg_str(app, "pg.dsn"), .brokers = brokers,
                               .session_events_topic = app->session_topic,
                               .ttl_ms = cfg_int(app, "ingest.session_ttl_s") * 1000,
                               .negative_ttl_ms = cfg_int(app, "ingest.session_negative_ttl_s") * 1000};
    if (st == BZ_OK)
        st = ing_sessions_new(&scfg, &app->sessions, err);
    if (st == BZ_OK)
        st = ing_dedupe_new((size_t)cfg_int(app, "ingest.dedupe_capacity"),
                           cfg_int(app, "ingest.dedupe_window_s") * 1000, &app->dedupe, err);
    if (st == BZ_OK && cfg_int(app, "ingest.txn_max_events") * 2 > cfg_int(app, "ingest.dedupe_capacity"))
        st = bz_fail(err, BZ_ERR_CONFIG,
                     "ingest.txn_max_events must be at most half of ingest.dedupe_capacity");
    int64_t max_future_ms = cfg_int(app, "ingest.max_future_s") * 1000;
    if (st == BZ_OK)
        st = start_gateway_auth(app, err);
    const char *default_cc = cfg_str(app, "ingest.default_country_code");
    ing_crm_api_config ccfg = {
        .pg_dsn = cfg_str(app, "pg.dsn"), .read_dsn = cfg_str(app, "crm.read_dsn"),
        .brokers = brokers, .crm_topic = app->crm_topic, .default_cc = default_cc, .key_cache_ms = cfg_int(app, "crm.api_key_cache_s") * 1000,
        .rate_per_second = bz_config_double(app->svc.config, "crm.rate_per_second"),
        .rate_burst = bz_config_double(app->svc.config, "crm.rate_burst"),
        .workers = (int)cfg_int(app, "crm.workers"),
        .sessions_per_workspace = (uint32_t)cfg_int(app, "crm.sessions_per_workspace"),
        .endpoints_per_workspace = (uint32_t)cfg_int(app, "crm.webhook_endpoints_per_workspace"),
        .unsent_media_bytes_per_workspace =
            (uint64_t)cfg_int(app, "crm.unsent_media_bytes_per_workspace"),
        .produce_timeout_ms = (int)cfg_int(app, "ingest.produce_timeout_ms"),
        .keyring = &app->keyring, .metrics = &app->metrics};
    if (st == BZ_OK && *ccfg.read_dsn)
        st = bz_pg_dsn_refuse_weak_password(ccfg.read_dsn, err);
    if (st == BZ_OK && *ccfg.read_dsn && !dsn_takes_a_standby(ccfg.read_dsn))
        st = bz_fail(err, BZ_ERR_CONFIG,
                     "crm.read_dsn names a replica: say target_session_attrs=any (or "
                     "prefer-standby, standby, read-only) in it, else a standby is refused");
    if (st == BZ_OK && bz_config_bool(app->svc.config, "crm.enabled"))
        st = ing_crm_api_new(&ccfg, &app->crm, err);
    if (st == BZ_OK)
        st = start_media(app, err);
    ing_sessions_config http_scfg = scfg;
    http_scfg.lookup_timeout_ms = (int)cfg_int(app, "ingest.session_lookup_timeout_ms");
    ing_http_api_config hcfg = {
        .listen = cfg_str(app, "ingest.listen"), .brokers = brokers, .raw_topic = app->raw_topic,
        .sync_topic = app->sync_topic, .dlq_topic = app->dlq_topic, .sessions = http_scfg,
        .gateways = app->gateways, .meta_gateway = cfg_str(app, "ingest.meta_gateway"),
        .meta_verify_token = cfg_str(app, "ingest.meta_verify_token"),
        .max_body_bytes = (size_t)cfg_int(app, "ingest.max_body_bytes"),
        .produce_timeout_ms = (int)cfg_int(app, "ingest.produce_timeout_ms"),
        .max_connections = (int)cfg_int(app, "ingest.http_max_connections"),
        .max_connections_per_address = (int)cfg_int(app, "ingest.http_max_connections_per_address"),
        .idle_timeout_s = (int)cfg_int(app, "ingest.http_idle_timeout_s"),
        .request_deadline_s = (int)cfg_int(app, "ingest.http_request_deadline_s"),
        .min_upload_rate = (size_t)cfg_int(app, "ingest.http_min_upload_rate"),
        .max_buffered_bytes = (size_t)cfg_int(app, "ingest.http_max_buffered_bytes"),
        .threads = (int)cfg_int(app, "ingest.http_threads"),
        .linger_ms = (int)cfg_int(app, "ingest.http_linger_ms"),
        .default_cc = default_cc, .max_future_ms = max_future_ms, .metrics = &app->metrics,
        .crm = app->crm, .media = app->media, .gateway_rate = app->gateway_rate};
    if (st == BZ_OK)
        st = share_buffered_bytes(app, &hcfg, err);
    /* The HTTP API first: its bound port names the Kafka path's producer. */
    if (st == BZ_OK)
        st = ing_http_api_start(&hcfg, &app->http, err);
    if (st == BZ_OK)
        derive_transactional_id(app);
    ing_pipeline_config pcfg = {
        .brokers = brokers, .group_id = cfg_str(app, "ingest.group_id"),
        .topic_prefix = cfg_str(app, "kafka.topic_prefix"),
        .transactional_id = app->transactional_id, .raw_topic = app->raw_topic,
        .meta_gateway = cfg_str(app, "ingest.meta_gateway"),
        .sync_topic = app->sync_topic, .dlq_topic = app->dlq_topic,
        .txn_max_events = (int)cfg_int(app, "ingest.txn_max_events"),
        .txn_max_ms = (int)cfg_int(app, "ingest.txn_max_ms"),
        .transaction_timeout_ms = (int)cfg_int(app, "ingest.transaction_timeout_ms"),
        .session_timeout_ms = (int)cfg_int(app, "ingest.consumer_session_timeout_ms"),
        .fetch_wait_ms = (int)cfg_int(app, "ingest.fetch_wait_ms"),
        .default_cc = default_cc, .max_future_ms = max_future_ms,
        .sessions = app->sessions, .dedupe = app->dedupe, .metrics = &app->metrics};
    if (st == BZ_OK)
        st = ing_pipeline_new(&pcfg, &app->pipeline, err);
    if (st == BZ_OK)
        st = ing_pg_probe_start(cfg_str(app, "pg.dsn"),
                               (int)cfg_int(app, "ingest.pg_probe_interval_ms"), &app->pg_probe,
                               err);
    if (st == BZ_OK)
        st = bz_service_start_admin(&app->svc, readiness, app, err);
    return st;
}

static void warn_about_missing_secrets(const ingest *app)
{
    static const char *const keys[] = {"secrets.keys", "ingest.meta_verify_token"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = cfg_str(app, keys[i]);
        if (!v || !*v)
            bz_warn("%s is not set: its endpoint refuses every request", keys[i]);
    }
}

static void tear_down(ingest *app)
{
    ing_pipeline_free(app->pipeline);
    ing_http_api_stop(app->http);
    app->http = NULL;
    ing_media_api_free(app->media);
    app->media = NULL;
    bz_media_store_close(app->media_store);
    app->media_store = NULL;
    ing_crm_api_free(app->crm);
    app->crm = NULL;
    ing_sessions_free(app->sessions);
    ing_gateway_auth_free(app->gateways);
    ing_gateway_rate_free(app->gateway_rate);
    bz_keyring_free(&app->keyring);
    ing_dedupe_free(app->dedupe);
    bz_service_free(&app->svc);
    /* After the admin server (in bz_service_free), whose /readyz reads it. */
    ing_pg_probe_stop(app->pg_probe);
}

int main(int argc, char **argv)
{
    static ingest app;
    int exit_code;
    if (bz_service_init(&app.svc, "ingest", argc, argv, ingest_keys,
                        sizeof ingest_keys / sizeof ingest_keys[0], &exit_code) != BZ_OK)
        return exit_code;
    bz_error err;
    bz_status st = build(&app, &err);
    if (st != BZ_OK) {
        bz_error_log("start-up failed: %s", err.msg);
        tear_down(&app);
        return st == BZ_ERR_CONFIG ? BZ_SERVICE_EXIT_USAGE : 1;
    }
    warn_about_missing_secrets(&app);
    if (!app.media)
        bz_warn("ingest: media.link_secret is not set (and media.location is not s3): "
                "the media endpoints answer 404");
    bz_info("ingest: HTTP on port %u, %s -> %s", (unsigned)ing_http_api_port(app.http),
            app.raw_topic, app.sync_topic);
    st = ing_pipeline_run(app.pipeline, &err);
    if (st != BZ_OK)
        bz_error_log("kafka path stopped: %s", err.msg);
    bz_info("shutting down (signal %d)", bz_shutdown_signal());
    tear_down(&app);
    return st == BZ_OK ? 0 : 1;
}
