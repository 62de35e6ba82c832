/*
 * world.h - the demo tenants a run plays: workspaces and their connected
 * WhatsApp accounts, created in PostgreSQL so ingest can resolve sessions.
 *
 * Names come from --tag: workspace k is found again by metadata->>'sim_key'
 * = "<tag>:<k>" and its accounts have session ids "sim-<tag>-w<k>-a<j>", so
 * re-running with the same tag reuses (and reconnects) the same rows, and a
 * new tag makes a fresh world. Accounts are upserted as connected, webjs,
 * with assigned_instance_index = workspace_id % instance_count (seed 003)
 * and a phone number derived from the seed.
 */
#ifndef BZ_SIM_WORLD_H
#define BZ_SIM_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "sim.h"

typedef struct bz_sim_account {
    int64_t workspace_id;
    int64_t account_id;
    int workspace_index; /* 0-based position in the run, independent of ids */
    int account_index;   /* 0-based within its workspace */
    int instance_index;  /* assigned_instance_index */
    char session_id[BZ_SIM_SESSION_ID_MAX];
    char phone[24];      /* E.164 */
    char push_name[64];
} bz_sim_account;

typedef struct bz_sim_world {
    int64_t *workspace_ids; /* nworkspaces */
    size_t nworkspaces;
    bz_sim_account *accounts; /* workspace-major: nworkspaces * accounts_per_workspace */
    size_t naccounts;
} bz_sim_world;

/* Create or reuse the world described by o (tag, workspaces, accounts per
 * workspace, instance count, seed) in the database at o->pg_dsn. On BZ_OK
 * *out owns heap memory released with bz_sim_world_free. */
bz_status bz_sim_world_create(const bz_sim_options *o, bz_sim_world *out, bz_error *err);

void bz_sim_world_free(bz_sim_world *w);

#endif
