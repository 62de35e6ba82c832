/*
 * optout.c - contacts opting out of campaigns and back in, by what they
 * write (ARCHITECTURE.md §12.6).
 *
 * A contact also opts out and back in through Meta's user_preferences
 * webhook (it stopped or resumed marketing messages in WhatsApp): ingest
 * hands it over as a contact update with marketing_preference "stop" or
 * "resume", applied here the same way, with source "preference" and no
 * keyword (cs_apply_marketing_preference). The CRM opts a contact out and
 * back in over its API (PATCH /v1/contacts/{id}, crm_contact.c), source
 * "api" (cs_apply_api_opt_out).
 *
 * A new live inbound message of a private chat is an opt-out when its
 * whole text, trimmed, with runs of spaces as one and ASCII letters
 * folded, is one of its workspace's opt-out keywords, or when it is the
 * tap of Meta's marketing opt-out button (a `button` reply whose text or
 * payload is Meta's "Stop promotions", or an opt-out keyword); it is an
 * opt-in when it is one of the opt-in keywords. "please stop" is neither:
 * a keyword inside a sentence is not a request.
 *
 * The keywords are workspaces.metadata.opt_out {"out": [...], "in":
 * [...]}; a list the workspace does not give is the default (STOP,
 * UNSUBSCRIBE and the seeds' users' Indonesian BERHENTI, BERHENTI
 * LANGGANAN; START, MULAI), an empty list turns that direction off. They
 * are read (one statement, no lock) only when the batch stored a message
 * that could be a keyword: a live inbound text of at most KEYWORD_MAX
 * characters once folded, or a button reply. Longer messages, echoes,
 * history and groups cost one length check, and only a match writes.
 *
 * Exactly once: only a message this batch stored counts (a replayed one
 * stores nothing), and contacts.opt_out_changed_at keeps the time of the
 * last message (or preference) that opted the contact out or in, so an
 * older one (delivered late, replayed from history, a preference
 * redelivered by Meta) changes nothing. A matched
 * message that changed the state emits CONTACT_OPTED_OUT or
 * CONTACT_OPTED_IN; one that repeats the state only moves the time.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_sync.h"
#include "pg/columns.h"

/* Longer texts are never keywords: the check costs one length test. */
#define KEYWORD_MAX 64

/* What Meta's marketing opt-out button says when the business kept the
 * default text ("Stop promotions"), folded. */
#define META_OPT_OUT_BUTTON "STOP PROMOTIONS"

static const char *const default_out[] = {"STOP", "UNSUBSCRIBE", "BERHENTI",
                                          "BERHENTI LANGGANAN", NULL};
static const char *const default_in[] = {"START", "MULAI", NULL};

#define SQL_CONTACT_OPT_UPDATE                                                                    \
    "UPDATE contacts c SET opted_out_at = to_timestamp(u.out_ms / 1000.0), "                      \
    "opt_out_source = u.source, opt_out_keyword = u.keyword, "                                    \
    "opt_out_changed_at = to_timestamp(u.at_ms / 1000.0) "                                        \
    "FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) "              \
    "AS u(id, out_ms, source, keyword, at_ms) WHERE c.id = u.id"

/* text folded into out (cap KEYWORD_MAX + 1): trimmed, inner runs of
 * white space as one space, ASCII upper case. 0, or -1 when too long. */
static int fold(const char *text, char *out)
{
    size_t n = 0;
    int space = 0;
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        if (isspace(*p)) {
            space = n > 0;
            continue;
        }
        if (n + (size_t)space + 1 > KEYWORD_MAX)
            return -1;
        if (space)
            out[n++] = ' ';
        space = 0;
        out[n++] = (char)toupper(*p);
    }
    out[n] = '\0';
    return 0;
}

/* The listed keyword equal to folded, as the list spells it; NULL when
 * none. list: the workspace's JSON array, else defaults. */
static const char *listed(const json_t *list, const char *const *defaults, const char *folded)
{
    char k[KEYWORD_MAX + 1];
    if (json_is_array(list)) {
        size_t i;
        const json_t *v;
        json_array_foreach(list, i, v)
        if (json_is_string(v) && fold(json_string_value(v), k) == 0 && *k &&
            strcmp(k, folded) == 0)
            return json_string_value(v);
        return NULL;
    }
    for (; *defaults; defaults++)
        if (strcmp(*defaults, folded) == 0)
            return *defaults;
    return NULL;
}

#define SQL_KEYWORDS                                                                              \
    "SELECT id, coalesce(metadata->'opt_out', '{}'::jsonb)::text FROM workspaces "               \
    "WHERE id = ANY($1::bigint[])"

/* 1 when occurrence o stored a live inbound private message that could be
 * an opt-out or opt-in. */
static int candidate(const cs_occurrence *o)
{
    const Blazz__V1__InboundMessage *m = o->m;
    char folded[KEYWORD_MAX + 1];
    if (!o->chat || o->group || o->chat_index >= 0 || m->from_me)
        return 0;
    if (m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_BUTTON)
        return 1;
    return m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT &&
           fold(m->body, folded) == 0 && *folded;
}

/* The map key of a workspace's keywords. */
static void config_key(int64_t workspace_id, char out[32])
{
    snprintf(out, 32, "w#%" PRId64, workspace_id);
}

/* cfg (an object the batch now owns) as the keywords of workspace_id; -1
 * when out of memory. */
static int keep_config(cs_batch *b, int64_t workspace_id, json_t *cfg)
{
    char key[32];
    config_key(workspace_id, key);
    if (!cfg || cs_vec_push(&b->owned_json, cfg) != 0) {
        json_decref(cfg);
        return -1;
    }
    return cs_map_put(&b->opt_out_config, key, cfg);
}

bz_status cs_load_opt_out_keywords(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array ids;
    bz_pg_array_init(&ids);
    int oom = 0;
    for (size_t i = 0; i < b->nocc && !oom; i++) {
        const cs_occurrence *o = &b->occ[i];
        char key[32];
        config_key(o->workspace_id, key);
        if (!candidate(o) || cs_map_get(&b->opt_out_config, key))
            continue;
        /* the defaults until the workspace's row says otherwise */
        oom = keep_config(b, o->workspace_id, json_object()) != 0;
        bz_pg_array_int64(&ids, o->workspace_id);
    }
    bz_status st = oom ? bz_fail(err, BZ_ERR_TRANSIENT, "opt-out keywords: out of memory") : BZ_OK;
    PGresult *res = NULL;
    if (st == BZ_OK && ids.n > 0)
        st = bz_pg_arrays_exec(conn, "read opt-out keywords", SQL_KEYWORDS, &ids, 1, &res, err);
    for (int i = 0; st == BZ_OK && res && i < PQntuples(res); i++) {
        /* a setting that does not parse is no setting: the defaults hold */
        json_t *cfg = json_loads(PQgetvalue(res, i, 1), 0, NULL);
        if (!json_is_object(cfg)) {
            json_decref(cfg);
            continue;
        }
        if (keep_config(b, strtoll(PQgetvalue(res, i, 0), NULL, 10), cfg) != 0)
            st = bz_fail(err, BZ_ERR_TRANSIENT, "opt-out keywords: out of memory");
    }
    PQclear(res);
    bz_pg_array_free_all(&ids, 1);
    return st;
}

typedef struct opt_match {
    int out;                       /* 1: opt out, 0: opt in */
    const char *source, *keyword; /* keyword: as listed, or the button's text */
} opt_match;

/* 1 when message m opts its contact out or in under the workspace's
 * keywords cfg (an object; members not given: the defaults). */
static int match(const json_t *cfg, const Blazz__V1__InboundMessage *m, opt_match *out)
{
    const Blazz__V1__InteractiveReply *r = m->interactive_reply;
    int button = m->message_type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_BUTTON && r &&
                 strcmp(r->type ? r->type : "", "button") == 0;
    if (m->message_type != BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT && !button)
        return 0;
    char text[KEYWORD_MAX + 1], payload[KEYWORD_MAX + 1];
    const char *shown = button && r->title && *r->title ? r->title : m->body;
    int text_ok = fold(shown, text) == 0 && *text;
    int payload_ok = button && fold(r->id, payload) == 0 && *payload;
    if (!text_ok && !payload_ok)
        return 0;
    const json_t *outs = json_object_get(cfg, "out"), *ins = json_object_get(cfg, "in");
    const char *k = NULL;
    if (button) {
        if ((text_ok && (strcmp(text, META_OPT_OUT_BUTTON) == 0 || listed(outs, default_out, text))) ||
            (payload_ok && (strcmp(payload, META_OPT_OUT_BUTTON) == 0 ||
                            listed(outs, default_out, payload)))) {
            *out = (opt_match){1, "button", shown && *shown ? shown : r->id};
            return 1;
        }
    } else if (text_ok && (k = listed(outs, default_out, text))) {
        *out = (opt_match){1, "keyword", k};
        return 1;
    }
    if (text_ok && (k = listed(ins, default_in, text))) {
        *out = (opt_match){0, "keyword", k};
        return 1;
    }
    return 0;
}

/* Opt c out or in (hit) at at_ms, by what record r brought (the message
 * wam_id of chat chat_id, or none); only when later than the last change.
 * A change of state emits its event; a repeat only moves the time. */
static bz_status change_opt_out(cs_batch *b, const cs_record *r, cs_contact *c,
                                const opt_match *hit, int64_t at_ms, const char *wam_id,
                                int64_t chat_id, bz_error *err)
{
    if (at_ms <= c->opt_changed_ms)
        return BZ_OK;
    int changed = hit->out != (c->opted_out_ms > 0);
    c->opt_changed_ms = at_ms;
    c->opt_dirty = 1;
    if (!changed)
        return BZ_OK;
    c->opted_out_ms = hit->out ? at_ms : 0;
    c->opt_source = hit->out ? hit->source : NULL;
    c->opt_keyword = hit->out ? hit->keyword : NULL;
    Blazz__V1__OptOutChange change = BLAZZ__V1__OPT_OUT_CHANGE__INIT;
    change.source = (char *)hit->source;
    change.keyword = (char *)(hit->keyword ? hit->keyword : "");
    change.changed_at_ms = at_ms;
    change.wam_id = (char *)wam_id;
    change.chat_id = chat_id;
    return cs_emit_opt_out(b, r, c, hit->out, &change, err);
}

bz_status cs_apply_opt_out(cs_batch *b, const cs_occurrence *o, cs_contact *c, bz_error *err)
{
    const Blazz__V1__InboundMessage *m = o->m;
    if (!c || !candidate(o))
        return BZ_OK;
    char key[32];
    config_key(o->workspace_id, key);
    const json_t *cfg = cs_map_get(&b->opt_out_config, key);
    opt_match hit;
    if (!cfg || !match(cfg, m, &hit))
        return BZ_OK;
    return change_opt_out(b, &b->recs[o->rec], c, &hit, o->created_ms, m->wam_id, o->chat->id,
                          err);
}

bz_status cs_apply_marketing_preference(cs_batch *b, const cs_record *r, cs_contact *c,
                                        bz_error *err)
{
    const Blazz__V1__ContactUpdate *u = r->cmd->contact_update;
    const char *pref = u->marketing_preference;
    if (!pref || !*pref)
        return BZ_OK;
    opt_match hit = {strcmp(pref, "stop") == 0, "preference", NULL};
    return change_opt_out(b, r, c, &hit, u->timestamp_ms, "", 0, err);
}

bz_status cs_apply_api_opt_out(cs_batch *b, const cs_record *r, cs_contact *c, int out,
                               int64_t at_ms, bz_error *err)
{
    opt_match hit = {out, "api", NULL};
    return change_opt_out(b, r, c, &hit, at_ms, "", 0, err);
}

bz_status cs_write_contact_opt_outs(cs_batch *b, PGconn *conn, bz_error *err)
{
    bz_pg_array a[5];
    bz_pg_array_init_all(a, 5);
    for (size_t i = 0; i < b->contacts.n; i++) {
        const cs_contact *c = b->contacts.items[i];
        if (!c->opt_dirty)
            continue;
        bz_pg_array_int64(&a[0], c->id);
        bz_pg_array_int64_or_null(&a[1], c->opted_out_ms);
        bz_pg_array_text(&a[2], c->opt_source);
        bz_pg_array_text(&a[3], c->opt_keyword);
        bz_pg_array_int64(&a[4], c->opt_changed_ms);
    }
    bz_status st = BZ_OK;
    if (a[0].n > 0)
        st = bz_pg_arrays_exec(conn, "write contact opt-outs", SQL_CONTACT_OPT_UPDATE, a, 5, NULL, err);
    bz_pg_array_free_all(a, 5);
    return st;
}
