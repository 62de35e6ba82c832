/*
 * meta_limits.h - what the WhatsApp Cloud API accepts in one message, from
 * Meta's documentation of its message objects, checked on the SendMessage
 * before anything leaves for a Meta account:
 *   text                 body 1-4096 characters, no header, no footer;
 *   reply buttons        (a text with buttons: interactive "button") body
 *                        1-1024 characters, 1-3 buttons, each title 1-20
 *                        characters and unique, a header (a media, or a
 *                        text of at most 60 characters) and a footer of at
 *                        most 60;
 *   media header alone   the media with the body as caption (at most 1024);
 *   image, video,        caption at most 1024 characters;
 *   document
 *   audio, voice note,   no caption at all.
 *   sticker
 * Meta refuses a message past a limit (131009, "Parameter value is not
 * valid") or, for the parts a message type has no place for (a caption on
 * audio, a footer on a text), the request would silently lose them: either
 * way what the backbone stored would not be what was sent. So the same
 * rules run everywhere a message could be held back earlier: ingest (400
 * naming the field, when the message's account is known to be Meta's),
 * chat-sync (the row fails at acceptance), campaign-sender (a campaign
 * whose every message would break them is refused at start) and
 * meta-sender (the send fails without a request). Lengths are characters
 * (code points), as Meta counts them. wa/text_limits.h holds the limit of
 * any message's text.
 */
#ifndef BZ_WA_META_LIMITS_H
#define BZ_WA_META_LIMITS_H

#include "blazz/v1/campaign.pb-c.h"
#include "core/status.h"

#define BZ_WA_META_TEXT_MAX 4096
#define BZ_WA_META_CAPTION_MAX 1024
#define BZ_WA_META_BUTTONS_BODY_MAX 1024
#define BZ_WA_META_BUTTONS_MAX 3
#define BZ_WA_META_BUTTON_TITLE_MAX 20
#define BZ_WA_META_HEADER_TEXT_MAX 60
#define BZ_WA_META_FOOTER_MAX 60

/* The reason of every refusal here. */
#define BZ_WA_META_LIMIT_REASON "provider_limit"

/* BZ_OK when the Cloud API takes m as it is; else BZ_ERR_INVALID (reason
 * provider_limit) with "field <SendMessage field>: <what and the limit>"
 * (body, header_text, footer, buttons[i], media.caption). */
bz_status bz_wa_meta_check(const Blazz__V1__SendMessage *m, bz_error *err);

#endif
