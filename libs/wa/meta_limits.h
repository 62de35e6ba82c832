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
 *   audio, voice note,   no caption at all;
 *   sticker
 *   list                 (interactive "list") body 1-4096 characters, a
 *                        button of 1-20, 1-10 sections holding 1-10 rows
 *                        in all, a section title of at most 24 (required
 *                        when there are several sections), each row an id
 *                        of 1-200 characters unique in the list, a title of
 *                        1-24 and a description of at most 72; the header
 *                        (a text) and footer of at most 60;
 *   URL button           (interactive "cta_url") body 1-1024 characters, a
 *                        display text of 1-20, the header and footer of at
 *                        most 60;
 *   location request     (interactive "location_request_message") body
 *                        1-1024 characters, no header, no footer;
 *   flow                 (interactive "flow") body 1-1024 characters, the
 *                        button's label (flow_cta) 1-30 (Meta's page
 *                        advises at most 30), the header and footer of at
 *                        most 60.
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
#define BZ_WA_META_SECTIONS_MAX 10
#define BZ_WA_META_ROWS_MAX 10
#define BZ_WA_META_SECTION_TITLE_MAX 24
#define BZ_WA_META_ROW_ID_MAX 200
#define BZ_WA_META_ROW_TITLE_MAX 24
#define BZ_WA_META_ROW_DESCRIPTION_MAX 72
#define BZ_WA_META_FLOW_CTA_MAX 30

/* The reason of every refusal here. */
#define BZ_WA_META_LIMIT_REASON "provider_limit"

/* BZ_OK when the Cloud API takes m as it is; else BZ_ERR_INVALID (reason
 * provider_limit) with "field <SendMessage field>: <what and the limit>"
 * (body, header_text, footer, buttons[i], media.caption,
 * interactive.sections[i].rows[k].title...). */
bz_status bz_wa_meta_check(const Blazz__V1__SendMessage *m, bz_error *err);

/* BZ_OK when an account of provider can send m at all; else
 * BZ_ERR_INVALID (reason provider_limit) naming message_type: an
 * interactive message goes through a Meta account only (whatsapp-web.js
 * sends none). */
bz_status bz_wa_provider_check(Blazz__V1__Provider provider, const Blazz__V1__SendMessage *m,
                               bz_error *err);

#endif
