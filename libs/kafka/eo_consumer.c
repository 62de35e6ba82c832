/*
 * eo_consumer.c - exactly-once Kafka -> PostgreSQL consumer (see eo_consumer.h).
 *
 * One thread does everything: it polls one message at a time (the batch
 * consume APIs of librdkafka 2.0 can lose or repeat messages around seeks and
 * rebalances), appends it to the in-memory batch, and flushes the batch when
 * it is full or has lingered long enough. The rebalance callback runs inside
 * rd_kafka_consumer_poll on this same thread, so it may flush or drop the
 * batch without locks.
 *
 * This file creates the consumer, runs that loop (pausing consumption while
 * a failed batch waits for its retry) and closes the group membership. The
 * loop's parts have files of their own, sharing eo_consumer_state.h: the
 * owned partitions and the batch (eo_batch.c), the offsets in PostgreSQL
 * (eo_offsets.c), the batch's transaction (eo_flush.c), the rebalance
 * callback (eo_rebalance.c) and the metrics (eo_metrics.c).
 */
#include "kafka/eo_consumer.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "kafka/consumer_close.h"
#include "kafka/eo_consumer_state.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CLOSE_DEADLINE_MS 10000
#define FIRST_ASSIGNMENT_MARGIN_MS 5000

/* ---- pausing ------------------------------------------------------------- */

static void set_paused(bz_eo_consumer *c, int paused)
{
    if (c->paused == paused)
        return;
    bz_info(paused ? "pausing consumption until the retry" : "resuming consumption");
    rd_kafka_topic_partition_list_t *assignment = NULL;
    if (rd_kafka_assignment(c->rk, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR && assignment) {
        if (paused)
            rd_kafka_pause_partitions(c->rk, assignment);
        else
            rd_kafka_resume_partitions(c->rk, assignment);
        rd_kafka_topic_partition_list_destroy(assignment);
    }
    c->paused = paused;
}

static void schedule_retry(bz_eo_consumer *c, const bz_error *err)
{
    atomic_fetch_add(&c->retries, 1);
    bz_eo_add_to_counter(c->m.retries, 1);
    bz_warn("transient failure, retrying in %d ms: %s", c->backoff_ms, err->msg);
    set_paused(c, 1);
    c->retry_at_ms = bz_monotonic_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void clear_retry(bz_eo_consumer *c)
{
    c->backoff_ms = BACKOFF_MIN_MS;
    c->retry_at_ms = 0;
    set_paused(c, 0);
}

/* ---- life cycle ---------------------------------------------------------- */

/* The group session timeout conf will use, in milliseconds. */
static int64_t session_timeout_ms(const rd_kafka_conf_t *conf)
{
    char value[32];
    size_t size = sizeof value;
    if (rd_kafka_conf_get(conf, "session.timeout.ms", value, &size) != RD_KAFKA_CONF_OK)
        return 45000; /* librdkafka 2.0's default */
    return strtoll(value, NULL, 10);
}

/* With fetch_wait_ms, a fetch asks for more than it usually finds, so the
 * broker holds it that long (ingest's Kafka path does the same,
 * txn_pipeline.c). */
#define FETCH_MIN_BYTES "1048576"

static bz_status create_kafka_consumer(bz_eo_consumer *c, bz_error *err)
{
    char fetch_wait[16];
    snprintf(fetch_wait, sizeof fetch_wait, "%d", c->cfg.fetch_wait_ms);
    /* the held fetch's two properties last: NULL ends the list without them */
    const char *const consumer_defaults[] = {
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", "earliest",
        "isolation.level", "read_committed",
        "partition.assignment.strategy", "cooperative-sticky",
        "enable.partition.eof", "false",
        c->cfg.fetch_wait_ms > 0 ? "fetch.wait.max.ms" : NULL, fetch_wait,
        "fetch.min.bytes", FETCH_MIN_BYTES,
        NULL};
    rd_kafka_conf_t *conf;
    bz_status st = bz_kafka_conf_new(&c->cfg.kafka, consumer_defaults, &conf, err);
    if (st == BZ_OK)
        st = bz_kafka_conf_set(conf, "group.id", c->cfg.group_id, err);
    if (st != BZ_OK) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        return st;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, bz_eo_on_rebalance);
    c->first_assignment_wait_ms = session_timeout_ms(conf) + FIRST_ASSIGNMENT_MARGIN_MS;
    char errstr[256];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        return bz_fail(err, BZ_ERR_CONFIG, "create kafka consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)c->cfg.ntopics);
    for (size_t i = 0; i < c->cfg.ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, c->cfg.topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e)
        return bz_fail(err, BZ_ERR_CONFIG, "subscribe: %s", rd_kafka_err2str(e));
    return BZ_OK;
}

bz_status bz_eo_consumer_new(const bz_eo_consumer_config *cfg, bz_eo_consumer **out,
                             bz_error *err)
{
    if (!cfg->handler || !cfg->handler->decode || !cfg->handler->apply || !cfg->group_id ||
        !cfg->dlq_topic || !cfg->pg_dsn || cfg->ntopics == 0)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "exactly-once consumer: handler, group_id, topics, dlq_topic and pg_dsn "
                       "are required");
    bz_eo_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return bz_fail(err, BZ_ERR_NOMEM, "exactly-once consumer: out of memory");
    c->cfg = *cfg;
    if (!c->cfg.offsets_group_id)
        c->cfg.offsets_group_id = cfg->group_id;
    if (c->cfg.batch_max <= 0)
        c->cfg.batch_max = 1000;
    if (c->cfg.batch_linger_ms <= 0)
        c->cfg.batch_linger_ms = 10;
    c->backoff_ms = BACKOFF_MIN_MS;
    bz_status st = bz_eo_register_metrics(c, err);
    if (st == BZ_OK)
        st = bz_pg_open(cfg->pg_dsn, &c->pg, err);
    if (st == BZ_OK)
        st = bz_eo_prepare_offset_statements(c, err);
    /* kafka.extra holds consumer properties; a producer would warn about each. */
    bz_kafka_settings dlq_settings = {.brokers = cfg->kafka.brokers,
                                      .client_id = cfg->kafka.client_id};
    if (st == BZ_OK)
        st = bz_producer_new(&dlq_settings, &c->dlq, err);
    if (st == BZ_OK)
        st = create_kafka_consumer(c, err);
    if (st != BZ_OK) {
        bz_eo_consumer_free(c);
        return bz_wrap(err, "create consumer for group %s", cfg->group_id);
    }
    *out = c;
    return BZ_OK;
}

static int batch_is_due(const bz_eo_consumer *c, int64_t now)
{
    if (c->nbatch == 0 || now < c->retry_at_ms)
        return 0;
    return c->nbatch >= (size_t)c->cfg.batch_max ||
           now - c->batch_started_ms >= c->cfg.batch_linger_ms;
}

static int poll_timeout_ms(const bz_eo_consumer *c, int64_t now)
{
    int64_t wait = 100;
    if (c->retry_at_ms > now)
        wait = c->retry_at_ms - now;
    else if (c->nbatch > 0)
        wait = c->batch_started_ms + c->cfg.batch_linger_ms - now;
    return wait < 0 ? 0 : wait > 100 ? 100 : (int)wait;
}

static bz_status handle_consumer_error(rd_kafka_message_t *msg, bz_error *err)
{
    rd_kafka_resp_err_t e = msg->err;
    bz_status st = BZ_OK;
    if (e == RD_KAFKA_RESP_ERR__FATAL)
        st = bz_fail(err, BZ_ERR_FATAL, "kafka consumer fatal error: %s", rd_kafka_message_errstr(msg));
    else if (e != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        bz_warn("kafka consumer: %s", rd_kafka_message_errstr(msg));
    rd_kafka_message_destroy(msg);
    return st;
}

/* librdkafka 2.0.2 aborts in rd_kafka_destroy when a cooperative-sticky
 * consumer has its group's JoinGroup answer and not yet a SyncGroup one
 * (assertion `assignor_state` in rd_kafka_sticky_assignor_state_destroy,
 * librdkafka #4312, fixed in 2.3.0). A SIGTERM right after a start hit
 * that window in the crash tests. So a consumer that was never assigned
 * keeps polling (rebalance callbacks run inside the poll) until the
 * assignment arrives. The wait is bounded by the session timeout plus a
 * margin: a member that joins while the group still counts a killed one
 * gets its first assignment only once the broker has evicted that member,
 * a session timeout after its last heartbeat (CI hit this with 5 s in the
 * kill-and-restart test). Records polled meanwhile are not applied and
 * their offsets not stored: the next owner reads them. When the wait runs
 * out (the broker went down, or the group's leader never sent the
 * assignment), bz_eo_consumer_free leaves the handle to the process's exit
 * (leave_unassigned_handle). */
static void await_first_assignment(bz_eo_consumer *c)
{
    int64_t deadline = bz_monotonic_ms() + c->first_assignment_wait_ms;
    while (!c->ever_assigned && bz_monotonic_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c->rk, 100);
        if (msg)
            rd_kafka_message_destroy(msg);
    }
}

static void close_group_membership(bz_eo_consumer *c)
{
    await_first_assignment(c);
    c->close_timed_out = !bz_consumer_leave_group(c->rk, CLOSE_DEADLINE_MS, bz_eo_on_rebalance, c);
    c->membership_closed = 1;
}

bz_status bz_eo_consumer_run(bz_eo_consumer *c, bz_error *err)
{
    while (!bz_eo_should_stop(c)) {
        int64_t now = bz_monotonic_ms();
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c->rk, poll_timeout_ms(c, now));
        if (msg && msg->err) {
            if (handle_consumer_error(msg, err) != BZ_OK)
                return err->code;
        } else if (msg) {
            bz_eo_accept_message(c, msg);
        } else if (c->nbatch == 0) {
            bz_eo_commit_lag_offsets(c, 1); /* idle: the lag gauge reads 0 */
        }
        bz_producer_poll(c->dlq, 0);
        now = bz_monotonic_ms();
        bz_eo_sample_lag(c, now);
        if (c->need_reload) {
            if (now < c->retry_at_ms)
                continue;
            bz_error rerr;
            if (bz_eo_reload_offsets_and_seek(c, &rerr) != BZ_OK)
                schedule_retry(c, &rerr);
            else
                clear_retry(c);
            continue;
        }
        if (c->paused && c->nbatch == 0 && now >= c->retry_at_ms) {
            /* What failed was dropped (revoked partitions): nothing to retry. */
            clear_retry(c);
            continue;
        }
        if (!batch_is_due(c, now))
            continue;
        bz_error ferr;
        if (bz_eo_flush_batch(c, &ferr) == BZ_OK)
            clear_retry(c);
        else
            schedule_retry(c, &ferr);
    }
    bz_error ferr;
    if (!c->need_reload && bz_eo_flush_batch(c, &ferr) != BZ_OK)
        bz_warn("shutdown: last batch not applied (%s); it will be re-read", ferr.msg);
    bz_eo_clear_batch(c);
    bz_eo_commit_lag_offsets(c, 1);
    close_group_membership(c);
    return BZ_OK;
}

void bz_eo_consumer_request_stop(bz_eo_consumer *c)
{
    atomic_store(&c->stop, 1);
}

void bz_eo_consumer_stats(const bz_eo_consumer *c, bz_eo_stats *out)
{
    out->consumed = atomic_load(&c->consumed);
    out->applied = atomic_load(&c->applied);
    out->dead_lettered = atomic_load(&c->dead_lettered);
    out->batches = atomic_load(&c->batches);
    out->transient_retries = atomic_load(&c->retries);
    out->offset_conflicts = atomic_load(&c->conflicts);
    out->assigned_partitions = atomic_load(&c->assigned);
    out->db_up = atomic_load(&c->db_up);
}

void bz_eo_consumer_report_readiness(const bz_eo_consumer *c, bz_readiness *r)
{
    bz_eo_stats stats;
    bz_eo_consumer_stats(c, &stats);
    bz_readiness_add(r, "postgresql", stats.db_up || stats.batches == 0, "%s",
                     stats.db_up ? "up" : stats.batches ? "down" : "no batch yet");
    bz_readiness_add(r, "partitions", stats.assigned_partitions > 0, "%d assigned",
                     stats.assigned_partitions);
}

void bz_eo_group_timing_init(bz_eo_group_timing *t, int64_t session_timeout_ms,
                             int64_t heartbeat_ms)
{
    snprintf(t->session_ms, sizeof t->session_ms, "%lld", (long long)session_timeout_ms);
    snprintf(t->heartbeat_ms, sizeof t->heartbeat_ms, "%lld",
             (long long)(heartbeat_ms > 0 ? heartbeat_ms : session_timeout_ms / 3));
    t->extra[0] = "session.timeout.ms";
    t->extra[1] = t->session_ms;
    t->extra[2] = "heartbeat.interval.ms";
    t->extra[3] = t->heartbeat_ms;
    t->extra[4] = NULL;
}

/* A handle that ran, closed its membership and was never assigned may be
 * in the state rd_kafka_destroy aborts in (see await_first_assignment),
 * and nothing tells from outside whether it is: it is not destroyed. Its
 * threads and memory end with the process, which is shutting down. The
 * static keeps it reachable, so the leak checker does not report it as
 * lost. (A service runs one such consumer; a second one would take the
 * slot, and both still live until the exit.) */
static rd_kafka_t *unassigned_handle_left_to_exit;

static void leave_unassigned_handle(rd_kafka_t *rk)
{
    bz_warn("shutdown: the consumer was never assigned partitions; its Kafka handle is left "
            "to the process's exit (librdkafka 2.0.2 cannot destroy it before its first "
            "assignment)");
    unassigned_handle_left_to_exit = rk;
}

void bz_eo_consumer_free(bz_eo_consumer *c)
{
    if (!c)
        return;
    bz_eo_clear_batch(c);
    free(c->batch);
    /* a consumer that never ran (a start that failed after it was made)
     * is destroyed as before: destroying closes its membership */
    if (c->rk && c->membership_closed && !c->ever_assigned)
        leave_unassigned_handle(c->rk);
    else
        bz_consumer_destroy(c->rk, !c->close_timed_out);
    bz_producer_free(c->dlq, 5000);
    bz_pg_close(c->pg);
    for (size_t i = 0; i < c->nparts; i++)
        free(c->parts[i].topic);
    free(c->parts);
    free(c);
}
