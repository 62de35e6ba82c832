/*
 * test_meta_templates_sync.c - the business behind a Meta account and its
 * templates as Meta lists them (issue 35): `blazzctl meta business` and
 * `blazzctl meta templates sync` against real PostgreSQL and
 * graph_test_server on loopback, whose template list is Meta's
 * GET /{version}/{waba_id}/message_templates, paged by cursors.
 *
 * No Kafka and no services: blazzctl alone reads Meta and writes the rows,
 * so the program is a few seconds. The tests run in order on one world:
 *  - business_recorded_once_per_workspace: the WABA and portfolio of a Meta
 *    account are recorded and shown by `meta status`; the same WABA for an
 *    account of another workspace, a webjs account and a non-numeric id are
 *    refused with a clear message (no SQL dump);
 *  - first_sync_reads_every_page: 60 templates over 3 pages of 25 (REJECTED
 *    with its reason, PAUSED, PENDING, APPROVED with quality scores, text
 *    header and footer); a template the CRM made under one of those names
 *    and languages, without a WABA, is adopted, not duplicated;
 *  - second_sync_changes_nothing: the same list again: 0 added, 0 changed;
 *  - refused_token_fails_clearly: a token Meta refuses (190) stops the sync
 *    with a message naming it and `blazzctl meta token`, exit 1, and the
 *    token is printed nowhere;
 *  - unknown_waba_fails_clearly: a WABA the token cannot read (Meta's 100)
 *    stops it with a message pointing at `blazzctl meta business`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "campaign_itest.h"
#include "itest.h"
#include "meta_itest.h"

#define TEMPLATES 60

static struct {
    camp_fx camp;
    graph_fx graph;
    int64_t ws, other_ws, account, other_account, webjs_account, crm_template;
    char waba[32], portfolio[32], token[64], account_text[24];
    int runs;
} w;

/* blazzctl with args; its stdout and stderr (heap, the caller frees). */
static int ctl(const char *const *args, char **out, char **err)
{
    char err_log[700];
    snprintf(err_log, sizeof err_log, "%s/blazzctl-%d.err", w.camp.dir, ++w.runs);
    int rc = itest_blazzctl(args, err_log, out);
    FILE *f = fopen(err_log, "r");
    char *text = calloc(1, 65536);
    if (!text)
        fail_msg("out of memory");
    if (f) {
        size_t n = fread(text, 1, 65535, f);
        text[n] = '\0';
        fclose(f);
    }
    *err = text;
    return rc;
}

/* A number no other run of the pool's database uses: digits only. */
static void unique_digits(const char *lead, char *out, size_t cap)
{
    snprintf(out, cap, "%s%d%06d", lead, (int)getpid(), itest_random(0, 999999));
}

static int64_t meta_account(int64_t ws, const char *session)
{
    int64_t id = camp_account(&w.camp, ws, session, 1, 100, "{}");
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    camp_sql(&w.camp,
             "UPDATE whatsapp_accounts SET provider_type = 'meta', session_id = '1065' || id || "
             "lpad(floor(random() * 1000000)::int::text, 6, '0') WHERE id = $1::bigint",
             1, ids);
    return id;
}

/* Meta's answer for template i (1-based): the fields the list gives. */
static json_t *template_json(int i)
{
    char name[32], id[32], body[96];
    snprintf(name, sizeof name, "sync_tpl_%02d", i);
    snprintf(id, sizeof id, "88%08d", i);
    snprintf(body, sizeof body, "Hello {{1}}, offer number %d", i);
    const char *status = i == 5 ? "REJECTED" : i == 6 ? "PAUSED" : i == 8 ? "PENDING" : "APPROVED";
    const char *quality = i == 6 ? "RED" : i % 3 == 0 ? "YELLOW" : "GREEN";
    json_t *components = json_array();
    if (i % 4 == 0)
        json_array_append_new(components, json_pack("{s:s, s:s, s:s}", "type", "HEADER",
                                                    "format", "TEXT", "text", "Big news"));
    json_array_append_new(components, json_pack("{s:s, s:s}", "type", "BODY", "text", body));
    if (i % 5 == 0)
        json_array_append_new(components,
                              json_pack("{s:s, s:s}", "type", "FOOTER", "text", "Reply STOP"));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:s, s:o}", "name", name, "language",
                     i % 2 ? "en_US" : "id", "status", status, "category",
                     i % 2 ? "MARKETING" : "UTILITY", "id", id, "quality_score", "score", quality,
                     "rejected_reason", i == 5 ? "INVALID_FORMAT" : "NONE", "components",
                     components);
}

static void write_templates(const char *path)
{
    json_t *list = json_array();
    for (int i = 1; i <= TEMPLATES; i++)
        json_array_append_new(list, template_json(i));
    if (json_dump_file(list, path, JSON_INDENT(1)) != 0)
        fail_msg("cannot write %s", path);
    json_decref(list);
}

static void write_tokens(const char *token)
{
    const char *ids[] = {w.waba}, *tokens[] = {token};
    graph_write_tokens(&w.graph, ids, tokens, 1);
}

static void set_token(void)
{
    const char *args[] = {"meta", "token", "--account", w.account_text, "--json", NULL};
    setenv("BLAZZ_META_ACCESS_TOKEN", w.token, 1);
    char *out, *err;
    int rc = ctl(args, &out, &err);
    unsetenv("BLAZZ_META_ACCESS_TOKEN");
    if (rc != 0)
        fail_msg("blazzctl meta token exited %d: %s", rc, err);
    free(out);
    free(err);
}

static int setup(void **state)
{
    (void)state;
    memset(&w, 0, sizeof w);
    char token[48];
    itest_unique("tsync", token, sizeof token);
    snprintf(w.camp.prefix, sizeof w.camp.prefix, "%s.", token);
    const char *dir = getenv("BLAZZ_STATE_DIR");
    snprintf(w.camp.dir, sizeof w.camp.dir, "%s/campaign-tests", dir ? dir : "/tmp");
    mkdir(w.camp.dir, 0755);
    snprintf(w.camp.dir + strlen(w.camp.dir), sizeof w.camp.dir - strlen(w.camp.dir), "/%s",
             token);
    mkdir(w.camp.dir, 0755);
    w.camp.pg = itest_pg_connect();
    /* camp_account's accounts are served by the test gateway "sim" (itest.c
     * registers it with a prefix's topics, which this program has no use for) */
    itest_pg_exec(w.camp.pg, "INSERT INTO gateways (id, kind, kafka_principal, name) VALUES "
                             "('sim', 'webjs', 'gateway-sim', 'blazz-gateway-sim (tests)') "
                             "ON CONFLICT (id) DO NOTHING");
    w.ws = camp_workspace(&w.camp);
    w.other_ws = camp_workspace(&w.camp);
    w.account = meta_account(w.ws, "pn");
    w.other_account = meta_account(w.other_ws, "pn2");
    w.webjs_account = camp_account(&w.camp, w.ws, "webjs", 0, 100, "{}");
    snprintf(w.account_text, sizeof w.account_text, "%lld", (long long)w.account);
    unique_digits("1", w.waba, sizeof w.waba);
    unique_digits("2", w.portfolio, sizeof w.portfolio);
    unique_digits("sync-token-", w.token, sizeof w.token);

    char ws[24];
    snprintf(ws, sizeof ws, "%lld", (long long)w.ws);
    w.crm_template = camp_sql(&w.camp,
                              "INSERT INTO templates (workspace_id, name, language, body_text) "
                              "VALUES ($1, 'sync_tpl_07', 'en_US', 'drafted in the CRM') "
                              "RETURNING id",
                              1, ws);

    graph_fx_init(&w.graph, &w.camp);
    char templates[760];
    snprintf(templates, sizeof templates, "%s/templates.json", w.camp.dir);
    write_templates(templates);
    write_tokens(w.token);
    const char *args[] = {"--templates", templates, NULL};
    graph_start(&w.graph, &w.camp, args);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", w.graph.port);
    setenv("BLAZZ_META_BASE_URL", url, 1);
    setenv("BLAZZ_SECRETS_KEYS", ITEST_SECRETS_KEYS, 1);
    set_token();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = graph_stop(&w.graph);
    if (w.camp.pg)
        PQfinish(w.camp.pg);
    return rc;
}

static char *text_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *text_of(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return itest_pg_textf(w.camp.pg, "%s", sql);
}

/* The row of template sync_tpl_<i> in the account's workspace: column. */
static void assert_column(int i, const char *column, const char *expected)
{
    char *v = text_of("SELECT coalesce(%s, '(null)') FROM templates WHERE workspace_id = %lld "
                      "AND name = 'sync_tpl_%02d' AND deleted_at IS NULL",
                      column, (long long)w.ws, i);
    if (strcmp(v, expected) != 0)
        fail_msg("sync_tpl_%02d.%s: expected '%s', found '%s'", i, column, expected, v);
    free(v);
}

static void business_recorded_once_per_workspace(void **state)
{
    (void)state;
    const char *set[] = {"meta", "business", "--account", w.account_text, "--waba", w.waba,
                         "--portfolio", w.portfolio, "--json", NULL};
    char *out, *err;
    int rc = ctl(set, &out, &err);
    if (rc != 0)
        fail_msg("meta business exited %d: %s", rc, err);
    json_t *doc = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "waba")), w.waba);
    json_decref(doc);
    free(out);
    free(err);
    char *waba = text_of("SELECT meta_waba_id || '/' || meta_business_id FROM whatsapp_accounts "
                         "WHERE id = %lld", (long long)w.account);
    char expected[80];
    snprintf(expected, sizeof expected, "%s/%s", w.waba, w.portfolio);
    assert_string_equal(waba, expected);
    free(waba);

    /* meta status shows them */
    const char *status[] = {"meta", "status", "--json", NULL};
    json_t *rows = itest_blazzctl_json(status, "/dev/null");
    size_t i;
    json_t *row;
    int seen = 0;
    json_array_foreach(rows, i, row) {
        if (strcmp(json_string_value(json_object_get(row, "account")), w.account_text) != 0)
            continue;
        seen = 1;
        assert_string_equal(json_string_value(json_object_get(row, "waba")), w.waba);
        assert_string_equal(json_string_value(json_object_get(row, "portfolio")), w.portfolio);
    }
    json_decref(rows);
    assert_true(seen);

    /* the same WABA for an account of another workspace */
    char other[24];
    snprintf(other, sizeof other, "%lld", (long long)w.other_account);
    const char *steal[] = {"meta", "business", "--account", other, "--waba", w.waba, NULL};
    rc = ctl(steal, &out, &err);
    assert_int_equal(rc, 1);
    if (!strstr(err, "belongs to another workspace") || strstr(err, "ERROR:") ||
        strstr(err, "CONTEXT"))
        fail_msg("refusal of a WABA of another workspace: %s", err);
    free(out);
    free(err);
    char *kept = text_of("SELECT coalesce(meta_waba_id, 'none') FROM whatsapp_accounts WHERE "
                         "id = %lld", (long long)w.other_account);
    assert_string_equal(kept, "none");
    free(kept);

    /* not a Meta account; not a number */
    char webjs[24];
    snprintf(webjs, sizeof webjs, "%lld", (long long)w.webjs_account);
    const char *not_meta[] = {"meta", "business", "--account", webjs, "--waba", w.waba, NULL};
    rc = ctl(not_meta, &out, &err);
    assert_int_equal(rc, 1);
    if (!strstr(err, "not a Meta account"))
        fail_msg("webjs account: %s", err);
    free(out);
    free(err);
    const char *bad_id[] = {"meta", "business", "--account", w.account_text, "--waba", "12ab",
                            NULL};
    rc = ctl(bad_id, &out, &err);
    assert_int_equal(rc, 1);
    if (!strstr(err, "--waba"))
        fail_msg("non-numeric WABA: %s", err);
    free(out);
    free(err);
}

/* `meta templates sync --json` must succeed: its counts. */
static json_t *sync_counts(void)
{
    const char *args[] = {"meta", "templates", "sync", "--account", w.account_text, "--json",
                          NULL};
    char *out, *err;
    int rc = ctl(args, &out, &err);
    if (rc != 0)
        fail_msg("meta templates sync exited %d: %s%s", rc, err, out);
    json_t *doc = json_loads(out, 0, NULL);
    if (!doc)
        fail_msg("meta templates sync printed no JSON: %s", out);
    if (strstr(out, w.token) || strstr(err, w.token))
        fail_msg("blazzctl printed the token");
    free(out);
    free(err);
    return doc;
}

static void assert_counts(json_t *doc, int added, int changed, int unchanged)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    if (json_integer_value(json_object_get(doc, "templates")) != TEMPLATES ||
        json_integer_value(json_object_get(doc, "added")) != added ||
        json_integer_value(json_object_get(doc, "changed")) != changed ||
        json_integer_value(json_object_get(doc, "unchanged")) != unchanged ||
        json_integer_value(json_object_get(doc, "pages")) != 3)
        fail_msg("expected %d templates in 3 pages, %d added, %d changed, %d unchanged: %s",
                 TEMPLATES, added, changed, unchanged, text);
    free(text);
}

static long list_requests(void)
{
    size_t n;
    graph_request *r = graph_requests(&w.graph, &n);
    long answered = 0;
    for (size_t i = 0; i < n; i++)
        answered += strcmp(r[i].what, "answered") == 0;
    free(r);
    return answered;
}

static void first_sync_reads_every_page(void **state)
{
    (void)state;
    json_t *doc = sync_counts();
    /* 59 new rows; the CRM's sync_tpl_07 adopted (its status, WABA, text) */
    assert_counts(doc, TEMPLATES - 1, 1, 0);
    json_decref(doc);
    assert_int_equal(list_requests(), 3);
    assert_int_equal(itest_pg_int64f(w.camp.pg,
                                     "SELECT count(*) FROM templates WHERE workspace_id = %lld "
                                     "AND meta_waba_id = '%s' AND deleted_at IS NULL",
                                     (long long)w.ws, w.waba),
                     TEMPLATES);
    assert_int_equal(itest_pg_int64f(w.camp.pg,
                                     "SELECT count(*) FROM templates WHERE workspace_id = %lld "
                                     "AND name = 'sync_tpl_07'",
                                     (long long)w.ws),
                     1);
    char crm[24];
    snprintf(crm, sizeof crm, "%lld", (long long)w.crm_template);
    assert_column(7, "id::text", crm);
    assert_column(7, "status", "APPROVED");
    assert_column(7, "meta_template_id", "8800000007");
    assert_column(7, "body_text", "Hello {{1}}, offer number 7");
    assert_column(5, "status", "REJECTED");
    assert_column(5, "rejection_reason", "INVALID_FORMAT");
    assert_column(6, "status", "PAUSED");
    assert_column(6, "quality_score", "RED");
    assert_column(8, "status", "PENDING");
    assert_column(9, "quality_score", "YELLOW");
    assert_column(9, "rejection_reason", "(null)");
    assert_column(9, "category", "MARKETING");
    assert_column(9, "language", "en_US");
    assert_column(20, "header_type", "text");
    assert_column(20, "header_text", "Big news");
    assert_column(20, "footer_text", "Reply STOP");
    assert_column(20, "language", "id");
    assert_column(60, "meta_event", "APPROVED");
    assert_int_equal(itest_pg_int64f(w.camp.pg,
                                     "SELECT count(*) FROM templates WHERE workspace_id = %lld "
                                     "AND meta_waba_id = '%s' AND meta_event_at IS NULL",
                                     (long long)w.ws, w.waba),
                     0);
    /* nothing landed in the other workspace */
    assert_int_equal(itest_pg_int64f(w.camp.pg,
                                     "SELECT count(*) FROM templates WHERE workspace_id = %lld",
                                     (long long)w.other_ws),
                     0);
}

static void second_sync_changes_nothing(void **state)
{
    (void)state;
    json_t *doc = sync_counts();
    assert_counts(doc, 0, 0, TEMPLATES);
    json_decref(doc);
    assert_int_equal(list_requests(), 6);
    assert_int_equal(itest_pg_int64f(w.camp.pg,
                                     "SELECT count(*) FROM templates WHERE workspace_id = %lld",
                                     (long long)w.ws),
                     TEMPLATES);
}

static void refused_token_fails_clearly(void **state)
{
    (void)state;
    write_tokens("a-token-meta-issued-later");
    const char *args[] = {"meta", "templates", "sync", "--account", w.account_text, NULL};
    char *out, *err;
    int rc = ctl(args, &out, &err);
    assert_int_equal(rc, 1);
    if (!strstr(err, "190") || !strstr(err, "blazzctl meta token"))
        fail_msg("a refused token: %s", err);
    if (strstr(out, w.token) || strstr(err, w.token))
        fail_msg("blazzctl printed the token");
    free(out);
    free(err);
    /* nothing changed */
    assert_int_equal(itest_pg_int64f(w.camp.pg,
                                     "SELECT count(*) FROM templates WHERE workspace_id = %lld",
                                     (long long)w.ws),
                     TEMPLATES);
}

static void unknown_waba_fails_clearly(void **state)
{
    (void)state;
    write_tokens(w.token);
    char other[32];
    unique_digits("3", other, sizeof other);
    const char *set[] = {"meta", "business", "--account", w.account_text, "--waba", other, NULL};
    char *out, *err;
    int rc = ctl(set, &out, &err);
    if (rc != 0)
        fail_msg("meta business exited %d: %s", rc, err);
    free(out);
    free(err);
    /* a new WABA drops the old one's portfolio */
    char *portfolio = text_of("SELECT coalesce(meta_business_id, 'none') FROM whatsapp_accounts "
                              "WHERE id = %lld", (long long)w.account);
    assert_string_equal(portfolio, "none");
    free(portfolio);
    const char *sync[] = {"meta", "templates", "sync", "--account", w.account_text, NULL};
    rc = ctl(sync, &out, &err);
    assert_int_equal(rc, 1);
    if (!strstr(err, "code 100") || !strstr(err, "blazzctl meta business") ||
        !strstr(err, other))
        fail_msg("an unknown WABA: %s", err);
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(business_recorded_once_per_workspace),
        cmocka_unit_test(first_sync_reads_every_page),
        cmocka_unit_test(second_sync_changes_nothing),
        cmocka_unit_test(refused_token_fails_clearly),
        cmocka_unit_test(unknown_waba_fails_clearly),
    };
    return cmocka_run_group_tests_name("meta templates sync", tests, setup, teardown);
}
