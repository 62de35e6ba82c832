/*
 * gateway_auth.c - gateways' signing keys and session ownership for the
 * HTTP threads (see gateway_auth.h).
 *
 * The directory is immutable once built: an array of gateways, each with
 * its opened keys, and a chained hash of session -> serving gateway. The
 * refresher (periodic.h) builds a new one from PostgreSQL on its own
 * connection and swaps it in under a mutex; a request takes a reference
 * under the same mutex and computes its HMACs holding only that reference,
 * so no request waits for a read, a read for a request, or one request for
 * another's HMAC. The last reference frees a directory (its keys wiped).
 */
#include "gateway/gateway_auth.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/hash.h"
#include "core/log.h"
#include "events/event_tree.h"
#include "periodic.h"
#include "pg/pg.h"
#include "wa/crm_command.h"
#include "wa/signature.h"

#define SEALED_MAX 1024
#define TIMESTAMP_MAX 20
#define FIRST_READ_RETRY_MS 1000

typedef struct gw_key {
    uint8_t *key;
    size_t len;
    char id[BZ_GATEWAY_KEY_ID_LEN + 1]; /* its X-Blazz-Key-Id */
    int64_t from_ms, until_ms;          /* until 0: open-ended */
} gw_key;

typedef struct gw {
    char id[BZ_GATEWAY_ID_MAX + 1];
    ing_gateway_kind kind;
    gw_key *keys;
    size_t nkeys;
} gw;

typedef struct owner {
    struct owner *next, *next_of_account;
    int64_t account_id;
    char gateway[BZ_GATEWAY_ID_MAX + 1]; /* "": no enabled gateway */
    char session[];
} owner;

typedef struct bucket {
    owner *head;
} bucket;

typedef struct directory {
    int refs; /* under ing_gateway_auth.mu */
    gw *gateways;
    size_t ngateways;
    bucket *owners;      /* by session id, chained through next */
    bucket *by_account;  /* the same owners by account id, through next_of_account */
    size_t nbuckets;
    size_t nsessions;
} directory;

struct ing_gateway_auth {
    ing_gateway_auth_config cfg;
    pthread_mutex_t mu; /* current and every directory's refs */
    directory *current; /* NULL until the first read */
    bz_pg *pg;          /* the refresher's */
    ing_periodic *refresher;
};

static const char keys_sql[] =
    "SELECT g.id, g.kind, k.id::text, encode(k.secret_ciphertext, 'hex'), "
    "  (extract(epoch FROM k.valid_from) * 1000)::bigint, "
    "  coalesce((extract(epoch FROM k.valid_until) * 1000)::bigint, 0) "
    "FROM gateways g JOIN gateway_keys k ON k.gateway_id = g.id "
    "WHERE g.disabled_at IS NULL AND (k.valid_until IS NULL OR k.valid_until > now()) "
    "ORDER BY g.id, k.id";

/* The owning gateway counts only while it is enabled (ARCHITECTURE.md §9.2);
 * of two live accounts with one session, the older. */
static const char owners_sql[] =
    "SELECT a.session_id, coalesce(g.id, ''), a.id FROM whatsapp_accounts a "
    "LEFT JOIN gateways g ON g.id = a.gateway_id AND g.disabled_at IS NULL "
    "WHERE a.deleted_at IS NULL ORDER BY a.id";

/* ---- the directory ----------------------------------------------------------------- */

static void directory_free(directory *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->ngateways; i++) {
        for (size_t k = 0; k < d->gateways[i].nkeys; k++) {
            OPENSSL_cleanse(d->gateways[i].keys[k].key, d->gateways[i].keys[k].len);
            free(d->gateways[i].keys[k].key);
        }
        free(d->gateways[i].keys);
    }
    free(d->gateways);
    for (size_t b = 0; b < d->nbuckets; b++)
        while (d->owners[b].head) {
            owner *o = d->owners[b].head;
            d->owners[b].head = o->next;
            free(o);
        }
    free(d->owners);
    free(d->by_account);
    free(d);
}

static directory *acquire(ing_gateway_auth *a)
{
    pthread_mutex_lock(&a->mu);
    directory *d = a->current;
    if (d)
        d->refs++;
    pthread_mutex_unlock(&a->mu);
    return d;
}

static void release(ing_gateway_auth *a, directory *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&a->mu);
    int last = --d->refs == 0;
    pthread_mutex_unlock(&a->mu);
    if (last)
        directory_free(d);
}

static const gw *gateway_in(const directory *d, const char *id)
{
    for (size_t i = 0; i < d->ngateways; i++)
        if (strcmp(d->gateways[i].id, id) == 0)
            return &d->gateways[i];
    return NULL;
}

static size_t bucket_of(const directory *d, const char *session)
{
    return (size_t)(bz_hash_string(session) % d->nbuckets);
}

static const owner *owner_in(const directory *d, const char *session)
{
    for (const owner *o = d->owners[bucket_of(d, session)].head; o; o = o->next)
        if (strcmp(o->session, session) == 0)
            return o;
    return NULL;
}

static size_t account_bucket_of(const directory *d, int64_t account_id)
{
    return (size_t)(bz_hash_bytes(&account_id, sizeof account_id) % d->nbuckets);
}

static const owner *owner_of_account(const directory *d, int64_t account_id)
{
    for (const owner *o = d->by_account[account_bucket_of(d, account_id)].head; o;
         o = o->next_of_account)
        if (o->account_id == account_id)
            return o;
    return NULL;
}

/* ---- reading it ---------------------------------------------------------------------- */

/* The gateway row r starts, appended to d when it is new. */
static gw *gateway_of_row(directory *d, PGresult *res, int r, size_t rows)
{
    const char *id = PQgetvalue(res, r, 0);
    if (d->ngateways > 0 && strcmp(d->gateways[d->ngateways - 1].id, id) == 0)
        return &d->gateways[d->ngateways - 1];
    if (!d->gateways && !(d->gateways = calloc(rows, sizeof *d->gateways)))
        return NULL;
    gw *g = &d->gateways[d->ngateways++];
    snprintf(g->id, sizeof g->id, "%s", id);
    g->kind = strcmp(PQgetvalue(res, r, 1), "meta") == 0 ? ING_GATEWAY_META : ING_GATEWAY_WEBJS;
    g->keys = calloc(rows, sizeof *g->keys);
    return g->keys ? g : NULL;
}

/* Open row r's key into g; a key that does not open is logged and left out
 * (its gateway's requests then fail to verify, which says the same). */
static void add_key(const ing_gateway_auth *a, gw *g, PGresult *res, int r)
{
    uint8_t sealed[SEALED_MAX];
    size_t sealed_len;
    const char *hex = PQgetvalue(res, r, 3), *key_id = PQgetvalue(res, r, 2);
    char *plain = NULL;
    size_t plain_len;
    bz_error err;
    gw_key *k = &g->keys[g->nkeys];
    if (bz_hex_decode(hex, strlen(hex), sealed, sizeof sealed, &sealed_len, &err) != BZ_OK ||
        bz_keyring_open_row(a->cfg.keyring, "gateway_keys", key_id, g->id, sealed, sealed_len,
                            NULL, &plain, &plain_len, &err) != BZ_OK ||
        bz_gateway_key_id(plain, plain_len, k->id, &err) != BZ_OK) {
        bz_error_log("gateway %s: key %s does not open: %s", g->id, key_id, err.msg);
        if (plain)
            OPENSSL_cleanse(plain, plain_len);
        free(plain);
        return;
    }
    g->nkeys++;
    k->key = (uint8_t *)plain;
    k->len = plain_len;
    k->from_ms = bz_pg_get_int64(res, r, 4);
    k->until_ms = bz_pg_get_int64(res, r, 5);
}

static bz_status add_gateways(const ing_gateway_auth *a, directory *d, PGresult *res,
                              bz_error *err)
{
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        gw *g = gateway_of_row(d, res, r, (size_t)rows);
        if (!g)
            return bz_fail(err, BZ_ERR_NOMEM, "read gateway keys: out of memory");
        add_key(a, g, res, r);
    }
    return BZ_OK;
}

static bz_status add_owners(directory *d, PGresult *res, bz_error *err)
{
    size_t rows = (size_t)PQntuples(res);
    d->nbuckets = rows < 64 ? 64 : rows;
    if (!(d->owners = calloc(d->nbuckets, sizeof *d->owners)) ||
        !(d->by_account = calloc(d->nbuckets, sizeof *d->by_account)))
        return bz_fail(err, BZ_ERR_NOMEM, "read session owners: out of memory");
    for (size_t r = 0; r < rows; r++) {
        const char *session = PQgetvalue(res, (int)r, 0);
        if (owner_in(d, session))
            continue;
        size_t len = strlen(session);
        owner *o = malloc(sizeof *o + len + 1);
        if (!o)
            return bz_fail(err, BZ_ERR_NOMEM, "read session owners: out of memory");
        memcpy(o->session, session, len + 1);
        snprintf(o->gateway, sizeof o->gateway, "%s", PQgetvalue(res, (int)r, 1));
        o->account_id = bz_pg_get_int64(res, (int)r, 2);
        bucket *b = &d->owners[bucket_of(d, session)];
        o->next = b->head;
        b->head = o;
        bucket *by_id = &d->by_account[account_bucket_of(d, o->account_id)];
        o->next_of_account = by_id->head;
        by_id->head = o;
        d->nsessions++;
    }
    return BZ_OK;
}

static bz_status query(ing_gateway_auth *a, const char *sql, const char *what, PGresult **res,
                       bz_error *err)
{
    *res = PQexec(bz_pg_conn(a->pg), sql);
    return bz_pg_check(bz_pg_conn(a->pg), *res, what, err);
}

static bz_status read_directory(ing_gateway_auth *a, directory **out, bz_error *err)
{
    directory *d = calloc(1, sizeof *d);
    if (!d)
        return bz_fail(err, BZ_ERR_NOMEM, "read the gateway directory: out of memory");
    d->refs = 1;
    PGresult *keys = NULL, *owners = NULL;
    bz_status st = bz_pg_ensure(a->pg, err);
    if (st == BZ_OK)
        st = query(a, keys_sql, "read gateway keys", &keys, err);
    if (st == BZ_OK)
        st = query(a, owners_sql, "read session owners", &owners, err);
    if (st == BZ_OK)
        st = add_gateways(a, d, keys, err);
    if (st == BZ_OK)
        st = add_owners(d, owners, err);
    PQclear(keys);
    PQclear(owners);
    if (st == BZ_ERR_TRANSIENT)
        bz_pg_reset(a->pg);
    if (st != BZ_OK) {
        directory_free(d);
        return st;
    }
    *out = d;
    return BZ_OK;
}

static void count_read(const ing_gateway_auth *a, const char *outcome)
{
    if (a->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(a->cfg.metrics->gateway_directory_reads, outcome));
}

/* The refresher's run: read the directory and swap it in; after a failure
 * keep the one read before. Soon again while none was ever read. */
static int64_t refresh(void *arg)
{
    ing_gateway_auth *a = arg;
    directory *fresh = NULL;
    bz_error err;
    if (read_directory(a, &fresh, &err) != BZ_OK) {
        count_read(a, "failed");
        pthread_mutex_lock(&a->mu);
        int have_one = a->current != NULL;
        pthread_mutex_unlock(&a->mu);
        bz_warn("gateway directory: %s; %s", err.msg,
                have_one ? "using the one read before" : "gateway requests are refused (503)");
        return have_one ? a->cfg.refresh_ms : FIRST_READ_RETRY_MS;
    }
    count_read(a, "ok");
    pthread_mutex_lock(&a->mu);
    directory *old = a->current;
    a->current = fresh;
    pthread_mutex_unlock(&a->mu);
    release(a, old);
    return a->cfg.refresh_ms;
}

bz_status ing_gateway_auth_new(const ing_gateway_auth_config *cfg, ing_gateway_auth **out,
                              bz_error *err)
{
    ing_gateway_auth *a = calloc(1, sizeof *a);
    if (!a)
        return bz_fail(err, BZ_ERR_NOMEM, "gateway auth: out of memory");
    a->cfg = *cfg;
    pthread_mutex_init(&a->mu, NULL);
    bz_status st = bz_pg_open(cfg->pg_dsn, &a->pg, err);
    if (st == BZ_OK)
        st = ing_periodic_start("the gateway directory's refresher", refresh, a, &a->refresher,
                                err);
    if (st != BZ_OK) {
        ing_gateway_auth_free(a);
        return bz_wrap(err, "gateway auth");
    }
    *out = a;
    return BZ_OK;
}

void ing_gateway_auth_free(ing_gateway_auth *a)
{
    if (!a)
        return;
    ing_periodic_stop(a->refresher);
    release(a, a->current);
    bz_pg_close(a->pg);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* ---- judging a request ------------------------------------------------------------- */

/* A header sent empty counts as sent: it is judged, and refused, rather
 * than taken for an absent one (an empty X-Blazz-Gateway was the unnamed
 * gateway's, an empty X-Blazz-Timestamp the plain mode). */
static int named(const ing_gateway_claim *claim)
{
    return claim->gateway_id != NULL;
}

static int timestamped(const ing_gateway_claim *claim)
{
    return claim->timestamp != NULL;
}

/* A timestamp, when given, must be near now; require_timestamp wants one of
 * a gateway that names itself (the unnamed one, the seeds' notifier, signs
 * none). */
static bz_status check_timestamp(const ing_gateway_auth *a, const ing_gateway_claim *claim,
                                 int64_t now_ms, bz_error *err)
{
    const char *timestamp = claim->timestamp;
    if (!timestamped(claim))
        return a->cfg.require_timestamp && named(claim)
                   ? bz_reject(err, "timestamp_required", "X-Blazz-Timestamp is required")
                   : BZ_OK;
    char *end = NULL;
    long long ts = strtoll(timestamp, &end, 10);
    size_t tlen = strlen(timestamp);
    /* Seconds whose milliseconds no int64 holds are not a time (strtoll
     * saturates at LLONG_MAX, and the product below would overflow). */
    if (tlen > TIMESTAMP_MAX || *end != '\0' || ts <= 0 || ts > INT64_MAX / 1000)
        return bz_reject(err, "stale_timestamp", "X-Blazz-Timestamp is not Unix seconds");
    int64_t skew = now_ms - (int64_t)ts * 1000;
    if (skew > a->cfg.timestamp_tolerance_ms || -skew > a->cfg.timestamp_tolerance_ms)
        return bz_reject(err, "stale_timestamp",
                         "X-Blazz-Timestamp is %lld s away from now, beyond the tolerance",
                         (long long)((skew < 0 ? -skew : skew) / 1000));
    return BZ_OK;
}

static int key_valid(const gw_key *key, int64_t now_ms)
{
    return key->from_ms <= now_ms && (!key->until_ms || now_ms < key->until_ms);
}

/* Whether key may verify the claim: valid now, and in the timestamped mode
 * the key its X-Blazz-Key-Id names. */
static int key_candidate(const gw_key *key, const ing_gateway_claim *claim, int64_t now_ms)
{
    return key_valid(key, now_ms) &&
           (claim->kind == ING_GATEWAY_META || !timestamped(claim) ||
            (claim->key_id && strcmp(key->id, claim->key_id) == 0));
}

/* The id the claim stands for: the gateway it names, else the unnamed
 * gateway (NULL when none is configured). */
static const char *claimed_id(const ing_gateway_auth *a, const ing_gateway_claim *claim)
{
    const char *id = named(claim) ? claim->gateway_id : a->cfg.unnamed_gateway;
    return id && *id ? id : NULL;
}

/* The gateway the claim names, if d knows it enabled, of the claim's kind,
 * with a key valid now; else NULL. */
static const gw *claimed_gateway(const directory *d, const ing_gateway_claim *claim,
                                 const char *id, int64_t now_ms)
{
    const gw *g = bz_gateway_id_valid(id) ? gateway_in(d, id) : NULL;
    size_t valid = 0;
    for (size_t k = 0; g && k < g->nkeys; k++)
        valid += key_valid(&g->keys[k], now_ms);
    return g && g->kind == claim->kind && valid > 0 ? g : NULL;
}

/* How many of g's keys may verify the claim: in the timestamped mode one,
 * named by X-Blazz-Key-Id, else every key valid now. */
static size_t candidates(const gw *g, const ing_gateway_claim *claim, int64_t now_ms)
{
    size_t n = 0;
    for (size_t k = 0; k < g->nkeys; k++)
        n += key_candidate(&g->keys[k], claim, now_ms);
    return n;
}

/* The claim against directory d: its gateway into *g, or NULL when the
 * claim names a gateway or key that cannot verify it (unknown, disabled,
 * keyless, of the other kind; a key id naming no valid key). Such a claim
 * is admitted all the same and fails verification as a wrong signature
 * does, after the body and one HMAC: the answer, and its timing, do not
 * tell a prober which gateway names or key ids exist. */
static bz_status admit_in(const ing_gateway_auth *a, const directory *d,
                          const ing_gateway_claim *claim, int64_t now_ms, const gw **g,
                          bz_error *err)
{
    *g = NULL;
    int meta = claim->kind == ING_GATEWAY_META;
    if (!(meta ? bz_signature_meta_well_formed(claim->signature)
               : bz_signature_hex_well_formed(claim->signature)))
        return bz_reject(err, "signature_mismatch", "%s: expected %s64 hex digits",
                         meta ? "X-Hub-Signature-256" : "X-WhatsApp-Signature",
                         meta ? "sha256= and " : "");
    /* Meta signs no timestamp: its requests are checked without one */
    if (!meta) {
        bz_status st = check_timestamp(a, claim, now_ms, err);
        if (st != BZ_OK)
            return st;
    }
    const char *id = claimed_id(a, claim);
    if (!id)
        return bz_reject(err, "unknown_gateway", "name the gateway in X-Blazz-Gateway");
    /* A key id is well formed wherever it is sent, even where the plain
     * mode does not read it: a malformed credential is never let through. */
    if (!meta && (timestamped(claim) || claim->key_id) &&
        !bz_gateway_key_id_well_formed(claim->key_id))
        return bz_reject(err, "unknown_key", "X-Blazz-Key-Id: expected %d lowercase hex digits",
                         BZ_GATEWAY_KEY_ID_LEN);
    const gw *claimed = claimed_gateway(d, claim, id, now_ms);
    if (claimed && (meta || !timestamped(claim) || candidates(claimed, claim, now_ms) > 0))
        *g = claimed;
    return BZ_OK;
}

static directory *acquire_read(ing_gateway_auth *a, bz_error *err)
{
    directory *d = acquire(a);
    if (!d)
        bz_fail(err, BZ_ERR_TRANSIENT, "the gateways' keys have not been read yet");
    return d;
}

bz_status ing_gateway_auth_admit(ing_gateway_auth *a, const ing_gateway_claim *claim,
                                int64_t now_ms, bz_error *err)
{
    directory *d = acquire_read(a, err);
    if (!d)
        return BZ_ERR_TRANSIENT;
    const gw *g;
    bz_status st = admit_in(a, d, claim, now_ms, &g, err);
    release(a, d);
    return st;
}

/* One key against the request: Meta's scheme, the gateway scheme with a
 * signed timestamp, or without. */
static bz_status verify_one(const gw_key *key, const ing_gateway_claim *claim, const void *body,
                            size_t len)
{
    if (claim->kind == ING_GATEWAY_META)
        return bz_signature_verify_meta(key->key, key->len, body, len, claim->signature, NULL);
    if (timestamped(claim))
        return bz_signature_verify_timestamped(key->key, key->len, claim->timestamp, body, len,
                                               claim->signature, NULL);
    return bz_signature_verify_hex(key->key, key->len, body, len, claim->signature, NULL);
}

/* 1 when a candidate key of g verifies the request; all are compared. */
static int gateway_signed(const ing_gateway_auth *a, const gw *g, const ing_gateway_claim *claim,
                          const void *body, size_t len, int64_t now_ms)
{
    int signed_by_g = 0;
    for (size_t k = 0; k < g->nkeys; k++) {
        if (!key_candidate(&g->keys[k], claim, now_ms))
            continue;
        if (a->cfg.metrics)
            bz_counter_inc(a->cfg.metrics->gateway_hmacs);
        if (verify_one(&g->keys[k], claim, body, len) == BZ_OK)
            signed_by_g = 1;
    }
    return signed_by_g;
}

/* A claim no key can verify costs what a wrong signature does: one HMAC of
 * the body, under a key nobody has. Always 0. */
static int signed_by_nobody(const ing_gateway_auth *a, const ing_gateway_claim *claim,
                            const void *body, size_t len)
{
    static const uint8_t nobody[32] = {0x6e, 0x6f, 0x62, 0x6f, 0x64, 0x79};
    gw_key key = {.key = (uint8_t *)nobody, .len = sizeof nobody};
    if (a->cfg.metrics)
        bz_counter_inc(a->cfg.metrics->gateway_hmacs);
    (void)verify_one(&key, claim, body, len);
    return 0;
}

bz_status ing_gateway_auth_verify(ing_gateway_auth *a, const ing_gateway_claim *claim,
                                 const void *body, size_t len, int64_t now_ms,
                                 char signer[BZ_GATEWAY_ID_MAX + 1], bz_error *err)
{
    directory *d = acquire_read(a, err);
    if (!d)
        return BZ_ERR_TRANSIENT;
    const gw *g;
    bz_status st = admit_in(a, d, claim, now_ms, &g, err);
    if (st == BZ_OK && !(g ? gateway_signed(a, g, claim, body, len, now_ms)
                           : signed_by_nobody(a, claim, body, len)))
        st = bz_reject(err, "signature_mismatch", "gateway %s: invalid signature",
                       bz_gateway_id_valid(claimed_id(a, claim)) ? claimed_id(a, claim)
                                                                 : "(invalid id)");
    if (st == BZ_OK)
        snprintf(signer, BZ_GATEWAY_ID_MAX + 1, "%s", g->id);
    release(a, d);
    return st;
}

bz_status ing_gateway_auth_owner(ing_gateway_auth *a, const char *session_id,
                                char owner_id[BZ_GATEWAY_ID_MAX + 1], bz_error *err)
{
    directory *d = acquire_read(a, err);
    if (!d)
        return BZ_ERR_TRANSIENT;
    const owner *o = owner_in(d, session_id);
    if (o)
        snprintf(owner_id, BZ_GATEWAY_ID_MAX + 1, "%s", o->gateway);
    release(a, d);
    return o ? BZ_OK : bz_fail(err, BZ_ERR_NOT_FOUND, "session %s: no live account", session_id);
}

/* A decimal account id (no sign, no leading zero, fits int64) into *id. */
static int account_id_of(const char *text, int64_t *id)
{
    size_t len = strlen(text);
    if (len == 0 || len > 18 || text[0] == '0' || strspn(text, "0123456789") != len)
        return 0;
    *id = strtoll(text, NULL, 10);
    return 1;
}

static int session_of_account(ing_gateway_auth *a, const char *gateway_id,
                              const char *session_id, char *out, size_t cap)
{
    int64_t account_id;
    if (!account_id_of(session_id, &account_id))
        return 0;
    directory *d = acquire(a);
    if (!d)
        return 0;
    const owner *by_session = owner_in(d, session_id);
    const owner *by_account = owner_of_account(d, account_id);
    int found = !(by_session && strcmp(by_session->gateway, gateway_id) == 0) && by_account &&
                strcmp(by_account->gateway, gateway_id) == 0 &&
                strlen(by_account->session) < cap;
    if (found)
        memcpy(out, by_account->session, strlen(by_account->session) + 1);
    release(a, d);
    return found;
}

bz_status ing_gateway_auth_name_session_by_account(ing_gateway_auth *a, const char *gateway_id,
                                                   char **session_id, bz_error *err)
{
    char session[BZ_SESSION_ID_MAX + 1];
    if (!*session_id || !session_of_account(a, gateway_id, *session_id, session, sizeof session))
        return BZ_OK;
    if (!ing_str_set(session_id, session))
        return bz_fail(err, BZ_ERR_NOMEM, "name the session of account %s: out of memory",
                       *session_id);
    return BZ_OK;
}

void ing_gateway_auth_report_readiness(ing_gateway_auth *a, bz_readiness *report)
{
    directory *d = acquire(a);
    if (d)
        bz_readiness_add(report, "gateways", true, "%zu gateways with keys, %zu sessions",
                         d->ngateways, d->nsessions);
    else
        bz_readiness_add(report, "gateways", false, "keys not read yet");
    release(a, d);
}
