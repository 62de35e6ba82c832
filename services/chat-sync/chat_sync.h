/*
 * chat_sync.h - chat-sync's internal model, shared by its modules.
 *
 * How a batch of chat.sync commands is applied (handler.c drives it):
 *
 *   plan      walk the commands (no database): which contacts, groups and
 *             accounts they touch, every message occurrence in order, the
 *             messages receipts point at;
 *   load      lock and read the rows the batch will change: accounts
 *             (SELECT ... FOR UPDATE), contacts and groups (SELECT ... FOR
 *             UPDATE; the keys not found are created with INSERT ... ON
 *             CONFLICT DO NOTHING and then locked the same way), campaign
 *             logs for receipt routing;
 *   insert    one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING of
 *             the messages (first occurrence of each key only): what comes
 *             back is exactly what is new;
 *   simulate  replay the commands in order, in memory, on those rows: the
 *             same rules a one-command-at-a-time implementation would apply
 *             (name refresh, counters, receipt status order, session state,
 *             sync progress, group membership), recording the events each
 *             effect produces;
 *   write     multi-row UPDATEs of the rows the simulation changed, and one
 *             multi-row INSERT of the outbox rows, in command order.
 *
 * Because the simulation sees each command in order and the database state
 * is locked for the whole transaction, the result is independent of where
 * batch boundaries fall: a crash-and-replay run, or two instances splitting
 * the partitions, end in exactly the same rows and counters as a run that
 * applied one command at a time. A receipt only sees a message stored before
 * it (earlier in the batch or in an earlier transaction), as it would have
 * one at a time.
 *
 * A receipt whose message is not stored yet is parked (parked.c): in memory
 * on the row when the message comes later in the same batch, else in the
 * pending_receipts table. Reactions, edits and deletes (apply_action.c)
 * wait for their target the same way. When a message is stored, its parked receipts are
 * applied right after it, in forward status order, with the receipt's own
 * event ids, and the table's rows are deleted.
 *
 * Timestamps are kept as Unix milliseconds; 0 means "not set" (NULL).
 */
#ifndef CS_CHAT_SYNC_H
#define CS_CHAT_SYNC_H

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "arena.h"
#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/crm.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "blazz/v1/sync.pb-c.h"
#include "core/metrics.h"
#include "core/status.h"
#include "kafka/topics.h"
#include "pg/pg.h"

#define CS_UUID_LEN 37
/* message_usage's category of a delivered message no price was reported for */
#define CS_UNPRICED "unpriced"

/* Effects counted by the service's own metrics. */
typedef struct cs_metrics {
    bz_counter *messages_stored, *messages_duplicate, *receipts_applied, *receipts_unmatched,
        *campaign_receipts, *session_changes, *sync_batches, *group_updates, *events,
        *fenced_reports, *heartbeats, *sessions_assigned, *sessions_moved, *instances_dead,
        *sends_lost, *template_reports, *account_reports;
    bz_counter_family *delivered_by_category; /* label category (message_usage) */
} cs_metrics;

/* The handler context (one per consumer). */
typedef struct cs_ctx {
    cs_metrics m;
    int have_metrics;
    char crm_topic[BZ_TOPIC_NAME_MAX]; /* full name; records of it are CrmCommands */
    /* seed 002's initial sync as the history_sync settings give it (main.c),
     * sent with every CREATE and RESTART (cs_emit_session_command), enabled
     * there only where the account's switch is on too */
    Blazz__V1__HistorySyncLimits history;
} cs_ctx;

/* ---- rows ------------------------------------------------------------------ */

typedef struct cs_contact {
    int64_t id, workspace_id;
    char uuid[CS_UUID_LEN];
    char *phone; /* the key: E.164, else the BSUID or the canonical JID of a phone-less contact */
    char *name;  /* first_name */
    /* Meta's identifiers (0051, identity.c): the BSUID ("" when unknown), its
     * parent and the username */
    char *bsuid, *parent_bsuid, *username;
    char *lid; /* whatsapp-web.js LID ("<digits>@lid", 0056), "" when unknown */
    char *jid;
    char *picture;
    int unread;
    int64_t latest_chat_ms, last_message_ms;
    int64_t account_id; /* of the latest message: the inbox's session (migration 0031) */
    int dirty;
    /* inserted by this batch's get-or-create (load.c), for the record
     * created_for_rec and the ones after it */
    int created;
    size_t created_for_rec;
    /* profile changes (apply_contact.c): contacts.last_activity and the
     * metadata keys they own {profile_clock, business_profile}, and
     * identity_clock (apply_identity.c) (owned by the batch) */
    int64_t last_activity_ms;
    json_t *profile;
    int profile_dirty;
    /* opt-out (optout.c): when it opted out (0: it takes campaigns), how
     * and with what, and the time of the message that last changed it */
    int64_t opted_out_ms, opt_changed_ms;
    const char *opt_source, *opt_keyword;
    int opt_dirty;
} cs_contact;

typedef struct cs_group {
    int64_t id, workspace_id, account_id;
    char uuid[CS_UUID_LEN];
    char *jid, *name, *description, *owner_phone;
    json_t *participants; /* array of {phone, name, isAdmin, ...}; owned (decref at batch end) */
    int64_t created_ms;
    char *invite_code;
    json_t *settings; /* {announce, restrict}, NULL while unknown; owned */
    json_t *meta;     /* group_metadata {picture_url, left_at, clock}; owned */
    int64_t latest_chat_ms;
    int dirty;        /* the whole row */
    int latest_dirty; /* only latest_chat_ms and account_id moved (a new message) */
} cs_group;

/* The other side of a CRM command's conversation: one of the two is set. */
typedef struct cs_party {
    cs_contact *contact;
    cs_group *group;
} cs_party;

typedef struct cs_account {
    int64_t id, workspace_id;
    char uuid[CS_UUID_LEN];
    char *session_id;
    int status;                /* Blazz__V1__SessionState */
    int has_instance, instance_index;
    char *instance_url;
    int has_previous_instance, previous_instance_index;
    int migration_count;
    int64_t last_migration_ms, last_activity_ms, last_connected_ms, disconnected_ms;
    char *disconnect_reason; /* text value or NULL */
    char *disconnect_details;
    char *phone_number;
    char *qr_code;
    int64_t qr_expires_ms;
    int health_score, restore_count;
    json_t *metadata; /* object; owned */
    /* under the backbone's command (ARCHITECTURE.md §15): the assignment's
     * epoch (0: the gateway assigns itself), the serving gateway ("": none),
     * and where the credentials outlive an instance */
    int64_t epoch;
    char *gateway_id;
    char *remote_session_path;
    int64_t session_file_size;   /* -1: unknown */
    char *session_storage;       /* the shared store it is in ("": unknown) */
    int64_t storage_verified_ms; /* when an instance last found it there; 0: never */
    int is_primary;
    int logged_out; /* CS_LOGGED_OUT, in rows of CS_MANAGED_ACCOUNT_COLUMNS */
    int sync_enabled; /* whatsapp_accounts.sync_enabled (those rows, load.c) */
    int dirty;
} cs_account;

typedef struct cs_parked cs_parked;

typedef struct cs_chat {
    int64_t id, workspace_id, account_id, contact_id, group_id;
    char uuid[CS_UUID_LEN];
    char *wam_id;
    int outbound, group, provider; /* provider: Blazz__V1__Provider */
    int status;                    /* Blazz__V1__DeliveryStatus, 0 = none */
    int is_read;
    int64_t created_ms, sent_ms, delivered_ms, read_ms;
    char *body, *client_reference, *sender_phone, *sender_name, *quoted_wam_id;
    /* chats.metadata.referral and .interactive_reply as JSON text (NULL: none) */
    char *referral_json, *interactive_reply_json;
    int message_type, has_media;
    /* a message stored from an event: its media as message.created shows
     * it, stored_media_uuid only when chats.media_id was linked to it
     * (batch-owned; NULL: none) */
    Blazz__V1__MediaInfo *media;
    int64_t campaign_id, user_id;
    char *error_code, *error_message;
    int64_t inserted_ord; /* occurrence that stored it in this batch; -1: stored earlier */
    int agent;            /* a CRM send (its uuid is the client reference of its echo) */
    cs_parked *parked;    /* receipts and actions waiting for the occurrence that stores it */
    int dirty;
    /* reactions, edits, deletes (apply_action.c): the metadata keys they
     * own (NULL: none yet; owned by the batch), chats.deleted_at */
    json_t *actions;
    int64_t deleted_ms;
    int actions_dirty, body_edited;
    /* outbound, delivered for the first time in this batch: the pricing
     * category it counts under in message_usage (write.c), else NULL;
     * with Meta's pricing type and model ("" when not reported) */
    const char *priced_as, *pricing_type, *pricing_model;
} cs_chat;

typedef struct cs_campaign_log {
    int64_t id, campaign_id, contact_id, workspace_id;
    char uuid[CS_UUID_LEN];
    char *wam_id;
} cs_campaign_log;

/* ---- plan ------------------------------------------------------------------ */

/* One message of the batch: a live InboundMessage or one inside a history
 * sync chat, with the conversation facts resolved from either. */
typedef struct cs_occurrence {
    int64_t ord;  /* position in the batch's order of effects */
    size_t rec;   /* index of the command */
    int chat_index; /* -1: live message; else index in the history batch */
    const Blazz__V1__InboundMessage *m;
    int64_t workspace_id, account_id;
    int provider;
    int group;
    const char *contact_key, *contact_jid; /* private */
    const char *group_jid;                 /* group */
    int64_t created_ms;
    int first;    /* first occurrence of (account, wam_id) in the batch */
    cs_chat *chat; /* after insert: the row this occurrence stored, else NULL */
    cs_chat *agent; /* an echo of a CRM send: that send's row (never a new row) */
} cs_occurrence;

typedef struct cs_record {
    const rd_kafka_message_t *msg;
    const Blazz__V1__SyncCommand *cmd;
    int64_t ord;           /* ord of the command's own effect (receipts, status...) */
    size_t first_occ, nocc; /* its message occurrences */
} cs_record;

/* A receipt that came before its message: from pending_receipts (id > 0,
 * its record rebuilt from the stored command) or earlier in this batch. */
struct cs_parked {
    const cs_record *r;
    int64_t id; /* pending_receipts.id; 0 when parked in memory */
    cs_parked *next;
};

/* An outbox row to write. */
typedef struct cs_event {
    const char *topic; /* base name */
    char event_id[CS_UUID_LEN];
    char *key;
    uint8_t *payload; /* heap, freed with the batch */
    size_t len;
    const char *trace_id;
} cs_event;

/* First sighting of a contact / group in the batch: what get-or-create
 * inserts when the row does not exist yet. */
typedef struct cs_seed {
    int64_t workspace_id, account_id;
    int provider;
    const char *key; /* contact: phone, BSUID or JID (cs_person_key); group: group JID */
    const char *name;
    const char *jid; /* contact's JID, may be "" */
    /* contact: Meta's identifiers the event carried, each may be "" */
    const char *bsuid, *parent_bsuid, *username;
    size_t rec;    /* the first record of the batch that needs it to exist */
    int find_only; /* contact: used if it exists, never created (see
                      cs_contact_update_finds_only) */
} cs_seed;

/* A (account, wam_id) pair some receipt points at. */
typedef struct cs_target {
    int64_t account_id;
    const char *wam_id;
} cs_target;

typedef struct cs_batch {
    cs_ctx *ctx;
    cs_arena arena;
    cs_record *recs;
    size_t nrecs;
    cs_occurrence *occ;
    size_t nocc;
    int64_t next_ord;

    /* plan */
    cs_map seen; /* dedupe of planned keys */
    cs_vec contact_seeds, group_seeds, account_ids, targets, campaign_refs; /* refs: uuid text */

    /* rows, by key and by id; the vectors own iteration order */
    cs_map contacts_by_key, contacts_by_id, groups_by_key, groups_by_id, accounts, chats,
        logs_by_uuid, logs_by_wam, agent_rows, /* agent_rows: CRM sends by chats.uuid */
        opt_out_config; /* workspaces.metadata.opt_out by workspace (optout.c) */
    cs_vec contacts, groups, account_list, chat_list;

    /* parked receipts: records to park in pending_receipts, records loaded
     * from it (their decoded commands are owned here), ids applied */
    cs_vec to_park, unparked_recs, unparked_cmds, unparked_ids;

    cs_vec send_proofs; /* Meta echoes and receipts naming a client reference (send_proofs.c) */
    cs_vec meta_pairs;  /* seeds whose phone and BSUID name two contacts (identity.c) */

    cs_vec owned_json; /* json_t the batch's rows hold (decref at the end) */

    cs_event *events;
    size_t nevents, capevents;
} cs_batch;

/* ---- batch.c: life cycle and keys ------------------------------------------- */

/* Prepare b for the n records (decoded SyncCommands). */
bz_status cs_batch_init(cs_batch *b, cs_ctx *ctx, const rd_kafka_message_t *const *msgs,
                        const Blazz__V1__SyncCommand *const *cmds, size_t n, bz_error *err);
void cs_batch_free(cs_batch *b);

/* What applies work (its own type, named by the caller) in a batch of its
 * own: a merge, an identity change, commands that come alone. */
typedef bz_status (*cs_apply_alone_fn)(cs_batch *b, PGconn *conn, const void *work,
                                       bz_error *err);

/* Apply work with apply in a batch of its own, whose one record is
 * (msg, cmd) (no record when cmd is NULL), then write what it emitted to
 * the outbox, in the caller's transaction on conn. Changes apply writes
 * itself; the batch's own pending rows are not written. */
bz_status cs_apply_alone(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *msg,
                         const Blazz__V1__SyncCommand *cmd, cs_apply_alone_fn apply,
                         const void *work, bz_error *err);

/* What applies one command of a batch of its own (business notices,
 * heartbeats: commands that come alone, not from a consumed batch). */
typedef bz_status (*cs_apply_one_fn)(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                                     bz_error *err);

/* Apply each of cmds with apply in one batch of their own (cs_apply_alone,
 * no record). */
bz_status cs_apply_own_batch(cs_ctx *ctx, PGconn *conn, const Blazz__V1__SyncCommand *const *cmds,
                             size_t n, cs_apply_one_fn apply, bz_error *err);

/* Map keys, allocated in the batch arena (NULL when out of memory). */
char *cs_contact_key(cs_batch *b, int64_t workspace_id, const char *key);
char *cs_group_key(cs_batch *b, int64_t workspace_id, const char *jid);
char *cs_chat_key(cs_batch *b, int64_t account_id, const char *wam_id);
char *cs_id_key(cs_batch *b, char kind, int64_t id);

cs_contact *cs_find_contact(cs_batch *b, int64_t workspace_id, const char *key);
cs_group *cs_find_group(cs_batch *b, int64_t workspace_id, const char *jid);
cs_chat *cs_find_chat(cs_batch *b, int64_t account_id, const char *wam_id);
cs_account *cs_find_account(cs_batch *b, int64_t id);
cs_contact *cs_find_contact_id(cs_batch *b, int64_t id);
cs_group *cs_find_group_id(cs_batch *b, int64_t id);

/* Register loaded rows in the maps. 0, or -1 when out of memory. */
int cs_add_contact(cs_batch *b, cs_contact *c);
int cs_add_group(cs_batch *b, cs_group *g);
int cs_add_chat(cs_batch *b, cs_chat *c);
/* Register a CRM send's row by its uuid (and by its message id once it has
 * one); 0, or -1 when out of memory. */
int cs_add_agent_row(cs_batch *b, cs_chat *c);
/* Index an agent row under (account, wam_id) after its echo named them. */
int cs_index_agent_row(cs_batch *b, cs_chat *c);
/* The CRM send whose uuid is ref, in workspace_id; NULL when none. */
cs_chat *cs_find_agent_row(cs_batch *b, int64_t workspace_id, const char *ref);

/* ---- command.c: decoding and the enum <-> text vocabulary ------------------- */

/* Unpack and validate one chat.sync record (BZ_ERR_INVALID via bz_reject).
 * On success *out is a SyncCommand to free with cs_command_free. */
bz_status cs_command_decode(const void *data, size_t len, Blazz__V1__SyncCommand **out,
                            bz_error *err);
void cs_command_free(Blazz__V1__SyncCommand *cmd);

/* The contact key of a message or synced chat: its phone, else its BSUID,
 * else its JID; "" when it names none. */
const char *cs_person_key(const char *phone, const char *bsuid, const char *jid);
/* jid when it is a LID ("<digits>@lid", canonical after ingest), else "". */
const char *cs_lid_of(const char *jid);

const char *cs_provider_text(int provider);      /* "webjs" | "meta" */
int cs_provider_from_text(const char *text);
const char *cs_delivery_text(int status);        /* "sent", ...; NULL for none */
int cs_delivery_from_text(const char *text);
const char *cs_session_text(int state);          /* "connected", ... */
int cs_session_from_text(const char *text);
const char *cs_disconnect_text(int reason);      /* "timeout", ...; unspecified -> "unknown" */
int cs_disconnect_from_text(const char *text);
const char *cs_message_type_text(int type);      /* "text", "image", ... */
int cs_message_type_from_text(const char *text);

/* ---- plan.c ------------------------------------------------------------------ */

/* Collect seeds, occurrences and receipt targets from the commands. */
bz_status cs_plan(cs_batch *b, bz_error *err);

/* ---- load.c ------------------------------------------------------------------ */

bz_status cs_load_accounts(cs_batch *b, PGconn *conn, bz_error *err);
bz_status cs_ensure_contacts(cs_batch *b, PGconn *conn, bz_error *err);
/* identity.c: after cs_ensure_contacts, each seed's contact found by its
 * phone or else its BSUID under the seed's key, and the row completed with
 * the identifiers it lacked (decision 0010). */
bz_status cs_complete_identities(cs_batch *b, PGconn *conn, bz_error *err);
/* Lock the live contacts the seeds name by key or BSUID, into the batch;
 * create none. */
bz_status cs_lock_contacts(cs_batch *b, PGconn *conn, const cs_seed *const *seeds, size_t n,
                           bz_error *err);
/* Write rows[0..n)'s identifiers (phone, BSUID, parent, username, and
 * metadata.jid when set) under the lock load.c took. */
bz_status cs_write_identities(PGconn *conn, cs_contact *const *rows, size_t n, bz_error *err);
/* apply_identity.c: a customer's identity change (Meta's
 * user_changed_number, user_changed_user_id) applied to its contact, alone,
 * in the consumer's transaction; msg is its record. */
bz_status cs_apply_identity_change(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *msg,
                                   const Blazz__V1__SyncCommand *cmd, bz_error *err);
/* apply_merge.c: a gateway's mapping of a LID to a phone (a contact update
 * carrying both); when they name two contacts, the phone's survives and
 * the other is merged into it, alone, in the consumer's transaction. */
int cs_is_lid_mapping(const Blazz__V1__SyncCommand *cmd);
bz_status cs_apply_lid_mapping(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *msg,
                               const Blazz__V1__SyncCommand *cmd, bz_error *err);
/* Merge m into s, both locked in b (a batch of the merge's own): m's rows
 * move to s, s takes what it lacks, m is retired and one contact.merged
 * (why, completed here, on r's envelope) announces it. */
bz_status cs_merge_contacts(cs_batch *b, PGconn *conn, cs_contact *s, cs_contact *m,
                            const cs_record *r, Blazz__V1__ContactMerge *why, bz_error *err);
/* Meta's word: each of b's meta_pairs (a message naming a phone and a
 * BSUID that two contacts held) merges the BSUID's contact into the
 * phone's, after b's records are written, in the same transaction. */
bz_status cs_merge_meta_pairs(cs_batch *b, PGconn *conn, bz_error *err);
/* Make key (a phone, a BSUID or a LID) find c in the batch; -1 when out of memory. */
int cs_alias_contact(cs_batch *b, cs_contact *c, const char *key);
bz_status cs_ensure_groups(cs_batch *b, PGconn *conn, bz_error *err);
/* Chats the receipts point at (those not stored by this batch), plus the
 * contacts and groups of those chats. */
bz_status cs_load_receipt_targets(cs_batch *b, PGconn *conn, bz_error *err);
/* Campaign logs the batch may route to: from_chats = 0 reads those named by
 * the commands (client references, receipt message ids); 1 those named by
 * the client references of chats loaded for receipts and by the parked
 * receipts the batch applies. */
bz_status cs_load_campaign_logs(cs_batch *b, PGconn *conn, int from_chats, bz_error *err);
/* The campaign log a receipt or message refers to (client reference first,
 * then the message id), or NULL. */
cs_campaign_log *cs_find_campaign_log(cs_batch *b, int64_t workspace_id,
                                      const char *client_reference, const char *wam_id);
/* The CRM sends named by the client references of the batch's echoes and
 * receipts, locked: their echo and receipts update them instead of storing
 * another row. */
bz_status cs_load_agent_rows(cs_batch *b, PGconn *conn, bz_error *err);
/* Lock the live contacts of workspace_id among ids[0..n) into the batch
 * (cs_find_contact_id finds them), in id order; an id that names no live
 * contact of the workspace is no error: it is not loaded. */
bz_status cs_lock_live_contacts(cs_batch *b, PGconn *conn, int64_t workspace_id,
                                const int64_t *ids, size_t n, bz_error *err);
/* Lock and load one conversation party of a CRM command into the batch: a
 * contact (by id, else by key = E.164 phone or JID) or a group (by id, else
 * by JID), of workspace_id and not deleted. Exactly one of out's contact and
 * group is set on BZ_OK; an unknown party is BZ_ERR_INVALID (reason
 * unknown_contact / unknown_group, "field <name>: ..."). */
bz_status cs_lock_party(cs_batch *b, PGconn *conn, int64_t workspace_id, int64_t contact_id,
                        const char *contact_key, int64_t group_id, const char *group_jid,
                        cs_party *out, bz_error *err);
/* The party as a gateway addresses it, into m's to_phone, to_jid and
 * to_bsuid: a group by JID; a contact by E.164 phone and JID, and its BSUID
 * when known; a LID-only contact by its key, its JID; a BSUID-only contact
 * by its BSUID alone (decision 0010). */
void cs_party_address(const cs_party *p, Blazz__V1__SendMessage *m);

/* ---- apply_message.c ----------------------------------------------------------- */

bz_status cs_insert_messages(cs_batch *b, PGconn *conn, bz_error *err);
/* media_jobs.c: the media_fetch_jobs rows of the inbound Meta messages with
 * media this batch stored (after cs_insert_messages). */
bz_status cs_insert_media_fetch_jobs(cs_batch *b, PGconn *conn, bz_error *err);
/* chats.metadata "media" of a MediaInfo: its set fields (new reference). */
json_t *cs_media_json(const Blazz__V1__MediaInfo *media);
/* Its inverse, for a loaded row's events: the MediaInfo of a stored
 * "media" object in b's arena, NULL for none (not an object) or when
 * memory ran out (*oom then set). stored_media_uuid as cs_event_media. */
Blazz__V1__MediaInfo *cs_media_from_json(cs_batch *b, json_t *media, int linked, int *oom);

/* doc, when it is a JSON object, as its compact text in the batch's arena
 * (a message's referral or interactive reply, for its events); NULL when it
 * is none, or when memory ran out (*oom then set). */
char *cs_object_text(cs_batch *b, const json_t *doc, int *oom);
/* A message's media as its events show it: a copy (b's arena; NULL for
 * none or out of memory) whose stored_media_uuid stays only when
 * chats.media_id was linked to it (another workspace's or an unknown uuid
 * is not offered to the CRM). */
Blazz__V1__MediaInfo *cs_event_media(cs_batch *b, const Blazz__V1__MediaInfo *media, int linked);
/* Apply one message occurrence to the in-memory rows. emit: record a
 * MESSAGE_CREATED event when the occurrence stored a row. */
bz_status cs_simulate_message(cs_batch *b, cs_occurrence *o, int emit, bz_error *err);

/* ---- update_clock.c, apply_contact.c ---------------------------------------- */

/* 1 when an update at ts with event_id is covered by holder[key] = {at,
 * ids}: applied already, or older than the newest applied. */
int cs_clock_has_seen(json_t *holder, const char *key, int64_t ts, const char *event_id);
/* Record it there; 0, or -1 when out of memory. */
int cs_clock_record(json_t *holder, const char *key, int64_t ts, const char *event_id);

/* Keep the profile state of a loaded contact (metadata text of its
 * profile keys, may be NULL); 0, or -1 when out of memory. */
int cs_contact_adopt_profile(cs_batch *b, cs_contact *c, const char *profile_json);
/* The CRM named the contact at at_ms (metadata.crm_named_at): WhatsApp's
 * push names no longer rename it. 0, or -1 when out of memory. */
int cs_contact_keep_crm_name(cs_contact *c, int64_t at_ms);
int cs_contact_named_by_crm(const cs_contact *c);
bz_status cs_simulate_contact_update(cs_batch *b, const cs_record *r, bz_error *err);
/* Whether cmd, a contact update, is an address-book removal alone: about
 * a contact the backbone may never have seen, which it does not create. */
int cs_contact_update_finds_only(const Blazz__V1__SyncCommand *cmd);
/* Write the contacts whose profile changed (picture, last_activity, metadata). */
bz_status cs_write_contact_profiles(cs_batch *b, PGconn *conn, bz_error *err);

/* ---- optout.c: opting out of campaigns and back in ---------------------------- */

/* The opt-out keywords of the workspaces whose new messages could be one
 * (read only when the batch stored such a message). */
bz_status cs_load_opt_out_keywords(cs_batch *b, PGconn *conn, bz_error *err);
/* The opt-out or opt-in that the new live message of occurrence o, from
 * contact c, is (when it is one): applied to c unless c keeps a later one,
 * with CONTACT_OPTED_OUT / CONTACT_OPTED_IN when the state changed. */
bz_status cs_apply_opt_out(cs_batch *b, const cs_occurrence *o, cs_contact *c, bz_error *err);
/* The marketing preference of contact update r (Meta's user_preferences)
 * applied to its contact c as an opt-out ("stop") or opt-in ("resume"). */
bz_status cs_apply_marketing_preference(cs_batch *b, const cs_record *r, cs_contact *c,
                                        bz_error *err);
/* The CRM opted contact c out (out 1) or back in at at_ms through the API
 * (crm_contact.c): source 'api', no keyword, as a message would. */
bz_status cs_apply_api_opt_out(cs_batch *b, const cs_record *r, cs_contact *c, int out,
                               int64_t at_ms, bz_error *err);
/* Write the contacts whose opt-out state or time moved. */
bz_status cs_write_contact_opt_outs(cs_batch *b, PGconn *conn, bz_error *err);

/* ---- apply_action.c: reactions, edits, deletes ------------------------------ */

/* "reaction", "edit" or "revoke" (pending_receipts.status of a parked one). */
const char *cs_action_text(int message_type);
/* When an action record happened (its message's time, else its envelope's). */
int64_t cs_action_time(const cs_record *r);
/* Keep the action state of a loaded row (metadata keys apply_action.c owns);
 * 0, or -1 when out of memory. */
int cs_chat_adopt_action_state(cs_batch *b, cs_chat *c, json_t *metadata);
/* Apply an action record to its target now, or park it until the target is
 * stored. */
bz_status cs_simulate_action(cs_batch *b, const cs_record *r, bz_error *err);
/* Apply an action record to its target c (also for parked ones). */
bz_status cs_apply_action(cs_batch *b, const cs_record *r, cs_chat *c, bz_error *err);
/* Write the rows actions changed (metadata keys, deleted_at). */
bz_status cs_write_actions(cs_batch *b, PGconn *conn, bz_error *err);

/* ---- apply_receipt.c / apply_session.c / apply_history.c / apply_group.c ------ */

bz_status cs_simulate_receipt(cs_batch *b, const cs_record *r, bz_error *err);
/* Apply the receipts parked for a message the batch just stored, in forward
 * status order; clears c->parked. */
bz_status cs_apply_parked_receipts(cs_batch *b, cs_chat *c, bz_error *err);
/* The account a session-level command is about, checked against its
 * envelope; NULL with err set (INVALID: unknown account, other workspace). */
cs_account *cs_command_account(cs_batch *b, const cs_record *r, bz_error *err);
bz_status cs_simulate_session(cs_batch *b, const cs_record *r, bz_error *err);
bz_status cs_simulate_history(cs_batch *b, const cs_record *r, bz_error *err);
bz_status cs_simulate_group_update(cs_batch *b, const cs_record *r, bz_error *err);
/* Refresh a group's name / participants from what a message or synced chat says. */
void cs_group_refresh(cs_group *g, const char *name, const char *description,
                      const char *owner_phone, Blazz__V1__GroupParticipant *const *participants,
                      size_t nparticipants);
/* A live message's group name, kept only while the gateway has reported no
 * change of the group: after one, group updates own the name (apply_group.c). */
void cs_group_name_from_message(cs_group *g, const char *name);
/* Replace the name when name is non-empty and different (contacts), unless
 * the gateway reported the contact's profile or the CRM named it
 * (apply_contact.c). */
void cs_contact_refresh_name(cs_contact *c, cs_batch *b, const char *name);
/* A new message of the conversation, created at created_ms on account_id
 * (0: none chosen): its latest message moves forward, never back, and the
 * inbox files the conversation under that account (db/read_contract.sql). */
void cs_conversation_advance(cs_party to, int64_t created_ms, int64_t account_id);


/* ---- sessions under command (ARCHITECTURE.md §15) ------------------------------ */

/* LISTEN/NOTIFY channel that wakes the assignment sweep (assign.h). */
#define CS_SESSIONS_CHANNEL "blazz_sessions"

/* The columns cs_managed_account_parse reads, of whatsapp_accounts a. */
/* A session logged out by the CRM stays assigned where it was, parked:
 * its instance let it go, and nothing restarts or moves it until the CRM
 * restarts it (SQL over whatsapp_accounts a). */
#define CS_LOGGED_OUT                                                                             \
    "(a.status = 'disconnected' AND a.disconnect_reason IS NOT DISTINCT FROM 'user_initiated')"

/* A session that takes a place on the instance it is assigned to: neither
 * waiting for one nor logged out. */
#define CS_HOLDS_PLACE "(a.status <> 'pending_assignment' AND NOT " CS_LOGGED_OUT ")"

#define CS_MANAGED_ACCOUNT_COLUMNS                                                                \
    "a.id, a.workspace_id, a.uuid::text, a.session_id, a.status, a.assigned_instance_index, "     \
    "coalesce(a.assigned_instance_url, ''), a.previous_instance_index, "                          \
    "a.instance_migration_count, a.assignment_epoch, coalesce(a.gateway_id, ''), "                \
    "coalesce(a.phone_number, ''), a.health_score, a.is_primary, " CS_LOGGED_OUT ", "           \
    "coalesce(a.session_storage, ''), a.sync_enabled"
/* How many: a column selected after them is this one. */
#define CS_MANAGED_ACCOUNT_NCOLUMNS 17

/* One row of CS_MANAGED_ACCOUNT_COLUMNS, in b's arena; NULL when out of
 * memory. */
cs_account *cs_managed_account_parse(cs_batch *b, const PGresult *res, int row);
/* Wake the sweep when this transaction commits (room may have appeared, a
 * session waits). */
bz_status cs_sessions_notify(PGconn *conn, bz_error *err);
/* Apply heartbeat records (apply_heartbeat.c) in the consumer's transaction. */
bz_status cs_apply_heartbeats(cs_ctx *ctx, PGconn *conn, const Blazz__V1__SyncCommand *const *cmds,
                              size_t n, bz_error *err);
/* Apply Meta's notices about WhatsApp Business Accounts (apply_business.c)
 * in the consumer's transaction. */
bz_status cs_apply_business_notices(cs_ctx *ctx, PGconn *conn,
                                    const Blazz__V1__SyncCommand *const *cmds, size_t n,
                                    bz_error *err);
/* Apply Meta's calls (apply_call.c) in the consumer's transaction, after
 * the batch's other records, so a call's customer is found as their
 * messages of the batch left them. */
bz_status cs_apply_calls(cs_ctx *ctx, PGconn *conn, const Blazz__V1__SyncCommand *const *cmds,
                         size_t n, bz_error *err);
/* Apply one account notice (apply_standing.c), reported by Meta at
 * reported_at_ms, adding an ACCOUNT_UPDATED to b per account it moved. */
bz_status cs_apply_account_notice(cs_batch *b, PGconn *conn, const Blazz__V1__SyncCommand *cmd,
                                  int64_t reported_at_ms, bz_error *err);
/* The CRM's session requests (crm_session.c): create, restart, log out, set
 * primary; INVALID with a reason for a request the rules refuse. */
bz_status cs_crm_session(cs_batch *b, PGconn *conn, const Blazz__V1__CrmCommand *cmd,
                         bz_error *err);
/* The CRM's contact requests (crm_contact.c): create one, change its name
 * or opt-out; msg is the command's record (its key keys the events). */
bz_status cs_crm_contact(cs_batch *b, PGconn *conn, const rd_kafka_message_t *msg,
                         const Blazz__V1__CrmCommand *cmd, bz_error *err);
/* crm_merge.c: whether cmd is the CRM's merge of two contacts, and the
 * merge applied alone, in a batch of its own, in conn's transaction; msg
 * is its record. */
int cs_is_crm_merge(const Blazz__V1__CrmCommand *cmd);
bz_status cs_crm_merge(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *msg,
                       const Blazz__V1__CrmCommand *cmd, bz_error *err);

/* ---- parked.c ------------------------------------------------------------------ */

/* Lock and read the receipts parked for the messages this batch inserted,
 * with one query, and hang them on their rows. */
bz_status cs_load_parked_receipts(cs_batch *b, PGconn *conn, bz_error *err);
/* Park the receipts that found no message (ON CONFLICT DO NOTHING) and
 * delete the parked rows the batch applied. */
bz_status cs_write_parked_receipts(cs_batch *b, PGconn *conn, bz_error *err);

/* ---- send_proofs.c ------------------------------------------------------------- */

/* Note r when it proves a Meta send reached Meta (an echo or a status
 * naming a client reference and a wamid) or undoes that message's proof
 * (its failed status); before it is matched to any row. */
bz_status cs_note_send_proof(cs_batch *b, const cs_record *r, bz_error *err);
/* Write the batch's proofs to meta_message_proofs, one per reference and
 * wamid, a failure of that wamid winning whenever it came. */
bz_status cs_write_send_proofs(cs_batch *b, PGconn *conn, bz_error *err);

/* ---- write.c ------------------------------------------------------------------- */

/* Write every row the simulation changed. */
bz_status cs_write_changes(cs_batch *b, PGconn *conn, bz_error *err);

/* ---- events.c ------------------------------------------------------------------ */

/* Deterministic event id: a version-5-style UUID from SHA-1 over the input
 * event id, a kind and a sub-index, so a replayed command emits the same ids. */
void cs_event_id(const char *input_event_id, const char *kind, int sub, char out[CS_UUID_LEN]);

/* A ChatEvent of event_kind about chat (with its contact or group as the
 * batch holds them), caused by the command with envelope in; the id is
 * cs_event_id(in->event_id, tag, sub). key NULL: "<workspace>:<party>". */
bz_status cs_emit_chat_event(cs_batch *b, const Blazz__V1__Envelope *in, const char *tag, int sub,
                             int event_kind, const cs_chat *chat,
                             Blazz__V1__StatusChange *change, const char *key, bz_error *err);
/* CHAT_READ for a contact or a group (one of them NULL). */
bz_status cs_emit_chat_read(cs_batch *b, const Blazz__V1__Envelope *in, const cs_contact *contact,
                            const cs_group *group, Blazz__V1__ChatRead *read, const char *key,
                            bz_error *err);
/* Any other record for the outbox (topic is the base name). */
bz_status cs_emit_record(cs_batch *b, const char *topic, const char *event_id, char *key,
                         const ProtobufCMessage *msg, const char *trace_id, bz_error *err);
/* STATUS_CHANGED for a CRM send moved to sent by its echo. */
bz_status cs_emit_echo_status(cs_batch *b, const cs_record *r, const cs_chat *chat,
                              int previous_status, bz_error *err);

bz_status cs_emit_message_created(cs_batch *b, const cs_record *r, const char *kind, int sub,
                                  const cs_chat *chat, const char *conversation, bz_error *err);
bz_status cs_emit_status_changed(cs_batch *b, const cs_record *r, const cs_chat *chat,
                                 int previous_status, bz_error *err);
bz_status cs_emit_sync_progress(cs_batch *b, const cs_record *r, const cs_account *a,
                                bz_error *err);
/* CONTACT_UPDATED of a contact update record about c (as it stands after it). */
bz_status cs_emit_contact_updated(cs_batch *b, const cs_record *r, const cs_contact *c,
                                  Blazz__V1__ContactChange *change, bz_error *err);
/* A merge (webhook contact.merged: a CONTACT_UPDATED carrying it): the
 * survivor as it stands after the merge, what was merged into it. */
bz_status cs_emit_contact_merged(cs_batch *b, const cs_record *r, const cs_contact *survivor,
                                 Blazz__V1__ContactMerge *merge, bz_error *err);
/* CONTACT_OPTED_OUT (out) or CONTACT_OPTED_IN of the message record r
 * about c (as it stands after it). */
bz_status cs_emit_opt_out(cs_batch *b, const cs_record *r, const cs_contact *c, int out,
                          Blazz__V1__OptOutChange *change, bz_error *err);
/* GROUP_UPDATED of a group update record about g (as it stands after it). */
bz_status cs_emit_group_updated(cs_batch *b, const cs_record *r, const cs_group *g,
                                Blazz__V1__GroupChange *change, bz_error *err);
/* MESSAGE_REACTION / MESSAGE_EDITED / MESSAGE_DELETED of an action record
 * about its target chat (as it stands after it). */
bz_status cs_emit_message_action(cs_batch *b, const cs_record *r, const cs_chat *chat,
                                 int event_kind, Blazz__V1__MessageAction *action, bz_error *err);
/* A command to the gateway instance that serves (or must let go of) a
 * session. */
typedef struct cs_session_order {
    int action; /* Blazz__V1__SessionAction */
    int instance_index;
    const char *instance_url;
    int64_t epoch;
    const char *reason, *requested_by;
} cs_session_order;

/* SessionCommand order about account a on wa.session.commands, caused by
 * the input with envelope in; id cs_event_id(in->event_id, tag, sub). */
bz_status cs_emit_session_command(cs_batch *b, const Blazz__V1__Envelope *in, const char *tag,
                                  int sub, const cs_account *a, const cs_session_order *order,
                                  bz_error *err);
/* The LEASE answer to a heartbeat of the instance (boot boot_id) of
 * gateway_id, sent at beat_sent_at_ms, caused by the heartbeat with
 * envelope in: on the gateway's own commands topic. */
bz_status cs_emit_instance_lease(cs_batch *b, const Blazz__V1__Envelope *in,
                                 const char *gateway_id, const Blazz__V1__InstanceRef *instance,
                                 const char *boot_id, int64_t beat_sent_at_ms, bz_error *err);
/* TEMPLATE_UPDATED with the template t as it stands, caused by the notice
 * with envelope in; key "<workspace>:waba:<waba_id>". */
bz_status cs_emit_template_updated(cs_batch *b, const Blazz__V1__Envelope *in,
                                   Blazz__V1__TemplateSnapshot *t, bz_error *err);
/* CALL_UPDATED with the call as it stands and its customer c (NULL when
 * none), caused by the call command with envelope in (key: its
 * conversation's, "<workspace>:<conversation>"). */
bz_status cs_emit_call_updated(cs_batch *b, const Blazz__V1__SyncCommand *in,
                               Blazz__V1__CallSnapshot *call, const cs_contact *c, bz_error *err);
/* ACCOUNT_UPDATED with account a's standing as it stands, caused by the
 * notice with envelope in (sub: which of the accounts it moved); key
 * "<workspace>:waba:<waba_id>", the key of the WABA's template events. */
bz_status cs_emit_account_updated(cs_batch *b, const Blazz__V1__Envelope *in, int sub,
                                  Blazz__V1__AccountStanding *a, bz_error *err);
/* SessionEvent event_kind about account a as it stands, caused by the input
 * with envelope in. */
bz_status cs_emit_account_event(cs_batch *b, const Blazz__V1__Envelope *in, const char *tag,
                                int sub, int event_kind, const cs_account *a,
                                int previous_status, const char *details, bz_error *err);
bz_status cs_emit_session_event(cs_batch *b, const cs_record *r, const char *kind,
                                int event_kind, const cs_account *a, int previous_status,
                                bz_error *err);
/* The receipt ack of a campaign message, caused by the record r, for its
 * log on campaign.receipts (r's own receipt, or the SENT an echo stands
 * for). */
bz_status cs_emit_campaign_receipt(cs_batch *b, const cs_record *r,
                                   const cs_campaign_log *log, const cs_chat *chat,
                                   const Blazz__V1__MessageAck *ack, bz_error *err);
/* Insert the recorded events into the outbox, in order, with one statement. */
bz_status cs_write_outbox(cs_batch *b, PGconn *conn, bz_error *err);

/* ---- crm.c, crm_send.c, crm_read.c: commands of the CRM (crm.commands) --------- */

/* Unpack and check one crm.commands record (BZ_ERR_INVALID via bz_reject). */
bz_status cs_crm_decode(const void *data, size_t len, Blazz__V1__CrmCommand **out, bz_error *err);
void cs_crm_free(Blazz__V1__CrmCommand *cmd);

/* A CRM command as a sync record (r, whose cmd is as_sync: the command's
 * envelope), so its events are keyed and derived as a sync record's would
 * be; initialized in place by cs_crm_record_init and not copied. */
typedef struct cs_crm_record {
    Blazz__V1__SyncCommand as_sync;
    cs_record r;
} cs_crm_record;
void cs_crm_record_init(cs_crm_record *cr, const rd_kafka_message_t *msg,
                        const Blazz__V1__CrmCommand *cmd);

/* Apply cmds[0..n) in order in conn's open transaction. */
bz_status cs_crm_apply(cs_ctx *ctx, PGconn *conn, const rd_kafka_message_t *const *msgs,
                       const Blazz__V1__CrmCommand *const *cmds, size_t n, bz_error *err);

/* Consecutive sends cmds[0..n) together, in order; keys[i] is cmds[i]'s
 * Kafka key (events use it too). */
bz_status cs_crm_send_run(cs_batch *b, PGconn *conn, const Blazz__V1__CrmCommand *const *cmds,
                          char *const *keys, size_t n, bz_error *err);
/* One mark-read; key as above. */
bz_status cs_crm_mark_read(cs_batch *b, PGconn *conn, const Blazz__V1__CrmCommand *cmd,
                           const char *key, bz_error *err);

/* ---- handler.c ----------------------------------------------------------------- */

#include "kafka/eo_consumer.h"

extern const bz_eo_handler cs_handler;
/* Register chat-sync's metrics on reg (may be NULL: no metrics). */
bz_status cs_ctx_init(cs_ctx *ctx, bz_metrics *reg, bz_error *err);

#endif
