/*
 * topics.c - the topic catalogue and prefixing (see topics.h).
 *
 * The base names live in one array indexed by bz_topic, so adding a topic is
 * one enum value plus one string; the unit test checks the two stay in step.
 */
#include "kafka/topics.h"

#include "core/config.h"

#include <stdio.h>
#include <string.h>

#define KAFKA_TOPIC_LEN_MAX 249

static const char *const topic_bases[BZ_TOPIC_COUNT] = {
    [BZ_TOPIC_WA_INBOUND_RAW] = "wa.inbound.raw",
    [BZ_TOPIC_CHAT_SYNC] = "chat.sync",
    [BZ_TOPIC_CHAT_EVENTS] = "chat.events",
    [BZ_TOPIC_SESSION_EVENTS] = "session.events",
    [BZ_TOPIC_CAMPAIGN_COMMANDS] = "campaign.commands",
    [BZ_TOPIC_WA_OUTBOUND] = "wa.outbound",
    [BZ_TOPIC_CAMPAIGN_RECEIPTS] = "campaign.receipts",
    [BZ_TOPIC_CAMPAIGN_EVENTS] = "campaign.events",
    [BZ_TOPIC_WA_SESSION_COMMANDS] = "wa.session.commands",
    [BZ_TOPIC_CLEANUP_REQUESTS] = "cleanup.requests",
    [BZ_TOPIC_CRM_COMMANDS] = "crm.commands",
    [BZ_TOPIC_WA_INBOUND_DLQ] = "wa.inbound.dlq",
    [BZ_TOPIC_CHAT_SYNC_DLQ] = "chat.sync.dlq",
    [BZ_TOPIC_WEBHOOK_DLQ] = "webhook.dlq",
    [BZ_TOPIC_CAMPAIGN_DLQ] = "campaign.dlq",
    [BZ_TOPIC_CLEANUP_DLQ] = "cleanup.dlq",
    [BZ_TOPIC_OUTBOX_DLQ] = "outbox.dlq",
    [BZ_TOPIC_WA_OUTBOUND_DLQ] = "wa.outbound.dlq",
};

const char *bz_topic_base(bz_topic t)
{
    if ((int)t < 0 || t >= BZ_TOPIC_COUNT)
        return NULL;
    return topic_bases[t];
}

int bz_topic_is_dlq(bz_topic t)
{
    const char *base = bz_topic_base(t);
    if (!base)
        return 0;
    size_t len = strlen(base);
    return len > 4 && strcmp(base + len - 4, ".dlq") == 0;
}

int bz_topic_via_outbox(bz_topic t)
{
    switch (t) {
    case BZ_TOPIC_CHAT_EVENTS:
    case BZ_TOPIC_SESSION_EVENTS:
    case BZ_TOPIC_CAMPAIGN_RECEIPTS:
    case BZ_TOPIC_CAMPAIGN_EVENTS:
    case BZ_TOPIC_WA_OUTBOUND:
    case BZ_TOPIC_WA_SESSION_COMMANDS:
        return 1;
    default:
        return 0;
    }
}

bz_status bz_topic_lookup(const char *base, bz_topic *out, bz_error *err)
{
    for (int t = 0; base && t < BZ_TOPIC_COUNT; t++) {
        if (strcmp(topic_bases[t], base) == 0) {
            *out = (bz_topic)t;
            return BZ_OK;
        }
    }
    return bz_fail(err, BZ_ERR_NOT_FOUND, "look up topic '%s': not in the catalogue",
                   base ? base : "(null)");
}

static int is_legal_topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* The first character Kafka would refuse in s, or NULL when all are legal. */
static const char *first_illegal_char(const char *s)
{
    for (; *s; s++)
        if (!is_legal_topic_char(*s))
            return s;
    return NULL;
}

bz_status bz_topic_name_checked(const char *prefix, const char *base, char *buf,
                                size_t cap, bz_error *err)
{
    if (!prefix)
        prefix = "";
    if (buf && cap > 0)
        buf[0] = '\0';
    if (!buf || cap == 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "topic name: no output buffer");
    if (!base || !*base)
        return bz_fail(err, BZ_ERR_CONFIG, "topic name: empty base name");
    const char *bad = first_illegal_char(prefix);
    if (bad)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "topic prefix '%s': character '%c' is not allowed (use A-Z a-z 0-9 . _ -)",
                       prefix, *bad);
    bad = first_illegal_char(base);
    if (bad)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "topic base '%s': character '%c' is not allowed", base, *bad);
    size_t len = strlen(prefix) + strlen(base);
    if (len > KAFKA_TOPIC_LEN_MAX)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "topic '%s%s': %zu characters, Kafka allows %d", prefix, base, len,
                       KAFKA_TOPIC_LEN_MAX);
    if (len + 1 > cap)
        return bz_fail(err, BZ_ERR_CONFIG,
                       "topic '%s%s': needs %zu bytes, buffer has %zu", prefix, base, len + 1,
                       cap);
    memcpy(buf, prefix, strlen(prefix));
    memcpy(buf + strlen(prefix), base, strlen(base) + 1);
    return BZ_OK;
}

bz_status bz_topic_name(const char *prefix, const char *base, char *buf, size_t cap)
{
    return bz_topic_name_checked(prefix, base, buf, cap, NULL);
}

int bz_gateway_id_valid(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > BZ_GATEWAY_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '_' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

static const char *const gateway_topic_bases[BZ_GATEWAY_TOPIC_COUNT] = {
    [BZ_GATEWAY_TOPIC_INBOUND] = "wa.inbound.gw.",
    [BZ_GATEWAY_TOPIC_OUTBOUND] = "wa.outbound.gw.",
    [BZ_GATEWAY_TOPIC_COMMANDS] = "wa.session.commands.gw.",
};

const char *bz_gateway_topic_base(bz_gateway_topic which)
{
    if ((int)which < 0 || which >= BZ_GATEWAY_TOPIC_COUNT)
        return NULL;
    return gateway_topic_bases[which];
}

bz_status bz_topic_gateway_name(const char *prefix, bz_gateway_topic which,
                                const char *gateway_id, char *buf, size_t cap, bz_error *err)
{
    const char *gateway_base = bz_gateway_topic_base(which);
    if (!bz_gateway_id_valid(gateway_id) || !gateway_base) {
        if (buf && cap > 0)
            buf[0] = '\0';
        return bz_fail(err, BZ_ERR_CONFIG,
                       "gateway id '%s': expected 1 to %d characters of a-z 0-9 _ -, starting "
                       "with a letter or digit",
                       gateway_id ? gateway_id : "", BZ_GATEWAY_ID_MAX);
    }
    char base[32 + BZ_GATEWAY_ID_MAX];
    snprintf(base, sizeof base, "%s%s", gateway_base, gateway_id);
    return bz_topic_name_checked(prefix, base, buf, cap, err);
}

/* The id after gateway_base in name, when name is gateway_base + a valid id;
 * else NULL. */
static const char *gateway_id_after(const char *name, const char *gateway_base)
{
    size_t len = strlen(gateway_base);
    if (strncmp(name, gateway_base, len) != 0)
        return NULL;
    return bz_gateway_id_valid(name + len) ? name + len : NULL;
}

const char *bz_topic_gateway_of(const char *prefix, const char *topic)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    if (!topic || strncmp(topic, prefix ? prefix : "", plen) != 0)
        return NULL;
    return gateway_id_after(topic + plen, gateway_topic_bases[BZ_GATEWAY_TOPIC_INBOUND]);
}

int bz_topic_gateway_route(const char *base, bz_topic *shared)
{
    static const struct {
        bz_gateway_topic routed;
        bz_topic shared;
    } routes[] = {{BZ_GATEWAY_TOPIC_OUTBOUND, BZ_TOPIC_WA_OUTBOUND},
                  {BZ_GATEWAY_TOPIC_COMMANDS, BZ_TOPIC_WA_SESSION_COMMANDS}};
    for (size_t i = 0; base && i < sizeof routes / sizeof *routes; i++) {
        if (gateway_id_after(base, gateway_topic_bases[routes[i].routed])) {
            if (shared)
                *shared = routes[i].shared;
            return 1;
        }
    }
    return 0;
}

const char *bz_topic_prefix_from_env(void)
{
    return bz_env_or("BLAZZ_KAFKA_TOPIC_PREFIX", bz_env_or("BLAZZ_TOPIC_PREFIX", ""));
}
