/*
 * classify.h - what one delivery attempt's result means for the delivery.
 *
 * An attempt ends either with an HTTP response (any status) or with a
 * transport failure (timeout, DNS, connect, reset, refused by the SSRF
 * guard). The rules (ARCHITECTURE.md §5):
 *   2xx                                  success
 *   5xx, 408, 429, timeouts, DNS,
 *   connect and reset errors             retry (429/503 honour Retry-After,
 *                                        clamped to a maximum)
 *   410                                  failed, and the endpoint is disabled
 *   other 4xx, 3xx (no redirects are
 *   followed), 1xx, SSRF refusal         failed, no retry
 * Pure functions; no I/O.
 */
#ifndef WH_CLASSIFY_H
#define WH_CLASSIFY_H

#include <stdint.h>

typedef enum wh_transport {
    WH_T_RESPONSE = 0, /* an HTTP status line arrived */
    WH_T_TIMEOUT,
    WH_T_DNS,
    WH_T_CONNECT,
    WH_T_RESET,        /* connection reset / closed mid-exchange */
    WH_T_SSRF,         /* the target address was refused before connecting */
    WH_T_OTHER         /* TLS, malformed response, ... (retried) */
} wh_transport;

typedef enum wh_verdict {
    WH_SUCCESS = 0,
    WH_RETRY,
    WH_FAIL,
    WH_FAIL_DISABLE
} wh_verdict;

typedef struct wh_outcome {
    wh_verdict verdict;
    /* Delay the receiver asked for (Retry-After, clamped), -1 when none. */
    int64_t retry_after_ms;
    /* Stable label for metrics and last_error: "2xx", "5xx", "408", "429",
     * "410", "4xx", "3xx", "1xx", "timeout", "dns", "connect", "reset",
     * "ssrf", "other". Static string. */
    const char *reason;
} wh_outcome;

/* Classify one attempt. http_status is used only for WH_T_RESPONSE;
 * retry_after_ms is what the response's Retry-After said (-1 when absent)
 * and is clamped to [0, retry_after_max_ms]. */
wh_outcome wh_classify(wh_transport transport, long http_status, int64_t retry_after_ms,
                             int64_t retry_after_max_ms);

/* Map a libcurl result code (CURLcode as int) to a transport class. */
wh_transport wh_transport_from_curl(int curl_code);

/* Parse a Retry-After header value: delta-seconds ("120") or an HTTP-date,
 * relative to now_wall_ms. Returns milliseconds in [0, 10 years] (longer
 * delays are capped), or -1 when the value is malformed. */
int64_t wh_parse_retry_after(const char *value, int64_t now_wall_ms);

/* The status class of an HTTP status for metrics labels: "2xx" ... "5xx",
 * or "none" when no response arrived (status 0). */
const char *wh_status_class(long http_status);

#endif
