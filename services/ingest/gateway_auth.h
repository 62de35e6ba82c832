/*
 * gateway_auth.h - who may post which event over HTTP (ARCHITECTURE.md
 * §9.2): each gateway's signing keys and the sessions it serves, from
 * PostgreSQL, for the HTTP threads (thread-safe).
 *
 * A gateway names itself with the X-Blazz-Gateway header, or is known by
 * its key when it does not (the seeds' Node notifier sends no such header:
 * every key of every gateway of the kind is compared, and the one that
 * verifies names the gateway; a key two gateways share names neither), and
 * signs the body with one of its keys: X-WhatsApp-Signature = hex HMAC-SHA256(key, body),
 * or, with the optional X-Blazz-Timestamp header (Unix seconds), hex
 * HMAC-SHA256(key, "<timestamp>.<body>"); a timestamp further than
 * timestamp_tolerance_ms from now is refused, and require_timestamp refuses
 * requests without one (replay protection). A Meta gateway signs like Meta
 * (X-Hub-Signature-256 = "sha256=" hex HMAC of the body with its app
 * secret). Every key valid now (valid_from <= now < valid_until) verifies,
 * so during a rotation's overlap both the old and the new key do; each is
 * compared in full, whichever matches.
 *
 * Keys are read sealed (gateway_keys, core/keyring.h) and opened with the
 * ring once per load; they are reloaded every keys_refresh_ms, and at once
 * (spaced by 50 ms) when a signature matches none of the cached keys,
 * so a key added by `blazzctl gateways rotate-key` works on its first use.
 * Disabled gateways have no keys. Session ownership comes from a session
 * cache of its own (sessions.h, no session.events watcher; answers live
 * owner_ttl_ms), so rebinding a session takes effect within that TTL here;
 * the Kafka path checks again with its own cache. A database that cannot be
 * reached is BZ_ERR_TRANSIENT (503), never a refusal.
 */
#ifndef ING_GATEWAY_AUTH_H
#define ING_GATEWAY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/keyring.h"
#include "core/status.h"
#include "kafka/topics.h"

/* The Kafka header with which the HTTP edge tells the Kafka path which
 * gateway signed a record of wa.inbound.raw (only ingest and blazzctl may
 * write that topic, ARCHITECTURE.md §9.1). */
#define ING_GATEWAY_HEADER "blazz-gateway"

typedef enum ing_gateway_kind { ING_GATEWAY_WEBJS, ING_GATEWAY_META } ing_gateway_kind;

typedef struct ing_gateway_auth_config {
    const char *pg_dsn;
    const bz_keyring *keyring;    /* borrowed; opens the stored keys */
    int64_t keys_refresh_ms;
    int64_t owner_ttl_ms;
    int64_t owner_negative_ttl_ms;
    int64_t timestamp_tolerance_ms;
    int require_timestamp;
} ing_gateway_auth_config;

typedef struct ing_gateway_auth ing_gateway_auth;

/* The database need not be up yet. Free with ing_gateway_auth_free. */
bz_status ing_gateway_auth_new(const ing_gateway_auth_config *cfg, ing_gateway_auth **out,
                              bz_error *err);
void ing_gateway_auth_free(ing_gateway_auth *a);

/* Check a request of gateway_id (of kind; NULL or "": of whichever gateway
 * of the kind has a key that verifies it) signed with signature over body
 * (timestamp: the X-Blazz-Timestamp value or NULL); the gateway's id into
 * signer. BZ_OK, or BZ_ERR_INVALID with err->reason "unknown_gateway",
 * "signature_mismatch", "ambiguous_key", "timestamp_required" or
 * "stale_timestamp";
 * BZ_ERR_TRANSIENT when the keys cannot be loaded. */
bz_status ing_gateway_auth_verify(ing_gateway_auth *a, const char *gateway_id, ing_gateway_kind kind,
                                 const char *timestamp, const void *body, size_t len,
                                 const char *signature, int64_t now_ms,
                                 char signer[BZ_GATEWAY_ID_MAX + 1], bz_error *err);

/* The gateway serving session_id into owner ("" when none does).
 * BZ_ERR_NOT_FOUND when no live account has the session; BZ_ERR_TRANSIENT
 * when PostgreSQL cannot answer. */
bz_status ing_gateway_auth_owner(ing_gateway_auth *a, const char *session_id, int64_t now_ms,
                                char owner[BZ_GATEWAY_ID_MAX + 1], bz_error *err);

#endif
