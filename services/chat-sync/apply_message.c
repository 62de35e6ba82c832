/*
 * apply_message.c - storing messages (live, echoes, history) and their
 * effects on contacts and groups.
 *
 * All messages of a batch go into chats with one INSERT ... SELECT FROM
 * unnest(...) ON CONFLICT (whatsapp_account_id, wam_id) DO NOTHING RETURNING:
 * only the first occurrence of each key is offered, and what comes back is
 * exactly what was new. The simulation then gives each new message its
 * effects, in order:
 *  - private chats: latest_chat_created_at and last_message_at move
 *    forward with every new message, inbound or our own (seed 000
 *    Chat::created sets both from each created chat), and with them the
 *    contact's whatsapp_account_id, the inbox's session; unread_messages +1
 *    for an inbound message not already read; a group's
 *    latest_chat_created_at and account move the same way;
 *  - the contact's name follows the push name of its inbound messages, a
 *    group's name follows its messages' group_name (also for duplicates,
 *    which carry the same facts and so change nothing);
 *  - a live message emits one MESSAGE_CREATED ChatEvent;
 *  - a live inbound message may opt its contact out of campaigns or back
 *    in (optout.c), after its MESSAGE_CREATED;
 *  - receipts that came before the message are applied right after it.
 * Inbound rows get message_status "delivered" (the seeds' synced status) and
 * echoes of our own sends "sent" with sent_at, is_read true.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "chats_insert.h"
#include "core/uuid.h"
#include "pg/columns.h"

#define SQL_CHATS_INSERT                                                                          \
    CS_CHATS_INSERT_FROM_UNNEST(" WITH ORDINALITY", ", ord")                                      \
    " ORDER BY ord ON CONFLICT ON CONSTRAINT chats_account_wam_id_key DO NOTHING "                \
    "RETURNING id, uuid::text, whatsapp_account_id, wam_id, media_id IS NOT NULL"

#define NCOLS CS_CHATS_INSERT_NCOLS

static void set_text(json_t *obj, const char *name, const char *value)
{
    if (value && *value)
        json_object_set_new(obj, name, json_string(value));
}

typedef struct text_field {
    const char *name, *value;
} text_field;

/* A new object with the non-empty fields[0..n); the caller owns it. */
static json_t *texts_json(const text_field *fields, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        set_text(o, fields[i].name, fields[i].value);
    return o;
}

json_t *cs_media_json(const Blazz__V1__MediaInfo *media)
{
    const text_field fields[] = {{"mime_type", media->mime_type}, {"url", media->url},
                                 {"sha256", media->sha256},       {"caption", media->caption},
                                 {"filename", media->filename},   {"media_id", media->media_id},
                                 {"stored_media_uuid", media->stored_media_uuid}};
    json_t *o = texts_json(fields, sizeof fields / sizeof fields[0]);
    if (media->size_bytes)
        json_object_set_new(o, "size_bytes", json_integer(media->size_bytes));
    if (media->duration_seconds)
        json_object_set_new(o, "duration_seconds", json_integer(media->duration_seconds));
    return o;
}

/* A text member of a stored media object, in b's arena ("" when absent);
 * *oom set when memory ran out. */
static char *media_text(cs_batch *b, json_t *media, const char *name, int *oom)
{
    const char *v = json_string_value(json_object_get(media, name));
    char *copy = cs_arena_strdup(&b->arena, v ? v : "");
    *oom |= !copy;
    return copy;
}

Blazz__V1__MediaInfo *cs_media_from_json(cs_batch *b, json_t *media, int linked, int *oom)
{
    if (!json_is_object(media))
        return NULL;
    Blazz__V1__MediaInfo *m = cs_arena_alloc(&b->arena, sizeof *m);
    if (!m) {
        *oom = 1;
        return NULL;
    }
    blazz__v1__media_info__init(m);
    m->mime_type = media_text(b, media, "mime_type", oom);
    m->url = media_text(b, media, "url", oom);
    m->sha256 = media_text(b, media, "sha256", oom);
    m->caption = media_text(b, media, "caption", oom);
    m->filename = media_text(b, media, "filename", oom);
    m->media_id = media_text(b, media, "media_id", oom);
    m->stored_media_uuid = linked ? media_text(b, media, "stored_media_uuid", oom) : (char *)"";
    m->size_bytes = json_integer_value(json_object_get(media, "size_bytes"));
    m->duration_seconds = (int32_t)json_integer_value(json_object_get(media, "duration_seconds"));
    return *oom ? NULL : m;
}

static json_t *location_json(const Blazz__V1__Location *l)
{
    json_t *o = json_pack("{s:f,s:f,s:s,s:s}", "latitude", l->latitude, "longitude", l->longitude,
                          "name", l->name ? l->name : "", "address", l->address ? l->address : "");
    set_text(o, "url", l->url);
    return o;
}

/* Text a producer says is JSON, set in obj under name: as JSON when it
 * is JSON (ingest writes it so), else as the text it is; 0 in that case
 * (and when there is none). */
static int set_json_text(json_t *obj, const char *name, const char *text)
{
    if (!text || !*text)
        return 0;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    json_object_set_new(obj, name, v ? v : json_string(text));
    return v != NULL;
}

/* What was tapped; a flow's answers (Meta's nfm_reply.response_json)
 * whole: parsed when they are JSON, else kept as their text and marked
 * response_json_unparsed, so the form is never lost for its shape. */
static json_t *interactive_reply_json(const Blazz__V1__InteractiveReply *r)
{
    const text_field fields[] = {
        {"type", r->type}, {"id", r->id}, {"title", r->title}, {"description", r->description}};
    json_t *o = texts_json(fields, sizeof fields / sizeof fields[0]);
    if (!set_json_text(o, "response_json", r->response_json) && r->response_json &&
        *r->response_json)
        json_object_set_new(o, "response_json_unparsed", json_true());
    return o;
}

static json_t *provider_error_json(const Blazz__V1__ProviderError *e)
{
    const text_field fields[] = {{"code", e->code}, {"title", e->title}, {"details", e->details}};
    return texts_json(fields, sizeof fields / sizeof fields[0]);
}

/* chats.metadata of a new message: everything the columns do not hold. */
static char *message_metadata(const cs_occurrence *o, const cs_campaign_log *log)
{
    const Blazz__V1__InboundMessage *m = o->m;
    json_t *meta = json_object();
    if (!meta)
        return NULL;
    json_object_set_new(meta, "body", json_string(m->body ? m->body : ""));
    json_object_set_new(meta, "message_type", json_string(cs_message_type_text(m->message_type)));
    set_text(meta, "raw_type", m->raw_type);
    if (m->has_media)
        json_object_set_new(meta, "has_media", json_true());
    if (m->media)
        json_object_set_new(meta, "media", cs_media_json(m->media));
    set_text(meta, "sender_phone", m->sender_phone);
    set_text(meta, "sender_name", m->sender_name);
    set_text(meta, "sender_jid", m->sender_jid);
    /* a Meta group participant: its BSUID, the only id of a username user */
    set_text(meta, "sender_bsuid", m->sender_bsuid);
    set_text(meta, "contact_jid", o->contact_jid);
    set_text(meta, "quoted_wam_id", m->quoted_wam_id);
    set_text(meta, "client_reference", m->client_reference);
    set_text(meta, "reaction_emoji", m->reaction_emoji);
    if (m->is_forwarded)
        json_object_set_new(meta, "is_forwarded", json_true());
    /* The CRM must know the id is ingest's, not WhatsApp's: it cannot be
     * quoted or reacted to at WhatsApp. */
    if (m->wam_id_derived)
        json_object_set_new(meta, "wam_id_derived", json_true());
    if (m->location)
        json_object_set_new(meta, "location", location_json(m->location));
    if (m->interactive_reply)
        json_object_set_new(meta, "interactive_reply", interactive_reply_json(m->interactive_reply));
    if (m->error)
        json_object_set_new(meta, "provider_error", provider_error_json(m->error));
    /* the provider's object for kinds without fields of their own */
    set_json_text(meta, "raw_content", m->raw_content);
    /* the click-to-WhatsApp ad the customer came from: the CRM's attribution */
    set_json_text(meta, "referral", m->referral_json);
    if (m->n_vcards) {
        json_t *v = json_array();
        for (size_t i = 0; i < m->n_vcards; i++)
            json_array_append_new(v, json_string(m->vcards[i]));
        json_object_set_new(meta, "vcards", v);
    }
    if (log) {
        json_object_set_new(meta, "campaign_id", json_integer(log->campaign_id));
        json_object_set_new(meta, "campaign_log_id", json_integer(log->id));
    }
    if (o->chat_index >= 0)
        json_object_set_new(meta, "source", json_string("history_sync"));
    char *text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    return text;
}

static int64_t party_id_contact(cs_batch *b, const cs_occurrence *o)
{
    if (o->group)
        return 0;
    cs_contact *c = cs_find_contact(b, o->workspace_id, o->contact_key);
    return c ? c->id : -1;
}

static int64_t party_id_group(cs_batch *b, const cs_occurrence *o)
{
    if (!o->group)
        return 0;
    cs_group *g = cs_find_group(b, o->workspace_id, o->group_jid);
    return g ? g->id : -1;
}

static const cs_campaign_log *echo_campaign_log(cs_batch *b, const cs_occurrence *o)
{
    if (!o->m->from_me)
        return NULL;
    return cs_find_campaign_log(b, o->workspace_id, o->m->client_reference, NULL);
}

static bz_status add_row(cs_batch *b, bz_pg_array *a, const cs_occurrence *o, const char *claim,
                         bz_error *err)
{
    const Blazz__V1__InboundMessage *m = o->m;
    int64_t contact = party_id_contact(b, o), group = party_id_group(b, o);
    if (contact < 0 || group < 0)
        return bz_fail(err, BZ_ERR_TRANSIENT,
                       "store message %s: its %s vanished after get-or-create (deleted "
                       "concurrently?)",
                       m->wam_id, o->group ? "group" : "contact");
    char *meta = message_metadata(o, echo_campaign_log(b, o));
    if (!meta)
        return bz_fail(err, BZ_ERR_TRANSIENT, "store message %s: out of memory", m->wam_id);
    bz_pg_array_int64(&a[0], o->workspace_id);
    bz_pg_array_int64(&a[1], o->account_id);
    bz_pg_array_int64_or_null(&a[2], contact);
    bz_pg_array_int64_or_null(&a[3], group);
    bz_pg_array_text(&a[4], m->wam_id);
    bz_pg_array_text(&a[5], m->from_me ? "outbound" : "inbound");
    bz_pg_array_text(&a[6], cs_provider_text(o->provider));
    bz_pg_array_text(&a[7], o->group ? "group" : "private");
    bz_pg_array_text(&a[8], m->from_me ? "sent" : "delivered");
    bz_pg_array_text(&a[9], meta);
    bz_pg_array_bool(&a[10], m->from_me || m->is_read);
    bz_pg_array_int64_or_null(&a[11], m->from_me ? o->created_ms : 0);
    bz_pg_array_int64(&a[12], o->created_ms);
    bz_pg_array_text(&a[13], claim);
    free(meta);
    return BZ_OK;
}

Blazz__V1__MediaInfo *cs_event_media(cs_batch *b, const Blazz__V1__MediaInfo *media, int linked)
{
    if (!media)
        return NULL;
    Blazz__V1__MediaInfo *copy = cs_arena_alloc(&b->arena, sizeof *copy);
    if (!copy)
        return NULL;
    *copy = *media;
    if (!linked)
        copy->stored_media_uuid = (char *)"";
    return copy;
}

char *cs_object_text(cs_batch *b, const json_t *doc, int *oom)
{
    char *text = json_is_object(doc) ? json_dumps(doc, JSON_COMPACT) : NULL;
    char *copy = text ? cs_arena_strdup(&b->arena, text) : NULL;
    *oom |= json_is_object(doc) && !copy;
    free(text);
    return copy;
}

/* The event's text of a message's JSON (doc, taken), as cs_object_text. */
static char *event_text(cs_batch *b, json_t *doc, int *oom)
{
    char *text = cs_object_text(b, doc, oom);
    json_decref(doc);
    return text;
}

/* The in-memory row of a message this batch stored. */
static cs_chat *new_chat(cs_batch *b, cs_occurrence *o, const PGresult *res, int row)
{
    const Blazz__V1__InboundMessage *m = o->m;
    cs_chat *c = cs_arena_alloc(&b->arena, sizeof *c);
    if (!c)
        return NULL;
    c->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    snprintf(c->uuid, sizeof c->uuid, "%s", PQgetvalue(res, row, 1));
    c->workspace_id = o->workspace_id;
    c->account_id = o->account_id;
    c->contact_id = party_id_contact(b, o);
    c->group_id = party_id_group(b, o);
    c->wam_id = m->wam_id;
    c->outbound = m->from_me;
    c->group = o->group;
    c->provider = o->provider;
    c->status = m->from_me ? BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT
                           : BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED;
    c->is_read = m->from_me || m->is_read;
    c->created_ms = o->created_ms;
    c->sent_ms = m->from_me ? o->created_ms : 0;
    c->body = m->body;
    c->client_reference = m->client_reference;
    c->sender_phone = m->sender_phone;
    c->sender_name = m->sender_name;
    c->quoted_wam_id = m->quoted_wam_id;
    c->message_type = m->message_type;
    c->has_media = m->has_media;
    /* as message_metadata stored them: the ad whole, the answer shaped */
    int oom = 0;
    c->referral_json = m->referral_json && *m->referral_json
                           ? event_text(b, json_loads(m->referral_json, 0, NULL), &oom)
                           : NULL;
    c->interactive_reply_json =
        m->interactive_reply ? event_text(b, interactive_reply_json(m->interactive_reply), &oom)
                             : NULL;
    if (oom)
        return NULL;
    c->media = cs_event_media(b, m->media, *PQgetvalue(res, row, 4) == 't');
    if (m->media && !c->media)
        return NULL;
    c->error_code = c->error_message = "";
    const cs_campaign_log *log = echo_campaign_log(b, o);
    c->campaign_id = log ? log->campaign_id : 0;
    c->inserted_ord = o->ord;
    return c;
}

/* Match the RETURNING rows to the occurrences that offered them. */
static bz_status adopt_inserted(cs_batch *b, const PGresult *res, cs_map *offered, bz_error *err)
{
    for (int i = 0; i < PQntuples(res); i++) {
        char key[512];
        snprintf(key, sizeof key, "m%s:%s", PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
        cs_occurrence *o = cs_map_get(offered, key);
        if (!o)
            return bz_fail(err, BZ_ERR_INTERNAL, "store messages: RETURNING gave unknown key %s", key);
        if (!(o->chat = new_chat(b, o, res, i)) || cs_add_chat(b, o->chat) != 0)
            return bz_fail(err, BZ_ERR_TRANSIENT, "store messages: out of memory");
    }
    return BZ_OK;
}

/* An echo of a CRM send updates that send's row instead of storing one: the
 * first echo gives the row its message id and account (the account may
 * differ from the one chat-sync chose if the sender failed over), from
 * then on receipts find it by (account, wam_id), and receipts that came
 * earlier in the batch wait for it as for a stored message. Returns 1 when
 * o is such an echo. */
static int adopt_agent_echo(cs_batch *b, cs_occurrence *o, int *oom)
{
    const Blazz__V1__InboundMessage *m = o->m;
    cs_chat *c = m->from_me ? cs_find_agent_row(b, o->workspace_id, m->client_reference) : NULL;
    if (!c)
        return 0;
    o->agent = c;
    if (*c->wam_id)
        return 1;
    c->wam_id = m->wam_id;
    c->account_id = o->account_id;
    c->inserted_ord = o->ord;
    c->dirty = 1;
    if (cs_index_agent_row(b, c) != 0)
        *oom = 1;
    return 1;
}

#define SQL_REPLAYING "SELECT EXISTS (SELECT 1 FROM restore_fences WHERE lifted_at IS NULL)"
/* Is $1 the uuid of the log of some campaign ($1's first 48 bits) for
 * the contact $2 (blazz_campaign_log_uuid, 0045)? */
#define SQL_CAMPAIGN_REF                                                                         \
    "SELECT blazz_campaign_log_uuid(('x' || left(replace($1, '-', ''), 12))::bit(48)::bigint, "  \
    "$2::bigint) = $1::uuid"

/* A campaign's send echoed before the replay re-read the campaign's start
 * (campaign.commands and chat.sync come back in no order between them):
 * its log is not made again yet, and its row is stored as it was the
 * first time, under the message's own uuid. */
static bz_status names_campaign_log(PGconn *conn, const char *ref, int64_t contact_id, int *yes,
                                    bz_error *err)
{
    char contact[24];
    snprintf(contact, sizeof contact, "%lld", (long long)contact_id);
    const char *params[2] = {ref, contact};
    PGresult *res = NULL;
    bz_status st = bz_pg_exec_params(conn, "recognise a campaign's client reference",
                                     SQL_CAMPAIGN_REF, 2, params, &res, err);
    *yes = st == BZ_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return st;
}

/* An echo naming a send by client reference when neither an agent's row
 * nor a campaign log has it. In a replay after a database restore
 * (ARCHITECTURE.md §6.5) that is an agent's message whose command
 * (crm.commands) is re-read after its echo (chat.sync): the two topics are
 * replayed in no order between them. The echo's row then claims the
 * message id as its uuid, so the command finds its row stored (ON CONFLICT
 * (uuid) DO NOTHING: nothing queued, nothing sent again) and the CRM sees
 * the row it knew. Outside a replay such an echo (a deleted campaign's) is
 * stored as any message: a gateway cannot take a uuid a send will need.
 * *replaying: -1 until asked, once per batch and only when needed. */
static bz_status echo_claim(cs_batch *b, PGconn *conn, const cs_occurrence *o, int *replaying,
                            const char **claim, bz_error *err)
{
    *claim = NULL;
    const char *ref = o->m->client_reference;
    if (!o->m->from_me || !bz_uuid_is_valid(ref) || echo_campaign_log(b, o))
        return BZ_OK;
    if (*replaying < 0) {
        PGresult *res = NULL;
        bz_status st = bz_pg_exec_params(conn, "look for a restore fence", SQL_REPLAYING, 0,
                                         NULL, &res, err);
        *replaying = st == BZ_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (st != BZ_OK)
            return st;
    }
    if (!*replaying)
        return BZ_OK;
    int campaign = 0;
    bz_status st = names_campaign_log(conn, ref, party_id_contact(b, o), &campaign, err);
    if (st == BZ_OK && !campaign)
        *claim = ref;
    return st;
}

bz_status cs_insert_messages(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[NCOLS];
    bz_pg_array_init_all(a, NCOLS);
    cs_map offered;
    cs_map_init(&offered, &b->arena);
    bz_status st = BZ_OK;
    int oom = 0, replaying = -1;
    for (size_t i = 0; i < b->nocc && st == BZ_OK; i++) {
        cs_occurrence *o = &b->occ[i];
        if (!o->first || adopt_agent_echo(b, o, &oom))
            continue;
        const char *claim = NULL;
        char *key = cs_chat_key(b, o->account_id, o->m->wam_id);
        if (!key || cs_map_put(&offered, key, o) != 0)
            st = bz_fail(err, BZ_ERR_TRANSIENT, "store messages: out of memory");
        else if ((st = echo_claim(b, conn, o, &replaying, &claim, err)) == BZ_OK)
            st = add_row(b, a, o, claim, err);
    }
    if (st == BZ_OK && oom)
        st = bz_fail(err, BZ_ERR_TRANSIENT, "store messages: out of memory");
    if (st == BZ_OK && a[0].n > 0) {
        PGresult *res = NULL;
        st = bz_pg_arrays_exec(conn, "store messages", SQL_CHATS_INSERT, a, NCOLS, &res, err);
        if (st == BZ_OK)
            st = adopt_inserted(b, res, &offered, err);
        PQclear(res);
    }
    cs_map_free(&offered);
    bz_pg_array_free_all(a, NCOLS);
    return st;
}

void cs_contact_refresh_name(cs_contact *c, cs_batch *b, const char *name)
{
    /* after a profile change the gateway reported, contact updates own the
     * name; after the CRM named the contact, nothing else does
     * (apply_contact.c) */
    if (!c || !name || !*name || strcmp(c->name, name) == 0 ||
        json_object_get(c->profile, "profile_clock") || cs_contact_named_by_crm(c))
        return;
    char *copy = cs_arena_strdup(&b->arena, name);
    if (!copy)
        return; /* a stale name is harmless; the next message refreshes it */
    c->name = copy;
    c->dirty = 1;
}

/* Only a value that moved makes the row dirty: an older synced echo
 * changes nothing, and writing the row anyway would cost an UPDATE. */
static void advance_contact(cs_contact *c, int64_t created_ms, int64_t account_id)
{
    if (created_ms > c->latest_chat_ms) {
        c->latest_chat_ms = created_ms;
        if (account_id)
            c->account_id = account_id;
        c->dirty = 1;
    }
    if (created_ms > c->last_message_ms) {
        c->last_message_ms = created_ms;
        c->dirty = 1;
    }
}

static void advance_group(cs_group *g, int64_t created_ms, int64_t account_id)
{
    if (created_ms <= g->latest_chat_ms)
        return;
    g->latest_chat_ms = created_ms;
    if (account_id)
        g->account_id = account_id;
    g->latest_dirty = 1;
}

void cs_conversation_advance(cs_party to, int64_t created_ms, int64_t account_id)
{
    if (to.contact)
        advance_contact(to.contact, created_ms, account_id);
    if (to.group)
        advance_group(to.group, created_ms, account_id);
}

static void count_unread(cs_contact *c, const Blazz__V1__InboundMessage *m)
{
    if (!m->from_me && !m->is_read) {
        c->unread++;
        c->dirty = 1;
    }
}

static void count_metric(cs_batch *b, bz_counter *c)
{
    if (b->ctx->have_metrics)
        bz_counter_inc(c);
}

/* The echo of a CRM send: pending -> sent (never backwards, never out of
 * failed), sent_at from the echo, one STATUS_CHANGED. The row's counters
 * moved when the send was accepted. A second echo with another message id
 * (a gateway that sent twice) changes nothing: the row keeps the first. */
static bz_status apply_agent_echo(cs_batch *b, cs_occurrence *o, bz_error *err)
{
    cs_chat *c = o->agent;
    if (strcmp(c->wam_id, o->m->wam_id) != 0 ||
        (c->status != BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PENDING &&
         c->status != BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_UNSPECIFIED))
        return cs_apply_parked_receipts(b, c, err);
    int previous = c->status;
    c->status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT;
    if (!c->sent_ms)
        c->sent_ms = o->created_ms;
    c->dirty = 1;
    bz_status st = cs_emit_echo_status(b, &b->recs[o->rec], c, previous, err);
    return st == BZ_OK ? cs_apply_parked_receipts(b, c, err) : st;
}

/* The echo that stored a campaign message's row is the first report that
 * the message left: it stands for the SENT receipt of the message's log,
 * routed to campaign-sender now. A gateway's own `sent` receipt after it
 * finds the row already sent, changes nothing and is not routed again; a
 * provider that reports nothing else (Meta with its status webhooks slow,
 * off, or only up to `sent`; a gateway that only echoes) still counts the
 * message as sent (ARCHITECTURE.md §5.2, §12.1). */
static bz_status route_echo_receipt(cs_batch *b, const cs_occurrence *o, bz_error *err)
{
    const cs_campaign_log *log = echo_campaign_log(b, o);
    if (!log)
        return BZ_OK;
    const Blazz__V1__InboundMessage *m = o->m;
    Blazz__V1__MessageAck sent = BLAZZ__V1__MESSAGE_ACK__INIT;
    sent.wam_id = m->wam_id;
    sent.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT;
    sent.timestamp_ms = o->created_ms;
    sent.client_reference = m->client_reference;
    sent.recipient_phone = m->contact_phone;
    sent.recipient_jid = m->contact_jid;
    bz_status st = cs_emit_campaign_receipt(b, &b->recs[o->rec], log, o->chat, &sent, err);
    if (st == BZ_OK && b->ctx->have_metrics)
        bz_counter_inc(b->ctx->m.campaign_receipts);
    return st;
}

bz_status cs_simulate_message(cs_batch *b, cs_occurrence *o, int emit, bz_error *err)
{
    const Blazz__V1__InboundMessage *m = o->m;
    if (o->agent)
        return apply_agent_echo(b, o, err);
    cs_party to = {0};
    if (!o->group) {
        to.contact = cs_find_contact(b, o->workspace_id, o->contact_key);
        if (o->chat_index < 0 && !m->from_me)
            cs_contact_refresh_name(to.contact, b, m->contact_name);
    } else {
        to.group = cs_find_group(b, o->workspace_id, o->group_jid);
        if (o->chat_index < 0 && *m->group_name)
            cs_group_name_from_message(to.group, m->group_name);
    }
    if (!o->chat) {
        count_metric(b, b->ctx->m.messages_duplicate);
        return BZ_OK;
    }
    count_metric(b, b->ctx->m.messages_stored);
    cs_conversation_advance(to, o->created_ms, o->account_id);
    if (to.contact)
        count_unread(to.contact, m);
    if (emit) {
        const cs_record *r = &b->recs[o->rec];
        char conversation[512];
        snprintf(conversation, sizeof conversation, "%.*s", (int)r->msg->key_len,
                 (const char *)r->msg->key);
        bz_status st = cs_emit_message_created(b, r, "message_created", 0, o->chat,
                                               r->msg->key_len ? conversation : NULL, err);
        if (st == BZ_OK)
            st = route_echo_receipt(b, o, err);
        if (st == BZ_OK)
            st = cs_apply_opt_out(b, o, to.contact, err);
        if (st != BZ_OK)
            return st;
    }
    return cs_apply_parked_receipts(b, o->chat, err);
}
