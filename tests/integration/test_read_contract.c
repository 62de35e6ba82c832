/*
 * test_read_contract.c - the CRM's reads (db/read_contract.sql) on a data
 * set of a few hundred thousand messages (scripts/make_dataset.sh at scale
 * 0.03, on this program's own database).
 *
 * Each statement of the contract, run as blazz_crm with the largest
 * workspace set, answers; with another workspace set it answers nothing.
 * And it walks the index it was written for: the index's scan counter moves
 * and no large table is read from end to end (pg_stat_user_indexes and
 * pg_stat_user_tables, which also see inside the search functions). Plans,
 * not times: the times are make bench-reads'.
 *
 * The CRM's role (READS.md §6): its grants are the ones READS.md lists,
 * and a login role made by READS.md's procedure reads the workspace its
 * transaction names, and nothing once the transaction ended.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itest.h"

#define MAX_STATEMENTS 32
#define MAX_PARAMS 8

typedef struct statement {
    char name[64];
    char *sql; /* :name parameters replaced by $1.. in order of first use */
    char params[MAX_PARAMS][32];
    int n_params;
} statement;

typedef struct expectation {
    const char *statement;
    const char *query; /* the dataset fact :q takes, NULL for none */
    const char *index; /* the index the statement must scan */
} expectation;

static const expectation expected[] = {
    {"inbox", NULL, "contacts_inbox_idx"},
    {"inbox_by_session", NULL, "contacts_account_inbox_idx"},
    {"sessions", NULL, "chats_account_unread_inbound_idx"},
    {"contact_messages", NULL, "chats_contact_created_idx"},
    {"group_messages", NULL, "chats_group_created_idx"},
    {"contact_calls", NULL, "calls_contact_idx"},
    {"search_conversations", "name_prefix", "contacts_name_search_idx"},
    {"search_conversations", "phone_prefix", "contacts_workspace_phone_key"},
    {"search_messages", "rare_word", "chats_body_search_idx"},
    {"campaign_progress", NULL, "campaign_logs_campaign_status_idx"},
    {"campaign_recipients", NULL, "campaign_logs_campaign_status_idx"},
    {"webhook_deliveries", NULL, "webhook_retry_queue_endpoint_created_idx"},
    {"usage_by_price", NULL, "message_usage_priced_workspace_day_idx"},
};

#define LARGE_TABLES "'chats', 'contacts', 'calls', 'campaign_logs', 'webhook_retry_queue'"

typedef struct fixture {
    PGconn *owner; /* the tables' owner: facts and counters */
    PGconn *crm;   /* runs the statements as blazz_crm */
    statement stmts[MAX_STATEMENTS];
    size_t n_stmts;
    int64_t ws, other_ws, contact, group, account, campaign, endpoint;
    /* the page cursor the statements get: the last row's, or before all */
    char cursor_at[64], cursor_kind[16];
    int64_t cursor_id;
} fixture;

static fixture fx;

/* ---- the contract file ------------------------------------------------------------- */

static int param_index(statement *s, const char *name, size_t len)
{
    for (int i = 0; i < s->n_params; i++)
        if (strlen(s->params[i]) == len && strncmp(s->params[i], name, len) == 0)
            return i;
    assert_true(s->n_params < MAX_PARAMS && len < sizeof s->params[0]);
    snprintf(s->params[s->n_params], sizeof s->params[0], "%.*s", (int)len, name);
    return s->n_params++;
}

/* s->sql from the statement's text: ":name" becomes "$n", "::" stays. */
static void bind_names(statement *s, const char *text)
{
    size_t cap = strlen(text) * 2 + 1, o = 0;
    s->sql = malloc(cap);
    assert_non_null(s->sql);
    for (const char *p = text; *p;) {
        if (p[0] == ':' && p[1] == ':') {
            s->sql[o++] = *p++;
            s->sql[o++] = *p++;
        } else if (p[0] == ':' && (isalpha((unsigned char)p[1]) || p[1] == '_')) {
            const char *name = ++p;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            o += (size_t)snprintf(s->sql + o, cap - o, "$%d", param_index(s, name, (size_t)(p - name)) + 1);
        } else {
            s->sql[o++] = *p++;
        }
    }
    s->sql[o] = '\0';
}

static void load_contract(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/db/read_contract.sql", itest_repo_dir("db/read_contract.sql"));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024], text[16384] = "";
    statement *cur = NULL;
    for (int more = 1; more;) {
        more = fgets(line, sizeof line, f) != NULL;
        int starts = more && strncmp(line, "-- name: ", 9) == 0;
        if (cur && (starts || !more)) {
            char *end = strrchr(text, ';');
            if (end)
                *end = '\0';
            bind_names(cur, text);
            text[0] = '\0';
        }
        if (starts) {
            assert_true(fx.n_stmts < MAX_STATEMENTS);
            cur = &fx.stmts[fx.n_stmts++];
            sscanf(line + 9, "%63s", cur->name);
        } else if (cur && more && strncmp(line, "--", 2) != 0) {
            assert_true(strlen(text) + strlen(line) < sizeof text);
            strcat(text, line);
        }
    }
    fclose(f);
}

static const statement *find_statement(const char *name)
{
    for (size_t i = 0; i < fx.n_stmts; i++)
        if (strcmp(fx.stmts[i].name, name) == 0)
            return &fx.stmts[i];
    fail_msg("db/read_contract.sql has no statement %s", name);
    return NULL;
}

/* ---- running one ------------------------------------------------------------------- */

static char *fact(const char *name)
{
    return itest_pg_textf(fx.owner, "SELECT value FROM dataset.facts WHERE name = '%s'", name);
}

static int64_t fact_int(const char *name)
{
    return itest_pg_int64f(fx.owner, "SELECT value::bigint FROM dataset.facts WHERE name = '%s'",
                           name);
}

/* The value of parameter name for expectation e; the caller frees it. */
static char *value_of(const expectation *e, const char *name)
{
    char v[64];
    if (strcmp(name, "q") == 0)
        return fact(e->query);
    const struct {
        const char *name;
        int64_t value;
    } ids[] = {{"ws", fx.ws},           {"contact", fx.contact},   {"group", fx.group},
               {"account", fx.account}, {"campaign", fx.campaign}, {"endpoint", fx.endpoint},
               {"id", fx.cursor_id}};
    if (strcmp(name, "at") == 0)
        return strdup(fx.cursor_at);
    if (strcmp(name, "kind") == 0)
        return strdup(fx.cursor_kind);
    if (strcmp(name, "status") == 0)
        return strdup("failed");
    if (strcmp(name, "from") == 0 || strcmp(name, "to") == 0) {
        /* the last 30 days, as a month's cost page asks */
        time_t day = time(NULL) - (strcmp(name, "from") == 0 ? 29 * 86400 : 0);
        struct tm utc;
        gmtime_r(&day, &utc);
        strftime(v, sizeof v, "%Y-%m-%d", &utc);
        return strdup(v);
    }
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (strcmp(ids[i].name, name) == 0) {
            snprintf(v, sizeof v, "%lld", (long long)ids[i].value);
            return strdup(v);
        }
    fail_msg("no value for parameter :%s", name);
    return NULL;
}

/* What the statement of e returns as blazz_crm with the session's workspace
 * set to session_ws (0: none); the caller clears it. */
static PGresult *run_as_crm(const expectation *e, int64_t session_ws)
{
    const statement *s = find_statement(e->statement);
    char set[128];
    snprintf(set, sizeof set, "SELECT set_config('blazz.workspace_id', '%.0lld', false)",
             (long long)session_ws);
    itest_pg_exec(fx.crm, "RESET ROLE");
    itest_pg_exec(fx.crm, set);
    itest_pg_exec(fx.crm, "SET ROLE blazz_crm");
    char *values[MAX_PARAMS];
    for (int i = 0; i < s->n_params; i++)
        values[i] = value_of(e, s->params[i]);
    PGresult *res = PQexecParams(fx.crm, s->sql, s->n_params, NULL, (const char *const *)values,
                                 NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s as blazz_crm: %s", s->name, PQerrorMessage(fx.crm));
    for (int i = 0; i < s->n_params; i++)
        free(values[i]);
    /* the statement's statistics go out when the session is next idle */
    itest_pg_exec(fx.crm, "RESET ROLE");
    itest_pg_exec(fx.crm, "SELECT pg_stat_force_next_flush()");
    return res;
}

static int rows_as_crm(const expectation *e, int64_t session_ws)
{
    PGresult *res = run_as_crm(e, session_ws);
    int n = PQntuples(res);
    PQclear(res);
    return n;
}

/* Rows of a and b with the same first two columns (an id and what it is). */
static int rows_in_common(const PGresult *a, const PGresult *b)
{
    int common = 0;
    for (int i = 0; i < PQntuples(a); i++)
        for (int k = 0; k < PQntuples(b); k++)
            common += strcmp(PQgetvalue(a, i, 0), PQgetvalue(b, k, 0)) == 0 &&
                      strcmp(PQgetvalue(a, i, 1), PQgetvalue(b, k, 1)) == 0;
    return common;
}

static int names_the_workspace(const expectation *e)
{
    const statement *s = find_statement(e->statement);
    for (int i = 0; i < s->n_params; i++)
        if (strcmp(s->params[i], "ws") == 0)
            return 1;
    return 0;
}

static int64_t index_scans(const char *index)
{
    itest_pg_exec(fx.owner, "SELECT pg_stat_clear_snapshot()");
    return itest_pg_int64f(fx.owner,
                           "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes "
                           "WHERE indexrelname = '%s'",
                           index);
}

static int64_t large_table_seq_scans(void)
{
    itest_pg_exec(fx.owner, "SELECT pg_stat_clear_snapshot()");
    return itest_pg_int64(fx.owner, "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables "
                                    "WHERE relname IN (" LARGE_TABLES ")");
}

/* ---- fixture ----------------------------------------------------------------------- */

static int64_t owner_int(const char *sql)
{
    return itest_pg_int64(fx.owner, sql);
}

static void cursor_before_all(void)
{
    snprintf(fx.cursor_at, sizeof fx.cursor_at, "infinity");
    snprintf(fx.cursor_kind, sizeof fx.cursor_kind, "contact");
    fx.cursor_id = 0;
}

static int setup(void **state)
{
    (void)state;
    cursor_before_all();
    char script[1024], scale[] = "0.03", log[1024];
    snprintf(log, sizeof log, "%s/logs/itest-read-contract-dataset.log",
             itest_env("BLAZZ_STATE_DIR"));
    /* the generator wants an empty database, which the pool's place is not
     * after the programs that ran in it before this one */
    itest_pg_use_own_database("itest_reads_", log);
    snprintf(script, sizeof script, "%s/scripts/make_dataset.sh",
             itest_repo_dir("scripts/make_dataset.sh"));
    char *argv[] = {script, (char *)itest_env("BLAZZ_PG_DSN"), scale, NULL};
    if (itest_wait(itest_spawn(argv, log)) != 0) {
        fprintf(stderr, "make_dataset.sh failed, see %s\n", log);
        return -1;
    }
    fx.owner = itest_pg_connect();
    fx.crm = itest_pg_connect();
    load_contract();
    fx.ws = fact_int("largest_workspace_id");
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT min(id) FROM workspaces WHERE id <> %lld", (long long)fx.ws);
    fx.other_ws = owner_int(sql);
    /* the busiest conversation: the newest one has a message or two and
     * mostly no call, and a page of calls needs more than fifty */
    fx.contact = fact_int("busy_contact_id");
    snprintf(sql, sizeof sql,
             "SELECT id FROM whatsapp_groups WHERE workspace_id = %lld "
             "AND latest_chat_created_at IS NOT NULL ORDER BY latest_chat_created_at DESC LIMIT 1",
             (long long)fx.ws);
    fx.group = owner_int(sql);
    snprintf(sql, sizeof sql,
             "SELECT whatsapp_account_id FROM contacts WHERE id = %lld", (long long)fx.contact);
    fx.account = owner_int(sql);
    fx.campaign = fact_int("campaign_id");
    fx.endpoint = fact_int("endpoint_id");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < fx.n_stmts; i++)
        free(fx.stmts[i].sql);
    PQfinish(fx.owner);
    PQfinish(fx.crm);
    itest_pg_leave_own_database();
    return 0;
}

/* ---- tests ------------------------------------------------------------------------- */

static void every_statement_of_the_contract_is_checked_here(void **state)
{
    (void)state;
    assert_true(fx.n_stmts > 0);
    for (size_t i = 0; i < fx.n_stmts; i++) {
        int checked = 0;
        for (size_t k = 0; k < sizeof expected / sizeof expected[0]; k++)
            checked |= strcmp(expected[k].statement, fx.stmts[i].name) == 0;
        if (!checked)
            fail_msg("%s of db/read_contract.sql has no expectation in this test", fx.stmts[i].name);
    }
}

/* A statement that names the workspace answers nothing to another
 * workspace's session; one that takes it from the session (the functions)
 * answers that workspace's rows, none of the largest one's; and with no
 * workspace set, every statement answers nothing. */
static void each_statement_answers_its_workspace_and_nobody_else(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof expected / sizeof expected[0]; k++) {
        const expectation *e = &expected[k];
        PGresult *own = run_as_crm(e, fx.ws), *other = run_as_crm(e, fx.other_ws);
        int n_own = PQntuples(own), n_other = PQntuples(other),
            leaked = names_the_workspace(e) ? n_other : rows_in_common(own, other),
            unset = rows_as_crm(e, 0);
        PQclear(own);
        PQclear(other);
        if (n_own == 0 || leaked != 0 || unset != 0)
            fail_msg("%s%s%s: %d rows for its workspace, %d of them or of its workspace's for "
                     "another's session, %d with no workspace set (want > 0, 0, 0)",
                     e->statement, e->query ? " " : "", e->query ? e->query : "", n_own, leaked,
                     unset);
    }
}

static void each_statement_walks_its_index(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof expected / sizeof expected[0]; k++) {
        const expectation *e = &expected[k];
        int64_t scans = index_scans(e->index), seq = large_table_seq_scans();
        assert_true(rows_as_crm(e, fx.ws) > 0);
        /* the counters arrive once the session has flushed its statistics */
        int64_t after = scans;
        for (int i = 0; i < 200 && after == scans; i++) {
            itest_sleep_ms(50);
            after = index_scans(e->index);
        }
        if (after == scans)
            fail_msg("%s%s%s did not scan %s", e->statement, e->query ? " " : "",
                     e->query ? e->query : "", e->index);
        int64_t seq_after = large_table_seq_scans();
        if (seq_after != seq)
            fail_msg("%s%s%s read a large table sequentially (%lld scans)", e->statement,
                     e->query ? " " : "", e->query ? e->query : "", (long long)(seq_after - seq));
    }
}

static int compare_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Page after page of the inbox lists every conversation of the workspace
 * once, also where contacts and groups share a time across a page's end:
 * 120 contacts and 7 groups are given the newest time, so the first pages
 * end inside that tie. */
static void inbox_pages_list_every_conversation_once(void **state)
{
    (void)state;
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH t AS (SELECT max(latest_chat_created_at) + interval '1 hour' AS at FROM contacts "
             "WHERE workspace_id = %lld) "
             "UPDATE contacts SET latest_chat_created_at = t.at FROM t WHERE id IN (SELECT id "
             "FROM contacts WHERE workspace_id = %lld AND latest_chat_created_at IS NOT NULL "
             "AND deleted_at IS NULL ORDER BY id LIMIT 120)",
             (long long)fx.ws, (long long)fx.ws);
    itest_pg_exec(fx.owner, sql);
    snprintf(sql, sizeof sql,
             "UPDATE whatsapp_groups SET latest_chat_created_at = (SELECT max(latest_chat_created_at) "
             "FROM contacts WHERE workspace_id = %lld) WHERE id IN (SELECT id FROM whatsapp_groups "
             "WHERE workspace_id = %lld AND latest_chat_created_at IS NOT NULL ORDER BY id LIMIT 7)",
             (long long)fx.ws, (long long)fx.ws);
    itest_pg_exec(fx.owner, sql);
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM contacts WHERE workspace_id = %lld AND deleted_at IS NULL "
             "AND latest_chat_created_at IS NOT NULL) + (SELECT count(*) FROM whatsapp_groups "
             "WHERE workspace_id = %lld AND latest_chat_created_at IS NOT NULL)",
             (long long)fx.ws, (long long)fx.ws);
    int64_t conversations = itest_pg_int64(fx.owner, sql);

    const expectation inbox = {"inbox", NULL, NULL};
    char **seen = calloc((size_t)conversations + 50, sizeof *seen);
    assert_non_null(seen);
    size_t n = 0;
    for (int full = 1; full;) {
        PGresult *page = run_as_crm(&inbox, fx.ws);
        int rows = PQntuples(page);
        full = rows == 50;
        assert_true(n + (size_t)rows <= (size_t)conversations);
        for (int i = 0; i < rows; i++) {
            char key[64];
            snprintf(key, sizeof key, "%s:%s", PQgetvalue(page, i, 0), PQgetvalue(page, i, 1));
            seen[n++] = strdup(key);
        }
        if (rows) {
            snprintf(fx.cursor_kind, sizeof fx.cursor_kind, "%s", PQgetvalue(page, rows - 1, 0));
            fx.cursor_id = strtoll(PQgetvalue(page, rows - 1, 1), NULL, 10);
            snprintf(fx.cursor_at, sizeof fx.cursor_at, "%s", PQgetvalue(page, rows - 1, 2));
        }
        PQclear(page);
    }
    cursor_before_all();
    qsort(seen, n, sizeof *seen, compare_text);
    for (size_t i = 1; i < n; i++)
        if (strcmp(seen[i - 1], seen[i]) == 0)
            fail_msg("%s listed twice", seen[i]);
    assert_int_equal(n, (size_t)conversations);
    for (size_t i = 0; i < n; i++)
        free(seen[i]);
    free(seen);
}

/* Page after page of a conversation's calls lists each of its calls once
 * (READS.md: calls show in the conversation through contact_calls). */
static void contact_calls_pages_list_every_call_once(void **state)
{
    (void)state;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM calls WHERE contact_id = %lld",
             (long long)fx.contact);
    int64_t calls = owner_int(sql);
    /* one page would not show that the cursor carries on */
    assert_true(calls > 50);
    const expectation log = {"contact_calls", NULL, NULL};
    char **seen = calloc((size_t)calls + 50, sizeof *seen);
    assert_non_null(seen);
    size_t n = 0;
    int pages = 0;
    for (int full = 1; full; pages++) {
        PGresult *page = run_as_crm(&log, fx.ws);
        int rows = PQntuples(page);
        full = rows == 50;
        assert_true(n + (size_t)rows <= (size_t)calls);
        for (int i = 0; i < rows; i++)
            seen[n++] = strdup(PQgetvalue(page, i, 0));
        if (rows) {
            fx.cursor_id = strtoll(PQgetvalue(page, rows - 1, 0), NULL, 10);
            snprintf(fx.cursor_at, sizeof fx.cursor_at, "%s",
                     PQgetvalue(page, rows - 1, PQfnumber(page, "created_at")));
        }
        PQclear(page);
    }
    cursor_before_all();
    assert_true(pages > 1);
    qsort(seen, n, sizeof *seen, compare_text);
    for (size_t i = 1; i < n; i++)
        if (strcmp(seen[i - 1], seen[i]) == 0)
            fail_msg("call %s listed twice", seen[i]);
    assert_int_equal(n, (size_t)calls);
    for (size_t i = 0; i < n; i++)
        free(seen[i]);
    free(seen);
}

/* What crm_search_conversations(q[, country_code]) answers as blazz_crm in
 * the largest workspace, as "kind:id" of each row in one sorted text. */
static char *searched_as_crm(const char *q, const char *country_code)
{
    char set[128];
    snprintf(set, sizeof set, "SELECT set_config('blazz.workspace_id', '%lld', false)",
             (long long)fx.ws);
    itest_pg_exec(fx.crm, set);
    itest_pg_exec(fx.crm, "SET ROLE blazz_crm");
    const char *values[] = {q, country_code};
    PGresult *res = PQexecParams(
        fx.crm,
        country_code ? "SELECT string_agg(kind || ':' || id, ',' ORDER BY kind, id) FROM "
                       "crm_search_conversations($1, $2)"
                     : "SELECT string_agg(kind || ':' || id, ',' ORDER BY kind, id) FROM "
                       "crm_search_conversations($1)",
        country_code ? 2 : 1, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("search %s as blazz_crm: %s", q, PQerrorMessage(fx.crm));
    char *found = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
    itest_pg_exec(fx.crm, "RESET ROLE");
    assert_non_null(found);
    return found;
}

/* A phone is found as a person types it (migration 0076): without its
 * "+", spaced, dashed, and in the national form given the workspace's
 * country code, each finding what its E.164 prefix finds. On 0031's
 * search only the E.164 prefix found anything. */
static void a_phone_is_found_as_typed(void **state)
{
    (void)state;
    char *prefix = fact("phone_prefix"); /* "+62" and some digits */
    assert_true(strncmp(prefix, "+62", 3) == 0 && strlen(prefix) > 6);
    char *want = searched_as_crm(prefix, NULL);
    assert_true(strlen(want) > 0);
    char bare[64], spaced[64], national[64], dialled[64];
    snprintf(bare, sizeof bare, "%s", prefix + 1);
    snprintf(spaced, sizeof spaced, "+62 %.3s-%s", prefix + 3, prefix + 6);
    snprintf(national, sizeof national, "(0%.3s) %s", prefix + 3, prefix + 6);
    snprintf(dialled, sizeof dialled, "00%s", prefix + 1);
    const struct {
        const char *q, *country_code;
    } forms[] = {{bare, NULL}, {spaced, NULL}, {national, "62"}, {dialled, NULL},
                 {bare, "62"}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char *got = searched_as_crm(forms[i].q, forms[i].country_code);
        if (strcmp(got, want) != 0)
            fail_msg("%s (country code %s) found %.80s, %s found %.80s", forms[i].q,
                     forms[i].country_code ? forms[i].country_code : "none", got, prefix, want);
        free(got);
    }
    free(want);
    free(prefix);
}

/* ---- the CRM's role (READS.md §6) ----------------------------------------------------- */

#define MAX_GRANTS 64

/* "table:PRIV,PRIV" of each row of READS.md's crm-grants table, privileges
 * sorted, into out; how many. */
static size_t documented_grants(char out[][96], size_t cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/READS.md", itest_repo_dir("docs/READS.md"));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    size_t n = 0;
    int in_table = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "<!-- crm-grants", 15) == 0)
            in_table = 1;
        else if (in_table && line[0] != '|' && n > 0)
            break;
        char table[64], grants[128];
        if (!in_table || sscanf(line, "| `%63[^`]` | %127[^|]|", table, grants) != 2)
            continue;
        const char *order[] = {"DELETE", "INSERT", "SELECT", "UPDATE"};
        char sorted[32] = "";
        for (size_t i = 0; i < 4; i++)
            if (strstr(grants, order[i]))
                snprintf(sorted + strlen(sorted), sizeof sorted - strlen(sorted), "%s%s",
                         *sorted ? "," : "", order[i]);
        assert_true(n < cap);
        snprintf(out[n++], sizeof out[0], "%.63s:%.31s", table, sorted);
    }
    fclose(f);
    return n;
}

static void the_crm_role_has_the_grants_reads_md_lists(void **state)
{
    (void)state;
    static char documented[MAX_GRANTS][96];
    size_t n = documented_grants(documented, MAX_GRANTS);
    assert_true(n > 0);
    PGresult *res = itest_pg_rowsf(
        fx.owner, "SELECT table_name || ':' || string_agg(privilege_type, ',' ORDER BY "
                  "privilege_type) FROM information_schema.role_table_grants WHERE grantee = "
                  "'blazz_crm' GROUP BY table_name ORDER BY 1");
    int rows = PQntuples(res), differ = 0;
    for (int i = 0; i < rows; i++) {
        const char *granted = PQgetvalue(res, i, 0);
        size_t j = 0;
        while (j < n && strcmp(documented[j], granted) != 0)
            j++;
        if (j == n) {
            printf("granted, not in READS.md §6: %s\n", granted);
            differ++;
        }
    }
    for (size_t j = 0; j < n; j++) {
        int found = 0;
        for (int i = 0; i < rows && !found; i++)
            found = strcmp(documented[j], PQgetvalue(res, i, 0)) == 0;
        if (!found) {
            printf("in READS.md §6, not granted: %s\n", documented[j]);
            differ++;
        }
    }
    PQclear(res);
    assert_int_equal(differ, 0);
}

/* READS.md §6's procedure: a login role in blazz_crm that becomes it, one
 * workspace a transaction (SET LOCAL), nothing outside. */
static void a_login_role_made_as_reads_md_says_reads_one_workspace(void **state)
{
    (void)state;
    itest_pg_exec(fx.owner, "DROP ROLE IF EXISTS crm_app_itest");
    itest_pg_exec(fx.owner, "CREATE ROLE crm_app_itest LOGIN IN ROLE blazz_crm");
    itest_pg_exec(fx.owner, "ALTER ROLE crm_app_itest SET role = 'blazz_crm'");
    const char *keys[] = {"dbname", "user", NULL};
    const char *values[] = {itest_env("BLAZZ_PG_DSN"), "crm_app_itest", NULL};
    PGconn *app = PQconnectdbParams(keys, values, 1);
    assert_int_equal(PQstatus(app), CONNECTION_OK);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
             (long long)fx.ws);
    int64_t all = owner_int(sql);
    assert_true(all > 0);
    assert_int_equal(itest_pg_int64(app, "SELECT count(*) FROM contacts"), 0);
    itest_pg_exec(app, "BEGIN");
    snprintf(sql, sizeof sql, "SET LOCAL blazz.workspace_id = '%lld'", (long long)fx.ws);
    itest_pg_exec(app, sql);
    assert_int_equal(itest_pg_int64(app, "SELECT count(*) FROM contacts"), all);
    assert_int_equal(itest_pg_int64(app, "SELECT count(*) FROM contacts WHERE workspace_id <> "
                                         "blazz_current_workspace_id()"),
                     0);
    itest_pg_exec(app, "COMMIT");
    assert_int_equal(itest_pg_int64(app, "SELECT count(*) FROM contacts"), 0);
    PQfinish(app);
    itest_pg_exec(fx.owner, "DROP ROLE crm_app_itest");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_statement_of_the_contract_is_checked_here),
        cmocka_unit_test(each_statement_answers_its_workspace_and_nobody_else),
        cmocka_unit_test(each_statement_walks_its_index),
        cmocka_unit_test(inbox_pages_list_every_conversation_once),
        cmocka_unit_test(contact_calls_pages_list_every_call_once),
        cmocka_unit_test(a_phone_is_found_as_typed),
        cmocka_unit_test(the_crm_role_has_the_grants_reads_md_lists),
        cmocka_unit_test(a_login_role_made_as_reads_md_says_reads_one_workspace),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
