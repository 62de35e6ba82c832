/*
 * agent_sends.h - releasing agents' messages (outbound_queue, written by
 * chat-sync) to the gateways under the shared send budget
 * (ARCHITECTURE.md §11). See agent_sends.c for the rules.
 */
#ifndef CMP_AGENT_SENDS_H
#define CMP_AGENT_SENDS_H

#include <libpq-fe.h>
#include <stdint.h>

#include "budget.h"
#include "campaign_sender.h"

#define CMP_AGENT_HOLDS 64

/* What one release round did. */
typedef struct cmp_agent_round {
    int64_t released, failed;
    int64_t waiting;      /* queued messages left waiting for budget or an account */
    int64_t next_ms;      /* budget clock: when a waiting one may get room; 0: none */
    int64_t seen;         /* queue rows read (== batch: there may be more) */
    /* Where agents' messages wait for budget: until the next round, no
     * campaign may take room there (room that frees goes to the agents):
     * the accounts they wait on, and the workspaces whose own limit is what
     * they wait for. held_all: more than fit, every campaign yields. */
    int64_t held_accounts[CMP_AGENT_HOLDS], held_workspaces[CMP_AGENT_HOLDS];
    size_t nheld_accounts, nheld_workspaces;
    int held_all;
} cmp_agent_round;

/* Does r hold account (of workspace) for agents' messages? */
int cmp_agent_round_holds(const cmp_agent_round *r, int64_t account, int64_t workspace);

/* In conn's open transaction: read up to batch queued messages in queue
 * order, release each whose account (failed over if disconnected) and
 * workspace have room in budget at now_ms, fail those that waited longer
 * than the configured bound, and count the releases in budget as they are
 * decided (the caller reloads budget from send_ledger if the transaction
 * does not commit). */
bz_status cmp_agents_release(const cmp_ctx *ctx, cmp_budget *budget, PGconn *conn,
                             int64_t now_ms, int batch, cmp_agent_round *out, bz_error *err);

#endif
