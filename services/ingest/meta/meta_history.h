/*
 * meta_history.h - the history field of a Meta notification (coexistence:
 * the WhatsApp Business app's chat history of a number onboarded onto the
 * Cloud API) -> HistorySyncBatch events, the history-sync path a
 * whatsapp-web.js gateway's sync takes (meta_history.c says how chunks
 * become batches); private to meta/.
 */
#ifndef ING_META_HISTORY_H
#define ING_META_HISTORY_H

#include <jansson.h>

#include "events/event_tree.h"
#include "meta/meta_mapping.h"

/* value (a history change's) mapped to events appended to out: one or
 * more batches per chunk of history[], one for a declined sharing,
 * dated entry.time when the entry has one, else now. 0 when history[] is
 * missing or empty or a chunk is not understood, the change then kept
 * whole for its dead letter (the chunks understood still mapped). */
int ing_meta_map_history_field(ing_meta_mapping *mp, json_t *entry, json_t *value,
                               ing_events *out);

#endif
