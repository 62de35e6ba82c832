# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/demo/figures.sh - the figures of `make run` (sourced by
# scripts/run.sh): measured once, after the demo settled, into the
# associative array FIG and the file $REPORT_FILE ("key=value" lines,
# stable keys, for scripts and tests/integration/test_make_run.c); the
# human report (report.sh) prints from FIG, so both always agree.
#
# Where each figure comes from, so that a test can check it against
# another source:
#   inbound_*    the traffic simulator's status file (sent, accepted) and
#                the run's rows (chats, live contacts, groups; lid_contacts:
#                live contacts with a LID, merged: contacts merged into
#                another, merged_webhooks: the first workspace's
#                contact.merged deliveries recorded as success); latency is
#                first storage: gateway timestamp (chats.created_at) ->
#                insert (chats.updated_at) of live inbound messages no
#                later reaction, edit, deletion or read mark changed (any
#                update moves updated_at: those are counted apart), split
#                at the end of the warm-up into cold start and steady state
#   webhook_*    the receiver's record: a delivery is a (path, webhook-id)
#                answered 2xx; verified ones passed the Standard Webhooks
#                check; retried counts requests beyond each first one;
#                latency is first delivery: gateway timestamp -> the 2xx of
#                a first attempt at the receiver, of message.created for
#                live inbound messages after the warm-up; those delivered
#                only by a retry are counted apart (webhook_latency_retried,
#                and their gateway -> 2xx p50); webhook_failed is from
#                webhook_retry_queue
#   campaign_*   the campaigns' counters; pacing is (queued logs - 1) over
#                the time from the first to the last queued_at
#   meta_*       the Graph test server's record (graph_accepted: requests
#                for the demo's phone_number_id it accepted, i.e. answered
#                with a wamid), meta_sends (sends_sent: rows meta-sender
#                settled as sent, the independent count), the Meta
#                campaign's counters (campaign_<id>_*), the agent
#                message's chats row (agent_status), the template's row
#                (template_status) and the template.updated webhooks the
#                receiver took (template_webhooks); the username customer's
#                live contacts by their BSUID and its messages
#                (username_contacts, username_messages); the owner's echo
#                (setup.sh): its chats rows outbound in the agent's
#                customer's chat (echo_rows) and their message_status
#                (echo_status), the message.created deliveries of its
#                wamid the receiver verified (echo_webhooks); the
#                customer's call: its calls row (call_status, call_rows:
#                rows of its id, inbound, from that customer), its length
#                (call_duration_s, ended_at - started_at) and the
#                call.updated deliveries of its id the receiver verified
#                (call_webhooks)
#   optout_*     the contact who wrote STOP, then START (setup.sh): its
#   optin_*      inbound chats on the Meta account in order (words), the
#                Meta campaign's messages_skipped (skipped), the
#                contact.opted_out and contact.opted_in deliveries
#                webhook-dispatcher recorded as success, and whether its
#                row is opted in again (opted_in)
#   cleanup_*    the cleanup workspace's accounts (removed = soft-deleted)
#   sessions_*   the sessions created through the CRM API (sessions.sh):
#                their session.qr and connected webhooks from the
#                receiver's record, the rest from whatsapp_accounts
#   media_in_*   the photo the contact sent (media.sh): its chat_media row
#                (through chats.media_id: type, size, sha256), the
#                message.media_ready deliveries recorded as success
#                (webhooks), the Graph test server's downloads of its
#                media id (/_media/counts), the link GET /v1/media/{uuid}
#                gave (its path: the signature stays out of the file) and
#                whether the bytes it served hash as the PNG sent
#                (sha256_ok)
#   media_out_*  the agent's image (media.sh): the Graph test server's
#                record (uploads: the number's upload lines; upload_id:
#                the id answered) and bodies (sent_by_id: accepted
#                messages naming that id as their image), the message's
#                chats row (status) and the account's meta_media_uploads
#                id (meta_media_id, the backbone's own account of it)
#   media_webjs_* the traffic's photos and voice notes whose bytes the
#                simulated gateway uploaded (its status file: uploaded,
#                upload_failed) and the messages of its workspaces linked
#                to a 'webjs' chat_media row (linked)
#   dlq_*        the services' dead-letter counters (/metrics) and the
#                first record on wa.inbound.dlq since the demo began
#                (`blazzctl dlq tail`)

declare -A FIG=()
CLEANUP_AUDIT=()

# One row of SQL (fields joined by '|'), "?" when the query fails.
q() {
    local text=$1
    shift
    sql "$text" "$@" 2>>"$LOGS/run.log" || echo "?"
}

# q with the demo's ids as psql variables (DEMO_VARS, setup.sh).
qd() {
    local text=$1
    shift
    q "$text" "${DEMO_VARS[@]}" "$@"
}

status_value() { { sed -n "s/^$2=//p" "$1" 2>/dev/null || true; } | head -n 1; }

# Sum of the samples of metric families matching regex $1 over the services.
metrics_sum() {
    local total=0 v port
    for port in "${SVC_PORTS[@]}"; do
        v=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null |
            awk -v re="$1" '$1 ~ re { s += $NF } END { printf "%d", s }') || v=0
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# "count|p50|p99|changed" (ms) of the first storage of live inbound
# messages created in [from, to): rows a later update changed (their
# updated_at is no longer the insert's) are only counted.
latency_between() {
    qd "SELECT count(*) FILTER (WHERE NOT changed) || '|'
              || coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE NOT changed))::numeric, 1)::text, '-')
              || '|' || coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE NOT changed))::numeric, 1)::text, '-')
              || '|' || count(*) FILTER (WHERE changed)
       FROM (SELECT extract(epoch FROM updated_at - created_at) * 1000 AS ms,
                    $(row_changed_sql) AS changed
             FROM chats
             WHERE workspace_id = ANY (:'ws'::bigint[]) AND type = 'inbound'
               AND created_at >= to_timestamp(:from / 1000.0) AND created_at < to_timestamp(:to / 1000.0)) x" \
        from="$1" to="$2"
}

# Set FIG[prefix_count], FIG[prefix_p50_ms], FIG[prefix_p99_ms] (and
# FIG[prefix_apart]) from "n|p50|p99[|apart]".
set_latency() {
    local prefix=$1 n p50 p99 apart
    IFS='|' read -r n p50 p99 apart <<<"$2"
    FIG[${prefix}_messages]=${n:-?}
    FIG[${prefix}_p50_ms]=${p50:-?}
    FIG[${prefix}_p99_ms]=${p99:-?}
    [ -z "${apart:-}" ] || FIG[${prefix}_apart]=$apart
}

collect_inbound() {
    local s="$TRAFFIC_STATUS"
    FIG[inbound_sent]=$(status_value "$s" sent)
    FIG[inbound_accepted]=$(status_value "$s" accepted)
    FIG[inbound_rejected]=$(status_value "$s" rejected)
    FIG[inbound_retries]=$(status_value "$s" retries)
    IFS='|' read -r "FIG[inbound_chats]" "FIG[inbound_contacts]" "FIG[inbound_groups]" \
        "FIG[inbound_lid_contacts]" "FIG[inbound_merged]" "FIG[inbound_merged_webhooks]" <<<"$(qd "
SELECT (SELECT count(*) FROM chats WHERE workspace_id = ANY (:'ws'::bigint[])) || '|' ||
       (SELECT count(*) FROM contacts WHERE workspace_id = ANY (:'ws'::bigint[])
          AND deleted_at IS NULL) || '|' ||
       (SELECT count(*) FROM whatsapp_groups WHERE workspace_id = ANY (:'ws'::bigint[])) || '|' ||
       (SELECT count(*) FROM contacts WHERE workspace_id = ANY (:'ws'::bigint[])
          AND deleted_at IS NULL AND lid IS NOT NULL) || '|' ||
       (SELECT count(*) FROM contacts WHERE workspace_id = ANY (:'ws'::bigint[])
          AND metadata ? 'merged_into') || '|' ||
       (SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = (:'ws'::bigint[])[1]
          AND event_type = 'contact.merged' AND status = 'success')")"
    FIG[inbound_history_sync]=$(qd "SELECT coalesce(string_agg(s || ' x' || n, ', '), 'none') FROM
        (SELECT coalesce(metadata->>'sync_status', '-') s, count(*) n FROM whatsapp_accounts
         WHERE workspace_id = ANY (:'ws'::bigint[]) GROUP BY 1 ORDER BY 1) x")
    set_latency latency_cold "$(latency_between "$DEMO_START_MS" "$STEADY_START_MS")"
    set_latency latency_steady "$(latency_between "$STEADY_START_MS" 99999999999999)"
    FIG[latency_changed]=$(( ${FIG[latency_cold_apart]:-0} + ${FIG[latency_steady_apart]:-0} ))
    unset 'FIG[latency_cold_apart]' 'FIG[latency_steady_apart]'
}

# The receiver's record file, loaded into a temporary table of one psql
# session (JSON lines as one-column CSV with quote and delimiter bytes JSON
# never contains raw), then summed up.
receiver_summary() {
    [ -s "$RECEIVER_RECORD" ] || { echo "0|0|0|0|0"; echo "0|-|-"; return 0; }
    psql "$BLAZZ_PG_DSN" -X -q -tA -v ON_ERROR_STOP=1 -v steady="$STEADY_START_MS" 2>>"$LOGS/run.log" <<EOF
CREATE TEMP TABLE raw (line text);
\copy raw FROM '$RECEIVER_RECORD' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
CREATE TEMP TABLE req AS
    SELECT (r->>'t_ms')::float8 AS t_ms, r->>'path' AS path, (r->>'status')::int AS status,
           r->'headers'->>'webhook-id' AS wid, (r->>'verified')::boolean AS verified,
           CASE WHEN r->>'path' LIKE '/ok/messages%' THEN (r->>'body')::jsonb END AS body
    FROM (SELECT line::jsonb AS r FROM raw) x;
SELECT count(*) || '|' ||
       count(DISTINCT (path, wid)) FILTER (WHERE status BETWEEN 200 AND 299) || '|' ||
       count(DISTINCT (path, wid)) FILTER (WHERE status BETWEEN 200 AND 299 AND verified) || '|' ||
       count(*) FILTER (WHERE NOT verified) || '|' ||
       (count(*) - count(DISTINCT (path, wid)))
FROM req;
SELECT count(*) FILTER (WHERE first_ok) || '|'
       || coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE first_ok))::numeric, 1)::text, '-')
       || '|' || coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE first_ok))::numeric, 1)::text, '-')
       || '|' || count(*) FILTER (WHERE NOT first_ok) || '|'
       || coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE NOT first_ok))::numeric, 1)::text, '-')
FROM (SELECT min(t_ms) FILTER (WHERE status BETWEEN 200 AND 299)
             - extract(epoch FROM (min(body->'data'->'chat'->>'created_at'))::timestamptz) * 1000 AS ms,
             (array_agg(status ORDER BY t_ms))[1] BETWEEN 200 AND 299 AS first_ok
      FROM req
      WHERE path LIKE '/ok/messages%'
      GROUP BY path, wid
      HAVING bool_or(status BETWEEN 200 AND 299 AND body->>'type' = 'message.created'
                     AND body->'data'->'chat'->>'type' = 'inbound'
                     AND (body->'data'->'chat'->>'created_at')::timestamptz >= to_timestamp(:steady / 1000.0))) x;
EOF
}

collect_webhooks() {
    local -a rows
    mapfile -t rows < <(receiver_summary || true)
    IFS='|' read -r "FIG[webhook_requests]" "FIG[webhook_delivered]" "FIG[webhook_verified]" \
        "FIG[webhook_bad_signature]" "FIG[webhook_retried]" <<<"${rows[0]:-?|?|?|?|?}"
    local retried retried_p50
    IFS='|' read -r _ _ _ retried retried_p50 <<<"${rows[1]:-?|?|?|?|?}"
    set_latency webhook_latency "$(cut -d'|' -f1-3 <<<"${rows[1]:-?|?|?}")"
    FIG[webhook_latency_retried]=${retried:-?}
    FIG[webhook_latency_retried_p50_ms]=${retried_p50:-?}
    FIG[webhook_failed]=$(qd "SELECT count(*) FROM webhook_retry_queue
                              WHERE endpoint_id = ANY (:'endpoints'::bigint[]) AND status = 'failed'")
    FIG[webhook_open]=$(webhooks_open)
}

collect_campaigns() {
    local id row total_contacts=0 total_sent=0 total_skipped=0
    for id in "${CAMPAIGN_IDS[@]}"; do
        row=$(q "
SELECT c.name || '|' || c.status || '|' || c.contacts_count || '|' || c.messages_sent || '|' ||
       c.messages_delivered || '|' || c.messages_read || '|' || c.messages_failed || '|' ||
       c.messages_skipped || '|' ||
       coalesce(a.phone_number, a.session_id) || '|' ||
       coalesce(a.metadata->'rate_limits'->>'per_second', '-') || '|' ||
       coalesce(round(((p.n - 1) / nullif(p.span, 0))::numeric, 1)::text, '-')
FROM campaigns c JOIN whatsapp_accounts a ON a.id = c.whatsapp_account_id
LEFT JOIN LATERAL (SELECT count(*) AS n, extract(epoch FROM max(queued_at) - min(queued_at)) AS span
                   FROM campaign_logs l WHERE l.campaign_id = c.id AND l.queued_at IS NOT NULL) p ON true
WHERE c.id = :id" id="$id")
        IFS='|' read -r "FIG[campaign_${id}_name]" "FIG[campaign_${id}_status]" \
            "FIG[campaign_${id}_contacts]" "FIG[campaign_${id}_sent]" "FIG[campaign_${id}_delivered]" \
            "FIG[campaign_${id}_read]" "FIG[campaign_${id}_failed]" "FIG[campaign_${id}_skipped]" \
            "FIG[campaign_${id}_account]" \
            "FIG[campaign_${id}_limit_per_s]" "FIG[campaign_${id}_pace_per_s]" <<<"$row"
        total_contacts=$(( total_contacts + ${FIG[campaign_${id}_contacts]//[!0-9]/} + 0 ))
        total_sent=$(( total_sent + ${FIG[campaign_${id}_sent]//[!0-9]/} + 0 ))
        total_skipped=$(( total_skipped + ${FIG[campaign_${id}_skipped]//[!0-9]/} + 0 ))
    done
    FIG[campaign_contacts]=$total_contacts
    FIG[campaign_sent]=$total_sent
    FIG[campaign_skipped]=$total_skipped
}

collect_meta() {
    FIG[meta_account]=$META_ACCOUNT
    FIG[meta_phone_number_id]=$META_PNID
    FIG[meta_campaign]=$META_CAMPAIGN
    FIG[meta_graph_accepted]=$(awk -v pnid="$META_PNID" '$2 == pnid && $3 != "read" && $3 != "upload" { n++ }
                                   END { printf "%d", n }' "$GRAPH_RECORD" 2>/dev/null || echo "?")
    IFS="|" read -r "FIG[meta_sends_sent]" "FIG[meta_sends_failed]" "FIG[meta_agent_status]" <<<"$(q "
SELECT count(*) FILTER (WHERE state = 'sent') || '|' || count(*) FILTER (WHERE state = 'failed') || '|' ||
       coalesce((SELECT message_status FROM chats WHERE whatsapp_account_id = :acct
                   AND metadata->>'client_reference' = :'msg' LIMIT 1), 'none')
FROM meta_sends WHERE whatsapp_account_id = :acct" acct="$META_ACCOUNT" msg="${META_AGENT_MESSAGE:-}")"
    FIG[meta_template_status]=$(q "SELECT coalesce(status, 'none') FROM templates WHERE id = :id" \
        id="$META_TEMPLATE")
    IFS='|' read -r "FIG[meta_username_contacts]" "FIG[meta_username_messages]" <<<"$(q "
SELECT count(*) || '|' || coalesce(sum((SELECT count(*) FROM chats h WHERE h.contact_id = c.id)), 0)
FROM contacts c WHERE c.workspace_id = :ws AND c.bsuid = :'bsuid' AND c.deleted_at IS NULL" \
        ws="$CAMPAIGN_WS" bsuid="$USERNAME_BSUID")"
    FIG[meta_username_bsuid]=$USERNAME_BSUID
    FIG[meta_template_webhooks]=$(q "SELECT count(*) FROM webhook_retry_queue
                                     WHERE workspace_id = :ws AND event_type = 'template.updated'
                                       AND status = 'success'" ws="$CAMPAIGN_WS")
}

# Deliveries the receiver answered 2xx and verified (distinct webhook-ids)
# of event type $1 whose body has the member "$2":"$3", as the record
# writes the body (a JSON string: its quotes escaped).
receiver_deliveries() {
    WH_TYPE="\"x-blazz-event-type\":\"$1\"" WH_MEMBER="\\\"$2\\\":\\\"$3\\\"" awk '
        index($0, ENVIRON["WH_TYPE"]) && index($0, ENVIRON["WH_MEMBER"]) &&
        /"status":2[0-9][0-9],/ && /"verified":true/ &&
        match($0, /"webhook-id":"[^"]*"/) { seen[substr($0, RSTART, RLENGTH)] = 1 }
        END { for (k in seen) n++; printf "%d", n }' "$RECEIVER_RECORD" 2>/dev/null || echo "?"
}

# The owner's echo and the customer's call (setup.sh): their rows and the
# receiver's record.
collect_echo_and_call() {
    FIG[meta_echo_wamid]=${ECHO_WAMID:--}
    FIG[meta_call_id]=${CALL_ID:--}
    IFS='|' read -r "FIG[meta_echo_rows]" "FIG[meta_echo_status]" "FIG[meta_call_rows]" \
        "FIG[meta_call_status]" "FIG[meta_call_duration_s]" <<<"$(q "
WITH customer AS (SELECT id FROM contacts WHERE workspace_id = :ws AND phone = :'phone'),
     echo AS (SELECT message_status FROM chats WHERE whatsapp_account_id = :acct AND wam_id = :'wamid'
                AND type = 'outbound' AND contact_id IN (SELECT id FROM customer)),
     call AS (SELECT status, extract(epoch FROM ended_at - started_at)::bigint AS s FROM calls
              WHERE whatsapp_account_id = :acct AND meta_call_id = :'call' AND direction = 'inbound'
                AND contact_id IN (SELECT id FROM customer))
SELECT (SELECT count(*) FROM echo) || '|' ||
       coalesce((SELECT string_agg(message_status, ',') FROM echo), 'none') || '|' ||
       (SELECT count(*) FROM call) || '|' || coalesce((SELECT string_agg(status, ',') FROM call), 'none')
       || '|' || coalesce((SELECT max(s) FROM call), 0)" \
        ws="$CAMPAIGN_WS" acct="$META_ACCOUNT" phone="${META_AGENT_TO:-}" wamid="${ECHO_WAMID:-}" \
        call="${CALL_ID:-}")"
    FIG[meta_echo_webhooks]=$(receiver_deliveries message.created wam_id "${ECHO_WAMID:-none}")
    FIG[meta_call_webhooks]=$(receiver_deliveries call.updated call_id "${CALL_ID:-none}")
}

# The opt-out's contact, from its rows (OPTOUT_CONTACT, setup.sh).
collect_optout() {
    FIG[optout_contact]=$OPTOUT_CONTACT
    FIG[optout_phone]=$OPTOUT_PHONE
    IFS='|' read -r "FIG[optout_words]" "FIG[optout_opted_in]" "FIG[optout_skipped]" \
        "FIG[optout_webhooks]" "FIG[optin_webhooks]" <<<"$(q "
SELECT coalesce((SELECT string_agg(metadata->>'body', ', ' ORDER BY created_at, id) FROM chats
                 WHERE whatsapp_account_id = :acct AND contact_id = :contact AND type = 'inbound'),
                'nothing') || '|' ||
       (SELECT count(*) FROM contacts WHERE id = :contact AND opted_out_at IS NULL
          AND opt_out_changed_at IS NOT NULL) || '|' ||
       (SELECT messages_skipped FROM campaigns WHERE id = :campaign) || '|' ||
       (SELECT count(*) FILTER (WHERE event_type = 'contact.opted_out') || '|' ||
               count(*) FILTER (WHERE event_type = 'contact.opted_in')
        FROM webhook_retry_queue WHERE workspace_id = :ws AND status = 'success')" \
        acct="$META_ACCOUNT" contact="$OPTOUT_CONTACT" campaign="$META_CAMPAIGN" ws="$CAMPAIGN_WS")"
}

collect_cleanup() {
    IFS='|' read -r "FIG[cleanup_removed]" "FIG[cleanup_kept]" <<<"$(q "
SELECT count(*) FILTER (WHERE deleted_at IS NOT NULL) || '|' || count(*) FILTER (WHERE deleted_at IS NULL)
FROM whatsapp_accounts WHERE workspace_id = :ws" ws="$CL_WS")"
    mapfile -t CLEANUP_AUDIT < <(sql "
SELECT to_char(executed_at, 'HH24:MI:SS') || '  ' || rpad(reason, 17) || rpad(coalesce(session_id, '-'), 30)
       || cleanup_type
FROM session_cleanup_logs WHERE workspace_id = :ws ORDER BY id" ws="$CL_WS" 2>>"$LOGS/run.log" || true)
}

# The sessions created through the CRM API (sessions.sh): webhooks from the
# receiver's record, the rest from their rows.
collect_sessions() {
    local id qr=0 connected=0
    FIG[sessions_ids]=$(IFS=,; echo "${SESSION_IDS[*]}")
    FIG[sessions_created]=${#SESSION_IDS[@]}
    for id in "${SESSION_IDS[@]}"; do
        webhook_seen session.qr "$id" && qr=$((qr + 1))
        webhook_seen session.status "$id" connected && connected=$((connected + 1))
    done
    FIG[sessions_qr_webhooks]=$qr
    FIG[sessions_connected_webhooks]=$connected
    FIG[sessions_killed_instance]=${KILLED_INDEX:--}
    FIG[sessions_kept_instance]=${KEPT_INDEX:--}
    FIG[sessions_on_killed_instance]=$SESSIONS_ON_KILLED
    if [ -n "$KILLED_INDEX" ]; then FIG[sessions_moved]=$(moved_sessions); else FIG[sessions_moved]=0; fi
    FIG[sessions_connected_now]=$(sessions_where "status = 'connected'")
    # the initial syncs of their connects: runs completed, chats synced
    # (the last run's count)
    FIG[sessions_synced]=$(sessions_where "metadata->>'sync_status' = 'completed'")
    FIG[sessions_synced_chats]=$(qd "SELECT coalesce(sum((metadata->>'synced_count')::int), 0)
        FROM whatsapp_accounts WHERE session_id = ANY (:'sessions'::text[])
        AND deleted_at IS NULL AND metadata->>'sync_status' = 'completed'" \
        sessions="{$(IFS=,; echo "${SESSION_IDS[*]}")}")
    FIG[sessions_phone_chats]=$SESSIONS_PHONE_CHATS
    if [ "$SESSIONS_MOVED_MS" -gt 0 ]; then
        FIG[sessions_move_seconds]=$(( (SESSIONS_MOVED_MS - SESSIONS_KILL_MS) / 1000 ))
    else
        FIG[sessions_move_seconds]="-"
    fi
    FIG[sessions_step]=$SESSIONS_STEP
}

# The photo in and the image out (media.sh).
collect_media() {
    local sha
    FIG[media_in_wamid]=$MEDIA_IN_WAMID
    IFS='|' read -r "FIG[media_in_uuid]" "FIG[media_in_type]" "FIG[media_in_size]" sha \
        "FIG[media_in_webhooks]" <<<"$(q "
SELECT coalesce(m.uuid::text, '-') || '|' || coalesce(m.type, '-') || '|' || coalesce(m.size, 0) || '|' ||
       coalesce(m.sha256, '-') || '|' ||
       (SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = :ws
          AND event_type = 'message.media_ready' AND status = 'success')
FROM chats c LEFT JOIN chat_media m ON m.id = c.media_id
WHERE c.whatsapp_account_id = :acct AND c.wam_id = :'wamid'" \
        ws="$CAMPAIGN_WS" acct="$META_ACCOUNT" wamid="$MEDIA_IN_WAMID")"
    FIG[media_in_sha256]=${sha:-?}
    FIG[media_in_sha256_ok]=0
    [ -n "$MEDIA_IN_FETCHED_SHA" ] && [ "$MEDIA_IN_FETCHED_SHA" = "$sha" ] &&
        [ "$sha" = "$(base64 -d <<<"$MEDIA_IN_PNG" | sha256sum | cut -d' ' -f1)" ] &&
        FIG[media_in_sha256_ok]=1
    # without its query: the signature is a credential while it lasts
    FIG[media_in_link]=${MEDIA_IN_URL%%\?*}
    FIG[media_in_link]=${FIG[media_in_link]:--}
    FIG[media_in_graph_served]=$(curl -fsS --noproxy '*' "http://127.0.0.1:$GRAPH_PORT/_media/counts" \
        2>>"$LOGS/run.log" | sed -n "s/.*\"7$META_PNID\": *{[^}]*\"served\": *\([0-9]*\).*/\1/p")
    FIG[media_webjs_uploaded]=$(status_value "$TRAFFIC_STATUS" media_uploaded)
    FIG[media_webjs_upload_failed]=$(status_value "$TRAFFIC_STATUS" media_upload_failed)
    FIG[media_webjs_linked]=$(qd "SELECT count(*) FROM chats c JOIN chat_media m ON m.id = c.media_id
        WHERE c.workspace_id = ANY (:'ws'::bigint[]) AND m.source = 'webjs'")
    FIG[media_out_uuid]=${MEDIA_OUT_UUID:--}
    FIG[media_out_message]=${MEDIA_OUT_MESSAGE:--}
    FIG[media_out_uploads]=$(awk -v pnid="$META_PNID" '$2 == pnid && $3 == "upload" { n++ }
                                 END { printf "%d", n }' "$GRAPH_RECORD" 2>/dev/null || echo "?")
    FIG[media_out_upload_id]=$(awk -v pnid="$META_PNID" '$2 == pnid && $3 == "upload" { print $6; exit }' \
                                   "$GRAPH_RECORD" 2>/dev/null)
    FIG[media_out_sent_by_id]=$(grep -o '"image":{[^}]*}' "$GRAPH_BODIES" 2>/dev/null |
        grep -c "\"id\":\"${FIG[media_out_upload_id]:-none}\"" || true)
    IFS='|' read -r "FIG[media_out_status]" "FIG[media_out_meta_media_id]" <<<"$(q "
SELECT coalesce((SELECT message_status FROM chats WHERE whatsapp_account_id = :acct
                   AND metadata->>'client_reference' = :'msg'), 'none') || '|' ||
       coalesce((SELECT u.meta_media_id FROM meta_media_uploads u JOIN chat_media m ON m.id = u.media_id
                 WHERE u.whatsapp_account_id = :acct AND m.uuid::text = :'uuid'), '-')" \
        acct="$META_ACCOUNT" msg="${MEDIA_OUT_MESSAGE:-}" uuid="${MEDIA_OUT_UUID:-}")"
}

# The dead letters since the demo began: --since rather than --limit,
# because ingest writes the DLQ in transactions and the offset before a
# partition's high watermark is then a commit marker, not a record.
collect_dlq() {
    local minutes=$(( ($(now_ms) - DEMO_START_MS) / 60000 + 1 ))
    FIG[dlq_dead_lettered]=$(metrics_sum '^blazz_[a-z_]*dead_lettered_total')
    FIG[dlq_command]="blazzctl dlq tail wa.inbound.dlq --since ${minutes}m"
    FIG[dlq_tail]=$({ "$BIN_DIR/blazzctl" dlq tail wa.inbound.dlq --since "${minutes}m" \
                          2>>"$LOGS/blazzctl.log" || true; } |
                    sed -n '1,3p' | sed 's/^ *//' | paste -sd'|' -)
}

collect_figures() {
    FIG[tag]=$TAG
    FIG[demo_seconds]=$DEMO_SECONDS
    FIG[warmup_seconds]=$WARMUP_S
    FIG[settled]=$SETTLED
    FIG[retired_endpoints]=$RETIRED_ENDPOINTS
    FIG[retired_sessions]=$RETIRED_SESSIONS
    FIG[inbound_workspaces]=$(IFS=,; echo "${WS[*]}")
    FIG[webhook_endpoints]=$(IFS=,; echo "${ENDPOINT_IDS[*]}")
    FIG[campaign_ids]=$(IFS=,; echo "${CAMPAIGN_IDS[*]}")
    FIG[campaign_workspace]=$CAMPAIGN_WS
    FIG[cleanup_workspace]=$CL_WS
    FIG[cleanup_stale_created]=$STALE_CREATED
    FIG[cleanup_keepers_created]=$KEEPERS_CREATED
    collect_inbound
    collect_webhooks
    collect_campaigns
    collect_meta
    collect_echo_and_call
    collect_optout
    collect_cleanup
    collect_sessions
    collect_media
    collect_dlq
}

# After stop_all: how the services ended.
collect_shutdown() {
    FIG[services]="${SERVICES[*]}"
    FIG[services_stopped_cleanly]=$(count_clean_exits "${SERVICES[@]}")
}

write_figures() {
    local key
    {
        echo "# make run figures, $(date -u +%Y-%m-%dT%H:%M:%SZ); see scripts/demo/figures.sh"
        for key in $(printf '%s\n' "${!FIG[@]}" | sort); do
            printf '%s=%s\n' "$key" "${FIG[$key]}"
        done
    } >"$REPORT_FILE"
}
