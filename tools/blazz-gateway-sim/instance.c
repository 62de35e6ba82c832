/*
 * instance.c - one gateway instance under the backbone's command (see
 * instance.h).
 *
 * The main thread owns the commands consumer, the heartbeat, the lease, the
 * QR scans and the customer messages; the outbound thread (outbound.c)
 * answers sends. They share the session table under a mutex: the outbound
 * thread asks it which sends are this instance's and which epoch to stamp.
 */
#include "instance.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blazz/v1/session.pb-c.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/uuid.h"
#include "event.h"
#include "instance_history.h"
#include "kafka/consumer_close.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "outbound.h"
#include "publish.h"
#include "wa/crm_command.h"

#define SESSIONS_MAX 4096
#define QR_LIFETIME_MS 20000
#define POLL_MS 20
#define ACK_WAIT_MS 2000
#define CLOSE_TIMEOUT_MS 5000

typedef enum serving {
    NOT_SERVED = 0, /* known (newest epoch seen), not served here */
    SHOWING_QR,
    CONNECTED
} serving;

typedef struct session {
    char id[BZ_SIM_SESSION_ID_MAX];
    int64_t epoch; /* the newest seen in a command for this instance */
    serving state;
    int64_t qr_shown_ms;
    int64_t verified_ms; /* its credentials last found in or written to the store */
    char phone[20];
    bz_sim_history_limits sync_limits; /* of the command that started it */
    bz_sim_history_run sync;           /* the history sync of its last connect */
} session;

typedef struct instance {
    const bz_sim_options *o;
    bz_sim_stats *stats;
    pthread_mutex_t mu; /* sessions */
    session *sessions;
    size_t nsessions;
    char boot_id[BZ_UUID_STR_SIZE];
    int64_t started_ms, next_beat_ms, next_message_ms;
    int64_t lease_ms; /* the sending time of the last answered heartbeat (under mu) */
    int64_t era_ms;   /* the boot, or when a lapsed lease came back (main thread) */
    uint64_t messages;
    rd_kafka_t *commands;
    bz_sim_publisher *pub;
    bz_sim_outbound *outbound;
    bz_sim_outbound_owner owner;
    FILE *served_log;
    bz_sim_arena arena;
    bz_sim_rng rng;
} instance;

/* ---- the session table (under mu) ---------------------------------------------------- */

static session *find(instance *in, const char *id)
{
    for (size_t i = 0; i < in->nsessions; i++)
        if (strcmp(in->sessions[i].id, id) == 0)
            return &in->sessions[i];
    return NULL;
}

static session *find_or_add(instance *in, const char *id)
{
    session *s = find(in, id);
    if (s || in->nsessions == SESSIONS_MAX)
        return s;
    s = &in->sessions[in->nsessions++];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    return s;
}

/* Whether the sessions it serves are still its own at now: the backbone
 * answered a heartbeat sent within the lease (under mu). */
static int leased(const instance *in, int64_t now)
{
    return now - in->lease_ms <= in->o->lease_ms;
}

/* The outbound thread's questions (outbound.h). */
static int owns_send(void *ctx, const rd_kafka_message_t *m, const char *session_id)
{
    instance *in = ctx;
    rd_kafka_headers_t *hdrs = NULL;
    const void *value = NULL;
    size_t size = 0;
    char want[48], got[48] = "";
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "blazz-assignment", &value, &size) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        value && size < sizeof got) {
        memcpy(got, value, size);
        got[size] = '\0';
    }
    pthread_mutex_lock(&in->mu);
    session *s = find(in, session_id);
    int ours = s && s->state != NOT_SERVED && leased(in, bz_wall_ms());
    if (ours)
        snprintf(want, sizeof want, "%d:%" PRId64, in->o->instance_index, s->epoch);
    pthread_mutex_unlock(&in->mu);
    return ours && strcmp(got, want) == 0;
}

static int stamp_report(void *ctx, const char *session_id, Blazz__V1__InstanceRef *ref)
{
    instance *in = ctx;
    pthread_mutex_lock(&in->mu);
    session *s = find(in, session_id);
    int64_t epoch = s ? s->epoch : 0;
    pthread_mutex_unlock(&in->mu);
    ref->index = in->o->instance_index;
    ref->url = (char *)in->o->instance_url;
    ref->epoch = epoch;
    return epoch > 0;
}

/* ---- what it publishes ------------------------------------------------------------------ */

/* One line of the served log at wall time at_ms. */
static void log_served(instance *in, int64_t at_ms, const char *what, const session *s)
{
    if (!in->served_log)
        return;
    fprintf(in->served_log, "%lld %d %s %s %s %" PRId64 "\n", (long long)at_ms,
            in->o->instance_index, in->boot_id, what, s->id, s->epoch);
    fflush(in->served_log);
}

/* Seal ev (its envelope naming this instance under epoch) and publish it. */
static bz_status publish(instance *in, Blazz__V1__InboundEvent *ev, bz_sim_kind kind,
                         const char *session_id, int64_t epoch, bz_error *err)
{
    Blazz__V1__Envelope env = BLAZZ__V1__ENVELOPE__INIT;
    Blazz__V1__InstanceRef ref = BLAZZ__V1__INSTANCE_REF__INIT;
    ref.index = in->o->instance_index;
    ref.url = (char *)in->o->instance_url;
    ref.epoch = epoch;
    env.instance = &ref;
    ev->envelope = &env;
    bz_sim_event out = {0};
    bz_status st = bz_sim_event_seal(&in->arena, ev, kind, session_id, bz_wall_ms(), &out, err);
    if (st == BZ_OK)
        st = bz_sim_publish(in->pub, &out, err);
    bz_sim_event_clear(&out);
    bz_sim_arena_free(&in->arena);
    return st;
}

static bz_status report(instance *in, const session *s, Blazz__V1__SessionState state,
                        Blazz__V1__DisconnectReason reason, const char *details, bz_error *err)
{
    Blazz__V1__SessionStatus st = BLAZZ__V1__SESSION_STATUS__INIT;
    char qr[BZ_SIM_SESSION_ID_MAX + 80], path[512];
    st.status = state;
    st.reason = reason;
    st.details = (char *)(details ? details : "");
    if (state == BLAZZ__V1__SESSION_STATE__SESSION_STATE_QR_SCANNING) {
        snprintf(qr, sizeof qr, "2@%s,%" PRId64 ",%s", s->id, s->qr_shown_ms, in->boot_id);
        st.qr_code = qr;
        st.qr_expires_at_ms = s->qr_shown_ms + QR_LIFETIME_MS;
    }
    if (state == BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED) {
        st.phone_number = (char *)s->phone;
        if (in->o->storage_dir) {
            snprintf(path, sizeof path, "%s/%s", in->o->storage_dir, s->id);
            st.remote_session_path = path;
            st.session_storage = (char *)in->o->storage_name;
            st.session_storage_verified_at_ms = s->verified_ms;
        }
    }
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_SESSION_STATUS;
    ev.session_status = &st;
    return publish(in, &ev, BZ_SIM_KIND_SESSION_STATUS, s->id, s->epoch, err);
}

static bz_status heartbeat(instance *in, bz_error *err)
{
    Blazz__V1__SessionLease leases[SESSIONS_MAX], *ptrs[SESSIONS_MAX];
    char ids[SESSIONS_MAX][BZ_SIM_SESSION_ID_MAX];
    size_t n = 0;
    pthread_mutex_lock(&in->mu);
    for (size_t i = 0; i < in->nsessions; i++) {
        if (in->sessions[i].state == NOT_SERVED)
            continue;
        blazz__v1__session_lease__init(&leases[n]);
        snprintf(ids[n], sizeof ids[n], "%s", in->sessions[i].id);
        leases[n].session_id = ids[n];
        leases[n].epoch = in->sessions[i].epoch;
        ptrs[n] = &leases[n];
        n++;
    }
    pthread_mutex_unlock(&in->mu);
    Blazz__V1__InstanceRef ref = BLAZZ__V1__INSTANCE_REF__INIT;
    ref.index = in->o->instance_index;
    ref.url = (char *)in->o->instance_url;
    Blazz__V1__InstanceHeartbeat h = BLAZZ__V1__INSTANCE_HEARTBEAT__INIT;
    h.instance = &ref;
    h.capacity = in->o->capacity;
    h.boot_id = in->boot_id;
    h.started_at_ms = in->started_ms;
    h.sessions = ptrs;
    h.n_sessions = n;
    char *storages[] = {(char *)in->o->storage_name};
    if (in->o->storage_dir) {
        h.storages = storages;
        h.n_storages = 1;
    }
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_INSTANCE_HEARTBEAT;
    ev.instance_heartbeat = &h;
    return publish(in, &ev, BZ_SIM_KIND_SESSION_STATUS, "", 0, err);
}

/* A customer's message on a connected session. */
static bz_status customer_message(instance *in, const session *s, bz_error *err)
{
    char wam_id[96], phone[20], body[64];
    in->messages++;
    snprintf(wam_id, sizeof wam_id, "false_i%d-%.8s-%" PRIu64 "@c.us", in->o->instance_index,
             in->boot_id, in->messages);
    snprintf(phone, sizeof phone, "+62877%07" PRIu64, bz_sim_rng_below(&in->rng, 10000000));
    snprintf(body, sizeof body, "halo %" PRIu64, in->messages);
    Blazz__V1__InboundMessage m = BLAZZ__V1__INBOUND_MESSAGE__INIT;
    m.wam_id = wam_id;
    m.chat_type = BLAZZ__V1__CHAT_TYPE__CHAT_TYPE_PRIVATE;
    m.contact_phone = phone;
    m.body = body;
    m.message_type = BLAZZ__V1__MESSAGE_TYPE__MESSAGE_TYPE_TEXT;
    m.timestamp_ms = bz_wall_ms();
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE;
    ev.message = &m;
    return publish(in, &ev, BZ_SIM_KIND_MESSAGE_PRIVATE, s->id, s->epoch, err);
}

/* ---- serving a session ---------------------------------------------------------------- */

static void storage_path(const instance *in, const session *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", in->o->storage_dir, s->id);
}

static int has_credentials(const instance *in, session *s)
{
    if (!in->o->storage_dir)
        return 0;
    char path[512];
    storage_path(in, s, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(s->phone, sizeof s->phone, f) != NULL;
    fclose(f);
    s->phone[strcspn(s->phone, "\n")] = '\0';
    ok = ok && s->phone[0] == '+';
    if (ok)
        s->verified_ms = bz_wall_ms();
    return ok;
}

/* The credentials file: the phone, then the epoch it was written under;
 * written beside and renamed over, so that another instance reading it
 * (a LOGOUT's epoch check) never sees it half written. */
static void keep_credentials(const instance *in, session *s)
{
    if (!in->o->storage_dir)
        return;
    char path[512], part[530];
    storage_path(in, s, path, sizeof path);
    snprintf(part, sizeof part, "%s.%d.part", path, in->o->instance_index);
    FILE *f = fopen(part, "w");
    if (!f)
        return;
    fprintf(f, "%s\n%" PRId64 "\n", s->phone, s->epoch);
    if (fclose(f) == 0 && rename(part, path) == 0)
        s->verified_ms = bz_wall_ms();
    else
        unlink(part);
}

/* A logout under epoch removes the credentials written under it or an
 * older one, never a newer assignment's: the store is shared, and a
 * LOGOUT read late (after a lapse of the lease, or by the next boot) may
 * come after the session was linked again and placed elsewhere. */
static void forget_credentials(const instance *in, const session *s, int64_t epoch)
{
    if (!in->o->storage_dir)
        return;
    char path[512], line[64];
    storage_path(in, s, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    long long written = 0;
    if (fgets(line, sizeof line, f) && fgets(line, sizeof line, f))
        written = strtoll(line, NULL, 10);
    fclose(f);
    if (written <= epoch)
        unlink(path);
}

static bz_status connect_session(instance *in, session *s, bz_error *err)
{
    s->state = CONNECTED;
    keep_credentials(in, s);
    int64_t now = bz_wall_ms();
    bz_sim_history_start(&s->sync, &s->sync_limits, in->o, s->id, now);
    return report(in, s, BLAZZ__V1__SESSION_STATE__SESSION_STATE_CONNECTED, 0, NULL, err);
}

/* The next batch of s's history sync, when one is due. */
static bz_status sync_history(instance *in, session *s, int64_t now, bz_error *err)
{
    Blazz__V1__HistorySyncBatch *b =
        bz_sim_history_next(&s->sync, &in->arena, now, bz_sim_stats_in_flight(in->stats));
    if (!b) {
        if (!in->arena.failed)
            return BZ_OK;
        bz_sim_arena_free(&in->arena);
        return bz_fail(err, BZ_ERR_NOMEM, "history batch of session %s: out of memory", s->id);
    }
    Blazz__V1__InboundEvent ev = BLAZZ__V1__INBOUND_EVENT__INIT;
    ev.payload_case = BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC;
    ev.history_sync = b;
    return publish(in, &ev, BZ_SIM_KIND_HISTORY_SYNC, s->id, s->epoch, err);
}

/* Serve s under epoch: resume it from its credentials, or show a QR code. */
static bz_status start(instance *in, session *s, bz_error *err)
{
    if (s->state == NOT_SERVED)
        log_served(in, bz_wall_ms(), "start", s);
    if (has_credentials(in, s))
        return connect_session(in, s, err);
    s->state = SHOWING_QR;
    s->qr_shown_ms = bz_wall_ms();
    snprintf(s->phone, sizeof s->phone, "+62811%07" PRIu64, bz_hash_string(s->id) % 10000000);
    return report(in, s, BLAZZ__V1__SESSION_STATE__SESSION_STATE_QR_SCANNING, 0, NULL, err);
}

/* Let s go; it was served until at_ms. */
static void stop_at(instance *in, session *s, int64_t at_ms)
{
    if (s->state == NOT_SERVED)
        return;
    s->state = NOT_SERVED;
    s->sync.active = 0;
    log_served(in, at_ms, "stop", s);
}

static void stop(instance *in, session *s)
{
    stop_at(in, s, bz_wall_ms());
}

/* A start not made is reported as the session lost under the command's
 * epoch: if the session is still this instance's, the backbone asks again
 * once it answers the heartbeats (apply_heartbeat.c); if not, the report
 * is refused there (under mu). */
static bz_status say_not_started(instance *in, const session *s, const char *why, bz_error *err)
{
    return report(in, s, BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED,
                  BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_INSTANCE_RESTART, why, err);
}

/* A restart's disconnect, or a move's when the credentials it should resume
 * from are not in the store: the session must be linked again (a QR code
 * follows), and the CRM is told why. */
static bz_status report_restart(instance *in, session *s, bz_error *err)
{
    if (!in->o->storage_dir || has_credentials(in, s))
        return report(in, s, BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED,
                      BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_INSTANCE_RESTART,
                      "restart requested", err);
    char path[512], details[600];
    storage_path(in, s, path, sizeof path);
    snprintf(details, sizeof details, "no credentials at %s: the session must be linked again",
             path);
    return report(in, s, BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED,
                  BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_CREDENTIALS_MISSING, details,
                  err);
}

static int is_start(const Blazz__V1__SessionCommand *c)
{
    return c->action == BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_CREATE ||
           c->action == BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_RESTART;
}

/* A start decided in an earlier era of this run's lease: the backbone may
 * have moved the session since (declaring this instance dead is what ended
 * that era), so it is set aside and said not made. */
static bz_status set_aside(instance *in, const Blazz__V1__SessionCommand *c, bz_error *err)
{
    pthread_mutex_lock(&in->mu);
    session *s = find_or_add(in, c->envelope->session_id);
    bz_status st = BZ_OK;
    if (s && s->state == NOT_SERVED && c->assigned_instance->epoch >= s->epoch) {
        s->epoch = c->assigned_instance->epoch;
        st = say_not_started(in, s, "decided before the instance's lease came back", err);
    }
    pthread_mutex_unlock(&in->mu);
    return st;
}

static bz_status obey(instance *in, const Blazz__V1__SessionCommand *c, bz_error *err)
{
    const char *id = c->envelope ? c->envelope->session_id : "";
    int64_t epoch = c->assigned_instance->epoch;
    pthread_mutex_lock(&in->mu);
    session *s = find_or_add(in, id);
    bz_status st = BZ_OK;
    if (!s || epoch < s->epoch) {
        pthread_mutex_unlock(&in->mu);
        return BZ_OK; /* an older assignment's command, or no room to remember it */
    }
    /* served here already: a RESTART, or a newer assignment of the same
     * session to this instance (the backbone moved it away and back, or
     * re-placed it after declaring this instance dead during an outage),
     * which waits for the session's state under its own epoch */
    int restarting = s->state != NOT_SERVED &&
                     (c->action == BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_RESTART ||
                      epoch > s->epoch);
    s->epoch = epoch;
    switch (c->action) {
    case BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_CREATE:
    case BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_RESTART:
        bz_sim_history_limits_of(c, &s->sync_limits);
        if (!leased(in, bz_wall_ms())) {
            st = say_not_started(in, s, "the instance holds no lease", err);
            stop(in, s);
            break;
        }
        if (restarting ||
            (c->action == BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_RESTART &&
             s->state == NOT_SERVED && in->o->storage_dir && !has_credentials(in, s)))
            st = report_restart(in, s, err);
        if (st == BZ_OK && (restarting || s->state == NOT_SERVED))
            st = start(in, s, err);
        break;
    case BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_LOGOUT:
    case BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_DESTROY:
        forget_credentials(in, s, epoch);
        if (s->state != NOT_SERVED)
            st = report(in, s, BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED,
                        BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_USER_INITIATED,
                        "logged out", err);
        stop(in, s);
        break;
    case BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_STOP:
        stop(in, s);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&in->mu);
    return st;
}

/* The backbone applied one of this run's heartbeats: the lease runs from
 * when that beat was sent. An answer that brings a lapsed lease back opens
 * a new era. */
static void renew_lease(instance *in, const Blazz__V1__SessionCommand *c)
{
    if (!c->assigned_instance || c->assigned_instance->index != in->o->instance_index ||
        !c->boot_id || strcmp(c->boot_id, in->boot_id) != 0)
        return;
    int64_t now = bz_wall_ms();
    pthread_mutex_lock(&in->mu);
    if (c->beat_sent_at_ms > in->lease_ms) {
        if (!leased(in, now) && now - c->beat_sent_at_ms <= in->o->lease_ms)
            in->era_ms = now;
        in->lease_ms = c->beat_sent_at_ms;
    }
    pthread_mutex_unlock(&in->mu);
}

/* Whether the instance may serve a session of this id: one it can name its
 * credentials file after (a plain file name, never a path: the backbone
 * sends no other, but the file is ours to guard) and hold whole. */
static int servable(const char *id)
{
    return bz_session_id_valid(id) && strlen(id) < BZ_SIM_SESSION_ID_MAX;
}

static bz_status read_command(instance *in, const rd_kafka_message_t *m, bz_error *err)
{
    Blazz__V1__SessionCommand *c =
        blazz__v1__session_command__unpack(NULL, m->len, (const uint8_t *)m->payload);
    if (!c) {
        bz_warn("session command at offset %lld: not a SessionCommand; skipped",
                (long long)m->offset);
        return BZ_OK;
    }
    bz_status st = BZ_OK;
    if (c->action == BLAZZ__V1__SESSION_ACTION__SESSION_ACTION_LEASE) {
        renew_lease(in, c);
        blazz__v1__session_command__free_unpacked(c, NULL);
        return BZ_OK;
    }
    /* A start decided before this process started was for its previous
     * run (a restart resumes the group's committed offsets): the backbone
     * re-commands what a restarted instance must serve when its first
     * heartbeat arrives (apply_heartbeat.c), and acting on the old ones
     * would start sessions moved elsewhere since. One decided before the
     * lease's current era is set aside for the same reason: a consumer
     * that fell behind (a broker lost, a partition moving) reads it late.
     * A LOGOUT, STOP or DESTROY only lets go, so it is obeyed whenever it
     * comes: a logout the backbone parked is never sent again. */
    int64_t decided = c->envelope ? c->envelope->occurred_at_ms : 0;
    int ours = c->envelope && c->assigned_instance &&
               c->assigned_instance->index == in->o->instance_index;
    int previous_run = is_start(c) && decided > 0 && decided < in->started_ms;
    if (ours && !previous_run && !servable(c->envelope->session_id))
        bz_error_log("session command at offset %lld: session id \"%.*s\" is no file name of at "
                     "most %d bytes (wa/crm_command.h); skipped",
                     (long long)m->offset, BZ_SIM_SESSION_ID_MAX, c->envelope->session_id,
                     BZ_SIM_SESSION_ID_MAX - 1);
    else if (ours && !previous_run)
        st = is_start(c) && decided > 0 && decided < in->era_ms ? set_aside(in, c, err)
                                                                : obey(in, c, err);
    blazz__v1__session_command__free_unpacked(c, NULL);
    return st;
}

/* ---- the clock's work -------------------------------------------------------------------- */

/* No heartbeat sent within lease_ms was answered: the backbone may have
 * declared this instance dead and moved every session; each is reported
 * lost under the epoch held (and refused there) and let go, before
 * anything else is sent. Nothing was served past the lease's end (sends
 * and messages ask for it), so the served log says it ended then, even
 * when the process was frozen long after. */
static bz_status keep_lease(instance *in, int64_t now, bz_error *err)
{
    pthread_mutex_lock(&in->mu);
    if (leased(in, now)) {
        pthread_mutex_unlock(&in->mu);
        return BZ_OK;
    }
    bz_status st = BZ_OK;
    size_t let_go = 0;
    for (size_t i = 0; i < in->nsessions && st == BZ_OK; i++) {
        session *s = &in->sessions[i];
        if (s->state == NOT_SERVED)
            continue;
        st = report(in, s, BLAZZ__V1__SESSION_STATE__SESSION_STATE_DISCONNECTED,
                    BLAZZ__V1__DISCONNECT_REASON__DISCONNECT_REASON_INSTANCE_RESTART,
                    "the instance lost its lease", err);
        stop_at(in, s, in->lease_ms + in->o->lease_ms);
        let_go++;
    }
    int64_t since = now - in->lease_ms;
    pthread_mutex_unlock(&in->mu);
    if (st == BZ_OK && let_go > 0)
        bz_warn("instance %d: no heartbeat answered for %lld ms; let its %zu sessions go",
                in->o->instance_index, (long long)since, let_go);
    return st;
}

static bz_status beat(instance *in, int64_t now, bz_error *err)
{
    if (now < in->next_beat_ms)
        return BZ_OK;
    in->next_beat_ms = now + in->o->heartbeat_ms;
    return heartbeat(in, err);
}

static int scanned(const instance *in, const session *s, int64_t now)
{
    if (in->o->scan_after_ms > 0 && now - s->qr_shown_ms >= in->o->scan_after_ms)
        return 1;
    if (!in->o->scan_dir)
        return 0;
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", in->o->scan_dir, s->id);
    return stat(path, &sb) == 0;
}

static bz_status scan_and_talk(instance *in, int64_t now, bz_error *err)
{
    bz_status st = BZ_OK;
    pthread_mutex_lock(&in->mu);
    for (size_t i = 0; i < in->nsessions && st == BZ_OK; i++) {
        session *s = &in->sessions[i];
        if (s->state == SHOWING_QR && !scanned(in, s, now) &&
            now - s->qr_shown_ms >= QR_LIFETIME_MS) {
            s->qr_shown_ms = now; /* the code expired: a new one, as WhatsApp refreshes it */
            st = report(in, s, BLAZZ__V1__SESSION_STATE__SESSION_STATE_QR_SCANNING, 0, NULL, err);
        } else if (s->state == SHOWING_QR && scanned(in, s, now)) {
            st = report(in, s, BLAZZ__V1__SESSION_STATE__SESSION_STATE_AUTHENTICATED, 0, NULL,
                        err);
            if (st == BZ_OK)
                st = connect_session(in, s, err);
        } else if (s->state == CONNECTED) {
            st = sync_history(in, s, now, err);
        }
    }
    size_t connected = 0;
    for (size_t i = 0; i < in->nsessions; i++)
        connected += in->sessions[i].state == CONNECTED;
    if (st == BZ_OK && in->o->rate > 0 && connected > 0 && now >= in->next_message_ms) {
        in->next_message_ms = now + (int64_t)(1000.0 / in->o->rate);
        uint64_t k = bz_sim_rng_below(&in->rng, connected);
        for (size_t i = 0; i < in->nsessions; i++)
            if (in->sessions[i].state == CONNECTED && k-- == 0) {
                st = customer_message(in, &in->sessions[i], err);
                break;
            }
    }
    pthread_mutex_unlock(&in->mu);
    return st;
}

/* ---- start and stop ----------------------------------------------------------------------- */

static bz_status commands_consumer(const bz_sim_options *o, rd_kafka_t **out, bz_error *err)
{
    char group[BZ_TOPIC_NAME_MAX];
    if ((size_t)snprintf(group, sizeof group, "%s.commands", o->outbound_group) >= sizeof group)
        return bz_fail(err, BZ_ERR_CONFIG, "--outbound-group %s: too long", o->outbound_group);
    return bz_sim_gateway_consumer(o, BZ_GATEWAY_TOPIC_COMMANDS, group, out, err);
}

static bz_status start_instance(instance *in, bz_error *err)
{
    const bz_sim_options *o = in->o;
    bz_status st = bz_uuid_v4(in->boot_id, err);
    if (st == BZ_OK && !(in->sessions = calloc(SESSIONS_MAX, sizeof *in->sessions)))
        st = bz_fail(err, BZ_ERR_NOMEM, "instance: out of memory");
    if (st == BZ_OK && o->served_log && !(in->served_log = fopen(o->served_log, "a")))
        st = bz_fail(err, BZ_ERR_IO, "open served log %s: %s", o->served_log, strerror(errno));
    if (st == BZ_OK)
        st = bz_sim_publisher_new_kafka(o, in->stats, &in->pub, err);
    if (st == BZ_OK)
        st = commands_consumer(o, &in->commands, err);
    in->owner = (bz_sim_outbound_owner){.owns = owns_send, .stamp = stamp_report, .ctx = in};
    if (st == BZ_OK && o->answer_outbound)
        st = bz_sim_outbound_start(o, in->stats, &in->owner, &in->outbound, err);
    in->started_ms = in->lease_ms = in->era_ms = bz_wall_ms();
    return st;
}

/* Stopping: every session is let go before the teardown, which may take
 * seconds (a consumer leaving its group, the producer draining); the
 * outbound thread takes no new send from then on (a receipt it had due
 * may still go out before it is joined), and the served log says the
 * serving ended here, not when the process exits. */
static void let_every_session_go(instance *in)
{
    pthread_mutex_lock(&in->mu);
    for (size_t i = 0; i < in->nsessions; i++)
        stop(in, &in->sessions[i]);
    pthread_mutex_unlock(&in->mu);
}

static void free_instance(instance *in)
{
    let_every_session_go(in);
    bz_sim_outbound_stop(in->outbound);
    if (in->commands)
        bz_consumer_destroy(in->commands,
                            bz_consumer_leave_group(in->commands, CLOSE_TIMEOUT_MS, NULL, NULL));
    bz_error err;
    if (in->pub && bz_sim_publisher_drain(in->pub, ACK_WAIT_MS, &err) != BZ_OK)
        bz_warn("instance: %s", err.msg);
    bz_sim_publisher_free(in->pub);
    if (in->served_log)
        fclose(in->served_log);
    free(in->sessions);
    bz_sim_arena_free(&in->arena);
    pthread_mutex_destroy(&in->mu);
}

bz_status bz_sim_instance_run(const bz_sim_options *o, bz_sim_stats *stats, bz_error *err)
{
    instance in = {.o = o, .stats = stats, .rng = {.state = o->seed ^ (uint64_t)o->instance_index}};
    pthread_mutex_init(&in.mu, NULL);
    bz_sim_arena_init(&in.arena);
    bz_status st = start_instance(&in, err);
    int64_t deadline = bz_monotonic_ms() + (int64_t)o->duration_s * 1000;
    while (st == BZ_OK && !bz_shutdown_requested() && bz_monotonic_ms() < deadline) {
        int64_t now = bz_wall_ms();
        st = keep_lease(&in, now, err);
        if (st == BZ_OK)
            st = beat(&in, now, err);
        rd_kafka_message_t *m = st == BZ_OK ? rd_kafka_consumer_poll(in.commands, POLL_MS) : NULL;
        if (m && !m->err)
            st = read_command(&in, m, err);
        else if (m && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            bz_warn("session commands: %s", rd_kafka_message_errstr(m));
        if (m)
            rd_kafka_message_destroy(m);
        if (st == BZ_OK)
            st = keep_lease(&in, bz_wall_ms(), err);
        if (st == BZ_OK)
            st = scan_and_talk(&in, bz_wall_ms(), err);
        bz_sim_publisher_poll(in.pub, 0);
    }
    free_instance(&in);
    return st;
}
