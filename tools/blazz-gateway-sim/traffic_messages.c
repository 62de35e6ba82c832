/*
 * traffic_messages.c - one WhatsApp message of the generated traffic, in a
 * private chat or a group, and a group's participant.
 *
 * A message gets one of WhatsApp's types with realistic weights (mostly
 * text, then images, voice notes, documents, stickers, videos, locations,
 * reactions, vCards and revokes), a message id shaped like whatsapp-web.js's
 * (3EB0... from the phone, 3A... received) and, now and then, a reply to or
 * reaction on one of the account's recent messages. Everything is built in
 * the generator's arena and drawn from its current rng (traffic_state.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "traffic_state.h"

/* An array of n pointers (protobuf-c repeated message fields). */
static void new_wam_id(bz_sim_traffic *t, bool from_me, char out[WAM_ID_SIZE])
{
    unsigned long long v = (unsigned long long)bz_sim_rng_next(t->cur);
    snprintf(out, WAM_ID_SIZE, from_me ? "3EB0%016llX" : "3A%016llX", v);
}

static void remember_recent(bz_sim_account_state *s, const char *wam_id)
{
    snprintf(s->recent[s->recent_next], WAM_ID_SIZE, "%s", wam_id);
    s->recent_next = (s->recent_next + 1) % RECENT_MAX;
    if (s->nrecent < RECENT_MAX)
        s->nrecent++;
}

const char *bz_sim_recent_wam_id(bz_sim_traffic *t, bz_sim_account_state *s)
{
    if (s->nrecent == 0)
        return NULL;
    return s->recent[bz_sim_rng_below(t->cur, (uint64_t)s->nrecent)];
}

static Blazz__V1__MediaInfo *new_media(bz_sim_traffic *t, const char *mime, int64_t size,
                                       const char *caption)
{
    Blazz__V1__MediaInfo *m = bz_sim_arena_alloc(&t->arena, sizeof *m);
    if (!m)
        return NULL;
    blazz__v1__media_info__init(m);
    bz_sim_arena *a = &t->arena;
    unsigned long long h1 = (unsigned long long)bz_sim_rng_next(t->cur);
    unsigned long long h2 = (unsigned long long)bz_sim_rng_next(t->cur);
    m->mime_type = bz_sim_arena_strdup(a, mime);
    m->url = bz_sim_arena_printf(a, "https://mmg.whatsapp.net/v/t62.7118-24/%llu_n.enc?ccb=11-4",
                                 h1 % 100000000000ull);
    m->sha256 = bz_sim_arena_printf(a, "%016llx%016llx", h1, h2);
    m->caption = bz_sim_arena_strdup(a, caption);
    m->size_bytes = size;
    return m;
}

/* Give msg a type and content: one of WhatsApp's types with realistic
 * weights; replies and reactions refer to quoted (NULL: none to refer to). */
static bool fill_content(bz_sim_traffic *t, bz_sim_message *msg, const bz_sim_words *bodies,
                         bool allow_special, const char *quoted)
{
    bz_sim_rng *r = t->cur;
    bz_sim_arena *a = &t->arena;
    int roll = (int)bz_sim_rng_below(r, 100);
    if (!allow_special && roll >= 89)
        roll = 0; /* text instead of reaction / revoked / vcard / location */
    if (roll < 71 || (roll >= 95 && roll < 98 && !quoted)) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
        msg->raw_type = (char *)"chat";
        msg->body = bz_sim_arena_strdup(a, bz_sim_pick(r, bodies));
        if (quoted && bz_sim_rng_chance(r, 0.1))
            msg->quoted_wam_id = bz_sim_arena_strdup(a, quoted);
        msg->is_forwarded = bz_sim_rng_chance(r, 0.03);
        return true;
    }
    if (roll < 80) {
        const char *caption = bz_sim_pick(r, &bz_sim_captions);
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_IMAGE;
        msg->raw_type = (char *)"image";
        msg->body = bz_sim_arena_strdup(a, caption);
        msg->media = new_media(t, "image/jpeg", bz_sim_rng_between(r, 40000, 900000), caption);
    } else if (roll < 85) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VOICE;
        msg->raw_type = (char *)"ptt";
        msg->media = new_media(t, "audio/ogg; codecs=opus", bz_sim_rng_between(r, 5000, 300000), "");
        if (msg->media)
            msg->media->duration_seconds = (int32_t)bz_sim_rng_between(r, 2, 120);
    } else if (roll < 88) {
        const char *file = bz_sim_pick(r, &bz_sim_documents);
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_DOCUMENT;
        msg->raw_type = (char *)"document";
        msg->media = new_media(t, strstr(file, ".pdf") ? "application/pdf"
                                                       : "application/octet-stream",
                               bz_sim_rng_between(r, 20000, 4000000), "");
        if (msg->media)
            msg->media->filename = bz_sim_arena_strdup(a, file);
    } else if (roll < 91) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_STICKER;
        msg->raw_type = (char *)"sticker";
        msg->media = new_media(t, "image/webp", bz_sim_rng_between(r, 8000, 90000), "");
    } else if (roll < 93) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_VIDEO;
        msg->raw_type = (char *)"video";
        msg->media = new_media(t, "video/mp4", bz_sim_rng_between(r, 500000, 16000000), "");
        if (msg->media)
            msg->media->duration_seconds = (int32_t)bz_sim_rng_between(r, 3, 90);
    } else if (roll < 95) {
        char place[160];
        snprintf(place, sizeof place, "%s", bz_sim_pick(r, &bz_sim_places));
        char *save = NULL;
        const char *name = strtok_r(place, "|", &save);
        const char *address = strtok_r(NULL, "|", &save);
        const char *lat = strtok_r(NULL, "|", &save);
        const char *lon = strtok_r(NULL, "|", &save);
        Blazz__V1__Location *loc = bz_sim_arena_alloc(a, sizeof *loc);
        if (!loc)
            return false;
        blazz__v1__location__init(loc);
        loc->name = bz_sim_arena_strdup(a, name ? name : "");
        loc->address = bz_sim_arena_strdup(a, address ? address : "");
        loc->latitude = lat ? strtod(lat, NULL) : 0.0;
        loc->longitude = lon ? strtod(lon, NULL) : 0.0;
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_LOCATION;
        msg->raw_type = (char *)"location";
        msg->location = loc;
        return true;
    } else if (roll < 98) {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION;
        msg->raw_type = (char *)"reaction";
        msg->reaction_emoji = bz_sim_arena_strdup(a, bz_sim_pick(r, &bz_sim_emojis));
        msg->target_wam_id = bz_sim_arena_strdup(a, quoted);
        return true;
    } else if (roll < 99) {
        bz_sim_contact *c = &t->contacts[bz_sim_rng_below(r, t->pool)];
        const char *name = c->name[0] ? c->name : c->phone;
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_CONTACTS;
        msg->raw_type = (char *)"vcard";
        msg->vcards = bz_sim_arena_alloc(a, sizeof *msg->vcards);
        if (!msg->vcards)
            return false;
        msg->n_vcards = 1;
        msg->vcards[0] = bz_sim_arena_printf(
            a, "BEGIN:VCARD\nVERSION:3.0\nFN:%s\nTEL;type=CELL;waid=%s:%s\nEND:VCARD", name,
            c->phone + 1, c->phone);
        return true;
    } else {
        msg->message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REVOKED;
        msg->raw_type = (char *)"revoked";
        msg->body = (char *)"";
        return true;
    }
    msg->has_media = true;
    return msg->media != NULL;
}

/* A new message of chat_type sent at ts, its fresh id also copied into
 * wam_id; NULL when out of memory. Its chat and content are the caller's. */
static bz_sim_message *new_message(bz_sim_traffic *t, Blazz__V1__ChatType chat_type, bool from_me,
                                   int64_t ts, char wam_id[WAM_ID_SIZE])
{
    bz_sim_message *msg = bz_sim_arena_alloc(&t->arena, sizeof *msg);
    if (!msg)
        return NULL;
    blazz__v1__inbound_message__init(msg);
    new_wam_id(t, from_me, wam_id);
    msg->wam_id = bz_sim_arena_strdup(&t->arena, wam_id);
    msg->chat_type = chat_type;
    msg->from_me = from_me;
    msg->timestamp_ms = ts;
    return msg;
}

/* Give msg its content, drawn from bodies for a text, and make it one of
 * the account's recent messages: msg, or NULL when out of memory. */
static bz_sim_message *finish_message(bz_sim_traffic *t, int account, bz_sim_message *msg,
                                      const char *wam_id, const bz_sim_words *bodies,
                                      bool allow_special, const char *quoted)
{
    if (!fill_content(t, msg, bodies, allow_special, quoted))
        return NULL;
    remember_recent(&t->acc[account], wam_id);
    return msg;
}

/* A message of the private chat with c (g NULL) or of group g, by one of
 * g's members or (from_me) the account. */
static bz_sim_message *chat_message(bz_sim_traffic *t, int account, const bz_sim_contact *c,
                                    const bz_sim_group *g, bool from_me, int64_t ts,
                                    bool allow_special, const char *quoted)
{
    Blazz__V1__ChatType chat_type =
        g ? BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP : BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    char wam_id[WAM_ID_SIZE];
    bz_sim_message *msg = new_message(t, chat_type, from_me, ts, wam_id);
    if (!msg)
        return NULL;
    const bz_sim_words *bodies = &bz_sim_outbound_bodies;
    if (!g) {
        msg->contact_phone = (char *)c->phone;
        msg->contact_jid = (char *)c->jid;
        msg->contact_name = (char *)c->name;
        if (!from_me)
            bodies = &bz_sim_inbound_bodies;
    } else {
        msg->group_jid = (char *)g->jid;
        msg->group_name = (char *)g->name;
    }
    if (g && !from_me) {
        const bz_sim_contact *sender = &bz_sim_pool_of(
            t, account)[g->members[bz_sim_rng_below(t->cur, (uint64_t)g->nmembers)]];
        msg->sender_phone = (char *)sender->phone;
        msg->sender_jid = (char *)sender->jid;
        msg->sender_name = (char *)sender->name;
        bodies = &bz_sim_group_bodies;
    }
    return finish_message(t, account, msg, wam_id, bodies, allow_special, quoted);
}

bz_sim_message *bz_sim_private_message(bz_sim_traffic *t, int account, const bz_sim_contact *c,
                                       bool from_me, int64_t ts, bool allow_special,
                                       const char *quoted)
{
    return chat_message(t, account, c, NULL, from_me, ts, allow_special, quoted);
}

bz_sim_message *bz_sim_group_message(bz_sim_traffic *t, int account, const bz_sim_group *g,
                                     bool from_me, int64_t ts, bool allow_special,
                                     const char *quoted)
{
    return chat_message(t, account, NULL, g, from_me, ts, allow_special, quoted);
}

Blazz__V1__GroupParticipant *bz_sim_participant_of(bz_sim_traffic *t, int account,
                                                   const bz_sim_group *g, int member)
{
    Blazz__V1__GroupParticipant *p = bz_sim_arena_alloc(&t->arena, sizeof *p);
    if (!p)
        return NULL;
    blazz__v1__group_participant__init(p);
    const bz_sim_contact *c = &bz_sim_pool_of(t, account)[g->members[member]];
    p->phone = (char *)c->phone;
    p->jid = (char *)c->jid;
    p->name = (char *)c->name;
    p->is_admin = (g->admins >> member) & 1u;
    p->is_super_admin = member == 0;
    p->joined_at_ms = g->created_ms + member * 3600000LL;
    return p;
}
