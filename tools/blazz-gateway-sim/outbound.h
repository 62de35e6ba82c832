/*
 * outbound.h - the gateway's sending side: consume its own
 * <prefix>wa.outbound.gw.<ID> (the sends of the sessions it serves; the
 * outbox routes them there, ARCHITECTURE.md §9.1) and answer every
 * SendMessage the way whatsapp-web.js would report it.
 *
 * A background thread reads SendMessages (consumer group --outbound-group,
 * from the earliest offset the group has not consumed yet) and, for each
 * idempotency key seen for the first time:
 *   - appends "<wall ms> <session_id> <idempotency_key>" to --sends-log (so
 *     rate-limit tests can check when sends happened);
 *   - with probability --fail-ratio, or when expires_at_ms has passed,
 *     schedules a FAILED receipt with a provider error code;
 *   - otherwise schedules the outbound echo (an InboundMessage from_me
 *     carrying the client_reference) with a SENT receipt, then DELIVERED,
 *     then (with probability --read-ratio) READ, spread over about
 *     --ack-delay-ms, 1x and 3x that.
 * A repeated idempotency key (a replayed SendMessage) is not sent again: it
 * only re-reports the last status it reached. A SendMessage of kind
 * MARK_READ (the CRM read the chat; whatsapp-web.js chat.sendSeen()) is
 * honoured once per key: logged as "<wall ms> <session_id> <key> read <n>"
 * (n = the messages it names), counted as a read, and answered with
 * nothing. Agents' messages come back like campaign sends: echo with
 * the client reference (their chats.uuid), sent, delivered, read. Receipts carry the
 * SendMessage's client_reference and go out through the run's publisher
 * kind (HTTP via ingest or Kafka), counted in the stats like all events.
 */
#ifndef BZ_SIM_OUTBOUND_H
#define BZ_SIM_OUTBOUND_H

#include <librdkafka/rdkafka.h>

#include "blazz/v1/whatsapp.pb-c.h"
#include "core/status.h"
#include "kafka/topics.h"
#include "report.h"
#include "sim.h"

typedef struct bz_sim_outbound bz_sim_outbound;

/* Which sends a gateway answers and how its reports name it: the fleet
 * (no owner) answers every send; an instance under the backbone's command
 * (instance.h) only those addressed to an assignment it holds (the
 * blazz-assignment header), and stamps what it reports with it. Called on
 * the outbound thread. */
typedef struct bz_sim_outbound_owner {
    /* 1 when the send m, for session_id, is this instance's to send */
    int (*owns)(void *ctx, const rd_kafka_message_t *m, const char *session_id);
    /* the instance and the epoch it holds for session_id into ref; 0: none */
    int (*stamp)(void *ctx, const char *session_id, Blazz__V1__InstanceRef *ref);
    void *ctx;
} bz_sim_outbound_owner;

/* A consumer of the gateway's own topic which (its sends or its session
 * commands) in group; *out is the caller's (rd_kafka_destroy after
 * closing). */
bz_status bz_sim_gateway_consumer(const bz_sim_options *o, bz_gateway_topic which,
                                  const char *group, rd_kafka_t **out, bz_error *err);

/* Create the consumer and publisher and start the thread. o, stats and
 * owner (NULL: the fleet's answers) must outlive it. */
bz_status bz_sim_outbound_start(const bz_sim_options *o, bz_sim_stats *stats,
                                const bz_sim_outbound_owner *owner, bz_sim_outbound **out,
                                bz_error *err);

/* Stop the thread (receipts not yet due are dropped and counted as
 * pending), flush what was published, close the consumer and free all. */
void bz_sim_outbound_stop(bz_sim_outbound *ob);

#endif
