/*
 * crm_contact.c - the CRM creates a contact or changes one (ContactRequest
 * on crm.commands, from ingest's POST /v1/contacts and PATCH
 * /v1/contacts/{id}), in the consumer's transaction like its other
 * commands (crm.c).
 *
 * A create (contact_id 0) locks the live contacts with its phone or BSUID
 * (cs_lock_contacts, the messages' lookup, decision 0010): when one exists
 * (the person wrote, or the same create came twice) nothing changes.
 * Else one INSERT ... ON CONFLICT DO NOTHING (source_type 'manual', no
 * account: nobody has written yet) creates it, keyed by the phone, else
 * the BSUID, as a message would have; a row inserted concurrently wins
 * and this one changes nothing. A contact it created sends
 * CONTACT_UPDATED (webhook contact.updated) naming what it was created
 * with, so the CRM learns its id.
 *
 * A change locks the contact by id (gone since ingest found it: INVALID
 * unknown_contact, a dead letter, as for a send). A new name is its
 * first_name, with CONTACT_UPDATED naming first_name; a name the CRM gives,
 * at creation or since, is kept from WhatsApp's push names
 * (cs_contact_keep_crm_name); an opt-out or
 * opt-in is optout.c's, source 'api', at the time ingest accepted it, so
 * campaigns skip the contact exactly as after a keyword, with the same
 * events.
 */
#include <stdio.h>
#include <string.h>

#include "chat_sync.h"

#define SQL_CONTACT_CREATE                                                                        \
    "INSERT INTO contacts (workspace_id, source_type, first_name, phone, bsuid) "                 \
    "VALUES ($1::bigint, 'manual', nullif($2, ''), $3, nullif($4, '')) "                          \
    "ON CONFLICT DO NOTHING RETURNING id"

/* The batch's live contact with key or, when given, bsuid; NULL when none. */
static cs_contact *contact_named(cs_batch *b, int64_t workspace_id, const char *key,
                                 const char *bsuid)
{
    cs_contact *c = cs_find_contact(b, workspace_id, key);
    return c || !*bsuid ? c : cs_find_contact(b, workspace_id, bsuid);
}

/* CONTACT_UPDATED naming changed[0..n), at the command's acceptance. */
static bz_status emit_updated(cs_batch *b, const cs_record *r, const cs_contact *c,
                              const char **changed, size_t n, bz_error *err)
{
    Blazz__V1__ContactChange change = BLAZZ__V1__CONTACT_CHANGE__INIT;
    change.changed = (char **)changed;
    change.n_changed = n;
    change.changed_at_ms = r->cmd->envelope->occurred_at_ms;
    return cs_emit_contact_updated(b, r, c, &change, err);
}

static bz_status create_contact(cs_batch *b, PGconn *conn, const cs_record *r,
                                const Blazz__V1__ContactRequest *q, bz_error *err)
{
    int64_t ws = r->cmd->envelope->workspace_id;
    const char *key = *q->phone ? q->phone : q->bsuid;
    cs_seed seed = {.workspace_id = ws, .key = key, .name = q->name, .jid = "",
                    .bsuid = q->bsuid, .parent_bsuid = "", .username = ""};
    const cs_seed *seeds[] = {&seed};
    bz_status st = cs_lock_contacts(b, conn, seeds, 1, err);
    if (st != BZ_OK || contact_named(b, ws, key, q->bsuid))
        return st;
    char wsid[24];
    snprintf(wsid, sizeof wsid, "%lld", (long long)ws);
    const char *params[] = {wsid, q->name, key, q->bsuid};
    PGresult *res = NULL;
    st = bz_pg_exec_params(conn, "create contact", SQL_CONTACT_CREATE, 4, params, &res, err);
    int created = st == BZ_OK && PQntuples(res) == 1;
    PQclear(res);
    if (st == BZ_OK)
        st = cs_lock_contacts(b, conn, seeds, 1, err);
    cs_contact *c = st == BZ_OK ? contact_named(b, ws, key, q->bsuid) : NULL;
    if (st != BZ_OK || !created || !c)
        return st;
    const char *changed[3];
    size_t n = 0;
    if (*q->phone)
        changed[n++] = "phone";
    if (*q->bsuid)
        changed[n++] = "bsuid";
    if (*q->name) {
        changed[n++] = "first_name";
        if (cs_contact_keep_crm_name(c, r->cmd->envelope->occurred_at_ms) != 0)
            return bz_fail(err, BZ_ERR_TRANSIENT, "create contact: out of memory");
    }
    return emit_updated(b, r, c, changed, n, err);
}

static bz_status change_contact(cs_batch *b, PGconn *conn, const cs_record *r,
                                const Blazz__V1__ContactRequest *q, bz_error *err)
{
    cs_party to;
    bz_status st = cs_lock_party(b, conn, r->cmd->envelope->workspace_id, q->contact_id, "", 0,
                                 "", &to, err);
    if (st != BZ_OK)
        return st;
    cs_contact *c = to.contact;
    if (*q->name && cs_contact_keep_crm_name(c, r->cmd->envelope->occurred_at_ms) != 0)
        return bz_fail(err, BZ_ERR_TRANSIENT, "change contact: out of memory");
    if (*q->name && strcmp(c->name ? c->name : "", q->name) != 0) {
        if (!(c->name = cs_arena_strdup(&b->arena, q->name)))
            return bz_fail(err, BZ_ERR_TRANSIENT, "change contact: out of memory");
        c->dirty = 1;
        const char *changed[] = {"first_name"};
        st = emit_updated(b, r, c, changed, 1, err);
    }
    if (st == BZ_OK && q->opt_out)
        st = cs_apply_api_opt_out(b, r, c,
                                  q->opt_out == BLAZZ__V1__CONTACT_OPT_OUT__CONTACT_OPT_OUT_OUT,
                                  r->cmd->envelope->occurred_at_ms, err);
    return st;
}

bz_status cs_crm_contact(cs_batch *b, PGconn *conn, const rd_kafka_message_t *msg,
                         const Blazz__V1__CrmCommand *cmd, bz_error *err)
{
    cs_crm_record cr;
    cs_crm_record_init(&cr, msg, cmd);
    const Blazz__V1__ContactRequest *q = cmd->contact;
    return q->contact_id ? change_contact(b, conn, &cr.r, q, err)
                         : create_contact(b, conn, &cr.r, q, err);
}
