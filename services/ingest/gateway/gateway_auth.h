/*
 * gateway_auth.h - who may post which event over HTTP (ARCHITECTURE.md
 * §9.2): each gateway's signing keys and the sessions it serves, for the
 * HTTP threads (thread-safe), which never wait for PostgreSQL.
 *
 * A gateway names itself with the X-Blazz-Gateway header. A request naming
 * none is the gateway's configured as unnamed_gateway (the seeds' Node
 * notifier sends no such header; without one configured such requests are
 * refused): a request is never tried against the keys of every gateway,
 * which made a forged one cost an HMAC of its body per key of every
 * gateway. It signs the body with one of its keys (wa/signature.h), in one
 * of two modes that never share a MAC: plain, X-WhatsApp-Signature = hex
 * HMAC-SHA256(key, body), the seeds' scheme; or timestamped, with
 * X-Blazz-Timestamp (Unix seconds) and X-Blazz-Key-Id (which key), hex
 * HMAC-SHA256(K, "<timestamp>.<body>") under a key K derived from key. A
 * timestamp further than timestamp_tolerance_ms from now is refused, and
 * require_timestamp refuses plain requests of a gateway that names itself
 * (replay protection; the unnamed gateway's are exempt: the notifier signs
 * no timestamp). A Meta gateway signs like Meta (X-Hub-Signature-256 =
 * "sha256=" hex HMAC of the body with its app secret). A timestamped
 * request is verified with the one key its key id names; a plain or Meta
 * one with every key valid now (valid_from <= now < valid_until), so during
 * a rotation's overlap both the old and the new key do, each compared in
 * full, whichever matches.
 *
 * Two steps: ing_gateway_auth_admit judges what the headers claim before
 * the body is read (the signature's shape, a gateway named, a fresh
 * timestamp, a well-formed key id; no HMAC), ing_gateway_auth_verify the
 * signature over the body once it is complete (one HMAC per key of the one
 * gateway valid now). A claim naming a gateway that is unknown, disabled,
 * keyless or of the other kind, or a key id naming no key of it valid now,
 * is admitted and fails verification after one HMAC under a key nobody
 * has, as a wrong signature does: neither answer nor cost tells which
 * gateway names and key ids exist.
 *
 * The directory (gateways with their opened keys, session -> serving
 * gateway) is read from PostgreSQL by a thread of its own at start and
 * every refresh_ms, and replaced whole; requests read the directory they
 * find. Nothing a client sends makes it read again: a new key or binding
 * takes effect within refresh_ms (a gateway switches to a rotated key after
 * that, well within the overlap). A read that fails keeps the directory
 * read before; until a first read succeeds, requests are BZ_ERR_TRANSIENT
 * (503). Keys are read sealed (gateway_keys, core/keyring.h) and opened
 * with the ring once per read. Disabled gateways have no keys and serve no
 * session.
 */
#ifndef ING_GATEWAY_AUTH_H
#define ING_GATEWAY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/admin_http.h"
#include "core/keyring.h"
#include "core/status.h"
#include "ingest_metrics.h"
#include "kafka/topics.h"

/* The Kafka header with which the HTTP edge tells the Kafka path which
 * gateway signed a record of wa.inbound.raw (only ingest and blazzctl may
 * write that topic, ARCHITECTURE.md §9.1). */
#define ING_GATEWAY_HEADER "blazz-gateway"

typedef enum ing_gateway_kind { ING_GATEWAY_WEBJS, ING_GATEWAY_META } ing_gateway_kind;

typedef struct ing_gateway_auth_config {
    const char *pg_dsn;
    const bz_keyring *keyring;    /* borrowed; opens the stored keys */
    int64_t refresh_ms;           /* the directory is read again this often */
    int64_t timestamp_tolerance_ms;
    int require_timestamp;
    const char *unnamed_gateway;  /* the gateway of requests naming none; NULL or "": none */
    ing_metrics *metrics;         /* borrowed, may be NULL */
} ing_gateway_auth_config;

/* What a request's headers say about who sent it. */
typedef struct ing_gateway_claim {
    const char *gateway_id; /* X-Blazz-Gateway, or the meta gateway; NULL or "": none */
    ing_gateway_kind kind;
    const char *timestamp;  /* X-Blazz-Timestamp, NULL: none */
    const char *key_id;     /* X-Blazz-Key-Id, NULL: none */
    const char *signature;  /* the signature header's value */
} ing_gateway_claim;

typedef struct ing_gateway_auth ing_gateway_auth;

/* Start reading the directory (the database need not be up yet). Free
 * with ing_gateway_auth_free. */
bz_status ing_gateway_auth_new(const ing_gateway_auth_config *cfg, ing_gateway_auth **out,
                              bz_error *err);
void ing_gateway_auth_free(ing_gateway_auth *a);

/* Judge a request's claim from its headers, before its body is read: BZ_OK,
 * or BZ_ERR_INVALID with err->reason "signature_mismatch" (a signature
 * without its scheme's shape), "unknown_gateway" (none named and no unnamed
 * gateway), "unknown_key" (a malformed key id), "timestamp_required" or
 * "stale_timestamp"; BZ_ERR_TRANSIENT before the directory was first read.
 * Computes no HMAC. */
bz_status ing_gateway_auth_admit(ing_gateway_auth *a, const ing_gateway_claim *claim,
                                int64_t now_ms, bz_error *err);

/* Verify the claim's signature over body (after admitting it again: the
 * directory may have changed); the gateway's id into signer. BZ_OK, the
 * refusals of ing_gateway_auth_admit, or BZ_ERR_INVALID with reason
 * "signature_mismatch". One HMAC of the body per key tried: the one its key
 * id names, or (plain, Meta) each of the gateway's keys valid now. */
bz_status ing_gateway_auth_verify(ing_gateway_auth *a, const ing_gateway_claim *claim,
                                 const void *body, size_t len, int64_t now_ms,
                                 char signer[BZ_GATEWAY_ID_MAX + 1], bz_error *err);

/* The gateway serving session_id into owner ("" when none enabled does).
 * BZ_ERR_NOT_FOUND when no live account has the session (in the directory
 * last read); BZ_ERR_TRANSIENT before the directory was first read. */
bz_status ing_gateway_auth_owner(ing_gateway_auth *a, const char *session_id,
                                char owner[BZ_GATEWAY_ID_MAX + 1], bz_error *err);

/* The seeds' notifier names a session by its account's numeric id (seed
 * 002: 'session_id' => 'exists:whatsapp_accounts,id'). When session_id is
 * a decimal id, names no session gateway_id serves, and is the id of a
 * live account gateway_id serves, *session_id (heap, ing_str_set's) is
 * replaced by that account's session id; else it is left as it is. A
 * session id match wins: Meta's session ids are digits too. */
bz_status ing_gateway_auth_name_session_by_account(ing_gateway_auth *a, const char *gateway_id,
                                                   char **session_id, bz_error *err);

/* Add the "gateways" check to a /readyz report: ok once the directory was
 * read (gateway requests are refused 503 before), with its size. */
void ing_gateway_auth_report_readiness(ing_gateway_auth *a, bz_readiness *report);

#endif
