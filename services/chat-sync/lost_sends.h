/*
 * lost_sends.h - sends released to a gateway instance that died before
 * answering them end failed, once (ARCHITECTURE.md §15.4, issue 55).
 *
 * A release is addressed to the session's assignment of its moment (the
 * outbox's blazz-assignment header): only that instance, under that epoch,
 * performs it. Once the sweep gives the instance up (assign.c records
 * whatsapp_accounts.instance_lost_at), nothing will answer what it was sent
 * and did not answer: its successor holds a newer epoch and never gets the
 * old record, and a frozen instance that wakes has let its lease lapse
 * before it was declared dead, so it sends nothing more. Each round of the
 * sweep, in its transaction, takes the releases (send_ledger) of accounts
 * whose instance was lost in the last hour that are:
 *  - released within the hour before the loss, or after it while the
 *    account had not connected again (a release that read the account
 *    connected just before the sweep moved it: its header names the old
 *    assignment, and its ledger row may commit after the round that moved
 *    the session, so a later round finds it);
 *  - still unanswered: the agent's chats row pending, the campaign log
 *    queued;
 *  - not declared lost yet (send_ledger.lost_at);
 * marks them lost and writes for each a FAILED receipt, error code
 * gateway_instance_lost, client reference = the message or log uuid, on
 * chat.sync through the outbox, the path of every failure a gateway or
 * campaign-sender reports: chat-sync fails the agent's row (a
 * message.status webhook) or hands the receipt to campaign-sender, which
 * fails the log and lets its campaign complete.
 *
 * Never re-sent: whether the message left the phone before the crash is
 * unknowable to the backbone (whatsapp-web.js keeps no ledger of
 * idempotency keys across processes), and a re-send could reach the
 * customer twice. The window is documented (SESSIONS.md §15.4): a message
 * that left the phone whose echo the instance never published, or that
 * chat-sync had not applied by the time the instance was declared dead
 * (sessions.instance_timeout_s after its last heartbeat), is reported
 * failed although the customer has it.
 */
#ifndef CS_LOST_SENDS_H
#define CS_LOST_SENDS_H

#include <libpq-fe.h>

#include "chat_sync.h"

/* Mark the lost releases and add their FAILED receipts to b's outbox
 * records; *failed counts them. Runs in the caller's transaction. */
bz_status cs_fail_lost_sends(cs_batch *b, PGconn *conn, int *failed, bz_error *err);

#endif
