/*
 * business_notice.c - a notice about a WhatsApp Business Account, checked
 * (see business_notice.h).
 *
 * Meta's ids (WABA, template, phone number) are decimal; its words (events, categories,
 * quality scores) are upper-case with underscores and new ones appear
 * without notice, so a word is checked for its shape, not against a list:
 * chat-sync stores what Meta said and decides what it means.
 */
#include "events/business_notice.h"

#include <stdio.h>
#include <string.h>

#include "events/field_checks.h"

#define META_ID_MAX 32
#define WORD_MAX 64
/* Meta's template names: at most 512 characters of lower-case, digits, _ */
#define TEMPLATE_NAME_MAX 512
#define LANGUAGE_MAX 16
#define REASON_MAX 1024
#define PHONE_MAX 32

static bz_status check_meta_id(const char *s, int required, const char *field, bz_error *err)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0)
        return required ? ing_reject(err, "missing_field", field, "required") : BZ_OK;
    if (n > META_ID_MAX || strspn(s, "0123456789") != n)
        return ing_reject(err, "invalid_field", field, "a decimal id of at most %d digits",
                          META_ID_MAX);
    return BZ_OK;
}

static bz_status check_word(const char *s, const char *field, bz_error *err)
{
    size_t n = s ? strlen(s) : 0;
    if (n > WORD_MAX || strspn(s ? s : "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != n)
        return ing_reject(err, "invalid_field", field, "upper-case letters, digits and _, at most %d",
                          WORD_MAX);
    return BZ_OK;
}

static bz_status check_template(const Blazz__V1__TemplateNotice *t, bz_error *err)
{
    bz_status st = check_meta_id(t->template_id, 0, "business_notice.template.template_id", err);
    if (st == BZ_OK && (!t->name || !*t->name))
        st = ing_reject(err, "missing_field", "business_notice.template.name", "required");
    if (st == BZ_OK)
        st = ing_check_text(t->name, TEMPLATE_NAME_MAX, "business_notice.template.name", err);
    if (st == BZ_OK)
        st = ing_check_id(t->language, 1, "business_notice.template.language", err);
    if (st == BZ_OK && strlen(t->language) > LANGUAGE_MAX)
        st = ing_reject(err, "invalid_field", "business_notice.template.language",
                        "at most %d bytes", LANGUAGE_MAX);
    if (st == BZ_OK)
        st = check_word(t->event, "business_notice.template.event", err);
    if (st == BZ_OK)
        st = check_word(t->category, "business_notice.template.category", err);
    if (st == BZ_OK)
        st = check_word(t->quality_score, "business_notice.template.quality_score", err);
    if (st == BZ_OK)
        st = ing_check_text(t->reason, REASON_MAX, "business_notice.template.reason", err);
    if (st == BZ_OK)
        st = ing_check_text(t->detail, REASON_MAX, "business_notice.template.detail", err);
    if (st == BZ_OK && !*t->event && !*t->category && !*t->quality_score)
        st = ing_reject(err, "missing_field", "business_notice.template",
                        "no event, category or quality_score: nothing to apply");
    return st;
}

/* A display phone number as Meta writes it: digits, spaces, +, -, (). */
static bz_status check_display_phone(const char *s, const char *field, bz_error *err)
{
    size_t n = s ? strlen(s) : 0;
    if (n > PHONE_MAX || strspn(s ? s : "", "0123456789 +-()") != n)
        return ing_reject(err, "invalid_field", field, "a phone number of at most %d characters",
                          PHONE_MAX);
    return BZ_OK;
}

static bz_status check_account(const Blazz__V1__AccountNotice *a, bz_error *err)
{
    bz_status st = check_display_phone(a->display_phone_number,
                                       "business_notice.account.display_phone_number", err);
    if (st == BZ_OK)
        st = check_meta_id(a->phone_number_id, 0, "business_notice.account.phone_number_id", err);
    if (st == BZ_OK)
        st = check_word(a->event, "business_notice.account.event", err);
    if (st == BZ_OK)
        st = check_word(a->messaging_limit, "business_notice.account.messaging_limit", err);
    if (st == BZ_OK)
        st = check_word(a->business_limit, "business_notice.account.business_limit", err);
    if (st == BZ_OK)
        st = check_word(a->restriction, "business_notice.account.restriction", err);
    if (st == BZ_OK)
        st = check_word(a->violation, "business_notice.account.violation", err);
    if (st == BZ_OK)
        st = check_word(a->ban_state, "business_notice.account.ban_state", err);
    if (st == BZ_OK)
        st = ing_check_text(a->detail, REASON_MAX, "business_notice.account.detail", err);
    if (st == BZ_OK && a->restricted_until_ms < 0)
        st = ing_reject(err, "invalid_field", "business_notice.account.restricted_until_ms",
                        "not a time");
    if (st == BZ_OK && !*a->event && !*a->messaging_limit && !*a->business_limit)
        st = ing_reject(err, "missing_field", "business_notice.account",
                        "no event or limit: nothing to apply");
    return st;
}

bz_status ing_normalize_business_notice(const Blazz__V1__BusinessNotice *n, char *conversation,
                                        size_t cap, bz_error *err)
{
    bz_status st = check_meta_id(n->waba_id, 1, "business_notice.waba_id", err);
    if (st == BZ_OK)
        st = ing_check_id(n->field, 1, "business_notice.field", err);
    if (st != BZ_OK)
        return st;
    if (n->notice_case == BLAZZ__V1__BUSINESS_NOTICE__NOTICE_TEMPLATE)
        st = check_template(n->template_, err);
    else if (n->notice_case == BLAZZ__V1__BUSINESS_NOTICE__NOTICE_ACCOUNT)
        st = check_account(n->account, err);
    else
        return ing_reject(err, "missing_field", "business_notice.template",
                          "no notice this version applies");
    if (st == BZ_OK)
        snprintf(conversation, cap, "waba:%s", n->waba_id);
    return st;
}
