/*
 * consumer_close.h - a consumer leaving its group within a bounded time.
 *
 * librdkafka 2.0.x can hang in rd_kafka_consumer_close after a lost
 * partition (#4187, FIELD-NOTES) or while its group coordinator does not
 * answer: a cluster chaos run saw a gateway instance wait 30 s on a
 * coordinator request after a broker restart, until it was SIGKILLed. So
 * the close goes through a queue and is waited for until a deadline, each
 * rebalance event it brings handed to the owner's callback (it settles
 * what it held: a transaction, stored offsets); and a consumer that did
 * not leave in time is destroyed without closing it again, which would
 * wait on the same silence.
 */
#ifndef BZ_KAFKA_CONSUMER_CLOSE_H
#define BZ_KAFKA_CONSUMER_CLOSE_H

#include <librdkafka/rdkafka.h>

typedef void (*bz_rebalance_fn)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts, void *opaque);

/* Leave rk's group, waiting at most timeout_ms, each rebalance event of
 * the close given to on_rebalance (NULL: none) with opaque; 1 when it
 * left, 0 when the wait ran out or the close could not start. */
int bz_consumer_leave_group(rd_kafka_t *rk, int timeout_ms, bz_rebalance_fn on_rebalance,
                            void *opaque);

/* Destroy rk (NULL: nothing); left is bz_consumer_leave_group's answer. */
void bz_consumer_destroy(rd_kafka_t *rk, int left);

#endif
