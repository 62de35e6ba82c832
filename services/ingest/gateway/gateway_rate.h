/*
 * gateway_rate.h - the request rate one verified gateway may have at this
 * ingest instance (ingest.gateway_rate_per_second, burst
 * ingest.gateway_rate_burst; issue 55): a token bucket per gateway id
 * (rate_table.h), one token a request, over POST /v1/events and the
 * gateway media endpoints (/v1/gateway/media). Past it a request is
 * answered 429 gateway_rate_limited with Retry-After (whole seconds, at
 * least 1), counted in blazz_ingest_rejected_total{path,reason}, and
 * nothing of it is accepted: the gateway retries it later, as it does a
 * 503.
 *
 * Only a gateway whose signature verified is counted, never the gateway a
 * request merely names: X-Blazz-Gateway is public, so counting claims
 * would let anyone spend a real gateway's budget with forged requests.
 * Meta's webhook is not counted at all (http_request.c says why). The budget
 * is per instance: N instances behind a load balancer allow a gateway N
 * times the rate.
 */
#ifndef ING_GATEWAY_RATE_H
#define ING_GATEWAY_RATE_H

#include <microhttpd.h>

#include "core/status.h"
#include "ingest_metrics.h"

typedef struct ing_gateway_rate ing_gateway_rate;

/* per_second requests a second, burst at once, per gateway; per_second 0:
 * no limit (*out is NULL, which every function takes). */
bz_status ing_gateway_rate_new(double per_second, double burst, ing_gateway_rate **out,
                               bz_error *err);
void ing_gateway_rate_free(ing_gateway_rate *rate);

/* One request of gateway, whose signature verified: 0 when within its
 * rate (the request is counted); else 1 with *answer the 429 queued on
 * conn, counted under path. metrics may be NULL. */
int ing_gateway_rate_refused(ing_gateway_rate *rate, ing_metrics *metrics,
                             struct MHD_Connection *conn, const char *path, const char *gateway,
                             enum MHD_Result *answer);

#endif
