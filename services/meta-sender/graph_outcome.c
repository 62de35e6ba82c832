/*
 * graph_outcome.c - what a Cloud API answer means for the send
 * (see meta_sender.h).
 *
 * Decided by Meta's documented error codes, never by the message text, as
 * wa/meta_graph.h reads an error answer (the code wins over the HTTP
 * status; its `type` is OAuthException for nearly every error, 131047
 * included, so neither says "token"); for a send that means:
 *   190 (access token expired), 0 (AuthException: the token was refused;
 *       Meta documents both, and only them, with HTTP 401) -> token_invalid:
 *       the account's sends are held until a new token is set;
 *   130429 (throughput), 131056 (pair rate limit), 4 / 80007 (app or
 *       account rate limits), HTTP 429 without a code  -> throttled: retry
 *       later and slow the account;
 *   131047 (more than 24 hours since the customer's last message) ->
 *       failed "reengagement_required": the CRM must use a template;
 *   131026 (undeliverable), 100 / 131008 / 131009 (bad parameters),
 *       1320xx template errors and every other 4xx -> failed with Meta's
 *       code and message, never retried;
 *   1 / 2 / 131000 / 131016 / 133004 (temporary), any 5xx -> retry.
 * Transport: a request that never left (connect failed) is retried; one
 * that left without an answer (timeout, dropped connection) is ambiguous:
 * Meta may have accepted it, and the worker decides (§12).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "meta_sender.h"
#include "wa/meta_graph.h"

const char *ms_verdict_name(ms_verdict v)
{
    static const char *const names[] = {"sent", "retry", "throttled", "token_invalid", "failed",
                                        "ambiguous"};
    return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "unknown";
}

static void set(ms_outcome *out, ms_verdict v, const char *code, const char *message)
{
    out->verdict = v;
    snprintf(out->code, sizeof out->code, "%s", code ? code : "");
    snprintf(out->message, sizeof out->message, "%s", message ? message : "");
}

/* A refusal (wa/meta_graph.h reads it) as a send's verdict; 131047 is the
 * one code that means something of its own for a send. */
static void classify_error(long http_status, const char *body, size_t len, ms_outcome *out)
{
    bz_graph_error e;
    bz_graph_error_read(http_status, body, len, &e);
    static const ms_verdict verdicts[] = {[BZ_GRAPH_TOKEN] = MS_TOKEN_INVALID,
                                          [BZ_GRAPH_THROTTLED] = MS_THROTTLED,
                                          [BZ_GRAPH_TEMPORARY] = MS_RETRY,
                                          [BZ_GRAPH_REFUSED] = MS_FAILED};
    if (e.code == 131047)
        set(out, MS_FAILED, "reengagement_required", e.text);
    else
        set(out, verdicts[e.kind], e.label, e.text);
}

static void classify_success(json_t *doc, ms_outcome *out)
{
    json_t *first = json_array_get(json_object_get(doc, "messages"), 0);
    const char *id = json_string_value(json_object_get(first, "id"));
    if (id && *id && strlen(id) < sizeof out->wam_id) {
        set(out, MS_SENT, "", "");
        snprintf(out->wam_id, sizeof out->wam_id, "%s", id);
    } else if (json_is_true(json_object_get(doc, "success"))) {
        set(out, MS_SENT, "", "");
    } else {
        set(out, MS_AMBIGUOUS, "unexpected_answer", "2xx answer without messages[0].id");
    }
}

void ms_graph_classify(int transport_error, long http_status, const char *body, size_t len,
                       ms_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (transport_error == 1) {
        set(out, MS_RETRY, "transport_not_sent", "the request could not be sent");
        return;
    }
    if (transport_error) {
        set(out, MS_AMBIGUOUS, "transport_no_answer", "the request got no answer");
        return;
    }
    if (http_status < 200 || http_status >= 300) {
        classify_error(http_status, body, len, out);
        return;
    }
    json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    classify_success(doc, out);
    json_decref(doc);
}
