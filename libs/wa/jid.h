/*
 * jid.h - WhatsApp JIDs reduced to one canonical form.
 *
 * The two providers name the same chat differently: whatsapp-web.js says
 * "6281234567890@c.us", the multi-device protocol and Meta say
 * "6281234567890@s.whatsapp.net", and a message from a linked device arrives
 * as "6281234567890:12@s.whatsapp.net" or "6281234567890.0:12@...". Chats and
 * contacts are keyed by JID, so every JID is canonicalized on the way in:
 *
 *   kind        accepted servers            canonical form
 *   USER        c.us, s.whatsapp.net        <E.164 digits>@s.whatsapp.net
 *   GROUP       g.us                        <digits>@g.us or <digits>-<digits>@g.us
 *   LID         lid                         <digits>@lid
 *   BROADCAST   broadcast                   status@broadcast or <digits>@broadcast
 *   NEWSLETTER  newsletter                  <digits>@newsletter
 *
 * Surrounding ASCII whitespace is trimmed and the server part is matched
 * case-insensitively. For USER and LID, the ".agent" and ":device" parts of
 * the user part are validated (digits) and stripped: every device of a person
 * is the same chat. A user part must be a valid E.164 number without '+'
 * (8..15 digits, first not 0, see phone.h) so that it always maps to a phone.
 * An @lid is an opaque linked identity that cannot be mapped to a phone.
 *
 * Bare phone numbers are accepted where a JID is expected: input with no '@'
 * is normalized with bz_phone_normalize (no default country, so a national
 * "0812..." is rejected) and becomes a USER JID. Gateways sometimes send the
 * number alone and it names exactly one user, so refusing it would only
 * dead-letter good events.
 *
 * Malformed input fails with BZ_ERR_INVALID and a message naming the problem
 * (empty user part, unknown server, non-digits, too long); an output buffer
 * that is too small is BZ_ERR_INTERNAL. BZ_JID_SIZE bytes always suffice.
 */
#ifndef BZ_WA_JID_H
#define BZ_WA_JID_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

typedef enum bz_jid_kind {
    BZ_JID_USER = 0,
    BZ_JID_GROUP,
    BZ_JID_LID,
    BZ_JID_BROADCAST,
    BZ_JID_NEWSLETTER
} bz_jid_kind;

/* Longest input considered, after trimming; longer input is rejected. */
#define BZ_JID_INPUT_MAX 128
/* Bytes that hold any canonical JID plus its NUL. */
#define BZ_JID_SIZE 96

/* Canonicalize input into out (cap bytes) and, if kind is not NULL, report
 * its kind. On failure out (if cap > 0) holds "". */
bz_status bz_jid_canonicalize(const char *input, char *out, size_t cap, bz_jid_kind *kind,
                              bz_error *err);

/* Same, for input of len bytes that need not be NUL-terminated; embedded NUL
 * bytes are rejected. */
bz_status bz_jid_canonicalize_n(const char *input, size_t len, char *out, size_t cap,
                                bz_jid_kind *kind, bz_error *err);

/* True when jid (in any accepted form) is a valid group JID. */
bool bz_jid_is_group(const char *jid);

/* The E.164 phone ("+6281234567890") of a user JID in any accepted form.
 * Groups, LIDs, broadcasts and newsletters have no phone: BZ_ERR_INVALID. */
bz_status bz_jid_to_phone(const char *jid, char *out, size_t cap, bz_error *err);

/* The canonical user JID of a phone number. Any form bz_phone_normalize
 * accepts without a default country is taken ("+62 812-3456-7890"). */
bz_status bz_jid_from_phone(const char *phone, char *out, size_t cap, bz_error *err);

/* "user", "group", "lid", "broadcast", "newsletter": for logs and payloads. */
const char *bz_jid_kind_name(bz_jid_kind kind);

#endif
