/*
 * events.c - what chat-sync tells the world, through its outbox:
 *   chat.events       ChatEvent (message created, status changed, sync
 *                     progress, chat read, a reaction, an edit or a delete
 *                     applied to its target, a group's or a contact's
 *                     change, two contacts merged, a contact opting out
 *                     or back in, a template
 *                     Meta changed, a Meta call made or moved), key
 *                     "<workspace_id>:<conversation>";
 *   session.events    SessionEvent, key whatsapp_account_id;
 *   wa.session.commands SessionCommand to a gateway instance (the CRM's
 *                     session commands, assignments, STOP to an instance
 *                     that lost a session: ARCHITECTURE.md §15), key
 *                     session_id (the outbox routes it to the gateway's
 *                     own topic, 0029);
 *   campaign.receipts CampaignReceipt, key campaign_id;
 *   wa.outbound       SendMessage read receipts (crm_read.c), key session_id.
 *
 * Event ids are derived, not random: SHA-1 over a fixed namespace, the input
 * command's event_id, the kind of effect and a sub-index, shaped as a
 * version-5 UUID. A replayed command therefore emits its events under the
 * same ids, and consumers deduplicate by event_id.
 *
 * ChatEvent snapshots carry the seeds' NewChatEvent fields (chat, contact or
 * group) as the rows stand right after the effect, so the webhook JSON can
 * mirror the broadcast payload. The events of a batch are written with one
 * multi-row INSERT (bz_outbox_batch, libs/kafka), in the order the effects
 * happened; the relay publishes in that order.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/clock.h"
#include "core/grow.h"
#include "core/uuid.h"
#include "kafka/outbox.h"
#include "kafka/topics.h"

#define SERVICE_SOURCE "chat-sync"
#define EVENT_ID_NAMESPACE "blazz.v1/chat-sync/"

void cs_event_id(const char *input_event_id, const char *kind, int sub, char out[CS_UUID_LEN])
{
    char name[512];
    int len = snprintf(name, sizeof name, EVENT_ID_NAMESPACE "%s/%s/%d", input_event_id, kind, sub);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(name, (size_t)(len < (int)sizeof name ? len : (int)sizeof name - 1), md, &mdlen,
               EVP_sha1(), NULL);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50); /* version 5 */
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    bz_uuid_format(md, out);
}

static const char *s(const char *v)
{
    return v ? v : "";
}

/* ---- recording ------------------------------------------------------------------ */

static cs_event *new_event(cs_batch *b, bz_error *err)
{
    if (!bz_grow((void **)&b->events, &b->capevents, b->nevents + 1, sizeof *b->events, 64)) {
        bz_fail(err, BZ_ERR_TRANSIENT, "record event: out of memory");
        return NULL;
    }
    cs_event *e = &b->events[b->nevents];
    memset(e, 0, sizeof *e);
    return e;
}

/* Pack msg (any protobuf-c message) as the next event. */
bz_status cs_emit_record(cs_batch *b, const char *topic, const char *event_id, char *key,
                         const ProtobufCMessage *msg, const char *trace_id, bz_error *err)
{
    cs_event *e = new_event(b, err);
    if (!e)
        return err->code;
    size_t len = protobuf_c_message_get_packed_size(msg);
    e->payload = malloc(len ? len : 1);
    if (!e->payload || !key || !topic)
        return bz_fail(err, BZ_ERR_TRANSIENT, "record event %s: out of memory", event_id);
    e->len = protobuf_c_message_pack(msg, e->payload);
    e->topic = topic;
    snprintf(e->event_id, sizeof e->event_id, "%s", event_id);
    e->key = key;
    e->trace_id = trace_id;
    b->nevents++;
    if (b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.events);
    return BZ_OK;
}

/* The envelope of the event (kind, sub) that the record under in caused;
 * its id, derived from in's, is written to event_id. */
static void derive_envelope(Blazz__V1__Envelope *out, const Blazz__V1__Envelope *in,
                            const char *kind, int sub, char event_id[CS_UUID_LEN])
{
    cs_event_id(in->event_id, kind, sub, event_id);
    out->event_id = event_id;
    out->occurred_at_ms = in->occurred_at_ms;
    out->produced_at_ms = bz_wall_ms();
    out->source = SERVICE_SOURCE;
    out->workspace_id = in->workspace_id;
    out->session_id = (char *)s(in->session_id);
    out->whatsapp_account_id = in->whatsapp_account_id;
    out->provider = in->provider;
    out->trace_id = (char *)s(in->trace_id);
}

/* The Kafka key of the record, or NULL when it had none. */
static char *record_key(cs_batch *b, const cs_record *r)
{
    if (!r->msg->key_len)
        return NULL;
    return cs_arena_strndup(&b->arena, r->msg->key, r->msg->key_len);
}

/* ---- snapshots -------------------------------------------------------------------- */

static void chat_snapshot(Blazz__V1__ChatSnapshot *out, const cs_chat *c)
{
    out->id = c->id;
    out->uuid = (char *)c->uuid;
    out->wam_id = (char *)s(c->wam_id);
    out->type = c->outbound ? BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND
                            : BLAZZ__V1__DIRECTION__DIRECTION_INBOUND;
    out->chat_type = c->group ? BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP
                              : BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    out->provider_type = c->provider ? c->provider : BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    out->message = (char *)s(c->body);
    out->message_type = c->message_type;
    out->message_status = c->status;
    out->is_read = c->is_read;
    out->created_at_ms = c->created_ms;
    out->sent_at_ms = c->sent_ms;
    out->delivered_at_ms = c->delivered_ms;
    out->read_at_ms = c->read_ms;
    out->whatsapp_account_id = c->account_id;
    out->contact_id = c->contact_id;
    out->group_id = c->group_id;
    out->sender_phone = (char *)s(c->sender_phone);
    out->sender_name = (char *)s(c->sender_name);
    out->has_media = c->has_media;
    out->media = c->media;
    out->quoted_wam_id = (char *)s(c->quoted_wam_id);
    out->client_reference = (char *)s(c->client_reference);
    out->campaign_id = c->campaign_id;
    out->user_id = c->user_id;
    out->referral_json = (char *)s(c->referral_json);
    out->interactive_reply_json = (char *)s(c->interactive_reply_json);
}

static void contact_snapshot(Blazz__V1__ContactSnapshot *out, const cs_contact *c)
{
    out->id = c->id;
    out->uuid = (char *)c->uuid;
    out->name = (char *)s(c->name);
    out->phone = (char *)s(c->phone);
    out->full_name = (char *)s(c->name);
    out->unread_messages = c->unread;
    out->latest_chat_created_at_ms = c->latest_chat_ms;
    out->profile_picture = (char *)s(c->picture);
    out->jid = (char *)s(c->jid);
}

static void group_snapshot(Blazz__V1__GroupSnapshot *out, const cs_group *g)
{
    out->id = g->id;
    out->uuid = (char *)g->uuid;
    out->name = (char *)s(g->name);
    out->group_jid = (char *)s(g->jid);
    out->participants_count = (int32_t)json_array_size(g->participants);
}

/* Put on ev the snapshots of the contact and of the group (either may be
 * NULL), written into the caller's cs and gs. */
static void set_party(Blazz__V1__ChatEvent *ev, Blazz__V1__ContactSnapshot *cs, const cs_contact *c,
                      Blazz__V1__GroupSnapshot *gs, const cs_group *g)
{
    if (c) {
        contact_snapshot(cs, c);
        ev->contact = cs;
    }
    if (g) {
        group_snapshot(gs, g);
        ev->group = gs;
    }
}

static bz_status emit_chat_event(cs_batch *b, const Blazz__V1__Envelope *in, const char *kind,
                                 int sub, int event_kind, const cs_chat *chat,
                                 Blazz__V1__StatusChange *change, Blazz__V1__MessageAction *action,
                                 const char *key, bz_error *err)
{
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_envelope(&env, in, kind, sub, event_id);
    Blazz__V1__ChatSnapshot cs = BLAZZ__V1__CHAT_SNAPSHOT__INIT;
    chat_snapshot(&cs, chat);
    Blazz__V1__ContactSnapshot contact = BLAZZ__V1__CONTACT_SNAPSHOT__INIT;
    Blazz__V1__GroupSnapshot group = BLAZZ__V1__GROUP_SNAPSHOT__INIT;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = event_kind;
    ev.chat = &cs;
    ev.status_change = change;
    ev.action = action;
    const cs_contact *c = chat->contact_id ? cs_find_contact_id(b, chat->contact_id) : NULL;
    const cs_group *g = chat->group_id ? cs_find_group_id(b, chat->group_id) : NULL;
    set_party(&ev, &contact, c, &group, g);
    char *k = key ? cs_arena_strdup(&b->arena, key) : NULL;
    if (!k)
        k = cs_arena_printf(&b->arena, "%" PRId64 ":%s", chat->workspace_id,
                            c ? c->phone : g ? g->jid : chat->wam_id);
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_CHAT_EVENTS),
                          event_id, k, &ev.base, in->trace_id, err);
}

bz_status cs_emit_chat_event(cs_batch *b, const Blazz__V1__Envelope *in, const char *kind, int sub,
                             int event_kind, const cs_chat *chat,
                             Blazz__V1__StatusChange *change, const char *key, bz_error *err)
{
    return emit_chat_event(b, in, kind, sub, event_kind, chat, change, NULL, key, err);
}

bz_status cs_emit_message_action(cs_batch *b, const cs_record *r, const cs_chat *chat,
                                 int event_kind, Blazz__V1__MessageAction *action, bz_error *err)
{
    return emit_chat_event(b, r->cmd->envelope, "message_action", 0, event_kind, chat, NULL,
                           action, record_key(b, r), err);
}

/* ev (its envelope derived from r's under tag), keyed like the record r
 * that caused it, else "<workspace_id>:<party>". */
static bz_status emit_party_event(cs_batch *b, const cs_record *r, Blazz__V1__ChatEvent *ev,
                                  const char *tag, int64_t workspace_id, const char *party,
                                  bz_error *err)
{
    const Blazz__V1__Envelope *in = r->cmd->envelope;
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_envelope(&env, in, tag, 0, event_id);
    ev->envelope = &env;
    char *key = record_key(b, r);
    if (!key)
        key = cs_arena_printf(&b->arena, "%" PRId64 ":%s", workspace_id, party);
    bz_status st = cs_emit_record(b, bz_topic_base(BZ_TOPIC_CHAT_EVENTS),
                                  event_id, key, &ev->base, in->trace_id, err);
    ev->envelope = NULL; /* env dies here */
    return st;
}

/* A change of a contact (c, with its change cc) or of a group (g, gc). */
static bz_status emit_party_change(cs_batch *b, const cs_record *r, const cs_contact *c,
                                   Blazz__V1__ContactChange *cc, const cs_group *g,
                                   Blazz__V1__GroupChange *gc, int64_t workspace_id,
                                   const char *party, bz_error *err)
{
    Blazz__V1__ContactSnapshot contact = BLAZZ__V1__CONTACT_SNAPSHOT__INIT;
    Blazz__V1__GroupSnapshot group = BLAZZ__V1__GROUP_SNAPSHOT__INIT;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    set_party(&ev, &contact, c, &group, g);
    ev.kind = g ? BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_GROUP_UPDATED
                : BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_UPDATED;
    ev.contact_change = cc;
    ev.group_change = gc;
    return emit_party_event(b, r, &ev, g ? "group_updated" : "contact_updated", workspace_id,
                            party, err);
}

bz_status cs_emit_contact_updated(cs_batch *b, const cs_record *r, const cs_contact *c,
                                  Blazz__V1__ContactChange *change, bz_error *err)
{
    return emit_party_change(b, r, c, change, NULL, NULL, c->workspace_id, c->phone, err);
}

bz_status cs_emit_opt_out(cs_batch *b, const cs_record *r, const cs_contact *c, int out,
                          Blazz__V1__OptOutChange *change, bz_error *err)
{
    Blazz__V1__ContactSnapshot contact = BLAZZ__V1__CONTACT_SNAPSHOT__INIT;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    set_party(&ev, &contact, c, NULL, NULL);
    ev.kind = out ? BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_OPTED_OUT
                  : BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_OPTED_IN;
    ev.opt_out = change;
    return emit_party_event(b, r, &ev, out ? "contact_opted_out" : "contact_opted_in",
                            c->workspace_id, c->phone, err);
}

bz_status cs_emit_contact_merged(cs_batch *b, const cs_record *r, const cs_contact *survivor,
                                 Blazz__V1__ContactMerge *merge, bz_error *err)
{
    Blazz__V1__ContactSnapshot contact = BLAZZ__V1__CONTACT_SNAPSHOT__INIT;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    Blazz__V1__ContactChange change = BLAZZ__V1__CONTACT_CHANGE__INIT;
    char *changed[] = {(char *)"merged"};
    change.changed = changed;
    change.n_changed = 1;
    change.changed_at_ms = merge->merged_at_ms;
    set_party(&ev, &contact, survivor, NULL, NULL);
    /* a CONTACT_UPDATED carrying the merge: proto/blazz/v1/chat_event.proto */
    ev.kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_UPDATED;
    ev.contact_change = &change;
    ev.merge = merge;
    return emit_party_event(b, r, &ev, "contact_merged", survivor->workspace_id, survivor->phone,
                            err);
}

bz_status cs_emit_group_updated(cs_batch *b, const cs_record *r, const cs_group *g,
                                Blazz__V1__GroupChange *change, bz_error *err)
{
    return emit_party_change(b, r, NULL, NULL, g, change, g->workspace_id, g->jid, err);
}

/* An agent's message is the row under the CRM's message id (its uuid is its
 * client reference), and the command that creates it has that id as its
 * event id (ingest's crm_messages.c). In a replay after a restore its echo
 * may store the row first (apply_message.c's echo_claim): its
 * message.created then derives from the row's uuid, as the command's did,
 * so the CRM's webhook carries the webhook-id it had (ARCHITECTURE.md
 * §6.5). */
static int is_agent_row(const cs_chat *chat)
{
    return chat->client_reference && strcmp(chat->uuid, chat->client_reference) == 0;
}

bz_status cs_emit_message_created(cs_batch *b, const cs_record *r, const char *kind, int sub,
                                  const cs_chat *chat, const char *key, bz_error *err)
{
    Blazz__V1__Envelope in = *r->cmd->envelope;
    if (is_agent_row(chat))
        in.event_id = (char *)chat->uuid;
    return cs_emit_chat_event(b, &in, kind, sub,
                              BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED, chat, NULL,
                              key, err);
}

/* A status change is one fact about one row: its event id follows from the
 * row's uuid and the status reached, whichever record brought it. The echo
 * and a provider's own "sent" race on different partitions, and after a
 * database restore they are read back in another order (ARCHITECTURE.md
 * §6.5): the CRM's webhook still carries the id it had. */
static bz_status emit_status(cs_batch *b, const cs_record *r, const cs_chat *chat,
                             Blazz__V1__StatusChange *change, bz_error *err)
{
    Blazz__V1__Envelope in = *r->cmd->envelope;
    if (*chat->uuid)
        in.event_id = (char *)chat->uuid;
    return cs_emit_chat_event(b, &in, "status_changed", (int)change->status,
                              BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_STATUS_CHANGED, chat,
                              change, record_key(b, r), err);
}

bz_status cs_emit_status_changed(cs_batch *b, const cs_record *r, const cs_chat *chat,
                                 int previous_status, bz_error *err)
{
    const Blazz__V1__MessageAck *ack = r->cmd->receipt;
    Blazz__V1__StatusChange change = BLAZZ__V1__STATUS_CHANGE__INIT;
    change.previous_status = previous_status;
    change.status = chat->outbound ? chat->status : (int)ack->status;
    change.error_code = (char *)s(ack->error_code);
    change.error_message = (char *)s(ack->error_message);
    change.changed_at_ms = ack->timestamp_ms > 0 ? ack->timestamp_ms : r->cmd->envelope->occurred_at_ms;
    return emit_status(b, r, chat, &change, err);
}

bz_status cs_emit_echo_status(cs_batch *b, const cs_record *r, const cs_chat *chat,
                              int previous_status, bz_error *err)
{
    Blazz__V1__StatusChange change = BLAZZ__V1__STATUS_CHANGE__INIT;
    change.previous_status = previous_status;
    change.status = chat->status;
    change.changed_at_ms = chat->sent_ms;
    return emit_status(b, r, chat, &change, err);
}

bz_status cs_emit_chat_read(cs_batch *b, const Blazz__V1__Envelope *in, const cs_contact *contact,
                            const cs_group *group, Blazz__V1__ChatRead *read, const char *key,
                            bz_error *err)
{
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_envelope(&env, in, "chat_read", 0, event_id);
    Blazz__V1__ContactSnapshot cs = BLAZZ__V1__CONTACT_SNAPSHOT__INIT;
    Blazz__V1__GroupSnapshot gs = BLAZZ__V1__GROUP_SNAPSHOT__INIT;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CHAT_READ;
    ev.chat_read = read;
    set_party(&ev, &cs, contact, &gs, group);
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_CHAT_EVENTS),
                          event_id, cs_arena_strdup(&b->arena, key), &ev.base,
                          in->trace_id, err);
}

static int sync_status_value(const char *text)
{
    if (!text)
        return BLAZZ__V1__SYNC_STATUS__SYNC_STATUS_UNSPECIFIED;
    if (strcmp(text, "pending") == 0)
        return BLAZZ__V1__SYNC_STATUS__SYNC_STATUS_PENDING;
    if (strcmp(text, "syncing") == 0)
        return BLAZZ__V1__SYNC_STATUS__SYNC_STATUS_SYNCING;
    if (strcmp(text, "completed") == 0)
        return BLAZZ__V1__SYNC_STATUS__SYNC_STATUS_COMPLETED;
    if (strcmp(text, "failed") == 0)
        return BLAZZ__V1__SYNC_STATUS__SYNC_STATUS_FAILED;
    return BLAZZ__V1__SYNC_STATUS__SYNC_STATUS_UNSPECIFIED;
}

bz_status cs_emit_sync_progress(cs_batch *b, const cs_record *r, const cs_account *a,
                                bz_error *err)
{
    const Blazz__V1__Envelope *in = r->cmd->envelope;
    const Blazz__V1__HistorySyncBatch *h = r->cmd->history_sync;
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_envelope(&env, in, "sync_progress", 0, event_id);
    Blazz__V1__SyncProgress p = BLAZZ__V1__SYNC_PROGRESS__INIT;
    p.sync_status = sync_status_value(json_string_value(json_object_get(a->metadata, "sync_status")));
    p.synced_count = (int32_t)json_integer_value(json_object_get(a->metadata, "synced_count"));
    p.total_count = (int32_t)json_integer_value(json_object_get(a->metadata, "total_count"));
    p.batch_index = h->batch_index;
    p.batch_total = h->batch_total;
    p.last_sync_at_ms = p.sync_status == BLAZZ__V1__SYNC_STATUS__SYNC_STATUS_COMPLETED
                            ? (in->occurred_at_ms > 0 ? in->occurred_at_ms : in->produced_at_ms)
                            : 0;
    p.sync_id = h->sync_id;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_SYNC_PROGRESS;
    ev.sync_progress = &p;
    char *key = record_key(b, r);
    if (!key)
        key = cs_arena_printf(&b->arena, "%" PRId64 ":session", in->workspace_id);
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_CHAT_EVENTS),
                          event_id, key, &ev.base, in->trace_id, err);
}

/* A WhatsApp Business Account's events share one key, "<workspace>:waba:
 * <waba_id>", so the CRM gets them in the order Meta's notices came. */
static bz_status emit_waba_event(cs_batch *b, const Blazz__V1__Envelope *in,
                                 Blazz__V1__ChatEvent *ev, const char *waba_id, bz_error *err)
{
    char *key = cs_arena_printf(&b->arena, "%" PRId64 ":waba:%s", in->workspace_id, waba_id);
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_CHAT_EVENTS),
                          ev->envelope->event_id, key, &ev->base, in->trace_id,
                          err);
}

bz_status cs_emit_template_updated(cs_batch *b, const Blazz__V1__Envelope *in,
                                   Blazz__V1__TemplateSnapshot *t, bz_error *err)
{
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_envelope(&env, in, "template_updated", 0, event_id);
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_TEMPLATE_UPDATED;
    ev.template_ = t;
    return emit_waba_event(b, in, &ev, t->waba_id, err);
}

bz_status cs_emit_call_updated(cs_batch *b, const Blazz__V1__SyncCommand *in,
                               Blazz__V1__CallSnapshot *call, const cs_contact *c, bz_error *err)
{
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_envelope(&env, in->envelope, "call_updated", 0, event_id);
    Blazz__V1__ContactSnapshot contact = BLAZZ__V1__CONTACT_SNAPSHOT__INIT;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CALL_UPDATED;
    ev.call = call;
    set_party(&ev, &contact, c, NULL, NULL);
    char *key = cs_arena_printf(&b->arena, "%" PRId64 ":%s", in->envelope->workspace_id,
                                in->conversation);
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_CHAT_EVENTS), event_id, key, &ev.base,
                          in->envelope->trace_id, err);
}

bz_status cs_emit_account_updated(cs_batch *b, const Blazz__V1__Envelope *in, int sub,
                                  Blazz__V1__AccountStanding *a, bz_error *err)
{
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_envelope(&env, in, "account_updated", sub, event_id);
    env.whatsapp_account_id = a->whatsapp_account_id;
    env.session_id = a->phone_number_id;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_ACCOUNT_UPDATED;
    ev.account = a;
    return emit_waba_event(b, in, &ev, a->waba_id, err);
}

/* The envelope of what a webjs account's change emits, derived from in. */
static void derive_account_envelope(Blazz__V1__Envelope *env, const Blazz__V1__Envelope *in,
                                    const char *tag, int sub, char event_id[CS_UUID_LEN],
                                    const cs_account *a)
{
    derive_envelope(env, in, tag, sub, event_id);
    env->session_id = (char *)s(a->session_id);
    env->workspace_id = a->workspace_id;
    env->whatsapp_account_id = a->id;
    env->provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
}

bz_status cs_emit_account_event(cs_batch *b, const Blazz__V1__Envelope *in, const char *tag,
                                int sub, int event_kind, const cs_account *a,
                                int previous_status, const char *details, bz_error *err)
{
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_account_envelope(&env, in, tag, sub, event_id, a);
    Blazz__V1__SessionEvent ev = BLAZZ__V1__SESSION_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = event_kind;
    ev.status = a->status;
    ev.previous_status = previous_status;
    ev.disconnect_reason = a->disconnect_reason ? cs_disconnect_from_text(a->disconnect_reason) : 0;
    ev.details = (char *)s(details);
    ev.phone_number = (char *)s(a->phone_number);
    ev.changed_at_ms = in->occurred_at_ms > 0 ? in->occurred_at_ms : bz_wall_ms();
    Blazz__V1__InstanceRef inst = BLAZZ__V1__INSTANCE_REF__INIT;
    Blazz__V1__InstanceRef prev = BLAZZ__V1__INSTANCE_REF__INIT;
    if (a->has_instance) {
        inst.index = a->instance_index;
        inst.url = (char *)s(a->instance_url);
        inst.epoch = a->epoch;
        ev.instance = &inst;
    }
    if (event_kind == BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_INSTANCE_MIGRATED &&
        a->has_previous_instance) {
        prev.index = a->previous_instance_index;
        ev.previous_instance = &prev;
    }
    if (event_kind == BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_QR) {
        ev.qr_code = (char *)s(a->qr_code);
        ev.qr_expires_at_ms = a->qr_expires_ms;
    }
    ev.is_primary = a->is_primary;
    ev.account_uuid = (char *)a->uuid;
    ev.health_score = a->health_score;
    char *key = cs_arena_printf(&b->arena, "%" PRId64, a->id);
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_SESSION_EVENTS),
                          event_id, key, &ev.base, in->trace_id, err);
}

bz_status cs_emit_session_event(cs_batch *b, const cs_record *r, const char *kind,
                                int event_kind, const cs_account *a, int previous_status,
                                bz_error *err)
{
    return cs_emit_account_event(b, r->cmd->envelope, kind, 0, event_kind, a, previous_status,
                                 r->cmd->session_status ? r->cmd->session_status->details : NULL,
                                 err);
}

bz_status cs_emit_session_command(cs_batch *b, const Blazz__V1__Envelope *in, const char *tag,
                                  int sub, const cs_account *a, const cs_session_order *order,
                                  bz_error *err)
{
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_account_envelope(&env, in, tag, sub, event_id, a);
    Blazz__V1__InstanceRef inst = BLAZZ__V1__INSTANCE_REF__INIT;
    inst.index = order->instance_index;
    inst.url = (char *)s(order->instance_url);
    inst.epoch = order->epoch;
    Blazz__V1__SessionCommand cmd = BLAZZ__V1__SESSION_COMMAND__INIT;
    cmd.envelope = &env;
    cmd.action = order->action;
    cmd.assigned_instance = &inst;
    cmd.reason = (char *)s(order->reason);
    cmd.requested_by = (char *)s(order->requested_by);
    /* the settings' limits, on when the account's switch is on too */
    Blazz__V1__HistorySyncLimits sync = b->ctx->history;
    sync.enabled = sync.enabled && a->sync_enabled;
    if (order->action == BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_CREATE ||
        order->action == BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_RESTART)
        cmd.history_sync = &sync;
    char *key = cs_arena_strdup(&b->arena, s(a->session_id));
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_WA_SESSION_COMMANDS),
                          event_id, key, &cmd.base, in->trace_id, err);
}

bz_status cs_emit_instance_lease(cs_batch *b, const Blazz__V1__Envelope *in,
                                 const char *gateway_id, const Blazz__V1__InstanceRef *instance,
                                 const char *boot_id, int64_t beat_sent_at_ms, bz_error *err)
{
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_envelope(&env, in, "lease", 0, event_id);
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    Blazz__V1__InstanceRef inst = BLAZZ__V1__INSTANCE_REF__INIT;
    inst.index = instance->index;
    inst.url = (char *)s(instance->url);
    Blazz__V1__SessionCommand cmd = BLAZZ__V1__SESSION_COMMAND__INIT;
    cmd.envelope = &env;
    cmd.action = BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_LEASE;
    cmd.assigned_instance = &inst;
    cmd.boot_id = (char *)s(boot_id);
    cmd.beat_sent_at_ms = beat_sent_at_ms;
    /* no session to route it by (0029_outbound_per_gateway.sql): the
     * gateway's own topic, by its base name (the relay adds the prefix) */
    char topic[BZ_TOPIC_NAME_MAX];
    bz_status st = bz_topic_gateway_name("", BZ_GATEWAY_TOPIC_COMMANDS, gateway_id, topic,
                                         sizeof topic, err);
    if (st != BZ_OK)
        return st;
    return cs_emit_record(b, cs_arena_strdup(&b->arena, topic), event_id,
                          cs_arena_printf(&b->arena, "instance:%d", instance->index), &cmd.base,
                          in->trace_id, err);
}

bz_status cs_emit_campaign_receipt(cs_batch *b, const cs_record *r,
                                   const cs_campaign_log *log, const cs_chat *chat,
                                   const Blazz__V1__MessageAck *ack, bz_error *err)
{
    const Blazz__V1__Envelope *in = r->cmd->envelope;
    char event_id[CS_UUID_LEN];
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    derive_envelope(&env, in, "campaign_receipt", 0, event_id);
    Blazz__V1__CampaignReceipt rc = BLAZZ__V1__CAMPAIGN_RECEIPT__INIT;
    rc.envelope = &env;
    rc.campaign_id = log->campaign_id;
    rc.campaign_log_id = log->id;
    rc.campaign_log_uuid = (char *)log->uuid;
    rc.ack = (Blazz__V1__MessageAck *)ack;
    rc.chat_id = chat ? chat->id : 0;
    rc.contact_id = log->contact_id;
    char *key = cs_arena_printf(&b->arena, "%" PRId64, log->campaign_id);
    return cs_emit_record(b, bz_topic_base(BZ_TOPIC_CAMPAIGN_RECEIPTS),
                          event_id, key, &rc.base, in->trace_id, err);
}

/* ---- the outbox ---------------------------------------------------------------- */

bz_status cs_write_outbox(cs_batch *b, PGconn *conn, bz_error *err)
{
    if (b->nevents == 0)
        return BZ_OK;
    bz_outbox_batch *rows;
    bz_status st = bz_outbox_batch_new(&rows, err);
    for (size_t i = 0; st == BZ_OK && i < b->nevents; i++) {
        const cs_event *e = &b->events[i];
        st = bz_outbox_batch_add(rows, e->topic, e->event_id, e->key, e->key ? strlen(e->key) : 0,
                                 e->payload, e->len, e->trace_id, err);
    }
    if (st == BZ_OK)
        st = bz_outbox_batch_write(conn, rows, err);
    bz_outbox_batch_free(rows);
    return st;
}
