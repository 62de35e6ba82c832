/*
 * fuzz_meta_answer.c - what meta-sender makes of a Cloud API answer
 * (graph_outcome.c): the bytes Meta (or anything between) sends back.
 *
 * The input is "<status>\n<body>": the first line an HTTP status (not a
 * number: 200), the rest the body. Properties: the verdict is one of the
 * six; its code and message are NUL-terminated within their buffers; a
 * wamid is set exactly when the verdict is sent and the body named one, and
 * is then the body's messages[0].id; a 2xx is never a failure, never a
 * token refusal. Otherwise Meta's code wins over the HTTP status, whatever
 * the status: a 190 or 0 error object is always a token refusal and no
 * other code ever is; 131047 is always failed with reengagement_required;
 * a 401 without a code is a token refusal. A 5xx answer is never sent.
 * Accepted means sent.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_target.h"
#include "meta_sender.h"

static int fuzz_meta_answer(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    char status_text[16] = "200";
    size_t head = nl ? (size_t)(nl - data) : 0;
    if (nl && head < sizeof status_text) {
        memcpy(status_text, data, head);
        status_text[head] = '\0';
    }
    long status = strtol(status_text, NULL, 10);
    const char *body = (const char *)(nl ? nl + 1 : data);
    size_t len = nl ? size - head - 1 : size;
    ms_outcome o;
    ms_graph_classify(0, status, body, len, &o);
    BZ_FUZZ_CHECK(o.verdict >= MS_SENT && o.verdict <= MS_AMBIGUOUS);
    BZ_FUZZ_CHECK(memchr(o.code, '\0', sizeof o.code) != NULL);
    BZ_FUZZ_CHECK(memchr(o.message, '\0', sizeof o.message) != NULL);
    BZ_FUZZ_CHECK(memchr(o.wam_id, '\0', sizeof o.wam_id) != NULL);
    BZ_FUZZ_CHECK(!*o.wam_id || o.verdict == MS_SENT);
    json_t *doc = len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "messages"), 0), "id"));
    json_t *code = json_object_get(json_object_get(doc, "error"), "code");
    if (status >= 200 && status < 300) {
        BZ_FUZZ_CHECK(o.verdict != MS_FAILED && o.verdict != MS_TOKEN_INVALID);
        if (id && *id && strlen(id) < sizeof o.wam_id)
            BZ_FUZZ_CHECK(o.verdict == MS_SENT && strcmp(o.wam_id, id) == 0);
    } else if (json_is_object(json_object_get(doc, "error")) && json_is_integer(code)) {
        json_int_t c = json_integer_value(code);
        BZ_FUZZ_CHECK((o.verdict == MS_TOKEN_INVALID) == (c == 190 || c == 0));
        if (c == 131047)
            BZ_FUZZ_CHECK(o.verdict == MS_FAILED && strcmp(o.code, "reengagement_required") == 0);
    } else if (status == 401) {
        BZ_FUZZ_CHECK(o.verdict == MS_TOKEN_INVALID);
    }
    if (status >= 500)
        BZ_FUZZ_CHECK(o.verdict != MS_SENT);
    json_decref(doc);
    return o.verdict == MS_SENT ? BZ_FUZZ_ACCEPTED : BZ_FUZZ_REJECTED;
}

static const bz_fuzz_expect expect[] = {
    {"sent", BZ_FUZZ_ACCEPTED},
    {"token_expired", BZ_FUZZ_REJECTED},
    {"reengagement", BZ_FUZZ_REJECTED},
    {"reengagement_with_401", BZ_FUZZ_REJECTED},
    {"token_refused_without_code", BZ_FUZZ_REJECTED},
    {NULL, 0},
};

BZ_FUZZ_TARGET_EXPECTING(fuzz_meta_answer, expect)
