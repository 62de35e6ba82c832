/*
 * crm_contact_writes.c - the CRM creates and changes contacts, on a worker
 * (crm_contact_writes.h).
 *
 * chat-sync owns the contacts rows (ARCHITECTURE.md, "Who writes which
 * table"), so a write travels as the CRM's other writes do: checked here
 * against the key's workspace, published as one ContactRequest on
 * crm.commands, answered 202 once the broker has it, and applied by
 * chat-sync (crm_contact.c there) in its transaction, which sends the
 * webhooks.
 *
 * A create is idempotent on the identifier (decision 0010: one live
 * contact per phone and per BSUID): when the workspace already has a live
 * contact with the phone, else with the BSUID, the answer is 200 with it,
 * as GET /v1/contacts shows it, and nothing is published; a create of
 * someone who wrote meanwhile, or of the same contact twice before
 * chat-sync applied the first, changes nothing there either. A new
 * contact's key (and so its command's conversation) is its phone, else its
 * BSUID, as for the messages that would create it. The request is held
 * to the command's rules (crm_command.h) before the lookup, so a malformed
 * one is refused even when its phone finds a contact.
 *
 * A change names the contact by its uuid or id, as the reads do; its key
 * is read with it so the command shares the conversation's order.
 *
 * A merge (decision 0010, "The CRM's word") names the survivor in its path
 * and the merged contact in its body, each by uuid or id; both must be
 * live contacts of the key's workspace (404 unknown_contact naming the
 * field; 409 contact_merged when one was merged into another meanwhile)
 * and not one contact twice (400). Its command is keyed by the survivor's
 * conversation, as the contact.merged it becomes; chat-sync applies it
 * alone and re-checks both under its lock (crm_merge.c there).
 */
#include "crm/crm_contact_writes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/uuid.h"
#include "crm/crm_contacts.h"
#include "crm/crm_json.h"
#include "wa/crm_command.h"

/* A contact command of r (its fields set) in the conversation key, its
 * envelope env, its event id event_id. */
static bz_status contact_command(ing_crm_request *rq, Blazz__V1__ContactRequest *r,
                                 const char *key, Blazz__V1__CrmCommand *cmd,
                                 Blazz__V1__Envelope *env, char *event_id, bz_error *err)
{
    bz_status st = bz_uuid_v4(event_id, err);
    blazz__v1__crm_command__init(cmd);
    cmd->command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_CONTACT;
    cmd->contact = r;
    if (st == BZ_OK)
        ing_crm_address(rq, cmd, env, event_id, key);
    return st;
}

/* The identifiers of a create as the 202's members (JSON-escaped), each
 * only when given. */
static char *identifiers_json(const Blazz__V1__ContactRequest *r)
{
    json_t *ids = json_object();
    int ok = ids && (!*r->phone || json_object_set_new(ids, "phone", json_string(r->phone)) == 0) &&
             (!*r->bsuid || json_object_set_new(ids, "bsuid", json_string(r->bsuid)) == 0);
    char *text = ok ? json_dumps(ids, JSON_COMPACT) : NULL;
    json_decref(ids);
    if (text) { /* "{...}" -> ",..." */
        text[0] = ',';
        text[strlen(text) - 1] = '\0';
    }
    return text;
}

void ing_crm_create_contact(ing_crm_request *rq, const char *body, size_t len)
{
    Blazz__V1__ContactRequest *r = NULL;
    Blazz__V1__CrmCommand cmd;
    Blazz__V1__Envelope env;
    char event_id[BZ_UUID_STR_SIZE];
    bz_error err;
    json_t *existing = NULL;
    bz_status st = ing_crm_json_contact(body, len, 1, ing_crm_request_config(rq)->default_cc,
                                        &r, &err);
    if (st == BZ_OK)
        st = contact_command(rq, r, *r->phone ? r->phone : r->bsuid, &cmd, &env, event_id,
                             &err);
    /* the whole request is checked even when the contact exists: a
     * malformed one is refused, never answered 200 */
    if (st == BZ_OK)
        st = bz_crm_command_check(&cmd, &err);
    if (st == BZ_OK)
        st = ing_crm_contact_by_identifiers(rq, r->phone, r->bsuid, &existing, &err);
    char *extra = st == BZ_OK && !existing ? identifiers_json(r) : NULL;
    if (st == BZ_OK && !existing && !extra)
        st = bz_fail(&err, BZ_ERR_NOMEM, "create contact: out of memory");
    if (st != BZ_OK)
        ing_crm_refuse(rq, &err);
    else if (existing)
        ing_crm_reply_doc(rq, 200, existing);
    else
        ing_crm_publish(rq, &cmd, "event_id", extra);
    free(extra);
    if (r)
        blazz__v1__contact_request__free_unpacked(r, NULL);
}

void ing_crm_change_contact(ing_crm_request *rq, const char *body, size_t len)
{
    Blazz__V1__ContactRequest *r = NULL;
    Blazz__V1__CrmCommand cmd;
    Blazz__V1__Envelope env;
    char event_id[BZ_UUID_STR_SIZE], extra[48];
    ing_crm_contact_ref contact;
    bz_error err;
    bz_status st = ing_crm_json_contact(body, len, 0, ing_crm_request_config(rq)->default_cc,
                                        &r, &err);
    if (st == BZ_OK)
        st = ing_crm_contact_of_path(rq, "", &contact, &err);
    if (st == BZ_OK && !contact.live)
        st = ing_crm_not_found(&err, "unknown_contact", "contact_id", rq->workspace_id);
    if (st == BZ_OK) {
        r->contact_id = contact.id;
        st = contact_command(rq, r, contact.key, &cmd, &env, event_id, &err);
    }
    if (st != BZ_OK) {
        ing_crm_refuse(rq, &err);
    } else {
        snprintf(extra, sizeof extra, ",\"contact_id\":%" PRId64, r->contact_id);
        ing_crm_publish(rq, &cmd, "event_id", extra);
    }
    if (r)
        blazz__v1__contact_request__free_unpacked(r, NULL);
}

/* A contact of a merge must be live: one merged into another is 409
 * contact_merged naming where it went (the CRM holds an old id). */
static bz_status still_live(const ing_crm_contact_ref *c, const char *field, bz_error *err)
{
    if (c->live)
        return BZ_OK;
    bz_fail(err, BZ_ERR_CONFLICT, "field %s: contact %" PRId64 " was merged into contact %s",
            field, c->id, c->merged_into);
    err->reason = "contact_merged";
    return BZ_ERR_CONFLICT;
}

void ing_crm_merge_contacts(ing_crm_request *rq, const char *body, size_t len)
{
    Blazz__V1__ContactRequest r = BLAZZ__V1__CONTACT_REQUEST__INIT;
    Blazz__V1__CrmCommand cmd;
    Blazz__V1__Envelope env;
    char event_id[BZ_UUID_STR_SIZE], ref[BZ_UUID_STR_SIZE + 8], extra[96];
    ing_crm_contact_ref survivor, merged;
    bz_error err;
    bz_status st = ing_crm_json_merge(body, len, ref, sizeof ref, &err);
    if (st == BZ_OK)
        st = ing_crm_contact_of_path(rq, ING_CRM_MERGE_SUFFIX, &survivor, &err);
    if (st == BZ_OK)
        st = ing_crm_contact_of_reference(rq, ref, "merged_contact_id", &merged, &err);
    if (st == BZ_OK && merged.id == survivor.id)
        st = bz_reject(&err, "invalid_field",
                       "field merged_contact_id: a contact cannot be merged into itself");
    if (st == BZ_OK)
        st = still_live(&survivor, "contact_id", &err);
    if (st == BZ_OK)
        st = still_live(&merged, "merged_contact_id", &err);
    if (st == BZ_OK) {
        r.contact_id = survivor.id;
        r.merged_contact_id = merged.id;
        st = contact_command(rq, &r, survivor.key, &cmd, &env, event_id, &err);
    }
    if (st != BZ_OK) {
        ing_crm_refuse(rq, &err);
        return;
    }
    snprintf(extra, sizeof extra, ",\"contact_id\":%" PRId64 ",\"merged_contact_id\":%" PRId64,
             survivor.id, merged.id);
    ing_crm_publish(rq, &cmd, "event_id", extra);
}
