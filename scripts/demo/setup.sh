# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/demo/setup.sh - what the demo of `make run` needs in the database
# before traffic starts (sourced by scripts/run.sh), all under the run's
# tag so a run only ever looks at its own rows:
#
#  - two simulator worlds (blazz-gateway-sim with no traffic creates them):
#    "<tag>", 3 workspaces x 2 connected accounts for inbound traffic, and
#    "<tag>c", 1 workspace x 2 accounts that only send campaigns;
#  - a Meta Cloud API account in the campaign workspace (provider_type
#    meta, session id = its phone_number_id, served by gateway "meta", the
#    Meta app's), its access token made up for
#    the run, written to a 0600 file, accepted by the Graph test server
#    (its tokens file) and set with `blazzctl meta token --token-file`, so
#    the token is on no command line; its WhatsApp Business Account set
#    with `blazzctl meta business`, and a template of it, order_update,
#    waiting for Meta's review (PENDING), which Meta approves before the
#    campaigns start (approve_meta_template, wait_template_approved);
#  - a campaign per campaign account, each to its own generated audience
#    (contacts, a contact group, a draft campaign), the accounts paced at
#    3, 2 and 3 messages per second (whatsapp_accounts.metadata.rate_limits);
#    the third is the Meta account's (preferred_provider meta), a template
#    campaign of order_update: its contacts never wrote to the account, and
#    outside Meta's 24-hour window only a template reaches them (a free-form
#    campaign would skip them all, ARCHITECTURE.md §12.7);
#  - the opt-out (issue 35, ARCHITECTURE.md §12.6): the last contact of the
#    Meta campaign (OPTOUT_CONTACT, OPTOUT_PHONE) writes STOP to the Meta
#    account as the demo begins, and START once that campaign completed,
#    each a real inbound message: the Graph test server posts Meta's signed
#    `messages` webhook to ingest (its POST /_inbound), chat-sync opts the
#    contact out, then in (contact_writes, wait_opt_state);
#  - the owner's echo and a call (issue 53): once the agent's message
#    left, the owner answers that customer from the WhatsApp Business app
#    on the same number, and the customer then calls the number
#    (owner_answers_then_customer_calls): the Graph test server posts
#    Meta's signed smb_message_echoes (its POST /_echo) and calls connect
#    and terminate (its POST /_call) webhooks to ingest;
#  - a cleanup workspace with sessions a sweep must remove (QR codes never
#    scanned for 45 min, one disconnected for two days, an older duplicate
#    of a connected number) and sessions it must keep (a fresh QR, the
#    newer duplicate);
#  - webhook endpoints on blazz-webhook-receiver, added with `blazzctl
#    webhooks add`: messages and merged contacts of workspace 0, its
#    session and sync events on
#    a flaky path (the first attempt of each event fails, so retries show),
#    the campaigns' events, the Meta templates' changes and the opt-outs
#    (contact.opted_out, contact.opted_in), the Meta account's
#    conversation (message.created, call.updated), the cleanup
#    workspace's events, and the sessions the demo creates through the CRM
#    API (sessions.sh). blazzctl
#    generates each signing secret and prints it once; it goes straight to
#    a 0600 file the receiver reads to verify signatures.
#
# Results land in globals: WS (inbound workspace ids), CAMPAIGN_WS, CL_WS,
# CAMPAIGN_IDS, ENDPOINT_IDS, STALE_CREATED, KEEPERS_CREATED, META_ACCOUNT,
# META_PNID, META_WABA, META_DISPLAY_PHONE (the number's digits),
# META_TEMPLATE, META_CAMPAIGN, OPTOUT_CONTACT, OPTOUT_PHONE, and DEMO_VARS:
# the same ids as psql variables (ws, endpoints, campaigns: bigint[]
# literals; cleanup_ws, meta_account), which the demo's queries use as
# :'ws'::bigint[].
#
# send_meta_agent_message (called by run.sh once the campaigns started) is
# an agent's message from the Meta account with `blazzctl send`; its id
# lands in META_AGENT_MESSAGE, its customer's phone in META_AGENT_TO.
# owner_answers_then_customer_calls follows it: the owner's echo to that
# customer (its wamid in ECHO_WAMID) and their call of CALL_SECONDS
# (Meta's call id in CALL_ID). approve_meta_template (called before the
# campaigns start) is Meta's review of order_update: the Graph test server
# posts Meta's signed message_template_status_update APPROVED to ingest (its
# POST /_review); wait_template_approved waits for chat-sync to apply it.

# A world of the simulator, created without traffic: tag, workspaces,
# accounts per workspace (the seed, which picks the accounts' phone
# numbers, is the one the simulators of the demo use).
create_world() {
    "$BIN_DIR/blazz-gateway-sim" --mode http --rate 0 --duration 1 --seed "$SEED" --tag "$1" \
        --key-file "$GATEWAY_KEY_FILE" \
        --workspaces "$2" --accounts-per-workspace "$3" --log-level warn \
        >>"$LOGS/gateway-sim.log" 2>&1 </dev/null
}

world_workspaces() {
    sql "SELECT id FROM workspaces WHERE metadata->>'sim_tag' = :'tag' ORDER BY id" tag="$1"
}

setup_worlds() {
    create_world "$TAG" 3 2 && create_world "${TAG}c" 1 2 || return 1
    mapfile -t WS < <(world_workspaces "$TAG")
    CAMPAIGN_WS=$(world_workspaces "${TAG}c")
    [ "${#WS[@]}" -eq 3 ] && [ -n "$CAMPAIGN_WS" ]
}

# The Meta account: a made-up phone_number_id and access token for this
# run; the Graph test server re-reads its tokens file, so it accepts the
# token from now on.
setup_meta_account() {
    local token_file="$STATE/meta-access-token"
    META_PNID="10${TAG#demo}"
    META_ACCOUNT=$(sql "
INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, provider_type, status,
                               last_connected_at, gateway_id)
VALUES (:ws, :'pnid', '+6281' || right(:'pnid', 8), 'meta', 'connected', now(), 'meta')
RETURNING id" \
        ws="$CAMPAIGN_WS" pnid="$META_PNID") || return 1
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token_file")
    (umask 077 && printf '%s %s\n' "$META_PNID" "$(cat "$token_file")" >>"$GRAPH_TOKENS")
    "$BIN_DIR/blazzctl" meta token \
        --account "$META_ACCOUNT" --token-file "$token_file" >>"$LOGS/blazzctl.log" 2>&1 || return 1
    META_WABA="9${META_PNID}"
    META_DISPLAY_PHONE="6281${META_PNID: -8}"
    "$BIN_DIR/blazzctl" meta business --account "$META_ACCOUNT" --waba "$META_WABA" \
        >>"$LOGS/blazzctl.log" 2>&1 || return 1
    META_TEMPLATE=$(sql "
INSERT INTO templates (workspace_id, name, language, category, status, meta_waba_id, body_text)
VALUES (:ws, 'order_update', 'id', 'UTILITY', 'PENDING', :'waba', 'Pesanan {{1}} sudah dikirim')
RETURNING id" ws="$CAMPAIGN_WS" waba="$META_WABA")
}

# Meta's review of the demo's template: approved, by Meta's webhook.
approve_meta_template() {
    curl -sf --noproxy '*' -X POST -H 'Content-Type: application/json' \
        --data "{\"event\":\"APPROVED\",\"message_template_id\":$META_TEMPLATE,
                 \"message_template_name\":\"order_update\",
                 \"message_template_language\":\"id\",\"reason\":\"NONE\"}" \
        "http://127.0.0.1:$GRAPH_PORT/_review/$META_WABA" >>"$LOGS/run.log" 2>&1 || return 1
    note "Meta approved template order_update (message_template_status_update to ingest)"
}

# Until chat-sync applied Meta's approval (templates.status), 60 s at most:
# a template campaign starts only with its template approved.
wait_template_approved() {
    local deadline=$((SECONDS + 60))
    until [ "$(sql "SELECT status FROM templates WHERE id = :id" id="$META_TEMPLATE")" = APPROVED ]; do
        require_services
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

# Campaign i (0, 1, 2) goes out from account i of the campaign workspace
# (the two simulator accounts, then the Meta account), paced at RATES[i]
# per second, to SIZES[i] generated contacts.
setup_campaigns() {
    local -a rates=(3 2 3) names=("Weekend promo" "Restock alert" "Meta launch")
    local -a providers=(webjs webjs meta)
    local -a sizes=($(( AUDIENCE * 2 / 5 )) $(( AUDIENCE * 3 / 10 )))
    sizes+=($(( AUDIENCE - sizes[0] - sizes[1] )))
    local -a accounts
    mapfile -t accounts < <(sql "SELECT id FROM whatsapp_accounts WHERE workspace_id = :ws
                                 ORDER BY provider_type = 'meta', id" ws="$CAMPAIGN_WS")
    CAMPAIGN_IDS=()
    local i first=1
    for i in 0 1 2; do
        # established numbers (warmup_since): past a new webjs number's warm-up (§11.3)
        sql "UPDATE whatsapp_accounts SET metadata = metadata || jsonb_build_object('rate_limits',
                 jsonb_build_object('per_second', :rate::int, 'per_minute', 0, 'per_hour', 0),
                 'warmup_since', '2020-01-01')
             WHERE id = :acct" acct="${accounts[$i]}" rate="${rates[$i]}" >/dev/null || return 1
        CAMPAIGN_IDS+=("$(sql "
WITH g AS (INSERT INTO contact_groups (workspace_id, name)
           VALUES (:ws, :'name' || ' audience') RETURNING id),
c AS (INSERT INTO contacts (workspace_id, first_name, last_name, phone, source_type)
      SELECT :ws, (ARRAY['Ayu','Budi','Citra','Dewi','Eko','Fajar','Gita','Hadi'])[1 + n % 8],
             'Customer ' || n, '+62857' || lpad(n::text, 7, '0'), 'manual'
      FROM generate_series(:first::int, :first::int + :n::int - 1) n RETURNING id),
m AS (INSERT INTO contact_group_members (workspace_id, contact_group_id, contact_id)
      SELECT :ws, g.id, c.id FROM g, c)
INSERT INTO campaigns (workspace_id, whatsapp_account_id, name, campaign_type, contact_group_id,
                       message_content, preferred_provider, status)
SELECT :ws, :acct, :'name', 'instant', g.id,
       'Hi {{first_name}}, ' || :'name' || ' is on: reply STOP to opt out.', :'provider', 'draft' FROM g
RETURNING id" ws="$CAMPAIGN_WS" acct="${accounts[$i]}" name="${names[$i]}" \
            first="$first" n="${sizes[$i]}" provider="${providers[$i]}")") || return 1
        first=$(( first + sizes[i] ))
    done
    META_CAMPAIGN=${CAMPAIGN_IDS[2]}
    sql "UPDATE campaigns SET campaign_type = 'template', template_id = :tpl, message_content = NULL,
             metadata = metadata || '{\"template_params\": {\"1\": \"DEMO-{{phone}}\"}}'
         WHERE id = :id RETURNING id" id="$META_CAMPAIGN" tpl="$META_TEMPLATE" >/dev/null
}

# An agent's text from the Meta account to the first contact of its
# campaign, as the CRM would send it (crm.commands through blazzctl). The
# contact asked a minute ago (its message stored as history), so Meta's
# 24-hour customer-service window is open for a free-form reply
# (libs/wa/service_window.h).
send_meta_agent_message() {
    local to out
    to=$(sql "SELECT ct.phone FROM campaigns c
              JOIN contact_group_members m ON m.contact_group_id = c.contact_group_id
              JOIN contacts ct ON ct.id = m.contact_id
              WHERE c.id = :id ORDER BY ct.id LIMIT 1" id="$META_CAMPAIGN") || return 1
    sql "INSERT INTO chats (workspace_id, whatsapp_account_id, contact_id, wam_id, type, provider_type,
                            message_status, status, is_read, metadata, created_at)
         SELECT :ws, :acct, id, 'wamid.DEMO-ASK-' || id, 'inbound', 'meta', 'delivered', 'delivered',
                true, '{\"body\": \"Where is my order?\"}', now() - interval '1 minute'
         FROM contacts WHERE workspace_id = :ws AND phone = :'phone' RETURNING id" \
        ws="$CAMPAIGN_WS" acct="$META_ACCOUNT" phone="$to" >/dev/null || return 1
    out=$("$BIN_DIR/blazzctl" send --workspace "$CAMPAIGN_WS" --account "$META_ACCOUNT" --to "$to" \
        --text "Thanks for your order! Track it at https://example.com/track" --json \
        2>>"$LOGS/blazzctl.log") || return 1
    META_AGENT_MESSAGE=$(sed -n 's/.*"message_id": *"\([^"]*\)".*/\1/p' <<<"$out" | head -n 1)
    [ -n "$META_AGENT_MESSAGE" ] || return 1
    META_AGENT_TO=$to
    note "agent message $META_AGENT_MESSAGE sent from Meta account $META_ACCOUNT (blazzctl send)"
}

# graph_control PATH BODY: a request to one of the Graph test server's
# control routes (the top of graph_test_server.c); the "id" it answers.
graph_control() {
    local out
    out=$(curl -sf --noproxy '*' -X POST -H 'Content-Type: application/json' --data "$2" \
        "http://127.0.0.1:$GRAPH_PORT$1" 2>>"$LOGS/run.log") || return 1
    sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' <<<"$out"
}

# The owner answers the agent's customer from the WhatsApp Business app
# (coexistence: Meta's smb_message_echoes), and the customer then calls
# the number for CALL_SECONDS (Meta's calls: connect, then terminate
# COMPLETED); chat-sync stores the echo as an outbound message of their
# chat and the call as a calls row.
ECHO_WAMID=""
CALL_ID=""
CALL_SECONDS=12
owner_answers_then_customer_calls() {
    local digits=${META_AGENT_TO#+} number
    number="\"phone_number_id\":\"$META_PNID\",\"display_phone_number\":\"$META_DISPLAY_PHONE\""
    ECHO_WAMID=$(graph_control "/_echo/$META_WABA" \
        "{$number,\"to\":\"$digits\",\"text\":\"Call us if anything is unclear\"}") || return 1
    CALL_ID=$(graph_control "/_call/$META_WABA" \
        "{$number,\"from\":\"$digits\",\"name\":\"Demo customer\",\"duration\":$CALL_SECONDS}") ||
        return 1
    [ -n "$ECHO_WAMID" ] && [ -n "$CALL_ID" ] || return 1
    note "the owner answered $META_AGENT_TO from the phone (smb_message_echoes);" \
         "$META_AGENT_TO then called for $CALL_SECONDS s (calls: connect, terminate)"
}

# The contact who opts out: the Meta campaign's last (its first gets the
# agent's message).
setup_optout() {
    IFS='|' read -r OPTOUT_CONTACT OPTOUT_PHONE <<<"$(sql "
SELECT ct.id || '|' || ct.phone FROM campaigns c
JOIN contact_group_members m ON m.contact_group_id = c.contact_group_id
JOIN contacts ct ON ct.id = m.contact_id
WHERE c.id = :id ORDER BY ct.id DESC LIMIT 1" id="$META_CAMPAIGN")"
    [ -n "$OPTOUT_PHONE" ]
}

# contact_writes WORD: OPTOUT_PHONE writes WORD to the Meta account, as
# Meta's signed `messages` webhook to ingest (the Graph test server's POST
# /_inbound). Meta's timestamps are seconds and chat-sync keeps only a
# newer word than the last (opt_out_changed_at), so a word waits for the
# second after the previous one.
OPTOUT_LAST_TS=0
contact_writes() {
    local word=$1 wa_id=${OPTOUT_PHONE#+} ts
    while [ "$(date +%s)" -le "$OPTOUT_LAST_TS" ]; do sleep 0.2; done
    ts=$(date +%s)
    curl -sf --noproxy '*' -X POST -H 'Content-Type: application/json' \
        --data "{\"messaging_product\":\"whatsapp\",
                 \"metadata\":{\"phone_number_id\":\"$META_PNID\"},
                 \"contacts\":[{\"profile\":{\"name\":\"Demo contact\"},\"wa_id\":\"$wa_id\"}],
                 \"messages\":[{\"from\":\"$wa_id\",\"id\":\"wamid.DEMO-$word-$OPTOUT_CONTACT\",
                                \"timestamp\":\"$ts\",\"type\":\"text\",\"text\":{\"body\":\"$word\"}}]}" \
        "http://127.0.0.1:$GRAPH_PORT/_inbound/$META_WABA" >>"$LOGS/run.log" 2>&1 || return 1
    OPTOUT_LAST_TS=$ts
    note "contact $OPTOUT_PHONE wrote $word to Meta account $META_ACCOUNT (messages webhook to ingest)"
}

# username_customer_writes: a customer who adopted a WhatsApp username
# writes to the Meta account: Meta's `messages` webhook names them by their
# business-scoped user id (contacts[].user_id, messages[].from_user_id)
# and withholds the phone (decision 0010). USERNAME_BSUID is theirs.
USERNAME_BSUID=""
username_customer_writes() {
    local ts
    ts=$(date +%s)
    USERNAME_BSUID="ID.${TAG//[!0-9A-Za-z]/}"
    curl -sf --noproxy '*' -X POST -H 'Content-Type: application/json' \
        --data "{\"messaging_product\":\"whatsapp\",
                 \"metadata\":{\"phone_number_id\":\"$META_PNID\"},
                 \"contacts\":[{\"profile\":{\"name\":\"Demo username\",\"username\":\"demo.user\"},
                               \"user_id\":\"$USERNAME_BSUID\"}],
                 \"messages\":[{\"from_user_id\":\"$USERNAME_BSUID\",\"id\":\"wamid.DEMO-USERNAME-$TAG\",
                                \"timestamp\":\"$ts\",\"type\":\"text\",\"text\":{\"body\":\"halo\"}}]}" \
        "http://127.0.0.1:$GRAPH_PORT/_inbound/$META_WABA" >>"$LOGS/run.log" 2>&1 || return 1
    note "a username customer ($USERNAME_BSUID, no phone) wrote to Meta account $META_ACCOUNT"
}

# wait_opt_state out|in: until chat-sync recorded the contact's word
# (contacts.opted_out_at set, or cleared by a later word), 60 s at most
# while the services run: the Meta campaign starts only once the contact
# is opted out, so that it is skipped whatever the timing.
wait_opt_state() {
    local want=$1 deadline=$((SECONDS + 60)) cond="opted_out_at IS NOT NULL"
    [ "$want" = in ] && cond="opted_out_at IS NULL AND opt_out_changed_at IS NOT NULL"
    until [ "$(sql "SELECT count(*) FROM contacts WHERE id = :id AND $cond" \
                   id="$OPTOUT_CONTACT")" = 1 ]; do
        require_services
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
    note "chat-sync opted contact $OPTOUT_PHONE $want (contacts.opted_out_at)"
}

# Sessions for the sweep, all in a workspace of their own: STALE_CREATED
# must go, KEEPERS_CREATED must stay.
setup_stale_sessions() {
    CL_WS=$(sql "INSERT INTO workspaces (name, metadata)
                 VALUES ('Demo cleanup', jsonb_build_object('demo_tag', :'tag')) RETURNING id" \
        tag="$TAG") || return 1
    sql "
INSERT INTO whatsapp_accounts (workspace_id, session_id, phone_number, status, last_activity_at,
                               disconnected_at, disconnect_reason, last_connected_at)
SELECT :ws, 'demo-' || :'tag' || '-qr' || n, NULL, 'qr_scanning', now() - interval '45 minutes',
       NULL, NULL, NULL FROM generate_series(1, 3) n
UNION ALL
SELECT :ws, 'demo-' || :'tag' || '-gone', '+6281900000001', 'disconnected', now() - interval '3 days',
       now() - interval '2 days', 'timeout', now() - interval '3 days'
UNION ALL
SELECT :ws, 'demo-' || :'tag' || '-dup-old', '+6281900000002', 'connected', now(), NULL, NULL,
       now() - interval '1 day'
UNION ALL
SELECT :ws, 'demo-' || :'tag' || '-dup-new', '+6281900000002', 'connected', now(), NULL, NULL, now()
UNION ALL
SELECT :ws, 'demo-' || :'tag' || '-qr-fresh', NULL, 'qr_scanning', now() - interval '5 minutes',
       NULL, NULL, NULL" ws="$CL_WS" tag="$TAG" >/dev/null || return 1
    STALE_CREATED=5
    KEEPERS_CREATED=2
}

# add_endpoint WORKSPACE PATH EVENTS: register RECEIVER_URL/PATH and append
# "PATH SECRET" to the receiver's secrets file.
add_endpoint() {
    local ws=$1 path=$2 events=$3 out id secret
    out=$("$BIN_DIR/blazzctl" webhooks add \
        --workspace "$ws" --url "$RECEIVER_URL$path" --events "$events" --rate 1000 \
        --concurrency 8 --timeout-ms 5000 --name "demo $path" --json 2>>"$LOGS/blazzctl.log") ||
        return 1
    id=$(sed -n 's/.*"id": *\([0-9]*\).*/\1/p' <<<"$out" | head -n 1)
    secret=$(sed -n 's/.*"secret": *"\([^"]*\)".*/\1/p' <<<"$out" | head -n 1)
    [ -n "$id" ] && [ -n "$secret" ] || return 1
    printf '%s %s\n' "$path" "$secret" >>"$RECEIVER_SECRETS"
    ENDPOINT_IDS+=("$id")
}

setup_endpoints() {
    ENDPOINT_IDS=()
    (umask 077 && : >"$RECEIVER_SECRETS")
    add_endpoint "${WS[0]}" /ok/messages message.created,message.status,contact.merged &&
        add_endpoint "${WS[0]}" /flaky/1/sessions session.status,sync.progress &&
        add_endpoint "${WS[1]}" /ok/sessions session.qr,session.status &&
        add_endpoint "$CAMPAIGN_WS" /ok/campaigns \
            campaign.progress,campaign.completed,template.updated,contact.opted_out,contact.opted_in &&
        add_endpoint "$CAMPAIGN_WS" /ok/media message.media_ready &&
        add_endpoint "$CAMPAIGN_WS" /ok/meta message.created,call.updated &&
        add_endpoint "$CL_WS" /ok/cleanup '*'
}

setup_demo() {
    setup_worlds || { say "creating the simulator worlds failed (see $LOGS/gateway-sim.log)"; return 1; }
    setup_meta_account ||
        { say "creating the Meta account or setting its token failed (see $LOGS/blazzctl.log)"; return 1; }
    setup_campaigns || { say "creating the campaigns failed"; return 1; }
    setup_optout || { say "choosing the contact who opts out failed"; return 1; }
    setup_stale_sessions || { say "creating the stale sessions failed"; return 1; }
    setup_endpoints || { say "adding webhook endpoints failed (see $LOGS/blazzctl.log)"; return 1; }
    DEMO_VARS=("ws={$(IFS=,; echo "${WS[*]}")}" "endpoints={$(IFS=,; echo "${ENDPOINT_IDS[*]}")}"
               "campaigns={$(IFS=,; echo "${CAMPAIGN_IDS[*]}")}" "cleanup_ws=$CL_WS"
               "meta_account=$META_ACCOUNT")
}
