/*
 * campaign_itest.h - fixtures shared by the campaign-sender integration
 * tests and benchmark: a unique topic prefix with its topics, the service
 * and the test gateway (campaign_test_gateway) as real processes, test data
 * inserted straight into PostgreSQL (workspace, accounts, contacts and their
 * group, campaigns), commands on campaign.commands, and readers for what
 * the test gateway recorded and what campaign.events carried.
 *
 * Every wait polls PostgreSQL (or a file) with a deadline that fails the
 * test; nothing sleeps to "let things happen".
 */
#ifndef CAMPAIGN_ITEST_H
#define CAMPAIGN_ITEST_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blazz/v1/whatsapp.pb-c.h"

#define CAMP_MAX_SENDERS 4

typedef struct camp_fx {
    char prefix[64];
    char dir[512];          /* logs and the test gateway's record file */
    char record_path[600];
    PGconn *pg;
    pid_t senders[CAMP_MAX_SENDERS];
    pid_t gateway;
    int sender_starts;
} camp_fx;

/* One SendMessage as the test gateway saw it. */
typedef struct camp_send {
    int64_t ms;          /* when the gateway received it */
    int64_t released_ms; /* when campaign-sender released it (0: not said) */
    int64_t contact_id, campaign_id, log_id;
    char session[64];
    char key[64];
    char body[256];
} camp_send;

/* Unique prefix, topics, database connection, empty record file. */
void camp_fx_init(camp_fx *fx, const char *name);
/* Stop every process still running (SIGTERM, then wait), close. */
void camp_fx_finish(camp_fx *fx);

/* Run SQL with text parameters (NULL = SQL NULL); returns the first column
 * of the first row as an integer (0 when there is no row). Fails the test
 * on error. */
int64_t camp_sql(camp_fx *fx, const char *sql, int nparams, ...);

/* Test data. rate_limits_json is an account's metadata rate_limits object
 * (e.g. {"per_second": 20, "per_minute": 0, "per_hour": 0}). Accounts are
 * served by the gateway "sim" (ARCHITECTURE.md §9.2), so the simulator's
 * receipts for them are accepted, and are a year old: established numbers,
 * past the warm-up of a new webjs number (campaign-sender's warmup.h). */
int64_t camp_workspace(camp_fx *fx);
int64_t camp_account(camp_fx *fx, int64_t workspace, const char *session, int primary,
                     int health, const char *rate_limits_json);
/* n contacts (phones +1<tag>xxxxxxx) in a new contact group; returns the group. */
int64_t camp_audience(camp_fx *fx, int64_t workspace, int n, int tag);
/* A campaign in status (draft | scheduled) with its body; account may be 0.
 * metadata_json may be NULL. */
int64_t camp_campaign(camp_fx *fx, int64_t workspace, int64_t group, int64_t account,
                      const char *body, const char *status, const char *metadata_json);

/* Start argv with the NULL-terminated "KEY=VALUE" list env set, output to
 * log_name in the fixture's folder. */
pid_t camp_spawn(camp_fx *fx, const char *log_name, char *const argv[], const char *const *env);

/* Processes. extra_env: NULL-terminated "KEY=VALUE" list for the service. */
void camp_start_sender(camp_fx *fx, int slot, const char *const *extra_env);
void camp_stop_sender(camp_fx *fx, int slot);  /* SIGTERM; asserts exit 0 */
void camp_kill_sender(camp_fx *fx, int slot);  /* SIGKILL */
/* args: NULL-terminated extra test gateway options. */
void camp_start_test_gateway(camp_fx *fx, const char *const *args);
void camp_stop_test_gateway(camp_fx *fx);

/* Run blazzctl with args (NULL-terminated) against the fixture's prefix,
 * stdout to out_path; returns its exit code. */
int camp_blazzctl(camp_fx *fx, const char *const *args, const char *out_path);

/* `blazzctl campaign status ID --json` (its errors in the fixture's
 * blazzctl-status.log): the JSON it printed, for json_decref. */
json_t *camp_status_json(camp_fx *fx, int64_t campaign);

/* Poll `blazzctl campaign status --json` until its "held" (why the
 * campaign waits, ARCHITECTURE.md §11.3) names reason, and detail_name
 * equal to detail when given; 1 once it does, 0 when the campaign
 * completed first or timeout_s passed. */
int camp_wait_held(camp_fx *fx, int64_t campaign, const char *reason, const char *detail_name,
                   const char *detail, int timeout_s);

/* Produce a CampaignCommand (action: start|pause|resume|cancel). */
void camp_command(camp_fx *fx, int64_t workspace, int64_t campaign, const char *action,
                  const char *actor);

/* Produce a CampaignReceipt for the log log_uuid of campaign, as chat-sync
 * does when a send's status comes back. */
void camp_receipt(camp_fx *fx, int64_t workspace, int64_t campaign, int64_t contact,
                  const char *log_uuid, Blazz__V1__DeliveryStatus status, const char *wam_id);

/* Poll until sql (one integer) equals want, at most timeout_s seconds. */
void camp_wait_value(camp_fx *fx, const char *what, int64_t want, int timeout_s,
                     const char *sql, int nparams, ...);
/* Poll until sql (one integer) is at least min; returns the value. */
int64_t camp_wait_at_least(camp_fx *fx, const char *what, int64_t min, int timeout_s,
                           const char *sql, int nparams, ...);
/* Poll until the campaign's status is status. */
void camp_wait_status(camp_fx *fx, int64_t campaign, const char *status, int timeout_s);
/* Wait until no outbox row is left (everything published). */
void camp_wait_outbox_empty(camp_fx *fx, int timeout_s);

/* Counters equal the logs at or beyond each step (assert). */
void camp_assert_counters_exact(camp_fx *fx, int64_t campaign);

/* The test gateway's records of one campaign (0: all), in arrival order; heap
 * array the caller frees. */
camp_send *camp_read_sends(camp_fx *fx, int64_t campaign, size_t *n);

/* Count campaign.events records of a campaign with the given kind (and,
 * when reason_has is not NULL, a reason containing it); when reason_out is
 * not NULL, the reason of the last one counted is copied there. */
int camp_count_events(camp_fx *fx, int64_t campaign, int kind, const char *reason_has,
                      char *reason_out, size_t cap);

/* Distinct idempotency keys and distinct contacts in sends; asserts no
 * contact got two different keys. *duplicates = records repeating a key. */
void camp_assert_one_key_per_contact(const camp_send *sends, size_t n, size_t *keys,
                                     size_t *contacts, size_t *duplicates);

#endif
