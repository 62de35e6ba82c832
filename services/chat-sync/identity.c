/*
 * identity.c - one contact per person, whichever identifiers an event
 * carries (docs/decisions/0010-a-contact-is-a-person-not-a-phone.md).
 *
 * load.c locks each contact seed's row by its key (the phone, else the
 * BSUID, else the JID), by its BSUID or by its LID. Here each seed is
 * settled on one row: the key's when there is one, else the BSUID's, else
 * the LID's, which then answers to the key too (cs_alias_contact), so the
 * messages planned under the key find it. The row is completed with what
 * the event adds: the phone when it was known only by its BSUID or LID
 * (its phone column held that), the BSUID or the LID when it was known
 * without it and no live row has it, the parent BSUID and the username as
 * the latest event gives them. When the phone names one row and the BSUID
 * or the LID another, the phone's row takes the message and neither
 * changes: joining them is merging (apply_merge.c), on a gateway's mapping
 * for a LID, and for a BSUID on Meta's word, which such an event is: its
 * seed is noted (b->meta_pairs) and merged once the batch is written.
 * Each changed row is written once, in the batch's transaction, under the
 * lock load.c took (cs_write_identities, which apply_identity.c's
 * identity changes write through too).
 */
#include <string.h>

#include "chat_sync.h"
#include "pg/columns.h"

#define SQL_CONTACT_IDENTITIES_UPDATE                                                             \
    "UPDATE contacts c SET phone = u.phone, bsuid = nullif(u.bsuid, ''), "                        \
    "parent_bsuid = nullif(u.parent, ''), username = nullif(u.username, ''), "                    \
    "lid = nullif(u.lid, ''), metadata = CASE WHEN u.jid = '' THEN c.metadata "                   \
    "ELSE jsonb_set(c.metadata, '{jid}', to_jsonb(u.jid)) END "                                   \
    "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "      \
    "$7::text[]) AS u(id, phone, bsuid, parent, username, jid, lid) WHERE c.id = u.id"

static int is_phone(const char *s)
{
    return s && s[0] == '+';
}

/* Replace *field (NULL counts as unset) with value when value is set and
 * differs; 1 if it did. */
static int take_text(cs_batch *b, char **field, const char *value, int *oom)
{
    if (!value || !*value || (*field && strcmp(*field, value) == 0))
        return 0;
    char *copy = cs_arena_strdup(&b->arena, value);
    if (!copy) {
        *oom = 1;
        return 0;
    }
    *field = copy;
    return 1;
}

/* Settle seed s on its row; 1 when the row changed (dirty), -1 when out of
 * memory, 0 otherwise. */
static int settle_seed(cs_batch *b, const cs_seed *s)
{
    const char *lid = cs_lid_of(s->jid);
    cs_contact *by_key = cs_find_contact(b, s->workspace_id, s->key);
    cs_contact *by_bsuid = *s->bsuid ? cs_find_contact(b, s->workspace_id, s->bsuid) : NULL;
    cs_contact *by_lid = *lid ? cs_find_contact(b, s->workspace_id, lid) : NULL;
    cs_contact *c = by_key ? by_key : by_bsuid ? by_bsuid : by_lid;
    if (!c)
        return 0;
    int oom = 0, changed = 0;
    if (by_bsuid && by_key && by_bsuid != by_key && is_phone(s->key) &&
        cs_vec_push(&b->meta_pairs, (void *)s) != 0)
        return -1;
    if (!by_key) {
        if (cs_alias_contact(b, c, s->key) != 0)
            return -1;
        if (is_phone(s->key) && !is_phone(c->phone))
            changed |= take_text(b, &c->phone, s->key, &oom);
    }
    if (!by_bsuid && !*c->bsuid)
        changed |= take_text(b, &c->bsuid, s->bsuid, &oom);
    /* by_lid == c: a row the release wrote, its LID only in its phone column */
    if ((!by_lid || by_lid == c) && !*c->lid)
        changed |= take_text(b, &c->lid, lid, &oom);
    changed |= take_text(b, &c->parent_bsuid, s->parent_bsuid, &oom);
    changed |= take_text(b, &c->username, s->username, &oom);
    if (!oom && changed && *c->bsuid && cs_alias_contact(b, c, c->bsuid) != 0)
        oom = 1;
    if (!oom && changed && *c->lid && cs_alias_contact(b, c, c->lid) != 0)
        oom = 1;
    return oom ? -1 : changed;
}

bz_status cs_write_identities(PGconn *conn, cs_contact *const *rows, size_t n, bz_error *err)
{
    bz_pg_array a[7];
    bz_pg_array_init_all(a, 7);
    for (size_t i = 0; i < n; i++) {
        bz_pg_array_int64(&a[0], rows[i]->id);
        bz_pg_array_text(&a[1], rows[i]->phone);
        bz_pg_array_text(&a[2], rows[i]->bsuid);
        bz_pg_array_text(&a[3], rows[i]->parent_bsuid);
        bz_pg_array_text(&a[4], rows[i]->username);
        bz_pg_array_text(&a[5], rows[i]->jid);
        bz_pg_array_text(&a[6], rows[i]->lid);
    }
    bz_status st = bz_pg_arrays_exec(conn, "write contacts' identities",
                                     SQL_CONTACT_IDENTITIES_UPDATE, a, 7, NULL, err);
    bz_pg_array_free_all(a, 7);
    return st;
}

bz_status cs_complete_identities(cs_batch *b, PGconn *conn, bz_error *err)
{
    size_t n = 0;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the elements are pointers */
    cs_contact **rows = cs_arena_alloc(&b->arena, (b->contact_seeds.n + 1) * sizeof *rows);
    if (!rows)
        return bz_fail(err, BZ_ERR_NOMEM, "complete contacts' identities: out of memory");
    for (size_t i = 0; i < b->contact_seeds.n; i++) {
        const cs_seed *s = b->contact_seeds.items[i];
        int r = settle_seed(b, s);
        if (r < 0)
            return bz_fail(err, BZ_ERR_NOMEM, "complete contacts' identities: out of memory");
        cs_contact *c = cs_find_contact(b, s->workspace_id, s->key);
        int listed = 0;
        for (size_t j = 0; r > 0 && j < n; j++)
            listed |= rows[j] == c;
        if (r > 0 && !listed)
            rows[n++] = c;
    }
    return n > 0 ? cs_write_identities(conn, rows, n, err) : BZ_OK;
}
