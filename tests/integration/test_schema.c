/*
 * test_schema.c - the constraints of db/migrations that the services rely on,
 * checked against a migrated PostgreSQL (BLAZZ_PG_DSN).
 *
 * Each test runs in one transaction that the teardown rolls back, so the
 * database is left as it was and re-runs start clean. Statements expected to
 * fail run inside a savepoint (expect_sqlstate), which keeps the transaction
 * usable and lets the test assert the exact SQLSTATE: 23505 unique
 * violation, 23514 check violation, 23503 foreign key violation, 42501 row
 * level security. Every statement is parameterized.
 *
 * The fixture creates two workspaces A and B, each with one WhatsApp account
 * and one contact with the same phone number.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "itest.h"

#define MAX_PARAMS 8
#define ID_LEN 24

typedef struct fixture {
    PGconn *conn;
    char ws_a[ID_LEN], ws_b[ID_LEN];
    char account_a[ID_LEN], account_b[ID_LEN];
    char contact_a[ID_LEN], contact_b[ID_LEN];
} fixture;

static PGconn *shared_conn;

/* Run sql with n text parameters (varargs of const char *). The caller
 * PQclears the result. */
static PGresult *run(PGconn *conn, const char *sql, int n, ...)
{
    const char *params[MAX_PARAMS];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < MAX_PARAMS; i++)
        params[i] = va_arg(ap, const char *);
    va_end(ap);
    return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
}

/* Fails the test unless res succeeded; frees res first on failure so a
 * failing test does not also report a leak. */
static void assert_result_ok(PGresult *res, const char *sql)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
    PQclear(res);
    fail_msg("statement failed: %s  sql: %s", msg, sql);
}

/* Run a statement that must succeed; copy the first column of its first row
 * (if any) into out. Returns the number of rows affected or returned. */
static long must(PGconn *conn, char *out, size_t cap, const char *sql, int n, const char *a,
                 const char *b, const char *c, const char *d)
{
    PGresult *res = run(conn, sql, n, a, b, c, d);
    assert_result_ok(res, sql);
    if (out && PQntuples(res) > 0 && PQnfields(res) > 0)
        snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
    long rows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res)
                                                         : strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return rows;
}

#define EXEC0(conn, sql) must((conn), NULL, 0, (sql), 0, NULL, NULL, NULL, NULL)
#define EXEC1(conn, sql, a) must((conn), NULL, 0, (sql), 1, (a), NULL, NULL, NULL)
#define EXEC2(conn, sql, a, b) must((conn), NULL, 0, (sql), 2, (a), (b), NULL, NULL)
#define EXEC3(conn, sql, a, b, c) must((conn), NULL, 0, (sql), 3, (a), (b), (c), NULL)
#define EXEC4(conn, sql, a, b, c, d) must((conn), NULL, 0, (sql), 4, (a), (b), (c), (d))
#define VALUE0(conn, out, sql) must((conn), (out), sizeof(out), (sql), 0, NULL, NULL, NULL, NULL)
#define VALUE1(conn, out, sql, a) must((conn), (out), sizeof(out), (sql), 1, (a), NULL, NULL, NULL)
#define VALUE2(conn, out, sql, a, b) must((conn), (out), sizeof(out), (sql), 2, (a), (b), NULL, NULL)
#define VALUE3(conn, out, sql, a, b, c) must((conn), (out), sizeof(out), (sql), 3, (a), (b), (c), NULL)
#define VALUE4(conn, out, sql, a, b, c, d) must((conn), (out), sizeof(out), (sql), 4, (a), (b), (c), (d))

/* Run a statement that must fail with sqlstate, inside a savepoint so the
 * surrounding transaction survives. */
static void expect_sqlstate(PGconn *conn, const char *sqlstate, const char *sql, int n,
                            const char *a, const char *b, const char *c, const char *d)
{
    EXEC0(conn, "SAVEPOINT expect_failure");
    PGresult *res = run(conn, sql, n, a, b, c, d);
    const char *got = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    char state_got[8], msg[512];
    snprintf(state_got, sizeof(state_got), "%s", got ? got : "none");
    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
    int failed = PQresultStatus(res) == PGRES_FATAL_ERROR;
    PQclear(res);
    if (!failed)
        fail_msg("expected SQLSTATE %s but the statement succeeded\n  sql: %s", sqlstate, sql);
    if (strcmp(state_got, sqlstate) != 0)
        fail_msg("expected SQLSTATE %s, got %s: %s  sql: %s", sqlstate, state_got, msg, sql);
    EXEC0(conn, "ROLLBACK TO SAVEPOINT expect_failure");
}

#define REJECT0(conn, state, sql) expect_sqlstate((conn), (state), (sql), 0, NULL, NULL, NULL, NULL)
#define REJECT1(conn, state, sql, a) expect_sqlstate((conn), (state), (sql), 1, (a), NULL, NULL, NULL)
#define REJECT2(conn, state, sql, a, b) expect_sqlstate((conn), (state), (sql), 2, (a), (b), NULL, NULL)
#define REJECT3(conn, state, sql, a, b, c) expect_sqlstate((conn), (state), (sql), 3, (a), (b), (c), NULL)
#define REJECT4(conn, state, sql, a, b, c, d) expect_sqlstate((conn), (state), (sql), 4, (a), (b), (c), (d))

static const char *SQL_NEW_WORKSPACE = "INSERT INTO workspaces (name) VALUES ($1) RETURNING id";
static const char *SQL_NEW_ACCOUNT =
    "INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, status)"
    " VALUES ($1, 'test-' || gen_random_uuid(), $2, 'connected') RETURNING id";
static const char *SQL_NEW_CONTACT =
    "INSERT INTO contacts (workspace_id, phone, first_name, last_name)"
    " VALUES ($1, $2, $3, $4) RETURNING id";
static const char *SQL_NEW_CHAT =
    "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, wam_id, type, chat_type)"
    " VALUES ($1, $2, $3, $4, 'inbound', 'private') RETURNING id";
static const char *SQL_NEW_GROUP =
    "INSERT INTO whatsapp_groups (workspace_id, whatsapp_account_id, group_jid, name)"
    " VALUES ($1, $2, $3, 'Team') RETURNING id";
static const char *SQL_NEW_CAMPAIGN =
    "INSERT INTO campaigns (workspace_id, name) VALUES ($1, $2) RETURNING id";
static const char *SQL_NEW_CAMPAIGN_LOG =
    "INSERT INTO campaign_logs (workspace_id, campaign_id, contact_id) VALUES ($1, $2, $3) RETURNING id";

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->conn = shared_conn;
    /* a failed earlier test may have left its transaction open */
    if (PQtransactionStatus(f->conn) != PQTRANS_IDLE)
        PQclear(PQexec(f->conn, "ROLLBACK"));
    EXEC0(f->conn, "BEGIN");
    VALUE1(f->conn, f->ws_a, SQL_NEW_WORKSPACE, "schema-test A");
    VALUE1(f->conn, f->ws_b, SQL_NEW_WORKSPACE, "schema-test B");
    VALUE2(f->conn, f->account_a, SQL_NEW_ACCOUNT, f->ws_a, "+6281200000001");
    VALUE2(f->conn, f->account_b, SQL_NEW_ACCOUNT, f->ws_b, "+6281200000001");
    VALUE4(f->conn, f->contact_a, SQL_NEW_CONTACT, f->ws_a, "+6281234567890", "Ann", "Lee");
    VALUE4(f->conn, f->contact_b, SQL_NEW_CONTACT, f->ws_b, "+6281234567890", "Bob", NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    PGresult *res = PQexec(f->conn, "ROLLBACK");
    PQclear(res);
    free(f);
    return 0;
}

static void contacts_are_unique_per_workspace_phone_among_live_rows(void **state)
{
    fixture *f = *state;
    char id[ID_LEN];

    /* a second live contact with the same phone in the same workspace */
    REJECT4(f->conn, "23505", SQL_NEW_CONTACT, f->ws_a, "+6281234567890", "Dup", NULL);

    /* a soft-deleted duplicate may coexist with the live row */
    EXEC2(f->conn,
          "INSERT INTO contacts (workspace_id, phone, deleted_at) VALUES ($1, $2, now())",
          f->ws_a, "+6281234567890");

    /* once the live row is soft-deleted, the phone can be used again */
    assert_int_equal(EXEC1(f->conn, "UPDATE contacts SET deleted_at = now() WHERE id = $1", f->contact_a), 1);
    VALUE4(f->conn, id, SQL_NEW_CONTACT, f->ws_a, "+6281234567890", "Ann", NULL);

    /* chat-sync's get-or-create relies on this exact conflict target */
    assert_int_equal(EXEC2(f->conn,
                           "INSERT INTO contacts (workspace_id, phone) VALUES ($1, $2)"
                           " ON CONFLICT (workspace_id, phone) WHERE deleted_at IS NULL DO NOTHING",
                           f->ws_a, "+6281234567890"),
                     0);
    assert_int_equal(EXEC2(f->conn,
                           "SELECT 1 FROM contacts WHERE workspace_id = $1 AND phone = $2 AND deleted_at IS NULL",
                           f->ws_a, "+6281234567890"),
                     1);
}

static void contact_full_name_is_derived(void **state)
{
    fixture *f = *state;
    char name[64];

    VALUE1(f->conn, name, "SELECT full_name FROM contacts WHERE id = $1", f->contact_a);
    assert_string_equal(name, "Ann Lee");
    EXEC1(f->conn, "UPDATE contacts SET last_name = NULL WHERE id = $1", f->contact_a);
    VALUE1(f->conn, name, "SELECT full_name FROM contacts WHERE id = $1", f->contact_a);
    assert_string_equal(name, "Ann");
    REJECT2(f->conn, "428C9", "UPDATE contacts SET full_name = $2 WHERE id = $1", f->contact_a, "X");
}

static void same_group_jid_is_allowed_in_two_workspaces_once_each(void **state)
{
    fixture *f = *state;
    const char *jid = "120363025555555555@g.us";
    char id[ID_LEN];

    VALUE3(f->conn, id, SQL_NEW_GROUP, f->ws_a, f->account_a, jid);
    VALUE3(f->conn, id, SQL_NEW_GROUP, f->ws_b, f->account_b, jid);
    REJECT3(f->conn, "23505", SQL_NEW_GROUP, f->ws_a, f->account_a, jid);
    /* a group row cannot name an account of another workspace */
    REJECT3(f->conn, "23503", SQL_NEW_GROUP, f->ws_a, f->account_b, "120363026666666666@g.us");
}

static void chats_are_unique_per_account_and_wam_id(void **state)
{
    fixture *f = *state;
    char id[ID_LEN];
    char other_account[ID_LEN];

    VALUE4(f->conn, id, SQL_NEW_CHAT, f->ws_a, f->account_a, f->contact_a, "3EB0C431C26A1916A0A7");
    REJECT4(f->conn, "23505", SQL_NEW_CHAT, f->ws_a, f->account_a, f->contact_a, "3EB0C431C26A1916A0A7");

    /* the idempotent insert chat-sync uses stores nothing the second time */
    assert_int_equal(EXEC4(f->conn,
                           "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, wam_id, type)"
                           " VALUES ($1, $2, $3, $4, 'inbound')"
                           " ON CONFLICT (whatsapp_account_id, wam_id) DO NOTHING",
                           f->ws_a, f->account_a, f->contact_a, "3EB0C431C26A1916A0A7"),
                     0);

    /* the same message id seen by another account is another row */
    VALUE2(f->conn, other_account, SQL_NEW_ACCOUNT, f->ws_a, "+6281200000002");
    VALUE4(f->conn, id, SQL_NEW_CHAT, f->ws_a, other_account, f->contact_a, "3EB0C431C26A1916A0A7");

    /* a chat cannot point at a contact of another workspace */
    REJECT4(f->conn, "23503", SQL_NEW_CHAT, f->ws_a, f->account_a, f->contact_b, "3EB0FFFF");
    /* a private chat needs its contact */
    REJECT3(f->conn, "23514",
            "INSERT INTO chats (workspace_id, whatsapp_account_id, wam_id, chat_type)"
            " VALUES ($1, $2, $3, 'private')",
            f->ws_a, f->account_a, "3EB0EEEE");
}

static void campaign_logs_are_unique_per_campaign_and_contact(void **state)
{
    fixture *f = *state;
    char campaign[ID_LEN], other[ID_LEN], id[ID_LEN];

    VALUE2(f->conn, campaign, SQL_NEW_CAMPAIGN, f->ws_a, "Promo");
    VALUE3(f->conn, id, SQL_NEW_CAMPAIGN_LOG, f->ws_a, campaign, f->contact_a);
    REJECT3(f->conn, "23505", SQL_NEW_CAMPAIGN_LOG, f->ws_a, campaign, f->contact_a);

    /* expanding the audience twice is harmless */
    assert_int_equal(EXEC3(f->conn,
                           "INSERT INTO campaign_logs (workspace_id, campaign_id, contact_id)"
                           " VALUES ($1, $2, $3) ON CONFLICT (campaign_id, contact_id) DO NOTHING",
                           f->ws_a, campaign, f->contact_a),
                     0);

    VALUE2(f->conn, other, SQL_NEW_CAMPAIGN, f->ws_a, "Promo 2");
    VALUE3(f->conn, id, SQL_NEW_CAMPAIGN_LOG, f->ws_a, other, f->contact_a);

    /* a log cannot join a campaign and a contact of different workspaces */
    REJECT3(f->conn, "23503", SQL_NEW_CAMPAIGN_LOG, f->ws_a, campaign, f->contact_b);
}

static void check_constraints_reject_unknown_states(void **state)
{
    fixture *f = *state;
    char campaign[ID_LEN], log[ID_LEN];

    REJECT2(f->conn, "23514", "UPDATE whatsapp_accounts SET status = $2 WHERE id = $1", f->account_a, "online");
    REJECT2(f->conn, "23514", "UPDATE whatsapp_accounts SET disconnect_reason = $2 WHERE id = $1",
            f->account_a, "cosmic_rays");
    REJECT2(f->conn, "23514", "UPDATE whatsapp_accounts SET health_score = $2 WHERE id = $1", f->account_a, "101");
    /* 0048: a session id must be a plain file name, even one the CRM writes */
    REJECT2(f->conn, "23514", "UPDATE whatsapp_accounts SET session_id = $2 WHERE id = $1",
            f->account_a, "../../tmp/x");
    REJECT2(f->conn, "23514", "UPDATE whatsapp_accounts SET session_id = $2 WHERE id = $1",
            f->account_a, ".hidden");
    REJECT2(f->conn, "23514", "UPDATE whatsapp_accounts SET session_id = $2 WHERE id = $1",
            f->account_a, "a:b");
    assert_int_equal(EXEC2(f->conn,
                           "UPDATE whatsapp_accounts SET status = 'disconnected', disconnected_at = now(),"
                           " disconnect_reason = $2 WHERE id = $1",
                           f->account_a, "qr_expired"),
                     1);

    VALUE2(f->conn, campaign, SQL_NEW_CAMPAIGN, f->ws_a, "Promo");
    REJECT2(f->conn, "23514", "UPDATE campaigns SET status = $2 WHERE id = $1", campaign, "exploded");
    REJECT1(f->conn, "23514", "UPDATE campaigns SET status = 'scheduled', scheduled_at = NULL WHERE id = $1",
            campaign);
    REJECT2(f->conn, "23514", "UPDATE campaigns SET messages_sent = $2 WHERE id = $1", campaign, "-1");
    VALUE3(f->conn, log, SQL_NEW_CAMPAIGN_LOG, f->ws_a, campaign, f->contact_a);
    REJECT2(f->conn, "23514", "UPDATE campaign_logs SET status = $2 WHERE id = $1", log, "ongoing");

    REJECT2(f->conn, "23514",
            "INSERT INTO session_cleanup_logs (workspace_id, cleanup_type, reason) VALUES ($1, 'manual', $2)",
            f->ws_a, "bored");
    REJECT2(f->conn, "23514",
            "INSERT INTO session_cleanup_logs (workspace_id, cleanup_type, reason) VALUES ($1, $2, 'stale_qr')",
            f->ws_a, "weekly");
    REJECT2(f->conn, "23514", "UPDATE contacts SET unread_messages = $2 WHERE id = $1", f->contact_a, "-1");
}

static void webhook_queue_is_unique_per_event_and_endpoint(void **state)
{
    fixture *f = *state;
    char endpoint[ID_LEN], id[ID_LEN];
    const char *event = "0b9e7a52-7c1e-4b7e-9a51-5a1c2d3e4f50";
    const char *enqueue =
        "INSERT INTO webhook_retry_queue (event_id, endpoint_id, workspace_id, event_type, payload, status)"
        " VALUES ($1, $2, $3, 'chat.message', '\\x7b7d'::bytea, $4) RETURNING id";

    VALUE2(f->conn, endpoint,
           "INSERT INTO webhook_endpoints (workspace_id, url, secret_ciphertext, secret_nonce)"
           " VALUES ($1, $2, decode(repeat('ab', 48), 'hex'), decode(repeat('cd', 12), 'hex')) RETURNING id",
           f->ws_a, "https://crm.example.test/hooks");
    VALUE4(f->conn, id, enqueue, event, endpoint, f->ws_a, "pending");
    REJECT4(f->conn, "23505", enqueue, event, endpoint, f->ws_a, "pending");
    REJECT4(f->conn, "23514", enqueue, "1b9e7a52-7c1e-4b7e-9a51-5a1c2d3e4f50", endpoint, f->ws_a, "lost");
    /* a delivery row cannot name an endpoint of another workspace */
    REJECT4(f->conn, "23503", enqueue, "2b9e7a52-7c1e-4b7e-9a51-5a1c2d3e4f50", endpoint, f->ws_b, "pending");
    REJECT2(f->conn, "23514",
            "INSERT INTO webhook_endpoints (workspace_id, url, secret_ciphertext, secret_nonce, signature_scheme)"
            " VALUES ($1, 'https://x.test', decode(repeat('ab', 48), 'hex'), decode(repeat('cd', 12), 'hex'), $2)",
            f->ws_a, "md5");
}

static void rls_hides_other_workspaces_from_the_crm_role(void **state)
{
    fixture *f = *state;
    char count[ID_LEN];
    char chat_b[ID_LEN];

    VALUE4(f->conn, chat_b, SQL_NEW_CHAT, f->ws_b, f->account_b, f->contact_b, "3EB0B0B0");

    /* membership in blazz_crm is needed for SET ROLE when not superuser */
    if (EXEC0(f->conn, "SELECT 1 WHERE pg_has_role(current_user, 'blazz_crm', 'MEMBER')") == 0)
        EXEC0(f->conn, "GRANT blazz_crm TO CURRENT_USER");
    EXEC0(f->conn, "SET LOCAL ROLE blazz_crm");

    /* no workspace set: nothing is visible */
    VALUE2(f->conn, count, "SELECT count(*) FROM contacts WHERE id IN ($1, $2)", f->contact_a, f->contact_b);
    assert_string_equal(count, "0");

    EXEC1(f->conn, "SELECT set_config('blazz.workspace_id', $1, true)", f->ws_a);
    VALUE2(f->conn, count, "SELECT count(*) FROM contacts WHERE id IN ($1, $2)", f->contact_a, f->contact_b);
    assert_string_equal(count, "1");
    VALUE2(f->conn, count, "SELECT count(*) FROM whatsapp_accounts WHERE id IN ($1, $2)", f->account_a,
           f->account_b);
    assert_string_equal(count, "1");
    VALUE1(f->conn, count, "SELECT count(*) FROM chats WHERE workspace_id = $1", f->ws_b);
    assert_string_equal(count, "0");
    VALUE2(f->conn, count, "SELECT count(*) FROM workspaces WHERE id IN ($1, $2)", f->ws_a, f->ws_b);
    assert_string_equal(count, "1");

    /* B's rows can be neither changed nor created from A */
    assert_int_equal(EXEC1(f->conn, "UPDATE contacts SET first_name = 'pwned' WHERE id = $1", f->contact_b), 0);
    assert_int_equal(EXEC1(f->conn, "DELETE FROM contact_groups WHERE workspace_id = $1", f->ws_b),
                     0);
    REJECT2(f->conn, "42501", "INSERT INTO contact_groups (workspace_id, name) VALUES ($1, $2)",
            f->ws_b, "theirs");
    /* A's own rows stay writable */
    assert_int_equal(EXEC1(f->conn, "UPDATE contacts SET first_name = 'Anne' WHERE id = $1", f->contact_a), 1);
    /* and what the backbone writes is refused, A's own included (0065):
     * a message, an account, a contact's identity, go through the API */
    REJECT2(f->conn, "42501", "INSERT INTO contacts (workspace_id, phone) VALUES ($1, $2)", f->ws_a,
            "+6281299999999");
    REJECT1(f->conn, "42501", "UPDATE contacts SET phone = '+6281200000000' WHERE id = $1",
            f->contact_a);
    REJECT1(f->conn, "42501", "DELETE FROM whatsapp_accounts WHERE id = $1", f->account_a);
    REJECT1(f->conn, "42501", "UPDATE chats SET message_status = 'read' WHERE workspace_id = $1",
            f->ws_a);
    /* an endpoint's state and its deliveries too (0070): the API's PATCH
     * and replay, blazzctl webhooks */
    REJECT1(f->conn, "42501", "UPDATE webhook_endpoints SET enabled = false WHERE workspace_id = $1",
            f->ws_a);
    REJECT2(f->conn, "42501",
            "INSERT INTO webhook_endpoints (workspace_id, url, secret_ciphertext, secret_nonce) "
            "VALUES ($1, $2, decode(repeat('ab', 48), 'hex'), decode(repeat('cd', 12), 'hex'))",
            f->ws_a, "https://x.test");
    REJECT1(f->conn, "42501",
            "UPDATE webhook_retry_queue SET status = 'pending' WHERE workspace_id = $1", f->ws_a);
    REJECT1(f->conn, "42501", "DELETE FROM webhook_retry_queue WHERE workspace_id = $1", f->ws_a);
    /* infrastructure tables are not the CRM's */
    REJECT0(f->conn, "42501", "SELECT count(*) FROM outbox");
    REJECT0(f->conn, "42501", "SELECT count(*) FROM outbound_queue");
    REJECT0(f->conn, "42501", "SELECT count(*) FROM send_ledger");
    REJECT0(f->conn, "42501", "SELECT count(*) FROM meta_credentials");
    REJECT0(f->conn, "42501", "SELECT count(*) FROM meta_sends");
    REJECT0(f->conn, "42501", "SELECT count(*) FROM meta_throttle");
    /* its API keys: its own only, and never a new one (blazzctl shows a
     * created key once) */
    VALUE1(f->conn, count, "SELECT count(*) FROM api_keys WHERE workspace_id = $1", f->ws_b);
    assert_string_equal(count, "0");
    REJECT2(f->conn, "42501",
            "INSERT INTO api_keys (workspace_id, key_id, secret_sha256, name) VALUES "
            "($1, $2, decode(repeat('00', 32), 'hex'), 'x')", f->ws_a, "aaaaaaaaaaaaaaaa");
}

/* Issue 32: the CRM could un-revoke a key or replace its hash. */
static void the_crm_role_may_only_revoke_its_api_keys(void **state)
{
    fixture *f = *state;
    char live[ID_LEN], revoked[ID_LEN], count[ID_LEN];
    VALUE2(f->conn, live,
           "INSERT INTO api_keys (workspace_id, key_id, secret_sha256, name) VALUES "
           "($1, $2, sha256('live'), 'live') RETURNING id", f->ws_a, "schemalive000001");
    VALUE2(f->conn, revoked,
           "INSERT INTO api_keys (workspace_id, key_id, secret_sha256, name, revoked_at) VALUES "
           "($1, $2, sha256('old'), 'old', now()) RETURNING id", f->ws_a, "schemarevoked001");
    if (EXEC0(f->conn, "SELECT 1 WHERE pg_has_role(current_user, 'blazz_crm', 'MEMBER')") == 0)
        EXEC0(f->conn, "GRANT blazz_crm TO CURRENT_USER");
    EXEC0(f->conn, "SET LOCAL ROLE blazz_crm");
    EXEC1(f->conn, "SELECT set_config('blazz.workspace_id', $1, true)", f->ws_a);
    REJECT1(f->conn, "42501", "UPDATE api_keys SET secret_sha256 = sha256('mine') WHERE id = $1",
            live);
    REJECT1(f->conn, "42501", "UPDATE api_keys SET key_id = 'schemastolen0001' WHERE id = $1",
            live);
    REJECT1(f->conn, "42501", "UPDATE api_keys SET revoked_at = NULL WHERE id = $1", revoked);
    assert_int_equal(EXEC1(f->conn, "UPDATE api_keys SET revoked_at = now() WHERE id = $1", live),
                     1);
    EXEC0(f->conn, "RESET ROLE");
    VALUE1(f->conn, count, "SELECT count(*) FROM api_keys WHERE id = $1 AND revoked_at IS NOT NULL",
           live);
    assert_string_equal(count, "1");
}

/* 0066 copies the proofs 0045's table alone holds into
 * meta_message_proofs, where meta-sender reads them since: a live one
 * arrives as it was proven, a message meta_message_proofs has failed
 * already stays failed. The migration's own text, run on such rows in
 * 0045's table made again (0069 dropped it; the test's transaction is
 * rolled back). */
static void meta_send_proofs_are_copied_where_meta_sender_reads(void **state)
{
    fixture *f = *state;
    assert_int_equal(itest_pg_int64f(f->conn, "SELECT count(*) FROM pg_class WHERE relname = "
                                              "'meta_send_proofs'"),
                     0);
    EXEC0(f->conn, "CREATE TABLE meta_send_proofs (client_reference uuid PRIMARY KEY, "
                   "whatsapp_account_id bigint NOT NULL, wam_id text NOT NULL, "
                   "proven_at timestamptz NOT NULL DEFAULT now())");
    EXEC0(f->conn, "INSERT INTO meta_send_proofs (client_reference, wam_id, whatsapp_account_id, "
                   "proven_at) VALUES ('00000000-0000-4000-8000-000000006601', 'wamid.live', -66, "
                   "'2026-01-02 03:04:05+00'), ('00000000-0000-4000-8000-000000006602', "
                   "'wamid.failed', -66, '2026-01-02 03:04:05+00')");
    EXEC0(f->conn, "INSERT INTO meta_message_proofs (client_reference, wam_id, "
                   "whatsapp_account_id, failed_at) VALUES "
                   "('00000000-0000-4000-8000-000000006602', 'wamid.failed', -66, now())");
    char *migration = itest_read_repo_file("db/migrations/0066_meta_send_proofs_read_no_more.sql");
    PGresult *res = PQexec(f->conn, migration); /* its statements, as the migrator runs them */
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("0066 on rows of 0045: %s", PQerrorMessage(f->conn));
    PQclear(res);
    free(migration);
    char proofs[256];
    VALUE1(f->conn, proofs,
           "SELECT string_agg(wam_id || ':' || (failed_at IS NOT NULL) || ':' || "
           "(proven_at = '2026-01-02 03:04:05+00'), ',' ORDER BY wam_id) FROM "
           "meta_message_proofs WHERE whatsapp_account_id = $1::bigint",
           "-66");
    /* failed: true, proven as 0045 had it: false (its own row stayed) */
    assert_string_equal(proofs, "wamid.failed:true:false,wamid.live:false:true");
}

/* Issue 32: every service connected as the owner, a superuser in compose.
 * Each role is tried on what another service does, or nobody may. */
static void each_service_role_is_refused_what_it_must_not_do(void **state)
{
    fixture *f = *state;
    static const char *const refused[][2] = {
        {"blazz_ingest", "INSERT INTO chats (workspace_id, whatsapp_account_id, wam_id, type) "
                         "VALUES (1, 1, 'x', 'inbound')"},
        {"blazz_ingest", "UPDATE api_keys SET secret_sha256 = sha256('mine')"},
        {"blazz_ingest", "SELECT count(*) FROM meta_credentials"},
        {"blazz_ingest", "COPY (SELECT 1) TO PROGRAM 'true'"},
        {"blazz_ingest", "SELECT count(*) FROM outbox"},
        /* it reads what GET /v1/contacts/{id}/calls answers and no more (0062) */
        {"blazz_ingest", "SELECT max(updated_at) FROM calls"},
        /* it disables, enables and replays (0063), never redirects or re-signs */
        {"blazz_ingest", "UPDATE webhook_endpoints SET url = 'https://elsewhere.test/'"},
        {"blazz_ingest", "UPDATE webhook_endpoints SET secret_ciphertext = secret_ciphertext"},
        /* it rotates a secret through blazz_rotate_endpoint_secret (0071),
         * never reading one */
        {"blazz_ingest", "SELECT count(secret_ciphertext) FROM webhook_endpoints"},
        {"blazz_ingest", "SELECT count(previous_secret_ciphertext) FROM webhook_endpoints"},
        {"blazz_ingest", "UPDATE webhook_endpoints SET previous_secret_until = now()"},
        {"blazz_chat_sync", "SELECT blazz_rotate_endpoint_secret(1, 1, '\\x01', 0)"},
        /* it creates the CRM's endpoints with their defaults (0072): the
         * limits and the signing scheme stay the operator's */
        {"blazz_ingest", "INSERT INTO webhook_endpoints (workspace_id, url, secret_ciphertext, "
                         "rate_limit_per_sec) SELECT 1, 'https://x.test/', '\\x01', 1 WHERE false"},
        {"blazz_ingest", "INSERT INTO webhook_endpoints (workspace_id, url, secret_ciphertext, "
                         "signature_scheme) SELECT 1, 'https://x.test/', '\\x01', 'standard' "
                         "WHERE false"},
        {"blazz_ingest", "UPDATE webhook_retry_queue SET payload = '\\x7b7d'"},
        {"blazz_ingest", "DELETE FROM webhook_retry_queue"},
        {"blazz_chat_sync", "DELETE FROM campaigns"},
        {"blazz_chat_sync", "SELECT count(*) FROM api_keys"},
        {"blazz_chat_sync", "UPDATE gateway_keys SET valid_until = now()"},
        {"blazz_webhook_dispatcher", "SELECT count(*) FROM chats"},
        {"blazz_webhook_dispatcher", "INSERT INTO outbox (topic, payload) VALUES ('t', '')"},
        {"blazz_campaign_sender", "INSERT INTO campaigns (workspace_id, name) VALUES (1, 'x')"},
        {"blazz_campaign_sender", "SELECT count(*) FROM gateway_keys"},
        /* it follows Meta's throttling; meta-sender alone records it */
        {"blazz_campaign_sender", "UPDATE meta_throttle SET factor = 1"},
        {"blazz_chat_sync", "SELECT count(*) FROM meta_throttle"},
        /* it may see which media a message refers to (§16.5), not the messages */
        {"blazz_cleanup", "SELECT count(metadata) FROM chats"},
        {"blazz_cleanup", "UPDATE webhook_endpoints SET enabled = false"},
        {"blazz_meta_sender", "SELECT count(*) FROM api_keys"},
        {"blazz_meta_sender", "UPDATE campaigns SET status = 'completed'"},
        /* which workspaces a gateway serves is the operator's (blazzctl) */
        {"blazz_ingest", "INSERT INTO gateway_workspaces (gateway_id, workspace_id) "
                         "VALUES ('x', 1)"},
        {"blazz_chat_sync", "DELETE FROM gateway_workspaces"},
        {"blazz_webhook_dispatcher", "SELECT blazz_gateway_serves('x', 1)"},
    };
    char sql[512], count[ID_LEN];
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(sql, sizeof sql, "SET LOCAL ROLE %s", refused[i][0]);
        EXEC0(f->conn, sql);
        REJECT0(f->conn, "42501", refused[i][1]);
        EXEC0(f->conn, "RESET ROLE");
    }
    /* what they do need works, across workspaces (they bypass the CRM's
     * row level security) */
    EXEC0(f->conn, "SET LOCAL ROLE blazz_ingest");
    VALUE2(f->conn, count, "SELECT count(*) FROM whatsapp_accounts WHERE id IN ($1, $2)",
           f->account_a, f->account_b);
    assert_string_equal(count, "2");
    EXEC0(f->conn, "UPDATE webhook_endpoints SET enabled = enabled, disabled_reason = NULL "
                   "WHERE false");
    EXEC0(f->conn, "UPDATE webhook_retry_queue SET status = 'pending', retry_count = 0 "
                   "WHERE false");
    EXEC0(f->conn, "UPDATE api_keys SET revoked_at = now() WHERE false");
    EXEC0(f->conn, "SELECT count(*) FROM blazz_rotate_endpoint_secret(-1, -1, '\\x01', 0)");
    EXEC0(f->conn, "INSERT INTO webhook_endpoints (id, workspace_id, url, name, event_types, "
                   "secret_ciphertext) SELECT nextval(pg_get_serial_sequence('webhook_endpoints', "
                   "'id')), 1, 'https://x.test/', 'n', '{*}', '\\x01' WHERE false");
    EXEC0(f->conn, "SELECT count(name) + count(last_used_at) FROM api_keys");
    EXEC0(f->conn, "RESET ROLE");
    EXEC0(f->conn, "SET LOCAL ROLE blazz_chat_sync");
    assert_int_equal(EXEC1(f->conn, "UPDATE contacts SET first_name = 'Ann' WHERE id = $1",
                           f->contact_b), 1);
    EXEC0(f->conn, "RESET ROLE");
}

/* The topic an outbox row for topic, keyed by session, is stored under when
 * campaign-sender (an outbox writer, as its own role) inserts it. */
static void outbox_topic_of(PGconn *conn, const char *topic, const char *session, char *out,
                            size_t cap)
{
    EXEC0(conn, "SET LOCAL ROLE blazz_campaign_sender");
    PGresult *res = run(conn,
                        "INSERT INTO outbox (event_id, topic, msg_key, payload) "
                        "VALUES (gen_random_uuid(), $1, convert_to($2, 'UTF8'), '\\x00') "
                        "RETURNING topic",
                        2, topic, session);
    assert_result_ok(res, "insert an outbox row");
    snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    EXEC0(conn, "RESET ROLE");
}

/* 0029: a gateway reads only its sessions' sends and commands, because the
 * outbox routes them to its own topics; the gateway whose id extends
 * another's ("jkt" and "jkt-2") gets its own. */
static void outbox_routes_sends_and_commands_to_the_serving_gateway(void **state)
{
    fixture *f = *state;
    EXEC0(f->conn, "INSERT INTO gateways (id) VALUES ('schema-jkt'), ('schema-jkt-2')");
    EXEC1(f->conn, "UPDATE whatsapp_accounts SET gateway_id = 'schema-jkt-2' WHERE id = $1",
          f->account_a);
    char session_a[ID_LEN * 4], session_b[ID_LEN * 4], meta[ID_LEN * 4], topic[128];
    VALUE1(f->conn, session_a, "SELECT session_id FROM whatsapp_accounts WHERE id = $1",
           f->account_a);
    VALUE1(f->conn, session_b, "SELECT session_id FROM whatsapp_accounts WHERE id = $1",
           f->account_b);
    VALUE1(f->conn, meta,
           "INSERT INTO whatsapp_accounts (workspace_id, session_id, provider_type, gateway_id) "
           "VALUES ($1, '1234567890' || (random() * 1e6)::int, 'meta', 'schema-jkt') "
           "RETURNING session_id",
           f->ws_a);
    outbox_topic_of(f->conn, "wa.outbound", session_a, topic, sizeof topic);
    assert_string_equal(topic, "wa.outbound.gw.schema-jkt-2");
    outbox_topic_of(f->conn, "wa.session.commands", session_a, topic, sizeof topic);
    assert_string_equal(topic, "wa.session.commands.gw.schema-jkt-2");
    /* not routed: other topics, a Meta account's sends (meta-sender's), an
     * account no gateway serves */
    outbox_topic_of(f->conn, "session.events", session_a, topic, sizeof topic);
    assert_string_equal(topic, "session.events");
    outbox_topic_of(f->conn, "wa.outbound", meta, topic, sizeof topic);
    assert_string_equal(topic, "wa.outbound");
    outbox_topic_of(f->conn, "wa.outbound", session_b, topic, sizeof topic);
    assert_string_equal(topic, "wa.outbound");
}

/* The sequential scans of whatsapp_accounts and the probes of its
 * session_id index this session's transaction made so far. */
static void account_lookups_so_far(PGconn *conn, long *seq_scans, long *probes)
{
    char count[ID_LEN];
    VALUE0(conn, count,
           "SELECT seq_scan FROM pg_stat_xact_user_tables "
           "WHERE relid = 'whatsapp_accounts'::regclass");
    *seq_scans = strtol(count, NULL, 10);
    VALUE0(conn, count,
           "SELECT pg_stat_get_xact_numscans('whatsapp_accounts_session_id_key'::regclass)");
    *probes = strtol(count, NULL, 10);
}

/* 0047: the routing trigger finds the account by probing the session_id
 * index. 0029's lookup could not use it (its key had the "C" collation)
 * and read whatsapp_accounts once per routed row, which made cleanup's
 * sweep 12x slower (issue 52). In a session of its own with sequential
 * scans disabled, the probe is the cheapest plan whenever the lookup can
 * use the index; the old lookup read another index whole instead. A Meta
 * account's send, which matches no webjs row, was the worst case: the
 * whole table. */
static void outbox_routing_finds_the_account_by_index(void **state)
{
    (void)state;
    PGconn *conn = PQconnectdb(getenv("BLAZZ_PG_DSN"));
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    char ws[ID_LEN], session[ID_LEN * 4], meta[ID_LEN * 4], topic[128];
    EXEC0(conn, "SET enable_seqscan = off");
    EXEC0(conn, "BEGIN");
    EXEC0(conn, "INSERT INTO gateways (id) VALUES ('schema-idx')");
    VALUE1(conn, ws, SQL_NEW_WORKSPACE, "schema-test index");
    VALUE1(conn, session,
           "INSERT INTO whatsapp_accounts (workspace_id, session_id, gateway_id) "
           "VALUES ($1, 'test-' || gen_random_uuid(), 'schema-idx') RETURNING session_id",
           ws);
    VALUE1(conn, meta,
           "INSERT INTO whatsapp_accounts (workspace_id, session_id, provider_type) "
           "VALUES ($1, '1234567890' || (random() * 1e6)::int, 'meta') RETURNING session_id",
           ws);
    long seq_before, probes_before, seq_after, probes_after;
    account_lookups_so_far(conn, &seq_before, &probes_before);
    outbox_topic_of(conn, "wa.session.commands", session, topic, sizeof topic);
    assert_string_equal(topic, "wa.session.commands.gw.schema-idx");
    outbox_topic_of(conn, "wa.outbound", meta, topic, sizeof topic);
    assert_string_equal(topic, "wa.outbound");
    account_lookups_so_far(conn, &seq_after, &probes_after);
    EXEC0(conn, "ROLLBACK");
    PQfinish(conn);
    assert_int_equal(seq_after - seq_before, 0);
    assert_int_equal(probes_after - probes_before, 2);
}

/* Waits up to timeout_ms for a notification on channel; 1 if one arrived. */
static int wait_for_notify(PGconn *conn, const char *channel, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (!PQconsumeInput(conn))
            return 0;
        PGnotify *n;
        int found = 0;
        while ((n = PQnotifies(conn)) != NULL) {
            if (strcmp(n->relname, channel) == 0)
                found = 1;
            PQfreemem(n);
        }
        if (found)
            return 1;
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(PQsocket(conn), &fds);
        struct timeval tv = {0, 50000};
        select(PQsocket(conn) + 1, &fds, NULL, NULL, &tv);
    }
    return 0;
}

/* Not transactional by nature: the notification only exists after COMMIT,
 * so this test commits its row and deletes it again. */
static void outbox_insert_notifies_the_relay_at_commit(void **state)
{
    (void)state;
    PGconn *conn = shared_conn;
    char id[ID_LEN];

    EXEC0(conn, "LISTEN blazz_outbox");
    EXEC0(conn, "BEGIN");
    VALUE2(conn, id,
           "INSERT INTO outbox (event_id, topic, msg_key, payload, headers)"
           " VALUES (gen_random_uuid(), $1, NULL, '\\x0a00'::bytea, jsonb_build_object('trace_id', $2::text))"
           " RETURNING id",
           "schema.test", "t-1");
    assert_int_equal(wait_for_notify(conn, "blazz_outbox", 0), 0);
    EXEC0(conn, "COMMIT");
    int notified = wait_for_notify(conn, "blazz_outbox", 2000);
    assert_int_equal(EXEC1(conn, "DELETE FROM outbox WHERE id = $1", id), 1);
    EXEC0(conn, "UNLISTEN blazz_outbox");
    assert_true(notified);

    /* an outbox row in a rolled-back transaction wakes nobody */
    EXEC0(conn, "LISTEN blazz_outbox");
    EXEC0(conn, "BEGIN");
    EXEC1(conn, "INSERT INTO outbox (event_id, topic, payload) VALUES (gen_random_uuid(), $1, '\\x00'::bytea)",
          "schema.test");
    EXEC0(conn, "ROLLBACK");
    notified = wait_for_notify(conn, "blazz_outbox", 300);
    EXEC0(conn, "UNLISTEN blazz_outbox");
    assert_false(notified);
}

/* 0046: a gateway with grants serves only their workspaces, one with none
 * every workspace; the services ask as their roles. */
static void a_granted_gateway_serves_only_its_workspaces(void **state)
{
    fixture *f = *state;
    const char *serves = "SELECT blazz_gateway_serves($1, $2::bigint)::text";
    char answer[8];
    EXEC0(f->conn, "INSERT INTO gateways (id) VALUES ('schema-shared'), ('schema-own')");
    EXEC1(f->conn, "INSERT INTO gateway_workspaces (gateway_id, workspace_id) "
                   "VALUES ('schema-own', $1)", f->ws_a);
    REJECT1(f->conn, "23505", "INSERT INTO gateway_workspaces (gateway_id, workspace_id) "
                              "VALUES ('schema-own', $1)", f->ws_a);
    REJECT1(f->conn, "23503", "INSERT INTO gateway_workspaces (gateway_id, workspace_id) "
                              "VALUES ('schema-none', $1)", f->ws_a);
    static const char *const roles[] = {"blazz_ingest", "blazz_chat_sync"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SET LOCAL ROLE %s", roles[i]);
        EXEC0(f->conn, sql);
        VALUE2(f->conn, answer, serves, "schema-shared", f->ws_a);
        assert_string_equal(answer, "true");
        VALUE2(f->conn, answer, serves, "schema-shared", f->ws_b);
        assert_string_equal(answer, "true");
        VALUE2(f->conn, answer, serves, "schema-own", f->ws_a);
        assert_string_equal(answer, "true");
        VALUE2(f->conn, answer, serves, "schema-own", f->ws_b);
        assert_string_equal(answer, "false");
        EXEC0(f->conn, "RESET ROLE");
    }
    /* the last grant gone, the gateway is shared again */
    EXEC1(f->conn, "DELETE FROM gateway_workspaces WHERE workspace_id = $1", f->ws_a);
    VALUE2(f->conn, answer, serves, "schema-own", f->ws_b);
    assert_string_equal(answer, "true");
}

static void kafka_offsets_take_one_row_per_group_topic_partition(void **state)
{
    fixture *f = *state;
    const char *upsert = "INSERT INTO kafka_offsets (group_id, topic, partition, next_offset)"
                         " VALUES ($1, $2, $3, $4)";

    EXEC4(f->conn, upsert, "schema-test", "chat.sync", "0", "10");
    REJECT4(f->conn, "23505", upsert, "schema-test", "chat.sync", "0", "11");
    EXEC4(f->conn, upsert, "schema-test", "chat.sync", "1", "11");
}

int main(void)
{
    const char *dsn = getenv("BLAZZ_PG_DSN");
    if (!dsn || !*dsn) {
        fprintf(stderr, "test_schema: BLAZZ_PG_DSN is not set; it must name a migrated database\n");
        return 1;
    }
    shared_conn = PQconnectdb(dsn);
    if (PQstatus(shared_conn) != CONNECTION_OK) {
        fprintf(stderr, "test_schema: connect: %s", PQerrorMessage(shared_conn));
        PQfinish(shared_conn);
        return 1;
    }

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(contacts_are_unique_per_workspace_phone_among_live_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(contact_full_name_is_derived, setup, teardown),
        cmocka_unit_test_setup_teardown(same_group_jid_is_allowed_in_two_workspaces_once_each, setup, teardown),
        cmocka_unit_test_setup_teardown(chats_are_unique_per_account_and_wam_id, setup, teardown),
        cmocka_unit_test_setup_teardown(campaign_logs_are_unique_per_campaign_and_contact, setup, teardown),
        cmocka_unit_test_setup_teardown(check_constraints_reject_unknown_states, setup, teardown),
        cmocka_unit_test_setup_teardown(webhook_queue_is_unique_per_event_and_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(rls_hides_other_workspaces_from_the_crm_role, setup, teardown),
        cmocka_unit_test_setup_teardown(the_crm_role_may_only_revoke_its_api_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(meta_send_proofs_are_copied_where_meta_sender_reads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(each_service_role_is_refused_what_it_must_not_do, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(kafka_offsets_take_one_row_per_group_topic_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(outbox_routes_sends_and_commands_to_the_serving_gateway,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_granted_gateway_serves_only_its_workspaces, setup,
                                        teardown),
        cmocka_unit_test(outbox_routing_finds_the_account_by_index),
        cmocka_unit_test(outbox_insert_notifies_the_relay_at_commit),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(shared_conn);
    return failed;
}
