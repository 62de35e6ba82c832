/*
 * meta_world.h - one Meta Cloud API world for a test, on the real chain
 * (ARCHITECTURE.md §12): a workspace with one Meta account (its session is
 * its phone number id) served by the Meta app's gateway, whose key is the
 * app secret the status webhooks are signed with; the account's token set
 * with `blazzctl meta token`; graph_test_server (meta_itest.h) with the
 * test's options; ingest, chat-sync, campaign-sender and meta-sender.
 *
 * One world at a time, in meta_test_world, torn down after each test by
 * meta_world_teardown (a cmocka teardown, with agent_test_setup as setup).
 * The Graph test server records each accepted request's body
 * (graph_bodies), so a test can read what Meta was asked to send.
 */
#ifndef META_WORLD_H
#define META_WORLD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "meta_itest.h"

#define META_WORLD_APP_SECRET "meta-app-secret-for-tests-0123456789"

/* An account paced at META_WORLD_RATE a second, no minute or hour limit:
 * its metadata.rate_limits. */
#define META_WORLD_RATE 40
#define META_WORLD_TEXT_OF(x) #x
#define META_WORLD_TEXT(x) META_WORLD_TEXT_OF(x)
#define META_WORLD_PACED                                                                          \
    "{\"per_second\": " META_WORLD_TEXT(META_WORLD_RATE) ", \"per_minute\": 0, \"per_hour\": 0}"

typedef struct meta_world {
    int64_t ws, account;
    char session[128];
    char waba[24]; /* the account's WhatsApp Business Account (§12.5) */
    char gateway[48]; /* the Meta app's gateway, serving the account (§9.2) */
    graph_fx graph;
    pid_t meta;
    int meta_admin_port; /* meta-sender's /metrics */
    int camp_admin_port; /* campaign-sender's /metrics */
    char *api_key;    /* an API key of ws (heap) */
} meta_world;

extern meta_world meta_test_world;

/* How long an ambiguous send waits for a status webhook, as meta-sender's
 * environment line (BLAZZ_META_AMBIGUOUS_HOLD_MS=2000 unless a test sets
 * another before meta_world_start). */
extern const char *meta_world_ambiguous_hold;
/* meta-sender's rate guard (§12.1), as its environment line
 * (BLAZZ_META_RATE_GUARD_MS=500 unless a test sets another before
 * meta_world_start): a test that compares meta-sender's pace with the
 * release budget's per-second window (no guard) sets 0. */
extern const char *meta_world_rate_guard;
/* The media fetcher's threads (§16.2), as meta-sender's environment line
 * (BLAZZ_MEDIA_FETCH_THREADS=4 unless a program sets another before
 * meta_world_start_meta_sender): bench_media sets the production default
 * so its libcurl baseline can run as many loops. */
extern const char *meta_world_fetch_threads;
/* How often an idle fetcher polls (BLAZZ_MEDIA_FETCH_POLL_MS=250 unless a
 * test sets another before meta_world_start_meta_sender): new jobs wake it
 * at once (NOTIFY), the poll finds retries and leases run out. */
extern const char *meta_world_fetch_poll;
/* campaign-sender's environment lines beyond its listener (NULL-terminated,
 * at most 14; NULL: none), set by a test before meta_world_start. */
extern const char *const *meta_world_campaign_env;

/* Start the world of test `name`: the account's metadata.rate_limits JSON,
 * and extra graph_test_server options (NULL-terminated, may be NULL).
 * meta_world_prepare (fixture, workspace, account, token, API key) then
 * meta_world_launch (the Graph test server and the services). */
void meta_world_start(const char *name, const char *rate_limits, const char *const *graph_args);
void meta_world_prepare(const char *name, const char *rate_limits);
void meta_world_launch(const char *const *graph_args);
/* Meta's message_template_status_update of template name (language "id")
 * of the world's WABA, with event and reason (NULL: "NONE"), posted to
 * ingest by the Graph test server as Meta posts it (its POST /_review);
 * returns once the template's last event applied is event (so two reports
 * in a row must differ). */
void meta_world_report_template(const char *name, const char *event, const char *reason);

/* POST body to ingest's /v1/meta/webhook signed with the app secret as
 * Meta signs (X-Hub-Signature-256), posted again as Meta does while it is
 * answered 5xx or not at all (up to 30 s); fails unless it answers 200. */
void meta_world_post_webhook(const char *body);
/* One change of Meta's field to the world's number and WABA, signed and
 * posted as above: members is the JSON text of its value's members beside
 * messaging_product and metadata, e.g. "\"groups\":[...]". */
void meta_world_post_change(const char *field, const char *members);
/* Meta's `messages` webhook of one inbound message to the world's number:
 * from (wa_id, digits), its wamid, Unix time ts, Meta's type and the
 * type's member(s) as JSON text, e.g. "\"text\":{\"body\":\"STOP\"}". */
void meta_world_post_inbound(const char *from, const char *wamid, long long ts,
                             const char *type, const char *content);
/* The same message posted by the Graph test server (POST /_inbound), as a
 * user writing to the number: the server learns what Meta would (an ad's
 * referral opens a free entry point, graph_entry_points.c). members: the
 * message's type and content, e.g. "\"type\":\"text\",\"text\":{...}". */
void meta_world_user_writes(const char *from, const char *wamid, long long ts,
                            const char *members);
/* POST body to the Graph test server's control route (e.g. "_preference")
 * of the world's WABA: the server posts the webhook it plays, signed as
 * Meta; fails unless ingest took it (200). */
void meta_world_graph_plays(const char *route, const char *body);
/* Webhooks of type delivered to the world's workspace's endpoints
 * (webhook_retry_queue rows that succeeded), matching the SQL condition
 * cond on their JSON body b. */
int64_t meta_world_webhooks_delivered(const char *type, const char *cond);

/* Wait (90 s at most) until want webhooks of type were delivered to the
 * world's workspace's endpoints. */
void meta_world_wait_webhooks(const char *type, int64_t want);
/* SIGKILL ingest and start another: its duplicate window is in memory, so
 * what Meta posts again reaches chat-sync. */
void meta_world_restart_ingest(void);

/* cmocka teardown: stops meta-sender and the Graph test server (each must
 * exit 0), forgets the account's sends, then agent_test_teardown. */
int meta_world_teardown(void **state);

/* The tokens the Graph test server accepts for the account: just `token`. */
void meta_world_write_tokens(const char *token);
/* blazzctl meta token for the account, the token from the environment
 * (never argv); fails the test if blazzctl printed it. */
void meta_world_set_token(const char *token);
/* (Re)start meta-sender against the Graph test server, its /metrics on
 * meta_admin_port. */
void meta_world_start_meta_sender(void);

/* The contact wrote to the account ago_ms ago (an inbound chats row,
 * already read, as history), so Meta's 24-hour customer-service window is
 * open for the agents' free-form messages to it (wa/service_window.h). */
void meta_world_contact_wrote(int64_t contact, int64_t ago_ms);

/* Every contact of the group wrote to the account ago_ms ago (as
 * meta_world_contact_wrote, one statement), so a free-form campaign to it
 * is sent rather than skipped outside the window (ARCHITECTURE.md §12.7). */
void meta_world_audience_wrote(int64_t group, int64_t ago_ms);
/* A template of the world's WABA (meta_waba_id), named name in language
 * "id", of category (MARKETING, UTILITY...) and body text, APPROVED as Meta
 * reports it; its id. */
int64_t meta_world_approved_template(const char *name, const char *category, const char *body);
/* A draft template campaign of template tpl to the group from the account,
 * with campaigns.metadata (NULL: {}). */
int64_t meta_world_template_campaign(int64_t group, int64_t tpl, const char *metadata);

/* POST /v1/messages {"idempotency_key": idem, <json_fields>}; must answer
 * 202; its message_id into id (37 bytes). */
void meta_world_post_message(const char *json_fields, const char *idem, char *id);
/* The same for a text body to contact (no account named). */
void meta_world_post_text(int64_t contact, const char *body, const char *idem, char *id);
/* Messages of a kind (text, template, interactive, read...) the server
 * accepted. */
long meta_world_count_kind(const char *kind);

/* A campaign "Promo {{first_name}}" to n new contacts from the account,
 * started. The contacts wrote to the account an hour before
 * (meta_world_audience_wrote): a free-form message through Meta goes only
 * inside the 24-hour window, so without that the campaign would skip them
 * all. */
int64_t meta_world_start_campaign(int n);
/* Every log of the campaign reached the server at least once; returns how
 * many requests came beyond one per log (second messages). */
long meta_world_check_one_per_contact(int64_t campaign, int n);
/* Wait until the campaign completed; at the deadline, fail saying where it
 * stands. */
void meta_world_wait_completed(int64_t campaign, int timeout_s);
/* The campaign.completed event of campaign on campaign.events (once the
 * outbox emptied): exactly one, with these counters. */
void meta_world_assert_completed_event(int64_t campaign, int64_t sent, int64_t failed,
                                       int64_t skipped);

/* How many contacts a campaign under faults sends to:
 * BLAZZ_META_CAMPAIGN_CONTACTS, else the test's own default_n. */
int meta_world_contacts_wanted(int default_n);
/* The most requests that started at the server in any window of 1,000 ms,
 * whatever became of them (answered, throttled, dropped). */
int meta_world_busiest_second(void);

/* The bodies of the requests the server accepted, in arrival order, each
 * with the wamid it answered: heap arrays the caller frees with
 * graph_bodies_free. */
typedef struct graph_body {
    char wamid[96];
    json_t *doc;
} graph_body;
graph_body *graph_bodies(size_t *n);
void graph_bodies_free(graph_body *b, size_t n);

#endif
