/*
 * txn_pipeline.h - the Kafka path: wa.inbound.raw and the gateways' own
 * topics (wa.inbound.gw.<id>) -> chat.sync / wa.inbound.dlq, exactly once
 * (ARCHITECTURE.md §3.3).
 *
 * A consume-transform-produce loop with a transactional producer, following
 * the pattern of librdkafka's examples/transactions.c: records consumed
 * since the last commit are transformed by record_route.c (decode, event_id, duplicate
 * window, normalize, resolve the session, check that the gateway that
 * produced the record serves it) into chat.sync records or dead letters
 * (session_not_owned for another gateway's session: ARCHITECTURE.md §9.2),
 * all produced inside one Kafka transaction together with the
 * consumer's positions (send_offsets_to_transaction with the group
 * metadata); the transaction commits every txn_max_events records or
 * txn_max_ms. An abortable error aborts, forgets the duplicate-window
 * entries of the transaction and rewinds the consumer to the committed
 * offsets; a fatal producer error rebuilds the producer (init_transactions
 * fences the old one) and rewinds too; a transient PostgreSQL failure aborts,
 * rewinds and backs off. Revoked partitions commit first, lost ones abort.
 * Consumers of chat.sync must read with isolation.level=read_committed.
 *
 * Which gateway produced a record: the topic names it for a gateway topic
 * (only that gateway's principal may write it); on wa.inbound.raw, which
 * only ingest's HTTP edge and blazzctl write, the ING_GATEWAY_HEADER
 * header the edge set after verifying the signature. The consumer
 * subscribes to the raw topic and to every gateway topic of the prefix by
 * pattern, and looks for new ones every GATEWAY_TOPIC_SCAN_MS.
 */
#ifndef ING_TXN_PIPELINE_H
#define ING_TXN_PIPELINE_H

#include "core/status.h"
#include "kafka_path/pipeline_config.h"

typedef struct ing_pipeline ing_pipeline;

/* Create the consumer (subscribed) and the transactional producer. Nothing
 * talks to the broker yet. Free with ing_pipeline_free. */
bz_status ing_pipeline_new(const ing_pipeline_config *cfg, ing_pipeline **out, bz_error *err);

/* Run until bz_shutdown_requested(): then commit what is in flight, leave
 * the group and return BZ_OK. */
bz_status ing_pipeline_run(ing_pipeline *p, bz_error *err);

void ing_pipeline_free(ing_pipeline *p);

/* Partitions currently assigned (safe from any thread; for /readyz). */
int ing_pipeline_assigned(const ing_pipeline *p);

#endif
