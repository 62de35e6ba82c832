/*
 * meta_itest.h - the Meta Cloud API side of the meta-sender tests and
 * benchmark: graph_test_server (the Cloud API on loopback, with faults) as a
 * child process with its tokens file and its record of accepted messages,
 * and blazz-meta-sender started against it under a fixture's prefix.
 */
#ifndef META_ITEST_H
#define META_ITEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "campaign_itest.h"

typedef struct graph_fx {
    char tokens_path[700], record_path[700], port_file[700], requests_path[700];
    int port;
    pid_t pid;
} graph_fx;

/* One message the server accepted (its --record line). */
typedef struct graph_record {
    int64_t ms;
    char kind[16], to[144], ref[64], wamid[96]; /* to: a phone's digits or a BSUID */
} graph_record;

/* One request the server received, whatever became of it (its --requests
 * line): what is answered, dropped, accepted-dropped or unfinished. */
typedef struct graph_request {
    int64_t start_ms;
    long connection, nth; /* which connection, its how-manieth request */
    char what[24];
} graph_request;

/* Paths under the fixture's folder; nothing runs yet. */
void graph_fx_init(graph_fx *g, const camp_fx *fx);
/* Replace the tokens file with one line per (phone number id, token). */
void graph_write_tokens(const graph_fx *g, const char *const *pnids, const char *const *tokens,
                        size_t n);
/* Start the server with extra options (NULL-terminated, may be NULL); waits
 * for its port. */
void graph_start(graph_fx *g, camp_fx *fx, const char *const *extra_args);
/* SIGTERM and wait; returns its exit code (0 when it was not running). */
int graph_stop(graph_fx *g);
/* The accepted messages in arrival order (heap; caller frees). */
graph_record *graph_records(const graph_fx *g, size_t *n);
/* Every request received, by start time (heap; caller frees). */
graph_request *graph_requests(const graph_fx *g, size_t *n);
/* A media file for the server's --media registry: len bytes written to
 * path; their sha256 as hex (65 bytes) and as base64 (48 bytes), the
 * encoding Meta's webhooks give. */
void graph_media_file(const char *path, const void *bytes, size_t len, char *sha_hex,
                      char *sha_b64);

/* blazz-meta-sender under prefix (topics, consumer group, lock), sending to
 * the server at port, the tokens sealed under ITEST_SECRETS_KEYS; extra_env as
 * "KEY=VALUE" (NULL-terminated, may be NULL). */
pid_t meta_sender_start(camp_fx *fx, const char *prefix, int port, const char *const *extra_env);

#endif
