/*
 * classify.c - the retry rules for delivery attempts (see classify.h).
 */
#include "classify.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static wh_outcome outcome(wh_verdict v, const char *reason)
{
    return (wh_outcome){.verdict = v, .retry_after_ms = -1, .reason = reason};
}

static wh_outcome classify_status(long status, int64_t retry_after_ms, int64_t max_ms)
{
    if (status >= 200 && status < 300)
        return outcome(WH_SUCCESS, "2xx");
    if (status == 410)
        return outcome(WH_FAIL_DISABLE, "410");
    if (status == 408 || status == 429 || status >= 500) {
        wh_outcome o = outcome(WH_RETRY,
                                  status == 408 ? "408" : status == 429 ? "429" : "5xx");
        if (retry_after_ms >= 0 && (status == 429 || status == 503))
            o.retry_after_ms = retry_after_ms > max_ms ? max_ms : retry_after_ms;
        return o;
    }
    if (status >= 400)
        return outcome(WH_FAIL, "4xx");
    if (status >= 300)
        return outcome(WH_FAIL, "3xx");
    return outcome(WH_FAIL, "1xx");
}

wh_outcome wh_classify(wh_transport transport, long http_status, int64_t retry_after_ms,
                             int64_t retry_after_max_ms)
{
    switch (transport) {
    case WH_T_RESPONSE:
        return classify_status(http_status, retry_after_ms,
                               retry_after_max_ms < 0 ? 0 : retry_after_max_ms);
    case WH_T_TIMEOUT: return outcome(WH_RETRY, "timeout");
    case WH_T_DNS: return outcome(WH_RETRY, "dns");
    case WH_T_CONNECT: return outcome(WH_RETRY, "connect");
    case WH_T_RESET: return outcome(WH_RETRY, "reset");
    case WH_T_SSRF: return outcome(WH_FAIL, "ssrf");
    case WH_T_OTHER: break;
    }
    return outcome(WH_RETRY, "other");
}

wh_transport wh_transport_from_curl(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_OK: return WH_T_RESPONSE;
    case CURLE_OPERATION_TIMEDOUT: return WH_T_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return WH_T_DNS;
    case CURLE_COULDNT_CONNECT: return WH_T_CONNECT;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE: return WH_T_RESET;
    default: return WH_T_OTHER;
    }
}

/* Longer delays are taken as this one; wh_classify clamps further. */
#define RETRY_AFTER_MAX_S (10LL * 365 * 86400)

int64_t wh_parse_retry_after(const char *value, int64_t now_wall_ms)
{
    if (!value)
        return -1;
    while (isspace((unsigned char)*value))
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        long long s = strtoll(value, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (*end || s < 0)
            return -1;
        return (s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s) * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == (time_t)-1)
        return -1;
    /* curl accepts any year; compare in seconds so that one far away
     * (year 2147483647) cannot overflow the milliseconds. */
    int64_t now_s = now_wall_ms / 1000;
    if ((int64_t)when - now_s > RETRY_AFTER_MAX_S)
        return RETRY_AFTER_MAX_S * 1000;
    int64_t delta = (int64_t)when * 1000 - now_wall_ms;
    return delta > 0 ? delta : 0;
}

const char *wh_status_class(long s)
{
    if (s >= 500 && s < 600)
        return "5xx";
    if (s >= 400)
        return s < 500 ? "4xx" : "other";
    if (s >= 300)
        return "3xx";
    if (s >= 200)
        return "2xx";
    if (s >= 100)
        return "1xx";
    return "none";
}
