/*
 * session_itest.c - see session_itest.h.
 */
#include "session_itest.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/clock.h"
#include "itest.h"
#include "itest_http.h"

void sess_fx_init(sess_fx *fx, const char *name)
{
    memset(fx, 0, sizeof *fx);
    agent_fx_init(&fx->a, name);
    snprintf(fx->storage_dir, sizeof fx->storage_dir, "%s/session-storage", fx->a.camp.dir);
    snprintf(fx->scan_dir, sizeof fx->scan_dir, "%s/scanned", fx->a.camp.dir);
    if ((mkdir(fx->storage_dir, 0700) != 0 && errno != EEXIST) ||
        (mkdir(fx->scan_dir, 0700) != 0 && errno != EEXIST))
        fail_msg("mkdir under %s: %s", fx->a.camp.dir, strerror(errno));
}

int sess_fx_open(sess_fx **slot)
{
    *slot = calloc(1, sizeof **slot);
    return *slot ? 0 : -1;
}

int sess_fx_close(sess_fx **slot)
{
    sess_fx_finish(*slot);
    free(*slot);
    *slot = NULL;
    return 0;
}

void sess_fx_finish(sess_fx *fx)
{
    int bad = 0;
    for (size_t i = 0; i < fx->nruns; i++) {
        sess_run *r = &fx->runs[i];
        if (r->pid <= 0)
            continue;
        kill(r->pid, SIGCONT);
        kill(r->pid, SIGTERM);
        bad |= itest_wait(r->pid) != 0;
        r->pid = 0;
    }
    itest_pg_exec(fx->a.camp.pg, "DELETE FROM gateway_instances");
    itest_pg_exec(fx->a.camp.pg, "DELETE FROM gateway_workspaces");
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE whatsapp_accounts SET deleted_at = now(), is_primary = false WHERE "
             "session_id LIKE '%%%s' AND deleted_at IS NULL",
             fx->a.wh.prefix);
    itest_pg_exec(fx->a.camp.pg, sql);
    agent_fx_finish(&fx->a);
    /* chat-sync stopped only now: it may have applied an instance's last
     * heartbeat after the DELETE above and made its row live again, and the
     * next test's first session would find room that is not there */
    PGconn *pg = itest_pg_connect();
    itest_pg_exec(pg, "DELETE FROM gateway_instances");
    PQfinish(pg);
    if (bad)
        fail_msg("a gateway instance did not exit cleanly on SIGTERM");
}

void sess_start_chat_sync(sess_fx *fx, int instance_timeout_s)
{
    sess_start_chat_sync_assigning(fx, instance_timeout_s, NULL);
}

void sess_start_chat_sync_assigning(sess_fx *fx, int instance_timeout_s, const char *policy)
{
    char assignment[64];
    snprintf(assignment, sizeof assignment, "BLAZZ_SESSIONS_ASSIGNMENT=%s", policy ? policy : "");
    const char *extra[] = {policy ? assignment : NULL, NULL};
    sess_start_chat_sync_env(fx, instance_timeout_s, extra);
}

void sess_start_chat_sync_env(sess_fx *fx, int instance_timeout_s, const char *const *extra)
{
    enum { EXTRA_MAX = 12 };
    char listen[64], timeout[64];
    fx->chat_sync_admin = itest_free_port();
    snprintf(listen, sizeof listen, "BLAZZ_HTTP_LISTEN=127.0.0.1:%d", fx->chat_sync_admin);
    snprintf(timeout, sizeof timeout, "BLAZZ_SESSIONS_INSTANCE_TIMEOUT_S=%d", instance_timeout_s);
    const char *env[3 + EXTRA_MAX + 1] = {listen, timeout, "BLAZZ_SESSIONS_SWEEP_INTERVAL_MS=200"};
    for (size_t i = 0; extra[i]; i++) {
        if (i == EXTRA_MAX)
            fail_msg("more than %d settings for chat-sync", EXTRA_MAX);
        env[3 + i] = extra[i];
    }
    agent_start_chat_sync_with(&fx->a, env);
    for (int i = 0; i < 600; i++) {
        if (sess_metric(fx, "blazz_chat_sync_fenced_reports_total") >= 0)
            return;
        itest_sleep_ms(50);
    }
    fail_msg("chat-sync's /metrics did not answer on port %d", fx->chat_sync_admin);
}

sess_run *sess_start_instance(sess_fx *fx, const sess_instance *how)
{
    if (fx->nruns == SESS_RUNS_MAX)
        fail_msg("more than %d instance runs", SESS_RUNS_MAX);
    sess_run *r = &fx->runs[fx->nruns];
    memset(r, 0, sizeof *r);
    r->index = how->index;
    snprintf(r->served_log, sizeof r->served_log, "%s/served-%zu.txt", fx->a.camp.dir, fx->nruns);
    snprintf(r->accepted_log, sizeof r->accepted_log, "%s/accepted-%zu.txt", fx->a.camp.dir,
             fx->nruns);
    char bin[1024], log[64], prefix[128], group[160], index[16], capacity[16], beat[16],
        lease[16], scan[16], rate[32], storage_dir[800], chats[16], messages[16];
    const char *storage = how->storage ? how->storage : "shared";
    if (how->storage) {
        snprintf(storage_dir, sizeof storage_dir, "%s-%s", fx->storage_dir, how->storage);
        if (mkdir(storage_dir, 0700) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", storage_dir, strerror(errno));
    } else {
        snprintf(storage_dir, sizeof storage_dir, "%s", fx->storage_dir);
    }
    snprintf(bin, sizeof bin, "%s/bin/blazz-gateway-sim", itest_env("BLAZZ_TEST_BIN_DIR"));
    snprintf(log, sizeof log, "instance-%zu.log", fx->nruns);
    snprintf(prefix, sizeof prefix, "BLAZZ_KAFKA_TOPIC_PREFIX=%s", fx->a.wh.prefix);
    snprintf(group, sizeof group, "blazz-gateway-sim.%si%d", fx->a.wh.prefix, how->index);
    snprintf(index, sizeof index, "%d", how->index);
    snprintf(capacity, sizeof capacity, "%d", how->capacity);
    snprintf(beat, sizeof beat, "%d", how->heartbeat_ms);
    snprintf(lease, sizeof lease, "%d", how->lease_ms);
    snprintf(scan, sizeof scan, "%d", how->scan_after_ms);
    snprintf(rate, sizeof rate, "%g", how->rate);
    snprintf(chats, sizeof chats, "%d", how->phone_chats);
    snprintf(messages, sizeof messages, "%d", how->history_messages);
    char *argv[] = {bin, "--mode", "instance", "--gateway", "sim", "--instance", index,
                    "--capacity", capacity, "--heartbeat-ms", beat, "--lease-ms", lease,
                    "--scan-after-ms", scan, "--scan-dir", fx->scan_dir, "--storage-dir",
                    storage_dir, "--storage-name", (char *)storage, "--served-log", r->served_log,
                    "--accepted-log",
                    r->accepted_log, "--rate", rate, "--answer-outbound", "--ack-delay-ms", "100",
                    "--read-ratio", "1", "--fail-ratio", "0", "--duration", "3600",
                    "--outbound-group", group, "--sends-log", fx->a.sends_log,
                    "--phone-chats", chats, "--history-messages", messages,
                    how->hold_sends ? "--hold-sends" : NULL, NULL};
    const char *env[] = {prefix, NULL};
    r->pid = camp_spawn(&fx->a.camp, log, argv, env);
    fx->nruns++;
    return r;
}

void sess_kill(sess_fx *fx, sess_run *run)
{
    (void)fx;
    kill(run->pid, SIGKILL);
    itest_wait(run->pid);
    run->pid = 0;
    run->killed_at_ms = bz_wall_ms();
}

/* A CRM call as a careful client makes it: a 503 (Kafka did not
 * acknowledge in time; the command was not taken) is asked again after its
 * Retry-After, for up to 30 s. */
long sess_post(sess_fx *fx, const char *path, const char *key, const char *body, char *resp,
               size_t cap)
{
    long status = 0;
    for (int waited_s = 0; waited_s < 30; waited_s++) {
        char retry_after[16];
        status = agent_post(&fx->a, path, key, body, resp, cap, retry_after, sizeof retry_after);
        if (status != 503)
            break;
        long after = strtol(retry_after, NULL, 10);
        itest_sleep_ms(1000 * (after > 0 && after < 5 ? after : 1));
    }
    return status;
}

void sess_wait_live(sess_fx *fx, int n)
{
    agent_wait(&fx->a, n, 60,
               "SELECT count(*) FROM gateway_instances WHERE gateway_id = 'sim' AND "
               "status = 'live'");
}

long sess_create_on(sess_fx *fx, const char *key, const char *name, const char *gateway,
                    char *id, char *resp, size_t cap)
{
    char body[384];
    snprintf(id, 128, "%s%s", name, fx->a.wh.prefix);
    if (gateway)
        snprintf(body, sizeof body, "{\"session_id\":\"%s\",\"gateway_id\":\"%s\"}", id,
                 gateway);
    else
        snprintf(body, sizeof body, "{\"session_id\":\"%s\"}", id);
    return sess_post(fx, "/v1/sessions", key, body, resp, cap);
}

long sess_create(sess_fx *fx, const char *key, const char *name, char *id, char *resp,
                 size_t cap)
{
    return sess_create_on(fx, key, name, "sim", id, resp, cap);
}

void sess_create_ok(sess_fx *fx, const char *key, const char *name, char *id)
{
    char resp[512];
    long status = sess_create(fx, key, name, id, resp, sizeof resp);
    if (status != 202)
        fail_msg("POST /v1/sessions answered %ld: %s", status, resp);
    json_t *j = json_loads(resp, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "session_id")), id);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "accepted");
    assert_string_equal(json_string_value(json_object_get(j, "session_status")),
                        "pending_assignment");
    json_decref(j);
}

long sess_command(sess_fx *fx, const char *key, const char *id, const char *what)
{
    char path[256], resp[512];
    snprintf(path, sizeof path, "/v1/sessions/%s/%s", id, what);
    return sess_post(fx, path, key, "{}", resp, sizeof resp);
}

void sess_scan(sess_fx *fx, const char *id)
{
    char path[900];
    snprintf(path, sizeof path, "%s/%s", fx->scan_dir, id);
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("scan %s: %s", path, strerror(errno));
    fclose(f);
}

double sess_metric(sess_fx *fx, const char *sample)
{
    return itest_metric(fx->chat_sync_admin, sample);
}

/* ---- the served logs ------------------------------------------------------------------ */

typedef struct span {
    char session[128];
    char boot[40];
    int index;
    int64_t from, to;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static span *open_span(spans *s, const char *session, const char *boot)
{
    for (size_t i = s->n; i-- > 0;)
        if (s->v[i].to == INT64_MAX && strcmp(s->v[i].session, session) == 0 &&
            strcmp(s->v[i].boot, boot) == 0)
            return &s->v[i];
    return NULL;
}

/* One served-log line, "wall_ms index boot start|stop session epoch",
 * split in place; 0 when it is not one. */
static int served_line(char *line, long long *at, int *index, const char **boot,
                       const char **what, const char **session)
{
    char *field[6], *save = NULL, *end;
    for (int i = 0; i < 6; i++)
        if (!(field[i] = strtok_r(i ? NULL : line, " \n", &save)))
            return 0;
    *at = strtoll(field[0], &end, 10);
    if (*end)
        return 0;
    *index = (int)strtol(field[1], &end, 10);
    if (*end)
        return 0;
    *boot = field[2];
    *what = field[3];
    *session = field[4];
    return 1;
}

/* Append run's spans to *s (a run's spans end by its own boot id). */
static void read_served(const sess_run *run, spans *s)
{
    FILE *f = fopen(run->served_log, "r");
    if (!f)
        return; /* it served nothing */
    size_t first = s->n;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        long long at;
        int index;
        const char *boot, *what, *session;
        if (!served_line(line, &at, &index, &boot, &what, &session))
            continue; /* a run killed mid-line */
        if (strcmp(what, "start") == 0) {
            if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 256;
                s->v = realloc(s->v, s->cap * sizeof *s->v);
                assert_non_null(s->v);
            }
            span *sp = &s->v[s->n++];
            snprintf(sp->session, sizeof sp->session, "%s", session);
            snprintf(sp->boot, sizeof sp->boot, "%s", boot);
            sp->index = index;
            sp->from = at;
            sp->to = INT64_MAX;
        } else {
            span *sp = open_span(s, session, boot);
            if (sp)
                sp->to = at;
        }
    }
    fclose(f);
    for (size_t i = first; run->killed_at_ms > 0 && i < s->n; i++)
        if (s->v[i].to == INT64_MAX && s->v[i].from <= run->killed_at_ms)
            s->v[i].to = run->killed_at_ms;
}

static int by_session_then_start(const void *x, const void *y)
{
    const span *a = x, *b = y;
    int c = strcmp(a->session, b->session);
    return c ? c : (a->from > b->from) - (a->from < b->from);
}

/* Every run's spans, into *s. */
static void read_every_run(sess_fx *fx, spans *s)
{
    for (size_t i = 0; i < fx->nruns; i++)
        read_served(&fx->runs[i], s);
}

size_t sess_assert_never_served_twice(sess_fx *fx)
{
    spans s = {0};
    read_every_run(fx, &s);
    if (s.n)
        qsort(s.v, s.n, sizeof *s.v, by_session_then_start);
    for (size_t i = 1; i < s.n; i++) {
        const span *prev = &s.v[i - 1], *cur = &s.v[i];
        if (strcmp(prev->session, cur->session) == 0 && cur->from < prev->to) {
            char msg[512];
            snprintf(msg, sizeof msg,
                     "session %s served by instance %d (boot %.8s) from %" PRId64
                     " and by instance %d (boot %.8s) from %" PRId64 ", before the first let "
                     "it go (%" PRId64 ")",
                     cur->session, prev->index, prev->boot, prev->from, cur->index, cur->boot,
                     cur->from, prev->to == INT64_MAX ? (int64_t)-1 : prev->to);
            free(s.v);
            fail_msg("%s", msg);
        }
    }
    free(s.v);
    return s.n;
}

size_t sess_served_at(sess_fx *fx, int64_t at_ms)
{
    spans s = {0};
    read_every_run(fx, &s);
    size_t n = 0;
    for (size_t i = 0; i < s.n; i++)
        n += s.v[i].from <= at_ms && at_ms < s.v[i].to;
    free(s.v);
    return n;
}

int sess_starts_after(const sess_run *run, const char *session_id, int64_t at_ms)
{
    spans s = {0};
    read_served(run, &s);
    int n = 0;
    for (size_t i = 0; i < s.n; i++)
        n += strcmp(s.v[i].session, session_id) == 0 && s.v[i].from > at_ms;
    free(s.v);
    return n;
}

/* ---- the accepted logs -------------------------------------------------------------------- */

/* Every run's accepted wam ids as a text[] literal (heap); *n of them. */
static char *accepted_wam_ids(sess_fx *fx, size_t *n)
{
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[len++] = '{';
    *n = 0;
    for (size_t i = 0; i < fx->nruns; i++) {
        FILE *f = fopen(fx->runs[i].accepted_log, "r");
        char session[160], wam[160];
        while (f && fscanf(f, "%159s %159s", session, wam) == 2) {
            if (len + strlen(wam) + 8 > cap) {
                cap *= 2;
                out = realloc(out, cap);
                assert_non_null(out);
            }
            len += (size_t)sprintf(out + len, "%s\"%s\"", *n ? "," : "", wam);
            (*n)++;
        }
        if (f)
            fclose(f);
    }
    snprintf(out + len, cap - len, "}");
    return out;
}

size_t sess_assert_messages_stored_once(sess_fx *fx)
{
    size_t n;
    char *ids = accepted_wam_ids(fx, &n);
    size_t sql_cap = strlen(ids) + 256;
    char *sql = malloc(sql_cap);
    assert_non_null(sql);
    snprintf(sql, sql_cap, "SELECT count(DISTINCT wam_id) FROM chats WHERE wam_id = ANY('%s')",
             ids);
    int64_t stored = -1;
    for (int i = 0; i < 600 && (stored = itest_pg_int64(fx->a.camp.pg, sql)) < (int64_t)n; i++)
        itest_sleep_ms(100);
    if (stored != (int64_t)n)
        fail_msg("%lld of %zu accepted customer messages stored after 60 s", (long long)stored, n);
    snprintf(sql, sql_cap, "SELECT count(*) FROM chats WHERE wam_id = ANY('%s')", ids);
    int64_t rows = itest_pg_int64(fx->a.camp.pg, sql);
    free(sql);
    free(ids);
    if (rows != (int64_t)n)
        fail_msg("%zu accepted customer messages are %lld rows", n, (long long)rows);
    return n;
}
