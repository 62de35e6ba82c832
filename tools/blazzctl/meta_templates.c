/*
 * meta_templates.c - `blazzctl meta templates sync --account ID`: read the
 * template list of the account's WhatsApp Business Account from Meta and
 * apply it (ARCHITECTURE.md §12).
 *
 * The request is Meta's GET {meta.base_url}/{meta.api_version}/{waba_id}/
 * message_templates?fields=...&limit=25, with the account's access token
 * as a Bearer header; base URL and version are the settings meta-sender
 * uses (BLAZZ_META_BASE_URL, BLAZZ_META_API_VERSION), and the token is
 * opened from meta_credentials with the secrets ring as meta-sender opens
 * it (wa/meta_graph.h). The token lives in memory and in the header buffer
 * only, both cleansed, and is never printed.
 *
 * Paging follows Meta's cursors: while a page carries paging.next, the
 * next page is asked for with after=paging.cursors.after. The next URL
 * itself is not followed: it is an absolute URL from the answer, and the
 * token goes only to the configured base URL.
 *
 * Each template goes through blazz_template_report (migration 0032), the
 * one way a report from Meta changes a template: found by Meta's key, or
 * by Meta's id, or a CRM-made template of that name and language without a
 * WABA is adopted, else one is made; event = its status, reason =
 * rejected_reason, quality = quality_score.score, at = now(). Then its
 * header, body and footer are made Meta's: what Meta sends and checks
 * parameters against is Meta's text, so a copy the CRM keeps must not
 * differ from it (a CRM draft of an adopted template is replaced).
 *
 * One transaction per page: a page is applied whole or not at all, and an
 * error on a later page (a refused token, a rate limit, Meta failing)
 * leaves the pages before it applied and says how many. A second sync of
 * an unchanged list changes nothing. Counted per template: added (the row
 * was made by this sync), changed (status, category, quality, reason or
 * text moved), unchanged.
 */
#include "meta_templates.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "blazzctl.h"
#include "core/config.h"
#include "core/grow.h"
#include "wa/meta_graph.h"

#define CMD "meta templates sync"
#define PAGE_LIMIT 25
#define PAGES_MAX 10000
#define ANSWER_MAX (16 * 1024 * 1024)
#define REQUEST_TIMEOUT_MS 60000L
#define FIELDS "name,language,status,category,id,quality_score,rejected_reason,components"

#define SQL_ACCOUNT                                                                               \
    "SELECT a.workspace_id::text, coalesce(a.meta_waba_id, ''), "                                 \
    "coalesce(encode(c.token_ciphertext, 'hex'), ''), coalesce(encode(c.token_nonce, 'hex'), ''), " \
    "coalesce(c.status, 'none'), coalesce(c.invalid_reason, '') "                                \
    "FROM whatsapp_accounts a LEFT JOIN meta_credentials c ON c.whatsapp_account_id = a.id "     \
    "WHERE a.id = $1::bigint AND a.provider_type = 'meta' AND a.deleted_at IS NULL"

#define SQL_REPORT                                                                                \
    "SELECT template_id, changed FROM blazz_template_report($1::bigint, $2, $3, $4, $5, $6, $7, " \
    "$8, $9, now())"

/* Meta's texts onto the row the report found or made; whether the row is
 * new (made in this transaction: created_at is the transaction's now()) and
 * whether the texts differed. */
#define SQL_TEXTS                                                                                 \
    "WITH old AS (SELECT created_at = now() AS added, "                                          \
    "(header_type, header_text, body_text, footer_text) IS DISTINCT FROM "                       \
    "($2::text, $3::text, $4::text, $5::text) AND $6::boolean AS differs "                       \
    "FROM templates WHERE id = $1::bigint), "                                                     \
    "upd AS (UPDATE templates t SET header_type = $2, header_text = $3, body_text = $4, "         \
    "footer_text = $5 FROM old WHERE t.id = $1::bigint AND old.differs RETURNING t.id) "         \
    "SELECT old.added, old.differs FROM old"

/* ---- one page of Meta's list --------------------------------------------------------- */

/* Member `name` of o: a string, or absent (NULL); 0 when it is something else. */
static int string_member(json_t *o, const char *name, const char **out)
{
    json_t *v = json_object_get(o, name);
    *out = json_string_value(v);
    return !v || json_is_string(v);
}

static void read_components(json_t *components, bz_ctl_meta_template *out)
{
    size_t i;
    json_t *c;
    out->has_components = json_is_array(components);
    json_array_foreach(components, i, c) {
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *text = json_string_value(json_object_get(c, "text"));
        if (!type)
            continue;
        if (strcmp(type, "BODY") == 0) {
            out->body_text = text;
        } else if (strcmp(type, "FOOTER") == 0) {
            out->footer_text = text;
        } else if (strcmp(type, "HEADER") == 0) {
            const char *format = json_string_value(json_object_get(c, "format"));
            size_t k = 0;
            for (; format && format[k] && k + 1 < sizeof out->header_type; k++)
                out->header_type[k] = (char)tolower((unsigned char)format[k]);
            out->header_type[k] = '\0';
            out->header_text = format && strcmp(format, "TEXT") == 0 ? text : NULL;
        }
    }
}

bz_status bz_ctl_meta_template_read(json_t *t, bz_ctl_meta_template *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(t))
        return bz_fail(err, BZ_ERR_INVALID, "a template of the list is not an object");
    json_t *quality = json_object_get(t, "quality_score");
    if (!string_member(t, "name", &out->name) || !string_member(t, "language", &out->language) ||
        !string_member(t, "id", &out->id) || !string_member(t, "status", &out->status) ||
        !string_member(t, "category", &out->category) ||
        !string_member(t, "rejected_reason", &out->reason) ||
        (quality && !json_is_object(quality)) ||
        !string_member(quality, "score", &out->quality))
        return bz_fail(err, BZ_ERR_INVALID, "a template of the list has a field of the wrong type");
    if (!out->name || !*out->name || !out->language || !*out->language)
        return bz_fail(err, BZ_ERR_INVALID, "a template of the list has no name or language");
    json_t *components = json_object_get(t, "components");
    if (components && !json_is_array(components))
        return bz_fail(err, BZ_ERR_INVALID, "template %s (%s): components is not a list",
                       out->name, out->language);
    read_components(components, out);
    return BZ_OK;
}

bz_status bz_ctl_meta_page_after(json_t *doc, const char **after, bz_error *err)
{
    json_t *paging = json_object_get(doc, "paging");
    *after = NULL;
    if (!json_object_get(paging, "next"))
        return BZ_OK;
    *after = json_string_value(json_object_get(json_object_get(paging, "cursors"), "after"));
    if (!*after || !**after)
        return bz_fail(err, BZ_ERR_INVALID, "the page has paging.next but no paging.cursors.after");
    return BZ_OK;
}

/* ---- the account ------------------------------------------------------------------------ */

typedef struct sync_account {
    const char *id;
    char workspace[24], waba[40];
    char *token; /* heap, cleansed when freed */
} sync_account;

static void drop_token(sync_account *a)
{
    if (a->token) {
        OPENSSL_cleanse(a->token, strlen(a->token));
        free(a->token);
        a->token = NULL;
    }
}

/* The account's workspace, WABA and opened token. */
static bz_status load_account(PGconn *conn, sync_account *a, bz_error *err)
{
    const char *params[] = {a->id};
    PGresult *res = bz_ctl_exec(conn, CMD, SQL_ACCOUNT, 1, params, NULL, NULL);
    if (!res)
        return bz_fail(err, BZ_ERR_IO, "reading the account failed");
    bz_status st = BZ_OK;
    if (PQntuples(res) != 1) {
        st = bz_fail(err, BZ_ERR_NOT_FOUND, "account %s is not a Meta account", a->id);
    } else if (!*PQgetvalue(res, 0, 1)) {
        st = bz_fail(err, BZ_ERR_INVALID,
                     "account %s has no WhatsApp Business Account: record it with `blazzctl meta "
                     "business --account %s --waba ID`",
                     a->id, a->id);
    } else if (strcmp(PQgetvalue(res, 0, 4), "valid") != 0) {
        st = bz_fail(err, BZ_ERR_INVALID,
                     "account %s has no valid access token (%s%s%s): set one with `blazzctl meta "
                     "token --account %s`",
                     a->id, PQgetvalue(res, 0, 4), *PQgetvalue(res, 0, 5) ? ": " : "",
                     PQgetvalue(res, 0, 5), a->id);
    } else {
        snprintf(a->workspace, sizeof a->workspace, "%s", PQgetvalue(res, 0, 0));
        snprintf(a->waba, sizeof a->waba, "%s", PQgetvalue(res, 0, 1));
        bz_keyring ring;
        st = bz_ctl_keyring(&ring, err);
        if (st == BZ_OK) {
            st = bz_meta_token_open(&ring, a->id, a->workspace, PQgetvalue(res, 0, 2),
                                    PQgetvalue(res, 0, 3), &a->token, err);
            bz_keyring_free(&ring);
        }
    }
    PQclear(res);
    return st;
}

/* ---- asking Meta ----------------------------------------------------------------------- */

typedef struct graph_settings {
    bz_config *cfg;
    const char *base_url, *version;
} graph_settings;

/* meta.base_url and meta.api_version as meta-sender reads them. */
static bz_status load_settings(graph_settings *s, bz_error *err)
{
    static const bz_config_key schema[] = {
        {.name = "meta.base_url", .type = BZ_CFG_STRING, .def = BZ_META_BASE_URL_DEFAULT},
        {.name = "meta.api_version", .type = BZ_CFG_STRING, .def = BZ_META_API_VERSION_DEFAULT},
    };
    bz_status st = bz_config_load(schema, 2, NULL, &s->cfg, err);
    if (st != BZ_OK)
        return st;
    s->base_url = bz_config_string(s->cfg, "meta.base_url");
    s->version = bz_config_string(s->cfg, "meta.api_version");
    return BZ_OK;
}

typedef struct answer {
    char *data;
    size_t len, cap;
    int too_big;
} answer;

static size_t keep_answer(char *ptr, size_t size, size_t n, void *arg)
{
    answer *a = arg;
    size_t add = size * n;
    if (a->len + add + 1 > ANSWER_MAX) {
        a->too_big = 1;
        return 0;
    }
    if (!bz_grow((void **)&a->data, &a->cap, a->len + add + 1, 1, 65536))
        return 0;
    memcpy(a->data + a->len, ptr, add);
    a->len += add;
    a->data[a->len] = '\0';
    return add;
}

/* GET one page (after: NULL for the first) into *ans; *status is the HTTP
 * status. A failure to get any answer is BZ_ERR_TRANSIENT. */
static bz_status get_page(const graph_settings *s, const sync_account *a, const char *after,
                          answer *ans, long *status, bz_error *err)
{
    char *cursor = after ? curl_easy_escape(NULL, after, 0) : NULL;
    char url[2048], auth[4200];
    snprintf(url, sizeof url, "%s/%s/%s/message_templates?fields=" FIELDS "&limit=%d%s%s",
             s->base_url, s->version, a->waba, PAGE_LIMIT, cursor ? "&after=" : "",
             cursor ? cursor : "");
    curl_free(cursor);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", a->token);
    struct curl_slist *headers = curl_slist_append(NULL, auth);
    OPENSSL_cleanse(auth, sizeof auth);
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode rc = headers ? bz_ctl_http_get(url, headers, REQUEST_TIMEOUT_MS, keep_answer, ans,
                                            status, errbuf)
                          : CURLE_OUT_OF_MEMORY;
    for (struct curl_slist *h = headers; h; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    if (ans->too_big)
        return bz_fail(err, BZ_ERR_INVALID, "Meta's answer is larger than %d bytes", ANSWER_MAX);
    if (rc != CURLE_OK)
        return bz_fail(err, BZ_ERR_TRANSIENT, "no answer from the Graph API at %s: %s",
                       s->base_url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return BZ_OK;
}

/* Meta's refusal of a page, as what to do about it. */
static bz_status graph_refusal(const sync_account *a, long status, const answer *ans,
                               bz_error *err)
{
    bz_graph_error e;
    bz_graph_error_read(status, ans->data, ans->len, &e);
    char code[48];
    if (e.has_code)
        snprintf(code, sizeof code, "code %ld", e.code);
    else
        snprintf(code, sizeof code, "HTTP %ld", status);
    switch (e.kind) {
    case BZ_GRAPH_TOKEN:
        return bz_fail(err, BZ_ERR_INVALID,
                       "Meta refused the access token of account %s (%s: %s): set a new one "
                       "with `blazzctl meta token --account %s`",
                       a->id, code, e.text, a->id);
    case BZ_GRAPH_THROTTLED:
        return bz_fail(err, BZ_ERR_TRANSIENT,
                       "Meta's rate limit (%s: %s): run the sync again later", code, e.text);
    case BZ_GRAPH_TEMPORARY:
        return bz_fail(err, BZ_ERR_TRANSIENT, "Meta failed (%s: %s): run the sync again later",
                       code, e.text);
    default:
        if (e.code == 100)
            return bz_fail(err, BZ_ERR_INVALID,
                           "Meta does not let this token read WhatsApp Business Account %s "
                           "(%s: %s): check it with `blazzctl meta status` and set it with "
                           "`blazzctl meta business`",
                           a->waba, code, e.text);
        return bz_fail(err, BZ_ERR_INVALID, "Meta refused the request (%s: %s)", code, e.text);
    }
}

/* ---- applying a page ------------------------------------------------------------------- */

typedef struct sync_counts {
    long pages, templates, added, changed, unchanged;
} sync_counts;

/* One template: the report, then Meta's texts; counted. */
static bz_status apply_template(PGconn *conn, const sync_account *a,
                                const bz_ctl_meta_template *t, sync_counts *c, bz_error *err)
{
    const char *report[] = {a->workspace, a->waba,     t->id,       t->name,   t->language,
                            t->status,    t->reason,   t->category, t->quality};
    PGresult *res = bz_ctl_exec(conn, CMD, SQL_REPORT, 9, report, NULL, NULL);
    if (!res)
        return bz_fail(err, BZ_ERR_IO, "template %s (%s) was not applied", t->name, t->language);
    char id[24];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    int changed = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    const char *texts[] = {id,          t->header_type[0] ? t->header_type : NULL,
                           t->header_text, t->body_text,
                           t->footer_text, t->has_components ? "true" : "false"};
    res = bz_ctl_exec(conn, CMD, SQL_TEXTS, 6, texts, NULL, NULL);
    if (!res || PQntuples(res) != 1) {
        PQclear(res);
        return bz_fail(err, BZ_ERR_IO, "the texts of template %s (%s) were not stored", t->name,
                       t->language);
    }
    int added = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    changed |= strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    c->templates++;
    if (added)
        c->added++;
    else if (changed)
        c->changed++;
    else
        c->unchanged++;
    return BZ_OK;
}

static bz_status run_sql(PGconn *conn, const char *sql, bz_error *err)
{
    PGresult *res = bz_ctl_exec(conn, CMD, sql, 0, NULL, NULL, NULL);
    PQclear(res);
    return res ? BZ_OK : bz_fail(err, BZ_ERR_IO, "%s failed", sql);
}

/* Every template of the page's data in one transaction. */
static bz_status apply_page(PGconn *conn, const sync_account *a, json_t *data, sync_counts *c,
                            bz_error *err)
{
    if (!json_is_array(data))
        return bz_fail(err, BZ_ERR_INVALID, "Meta's answer has no data list");
    sync_counts page = *c;
    bz_status st = run_sql(conn, "BEGIN", err);
    size_t i;
    json_t *t;
    json_array_foreach(data, i, t) {
        bz_ctl_meta_template tpl;
        if (st == BZ_OK)
            st = bz_ctl_meta_template_read(t, &tpl, err);
        if (st == BZ_OK)
            st = apply_template(conn, a, &tpl, &page, err);
    }
    if (st == BZ_OK)
        st = run_sql(conn, "COMMIT", err);
    if (st != BZ_OK) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return st;
    }
    page.pages++;
    *c = page;
    return BZ_OK;
}

/* Ask for and apply the pages, one after the other. */
static bz_status sync_pages(PGconn *conn, const graph_settings *s, const sync_account *a,
                            sync_counts *c, bz_error *err)
{
    char after[1024] = "";
    bz_status st = BZ_OK;
    for (int more = 1; more && st == BZ_OK;) {
        if (c->pages >= PAGES_MAX)
            return bz_fail(err, BZ_ERR_INVALID, "Meta's list goes on past %d pages", PAGES_MAX);
        answer ans = {0};
        long status = 0;
        st = get_page(s, a, c->pages ? after : NULL, &ans, &status, err);
        if (st == BZ_OK && (status < 200 || status >= 300))
            st = graph_refusal(a, status, &ans, err);
        json_t *doc = st == BZ_OK ? json_loadb(ans.data ? ans.data : "", ans.len, 0, NULL) : NULL;
        free(ans.data);
        if (st == BZ_OK && !doc)
            st = bz_fail(err, BZ_ERR_INVALID, "Meta's answer is not JSON");
        const char *next = NULL;
        if (st == BZ_OK)
            st = bz_ctl_meta_page_after(doc, &next, err);
        if (st == BZ_OK && next && strlen(next) >= sizeof after)
            st = bz_fail(err, BZ_ERR_INVALID, "Meta's cursor is longer than %zu bytes",
                         sizeof after - 1);
        if (st == BZ_OK)
            st = apply_page(conn, a, json_object_get(doc, "data"), c, err);
        more = next != NULL;
        if (st == BZ_OK && more)
            snprintf(after, sizeof after, "%s", next);
        json_decref(doc);
    }
    return st;
}

static int print_counts(const sync_account *a, const sync_counts *c, int json)
{
    if (json)
        return bz_ctl_print_json(json_pack(
            "{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "account", a->id, "waba", a->waba, "pages",
            (json_int_t)c->pages, "templates", (json_int_t)c->templates, "added",
            (json_int_t)c->added, "changed", (json_int_t)c->changed, "unchanged",
            (json_int_t)c->unchanged));
    printf("account %s (WhatsApp Business Account %s): %ld templates in %ld pages: %ld added, "
           "%ld changed, %ld unchanged\n",
           a->id, a->waba, c->templates, c->pages, c->added, c->changed, c->unchanged);
    return 0;
}

int bz_ctl_meta_templates_sync(PGconn *conn, const char *account, int json)
{
    sync_account a = {.id = account};
    graph_settings s = {0};
    sync_counts c = {0};
    bz_error err;
    bz_error_clear(&err);
    bz_status st = load_settings(&s, &err);
    if (st == BZ_OK)
        st = load_account(conn, &a, &err);
    if (st == BZ_OK && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        st = bz_fail(&err, BZ_ERR_NOMEM, "libcurl initialisation failed");
    else if (st == BZ_OK) {
        st = sync_pages(conn, &s, &a, &c, &err);
        curl_global_cleanup();
    }
    drop_token(&a);
    bz_config_free(s.cfg);
    if (st == BZ_OK)
        return print_counts(&a, &c, json);
    if (c.pages)
        bz_wrap(&err, "%ld pages (%ld templates) were applied, then", c.pages, c.templates);
    return bz_ctl_fail(CMD, &err);
}
