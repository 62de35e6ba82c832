/*
 * media_dead_letter.c - the dead letter of a media fetch given up for good
 * (see media_fetch.h; README.md's dead-letter table names the reasons).
 *
 * The job never was a Kafka record, so the dead letter's original is the
 * job row itself, as JSON, from "media_fetch_jobs" (partition and offset
 * -1, as for an outbox row), keyed "<workspace_id>:<chat_id>". It goes to
 * wa.outbound.dlq, meta-sender's own dead-letter topic: the principal
 * that fetches may write it, operators already watch it, and a media
 * fetch is the same service's work on the same accounts. The broker
 * acknowledges it before the job is marked failed, so a crash in between
 * repeats the dead letter and never loses it.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "kafka/dlq.h"
#include "media_fetch.h"

#define DLQ_TIMEOUT_MS 10000

static char *job_json(const ms_media_job *job)
{
    json_t *o = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "chat_id",
                          (json_int_t)job->chat_id, "workspace_id", (json_int_t)job->workspace_id,
                          "whatsapp_account_id", (json_int_t)job->account_id, "chat_uuid",
                          job->chat_uuid, "wam_id", job->wam_id, "meta_media_id", job->media_id,
                          "declared_sha256", job->declared_sha256, "declared_mime",
                          job->declared_mime, "kind", job->kind, "attempts", job->attempts);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

bz_status ms_media_dead_letter(bz_producer *p, const ms_media_settings *s,
                               const ms_media_job *job, const char *reason, const char *error,
                               bz_error *err)
{
    char *value = job_json(job);
    if (!value)
        return bz_fail(err, BZ_ERR_NOMEM, "dead-letter media chat_id=%" PRId64 ": out of memory",
                       job->chat_id);
    char key[48];
    snprintf(key, sizeof key, "%" PRId64 ":%" PRId64, job->workspace_id, job->chat_id);
    bz_dlq_original orig = {.topic = "media_fetch_jobs", .partition = -1, .offset = -1,
                            .key = key, .key_len = strlen(key), .value = value,
                            .value_len = strlen(value)};
    int64_t now = bz_wall_ms();
    bz_dead_letter_info info = {.error_code = reason, .error_message = error,
                                .service = "meta-sender", .attempts = job->attempts,
                                .first_failed_at_ms = now, .last_failed_at_ms = now};
    bz_status st = bz_dlq_send_original_sync(p, s->dlq_topic, &orig, &info, DLQ_TIMEOUT_MS, err);
    free(value);
    return st;
}
