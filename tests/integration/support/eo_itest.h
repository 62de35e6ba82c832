/*
 * eo_itest.h - one run of the exactly-once consumer under test, for
 * test_eo_consumer (SIGKILLs, two owners, a record near the limit) and
 * test_eo_consumer_outages (PostgreSQL and Kafka restarted, the database
 * turning read-only): a topic of its own filled with Envelope records (plus
 * undecodable and "poison" ones), eo_counter_consumer as a separate process
 * applying them to tables of the run's own, and the checks that every
 * valid record was applied once and every bad one dead-lettered.
 */
#ifndef EO_ITEST_H
#define EO_ITEST_H

#include <libpq-fe.h>

#include "kafka/producer.h"
#include <stdint.h>
#include <sys/types.h>

#define EO_RUN_MALFORMED_MARK "\xff\xffMALFORMED-"
#define EO_RUN_WAIT_LIMIT_MS (240 * 1000)

typedef struct eo_run {
    char prefix[64];
    char topic[128];
    char dlq[128];
    char group[64];
    char table[64];
    char log_path[256];
    int valid, malformed, poison;
    PGconn *conn;
    pid_t consumer;
    pid_t rival; /* 0, or a second owner of the same partitions */
    char rival_log_path[272];
} eo_run;

/* Tables, topics and the published workload of `valid` good records with
 * `malformed` undecodable and `poison` refused ones among them. */
void eo_run_setup(eo_run *r, int valid, int malformed, int poison);
void eo_run_teardown(eo_run *r);
/* One more good record (key conversation-<i % 997>, header event_id) on
 * topic; the caller counts it in r->valid. */
void eo_run_produce_envelope(bz_producer *p, const char *topic, const char *event_id, int i);
void eo_run_start_consumer(eo_run *r);
/* SIGTERM; a clean exit (0, no leak) is required. */
void eo_run_stop_gracefully(eo_run *r);
/* Fails when the consumer (or the rival) has exited. */
void eo_run_assert_alive(eo_run *r);
/* Sum of the next offsets the run's group stored: the records consumed. */
int64_t eo_run_stored_offsets(eo_run *r);
/* The counter table's value: the valid records applied. */
int64_t eo_run_counter(eo_run *r);
void eo_run_wait_for_counter_above(eo_run *r, int64_t target);
void eo_run_wait_until_all_consumed(eo_run *r);
void eo_run_assert_applied_exactly_once(eo_run *r);
/* Every malformed and poison record is on the dead-letter topic (repeats
 * allowed: a crash after the DLQ ack and before the offset commit repeats
 * one), and nothing else. */
void eo_run_assert_dead_letters(eo_run *r);

#endif
