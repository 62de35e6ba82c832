/*
 * itest.h - shared helpers for integration tests against the real stack.
 *
 * Tests get the stack from the environment scripts/test.sh exports:
 * BLAZZ_PG_DSN, BLAZZ_KAFKA_BROKERS, BLAZZ_STACK_SCRIPT (to stop/start
 * PostgreSQL or Kafka mid-test) and BLAZZ_TEST_BIN_DIR (where helper programs
 * were built). A missing variable fails the test; nothing is skipped.
 * Each test isolates itself with a unique topic prefix, consumer group and
 * table names, so runs never see each other's data.
 *
 * Kafka: the test process itself is the stack's admin principal (test.sh
 * exports its credentials), because tests create topics and ACLs for their
 * prefixes and read and write any topic. Every program a test starts runs
 * as its own principal: itest_spawn and itest_blazzctl give blazz-<service>
 * the service's credentials, blazzctl blazzctl's and blazz-gateway-sim
 * gateway-sim's (ARCHITECTURE.md §9.1). A test's consumer groups must be
 * named blazz-<service>... (blazz-gateway-sim.... for the simulator) for the
 * ACLs to let the program join.
 *
 * Helpers that can fail call cmocka's fail_msg, so they are only for use
 * inside cmocka tests (and the programs they spawn use plain returns).
 */
#ifndef ITEST_H
#define ITEST_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blazz/v1/dead_letter.pb-c.h"
#include "kafka/producer.h"

/* getenv, failing the test when unset. */
const char *itest_env(const char *name);

/* A whole-number knob from the environment (test sizes, kill counts): def
 * when unset or empty; fails the test unless it is an integer in [lo, hi]. */
int itest_env_int(const char *name, int def, int lo, int hi);

/* A unique lowercase token for names: "<prefix><pid><random>". */
void itest_unique(const char *prefix, char *out, size_t cap);

PGconn *itest_pg_connect(void);
void itest_pg_exec(PGconn *conn, const char *sql);

/* A database of the test's own, for a test that needs an empty one (the
 * database of its place in the pool, scripts/test.sh, holds what the
 * programs before it wrote): created on the test server with a unique name
 * from prefix, migrated by `blazzctl migrate` (its stderr appended to
 * err_log), and made BLAZZ_PG_DSN for the test and everything it starts.
 * itest_pg_leave_own_database drops it and restores the place's DSN. */
void itest_pg_use_own_database(const char *prefix, const char *err_log);
void itest_pg_leave_own_database(void);
int64_t itest_pg_int64(PGconn *conn, const char *sql);

/* One value of a query written printf-style (tests build their SQL from
 * values they made themselves); fails the test unless it returns exactly
 * one row. itest_pg_textf returns a copy the caller frees, "(null)" for
 * NULL. */
int64_t itest_pg_int64f(PGconn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *itest_pg_textf(PGconn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One number of sql as the CRM reads it: role blazz_crm with its session's
 * workspace ws (row level security, the read contract), then conn as it
 * was. */
int64_t itest_pg_int64_as_crm(PGconn *conn, int64_t ws, const char *sql);

/* The rows of a query written printf-style; fails the test unless it
 * returns rows. The caller PQclears the result. */
PGresult *itest_pg_rowsf(PGconn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The PostgreSQL backends serving process's TCP connections (matched by
 * its sockets' local ports, /proc), as an array literal ("{12,34}"): heap,
 * the caller frees. Taken before the process is killed; fails the test
 * when it finds none. */
char *itest_pg_backends_of(PGconn *conn, pid_t process);
/* Wait until none of backends (itest_pg_backends_of) is left, or
 * fail after timeout_s. A killed client's backend runs what it had read
 * before it sees the socket close: till it is gone, that statement may
 * still commit. */
void itest_pg_wait_backends_gone(PGconn *conn, const char *backends, int timeout_s);

/* Raise a restore fence as `stack.sh restore` does, with an end offset of
 * a group that does not exist: no service lifts it, the test does
 * (UPDATE restore_fences SET lifted_at = now()). */
void itest_restore_fence_raise(PGconn *conn);

/* Assert that actual (heap, from itest_pg_textf) equals expected; frees it. */
void itest_assert_text(const char *expected, char *actual);

/* A TCP port on 127.0.0.1 that was free a moment ago and that no test
 * process of this run has been handed before (until the range wraps):
 * from the counter in $BLAZZ_TEST_PORTS_FILE, below the ephemeral ports. */
int itest_free_port(void);

/* The first of count consecutive ports handed out as one, for a program
 * that chooses its own ports upward from a base (scripts/run.sh): the first
 * was free a moment ago, and no test process of this run is handed any of
 * them (until the range wraps). */
int itest_free_port_span(int count);

/* Create the whole topic catalogue under prefix ($BLAZZ_TOPIC_REPLICATION
 * replicas, 1 when unset: a cluster test sets 3), the topics of the stack's
 * gateways (sim, a, b), and the ACLs of every principal for that prefix;
 * register the gateway "sim" that blazz-gateway-sim's accounts name. */
void itest_topics_create(const char *prefix, int partitions);

/* The partitions of a fixture's topics: two, so that two instances of a
 * service share a topic, one each. Every fixture makes a whole catalogue
 * under a prefix of its own, and the suite's one broker held 16,336
 * partitions by the end when they had six (chat-sync's and the
 * exactly-once consumer's tests, which spread work over more members,
 * keep six). */
#define ITEST_PARTITIONS 2

/* The credentials of one of the stack's principals ("ingest", "gateway-a",
 * ...), from $BLAZZ_KAFKA_CREDENTIALS_DIR, for clients a test builds as
 * that principal (bz_kafka_settings.security). Release with
 * bz_kafka_security_release. */
void itest_principal(const char *name, bz_kafka_security *out);

/* The environment program runs in (heap: itest_env_free): this process's,
 * with extra "NAME=value" entries (NULL: none), in which it runs as its
 * own principal (see above) and, for a service, logs in to PostgreSQL as
 * its own role (blazz_<service>, ARCHITECTURE.md §9); programs with no
 * principal of their own keep the admin's and the owner's. Built before
 * fork and handed to execve: between the two, a child of a threaded test
 * may only call async-signal-safe functions (setenv or malloc there can
 * wait for ever on a lock another thread held at the fork: an ingest that
 * never started, with an empty log, in a CI run). */
char **itest_program_env(const char *program, const char *const *extra);
void itest_env_free(char **env);

/* The ring tests seal secrets with (core/keyring.h); itest_gateway_create
 * exports it as BLAZZ_SECRETS_KEYS for everything the test starts. */
#define ITEST_SECRETS_KEYS "itest:83e30e7597b02095491211ddd2cd4e0cc7bd6aab5facb3bc4f4916646adc33a9"

/* A webhook endpoint's signing secret as stored in column (its
 * secret_ciphertext, or previous_secret_ciphertext for the secret a
 * rotation replaced), opened with the ring keys (core/keyring.h's
 * BLAZZ_SECRETS_KEYS form) bound to its row, as the dispatcher opens it:
 * heap text the caller frees. Fails the test when the column is not in
 * the current sealed form or does not open bound to that row. */
char *itest_open_endpoint_secret(PGconn *conn, const char *keys, int64_t endpoint,
                                 int64_t workspace, const char *column);

/* Register gateway id (unique per test) of kind ("webjs" or "meta") with
 * signing key key, through `blazzctl gateways add`, served on Kafka by
 * principal (one of the stack's: gateway-sim, gateway-a, gateway-b): its
 * topic and ACLs under prefix. */
void itest_gateway_create(const char *prefix, const char *id, const char *kind,
                          const char *principal, const char *key);

/* The Kafka header ingest's HTTP edge stamps on wa.inbound.raw with the
 * gateway that signed the record (services/ingest/gateway/gateway_auth.h): tests
 * that write that topic directly act as the edge. */
#define ITEST_GATEWAY_HEADER "blazz-gateway"

/* A new API key of the workspace, made with `blazzctl apikeys create`
 * (heap text the caller frees); blazzctl's stderr is appended to err_log. */
char *itest_api_key(int64_t workspace, const char *err_log);

/* The checkout a file of which the test needs (name, relative to the
 * repository: "compose.yaml", "docs/openapi.yaml"): $BLAZZ_REPO_DIR, else
 * two levels above the test binaries (build/<out>), else the current
 * directory; fails the test when none holds the file. Static buffer. */
const char *itest_repo_dir(const char *name);
/* The whole text of the repository's file relative (a migration, a doc),
 * NUL-terminated; the caller frees it. */
char *itest_read_repo_file(const char *relative);

/* Path of a helper program built next to the tests. Static buffer. */
const char *itest_program(const char *name);

/* Start argv[0] with argv (NULL-terminated) in itest_program_env(argv[0],
 * extra); its stdout and stderr are appended to log_path, and it dies with
 * the test. */
pid_t itest_spawn_env(char *const argv[], const char *const *extra, const char *log_path);
/* itest_spawn_env with no extra environment. */
pid_t itest_spawn(char *const argv[], const char *log_path);

/* Wait for pid; returns its exit code, or 128+signal. */
int itest_wait(pid_t pid);

/* Wait for pid for at most grace_ms, then kill it with SIGKILL, as an
 * orchestrator does at the end of a stop's grace period (compose's
 * stop_grace_period: 30 s). Returns its exit code, 128+signal, or -1 when
 * it had to be killed. */
int itest_wait_within_grace(pid_t pid, int grace_ms);

/* Copy the file at path (a program's log) to stdout, into the test's
 * log; nothing when it cannot be opened. */
void itest_print_file(const char *path);
/* SIGTERM *pid (when it is > 0) and wait; fails the test unless it exits 0
 * (ASan's leak check included), naming what and its log. *pid becomes 0. */
void itest_terminate(pid_t *pid, const char *what, const char *log_path);

/* Run $BLAZZ_TEST_BIN_DIR/bin/blazzctl with args (NULL-terminated) and wait
 * for it. Returns its exit code; *out receives everything it printed on
 * stdout (NUL-terminated, caller frees). stderr is appended to err_log. */
int itest_blazzctl(const char *const *args, const char *err_log, char **out);

/* itest_blazzctl for commands run with --json: fails the test unless it
 * exits 0 and prints one JSON document, which is returned (caller decrefs). */
json_t *itest_blazzctl_json(const char *const *args, const char *err_log);

/* Run `$BLAZZ_STACK_SCRIPT <action>` (stop-pg, start-pg, restart-kafka,
 * "kill-broker 2", ...: words separated by spaces are separate arguments). */
void itest_stack(const char *action);

/* The stack.env a test's own stack wrote in state_dir (stack.sh up): each
 * `export NAME=value` line (value possibly in single quotes) applied to
 * this process's environment. Fails the test when there is none. */
void itest_stack_env_apply(const char *state_dir);

/* The value of NAME in state_dir's stack.env into out; fails the test when
 * the file or the name is missing. */
void itest_stack_env_value(const char *state_dir, const char *name, char *out, size_t cap);

/* 1 when a line of the file at path contains text (a service's log), 0 when
 * none does or the file cannot be read. */
int itest_file_contains(const char *path, const char *text);
/* 1 once a line of the file at path contains text, polled up to limit_ms;
 * 0 when the time ran out, or at once when writer (0: none) has exited. */
int itest_file_contains_within(const char *path, const char *text, pid_t writer, int limit_ms);

/* The value of key in a key=value file (blazz-gateway-sim's status file),
 * -1 when the key is absent; fails the test when the file is missing. */
long itest_status_value(const char *path, const char *key);

/* rm -r of a test's own temporary folder (links are removed, not followed). */
void itest_remove_tree(const char *dir);

/* Sleep for ms milliseconds. */
void itest_sleep_ms(int ms);

/* Random integer in [lo, hi]. */
int itest_random(int lo, int hi);

/* An idempotent producer on the test broker; free with bz_producer_free. */
bz_producer *itest_producer(void);

/* Read every record of topic (all partitions, from the beginning up to the
 * high watermark at call time), read_committed, calling fn for each. */
/* The last value of the record's header `name` as text into out ("" when
 * absent or longer than cap - 1). */
void itest_header_text(const rd_kafka_message_t *m, const char *name, char *out, size_t cap);

typedef void (*itest_record_fn)(void *ctx, const rd_kafka_message_t *msg);
void itest_consume_all(const char *topic, itest_record_fn fn, void *ctx);

/* Assert that dl keeps only the first bytes of value (len bytes in all),
 * cut to fit the record limit, with the whole value's size and SHA-256. */
void itest_assert_value_cut(const Blazz__V1__DeadLetter *dl, const uint8_t *value, size_t len);

#endif
