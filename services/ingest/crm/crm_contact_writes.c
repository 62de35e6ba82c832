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
 * BSUID, as for the messages that would create it.
 *
 * A change names the contact by its uuid or id, as the reads do; its key
 * is read with it so the command shares the conversation's order.
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

/* Contacts' keys (contacts.phone) are E.164, BSUIDs or JIDs: well within. */
#define CONTACT_KEY_MAX 320

/* Publish r (its fields set) as a contact command of the conversation key;
 * the 202 names extra_json's members after the event id. */
static void publish_contact(ing_crm_request *rq, Blazz__V1__ContactRequest *r, const char *key,
                            const char *extra_json)
{
    char event_id[BZ_UUID_STR_SIZE];
    bz_error err;
    if (bz_uuid_v4(event_id, &err) != BZ_OK) {
        ing_crm_refuse(rq, &err);
        return;
    }
    Blazz__V1__CrmCommand cmd = BLAZZ__V1__CRM_COMMAND__INIT;
    cmd.command_case = BLAZZ__V1__CRM_COMMAND__COMMAND_CONTACT;
    cmd.contact = r;
    Blazz__V1__Envelope env;
    ing_crm_address(rq, &cmd, &env, event_id, key);
    ing_crm_publish(rq, &cmd, "event_id", extra_json);
}

/* The identifiers of a create as the 202's members (JSON-escaped). */
static char *identifiers_json(const Blazz__V1__ContactRequest *r)
{
    json_t *ids = json_pack("{s:s?,s:s?}", "phone", *r->phone ? r->phone : NULL, "bsuid",
                            *r->bsuid ? r->bsuid : NULL);
    char *text = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
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
    bz_error err;
    json_t *existing = NULL;
    bz_status st = ing_crm_json_contact(body, len, 1, ing_crm_request_config(rq)->default_cc,
                                        &r, &err);
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
        publish_contact(rq, r, *r->phone ? r->phone : r->bsuid, extra);
    free(extra);
    if (r)
        blazz__v1__contact_request__free_unpacked(r, NULL);
}

void ing_crm_change_contact(ing_crm_request *rq, const char *body, size_t len)
{
    Blazz__V1__ContactRequest *r = NULL;
    bz_error err;
    char key[CONTACT_KEY_MAX], extra[48];
    bz_status st = ing_crm_json_contact(body, len, 0, ing_crm_request_config(rq)->default_cc,
                                        &r, &err);
    if (st == BZ_OK)
        st = ing_crm_contact_of_path(rq, &r->contact_id, key, sizeof key, &err);
    if (st != BZ_OK) {
        ing_crm_refuse(rq, &err);
    } else {
        snprintf(extra, sizeof extra, ",\"contact_id\":%" PRId64, r->contact_id);
        publish_contact(rq, r, key, extra);
    }
    if (r)
        blazz__v1__contact_request__free_unpacked(r, NULL);
}
