/*
 * accepted_log.c - the --accepted-log file (see accepted_log.h).
 *
 * The lines are built by unpacking the event's own bytes rather than by
 * asking the traffic generator, so what is logged is exactly what went on
 * the wire. A write failure is warned about once and the run goes on: the
 * log is a test aid, and a checker reading a short log fails loudly anyway.
 */
#include "accepted_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blazz/v1/inbound.pb-c.h"
#include "core/log.h"
#include "wa/message_action.h"

struct bz_sim_accepted_log {
    FILE *file;
    pthread_mutex_t lock;
    bool warned;
};

bz_status bz_sim_accepted_log_open(const char *path, bz_sim_accepted_log **out, bz_error *err)
{
    bz_sim_accepted_log *log = calloc(1, sizeof *log);
    if (!log)
        return bz_fail(err, BZ_ERR_NOMEM, "open accepted log %s: out of memory", path);
    log->file = fopen(path, "a");
    if (!log->file) {
        free(log);
        return bz_fail(err, BZ_ERR_IO, "open accepted log %s: %s", path, strerror(errno));
    }
    pthread_mutex_init(&log->lock, NULL);
    *out = log;
    return BZ_OK;
}

static void add_message(FILE *f, const char *session_id, const Blazz__V1__InboundMessage *m)
{
    if (m && m->wam_id && *m->wam_id)
        fprintf(f, "%s %s\n", session_id, m->wam_id);
}

static void add_history(FILE *f, const char *session_id, const Blazz__V1__HistorySyncBatch *b)
{
    for (size_t i = 0; b && i < b->n_chats; i++)
        for (size_t j = 0; b->chats[i] && j < b->chats[i]->n_messages; j++)
            add_message(f, session_id, b->chats[i]->messages[j]);
}

char *bz_sim_accepted_lines(const bz_sim_accepted_log *log, const bz_sim_event *ev)
{
    if (!log)
        return NULL;
    Blazz__V1__InboundEvent *in = blazz__v1__inbound_event__unpack(NULL, ev->len, ev->data);
    if (!in) {
        bz_log_event(BZ_LOG_WARN, ev->event_id, NULL,
                     "accepted log: cannot decode the event just built; its messages go unlisted");
        return NULL;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
        /* a reaction, edit or delete changes its target; it is no row */
        if (in->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_MESSAGE &&
            !bz_wa_message_is_action(in->message))
            add_message(f, ev->session_id, in->message);
        else if (in->payload_case == BLAZZ__V1__INBOUND_EVENT__PAYLOAD_HISTORY_SYNC)
            add_history(f, ev->session_id, in->history_sync);
        fclose(f);
    }
    blazz__v1__inbound_event__free_unpacked(in, NULL);
    if (!text || len == 0) {
        free(text);
        return NULL;
    }
    return text;
}

void bz_sim_accepted_log_write(bz_sim_accepted_log *log, const char *lines)
{
    if (!log || !lines)
        return;
    pthread_mutex_lock(&log->lock);
    bool failed = fputs(lines, log->file) == EOF || fflush(log->file) != 0;
    if (failed && !log->warned) {
        log->warned = true;
        bz_warn("accepted log: write failed: %s", strerror(errno));
    }
    pthread_mutex_unlock(&log->lock);
}

void bz_sim_accepted_log_close(bz_sim_accepted_log *log)
{
    if (!log)
        return;
    if (fclose(log->file) != 0)
        bz_warn("accepted log: close failed: %s", strerror(errno));
    pthread_mutex_destroy(&log->lock);
    free(log);
}
