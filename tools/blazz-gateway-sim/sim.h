/*
 * sim.h - what the modules of blazz-gateway-sim share: the options of a run,
 * the kinds of event it produces, and a small deterministic random number
 * generator.
 *
 * The simulator plays a fleet of whatsapp-web.js gateway instances. It
 * creates demo workspaces and connected accounts in PostgreSQL (world.c),
 * generates a seeded stream of realistic InboundEvents (traffic.c), hands
 * them to ingest over HTTP or straight to Kafka (publish_*.c), answers the
 * SendMessages it finds on its wa.outbound.gw.<ID> with receipts (outbound.c) and counts
 * everything for the final report (report.c). main.c wires the pieces.
 *
 * Everything random that shapes the traffic comes from bz_sim_rng seeded
 * with --seed, so a seed fixes the sequence of events (kinds, contacts,
 * bodies, message ids); only event ids, trace ids and wall-clock timestamps
 * differ between two runs with the same seed.
 */
#ifndef BZ_SIM_H
#define BZ_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define BZ_SIM_SESSION_ID_MAX 96

struct bz_sim_accepted_log; /* accepted_log.h */
#define BZ_SIM_TAG_MAX 32

typedef enum bz_sim_mode {
    BZ_SIM_MODE_KAFKA = 0, /* produce to <prefix>wa.inbound.raw */
    BZ_SIM_MODE_HTTP,      /* POST to ingest's /v1/events */
    BZ_SIM_MODE_INSTANCE   /* one instance under the backbone's command (instance.h) */
} bz_sim_mode;

/* What an InboundEvent is about, as counted in the report. Messages are
 * split by who sent them; outbound echoes and receipts made while answering
 * sends are counted under the same kinds as generated ones. */
typedef enum bz_sim_kind {
    BZ_SIM_KIND_SESSION_STATUS = 0,
    BZ_SIM_KIND_HISTORY_SYNC,
    BZ_SIM_KIND_MESSAGE_PRIVATE, /* inbound, private chat */
    BZ_SIM_KIND_MESSAGE_GROUP,   /* inbound, group chat */
    BZ_SIM_KIND_MESSAGE_ECHO,    /* from_me: sent from the phone or for a SendMessage */
    BZ_SIM_KIND_ACK,             /* receipt of an outbound message */
    BZ_SIM_KIND_GROUP_UPDATE,
    BZ_SIM_KIND_CONTACT_MAPPING, /* a LID learned to be a phone (contact_mapping) */
    BZ_SIM_KIND_COUNT
} bz_sim_kind;

/* "session_status", "history_sync", ... (static strings). */
const char *bz_sim_kind_name(bz_sim_kind kind);

typedef struct bz_sim_options {
    bz_sim_mode mode;
    double rate;             /* events per second; 0 = no generated traffic */
    int duration_s;          /* the run ends after this many seconds */
    long max_events;         /* generated events at most (0 = no limit) */
    int stray_events;        /* first live events sent for a session no account has */
    uint64_t seed;
    int workspaces;
    int accounts_per_workspace;
    int instance_count;      /* gateway instances: assigned = workspace_id % count */
    int history_chats;       /* chats per account in the initial history sync */
    int history_messages;    /* last N messages per synced chat */
    const char *ingest_url;  /* http mode: full URL of POST /v1/events */
    const char *gateway_id;  /* the gateway it is: serves its accounts, names its topic */
    const char *key_file;    /* http mode: where the signing key is ("-": stdin), or NULL */
    double media_bytes;      /* http mode: share of images and voice notes uploaded as bytes */
    double lid_people;       /* share of new live customers known first by a LID */
    char *key;               /* http mode: the signing key (heap, wiped at exit) */
    int http_concurrency;    /* requests in flight */
    int http_retries;        /* re-sends after 503 / 429 / connection errors */
    bool answer_outbound;
    double fail_ratio;       /* share of SendMessages answered FAILED */
    double read_ratio;       /* share of delivered sends that get read */
    int ack_delay_ms;        /* scale of the sent -> delivered -> read delays */
    bool hold_sends;         /* take sends and answer none (a stuck phone) */
    const char *sends_log;   /* file: one line per SendMessage received */
    const char *accepted_log_path; /* file: one line per message of an accepted event */
    struct bz_sim_accepted_log *accepted_log; /* opened by main from accepted_log_path */
    const char *outbound_group;
    const char *status_file; /* key=value progress, rewritten every second */
    const char *tag;         /* names this run's world (session ids, workspaces) */
    bool json;
    const char *brokers;
    const char *pg_dsn;
    const char *topic_prefix;
    /* instance mode (instance.h) */
    int instance_index;
    const char *instance_url;
    int capacity;
    int heartbeat_ms;
    int lease_ms;
    int scan_after_ms;
    const char *scan_dir;
    const char *storage_dir;
    const char *storage_name; /* the store storage_dir is, as heartbeats name it */
    const char *served_log;
    int phone_chats;          /* private chats on a session's phone (instance_history.h) */
} bz_sim_options;

/* Microseconds on the monotonic clock, for latencies. */
static inline int64_t bz_sim_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* splitmix64: tiny, fast, and good enough to make traffic look random. */
typedef struct bz_sim_rng {
    uint64_t state;
} bz_sim_rng;

static inline uint64_t bz_sim_rng_next(bz_sim_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint64_t bz_sim_rng_below(bz_sim_rng *r, uint64_t n)
{
    return n ? bz_sim_rng_next(r) % n : 0;
}

/* Uniform in [lo, hi]. */
static inline int64_t bz_sim_rng_between(bz_sim_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)bz_sim_rng_below(r, (uint64_t)(hi - lo + 1));
}

/* True with probability p. */
static inline bool bz_sim_rng_chance(bz_sim_rng *r, double p)
{
    return (double)(bz_sim_rng_next(r) >> 11) * 0x1.0p-53 < p;
}

#endif
