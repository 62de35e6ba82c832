/*
 * gateway_rate.c - a verified gateway's request rate (see gateway_rate.h).
 */
#include "gateway/gateway_rate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "http_respond.h"
#include "kafka/topics.h"
#include "rate_table.h"

/* Buckets held at once: only registered gateways with a verified
 * signature get one, and a bucket full again is forgotten when room is
 * needed, so this is far above any deployment's gateways spending at the
 * same time. */
#define GATEWAYS_MAX 4096

_Static_assert(BZ_GATEWAY_ID_MAX <= ING_RATE_KEY_MAX, "a gateway id must fit a rate key");

struct ing_gateway_rate {
    double per_second;
    ing_rate_table *buckets;
};

bz_status ing_gateway_rate_new(double per_second, double burst, ing_gateway_rate **out,
                               bz_error *err)
{
    *out = NULL;
    if (per_second <= 0)
        return BZ_OK;
    ing_gateway_rate *rate = calloc(1, sizeof *rate);
    if (!rate)
        return bz_fail(err, BZ_ERR_NOMEM, "gateway rate: out of memory");
    rate->per_second = per_second;
    bz_status st = ing_rate_table_new(per_second, burst, GATEWAYS_MAX, &rate->buckets, err);
    if (st != BZ_OK) {
        free(rate);
        return st;
    }
    *out = rate;
    return BZ_OK;
}

void ing_gateway_rate_free(ing_gateway_rate *rate)
{
    if (!rate)
        return;
    ing_rate_table_free(rate->buckets);
    free(rate);
}

int ing_gateway_rate_refused(ing_gateway_rate *rate, ing_metrics *metrics,
                             struct MHD_Connection *conn, const char *path, const char *gateway,
                             enum MHD_Result *answer)
{
    if (!rate)
        return 0;
    int64_t wait_ms = ing_rate_table_take(rate->buckets, gateway, strlen(gateway),
                                          bz_monotonic_ms());
    if (wait_ms <= 0)
        return 0;
    char message[256];
    snprintf(message, sizeof message,
             "gateway %s exceeds %g requests/s on this instance; nothing was accepted, retry "
             "after Retry-After",
             gateway, rate->per_second);
    *answer = ing_http_respond_too_many(metrics, conn, path, "gateway_rate_limited", message,
                                        (wait_ms + 999) / 1000);
    return 1;
}
