/*
 * campaign_test_gateway.c - a minimal gateway for the campaign-sender tests:
 * a real Kafka participant that consumes <prefix>wa.outbound.gw.sim (the
 * sends of campaign_itest.h's accounts, served by the gateway "sim"; the
 * outbox routes them there, ARCHITECTURE.md §9.1), records every
 * SendMessage it receives, and answers with CampaignReceipts on
 * <prefix>campaign.receipts, the way chat-sync would route a gateway's acks.
 *
 * Usage: campaign_test_gateway PREFIX GROUP RECORD_FILE [options]
 *   --statuses LIST        receipts for a successful send (default sent,delivered,read)
 *   --fail-prefix P        failure rules apply to sessions starting with P (default: all)
 *   --fail-after N         fail every matching send after the first N
 *   --fail-ratio R         fail this share of matching sends (by a hash of the key)
 *   --fail-code CODE       error_code of failures (default 131026)
 *
 * Each received record appends one line to RECORD_FILE, written before the
 * receipts are produced, so the file is the gateway's view of what was sent:
 *   <wall_ms> <released_ms> <session_id> <idempotency_key> <contact_id> <campaign_id> <log_id>
 *   <body>
 * (<released_ms>: when campaign-sender released it, its envelope's produced_at_ms)
 * (body last, as it may contain spaces). A repeated idempotency key (a
 * repeated publish) is recorded again and re-answered, as a gateway
 * re-reports the status of a replayed send. Stops on SIGTERM/SIGINT.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/uuid.h"
#include "kafka/producer.h"
#include "kafka/topics.h"

typedef struct gateway_options {
    const char *prefix, *group, *record_path;
    char statuses[64];
    const char *fail_prefix;
    long fail_after;
    double fail_ratio;
    const char *fail_code;
} gateway_options;

typedef struct test_gateway {
    gateway_options o;
    FILE *record;
    rd_kafka_t *consumer;
    bz_producer *producer;
    char receipts_topic[256];
    long matching_sends;
} test_gateway;

/* Whole-text numbers only: a typo in a test's options must not become 0. */
static int parse_long(const char *text, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(text, &end, 10);
    return errno == 0 && end != text && *end == '\0';
}

static int parse_double(const char *text, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(text, &end);
    return errno == 0 && end != text && *end == '\0';
}

static int parse_options(int argc, char **argv, gateway_options *o)
{
    if (argc < 4)
        return 0;
    memset(o, 0, sizeof *o);
    o->prefix = argv[1];
    o->group = argv[2];
    o->record_path = argv[3];
    snprintf(o->statuses, sizeof o->statuses, "sent,delivered,read");
    o->fail_prefix = "";
    o->fail_after = -1;
    o->fail_code = "131026";
    for (int i = 4; i + 1 < argc; i += 2) {
        int ok = 1;
        if (strcmp(argv[i], "--statuses") == 0)
            snprintf(o->statuses, sizeof o->statuses, "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--fail-prefix") == 0)
            o->fail_prefix = argv[i + 1];
        else if (strcmp(argv[i], "--fail-after") == 0)
            ok = parse_long(argv[i + 1], &o->fail_after);
        else if (strcmp(argv[i], "--fail-ratio") == 0)
            ok = parse_double(argv[i + 1], &o->fail_ratio);
        else if (strcmp(argv[i], "--fail-code") == 0)
            o->fail_code = argv[i + 1];
        else
            ok = 0;
        if (!ok)
            return 0;
    }
    return 1;
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static int should_fail(test_gateway *s, const Blazz__V1__SendMessage *m)
{
    if (strncmp(m->session_id, s->o.fail_prefix, strlen(s->o.fail_prefix)) != 0)
        return 0;
    s->matching_sends++;
    if (s->o.fail_after >= 0 && s->matching_sends > s->o.fail_after)
        return 1;
    return s->o.fail_ratio > 0 && (fnv1a(m->idempotency_key) % 10000) < s->o.fail_ratio * 10000;
}

static int produce_receipt(test_gateway *s, const Blazz__V1__SendMessage *m,
                           Blazz__V1__DeliveryStatus status, const char *error_code)
{
    char event_id[BZ_UUID_STR_SIZE], wam_id[128], key[24];
    bz_error err;
    if (bz_uuid_v4(event_id, &err) != BZ_OK)
        return 0;
    snprintf(wam_id, sizeof wam_id, "testgw-%s", m->idempotency_key);
    snprintf(key, sizeof key, "%" PRId64, m->campaign_id);
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    env.event_id = event_id;
    env.occurred_at_ms = env.produced_at_ms = bz_wall_ms();
    env.source = "campaign-test-gateway";
    env.workspace_id = m->envelope ? m->envelope->workspace_id : 0;
    env.session_id = m->session_id;
    env.whatsapp_account_id = m->envelope ? m->envelope->whatsapp_account_id : 0;
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.wam_id = wam_id;
    ack.status = status;
    ack.error_code = (char *)(error_code ? error_code : "");
    ack.error_message = (char *)(error_code ? "test gateway failure" : "");
    ack.timestamp_ms = env.occurred_at_ms;
    ack.client_reference = m->client_reference;
    ack.recipient_phone = m->to_phone;
    Blazz__V1__CampaignReceipt rc = BLAZZ__V1__CAMPAIGN_RECEIPT__INIT;
    rc.envelope = &env;
    rc.campaign_id = m->campaign_id;
    rc.campaign_log_id = m->campaign_log_id;
    rc.campaign_log_uuid = m->client_reference;
    rc.ack = &ack;
    rc.contact_id = m->contact_id;
    size_t len = blazz__v1__campaign_receipt__get_packed_size(&rc);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return 0;
    blazz__v1__campaign_receipt__pack(&rc, buf);
    bz_status st = bz_producer_send(s->producer, s->receipts_topic, RD_KAFKA_PARTITION_UA, key,
                                    strlen(key), buf, len, NULL, 0, NULL, &err);
    free(buf);
    if (st != BZ_OK)
        bz_error_log("test gateway: produce receipt: %s", err.msg);
    return st == BZ_OK;
}

static void answer(test_gateway *s, const Blazz__V1__SendMessage *m)
{
    if (should_fail(s, m)) {
        produce_receipt(s, m, BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED, s->o.fail_code);
        return;
    }
    static const struct {
        const char *name;
        Blazz__V1__DeliveryStatus status;
    } steps[] = {{"sent", BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT},
                 {"delivered", BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED},
                 {"read", BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (strstr(s->o.statuses, steps[i].name))
            produce_receipt(s, m, steps[i].status, NULL);
}

static void handle(test_gateway *s, const rd_kafka_message_t *msg)
{
    Blazz__V1__SendMessage *m = blazz__v1__send_message__unpack(NULL, msg->len, msg->payload);
    if (!m) {
        bz_warn("test gateway: undecodable record at offset %" PRId64, msg->offset);
        return;
    }
    fprintf(s->record, "%" PRId64 " %" PRId64 " %s %s %" PRId64 " %" PRId64 " %" PRId64 " %s\n",
            bz_wall_ms(), m->envelope ? m->envelope->produced_at_ms : 0, m->session_id,
            m->idempotency_key, m->contact_id, m->campaign_id, m->campaign_log_id, m->body);
    fflush(s->record);
    answer(s, m);
    blazz__v1__send_message__free_unpacked(m, NULL);
}

static int open_consumer(test_gateway *s)
{
    char errstr[256], topic[256];
    const char *const defaults[] = {"group.id", s->o.group, "auto.offset.reset", "earliest",
                                    "isolation.level", "read_committed", "fetch.wait.max.ms",
                                    "10", NULL};
    bz_kafka_settings settings = {.brokers = getenv("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "campaign-test-gateway"};
    rd_kafka_conf_t *conf;
    bz_error err;
    if (bz_kafka_conf_new(&settings, defaults, &conf, &err) != BZ_OK) {
        bz_error_log("test gateway: %s", err.msg);
        return 0;
    }
    s->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!s->consumer) {
        bz_error_log("test gateway: %s", errstr);
        return 0;
    }
    rd_kafka_poll_set_consumer(s->consumer);
    if (bz_topic_gateway_name(s->o.prefix, BZ_GATEWAY_TOPIC_OUTBOUND, "sim", topic, sizeof topic,
                              &err) != BZ_OK) {
        bz_error_log("test gateway: %s", err.msg);
        return 0;
    }
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(s->consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

int main(int argc, char **argv)
{
    test_gateway s;
    memset(&s, 0, sizeof s);
    if (!parse_options(argc, argv, &s.o) || !getenv("BLAZZ_KAFKA_BROKERS")) {
        fprintf(stderr, "usage: %s PREFIX GROUP RECORD_FILE [--statuses L] [--fail-prefix P] "
                        "[--fail-after N] [--fail-ratio R] [--fail-code C]\n"
                        "(BLAZZ_KAFKA_BROKERS must be set)\n",
                argv[0]);
        return 2;
    }
    bz_log_init("campaign-test-gateway", BZ_LOG_INFO);
    bz_signals_install_shutdown();
    snprintf(s.receipts_topic, sizeof s.receipts_topic, "%scampaign.receipts", s.o.prefix);
    s.record = fopen(s.o.record_path, "a");
    bz_error err;
    bz_kafka_settings ks = {.brokers = getenv("BLAZZ_KAFKA_BROKERS"), .client_id = "campaign-test-gateway"};
    if (!s.record || !open_consumer(&s) || bz_producer_new(&ks, &s.producer, &err) != BZ_OK) {
        bz_error_log("test gateway: cannot start");
        return 1;
    }
    bz_info("test gateway: answering %swa.outbound.gw.sim", s.o.prefix);
    while (!bz_shutdown_requested()) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(s.consumer, 50);
        if (msg) {
            if (!msg->err)
                handle(&s, msg);
            rd_kafka_message_destroy(msg);
        }
        bz_producer_poll(s.producer, 0);
    }
    bz_producer_free(s.producer, 10000);
    rd_kafka_consumer_close(s.consumer);
    rd_kafka_destroy(s.consumer);
    fclose(s.record);
    return 0;
}
