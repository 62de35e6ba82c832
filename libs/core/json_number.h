/*
 * json_number.h - a JSON number as a whole number, however it is written.
 *
 * JSON has one kind of number; jansson tells 5 (an integer) from 5.0 and
 * 5e0 (reals). JSON Schema, and so every client generated from
 * docs/openapi.yaml, counts them all as the integer 5, and PHP's
 * json_encode writes a float 5.0 as "5.0". Where Blazz expects an integer
 * it takes a real too when it is whole and exactly representable (at most
 * 2^53 in magnitude); 5.5, NaN and larger reals are not integers.
 *
 * jansson refuses a whole document that holds an integer beyond 64 bits,
 * wherever it is; a producer's field nobody reads must not cost the whole
 * event, so bz_json_loadb_wide reads such a document again with every
 * integer as a real (which bz_json_whole_number still takes).
 */
#ifndef BZ_JSON_NUMBER_H
#define BZ_JSON_NUMBER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* true with the value in *out when v is an integer or a whole real within
 * +-2^53; false (and *out untouched) otherwise, NULL included. */
bool bz_json_whole_number(const json_t *v, int64_t *out);

/* json_loadb with flags; a document refused only for an integer beyond 64
 * bits is read again with JSON_DECODE_INT_AS_REAL. NULL with *error set
 * when it is not JSON. */
json_t *bz_json_loadb_wide(const char *buf, size_t len, size_t flags, json_error_t *error);

#endif
