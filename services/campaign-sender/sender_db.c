/*
 * sender_db.c - the send loop's PostgreSQL connection as its files use it:
 * one transaction at a time, and PostgreSQL's clock.
 *
 * Every change the loop makes is one short transaction run through
 * cmp_sender_run_in_tx, so a failed step rolls back alone and the loop
 * carries on with the next. The send budget counts on PostgreSQL's clock
 * so that hosts with skewed clocks agree on its windows (budget.h): the
 * sender keeps the offset of its own wall clock to it, measured at the
 * middle of a round trip at each refresh and each budget reload.
 */
#include "core/clock.h"
#include "send_loop.h"

/* Now on the budget's clock (PostgreSQL's; see budget.h). */
int64_t cmp_sender_budget_now(const cmp_sender *s)
{
    return bz_wall_ms() + s->clock_offset_ms;
}

/* Align the budget's clock with PostgreSQL's (measured at the middle of
 * the round trip). */
bz_status cmp_sender_align_clock(cmp_sender *s, bz_error *err)
{
    int64_t before = bz_wall_ms(), pg_now;
    bz_status st = cmp_pg_now_ms(bz_pg_conn(s->pg), &pg_now, err);
    if (st == BZ_OK)
        s->clock_offset_ms = pg_now - (before + bz_wall_ms()) / 2;
    return st;
}

bz_status cmp_sender_run_in_tx(cmp_sender *s, cmp_sender_tx_step fn, void *arg, bz_error *err)
{
    PGconn *conn = bz_pg_conn(s->pg);
    bz_status st = bz_pg_begin(conn, err);
    if (st == BZ_OK)
        st = fn(s, conn, arg);
    if (st == BZ_OK)
        st = bz_pg_commit(conn, err);
    else
        bz_pg_rollback(conn);
    return st;
}
