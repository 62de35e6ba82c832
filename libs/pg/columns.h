/*
 * columns.h - array parameters: many rows in one statement, a column at a
 * time.
 *
 * A write of n rows binds each column as one array parameter
 * ($1::bigint[], $2::text[], ... unnested by the SQL). Every PostgreSQL
 * array literal the project sends is rendered by one builder, bz_pg_array,
 * which appends element by element: text quoted with '"' and '\' escaped
 * (so commas, braces, spaces and the word NULL stay data), a NULL element
 * unquoted, integers and booleans bare, bytea as the quoted text "\\x<hex>"
 * (which a ::bytea[] cast decodes). Its buffer grows by doubling, so a
 * column costs a few reallocations however many rows it has, and nothing
 * per element; running out of memory is sticky and shows at finish.
 *
 * Three ways in, by what the caller holds:
 *   - values as they come, one pass over a batch: bz_pg_array per column,
 *     then bz_pg_arrays_exec runs a statement with them;
 *   - a C array already: bz_pg_int64_array / bz_pg_text_array render it in
 *     one allocation sized up front;
 *   - rows to fill slot by slot for a prepared statement: bz_pg_columns
 *     (each bz_pg_columns_int64 or bz_pg_columns_text call adds the next
 *     parameter and returns its n slots, NULL when out of memory, which is
 *     remembered until exec; bz_pg_columns_scalar adds a plain parameter),
 *     rendered at bz_pg_columns_exec. Text slots and scalars point at the
 *     caller's strings, which must live until exec returns.
 */
#ifndef BZ_PG_COLUMNS_H
#define BZ_PG_COLUMNS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* ---- one array literal, element by element ---------------------------------- */

typedef struct bz_pg_array {
    char *buf;
    size_t len, cap;
    size_t n;  /* elements so far */
    bool oom;  /* an allocation failed: finish returns NULL */
    bool done; /* finished: later finishes return the same literal */
} bz_pg_array;

void bz_pg_array_init(bz_pg_array *a);
/* bz_pg_array_init each of the n arrays of arrs. */
void bz_pg_array_init_all(bz_pg_array *arrs, int n);
/* A text element; NULL appends a NULL element. */
void bz_pg_array_text(bz_pg_array *a, const char *s);
void bz_pg_array_int64(bz_pg_array *a, int64_t v);
/* NULL when v == 0 (how callers spell "no timestamp" / "no id"). */
void bz_pg_array_int64_or_null(bz_pg_array *a, int64_t v);
void bz_pg_array_bool(bz_pg_array *a, bool v);
void bz_pg_array_null(bz_pg_array *a);
void bz_pg_array_bytea(bz_pg_array *a, const uint8_t *p, size_t n);
/* Close the literal (once; later calls return it again); the string belongs
 * to a. NULL when out of memory. */
const char *bz_pg_array_finish(bz_pg_array *a);
void bz_pg_array_free(bz_pg_array *a);
void bz_pg_array_free_all(bz_pg_array *arrs, int n);

#define BZ_PG_ARRAYS_MAX 24

/* Run sql (unprepared) with arrs[0..n) (finished here) as its parameters;
 * n <= BZ_PG_ARRAYS_MAX. On success *out (if not NULL) receives the result
 * for the caller to PQclear. Failures are classified by bz_pg_check and
 * start with what; an array out of memory is BZ_ERR_NOMEM. */
bz_status bz_pg_arrays_exec(PGconn *conn, const char *what, const char *sql, bz_pg_array *arrs,
                            int n, PGresult **out, bz_error *err);

/* ---- a whole C array at once ------------------------------------------------ */

/* values as a `$1::bigint[]` literal ("{1,2,3}"): a heap string the caller
 * frees, or NULL when out of memory. */
char *bz_pg_int64_array(const int64_t *values, size_t n);

/* values as a `$1::text[]` literal, every element quoted and escaped, a
 * NULL element SQL NULL: a heap string the caller frees, or NULL when out
 * of memory. */
char *bz_pg_text_array(const char *const *values, size_t n);

/* ---- slots filled row by row, for a prepared statement ---------------------- */

#define BZ_PG_COLUMNS_MAX 16

typedef struct bz_pg_columns {
    size_t n; /* rows */
    int count;
    struct {
        int64_t *ints;       /* an array column: one of the two */
        const char **texts;
        const char *scalar;  /* neither: this value (NULL: SQL NULL) */
    } col[BZ_PG_COLUMNS_MAX];
    bool nomem;
} bz_pg_columns;

void bz_pg_columns_init(bz_pg_columns *c, size_t rows);

/* The next parameter, a bigint[] / text[] of c->n slots, or NULL. */
int64_t *bz_pg_columns_int64(bz_pg_columns *c);
const char **bz_pg_columns_text(bz_pg_columns *c);
/* The next parameter, value itself (not an array; NULL is SQL NULL). */
void bz_pg_columns_scalar(bz_pg_columns *c, const char *value);

/* Send only the first rows slots of each column (rows <= c->n): for a
 * caller that learns how many rows it has while filling them. */
void bz_pg_columns_trim(bz_pg_columns *c, size_t rows);

/* Run the prepared statement with the columns as its parameters, in the
 * order they were added; *res as bz_pg_exec_prepared (may be NULL). A
 * column that could not be allocated or rendered is BZ_ERR_NOMEM. */
bz_status bz_pg_columns_exec(const bz_pg_columns *c, PGconn *conn, const char *statement,
                             PGresult **res, bz_error *err);

void bz_pg_columns_free(bz_pg_columns *c);

#endif
