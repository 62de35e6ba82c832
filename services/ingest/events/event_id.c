/*
 * event_id.c - deterministic event ids (see event_id.h).
 *
 * The facts are fed to SHA-256 as length-prefixed fields after a domain
 * tag, so ("ab","c") and ("a","bc") can never collide by concatenation.
 * Event ids and derived message ids use different tags, so one can never
 * equal the other's digest.
 */
#include "events/event_id.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "core/hex.h"
#include "core/uuid.h"
#include "events/event_tree.h"

static void feed(EVP_MD_CTX *md, const char *s)
{
    uint32_t len = s ? (uint32_t)strlen(s) : 0;
    unsigned char prefix[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                               (unsigned char)(len >> 8), (unsigned char)len};
    EVP_DigestUpdate(md, prefix, sizeof prefix);
    if (len)
        EVP_DigestUpdate(md, s, len);
}

static void feed_int(EVP_MD_CTX *md, int64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, v);
    feed(md, text);
}

static void feed_message_facts(EVP_MD_CTX *md, const Blazz__V1__InboundMessage *m)
{
    feed(md, !ing_str_empty(m->group_jid)       ? m->group_jid
             : !ing_str_empty(m->contact_phone) ? m->contact_phone
                                                      : m->contact_jid);
    feed_int(md, m->from_me);
    feed(md, !ing_str_empty(m->sender_phone) ? m->sender_phone : m->sender_jid);
    feed_int(md, m->timestamp_ms);
    feed_int(md, m->message_type);
    feed(md, m->body);
    feed_int(md, m->has_media);
    feed(md, m->media ? m->media->sha256 : NULL);
    feed(md, m->target_wam_id);
    feed(md, m->reaction_emoji);
}

/* Two changes of one group in one second (its subject, then its
 * description) are two events: what they set is part of their identity.
 * Updates that set none of these keep the id they always had. */
static void feed_group_values(EVP_MD_CTX *md, const Blazz__V1__GroupUpdate *g)
{
    if (ing_str_empty(g->name) && ing_str_empty(g->description) &&
        ing_str_empty(g->invite_code) && ing_str_empty(g->picture_url) && !g->settings)
        return;
    feed(md, "values");
    feed(md, g->name);
    feed(md, g->description);
    feed(md, g->invite_code);
    feed(md, g->picture_url);
    feed_int(md, g->settings ? 1 + g->settings->announce * 2 + g->settings->restrict_info * 4 : 0);
}

/* Derive when the message names itself, else its facts stand in for the
 * id (a payload repeated as it was gets the same event_id). */
static void feed_message(EVP_MD_CTX *md, const Blazz__V1__InboundMessage *m)
{
    feed(md, "message");
    if (!ing_str_empty(m->wam_id)) {
        feed(md, m->wam_id);
        return;
    }
    feed(md, "");
    feed_message_facts(md, m);
}

/* Meta repeats a notice it was not answered 200 for, as it was: every
 * value it carries is its identity. */
static void feed_business_notice(EVP_MD_CTX *md, const Blazz__V1__BusinessNotice *n)
{
    feed(md, "business_notice");
    feed(md, n->waba_id);
    feed(md, n->field);
    /* A template notice is fed as it was before account notices existed
     * (1, then its values), so that it keeps its id across the upgrade. */
    if (n->notice_case == BLAZZ__V1__BUSINESS_NOTICE__NOTICE_TEMPLATE) {
        const Blazz__V1__TemplateNotice *t = n->template_;
        feed_int(md, 1);
        feed(md, t->template_id);
        feed(md, t->name);
        feed(md, t->language);
        feed(md, t->event);
        feed(md, t->reason);
        feed(md, t->category);
        feed(md, t->quality_score);
    } else if (n->notice_case == BLAZZ__V1__BUSINESS_NOTICE__NOTICE_ACCOUNT) {
        const Blazz__V1__AccountNotice *a = n->account;
        feed_int(md, 2);
        feed(md, a->display_phone_number);
        feed(md, a->phone_number_id);
        feed(md, a->event);
        feed(md, a->messaging_limit);
        feed(md, a->business_limit);
        feed(md, a->restriction);
        feed_int(md, a->restricted_until_ms);
        feed(md, a->violation);
        feed(md, a->ban_state);
        feed(md, a->detail);
        /* after the rest, so that every other account notice keeps its id:
         * the bands of one entry differ in these alone */
        if (a->volume_tier) {
            const Blazz__V1__VolumeTier *t = a->volume_tier;
            feed(md, t->effective_month);
            feed(md, t->pricing_category);
            feed(md, t->region);
            feed(md, t->tier);
            feed_int(md, t->tier_updated_at_ms);
        }
    } else {
        feed_int(md, 0);
    }
}

/* A call's fact: Meta repeats it as it was, and two facts of one call
 * differ in what happened (the event, the status) or when. */
static void feed_call(EVP_MD_CTX *md, const Blazz__V1__CallEvent *c)
{
    feed(md, "call");
    feed(md, c->call_id);
    feed(md, c->event);
    feed(md, c->status);
    feed_int(md, c->timestamp_ms);
    feed_int(md, c->ended_at_ms);
}

static void feed_payload(EVP_MD_CTX *md, const Blazz__V1__InboundEvent *ev)
{
    switch (ev->payload_case) {
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE:
        feed_message(md, ev->message);
        break;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK:
        feed(md, "ack");
        feed(md, ev->ack->wam_id);
        feed_int(md, ev->ack->status);
        break;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS:
        feed(md, "session_status");
        feed_int(md, ev->session_status->status);
        feed_int(md, ev->envelope ? ev->envelope->occurred_at_ms : 0);
        break;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC:
        feed(md, "history_sync");
        feed(md, ev->history_sync->sync_id);
        feed_int(md, ev->history_sync->batch_index);
        break;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE:
        feed(md, "group_update");
        feed(md, ev->group_update->group_jid);
        feed_int(md, ev->group_update->action);
        feed_int(md, ev->group_update->timestamp_ms);
        for (size_t i = 0; i < ev->group_update->n_participants; i++) {
            feed(md, ev->group_update->participants[i]->jid);
            feed(md, ev->group_update->participants[i]->phone);
            /* only when given: a gateway's members keep the ids they had */
            if (ev->group_update->participants[i]->bsuid &&
                *ev->group_update->participants[i]->bsuid)
                feed(md, ev->group_update->participants[i]->bsuid);
        }
        feed_group_values(md, ev->group_update);
        break;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE: {
        const Blazz__V1__ContactUpdate *c = ev->contact_update;
        const Blazz__V1__BusinessProfile *bp = c->business_profile;
        feed(md, "contact_update");
        feed(md, c->contact_phone);
        feed(md, c->contact_jid);
        feed_int(md, c->timestamp_ms);
        feed(md, c->push_name);
        feed(md, c->profile_picture_url);
        feed_int(md, bp != NULL);
        if (bp) {
            feed(md, bp->description);
            feed(md, bp->category);
            feed(md, bp->email);
            feed(md, bp->website);
            feed(md, bp->address);
        }
        /* only when given: the ids of updates without them stay as they were */
        if (!ing_str_empty(c->contact_bsuid) || !ing_str_empty(c->marketing_preference)) {
            feed(md, c->contact_bsuid);
            feed(md, c->marketing_preference);
        }
        if (!ing_str_empty(c->saved_name) || c->saved_name_removed) {
            feed(md, c->saved_name);
            feed_int(md, c->saved_name_removed);
        }
        if (c->identity_change) {
            feed(md, c->identity_change->kind);
            feed(md, c->identity_change->new_phone);
            feed(md, c->identity_change->new_bsuid);
            feed(md, c->identity_change->new_parent_bsuid);
        }
        break;
    }
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_INSTANCE_HEARTBEAT:
        feed(md, "instance_heartbeat");
        feed_int(md, ev->instance_heartbeat->instance ? ev->instance_heartbeat->instance->index : -1);
        feed(md, ev->instance_heartbeat->boot_id);
        feed_int(md, ev->envelope ? ev->envelope->occurred_at_ms : 0);
        break;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL:
        feed_call(md, ev->call);
        break;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_BUSINESS_NOTICE:
        feed_business_notice(md, ev->business_notice);
        feed_int(md, ev->envelope ? ev->envelope->occurred_at_ms : 0);
        break;
    default:
        feed(md, "none");
        feed_int(md, ev->envelope ? ev->envelope->occurred_at_ms : 0);
        break;
    }
}

static EVP_MD_CTX *digest_start(const char *tag, const char *what, bz_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        bz_fail(err, BZ_ERR_NOMEM, "derive %s: cannot start SHA-256", what);
        return NULL;
    }
    feed(md, tag);
    return md;
}

/* Finish md into its first 16 bytes (frees md). */
static bz_status digest_finish(EVP_MD_CTX *md, const char *what, unsigned char first[16],
                               bz_error *err)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int ok = EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen >= 16;
    EVP_MD_CTX_free(md);
    if (!ok)
        return bz_fail(err, BZ_ERR_INTERNAL, "derive %s: SHA-256 failed", what);
    memcpy(first, digest, 16);
    return BZ_OK;
}

/* Derive the event id of ev from its raw (not yet normalized) content into
 * out. Deterministic: equal facts give equal ids. */
static bz_status derive_event_id(const Blazz__V1__InboundEvent *ev, char out[BZ_UUID_STR_SIZE],
                                 bz_error *err)
{
    EVP_MD_CTX *md = digest_start("blazz.ingest.event_id.v1", "event_id", err);
    if (!md)
        return BZ_ERR_NOMEM;
    feed(md, ev->envelope ? ev->envelope->session_id : "");
    feed_int(md, ev->envelope ? ev->envelope->provider : 0);
    feed_payload(md, ev);
    unsigned char digest[16];
    bz_status st = digest_finish(md, "event_id", digest, err);
    if (st != BZ_OK)
        return st;
    digest[6] = (unsigned char)((digest[6] & 0x0f) | 0x80); /* version 8 */
    digest[8] = (unsigned char)((digest[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    bz_uuid_format(digest, out);
    return BZ_OK;
}

bz_status ing_message_id_derive(const char *session_id, const Blazz__V1__InboundMessage *m,
                                      char out[ING_DERIVED_ID_SIZE], bz_error *err)
{
    EVP_MD_CTX *md = digest_start("blazz.ingest.wam_id.v1", "a message id", err);
    if (!md)
        return BZ_ERR_NOMEM;
    feed(md, session_id);
    feed_message_facts(md, m);
    unsigned char digest[16];
    bz_status st = digest_finish(md, "a message id", digest, err);
    if (st != BZ_OK)
        return st;
    size_t prefix = sizeof ING_DERIVED_ID_PREFIX - 1;
    memcpy(out, ING_DERIVED_ID_PREFIX, prefix);
    return bz_hex_encode(digest, sizeof digest, out + prefix, ING_DERIVED_ID_SIZE - prefix, err);
}

bz_status ing_event_id_assign(Blazz__V1__InboundEvent *ev, bz_error *err)
{
    if (!ev->envelope)
        return bz_reject(err, "missing_field", "field envelope: missing");
    char *id = ev->envelope->event_id;
    if (ing_str_empty(id)) {
        char derived[BZ_UUID_STR_SIZE];
        bz_status st = derive_event_id(ev, derived, err);
        if (st != BZ_OK)
            return st;
        if (!ing_str_set(&ev->envelope->event_id, derived))
            return bz_fail(err, BZ_ERR_NOMEM, "assign event_id: out of memory");
        return BZ_OK;
    }
    if (!bz_uuid_is_valid(id))
        return bz_reject(err, "invalid_field", "field envelope.event_id: not a UUID");
    for (char *c = id; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return BZ_OK;
}
