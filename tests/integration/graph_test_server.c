/*
 * graph_test_server.c - a loopback WhatsApp Cloud API (Graph API) for the
 * meta-sender tests, the benchmark and the demo: POST
 * /{version}/{phone_number_id}/messages answered as Meta's documentation
 * describes, with fault injection.
 *
 * Usage: graph_test_server --port-file F --record F --tokens F [options]
 *   --port N              listen on 127.0.0.1:N (default 0: any; the port is
 *                         written to --port-file)
 *   --tokens F            lines "<phone_number_id> <token>": the Bearer token
 *                         each number accepts; re-read when the file changes,
 *                         so a test "expires" a token by rewriting it. Any
 *                         other token: 401 OAuthException code 190.
 *   --record F            one line per message Meta would deliver (accepted):
 *                         <ms> <phone_number_id> <kind> <to> <reference> <wamid>
 *                         (to: the phone's digits, or the BSUID of a message
 *                         addressed by `recipient`)
 *                         (kind: text, template, image, ..., read; reference:
 *                         biz_opaque_callback_data or the read message id)
 *   --throttle-every N    every Nth request answers 400 with code 130429,
 *                         the next such one 131056 (alternating), not accepted
 *   --drop-every N        every Nth request: the connection is closed without
 *                         an answer and nothing is accepted
 *   --accept-drop-every N every Nth message accepted on a kept-alive
 *                         connection (one that already carried a request) is
 *                         processed as usual (recorded, its status webhooks
 *                         queued), and then its connection is closed without
 *                         a byte of answer: an answer lost after Meta took
 *                         the message, on the kind of connection a client may
 *                         silently re-send on (ARCHITECTURE.md §12.2)
 *   --slow-every N --slow-ms M   every Nth request is answered after M ms
 *   --fail-to PHONE=CODE  requests to PHONE (digits) answer Meta's error CODE
 *                         (131047, 131026, 100, 132001...; repeatable)
 *   --fail-status-to PHONE=CODE  the first message to PHONE is accepted (its
 *                         wamid answered, recorded) and then reported
 *                         undelivered: its one status webhook is `failed`
 *                         with errors[] Meta's error CODE, its title,
 *                         message and error_data.details, and no pricing
 *                         (not billed), as Meta reports 131049, its
 *                         per-user marketing limit; later messages to PHONE
 *                         go as usual, the limit having lifted (repeatable)
 *   --webhook URL --app-secret S  post status webhooks (sent, delivered, read)
 *                         of accepted messages to URL (ingest's
 *                         /v1/meta/webhook), signed X-Hub-Signature-256,
 *                         carrying biz_opaque_callback_data and Meta's
 *                         pricing (a template: its category; else service;
 *                         type free_entry_point in the 72 hours a reply
 *                         opens to a user who wrote from an ad through
 *                         /_inbound, graph_entry_points.c)
 *   --statuses WHICH      the status webhooks posted when a message is
 *                         accepted: all (sent, delivered, read: the default),
 *                         sent (the recipient's phone is off), none (Meta
 *                         slow to notify, or webhooks not subscribed). The
 *                         ones held back are posted, for every message
 *                         accepted so far, when the server gets SIGUSR1 (the
 *                         phones come online)
 *   --requests F          one line per request received, whatever became of it:
 *                         <start ms> <connection> <nth on it> <what>
 *                         (what: answered, dropped, accepted-dropped,
 *                         unfinished), written when the request ends
 *   --app-secret-file F   the app secret read from file F (its first line),
 *                         so that it is on no command line (`make run`)
 *   --templates F         the account's message templates, as Meta's
 *                         message_templates API lists them: a JSON array of
 *                         {"name", "language", "parameter_format" (POSITIONAL,
 *                         the default, or NAMED), "components": [{"type":
 *                         "HEADER", "format": "TEXT", "text"}, {"type":
 *                         "BODY", "text"}]}. A template message must then
 *                         name one of them (else 132001) and give its HEADER
 *                         and BODY exactly as many text parameters as their
 *                         texts have variables ({{1}}, {{2}}... or
 *                         {{first_name}}; else 132000), each with the
 *                         parameter_name of one of them when NAMED (else
 *                         132012). Without this option any template goes.
 *   --bodies F            one line per accepted message: "<wamid> <request
 *                         body as compact JSON>"
 * GET /{version}/{waba_id}/message_templates lists the --templates
 * definitions (none without the option) as Meta's WhatsApp Business Account
 * API does: {"data": [...], "paging": {"cursors": {"before", "after"},
 * "previous", "next"}}, `limit` per page (default 25, the Graph API's usual
 * page; 1-1000), `after` a cursor of an earlier page (base64 of the id of
 * the template it points to; an unknown one: code 100), `next` only when
 * more follow and `previous` only after the first page, both absolute URLs
 * on this server. Each template carries the `fields` asked for (comma
 * separated; default name, components, language, status, category, id; id
 * always), from the definition: its status (default APPROVED), category,
 * id (default 9000000000 + its position), quality_score ({"score"}),
 * rejected_reason (default NONE), components. The WABA is a line of the
 * --tokens file ("<waba_id> <token>"): its token as for a number; a token
 * the file holds for something else, with an id it does not hold: 400 code
 * 100 (Meta's "Unsupported get request", unknown object); any other token:
 * 401 code 190.
 * POST /_review/{waba_id} plays Meta's template review: its body is the
 * `value` of a message_template_status_update change (event,
 * message_template_id, message_template_name, message_template_language,
 * reason, ...), which the server posts to --webhook at once, in Meta's
 * notification shape (entry.id the WABA, entry.time now), signed like the
 * status webhooks; it answers 200 once ingest did, else 502 with ingest's
 * status. Not Meta's API: the way a test or the demo makes Meta decide.
 * POST /_inbound/{waba_id} plays a WhatsApp user writing to one of the
 * WABA's numbers: its body is the `value` of a `messages` change
 * (messaging_product, metadata.phone_number_id, contacts, messages),
 * posted to --webhook the same way and answered the same way: the way
 * the demo has a contact write STOP through Meta's webhook.
 * POST /_echo/{waba_id} plays the number's owner typing a text to a
 * customer in the WhatsApp Business app on the same number (coexistence):
 * its body {"phone_number_id", "display_phone_number" (default the id),
 * "to" (the customer's digits), "text"}; the server posts Meta's
 * smb_message_echoes change for it (message_echoes[]: from the display
 * number, to, a new wamid, timestamp, type text) the same way, and
 * answers the same way with the wamid as "id".
 * POST /_call/{waba_id} plays a customer calling the number: its body
 * {"phone_number_id", "display_phone_number", "from" (the caller's
 * digits), "name" (their profile name, default the digits), "duration"
 * (seconds the call lasted, 0-86400), "answered" (default true)}; the
 * server posts Meta's two calls changes of a user-initiated call, the
 * connect (dated duration seconds ago, the caller in contacts[], the
 * offer's SDP) and, once ingest took it, the terminate (COMPLETED,
 * start_time, end_time, duration; a call nobody answered FAILED, without
 * them: it rang for duration seconds), and
 * answers with the new call id (wacid) as "id" and the last status.
 * POST /_history/{waba_id} plays the number's owner sharing the WhatsApp
 * Business app's chat history at onboarding: its body {"phone_number_id",
 * "display_phone_number", "customers" (1 to 50 customers' digits)}; the
 * server posts Meta's history changes of phases 0, 1 and 2 (progress 33,
 * 66, 100), each a chunk with every customer's thread (their question and
 * the owner's answer, newest first), one after the other while ingest
 * takes them, and answers with the run's sync id as "id" and the last
 * status.
 * POST /_preference/{waba_id} plays a user stopping or resuming the
 * business's marketing messages: its body {"phone_number_id", "wa_id"
 * and/or "user_id" (a BSUID), "value" (stop, resume), "timestamp"
 * (optional)}; the server posts Meta's user_preferences change for it.
 * POST /_address_book/{waba_id} plays the owner adding or removing a
 * customer in the app's address book: its body {"phone_number_id",
 * "phone", "action" (add, remove), "full_name", "first_name" (an add's,
 * optional), "timestamp" (optional)}; the server posts Meta's
 * smb_app_state_sync change for it. POST /_volume_tier/{waba_id} plays
 * Meta moving the WABA's volume tier: its body {"effective_month",
 * "pricing_category", "region", "tier"}; the server posts Meta's
 * account_update change VOLUME_BASED_PRICING_TIER_UPDATE, updated now.
 * All three answer as /_inbound does.
 * POST /_group/{waba_id} plays what happens to a group the number is in,
 * as Meta's Groups API webhook reference prints it: the group made or
 * deleted, members joining (by invite link), asking to join or leaving,
 * the business removing one, its subject or description changed, Meta
 * suspending it. Its body {"phone_number_id", "display_phone_number",
 * "field" (group_lifecycle_update, group_participants_update,
 * group_settings_update, group_status_update), "groups" (the change's
 * items, each a group_id, a type of that field and a timestamp)}; an item
 * of another field's type is refused (400, code 100). Posted and answered
 * as /_inbound is. A group's messages are /_inbound's, with group_id.
 * None is recorded (--record holds what Meta delivered for the
 * business).
 * POST /_throttle plays Meta throttling the business's throughput: its
 * body {"share_percent": N} (0-100) makes N% of the message requests from
 * then on, evenly spread (request k when k*N/100 grows), answer Meta's
 * throughput error as it documents it: HTTP 400, error code 130429 "Rate
 * limit hit", not accepted; 0 stops it. Answers {"share_percent": N}. Not
 * Meta's API: the way a test makes Meta throttle for a while.
 * Interactive messages are held to Meta's documented limits (400, code
 * 131009 "Parameter value is not valid", the broken rule in details):
 * reply buttons 1-3, each title 1-20 characters and unique, id 1-256; a
 * list's button 1-20 characters, 1-10 sections, 1-10 rows in all, row
 * title 1-24, description 0-72, id 1-200, section title 0-24; a body of
 * 1-1024 characters (4096 for a list), a text header and a footer of at
 * most 60.
 * A message with recipient_type "group" (Meta's group messaging page)
 * names the group's id in `to`; an interactive one is refused (400, code
 * 100: groups take text, media and templates), and the answer names no
 * contact, only the message's id; its status webhooks are the page's:
 * `sent` (or `failed`) with the group's id as recipient_id and
 * recipient_type group.
 * --media F and --media-url-ttl-ms N: media ids, GET /{version}/{media-id}
 * and downloads as Meta's "Retrieve media URL" and "Download media"
 * describe them, with faults and counts (support/graph_media.c).
 * POST /{version}/{phone_number_id}/media takes an upload as Meta's "Upload
 * media" documents it (graph_upload.c), recorded as kind "upload" with the
 * media id it answers in the wamid column; a message naming a media id the
 * number did not upload is refused.
 * A message names its addressee as Meta's business-scoped user ids page
 * documents: `to` (a phone) or `recipient` (a BSUID, "CC." then letters
 * and digits, or a parent BSUID), `to` winning when both are given; one
 * with neither is refused (400, code 100). A message sent to a BSUID is
 * answered with contacts[].user_id instead of wa_id, and its status
 * webhooks carry recipient_user_id instead of recipient_id.
 *   --users F             the WhatsApp users Meta knows, lines "<phone
 *                         digits> <bsuid> [username]": a message to either
 *                         of a user's identifiers is answered, and its
 *                         statuses name the user, by BSUID always and by
 *                         phone unless the user has a username and the
 *                         phone is not in the contact book, which a message
 *                         sent by phone puts it in (graph_users.c)
 * Requests are counted per number in arrival order; the counters of the
 * fault options are global. Listens on 127.0.0.1 only. Stops on SIGTERM;
 * SIGUSR1 posts the status webhooks --statuses held back.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ctype.h>
#include <curl/curl.h>

#include "core/clock.h"
#include "core/signals.h"
#include "core/utf8.h"
#include "graph_entry_points.h"
#include "graph_media.h"
#include "graph_phone.h"
#include "graph_upload.h"
#include "graph_users.h"

#define MAX_TOKENS 256
#define MAX_FAILS 32
#define BODY_MAX (256 * 1024)

/* Room for an addressee: a phone's digits or a BSUID ("CC." and up to 128
 * letters and digits, or a parent "CC.ENT." one). */
#define ADDRESSEE_MAX 144

typedef struct fail_rule {
    char to[ADDRESSEE_MAX];
    long code;
} fail_rule;

typedef struct status_item {
    struct status_item *next;
    char pnid[64], wamid[96], to[ADDRESSEE_MAX], ref[128];
    char category[32]; /* the message's pricing category (pricing_category_of) */
    unsigned statuses; /* STATUS_* bits to post */
    int group;         /* sent to a group: its statuses name the group */
    long failed_code;  /* not 0: one `failed` status with Meta's error, not the bits */
} status_item;

static struct {
    const char *tokens_path, *record_path, *port_file, *webhook, *app_secret, *app_secret_file;
    const char *templates_path, *bodies_path;
    long port;
    long throttle_every, drop_every, accept_drop_every, slow_every, slow_ms;
    fail_rule fails[MAX_FAILS];
    int nfails;
    fail_rule status_fails[MAX_FAILS]; /* --fail-status-to; code 0 once used */
    int nstatus_fails;
} opt;

static struct {
    pthread_mutex_t lock;
    char pnid[MAX_TOKENS][64], token[MAX_TOKENS][512];
    int n;
    struct timespec mtime;
    FILE *record, *bodies;
    json_t *templates; /* --templates, or NULL */
    atomic_long requests, throttled, wamids;
    atomic_long throttle_share; /* POST /_throttle: percent of requests answered 130429 */
    status_item *head, *tail;
    pthread_cond_t wake;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* ---- tokens --------------------------------------------------------------------- */

static void load_tokens_locked(void)
{
    struct stat st;
    if (stat(opt.tokens_path, &st) != 0)
        return;
    if (st.st_mtim.tv_sec == g.mtime.tv_sec && st.st_mtim.tv_nsec == g.mtime.tv_nsec)
        return;
    FILE *f = fopen(opt.tokens_path, "r");
    if (!f)
        return;
    g.mtime = st.st_mtim;
    g.n = 0;
    while (g.n < MAX_TOKENS && fscanf(f, "%63s %511s", g.pnid[g.n], g.token[g.n]) == 2)
        g.n++;
    fclose(f);
}

/* The token is the one the file holds for id; for any id when id is NULL. */
static int token_ok(const char *id, const char *auth)
{
    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return 0;
    pthread_mutex_lock(&g.lock);
    load_tokens_locked();
    int ok = 0;
    for (int i = 0; i < g.n && !ok; i++)
        ok = (!id || strcmp(g.pnid[i], id) == 0) && strcmp(g.token[i], auth + 7) == 0;
    pthread_mutex_unlock(&g.lock);
    return ok;
}

/* ---- answers -------------------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text,
                                                             MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result meta_error(struct MHD_Connection *c, unsigned status, long code,
                                  const char *type, const char *message, const char *details)
{
    return answer(c, status,
                  json_pack("{s:{s:s, s:s, s:I, s:{s:s, s:s}, s:s}}", "error", "message", message,
                            "type", type, "code", (json_int_t)code, "error_data",
                            "messaging_product", "whatsapp", "details", details, "fbtrace_id",
                            "Atest"));
}

static const char *message_of(long code)
{
    switch (code) {
    case 130429: return "(#130429) Rate limit hit";
    case 131056: return "(#131056) (Business Account, Consumer Account) pair rate limit hit";
    case 131047: return "(#131047) Re-engagement message";
    case 131026: return "(#131026) Message Undeliverable";
    case 131049: return "This message was not delivered to maintain healthy ecosystem engagement.";
    case 100: return "(#100) Invalid parameter";
    default: return "(#132001) Template name does not exist in the translation";
    }
}

static enum MHD_Result fail_code(struct MHD_Connection *c, long code)
{
    const char *details = code == 131047 ? "Message failed to send because more than 24 hours "
                                           "have passed since the customer last replied."
                                         : message_of(code);
    return meta_error(c, 400, code, "OAuthException", message_of(code), details);
}

/* ---- which status webhooks, and when (--statuses, SIGUSR1) ------------------------- */

enum { STATUS_SENT = 1, STATUS_DELIVERED = 2, STATUS_READ = 4, STATUS_ALL = 7 };

static struct {
    unsigned at_accept;            /* posted when a message is accepted */
    status_item *held, *held_tail; /* the others, per message, until SIGUSR1 */
    volatile sig_atomic_t phones_online;
} statuses = {.at_accept = STATUS_ALL};

static int parse_statuses(const char *which)
{
    const struct {
        const char *name;
        unsigned bits;
    } table[] = {{"all", STATUS_ALL}, {"sent", STATUS_SENT}, {"none", 0}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(which, table[i].name) == 0) {
            statuses.at_accept = table[i].bits;
            return 1;
        }
    return 0;
}

static status_item *status_item_new(const char *pnid, const char *wamid, const char *to,
                                    const char *ref, const char *category, unsigned bits,
                                    int group)
{
    status_item *it = calloc(1, sizeof *it);
    if (it) {
        it->group = group;
        snprintf(it->pnid, sizeof it->pnid, "%s", pnid);
        snprintf(it->wamid, sizeof it->wamid, "%s", wamid);
        snprintf(it->to, sizeof it->to, "%s", to);
        snprintf(it->ref, sizeof it->ref, "%s", ref);
        snprintf(it->category, sizeof it->category, "%s", category);
        it->statuses = bits;
    }
    return it;
}

/* Hand it to the webhook thread (g.lock held). */
static void post_later_locked(status_item *it)
{
    if (g.tail)
        g.tail->next = it;
    else
        g.head = it;
    g.tail = it;
    pthread_cond_signal(&g.wake);
}

/* An accepted message: its status webhooks now, the held ones kept for
 * SIGUSR1 (g.lock held). A message to a group has only its `sent` (Meta's
 * group messaging page shows no other). */
static void queue_statuses_locked(const char *pnid, const char *wamid, const char *to,
                                  const char *ref, const char *category, int group)
{
    unsigned all = group ? STATUS_SENT : STATUS_ALL, at_accept = statuses.at_accept & all;
    status_item *now =
        at_accept ? status_item_new(pnid, wamid, to, ref, category, at_accept, group) : NULL;
    if (now)
        post_later_locked(now);
    status_item *later = at_accept != all ? status_item_new(pnid, wamid, to, ref, category,
                                                            all & ~at_accept, group)
                                          : NULL;
    if (!later)
        return;
    if (statuses.held_tail)
        statuses.held_tail->next = later;
    else
        statuses.held = later;
    statuses.held_tail = later;
}

static void on_phones_online(int sig)
{
    (void)sig;
    statuses.phones_online = 1;
}

/* SIGUSR1 came: the held statuses of every message accepted so far go out. */
static void post_held_statuses(void)
{
    if (!statuses.phones_online)
        return;
    statuses.phones_online = 0;
    pthread_mutex_lock(&g.lock);
    while (statuses.held) {
        status_item *it = statuses.held;
        statuses.held = it->next;
        it->next = NULL;
        post_later_locked(it);
    }
    statuses.held_tail = NULL;
    pthread_mutex_unlock(&g.lock);
}

static void free_status_list(status_item *it)
{
    while (it) {
        status_item *next = it->next;
        free(it);
        it = next;
    }
}

/* ---- records and status webhooks --------------------------------------------------- */

/* --fail-status-to: Meta's error for the first message accepted to to, and
 * 0 from then on (g.lock held). */
static long status_failure_for_locked(const char *to)
{
    for (int i = 0; i < opt.nstatus_fails; i++)
        if (opt.status_fails[i].code && strcmp(opt.status_fails[i].to, to) == 0) {
            long code = opt.status_fails[i].code;
            opt.status_fails[i].code = 0;
            return code;
        }
    return 0;
}

/* category: the accepted message's pricing category; NULL for a read
 * mark, which has no status webhooks. group: it was sent to a group. */
static void record(const char *pnid, const char *kind, const char *to, const char *ref,
                   const char *wamid, const char *category, int group)
{
    pthread_mutex_lock(&g.lock);
    fprintf(g.record, "%lld %s %s %s %s %s\n", (long long)bz_wall_ms(), pnid, kind,
            *to ? to : "-", *ref ? ref : "-", wamid);
    fflush(g.record);
    long failed = category ? status_failure_for_locked(to) : 0;
    status_item *it =
        failed && opt.webhook ? status_item_new(pnid, wamid, to, ref, category, 0, group) : NULL;
    if (it) {
        it->failed_code = failed;
        post_later_locked(it);
    } else if (opt.webhook && category) {
        queue_statuses_locked(pnid, wamid, to, ref, category, group);
    }
    pthread_mutex_unlock(&g.lock);
}

/* A business-scoped user id, as Meta's BSUID page writes one: a country
 * code, a dot, then letters and digits (a parent's "CC.ENT." too); a
 * phone's digits have no dot. */
static int is_bsuid(const char *to)
{
    return strchr(to, '.') != NULL;
}

/* Name the recipient of it on status s as Meta does: recipient_id (the
 * phone, unless withheld) and recipient_user_id (the BSUID, when known;
 * graph_users.c); a group's id with recipient_type group. */
static json_t *with_recipient(json_t *s, const status_item *it)
{
    if (it->group) {
        json_object_set_new(s, "recipient_id", json_string(it->to));
        json_object_set_new(s, "recipient_type", json_string("group"));
        return s;
    }
    char phone[ADDRESSEE_MAX], bsuid[ADDRESSEE_MAX];
    gu_recipient(it->to, phone, sizeof phone, bsuid, sizeof bsuid);
    if (*phone)
        json_object_set_new(s, "recipient_id", json_string(phone));
    if (*bsuid)
        json_object_set_new(s, "recipient_user_id", json_string(bsuid));
    return s;
}

static json_t *status_of(const status_item *it, const char *status, long long ts)
{
    char when[24];
    snprintf(when, sizeof when, "%lld", ts);
    /* Meta's per-message pricing: a template is billed by its category, a
     * free-form reply is a free customer-service message, and anything in a
     * free entry point window (graph_entry_points.c) is free */
    int service = strcmp(it->category, "service") == 0;
    int entry_point = !it->group && ge_free_entry_point(it->to, ts * 1000);
    const char *type = entry_point ? "free_entry_point"
                       : service   ? "free_customer_service"
                                   : "regular";
    json_t *s = with_recipient(
        json_pack("{s:s, s:s, s:s, s:{s:b, s:s, s:s, s:s}}", "id", it->wamid, "status", status,
                  "timestamp", when, "pricing", "billable", strcmp(type, "regular") == 0,
                  "pricing_model", "PMP", "category", it->category, "type", type),
        it);
    if (*it->ref)
        json_object_set_new(s, "biz_opaque_callback_data", json_string(it->ref));
    return s;
}

/* POST doc (consumed) to --webhook signed as Meta signs, up to attempts
 * times until it answers 200; returns the last status (0: no answer). */
static long post_signed(CURL *curl, json_t *doc, int attempts)
{
    char *body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!body)
        return 0;
    unsigned char mac[32];
    unsigned len = 0;
    HMAC(EVP_sha256(), opt.app_secret, (int)strlen(opt.app_secret), (unsigned char *)body,
         strlen(body), mac, &len);
    char header[128] = "X-Hub-Signature-256: sha256=";
    for (unsigned i = 0; i < len; i++)
        snprintf(header + strlen(header), 3, "%02x", mac[i]);
    struct curl_slist *h = curl_slist_append(NULL, header);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, opt.webhook);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    long status = 0;
    for (int attempt = 0; attempt < attempts; attempt++) {
        status = 0;
        if (curl_easy_perform(curl) == CURLE_OK &&
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200)
            break;
        usleep(200000);
    }
    curl_slist_free_all(h);
    free(body);
    return status;
}

/* The `failed` status of a message Meta accepted and then did not deliver:
 * errors[] with Meta's code, title, message and details, no pricing. */
static json_t *failed_status_of(const status_item *it, long long ts)
{
    char when[24];
    snprintf(when, sizeof when, "%lld", ts);
    const char *text = message_of(it->failed_code);
    json_t *s = with_recipient(
        json_pack("{s:s, s:s, s:s, s:[{s:I, s:s, s:s, s:{s:s}}]}", "id", it->wamid, "status",
                  "failed", "timestamp", when, "errors", "code", (json_int_t)it->failed_code,
                  "title", text, "message", text, "error_data", "details", text),
        it);
    if (*it->ref)
        json_object_set_new(s, "biz_opaque_callback_data", json_string(it->ref));
    return s;
}

static void post_webhook(CURL *curl, const status_item *it)
{
    long long ts = (long long)(bz_wall_ms() / 1000);
    const struct {
        unsigned bit;
        const char *name;
    } order[] = {{STATUS_SENT, "sent"}, {STATUS_DELIVERED, "delivered"}, {STATUS_READ, "read"}};
    json_t *list = json_array();
    if (it->failed_code)
        json_array_append_new(list, failed_status_of(it, ts));
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (it->statuses & order[i].bit)
            json_array_append_new(list, status_of(it, order[i].name, ts));
    json_t *doc = json_pack(
        "{s:s, s:[{s:s, s:[{s:s, s:{s:s, s:{s:s, s:s}, s:o}}]}]}", "object",
        "whatsapp_business_account", "entry", "id", "WABA", "changes", "field", "messages", "value",
        "messaging_product", "whatsapp", "metadata", "display_phone_number", it->pnid,
        "phone_number_id", it->pnid, "statuses", list);
    post_signed(curl, doc, 20);
}


static void *webhook_main(void *arg)
{
    (void)arg;
    CURL *curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
    for (;;) {
        pthread_mutex_lock(&g.lock);
        while (!g.head && !bz_shutdown_requested()) {
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_nsec += 100000000;
            if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&g.wake, &g.lock, &t);
        }
        status_item *it = g.head;
        if (it) {
            g.head = it->next;
            if (!g.head)
                g.tail = NULL;
        }
        pthread_mutex_unlock(&g.lock);
        if (!it)
            break;
        post_webhook(curl, it);
        free(it);
    }
    curl_easy_cleanup(curl);
    if (sink)
        fclose(sink);
    return NULL;
}

/* ---- connections and the request log (--requests, --accept-drop-every) -------------- */

/* One client connection: which it is, how many requests it carried, and
 * the one in progress (HTTP/1.1: one at a time). */
typedef struct connection_seen {
    long id, requests;
    int64_t start_ms;
    const char *what;
} connection_seen;

static struct {
    const char *path;
    FILE *file;
    atomic_long connections, accepted_kept_alive;
} requests;

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        connection_seen *seen = calloc(1, sizeof *seen);
        if (seen)
            seen->id = atomic_fetch_add(&requests.connections, 1) + 1;
        *socket_context = seen;
    } else {
        free(*socket_context);
        *socket_context = NULL;
    }
}

static connection_seen *connection_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* A request's headers arrived on c. */
static void request_started(struct MHD_Connection *c)
{
    connection_seen *seen = connection_of(c);
    if (!seen)
        return;
    seen->requests++;
    seen->start_ms = bz_wall_ms();
    seen->what = "unfinished";
}

static void request_became(struct MHD_Connection *c, const char *what)
{
    connection_seen *seen = connection_of(c);
    if (seen)
        seen->what = what;
}

/* A message was just accepted: is its answer to be lost? Every
 * --accept-drop-every'th one accepted on a connection that already carried
 * a request. */
static int drop_after_accepting(struct MHD_Connection *c)
{
    connection_seen *seen = connection_of(c);
    if (!opt.accept_drop_every || !seen || seen->requests < 2 ||
        (atomic_fetch_add(&requests.accepted_kept_alive, 1) + 1) % opt.accept_drop_every != 0)
        return 0;
    seen->what = "accepted-dropped";
    return 1;
}

static void request_ended(struct MHD_Connection *c)
{
    connection_seen *seen = connection_of(c);
    if (!requests.file || !seen || !seen->what)
        return;
    pthread_mutex_lock(&g.lock);
    fprintf(requests.file, "%lld %ld %ld %s\n", (long long)seen->start_ms, seen->id,
            seen->requests, seen->what);
    fflush(requests.file);
    pthread_mutex_unlock(&g.lock);
    seen->what = NULL;
}

/* ---- template definitions (--templates) ----------------------------------------------- */

/* Why Meta refuses a request: its code, message and error_data.details. */
typedef struct refusal {
    long code;
    char message[128], details[256];
} refusal;

static int refuse(refusal *r, long code, const char *message, const char *details)
{
    r->code = code;
    snprintf(r->message, sizeof r->message, "%s", message);
    snprintf(r->details, sizeof r->details, "%s", details);
    return 1;
}

/* The variables of a template text, as Meta's template documentation writes
 * them: {{N}} (positional) or {{name}} (named: lowercase letters, digits,
 * underscores). Distinct names into names (up to max), their count returned. */
static size_t template_variables(const char *text, char names[][64], size_t max)
{
    size_t n = 0;
    for (const char *p = text ? strstr(text, "{{") : NULL; p; p = strstr(p + 2, "{{")) {
        size_t len = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (len == 0 || len >= 64 || strncmp(p + 2 + len, "}}", 2) != 0)
            continue;
        char name[64];
        memcpy(name, p + 2, len);
        name[len] = '\0';
        int seen = 0;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(names[i], name) == 0;
        if (!seen && n < max)
            snprintf(names[n++], 64, "%s", name);
    }
    return n;
}

static json_t *template_named(const char *name, const char *language)
{
    size_t i;
    json_t *t;
    json_array_foreach(g.templates, i, t) {
        const char *n = json_string_value(json_object_get(t, "name"));
        const char *l = json_string_value(json_object_get(t, "language"));
        if (n && l && strcmp(n, name) == 0 && strcmp(l, language) == 0)
            return t;
    }
    return NULL;
}

/* The component of type `type` (any case) in an array of components. */
static json_t *component_of(json_t *components, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(components, i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcasecmp(t, type) == 0)
            return c;
    }
    return NULL;
}

/* The request's text parameters of one component against the template's
 * text of that component. */
static int component_refused(const char *type, json_t *defined, json_t *sent, int named,
                             refusal *r)
{
    const char *format = json_string_value(json_object_get(defined, "format"));
    if (strcasecmp(type, "header") == 0 && format && strcasecmp(format, "TEXT") != 0)
        return 0;
    char names[32][64], details[256];
    size_t want = template_variables(json_string_value(json_object_get(defined, "text")), names,
                                     32);
    size_t got = 0, i;
    json_t *param;
    json_array_foreach(json_object_get(sent, "parameters"), i, param) {
        const char *ptype = json_string_value(json_object_get(param, "type"));
        if (!ptype || strcmp(ptype, "text") != 0)
            continue;
        got++;
        const char *pname = json_string_value(json_object_get(param, "parameter_name"));
        int known = 0;
        for (size_t k = 0; pname && k < want && !known; k++)
            known = strcmp(names[k], pname) == 0;
        if (named && !known) {
            snprintf(details, sizeof details,
                     "%s: Format mismatch, expected NAMED, parameter_name %s unknown", type,
                     pname ? pname : "(none)");
            return refuse(r, 132012,
                          "(#132012) Parameter format does not match format in the created "
                          "template",
                          details);
        }
    }
    if (got == want)
        return 0;
    snprintf(details, sizeof details,
             "%s: number of localizable_params (%zu) does not match the expected number of "
             "params (%zu)",
             type, got, want);
    return refuse(r, 132000, "(#132000) Number of parameters does not match the expected number "
                             "of params", details);
}

/* A template message checked against the --templates definitions. */
static int template_refused(json_t *doc, refusal *r)
{
    json_t *tpl = json_object_get(doc, "template");
    if (!g.templates || !tpl)
        return 0;
    const char *name = json_string_value(json_object_get(tpl, "name"));
    const char *language =
        json_string_value(json_object_get(json_object_get(tpl, "language"), "code"));
    json_t *defined = template_named(name ? name : "", language ? language : "");
    if (!defined) {
        char details[256];
        snprintf(details, sizeof details, "template name (%s) does not exist in %s",
                 name ? name : "", language ? language : "");
        return refuse(r, 132001, "(#132001) Template name does not exist in the translation",
                      details);
    }
    const char *format = json_string_value(json_object_get(defined, "parameter_format"));
    int named = format && strcasecmp(format, "NAMED") == 0;
    json_t *components = json_object_get(defined, "components");
    json_t *sent = json_object_get(tpl, "components");
    static const char *const types[] = {"header", "body"};
    for (size_t i = 0; i < 2; i++) {
        json_t *def = component_of(components, types[i]);
        if (def && component_refused(types[i], def, component_of(sent, types[i]), named, r))
            return 1;
    }
    return 0;
}

static int load_templates(void)
{
    if (!opt.templates_path)
        return 1;
    json_error_t e;
    g.templates = json_load_file(opt.templates_path, 0, &e);
    if (!json_is_array(g.templates)) {
        fprintf(stderr, "graph_test_server: %s: not a JSON array of templates (%s)\n",
                opt.templates_path, e.text);
        return 0;
    }
    return 1;
}

/* --bodies: the request of an accepted message, whole. */
static void record_body(const char *wamid, json_t *doc)
{
    if (!g.bodies)
        return;
    char *text = json_dumps(doc, JSON_COMPACT);
    pthread_mutex_lock(&g.lock);
    fprintf(g.bodies, "%s %s\n", wamid, text ? text : "null");
    fflush(g.bodies);
    pthread_mutex_unlock(&g.lock);
    free(text);
}

/* ---- Meta's limits on interactive messages ----------------------------------------------- */

/* The string member `name` of obj has min..max characters; else 131009. */
static int length_refused(json_t *obj, const char *what, const char *name, size_t min, size_t max,
                          refusal *r)
{
    size_t n = bz_utf8_chars(json_string_value(json_object_get(obj, name)));
    if (n >= min && n <= max)
        return 0;
    char details[256];
    snprintf(details, sizeof details, "%s %s length invalid (%zu). Min length: %zu, Max length: %zu",
             what, name, n, min, max);
    return refuse(r, 131009, "(#131009) Parameter value is not valid", details);
}

static int count_refused(const char *what, size_t n, size_t min, size_t max, refusal *r)
{
    if (n >= min && n <= max)
        return 0;
    char details[256];
    snprintf(details, sizeof details, "Invalid %s count (%zu). Min allowed: %zu, Max allowed: %zu",
             what, n, min, max);
    return refuse(r, 131009, "(#131009) Parameter value is not valid", details);
}

static int reply_buttons_refused(json_t *buttons, refusal *r)
{
    if (count_refused("buttons", json_array_size(buttons), 1, 3, r))
        return 1;
    size_t i, k;
    json_t *b, *other;
    json_array_foreach(buttons, i, b) {
        json_t *reply = json_object_get(b, "reply");
        if (length_refused(reply, "Button", "title", 1, 20, r) ||
            length_refused(reply, "Button", "id", 1, 256, r))
            return 1;
        json_array_foreach(buttons, k, other) {
            const char *t = json_string_value(json_object_get(json_object_get(other, "reply"),
                                                              "title"));
            if (k < i && t && strcmp(t, json_string_value(json_object_get(reply, "title"))) == 0)
                return refuse(r, 131009, "(#131009) Parameter value is not valid",
                              "Button title must be unique");
        }
    }
    return 0;
}

static int list_refused(json_t *action, refusal *r)
{
    json_t *sections = json_object_get(action, "sections");
    if (length_refused(action, "List", "button", 1, 20, r) ||
        count_refused("sections", json_array_size(sections), 1, 10, r))
        return 1;
    size_t rows = 0, i, k;
    json_t *section, *row, *ids = json_object();
    int refused = 0;
    json_array_foreach(sections, i, section) {
        /* a title is required once there are several sections */
        refused = refused || length_refused(section, "Section", "title",
                                            json_array_size(sections) > 1 ? 1 : 0, 24, r);
        json_array_foreach(json_object_get(section, "rows"), k, row) {
            rows++;
            const char *id = json_string_value(json_object_get(row, "id"));
            refused = refused || length_refused(row, "Row", "title", 1, 24, r) ||
                      length_refused(row, "Row", "description", 0, 72, r) ||
                      length_refused(row, "Row", "id", 1, 200, r);
            if (!refused && json_object_get(ids, id))
                refused = refuse(r, 131009, "(#131009) Parameter value is not valid",
                                 "Row ID must be unique");
            if (!refused)
                json_object_set_new(ids, id, json_true());
        }
    }
    json_decref(ids);
    return refused || count_refused("rows", rows, 1, 10, r);
}

/* A call-to-action URL button: action name cta_url, a display text of
 * 1-20 characters and a URL (Meta's CTA URL button page). */
static int cta_url_refused(json_t *action, refusal *r)
{
    json_t *params = json_object_get(action, "parameters");
    const char *name = json_string_value(json_object_get(action, "name"));
    if (!name || strcmp(name, "cta_url") != 0 || !json_is_string(json_object_get(params, "url")))
        return refuse(r, 100, "(#100) Invalid parameter",
                      "action must be {name: cta_url, parameters: {display_text, url}}");
    return length_refused(params, "Button", "display_text", 1, 20, r);
}

/* A location request: a body and the send_location action, no header or
 * footer (Meta's location request page). */
static int location_request_refused(json_t *in, refusal *r)
{
    const char *name = json_string_value(json_object_get(json_object_get(in, "action"), "name"));
    if (!name || strcmp(name, "send_location") != 0)
        return refuse(r, 100, "(#100) Invalid parameter", "action.name must be send_location");
    if (json_object_get(in, "header") || json_object_get(in, "footer"))
        return refuse(r, 100, "(#100) Invalid parameter",
                      "a location request message has no header or footer");
    return 0;
}

/* A flow message (Meta's flow messages page): action name flow, version
 * "3", the flow by flow_id or flow_name (not both), a flow_cta, a
 * flow_action of navigate or data_exchange, a payload only when it
 * navigates, whose data is a non-empty object, the input of the screen it
 * names. */
static int flow_refused(json_t *action, refusal *r)
{
    json_t *p = json_object_get(action, "parameters");
    const char *name = json_string_value(json_object_get(action, "name"));
    const char *version = json_string_value(json_object_get(p, "flow_message_version"));
    const char *how = json_string_value(json_object_get(p, "flow_action"));
    json_t *payload = json_object_get(p, "flow_action_payload");
    json_t *data = json_object_get(payload, "data");
    const char *why = NULL;
    if (!name || strcmp(name, "flow") != 0)
        why = "action.name must be flow";
    else if (!version || strcmp(version, "3") != 0)
        why = "flow_message_version must be 3";
    else if (!json_object_get(p, "flow_id") == !json_object_get(p, "flow_name"))
        why = "exactly one of flow_id and flow_name is required";
    else if (!json_is_string(json_object_get(p, "flow_cta")))
        why = "flow_cta is required";
    else if (how && strcmp(how, "navigate") != 0 && strcmp(how, "data_exchange") != 0)
        why = "flow_action must be navigate or data_exchange";
    else if (payload && how && strcmp(how, "data_exchange") == 0)
        why = "flow_action_payload should be omitted for data_exchange";
    else if (data && (!json_is_object(data) || json_object_size(data) == 0))
        why = "flow_action_payload.data must be a non-empty object";
    else if (data && !json_is_string(json_object_get(payload, "screen")))
        why = "flow_action_payload.data is the input of the first screen: screen is required";
    return why ? refuse(r, 100, "(#100) Invalid parameter", why) : 0;
}

/* An interactive message against Meta's limits; other types pass. */
static int interactive_refused(json_t *doc, refusal *r)
{
    json_t *in = json_object_get(doc, "interactive");
    const char *type = json_string_value(json_object_get(in, "type"));
    if (!in || !type)
        return 0;
    int list = strcmp(type, "list") == 0;
    json_t *header = json_object_get(in, "header");
    const char *htype = json_string_value(json_object_get(header, "type"));
    if (length_refused(json_object_get(in, "body"), "Body", "text", 1, list ? 4096 : 1024, r) ||
        length_refused(json_object_get(in, "footer"), "Footer", "text", 0, 60, r) ||
        (htype && strcmp(htype, "text") == 0 &&
         length_refused(header, "Header", "text", 1, 60, r)))
        return 1;
    json_t *action = json_object_get(in, "action");
    if (strcmp(type, "button") == 0)
        return reply_buttons_refused(json_object_get(action, "buttons"), r);
    if (strcmp(type, "cta_url") == 0)
        return cta_url_refused(action, r);
    if (strcmp(type, "location_request_message") == 0)
        return location_request_refused(in, r);
    if (strcmp(type, "flow") == 0)
        return flow_refused(action, r);
    return list ? list_refused(action, r) : 0;
}

/* ---- the template list (GET .../message_templates) ----------------------------------- */

static int parse_long(const char *text, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && *out >= 0;
}

#define LIST_LIMIT_DEFAULT 25
#define LIST_LIMIT_MAX 1000

/* The id of definition i: its own, else one made from its position. */
static void template_id(json_t *t, size_t i, char *out, size_t cap)
{
    const char *id = json_string_value(json_object_get(t, "id"));
    if (id)
        snprintf(out, cap, "%s", id);
    else
        snprintf(out, cap, "%zu", (size_t)9000000000u + i);
}

/* A cursor pointing to the template with that id: base64, as Meta's are
 * opaque strings. */
static void cursor_of(const char *id, char *out, size_t cap)
{
    unsigned char b64[128];
    size_t len = strlen(id);
    if (len > 90 || cap < sizeof b64) {
        *out = '\0';
        return;
    }
    EVP_EncodeBlock(b64, (const unsigned char *)id, (int)len);
    snprintf(out, cap, "%s", (char *)b64);
}

/* The position after the template `cursor` points to; -1 when none does. */
static long position_after(const char *cursor)
{
    unsigned char id[128] = {0};
    size_t len = strlen(cursor);
    if (len == 0 || len % 4 || len > 160 || EVP_DecodeBlock(id, (const unsigned char *)cursor,
                                                             (int)len) < 0)
        return -1;
    size_t i;
    json_t *t;
    json_array_foreach(g.templates, i, t) {
        char tid[64];
        template_id(t, i, tid, sizeof tid);
        if (strcmp(tid, (char *)id) == 0)
            return (long)i + 1;
    }
    return -1;
}

/* `fields` names `field` (id always). */
static int field_wanted(const char *fields, const char *field)
{
    if (strcmp(field, "id") == 0)
        return 1;
    const char *defaults = "name,components,language,status,category";
    size_t n = strlen(field);
    for (const char *p = fields ? fields : defaults; (p = strstr(p, field)) != NULL; p += n)
        if ((p == (fields ? fields : defaults) || p[-1] == ',') && (p[n] == ',' || !p[n]))
            return 1;
    return 0;
}

/* Definition i as the list gives it, with the fields asked for. */
static json_t *listed_template(json_t *t, size_t i, const char *fields)
{
    char id[64];
    template_id(t, i, id, sizeof id);
    json_t *quality = json_object_get(t, "quality_score");
    const char *status = json_string_value(json_object_get(t, "status"));
    const char *reason = json_string_value(json_object_get(t, "rejected_reason"));
    struct {
        const char *name;
        json_t *value;
    } members[] = {
        {"name", json_incref(json_object_get(t, "name"))},
        {"language", json_incref(json_object_get(t, "language"))},
        {"status", json_string(status ? status : "APPROVED")},
        {"category", json_incref(json_object_get(t, "category"))},
        {"quality_score", json_incref(quality)},
        {"rejected_reason", json_string(reason ? reason : "NONE")},
        {"components", json_incref(json_object_get(t, "components"))},
        {"id", json_string(id)},
    };
    json_t *out = json_object();
    for (size_t k = 0; k < sizeof members / sizeof members[0]; k++) {
        if (members[k].value && field_wanted(fields, members[k].name))
            json_object_set(out, members[k].name, members[k].value);
        json_decref(members[k].value);
    }
    return out;
}

/* An absolute URL of this list with limit, fields and one cursor. */
static json_t *page_url(struct MHD_Connection *c, const char *version, const char *waba,
                        long limit, const char *fields, const char *which, const char *cursor)
{
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    char *escaped = curl_easy_escape(NULL, cursor, 0);
    char *escaped_fields = fields ? curl_easy_escape(NULL, fields, 0) : NULL;
    char url[1024];
    snprintf(url, sizeof url, "http://%s/%s/%s/message_templates?limit=%ld%s%s&%s=%s",
             host ? host : "127.0.0.1", version, waba, limit, escaped_fields ? "&fields=" : "",
             escaped_fields ? escaped_fields : "", which, escaped ? escaped : "");
    curl_free(escaped);
    curl_free(escaped_fields);
    return json_string(url);
}

static enum MHD_Result template_list(struct MHD_Connection *c, const char *version,
                                     const char *waba)
{
    request_became(c, "answered");
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!token_ok(waba, auth)) {
        if (!token_ok(NULL, auth))
            return meta_error(c, 401, 190, "OAuthException",
                              "Error validating access token: Session has expired",
                              "token expired");
        char message[256];
        snprintf(message, sizeof message,
                 "Unsupported get request. Object with ID '%s' does not exist, cannot be loaded "
                 "due to missing permissions, or does not support this operation",
                 waba);
        return meta_error(c, 400, 100, "GraphMethodException", message, message);
    }
    const char *limit_text = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    const char *after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    const char *fields = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "fields");
    long limit = LIST_LIMIT_DEFAULT, start = 0;
    if (limit_text && (!parse_long(limit_text, &limit) || limit < 1 || limit > LIST_LIMIT_MAX))
        return meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                          "limit must be a whole number from 1 to 1000");
    if (after && (start = position_after(after)) < 0)
        return meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                          "after is not a cursor of this list");
    size_t total = json_array_size(g.templates), end = (size_t)start + (size_t)limit;
    if (end > total)
        end = total;
    json_t *data = json_array();
    for (size_t i = (size_t)start; i < end; i++)
        json_array_append_new(data, listed_template(json_array_get(g.templates, i), i, fields));
    json_t *doc = json_pack("{s:o}", "data", data);
    if ((size_t)start < end) {
        char first[64], last[64], before_cursor[160], after_cursor[160];
        template_id(json_array_get(g.templates, (size_t)start), (size_t)start, first, sizeof first);
        template_id(json_array_get(g.templates, end - 1), end - 1, last, sizeof last);
        cursor_of(first, before_cursor, sizeof before_cursor);
        cursor_of(last, after_cursor, sizeof after_cursor);
        json_t *paging = json_pack("{s:{s:s, s:s}}", "cursors", "before", before_cursor, "after",
                                   after_cursor);
        if (start > 0)
            json_object_set_new(paging, "previous", page_url(c, version, waba, limit, fields,
                                                             "before", before_cursor));
        if (end < total)
            json_object_set_new(paging, "next", page_url(c, version, waba, limit, fields,
                                                         "after", after_cursor));
        json_object_set_new(doc, "paging", paging);
    }
    return answer(c, 200, doc);
}

/* ---- one request ------------------------------------------------------------------ */

typedef struct upload {
    char *data;
    size_t len;
    int too_big;
} upload;

static int every(long n, long k)
{
    return n > 0 && k % n == 0;
}

static long failure_for(const char *to)
{
    for (int i = 0; i < opt.nfails; i++)
        if (strcmp(opt.fails[i].to, to) == 0)
            return opt.fails[i].code;
    return 0;
}

static const char *kind_of(json_t *doc)
{
    if (json_string_value(json_object_get(doc, "status")))
        return "read";
    const char *type = json_string_value(json_object_get(doc, "type"));
    return type ? type : "text";
}

/* How Meta prices the message: a template by its category (as --templates
 * defines it, lower-cased; marketing when it says none), anything else as
 * service (a reply inside the customer-service window). */
static void pricing_category_of(json_t *doc, const char *kind, char *out, size_t cap)
{
    snprintf(out, cap, "service");
    if (strcmp(kind, "template") != 0)
        return;
    json_t *t = json_object_get(doc, "template");
    const char *name = json_string_value(json_object_get(t, "name"));
    const char *language = json_string_value(json_object_get(json_object_get(t, "language"), "code"));
    json_t *defined = template_named(name ? name : "", language ? language : "");
    const char *category = json_string_value(json_object_get(defined, "category"));
    snprintf(out, cap, "%s", category ? category : "MARKETING");
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* The addressee as Meta's BSUID page documents it: `to` (a phone) when
 * given, else `recipient` (a BSUID or parent BSUID); NULL when neither. */
static const char *addressee_of(json_t *doc, int *by_bsuid)
{
    const char *to = json_string_value(json_object_get(doc, "to"));
    const char *bsuid = json_string_value(json_object_get(doc, "recipient"));
    *by_bsuid = !(to && *to) && bsuid && *bsuid;
    return to && *to ? to : *by_bsuid ? bsuid : NULL;
}

/* Meta's answer to an accepted message: contacts[].input is what the
 * request named, with wa_id (the phone, unless withheld) and user_id (the
 * BSUID, when known). */
static json_t *accepted_answer(const char *to, const char *wamid)
{
    char phone[ADDRESSEE_MAX], bsuid[ADDRESSEE_MAX];
    gu_recipient(to, phone, sizeof phone, bsuid, sizeof bsuid);
    json_t *contact = json_pack("{s:s}", "input", to);
    if (*phone)
        json_object_set_new(contact, "wa_id", json_string(phone));
    if (*bsuid)
        json_object_set_new(contact, "user_id", json_string(bsuid));
    return json_pack("{s:s, s:[o], s:[{s:s}]}", "messaging_product", "whatsapp", "contacts",
                     contact, "messages", "id", wamid);
}

/* Meta's answer to a message accepted for a group: the group messaging
 * page's send returns the message's id; the group is no user, so no
 * contact is named. */
static json_t *group_answer(const char *wamid)
{
    return json_pack("{s:s, s:[{s:s}]}", "messaging_product", "whatsapp", "messages", "id", wamid);
}

static enum MHD_Result handle_message(struct MHD_Connection *c, const char *pnid, json_t *doc)
{
    const char *kind = kind_of(doc);
    int by_bsuid = 0;
    const char *to = addressee_of(doc, &by_bsuid);
    const char *recipient_type = json_string_value(json_object_get(doc, "recipient_type"));
    int to_group = recipient_type && strcmp(recipient_type, "group") == 0;
    /* Meta's group messaging page: text, media and templates, nothing
     * interactive; the group named by its id in to */
    if (to_group && (by_bsuid || strcmp(kind, "interactive") == 0))
        return meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                          by_bsuid ? "a group message names the group's id in to"
                                   : "interactive messages are not supported in groups");
    const char *ref = json_string_value(json_object_get(doc, "biz_opaque_callback_data"));
    if (strcmp(kind, "read") == 0) {
        const char *id = json_string_value(json_object_get(doc, "message_id"));
        if (!id || strcmp(json_string_value(json_object_get(doc, "status")), "read") != 0)
            return meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                              "message_id is required");
        record(pnid, "read", "", id, id, NULL, 0);
        return answer(c, 200, json_pack("{s:b}", "success", 1));
    }
    if (!to || strlen(to) >= ADDRESSEE_MAX || (by_bsuid && !is_bsuid(to)) ||
        !json_object_get(doc, kind))
        return meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                          "to (a phone) or recipient (a BSUID), and the message object of "
                          "its type, are required");
    long code = failure_for(to);
    if (code)
        return fail_code(c, code);
    refusal why;
    if (template_refused(doc, &why) || interactive_refused(doc, &why))
        return meta_error(c, 400, why.code, "OAuthException", why.message, why.details);
    gts_refusal media_why;
    if (gts_media_id_refused(pnid, doc, kind, &media_why))
        return meta_error(c, media_why.status, media_why.code, "OAuthException",
                          media_why.message, media_why.details);
    char wamid[96];
    snprintf(wamid, sizeof wamid, "wamid.T%s_%ld", pnid, atomic_fetch_add(&g.wamids, 1) + 1);
    char category[32];
    pricing_category_of(doc, kind, category, sizeof category);
    record(pnid, kind, to, ref ? ref : "", wamid, category, to_group);
    record_body(wamid, doc);
    if (drop_after_accepting(c))
        return MHD_NO;
    return answer(c, 200, to_group ? group_answer(wamid) : accepted_answer(to, wamid));
}

/* Post value (consumed) as the one change of field in a notification of
 * the WABA, as Meta posts it, once; ingest's HTTP status (0: no answer). */
static long post_change(const char *waba, const char *field, json_t *value)
{
    json_t *doc = json_pack("{s:s, s:[{s:s, s:I, s:[{s:o, s:s}]}]}", "object",
                            "whatsapp_business_account", "entry", "id", waba, "time",
                            (json_int_t)(bz_wall_ms() / 1000), "changes", "value", value, "field",
                            field);
    CURL *curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
    long status = post_signed(curl, doc, 1);
    curl_easy_cleanup(curl);
    if (sink)
        fclose(sink);
    return status;
}

/* The answer of a control request that posted webhooks: 200 when ingest
 * took them all, else 502, with ingest's status and the id made, if any. */
static enum MHD_Result posted(struct MHD_Connection *c, long status, const char *id)
{
    json_t *doc = json_pack("{s:I}", "webhook_status", (json_int_t)status);
    if (id)
        json_object_set_new(doc, "id", json_string(id));
    return answer(c, status == 200 ? 200 : 502, doc);
}

static enum MHD_Result invalid(struct MHD_Connection *c, const char *details)
{
    return meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter", details);
}

/* The body of a control request: a JSON object, and --webhook to post to. */
static json_t *control_body(const upload *up)
{
    json_t *doc = up->data ? json_loadb(up->data, up->len, 0, NULL) : NULL;
    if (!json_is_object(doc) || !opt.webhook) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* POST /_review/{waba_id} (field message_template_status_update: Meta
 * decided about a template) and POST /_inbound/{waba_id} (field messages:
 * a user wrote): the body, a change's value, posted to --webhook at once
 * (see the top). */
static enum MHD_Result notify(struct MHD_Connection *c, const char *waba, const char *field,
                              const upload *up)
{
    json_t *value = control_body(up);
    if (!value)
        return invalid(c, "a JSON object, and --webhook");
    if (strcmp(field, "messages") == 0)
        ge_user_wrote(value);
    return posted(c, post_change(waba, field, value), NULL);
}

/* POST /_preference/{waba_id}, /_address_book/{waba_id} and
 * /_volume_tier/{waba_id}: one change graph_phone.c shapes from the body
 * (see the top), posted as the rest. */
static enum MHD_Result phone_reported(struct MHD_Connection *c, const char *waba,
                                      const char *field, const upload *up,
                                      json_t *(*value_of)(json_t *, long long, const char **))
{
    json_t *req = control_body(up);
    if (!req)
        return invalid(c, "a JSON object, and --webhook");
    const char *why = NULL;
    json_t *value = value_of(req, (long long)(bz_wall_ms() / 1000), &why);
    enum MHD_Result r = value ? posted(c, post_change(waba, field, value), NULL) : invalid(c, why);
    json_decref(req);
    return r;
}

/* POST /_group/{waba_id}: something happened to a group the number is
 * in (see the top). */
static enum MHD_Result group_changed(struct MHD_Connection *c, const char *waba,
                                     const upload *up)
{
    json_t *req = control_body(up);
    if (!req)
        return invalid(c, "a JSON object, and --webhook");
    const char *field = NULL, *why = NULL;
    json_t *value = gp_group_value(req, &field, &why);
    enum MHD_Result r = value ? posted(c, post_change(waba, field, value), NULL) : invalid(c, why);
    json_decref(req);
    return r;
}

/* POST /_echo/{waba_id}: the owner typed a text on the phone (see the
 * top). */
static enum MHD_Result owner_typed(struct MHD_Connection *c, const char *waba, const upload *up)
{
    json_t *req = control_body(up);
    if (!req)
        return invalid(c, "a JSON object, and --webhook");
    char id[96];
    const char *why = NULL;
    json_t *value = gp_echo_value(req, (long long)(bz_wall_ms() / 1000), id, sizeof id, &why);
    enum MHD_Result r = value ? posted(c, post_change(waba, "smb_message_echoes", value), id)
                              : invalid(c, why);
    json_decref(req);
    return r;
}

/* Post the n changes of field in order while ingest takes them (Meta
 * reports a call's end after its start, and a history's phases one after
 * the other); those after a refusal are dropped. The last status. */
static long post_in_order(const char *waba, const char *field, json_t **values, size_t n)
{
    long status = 200;
    for (size_t i = 0; i < n; i++) {
        if (status == 200)
            status = post_change(waba, field, values[i]);
        else
            json_decref(values[i]);
    }
    return status;
}

/* POST /_call/{waba_id}: a customer called the number and hung up after
 * a while (see the top): the connect, then the terminate. */
static enum MHD_Result customer_called(struct MHD_Connection *c, const char *waba,
                                       const upload *up)
{
    json_t *req = control_body(up);
    if (!req)
        return invalid(c, "a JSON object, and --webhook");
    char id[96];
    const char *why = NULL;
    json_t *changes[2];
    enum MHD_Result r =
        gp_call_values(req, (long long)(bz_wall_ms() / 1000), &changes[0], &changes[1], id,
                       sizeof id, &why)
            ? posted(c, post_in_order(waba, "calls", changes, 2), id)
            : invalid(c, why);
    json_decref(req);
    return r;
}

/* POST /_history/{waba_id}: the owner shared the chat history (see the
 * top): its phases in order. */
static enum MHD_Result history_shared(struct MHD_Connection *c, const char *waba,
                                      const upload *up)
{
    json_t *req = control_body(up);
    if (!req)
        return invalid(c, "a JSON object, and --webhook");
    char id[96];
    const char *why = NULL;
    json_t *changes[GP_HISTORY_PHASES];
    enum MHD_Result r =
        gp_history_values(req, (long long)(bz_wall_ms() / 1000), changes, id, sizeof id, &why)
            ? posted(c, post_in_order(waba, "history", changes, GP_HISTORY_PHASES), id)
            : invalid(c, why);
    json_decref(req);
    return r;
}

/* POST /_throttle: from now on throttle a share of the requests (see the
 * top). */
static enum MHD_Result set_throttle_share(struct MHD_Connection *c, const upload *up)
{
    json_t *doc = up->data ? json_loadb(up->data, up->len, 0, NULL) : NULL;
    json_t *share = json_object_get(doc, "share_percent");
    if (!json_is_integer(share) || json_integer_value(share) < 0 ||
        json_integer_value(share) > 100) {
        json_decref(doc);
        return meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                          "share_percent: an integer 0-100");
    }
    atomic_store(&g.throttle_share, (long)json_integer_value(share));
    json_decref(doc);
    return answer(c, 200,
                  json_pack("{s:I}", "share_percent", (json_int_t)atomic_load(&g.throttle_share)));
}

/* Request k falls in the share POST /_throttle set: the share's count of
 * requests grows at k, so N% of any run of requests are throttled, evenly. */
static int in_throttle_share(long k)
{
    long share = atomic_load(&g.throttle_share);
    return share > 0 && k * share / 100 > (k - 1) * share / 100;
}

static enum MHD_Result upload_media(struct MHD_Connection *c, const char *pnid, const upload *up)
{
    if (!token_ok(pnid, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")))
        return meta_error(c, 401, 190, "OAuthException",
                          "Error validating access token: Session has expired", "token expired");
    char id[32];
    gts_refusal why;
    if (!gts_upload(pnid, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
                    up->data, up->len, id, sizeof id, &why))
        return meta_error(c, why.status, why.code, "OAuthException", why.message, why.details);
    record(pnid, "upload", "", "", id, NULL, 0);
    return answer(c, 200, json_pack("{s:s}", "id", id));
}

static enum MHD_Result complete(struct MHD_Connection *c, const char *method, const char *url,
                                upload *up)
{
    char version[32], pnid[64], tail[32];
    int get = strcmp(method, "GET") == 0;
    enum MHD_Result media;
    if (get && gm_route(c, url, token_ok, &media))
        return media;
    if (!get && sscanf(url, "/_review/%63[0-9]", pnid) == 1)
        return notify(c, pnid, "message_template_status_update", up);
    if (!get && sscanf(url, "/_inbound/%63[0-9]", pnid) == 1)
        return notify(c, pnid, "messages", up);
    if (!get && sscanf(url, "/_echo/%63[0-9]", pnid) == 1)
        return owner_typed(c, pnid, up);
    if (!get && sscanf(url, "/_call/%63[0-9]", pnid) == 1)
        return customer_called(c, pnid, up);
    if (!get && sscanf(url, "/_history/%63[0-9]", pnid) == 1)
        return history_shared(c, pnid, up);
    if (!get && sscanf(url, "/_preference/%63[0-9]", pnid) == 1)
        return phone_reported(c, pnid, "user_preferences", up, gp_preference_value);
    if (!get && sscanf(url, "/_address_book/%63[0-9]", pnid) == 1)
        return phone_reported(c, pnid, "smb_app_state_sync", up, gp_address_book_value);
    if (!get && sscanf(url, "/_volume_tier/%63[0-9]", pnid) == 1)
        return phone_reported(c, pnid, "account_update", up, gp_volume_tier_value);
    if (!get && sscanf(url, "/_group/%63[0-9]", pnid) == 1)
        return group_changed(c, pnid, up);
    if (!get && strcmp(url, "/_throttle") == 0)
        return set_throttle_share(c, up);
    if (!get && gts_upload_path(url, pnid, sizeof pnid))
        return upload_media(c, pnid, up);
    if (sscanf(url, "/%31[^/]/%63[^/]/%31s", version, pnid, tail) != 3 ||
        strcmp(tail, get ? "message_templates" : "messages") != 0)
        return meta_error(c, 404, 803, "OAuthException", "Unknown path", url);
    if (get)
        return template_list(c, version, pnid);
    long k = atomic_fetch_add(&g.requests, 1) + 1;
    request_became(c, "answered");
    if (every(opt.drop_every, k)) {
        request_became(c, "dropped");
        return MHD_NO;
    }
    if (every(opt.slow_every, k))
        usleep((useconds_t)opt.slow_ms * 1000);
    if (!token_ok(pnid, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")))
        return meta_error(c, 401, 190, "OAuthException",
                          "Error validating access token: Session has expired", "token expired");
    if (every(opt.throttle_every, k))
        return fail_code(c, atomic_fetch_add(&g.throttled, 1) % 2 ? 131056 : 130429);
    if (in_throttle_share(k)) {
        return fail_code(c, 130429);
    }
    json_t *doc = up->data ? json_loadb(up->data, up->len, 0, NULL) : NULL;
    const char *product = json_string_value(json_object_get(doc, "messaging_product"));
    enum MHD_Result r =
        !product || strcmp(product, "whatsapp") != 0
            ? meta_error(c, 400, 100, "OAuthException", "(#100) Invalid parameter",
                         "messaging_product must be whatsapp")
            : handle_message(c, pnid, doc);
    json_decref(doc);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    (void)cls;
    (void)version;
    upload *up = *state;
    if (!up) {
        if (strcmp(method, "POST") != 0 && strcmp(method, "GET") != 0)
            return meta_error(c, 405, 100, "OAuthException", "GET or POST only", method);
        *state = calloc(1, sizeof(upload));
        request_started(c);
        return *state ? MHD_YES : MHD_NO;
    }
    if (*size) {
        char pnid[64];
        if (up->len + *size > (gts_upload_path(url, pnid, sizeof pnid) ? GTS_UPLOAD_BODY_MAX
                                                                        : BODY_MAX))
            up->too_big = 1;
        else {
            char *grown = realloc(up->data, up->len + *size);
            if (!grown)
                return MHD_NO;
            up->data = grown;
            memcpy(up->data + up->len, data, *size);
            up->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    if (up->too_big)
        return meta_error(c, 413, 100, "OAuthException", "too large", "body too large");
    return complete(c, method, url, up);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)code;
    request_ended(c);
    upload *up = *state;
    if (up) {
        free(up->data);
        free(up);
    }
    *state = NULL;
}

/* ---- options and main ----------------------------------------------------------------- */

/* PHONE=CODE into the next of rules (n of them so far); the last '=', as
 * a Meta group's id (base64 text) may end in '='. */
static int add_rule(fail_rule *rules, int *n, const char *spec)
{
    const char *eq = strrchr(spec, '=');
    if (!eq || *n == MAX_FAILS || (size_t)(eq - spec) >= sizeof rules[0].to)
        return 0;
    fail_rule *f = &rules[(*n)++];
    memcpy(f->to, spec, (size_t)(eq - spec));
    f->to[eq - spec] = '\0';
    return parse_long(eq + 1, &f->code) && f->code != 0;
}

static int failure_option(const char *name, const char *value)
{
    if (strcmp(name, "--fail-to") == 0)
        return add_rule(opt.fails, &opt.nfails, value);
    if (strcmp(name, "--fail-status-to") == 0)
        return add_rule(opt.status_fails, &opt.nstatus_fails, value);
    return -1;
}

static int string_option(const char *name, const char *value)
{
    const struct {
        const char *name;
        const char **to;
    } table[] = {{"--port-file", &opt.port_file}, {"--record", &opt.record_path},
                 {"--tokens", &opt.tokens_path},   {"--webhook", &opt.webhook},
                 {"--app-secret", &opt.app_secret}, {"--app-secret-file", &opt.app_secret_file},
                 {"--templates", &opt.templates_path}, {"--bodies", &opt.bodies_path}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(name, table[i].name) == 0) {
            *table[i].to = value;
            return 1;
        }
    return 0;
}

static int number_option(const char *name, long value)
{
    const struct {
        const char *name;
        long *to;
    } table[] = {{"--port", &opt.port},
                 {"--throttle-every", &opt.throttle_every},
                 {"--drop-every", &opt.drop_every},
                 {"--accept-drop-every", &opt.accept_drop_every},
                 {"--slow-every", &opt.slow_every},
                 {"--slow-ms", &opt.slow_ms}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(name, table[i].name) == 0) {
            *table[i].to = value;
            return 1;
        }
    return 0;
}

/* --statuses and --requests. */
static int delivery_option(const char *name, const char *value)
{
    if (strcmp(name, "--statuses") == 0)
        return parse_statuses(value);
    if (strcmp(name, "--requests") == 0) {
        requests.path = value;
        return 1;
    }
    return 0;
}

/* The first line of --app-secret-file into buf; 0 when it cannot be read
 * or is empty. */
static int read_app_secret(char *buf, size_t cap)
{
    FILE *f = fopen(opt.app_secret_file, "r");
    if (!f)
        return 0;
    int ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (!ok)
        return 0;
    buf[strcspn(buf, "\r\n")] = '\0';
    return *buf != '\0';
}

static int parse_options(int argc, char **argv)
{
    static char secret_from_file[512];
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        long n = 0;
        int failure = failure_option(o, v);
        int ok = string_option(o, v) || delivery_option(o, v) || gm_option(o, v) ||
                 gu_option(o, v) ||
                 (failure >= 0 ? failure : parse_long(v, &n) && number_option(o, n));
        if (!ok)
            return 0;
    }
    if (opt.app_secret_file) {
        if (opt.app_secret || !read_app_secret(secret_from_file, sizeof secret_from_file))
            return 0;
        opt.app_secret = secret_from_file;
    }
    return argc % 2 == 1 && opt.port_file && opt.record_path && opt.tokens_path &&
           (!opt.webhook || opt.app_secret);
}

int main(int argc, char **argv)
{
    if (!parse_options(argc, argv)) {
        fprintf(stderr, "usage: graph_test_server --port-file F --record F --tokens F "
                        "[--port N] [fault options] (see the file header)\n");
        return 2;
    }
    g.record = fopen(opt.record_path, "a");
    requests.file = requests.path ? fopen(requests.path, "a") : NULL;
    struct sigaction usr1 = {.sa_handler = on_phones_online, .sa_flags = SA_RESTART};
    if (!g.record || (requests.path && !requests.file) || bz_signals_install_shutdown() != BZ_OK ||
        sigaction(SIGUSR1, &usr1, NULL) != 0) {
        fprintf(stderr, "graph_test_server: cannot open %s or %s\n", opt.record_path,
                requests.path ? requests.path : "-");
        return 1;
    }
    if (opt.bodies_path && !(g.bodies = fopen(opt.bodies_path, "a"))) {
        fprintf(stderr, "graph_test_server: cannot open %s\n", opt.bodies_path);
        return 1;
    }
    if (!load_templates())
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE, 2u,
        MHD_OPTION_CONNECTION_LIMIT, 2000u, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "graph_test_server: cannot listen on 127.0.0.1:%ld\n", opt.port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    FILE *pf = fopen(opt.port_file, "w");
    if (!pf || !info) {
        MHD_stop_daemon(d);
        return 1;
    }
    gm_set_port((int)info->port);
    fprintf(pf, "%u\n", (unsigned)info->port);
    fclose(pf);
    pthread_t hook;
    int hooked = opt.webhook && pthread_create(&hook, NULL, webhook_main, NULL) == 0;
    while (!bz_shutdown_requested()) {
        post_held_statuses();
        bz_sleep_ms(50);
    }
    MHD_stop_daemon(d);
    if (hooked) {
        pthread_mutex_lock(&g.lock);
        pthread_cond_signal(&g.wake);
        pthread_mutex_unlock(&g.lock);
        pthread_join(hook, NULL);
    }
    free_status_list(g.head);
    free_status_list(statuses.held);
    fclose(g.record);
    if (requests.file)
        fclose(requests.file);
    if (g.bodies)
        fclose(g.bodies);
    json_decref(g.templates);
    gm_free();
    curl_global_cleanup();
    return 0;
}
