/*
 * instance_history.h - the initial history sync a gateway instance sends
 * after it connects a session (seed 002), chosen and paced by the limits
 * the backbone sent with the CREATE or RESTART (SessionCommand.history_sync).
 *
 * A session's phone holds --phone-chats private chats: chat i (0 the
 * newest) was last active i * 47 minutes before the connect and holds
 * --history-messages messages, a minute apart up to then. Phones, names and
 * message ids are derived from the session's id, so the sync after a
 * reconnect sends the same messages again, as a phone would (chat-sync
 * stores each once). A run sends the newest chats active in the last
 * window_days, at most max_chats of them, each with its last
 * messages_per_chat messages, batch_chats to a batch, and reads them from
 * the phone at chats_per_second: a batch of n chats is sent n / rate
 * seconds after the one before, and only while fewer than
 * batches_in_flight of the instance's events wait for the broker. One sync
 * id per connect. A command without limits (a backbone from before them)
 * or with enabled false starts no run.
 */
#ifndef BZ_SIM_INSTANCE_HISTORY_H
#define BZ_SIM_INSTANCE_HISTORY_H

#include <stdint.h>

#include "blazz/v1/inbound.pb-c.h"
#include "blazz/v1/session.pb-c.h"
#include "event.h"
#include "sim.h"

typedef struct bz_sim_history_limits {
    int enabled;
    int max_chats, window_days, messages_per_chat, chats_per_second, batch_chats,
        batches_in_flight;
} bz_sim_history_limits;

typedef struct bz_sim_history_run {
    int active;
    uint64_t phone_key; /* names the phone's chats */
    char sync_id[BZ_SIM_SESSION_ID_MAX + 48];
    int64_t connected_ms;
    bz_sim_history_limits limits;
    int nchats, messages; /* chats the run sends, the last messages of each */
    int phone_messages;   /* messages a chat holds on the phone */
    int next_chat, batch_index, batch_total;
    int64_t next_batch_ms;
} bz_sim_history_run;

/* The limits command c carries (enabled 0 when it carries none). */
void bz_sim_history_limits_of(const Blazz__V1__SessionCommand *c, bz_sim_history_limits *out);

/* Plan the sync of a connect of session_id at now_ms by limits: the run is
 * inactive when they switch it off or the phone has no chats to send. */
void bz_sim_history_start(bz_sim_history_run *run, const bz_sim_history_limits *limits,
                          const bz_sim_options *o, const char *session_id, int64_t now_ms);

/* The run's next batch, built in arena, when it is due at now_ms with
 * in_flight events waiting for the broker; NULL when none is due, none is
 * left (run->active then 0) or the arena ran out (arena->failed). */
Blazz__V1__HistorySyncBatch *bz_sim_history_next(bz_sim_history_run *run, bz_sim_arena *arena,
                                                 int64_t now_ms, uint64_t in_flight);

#endif
