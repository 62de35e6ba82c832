/*
 * restore_fence.c - after the database was restored to an earlier point,
 * no send leaves until the proofs of the sends made since are back
 * (ARCHITECTURE.md §6.5, db/migrations/0045).
 *
 * Every send made after the restore point left its proof on chat.sync
 * (meta-sender's report, Meta's status webhooks), and chat-sync, re-reading
 * from its restored offsets, writes those proofs to meta_message_proofs
 * again (db/migrations/0058). So while a fence is up
 * (libs/pg/restore_fence.h) the sender claims nothing; once it is lifted,
 * every send claimed is looked up among the proofs (claim.c) like any
 * other. Checked with the accounts, once a second.
 */
#include <inttypes.h>

#include "core/log.h"
#include "pg/restore_fence.h"
#include "active_sender.h"

bz_status ms_restore_fence_check(ms_worker *w, bz_error *err)
{
    bz_restore_fence fence;
    bz_status st = bz_restore_fence_check(w->conn, "meta sender", &fence, err);
    if (st != BZ_OK)
        return st;
    if (fence.held && !w->fence_held)
        bz_warn("meta sender: the database was restored (restore fence %s, to %s): no send "
                "leaves until chat-sync and campaign-sender have re-read their topics, %" PRId64
                " records to go",
                fence.fence_id, fence.restored_to, fence.records_to_go);
    w->fence_held = fence.held;
    bz_gauge_set(w->m->restore_fence_records, (double)fence.records_to_go);
    return BZ_OK;
}
