/*
 * own_pg.h - a PostgreSQL of a test's own, run by scripts/stack.sh in a
 * state folder of the test's (its port, its pgBackRest repository), so a
 * restore or a stop stops nobody else's server. The folder links the
 * shared test stack's kafka folder (credentials), so what stack.sh does
 * with Kafka (a restore's retention check and fence) reaches the shared
 * broker as its admin principal.
 */
#ifndef OWN_PG_H
#define OWN_PG_H

#include <stddef.h>

typedef struct own_pg {
    char state[256], log[320];
    char migrations[300]; /* BLAZZ_MIGRATIONS_DIR for stack.sh; "" for the repo's */
    int port;
} own_pg;

/* A fresh state folder under /tmp named from prefix, a free port; nothing
 * runs yet. */
void own_pg_init(own_pg *p, const char *prefix);
/* stack.sh ACTION [ARG1 [ARG2]] on it; its exit status (output in p->log). */
int own_pg_stack(const own_pg *p, const char *action, const char *arg1, const char *arg2);
/* The same, failing the test unless it exits 0. */
void own_pg_stack_ok(const own_pg *p, const char *action, const char *arg);
/* postgresql:// URI of its blazz database as user (60 bytes suffice). */
void own_pg_dsn(const own_pg *p, const char *user, char *out, size_t cap);
/* How many lines of the log say text. */
int own_pg_log_count(const own_pg *p, const char *text);
/* Stop it and remove its folder. */
void own_pg_remove(own_pg *p);

#endif
