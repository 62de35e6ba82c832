/*
 * test_kafka_acl.c - the ACL matrix of ARCHITECTURE.md §9.1 as compiled
 * into libs/kafka/acl.c: every row parses, names get the deployment prefix,
 * the gateway row is instantiated per gateway, and the matrix keeps the
 * promises §9.1 makes (who may write chat.sync, chat.events, the raw
 * topics). The broker enforcing them is test_kafka_auth's job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kafka/acl.h"
#include "kafka/topics.h"

static bz_kafka_acl_list services(const char *prefix)
{
    bz_kafka_acl_list list = {0};
    bz_error err;
    if (bz_kafka_acls_for_services(prefix, &list, &err) != BZ_OK)
        fail_msg("%s", err.msg);
    return list;
}

static int grants(const bz_kafka_acl_list *l, const char *principal, bz_kafka_acl_resource r,
                  const char *name, int prefixed, bz_kafka_acl_op op)
{
    for (size_t i = 0; i < l->count; i++) {
        const bz_kafka_acl *a = &l->items[i];
        if (strcmp(a->principal, principal) == 0 && a->resource == r &&
            strcmp(a->name, name) == 0 && a->prefixed == prefixed && a->op == op)
            return 1;
    }
    return 0;
}

/* Principals that may write topic (given literally, full name). */
static size_t writers_of(const bz_kafka_acl_list *l, const char *topic, const char **who,
                         size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < l->count; i++) {
        const bz_kafka_acl *a = &l->items[i];
        if (a->resource != BZ_ACL_TOPIC || a->op != BZ_ACL_WRITE)
            continue;
        int match = a->prefixed ? strncmp(topic, a->name, strlen(a->name)) == 0
                                : strcmp(a->name, "*") == 0 || strcmp(a->name, topic) == 0;
        if (match && n < cap)
            who[n++] = a->principal;
    }
    return n;
}

static void every_row_parses_and_names_its_principal(void **state)
{
    (void)state;
    bz_kafka_acl_list l = services(NULL);
    assert_true(l.count > 30);
    assert_int_equal(bz_kafka_acl_principal_count(), 8);
    assert_string_equal(bz_kafka_acl_principal(0), "ingest");
    assert_string_equal(bz_kafka_acl_principal(5), "meta-sender");
    assert_null(bz_kafka_acl_principal(8));
    for (size_t i = 0; i < bz_kafka_acl_principal_count(); i++) {
        int found = 0;
        for (size_t j = 0; j < l.count; j++)
            found |= strcmp(l.items[j].principal, bz_kafka_acl_principal(i)) == 0;
        assert_true(found);
    }
    bz_kafka_acl_list_free(&l);
}

static void names_get_the_deployment_prefix(void **state)
{
    (void)state;
    bz_kafka_acl_list l = services("staging.");
    assert_true(grants(&l, "ingest", BZ_ACL_TOPIC, "staging.chat.sync", 0, BZ_ACL_WRITE));
    assert_true(grants(&l, "ingest", BZ_ACL_TOPIC, "staging.wa.inbound.gw.", 1, BZ_ACL_READ));
    /* groups and transactional ids are not the deployment's */
    assert_true(grants(&l, "ingest", BZ_ACL_GROUP, "blazz-ingest", 1, BZ_ACL_READ));
    assert_true(grants(&l, "ingest", BZ_ACL_TRANSACTIONAL_ID, "*", 0, BZ_ACL_WRITE));
    assert_true(grants(&l, "blazzctl", BZ_ACL_TOPIC, "staging.", 1, BZ_ACL_DESCRIBE));
    assert_true(grants(&l, "blazzctl", BZ_ACL_GROUP, "blazz-", 1, BZ_ACL_DESCRIBE));
    assert_true(grants(&l, "blazzctl", BZ_ACL_CLUSTER, "kafka-cluster", 0, BZ_ACL_CREATE));
    /* meta-sender reads wa.outbound in its own group, like a gateway */
    assert_true(grants(&l, "meta-sender", BZ_ACL_TOPIC, "staging.wa.outbound", 0, BZ_ACL_READ));
    assert_true(grants(&l, "meta-sender", BZ_ACL_TOPIC, "staging.wa.outbound.dlq", 0,
                       BZ_ACL_WRITE));
    assert_true(grants(&l, "meta-sender", BZ_ACL_GROUP, "blazz-meta-sender", 1, BZ_ACL_READ));
    assert_false(grants(&l, "meta-sender", BZ_ACL_TOPIC, "staging.wa.inbound.raw", 0,
                        BZ_ACL_WRITE));
    bz_kafka_acl_list_free(&l);
    /* without a prefix, "every name" is the literal wildcard */
    l = services("");
    assert_true(grants(&l, "blazzctl", BZ_ACL_TOPIC, "*", 0, BZ_ACL_DESCRIBE));
    assert_true(grants(&l, "ingest", BZ_ACL_TRANSACTIONAL_ID, "*", 0, BZ_ACL_WRITE));
    bz_kafka_acl_list_free(&l);
}

static void the_gateway_row_is_instantiated_per_gateway(void **state)
{
    (void)state;
    bz_kafka_acl_list l = {0};
    bz_error err;
    assert_int_equal(bz_kafka_acls_for_gateway("t.", "a1", NULL, &l, &err), BZ_OK);
    assert_int_equal(bz_kafka_acls_for_gateway("t.", "b2", "fleet-b", &l, &err), BZ_OK);
    assert_true(grants(&l, "gateway-a1", BZ_ACL_TOPIC, "t.wa.inbound.gw.a1", 0, BZ_ACL_WRITE));
    assert_true(grants(&l, "gateway-a1", BZ_ACL_TOPIC, "t.wa.outbound.gw.a1", 0, BZ_ACL_READ));
    assert_true(
        grants(&l, "gateway-a1", BZ_ACL_TOPIC, "t.wa.session.commands.gw.a1", 0, BZ_ACL_READ));
    assert_false(grants(&l, "gateway-a1", BZ_ACL_TOPIC, "t.wa.outbound", 0, BZ_ACL_READ));
    assert_false(grants(&l, "gateway-a1", BZ_ACL_TOPIC, "t.wa.outbound.gw.b2", 0, BZ_ACL_READ));
    /* its own groups, never one that another gateway's id would extend */
    assert_true(grants(&l, "gateway-a1", BZ_ACL_GROUP, "blazz-gateway-a1", 0, BZ_ACL_READ));
    assert_true(grants(&l, "gateway-a1", BZ_ACL_GROUP, "blazz-gateway-a1.", 1, BZ_ACL_READ));
    assert_false(grants(&l, "gateway-a1", BZ_ACL_GROUP, "blazz-gateway-a1", 1, BZ_ACL_READ));
    assert_true(grants(&l, "fleet-b", BZ_ACL_TOPIC, "t.wa.inbound.gw.b2", 0, BZ_ACL_WRITE));
    assert_false(grants(&l, "fleet-b", BZ_ACL_TOPIC, "t.wa.inbound.gw.a1", 0, BZ_ACL_WRITE));
    assert_int_equal(bz_kafka_acls_for_gateway("t.", "Bad Id", NULL, &l, &err), BZ_ERR_CONFIG);
    bz_kafka_acl_list_free(&l);
}

/* The services that host an outbox relay (ARCHITECTURE.md §3.2). */
static int is_relay_host(const char *principal)
{
    static const char *const hosts[] = {"chat-sync", "campaign-sender", "cleanup", "meta-sender"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
        if (strcmp(principal, hosts[i]) == 0)
            return 1;
    return 0;
}

static void only_the_promised_principals_write_the_guarded_topics(void **state)
{
    (void)state;
    bz_kafka_acl_list l = services("");
    bz_error err;
    assert_int_equal(bz_kafka_acls_for_gateway("", "a", NULL, &l, &err), BZ_OK);
    const char *who[16];
    /* chat.sync: ingest, blazzctl and the outbox relay hosts (an agent's
     * failed send, ARCHITECTURE.md §11; meta-sender's outcomes, §12) */
    size_t n = writers_of(&l, "chat.sync", who, 16);
    assert_int_equal(n, 6);
    assert_string_equal(who[0], "ingest");
    assert_string_equal(who[5], "blazzctl");
    for (size_t i = 1; i < 5; i++)
        assert_true(is_relay_host(who[i]));
    /* crm.commands: ingest (the CRM's HTTP API) and blazzctl */
    n = writers_of(&l, "crm.commands", who, 16);
    assert_int_equal(n, 2);
    assert_string_equal(who[0], "ingest");
    assert_string_equal(who[1], "blazzctl");
    /* chat.events: only the four outbox relay hosts */
    n = writers_of(&l, "chat.events", who, 16);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_true(is_relay_host(who[i]));
    n = writers_of(&l, "wa.inbound.raw", who, 16);
    assert_int_equal(n, 2);
    n = writers_of(&l, "wa.inbound.gw.a", who, 16);
    assert_int_equal(n, 2); /* the gateway and blazzctl (replays) */
    assert_int_equal(writers_of(&l, "wa.inbound.gw.b", who, 16), 1);
    assert_string_equal(who[0], "blazzctl");
    bz_kafka_acl_list_free(&l);
}

static void gateway_topics_name_their_gateway(void **state)
{
    (void)state;
    char buf[BZ_TOPIC_NAME_MAX];
    bz_error err;
    assert_int_equal(
        bz_topic_gateway_name("p.", BZ_GATEWAY_TOPIC_INBOUND, "gw-1", buf, sizeof buf, &err),
        BZ_OK);
    assert_string_equal(buf, "p.wa.inbound.gw.gw-1");
    assert_string_equal(bz_topic_gateway_of("p.", buf), "gw-1");
    assert_int_equal(
        bz_topic_gateway_name("p.", BZ_GATEWAY_TOPIC_OUTBOUND, "gw-1", buf, sizeof buf, &err),
        BZ_OK);
    assert_string_equal(buf, "p.wa.outbound.gw.gw-1");
    assert_null(bz_topic_gateway_of("p.", buf));
    assert_int_equal(
        bz_topic_gateway_name("p.", BZ_GATEWAY_TOPIC_COMMANDS, "gw-1", buf, sizeof buf, &err),
        BZ_OK);
    assert_string_equal(buf, "p.wa.session.commands.gw.gw-1");
    assert_null(bz_topic_gateway_of("", buf));
    assert_null(bz_topic_gateway_of("p.", "p.wa.inbound.raw"));
    assert_null(bz_topic_gateway_of("p.", "p.wa.inbound.gw."));
    assert_false(bz_gateway_id_valid("-a"));
    assert_false(bz_gateway_id_valid("A"));
    assert_false(bz_gateway_id_valid(""));
    assert_true(bz_gateway_id_valid("meta"));
    assert_int_equal(
        bz_topic_gateway_name("", BZ_GATEWAY_TOPIC_INBOUND, "x.y", buf, sizeof buf, &err),
        BZ_ERR_CONFIG);
}

static void routed_outbox_topics_name_the_topic_they_were_written_for(void **state)
{
    (void)state;
    bz_topic shared = BZ_TOPIC_COUNT;
    assert_true(bz_topic_gateway_route("wa.outbound.gw.jkt-2", &shared));
    assert_int_equal(shared, BZ_TOPIC_WA_OUTBOUND);
    assert_true(bz_topic_gateway_route("wa.session.commands.gw.a", &shared));
    assert_int_equal(shared, BZ_TOPIC_WA_SESSION_COMMANDS);
    assert_false(bz_topic_gateway_route("wa.inbound.gw.a", NULL));
    assert_false(bz_topic_gateway_route("wa.outbound", NULL));
    assert_false(bz_topic_gateway_route("wa.outbound.gw.", NULL));
    assert_false(bz_topic_gateway_route("wa.outbound.gw.Bad", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_row_parses_and_names_its_principal),
        cmocka_unit_test(names_get_the_deployment_prefix),
        cmocka_unit_test(the_gateway_row_is_instantiated_per_gateway),
        cmocka_unit_test(only_the_promised_principals_write_the_guarded_topics),
        cmocka_unit_test(gateway_topics_name_their_gateway),
        cmocka_unit_test(routed_outbox_topics_name_the_topic_they_were_written_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
