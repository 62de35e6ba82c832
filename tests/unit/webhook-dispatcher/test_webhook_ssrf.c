/*
 * test_webhook_ssrf.c - the SSRF guard's address classifier
 * (services/webhook-dispatcher/ssrf.c) on literal addresses; nothing
 * connects anywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "ssrf.h"

static wh_addr_class classify(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(text, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &a->sin_addr), 1);
    }
    return wh_addr_classify((struct sockaddr *)&ss);
}

typedef struct expectation {
    const char *addr;
    wh_addr_class cls;
} expectation;

static void test_classes(void **state)
{
    (void)state;
    const expectation cases[] = {
        {"127.0.0.1", WH_ADDR_LOOPBACK},      {"127.255.255.254", WH_ADDR_LOOPBACK},
        {"::1", WH_ADDR_LOOPBACK},            {"10.0.0.1", WH_ADDR_PRIVATE},
        {"10.255.255.255", WH_ADDR_PRIVATE},  {"172.16.0.1", WH_ADDR_PRIVATE},
        {"172.31.255.255", WH_ADDR_PRIVATE},  {"192.168.1.1", WH_ADDR_PRIVATE},
        {"169.254.169.254", WH_ADDR_LINK_LOCAL}, {"fe80::1", WH_ADDR_LINK_LOCAL},
        {"224.0.0.1", WH_ADDR_MULTICAST},     {"239.255.255.250", WH_ADDR_MULTICAST},
        {"ff02::1", WH_ADDR_MULTICAST},       {"100.64.0.1", WH_ADDR_CGNAT},
        {"100.127.255.254", WH_ADDR_CGNAT},   {"0.0.0.0", WH_ADDR_UNSPECIFIED},
        {"::", WH_ADDR_UNSPECIFIED},          {"255.255.255.255", WH_ADDR_BROADCAST},
        {"fc00::1", WH_ADDR_UNIQUE_LOCAL},    {"fd12:3456::1", WH_ADDR_UNIQUE_LOCAL},
        {"::ffff:127.0.0.1", WH_ADDR_LOOPBACK}, {"::ffff:10.1.2.3", WH_ADDR_PRIVATE},
        {"::ffff:169.254.169.254", WH_ADDR_LINK_LOCAL},
        {"::ffff:8.8.8.8", WH_ADDR_PUBLIC},   {"64:ff9b::a00:1", WH_ADDR_RESERVED},
        {"240.0.0.1", WH_ADDR_RESERVED},      {"198.18.0.1", WH_ADDR_RESERVED},
        {"2001:db8::1", WH_ADDR_RESERVED},    {"8.8.8.8", WH_ADDR_PUBLIC},
        {"1.1.1.1", WH_ADDR_PUBLIC},          {"172.32.0.1", WH_ADDR_PUBLIC},
        {"172.15.255.255", WH_ADDR_PUBLIC},   {"100.128.0.1", WH_ADDR_PUBLIC},
        {"100.63.255.255", WH_ADDR_PUBLIC},   {"2606:4700:4700::1111", WH_ADDR_PUBLIC},
        /* local-use NAT64 (RFC 8215), Teredo (RFC 4380), IPv4-translated
         * (RFC 2765): each can carry a private IPv4 address */
        {"64:ff9b:1::a00:1", WH_ADDR_RESERVED},
        {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", WH_ADDR_RESERVED},
        {"2001::1", WH_ADDR_RESERVED},
        {"2001:0:4136:e378:8000:63bf:3fff:fdd2", WH_ADDR_RESERVED},
        {"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", WH_ADDR_RESERVED},
        {"::ffff:0:127.0.0.1", WH_ADDR_RESERVED},
        {"::ffff:0:8.8.8.8", WH_ADDR_RESERVED},
        {"2001:4860:4860::8888", WH_ADDR_PUBLIC}, {"64:ff9b:2::1", WH_ADDR_PUBLIC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        wh_addr_class got = classify(cases[i].addr);
        if (got != cases[i].cls)
            fail_msg("%s: got %s, want %s", cases[i].addr, wh_addr_class_name(got),
                     wh_addr_class_name(cases[i].cls));
    }
}

static void test_policy(void **state)
{
    (void)state;
    assert_true(wh_addr_allowed(WH_ADDR_PUBLIC, false));
    wh_addr_class private_like[] = {WH_ADDR_LOOPBACK, WH_ADDR_PRIVATE,
                                       WH_ADDR_CGNAT, WH_ADDR_LINK_LOCAL,
                                       WH_ADDR_UNIQUE_LOCAL, WH_ADDR_RESERVED};
    for (size_t i = 0; i < sizeof private_like / sizeof *private_like; i++) {
        assert_false(wh_addr_allowed(private_like[i], false));
        assert_true(wh_addr_allowed(private_like[i], true));
    }
    /* never, even when private targets are allowed */
    assert_false(wh_addr_allowed(WH_ADDR_MULTICAST, true));
    assert_false(wh_addr_allowed(WH_ADDR_BROADCAST, true));
    assert_false(wh_addr_allowed(WH_ADDR_UNSPECIFIED, true));
    struct sockaddr unix_like = {.sa_family = AF_UNIX};
    assert_int_equal(wh_addr_classify(&unix_like), WH_ADDR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
