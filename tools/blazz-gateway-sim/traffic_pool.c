/*
 * traffic_pool.c - the traffic generator's people, drawn from the seed at
 * creation: a contact pool per workspace, groups per account and the plan
 * of which synced chats are private and which are groups.
 *
 * A pool holds the contacts the workspace's history chats need, plus
 * LIVE_EXTRA_CONTACTS new customers for the live phase; each account gets
 * its history groups plus LIVE_EXTRA_GROUPS that first show up live. Phone
 * numbers and group JIDs are derived from indices, so they are unique
 * within a workspace and the same for every run with the seed
 * (traffic_state.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "corpus.h"
#include "traffic_state.h"

#define LIVE_EXTRA_CONTACTS 200
#define LIVE_EXTRA_GROUPS 3

static const char *const MOBILE_PREFIXES[] = {"811", "812", "813", "821", "822", "852",
                                              "853", "857", "877", "878", "895", "896"};

static void make_contact(bz_sim_rng *r, size_t index, bz_sim_contact *c)
{
    const char *prefix = MOBILE_PREFIXES[bz_sim_rng_below(r, 12)];
    unsigned long long digits = (unsigned long long)((index * 7919u) % 100000000u);
    snprintf(c->phone, sizeof c->phone, "+62%s%08llu", prefix, digits);
    snprintf(c->jid, sizeof c->jid, "62%s%08llu@c.us", prefix, digits);
    if (bz_sim_rng_chance(r, 0.1))
        c->name[0] = '\0'; /* no push name: the CRM shows the number */
    else if (bz_sim_rng_chance(r, 0.7))
        snprintf(c->name, sizeof c->name, "%s %s", bz_sim_pick(r, &bz_sim_first_names),
                 bz_sim_pick(r, &bz_sim_last_names));
    else
        snprintf(c->name, sizeof c->name, "%s", bz_sim_pick(r, &bz_sim_first_names));
}

bz_sim_contact *bz_sim_pool_of(bz_sim_traffic *t, int account)
{
    return &t->contacts[(size_t)t->w->accounts[account].workspace_index * t->pool];
}

static void make_group(bz_sim_traffic *t, size_t global_index, bz_sim_group *g, int64_t now)
{
    bz_sim_rng *r = &t->rng;
    unsigned long long digits =
        (unsigned long long)((global_index * 7919u + t->o->seed) % 1000000000000ull);
    snprintf(g->jid, sizeof g->jid, "120363%012llu@g.us", digits);
    snprintf(g->name, sizeof g->name, "%s", bz_sim_pick(r, &bz_sim_group_names));
    snprintf(g->description, sizeof g->description, "Grup %s. Harap sopan dan tidak spam.",
             g->name);
    g->created_ms = now - bz_sim_rng_between(r, 30, 900) * 86400000LL;
    g->nmembers = (int)bz_sim_rng_between(r, 3, 12);
    for (int i = 0; i < g->nmembers; i++)
        g->members[i] = (int)bz_sim_rng_below(r, t->pool);
    g->admins = 1u; /* the first member created it */
    if (bz_sim_rng_chance(r, 0.3))
        g->admins |= 2u;
}

static void plan_history(bz_sim_traffic *t)
{
    int n = t->o->history_chats;
    for (int c = 0; c < n; c++) {
        bool is_group = c % 5 == 4;
        t->plan[c].is_group = is_group;
        t->plan[c].index = is_group ? t->h_group++ : t->h_private++;
    }
    t->batches = (n + HISTORY_BATCH_MAX - 1) / HISTORY_BATCH_MAX;
}

bz_status bz_sim_traffic_build_state(bz_sim_traffic *t, bz_error *err)
{
    const bz_sim_world *w = t->w;
    int64_t now = bz_wall_ms();
    t->plan = calloc((size_t)t->o->history_chats + 1, sizeof *t->plan);
    if (!t->plan)
        return bz_fail(err, BZ_ERR_NOMEM, "traffic: history plan: out of memory");
    plan_history(t);
    t->pool = t->per_ws * (size_t)t->h_private + LIVE_EXTRA_CONTACTS;
    t->contacts = calloc(w->nworkspaces * t->pool, sizeof *t->contacts);
    t->known = calloc(w->nworkspaces, sizeof *t->known);
    t->acc = calloc(w->naccounts, sizeof *t->acc);
    if (!t->contacts || !t->known || !t->acc)
        return bz_fail(err, BZ_ERR_NOMEM, "traffic: contact pool: out of memory");
    for (size_t k = 0; k < w->nworkspaces; k++) {
        for (size_t i = 0; i < t->pool; i++)
            make_contact(&t->rng, i, &t->contacts[k * t->pool + i]);
        t->known[k] = t->per_ws * (size_t)t->h_private;
    }
    size_t group_index = 0;
    for (size_t a = 0; a < w->naccounts; a++) {
        bz_sim_account_state *s = &t->acc[a];
        s->instance = w->accounts[a].instance_index;
        s->resync_batch = -1;
        s->ngroups = t->h_group + LIVE_EXTRA_GROUPS;
        s->groups = calloc((size_t)s->ngroups, sizeof *s->groups);
        if (!s->groups)
            return bz_fail(err, BZ_ERR_NOMEM, "traffic: groups: out of memory");
        for (int g = 0; g < s->ngroups; g++)
            make_group(t, group_index++, &s->groups[g], now);
    }
    return BZ_OK;
}
