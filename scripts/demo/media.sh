# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/demo/media.sh - media in `make run` (sourced by scripts/run.sh;
# ARCHITECTURE.md §16), step by step once the campaigns started
# (media_tick):
#
#  - inbound photo: a 16x16 PNG (MEDIA_IN_PNG) is registered at the Graph
#    test server as a Meta media id (its --media registry), and the Meta
#    campaign's first contact sends it to the Meta account: Meta's signed
#    `messages` webhook to ingest (the server's POST /_inbound). chat-sync
#    stores the message, meta-sender fetches the bytes from the Graph test
#    server, stores them (the run's local store), links chats.media_id and
#    announces message.media_ready, which reaches the receiver (/ok/media).
#    The CRM's side then: GET /v1/media/{uuid} with an API key of the
#    workspace gives a link; the link is opened and the bytes' sha256
#    compared with the PNG's;
#  - outbound image: another PNG (MEDIA_OUT_PNG) is uploaded with POST
#    /v1/media and sent to that contact (whose photo opened Meta's 24-hour
#    window) with POST /v1/messages {"media": {"media_id": <uuid>}};
#    meta-sender uploads it to the Graph test server once and sends it by
#    the id Meta answered. Once the message is sent, the Graph test
#    server's record (uploads) and bodies (the image's id) tell what Meta
#    got.
# The API key goes to curl on stdin, never on its command line. Its
# figures are collect_media's (media_* in figures.sh, read from the rows,
# the Graph test server's files and what the link served), its report
# lines print_media's (report.sh).

MEDIA_IN_PNG="iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAIklEQVR42mNQvZwGR/+RAC5xhkGogRhFyOKDUcNoPAwKDQDAiy2fA8bDIgAAAABJRU5ErkJggg=="
MEDIA_OUT_PNG="iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAUUlEQVR42mP4//+/UE8dkQiomAFCEakaSDIgcwiqRmjArwdZigGXBC5BBvzSmEYw4DESq4UMuByNy0vU0ECak0jzNGnBSlrEkZY0SEt8pCZvALRiWDBzmJH6AAAAAElFTkSuQmCC"
MEDIA_STEP=start
MEDIA_DEADLINE=0
MEDIA_IN_WAMID=""
MEDIA_IN_URL=""
MEDIA_IN_FETCHED_SHA=""
MEDIA_OUT_UUID=""
MEDIA_OUT_MESSAGE=""

# curl with the workspace's API key (MEDIA_KEY) as a header read from stdin.
media_curl() {
    printf 'header = "Authorization: Bearer %s"\n' "$MEDIA_KEY" | curl -sS --noproxy '*' -K - "$@"
}

# Whether the receiver recorded message.media_ready for MEDIA_IN_WAMID (as
# webhook_seen, sessions.sh).
media_ready_seen() {
    WH_TYPE='\"type\":\"message.media_ready\"' WH_WAMID="\\\"wam_id\\\":\\\"$MEDIA_IN_WAMID\\\"" \
        awk 'index($0, ENVIRON["WH_TYPE"]) && index($0, ENVIRON["WH_WAMID"]) { found = 1 }
             END { exit !found }' "$RECEIVER_RECORD" 2>/dev/null
}

media_setup() {
    MEDIA_DIR="$STATE/media-demo"
    mkdir -p "$MEDIA_DIR"
    base64 -d <<<"$MEDIA_IN_PNG" >"$MEDIA_DIR/photo-in.png"
    base64 -d <<<"$MEDIA_OUT_PNG" >"$MEDIA_DIR/image-out.png"
    MEDIA_KEY=$("$BIN_DIR/blazzctl" apikeys create --workspace "$CAMPAIGN_WS" --name "demo $TAG media" \
                    --json 2>>"$LOGS/blazzctl.log" | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' | head -n 1)
    [ -n "$MEDIA_KEY" ] || { note "blazzctl apikeys create failed (see $LOGS/blazzctl.log)"; return 1; }
    IFS='|' read -r MEDIA_CONTACT MEDIA_PHONE <<<"$(sql "
SELECT ct.id || '|' || ct.phone FROM campaigns c
JOIN contact_group_members m ON m.contact_group_id = c.contact_group_id
JOIN contacts ct ON ct.id = m.contact_id
WHERE c.id = :id ORDER BY ct.id LIMIT 1" id="$META_CAMPAIGN")"
    [ -n "$MEDIA_PHONE" ]
}

# The contact sends the photo: a media id at the Graph test server, then
# Meta's webhook naming it (sha256 as Meta gives it: base64 of the digest).
media_photo_in() {
    local wa_id=${MEDIA_PHONE#+} media_id="7${META_PNID}" sha_b64
    printf '%s image/png none %s\n' "$media_id" "$MEDIA_DIR/photo-in.png" >>"$GRAPH_MEDIA"
    sha_b64=$(openssl dgst -sha256 -binary "$MEDIA_DIR/photo-in.png" | base64)
    MEDIA_IN_WAMID="wamid.DEMO-PHOTO-$MEDIA_CONTACT"
    curl -sf --noproxy '*' -X POST -H 'Content-Type: application/json' \
        --data "{\"messaging_product\":\"whatsapp\",
                 \"metadata\":{\"phone_number_id\":\"$META_PNID\"},
                 \"contacts\":[{\"profile\":{\"name\":\"Demo contact\"},\"wa_id\":\"$wa_id\"}],
                 \"messages\":[{\"from\":\"$wa_id\",\"id\":\"$MEDIA_IN_WAMID\",
                                \"timestamp\":\"$(date +%s)\",\"type\":\"image\",
                                \"image\":{\"id\":\"$media_id\",\"mime_type\":\"image/png\",
                                           \"sha256\":\"$sha_b64\"}}]}" \
        "http://127.0.0.1:$GRAPH_PORT/_inbound/$META_WABA" >>"$LOGS/run.log" 2>&1 ||
        { note "the photo's webhook failed (see $LOGS/run.log)"; return 1; }
}

# The CRM's side, once message.media_ready came: a link, opened.
media_open_link() {
    local answer uuid
    uuid=$(media_in_row uuid)
    answer=$(media_curl "http://$INGEST_LISTEN/v1/media/$uuid" 2>>"$LOGS/run.log")
    MEDIA_IN_URL=$(sed -n 's/.*"url": *"\([^"]*\)".*/\1/p' <<<"$answer")
    [ -n "$MEDIA_IN_URL" ] || { note "GET /v1/media/$uuid gave no link: $answer"; return 1; }
    curl -sSf --noproxy '*' -o "$MEDIA_DIR/photo-fetched" "$MEDIA_IN_URL" 2>>"$LOGS/run.log" ||
        { note "the photo's link did not open (see $LOGS/run.log)"; return 1; }
    MEDIA_IN_FETCHED_SHA=$(sha256sum <"$MEDIA_DIR/photo-fetched" | cut -d' ' -f1)
    note "inbound photo from $MEDIA_PHONE stored as media $uuid, message.media_ready delivered," \
         "link opened"
}

# A field of the photo's chat_media row (via chats.media_id), empty before.
media_in_row() {
    sql "SELECT coalesce(m.$1::text, '') FROM chats c LEFT JOIN chat_media m ON m.id = c.media_id
         WHERE c.whatsapp_account_id = :acct AND c.wam_id = :'wamid'" \
        acct="$META_ACCOUNT" wamid="$MEDIA_IN_WAMID" 2>>"$LOGS/run.log"
}

media_in_linked() { [ -n "$(media_in_row id)" ]; }

# The agent's image: POST /v1/media, then POST /v1/messages naming it.
media_image_out() {
    local answer
    answer=$(media_curl -X POST -H 'Content-Type: image/png' --data-binary "@$MEDIA_DIR/image-out.png" \
                 "http://$INGEST_LISTEN/v1/media?filename=reply.png" 2>>"$LOGS/run.log")
    MEDIA_OUT_UUID=$(sed -n 's/.*"media_uuid": *"\([^"]*\)".*/\1/p' <<<"$answer")
    [ -n "$MEDIA_OUT_UUID" ] || { note "POST /v1/media answered: $answer"; return 1; }
    answer=$(media_curl -X POST -H 'Content-Type: application/json' \
                 --data "{\"idempotency_key\":\"$TAG-image\",\"contact_id\":$MEDIA_CONTACT,
                          \"whatsapp_account_id\":$META_ACCOUNT,\"message_type\":\"image\",
                          \"media\":{\"media_id\":\"$MEDIA_OUT_UUID\",\"caption\":\"Your parcel\"}}" \
                 "http://$INGEST_LISTEN/v1/messages" 2>>"$LOGS/run.log")
    MEDIA_OUT_MESSAGE=$(sed -n 's/.*"message_id": *"\([^"]*\)".*/\1/p' <<<"$answer")
    [ -n "$MEDIA_OUT_MESSAGE" ] || { note "POST /v1/messages answered: $answer"; return 1; }
}

media_out_sent() {
    case "$(media_out_status)" in sent|delivered|read) return 0 ;; *) return 1 ;; esac
}

media_out_status() {
    sql "SELECT message_status FROM chats WHERE whatsapp_account_id = :acct
           AND metadata->>'client_reference' = :'msg'" \
        acct="$META_ACCOUNT" msg="$MEDIA_OUT_MESSAGE" 2>>"$LOGS/run.log"
}

# One step of the media's story, called every second once the campaigns
# started and while the demo settles (it never holds the demo up);
# returns non-zero only when it cannot go on: a step not reached within
# 60 s.
media_tick() {
    case "$MEDIA_STEP" in
        start) media_setup && media_photo_in || return 1; media_step linked ;;
        linked) media_in_linked && media_step announced ;;
        announced)
            if media_ready_seen; then
                media_open_link && media_image_out || return 1
                media_step sending
            fi ;;
        sending)
            if media_out_sent; then
                note "outbound image $MEDIA_OUT_MESSAGE (media $MEDIA_OUT_UUID) sent to $MEDIA_PHONE"
                MEDIA_STEP=finished
            fi ;;
    esac
    [ "$MEDIA_STEP" = finished ] || [ $SECONDS -lt "$MEDIA_DEADLINE" ] ||
        { note "media: not $MEDIA_STEP within 60 s (see $LOGS/meta-sender.log)"; return 1; }
}

media_step() {
    MEDIA_STEP=$1
    MEDIA_DEADLINE=$((SECONDS + 60))
}

media_done() { [ "$MEDIA_STEP" = finished ]; }
