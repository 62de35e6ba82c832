/*
 * outbound.c - answering the gateway's wa.outbound.gw.<ID> (see outbound.h).
 *
 * One thread owns everything here: the consumer, the publisher for the
 * receipts, a hash table of the sends seen (idempotency key -> what was
 * sent and the last status reported) and a min-heap of receipts waiting for
 * their moment (ordered by due time, then by scheduling order, so the
 * receipts of one send always leave in sent -> delivered -> read order even
 * when their times coincide). The loop polls the consumer for at most 50 ms
 * or until the next receipt is due, publishes what is due, and serves the
 * publisher's completions. Sends of Meta accounts (envelope provider
 * META) are left alone: they stay on the shared wa.outbound, which
 * blazz-meta-sender takes to the Cloud API, so one here is a record
 * written straight to the topic by hand.
 */
#include "outbound.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/campaign.pb-c.h"
#include "core/grow.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "event.h"
#include "kafka/consumer_close.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "publish.h"

#define HASH_BUCKETS 4096
#define POLL_MAX_MS 50
#define CLOSE_TIMEOUT_MS 5000

typedef struct send_entry {
    struct send_entry *next;
    char *key;
    char *session_id;
    char *client_reference;
    char *to_phone;
    char *to_jid;
    char *body;
    char *target; /* a reaction's: the message it acts on */
    Blazz__V1__MessageType type;
    char wam_id[32];
    Blazz__V1__DeliveryStatus reached; /* last status published */
} send_entry;

typedef struct scheduled {
    int64_t due_ms;
    uint64_t seq;
    send_entry *entry;
    Blazz__V1__DeliveryStatus status;
    bool with_echo;
    const char *error_code;
    const char *error_message;
} scheduled;

struct bz_sim_outbound {
    const bz_sim_options *o;
    bz_sim_stats *stats;
    const bz_sim_outbound_owner *owner;
    rd_kafka_t *consumer;
    bz_sim_publisher *pub;
    FILE *sends_log;
    pthread_t thread;
    atomic_bool stop;
    bz_sim_rng rng;
    send_entry *buckets[HASH_BUCKETS];
    scheduled *heap;
    size_t nheap;
    size_t capheap;
    uint64_t seq;
    bz_sim_arena arena;
};

/* ---- sends seen ----------------------------------------------------------- */

static size_t hash_key(const char *s)
{
    return (size_t)(bz_hash_string(s) % HASH_BUCKETS);
}

static send_entry *find_send(bz_sim_outbound *ob, const char *key)
{
    for (send_entry *e = ob->buckets[hash_key(key)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void free_send(send_entry *e)
{
    free(e->key);
    free(e->session_id);
    free(e->client_reference);
    free(e->to_phone);
    free(e->to_jid);
    free(e->body);
    free(e->target);
    free(e);
}

static send_entry *add_send(bz_sim_outbound *ob, const char *key,
                            const Blazz__V1__SendMessage *sm, const char *session_id)
{
    send_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    const char *body = sm->body && *sm->body ? sm->body
                       : sm->template_ && sm->template_->name ? sm->template_->name : "";
    e->key = strdup(key);
    e->session_id = strdup(session_id);
    e->client_reference = strdup(sm->client_reference ? sm->client_reference : "");
    e->to_phone = strdup(sm->to_phone ? sm->to_phone : "");
    e->to_jid = strdup(sm->to_jid ? sm->to_jid : "");
    e->body = strdup(body);
    e->target = strdup(sm->quoted_wam_id ? sm->quoted_wam_id : "");
    e->type = sm->message_type ? sm->message_type : BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    if (!e->key || !e->session_id || !e->client_reference || !e->to_phone || !e->to_jid ||
        !e->body || !e->target) {
        free_send(e);
        return NULL;
    }
    snprintf(e->wam_id, sizeof e->wam_id, "3EB0%016llX",
             (unsigned long long)bz_sim_rng_next(&ob->rng));
    size_t b = hash_key(key);
    e->next = ob->buckets[b];
    ob->buckets[b] = e;
    return e;
}

/* ---- the receipt schedule (binary min-heap) ------------------------------- */

static bool due_before(const scheduled *a, const scheduled *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static bz_status schedule(bz_sim_outbound *ob, scheduled item, bz_error *err)
{
    if (!bz_grow((void **)&ob->heap, &ob->capheap, ob->nheap + 1, sizeof *ob->heap, 256))
        return bz_fail(err, BZ_ERR_NOMEM, "schedule receipt: out of memory");
    item.seq = ob->seq++;
    size_t i = ob->nheap++;
    while (i > 0 && due_before(&item, &ob->heap[(i - 1) / 2])) {
        ob->heap[i] = ob->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    ob->heap[i] = item;
    return BZ_OK;
}

static scheduled pop_earliest(bz_sim_outbound *ob)
{
    scheduled top = ob->heap[0];
    scheduled last = ob->heap[--ob->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= ob->nheap)
            break;
        if (c + 1 < ob->nheap && due_before(&ob->heap[c + 1], &ob->heap[c]))
            c++;
        if (!due_before(&ob->heap[c], &last))
            break;
        ob->heap[i] = ob->heap[c];
        i = c;
    }
    if (ob->nheap)
        ob->heap[i] = last;
    return top;
}

/* ---- receipts ------------------------------------------------------------- */

static bool is_group_jid(const char *jid)
{
    size_t n = strlen(jid);
    return n > 5 && strcmp(jid + n - 5, "@g.us") == 0;
}

static bz_status publish_built(bz_sim_outbound *ob, Blazz__V1__InboundEvent *ev, bz_sim_kind kind,
                               const char *session_id, bz_error *err)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    Blazz__V1__InstanceRef instance = BLAZZ__V1__INSTANCE_REF__INIT;
    if (ob->owner && ob->owner->stamp(ob->owner->ctx, session_id, &instance)) {
        env.instance = &instance;
        ev->envelope = &env;
    }
    bz_sim_event out = {0};
    bz_status st = bz_sim_event_seal(&ob->arena, ev, kind, session_id, bz_wall_ms(), &out, err);
    if (st == BZ_OK)
        st = bz_sim_publish(ob->pub, &out, err);
    bz_sim_event_clear(&out);
    bz_sim_arena_free(&ob->arena);
    return st;
}

static bz_status publish_echo(bz_sim_outbound *ob, const send_entry *e, bz_error *err)
{
    Blazz__V1__InboundMessage msg = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    msg.wam_id = (char *)e->wam_id;
    msg.from_me = true;
    msg.client_reference = e->client_reference;
    msg.message_type = e->type;
    /* whatsapp-web.js reports its own reaction as a reaction to the target
     * (message_reaction, from me), not as a message */
    int reaction = e->type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_REACTION;
    msg.body = reaction ? (char *)"" : e->body;
    msg.reaction_emoji = reaction ? e->body : (char *)"";
    msg.target_wam_id = reaction ? e->target : (char *)"";
    msg.raw_type = (char *)(e->type == BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT ? "chat" : "");
    msg.timestamp_ms = bz_wall_ms();
    if (is_group_jid(e->to_jid)) {
        msg.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_GROUP;
        msg.group_jid = e->to_jid;
    } else {
        msg.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
        msg.contact_phone = e->to_phone;
        msg.contact_jid = e->to_jid;
    }
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &msg;
    return publish_built(ob, &ev, BZ_SIM_KIND_MESSAGE_ECHO, e->session_id, err);
}

static bz_status publish_receipt(bz_sim_outbound *ob, const scheduled *item, bz_error *err)
{
    send_entry *e = item->entry;
    if (item->with_echo) {
        bz_status st = publish_echo(ob, e, err);
        if (st != BZ_OK)
            return st;
    }
    Blazz__V1__MessageAck ack = BLAZZ__V1__MESSAGE_ACK__INIT;
    ack.wam_id = e->wam_id;
    ack.status = item->status;
    ack.error_code = (char *)(item->error_code ? item->error_code : "");
    ack.error_message = (char *)(item->error_message ? item->error_message : "");
    ack.timestamp_ms = bz_wall_ms();
    ack.client_reference = e->client_reference;
    ack.recipient_phone = e->to_phone;
    ack.recipient_jid = e->to_jid;
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_ACK;
    ev.ack = &ack;
    if (item->status > e->reached || item->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED)
        e->reached = item->status;
    return publish_built(ob, &ev, BZ_SIM_KIND_ACK, e->session_id, err);
}

static bz_status publish_due(bz_sim_outbound *ob, bz_error *err)
{
    int64_t now = bz_wall_ms();
    while (ob->nheap && ob->heap[0].due_ms <= now) {
        scheduled item = pop_earliest(ob);
        bz_status st = publish_receipt(ob, &item, err);
        if (st != BZ_OK)
            return st;
    }
    atomic_store(&ob->stats->receipts_pending, ob->nheap);
    return BZ_OK;
}

/* ---- one SendMessage -------------------------------------------------------- */

static void log_send(bz_sim_outbound *ob, const char *session_id, const char *key,
                     const char *what)
{
    if (!ob->sends_log)
        return;
    fprintf(ob->sends_log, "%lld %s %s%s%s\n", (long long)bz_wall_ms(), session_id, key,
            *what ? " " : "", what);
    fflush(ob->sends_log);
}

static bz_status schedule_answer(bz_sim_outbound *ob, send_entry *e, int64_t expires_at_ms,
                                 bz_error *err)
{
    static const char *const failures[][2] = {
        {"131026", "Message undeliverable: recipient is not on WhatsApp"},
        {"131047", "Re-engagement message: more than 24 hours since the customer replied"},
        {"131048", "Spam rate limit hit"},
        {"131000", "Something went wrong"}};
    bz_sim_rng *r = &ob->rng;
    /* --hold-sends: taken, neither sent nor answered, as by an instance
     * whose phone is stuck until it dies (test_sessions_failover) */
    if (ob->o->hold_sends)
        return BZ_OK;
    int64_t now = bz_wall_ms();
    int64_t d = ob->o->ack_delay_ms;
    scheduled item = {.entry = e};
    if (expires_at_ms > 0 && now > expires_at_ms) {
        atomic_fetch_add(&ob->stats->outbound_failed, 1);
        item.due_ms = now;
        item.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
        item.error_code = "expired";
        item.error_message = "not sent: expires_at_ms has passed";
        return schedule(ob, item, err);
    }
    if (bz_sim_rng_chance(r, ob->o->fail_ratio)) {
        atomic_fetch_add(&ob->stats->outbound_failed, 1);
        size_t f = bz_sim_rng_below(r, 4);
        item.due_ms = now + bz_sim_rng_between(r, 0, d / 4);
        item.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
        item.error_code = failures[f][0];
        item.error_message = failures[f][1];
        return schedule(ob, item, err);
    }
    item.due_ms = now + bz_sim_rng_between(r, 0, d / 4);
    item.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_SENT;
    item.with_echo = true;
    bz_status st = schedule(ob, item, err);
    item.with_echo = false;
    item.due_ms = now + bz_sim_rng_between(r, d / 2, d);
    item.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED;
    if (st == BZ_OK)
        st = schedule(ob, item, err);
    if (st == BZ_OK && bz_sim_rng_chance(r, ob->o->read_ratio)) {
        item.due_ms = now + bz_sim_rng_between(r, d + 1, 3 * d + 1);
        item.status = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ;
        st = schedule(ob, item, err);
    }
    return st;
}

static bz_status handle_send(bz_sim_outbound *ob, const rd_kafka_message_t *m, bz_error *err)
{
    Blazz__V1__SendMessage *sm =
        blazz__v1__send_message__unpack(NULL, m->len, (const uint8_t *)m->payload);
    if (!sm) {
        bz_warn("wa.outbound offset %lld: not a SendMessage; skipped", (long long)m->offset);
        return BZ_OK;
    }
    if (sm->envelope && sm->envelope->provider == BLAZZ__V1__PROVIDER__PROVIDER_META) {
        blazz__v1__send_message__free_unpacked(sm, NULL);
        return BZ_OK;
    }
    const char *session_id = sm->session_id && *sm->session_id ? sm->session_id
                             : sm->envelope && sm->envelope->session_id ? sm->envelope->session_id
                                                                        : "";
    if (ob->owner && !ob->owner->owns(ob->owner->ctx, m, session_id)) {
        blazz__v1__send_message__free_unpacked(sm, NULL);
        return BZ_OK;
    }
    const char *key = sm->idempotency_key && *sm->idempotency_key ? sm->idempotency_key
                      : sm->envelope && sm->envelope->event_id ? sm->envelope->event_id
                                                               : "";
    bz_status st = BZ_OK;
    send_entry *e = find_send(ob, key);
    if (sm->kind == BLAZZ__V1__SEND_KIND__SEND_KIND_MARK_READ) {
        /* chat.sendSeen(): blue ticks for the contact, nothing comes back */
        if (!e && !(e = add_send(ob, key, sm, session_id))) {
            st = bz_fail(err, BZ_ERR_NOMEM, "mark read %s: out of memory", key);
        } else if (e->reached == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_UNSPECIFIED) {
            e->reached = BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_READ;
            atomic_fetch_add(&ob->stats->outbound_reads, 1);
            char what[32];
            snprintf(what, sizeof what, "read %zu", sm->n_read_wam_ids);
            log_send(ob, session_id, key, what);
        }
        blazz__v1__send_message__free_unpacked(sm, NULL);
        return st;
    }
    if (e) {
        /* A replay: never send twice, only say where the first send got to. */
        atomic_fetch_add(&ob->stats->outbound_duplicates, 1);
        if (e->reached != BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_UNSPECIFIED)
            st = schedule(ob, (scheduled){.due_ms = bz_wall_ms(), .entry = e,
                                          .status = e->reached}, err);
    } else if (!(e = add_send(ob, key, sm, session_id))) {
        st = bz_fail(err, BZ_ERR_NOMEM, "answer SendMessage %s: out of memory", key);
    } else {
        atomic_fetch_add(&ob->stats->outbound_received, 1);
        log_send(ob, session_id, key, "");
        st = schedule_answer(ob, e, sm->expires_at_ms, err);
    }
    blazz__v1__send_message__free_unpacked(sm, NULL);
    return st;
}

/* ---- the thread ------------------------------------------------------------ */

static int poll_timeout_ms(const bz_sim_outbound *ob)
{
    if (!ob->nheap)
        return POLL_MAX_MS;
    int64_t wait = ob->heap[0].due_ms - bz_wall_ms();
    return wait <= 0 ? 0 : wait < POLL_MAX_MS ? (int)wait : POLL_MAX_MS;
}

static void *run_outbound(void *arg)
{
    bz_sim_outbound *ob = arg;
    bz_error err;
    while (!atomic_load(&ob->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ob->consumer, poll_timeout_ms(ob));
        bz_status st = BZ_OK;
        if (m) {
            if (!m->err)
                st = handle_send(ob, m, &err);
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                bz_warn("wa.outbound consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
        }
        if (st == BZ_OK)
            st = publish_due(ob, &err);
        if (st != BZ_OK)
            bz_error_log("answering wa.outbound: %s", err.msg);
        bz_sim_publisher_poll(ob->pub, 0);
    }
    return NULL;
}

bz_status bz_sim_gateway_consumer(const bz_sim_options *o, bz_gateway_topic which,
                                  const char *group, rd_kafka_t **out, bz_error *err)
{
    char topic[BZ_TOPIC_NAME_MAX];
    bz_status st = bz_topic_gateway_name(o->topic_prefix, which, o->gateway_id, topic,
                                         sizeof topic, err);
    if (st != BZ_OK)
        return st;
    const char *const defaults[] = {"group.id", group,
                                    "auto.offset.reset", "earliest",
                                    "enable.partition.eof", "false",
                                    NULL};
    bz_kafka_settings settings = {.brokers = o->brokers, .client_id = "blazz-gateway-sim"};
    rd_kafka_conf_t *conf;
    if ((st = bz_kafka_conf_new(&settings, defaults, &conf, err)) != BZ_OK)
        return st;
    char errstr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return bz_fail(err, BZ_ERR_CONFIG, "%s consumer: %s", topic, errstr);
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr) {
        rd_kafka_destroy(rk);
        return bz_fail(err, BZ_ERR_CONFIG, "subscribe to %s: %s", topic, rd_kafka_err2str(rerr));
    }
    *out = rk;
    return BZ_OK;
}

static void free_outbound(bz_sim_outbound *ob)
{
    if (ob->consumer)
        bz_consumer_destroy(ob->consumer,
                            bz_consumer_leave_group(ob->consumer, CLOSE_TIMEOUT_MS, NULL, NULL));
    bz_sim_publisher_free(ob->pub);
    if (ob->sends_log)
        fclose(ob->sends_log);
    for (size_t b = 0; b < HASH_BUCKETS; b++)
        while (ob->buckets[b]) {
            send_entry *next = ob->buckets[b]->next;
            free_send(ob->buckets[b]);
            ob->buckets[b] = next;
        }
    free(ob->heap);
    bz_sim_arena_free(&ob->arena);
    free(ob);
}

bz_status bz_sim_outbound_start(const bz_sim_options *o, bz_sim_stats *stats,
                                const bz_sim_outbound_owner *owner, bz_sim_outbound **out,
                                bz_error *err)
{
    bz_sim_outbound *ob = calloc(1, sizeof *ob);
    if (!ob)
        return bz_fail(err, BZ_ERR_NOMEM, "outbound: out of memory");
    ob->o = o;
    ob->stats = stats;
    ob->owner = owner;
    ob->rng.state = o->seed ^ 0x6f7574626f756e64ull;
    bz_sim_arena_init(&ob->arena);
    atomic_init(&ob->stop, false);
    bz_status st = BZ_OK;
    if (o->sends_log && !(ob->sends_log = fopen(o->sends_log, "a")))
        st = bz_fail(err, BZ_ERR_IO, "open sends log %s: %s", o->sends_log, strerror(errno));
    if (st == BZ_OK)
        st = o->mode == BZ_SIM_MODE_HTTP ? bz_sim_publisher_new_http(o, stats, &ob->pub, err)
                                         : bz_sim_publisher_new_kafka(o, stats, &ob->pub, err);
    if (st == BZ_OK)
        st = bz_sim_gateway_consumer(o, BZ_GATEWAY_TOPIC_OUTBOUND, o->outbound_group,
                                      &ob->consumer, err);
    if (st == BZ_OK && pthread_create(&ob->thread, NULL, run_outbound, ob) != 0)
        st = bz_fail(err, BZ_ERR_INTERNAL, "outbound: cannot start thread");
    if (st != BZ_OK) {
        free_outbound(ob);
        return bz_wrap(err, "answer wa.outbound");
    }
    *out = ob;
    return BZ_OK;
}

void bz_sim_outbound_stop(bz_sim_outbound *ob)
{
    if (!ob)
        return;
    atomic_store(&ob->stop, true);
    pthread_join(ob->thread, NULL);
    atomic_store(&ob->stats->receipts_pending, ob->nheap);
    bz_error err;
    if (bz_sim_publisher_drain(ob->pub, 10000, &err) != BZ_OK)
        bz_warn("receipts: %s", err.msg);
    free_outbound(ob);
}
