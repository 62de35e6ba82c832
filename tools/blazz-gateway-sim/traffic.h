/*
 * traffic.h - a seeded generator of the InboundEvents a fleet of
 * whatsapp-web.js gateways would publish for the run's world.
 *
 * The stream has three phases, in order:
 *   connect  one SessionStatus CONNECTED per account, reporting its
 *            assigned instance, phone number and push name;
 *   history  the initial sync of every account (seed 002): its chats in
 *            batches of at most 50, newest first, each chat with its last
 *            --history-messages messages (oldest first), unread counts, group
 *            participants; the accounts' batches interleave, as when several
 *            gateways sync at once;
 *   live     endless traffic: inbound private and group messages of every
 *            WhatsApp type (text, image, voice, document, sticker, video,
 *            location, vCard, reaction, revoked, replies, forwards), messages
 *            sent from the phone (from_me echoes) and their receipts
 *            sent -> delivered -> read (now and then a stale or repeated
 *            one, as real receipts arrive), group updates, and session
 *            flaps (DISCONNECTED with a reason, CONNECTED again some events
 *            later, sometimes on another instance after an instance restart),
 *            each reconnect followed by a new history sync run, as
 *            whatsapp-web.js syncs on every 'ready'; a synced chat has its
 *            own generator, so every run repeats the same messages.
 * Contacts are shared within a workspace (a customer may write to several
 * of its accounts); new contacts and groups keep appearing in live traffic.
 * With --stray-events N the live phase opens with N inbound messages for
 * the session "sim-<tag>-stray", which no account has: what a gateway sends
 * for a session the CRM never created or already removed, so ingest
 * dead-letters them (unknown_session) and a demo has a dead letter to show.
 *
 * Everything is drawn from the seed, so two generators with the same seed
 * and options yield the same sequence of events (kinds, phones, names,
 * message ids), whatever the world's database ids are.
 */
#ifndef BZ_SIM_TRAFFIC_H
#define BZ_SIM_TRAFFIC_H

#include "core/status.h"
#include "event.h"
#include "sim.h"
#include "world.h"

typedef struct bz_sim_traffic bz_sim_traffic;

/* o and w must outlive the generator. Free with bz_sim_traffic_free. */
bz_status bz_sim_traffic_new(const bz_sim_options *o, const bz_sim_world *w,
                             bz_sim_traffic **out, bz_error *err);

void bz_sim_traffic_free(bz_sim_traffic *t);

/* Generate the next event into out (which must be empty; the caller clears
 * it after publishing). */
bz_status bz_sim_traffic_next(bz_sim_traffic *t, bz_sim_event *out, bz_error *err);

/* Have the live inbound images and voice notes that u chooses carry real
 * bytes, uploaded before their event (media_upload.h); NULL: none. u must
 * outlive the generator. */
struct bz_sim_media_uploader;
void bz_sim_traffic_upload_media(bz_sim_traffic *t, struct bz_sim_media_uploader *u);

/* The phase the next event belongs to: "connect", "history" or "live". */
const char *bz_sim_traffic_phase(const bz_sim_traffic *t);

#endif
