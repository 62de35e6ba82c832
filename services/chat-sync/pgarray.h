/*
 * pgarray.h - building PostgreSQL array literals ("{1,NULL,\"a b\"}") for
 * the unnest() parameters of chat-sync's multi-row statements.
 *
 * Unlike bz_pg_text_array (libs/pg) it appends element by element, so a
 * batch's columns are built in one pass over the batch, and it can express
 * NULL elements and bytea values (as "\x<hex>" text, which the ::bytea[]
 * cast decodes). Out-of-memory is sticky: cs_pgarr_finish then returns NULL.
 */
#ifndef CS_PGARRAY_H
#define CS_PGARRAY_H

#include <stddef.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "core/status.h"

typedef struct cs_pgarr {
    char *buf;
    size_t len, cap;
    size_t n;
    int oom;
    int done; /* finished: further finishes return the same literal */
} cs_pgarr;

void cs_pgarr_init(cs_pgarr *a);
/* cs_pgarr_init each of the n arrays of arrs. */
void cs_pgarr_init_all(cs_pgarr *arrs, int n);
/* A text element; NULL appends a NULL element. */
void cs_pgarr_text(cs_pgarr *a, const char *s);
void cs_pgarr_int64(cs_pgarr *a, int64_t v);
/* NULL when v == 0 (how chat-sync spells "no timestamp" / "no id"). */
void cs_pgarr_int64_or_null(cs_pgarr *a, int64_t v);
void cs_pgarr_bool(cs_pgarr *a, int v);
void cs_pgarr_null(cs_pgarr *a);
void cs_pgarr_bytea(cs_pgarr *a, const uint8_t *p, size_t n);
/* Close the literal (once; later calls return it again); the string belongs
 * to a. NULL when out of memory. */
const char *cs_pgarr_finish(cs_pgarr *a);
void cs_pgarr_free(cs_pgarr *a);
void cs_pgarr_free_all(cs_pgarr *arrs, int n);

#define CS_PG_RUN_MAX_PARAMS 24

/* Run sql with arrs[0..n) (finished here) as its text parameters; n <=
 * CS_PG_RUN_MAX_PARAMS.
 * On success *out (if not NULL) receives the result for the caller to
 * PQclear. Failures are classified by bz_pg_check and start with what. */
bz_status cs_pg_run(PGconn *conn, const char *what, const char *sql, cs_pgarr *arrs, int n,
                    PGresult **out, bz_error *err);

#endif
