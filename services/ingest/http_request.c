/*
 * http_request.c - one request to ingest's public HTTP endpoints, from its
 * request line to its answer (see http_api.h for the endpoints, and
 * http_request.h for what the server shares with it).
 *
 * A request goes through the access handler several times:
 *  1. headers complete: route, then everything judged without the body:
 *     404/405, credentials that are not even well formed (401: a signature
 *     header that is not a digest of the scheme's length, an invalid
 *     X-Blazz-Gateway, for the CRM an Authorization that is not "Bearer
 *     bzk_<key_id>_<secret>"), a declared body over max_body_bytes (413),
 *     and a declared body that would not fit in its address's share or the
 *     buffered-bytes bound now (503 with Retry-After). Nothing is reserved
 *     for the declared length: anyone can announce one. An answer queued
 *     now makes MHD skip the body and close the connection;
 *  2. body chunks, copied into the request's buffer, which takes room from
 *     the guard as it grows (http_guard.h), never past the declared length
 *     (max_body_bytes for a chunked body). Room refused half-way: the
 *     buffer is dropped and given back, the rest of the body is read and
 *     discarded, and step 3 answers 503 (libmicrohttpd cannot answer
 *     before the body is complete);
 *  3. body complete: verify the signature over the exact bytes received
 *     (the request's bytes then count as authenticated work), count the
 *     request against its gateway's rate (gateway_rate.h: 429), parse,
 *     validate, produce; then the connection is suspended until the broker
 *     settled the records (http_producer.h), with no thread waiting;
 *  4. resumed: answer 202/200, or 503 when not every record was
 *     acknowledged.
 * MHD's completion callback gives the request's bytes back and frees
 * whatever it still holds.
 *
 * The CRM's endpoints (crm_api.h) share steps 1 and 2 (no signature: an API
 * key, checked by the worker, which tells the guard when it verified); at
 * step 3 the request goes to a CRM worker with its connection suspended,
 * and step 4 sends the answer the worker left.
 */
#include "http_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/uuid.h"
#include "crm/api_keys.h"
#include "crm/crm_api.h"
#include "crm/crm_routes.h"
#include "events/event_id.h"
#include "events/normalize.h"
#include "gateway/gateway_json.h"
#include "gateway/gateway_rate.h"
#include "http_respond.h"
#include "media_edge/media_api.h"
#include "meta/meta_dead_letter.h"
#include "meta/meta_handshake.h"
#include "meta/meta_webhook.h"

typedef struct request {
    ing_http_api *api;
    ing_http_conn *tracker; /* its connection's, NULL when the guard refused it */
    double started;
    int admitted;          /* step 1 done */
    int meta;              /* POST /v1/meta/webhook, else POST /v1/events */
    ing_crm_handler_fn crm_handler; /* a CRM endpoint's (crm_routes.h), else NULL */
    int crm_reads_only;             /* its method is GET: the route only reads */
    ing_crm_job *crm_job;   /* while a CRM worker has it, then its answer */
    ing_media_request *media; /* a media endpoint's request (media_api.h), else NULL */
    int media_body_allowed; /* its proven sender's body got its time (http_guard.h) */
    bz_bytes body;         /* NUL-terminated once anything was taken */
    size_t expected;       /* the declared length, or max_body_bytes when chunked */
    int too_large;
    int refused_room;      /* its buffer was refused room half-way: 503 */
    ing_http_acks *acks;    /* while its records are with the broker */
    size_t events;
    char gateway[BZ_GATEWAY_ID_MAX + 1]; /* the signer, once verified */
    char event_id[BZ_UUID_STR_SIZE];
    char trace_id[160];
} request;

static const char *path_of(const request *rq)
{
    return rq->crm_handler ? "crm" : rq->meta ? "meta" : "http";
}

/* ---- responses ---------------------------------------------------------- */

static const char *signature_header(const request *rq)
{
    return rq->meta ? "X-Hub-Signature-256" : "X-WhatsApp-Signature";
}

/* A refused gateway (401, the reason from gateway_auth.h, naming the
 * header at fault), or 503 when the gateways' keys are not read yet. */
static enum MHD_Result respond_gateway_error(ing_http_api *api, struct MHD_Connection *conn,
                                             const request *rq, const bz_error *err)
{
    if (err->code != BZ_ERR_INVALID)
        return ing_http_respond_error(api->cfg.metrics, conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                      path_of(rq), "unavailable", "",
                                      "gateways could not be checked; nothing was accepted, retry");
    const char *reason = err->reason ? err->reason : "signature_mismatch";
    const char *field = strcmp(reason, "signature_mismatch") == 0 ? signature_header(rq)
                        : strstr(reason, "timestamp")             ? "X-Blazz-Timestamp"
                        : strcmp(reason, "unknown_key") == 0      ? "X-Blazz-Key-Id"
                                                                  : "X-Blazz-Gateway";
    return ing_http_respond_error(api->cfg.metrics, conn, MHD_HTTP_UNAUTHORIZED, path_of(rq),
                                  reason, field, err->msg);
}

/* The one body-size rule, applied to a declared length and to the bytes
 * received alike. */
static int over_body_limit(const ing_http_api *api, size_t bytes)
{
    return bytes > api->cfg.max_body_bytes;
}

/* ---- after the broker --------------------------------------------------- */

static enum MHD_Result answer_outcome(ing_http_api *api, struct MHD_Connection *conn,
                                      const request *rq, ing_http_outcome outcome)
{
    if (outcome != ING_HTTP_ACKNOWLEDGED) {
        const char *why = outcome == ING_HTTP_NOT_ROUTED
                              ? "the event could not be routed now (its owner's lookup failed "
                                "or was slow, or ingest is overloaded)"
                          : outcome == ING_HTTP_STOPPING
                              ? "ingest is stopping and did not wait for the broker"
                              : "the broker did not acknowledge the event";
        if (rq->meta)
            bz_warn("Meta webhook answered 503: %s", why);
        else
            bz_log_event(BZ_LOG_WARN, rq->event_id, rq->trace_id,
                         "gateway event answered 503: %s", why);
        return ing_http_respond_unavailable(api->cfg.metrics, conn, path_of(rq), why);
    }
    if (api->cfg.metrics)
        bz_counter_add(bz_counter_family_with(api->cfg.metrics->accepted, path_of(rq)),
                       rq->events);
    if (rq->meta)
        return ing_http_respond(conn, MHD_HTTP_OK, "application/json", "{\"status\":\"ok\"}\n");
    char body[128];
    snprintf(body, sizeof body, "{\"status\":\"accepted\",\"event_id\":\"%s\"}\n", rq->event_id);
    return ing_http_respond(conn, MHD_HTTP_ACCEPTED, "application/json", body);
}

/* Answer now if the broker settled acks already; otherwise the connection
 * sleeps until it does (answer_after_broker). */
static enum MHD_Result await_broker(ing_http_api *api, struct MHD_Connection *conn, request *rq,
                                    ing_http_acks *acks)
{
    ing_http_outcome outcome = ING_HTTP_NOT_ROUTED;
    if (!acks || ing_http_acks_await(api->producer, acks, conn, &outcome))
        return answer_outcome(api, conn, rq, outcome);
    rq->acks = acks;
    return MHD_YES;
}

static enum MHD_Result answer_after_broker(ing_http_api *api, struct MHD_Connection *conn,
                                           request *rq)
{
    ing_http_outcome outcome = ing_http_acks_release(api->producer, rq->acks);
    rq->acks = NULL;
    return answer_outcome(api, conn, rq, outcome);
}

/* ---- handlers ----------------------------------------------------------- */

static int is_protobuf(struct MHD_Connection *conn)
{
    const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_TYPE);
    return type && strncasecmp(type, "application/x-protobuf", 22) == 0;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* What the request's headers say about its sender (gateway_auth.h): the
 * gateway X-Blazz-Gateway names (NULL when absent: the unnamed gateway),
 * or the meta gateway. */
static ing_gateway_claim claim_of(const ing_http_api *api, struct MHD_Connection *conn,
                                  const request *rq)
{
    return (ing_gateway_claim){
        .gateway_id = rq->meta ? api->cfg.meta_gateway : header(conn, "X-Blazz-Gateway"),
        .kind = rq->meta ? ING_GATEWAY_META : ING_GATEWAY_WEBJS,
        .timestamp = rq->meta ? NULL : header(conn, "X-Blazz-Timestamp"),
        .key_id = rq->meta ? NULL : header(conn, "X-Blazz-Key-Id"),
        .signature = header(conn, signature_header(rq))};
}

/* A POST whose signature matches no key of the gateway it names is
 * refused: 1 with *answer the refusal; 0 when the signer (rq->gateway) is
 * known. */
static int signer_refused(ing_http_api *api, struct MHD_Connection *conn, request *rq,
                          enum MHD_Result *answer)
{
    bz_error err;
    ing_gateway_claim claim = claim_of(api, conn, rq);
    if (ing_gateway_auth_verify(api->cfg.gateways, &claim, rq->body.data, rq->body.len,
                                bz_wall_ms(), rq->gateway, &err) == BZ_OK)
        return 0;
    *answer = respond_gateway_error(api, conn, rq, &err);
    return 1;
}

/* An event may come only from the gateway serving its session. A session
 * nobody has is let through: the router dead-letters it unknown_session.
 * A heartbeat has no session: it is the signer's (the router says so). */
static bz_status check_owner(ing_http_api *api, const char *gateway_id,
                             const Blazz__V1__InboundEvent *ev, bz_error *err)
{
    if (ev->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_INSTANCE_HEARTBEAT)
        return BZ_OK;
    char owner[BZ_GATEWAY_ID_MAX + 1];
    const char *session = ev->envelope->session_id;
    bz_status st = ing_gateway_auth_owner(api->cfg.gateways, session, owner, err);
    if (st == BZ_ERR_NOT_FOUND)
        return BZ_OK;
    if (st == BZ_OK && strcmp(owner, gateway_id) != 0)
        return bz_reject(err, "session_not_owned", "gateway %s does not serve session %s",
                         gateway_id, session);
    return st;
}

static bz_status decode_gateway_body(struct MHD_Connection *conn, const request *rq,
                                     Blazz__V1__InboundEvent **out, bz_error *err)
{
    if (!is_protobuf(conn))
        return ing_gateway_json_parse(rq->body.data, rq->body.len, bz_wall_ms(), out, err);
    Blazz__V1__InboundEvent *ev =
        blazz__v1__inbound_event__unpack(NULL, rq->body.len, (const uint8_t *)rq->body.data);
    if (!ev)
        return bz_reject(err, "decode_error", "field body: not a blazz.v1.InboundEvent");
    *out = ev;
    return BZ_OK;
}

static enum MHD_Result accept_gateway_event(ing_http_api *api, struct MHD_Connection *conn,
                                            request *rq)
{
    bz_error err;
    const char *gateway_id = rq->gateway;
    Blazz__V1__InboundEvent *ev = NULL;
    bz_status st = decode_gateway_body(conn, rq, &ev, &err);
    char conversation[ING_CONVERSATION_MAX];
    ing_norm_opts opts = {.default_cc = api->cfg.default_cc, .now_ms = bz_wall_ms(),
                                .max_future_ms = api->cfg.max_future_ms};
    /* the seeds' notifier names its session by the account's numeric id */
    if (st == BZ_OK && ev->envelope)
        st = ing_gateway_auth_name_session_by_account(api->cfg.gateways, gateway_id,
                                                      &ev->envelope->session_id, &err);
    if (st == BZ_OK)
        st = ing_event_id_assign(ev, &err);
    if (st == BZ_OK)
        st = ing_normalize(ev, &opts, conversation, &err);
    if (st == BZ_OK)
        st = ing_http_router_check_size(ev, &err);
    if (st == BZ_OK && check_owner(api, gateway_id, ev, &err) != BZ_OK) {
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
        return respond_gateway_error(api, conn, rq, &err);
    }
    if (st != BZ_OK) {
        if (ev)
            blazz__v1__inbound_event__free_unpacked(ev, NULL);
        return ing_http_respond_invalid(api->cfg.metrics, conn, "http", &err);
    }
    ing_http_acks *acks = ing_http_acks_new();
    rq->events = 1;
    snprintf(rq->event_id, sizeof rq->event_id, "%s", ev->envelope->event_id);
    snprintf(rq->trace_id, sizeof rq->trace_id, "%s", ev->envelope->trace_id);
    if (acks)
        ing_http_router_route(api->router, ev, gateway_id, conversation, "http", acks);
    else
        blazz__v1__inbound_event__free_unpacked(ev, NULL);
    return await_broker(api, conn, rq, acks);
}

/* Meta's sessions are checked for ownership by the router only: Meta
 * redelivers a whole notification that was not answered 200, so what is
 * wrong inside one is dead-lettered, not refused (§5.1). */
static enum MHD_Result accept_meta_notification(ing_http_api *api, struct MHD_Connection *conn,
                                                request *rq)
{
    bz_error err;
    ing_events events = {0};
    ing_meta_unhandled unhandled = {0};
    if (ing_meta_parse(rq->body.data, rq->body.len, &events, &unhandled, &err) != BZ_OK) {
        ing_events_free(&events);
        ing_meta_unhandled_free(&unhandled);
        return ing_http_respond_invalid(api->cfg.metrics, conn, "meta", &err);
    }
    ing_http_acks *acks = ing_http_acks_new();
    ing_meta_dead_letters dead = {.producer = api->producer, .dlq_topic = api->cfg.dlq_topic,
                                  .raw_topic = api->cfg.raw_topic,
                                  .gateway = api->cfg.meta_gateway, .metrics = api->cfg.metrics};
    if (acks)
        ing_meta_dead_letter_unhandled(&dead, &unhandled, acks);
    ing_meta_unhandled_free(&unhandled);
    for (size_t i = 0; acks && i < events.count; i++) {
        Blazz__V1__InboundEvent *ev = events.items[i];
        if (api->cfg.metrics)
            bz_counter_inc(bz_counter_family_with(api->cfg.metrics->received, "meta"));
        if (ing_event_id_assign(ev, &err) != BZ_OK) {
            ing_http_acks_expect(api->producer, acks);
            ing_http_acks_settle(api->producer, acks, ING_HTTP_NOT_ROUTED);
            break;
        }
        events.items[i] = NULL;
        ing_http_router_route(api->router, ev, api->cfg.meta_gateway, NULL, "meta", acks);
    }
    rq->events = events.count;
    ing_events_free(&events);
    return await_broker(api, conn, rq, acks);
}

/* ---- step 1: what the headers alone decide -------------------------------- */

/* Bytes the body will need: max_body_bytes for a chunked body, whose
 * length nobody knows yet (and which overrides any Content-Length), else
 * its Content-Length, else 0. */
static size_t body_bytes_expected(const ing_http_api *api, struct MHD_Connection *conn)
{
    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return api->cfg.max_body_bytes;
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    return length ? (size_t)strtoull(length, NULL, 10) : 0;
}

/* Whether the declared body can be held: refused over max_body_bytes
 * (413), or when it would not fit now in its address's share or the
 * buffered-bytes bound (503). Nothing is taken: the body takes room as it
 * arrives (step 2). */
static enum MHD_Result judge_body_size(ing_http_api *api, struct MHD_Connection *conn,
                                       request *rq)
{
    rq->expected = body_bytes_expected(api, conn);
    if (over_body_limit(api, rq->expected))
        return rq->crm_handler
                   ? ing_crm_api_refuse_size(api->cfg.crm, conn, api->cfg.max_body_bytes)
                   : ing_http_respond_too_large(api->cfg.metrics, conn, path_of(rq),
                                                api->cfg.max_body_bytes);
    if (ing_http_guard_room_for(api->guard, rq->tracker, rq->expected) != ING_HTTP_ROOM)
        return ing_http_respond_busy(api->cfg.metrics, conn, path_of(rq));
    return MHD_YES;
}

/* A CRM request: its key's shape, then a body's type (a body is JSON,
 * declared so: anything else is refused before a byte of it is read), then
 * its size. */
static enum MHD_Result admit_crm(ing_http_api *api, struct MHD_Connection *conn, request *rq)
{
    if (!ing_api_keys_well_formed(header(conn, MHD_HTTP_HEADER_AUTHORIZATION)))
        return ing_crm_api_refuse_key(api->cfg.crm, conn);
    const char *type = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (body_bytes_expected(api, conn) > 0 && !ing_crm_api_is_json(type))
        return ing_crm_api_refuse_content_type(api->cfg.crm, conn, type);
    return judge_body_size(api, conn, rq);
}

/* A gateway's claim is judged before its body is read (gateway_auth.h: a
 * signature of its scheme's shape, a known gateway with a key valid now, a
 * fresh timestamp; no HMAC). 1 with *answer the refusal when it fails. */
static int claim_refused(ing_http_api *api, struct MHD_Connection *conn, const request *rq,
                         enum MHD_Result *answer)
{
    bz_error err;
    ing_gateway_claim claim = claim_of(api, conn, rq);
    if (ing_gateway_auth_admit(api->cfg.gateways, &claim, bz_wall_ms(), &err) == BZ_OK)
        return 0;
    *answer = respond_gateway_error(api, conn, rq, &err);
    return 1;
}

/* A media body whose sender is proven before it gets the time its length
 * needs at the slowest rate allowed; an unproven one keeps the request
 * deadline, as every other request does. */
static void allow_proven_media_body(ing_http_api *api, request *rq)
{
    uint64_t bytes = rq->media_body_allowed ? 0 : ing_media_request_proven_body(rq->media);
    if (bytes == 0)
        return;
    ing_http_guard_allow_body(api->guard, rq->tracker, bytes);
    rq->media_body_allowed = 1;
}

/* Every call but the first of a media request: the call without data that
 * ends it (not the resume after its key check) means it arrived whole. */
static enum MHD_Result step_media(ing_http_api *api, struct MHD_Connection *conn,
                                  const char *method, const char *data, size_t *size,
                                  request *rq)
{
    if (*size == 0 && !ing_media_request_checking_key(rq->media) &&
        !ing_http_guard_request_received(api->guard, rq->tracker))
        return MHD_NO; /* cut at its deadline meanwhile */
    enum MHD_Result answer = ing_media_request_step(rq->media, conn, method, data, size);
    allow_proven_media_body(api, rq);
    return answer;
}

static enum MHD_Result admit(ing_http_api *api, struct MHD_Connection *conn, const char *url,
                             const char *method, request *rq)
{
    rq->admitted = 1;
    if (api->cfg.media && ing_media_api_route(url)) {
        rq->media = ing_media_request_new(api->cfg.media, url);
        if (!rq->media)
            return MHD_NO;
        enum MHD_Result answer = ing_media_request_step(rq->media, conn, method, NULL,
                                                        &(size_t){0});
        allow_proven_media_body(api, rq);
        return answer;
    }
    char allow[32] = "";
    rq->crm_handler = api->cfg.crm ? ing_crm_route_of(url, method, allow, sizeof allow) : NULL;
    rq->crm_reads_only = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    if (rq->crm_handler)
        return admit_crm(api, conn, rq);
    if (allow[0])
        return ing_crm_api_refuse_method(api->cfg.crm, conn, allow);
    int events = strcmp(url, "/v1/events") == 0, meta = strcmp(url, "/v1/meta/webhook") == 0;
    if (!events && !meta)
        return ing_http_respond(conn, MHD_HTTP_NOT_FOUND, "application/json",
                                "{\"error\":\"not_found\"}\n");
    if (meta && strcmp(method, MHD_HTTP_METHOD_GET) == 0)
        return ing_meta_answer_handshake(conn, api->cfg.meta_verify_token, api->cfg.metrics);
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return ing_http_respond_method_not_allowed(conn, meta ? "GET, POST" : "POST");
    rq->meta = meta;
    if (events && api->cfg.metrics)
        bz_counter_inc(bz_counter_family_with(api->cfg.metrics->received, "http"));
    enum MHD_Result refusal;
    if (claim_refused(api, conn, rq, &refusal))
        return refusal;
    return judge_body_size(api, conn, rq);
}

/* ---- step 2: the body ------------------------------------------------------- */

/* Grow the buffer to hold n bytes more (doubling, never past the expected
 * length), taking the growth from the guard before the memory; 0 when the
 * guard refused it or memory ran out. */
static int make_room(ing_http_api *api, request *rq, size_t n)
{
    size_t cap = 0;
    bz_error err;
    if (!bz_bytes_next_cap(&rq->body, n, rq->expected, &cap))
        return 0;
    if (cap > rq->body.cap &&
        ing_http_guard_take(api->guard, rq->tracker, cap - rq->body.cap) != ING_HTTP_ROOM)
        return 0;
    return bz_bytes_reserve(&rq->body, cap, &err) == BZ_OK;
}

/* Room refused half-way: drop what was buffered, give it back, and let the
 * rest of the body pass unread (answered 503 once it is complete). */
static void refuse_room(ing_http_api *api, request *rq)
{
    rq->refused_room = 1;
    bz_bytes_free(&rq->body);
    ing_http_guard_give_back(api->guard, rq->tracker);
}

static enum MHD_Result collect_body(ing_http_api *api, request *rq, const char *data,
                                    size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (rq->too_large || rq->refused_room)
        return MHD_YES;
    if (over_body_limit(api, rq->body.len + n)) {
        rq->too_large = 1;
        return MHD_YES;
    }
    if (!make_room(api, rq, n)) {
        refuse_room(api, rq);
        return MHD_YES;
    }
    bz_error err;
    bz_bytes_append(&rq->body, data, n, rq->body.cap, &err); /* fits: make_room made room */
    return MHD_YES;
}

/* ---- step 3: the whole request ---------------------------------------------- */

/* On the CRM worker's thread: the request's API key verified. */
static void crm_request_authenticated(void *ctx)
{
    request *rq = ctx;
    ing_http_guard_authenticated(rq->api->guard, rq->tracker);
}

/* To a CRM worker, the connection suspended until its answer is ready. */
static enum MHD_Result hand_to_crm(ing_http_api *api, struct MHD_Connection *conn,
                                   const char *url, request *rq)
{
    if (rq->too_large)
        return ing_crm_api_refuse_size(api->cfg.crm, conn, api->cfg.max_body_bytes);
    bz_error err;
    rq->crm_job = ing_crm_api_submit(api->cfg.crm, conn, rq->crm_handler, rq->crm_reads_only,
                                     url, rq->body.data ? rq->body.data : "", rq->body.len,
                                     crm_request_authenticated, rq, &err);
    if (!rq->crm_job)
        return ing_http_respond_error(api->cfg.metrics, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "crm",
                                      err.reason, "", err.msg);
    return MHD_YES;
}

static enum MHD_Result answer_from_crm(request *rq, struct MHD_Connection *conn)
{
    ing_crm_job *job = rq->crm_job;
    rq->crm_job = NULL;
    return ing_crm_api_answer(job, conn);
}

static enum MHD_Result handle(ing_http_api *api, struct MHD_Connection *conn, const char *url,
                              request *rq)
{
    if (rq->refused_room)
        return ing_http_respond_busy(api->cfg.metrics, conn, path_of(rq));
    if (rq->crm_handler)
        return hand_to_crm(api, conn, url, rq);
    if (rq->too_large)
        return ing_http_respond_too_large(api->cfg.metrics, conn, path_of(rq),
                                          api->cfg.max_body_bytes);
    if (!rq->body.data && !make_room(api, rq, 0))
        return ing_http_respond_busy(api->cfg.metrics, conn, path_of(rq));
    enum MHD_Result refusal;
    if (signer_refused(api, conn, rq, &refusal))
        return refusal;
    ing_http_guard_authenticated(api->guard, rq->tracker);
    /* counted once verified (gateway_rate.h); Meta never: it redelivers
     * what is not answered 200, so a 429 would only bring it back */
    if (!rq->meta && ing_gateway_rate_refused(api->cfg.gateway_rate, api->cfg.metrics, conn,
                                              path_of(rq), rq->gateway, &refusal))
        return refusal;
    return rq->meta ? accept_meta_notification(api, conn, rq) : accept_gateway_event(api, conn, rq);
}

/* ---- libmicrohttpd callbacks -------------------------------------------------- */

enum MHD_Result ing_http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    (void)version;
    ing_http_api *api = cls;
    request *rq = *con_cls;
    if (!rq || !rq->tracker)
        return MHD_NO; /* out of memory, or a connection the guard refused */
    if (!rq->admitted)
        return admit(api, conn, url, method, rq);
    if (rq->media)
        return step_media(api, conn, method, upload_data, upload_data_size, rq);
    if (*upload_data_size > 0)
        return collect_body(api, rq, upload_data, upload_data_size);
    if (rq->acks)
        return answer_after_broker(api, conn, rq);
    if (rq->crm_job)
        return answer_from_crm(rq, conn);
    if (!ing_http_guard_request_received(api->guard, rq->tracker))
        return MHD_NO; /* cut at its deadline meanwhile */
    return handle(api, conn, url, rq);
}

/* MHD's URI logger runs once the request line arrived: the request starts
 * here, and what it returns becomes the request's state (*con_cls). */
void *ing_http_on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)uri;
    ing_http_api *api = cls;
    request *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->api = api;
    rq->started = bz_metrics_clock();
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    rq->tracker = info ? info->socket_context : NULL;
    if (rq->tracker)
        ing_http_guard_request_started(api->guard, rq->tracker);
    return rq;
}

void ing_http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    ing_http_api *api = cls;
    request *rq = *con_cls;
    if (!rq)
        return;
    if (rq->acks)
        ing_http_acks_release(api->producer, rq->acks);
    if (rq->crm_job && ing_crm_job_done(rq->crm_job))
        ing_crm_job_free(rq->crm_job); /* answered by its worker, never sent */
    ing_media_request_free(rq->media);
    if (rq->tracker) {
        ing_http_guard_give_back(api->guard, rq->tracker);
        ing_http_guard_request_done(api->guard, rq->tracker);
    }
    if (api->cfg.metrics && rq->admitted)
        bz_histogram_observe(api->cfg.metrics->http_seconds, bz_metrics_clock() - rq->started);
    bz_bytes_free(&rq->body);
    free(rq);
    *con_cls = NULL;
}
