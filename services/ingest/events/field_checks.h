/*
 * field_checks.h - the field-level checks every walker of normalize.c uses.
 *
 * A rejection names the exact field it is about, as a path built into a
 * small buffer ("history_sync.chats[3].messages[0].body"), in the message
 * convention "field <path>: <detail>" that ing_error_field reads back (the
 * 400 answer's "field", a dead letter's detail).
 */
#ifndef ING_FIELD_CHECKS_H
#define ING_FIELD_CHECKS_H

#include <stddef.h>

#include "core/status.h"

#define ING_FIELD_MAX 96
#define ING_ID_MAX 128 /* wam ids, sync ids, boot ids */

typedef struct ing_path {
    char text[ING_FIELD_MAX];
} ing_path;

/* Write a field path (for error messages: "chats[3].messages[0]") into out;
 * a deep one is truncated at cap, harmlessly. */
void ing_field_path(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "base.field" (or "field" at the top level) in p; returns p->text. */
const char *ing_path_at(ing_path *p, const char *base, const char *field);

/* A rejection (bz_reject) of field for reason, "field <field>: <detail>". */
bz_status ing_reject(bz_error *err, const char *reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

bz_status ing_out_of_memory(bz_error *err, const char *field);

/* Free text: unset, or at most max bytes of valid UTF-8. */
bz_status ing_check_text(const char *s, size_t max, const char *field, bz_error *err);

/* An identifier: printable ASCII without spaces, at most ING_ID_MAX bytes;
 * unset only when not required. */
bz_status ing_check_id(const char *s, int required, const char *field, bz_error *err);

/* A session id: one a gateway can name a file after (bz_session_id_valid);
 * unset only when not required. */
bz_status ing_check_session_id(const char *s, int required, const char *field, bz_error *err);

/* The name of a shared session store (InstanceHeartbeat.storages,
 * SessionStatus.session_storage): 1 to 64 letters, digits, '.', '_', ':' or
 * '-' (chat-sync's sweep matches them whole). */
bz_status ing_check_storage_name(const char *s, const char *field, bz_error *err);

/* A Meta business-scoped user id (parent: a parent BSUID) in Meta's shape
 * (wa/bsuid.h); unset is allowed. */
bz_status ing_check_bsuid(const char *s, int parent, const char *field, bz_error *err);

/* The field path a rejection message names ("message.body"), or "" when the
 * message does not follow the "field <path>: " convention. */
void ing_error_field(const bz_error *err, char out[ING_FIELD_MAX]);

#endif
