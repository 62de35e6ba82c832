/*
 * media_upload.h - the simulator delivers the bytes of its photos and voice
 * notes as a whatsapp-web.js gateway does (ARCHITECTURE.md §16.4): before
 * the message event, POST <ingest>/v1/gateway/media?session=S with the
 * file as the body, signed with the gateway's key over the session and
 * the body's SHA-256 (wa/signature.h's media statement); the event then
 * names the upload by media.stored_media_uuid, and carries the file's real
 * type, size and digest.
 *
 * With --media-bytes P, a share P of the generated live inbound images and
 * voice notes is uploaded so (PNG and Ogg Opus from media_bytes.h, made
 * from the message id, so every message has bytes of its own). The choice
 * is drawn from a generator of its own, so the traffic's sequence is the
 * same with or without uploads. An upload is one blocking request on a
 * kept-alive connection: the demo's media rate is a few per second. A
 * refused or failed upload is counted (media_upload_failed) and its
 * message goes out as the reference it was, as a gateway that could not
 * deliver the bytes would send it.
 */
#ifndef BZ_SIM_MEDIA_UPLOAD_H
#define BZ_SIM_MEDIA_UPLOAD_H

#include "blazz/v1/inbound.pb-c.h"
#include "core/status.h"
#include "event.h"
#include "report.h"
#include "sim.h"

typedef struct bz_sim_media_uploader bz_sim_media_uploader;

/* For o->media_bytes > 0 in http mode; *out NULL otherwise.
 * o and stats must outlive it. */
bz_status bz_sim_media_uploader_new(const bz_sim_options *o, bz_sim_stats *stats,
                                    bz_sim_media_uploader **out, bz_error *err);

/* NULL is fine. */
void bz_sim_media_uploader_free(bz_sim_media_uploader *u);

/* If msg is an image or a voice note chosen for bytes: upload them for
 * session and point msg's media at them (strings from a). */
void bz_sim_media_attach(bz_sim_media_uploader *u, bz_sim_arena *a, const char *session,
                         Blazz__V1__InboundMessage *msg);

#endif
