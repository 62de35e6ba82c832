/*
 * acl.h - the Kafka ACLs of a deployment, generated from the matrix in
 * ARCHITECTURE.md §9.1.
 *
 * The matrix (one row per principal: topics written, topics read, consumer
 * groups, transactional ids, cluster operations) is compiled in at build
 * time by scripts/gen_acl_matrix.sh. bz_kafka_acls_for_services turns its
 * fixed rows into ACL bindings for one deployment prefix, and
 * bz_kafka_acls_for_gateway instantiates the `gateway-<id>` row for one
 * gateway and its principal. Topic names get the deployment prefix (consumer
 * groups and transactional ids are named alike in every deployment);
 * `name*` is a prefixed pattern; `*` is every name (for topics: of the
 * deployment, the literal wildcard when the prefix is empty, else the
 * prefix as a prefixed pattern); an item followed by "(describe)" only
 * grants Describe.
 *
 * bz_kafka_acls_create sends the bindings to the broker (CreateAcls, which
 * ignores bindings that exist already) and returns once the broker it
 * asked applies them, so a client started next is not refused. librdkafka 2.0.2 cannot express
 * transactional-id bindings, so those are skipped there and left to Kafka's
 * own kafka-acls tool (`blazzctl acls apply --transactional-ids` prints
 * them for it; scripts/stack.sh runs it).
 */
#ifndef BZ_KAFKA_ACL_H
#define BZ_KAFKA_ACL_H

#include <stddef.h>

#include "core/status.h"
#include "kafka/topics.h"

typedef enum bz_kafka_acl_resource {
    BZ_ACL_TOPIC,
    BZ_ACL_GROUP,
    BZ_ACL_TRANSACTIONAL_ID,
    BZ_ACL_CLUSTER
} bz_kafka_acl_resource;

typedef enum bz_kafka_acl_op {
    BZ_ACL_READ,
    BZ_ACL_WRITE,
    BZ_ACL_DESCRIBE,
    BZ_ACL_CREATE,
    BZ_ACL_ALTER
} bz_kafka_acl_op;

#define BZ_KAFKA_PRINCIPAL_MAX 128

typedef struct bz_kafka_acl {
    char principal[BZ_KAFKA_PRINCIPAL_MAX]; /* the user name, without "User:" */
    bz_kafka_acl_resource resource;
    int prefixed;                           /* 1: a prefixed pattern, 0: literal */
    char name[BZ_TOPIC_NAME_MAX];           /* "*" alone is the literal wildcard */
    bz_kafka_acl_op op;
} bz_kafka_acl;

typedef struct bz_kafka_acl_list {
    bz_kafka_acl *items; /* heap; bz_kafka_acl_list_free */
    size_t count, cap;
} bz_kafka_acl_list;

/* Append the bindings of every matrix row but the gateway template, for the
 * deployment prefix (may be NULL or ""). */
bz_status bz_kafka_acls_for_services(const char *prefix, bz_kafka_acl_list *out, bz_error *err);

/* Append the gateway template's bindings for gateway_id (a valid gateway id,
 * see topics.h), authenticated as principal (NULL: "gateway-<id>"). */
bz_status bz_kafka_acls_for_gateway(const char *prefix, const char *gateway_id,
                                    const char *principal, bz_kafka_acl_list *out,
                                    bz_error *err);

void bz_kafka_acl_list_free(bz_kafka_acl_list *list);

/* The principals of the fixed rows, in matrix order ("ingest", ...). */
size_t bz_kafka_acl_principal_count(void);
const char *bz_kafka_acl_principal(size_t i);

/* Operation and resource names as Kafka's tools spell them ("Write",
 * "Topic", "TransactionalId", ...). */
const char *bz_kafka_acl_op_name(bz_kafka_acl_op op);
const char *bz_kafka_acl_resource_name(bz_kafka_acl_resource r);

/* Create every binding of list on the cluster at brokers, as the process's
 * Kafka identity (it needs Alter on the cluster: the admin). Transactional-id
 * bindings are skipped (see above); *skipped (may be NULL) counts them. */
bz_status bz_kafka_acls_create(const char *brokers, const bz_kafka_acl_list *list,
                               int timeout_ms, size_t *skipped, bz_error *err);

#endif
