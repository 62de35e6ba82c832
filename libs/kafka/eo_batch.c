/*
 * eo_batch.c - the partitions the exactly-once consumer owns, and the batch
 * of records it holds for them until they are applied.
 *
 * The owned partitions are an array searched linearly (an instance owns
 * tens of partitions, not thousands). A polled record joins the batch only
 * when its partition is owned, no reload is pending and it is not below the
 * partition's accept_from (eo_consumer_state.h); from then on the batch owns
 * the message and what decode made of it. Clearing the batch starts each
 * partition's acceptance again at its stored offset: what the batch held
 * has either been committed (the stored offset moved past it) or will be
 * read again from there.
 */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/grow.h"
#include "core/log.h"
#include "kafka/eo_consumer_state.h"

static bz_eo_partition_state *find_partition(bz_eo_consumer *c, const char *topic,
                                             int32_t partition)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0)
            return &c->parts[i];
    return NULL;
}

bz_eo_partition_state *bz_eo_add_partition(bz_eo_consumer *c, const char *topic, int32_t partition)
{
    bz_eo_partition_state *p = find_partition(c, topic, partition);
    if (p)
        return p;
    if (!bz_grow((void **)&c->parts, &c->capparts, c->nparts + 1, sizeof *c->parts, 16))
        return NULL;
    p = &c->parts[c->nparts];
    if (!(p->topic = strdup(topic)))
        return NULL;
    c->nparts++;
    p->partition = partition;
    p->db_next = p->accept_from = p->batch_next = -1;
    p->lag_dirty = 0;
    return p;
}

void bz_eo_remove_partition(bz_eo_consumer *c, const char *topic, int32_t partition)
{
    bz_eo_partition_state *p = find_partition(c, topic, partition);
    if (!p)
        return;
    free(p->topic);
    *p = c->parts[--c->nparts];
}

static void release_entry(bz_eo_consumer *c, bz_eo_batch_entry *e)
{
    if (e->decoded && e->rec.decoded && c->cfg.handler->release)
        c->cfg.handler->release(c->cfg.handler_ctx, e->rec.decoded);
    free(e->why);
    rd_kafka_message_destroy(e->rec.msg);
}

void bz_eo_clear_batch(bz_eo_consumer *c)
{
    for (size_t i = 0; i < c->nbatch; i++)
        release_entry(c, &c->batch[i]);
    c->nbatch = 0;
    for (size_t i = 0; i < c->nparts; i++) {
        c->parts[i].batch_next = -1;
        c->parts[i].accept_from = c->parts[i].db_next;
    }
}

/* Keep only batch entries whose partition is still owned. */
void bz_eo_drop_unowned_entries(bz_eo_consumer *c)
{
    size_t kept = 0;
    for (size_t i = 0; i < c->nbatch; i++) {
        bz_eo_batch_entry *e = &c->batch[i];
        if (find_partition(c, rd_kafka_topic_name(e->rec.msg->rkt), e->rec.msg->partition))
            c->batch[kept++] = *e;
        else
            release_entry(c, e);
    }
    c->nbatch = kept;
}

/* Take ownership of msg: append it to the batch or destroy it if stale. */
void bz_eo_accept_message(bz_eo_consumer *c, rd_kafka_message_t *msg)
{
    bz_eo_partition_state *p = find_partition(c, rd_kafka_topic_name(msg->rkt), msg->partition);
    if (!p || c->need_reload || (p->accept_from >= 0 && msg->offset < p->accept_from)) {
        rd_kafka_message_destroy(msg);
        return;
    }
    if (!bz_grow((void **)&c->batch, &c->capbatch, c->nbatch + 1, sizeof *c->batch, 256)) {
        /* Not accepting it is safe: the offset does not advance past it,
         * and the reload below re-reads it from the broker. */
        bz_error_log("batch: out of memory; re-reading from stored offsets");
        rd_kafka_message_destroy(msg);
        c->need_reload = 1;
        return;
    }
    if (c->nbatch == 0)
        c->batch_started_ms = bz_monotonic_ms();
    c->batch[c->nbatch++] = (bz_eo_batch_entry){.rec = {.msg = msg}};
    p->accept_from = msg->offset + 1;
    p->batch_next = msg->offset + 1;
    atomic_fetch_add(&c->consumed, 1);
    bz_eo_add_to_counter(c->m.consumed, 1);
}
