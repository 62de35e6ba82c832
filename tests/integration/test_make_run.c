/*
 * test_make_run.c - `make run` tells the truth: scripts/run.sh, unchanged,
 * runs a short demo on a fresh stack of its own, and the figures it
 * reports are checked against what PostgreSQL holds.
 *
 * The stack belongs to this test: state <test state dir>/make-run and
 * ports that were free when the test started, so it shares nothing with
 * the stack the other tests use (scripts/test.sh exports BLAZZ_STATE_DIR
 * and BLAZZ_BIN_DIR, the release binaries `make run` uses). run.sh starts
 * it; the group teardown stops it. It runs over TLS only (issue 32):
 * BLAZZ_KAFKA_TLS=1 (SASL_SSL) and BLAZZ_PG_TLS=1 (sslmode=verify-full),
 * with the CA stack.sh makes, so every service, simulator and blazzctl of
 * the demo connects through TLS to both.
 *
 * reports_what_the_database_holds: run.sh with a 20 s demo, the second on
 * this stack (issue 55: a newcomer runs it again), must exit 0, print a
 * report of at most 42 lines ending with "what next", and write its
 * figures (BLAZZ_RUN_REPORT, key=value; scripts/demo/figures.sh), the
 * first-storage latencies measured (numbers, not the "?" of a query that
 * failed: a LID merge's survivor named by its uuid once broke it). Those
 * are compared with independent counts: the interrupted run's world
 * retired (its endpoints disabled = the figure, none of its sessions left
 * holding an instance's place; before, the second report showed bad
 * signatures and a failover with nowhere to go); webhooks verified by the
 * receiver = deliveries webhook-dispatcher recorded as success; campaign
 * sent + skipped = the audience's contacts, sent = logs past sent and
 * skipped = skipped logs, per campaign too;
 * sessions the report says were removed = session_cleanup_logs rows = the
 * stale sessions created, the keepers still live; events accepted = sent;
 * the dead letter shown is the stray session's; the sessions created
 * through the CRM API have rows, a session.qr and a connected webhook each,
 * and those of the instance the demo killed are connected on the other
 * (rows moved from it to the other), each synced its phone's chats at
 * connect (every chat: seed 002's limits let them through); the Meta account sent
 * through the Graph test server: requests it accepted > 0 and = the
 * account's meta_sends rows sent, at least its campaign's sends, and that
 * campaign (a template campaign: its contacts never wrote, §12.7)
 * completed with every contact sent or skipped, and skipped only as opted
 * out; its template was approved by Meta's webhook, one template.updated
 * delivered; the opt-out
 * (issue 35): the contact the report names wrote STOP, then START, to the
 * Meta account (its inbound chats), the Meta campaign skipped exactly its
 * log as opted out (the report's skipped count = that contact's skipped
 * logs, > 0), one contact.opted_out and one contact.opted_in webhook
 * delivered, and the contact is opted in at the end (START, the last
 * word); the media (issue 36, scripts/demo/media.sh): the photo the
 * contact sent is linked to a chat_media row of the size and sha256 the
 * report gives, its link served bytes of the PNG's digest, one
 * message.media_ready delivered, the Graph test server served its bytes
 * once; the agent's image was uploaded to Meta once and sent by the id
 * Meta answered (= meta_media_uploads'), its chat sent and linked; the
 * owner's echo and the customer's call (issue 53, the Graph test server's
 * smb_message_echoes and calls webhooks): the echo one outbound chat,
 * sent, in the asking customer's chat, stored and announced once
 * (message.created the receiver verified = deliveries recorded), the call
 * one inbound calls row of that customer, completed, its length (end -
 * start) = Meta's duration stored, one call.updated per report (connect,
 * terminate) verified by the receiver; the
 * traffic's gateway uploaded photos and voice notes, none refused, each
 * linked to its message (= the PNG and Ogg rows linked in the demo's
 * workspaces); and the report prints those lines with those figures. Then the comparison is
 * shown able to fail: the figures file is copied with one of those figures
 * off by one, read back, and the comparison must name exactly that one.
 * Last, plaintext clients are refused by both (support/plaintext_refused.h).
 *
 * ctrl_c_stops_everything (first): run.sh in a session of its own, SIGINT
 * to its process group (what a terminal's Ctrl-C sends) once the demo
 * runs; it must exit 130 saying every process (six services, the Graph
 * test server, two simulators, two gateway instances, the receiver) exited
 * cleanly, and nothing
 * may be left in the group.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "itest.h"
#include "plaintext_refused.h"

#define FIGURES_MAX 256
#define CHECKS_MAX 128
#define REPORT_LINES_MAX 42 /* scripts/demo/report.sh: one screen */
#define RUN_ADMIN_PORT_SPAN 128 /* scripts/run.sh: ADMIN_PORT.. and ADMIN_PORT + 100.. */
#define RUN_TIMEOUT_S 420

typedef struct make_run {
    char dir[1024];      /* the stack's state folder */
    char scripts[1024];  /* <repo>/scripts */
    char output[1100];   /* run.sh's stdout and stderr */
    char figures[1100];  /* BLAZZ_RUN_REPORT */
} make_run;

static make_run run_env;

/* ---- the figures file ------------------------------------------------------------ */

typedef struct figures {
    char key[FIGURES_MAX][64];
    char value[FIGURES_MAX][512];
    int n;
} figures;

static void figures_load(const char *path, figures *f)
{
    FILE *in = fopen(path, "r");
    if (!in)
        fail_msg("run.sh wrote no figures to %s", path);
    char line[1024];
    f->n = 0;
    while (fgets(line, sizeof line, in)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq)
            continue;
        assert_true(f->n < FIGURES_MAX);
        size_t key_len = (size_t)(eq - line), value_len = strlen(eq + 1);
        assert_true(key_len < sizeof f->key[0] && value_len < sizeof f->value[0]);
        memcpy(f->key[f->n], line, key_len);
        f->key[f->n][key_len] = '\0';
        memcpy(f->value[f->n], eq + 1, value_len + 1);
        f->n++;
    }
    fclose(in);
}

static const char *figure(const figures *f, const char *key)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->key[i], key) == 0)
            return f->value[i];
    fail_msg("the figures have no %s", key);
    return NULL;
}

static long figure_long(const figures *f, const char *key)
{
    const char *v = figure(f, key);
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end)
        fail_msg("figure %s is '%s', not a whole number", key, v);
    return n;
}

/* "1,2,3" -> "{1,2,3}", a bigint[] parameter; the text must be ids. */
static void id_array(const figures *f, const char *key, char *out, size_t cap)
{
    const char *ids = figure(f, key);
    if (!*ids || strspn(ids, "0123456789,") != strlen(ids))
        fail_msg("figure %s is '%s', not a list of ids", key, ids);
    snprintf(out, cap, "{%s}", ids);
}

/* ---- the database's side --------------------------------------------------------- */

/* count(*)-like query with one text parameter. */
static long db_long(PGconn *db, const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *res = PQexecParams(db, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    long v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

typedef struct check {
    char what[160];
    long reported;
    long actual;
} check;

typedef struct checks {
    check item[CHECKS_MAX];
    int n;
} checks;

static void expect(checks *c, long reported, long actual, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void expect(checks *c, long reported, long actual, const char *fmt, ...)
{
    assert_true(c->n < CHECKS_MAX);
    check *k = &c->item[c->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->what, sizeof k->what, fmt, ap);
    va_end(ap);
    k->reported = reported;
    k->actual = actual;
}

static void compare_webhooks(PGconn *db, const figures *f, checks *c)
{
    char endpoints[256];
    id_array(f, "webhook_endpoints", endpoints, sizeof endpoints);
    long success = db_long(db, "SELECT count(*) FROM webhook_retry_queue "
                               "WHERE endpoint_id = ANY($1::bigint[]) AND status = 'success'",
                           endpoints);
    expect(c, figure_long(f, "webhook_verified"), success,
           "webhooks verified by the receiver = deliveries recorded as success");
    expect(c, figure_long(f, "webhook_delivered"), success,
           "webhooks delivered (2xx at the receiver) = deliveries recorded as success");
    expect(c, figure_long(f, "webhook_failed"),
           db_long(db, "SELECT count(*) FROM webhook_retry_queue "
                       "WHERE endpoint_id = ANY($1::bigint[]) AND status = 'failed'", endpoints),
           "webhooks failed = deliveries recorded as failed");
    expect(c, figure_long(f, "webhook_bad_signature"), 0, "requests with a bad signature");
    expect(c, success > 0, 1, "some webhook delivered");
}

static void compare_campaign(PGconn *db, const figures *f, checks *c, const char *id)
{
    char key[96];
    static const struct {
        const char *figure, *statuses;
    } counters[] = {{"sent", "'sent', 'delivered', 'read'"},
                    {"delivered", "'delivered', 'read'"},
                    {"read", "'read'"},
                    {"failed", "'failed'"},
                    {"skipped", "'skipped'"}};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM campaign_logs WHERE campaign_id = $1::bigint "
                 "AND status IN (%s)", counters[i].statuses);
        snprintf(key, sizeof key, "campaign_%s_%s", id, counters[i].figure);
        expect(c, figure_long(f, key), db_long(db, sql, id), "campaign %s %s = its logs past %s",
               id, counters[i].figure, counters[i].figure);
    }
    snprintf(key, sizeof key, "campaign_%s_contacts", id);
    expect(c, figure_long(f, key),
           db_long(db, "SELECT count(*) FROM contact_group_members m JOIN campaigns c "
                       "ON c.contact_group_id = m.contact_group_id WHERE c.id = $1::bigint", id),
           "campaign %s contacts = its audience", id);
}

static void compare_campaigns(PGconn *db, const figures *f, checks *c)
{
    char ids[256];
    id_array(f, "campaign_ids", ids, sizeof ids);
    long audience = db_long(db, "SELECT count(*) FROM contact_group_members m JOIN campaigns c "
                                "ON c.contact_group_id = m.contact_group_id "
                                "WHERE c.id = ANY($1::bigint[])", ids);
    expect(c, figure_long(f, "campaign_sent") + figure_long(f, "campaign_skipped"), audience,
           "campaign sent + skipped = contacts of the generated audience");
    expect(c, figure_long(f, "campaign_contacts"), audience, "campaign contacts = the audience");
    expect(c, audience > 0, 1, "the audience is not empty");
    char list[256];
    snprintf(list, sizeof list, "%s", figure(f, "campaign_ids"));
    char *save = NULL;
    for (char *id = strtok_r(list, ",", &save); id; id = strtok_r(NULL, ",", &save))
        compare_campaign(db, f, c, id);
}

static void compare_meta(PGconn *db, const figures *f, checks *c)
{
    const char *account = figure(f, "meta_account"), *campaign = figure(f, "meta_campaign");
    figure_long(f, "meta_account");
    figure_long(f, "meta_campaign");
    long accepted = figure_long(f, "meta_graph_accepted");
    expect(c, accepted > 0, 1, "the Graph test server accepted some request of the Meta account");
    expect(c, accepted,
           db_long(db, "SELECT count(*) FROM meta_sends WHERE whatsapp_account_id = $1::bigint "
                       "AND state = 'sent'", account),
           "Graph requests accepted = the Meta account's meta_sends rows sent");
    char key[96];
    snprintf(key, sizeof key, "campaign_%s_sent", campaign);
    long campaign_sent = figure_long(f, key);
    expect(c, accepted >= campaign_sent, 1, "Graph requests accepted >= the Meta campaign's sends");
    snprintf(key, sizeof key, "campaign_%s_skipped", campaign);
    expect(c, campaign_sent + figure_long(f, key),
           db_long(db, "SELECT count(*) FROM contact_group_members m JOIN campaigns c "
                       "ON c.contact_group_id = m.contact_group_id WHERE c.id = $1::bigint",
                   campaign),
           "Meta campaign sent + skipped = its audience");
    /* a template reaches contacts who never wrote: only the opt-out skips */
    expect(c, figure_long(f, key),
           db_long(db, "SELECT count(*) FROM campaign_logs l JOIN campaigns c ON c.id = "
                       "l.campaign_id WHERE c.id = $1::bigint AND c.campaign_type = 'template' "
                       "AND l.status = 'skipped' AND l.skip_reason = 'opted_out'", campaign),
           "Meta campaign (a template) skipped = its logs skipped as opted out");
    expect(c, db_long(db, "SELECT count(*) FROM campaigns c JOIN whatsapp_accounts a "
                          "ON a.id = c.whatsapp_account_id WHERE c.id = $1::bigint "
                          "AND a.provider_type = 'meta'", campaign),
           1, "the Meta campaign's account is a Meta account");
    /* the username customer: one contact by its BSUID, no phone, its message */
    const char *bsuid = figure(f, "meta_username_bsuid");
    expect(c, figure_long(f, "meta_username_contacts"), 1, "the username customer is one contact");
    expect(c, figure_long(f, "meta_username_messages"),
           db_long(db, "SELECT count(*) FROM chats h JOIN contacts ct ON ct.id = h.contact_id "
                       "WHERE ct.bsuid = $1 AND ct.phone = ct.bsuid AND h.type = 'inbound'",
                   bsuid),
           "the username customer's message, under its phone-less contact");
    expect(c, figure_long(f, "meta_username_messages"), 1, "the username customer wrote once");
    expect(c, strcmp(figure(f, "meta_template_status"), "APPROVED"), 0,
           "Meta's review by webhook approved the demo's template");
    expect(c, figure_long(f, "meta_template_webhooks"),
           db_long(db, "SELECT count(*) FROM templates t JOIN whatsapp_accounts a "
                       "ON a.workspace_id = t.workspace_id AND a.meta_waba_id = t.meta_waba_id "
                       "WHERE a.id = $1::bigint AND t.meta_event = 'APPROVED'", account),
           "one template.updated delivered per template Meta approved");
    snprintf(key, sizeof key, "campaign_%s_status", campaign);
    expect(c, strcmp(figure(f, key), "completed") == 0, 1, "the Meta campaign completed");
}

/* Deliveries of event type `type` in the campaign workspace recorded as
 * success by webhook-dispatcher whose payload's member at path (a jsonb
 * path) is value. */
static long delivered_naming(PGconn *db, const figures *f, const char *type, const char *path,
                             const char *value)
{
    char sql[384];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %ld AND event_type "
             "= '%s' AND status = 'success' AND convert_from(payload, 'UTF8')::jsonb #>> '%s' "
             "= $1",
             figure_long(f, "campaign_workspace"), type, path);
    return db_long(db, sql, value);
}

/* count(*) of `rows` ("<table> WHERE <conditions>", $1 their parameter)
 * on the Meta account, of the customer the demo's agent answered: the one
 * who asked (setup.sh's wamid.DEMO-ASK- row). */
static long of_asking_customer(PGconn *db, long account, const char *rows, const char *param)
{
    char sql[640];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM %s AND whatsapp_account_id = %ld AND contact_id IN (SELECT "
             "contact_id FROM chats WHERE whatsapp_account_id = %ld AND wam_id LIKE "
             "'wamid.DEMO-ASK-%%')",
             rows, account, account);
    return db_long(db, sql, param);
}

/* What the demo's customer and the owner did on their phones (issue 53,
 * setup.sh), as its figures (<prefix>_wamid or _id, _rows, _status,
 * _webhooks) and the database hold it. */
typedef struct phone_fact {
    const char *what;   /* "the owner's echo" */
    const char *prefix; /* of its figures: "meta_echo" */
    const char *id_key; /* its figure of Meta's id */
    const char *table;  /* where its rows are, each naming the id in id_column */
    const char *id_column;
    const char *rows;   /* its rows as expected: "<table> WHERE ...", $1 the id */
    const char *status; /* their status */
    const char *event;  /* its webhook */
    const char *path;   /* where that webhook's payload names the id */
    long announced;     /* how many of them */
} phone_fact;

/* The fact's rows are the asking customer's, as expected, and announced
 * as many times, the receiver verifying what webhook-dispatcher recorded. */
static void compare_phone_fact(PGconn *db, const figures *f, checks *c, const phone_fact *p)
{
    char key[64];
    const char *id = figure(f, p->id_key);
    snprintf(key, sizeof key, "%s_rows", p->prefix);
    long account = figure_long(f, "meta_account");
    expect(c, figure_long(f, key), of_asking_customer(db, account, p->rows, id),
           "%s: %s rows of the asking customer, as expected", p->what, p->status);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s = $1", p->table, p->id_column);
    expect(c, db_long(db, sql, id), 1, "%s stored once", p->what);
    snprintf(key, sizeof key, "%s_status", p->prefix);
    expect(c, strcmp(figure(f, key), p->status), 0, "%s is %s", p->what, p->status);
    long recorded = delivered_naming(db, f, p->event, p->path, id);
    snprintf(key, sizeof key, "%s_webhooks", p->prefix);
    expect(c, figure_long(f, key), recorded,
           "%s of %s verified at the receiver = recorded", p->event, p->what);
    expect(c, recorded, p->announced, "%s announced %ld time(s)", p->what, p->announced);
}

/* The owner's echo: one outbound chat, sent, of the customer the agent
 * answered, announced once; the customer's call: one inbound row of that
 * customer, completed, as long as its start and end say, announced once
 * per report (connect, terminate). */
static void compare_echo_and_call(PGconn *db, const figures *f, checks *c)
{
    static const phone_fact echo = {
        "the owner's echo", "meta_echo", "meta_echo_wamid", "chats", "wam_id",
        "chats WHERE wam_id = $1 AND type = 'outbound' AND message_status = 'sent' AND "
        "user_id IS NULL",
        "sent", "message.created", "{data,chat,wam_id}", 1};
    static const phone_fact call = {
        "the customer's call", "meta_call", "meta_call_id", "calls", "meta_call_id",
        "calls WHERE meta_call_id = $1 AND direction = 'inbound' AND status = 'completed' AND "
        "terminated_at IS NOT NULL",
        "completed", "call.updated", "{data,call,call_id}", 2};
    compare_phone_fact(db, f, c, &echo);
    compare_phone_fact(db, f, c, &call);
    expect(c, figure_long(f, "meta_call_duration_s"),
           db_long(db, "SELECT coalesce(max(duration_s), -1) FROM calls WHERE meta_call_id = $1",
                   figure(f, "meta_call_id")),
           "the call's length (its end - start) = Meta's duration stored");
}

/* The contact's inbound chats on the Meta account whose text is word. */
static long wrote(PGconn *db, long account, long contact, const char *word)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM chats WHERE whatsapp_account_id = %ld AND contact_id = %ld "
             "AND type = 'inbound' AND metadata->>'body' = $1",
             account, contact);
    return db_long(db, sql, word);
}

/* webhook_id-distinct deliveries of event type `type` in the campaign
 * workspace, recorded as success by webhook-dispatcher. */
static long delivered(PGconn *db, const figures *f, const char *type)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %ld "
             "AND event_type = $1 AND status = 'success'",
             figure_long(f, "campaign_workspace"));
    return db_long(db, sql, type);
}

/* The opt-out of the demo (issue 35, ARCHITECTURE.md §12.6): a contact of
 * the Meta campaign wrote STOP before it started, then START. */
static void compare_optout(PGconn *db, const figures *f, checks *c)
{
    long account = figure_long(f, "meta_account"), campaign = figure_long(f, "meta_campaign");
    long contact = figure_long(f, "optout_contact");
    expect(c, wrote(db, account, contact, "STOP"), 1,
           "the opt-out contact wrote STOP to the Meta account");
    expect(c, wrote(db, account, contact, "START"), 1, "then START");
    char sql[320], id[24];
    snprintf(id, sizeof id, "%ld", contact);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM campaign_logs WHERE campaign_id = %ld "
             "AND contact_id = $1::bigint AND status = 'skipped' AND skip_reason = 'opted_out'",
             campaign);
    long skipped = figure_long(f, "optout_skipped");
    expect(c, skipped, db_long(db, sql, id),
           "opt-out skipped = the Meta campaign's logs of that contact skipped as opted out");
    expect(c, skipped > 0, 1, "the Meta campaign skipped the contact who wrote STOP");
    expect(c, figure_long(f, "optout_webhooks"), delivered(db, f, "contact.opted_out"),
           "contact.opted_out webhooks = deliveries recorded as success");
    expect(c, figure_long(f, "optin_webhooks"), delivered(db, f, "contact.opted_in"),
           "contact.opted_in webhooks = deliveries recorded as success");
    expect(c, figure_long(f, "optout_webhooks") > 0 && figure_long(f, "optin_webhooks") > 0, 1,
           "the opt-out and the opt-in reached the CRM by webhook");
    expect(c, figure_long(f, "optout_opted_in"),
           db_long(db, "SELECT count(*) FROM contacts ct WHERE id = $1::bigint "
                       "AND opted_out_at IS NULL AND opt_out_changed_at = (SELECT created_at "
                       "FROM chats WHERE contact_id = ct.id AND metadata->>'body' = 'START')", id),
           "the contact is opted in again, by its START");
}

static void compare_cleanup(PGconn *db, const figures *f, checks *c)
{
    const char *ws = figure(f, "cleanup_workspace");
    figure_long(f, "cleanup_workspace");
    long logs = db_long(db, "SELECT count(*) FROM session_cleanup_logs WHERE workspace_id = $1::bigint",
                        ws);
    expect(c, figure_long(f, "cleanup_removed"), logs, "cleanup removed = session_cleanup_logs rows");
    expect(c, figure_long(f, "cleanup_stale_created"), logs,
           "stale sessions created = session_cleanup_logs rows");
    expect(c, figure_long(f, "cleanup_kept"),
           db_long(db, "SELECT count(*) FROM whatsapp_accounts "
                       "WHERE workspace_id = $1::bigint AND deleted_at IS NULL", ws),
           "cleanup kept = live sessions of the cleanup workspace");
    expect(c, figure_long(f, "cleanup_kept"), figure_long(f, "cleanup_keepers_created"),
           "every keeper kept");
}

/* The sessions the demo commanded through the CRM API and moved off the
 * instance it killed (scripts/demo/sessions.sh). */
static void compare_sessions(PGconn *db, const figures *f, checks *c)
{
    char ids[1024];
    snprintf(ids, sizeof ids, "{%s}", figure(f, "sessions_ids"));
    long created = figure_long(f, "sessions_created");
    expect(c, created > 0, 1, "sessions were created through the CRM API");
    expect(c, created,
           db_long(db, "SELECT count(*) FROM whatsapp_accounts WHERE session_id = ANY($1::text[]) "
                       "AND deleted_at IS NULL AND assignment_epoch > 0", ids),
           "sessions created = their rows, each assigned");
    expect(c, figure_long(f, "sessions_qr_webhooks"), created,
           "a session.qr webhook for every session created");
    expect(c, figure_long(f, "sessions_connected_webhooks"), created,
           "a session.status connected webhook for every one");
    long on_killed = figure_long(f, "sessions_on_killed_instance");
    expect(c, on_killed > 0, 1, "the killed instance served sessions");
    long killed = figure_long(f, "sessions_killed_instance");
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM whatsapp_accounts WHERE session_id = ANY($1::text[]) AND "
             "previous_instance_index = %ld AND assigned_instance_index = %ld AND "
             "instance_migration_count = 1 AND status = 'connected'",
             killed, 1 - killed);
    expect(c, figure_long(f, "sessions_moved"), db_long(db, sql, ids),
           "sessions moved = rows moved off the killed instance to the other, connected");
    expect(c, figure_long(f, "sessions_moved"), on_killed,
           "every session of the killed instance moved");
    expect(c, figure_long(f, "sessions_connected_now"), created, "every session connected");
    /* seed 002's limits (500 chats, 30 days) let every chat of the phones through */
    expect(c, figure_long(f, "sessions_synced"), created,
           "every session's initial sync completed");
    expect(c, figure_long(f, "sessions_synced_chats"),
           created * figure_long(f, "sessions_phone_chats"),
           "each session synced every chat of its phone");
    expect(c, figure_long(f, "sessions_synced_chats"),
           db_long(db, "SELECT count(DISTINCT (c.whatsapp_account_id, c.contact_id)) FROM chats c "
                       "JOIN whatsapp_accounts a ON a.id = c.whatsapp_account_id WHERE "
                       "a.session_id = ANY($1::text[]) AND c.metadata->>'source' = "
                       "'history_sync'", ids),
           "chats synced = the sessions' chats stored from their history");
}

static void compare_inbound(PGconn *db, const figures *f, checks *c)
{
    char ws[256];
    id_array(f, "inbound_workspaces", ws, sizeof ws);
    expect(c, figure_long(f, "inbound_accepted"), figure_long(f, "inbound_sent"),
           "inbound events accepted = sent");
    expect(c, figure_long(f, "inbound_chats"),
           db_long(db, "SELECT count(*) FROM chats WHERE workspace_id = ANY($1::bigint[])", ws),
           "inbound chats = chats rows of the demo's workspaces");
    expect(c, figure_long(f, "inbound_merged"),
           db_long(db, "SELECT count(*) FROM contacts WHERE workspace_id = ANY($1::bigint[]) "
                       "AND deleted_at IS NOT NULL AND metadata ? 'merged_into'", ws),
           "merged contacts = rows soft-deleted naming their survivor");
    expect(c, figure_long(f, "inbound_merged_webhooks"),
           db_long(db, "SELECT count(*) FROM contacts WHERE workspace_id = ($1::bigint[])[1] "
                       "AND metadata ? 'merged_into'", ws),
           "contact.merged delivered once per merge of the first workspace");
    expect(c, db_long(db, "SELECT count(*) FROM contacts m JOIN contacts s ON s.uuid::text = "
                          "m.metadata->>'merged_into' WHERE m.workspace_id = ANY($1::bigint[]) "
                          "AND (s.deleted_at IS NOT NULL OR s.lid IS DISTINCT FROM coalesce(m.lid, m.phone) "
                          "OR EXISTS (SELECT 1 FROM chats WHERE contact_id = m.id))", ws),
           0, "every merge: the survivor live with the LID, no message left behind");
    expect(c, figure_long(f, "dlq_dead_lettered"), 1, "dead letters: exactly the stray event");
    expect(c, figure_long(f, "services_stopped_cleanly"), 6, "services that stopped cleanly");
    expect(c, figure_long(f, "settled"), 1, "the pipeline settled");
}

/* The media of the demo (scripts/demo/media.sh, ARCHITECTURE.md §16): the
 * contact's photo stored, linked and announced, its bytes served through
 * the link; the agent's image uploaded to Meta once and sent by that id. */
static void compare_media(PGconn *db, const figures *f, checks *c)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM chats ch JOIN chat_media m ON m.id = ch.media_id "
             "WHERE ch.whatsapp_account_id = %ld AND ch.wam_id = $1 AND m.size = %ld "
             "AND m.sha256 = '%s' AND m.type = 'image/png' AND m.source = 'meta'",
             figure_long(f, "meta_account"), figure_long(f, "media_in_size"),
             figure(f, "media_in_sha256"));
    expect(c, db_long(db, sql, figure(f, "media_in_wamid")), 1,
           "the photo's chat links the chat_media row of the size and sha256 reported");
    expect(c, figure_long(f, "media_in_sha256_ok"), 1,
           "the bytes the photo's link served hash as the PNG the contact sent");
    expect(c, figure_long(f, "media_in_webhooks"), delivered(db, f, "message.media_ready"),
           "message.media_ready webhooks = deliveries recorded as success");
    expect(c, figure_long(f, "media_in_webhooks"), 1, "one message.media_ready, the photo's");
    expect(c, figure_long(f, "media_in_graph_served"), 1,
           "the Graph test server served the photo's bytes once");
    expect(c, figure_long(f, "media_out_uploads"), 1, "the image was uploaded to Meta once");
    expect(c, figure_long(f, "media_out_sent_by_id"), 1, "and sent by the id Meta answered");
    expect(c, strcmp(figure(f, "media_out_upload_id"), figure(f, "media_out_meta_media_id")), 0,
           "the id Meta answered = the account's meta_media_uploads id");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM chats ch JOIN chat_media m ON m.id = ch.media_id "
             "WHERE ch.whatsapp_account_id = %ld AND ch.type = 'outbound' "
             "AND ch.message_status IN ('sent', 'delivered', 'read') AND m.uuid::text = $1",
             figure_long(f, "meta_account"));
    expect(c, db_long(db, sql, figure(f, "media_out_uuid")), 1,
           "the image's outbound chat, sent, links the media uploaded with POST /v1/media");
    char ws[256];
    id_array(f, "inbound_workspaces", ws, sizeof ws);
    expect(c, figure_long(f, "media_webjs_uploaded") > 0, 1,
           "the traffic's gateway uploaded the bytes of photos and voice notes");
    expect(c, figure_long(f, "media_webjs_upload_failed"), 0, "and none was refused");
    expect(c, figure_long(f, "media_webjs_linked"), figure_long(f, "media_webjs_uploaded"),
           "every upload linked to its message");
    expect(c, figure_long(f, "media_webjs_linked"),
           db_long(db, "SELECT count(*) FROM chats ch JOIN chat_media m ON m.id = ch.media_id "
                       "WHERE ch.workspace_id = ANY($1::bigint[]) AND m.source = 'webjs' AND "
                       "m.type IN ('image/png', 'audio/ogg')", ws),
           "linked = the demo's messages linked to the gateway's PNG and Ogg uploads");
}

/* The earlier world on this stack (ctrl_c_stops_everything's, which ran
 * first) was retired before this one (scripts/demo/retire.sh). */
static void compare_retired(PGconn *db, const figures *f, checks *c)
{
    const char *tag = figure(f, "tag");
    long endpoints = figure_long(f, "retired_endpoints");
    expect(c, endpoints > 0 && figure_long(f, "retired_sessions") > 0, 1,
           "the interrupted world's endpoints and sessions were retired");
    expect(c, endpoints,
           db_long(db, "SELECT count(*) FROM webhook_endpoints WHERE NOT enabled AND "
                       "disabled_reason = 'make run: an earlier demo world, retired' AND "
                       "workspace_id NOT IN (SELECT workspace_id FROM whatsapp_accounts "
                       "WHERE starts_with(session_id, $1 || '-'))",
                   tag),
           "endpoints retired = earlier worlds' endpoints disabled so");
    expect(c, 0,
           db_long(db, "SELECT count(*) FROM whatsapp_accounts WHERE gateway_id = 'sim' AND "
                       "deleted_at IS NULL AND (assignment_epoch > 0 OR status = "
                       "'pending_assignment') AND NOT starts_with(session_id, $1 || '-') AND "
                       "NOT (status = 'disconnected' "
                       "AND disconnect_reason IS NOT DISTINCT FROM 'user_initiated')",
                   tag),
           "earlier worlds' sessions not logged out");
}

static void compare_with_database(PGconn *db, const figures *f, checks *c)
{
    c->n = 0;
    compare_retired(db, f, c);
    compare_webhooks(db, f, c);
    compare_campaigns(db, f, c);
    compare_meta(db, f, c);
    compare_echo_and_call(db, f, c);
    compare_optout(db, f, c);
    compare_cleanup(db, f, c);
    compare_sessions(db, f, c);
    compare_media(db, f, c);
    compare_inbound(db, f, c);
}

/* The checks that disagree; each printed when print is set. */
static int mismatches(const checks *c, bool print, int *first)
{
    int bad = 0;
    for (int i = 0; i < c->n; i++) {
        const check *k = &c->item[i];
        bool ok = k->reported == k->actual;
        if (print)
            printf("  %-4s %-76s report %6ld, expected %6ld\n", ok ? "ok" : "FAIL", k->what,
                   k->reported, k->actual);
        if (!ok && bad++ == 0 && first)
            *first = i;
    }
    fflush(stdout);
    return bad;
}

/* ---- running run.sh ------------------------------------------------------------- */

static void set_env_int(const char *name, int v)
{
    char text[16];
    snprintf(text, sizeof text, "%d", v);
    setenv(name, text, 1);
}

/* Distinct ports, free a moment ago. */
static void free_ports(int *out, int n)
{
    for (int i = 0; i < n; i++) {
        bool again;
        do {
            out[i] = itest_free_port();
            again = false;
            for (int j = 0; j < i; j++)
                again |= out[j] == out[i];
        } while (again);
    }
}

/* Run `bash <scripts>/<name> args...` and wait; its output to log. */
static int run_script(const char *name, const char *arg, const char *log)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", run_env.scripts, name);
    char *argv[] = {"/bin/bash", path, (char *)arg, NULL};
    return itest_wait(itest_spawn(argv, log));
}

/* Start run.sh in a session (and process group) of its own, as a
 * terminal would run `make run`: SIGINT and SIGTERM at their defaults,
 * output to run_env.output. */
static pid_t start_run(void)
{
    /* Emptied before the fork: the child empties it too late for a caller
     * that at once waits for a line the previous run wrote. */
    FILE *empty = fopen(run_env.output, "w");
    assert_non_null(empty);
    fclose(empty);
    fflush(stdout);
    fflush(stderr);
    /* only async-signal-safe calls between fork and exec (itest.h) */
    char script[1100];
    snprintf(script, sizeof script, "%s/run.sh", run_env.scripts);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        int out = open(run_env.output, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(126);
        execl("/bin/bash", "bash", script, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Exit status of pid within timeout_s; on timeout its group is SIGKILLed
 * and the test fails. */
static int wait_run(pid_t pid, int timeout_s)
{
    for (int waited_ms = 0;; waited_ms += 200) {
        int status;
        pid_t got = waitpid(pid, &status, WNOHANG);
        assert_true(got >= 0);
        if (got == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (waited_ms >= timeout_s * 1000) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("run.sh did not finish within %d s (output: %s)", timeout_s, run_env.output);
        }
        itest_sleep_ms(200);
    }
}

static void print_output(void)
{
    printf("----- run.sh output -----\n");
    itest_print_file(run_env.output);
    printf("----- end of run.sh output -----\n");
}

static bool output_contains(const char *text)
{
    return itest_file_contains(run_env.output, text) == 1;
}

/* Lines of the report: from its title rule to the end of the output. */
static int report_lines(bool *has_what_next)
{
    FILE *in = fopen(run_env.output, "r");
    assert_non_null(in);
    char line[2048];
    int n = -1;
    *has_what_next = false;
    while (fgets(line, sizeof line, in)) {
        if (strstr(line, " make run: world "))
            n = 0;
        if (n >= 0)
            n++;
        if (n >= 0 && strstr(line, " what next "))
            *has_what_next = true;
    }
    fclose(in);
    return n;
}

static PGconn *connect_demo_db(void)
{
    char dsn[1024];
    itest_stack_env_value(run_env.dir, "BLAZZ_PG_DSN", dsn, sizeof dsn);
    PGconn *db = PQconnectdb(dsn);
    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("connect to the demo's PostgreSQL: %s", PQerrorMessage(db));
    return db;
}

/* ---- the tests ----------------------------------------------------------------- */

/* A copy of the figures with key's value plus one, read back. */
static void figures_with_one_off(const figures *f, const char *key, figures *out)
{
    char path[1200];
    snprintf(path, sizeof path, "%s.one-off", run_env.figures);
    FILE *w = fopen(path, "w");
    assert_non_null(w);
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->key[i], key) == 0)
            fprintf(w, "%s=%ld\n", f->key[i], strtol(f->value[i], NULL, 10) + 1);
        else
            fprintf(w, "%s=%s\n", f->key[i], f->value[i]);
    }
    fclose(w);
    figures_load(path, out);
    remove(path);
}

static void the_comparison_catches_a_wrong_figure(PGconn *db, const figures *f)
{
    static const char *const keys[] = {"webhook_verified", "campaign_sent", "optout_skipped",
                                       "cleanup_removed", "media_in_size",
                                       "meta_call_webhooks"};
    static figures wrong;
    static checks c;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        figures_with_one_off(f, keys[i], &wrong);
        compare_with_database(db, &wrong, &c);
        int first = -1;
        assert_int_equal(mismatches(&c, false, &first), 1);
        printf("  a report with %s off by one fails: \"%s\"\n", keys[i], c.item[first].what);
    }
}

/* The first-storage figures are measured: a query of figures.sh that
 * failed leaves "?", which the report would print as a figure. */
static void latency_figures_measured(const figures *f)
{
    static const char *const keys[] = {"latency_cold_p50_ms", "latency_cold_p99_ms",
                                       "latency_steady_p50_ms", "latency_steady_p99_ms"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = figure(f, keys[i]);
        char *end = NULL;
        strtod(v, &end);
        if (!*v || *end)
            fail_msg("figure %s is '%s', not a number of milliseconds", keys[i], v);
    }
    if (figure_long(f, "latency_steady_messages") == 0)
        fail_msg("no steady-state message measured");
    (void)figure_long(f, "latency_changed");
}

static void reports_what_the_database_holds(void **state)
{
    (void)state;
    setenv("BLAZZ_DEMO_SECONDS", "20", 1);
    setenv("BLAZZ_DEMO_WARMUP_S", "5", 1);
    setenv("BLAZZ_DEMO_RATE", "40", 1);
    setenv("BLAZZ_DEMO_AUDIENCE", "20", 1);
    setenv("BLAZZ_DEMO_SETTLE_S", "120", 1);
    pid_t pid = start_run();
    int rc = wait_run(pid, RUN_TIMEOUT_S);
    print_output();
    if (rc != 0)
        fail_msg("run.sh exited %d (logs in %s/logs)", rc, run_env.dir);

    /* the media lines (report.sh's print_media), as figures checked below */
    static figures f;
    static checks c;
    figures_load(run_env.figures, &f);
    latency_figures_measured(&f);
    char line[256];
    snprintf(line, sizeof line, "inbound photo: stored (image/png, %ld bytes, sha256 ok), link ",
             figure_long(&f, "media_in_size"));
    if (!output_contains(line))
        fail_msg("the report has no line \"%s\"", line);
    snprintf(line, sizeof line, "outbound image: uploaded to Meta once, sent by id %s (",
             figure(&f, "media_out_upload_id"));
    if (!output_contains(line))
        fail_msg("the report has no line \"%s\"", line);
    snprintf(line, sizeof line, "gateway: %ld photos and voice notes uploaded (PNG, Ogg Opus), "
             "%ld linked", figure_long(&f, "media_webjs_uploaded"),
             figure_long(&f, "media_webjs_linked"));
    if (!output_contains(line))
        fail_msg("the report has no line \"%s\"", line);
    /* the owner's echo and the call (report.sh's print_meta) */
    snprintf(line, sizeof line,
             "owner's echo: %ld outbound %s (message.created x%ld); call %ld s %s "
             "(call.updated x%ld)",
             figure_long(&f, "meta_echo_rows"), figure(&f, "meta_echo_status"),
             figure_long(&f, "meta_echo_webhooks"), figure_long(&f, "meta_call_duration_s"),
             figure(&f, "meta_call_status"), figure_long(&f, "meta_call_webhooks"));
    if (!output_contains(line))
        fail_msg("the report has no line \"%s\"", line);

    bool what_next;
    int lines = report_lines(&what_next);
    printf("report: %d lines\n", lines);
    assert_true(lines > 0 && lines <= REPORT_LINES_MAX);
    assert_true(what_next);

    const char *tail = figure(&f, "dlq_tail");
    if (!strstr(tail, "unknown_session") || !strstr(tail, "-stray"))
        fail_msg("the dead letter shown is not the stray event's: %s", tail);
    PGconn *db = connect_demo_db();
    compare_with_database(db, &f, &c);
    int bad = mismatches(&c, true, NULL);
    if (bad == 0)
        the_comparison_catches_a_wrong_figure(db, &f);
    PQfinish(db);
    if (bad)
        fail_msg("%d figure(s) of the report disagree with the database", bad);
    itest_plaintext_refused(run_env.dir);
}

static void ctrl_c_stops_everything(void **state)
{
    (void)state;
    setenv("BLAZZ_DEMO_SECONDS", "120", 1);
    pid_t pid = start_run();
    int waited_ms = 0;
    while (!output_contains("run: demo:")) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            print_output();
            fail_msg("run.sh ended before its demo began");
        }
        if (waited_ms >= RUN_TIMEOUT_S * 1000) {
            kill(-pid, SIGKILL);
            fail_msg("the demo did not begin within %d s", RUN_TIMEOUT_S);
        }
        itest_sleep_ms(200);
        waited_ms += 200;
    }
    itest_sleep_ms(3000);
    assert_int_equal(kill(-pid, SIGINT), 0);
    int rc = wait_run(pid, 120);
    print_output();
    assert_int_equal(rc, 130);
    assert_true(output_contains("run: interrupted"));
    assert_true(output_contains("run: stopped: 12 of 12 processes exited cleanly"));
    errno = 0;
    if (kill(-pid, 0) == 0 || errno != ESRCH) {
        kill(-pid, SIGKILL);
        fail_msg("processes of run.sh's group outlived it");
    }
}

/* ---- the stack of this test ----------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    char stack_script[1024];
    snprintf(stack_script, sizeof stack_script, "%s", itest_env("BLAZZ_STACK_SCRIPT"));
    snprintf(run_env.scripts, sizeof run_env.scripts, "%s", dirname(stack_script));
    snprintf(run_env.dir, sizeof run_env.dir, "%s/make-run", itest_env("BLAZZ_STATE_DIR"));
    snprintf(run_env.output, sizeof run_env.output, "%s.out", run_env.dir);
    snprintf(run_env.figures, sizeof run_env.figures, "%s.figures", run_env.dir);
    itest_env("BLAZZ_BIN_DIR");

    int ports[4];
    free_ports(ports, 4);
    setenv("BLAZZ_STATE_DIR", run_env.dir, 1);
    set_env_int("BLAZZ_PG_PORT", ports[0]);
    set_env_int("BLAZZ_KAFKA_PORT", ports[1]);
    set_env_int("BLAZZ_KAFKA_CONTROLLER_PORT", ports[2]);
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", ports[3]);
    setenv("BLAZZ_INGEST_LISTEN", listen, 1);
    /* run.sh takes its services' admin ports upward from this one and its
     * webhook receiver's from 100 above it: the whole span is this test's,
     * or a program running beside it is handed one of them. */
    set_env_int("BLAZZ_DEMO_ADMIN_PORT", itest_free_port_span(RUN_ADMIN_PORT_SPAN));
    setenv("BLAZZ_RUN_REPORT", run_env.figures, 1);
    setenv("BLAZZ_TOPIC_PREFIX", "", 1);
    setenv("BLAZZ_KAFKA_TLS", "1", 1);
    setenv("BLAZZ_PG_TLS", "1", 1);

    /* A stack an interrupted earlier run left behind. */
    char log[1200];
    snprintf(log, sizeof log, "%s.stack.log", run_env.dir);
    run_script("stack.sh", "down", log);
    char *rm[] = {"/bin/rm", "-rf", run_env.dir, NULL};
    return itest_wait(itest_spawn(rm, log));
}

static int teardown(void **state)
{
    (void)state;
    char log[1200];
    snprintf(log, sizeof log, "%s.stack.log", run_env.dir);
    return run_script("stack.sh", "down", log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ctrl_c_stops_everything),
        cmocka_unit_test(reports_what_the_database_holds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
