/*
 * agent_itest.h - fixtures for the two-way messaging tests: the whole chain
 * an agent's message takes, as real processes under one unique topic
 * prefix on the real stack:
 *
 *   HTTP POST /v1/messages -> blazz-ingest -> crm.commands -> blazz-chat-sync
 *   -> outbound_queue -> blazz-campaign-sender -> wa.outbound ->
 *   blazz-gateway-sim (kafka mode: echo and receipts to wa.inbound.raw) ->
 *   ingest -> chat.sync -> chat-sync -> chat.events -> the webhook
 *   dispatcher -> the test receiver.
 *
 * The webhook side (wh_env) owns the prefix, the workspace-independent
 * receiver and the dispatcher; the campaign side (camp_fx, sharing the
 * prefix) owns the campaign-sender processes and the campaign fixtures. The
 * simulator's own log (--sends-log) is the gateway's view of what it was
 * asked to send, with its own receive times.
 */
#ifndef AGENT_ITEST_H
#define AGENT_ITEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blazz/v1/inbound.pb-c.h"
#include "campaign_itest.h"
#include "core/uuid.h"
#include "itest.h"
#include "webhook_itest.h"

#define AGENT_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

typedef struct agent_fx {
    wh_env wh;
    camp_fx camp;
    int port;               /* ingest's public HTTP port */
    pid_t ingest, chat_sync, sim;
    char tag[32];
    char sends_log[700];
    char sim_status[700]; /* the simulator's --status-file */
} agent_fx;

/* One line of the simulator's sends log. */
typedef struct agent_send {
    int64_t ms;
    char session[128];
    char key[64];
    int read; /* a mark-read command */
} agent_send;

/* Prefix, topics, receiver, connections. Nothing runs yet. */
void agent_fx_init(agent_fx *fx, const char *name);
/* Stop every process (SIGTERM, each must exit 0), clean up. */
void agent_fx_finish(agent_fx *fx);

/* Processes. extra_env: NULL-terminated "KEY=VALUE" list, may be NULL. */
void agent_start_ingest(agent_fx *fx, const char *const *extra_env);
void agent_start_chat_sync(agent_fx *fx);
void agent_start_chat_sync_with(agent_fx *fx, const char *const *extra_env);
void agent_start_sim(agent_fx *fx);
void agent_start_dispatcher(agent_fx *fx);
/* SIGKILL a process started here and forget it. */
void agent_kill(pid_t *pid);

/* Data. */
int64_t agent_contact(agent_fx *fx, int64_t workspace, const char *phone, const char *name);
/* A new API key of the workspace, made with blazzctl (heap text). */
char *agent_api_key(agent_fx *fx, int64_t workspace);
/* A Standard Webhooks endpoint on the receiver for the workspace, events
 * in order (one delivery at a time). */
int64_t agent_endpoint(agent_fx *fx, int64_t workspace, const char *path);

/* POST body to ingest's path with "Authorization: Bearer key" (key NULL:
 * none). Returns the HTTP status, 0 when no answer came; the answer's body
 * goes to resp, its Retry-After header to retry_after (both may be NULL). */
long agent_post(agent_fx *fx, const char *path, const char *key, const char *body, char *resp,
                size_t cap, char *retry_after, size_t ra_cap);
/* method (PATCH, PUT, ...) on ingest's path with body, as agent_post. */
long agent_send_body(agent_fx *fx, const char *method, const char *path, const char *key,
                     const char *body, char *resp, size_t cap);
/* method (GET, PUT, ...) on ingest's path without a body, as agent_post. */
long agent_call(agent_fx *fx, const char *method, const char *path, const char *key, char *resp,
                size_t cap);
/* GET path with key: the status, the body parsed into *doc (the caller
 * releases it); fails the test when the body is no JSON. */
long agent_get_json(agent_fx *fx, const char *path, const char *key, json_t **doc);
/* method path with body: fails the test unless it answers want; the
 * answer as JSON (the caller releases it). */
json_t *agent_expect_answer(agent_fx *fx, const char *method, const char *path, const char *key,
                            const char *body, long want);
/* method path with body refused with status, its error JSON naming reason
 * and field. */
void agent_expect_refused(agent_fx *fx, const char *method, const char *path, const char *key,
                          const char *body, long status, const char *reason, const char *field);
/* Every page of GET path (its query begun, "?...") with key, limit a
 * page, following next_cursor to the end: each item's field (a string or
 * an integer) of list_name joined by commas into out, as SQL's string_agg
 * writes them. */
void agent_read_all_pages(agent_fx *fx, const char *path, const char *key,
                          const char *list_name, const char *field, int limit, char *out,
                          size_t cap);
/* The message_id of a 202 answer (into out, 37 bytes). */
void agent_message_id(const char *resp, char *out);

/* Any inbound event of a whatsapp-web.js gateway for ev->envelope's
 * session (its event id, provider and source are filled here), produced
 * to <prefix>wa.inbound.raw as the gateway's HTTP edge would. */
void agent_inbound_event(agent_fx *fx, Blazz__V1__InboundEvent *ev);
/* An inbound text message from the contact to the account's session;
 * _from names the contact by its phone and/or its JID (a LID), "" for
 * none. */
void agent_inbound(agent_fx *fx, const char *session, const char *wam_id, const char *phone,
                   const char *body, int64_t ts_ms);
void agent_inbound_from(agent_fx *fx, const char *session, const char *wam_id, const char *phone,
                        const char *jid, const char *body, int64_t ts_ms);

/* The simulator's sends log, in order (heap; caller frees). */
agent_send *agent_sends(agent_fx *fx, size_t *n);
/* Lines of the sends log with this key. */
int agent_sends_of(agent_fx *fx, const char *key);
/* The sends the simulator was asked for again under an idempotency key it
 * had already sent (it answers them with where the first got to; the sends
 * log has one line per key): its status file's outbound_duplicates, as of
 * its last rewrite (every second). */
long agent_send_repeats(agent_fx *fx);
/* The messages (no read marks) of the sends log sent by session, in its
 * order (heap; caller frees). */
agent_send *agent_sends_of_session(agent_fx *fx, const char *session, size_t *n);

/* When campaign-sender released a message (its send_ledger row's
 * released_at, wall-clock ms); fails the test unless it was released. */
int64_t agent_released_ms(agent_fx *fx, const char *message_id);

/* POST n agent messages ("<tag>-<i>" idempotency keys) to
 * contacts[i % ncontacts] through account with API key key, in order; their
 * message ids go to ids. Fails the test unless each is accepted (202). */
void agent_post_messages(agent_fx *fx, const char *key, const char *tag, int n,
                         const int64_t *contacts, int ncontacts, int64_t account,
                         char (*ids)[BZ_UUID_STR_SIZE]);

/* The reasons (dlt-error-code) of the dead letters on <prefix>chat.sync.dlq,
 * in their order, once it holds want of them, or what it holds after 30 s
 * (the caller's count fails then). */
typedef struct agent_dlq_reasons {
    char codes[8][64];
    int n;
} agent_dlq_reasons;
void agent_dead_letters(agent_fx *fx, agent_dlq_reasons *d, int want);
/* The records on <prefix>wa.inbound.dlq and <prefix>chat.sync.dlq, as
 * they are now (a test that wants none asserts 0 after its waits). */
int agent_dead_letter_count(agent_fx *fx);
/* `blazzctl dlq replay chat.sync.dlq --filter error=<code>`, as an
 * operator replays dead letters once their cause is fixed: returns how many
 * it replayed. */
long agent_replay_dead_letters(agent_fx *fx, const char *code);

/* Poll a one-integer query (printf-style) until it equals want. */
void agent_wait(agent_fx *fx, int64_t want, int timeout_s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* One integer of a query (printf-style) on the fixture's connection. */
#define agent_int(f, ...) itest_pg_int64f((f)->camp.pg, __VA_ARGS__)

/* cmocka per-test setup and teardown around a fixture of its own,
 * agent_test_fx (allocated, not initialized): the teardown finishes it
 * whether the test passed or not, so a failure never leaves a relay or a
 * sender behind to take the next test's work. */
extern agent_fx *agent_test_fx;
int agent_test_setup(void **state);
int agent_test_teardown(void **state);

#endif
