/*
 * admin.h - topic administration through the Kafka Admin API.
 *
 * Used by `blazzctl topics` and by the local stack: creates the whole topic
 * catalogue (topics.h) with a given partition count and replication factor,
 * lists what a cluster has, and describes its brokers (who leads how many
 * partitions, what is under-replicated: the local cluster's chaos picks the
 * broker to kill from it). Each call makes its own short-lived admin
 * client (librdkafka producer handle), so there is no state to manage; the
 * calls block for at most about timeout_ms per round trip to the broker.
 * librdkafka's own log lines are silenced: failures come back in bz_error,
 * classified TRANSIENT when the broker could not be reached in time.
 */
#ifndef BZ_KAFKA_ADMIN_H
#define BZ_KAFKA_ADMIN_H

#include <stddef.h>

#include "core/status.h"
#include "kafka/topics.h"

/* Used when a timeout_ms argument is 0 or negative. */
#define BZ_KAFKA_ADMIN_TIMEOUT_MS 10000

typedef struct bz_kafka_topic_info {
    char *name;     /* full topic name, prefix included */
    int partitions; /* number of partitions the cluster reports */
} bz_kafka_topic_info;

typedef struct bz_kafka_topic_list {
    bz_kafka_topic_info *topics; /* sorted by name */
    size_t count;
} bz_kafka_topic_list;

typedef struct bz_kafka_ensure_entry {
    char name[BZ_TOPIC_NAME_MAX]; /* full topic name, prefix included */
    int partitions;               /* partitions it has now */
    int created;                  /* 1 if this call created it, 0 if it existed */
} bz_kafka_ensure_entry;

typedef struct bz_kafka_ensure_report {
    bz_kafka_ensure_entry topics[BZ_TOPIC_COUNT]; /* catalogue order */
    size_t count;
    size_t created;
    size_t existing;
} bz_kafka_ensure_report;

/* Make sure every catalogue topic exists as prefix + base on the cluster at
 * brokers (a librdkafka bootstrap list). Missing topics are created with
 * `partitions` partitions, `replication` replicas,
 * min.insync.replicas 2 from three replicas up, else 1,
 * cleanup.policy=delete and
 * max.message.bytes=BZ_KAFKA_TOPIC_MAX_MESSAGE_BYTES (limits.h; retention
 * left at the broker default); existing topics are left alone,
 * whatever their partition count (the report says what they have). Returns
 * once the metadata shows every topic with a leader for each partition, so
 * producers can use them at once. report (may be NULL) is filled on BZ_OK. */
bz_status bz_kafka_topics_ensure(const char *brokers, const char *prefix, int partitions,
                                 int replication, int timeout_ms,
                                 bz_kafka_ensure_report *report, bz_error *err);

/* Make sure the topics of each of the ngateways gateway ids (topics.h:
 * bz_topic_gateway_name, one of each bz_gateway_topic) exist, like
 * bz_kafka_topics_ensure does for the catalogue, asking the cluster once
 * for every few gateways. entries (may be NULL; ngateways *
 * BZ_GATEWAY_TOPIC_COUNT of them, gateway by gateway in bz_gateway_topic
 * order) are filled on BZ_OK. */
bz_status bz_kafka_gateway_topics_ensure(const char *brokers, const char *prefix,
                                         const char *const *gateway_ids, size_t ngateways,
                                         int partitions, int replication, int timeout_ms,
                                         bz_kafka_ensure_entry *entries, bz_error *err);

/* List the cluster's topics, internal ones ("__consumer_offsets", ...)
 * excluded, sorted by name. On BZ_OK *out holds heap memory the caller
 * releases with bz_kafka_topic_list_free; on failure *out is empty. */
bz_status bz_kafka_topics_list(const char *brokers, int timeout_ms, bz_kafka_topic_list *out,
                               bz_error *err);

/* Free what bz_kafka_topics_list returned and empty the list (NULL is fine). */
void bz_kafka_topic_list_free(bz_kafka_topic_list *list);

typedef struct bz_kafka_broker_info {
    int id;     /* node.id */
    char *host;
    int port;
    int leads;    /* partitions (of every topic, internal ones included) it leads */
    int replicas; /* partition replicas it is assigned */
} bz_kafka_broker_info;

typedef struct bz_kafka_cluster_info {
    bz_kafka_broker_info *brokers; /* the live brokers, sorted by id */
    size_t count;
    int partitions;       /* partitions of every topic */
    int under_replicated; /* partitions whose in-sync replicas are fewer than their replicas */
    int leaderless;       /* partitions without a leader */
} bz_kafka_cluster_info;

/* Describe the cluster at brokers from its metadata: the brokers it
 * reports alive, how many partitions each leads and holds, and the
 * partitions that are under-replicated or have no leader. On BZ_OK *out
 * holds heap memory the caller releases with bz_kafka_cluster_info_free;
 * on failure *out is empty. */
bz_status bz_kafka_cluster_describe(const char *brokers, int timeout_ms,
                                    bz_kafka_cluster_info *out, bz_error *err);

/* Free what bz_kafka_cluster_describe returned (NULL is fine). */
void bz_kafka_cluster_info_free(bz_kafka_cluster_info *info);

#endif
