/*
 * events.c - campaign.events (CampaignEvent, key campaign_id) through the
 * outbox, written in the transaction that caused them.
 *
 * The event describes the campaign as the transaction sees it: status,
 * counters, and how many logs are still pending or queued (counted on the
 * (campaign_id, status) index). The trace id is the campaign's uuid, so
 * every event and send of one campaign can be followed with one grep.
 *
 * A kind that happens once in a campaign's life (started, completed,
 * failed, cancelled) has an event id derived from the campaign's uuid and
 * the kind: emitted again (after a database restore, ARCHITECTURE.md §6.5)
 * it is the same event, and the CRM's webhook carries the same webhook-id.
 * Pauses, resumptions and progress can repeat, and get fresh ids.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign_sender.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "kafka/outbox.h"
#include "pg/pg.h"

#define SQL_EVENT_STATE                                                                          \
    "SELECT c.uuid::text, c.workspace_id, c.status, c.contacts_count, c.messages_sent, "          \
    "c.messages_delivered, c.messages_read, c.messages_failed, "                                  \
    "(SELECT count(*) FROM campaign_logs l WHERE l.campaign_id = c.id AND l.status = 'pending'), " \
    "(SELECT count(*) FROM campaign_logs l WHERE l.campaign_id = c.id AND l.status = 'queued'), "  \
    "c.messages_skipped FROM campaigns c WHERE c.id = $1"

static Blazz__V1__CampaignStatus status_from_text(const char *s)
{
    static const char *const names[] = {"", "draft", "scheduled", "running", "paused",
                                        "completed", "failed", "cancelled"};
    for (int i = 1; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(names[i], s) == 0)
            return (Blazz__V1__CampaignStatus)i;
    return BLAZZ__V1__CAMPAIGN_STATUS__CAMPAIGN_STATUS_UNSPECIFIED;
}

static int happens_once(Blazz__V1__CampaignEventKind kind)
{
    return kind == BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_STARTED ||
           kind == BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_COMPLETED ||
           kind == BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_FAILED ||
           kind == BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_CANCELLED;
}

static bz_status event_id_of(const char *campaign_uuid, Blazz__V1__CampaignEventKind kind,
                             char event_id[BZ_UUID_STR_SIZE], bz_error *err)
{
    if (!happens_once(kind))
        return bz_uuid_v4(event_id, err);
    char name[96];
    int n = snprintf(name, sizeof name, "blazz.v1/campaign-sender/%s/event/%d", campaign_uuid,
                     (int)kind);
    bz_uuid_derive(name, n > 0 && (size_t)n < sizeof name ? (size_t)n : sizeof name - 1, event_id);
    return BZ_OK;
}

static int32_t int_at(const PGresult *res, int col)
{
    return (int32_t)strtol(PQgetvalue(res, 0, col), NULL, 10);
}

bz_status cmp_event_emit(PGconn *conn, int64_t campaign_id, Blazz__V1__CampaignEventKind kind,
                         const char *actor, const char *reason, int64_t account_id, bz_error *err)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, campaign_id);
    const char *params[] = {id};
    PGresult *res;
    bz_status st = bz_pg_exec_params(conn, "read campaign for event", SQL_EVENT_STATE, 1, params,
                                     &res, err);
    if (st != BZ_OK)
        return bz_wrap(err, "campaign %" PRId64, campaign_id);
    if (PQntuples(res) != 1) {
        PQclear(res);
        return bz_fail(err, BZ_ERR_NOT_FOUND, "event for campaign %" PRId64 ": no such campaign",
                       campaign_id);
    }
    char event_id[BZ_UUID_STR_SIZE];
    char *campaign_uuid = PQgetvalue(res, 0, 0);
    if ((st = event_id_of(campaign_uuid, kind, event_id, err)) != BZ_OK) {
        PQclear(res);
        return st;
    }
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = env.produced_at_ms = bz_wall_ms();
    env.source = "campaign-sender";
    env.workspace_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    env.whatsapp_account_id = account_id;
    env.trace_id = campaign_uuid;

    Blazz__V1__CampaignCounters counters = BLAZZ__V1__CAMPAIGN_COUNTERS__INIT;
    counters.contacts_count = int_at(res, 3);
    counters.messages_sent = int_at(res, 4);
    counters.messages_delivered = int_at(res, 5);
    counters.messages_read = int_at(res, 6);
    counters.messages_failed = int_at(res, 7);
    counters.pending = int_at(res, 8);
    counters.queued = int_at(res, 9);
    counters.messages_skipped = int_at(res, 10);

    Blazz__V1__CampaignEvent ev = BLAZZ__V1__CAMPAIGN_EVENT__INIT;
    ev.envelope = &env;
    ev.campaign_id = campaign_id;
    ev.campaign_uuid = campaign_uuid;
    ev.kind = kind;
    ev.status = status_from_text(PQgetvalue(res, 0, 2));
    ev.counters = &counters;
    ev.reason = (char *)(reason ? reason : "");
    ev.actor = (char *)(actor ? actor : "");
    ev.whatsapp_account_id = account_id;
    int64_t attempts = (int64_t)counters.messages_sent + counters.messages_failed;
    ev.failure_rate = attempts ? (double)counters.messages_failed / (double)attempts : 0.0;

    size_t len = blazz__v1__campaign_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        PQclear(res);
        return bz_fail(err, BZ_ERR_NOMEM, "event for campaign %" PRId64 ": out of memory",
                       campaign_id);
    }
    blazz__v1__campaign_event__pack(&ev, buf);
    const bz_outbox_header headers[] = {{"trace_id", campaign_uuid}};
    st = bz_outbox_add(conn, bz_topic_base(BZ_TOPIC_CAMPAIGN_EVENTS), event_id, id, strlen(id), buf,
                       len, headers, 1, err);
    free(buf);
    PQclear(res);
    return st;
}
