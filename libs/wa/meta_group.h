/*
 * meta_group.h - the shape of a group's key: a whatsapp-web.js group JID or
 * a Meta Cloud API group id.
 *
 * whatsapp-web.js names a group by its JID ("120363...@g.us", jid.h). Meta's
 * Groups API names one by an opaque group_id ("Y2FwaV9ncm91cDox..."), the
 * value its group messages webhook carries and its send API takes as `to`:
 * kept exactly as it came, never turned into a JID. Both are the group's
 * key in whatsapp_groups.group_jid, one row per (workspace, key). A Meta id
 * is 1 to BZ_META_GROUP_ID_MAX letters, digits, '_', '-' and '=' (Meta's
 * samples are base64 text); having no '@', it never collides with a JID.
 */
#ifndef BZ_WA_META_GROUP_H
#define BZ_WA_META_GROUP_H

#include <stdbool.h>

#define BZ_META_GROUP_ID_MAX 128

/* 1 when s has the shape of a Meta group_id. */
bool bz_meta_group_id_valid(const char *s);

/* 1 when s can key a group: a JID ending in "@g.us" (as canonicalized by
 * jid.h) or a Meta group_id. */
bool bz_group_key_valid(const char *s);

#endif
