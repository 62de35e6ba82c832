# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the script that sources this file
#
# scripts/chaos/meta.sh - Meta Cloud API traffic from customers known by
# their business-scoped user id (BSUID) in the chaos test (sourced by
# scripts/chaos.sh; decision 0010, ARCHITECTURE.md §12).
#
# The Meta account is set up as `make run` sets up its own
# (scripts/run.sh, scripts/demo/setup.sh): the Meta app is gateway "meta"
# (ingest.meta_gateway), its key the app secret, in a 0600 file of the
# state folder ($STATE/meta-app-secret), registered before the services
# start; a whatsapp_accounts row of provider meta, session id its
# phone_number_id, served by gateway "meta", its WhatsApp Business Account
# set with `blazzctl meta business`. It has no access token: nothing is
# sent from it. It lives in a workspace of its own, "chaos meta", whose
# message.created webhooks go to an endpoint of the receiver (/ok/meta).
#
# The Graph API test server plays Meta (tests/integration/graph_test_server
# with --app-secret-file, so the secret is on no command line): the sender
# below posts each user message to its POST /_inbound/<waba>, and it posts
# Meta's `messages` notification to the first ingest's /v1/meta/webhook,
# signed X-Hub-Signature-256 with the app secret, answering 200 when
# ingest did and 502 otherwise.
#
# The sender (meta_start_traffic, a background job counted among the
# inbound simulators) runs for DURATION seconds at META_RATE messages a
# second while the plan kills the services, the broker and the database.
# Its customers: META_USERNAME_CUSTOMERS username users, named by their
# BSUID only (contacts[].user_id, messages[].from_user_id, no wa_id nor
# from, as Meta withholds their phone), and META_PHONE_CUSTOMERS users
# whose phone the business knows, named by phone and BSUID, except one
# message in three where Meta withholds the phone (the number left its
# 30-day cache). Each message is a text with an id of its own. A POST that
# was not answered 200 is posted again a second later, as Meta retries a
# notification its endpoint did not take; a message that got no 200
# within META_GIVE_UP_S is refused. Every message answered 200 is logged
# ("<phone_number_id> <wamid> <bsuid> <phone or -> <1 if it carried the
# phone, else 0>") in $STATE/meta-accepted.log; the counts in
# $STATE/meta-sender.status.
#
# The checks (check_meta): no message refused; every accepted message
# stored exactly once and nothing else stored for the account; each
# customer one live contact holding its BSUID, every one of its messages
# under it, its phone once a message carried it (else its BSUID, decision
# 0010); the workspace's live contacts exactly its customers; one
# message.created per stored message, each delivered once (one `success`
# row per event and the receiver's 2xx). The accepted messages also join
# chaos.accepted and the workspace RUN_WS, so the run's own checks count
# them (stored once, nothing unaccepted stored, unread counters, merges,
# webhook pairs, dead letters on every DLQ).
#
# Upgrade mode sends it too, to the release's ingest first and this tree's
# after (the release must know BSUIDs: v0.46.0 and later).
#
# Upgrade mode also replies, as meta-sender runs there (and not in the
# chaos runs): the account gets an access token (a made-up one, in a 0600
# file, set with `blazzctl meta token --token-file`, accepted by the Graph
# test server from its tokens file) and its workspace a CRM API key, and
# every META_REPLY_EVERY_S seconds a reply goes through the CRM API
# (POST /v1/messages, by contact_phone, idempotency key of its own, posted
# again until answered 202 while ingest is replaced) to a customer whose
# phone a stored message carried (so the conversation's window is open).
# meta-sender, itself replaced and rolled back meanwhile, sends it to Meta.
# Each reply the API took is logged ("<message_id>") in
# $STATE/meta-replies.log, the counts in $STATE/meta-replies.status. The
# checks (check_meta_replies): none refused; each reply sent to Meta exactly
# once (one Graph request carrying its client reference, Meta's
# biz_opaque_callback_data), its row `sent` or later under the wamid Meta
# gave; Meta asked for nothing else. Its wamids join chaos.accepted, so
# the run's own checks count the replies' rows too.

META_RATE="${BLAZZ_CHAOS_META_RATE:-2}"
META_USERNAME_CUSTOMERS=12
META_PHONE_CUSTOMERS=12
META_GIVE_UP_S=300
META_ON=1
META_APP_SECRET_FILE="$STATE/meta-app-secret"
META_GRAPH_SERVER="$(dirname "$BIN_DIR")/tests/integration/graph_test_server"
META_ACCEPTED="$STATE/meta-accepted.log"
META_STATUS="$STATE/meta-sender.status"
META_WS="" META_ACCOUNT="" META_PNID="" META_WABA="" META_GRAPH_PID="" META_GRAPH_URL=""
META_REPLY_EVERY_S=2
META_REPLIES="$STATE/meta-replies.log"
META_REPLY_STATUS="$STATE/meta-replies.status"
META_API_KEY=""

# Replies need meta-sender, which only upgrade mode runs.
meta_replies_on() { [ "$META_ON" = 1 ] && [ -n "$UPGRADE_FROM" ]; }

# Before the services start: the Meta app's gateway and its secret.
meta_register_app() {
    [ "$META_ON" = 1 ] || return 0
    [ -x "$META_GRAPH_SERVER" ] || { echo "chaos: $META_GRAPH_SERVER missing: run make build" >&2; return 1; }
    gateway_ensure meta meta "$META_APP_SECRET_FILE" "$LOGS/blazzctl.log"
}

# Before the services start, once ingest's address is known: Meta, the
# Graph test server (it posts to ingest; meta-sender is pointed at it).
meta_start_graph() {
    [ "$META_ON" = 1 ] || return 0
    local i
    (umask 077 && : >"$STATE/graph-tokens")
    "$META_GRAPH_SERVER" --port-file "$STATE/graph-server.port" --record "$STATE/graph-server.record" \
        --tokens "$STATE/graph-tokens" --app-secret-file "$META_APP_SECRET_FILE" \
        --webhook "http://${INGEST_LISTEN[${INGESTS[0]}]}/v1/meta/webhook" \
        >"$LOGS/graph-server.log" 2>&1 </dev/null &
    META_GRAPH_PID=$!
    for i in $(seq 1 50); do [ -s "$STATE/graph-server.port" ] && break; sleep 0.1; done
    [ -s "$STATE/graph-server.port" ] || return 1
    META_GRAPH_URL="http://127.0.0.1:$(cat "$STATE/graph-server.port")"
}

# Once ingest listens: the workspace, the account and its webhook endpoint
# (and for the replies, the account's token and the workspace's API key).
meta_setup() {
    [ "$META_ON" = 1 ] || return 0
    META_PNID=$(printf '77%08d' "$SEED")
    META_WABA="9$META_PNID"
    META_WS=$(sql "INSERT INTO workspaces (name, metadata)
                   VALUES ('chaos meta', jsonb_build_object('chaos_tag', :'tag')) RETURNING id" tag="$TAG") ||
        return 1
    META_ACCOUNT=$(sql "
INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, provider_type, status,
                               last_connected_at, gateway_id)
VALUES (:ws, :'pnid', '+6281' || right(:'pnid', 8), 'meta', 'connected', now(), 'meta')
RETURNING id" ws="$META_WS" pnid="$META_PNID") || return 1
    "$BIN_DIR/blazzctl" meta business --account "$META_ACCOUNT" --waba "$META_WABA" \
        >>"$LOGS/blazzctl.log" 2>&1 || return 1
    add_endpoint "$META_WS" /ok/meta message.created
    if meta_replies_on; then meta_reply_credentials || return 1; fi
    say "Meta account $META_ACCOUNT (phone_number_id $META_PNID) in workspace $META_WS;" \
        "Meta (the Graph test server) on $META_GRAPH_URL"
}

# The account's access token (Meta accepts it from now on: the server
# re-reads its tokens file) and the workspace's CRM API key.
meta_reply_credentials() {
    local token_file="$STATE/meta-access-token"
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file")
    (umask 077 && printf '%s %s\n' "$META_PNID" "$(cat "$token_file")" >>"$STATE/graph-tokens")
    "$BIN_DIR/blazzctl" meta token --account "$META_ACCOUNT" --token-file "$token_file" \
        >>"$LOGS/blazzctl.log" 2>&1 || return 1
    META_API_KEY=$("$BIN_DIR/blazzctl" apikeys create --workspace "$META_WS" \
                       --name "chaos $TAG replies" --json 2>>"$LOGS/blazzctl.log" |
                       sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' | head -n 1)
    [ -n "$META_API_KEY" ]
}

# Customer n (0-based): "<bsuid> <phone or ->"; the username users first.
meta_customer() {
    local n=$1
    if [ "$n" -lt "$META_USERNAME_CUSTOMERS" ]; then
        echo "ID.${TAG}u$n -"
    else
        echo "ID.${TAG}p$n +6285810$(printf '%05d' "$n")"
    fi
}

# The `value` of Meta's `messages` change for one text: the BSUID always,
# the phone (wa_id, from) when given.
meta_message_value() {
    local bsuid=$1 phone=$2 wamid=$3 n=$4 ids from=""
    ids="\"user_id\":\"$bsuid\""
    if [ -n "$phone" ]; then
        ids="\"wa_id\":\"${phone#+}\",$ids"
        from="\"from\":\"${phone#+}\","
    fi
    printf '%s' "{\"messaging_product\":\"whatsapp\",
 \"metadata\":{\"display_phone_number\":\"6281${META_PNID: -8}\",\"phone_number_id\":\"$META_PNID\"},
 \"contacts\":[{\"profile\":{\"name\":\"Chaos customer $n\",\"username\":\"chaos.c$n\"},$ids}],
 \"messages\":[{${from}\"from_user_id\":\"$bsuid\",\"id\":\"$wamid\",\"timestamp\":\"$(date +%s)\",
                \"type\":\"text\",\"text\":{\"body\":\"chaos message $wamid\"}}]}"
}

# Post one message's notification until Meta's endpoint took it (200), as
# Meta retries; 1 when META_GIVE_UP_S passed without. META_RETRIES counts
# the posts again.
meta_deliver() {
    local value=$1 deadline=$((SECONDS + META_GIVE_UP_S)) status
    while :; do
        status=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 20 -X POST \
                      -H 'Content-Type: application/json' --data "$value" \
                      "$META_GRAPH_URL/_inbound/$META_WABA" 2>/dev/null) || true
        [ "$status" = 200 ] && return 0
        [ $SECONDS -lt $deadline ] || return 1
        META_RETRIES=$((META_RETRIES + 1))
        sleep 1
    done
}

# The sender's loop (see the top), paced at META_RATE messages a second.
meta_traffic() {
    local customers=$((META_USERNAME_CUSTOMERS + META_PHONE_CUSTOMERS)) start k=0 n bsuid phone
    local with_phone sent=0 accepted=0 refused=0 withheld=0 due wamid
    META_RETRIES=0
    RANDOM=$((SEED + 50))
    start=$(now_ms)
    : >"$META_ACCEPTED"
    while [ $(( $(now_ms) - start )) -lt $((DURATION * 1000)) ]; do
        n=$((RANDOM % customers))
        read -r bsuid phone <<<"$(meta_customer "$n")"
        with_phone=0
        if [ "$phone" != - ]; then
            if [ $((RANDOM % 3)) = 0 ]; then withheld=$((withheld + 1)); else with_phone=1; fi
        fi
        wamid="wamid.CHAOS-${SEED}-META-$k"
        sent=$((sent + 1))
        if meta_deliver "$(meta_message_value "$bsuid" "$([ "$with_phone" = 1 ] && echo "$phone")" "$wamid" "$n")"; then
            echo "$META_PNID $wamid $bsuid $phone $with_phone" >>"$META_ACCEPTED"
            accepted=$((accepted + 1))
        else
            refused=$((refused + 1))
        fi
        k=$((k + 1))
        due=$(( start + k * 1000 / META_RATE - $(now_ms) ))
        [ "$due" -le 0 ] || sleep "$(printf '%d.%03d' $((due / 1000)) $((due % 1000)))"
    done
    printf 'sent=%s\naccepted=%s\nrefused=%s\nretries=%s\nwithheld=%s\n' \
        "$sent" "$accepted" "$refused" "$META_RETRIES" "$withheld" >"$META_STATUS"
}

# Start the sender beside the inbound simulators (the driver waits for it
# with them).
meta_start_traffic() {
    [ "$META_ON" = 1 ] || return 0
    meta_traffic >>"$LOGS/meta-sender.log" 2>&1 </dev/null &
    SIM_PIDS+=($!)
    meta_replies_on || return 0
    meta_reply_traffic >>"$LOGS/meta-replies.log" 2>&1 </dev/null &
    SIM_PIDS+=($!)
}

# POST /v1/messages: one reply to phone under idempotency key, posted
# again until ingest answers (it is replaced meanwhile); prints the
# message id. 1 when refused (a 4xx) or not taken within META_GIVE_UP_S.
# The API key goes to curl on stdin, never on its command line.
meta_reply() {
    local phone=$1 key=$2 deadline=$((SECONDS + META_GIVE_UP_S)) answer code
    while :; do
        answer=$(printf 'header = "Authorization: Bearer %s"\n' "$META_API_KEY" |
                     curl -s --noproxy '*' --max-time 20 -K - -w '\n%{http_code}' -X POST \
                         -H 'Content-Type: application/json' \
                         --data "{\"idempotency_key\":\"$key\",\"contact_phone\":\"$phone\",
                                  \"whatsapp_account_id\":$META_ACCOUNT,\"body\":\"chaos reply $key\"}" \
                         "http://${INGEST_LISTEN[${INGESTS[0]}]}/v1/messages" 2>/dev/null) || true
        code=${answer##*$'\n'}
        case "$code" in
            202) sed -n 's/.*"message_id": *"\([^"]*\)".*/\1/p' <<<"${answer%$'\n'*}"
                 return 0 ;;
            429 | 5?? | 000) ;;
            *) note "Meta reply $key to $phone refused: $code ${answer%$'\n'*}"
               return 1 ;;
        esac
        [ $SECONDS -lt $deadline ] || return 1
        sleep 1
    done
}

# The replies' loop (see the top): to a customer whose phone a stored
# inbound message carried, every META_REPLY_EVERY_S seconds.
meta_reply_traffic() {
    local start k=0 phone id accepted=0 refused=0
    start=$(now_ms)
    : >"$META_REPLIES"
    while [ $(( $(now_ms) - start )) -lt $((DURATION * 1000)) ]; do
        sleep "$META_REPLY_EVERY_S"
        phone=$(sql "SELECT ct.phone FROM chats c JOIN contacts ct ON ct.id = c.contact_id
                     WHERE c.whatsapp_account_id = :acct AND c.type = 'inbound'
                       AND ct.deleted_at IS NULL AND ct.phone LIKE '+%'
                     ORDER BY random() LIMIT 1" acct="$META_ACCOUNT") || phone=""
        [ -n "$phone" ] || continue
        if id=$(meta_reply "$phone" "$TAG-meta-reply-$k") && [ -n "$id" ]; then
            echo "$id" >>"$META_REPLIES"
            accepted=$((accepted + 1))
        else
            refused=$((refused + 1))
        fi
        k=$((k + 1))
    done
    printf 'accepted=%s\nrefused=%s\n' "$accepted" "$refused" >"$META_REPLY_STATUS"
}

meta_stop() {
    [ -n "$META_GRAPH_PID" ] || return 0
    stop_pid "$META_GRAPH_PID"
    META_GRAPH_PID=""
}

# The sender's log as chaos.meta_accepted, and its messages among the
# run's accepted ones.
meta_load_evidence() {
    sql "CREATE TABLE chaos.meta_accepted (session_id text, wam_id text, bsuid text, phone text,
                                           with_phone int)" >/dev/null
    sql "CREATE TABLE chaos.meta_replies (message_id text);
         CREATE TABLE chaos.meta_graph (ms bigint, pnid text, kind text, recipient text, ref text,
                                        wam_id text)" >/dev/null
    [ "$META_ON" = 1 ] && [ -s "$META_ACCEPTED" ] || return 0
    psql "$BLAZZ_PG_DSN" -X -q -v ON_ERROR_STOP=1 \
        -c "\\copy chaos.meta_accepted FROM '$META_ACCEPTED' WITH (DELIMITER ' ')" &&
        sql "INSERT INTO chaos.accepted SELECT session_id, wam_id FROM chaos.meta_accepted" >/dev/null ||
        return 1
    meta_replies_on || return 0
    # a record line may carry a group flag or more after the wamid: the
    # first six fields only
    awk '{ print $1, $2, $3, $4, $5, $6 }' "$STATE/graph-server.record" >"$STATE/graph-record.ssv"
    psql "$BLAZZ_PG_DSN" -X -q -v ON_ERROR_STOP=1 \
        -c "\\copy chaos.meta_replies FROM '$META_REPLIES'" \
        -c "\\copy chaos.meta_graph FROM '$STATE/graph-record.ssv' WITH (DELIMITER ' ')" &&
        sql "INSERT INTO chaos.accepted SELECT g.pnid, g.wam_id FROM chaos.meta_graph g
             JOIN chaos.meta_replies r ON r.message_id = g.ref" >/dev/null
}

check_meta() {
    [ "$META_ON" = 1 ] || return 0
    local total once missing doubled customers whole split wrong_phone events delivered
    check "Meta messages sent (BSUID customers)" "-" \
        "$(status_number "$META_STATUS" sent) ($(status_number "$META_STATUS" withheld) phone withheld, $(status_number "$META_STATUS" retries) posted again)" info
    check "Meta messages refused (no 200 in ${META_GIVE_UP_S}s)" 0 "$(status_number "$META_STATUS" refused)"
    read -r total once missing doubled <<<"$(sql "
SELECT count(*), count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n > 1)
FROM (SELECT a.wam_id, count(c.id) AS n FROM (SELECT DISTINCT wam_id FROM chaos.meta_accepted) a
      LEFT JOIN chats c ON c.whatsapp_account_id = :acct AND c.wam_id = a.wam_id GROUP BY 1) x" \
        acct="$META_ACCOUNT" | tr '|' ' ')"
    check "Meta messages answered 200 stored exactly once" "$total" "$once (missing $missing, doubled $doubled)"
    check "Meta messages stored that no 200 answered" 0 "$(sql "
SELECT count(*) FROM chats c WHERE c.whatsapp_account_id = :acct AND c.type = 'inbound'
  AND NOT EXISTS (SELECT 1 FROM chaos.meta_accepted a WHERE a.wam_id = c.wam_id)" acct="$META_ACCOUNT")"
    # Each customer: one live contact with its BSUID, all its messages
    # under it, its phone if a message named it, else the BSUID (0010).
    read -r customers whole split wrong_phone <<<"$(sql "
WITH cu AS (SELECT bsuid, max(phone) FILTER (WHERE with_phone = 1) AS phone
            FROM chaos.meta_accepted GROUP BY 1),
k AS (SELECT cu.bsuid, cu.phone AS want, count(ct.id) AS n, min(ct.id) AS id, min(ct.phone) AS phone
      FROM cu LEFT JOIN contacts ct ON ct.workspace_id = :ws AND ct.deleted_at IS NULL AND ct.bsuid = cu.bsuid
      GROUP BY 1, 2)
SELECT count(*),
       count(*) FILTER (WHERE n = 1 AND phone = coalesce(want, bsuid) AND NOT EXISTS
           (SELECT 1 FROM chaos.meta_accepted a JOIN chats c ON c.whatsapp_account_id = :acct AND c.wam_id = a.wam_id
            WHERE a.bsuid = k.bsuid AND c.contact_id IS DISTINCT FROM k.id)),
       count(*) FILTER (WHERE n <> 1),
       count(*) FILTER (WHERE n = 1 AND phone IS DISTINCT FROM coalesce(want, bsuid))
FROM k" ws="$META_WS" acct="$META_ACCOUNT" | tr '|' ' ')"
    check "Meta customers: one contact holding all, by BSUID" "$customers" \
        "$whole (not one contact $split, wrong phone $wrong_phone)"
    check "Meta workspace: live contacts (one per customer)" "$customers" "$(sql "
SELECT count(*) FROM contacts WHERE workspace_id = :ws AND deleted_at IS NULL" ws="$META_WS")"
    # The CRM's side: one message.created per stored message, delivered once
    # (by workspace, the account's own: an agent's send names no account in
    # its event's envelope).
    read -r events delivered <<<"$(sql "
WITH e AS (SELECT DISTINCT event_id::uuid AS event_id FROM chaos.events
           WHERE type = 'message.created' AND workspace_id = :ws)
SELECT count(*), count(*) FILTER (WHERE
         (SELECT count(*) FROM webhook_retry_queue q WHERE q.event_id = e.event_id AND q.status = 'success') = 1
         AND EXISTS (SELECT 1 FROM chaos.received r WHERE r.webhook_id = e.event_id::text
                       AND r.path = '/ok/meta' AND r.status BETWEEN 200 AND 299))
FROM e" ws="$META_WS" | tr '|' ' ')"
    check "Meta message.created events (one per message)" \
        "$(sql "SELECT count(*) FROM chats WHERE whatsapp_account_id = :acct" acct="$META_ACCOUNT")" "$events"
    check "Meta message.created delivered once (2xx)" "$events" "$delivered"
    if meta_replies_on; then check_meta_replies; fi
}

check_meta_replies() {
    local replies once taken
    taken=$(status_number "$META_REPLY_STATUS" accepted)
    check "Meta replies taken by the CRM API (any)" yes \
        "$([ "$taken" -gt 0 ] && echo yes || echo no) ($taken, $(sql "SELECT count(*) FROM chaos.meta_replies") logged)"
    check "Meta replies refused by the CRM API" 0 "$(status_number "$META_REPLY_STATUS" refused)"
    read -r replies once <<<"$(sql "
SELECT count(*), count(*) FILTER (WHERE
         (SELECT count(*) FROM chaos.meta_graph g WHERE g.ref = r.message_id) = 1
         AND EXISTS (SELECT 1 FROM chats c JOIN chaos.meta_graph g ON g.ref = r.message_id
                     WHERE c.whatsapp_account_id = :acct AND c.type = 'outbound'
                       AND c.metadata->>'client_reference' = r.message_id AND c.wam_id = g.wam_id
                       AND c.message_status IN ('sent', 'delivered', 'read')))
FROM chaos.meta_replies r" acct="$META_ACCOUNT" | tr '|' ' ')"
    check "Meta replies sent to Meta exactly once, row sent" "$replies" "$once"
    check "Meta requests nobody asked for" 0 "$(sql "
SELECT count(*) FROM chaos.meta_graph g
WHERE g.pnid = :'pnid' AND g.kind NOT IN ('read', 'upload')
  AND NOT EXISTS (SELECT 1 FROM chaos.meta_replies r WHERE r.message_id = g.ref)" \
        pnid="$META_PNID")"
}
