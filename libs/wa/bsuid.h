/*
 * bsuid.h - the shape of Meta's business-scoped user ids.
 *
 * Meta identifies a WhatsApp user to a business by a BSUID: a two-letter
 * country code, '.', then 1 to 128 letters and digits ("US.13491208655302741918").
 * A parent BSUID, shared by the portfolios of one managed business, has
 * "ENT." after the country code ("US.ENT.11815799212886844830"). Both are
 * opaque: stored and sent back exactly as they came, never normalized,
 * so the check only says whether a string has the shape (upper-case
 * country code, as Meta writes it; nothing else around it).
 * docs/decisions/0010-a-contact-is-a-person-not-a-phone.md.
 */
#ifndef BZ_WA_BSUID_H
#define BZ_WA_BSUID_H

#include <stdbool.h>

#define BZ_BSUID_ID_MAX 128

/* 1 when s is "CC.<1-128 letters and digits>" (a parent BSUID is not). */
bool bz_bsuid_valid(const char *s);

/* 1 when s is "CC.ENT.<1-128 letters and digits>". */
bool bz_parent_bsuid_valid(const char *s);

#endif
