/*
 * test_session_limits.c - what one workspace may take of the sessions and
 * gateways every workspace shares (issue 49; ARCHITECTURE.md §9.2, §15),
 * through the CRM API on the real stack:
 *
 *  - a quota of live sessions (crm.sessions_per_workspace): creates the API
 *    accepted before chat-sync applied any are refused past the quota
 *    where the rows are made (dead-lettered session_quota_exceeded), then
 *    the API refuses the next one itself (409 with the reason and the
 *    limit), a retry of a session the workspace has is no new session, and
 *    a session gone makes room;
 *  - a gateway granted to one workspace (blazzctl gateways grant) serves
 *    only it: another workspace naming it gets the answer a gateway that
 *    does not exist gets (404 unknown_gateway), its session naming no
 *    gateway is told no instance has room and is never placed on it by the
 *    sweep, and its command that skips the API (blazzctl sessions create)
 *    is dead-lettered unknown_gateway; the granted workspace's session is
 *    placed there; its last grant is revoked only with --share, and the
 *    gateway is shared again.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "itest.h"
#include "session_itest.h"

static sess_fx *fx;

static int setup(void **state)
{
    (void)state;
    return sess_fx_open(&fx);
}

static int teardown(void **state)
{
    (void)state;
    return sess_fx_close(&fx);
}

#define sess_int(...) itest_pg_int64f(fx->a.camp.pg, __VA_ARGS__)

static int64_t rows_of(const char *session)
{
    return sess_int("SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
                    "deleted_at IS NULL", session);
}

/* resp is a refusal with reason and field; returns its message (heap). */
static char *refusal(const char *resp, const char *reason, const char *field)
{
    json_t *j = json_loads(resp, 0, NULL);
    if (!j)
        fail_msg("not a JSON answer: %s", resp);
    assert_string_equal(json_string_value(json_object_get(j, "error")), reason);
    assert_string_equal(json_string_value(json_object_get(j, "field")), field);
    char *message = strdup(json_string_value(json_object_get(j, "message")));
    json_decref(j);
    assert_non_null(message);
    return message;
}

static void a_workspace_holds_no_more_sessions_than_its_quota(void **state)
{
    (void)state;
    sess_fx_init(fx, "quota");
    int64_t ws = fx->a.wh.workspace_id;
    char *key = agent_api_key(&fx->a, ws);
    int64_t held = sess_int("SELECT count(*) FROM whatsapp_accounts WHERE workspace_id = %lld "
                            "AND deleted_at IS NULL", (long long)ws);
    char quota[80];
    snprintf(quota, sizeof quota, "BLAZZ_CRM_SESSIONS_PER_WORKSPACE=%lld", (long long)held + 2);
    const char *env[] = {quota, NULL};
    agent_start_ingest(&fx->a, env);

    /* three creates before chat-sync applies any: the API counts the rows
     * there are and accepts all three; chat-sync, counting where it makes
     * each row, makes two and refuses the third */
    char q1[128], q2[128], q3[128], q4[128], resp[512];
    sess_create_ok(fx, key, "q1.", q1);
    sess_create_ok(fx, key, "q2.", q2);
    sess_create_ok(fx, key, "q3.", q3);
    sess_start_chat_sync(fx, 30);
    agent_dlq_reasons d;
    agent_dead_letters(&fx->a, &d, 1);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.codes[0], "session_quota_exceeded");
    assert_int_equal(rows_of(q1), 1);
    assert_int_equal(rows_of(q2), 1);
    assert_int_equal(rows_of(q3), 0);

    /* at its quota, the API answers at once, naming the limit */
    assert_int_equal(sess_create(fx, key, "q4.", q4, resp, sizeof resp), 409);
    char *message = refusal(resp, "session_quota_exceeded", "session_id");
    char limit[32];
    snprintf(limit, sizeof limit, "limit is %lld", (long long)held + 2);
    if (!strstr(message, limit))
        fail_msg("the refusal does not name the limit (%s): %s", limit, message);
    free(message);

    /* a session the workspace has, asked again, is no new session */
    sess_create_ok(fx, key, "q1.", q1);
    /* a session gone makes room */
    char gone[256];
    snprintf(gone, sizeof gone,
             "UPDATE whatsapp_accounts SET deleted_at = now() WHERE session_id = '%s'", q2);
    itest_pg_exec(fx->a.camp.pg, gone);
    sess_create_ok(fx, key, "q4.", q4);
    agent_wait(&fx->a, 1, 30,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "deleted_at IS NULL", q4);
    assert_int_equal(sess_int("SELECT count(*) FROM whatsapp_accounts WHERE workspace_id = %lld "
                              "AND deleted_at IS NULL", (long long)ws), held + 2);
    print_message("quota %lld: 3 accepted before any applied, the third dead-lettered; the "
                  "fourth refused 409 at once\n", (long long)held + 2);
    free(key);
}

/* blazzctl gateways args..., its output into out (the fixture's folder). */
static void gateways_ctl(const char *const *args, const char *out_name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", fx->a.camp.dir, out_name);
    assert_int_equal(camp_blazzctl(&fx->a.camp, args, out), 0);
}

static void a_gateway_granted_to_a_workspace_serves_only_it(void **state)
{
    (void)state;
    sess_fx_init(fx, "grant");
    int64_t mine = fx->a.wh.workspace_id, theirs = camp_workspace(&fx->a.camp);
    char *key = agent_api_key(&fx->a, mine), *other_key = agent_api_key(&fx->a, theirs);
    char ws[24], out[800];
    snprintf(ws, sizeof ws, "%lld", (long long)mine);
    const char *grant[] = {"gateways", "grant", "sim", ws, NULL};
    gateways_ctl(grant, "grant.txt", out, sizeof out);
    const char *list[] = {"gateways", "list", "--json", NULL};
    gateways_ctl(list, "gateways.json", out, sizeof out);
    json_error_t jerr;
    json_t *listed = json_load_file(out, 0, &jerr);
    if (!listed)
        fail_msg("blazzctl gateways list --json: %s", jerr.text);
    size_t i;
    json_t *g, *sim = NULL;
    json_array_foreach(listed, i, g)
        if (strcmp(json_string_value(json_object_get(g, "id")), "sim") == 0)
            sim = g;
    assert_non_null(sim);
    assert_true(json_is_false(json_object_get(sim, "shared")));
    json_t *granted = json_object_get(sim, "workspaces");
    assert_int_equal(json_array_size(granted), 1);
    assert_int_equal(json_integer_value(json_array_get(granted, 0)), mine);
    json_decref(listed);

    sess_start_chat_sync(fx, 30);
    agent_start_ingest(&fx->a, NULL);
    sess_instance how = {.index = 0, .capacity = 10, .heartbeat_ms = 1000, .lease_ms = 8000,
                         .scan_after_ms = 1};
    sess_start_instance(fx, &how);
    sess_wait_live(fx, 1);

    /* another workspace naming it: the answer to a gateway that does not
     * exist, word for word */
    char id[128], granted_resp[512], missing_resp[512];
    assert_int_equal(sess_create_on(fx, other_key, "named.", "sim", id, granted_resp,
                                    sizeof granted_resp), 404);
    assert_int_equal(sess_create_on(fx, other_key, "named.", "no-such-gw", id, missing_resp,
                                    sizeof missing_resp), 404);
    /* gateways belong to no workspace: the sentence names none */
    char *message = refusal(granted_resp, "unknown_gateway", "gateway_id");
    assert_string_equal(message, "field gateway_id: no enabled whatsapp-web.js gateway by that "
                                 "id serves this workspace");
    free(message);
    assert_string_equal(granted_resp, missing_resp);

    /* its session naming no gateway: no instance it may use has room */
    char free_id[128], resp[512];
    assert_int_equal(sess_create_on(fx, other_key, "free.", NULL, free_id, resp, sizeof resp),
                     202);
    json_t *j = json_loads(resp, 0, NULL);
    assert_true(json_is_true(json_object_get(j, "waiting_for_room")));
    json_decref(j);
    agent_wait(&fx->a, 1, 30, "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s'",
               free_id);

    /* the granted workspace's session, newer, is placed there: the sweep
     * looked at the other one first (oldest first) and left it waiting */
    char s1[128];
    sess_create_ok(fx, key, "mine.", s1);
    agent_wait(&fx->a, 1, 60,
               "SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' AND "
               "gateway_id = 'sim' AND assignment_epoch = 1", s1);
    assert_int_equal(sess_int("SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' "
                              "AND status = 'pending_assignment' AND assignment_epoch = 0 AND "
                              "gateway_id IS NULL", free_id), 1);

    /* a command that skips the API is refused where it is applied */
    char theirs_text[24], skipped[128];
    snprintf(theirs_text, sizeof theirs_text, "%lld", (long long)theirs);
    snprintf(skipped, sizeof skipped, "ctl.%s", fx->a.wh.prefix);
    const char *create[] = {"sessions", "create", "--workspace", theirs_text, "--session", skipped,
                            "--gateway", "sim", NULL};
    snprintf(out, sizeof out, "%s/sessions-create.txt", fx->a.camp.dir);
    assert_int_equal(camp_blazzctl(&fx->a.camp, create, out), 0);
    agent_dlq_reasons d;
    agent_dead_letters(&fx->a, &d, 1);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.codes[0], "unknown_gateway");
    assert_int_equal(rows_of(skipped), 0);
    assert_int_equal(sess_int("SELECT count(*) FROM whatsapp_accounts WHERE session_id = '%s' "
                              "AND assignment_epoch = 0", free_id), 1);

    /* the last grant is not revoked by mistake: that opens the gateway to
     * every workspace, which takes --share */
    const char *revoke_last[] = {"gateways", "revoke", "sim", ws, NULL};
    snprintf(out, sizeof out, "%s/revoke-refused.txt", fx->a.camp.dir);
    assert_int_not_equal(camp_blazzctl(&fx->a.camp, revoke_last, out), 0);
    assert_int_equal(sess_int("SELECT count(*) FROM gateway_workspaces"), 1);
    const char *revoke[] = {"gateways", "revoke", "sim", ws, "--share", NULL};
    gateways_ctl(revoke, "revoke.txt", out, sizeof out);
    assert_true(itest_file_contains(out, "gateway sim serves every workspace"));
    assert_int_equal(sess_int("SELECT count(*) FROM gateway_workspaces"), 0);
    free(key);
    free(other_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_workspace_holds_no_more_sessions_than_its_quota, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_gateway_granted_to_a_workspace_serves_only_it, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
