/*
 * session_itest.h - fixtures for the tests of sessions under the
 * backbone's command (ARCHITECTURE.md §15): the two-way chain of
 * agent_itest.h (ingest, chat-sync, the dispatcher and its receiver,
 * campaign-sender) and gateway instances played by blazz-gateway-sim
 * --mode instance, each a process of its own with its heartbeat, its
 * command stream and its logs:
 *
 *   served log    wall_ms index boot start|stop session epoch: when the
 *                 instance served which session (a stop for lost leases
 *                 is dated when the lease ended);
 *   accepted log  session_id wam_id: every customer message the broker
 *                 acknowledged.
 *
 * Sessions are created through the CRM API (POST /v1/sessions) under ids
 * ending in the fixture's prefix. Instances serve gateway "sim"
 * (itest_topics_create registers it) with shared session storage
 * (RemoteAuth: a moved session resumes without a QR) and a scan folder (a
 * QR is scanned when a file named after the session appears), unless told
 * to scan at once.
 */
#ifndef SESSION_ITEST_H
#define SESSION_ITEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent_itest.h"

#define SESS_RUNS_MAX 8

/* One process playing an instance. */
typedef struct sess_run {
    pid_t pid;
    int index;
    int64_t killed_at_ms; /* SIGKILL: what it served ended then */
    char served_log[720];
    char accepted_log[720];
} sess_run;

typedef struct sess_fx {
    agent_fx a;
    int chat_sync_admin; /* chat-sync's /metrics port */
    char storage_dir[720], scan_dir[720];
    sess_run runs[SESS_RUNS_MAX];
    size_t nruns;
} sess_fx;

/* How an instance behaves. */
typedef struct sess_instance {
    int index;
    int capacity;
    int heartbeat_ms, lease_ms;
    int scan_after_ms; /* 0: scanned when the scan folder says so */
    double rate;       /* customer messages a second on its sessions */
    int hold_sends;    /* take sends and answer none (--hold-sends) */
    /* the session store it reaches: NULL, the shared one ("shared", the
     * fixture's storage folder); another name, a folder of that name */
    const char *storage;
    /* private chats on each session's phone, each with history_messages
     * messages (--phone-chats): a connect syncs them by the backbone's
     * limits; 0: none */
    int phone_chats, history_messages;
} sess_instance;

/* agent_fx_init, the folders, nothing running. */
void sess_fx_init(sess_fx *fx, const char *name);
/* Stop every instance (each must exit 0), retire the fixture's sessions
 * and instances (the next test's sweep must not move them), then
 * agent_fx_finish. */
void sess_fx_finish(sess_fx *fx);

/* A program's per-test fixture at *slot, for cmocka's setup and teardown:
 * sess_fx_open allocates it (not initialized: the test calls sess_fx_init),
 * sess_fx_close finishes and frees it whether the test passed or not, so
 * no instance or sweep outlives its test. Both return cmocka's 0, or -1
 * when memory ran out. */
int sess_fx_open(sess_fx **slot);
int sess_fx_close(sess_fx **slot);

/* chat-sync with its metrics on a port of its own, the sweep every 200 ms
 * and instances declared dead after instance_timeout_s. */
void sess_start_chat_sync(sess_fx *fx, int instance_timeout_s);
/* The same placing sessions by sessions.assignment = policy
 * ("least_loaded", "modulo"); NULL keeps chat-sync's default. */
void sess_start_chat_sync_assigning(sess_fx *fx, int instance_timeout_s, const char *policy);
/* The same with extra settings (NAME=VALUE lines, NULL-terminated, at
 * most 12). */
void sess_start_chat_sync_env(sess_fx *fx, int instance_timeout_s, const char *const *extra);
/* Start an instance; returns its run (its slot in fx->runs). */
sess_run *sess_start_instance(sess_fx *fx, const sess_instance *how);
void sess_kill(sess_fx *fx, sess_run *run); /* SIGKILL, remembered */

/* POST body to path with key, again while it is answered 503 (up to 30
 * s): the status; the answer goes to resp. */
long sess_post(sess_fx *fx, const char *path, const char *key, const char *body, char *resp,
               size_t cap);

/* Wait until n instances of gateway "sim" heartbeat: sessions created
 * before one of them is live would all go to the others. */
void sess_wait_live(sess_fx *fx, int n);

/* POST /v1/sessions {"session_id": "<name><prefix>", "gateway_id": "sim"}
 * with key; full id into id (128 bytes). Returns the HTTP status; the
 * answer goes to resp. */
long sess_create(sess_fx *fx, const char *key, const char *name, char *id, char *resp,
                 size_t cap);
/* The same naming gateway, or none when it is NULL. */
long sess_create_on(sess_fx *fx, const char *key, const char *name, const char *gateway,
                    char *id, char *resp, size_t cap);
/* sess_create, which must be accepted as a new pending session: 202 with
 * its id. */
void sess_create_ok(sess_fx *fx, const char *key, const char *name, char *id);
/* POST /v1/sessions/<id>/<what> with key: the status. */
long sess_command(sess_fx *fx, const char *key, const char *id, const char *what);
/* The scan folder's file for the session: its QR code is scanned. */
void sess_scan(sess_fx *fx, const char *id);

/* chat-sync's metric sample (e.g. "blazz_chat_sync_fenced_reports_total"). */
double sess_metric(sess_fx *fx, const char *sample);

/* No session was served by two instances at once, by every run's served
 * log (an instance killed stopped serving when it was killed; one still
 * running serves until now). Returns how many serving spans it read. */
size_t sess_assert_never_served_twice(sess_fx *fx);
/* Every customer message some run's broker acknowledged is stored, once.
 * Returns how many. */
size_t sess_assert_messages_stored_once(sess_fx *fx);
/* Sessions some run served at wall time at_ms. */
size_t sess_served_at(sess_fx *fx, int64_t at_ms);
/* Spans in run's served log that start after at_ms, for the session. */
int sess_starts_after(const sess_run *run, const char *session_id, int64_t at_ms);

#endif
