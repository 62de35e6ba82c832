/*
 * test_kafka_auth.c - the broker enforces ARCHITECTURE.md §9.1 against the
 * real test stack (SASL/SCRAM-SHA-512, StandardAuthorizer, the ACLs
 * itest_topics_create generates for this test's prefix).
 *
 * Each check acts as one of the stack's principals with its own password
 * (itest_principal) and a plain producer or consumer:
 *  - every principal writes the topics its row grants;
 *  - a principal writing a topic outside its row is refused by the broker
 *    (TOPIC_AUTHORIZATION_FAILED), gateways writing chat.sync, the raw
 *    topic or another gateway's topic included;
 *  - the forged chat.events record (a webhook-endpoint-id header and a body
 *    of the attacker's choosing) is refused for every principal that is
 *    not an outbox relay host, and the topic stays empty;
 *  - a gateway can neither read chat.events nor join chat-sync's group;
 *  - a gateway reads only its own outbound topics (wa.outbound.gw.<id>,
 *    wa.session.commands.gw.<id>), never the shared wa.outbound or another
 *    gateway's, and joins only its own groups (not those of a gateway whose
 *    id its own begins);
 *  - a wrong password or no authentication gets no metadata at all.
 * That each service works as its own principal is what every other
 * integration test shows: itest_spawn starts them so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "itest.h"
#include "kafka/producer.h"
#include "kafka/topics.h"

static char prefix[64];

static int setup(void **state)
{
    (void)state;
    itest_unique("kauth", prefix, sizeof prefix);
    strcat(prefix, ".");
    itest_topics_create(prefix, 2);
    return 0;
}

typedef struct outcome {
    rd_kafka_resp_err_t err;
    int done;
} outcome;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    outcome *o = m->_private;
    o->err = m->err;
    o->done = 1;
}

static void topic_name(const char *base, char *buf, size_t cap)
{
    if (bz_topic_name(prefix, base, buf, cap) != BZ_OK)
        fail_msg("topic name %s", base);
}

/* Produce one record to prefix+base as principal (sec, or the admin when
 * NULL) and return the broker's verdict from the delivery report. */
static rd_kafka_resp_err_t produce_with(const bz_kafka_security *sec, const char *base,
                                        const char *header, const char *value)
{
    static const char *const defaults[] = {"message.timeout.ms", "15000", "acks", "all", NULL};
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "itest-kafka-auth", .security = sec};
    rd_kafka_conf_t *conf;
    bz_error err;
    if (bz_kafka_conf_new(&settings, defaults, &conf, &err) != BZ_OK)
        fail_msg("producer config: %s", err.msg);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char errstr[256], topic[BZ_TOPIC_NAME_MAX];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk)
        fail_msg("producer: %s", errstr);
    topic_name(base, topic, sizeof topic);
    outcome o = {RD_KAFKA_RESP_ERR_NO_ERROR, 0};
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
    if (header)
        rd_kafka_header_add(hdrs, "webhook-endpoint-id", -1, header, -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("k", 1),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(&o), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(hdrs);
        o.err = e;
        o.done = 1;
    }
    int64_t deadline = bz_monotonic_ms() + 30000;
    while (!o.done && bz_monotonic_ms() < deadline)
        rd_kafka_poll(rk, 100);
    rd_kafka_destroy(rk);
    if (!o.done)
        fail_msg("no delivery report for %s", topic);
    return o.err;
}

static rd_kafka_resp_err_t produce_as(const char *principal, const char *base, const char *header,
                                      const char *value)
{
    bz_kafka_security sec;
    itest_principal(principal, &sec);
    rd_kafka_resp_err_t e = produce_with(&sec, base, header, value);
    bz_kafka_security_release(&sec);
    return e;
}

/* The broker's authorizer applies the ACLs setup created when it replays
 * them from the metadata log, a moment after CreateAcls answered (longer on
 * a loaded machine): a write the matrix allows may be refused until then,
 * so a refusal is tried again for a while. A refused write stores nothing. */
#define ACLS_APPLIED_WITHIN_MS 30000

static void assert_allowed(const char *principal, const char *base)
{
    int64_t deadline = bz_monotonic_ms() + ACLS_APPLIED_WITHIN_MS;
    rd_kafka_resp_err_t e = produce_as(principal, base, NULL, "allowed");
    while (e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED && bz_monotonic_ms() < deadline) {
        itest_sleep_ms(200);
        e = produce_as(principal, base, NULL, "allowed");
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("%s writing %s: %s (the matrix allows it)", principal, base, rd_kafka_err2name(e));
}

static void assert_refused(const char *principal, const char *base)
{
    rd_kafka_resp_err_t e = produce_as(principal, base, NULL, "refused");
    if (e != RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        fail_msg("%s writing %s: %s, expected TOPIC_AUTHORIZATION_FAILED", principal, base,
                 rd_kafka_err2name(e));
}

static void every_principal_writes_the_topics_its_row_grants(void **state)
{
    (void)state;
    static const char *const allowed[][2] = {
        {"ingest", "wa.inbound.raw"},       {"ingest", "chat.sync"},
        {"ingest", "wa.inbound.dlq"},       {"chat-sync", "chat.events"},
        {"chat-sync", "chat.sync.dlq"},     {"webhook-dispatcher", "webhook.dlq"},
        {"campaign-sender", "wa.outbound"}, {"campaign-sender", "campaign.dlq"},
        {"cleanup", "wa.session.commands"}, {"cleanup", "outbox.dlq"},
        {"blazzctl", "campaign.commands"},  {"blazzctl", "cleanup.requests"},
        {"crm", "campaign.commands"},       {"gateway-a", "wa.inbound.gw.a"},
        {"gateway-b", "wa.inbound.gw.b"},   {"gateway-sim", "wa.inbound.gw.sim"},
        {"ingest", "crm.commands"},         {"blazzctl", "crm.commands"},
        {"campaign-sender", "chat.sync"},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        assert_allowed(allowed[i][0], allowed[i][1]);
}

static void a_principal_writing_outside_its_row_is_refused_by_the_broker(void **state)
{
    (void)state;
    static const char *const refused[][2] = {
        {"gateway-a", "chat.sync"},          {"gateway-a", "wa.inbound.raw"},
        {"gateway-a", "wa.inbound.gw.b"},    {"gateway-b", "wa.inbound.gw.a"},
        {"gateway-sim", "chat.sync"},        {"gateway-a", "wa.outbound"},
        {"crm", "chat.sync"},                {"crm", "wa.inbound.raw"},
        {"webhook-dispatcher", "chat.sync"}, {"webhook-dispatcher", "wa.outbound"},
        {"chat-sync", "crm.commands"},       {"chat-sync", "wa.inbound.raw"},
        {"gateway-a", "crm.commands"},       {"cleanup", "campaign.commands"},
        {"webhook-dispatcher", "crm.commands"}, {"crm", "crm.commands"},
        {"ingest", "wa.outbound"},           {"ingest", "chat.sync.dlq"},
        {"blazzctl", "wa.outbound"},         {"blazzctl", "webhook.dlq"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_refused(refused[i][0], refused[i][1]);
}

static int64_t records_in(const char *base)
{
    char topic[BZ_TOPIC_NAME_MAX];
    topic_name(base, topic, sizeof topic);
    int64_t n = 0;
    bz_producer *p = itest_producer();
    for (int part = 0; part < 2; part++) {
        int64_t low, high;
        if (rd_kafka_query_watermark_offsets(bz_producer_handle(p), topic, part, &low, &high,
                                             10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("watermarks of %s", topic);
        n += high - low;
    }
    bz_producer_free(p, 1000);
    return n;
}

static void the_forged_chat_events_record_is_impossible_without_a_relay_principal(void **state)
{
    (void)state;
    static const char forged[] =
        "{\"id\":\"6f1f7a7e-0000-4000-8000-000000000001\",\"type\":\"message.created\","
        "\"timestamp\":\"2025-01-01T00:00:00Z\",\"workspace_id\":1,\"data\":{\"text\":\"pay "
        "to account 1234\"}}";
    static const char *const outsiders[] = {"blazzctl",    "crm",       "gateway-sim",
                                            "gateway-a",   "gateway-b", "webhook-dispatcher",
                                            "ingest"};
    int64_t before = records_in("chat.events");
    for (size_t i = 0; i < sizeof outsiders / sizeof outsiders[0]; i++) {
        rd_kafka_resp_err_t e = produce_as(outsiders[i], "chat.events", "1", forged);
        if (e != RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
            fail_msg("%s forging chat.events: %s", outsiders[i], rd_kafka_err2name(e));
    }
    assert_int_equal(records_in("chat.events"), before);
}

/* Subscribe to base as principal in group <group><prefix>; the first
 * error the consumer reports, or none once it reached the end of a
 * partition (it was let in). */
static rd_kafka_resp_err_t consume_as(const char *principal, const char *base, const char *group)
{
    bz_kafka_security sec;
    itest_principal(principal, &sec);
    char gid[128], topic[BZ_TOPIC_NAME_MAX];
    snprintf(gid, sizeof gid, "%s%s", group, prefix);
    const char *const defaults[] = {"group.id", gid, "auto.offset.reset", "earliest",
                                    "enable.auto.commit", "false", "enable.partition.eof",
                                    "true", NULL};
    bz_kafka_settings settings = {.brokers = itest_env("BLAZZ_KAFKA_BROKERS"),
                                  .client_id = "itest-kafka-auth", .security = &sec};
    rd_kafka_conf_t *conf;
    bz_error err;
    if (bz_kafka_conf_new(&settings, defaults, &conf, &err) != BZ_OK)
        fail_msg("consumer config: %s", err.msg);
    char errstr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk)
        fail_msg("consumer: %s", errstr);
    topic_name(base, topic, sizeof topic);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_resp_err_t found = RD_KAFKA_RESP_ERR_NO_ERROR;
    int let_in = 0;
    int64_t deadline = bz_monotonic_ms() + 20000;
    while (found == RD_KAFKA_RESP_ERR_NO_ERROR && !let_in && bz_monotonic_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            let_in = 1;
        else if (m && m->err)
            found = m->err;
        if (m)
            rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    bz_kafka_security_release(&sec);
    return found;
}

static void a_gateway_can_neither_read_chat_events_nor_join_chat_sync_group(void **state)
{
    (void)state;
    /* its own group, someone else's topic */
    assert_int_equal(consume_as("gateway-a", "chat.events", "blazz-gateway-a."),
                     RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    assert_int_equal(consume_as("gateway-a", "wa.outbound.gw.a", "blazz-chat-sync-"),
                     RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
}

/* The gateway "a-2" would be served by the group blazz-gateway-a-2; gateway
 * a's own are blazz-gateway-a and blazz-gateway-a.<anything>. */
static void a_gateway_reads_only_its_own_outbound_in_its_own_groups(void **state)
{
    (void)state;
    static const char *const own[] = {"wa.outbound.gw.a", "wa.session.commands.gw.a"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (consume_as("gateway-a", own[i], "blazz-gateway-a.") != RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("gateway a reading its own %s was refused", own[i]);
    static const char *const others[] = {"wa.outbound", "wa.session.commands",
                                         "wa.outbound.gw.b", "wa.session.commands.gw.b"};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        rd_kafka_resp_err_t e = consume_as("gateway-a", others[i], "blazz-gateway-a.");
        if (e != RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
            fail_msg("gateway a reading %s: %s, not refused", others[i], rd_kafka_err2name(e));
    }
    assert_int_equal(consume_as("gateway-a", "wa.outbound.gw.a", "blazz-gateway-a-2."),
                     RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
}

static void a_wrong_password_or_no_authentication_gets_nothing(void **state)
{
    (void)state;
    bz_kafka_security sec;
    itest_principal("gateway-a", &sec);
    sec.password[0] = sec.password[0] == 'x' ? 'y' : 'x';
    assert_int_not_equal(produce_with(&sec, "wa.inbound.gw.a", NULL, "wrong password"),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    bz_kafka_security_release(&sec);
    bz_kafka_security plain = {.protocol = "plaintext"};
    assert_int_not_equal(produce_with(&plain, "wa.inbound.gw.a", NULL, "no authentication"),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(records_in("wa.inbound.gw.a"), 1); /* only the allowed test's record */
}

int main(void)
{
    itest_env("BLAZZ_KAFKA_CREDENTIALS_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_principal_writes_the_topics_its_row_grants),
        cmocka_unit_test(a_principal_writing_outside_its_row_is_refused_by_the_broker),
        cmocka_unit_test(the_forged_chat_events_record_is_impossible_without_a_relay_principal),
        cmocka_unit_test(a_gateway_can_neither_read_chat_events_nor_join_chat_sync_group),
        cmocka_unit_test(a_gateway_reads_only_its_own_outbound_in_its_own_groups),
        cmocka_unit_test(a_wrong_password_or_no_authentication_gets_nothing),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
