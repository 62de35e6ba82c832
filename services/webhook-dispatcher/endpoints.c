/*
 * endpoints.c - the delivery worker's endpoints: every endpoint it has
 * seen, in an open-addressing table by id, and the short queue of claimed
 * jobs each one holds.
 *
 * An endpoint is created or refreshed from the row that claimed a delivery
 * for it (its URL, secret, limits and state come with every claimed row),
 * so the worker never reads webhook_endpoints on its own. Its secrets (its
 * own and, while a rotation's overlap runs, the one it replaced) are
 * decrypted only when the stored ciphertexts changed, and the plaintexts
 * are cleansed before they are freed. Endpoints with queued jobs are on the ready
 * list, which dispatching (attempts.c) walks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/hex.h"
#include "core/log.h"
#include "worker_state.h"

static size_t slot_of(const wh_worker *w, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 20) & (w->table_cap - 1);
}

wh_endpoint *wh_find_endpoint(const wh_worker *w, int64_t id)
{
    for (size_t i = slot_of(w, id);; i = (i + 1) & (w->table_cap - 1)) {
        if (!w->table[i])
            return NULL;
        if (w->table[i]->id == id)
            return w->table[i];
    }
}

static void place(wh_endpoint **table, size_t cap, wh_endpoint *ep)
{
    uint64_t h = (uint64_t)ep->id * 0x9E3779B97F4A7C15ULL;
    for (size_t i = (size_t)(h >> 20) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!table[i]) {
            table[i] = ep;
            return;
        }
}

static bz_status insert_endpoint(wh_worker *w, wh_endpoint *ep, bz_error *err)
{
    if (2 * (w->table_used + 1) > w->table_cap) {
        size_t cap = w->table_cap * 2;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): slots are pointers, sized as such */
        wh_endpoint **t = calloc(cap, sizeof *t);
        if (!t)
            return bz_fail(err, BZ_ERR_NOMEM, "endpoint table: out of memory");
        for (size_t i = 0; i < w->table_cap; i++)
            if (w->table[i])
                place(t, cap, w->table[i]);
        free(w->table);
        w->table = t;
        w->table_cap = cap;
    }
    place(w->table, w->table_cap, ep);
    w->table_used++;
    return BZ_OK;
}

static void wipe_secrets(wh_endpoint *ep)
{
    for (size_t i = 0; i < ep->nsecrets; i++) {
        OPENSSL_cleanse(ep->secrets[i], strlen(ep->secrets[i]));
        free(ep->secrets[i]);
        ep->secrets[i] = NULL;
    }
    ep->nsecrets = 0;
}

void wh_free_endpoint(wh_endpoint *ep)
{
    wipe_secrets(ep);
    free(ep->url);
    free(ep->cipher_hex);
    free(ep->nonce_hex);
    free(ep->previous_cipher_hex);
    free(ep->previous_nonce_hex);
    free(ep);
}

static int hex_to_bytes(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    bz_error err;
    return bz_hex_decode(hex, n, out, cap, len, &err) == BZ_OK;
}

/* Open one sealed secret field of the endpoint (hex; nonce_hex "" unless
 * in the older form, a nonce column of its own) and add its secrets: one,
 * or several separated by spaces as blazzctl may store them. The
 * ciphertext carries the id of the key that sealed it and is bound to its
 * row (core/keyring.h); rows in the older form open with any loaded key.
 * A failure is described in err. */
static bz_status open_secret_field(wh_worker *w, wh_endpoint *ep, const char *cipher_hex,
                                   const char *nonce_hex, bz_error *err)
{
    uint8_t sealed[1024], nonce[BZ_SECRETBOX_NONCE_LEN];
    size_t sealed_len, nonce_len = 0;
    int legacy = nonce_hex[0] != '\0';
    if (!hex_to_bytes(cipher_hex, sealed, sizeof sealed, &sealed_len) ||
        (legacy && (!hex_to_bytes(nonce_hex, nonce, sizeof nonce, &nonce_len) ||
                    nonce_len != BZ_SECRETBOX_NONCE_LEN)))
        return bz_fail(err, BZ_ERR_INVALID, "malformed ciphertext or nonce");
    char id[24], workspace[24];
    snprintf(id, sizeof id, "%" PRId64, ep->id);
    snprintf(workspace, sizeof workspace, "%" PRId64, ep->workspace_id);
    char *plain;
    size_t plain_len;
    if (bz_keyring_open_row(w->cfg.keyring, "webhook_endpoints", id, workspace, sealed,
                            sealed_len, legacy ? nonce : NULL, &plain, &plain_len,
                            err) != BZ_OK)
        return err->code;
    char *save = NULL;
    for (char *tok = strtok_r(plain, " ", &save); tok && ep->nsecrets < MAX_SECRETS;
         tok = strtok_r(NULL, " ", &save)) {
        char *copy = strdup(tok);
        if (copy)
            ep->secrets[ep->nsecrets++] = copy;
    }
    OPENSSL_cleanse(plain, plain_len);
    free(plain);
    return BZ_OK;
}

/* Decrypt the endpoint's secrets: its own, then, while a rotation's overlap
 * runs, the one it replaced (so every delivery carries a signature of
 * each). A secret of its own that does not open is kept as the endpoint's
 * secret_error and fails its deliveries with that reason; a replaced one
 * that does not open is logged and left out: the new secret still signs. */
static void load_secrets(wh_worker *w, wh_endpoint *ep)
{
    wipe_secrets(ep);
    ep->secret_error[0] = '\0';
    if (!w->cfg.keyring || w->cfg.keyring->count == 0) {
        snprintf(ep->secret_error, sizeof ep->secret_error,
                 "endpoint %" PRId64 ": no secrets.keys configured to decrypt its secret",
                 ep->id);
        return;
    }
    bz_error err;
    if (open_secret_field(w, ep, ep->cipher_hex, ep->nonce_hex, &err) != BZ_OK) {
        snprintf(ep->secret_error, sizeof ep->secret_error, "endpoint %" PRId64 ": %s", ep->id,
                 err.msg);
        return;
    }
    if (ep->nsecrets == 0) {
        snprintf(ep->secret_error, sizeof ep->secret_error, "endpoint %" PRId64 ": empty secret",
                 ep->id);
        return;
    }
    if (ep->previous_cipher_hex[0] &&
        open_secret_field(w, ep, ep->previous_cipher_hex, ep->previous_nonce_hex, &err) != BZ_OK)
        bz_log(BZ_LOG_WARN,
               "endpoint %" PRId64 ": the secret its rotation replaced does not open (%s): "
               "deliveries are signed with the new one alone",
               ep->id, err.msg);
}

static bool same_text(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static void replace_text(char **slot, const char *value)
{
    if (!same_text(*slot, value)) {
        free(*slot);
        *slot = strdup(value);
    }
}

/* Create or refresh the endpoint of a claimed row (columns 9..17, 21, 22). */
wh_endpoint *wh_endpoint_from_row(wh_worker *w, PGresult *res, int r, int64_t id,
                                      int64_t workspace_id)
{
    wh_endpoint *ep = wh_find_endpoint(w, id);
    int64_t now = bz_monotonic_ms();
    bool created = !ep;
    if (!ep) {
        ep = calloc(1, sizeof *ep);
        bz_error err;
        if (ep)
            ep->id = id; /* before inserting: the table places it by its id */
        if (!ep || insert_endpoint(w, ep, &err) != BZ_OK) {
            free(ep);
            return NULL;
        }
        wh_circuit_init(&ep->circuit, &w->cfg.circuit);
        bz_token_bucket_init(&ep->bucket, 1, 1, now);
        if (w->have_metrics) {
            char label[24];
            snprintf(label, sizeof label, "%" PRId64, id);
            ep->circuit_gauge = bz_gauge_family_with(w->m.circuit, label);
        }
    }
    ep->workspace_id = workspace_id;
    bool secret_changed = !same_text(ep->cipher_hex, PQgetvalue(res, r, 10)) ||
                          !same_text(ep->nonce_hex, PQgetvalue(res, r, 11)) ||
                          !same_text(ep->previous_cipher_hex, PQgetvalue(res, r, 21)) ||
                          !same_text(ep->previous_nonce_hex, PQgetvalue(res, r, 22));
    replace_text(&ep->url, PQgetvalue(res, r, 9));
    replace_text(&ep->cipher_hex, PQgetvalue(res, r, 10));
    replace_text(&ep->nonce_hex, PQgetvalue(res, r, 11));
    replace_text(&ep->previous_cipher_hex, PQgetvalue(res, r, 21));
    replace_text(&ep->previous_nonce_hex, PQgetvalue(res, r, 22));
    if (!ep->url || !ep->cipher_hex || !ep->nonce_hex || !ep->previous_cipher_hex ||
        !ep->previous_nonce_hex)
        return NULL;
    if (secret_changed)
        load_secrets(w, ep);
    ep->whatsapp_hmac = strcmp(PQgetvalue(res, r, 12), "whatsapp_hmac") == 0;
    int rate = (int)bz_pg_get_int64(res, r, 13);
    if (rate != ep->rate) {
        double share = wh_peers_share(&w->peers, rate);
        bz_token_bucket_set_rate(&ep->bucket, share, share, now);
    }
    ep->rate = rate;
    ep->concurrency = (int)bz_pg_get_int64(res, r, 14);
    if (created)
        ep->claim_room = 2 * ep->concurrency; /* what the claim gave an unknown endpoint */
    ep->timeout_ms = (int)bz_pg_get_int64(res, r, 15);
    if (ep->timeout_ms > w->cfg.timeout_ms || ep->timeout_ms <= 0)
        ep->timeout_ms = w->cfg.timeout_ms;
    ep->enabled = PQgetvalue(res, r, 16)[0] == 't';
    wh_set_text(ep->disabled_reason, sizeof ep->disabled_reason, PQgetvalue(res, r, 17));
    return ep;
}

void wh_mark_ready(wh_worker *w, wh_endpoint *ep)
{
    if (ep->ready_listed || !ep->q_head)
        return;
    ep->ready_listed = true;
    ep->next_ready = NULL;
    if (w->ready_tail)
        w->ready_tail->next_ready = ep;
    else
        w->ready_head = ep;
    w->ready_tail = ep;
}

void wh_enqueue_job(wh_worker *w, wh_endpoint *ep, wh_job *job)
{
    job->next = NULL;
    if (ep->q_tail)
        ep->q_tail->next = job;
    else
        ep->q_head = job;
    ep->q_tail = job;
    ep->queued++;
    w->local_jobs++;
    wh_mark_ready(w, ep);
}

wh_job *wh_dequeue_job(wh_endpoint *ep)
{
    wh_job *job = ep->q_head;
    if (job) {
        ep->q_head = job->next;
        if (!ep->q_head)
            ep->q_tail = NULL;
        ep->queued--;
    }
    return job;
}

void wh_free_job(wh_worker *w, wh_job *job)
{
    w->local_jobs--;
    free(job->body);
    free(job);
}
