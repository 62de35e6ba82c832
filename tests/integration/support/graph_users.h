/*
 * graph_users.h - the WhatsApp users graph_test_server knows (--users F),
 * so that its answers and status webhooks name a recipient as Meta's
 * business-scoped user ids page says they do: by BSUID always, and by
 * phone unless the user adopted a username and the phone is not in the
 * business's contact book. See graph_users.c.
 */
#ifndef GRAPH_USERS_H
#define GRAPH_USERS_H

#include <stddef.h>

/* --users F (lines "<phone digits> <bsuid> [username]"): 1 when name is it
 * and F could be read. */
int gu_option(const char *name, const char *value);
/* Who a message addressed to `to` (a phone's digits or a BSUID) reached, as
 * Meta names them back: phone ("" when withheld or unknown), bsuid (""
 * when unknown). A message addressed by phone puts its user's pair in the
 * contact book. Without --users: `to` as the one or the other. */
void gu_recipient(const char *to, char *phone, size_t phone_cap, char *bsuid, size_t bsuid_cap);

#endif
