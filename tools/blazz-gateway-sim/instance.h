/*
 * instance.h - `blazz-gateway-sim --mode instance`: one whatsapp-web.js
 * gateway instance under the backbone's command (ARCHITECTURE.md §15), as
 * a process of its own, so tests, `make run` and the chaos runs can start,
 * kill and freeze several.
 *
 * It plays what such an instance does, over its gateway's Kafka principal:
 *  - every --heartbeat-ms it publishes an InstanceHeartbeat (index, URL,
 *    --capacity, a boot id new at each start, the sessions it serves
 *    with the epoch of each, and with --storage-dir the store it reaches,
 *    --storage-name) to <prefix>wa.inbound.gw.<gateway>;
 *  - it reads its gateway's <prefix>wa.session.commands.gw.<gateway>
 *    (group blazz-gateway-<gateway>.i<index>) and acts on the commands for
 *    its index, each only when its epoch is at least the newest it has seen
 *    for the session: CREATE and RESTART start serving the session (resumed
 *    at once, connected, when --storage-dir holds the session's
 *    credentials, as RemoteAuth would; a RESTART that does not find them
 *    there is first reported disconnected, credentials_missing; else a QR code, session_status
 *    qr_scanning with qr_code and qr_expires_at, then authenticated and
 *    connected once "scanned": --scan-after-ms later, or when a file named
 *    after the session appears in --scan-dir), LOGOUT disconnects it
 *    (user_initiated) and deletes its credentials when they were written
 *    under its epoch or an older one (the file holds the epoch after the
 *    phone), STOP lets it go silently;
 *  - everything it reports carries envelope.instance {index, url, epoch};
 *  - it answers the sends addressed to the assignments it holds (the
 *    blazz-assignment header of wa.outbound.gw.<gateway>, outbound.h), and
 *    leaves the others to the instance they are addressed to;
 *  - at --rate it receives customer messages on its connected sessions
 *    (written to --accepted-log once the broker took them);
 *  - it holds a lease, renewed by the backbone's LEASE answers to its
 *    heartbeats (each from when the beat was sent): when no beat sent in
 *    the last --lease-ms was answered (it was frozen, cut off, or the
 *    backbone stopped hearing it), it reports each session it served as
 *    lost under the epoch it held (the backbone refuses those reports:
 *    another instance may serve the session by now) and stops serving
 *    them, before anything else, and it starts no session until answered
 *    again; --lease-ms must stay below the backbone's
 *    sessions.instance_timeout_s;
 *  - it acts on no command decided (envelope.occurred_at) before it
 *    started, nor before its lease last came back after lapsing: the
 *    backbone may have moved the session since; a start set aside or
 *    refused for want of a lease is reported as the session lost, so the
 *    backbone asks again if the session is still this instance's.
 * --served-log records "<wall ms> <index> <boot id> start|stop <session>
 * <epoch>" whenever it starts or stops serving a session, so a test can
 * show no session was served by two instances at once.
 */
#ifndef BZ_SIM_INSTANCE_H
#define BZ_SIM_INSTANCE_H

#include "core/status.h"
#include "report.h"
#include "sim.h"

/* Run until --duration ends or a shutdown signal arrives. */
bz_status bz_sim_instance_run(const bz_sim_options *o, bz_sim_stats *stats, bz_error *err);

#endif
