/*
 * graph_entry_points.c - graph_test_server's free entry point windows
 * (graph_entry_points.h), written from Meta's pricing page: when a user
 * messages the business from a click-to-WhatsApp ad or a Facebook Page's
 * call-to-action button (the message's `referral`) and the business
 * answers within 24 hours, every message the business sends that user in
 * the 72 hours from that answer is free, templates included; its statuses
 * say so with pricing.type `free_entry_point`. The window is a price, not
 * a permission: whether a free-form message may go is still the 24-hour
 * customer service window's to say, which the server does not police.
 *
 * The referral's time is the message's `timestamp`, so a test can place
 * the customer's message in the past; the windows are kept under a lock
 * (the server answers on many threads).
 */
#include "graph_entry_points.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GE_MAX 64
#define GE_REPLY_MS (24LL * 3600 * 1000)
#define GE_FREE_MS (72LL * 3600 * 1000)

typedef struct ge_window {
    char user[32];            /* phone digits */
    long long referral_ms;    /* the user's message from the ad */
    long long free_until_ms;  /* 0: not answered yet */
} ge_window;

static struct {
    pthread_mutex_t lock;
    ge_window w[GE_MAX];
    int n;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The window of user (g.lock held), made when make and room allow. */
static ge_window *window_of_locked(const char *user, int make)
{
    for (int i = 0; i < g.n; i++)
        if (strcmp(g.w[i].user, user) == 0)
            return &g.w[i];
    if (!make || g.n == GE_MAX)
        return NULL;
    ge_window *w = &g.w[g.n++];
    memset(w, 0, sizeof *w);
    snprintf(w->user, sizeof w->user, "%s", user);
    return w;
}

void ge_user_wrote(json_t *value)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(value, "messages"), i, m) {
        const char *from = json_string_value(json_object_get(m, "from"));
        const char *ts = json_string_value(json_object_get(m, "timestamp"));
        if (!from || !json_is_object(json_object_get(m, "referral")))
            continue;
        pthread_mutex_lock(&g.lock);
        ge_window *w = window_of_locked(from, 1);
        if (w) {
            w->referral_ms = (ts ? strtoll(ts, NULL, 10) : 0) * 1000;
            w->free_until_ms = 0;
        }
        pthread_mutex_unlock(&g.lock);
    }
}

int ge_free_entry_point(const char *to, long long now_ms)
{
    pthread_mutex_lock(&g.lock);
    ge_window *w = window_of_locked(to, 0);
    if (w && !w->free_until_ms && now_ms - w->referral_ms < GE_REPLY_MS)
        w->free_until_ms = now_ms + GE_FREE_MS;
    int free_now = w && now_ms < w->free_until_ms;
    pthread_mutex_unlock(&g.lock);
    return free_now;
}
