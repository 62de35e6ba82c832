/*
 * sender_slots.c - what the send loop keeps in memory between rounds: one
 * slot per running campaign, per sending account and per workspace.
 *
 * A slot outlives the refresh that created it, so a campaign's auto-pause
 * window (autopause.c) and the state of its wait carry over from one
 * refresh to the next; refresh.c drops the campaigns that stopped
 * running, accounts and workspaces stay until the sender stops. Each kind lives in a pointer array grown by
 * doubling and is searched linearly: a sender runs tens of campaigns, not
 * thousands. Only the sender thread touches them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/grow.h"
#include "send_loop.h"

void cmp_campaign_slot_free(cmp_campaign_slot *c)
{
    cmp_message_free(&c->msg);
    free(c);
}

cmp_account_slot *cmp_account_slot_for(cmp_sender *s, const bz_account *acc)
{
    for (size_t i = 0; i < s->naccounts; i++)
        if (s->accounts[i]->id == acc->id)
            return s->accounts[i];
    if (!bz_grow((void **)&s->accounts, &s->capaccounts, s->naccounts + 1, sizeof(cmp_account_slot *), 16))
        return NULL;
    cmp_account_slot *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->id = acc->id;
    char label[24];
    snprintf(label, sizeof label, "%" PRId64, acc->id);
    a->sends = bz_counter_family_with(s->ctx->m.sends, label);
    s->accounts[s->naccounts++] = a;
    return a;
}

cmp_account_slot *cmp_account_slot_find(cmp_sender *s, int64_t id)
{
    for (size_t i = 0; i < s->naccounts; i++)
        if (s->accounts[i]->id == id)
            return s->accounts[i];
    return NULL;
}

cmp_workspace_slot *cmp_workspace_slot_for(cmp_sender *s, int64_t id)
{
    for (size_t i = 0; i < s->nworkspaces; i++)
        if (s->workspaces[i]->id == id)
            return s->workspaces[i];
    if (!bz_grow((void **)&s->workspaces, &s->capworkspaces, s->nworkspaces + 1,
                 sizeof(cmp_workspace_slot *), 16))
        return NULL;
    cmp_workspace_slot *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->id = id;
    s->workspaces[s->nworkspaces++] = w;
    return w;
}
