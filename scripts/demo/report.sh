# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
#
# scripts/demo/report.sh - the screen `make run` ends with (sourced by
# scripts/run.sh): one section per service from the figures in FIG
# (figures.sh), then "what next": where the logs are, blazzctl commands to
# try with the environment they need, how to stop the stack. It is kept
# under 42 lines of at most 100 columns, so it fits one terminal screen.

REPORT_WIDTH=100

# A rule of '=' or '-' with a title in the middle.
rule() {
    local char=$1 title=" $2 " left right
    left=$(( (REPORT_WIDTH - ${#title}) / 2 ))
    right=$(( REPORT_WIDTH - ${#title} - left ))
    echo "$(printf '%*s' "$left" '' | tr ' ' "$char")$title$(printf '%*s' "$right" '' | tr ' ' "$char")"
}

# row LABEL TEXT: one line, the label in an 11-column margin.
row() {
    printf '%-11s%s\n' "$1" "$2"
}

# A path as the reader can use it from where `make run` ran: relative when
# it is under the current directory.
show_path() {
    case "$1" in
        "$PWD"/*) echo "${1#"$PWD"/}" ;;
        *) echo "$1" ;;
    esac
}

print_inbound() {
    local secs=$DEMO_SECONDS
    row inbound "${FIG[inbound_sent]} events through ingest in ${secs} s (${DEMO_RATE}/s): ${FIG[inbound_accepted]} accepted, ${FIG[inbound_rejected]} rejected, ${FIG[inbound_retries]} retried"
    row "" "stored ${FIG[inbound_chats]} chats, ${FIG[inbound_contacts]} contacts (${FIG[inbound_lid_contacts]} with a LID, ${FIG[inbound_merged]} merged: contact.merged), ${FIG[inbound_groups]} groups; history sync ${FIG[inbound_history_sync]}"
    row " latency" "$(printf 'first storage: cold start p50 %s ms p99 %s ms (%s); steady p50 %s ms p99 %s ms (%s)' \
        "${FIG[latency_cold_p50_ms]}" "${FIG[latency_cold_p99_ms]}" "${FIG[latency_cold_messages]}" \
        "${FIG[latency_steady_p50_ms]}" "${FIG[latency_steady_p99_ms]}" "${FIG[latency_steady_messages]}")"
    row "" "(gateway timestamp -> row inserted by chat-sync; cold start = the first $WARMUP_S s; (n) live messages; ${FIG[latency_changed]} changed later, apart)"
}

print_webhooks() {
    row webhooks "${#ENDPOINT_IDS[@]} endpoints -> blazz-webhook-receiver on ${RECEIVER_URL#http://}, which checks signatures"
    row "" "delivered ${FIG[webhook_delivered]}, verified ${FIG[webhook_verified]} (Standard Webhooks), bad signature ${FIG[webhook_bad_signature]}, retried ${FIG[webhook_retried]}, failed ${FIG[webhook_failed]}"
    row "" "first delivery: gateway -> webhook p50 ${FIG[webhook_latency_p50_ms]} ms, p99 ${FIG[webhook_latency_p99_ms]} ms (${FIG[webhook_latency_messages]} message.created after warm-up); ${FIG[webhook_latency_retried]} retried ones apart, p50 ${FIG[webhook_latency_retried_p50_ms]} ms"
}

print_campaigns() {
    local id pacing="" sep=""
    row campaign "${#CAMPAIGN_IDS[@]} campaigns to ${FIG[campaign_contacts]} generated contacts (#$META_CAMPAIGN through Meta, the rest a simulated gateway)"
    for id in "${CAMPAIGN_IDS[@]}"; do
        row "" "$(printf '#%-4s %-14s %4s contacts: sent %s, delivered %s, read %s, failed %s (%s)' "$id" \
            "${FIG[campaign_${id}_name]}" "${FIG[campaign_${id}_contacts]}" "${FIG[campaign_${id}_sent]}" \
            "${FIG[campaign_${id}_delivered]}" "${FIG[campaign_${id}_read]}" \
            "${FIG[campaign_${id}_failed]}" "${FIG[campaign_${id}_status]}")"
        pacing+="$sep${FIG[campaign_${id}_account]} ${FIG[campaign_${id}_pace_per_s]}/s of ${FIG[campaign_${id}_limit_per_s]}"
        sep=", "
    done
    row "" "pacing: $pacing"
}

# Three lines of two facts each: the report's 42 lines are spoken for; the
# rest (the username's BSUID, the echo's wamid, the call's id) is in the
# figures.
print_meta() {
    row meta "account $META_ACCOUNT -> meta-sender -> Graph test server: ${FIG[meta_graph_accepted]} accepted, agent message ${FIG[meta_agent_status]}"
    row "" "order_update ${FIG[meta_template_status]} by webhook (template.updated x${FIG[meta_template_webhooks]}); a username: ${FIG[meta_username_contacts]} contact, ${FIG[meta_username_messages]} message"
    row "" "owner's echo: ${FIG[meta_echo_rows]} outbound ${FIG[meta_echo_status]} (message.created x${FIG[meta_echo_webhooks]}); call ${FIG[meta_call_duration_s]} s ${FIG[meta_call_status]} (call.updated x${FIG[meta_call_webhooks]})"
}

# Two lines: the contact's words as chat-sync stored them, what the Meta
# campaign skipped and the webhooks the CRM got.
print_optout() {
    local now="opted out"
    [ "${FIG[optout_opted_in]}" = 1 ] && now="opted in"
    row opt-out "contact ${FIG[optout_phone]} wrote ${FIG[optout_words]} (Meta's messages webhook): now $now"
    row "" "campaign #$META_CAMPAIGN skipped ${FIG[optout_skipped]} opted-out contact; webhooks contact.opted_out x${FIG[optout_webhooks]}, opted_in x${FIG[optin_webhooks]}"
}

print_cleanup() {
    local line shown=0
    row cleanup "blazzctl cleanup run --workspace $CL_WS: removed ${FIG[cleanup_removed]} of $STALE_CREATED stale sessions, kept ${FIG[cleanup_kept]} live"
    for line in "${CLEANUP_AUDIT[@]}"; do
        [ $shown -lt 2 ] && row "" "$([ $shown = 0 ] && echo "audit (session_cleanup_logs):" || echo "                             ") $line"
        shown=$((shown + 1))
    done
    [ $shown -gt 2 ] && row "" "$(printf '%29s' '') ... and $((shown - 2)) more"
    return 0
}

# One line: the sessions of sessions.sh, their initial syncs among them.
print_sessions() {
    row sessions "${FIG[sessions_created]} by POST /v1/sessions: ${FIG[sessions_qr_webhooks]} session.qr, ${FIG[sessions_connected_webhooks]} connected, ${FIG[sessions_synced]} synced at connect (${FIG[sessions_synced_chats]} chats); instance ${FIG[sessions_killed_instance]} killed: ${FIG[sessions_moved]}/${FIG[sessions_on_killed_instance]} moved in ${FIG[sessions_move_seconds]} s"
}

# Three lines: the photo the contact sent, as the CRM reads it through its
# link, the agent's image as Meta got it (media.sh), and the bytes the
# traffic's gateway uploaded for its photos and voice notes.
print_media() {
    local sha="sha256 MISMATCH" link=${FIG[media_in_link]#http*://*/} uploads="${FIG[media_out_uploads]} times"
    local sent="sent ${FIG[media_out_sent_by_id]} times by id"
    [ "${FIG[media_in_sha256_ok]}" = 1 ] && sha="sha256 ok"
    [ "${FIG[media_out_uploads]}" = 1 ] && uploads=once
    [ "${FIG[media_out_sent_by_id]}" = 1 ] && sent="sent by id"
    row media "inbound photo: stored (${FIG[media_in_type]}, ${FIG[media_in_size]} bytes, $sha), link /${link:0:22}... opened"
    row "" "outbound image: uploaded to Meta $uploads, $sent ${FIG[media_out_upload_id]:--} (${FIG[media_out_status]})"
    row "" "gateway: ${FIG[media_webjs_uploaded]} photos and voice notes uploaded (PNG, Ogg Opus), ${FIG[media_webjs_linked]} linked to their messages"
}

print_dlq() {
    local line
    row dlq "1 event for a session nobody connected; ${FIG[dlq_dead_lettered]} dead-lettered in all"
    row "" "\$ ${FIG[dlq_command]}"
    while IFS= read -r line; do
        row "" "  $line" | cut -c1-"$REPORT_WIDTH"
    done < <(tr '|' '\n' <<<"${FIG[dlq_tail]:-(nothing on wa.inbound.dlq)}")
}

# How to stop this stack: a state folder other than the default must be named.
stack_down_command() {
    if [ -n "${BLAZZ_STATE_DIR:-}" ]; then
        echo "BLAZZ_STATE_DIR=$(show_path "$STATE") make stack-down"
    else
        echo "make stack-down"
    fi
}

# The PATH entry for blazzctl, as the reader would type it.
bin_dir_for_path() {
    case "$BIN_DIR" in
        "$PWD"/*) echo "\$PWD/${BIN_DIR#"$PWD"/}" ;;
        *) echo "$BIN_DIR" ;;
    esac
}

print_what_next() {
    rule - "what next"
    row logs "$(show_path "$LOGS")/<service>.log: JSON lines; grep an event_id to follow an event"
    row try "source $(show_path "$STATE")/stack.env; export PATH=\"$(bin_dir_for_path):\$PATH\""
    row "" "$(printf '%-46s %s' "blazzctl campaign status ${CAMPAIGN_IDS[0]}" "a campaign's state and counters")"
    row "" "$(printf '%-46s %s' "blazzctl webhooks list --workspace ${WS[0]}" "endpoints and their failure counters")"
    row "" "$(printf '%-46s %s' "blazzctl sessions instances" "gateway instances: liveness, capacity, load")"
    row "" "$(printf '%-46s %s' "blazzctl meta status" "Meta accounts: token, WABA, sends waiting")"
    row "" "$(printf '%-46s %s' "blazzctl lag" "consumer lag per group and partition")"
    row stop "$(stack_down_command)   (the services stopped; PostgreSQL and Kafka are still up)"
}

print_report() {
    echo
    rule '=' "make run: world $TAG"
    row services "${SERVICES[*]}: ${FIG[services_stopped_cleanly]}/${#SERVICES[@]} stopped OK"
    print_inbound
    print_webhooks
    print_campaigns
    print_meta
    print_optout
    print_cleanup
    print_sessions
    print_media
    print_dlq
    [ "$SETTLED" = 1 ] || row note "the pipeline had not settled after ${SETTLE_MAX_S} s: some figures may still have moved"
    row figures "$(show_path "$REPORT_FILE") (key=value, for scripts)"
    print_what_next
}
