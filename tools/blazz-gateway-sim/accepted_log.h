/*
 * accepted_log.h - --accepted-log FILE: which messages the backbone took.
 *
 * For every event the backbone accepted (ingest answered 2xx, or the broker
 * acknowledged it in kafka mode) the log gets one line per message the
 * event carries, "<session_id> <wam_id>": one for a live message or an
 * echo, one per synced message for a history-sync batch, none for receipts,
 * session status, group updates and live reactions, edits and deletes that
 * name their target (they change the target, wa/message_action.h). A checker (scripts/chaos.sh) can then
 * demand that each of these messages is stored exactly once, whatever
 * crashed in between.
 *
 * The lines of an event are worked out when it is published, from its
 * packed bytes (so a publisher needs nothing but the event), kept with the
 * request in flight and written once its outcome is known. Both threads of
 * a run (traffic and outbound answering) write through one log; a mutex
 * keeps each event's lines together and whole.
 */
#ifndef BZ_SIM_ACCEPTED_LOG_H
#define BZ_SIM_ACCEPTED_LOG_H

#include "core/status.h"
#include "event.h"

typedef struct bz_sim_accepted_log bz_sim_accepted_log;

/* Open path for appending. On BZ_OK *out is heap memory released with
 * bz_sim_accepted_log_close. */
bz_status bz_sim_accepted_log_open(const char *path, bz_sim_accepted_log **out, bz_error *err);

/* The lines ev would add, as heap text the caller frees; NULL when there is
 * no log (log NULL) or ev carries no message. */
char *bz_sim_accepted_lines(const bz_sim_accepted_log *log, const bz_sim_event *ev);

/* Append lines (from bz_sim_accepted_lines; NULL appends nothing). */
void bz_sim_accepted_log_write(bz_sim_accepted_log *log, const char *lines);

/* Flush, close and free; NULL is fine. */
void bz_sim_accepted_log_close(bz_sim_accepted_log *log);

#endif
