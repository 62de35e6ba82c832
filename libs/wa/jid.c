/*
 * jid.c - JID canonicalization (see jid.h for the rules).
 *
 * A JID is split once at its only '@' into a user part and a server part.
 * The server, looked up case-insensitively in a small table, decides the kind
 * and the canonical server name; the kind then decides which user-part
 * grammar applies. Input without '@' goes through the phone normalizer.
 * Everything works on (pointer, length) slices of the caller's input, so
 * nothing is allocated and embedded NULs are caught up front.
 */
#include "wa/jid.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "wa/phone.h"

#define USER_SERVER "s.whatsapp.net"
#define GROUP_ID_MAX 64
#define OPAQUE_ID_MAX_DIGITS 24
#define QUOTED_MAX 32

typedef struct slice {
    const char *p;
    size_t n;
} slice;

typedef struct server_entry {
    const char *name;
    bz_jid_kind kind;
    const char *canonical;
} server_entry;

static const server_entry servers[] = {
    {"s.whatsapp.net", BZ_JID_USER, USER_SERVER},
    {"c.us", BZ_JID_USER, USER_SERVER},
    {"g.us", BZ_JID_GROUP, "g.us"},
    {"lid", BZ_JID_LID, "lid"},
    {"broadcast", BZ_JID_BROADCAST, "broadcast"},
    {"newsletter", BZ_JID_NEWSLETTER, "newsletter"},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static slice trim(slice s)
{
    while (s.n > 0 && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

/* Index of the first non-digit in s, or s.n when s is all digits. */
static size_t first_non_digit(slice s)
{
    size_t i = 0;
    while (i < s.n && is_digit(s.p[i]))
        i++;
    return i;
}

/* A printable, bounded rendering of untrusted text for error messages. */
static const char *quote(slice s, char buf[QUOTED_MAX + 4])
{
    size_t n = s.n < QUOTED_MAX ? s.n : QUOTED_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    strcpy(buf + n, s.n > QUOTED_MAX ? "..." : "");
    return buf;
}

static const server_entry *find_server(slice server)
{
    for (size_t i = 0; i < sizeof servers / sizeof servers[0]; i++)
        if (strlen(servers[i].name) == server.n &&
            strncasecmp(servers[i].name, server.p, server.n) == 0)
            return &servers[i];
    return NULL;
}

/* Fail unless s is a non-empty run of digits; what names the part. */
static bz_status require_digits(slice s, const char *what, bz_error *err)
{
    if (s.n == 0)
        return bz_fail(err, BZ_ERR_INVALID, "jid: empty %s", what);
    size_t bad = first_non_digit(s);
    if (bad < s.n)
        return bz_fail(err, BZ_ERR_INVALID, "jid: %s has a non-digit at offset %zu", what, bad);
    return BZ_OK;
}

/* Strip the ".agent" and ":device" parts of a user or LID user part,
 * checking that both are digits, and leave the bare id in *id. */
static bz_status strip_agent_and_device(slice user, slice *id, bz_error *err)
{
    const char *colon = memchr(user.p, ':', user.n);
    slice base = {user.p, colon ? (size_t)(colon - user.p) : user.n};
    bz_status st;
    if (colon) {
        slice device = {colon + 1, user.n - base.n - 1};
        if ((st = require_digits(device, "device suffix", err)) != BZ_OK)
            return st;
    }
    const char *dot = memchr(base.p, '.', base.n);
    if (dot) {
        slice agent = {dot + 1, base.n - (size_t)(dot - base.p) - 1};
        if ((st = require_digits(agent, "agent part", err)) != BZ_OK)
            return st;
        base.n = (size_t)(dot - base.p);
    }
    *id = base;
    return BZ_OK;
}

static bz_status check_user_id(slice user, slice *id, bz_error *err)
{
    bz_status st = strip_agent_and_device(user, id, err);
    if (st == BZ_OK)
        st = require_digits(*id, "user part", err);
    if (st != BZ_OK)
        return st;
    if (id->p[0] == '0')
        return bz_fail(err, BZ_ERR_INVALID, "jid: user part cannot start with 0");
    if (id->n < BZ_PHONE_MIN_DIGITS || id->n > BZ_PHONE_MAX_DIGITS)
        return bz_fail(err, BZ_ERR_INVALID, "jid: user part has %zu digits, expected %d-%d", id->n,
                       BZ_PHONE_MIN_DIGITS, BZ_PHONE_MAX_DIGITS);
    return BZ_OK;
}

static bz_status check_bounded_digits(slice id, const char *what, size_t max, bz_error *err)
{
    bz_status st = require_digits(id, what, err);
    if (st != BZ_OK)
        return st;
    if (id.n > max)
        return bz_fail(err, BZ_ERR_INVALID, "jid: %s too long (%zu digits, at most %zu)", what,
                       id.n, max);
    return BZ_OK;
}

static bz_status check_lid_id(slice user, slice *id, bz_error *err)
{
    bz_status st = strip_agent_and_device(user, id, err);
    if (st != BZ_OK)
        return st;
    return check_bounded_digits(*id, "lid user part", OPAQUE_ID_MAX_DIGITS, err);
}

/* Group ids are digits ("120363025246125888") or, for groups created before
 * 2021, "<creator phone>-<creation unix time>". */
static bz_status check_group_id(slice id, bz_error *err)
{
    if (id.n > GROUP_ID_MAX)
        return bz_fail(err, BZ_ERR_INVALID, "jid: group id too long (%zu bytes, at most %d)", id.n,
                       GROUP_ID_MAX);
    const char *dash = memchr(id.p, '-', id.n);
    if (!dash)
        return require_digits(id, "group id", err);
    slice creator = {id.p, (size_t)(dash - id.p)};
    slice created = {dash + 1, id.n - creator.n - 1};
    bz_status st = require_digits(creator, "group id creator part", err);
    if (st == BZ_OK)
        st = require_digits(created, "group id time part", err);
    return st;
}

/* "status@broadcast" is the status feed; other broadcast lists are digits. */
static bz_status check_broadcast_id(slice id, bool *is_status, bz_error *err)
{
    *is_status = id.n == 6 && strncasecmp(id.p, "status", 6) == 0;
    if (*is_status)
        return BZ_OK;
    return check_bounded_digits(id, "broadcast id", OPAQUE_ID_MAX_DIGITS, err);
}

static bz_status emit(slice id, const char *server, char *out, size_t cap, bz_error *err)
{
    size_t need = id.n + 1 + strlen(server) + 1;
    if (need > cap)
        return bz_fail(err, BZ_ERR_INTERNAL, "jid: output buffer too small (%zu bytes, need %zu)",
                       cap, need);
    snprintf(out, cap, "%.*s@%s", (int)id.n, id.p, server);
    return BZ_OK;
}

/* Input with no '@': a phone number naming a user. */
static bz_status canonicalize_bare_phone(slice s, char *out, size_t cap, bz_jid_kind *kind,
                                         bz_error *err)
{
    char e164[BZ_PHONE_E164_SIZE];
    bz_status st = bz_phone_normalize_n(s.p, s.n, NULL, e164, sizeof e164, err);
    if (st != BZ_OK) {
        if (err)
            bz_wrap(err, "jid: no '@' and not a phone number");
        return st;
    }
    slice digits = {e164 + 1, strlen(e164) - 1};
    if ((st = emit(digits, USER_SERVER, out, cap, err)) == BZ_OK && kind)
        *kind = BZ_JID_USER;
    return st;
}

/* Check the user part against the grammar of its kind and leave the
 * canonical id in *id. */
static bz_status canonical_id(bz_jid_kind kind, slice user, slice *id, bz_error *err)
{
    bool is_status;
    bz_status st;
    *id = user;
    switch (kind) {
    case BZ_JID_USER:
        return check_user_id(user, id, err);
    case BZ_JID_LID:
        return check_lid_id(user, id, err);
    case BZ_JID_GROUP:
        return check_group_id(user, err);
    case BZ_JID_BROADCAST:
        if ((st = check_broadcast_id(user, &is_status, err)) == BZ_OK && is_status)
            *id = (slice){"status", 6};
        return st;
    case BZ_JID_NEWSLETTER:
        return check_bounded_digits(user, "newsletter id", OPAQUE_ID_MAX_DIGITS, err);
    }
    return bz_fail(err, BZ_ERR_INTERNAL, "jid: unhandled kind %d", (int)kind);
}

static bz_status canonicalize_slice(slice s, char *out, size_t cap, bz_jid_kind *kind,
                                    bz_error *err)
{
    char shown[QUOTED_MAX + 4];
    const char *at = memchr(s.p, '@', s.n);
    if (!at)
        return canonicalize_bare_phone(s, out, cap, kind, err);
    slice user = {s.p, (size_t)(at - s.p)};
    slice server = {at + 1, s.n - user.n - 1};
    if (memchr(server.p, '@', server.n))
        return bz_fail(err, BZ_ERR_INVALID, "jid: more than one '@'");
    if (user.n == 0)
        return bz_fail(err, BZ_ERR_INVALID, "jid: empty user part");
    if (server.n == 0)
        return bz_fail(err, BZ_ERR_INVALID, "jid: empty server part");
    const server_entry *entry = find_server(server);
    if (!entry)
        return bz_fail(err, BZ_ERR_INVALID, "jid: unknown server '%s'", quote(server, shown));

    slice id;
    bz_status st = canonical_id(entry->kind, user, &id, err);
    if (st == BZ_OK)
        st = emit(id, entry->canonical, out, cap, err);
    if (st == BZ_OK && kind)
        *kind = entry->kind;
    return st;
}

bz_status bz_jid_canonicalize_n(const char *input, size_t len, char *out, size_t cap,
                                bz_jid_kind *kind, bz_error *err)
{
    if (!out || cap == 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "jid: no output buffer");
    out[0] = '\0';
    if (!input)
        return bz_fail(err, BZ_ERR_INVALID, "jid: missing");
    const char *nul = memchr(input, '\0', len);
    if (nul)
        return bz_fail(err, BZ_ERR_INVALID, "jid: contains a NUL byte at offset %zu",
                       (size_t)(nul - input));
    slice s = trim((slice){input, len});
    if (s.n == 0)
        return bz_fail(err, BZ_ERR_INVALID, "jid: empty");
    if (s.n > BZ_JID_INPUT_MAX)
        return bz_fail(err, BZ_ERR_INVALID, "jid: too long (%zu bytes, at most %d)", s.n,
                       BZ_JID_INPUT_MAX);
    bz_status st = canonicalize_slice(s, out, cap, kind, err);
    if (st != BZ_OK)
        out[0] = '\0';
    return st;
}

bz_status bz_jid_canonicalize(const char *input, char *out, size_t cap, bz_jid_kind *kind,
                              bz_error *err)
{
    return bz_jid_canonicalize_n(input, input ? strlen(input) : 0, out, cap, kind, err);
}

bool bz_jid_is_group(const char *jid)
{
    char canonical[BZ_JID_SIZE];
    bz_jid_kind kind;
    return bz_jid_canonicalize(jid, canonical, sizeof canonical, &kind, NULL) == BZ_OK &&
           kind == BZ_JID_GROUP;
}

bz_status bz_jid_to_phone(const char *jid, char *out, size_t cap, bz_error *err)
{
    char canonical[BZ_JID_SIZE];
    bz_jid_kind kind;
    if (!out || cap == 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "jid: no output buffer");
    out[0] = '\0';
    bz_status st = bz_jid_canonicalize(jid, canonical, sizeof canonical, &kind, err);
    if (st != BZ_OK)
        return st;
    if (kind == BZ_JID_LID)
        return bz_fail(err, BZ_ERR_INVALID,
                       "jid: an @lid identity cannot be mapped to a phone number");
    if (kind != BZ_JID_USER)
        return bz_fail(err, BZ_ERR_INVALID, "jid: a %s JID has no phone number",
                       bz_jid_kind_name(kind));
    size_t digits = (size_t)(strchr(canonical, '@') - canonical);
    if (digits + 2 > cap)
        return bz_fail(err, BZ_ERR_INTERNAL, "jid: output buffer too small (%zu bytes, need %zu)",
                       cap, digits + 2);
    snprintf(out, cap, "+%.*s", (int)digits, canonical);
    return BZ_OK;
}

bz_status bz_jid_from_phone(const char *phone, char *out, size_t cap, bz_error *err)
{
    char digits[BZ_PHONE_E164_SIZE];
    if (!out || cap == 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "jid: no output buffer");
    out[0] = '\0';
    bz_status st = bz_phone_digits(phone, NULL, digits, sizeof digits, err);
    if (st != BZ_OK) {
        if (err)
            bz_wrap(err, "jid from phone");
        return st;
    }
    return emit((slice){digits, strlen(digits)}, USER_SERVER, out, cap, err);
}

const char *bz_jid_kind_name(bz_jid_kind kind)
{
    switch (kind) {
    case BZ_JID_USER: return "user";
    case BZ_JID_GROUP: return "group";
    case BZ_JID_LID: return "lid";
    case BZ_JID_BROADCAST: return "broadcast";
    case BZ_JID_NEWSLETTER: return "newsletter";
    }
    return "unknown";
}
