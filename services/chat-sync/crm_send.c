/*
 * crm_send.c - an agent's message becomes its chats row and its queued send,
 * in one transaction (ARCHITECTURE.md §11).
 *
 * For a SendChatMessage, in the consumer's transaction (consecutive sends
 * of a batch together, one statement per step for all of them, so the cost
 * per message is not a round trip per step):
 *  1. lock the recipient (contact or group of the command's workspace;
 *     unknown -> dead letter unknown_contact / unknown_group);
 *  2. a template is checked against the workspace's templates and rendered
 *     (libs/wa/crm_template.h; unknown -> unknown_template, wrong parameter
 *     count -> missing_field / invalid_field); a template of named
 *     variables sends their names with the parameters;
 *  3. choose the sending account like the seeds' ProviderSelector
 *     (libs/wa/account_select.h): the one the command names if connected,
 *     else the one the contact or group last talked to, else the primary,
 *     else the best health_score;
 *  4. insert the row: type outbound, message_status pending, uuid = the
 *     command's message_id, user_id, the content in metadata
 *     (client_reference = message_id, idempotency_key, the request's
 *     fingerprint ingest compares a reused key's with), created_at = when
 *     ingest accepted it; ON CONFLICT (uuid) DO NOTHING, so a repeated
 *     idempotency key (a retried request, a replay, the same key twice in
 *     one batch) stores nothing and queues nothing: one row, one send,
 *     whatever was repeated;
 *  5. move the conversation's latest message (seed 000 Chat::created: any
 *     new chat moves latest_chat_created_at and last_message_at) and the
 *     account the inbox files it under;
 *  6. queue the SendMessage in outbound_queue (campaign-sender releases it
 *     under the account's send budget and reports a failure back on
 *     chat.sync);
 *  7. emit MESSAGE_CREATED for the pending row, with its media.
 * With no connected account at all the row is stored failed
 * (no_connected_account) and a STATUS_CHANGED follows the MESSAGE_CREATED;
 * nothing is queued. So is a send chosen for a Meta account that breaks
 * Meta's limits (provider_limit, the field named; wa/meta_limits.h), and
 * one other than a template to a contact who has not written to that Meta
 * account within 24 hours (outside_service_window, wa/service_window.h:
 * one statement for the batch's sends it concerns). An interactive message
 * (a list, a URL button, a location request, a flow) goes through a Meta account
 * only: chosen for a whatsapp-web.js one, it fails the same way.
 * A reaction (message_type reaction) names a message of the conversation
 * (unknown -> unknown_message) and is stored and queued like a message, so
 * the CRM follows its status (pending, sent, failed): its row holds the
 * emoji as body and the target's wam_id; the provider's echo of it is a
 * reaction that sets the account's ("me") entry on the target
 * (apply_action.c), and its receipts reach the row by client reference.
 * It moves no counter.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "core/clock.h"
#include "media_link.h"
#include "pg/columns.h"
#include "wa/account_select.h"
#include "wa/chat_lookup.h"
#include "wa/crm_command.h"
#include "wa/crm_template.h"
#include "wa/meta_limits.h"
#include "wa/service_window.h"

#define SQL_INSERT_SENDS                                                                          \
    "INSERT INTO chats (uuid, workspace_id, whatsapp_account_id, contact_id, group_id, type, "    \
    "provider_type, chat_type, message_status, status, metadata, is_read, user_id, created_at, " \
    "media_id) "                                                                                  \
    "SELECT r.uuid, r.ws, r.acct, r.contact, r.grp, 'outbound', r.provider, r.chat_type, "       \
    "r.status, r.status, r.meta, true, u.user_id, to_timestamp(r.created / 1000.0), "            \
    "(" CS_STORED_MEDIA_ROW("r.ws", "r.meta") ") "                                               \
    "FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], " \
    "$7::text[], $8::text[], $9::jsonb[], $10::bigint[], $11::bigint[]) WITH ORDINALITY "         \
    "AS r(uuid, ws, acct, contact, grp, provider, chat_type, status, meta, usr, created, ord) "   \
    "LEFT JOIN workspace_users u ON u.user_id = r.usr AND u.workspace_id = r.ws "                \
    "ORDER BY r.ord "                                                                             \
    "ON CONFLICT (uuid) DO NOTHING RETURNING uuid::text, id, media_id IS NOT NULL"

#define SQL_QUEUE_SENDS                                                                           \
    "INSERT INTO outbound_queue (workspace_id, chat_id, message_id, whatsapp_account_id, "        \
    "msg_key, payload) SELECT q.ws, q.chat, q.msg, q.acct, q.k, q.payload "                       \
    "FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[], $5::text[], "             \
    "$6::bytea[]) WITH ORDINALITY AS q(ws, chat, msg, acct, k, payload, ord) ORDER BY q.ord"

#define NO_ACCOUNT "no_connected_account"

/* What the send is, worked out before anything is written. */
typedef struct send_plan {
    const Blazz__V1__CrmCommand *cmd;
    const Blazz__V1__SendChatMessage *s;
    const char *key;
    cs_party to;
    bz_account account;
    int has_account;
    /* stored failed, not queued: no connected account, Meta's limits or
     * Meta's customer-service window */
    const char *fail_code;
    char fail_message[BZ_ERROR_MSG_MAX];
    bz_crm_template_fill fill; /* a template's text (heap, or NULL) and variables */
    int64_t created_ms;
    int repeated;    /* its message id came earlier in the run: nothing to do */
    int64_t chat_id; /* the row inserted; 0: it existed already */
    int media_linked; /* the row's media_id names the stored media */
} send_plan;

static int is_reaction(const Blazz__V1__SendChatMessage *s)
{
    return s->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION;
}

static const char *text_of(const send_plan *p)
{
    const Blazz__V1__SendChatMessage *s = p->s;
    if (p->fill.rendered)
        return p->fill.rendered;
    if (is_reaction(s))
        return s->emoji;
    if (*s->body)
        return s->body;
    return s->media && s->media->caption ? s->media->caption : "";
}

static void set_text(json_t *o, const char *name, const char *v)
{
    if (v && *v)
        json_object_set_new(o, name, json_string(v));
}

static json_t *params_json(char *const *params, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(params[i]));
    return a;
}

static const char *interactive_type_text(Blazz__V1__InteractiveKind kind)
{
    switch (kind) {
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LIST: return "list";
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_CTA_URL: return "cta_url";
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_LOCATION_REQUEST: return "location_request";
    case BLAZZ__V1__INTERACTIVE_KIND__INTERACTIVE_KIND_FLOW: return "flow";
    default: return "";
    }
}

/* The interactive message as the API took it (its members given). */
static json_t *interactive_json(const Blazz__V1__InteractiveMessage *in)
{
    json_t *o = json_pack("{s:s}", "type", interactive_type_text(in->kind));
    set_text(o, "header_text", in->header_text);
    set_text(o, "footer", in->footer);
    set_text(o, "button", in->button);
    set_text(o, "display_text", in->display_text);
    set_text(o, "url", in->url);
    set_text(o, "flow_id", in->flow_id);
    set_text(o, "flow_name", in->flow_name);
    set_text(o, "flow_cta", in->flow_cta);
    set_text(o, "flow_token", in->flow_token);
    set_text(o, "flow_action", in->flow_action);
    set_text(o, "flow_screen", in->flow_screen);
    if (in->flow_data_json && *in->flow_data_json)
        json_object_set_new(o, "flow_data", json_loads(in->flow_data_json, 0, NULL));
    if (in->flow_draft)
        json_object_set_new(o, "flow_mode", json_string("draft"));
    if (in->n_sections) {
        json_t *sections = json_array();
        for (size_t i = 0; i < in->n_sections; i++) {
            json_t *sec = json_object(), *rows = json_array();
            set_text(sec, "title", in->sections[i]->title);
            for (size_t r = 0; r < in->sections[i]->n_rows; r++) {
                const Blazz__V1__InteractiveRow *row = in->sections[i]->rows[r];
                json_t *jr = json_object();
                set_text(jr, "id", row->id);
                set_text(jr, "title", row->title);
                set_text(jr, "description", row->description);
                json_array_append_new(rows, jr);
            }
            json_object_set_new(sec, "rows", rows);
            json_array_append_new(sections, sec);
        }
        json_object_set_new(o, "sections", sections);
    }
    return o;
}

/* chats.metadata of the row; heap text, NULL when out of memory. */
static char *row_metadata(const send_plan *p)
{
    const Blazz__V1__SendChatMessage *s = p->s;
    json_t *m = json_object();
    json_object_set_new(m, "body", json_string(text_of(p)));
    json_object_set_new(m, "message_type", json_string(cs_message_type_text(s->message_type)));
    json_object_set_new(m, "source", json_string("crm"));
    set_text(m, "client_reference", s->message_id);
    set_text(m, "idempotency_key", s->idempotency_key);
    set_text(m, "request_fingerprint", s->request_fingerprint);
    set_text(m, "quoted_wam_id", s->reply_to_wam_id);
    set_text(m, "target_wam_id", s->target_wam_id);
    if (s->media) {
        json_object_set_new(m, "has_media", json_true());
        json_object_set_new(m, "media", cs_media_json(s->media));
    }
    if (s->interactive)
        json_object_set_new(m, "interactive", interactive_json(s->interactive));
    if (s->template_)
        json_object_set_new(m, "template",
                            json_pack("{s:s,s:s,s:o,s:o}", "name", s->template_->name, "language",
                                      s->template_->language ? s->template_->language : "",
                                      "body_params",
                                      params_json(s->template_->body_params,
                                                  s->template_->n_body_params),
                                      "header_params",
                                      params_json(s->template_->header_params,
                                                  s->template_->n_header_params)));
    if (p->fail_code) {
        json_object_set_new(m, "error_code", json_string(p->fail_code));
        json_object_set_new(m, "error_message", json_string(p->fail_message));
    }
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return text;
}

/* ---- 1-3: recipient, content, account --------------------------------------------- */

/* Recipient and content of one send; the account is chosen for the whole
 * run at once (choose_accounts). */
static bz_status plan_send(cs_batch *b, PGconn *conn, send_plan *p, bz_error *err)
{
    const Blazz__V1__SendChatMessage *s = p->s;
    int64_t ws = p->cmd->envelope->workspace_id;
    const char *contact_key = *s->contact_phone ? s->contact_phone : s->contact_jid;
    bz_status st = cs_lock_party(b, conn, ws, s->contact_id, contact_key, s->group_id,
                                 s->group_jid, &p->to, err);
    if (st == BZ_OK && s->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEMPLATE) {
        st = bz_crm_template_render(conn, ws, s->template_, &p->fill, err);
        if (st == BZ_ERR_NOT_FOUND)
            st = bz_reclass(err, BZ_ERR_INVALID, "unknown_template");
    }
    if (st == BZ_OK && is_reaction(s)) {
        int64_t target_ms;
        int found = 0;
        st = bz_chat_message_time(conn, ws, p->to.contact ? p->to.contact->id : 0,
                                  p->to.group ? p->to.group->id : 0, s->target_wam_id,
                                  &target_ms, &found, err);
        if (st == BZ_OK && !found)
            st = bz_reject(err, "unknown_message",
                           "field target_wam_id: no such message in this conversation");
    }
    int64_t occurred = p->cmd->envelope->occurred_at_ms;
    p->created_ms = occurred > 0 ? occurred : bz_wall_ms();
    return st;
}

static bz_status choose_accounts(PGconn *conn, send_plan *plans, size_t n, bz_error *err)
{
    bz_account_query *q = calloc(n ? n : 1, sizeof *q);
    bz_account *acc = calloc(n ? n : 1, sizeof *acc);
    int *found = calloc(n ? n : 1, sizeof *found);
    size_t m = 0;
    bz_status st = q && acc && found ? BZ_OK
                                     : bz_fail(err, BZ_ERR_TRANSIENT, "choose accounts: out of memory");
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        const send_plan *p = &plans[i];
        if (p->repeated)
            continue;
        /* only Meta sends an interactive message: its accounts first */
        int meta_only =
            p->s->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_INTERACTIVE;
        q[m++] = (bz_account_query){.workspace_id = p->cmd->envelope->workspace_id,
                                    .preferred_id = p->s->whatsapp_account_id,
                                    .contact_id = p->to.contact ? p->to.contact->id : 0,
                                    .group_id = p->to.group ? p->to.group->id : 0,
                                    .provider = meta_only ? BLAZZ__V1__PROVIDER__PROVIDER_META : 0};
    }
    if (st == BZ_OK)
        st = bz_account_select_many(conn, q, m, acc, found, err);
    for (size_t i = 0, k = 0; st == BZ_OK && i < n; i++) {
        if (plans[i].repeated)
            continue;
        plans[i].account = acc[k];
        plans[i].has_account = found[k];
        if (!found[k]) {
            plans[i].fail_code = NO_ACCOUNT;
            snprintf(plans[i].fail_message, sizeof plans[i].fail_message,
                     "no connected WhatsApp account in the workspace");
        }
        k++;
    }
    free(q);
    free(acc);
    free(found);
    return st;
}

/* A send chosen for a Meta account that breaks Meta's limits, or one only
 * Meta sends (an interactive message) chosen for a whatsapp-web.js account
 * (wa/meta_limits.h), fails here, before it is queued: the provider would
 * refuse it or its request would leave part of it out. */
static void hold_to_meta_limits(send_plan *p)
{
    if (p->repeated || p->fail_code || !p->has_account)
        return;
    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    bz_crm_send_content(p->s, text_of(p), &m);
    bz_error e;
    bz_status st = bz_wa_provider_check(p->account.provider, &m, &e);
    if (st == BZ_OK && p->account.provider == BLAZZ__V1__PROVIDER__PROVIDER_META)
        st = bz_wa_meta_check(&m, &e);
    if (st == BZ_OK)
        return;
    p->fail_code = BZ_WA_META_LIMIT_REASON;
    snprintf(p->fail_message, sizeof p->fail_message, "%s", e.msg);
}

/* A send other than a template to a contact, chosen for a Meta account,
 * fails here when the contact has not written to that account within 24
 * hours (wa/service_window.h): Meta would refuse it (131047). One
 * statement for the run's sends it concerns, none when there are none. */
static bz_status hold_to_service_window(PGconn *conn, send_plan *plans, size_t n, bz_error *err)
{
    int64_t *accounts = calloc(n ? n : 1, sizeof *accounts);
    int64_t *contacts = calloc(n ? n : 1, sizeof *contacts);
    size_t *which = calloc(n ? n : 1, sizeof *which);
    int *open = calloc(n ? n : 1, sizeof *open);
    size_t m = 0;
    bz_status st = accounts && contacts && which && open
                       ? BZ_OK
                       : bz_fail(err, BZ_ERR_TRANSIENT, "service window: out of memory");
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        const send_plan *p = &plans[i];
        if (p->repeated || p->fail_code || !p->has_account || !p->to.contact ||
            !bz_wa_service_window_applies(p->account.provider, p->s->message_type))
            continue;
        accounts[m] = p->account.id;
        contacts[m] = p->to.contact->id;
        which[m++] = i;
    }
    if (st == BZ_OK)
        st = bz_wa_service_window_open(conn, accounts, contacts, m, open, err);
    for (size_t k = 0; st == BZ_OK && k < m; k++) {
        if (open[k])
            continue;
        send_plan *p = &plans[which[k]];
        bz_error e;
        bz_wa_service_window_refuse(&e, p->account.id);
        p->fail_code = BZ_WA_SERVICE_WINDOW_REASON;
        snprintf(p->fail_message, sizeof p->fail_message, "%s", e.msg);
    }
    free(accounts);
    free(contacts);
    free(which);
    free(open);
    return st;
}

/* ---- 4: the rows -------------------------------------------------------------------- */

/* by_id: message id -> the run's plan that carries it first. */
static bz_status insert_rows(PGconn *conn, send_plan *plans, size_t n, const cs_map *by_id,
                             bz_error *err)
{
    bz_pg_array a[11];
    bz_pg_array_init_all(a, 11);
    bz_status st = BZ_OK;
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        const send_plan *p = &plans[i];
        if (p->repeated)
            continue;
        char *meta = row_metadata(p);
        if (!meta) {
            st = bz_fail(err, BZ_ERR_TRANSIENT, "store send %s: out of memory", p->s->message_id);
            break;
        }
        bz_pg_array_text(&a[0], p->s->message_id);
        bz_pg_array_int64(&a[1], p->cmd->envelope->workspace_id);
        bz_pg_array_int64_or_null(&a[2], p->has_account ? p->account.id : 0);
        bz_pg_array_int64_or_null(&a[3], p->to.contact ? p->to.contact->id : 0);
        bz_pg_array_int64_or_null(&a[4], p->to.group ? p->to.group->id : 0);
        bz_pg_array_text(&a[5], cs_provider_text(p->has_account ? p->account.provider : 0));
        bz_pg_array_text(&a[6], p->to.group ? "group" : "private");
        bz_pg_array_text(&a[7], p->fail_code ? "failed" : "pending");
        bz_pg_array_text(&a[8], meta);
        bz_pg_array_int64_or_null(&a[9], p->s->user_id);
        bz_pg_array_int64(&a[10], p->created_ms);
        free(meta);
    }
    PGresult *res = NULL;
    if (st == BZ_OK)
        st = bz_pg_arrays_exec(conn, "store the CRM sends", SQL_INSERT_SENDS, a, 11, &res, err);
    /* RETURNING names the rows inserted; the others existed already */
    for (int r = 0; st == BZ_OK && r < PQntuples(res); r++) {
        send_plan *p = cs_map_get(by_id, PQgetvalue(res, r, 0));
        if (p) {
            p->chat_id = bz_pg_get_int64(res, r, 1);
            p->media_linked = *PQgetvalue(res, r, 2) == 't';
        }
    }
    PQclear(res);
    bz_pg_array_free_all(a, 11);
    return st;
}

/* ---- 6: the queued SendMessages ---------------------------------------------------------- */

/* Append p's packed SendMessage to a (a bytea element). */
static void packed_send(bz_pg_array *a, const send_plan *p)
{
    const Blazz__V1__CrmCommand *cmd = p->cmd;
    const Blazz__V1__SendChatMessage *s = p->s;
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = s->message_id;
    env.occurred_at_ms = p->created_ms;
    env.source = "chat-sync";
    env.workspace_id = cmd->envelope->workspace_id;
    env.trace_id = cmd->envelope->trace_id;
    Blazz__V1__SendMessage m = BLAZZ__V1__SEND_MESSAGE__INIT;
    m.envelope = &env;
    m.kind = BLAZZ__V1__SEND_KIND__SEND_KIND_MESSAGE;
    m.idempotency_key = s->message_id;
    m.client_reference = s->message_id;
    cs_party_address(&p->to, &m);
    bz_crm_send_content(s, text_of(p), &m);
    /* a named template's parameters carry the names of the variables they
     * fill (Meta's parameter_name) */
    Blazz__V1__TemplateMessage tpl;
    char *body_names[BZ_WA_TEMPLATE_VARS_MAX], *header_names[BZ_WA_TEMPLATE_VARS_MAX];
    if (s->template_) {
        tpl = *s->template_;
        bz_crm_template_names(&p->fill, &tpl, body_names, header_names);
        m.template_ = &tpl;
    }
    m.contact_id = p->to.contact ? p->to.contact->id : 0;
    m.chat_id = p->chat_id;
    m.user_id = s->user_id;
    size_t len = blazz__v1__send_message__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        a->oom = 1;
        return;
    }
    blazz__v1__send_message__pack(&m, buf);
    bz_pg_array_bytea(a, buf, len);
    free(buf);
}

static bz_status queue_sends(PGconn *conn, const send_plan *plans, size_t n, bz_error *err)
{
    bz_pg_array a[6];
    bz_pg_array_init_all(a, 6);
    for (size_t i = 0; i < n; i++) {
        const send_plan *p = &plans[i];
        if (p->repeated || !p->chat_id || p->fail_code)
            continue;
        bz_pg_array_int64(&a[0], p->cmd->envelope->workspace_id);
        bz_pg_array_int64(&a[1], p->chat_id);
        bz_pg_array_text(&a[2], p->s->message_id);
        bz_pg_array_int64(&a[3], p->account.id);
        bz_pg_array_text(&a[4], p->key);
        packed_send(&a[5], p);
    }
    bz_status st = a[0].n ? bz_pg_arrays_exec(conn, "queue the CRM sends", SQL_QUEUE_SENDS, a, 6, NULL, err)
                          : BZ_OK;
    bz_pg_array_free_all(a, 6);
    return st;
}

/* ---- 5, 7: counters and events ---------------------------------------------------------- */

static bz_status emit_events(cs_batch *b, const send_plan *p, int64_t chat_id, bz_error *err)
{
    const Blazz__V1__SendChatMessage *s = p->s;
    /* the media, as the CRM's webhooks show a message's (EVENTS.md: null
     * only without media) */
    Blazz__V1__MediaInfo *media = cs_event_media(b, s->media, p->media_linked);
    if (s->media && !media)
        return bz_fail(err, BZ_ERR_TRANSIENT, "events of send %s: out of memory",
                       s->message_id);
    cs_chat c = {.id = chat_id,
                 .workspace_id = p->cmd->envelope->workspace_id,
                 .account_id = p->has_account ? p->account.id : 0,
                 .contact_id = p->to.contact ? p->to.contact->id : 0,
                 .group_id = p->to.group ? p->to.group->id : 0,
                 .wam_id = "",
                 .outbound = 1,
                 .group = p->to.group != NULL,
                 .provider = p->has_account ? p->account.provider : 0,
                 .status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_PENDING,
                 .is_read = 1,
                 .created_ms = p->created_ms,
                 .body = (char *)text_of(p),
                 .client_reference = s->message_id,
                 .quoted_wam_id = s->reply_to_wam_id,
                 .message_type = s->message_type,
                 .has_media = s->media != NULL,
                 .media = media,
                 .user_id = s->user_id};
    snprintf(c.uuid, sizeof c.uuid, "%s", s->message_id);
    /* the message.created of the row its echo would store in a replay
     * derives from the same uuid (events.c, cs_emit_message_created) */
    Blazz__V1__Envelope created = *p->cmd->envelope;
    created.event_id = c.uuid;
    const Blazz__V1__Envelope *env = p->cmd->envelope;
    bz_status st = cs_emit_chat_event(b, &created, "message_created", 0,
                                      BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED,
                                      &c, NULL, p->key, err);
    if (st != BZ_OK || !p->fail_code)
        return st;
    Blazz__V1__StatusChange change = BLAZZ__V1__STATUS_CHANGE__INIT;
    change.previous_status = c.status;
    change.status = c.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
    change.error_code = (char *)p->fail_code;
    change.error_message = (char *)p->fail_message;
    change.changed_at_ms = p->created_ms;
    return cs_emit_chat_event(b, env, "status_changed", 0,
                              BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_STATUS_CHANGED, &c,
                              &change, p->key, err);
}

bz_status cs_crm_send_run(cs_batch *b, PGconn *conn, const Blazz__V1__CrmCommand *const *cmds,
                          char *const *keys, size_t n, bz_error *err)
{
    send_plan *plans = calloc(n ? n : 1, sizeof *plans);
    if (!plans)
        return bz_fail(err, BZ_ERR_TRANSIENT, "apply crm sends: out of memory");
    cs_map by_id;
    cs_map_init(&by_id, &b->arena);
    bz_status st = BZ_OK;
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        send_plan *p = &plans[i];
        *p = (send_plan){.cmd = cmds[i], .s = cmds[i]->send, .key = keys[i]};
        p->repeated = cs_map_get(&by_id, p->s->message_id) != NULL;
        if (!p->repeated && cs_map_put(&by_id, p->s->message_id, p) != 0)
            st = bz_fail(err, BZ_ERR_TRANSIENT, "apply crm sends: out of memory");
        if (st == BZ_OK && !p->repeated)
            st = plan_send(b, conn, p, err);
        if (st != BZ_OK)
            bz_wrap(err, "crm command %s", cmds[i]->envelope->event_id);
    }
    if (st == BZ_OK)
        st = choose_accounts(conn, plans, n, err);
    for (size_t i = 0; st == BZ_OK && i < n; i++)
        hold_to_meta_limits(&plans[i]);
    if (st == BZ_OK)
        st = hold_to_service_window(conn, plans, n, err);
    if (st == BZ_OK)
        st = insert_rows(conn, plans, n, &by_id, err);
    if (st == BZ_OK)
        st = queue_sends(conn, plans, n, err);
    for (size_t i = 0; st == BZ_OK && i < n; i++) {
        send_plan *p = &plans[i];
        if (p->repeated || !p->chat_id)
            continue;
        /* a reaction is not a message of the conversation (§5.2): it moves
         * no counter */
        if (!is_reaction(p->s))
            cs_conversation_advance(p->to, p->created_ms, p->has_account ? p->account.id : 0);
        st = emit_events(b, p, p->chat_id, err);
    }
    for (size_t i = 0; i < n; i++) {
        bz_account_clear(&plans[i].account);
        free(plans[i].fill.rendered);
    }
    cs_map_free(&by_id);
    free(plans);
    return st;
}
