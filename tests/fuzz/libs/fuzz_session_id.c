/*
 * fuzz_session_id.c - the session id rule (libs/wa/crm_command.h), which
 * decides what gateways may name a session's credentials file after.
 *
 * Beyond "does not crash" (nor read past the id's bound: ASan), it checks
 * the verdict against the rule written out apart, both ways: an accepted id
 * is 1 to BZ_SESSION_ID_MAX letters, digits, '.', '_' or '-', does not
 * start with '.' and holds no "..", so it is never "." or "..", never holds
 * a '/' and is never hidden; every such string is accepted. The checking
 * form agrees with the predicate and refuses as invalid_field naming its
 * field. The input is the id as a C caller sees it: cut at its first NUL,
 * and at a few bytes past the longest id.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_target.h"
#include "wa/crm_command.h"

#define SAFE "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

/* The rule as the documentation states it, written apart from the code. */
static int as_documented(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > BZ_SESSION_ID_MAX || id[0] == '.' || strstr(id, ".."))
        return 0;
    return strspn(id, SAFE) == n;
}

static int fuzz_session_id(const uint8_t *data, size_t size)
{
    char id[BZ_SESSION_ID_MAX + 8];
    bz_fuzz_text(data, size, id, sizeof id);
    int valid = bz_session_id_valid(id);
    BZ_FUZZ_CHECK(valid == as_documented(id));
    bz_error err;
    bz_status st = bz_session_id_check("envelope.session_id", id, &err);
    BZ_FUZZ_CHECK((st == BZ_OK) == valid);
    if (!valid) {
        BZ_FUZZ_CHECK(st == BZ_ERR_INVALID && strcmp(err.reason, "invalid_field") == 0);
        BZ_FUZZ_CHECK(strncmp(err.msg, "field envelope.session_id: ", 27) == 0);
        return BZ_FUZZ_REJECTED;
    }
    /* what a gateway relies on when it opens <storage>/<id> */
    size_t n = strlen(id);
    BZ_FUZZ_CHECK(n >= 1 && n <= BZ_SESSION_ID_MAX);
    BZ_FUZZ_CHECK(id[0] != '.' && !strstr(id, ".."));
    BZ_FUZZ_CHECK(!strchr(id, '/') && !strchr(id, '\\'));
    BZ_FUZZ_CHECK(strcmp(id, ".") != 0 && strcmp(id, "..") != 0);
    return BZ_FUZZ_ACCEPTED;
}

static const bz_fuzz_expect expect[] = {
    {"backbone_new", BZ_FUZZ_ACCEPTED},  {"meta_phone_number_id", BZ_FUZZ_ACCEPTED},
    {"longest", BZ_FUZZ_ACCEPTED},       {"trailing_dot", BZ_FUZZ_ACCEPTED},
    {"parent_path", BZ_FUZZ_REJECTED},   {"hidden", BZ_FUZZ_REJECTED},
    {"inner_dots", BZ_FUZZ_REJECTED},    {"too_long", BZ_FUZZ_REJECTED},
    {"jid", BZ_FUZZ_REJECTED},           {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_session_id, expect)
