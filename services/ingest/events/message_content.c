/*
 * message_content.c - the checks of what an InboundMessage says, apart from
 * who and where (normalize.c): its ids and texts, media, location,
 * interactive reply (a flow's answers too) and provider error, an ad's
 * referral, each field within its limit and
 * named by its path when refused (field_checks.c), and the message type an
 * event left unset or out of range.
 */
#include "events/message_content.h"

#include <math.h>

#include "core/uuid.h"
#include "events/event_tree.h"
#include "events/vocabulary.h"

static bz_status norm_media(Blazz__V1__InboundMessage *m, const char *base, bz_error *err)
{
    ing_path p;
    Blazz__V1__MediaInfo *media = m->media;
    if (!media)
        return BZ_OK;
    m->has_media = 1;
    bz_status st = ing_check_text(media->mime_type, ING_NAME_MAX_BYTES,
                                  ing_path_at(&p, base, "media.mime_type"), err);
    if (st == BZ_OK)
        st = ing_check_text(media->url, ING_TEXT_MAX, ing_path_at(&p, base, "media.url"), err);
    if (st == BZ_OK)
        st = ing_check_text(media->sha256, ING_NAME_MAX_BYTES, ing_path_at(&p, base, "media.sha256"),
                            err);
    if (st == BZ_OK)
        st = ing_check_text(media->caption, ING_BODY_MAX, ing_path_at(&p, base, "media.caption"),
                            err);
    if (st == BZ_OK)
        st = ing_check_text(media->filename, ING_NAME_MAX_BYTES,
                            ing_path_at(&p, base, "media.filename"), err);
    if (st == BZ_OK)
        st = ing_check_text(media->media_id, ING_NAME_MAX_BYTES,
                            ing_path_at(&p, base, "media.media_id"), err);
    /* the gateway's upload (POST /v1/gateway/media): chat-sync links the
     * message to that row, so only a uuid's shape passes (§16.4) */
    if (st == BZ_OK && media->stored_media_uuid && *media->stored_media_uuid &&
        !bz_uuid_is_valid(media->stored_media_uuid))
        st = ing_reject(err, "invalid_field", ing_path_at(&p, base, "media.stored_media_uuid"),
                        "not a UUID");
    if (st == BZ_OK && (media->size_bytes < 0 || media->duration_seconds < 0))
        st =
            ing_reject(err, "invalid_field", ing_path_at(&p, base, "media.size_bytes"), "negative");
    return st;
}

static bz_status norm_location(Blazz__V1__InboundMessage *m, const char *base, bz_error *err)
{
    ing_path p;
    Blazz__V1__Location *loc = m->location;
    if (!loc)
        return BZ_OK;
    if (!isfinite(loc->latitude) || loc->latitude < -90 || loc->latitude > 90)
        return ing_reject(err, "invalid_field", ing_path_at(&p, base, "location.latitude"),
                          "out of range");
    if (!isfinite(loc->longitude) || loc->longitude < -180 || loc->longitude > 180)
        return ing_reject(err, "invalid_field", ing_path_at(&p, base, "location.longitude"),
                          "out of range");
    bz_status st =
        ing_check_text(loc->name, ING_NAME_MAX_BYTES, ing_path_at(&p, base, "location.name"), err);
    if (st == BZ_OK)
        st = ing_check_text(loc->address, ING_TEXT_MAX, ing_path_at(&p, base, "location.address"), err);
    if (st == BZ_OK)
        st = ing_check_text(loc->url, ING_TEXT_MAX, ing_path_at(&p, base, "location.url"), err);
    return st;
}

static bz_status norm_interactive_reply(const Blazz__V1__InteractiveReply *r, const char *base,
                                        bz_error *err)
{
    ing_path p;
    bz_status st =
        ing_check_text(r->type, 64, ing_path_at(&p, base, "interactive_reply.type"), err);
    if (st == BZ_OK)
        st = ing_check_text(r->id, ING_NAME_MAX_BYTES, ing_path_at(&p, base, "interactive_reply.id"),
                            err);
    if (st == BZ_OK)
        st = ing_check_text(r->title, ING_NAME_MAX_BYTES,
                            ing_path_at(&p, base, "interactive_reply.title"), err);
    if (st == BZ_OK)
        st = ing_check_text(r->description, ING_TEXT_MAX,
                            ing_path_at(&p, base, "interactive_reply.description"), err);
    /* a flow's answers pass as text, JSON or not: chat-sync keeps them
     * either way, so a customer's form is never refused for its shape */
    if (st == BZ_OK)
        st = ing_check_text(r->response_json, ING_FLOW_RESPONSE_MAX,
                            ing_path_at(&p, base, "interactive_reply.response_json"), err);
    return st;
}

bz_status ing_norm_provider_error(const Blazz__V1__ProviderError *e, const char *base,
                                  bz_error *err)
{
    ing_path p;
    bz_status st = ing_check_text(e->code, 64, ing_path_at(&p, base, "error.code"), err);
    if (st == BZ_OK)
        st = ing_check_text(e->title, ING_NAME_MAX_BYTES, ing_path_at(&p, base, "error.title"), err);
    if (st == BZ_OK)
        st = ing_check_text(e->details, ING_TEXT_MAX, ing_path_at(&p, base, "error.details"), err);
    return st;
}

void ing_default_message_type(Blazz__V1__InboundMessage *m)
{
    if (m->message_type > BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_EDIT)
        m->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNKNOWN;
    if (m->message_type != BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNSPECIFIED)
        return;
    if (!ing_str_empty(m->raw_type))
        m->message_type = ing_message_type_from_text(m->raw_type);
    else if (m->has_media || m->media)
        m->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_UNKNOWN;
    else
        m->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
}

bz_status ing_norm_message_content(Blazz__V1__InboundMessage *m, const char *base, bz_error *err)
{
    ing_path p;
    bz_status st = ing_check_id(m->wam_id, 0, ing_path_at(&p, base, "wam_id"), err);
    if (st == BZ_OK)
        st = ing_check_text(m->body, ING_BODY_MAX, ing_path_at(&p, base, "body"), err);
    if (st == BZ_OK)
        st = ing_check_text(m->contact_name, ING_NAME_MAX_BYTES, ing_path_at(&p, base, "contact_name"),
                            err);
    if (st == BZ_OK)
        st =
            ing_check_text(m->group_name, ING_NAME_MAX_BYTES, ing_path_at(&p, base, "group_name"), err);
    if (st == BZ_OK)
        st = ing_check_text(m->sender_name, ING_NAME_MAX_BYTES, ing_path_at(&p, base, "sender_name"),
                            err);
    if (st == BZ_OK)
        st = ing_check_id(m->quoted_wam_id, 0, ing_path_at(&p, base, "quoted_wam_id"), err);
    if (st == BZ_OK)
        st = ing_check_id(m->target_wam_id, 0, ing_path_at(&p, base, "target_wam_id"), err);
    if (st == BZ_OK)
        st = ing_check_text(m->client_reference, ING_NAME_MAX_BYTES,
                            ing_path_at(&p, base, "client_reference"), err);
    if (st == BZ_OK)
        st = ing_check_text(m->raw_type, 64, ing_path_at(&p, base, "raw_type"), err);
    if (st == BZ_OK)
        st = ing_check_text(m->reaction_emoji, 64, ing_path_at(&p, base, "reaction_emoji"), err);
    if (st == BZ_OK)
        st = ing_check_text(m->raw_content, ING_RAW_CONTENT_MAX,
                            ing_path_at(&p, base, "raw_content"), err);
    if (st == BZ_OK)
        st = ing_check_text(m->referral_json, ING_RAW_CONTENT_MAX,
                            ing_path_at(&p, base, "referral_json"), err);
    if (st == BZ_OK && m->interactive_reply)
        st = norm_interactive_reply(m->interactive_reply, base, err);
    if (st == BZ_OK && m->error)
        st = ing_norm_provider_error(m->error, base, err);
    for (size_t i = 0; st == BZ_OK && i < m->n_vcards; i++)
        st = ing_check_text(m->vcards[i], ING_TEXT_MAX, ing_path_at(&p, base, "vcards"), err);
    if (st == BZ_OK)
        st = norm_media(m, base, err);
    if (st == BZ_OK)
        st = norm_location(m, base, err);
    return st;
}
