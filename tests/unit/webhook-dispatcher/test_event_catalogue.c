/*
 * test_event_catalogue.c - docs/EVENTS.md, the CRM team's catalogue of
 * webhook events, is complete and true.
 *
 * Every kind of every event the dispatcher consumes (chat.events,
 * session.events, campaign.events; the kinds are walked from the protobuf
 * enum descriptors, so a kind added to a contract without a sample here
 * fails) gets one realistic sample, rendered by the dispatcher's own
 * payload.c. Then:
 *  - every webhook type a sample renders to has a section "### `type`" in
 *    the catalogue, and every section names a type the dispatcher renders;
 *  - every ```json example in a section is, as JSON, exactly the body one
 *    of that type's samples renders to (a failure prints the rendered body,
 *    so a change of the contract shows what the catalogue must say).
 The catalogue is read from docs/EVENTS.md under the working directory (the repository
 * root in make test) or BLAZZ_EVENT_CATALOGUE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "payload.h"

#define SAMPLES_MAX 64
#define EVENT_ID "3f1c9a52-6a1e-4c0b-9d57-8e2b7c4a1f60"
#define AT_MS 1700000000123LL

typedef struct sample {
    char type[32];
    char *body; /* heap */
} sample;

typedef struct samples {
    sample items[SAMPLES_MAX];
    size_t n;
} samples;

static Blazz__V1__Envelope envelope(void)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = EVENT_ID;
    env.occurred_at_ms = AT_MS;
    env.produced_at_ms = AT_MS + 7;
    env.workspace_id = 12;
    env.whatsapp_account_id = 3;
    env.session_id = "webjs-ws12-1";
    env.provider = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    return env;
}

static void add(samples *s, wh_source source, const uint8_t *buf, size_t len, int kind)
{
    wh_event ev;
    bz_error err;
    if (wh_event_from_record(source, buf, len, &ev, &err) != BZ_OK)
        fail_msg("the sample of kind %d (source %d) does not render: %s", kind, (int)source,
                 err.msg);
    assert_true(s->n < SAMPLES_MAX);
    snprintf(s->items[s->n].type, sizeof s->items[s->n].type, "%s", ev.type);
    s->items[s->n].body = ev.body;
    ev.body = NULL;
    s->n++;
    wh_event_clear(&ev);
}

/* ---- chat.events ------------------------------------------------------------------ */

/* The contact of the chat samples, as the catalogue's examples show it. */
static Blazz__V1__ContactSnapshot budi(int unread_messages)
{
    Blazz__V1__ContactSnapshot contact = BLAZZ__V1__CONTACT_SNAPSHOT__INIT;
    contact.id = 801;
    contact.uuid = "5d0e8b7a-2c4f-4e61-8a9b-1c3d5e7f9a0b";
    contact.name = "Budi";
    contact.phone = "+6281234567890";
    contact.full_name = "Budi Santoso";
    contact.unread_messages = unread_messages;
    contact.latest_chat_created_at_ms = AT_MS;
    contact.jid = "6281234567890@s.whatsapp.net";
    return contact;
}

/* Budi's call to the business, answered, 118 seconds, as its terminate
 * left the row. */
static Blazz__V1__CallSnapshot budis_call(void)
{
    Blazz__V1__CallSnapshot call = BLAZZ__V1__CALL_SNAPSHOT__INIT;
    call.id = 311;
    call.uuid = "5c3e2a10-7b4d-4e8f-a1c2-3d4e5f607182";
    call.call_id = "wacid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYIDk3QzE";
    call.whatsapp_account_id = 3;
    call.contact_id = 801;
    call.direction = BLAZZ__V1__DIRECTION__DIRECTION_INBOUND;
    call.status = "completed";
    call.connected_at_ms = AT_MS - 120000;
    call.started_at_ms = AT_MS - 118000;
    call.ended_at_ms = AT_MS;
    call.terminated_at_ms = AT_MS;
    call.duration_s = 118;
    call.event = "terminate";
    return call;
}

static void add_chat_sample(samples *s, int kind)
{
    Blazz__V1__Envelope env = envelope();
    Blazz__V1__ChatSnapshot chat = BLAZZ__V1__CHAT_SNAPSHOT__INIT;
    chat.id = 5001;
    chat.uuid = "0f6c2d4e-8b1a-4f3e-9c2d-7a5b3e1f9d08";
    chat.wam_id = "false_6281234567890@c.us_3EB0C767D26A1B2E";
    chat.type = BLAZZ__V1__DIRECTION__DIRECTION_INBOUND;
    chat.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    chat.provider_type = BLAZZ__V1__PROVIDER__PROVIDER_WEBJS;
    chat.message = "Halo, ada promo?";
    chat.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    chat.message_status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED;
    chat.created_at_ms = AT_MS;
    chat.whatsapp_account_id = 3;
    chat.contact_id = 801;
    Blazz__V1__ContactSnapshot contact = budi(1);
    Blazz__V1__StatusChange change = BLAZZ__V1__STATUS_CHANGE__INIT;
    Blazz__V1__SyncProgress progress = BLAZZ__V1__SYNC_PROGRESS__INIT;
    Blazz__V1__ChatRead read = BLAZZ__V1__CHAT_READ__INIT;
    int64_t read_ids[] = {4990, 5001};
    Blazz__V1__GroupSnapshot group = BLAZZ__V1__GROUP_SNAPSHOT__INIT;
    group.id = 77;
    group.uuid = "7e6d5c4b-3a29-4817-9605-f4e3d2c1b0a9";
    group.name = "Tim Sales";
    group.group_jid = "120363012345678901@g.us";
    group.participants_count = 6;
    Blazz__V1__GroupParticipant added = BLAZZ__V1__GROUP_PARTICIPANT__INIT;
    added.phone = "+6289876543210";
    added.jid = "6289876543210@s.whatsapp.net";
    Blazz__V1__GroupParticipant *members[] = {&added};
    char *changed[] = {"participants"};
    Blazz__V1__GroupSettings settings = BLAZZ__V1__GROUP_SETTINGS__INIT;
    settings.restrict_info = 1;
    Blazz__V1__GroupChange change_of_group = BLAZZ__V1__GROUP_CHANGE__INIT;
    Blazz__V1__BusinessProfile business = BLAZZ__V1__BUSINESS_PROFILE__INIT;
    business.description = "Toko bangunan sejak 1998";
    business.category = "Hardware Store";
    business.website = "https://tokobudi.example";
    char *contact_changed[] = {"profile_picture", "business_profile"};
    Blazz__V1__ContactChange change_of_contact = BLAZZ__V1__CONTACT_CHANGE__INIT;
    Blazz__V1__MessageAction action = BLAZZ__V1__MESSAGE_ACTION__INIT;
    action.actor_phone = "+6281234567890";
    action.actor_jid = "6281234567890@s.whatsapp.net";
    action.acted_at_ms = AT_MS + 30000;
    Blazz__V1__TemplateSnapshot template = BLAZZ__V1__TEMPLATE_SNAPSHOT__INIT;
    template.id = 41;
    template.name = "order_update";
    template.language = "id";
    template.status = "PAUSED";
    template.category = "UTILITY";
    template.quality_score = "RED";
    template.rejection_reason = "Your message template has been paused";
    template.meta_template_id = "1689556908129832";
    template.waba_id = "102290129340398";
    template.event = "PAUSED";
    Blazz__V1__OptOutChange opt_out = BLAZZ__V1__OPT_OUT_CHANGE__INIT;
    template.reported_at_ms = AT_MS;
    Blazz__V1__AccountStanding standing = BLAZZ__V1__ACCOUNT_STANDING__INIT;
    standing.whatsapp_account_id = 3;
    standing.phone_number_id = "106540352242922";
    standing.phone_number = "+15550783881";
    standing.waba_id = "102290129340398";
    standing.business_id = "880011223344";
    standing.flagged = 1;
    standing.quality_event = "FLAGGED";
    standing.messaging_limit = "TIER_2K";
    standing.business_limit = "TIER_2K";
    standing.field = "phone_number_quality_update";
    standing.event = "FLAGGED";
    standing.reported_at_ms = AT_MS;
    Blazz__V1__MediaReady ready = BLAZZ__V1__MEDIA_READY__INIT;
    ready.chat_id = 5002;
    ready.chat_uuid = "0b6c2d4e-8f10-4a2b-9c3d-5e6f7a8b9c0d";
    ready.wam_id = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjA";
    ready.media_uuid = "7a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9";
    ready.kind = "image";
    ready.mime_type = "image/jpeg";
    ready.size_bytes = 48213;
    ready.sha256 = "8d4f1c0a9b2e3d4c5b6a79880716253443526170f8e9dacbbcadaf9e8d7c6b5a";
    Blazz__V1__CallSnapshot call = budis_call();
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = (Blazz__V1__ChatEventKind)kind;
    ev.contact = &contact;
    switch (kind) {
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_CREATED:
        ev.chat = &chat;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_STATUS_CHANGED:
        chat.type = BLAZZ__V1__DIRECTION__DIRECTION_OUTBOUND;
        chat.message = "Ada, diskon 20% sampai Jumat";
        chat.wam_id = "true_6281234567890@c.us_3EB0A1B2C3D4E5F6";
        chat.message_status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ;
        chat.is_read = 1;
        chat.sent_at_ms = AT_MS + 1000;
        chat.delivered_at_ms = AT_MS + 2000;
        chat.read_at_ms = AT_MS + 60000;
        chat.user_id = 17;
        change.previous_status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED;
        change.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ;
        change.changed_at_ms = AT_MS + 60000;
        contact.unread_messages = 0;
        ev.chat = &chat;
        ev.status_change = &change;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_SYNC_PROGRESS:
        progress.sync_status = BLAZZ__V1__SYNC_STATUS__SYNC_STATUS_SYNCING;
        progress.synced_count = 150;
        progress.total_count = 500;
        progress.batch_index = 2;
        progress.batch_total = 10;
        progress.last_sync_at_ms = AT_MS;
        progress.sync_id = "sync-2023-11-14-a";
        ev.contact = NULL;
        ev.sync_progress = &progress;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CHAT_READ:
        read.messages_read = 2;
        read.read_at_ms = AT_MS + 90000;
        read.up_to_ms = AT_MS + 90000;
        read.user_id = 17;
        read.n_chat_ids = 2;
        read.chat_ids = read_ids;
        contact.unread_messages = 0;
        ev.chat_read = &read;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_REACTION:
        action.wam_id = "false_6281234567890@c.us_3EB0F1E2D3C4B5A6";
        action.emoji = "\xf0\x9f\x91\x8d";
        ev.chat = &chat;
        ev.action = &action;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_EDITED:
        action.wam_id = "false_6281234567890@c.us_3EB0A9B8C7D6E5F4";
        action.previous_body = "Halo, ada promo?";
        chat.message = "Halo, ada promo untuk minggu ini?";
        ev.chat = &chat;
        ev.action = &action;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MESSAGE_DELETED:
        action.wam_id = "false_6281234567890@c.us_3EB0C767D26A1B2E";
        ev.chat = &chat;
        ev.action = &action;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_UPDATED:
        contact.profile_picture = "https://pps.whatsapp.net/v/t61/budi.jpg";
        change_of_contact.n_changed = 2;
        change_of_contact.changed = contact_changed;
        change_of_contact.changed_at_ms = AT_MS;
        change_of_contact.business_profile = &business;
        ev.contact_change = &change_of_contact;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_GROUP_UPDATED:
        change_of_group.action = BLAZZ__V1__GROUP_ACTION__GROUP_ACTION_PARTICIPANTS_ADDED;
        change_of_group.n_changed = 1;
        change_of_group.changed = changed;
        change_of_group.n_participants = 1;
        change_of_group.participants = members;
        change_of_group.actor_phone = "+6281100000009";
        change_of_group.changed_at_ms = AT_MS;
        change_of_group.description = "Target Q4";
        change_of_group.invite_code = "F7x2kLmQ9aB";
        change_of_group.picture_url = "https://pps.whatsapp.net/v/t61/group-77.jpg";
        change_of_group.settings = &settings;
        ev.contact = NULL;
        ev.group = &group;
        ev.group_change = &change_of_group;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_OPTED_OUT:
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_OPTED_IN: {
        /* BERHENTI, then MULAI a day later */
        int in = kind == BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_OPTED_IN;
        opt_out.source = "keyword";
        opt_out.keyword = in ? "MULAI" : "BERHENTI";
        opt_out.changed_at_ms = in ? AT_MS + 86400000 : AT_MS;
        opt_out.wam_id = in ? "false_6281234567890@c.us_3EB0D2C3B4A5F6E7"
                            : "false_6281234567890@c.us_3EB0B7A6C5D4E3F2";
        opt_out.chat_id = in ? 90388 : 90214;
        ev.opt_out = &opt_out;
        break;
    }
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_TEMPLATE_UPDATED:
        env.whatsapp_account_id = 0;
        env.session_id = "";
        env.provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
        ev.contact = NULL;
        ev.template_ = &template;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_ACCOUNT_UPDATED:
        env.provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
        ev.contact = NULL;
        ev.account = &standing;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_MEDIA_READY:
        env.provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
        ev.contact = NULL;
        ev.media_ready = &ready;
        break;
    case BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CALL_UPDATED:
        env.provider = BLAZZ__V1__PROVIDER__PROVIDER_META;
        ev.call = &call;
        break;
    default:
        fail_msg("chat event kind %d has no sample: add one (and its catalogue entry)", kind);
    }
    uint8_t buf[4096];
    assert_true(blazz__v1__chat_event__get_packed_size(&ev) <= sizeof buf);
    add(s, WH_SOURCE_CHAT, buf, blazz__v1__chat_event__pack(&ev, buf), kind);
}

/* A merge (contact.merged): a CONTACT_UPDATED carrying one, not a kind of
 * its own (proto/blazz/v1/chat_event.proto). */
static void add_merge_sample(samples *s)
{
    Blazz__V1__Envelope env = envelope();
    Blazz__V1__ContactSnapshot contact = budi(3);
    char *changed[] = {"merged"};
    Blazz__V1__ContactChange change = BLAZZ__V1__CONTACT_CHANGE__INIT;
    change.n_changed = 1;
    change.changed = changed;
    change.changed_at_ms = AT_MS;
    Blazz__V1__ContactMerge merge = BLAZZ__V1__CONTACT_MERGE__INIT;
    merge.merged_contact_id = 955;
    merge.merged_contact_uuid = "0c9e2f4a-7d1b-4e3a-9f60-2b8d5c1a7e44";
    merge.lid = "190123456789012@lid";
    merge.phone = "+6281234567890";
    merge.merged_by = "gateway";
    merge.merged_at_ms = AT_MS;
    merge.chats_moved = 2;
    Blazz__V1__ChatEvent ev = BLAZZ__V1__CHAT_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_CONTACT_UPDATED;
    ev.contact = &contact;
    ev.contact_change = &change;
    ev.merge = &merge;
    uint8_t buf[4096];
    assert_true(blazz__v1__chat_event__get_packed_size(&ev) <= sizeof buf);
    add(s, WH_SOURCE_CHAT, buf, blazz__v1__chat_event__pack(&ev, buf), ev.kind);
}

/* ---- session.events --------------------------------------------------------------- */

static void add_session_sample(samples *s, int kind)
{
    Blazz__V1__Envelope env = envelope();
    Blazz__V1__InstanceRef instance = BLAZZ__V1__INSTANCE_REF__INIT;
    instance.index = 1;
    instance.url = "http://wa-gateway-1:3000";
    Blazz__V1__InstanceRef previous = BLAZZ__V1__INSTANCE_REF__INIT;
    previous.index = 0;
    previous.url = "http://wa-gateway-0:3000";
    Blazz__V1__SessionRemoval removal = BLAZZ__V1__SESSION_REMOVAL__INIT;
    Blazz__V1__SessionEvent ev = BLAZZ__V1__SESSION_EVENT__INIT;
    ev.envelope = &env;
    ev.kind = (Blazz__V1__SessionEventKind)kind;
    ev.account_uuid = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    ev.phone_number = "+6281100000001";
    ev.changed_at_ms = AT_MS;
    ev.instance = &instance;
    ev.health_score = 90;
    switch (kind) {
    case BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_STATUS_CHANGED:
        ev.status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED;
        ev.previous_status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED;
        ev.disconnect_reason = BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_TIMEOUT;
        ev.details = "no pong for 30 s";
        break;
    case BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_REMOVED:
        ev.status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED;
        ev.previous_status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED;
        ev.details = "disconnected for more than 24 hours";
        removal.reason = BLAZZ__V1__CLEANUP_REASON__CLEANUP_REASON_DISCONNECTED_24H;
        removal.cleanup_type = BLAZZ__V1__CLEANUP_TYPE__CLEANUP_TYPE_SCHEDULED;
        removal.cleanup_log_id = 77;
        ev.removal = &removal;
        break;
    case BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_INSTANCE_MIGRATED:
        ev.status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED;
        ev.previous_status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED;
        ev.previous_instance = &previous;
        break;
    case BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_QR:
        ev.status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_QR_SCANNING;
        ev.qr_code = "2@Xk3lQp9vZb0s,Rt7u8Hc2PqY=,Zw1aBc4dEf5gHi6jKl7mNo==,uV8wXy9zA0bC1dE2fG3hI4=";
        ev.qr_expires_at_ms = AT_MS + 20000;
        ev.phone_number = "";
        ev.health_score = 100;
        break;
    case BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_ASSIGNED:
        ev.status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_QR_SCANNING;
        ev.previous_status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_PENDING_ASSIGNMENT;
        ev.details = "new session";
        ev.phone_number = "";
        ev.health_score = 100;
        break;
    case BLAZZ__V1__SESSION_EVENT_KIND__SESSION_EVENT_KIND_PRIMARY_CHANGED:
        ev.status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED;
        ev.previous_status = BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED;
        ev.is_primary = 1;
        break;
    default:
        fail_msg("session event kind %d has no sample: add one (and its catalogue entry)", kind);
    }
    uint8_t buf[4096];
    assert_true(blazz__v1__session_event__get_packed_size(&ev) <= sizeof buf);
    add(s, WH_SOURCE_SESSION, buf, blazz__v1__session_event__pack(&ev, buf), kind);
}

/* ---- campaign.events -------------------------------------------------------------- */

static void add_campaign_sample(samples *s, int kind)
{
    Blazz__V1__Envelope env = envelope();
    Blazz__V1__CampaignCounters counters = BLAZZ__V1__CAMPAIGN_COUNTERS__INIT;
    counters.contacts_count = 1000;
    counters.pending = 600;
    counters.queued = 20;
    counters.messages_sent = 380;
    counters.messages_delivered = 350;
    counters.messages_read = 120;
    counters.messages_failed = 4;
    counters.messages_skipped = 2;
    Blazz__V1__CampaignEvent ev = BLAZZ__V1__CAMPAIGN_EVENT__INIT;
    ev.envelope = &env;
    ev.campaign_id = 41;
    ev.campaign_uuid = "c4a1b2d3-e5f6-4789-a0b1-c2d3e4f5a6b7";
    ev.kind = (Blazz__V1__CampaignEventKind)kind;
    ev.counters = &counters;
    ev.whatsapp_account_id = 3;
    ev.failure_rate = 0.0104;
    switch (kind) {
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_STARTED:
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_PROGRESS:
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_RESUMED:
        ev.status = BLAZZ__V1__CAMPAIGN_STATUS__CAMPAIGN_STATUS_RUNNING;
        break;
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_PAUSED:
        ev.status = BLAZZ__V1__CAMPAIGN_STATUS__CAMPAIGN_STATUS_PAUSED;
        ev.reason = "paused by a command";
        ev.actor = "user:17";
        break;
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_COMPLETED:
        ev.status = BLAZZ__V1__CAMPAIGN_STATUS__CAMPAIGN_STATUS_COMPLETED;
        counters.pending = 0;
        counters.queued = 0;
        counters.messages_sent = 996;
        counters.messages_delivered = 990;
        counters.messages_read = 610;
        ev.failure_rate = 0.004;
        break;
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_FAILED:
        ev.status = BLAZZ__V1__CAMPAIGN_STATUS__CAMPAIGN_STATUS_FAILED;
        ev.reason = "no audience";
        break;
    case BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_CANCELLED:
        ev.status = BLAZZ__V1__CAMPAIGN_STATUS__CAMPAIGN_STATUS_CANCELLED;
        ev.actor = "user:17";
        break;
    default:
        fail_msg("campaign event kind %d has no sample: add one (and its catalogue entry)", kind);
    }
    uint8_t buf[4096];
    assert_true(blazz__v1__campaign_event__get_packed_size(&ev) <= sizeof buf);
    add(s, WH_SOURCE_CAMPAIGN, buf, blazz__v1__campaign_event__pack(&ev, buf), kind);
}

/* Every non-zero value of each enum the dispatcher maps to a type. */
static void render_all(samples *s)
{
    const ProtobufCEnumDescriptor *chat = &blazz__v1__chat_event_kind__descriptor;
    const ProtobufCEnumDescriptor *session = &blazz__v1__session_event_kind__descriptor;
    const ProtobufCEnumDescriptor *campaign = &blazz__v1__campaign_event_kind__descriptor;
    for (unsigned i = 0; i < chat->n_values; i++)
        if (chat->values[i].value)
            add_chat_sample(s, chat->values[i].value);
    add_merge_sample(s);
    for (unsigned i = 0; i < session->n_values; i++)
        if (session->values[i].value)
            add_session_sample(s, session->values[i].value);
    for (unsigned i = 0; i < campaign->n_values; i++)
        if (campaign->values[i].value)
            add_campaign_sample(s, campaign->values[i].value);
}

static void samples_free(samples *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].body);
}

/* ---- the catalogue ---------------------------------------------------------------- */

static char *read_catalogue(void)
{
    const char *path = getenv("BLAZZ_EVENT_CATALOGUE");
    if (!path || !*path)
        path = "docs/EVENTS.md";
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open the event catalogue %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    assert_non_null(text);
    size_t got = fread(text, 1, (size_t)n, f);
    fclose(f);
    text[got] = '\0';
    return text;
}

#define HEADING "\n### `"

/* The section of type: from its heading to the next "### " heading (into
 * *end); NULL when the catalogue has none. */
static const char *section_of(const char *cat, const char *type, const char **end)
{
    char heading[64];
    snprintf(heading, sizeof heading, HEADING "%s`", type);
    const char *start = strstr(cat, heading);
    if (!start)
        return NULL;
    const char *next = strstr(start + 1, "\n### ");
    const char *chapter = strstr(start + 1, "\n## ");
    if (!next || (chapter && chapter < next))
        next = chapter;
    *end = next ? next : start + strlen(start);
    return start;
}

static int renders_as(const samples *s, const char *type, json_t *example)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i].type, type) != 0)
            continue;
        json_t *body = json_loads(s->items[i].body, 0, NULL);
        int same = body && json_equal(body, example);
        json_decref(body);
        if (same)
            return 1;
    }
    return 0;
}

static void fail_with_renders(const samples *s, const char *type, const char *why)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i].type, type) != 0)
            continue;
        json_t *body = json_loads(s->items[i].body, 0, NULL);
        char *pretty = json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fprintf(stderr, "rendered %s:\n%s\n", type, pretty);
        free(pretty);
        json_decref(body);
    }
    fail_msg("%s", why);
}

/* Each ```json block of the section must be one of the type's renders. */
static void check_examples(const samples *s, const char *type, const char *from, const char *end)
{
    int examples = 0;
    for (const char *p = strstr(from, "```json\n"); p && p < end; p = strstr(p, "```json\n")) {
        p += 8;
        const char *close = strstr(p, "\n```");
        assert_non_null(close);
        json_error_t jerr;
        json_t *example = json_loadb(p, (size_t)(close - p), 0, &jerr);
        if (!example)
            fail_msg("an example of %s is not JSON: %s (line %d)", type, jerr.text, jerr.line);
        int ok = renders_as(s, type, example);
        json_decref(example);
        if (!ok) {
            char why[160];
            snprintf(why, sizeof why, "example %d of %s is not what the dispatcher renders",
                     examples + 1, type);
            fail_with_renders(s, type, why);
        }
        examples++;
        p = close;
    }
    if (examples == 0)
        fail_with_renders(s, type, "the catalogue's section has no ```json example");
}

static void test_every_rendered_type_is_catalogued_as_it_renders(void **state)
{
    (void)state;
    static samples s;
    memset(&s, 0, sizeof s);
    render_all(&s);
    char *cat = read_catalogue();
    for (size_t i = 0; i < s.n; i++) {
        const char *end = NULL;
        const char *from = section_of(cat, s.items[i].type, &end);
        if (!from)
            fail_with_renders(&s, s.items[i].type, "a webhook type is missing from the catalogue");
        check_examples(&s, s.items[i].type, from, end);
    }
    samples_free(&s);
    free(cat);
}

static void test_every_catalogued_type_is_rendered(void **state)
{
    (void)state;
    static samples s;
    memset(&s, 0, sizeof s);
    render_all(&s);
    char *cat = read_catalogue();
    int sections = 0;
    for (const char *h = strstr(cat, HEADING); h; h = strstr(h + 1, HEADING)) {
        char type[32];
        const char *name = h + strlen(HEADING);
        const char *tick = strchr(name, '`');
        assert_non_null(tick);
        snprintf(type, sizeof type, "%.*s", (int)(tick - name), name);
        int found = 0;
        for (size_t i = 0; i < s.n && !found; i++)
            found = strcmp(s.items[i].type, type) == 0;
        if (!found)
            fail_msg("the catalogue describes %s, which the dispatcher never renders", type);
        sections++;
    }
    assert_true(sections > 0);
    samples_free(&s);
    free(cat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_rendered_type_is_catalogued_as_it_renders),
        cmocka_unit_test(test_every_catalogued_type_is_rendered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
