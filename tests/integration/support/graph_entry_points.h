/*
 * graph_entry_points.h - Meta's free entry point window as
 * graph_test_server prices it (see graph_entry_points.c): a user who wrote
 * from a click-to-WhatsApp ad or a Page's button, answered within 24
 * hours, is not charged for the business's messages of the next 72 hours.
 */
#ifndef GRAPH_ENTRY_POINTS_H
#define GRAPH_ENTRY_POINTS_H

#include <jansson.h>

/* A `messages` change's value a user posted (POST /_inbound): each
 * message that carries a referral opens an entry point for its sender. */
void ge_user_wrote(json_t *value);
/* A message the business sends `to` (phone digits) at now_ms: 1 when it is
 * inside a free entry point window (a first reply within 24 hours of the
 * referral opens one for 72 hours), else 0. */
int ge_free_entry_point(const char *to, long long now_ms);

#endif
