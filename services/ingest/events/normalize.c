/*
 * normalize.c - validation and normalization of InboundEvents (see
 * normalize.h).
 *
 * One walker per payload kind. Each field is checked where it is visited,
 * with its path built into a small buffer, so rejections name the exact
 * field ("history_sync.chats[3].messages[0].body"; field_checks.c). A user is described by
 * a (phone, jid) pair that may arrive in any form; norm_party turns it into
 * an E.164 phone (empty for @lid identities) plus the canonical JID, or
 * reports that the pair actually names a group.
 */
#include "events/normalize.h"

#include <stdio.h>
#include <string.h>

#include "core/uuid.h"
#include "events/business_notice.h"
#include "events/call.h"
#include "events/event_id.h"
#include "events/event_tree.h"
#include "events/field_checks.h"
#include "events/heartbeat.h"
#include "events/message_content.h"
#include "events/session_status.h"
#include "events/vocabulary.h"
#include "proto/unknown_fields.h"
#include "wa/jid.h"
#include "wa/meta_group.h"
#include "wa/phone.h"

#define PARTICIPANTS_MAX 4096

bz_status ing_check_timestamp(int64_t *ts, int64_t fallback, int required, const ing_norm_opts *o,
                              const char *field, bz_error *err)
{
    if (*ts == 0)
        *ts = fallback;
    if (*ts == 0)
        return required ? ing_reject(err, "missing_field", field, "required") : BZ_OK;
    if (*ts < ING_MIN_TIMESTAMP_MS)
        return ing_reject(err, "invalid_field", field,
                          "%lld ms is before 2009 (seconds instead of ms?)", (long long)*ts);
    if (*ts > o->now_ms + o->max_future_ms)
        return ing_reject(err, "invalid_field", field, "%lld ms is in the future", (long long)*ts);
    return BZ_OK;
}

/* Normalize a user named by phone and/or jid. *kind reports what the pair
 * names; a GROUP leaves the fields untouched and *group_jid holds the
 * canonical group JID (the caller decides whether that is allowed). */
static bz_status norm_party(char **phone, char **jid, const char *phone_field,
                            const char *jid_field, const ing_norm_opts *o, int required,
                            bz_jid_kind *kind, char group_jid[BZ_JID_SIZE], bz_error *err)
{
    char canon_jid[BZ_JID_SIZE] = "", canon_phone[BZ_PHONE_E164_SIZE] = "";
    bz_jid_kind jkind = BZ_JID_USER, pkind = BZ_JID_USER;
    bz_error inner;
    *kind = BZ_JID_USER;
    if (!ing_str_empty(*jid)) {
        if (bz_jid_canonicalize(*jid, canon_jid, sizeof canon_jid, &jkind, &inner) != BZ_OK)
            return ing_reject(err, "invalid_field", jid_field, "%s", inner.msg);
        if (jkind == BZ_JID_GROUP) {
            *kind = BZ_JID_GROUP;
            memcpy(group_jid, canon_jid, BZ_JID_SIZE);
            return BZ_OK;
        }
    }
    if (!ing_str_empty(*phone)) {
        if (strchr(*phone, '@')) { /* a JID given as the phone */
            char as_jid[BZ_JID_SIZE];
            if (bz_jid_canonicalize(*phone, as_jid, sizeof as_jid, &pkind, &inner) != BZ_OK)
                return ing_reject(err, "invalid_field", phone_field, "%s", inner.msg);
            if (pkind == BZ_JID_GROUP) {
                *kind = BZ_JID_GROUP;
                memcpy(group_jid, as_jid, BZ_JID_SIZE);
                return BZ_OK;
            }
            if (pkind == BZ_JID_USER)
                bz_jid_to_phone(as_jid, canon_phone, sizeof canon_phone, NULL);
            if (!*canon_jid) {
                memcpy(canon_jid, as_jid, sizeof canon_jid);
                jkind = pkind;
            }
        } else if (bz_phone_normalize(*phone, o->default_cc, canon_phone, sizeof canon_phone,
                                      &inner) != BZ_OK) {
            return ing_reject(err, "invalid_field", phone_field, "%s", inner.msg);
        }
    }
    if (!*canon_jid && !*canon_phone)
        return required ? ing_reject(err, "missing_field", phone_field, "required") : BZ_OK;
    if (*canon_jid && jkind != BZ_JID_USER && jkind != BZ_JID_LID)
        return ing_reject(err, "invalid_field", jid_field, "a %s is not a person",
                          bz_jid_kind_name(jkind));
    if (!*canon_jid) {
        bz_jid_from_phone(canon_phone, canon_jid, sizeof canon_jid, NULL);
    } else if (jkind == BZ_JID_USER) {
        char jid_phone[BZ_PHONE_E164_SIZE];
        bz_jid_to_phone(canon_jid, jid_phone, sizeof jid_phone, NULL);
        if (*canon_phone && strcmp(canon_phone, jid_phone) != 0)
            return ing_reject(err, "invalid_field", phone_field, "names another user than %s",
                              jid_field);
        memcpy(canon_phone, jid_phone, sizeof canon_phone);
    }
    *kind = jkind;
    if (!ing_str_set(phone, canon_phone) || !ing_str_set(jid, canon_jid))
        return ing_out_of_memory(err, phone_field);
    return BZ_OK;
}

bz_status ing_norm_phone_only(char **phone, const char *field, const ing_norm_opts *o,
                              bz_error *err)
{
    if (ing_str_empty(*phone))
        return BZ_OK;
    char *jid = (char *)protobuf_c_empty_string;
    bz_jid_kind kind;
    char group[BZ_JID_SIZE];
    bz_status st = norm_party(phone, &jid, field, field, o, 0, &kind, group, err);
    ing_str_set(&jid, NULL);
    if (st == BZ_OK && kind == BZ_JID_GROUP)
        return ing_reject(err, "invalid_field", field, "a group is not a person");
    if (st == BZ_OK && kind == BZ_JID_LID && !ing_str_set(phone, NULL))
        return ing_out_of_memory(err, field);
    return st;
}

/* A group's key: its canonical JID, or for Meta (meta_id_ok) the Groups
 * API's group_id as it came (meta_group.h). */
static bz_status norm_group_jid(char **jid, int required, int meta_id_ok, const char *field,
                                bz_error *err)
{
    if (ing_str_empty(*jid))
        return required ? ing_reject(err, "missing_field", field, "required") : BZ_OK;
    if (meta_id_ok && bz_meta_group_id_valid(*jid))
        return BZ_OK;
    char canon[BZ_JID_SIZE];
    bz_jid_kind kind;
    bz_error inner;
    if (bz_jid_canonicalize(*jid, canon, sizeof canon, &kind, &inner) != BZ_OK)
        return ing_reject(err, "invalid_field", field, "%s", inner.msg);
    if (kind != BZ_JID_GROUP)
        return ing_reject(err, "invalid_field", field, "a %s JID is not a group",
                          bz_jid_kind_name(kind));
    if (!ing_str_set(jid, canon))
        return ing_out_of_memory(err, field);
    return BZ_OK;
}

/* A group's members; only Meta's may be named by a BSUID alone. */
static bz_status norm_participants(Blazz__V1__GroupParticipant **list, size_t n, const char *base,
                                   int meta, const ing_norm_opts *o, bz_error *err)
{
    if (n > PARTICIPANTS_MAX)
        return ing_reject(err, "invalid_field", base, "%zu participants, at most %d", n,
                          PARTICIPANTS_MAX);
    for (size_t i = 0; i < n; i++) {
        char item[ING_FIELD_MAX];
        ing_path pp, pj, pn;
        ing_field_path(item, sizeof item, "%s[%zu]", base, i);
        Blazz__V1__GroupParticipant *p = list[i];
        bz_jid_kind kind;
        char group[BZ_JID_SIZE];
        bz_status st = ing_check_bsuid(p->bsuid, 0, ing_path_at(&pn, item, "bsuid"), err);
        if (st == BZ_OK && !meta && !ing_str_empty(p->bsuid))
            st = ing_reject(err, "invalid_field", pn.text, "Meta's alone, not a gateway's");
        if (st == BZ_OK)
            st = norm_party(&p->phone, &p->jid, ing_path_at(&pp, item, "phone"),
                            ing_path_at(&pj, item, "jid"), o, ing_str_empty(p->bsuid), &kind,
                            group, err);
        if (st == BZ_OK && kind == BZ_JID_GROUP)
            st = ing_reject(err, "invalid_field", pj.text, "a group cannot be a participant");
        if (st == BZ_OK)
            st = ing_check_text(p->name, ING_NAME_MAX_BYTES, ing_path_at(&pn, item, "name"), err);
        if (st != BZ_OK)
            return st;
    }
    return BZ_OK;
}

/* A message's author: a person (never a group), required or not; a Meta
 * group participant may be known by its BSUID alone (a username user). */
static bz_status norm_sender(Blazz__V1__InboundMessage *m, const char *base, const ing_norm_opts *o,
                             int required, bz_error *err)
{
    ing_path pp, pj, pb;
    bz_jid_kind kind;
    char group[BZ_JID_SIZE] = "";
    bz_status st = ing_check_bsuid(m->sender_bsuid, 0, ing_path_at(&pb, base, "sender_bsuid"), err);
    if (st != BZ_OK)
        return st;
    if (required && !ing_str_empty(m->sender_bsuid))
        required = 0;
    else if (required && ing_str_empty(m->sender_phone) && ing_str_empty(m->sender_jid))
        return ing_reject(err, "missing_field", ing_path_at(&pp, base, "sender_phone"),
                          "required, or %s", pb.text);
    st = norm_party(&m->sender_phone, &m->sender_jid, ing_path_at(&pp, base, "sender_phone"),
                    ing_path_at(&pj, base, "sender_jid"), o, required, &kind, group, err);
    if (st == BZ_OK && kind == BZ_JID_GROUP)
        st = ing_reject(err, "invalid_field", pp.text, "a group cannot be a sender");
    return st;
}

/* A private chat's Meta identifiers: the BSUID, its parent, the username
 * (a display handle: free text). */
static bz_status norm_contact_ids(Blazz__V1__InboundMessage *m, const char *base, bz_error *err)
{
    ing_path p;
    bz_status st = ing_check_bsuid(m->contact_bsuid, 0, ing_path_at(&p, base, "contact_bsuid"), err);
    if (st == BZ_OK)
        st = ing_check_bsuid(m->contact_parent_bsuid, 1,
                             ing_path_at(&p, base, "contact_parent_bsuid"), err);
    if (st == BZ_OK)
        st = ing_check_text(m->contact_username, ING_NAME_MAX_BYTES,
                            ing_path_at(&p, base, "contact_username"), err);
    return st;
}

/* The contact's key in a conversation: its phone, else its BSUID (a Meta
 * username customer), else its JID (an @lid one). */
static const char *private_conversation(const char *phone, const char *bsuid, const char *jid)
{
    return !ing_str_empty(phone) ? phone : !ing_str_empty(bsuid) ? bsuid : jid;
}

/* The chat of a message: a group if any of its JIDs names one (or, from
 * Meta, its group_id does), else the contact. Writes the conversation key. */
static bz_status norm_message_chat(Blazz__V1__InboundMessage *m, const char *base, int meta,
                                   const ing_norm_opts *o, char *conversation, bz_error *err)
{
    ing_path pp, pj, pg;
    bz_jid_kind kind;
    char group[BZ_JID_SIZE] = "";
    bz_status st =
        norm_group_jid(&m->group_jid, 0, meta, ing_path_at(&pg, base, "group_jid"), err);
    if (st != BZ_OK)
        return st;
    st = norm_contact_ids(m, base, err);
    if (st != BZ_OK)
        return st;
    if (ing_str_empty(m->group_jid)) {
        int has_bsuid = !ing_str_empty(m->contact_bsuid);
        if (!has_bsuid && ing_str_empty(m->contact_phone) && ing_str_empty(m->contact_jid)) {
            ing_path pb;
            return ing_reject(err, "missing_field", ing_path_at(&pp, base, "contact_phone"),
                              "required, or %s", ing_path_at(&pb, base, "contact_bsuid"));
        }
        st = norm_party(&m->contact_phone, &m->contact_jid, ing_path_at(&pp, base, "contact_phone"),
                        ing_path_at(&pj, base, "contact_jid"), o, 0, &kind, group, err);
        if (st != BZ_OK)
            return st;
        if (kind == BZ_JID_GROUP) {
            if (!ing_str_set(&m->group_jid, group) || !ing_str_set(&m->contact_phone, NULL) ||
                !ing_str_set(&m->contact_jid, NULL))
                return ing_out_of_memory(err, pg.text);
        }
    } else if (!ing_str_empty(m->contact_phone) || !ing_str_empty(m->contact_jid)) {
        /* A group message's contact fields carry nothing the group lacks
         * (whatsapp-web.js puts the group JID in msg.from) and are dropped,
         * once valid: bad input is refused wherever it stands. */
        st = norm_party(&m->contact_phone, &m->contact_jid, ing_path_at(&pp, base, "contact_phone"),
                        ing_path_at(&pj, base, "contact_jid"), o, 0, &kind, group, err);
        if (st != BZ_OK)
            return st;
        if (!ing_str_set(&m->contact_phone, NULL) || !ing_str_set(&m->contact_jid, NULL))
            return ing_out_of_memory(err, pg.text);
    }
    if (!ing_str_empty(m->group_jid)) {
        if (!ing_str_set(&m->contact_bsuid, NULL) || !ing_str_set(&m->contact_parent_bsuid, NULL) ||
            !ing_str_set(&m->contact_username, NULL))
            return ing_out_of_memory(err, pg.text);
        m->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
        st = norm_sender(m, base, o, !m->from_me, err);
        if (st == BZ_OK && conversation)
            snprintf(conversation, ING_CONVERSATION_MAX, "%s", m->group_jid);
        return st;
    }
    m->chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    /* A private chat has no separate author: the contact is the sender, and
     * the sender fields are dropped, once valid (bad input is refused
     * wherever it stands). */
    st = norm_sender(m, base, o, 0, err);
    if (st != BZ_OK)
        return st;
    if (!ing_str_set(&m->sender_phone, NULL) || !ing_str_set(&m->sender_jid, NULL) ||
        !ing_str_set(&m->sender_bsuid, NULL))
        return ing_out_of_memory(err, "sender_phone");
    if (conversation)
        snprintf(conversation, ING_CONVERSATION_MAX, "%s",
                 private_conversation(m->contact_phone, m->contact_bsuid, m->contact_jid));
    return BZ_OK;
}

/* Producers before target_wam_id named a reaction's target as the quoted
 * message; an edit or a delete without a target is stored as a message. */
static bz_status target_of_reaction(Blazz__V1__InboundMessage *m, const char *base, bz_error *err)
{
    ing_path p;
    if (m->message_type != BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION ||
        !ing_str_empty(m->target_wam_id) || ing_str_empty(m->quoted_wam_id))
        return BZ_OK;
    if (!ing_str_set(&m->target_wam_id, m->quoted_wam_id))
        return ing_out_of_memory(err, ing_path_at(&p, base, "target_wam_id"));
    return BZ_OK;
}

/* A message without its WhatsApp id (the seeds' notifier sends none) gets
 * one derived from its normalized facts (event_id.h), marked as derived. */
static bz_status derive_missing_wam_id(Blazz__V1__InboundMessage *m, const char *session_id,
                                       const char *base, bz_error *err)
{
    if (!ing_str_empty(m->wam_id))
        return BZ_OK;
    char id[ING_DERIVED_ID_SIZE];
    ing_path p;
    bz_status st = ing_message_id_derive(session_id, m, id, err);
    if (st != BZ_OK)
        return st;
    if (!ing_str_set(&m->wam_id, id))
        return ing_out_of_memory(err, ing_path_at(&p, base, "wam_id"));
    m->wam_id_derived = 1;
    return BZ_OK;
}

static bz_status norm_message(Blazz__V1__InboundMessage *m, const char *session_id,
                              const char *base, int meta, int64_t fallback_ts,
                              const ing_norm_opts *o, char *conversation, bz_error *err)
{
    ing_path p;
    bz_status st = ing_norm_message_content(m, base, err);
    if (st == BZ_OK)
        st = ing_check_timestamp(&m->timestamp_ms, fallback_ts, 1, o,
                             ing_path_at(&p, base, "timestamp_ms"), err);
    if (st == BZ_OK)
        st = norm_message_chat(m, base, meta, o, conversation, err);
    if (st == BZ_OK)
        ing_default_message_type(m);
    if (st == BZ_OK)
        st = target_of_reaction(m, base, err);
    if (st == BZ_OK)
        st = derive_missing_wam_id(m, session_id, base, err);
    return st;
}

/* Meta's pricing words (category and type lower-case, the model in
 * capitals) become keys of message_usage rows: letters of their case and
 * _, at most 64, or none. */
static bz_status check_pricing_word(const char *word, int capitals, const char *path,
                                    bz_error *err)
{
    const char *w = word ? word : "";
    const char *letters = capitals ? "ABCDEFGHIJKLMNOPQRSTUVWXYZ_" : "abcdefghijklmnopqrstuvwxyz_";
    if (strlen(w) > 64 || strspn(w, letters) != strlen(w))
        return ing_reject(err, "invalid_field", path, "%s letters and _, at most 64",
                          capitals ? "capital" : "lower-case");
    return BZ_OK;
}

/* A Meta receipt of a message sent to a group names the group by its
 * Groups API id (meta_webhook.c), which is its key as it came. */
static int names_meta_group(const Blazz__V1__MessageAck *a, const Blazz__V1__Envelope *env)
{
    return env->provider == BLAZZ__V1__PROVIDER__PROVIDER_META &&
           ing_str_empty(a->recipient_phone) && !ing_str_empty(a->recipient_jid) &&
           bz_meta_group_id_valid(a->recipient_jid);
}

static bz_status norm_ack(Blazz__V1__MessageAck *a, Blazz__V1__Envelope *env,
                          const ing_norm_opts *o, char *conversation, bz_error *err)
{
    bz_jid_kind kind;
    char group[BZ_JID_SIZE] = "";
    bz_status st = ing_check_id(a->wam_id, 1, "receipt.wam_id", err);
    if (st != BZ_OK)
        return st;
    if (a->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_UNSPECIFIED)
        return ing_reject(err, "missing_field", "receipt.status", "required");
    if (a->status > BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED)
        return ing_reject(err, "invalid_field", "receipt.status", "unknown status %d", a->status);
    st = ing_check_text(a->error_code, 64, "receipt.error_code", err);
    if (st == BZ_OK)
        st = ing_check_text(a->error_message, ING_TEXT_MAX, "receipt.error_message", err);
    if (st == BZ_OK)
        st = ing_check_text(a->client_reference, ING_NAME_MAX_BYTES, "receipt.client_reference", err);
    if (st == BZ_OK)
        st = check_pricing_word(a->pricing_category, 0, "receipt.pricing_category", err);
    if (st == BZ_OK)
        st = check_pricing_word(a->pricing_type, 0, "receipt.pricing_type", err);
    if (st == BZ_OK)
        st = check_pricing_word(a->pricing_model, 1, "receipt.pricing_model", err);
    if (st == BZ_OK)
        st = ing_check_timestamp(&a->timestamp_ms, env->occurred_at_ms, 1, o, "receipt.timestamp_ms", err);
    if (st == BZ_OK)
        st = ing_check_bsuid(a->recipient_bsuid, 0, "receipt.recipient_bsuid", err);
    if (st == BZ_OK)
        st = ing_check_bsuid(a->recipient_parent_bsuid, 1, "receipt.recipient_parent_bsuid", err);
    int has_bsuid = !ing_str_empty(a->recipient_bsuid);
    if (st == BZ_OK && !has_bsuid && ing_str_empty(a->recipient_phone) &&
        ing_str_empty(a->recipient_jid))
        st = ing_reject(err, "missing_field", "receipt.recipient_phone",
                        "required, or receipt.recipient_bsuid");
    if (st != BZ_OK)
        return st;
    if (!names_meta_group(a, env))
        st = norm_party(&a->recipient_phone, &a->recipient_jid, "receipt.recipient_phone",
                        "receipt.recipient_jid", o, 0, &kind, group, err);
    if (st != BZ_OK)
        return st;
    if (*group) {
        if (!ing_str_set(&a->recipient_jid, group) || !ing_str_set(&a->recipient_phone, NULL))
            return ing_out_of_memory(err, "receipt.recipient_jid");
    }
    snprintf(conversation, ING_CONVERSATION_MAX, "%s",
             private_conversation(a->recipient_phone, a->recipient_bsuid, a->recipient_jid));
    return BZ_OK;
}

/* A synced chat's messages inherit the chat: copy its canonical party into
 * each message before the message walker checks it. */
static bz_status inherit_chat(Blazz__V1__InboundMessage *m, const Blazz__V1__SyncedChat *c,
                              const char *field, bz_error *err)
{
    int group = c->chat_type == BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
    if (!ing_str_set(&m->group_jid, group ? c->group_jid : NULL) ||
        !ing_str_set(&m->contact_phone, group ? NULL : c->contact_phone) ||
        !ing_str_set(&m->contact_bsuid, group ? NULL : c->contact_bsuid) ||
        !ing_str_set(&m->contact_jid, group ? NULL : c->contact_jid))
        return ing_out_of_memory(err, field);
    return BZ_OK;
}

static bz_status norm_synced_chat(Blazz__V1__SyncedChat *c, const char *session_id,
                                  const char *base, const ing_norm_opts *o, bz_error *err)
{
    ing_path pp, pj, pg;
    bz_jid_kind kind;
    char group[BZ_JID_SIZE] = "";
    bz_status st = norm_group_jid(&c->group_jid, 0, 0, ing_path_at(&pg, base, "group_jid"), err);
    if (st == BZ_OK)
        st = ing_check_bsuid(c->contact_bsuid, 0, ing_path_at(&pp, base, "contact_bsuid"), err);
    if (st == BZ_OK && ing_str_empty(c->group_jid)) {
        /* a username customer's chat is named by its BSUID alone */
        st = norm_party(&c->contact_phone, &c->contact_jid, ing_path_at(&pp, base, "contact_phone"),
                        ing_path_at(&pj, base, "contact_jid"), o, ing_str_empty(c->contact_bsuid),
                        &kind, group, err);
        if (st == BZ_OK && kind == BZ_JID_GROUP &&
            (!ing_str_set(&c->group_jid, group) || !ing_str_set(&c->contact_phone, NULL) ||
             !ing_str_set(&c->contact_jid, NULL) || !ing_str_set(&c->contact_bsuid, NULL)))
            st = ing_out_of_memory(err, pg.text);
    } else if (st == BZ_OK && !ing_str_set(&c->contact_bsuid, NULL)) {
        st = ing_out_of_memory(err, pg.text);
    }
    if (st != BZ_OK)
        return st;
    c->chat_type = ing_str_empty(c->group_jid) ? BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE
                                                    : BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
    st = ing_check_text(c->contact_name, ING_NAME_MAX_BYTES, ing_path_at(&pp, base, "contact_name"),
                        err);
    if (st == BZ_OK)
        st = ing_check_text(c->group_name, ING_NAME_MAX_BYTES, ing_path_at(&pp, base, "group_name"),
                            err);
    if (st == BZ_OK)
        st = ing_check_text(c->group_description, ING_TEXT_MAX,
                            ing_path_at(&pp, base, "group_description"), err);
    if (st == BZ_OK)
        st = ing_norm_phone_only(&c->group_owner_phone,
                                 ing_path_at(&pp, base, "group_owner_phone"), o, err);
    if (st == BZ_OK)
        st = norm_participants(c->participants, c->n_participants,
                               ing_path_at(&pp, base, "participants"), 0, o, err);
    if (st == BZ_OK && c->unread_count < 0)
        st = ing_reject(err, "invalid_field", ing_path_at(&pp, base, "unread_count"), "negative");
    if (st == BZ_OK)
        st = ing_check_timestamp(&c->last_activity_ms, 0, 0, o,
                             ing_path_at(&pp, base, "last_activity_ms"), err);
    if (st == BZ_OK && c->n_messages > ING_HISTORY_MESSAGES_MAX)
        st = ing_reject(err, "invalid_field", ing_path_at(&pp, base, "messages"),
                        "%zu messages, at most %d", c->n_messages, ING_HISTORY_MESSAGES_MAX);
    for (size_t i = 0; st == BZ_OK && i < c->n_messages; i++) {
        char item[ING_FIELD_MAX];
        ing_field_path(item, sizeof item, "%s.messages[%zu]", base, i);
        st = inherit_chat(c->messages[i], c, item, err);
        if (st == BZ_OK)
            st = norm_message(c->messages[i], session_id, item, 0, c->last_activity_ms, o, NULL,
                              err);
    }
    return st;
}

static bz_status norm_history(Blazz__V1__HistorySyncBatch *h, const char *session_id, int meta,
                              const ing_norm_opts *o, bz_error *err)
{
    bz_status st = ing_check_id(h->sync_id, 1, "history_sync.sync_id", err);
    if (st != BZ_OK)
        return st;
    /* Meta's runs are of unknown size (batch_total 0), ended by their last batch */
    if (h->batch_total < (meta ? 0 : 1))
        return ing_reject(err, "invalid_field", "history_sync.batch_total", "must be at least %d",
                          meta ? 0 : 1);
    if (h->batch_index < 0)
        return ing_reject(err, "invalid_field", "history_sync.batch_index", "negative");
    if (h->batch_total > 0 && h->batch_index >= h->batch_total)
        return ing_reject(err, "invalid_field", "history_sync.batch_index", "%d outside 0..%d",
                          h->batch_index, h->batch_total - 1);
    if (h->progress < 0 || h->progress > 100)
        return ing_reject(err, "invalid_field", "history_sync.progress", "%d outside 0..100",
                          h->progress);
    if (h->total_chats < 0)
        return ing_reject(err, "invalid_field", "history_sync.total_chats", "negative");
    if (h->error && (st = ing_norm_provider_error(h->error, "history_sync", err)) != BZ_OK)
        return st;
    if (h->n_chats > ING_HISTORY_CHATS_MAX)
        return ing_reject(err, "invalid_field", "history_sync.chats",
                          "%zu chats, at most %d per batch", h->n_chats, ING_HISTORY_CHATS_MAX);
    for (size_t i = 0; st == BZ_OK && i < h->n_chats; i++) {
        char item[ING_FIELD_MAX];
        ing_field_path(item, sizeof item, "history_sync.chats[%zu]", i);
        st = norm_synced_chat(h->chats[i], session_id, item, o, err);
    }
    return st;
}

static bz_status norm_group_update(Blazz__V1__GroupUpdate *g, Blazz__V1__Envelope *env,
                                   const ing_norm_opts *o, char *conversation, bz_error *err)
{
    int meta = env->provider == BLAZZ__V1__PROVIDER__PROVIDER_META; /* a Groups API id */
    bz_status st = norm_group_jid(&g->group_jid, 1, meta, "group_update.group_jid", err);
    if (st != BZ_OK)
        return st;
    if (g->action == BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_UNSPECIFIED)
        return ing_reject(err, "missing_field", "group_update.action", "required");
    if (g->action > BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_JOIN_REQUEST_REVOKED)
        return ing_reject(err, "invalid_field", "group_update.action", "unknown action %d",
                          g->action);
    st = ing_check_text(g->name, ING_NAME_MAX_BYTES, "group_update.name", err);
    if (st == BZ_OK)
        st = ing_check_text(g->description, ING_TEXT_MAX, "group_update.description", err);
    if (st == BZ_OK)
        st = ing_check_text(g->invite_code, ING_NAME_MAX_BYTES, "group_update.invite_code", err);
    if (st == BZ_OK)
        st = ing_check_text(g->picture_url, ING_TEXT_MAX, "group_update.picture_url", err);
    if (st == BZ_OK)
        st = ing_check_id(g->join_request_id, 0, "group_update.join_request_id", err);
    if (st == BZ_OK)
        st = norm_participants(g->participants, g->n_participants, "group_update.participants",
                               meta, o, err);
    if (st == BZ_OK)
        st = ing_norm_phone_only(&g->actor_phone, "group_update.actor_phone", o, err);
    if (st == BZ_OK)
        st = ing_norm_phone_only(&g->owner_phone, "group_update.owner_phone", o, err);
    if (st == BZ_OK)
        st = ing_check_timestamp(&g->timestamp_ms, env->occurred_at_ms, 1, o, "group_update.timestamp_ms",
                             err);
    if (st == BZ_OK)
        st = ing_check_timestamp(&g->group_created_at_ms, 0, 0, o, "group_update.group_created_at_ms",
                             err);
    if (st == BZ_OK)
        snprintf(conversation, ING_CONVERSATION_MAX, "%s", g->group_jid);
    return st;
}

/* A customer's new identifiers: a change of number names its new phone
 * (E.164 after normalizing), a change of BSUID its new BSUID; any other
 * given is checked too. */
static bz_status norm_identity_change(Blazz__V1__IdentityChange *ic, const ing_norm_opts *o,
                                      bz_error *err)
{
    const char *kind = ic->kind ? ic->kind : "";
    int number = strcmp(kind, "user_changed_number") == 0;
    if (!number && strcmp(kind, "user_changed_user_id") != 0)
        return ing_reject(err, "invalid_field", "contact_update.identity_change.kind",
                          "user_changed_number or user_changed_user_id");
    bz_status st = ing_check_bsuid(ic->new_bsuid, 0, "contact_update.identity_change.new_bsuid",
                                   err);
    if (st == BZ_OK)
        st = ing_check_bsuid(ic->new_parent_bsuid, 1,
                             "contact_update.identity_change.new_parent_bsuid", err);
    int had_phone = !ing_str_empty(ic->new_phone);
    if (st == BZ_OK)
        st = ing_norm_phone_only(&ic->new_phone, "contact_update.identity_change.new_phone", o,
                                 err);
    if (st == BZ_OK && had_phone && ing_str_empty(ic->new_phone))
        st = ing_reject(err, "invalid_field", "contact_update.identity_change.new_phone",
                        "a LID is not a phone number");
    if (st == BZ_OK && number && ing_str_empty(ic->new_phone))
        st = ing_reject(err, "missing_field", "contact_update.identity_change.new_phone",
                        "required for user_changed_number");
    if (st == BZ_OK && !number && ing_str_empty(ic->new_bsuid))
        st = ing_reject(err, "missing_field", "contact_update.identity_change.new_bsuid",
                        "required for user_changed_user_id");
    return st;
}

static bz_status norm_contact_update(Blazz__V1__ContactUpdate *c, Blazz__V1__Envelope *env,
                                     const ing_norm_opts *o, char *conversation,
                                     bz_error *err)
{
    bz_jid_kind kind;
    char group[BZ_JID_SIZE] = "";
    /* a Meta username customer is named by its BSUID alone */
    bz_status st = ing_check_bsuid(c->contact_bsuid, 0, "contact_update.contact_bsuid", err);
    if (st == BZ_OK)
        st = norm_party(&c->contact_phone, &c->contact_jid, "contact_update.contact_phone",
                        "contact_update.contact_jid", o, ing_str_empty(c->contact_bsuid), &kind,
                        group, err);
    if (st == BZ_OK && !ing_str_empty(c->marketing_preference) &&
        strcmp(c->marketing_preference, "stop") != 0 &&
        strcmp(c->marketing_preference, "resume") != 0)
        st = ing_reject(err, "invalid_field", "contact_update.marketing_preference",
                        "stop or resume");
    if (st == BZ_OK && kind == BZ_JID_GROUP)
        st = ing_reject(err, "invalid_field", "contact_update.contact_phone",
                        "a group is not a contact (group changes are group_update)");
    const Blazz__V1__IdentityChange *ic = c->identity_change;
    if (st == BZ_OK && ic)
        st = norm_identity_change(c->identity_change, o, err);
    if (st == BZ_OK)
        st = ing_check_text(c->push_name, ING_NAME_MAX_BYTES, "contact_update.push_name", err);
    if (st == BZ_OK)
        st = ing_check_text(c->saved_name, ING_NAME_MAX_BYTES, "contact_update.saved_name", err);
    if (st == BZ_OK && c->saved_name_removed && !ing_str_empty(c->saved_name))
        st = ing_reject(err, "invalid_field", "contact_update.saved_name",
                        "named with saved_name_removed");
    if (st == BZ_OK)
        st = ing_check_text(c->profile_picture_url, ING_TEXT_MAX, "contact_update.profile_picture_url",
                            err);
    const Blazz__V1__BusinessProfile *bp = c->business_profile;
    if (st == BZ_OK && bp)
        st = ing_check_text(bp->description, ING_TEXT_MAX,
                            "contact_update.business_profile.description", err);
    if (st == BZ_OK && bp)
        st = ing_check_text(bp->category, ING_NAME_MAX_BYTES,
                            "contact_update.business_profile.category", err);
    if (st == BZ_OK && bp)
        st =
            ing_check_text(bp->email, ING_NAME_MAX_BYTES, "contact_update.business_profile.email", err);
    if (st == BZ_OK && bp)
        st = ing_check_text(bp->website, ING_TEXT_MAX, "contact_update.business_profile.website", err);
    if (st == BZ_OK && bp)
        st = ing_check_text(bp->address, ING_TEXT_MAX, "contact_update.business_profile.address", err);
    if (st == BZ_OK)
        st = ing_check_timestamp(&c->timestamp_ms, env->occurred_at_ms, 1, o,
                             "contact_update.timestamp_ms", err);
    /* a change goes where the customer's next messages will: the key of
     * its new identifiers, so they find the contact already moved */
    if (st == BZ_OK && ic)
        snprintf(conversation, ING_CONVERSATION_MAX, "%s",
                 private_conversation(ing_str_empty(ic->new_phone) ? c->contact_phone
                                                                   : ic->new_phone,
                                      ing_str_empty(ic->new_bsuid) ? c->contact_bsuid
                                                                   : ic->new_bsuid,
                                      ""));
    else if (st == BZ_OK)
        snprintf(conversation, ING_CONVERSATION_MAX, "%s",
                 private_conversation(c->contact_phone, c->contact_bsuid, c->contact_jid));
    return st;
}

/* The payload's own timestamp, to fill a missing occurred_at_ms. */
static int64_t payload_timestamp(const Blazz__V1__InboundEvent *ev)
{
    switch (ev->payload_case) {
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE:
        return ev->message->timestamp_ms;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK:
        return ev->ack->timestamp_ms;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE:
        return ev->group_update->timestamp_ms;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE:
        return ev->contact_update->timestamp_ms;
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL:
        return ev->call->timestamp_ms;
    default:
        return 0;
    }
}

static bz_status norm_payload(Blazz__V1__InboundEvent *ev, const ing_norm_opts *o,
                              char *conversation, bz_error *err);

static bz_status norm_envelope(Blazz__V1__InboundEvent *ev, const ing_norm_opts *o,
                              bz_error *err)
{
    Blazz__V1__Envelope *env = ev->envelope;
    if (!env)
        return ing_reject(err, "missing_field", "envelope", "required");
    if (!bz_uuid_is_valid(env->event_id))
        return ing_reject(err, "invalid_field", "envelope.event_id", "not a UUID");
    /* a heartbeat is its instance's and a business notice its WABA's, not a
     * session's */
    int sessionless = ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_INSTANCE_HEARTBEAT ||
                      ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_BUSINESS_NOTICE;
    bz_status st =
        ing_check_session_id(env->session_id, !sessionless, "envelope.session_id", err);
    if (st == BZ_OK)
        st = ing_check_text(env->source, ING_NAME_MAX_BYTES, "envelope.source", err);
    if (st == BZ_OK && env->instance &&
        (env->instance->index < 0 || env->instance->index > INT16_MAX || env->instance->epoch < 0))
        st = ing_reject(err, "invalid_field", "envelope.instance", "index 0 to %d, epoch >= 0",
                        INT16_MAX);
    if (st == BZ_OK && env->instance)
        st = ing_check_text(env->instance->url, ING_TEXT_MAX, "envelope.instance.url", err);
    if (st == BZ_OK)
        st = ing_check_id(env->trace_id, 0, "envelope.trace_id", err);
    if (st != BZ_OK)
        return st;
    if (env->provider == BLAZZ__V1__PROVIDER__PROVIDER_UNSPECIFIED)
        env->provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    if (env->provider > BLAZZ__V1__PROVIDER__PROVIDER_META)
        return ing_reject(err, "invalid_field", "envelope.provider", "unknown provider %d",
                          env->provider);
    /* What a Meta event may do (a run of unknown size, a call) is not a
     * gateway's: ingest reads Meta's events from Meta, never a claim. */
    if (env->provider == BLAZZ__V1__PROVIDER__PROVIDER_META && !o->meta_edge)
        return ing_reject(err, "invalid_field", "envelope.provider",
                          "meta: Meta's events come only through ingest's Meta webhook");
    if (env->workspace_id < 0 || env->whatsapp_account_id < 0)
        return ing_reject(err, "invalid_field", "envelope.workspace_id", "negative");
    /* The trace starts here when the producer did not start one. */
    if (ing_str_empty(env->trace_id) && !ing_str_set(&env->trace_id, env->event_id))
        return ing_out_of_memory(err, "envelope.trace_id");
    if (env->occurred_at_ms == 0)
        env->occurred_at_ms = payload_timestamp(ev);
    return BZ_OK;
}

/* The payload's own checks come first, so that a bad message timestamp is
 * reported as such rather than as the envelope time copied from it. */
bz_status ing_normalize(Blazz__V1__InboundEvent *ev, const ing_norm_opts *o,
                              char *conversation, bz_error *err)
{
    conversation[0] = '\0';
    /* Dropped, not refused: contracts change additively (proto/README.md), so
     * a newer gateway's extra fields are expected and must not dead-letter its
     * events; what ingest forwards is only what it understood and checked, and
     * always decodes again (unknown_fields.h has the case that did not). */
    bz_proto_drop_unknown_fields(&ev->base);
    bz_status st = norm_envelope(ev, o, err);
    if (st == BZ_OK)
        st = norm_payload(ev, o, conversation, err);
    if (st == BZ_OK)
        st = ing_check_timestamp(&ev->envelope->occurred_at_ms, 0, 1, o, "envelope.occurred_at_ms",
                             err);
    return st;
}

static bz_status norm_payload(Blazz__V1__InboundEvent *ev, const ing_norm_opts *o,
                              char *conversation, bz_error *err)
{
    switch (ev->payload_case) {
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE:
        return norm_message(ev->message, ev->envelope->session_id, "message",
                            ev->envelope->provider == BLAZZ__V1__PROVIDER__PROVIDER_META,
                            ev->envelope->occurred_at_ms, o, conversation, err);
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK:
        return norm_ack(ev->ack, ev->envelope, o, conversation, err);
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS:
        snprintf(conversation, ING_CONVERSATION_MAX, "session");
        return ing_normalize_session_status(ev->session_status, o, err);
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC:
        snprintf(conversation, ING_CONVERSATION_MAX, "session");
        return norm_history(ev->history_sync, ev->envelope->session_id,
                            ev->envelope->provider == BLAZZ__V1__PROVIDER__PROVIDER_META, o, err);
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_GROUP_UPDATE:
        return norm_group_update(ev->group_update, ev->envelope, o, conversation, err);
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CONTACT_UPDATE:
        return norm_contact_update(ev->contact_update, ev->envelope, o, conversation, err);
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_INSTANCE_HEARTBEAT:
        return ing_normalize_heartbeat(ev->instance_heartbeat, conversation, ING_CONVERSATION_MAX,
                                       err);
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_BUSINESS_NOTICE:
        return ing_normalize_business_notice(ev->business_notice, conversation,
                                             ING_CONVERSATION_MAX, err);
    case BLAZZ__V1__INBOUND_EVENT__PAYLOAD_CALL:
        return ing_normalize_call(ev->call, ev->envelope, o, conversation, err);
    default:
        return ing_reject(err, "missing_field", "payload",
                          "no message, ack, session_status, history_sync, group_update, "
                          "contact_update, instance_heartbeat, business_notice or call");
    }
}
