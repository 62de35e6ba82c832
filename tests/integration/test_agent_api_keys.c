/*
 * test_agent_api_keys.c - the CRM lists its API keys and revokes one over
 * the API (issue 54) on the real stack: ingest as a real process
 * (support/agent_itest.h), keys made with blazzctl as an operator makes
 * them.
 *
 *  - keys_listed_and_revoked: the workspace's keys read a page at a time
 *    are exactly SQL's (created_at, id) order, never a secret or a hash,
 *    another workspace's not among them; a key in use revoked by another
 *    is refused by this instance at once (401 revoked), its row revoked,
 *    and so is one this instance never saw before its revocation;
 *    revoked again it answers the first revocation; a key revokes itself;
 *    another workspace's key is 404 unknown_api_key and keeps working; a
 *    key_id that is none is 400 naming it; a workspace an operator makes
 *    with `blazzctl workspaces create` is listed with its time zone, a
 *    misspelt time zone is refused and makes none, and the new
 *    workspace's key lets its CRM in (its keys, its endpoints: none yet).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent_itest.h"
#include "itest.h"

#define fx agent_test_fx

/* The key_id of "bzk_<key_id>_<secret>" into out (17 bytes). */
static void key_id_of(const char *key, char *out)
{
    assert_true(strncmp(key, "bzk_", 4) == 0 && strlen(key) > 21);
    snprintf(out, 17, "%.16s", key + 4);
}

static json_t *revoke(const char *key_id, const char *key)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/api-keys/%s", key_id);
    return agent_expect_answer(fx, "DELETE", path, key, NULL, 200);
}

static void listed(const char *key, int64_t ws, const char *other_id)
{
    char got[1024];
    agent_read_all_pages(fx, "/v1/api-keys?", key, "api_keys", "key_id", 1, got, sizeof got);
    char *want = itest_pg_textf(fx->camp.pg,
                                "SELECT string_agg(key_id, ',' ORDER BY created_at, id) FROM "
                                "api_keys WHERE workspace_id = %lld",
                                (long long)ws);
    assert_string_equal(got, want);
    free(want);
    assert_null(strstr(got, other_id));

    json_t *doc;
    assert_int_equal(agent_get_json(fx, "/v1/api-keys", key, &doc), 200);
    json_t *first = json_array_get(json_object_get(doc, "api_keys"), 0);
    assert_true(json_is_string(json_object_get(first, "name")));
    assert_true(json_is_string(json_object_get(first, "created_at")));
    assert_true(json_is_null(json_object_get(first, "revoked_at")));
    char *text = json_dumps(doc, 0);
    assert_null(strstr(text, key + 21)); /* the secret */
    assert_null(strstr(text, "sha256"));
    free(text);
    json_decref(doc);
}

/* `blazzctl workspaces create|list`, as an operator makes a tenant, then
 * its CRM's first call with the key made for it. */
static void operators_workspace(void)
{
    char err_log[700], name[64];
    snprintf(err_log, sizeof err_log, "%s/blazzctl-workspaces.log", fx->camp.dir);
    itest_unique("ws-", name, sizeof name);
    const char *create[] = {"workspaces", "create", "--name", name, "--timezone",
                            "Asia/Jakarta", "--json", NULL};
    json_t *made = itest_blazzctl_json(create, err_log);
    int64_t ws = json_integer_value(json_object_get(made, "id"));
    assert_true(ws > 0);
    assert_string_equal(json_string_value(json_object_get(made, "timezone")), "Asia/Jakarta");
    json_decref(made);

    const char *misspelt[] = {"workspaces", "create", "--name", name, "--timezone",
                              "Asia/Jakarte", NULL};
    char *out = NULL;
    assert_int_equal(itest_blazzctl(misspelt, err_log, &out), 1);
    free(out);
    assert_true(itest_file_contains(err_log, "unknown time zone 'Asia/Jakarte'"));
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM workspaces WHERE name = '%s'", name), 1);

    const char *list[] = {"workspaces", "list", "--json", NULL};
    json_t *all = itest_blazzctl_json(list, err_log), *w;
    size_t i;
    int listed_once = 0;
    json_array_foreach(all, i, w)
        listed_once += json_integer_value(json_object_get(w, "id")) == ws &&
                       strcmp(json_string_value(json_object_get(w, "name")), name) == 0;
    json_decref(all);
    assert_int_equal(listed_once, 1);

    char *key = agent_api_key(fx, ws);
    json_t *doc;
    assert_int_equal(agent_get_json(fx, "/v1/webhook-endpoints", key, &doc), 200);
    assert_int_equal(json_array_size(json_object_get(doc, "endpoints")), 0);
    json_decref(doc);
    free(key);
}

static void keys_listed_and_revoked(void **state)
{
    (void)state;
    agent_fx_init(fx, "ak");
    int64_t ws = camp_workspace(&fx->camp), other_ws = camp_workspace(&fx->camp);
    char *key = agent_api_key(fx, ws), *doomed = agent_api_key(fx, ws);
    char *itself = agent_api_key(fx, ws), *other = agent_api_key(fx, other_ws);
    char doomed_id[17], itself_id[17], other_id[17];
    key_id_of(doomed, doomed_id);
    key_id_of(itself, itself_id);
    key_id_of(other, other_id);
    /* two made at one instant: the id orders them */
    assert_int_equal(agent_int(fx, "WITH u AS (UPDATE api_keys SET created_at = (SELECT "
                                   "created_at FROM api_keys WHERE key_id = '%s') WHERE key_id "
                                   "= '%s' RETURNING 1) SELECT count(*) FROM u",
                               doomed_id, itself_id),
                     1);
    agent_start_ingest(fx, NULL);

    listed(key, ws, other_id);

    /* the doomed key works, and is cached, until another revokes it */
    json_t *doc;
    assert_int_equal(agent_get_json(fx, "/v1/api-keys", doomed, &doc), 200);
    json_decref(doc);
    doc = revoke(doomed_id, key);
    assert_string_equal(json_string_value(json_object_get(doc, "key_id")), doomed_id);
    const char *revoked_at = json_string_value(json_object_get(doc, "revoked_at"));
    assert_non_null(revoked_at);
    agent_expect_refused(fx, "GET", "/v1/api-keys", doomed, NULL, 401, "revoked",
                         "Authorization");
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM api_keys WHERE key_id = '%s' AND "
                                   "revoked_at IS NOT NULL",
                               doomed_id),
                     1);
    /* revoked again: the first revocation */
    json_t *again = revoke(doomed_id, key);
    assert_string_equal(json_string_value(json_object_get(again, "revoked_at")), revoked_at);
    json_decref(again);
    json_decref(doc);

    /* one this instance never saw: refused as revoked, not unknown */
    char *unseen = agent_api_key(fx, ws), unseen_id[17];
    key_id_of(unseen, unseen_id);
    json_decref(revoke(unseen_id, key));
    agent_expect_refused(fx, "GET", "/v1/api-keys", unseen, NULL, 401, "revoked",
                         "Authorization");
    free(unseen);

    /* a key revokes itself */
    json_decref(revoke(itself_id, itself));
    agent_expect_refused(fx, "GET", "/v1/api-keys", itself, NULL, 401, "revoked",
                         "Authorization");

    /* another workspace's key is not this one's to revoke */
    char path[64];
    snprintf(path, sizeof path, "/v1/api-keys/%s", other_id);
    agent_expect_refused(fx, "DELETE", path, key, NULL, 404, "unknown_api_key", "key_id");
    assert_int_equal(agent_get_json(fx, "/v1/api-keys", other, &doc), 200);
    json_decref(doc);
    agent_expect_refused(fx, "DELETE", "/v1/api-keys/zzzzzzzzzzzzzzzz", key, NULL, 404,
                         "unknown_api_key", "key_id");
    static const char *const bad[] = {"/v1/api-keys/ABCDEFGHIJKLMNOP", "/v1/api-keys/short",
                                      "/v1/api-keys/abcdefghijklmnopq"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        agent_expect_refused(fx, "DELETE", bad[i], key, NULL, 400, "invalid_field", "key_id");
    agent_expect_refused(fx, "DELETE", path, NULL, NULL, 401, "unauthorized", "Authorization");
    agent_expect_refused(fx, "GET", "/v1/api-keys?limit=0", key, NULL, 400, "invalid_field",
                         "limit");

    /* the list shows both revocations */
    assert_int_equal(agent_get_json(fx, "/v1/api-keys", key, &doc), 200);
    int revoked = 0;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(doc, "api_keys"), i, item) revoked +=
        json_is_string(json_object_get(item, "revoked_at"));
    assert_int_equal(revoked, 3);
    json_decref(doc);
    free(key);
    operators_workspace();
    free(doomed);
    free(itself);
    free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(keys_listed_and_revoked, agent_test_setup,
                                        agent_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
