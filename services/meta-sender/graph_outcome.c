/*
 * graph_outcome.c - what a Cloud API answer means for the send
 * (see meta_sender.h).
 *
 * Decided by Meta's documented error codes (error.code in the Graph API
 * error object {"error": {"message", "type", "code", "error_data":
 * {"details"}, "error_subcode", "fbtrace_id"}}), never by the message text,
 * and the code wins over the HTTP status: Meta says to build error handling
 * on the code, not on the status, and its `type` is OAuthException for
 * nearly every error (131047 included), so neither says "token". The
 * status decides only for an answer without a code (401: the token; 429:
 * throttled; 5xx: retry).
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

static int is_throttle(long code)
{
    return code == 130429 || code == 131056 || code == 4 || code == 80007;
}

static int is_temporary(long code)
{
    return code == 1 || code == 2 || code == 131000 || code == 131016 || code == 133004;
}

/* The error object's human text: details when Meta gives them (they name
 * the parameter), else the message. */
static const char *error_text(json_t *error)
{
    const char *details = json_string_value(json_object_get(json_object_get(error, "error_data"),
                                                            "details"));
    const char *message = json_string_value(json_object_get(error, "message"));
    return details && *details ? details : message ? message : "";
}

/* The token was refused: a code Meta documents with 401, or a 401 whose
 * answer names no code. */
static int refuses_token(int has_code, long code, long http_status)
{
    return has_code ? code == 190 || code == 0 : http_status == 401;
}

static void classify_error(long http_status, json_t *error, ms_outcome *out)
{
    json_t *jcode = json_object_get(error, "code");
    int has_code = json_is_integer(jcode);
    long code = has_code ? (long)json_integer_value(jcode) : 0;
    const char *text = error_text(error);
    char code_text[MS_CODE_MAX];
    snprintf(code_text, sizeof code_text, "%ld", code);
    if (refuses_token(has_code, code, http_status))
        set(out, MS_TOKEN_INVALID, "token_invalid", text);
    else if (is_throttle(code) || (!code && http_status == 429))
        set(out, MS_THROTTLED, code ? code_text : "429", text);
    else if (code == 131047)
        set(out, MS_FAILED, "reengagement_required", text);
    else if (is_temporary(code) || (http_status >= 500 && !(code >= 100 && code < 1000)))
        set(out, MS_RETRY, code ? code_text : "http_5xx", text);
    else
        set(out, MS_FAILED, code ? code_text : "http_error", text);
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
    json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *error = json_object_get(doc, "error");
    char status_text[32];
    snprintf(status_text, sizeof status_text, "HTTP %ld", http_status);
    if (http_status >= 200 && http_status < 300)
        classify_success(doc, out);
    else if (json_is_object(error))
        classify_error(http_status, error, out);
    else if (http_status == 401)
        set(out, MS_TOKEN_INVALID, "token_invalid", status_text);
    else if (http_status == 429)
        set(out, MS_THROTTLED, "429", status_text);
    else if (http_status >= 500 || http_status == 408)
        set(out, MS_RETRY, "http_5xx", status_text);
    else
        set(out, MS_FAILED, "http_error", status_text);
    json_decref(doc);
}
