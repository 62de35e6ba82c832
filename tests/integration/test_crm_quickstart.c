/*
 * test_crm_quickstart.c - docs/CRM-QUICKSTART.md runs as written (issue 54:
 * "the quick start run verbatim by a test").
 *
 * Every ```sh block of the page, in order, becomes one bash script (after
 * `set -euo pipefail` and a `cd` into this test's folder, the only lines
 * that are not the page's), run with the two settings the page asks for:
 * BLAZZ_API (ingest here) and BLAZZ_API_KEY_FILE (a key blazzctl made, in a
 * file of mode 600). The stack is the whole chain of support/agent_itest.h:
 * ingest with a media store, chat-sync, campaign-sender, the gateway
 * simulator answering sends with receipts, the webhook dispatcher and an
 * endpoint. The script must exit 0 (any answer that is not 2xx stops it,
 * as the page's crm function says), and then the database must hold what
 * the page did: the contact it made, its two sends (the repeated one
 * stored once), the first at least sent, the document linked to the
 * uploaded bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "itest.h"

#define fx agent_test_fx
#define PAGE "docs/CRM-QUICKSTART.md"
#define LINK_SECRET "quickstart-link-secret-0123456789abcdef"

/* The page's ```sh blocks, in order, into script after its preamble;
 * how many blocks. */
static int write_script(const char *script, const char *dir)
{
    char path[1024], line[1024];
    snprintf(path, sizeof path, "%s/%s", itest_repo_dir(PAGE), PAGE);
    FILE *in = fopen(path, "r"), *out = fopen(script, "w");
    assert_non_null(in);
    assert_non_null(out);
    fprintf(out, "set -euo pipefail\ncd '%s'\n", dir);
    int blocks = 0, inside = 0;
    while (fgets(line, sizeof line, in)) {
        if (!inside && strcmp(line, "```sh\n") == 0) {
            inside = 1;
            blocks++;
        } else if (inside && strcmp(line, "```\n") == 0) {
            inside = 0;
        } else if (inside) {
            fputs(line, out);
        }
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
    assert_false(inside);
    return blocks;
}

static void write_key_file(const char *path, const char *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(chmod(path, 0600), 0);
    fprintf(f, "%s\n", key);
    assert_int_equal(fclose(f), 0);
}

static void start_stack(void)
{
    static char dir_line[900], base_line[128];
    snprintf(dir_line, sizeof dir_line, "BLAZZ_MEDIA_LOCAL_DIR=%s/media", fx->camp.dir);
    snprintf(base_line, sizeof base_line, "BLAZZ_MEDIA_LINK_BASE_URL=http://127.0.0.1:%d",
             fx->port);
    const char *ingest_env[] = {dir_line, base_line, "BLAZZ_MEDIA_LINK_SECRET=" LINK_SECRET,
                                NULL};
    agent_start_dispatcher(fx);
    agent_start_chat_sync(fx);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_start_sim(fx);
    agent_start_ingest(fx, ingest_env);
}

static void the_first_day_runs_as_the_page_says(void **state)
{
    (void)state;
    agent_fx_init(fx, "qs");
    int64_t ws = camp_workspace(&fx->camp);
    camp_account(&fx->camp, ws, "qs-a", 1, 100, "{}");
    char *key = agent_api_key(fx, ws);
    agent_endpoint(fx, ws, "/ok/quickstart");
    start_stack();

    char key_file[800], script[800], log[800], api[64], key_env[850];
    snprintf(key_file, sizeof key_file, "%s/api-key", fx->camp.dir);
    snprintf(script, sizeof script, "%s/quickstart.sh", fx->camp.dir);
    snprintf(log, sizeof log, "%s/quickstart.log", fx->camp.dir);
    write_key_file(key_file, key);
    free(key);
    int blocks = write_script(script, fx->camp.dir);
    assert_true(blocks >= 7);
    snprintf(api, sizeof api, "BLAZZ_API=http://127.0.0.1:%d", fx->port);
    snprintf(key_env, sizeof key_env, "BLAZZ_API_KEY_FILE=%s", key_file);
    const char *env[] = {api, key_env, NULL};
    char *argv[] = {"/bin/bash", script, NULL};
    int rc = itest_wait(itest_spawn_env(argv, env, log));
    itest_print_file(log);
    assert_int_equal(rc, 0);

    int64_t contact = agent_int(fx, "SELECT id FROM contacts WHERE workspace_id = %lld AND "
                                    "phone = '+6281234567801' AND first_name = 'Dewi'",
                                (long long)ws);
    /* the page's last message was only accepted (202): its row is chat-sync's
     * to make, a moment later on a busy machine */
    agent_wait(fx, 2, 30, "SELECT count(*) FROM chats WHERE contact_id = %lld AND "
                          "type = 'outbound'",
               (long long)contact);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE contact_id = %lld AND "
                                   "metadata->>'idempotency_key' = 'first-day-hello' AND "
                                   "sent_at IS NOT NULL",
                               (long long)contact),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats c JOIN chat_media m ON m.id = "
                                   "c.media_id WHERE c.contact_id = %lld AND m.name = "
                                   "'invoice.pdf'",
                               (long long)contact),
                     1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_first_day_runs_as_the_page_says),
    };
    return cmocka_run_group_tests(tests, agent_test_setup, agent_test_teardown);
}
