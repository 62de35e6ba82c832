/*
 * test_meta_rules.c - what Meta's Cloud API requires of a message, held
 * before the request (issues 31 and 35; ARCHITECTURE.md §12), over the
 * whole real chain against graph_test_server, which applies Meta's rules
 * as Meta documents them (--templates: a template's variables; interactive
 * limits):
 *
 *  - template_campaign_named_parameters: a template campaign whose template
 *    body has named variables ({{first_name}}, {{phone}}) sends them as
 *    Meta's named body parameters (parameter_name) with each contact's
 *    values; every message is accepted and the stored text is the template
 *    with those values;
 *  - template_campaign_positional_parameters: a template written with
 *    Meta's positional {{1}}, {{2}} starts when the campaign maps them
 *    (campaigns.metadata.template_params) and sends them in order;
 *  - template_campaign_refused_at_start: a positional variable without a
 *    value, or a value for a variable the template does not declare, fails
 *    the campaign at start with the reason; nothing reaches Meta;
 *  - template_not_approved_refused_at_start: a template Meta REJECTED, or
 *    one Meta never reported, fails the campaign at start with the
 *    template, its status and Meta's reason in error_message, the FAILED
 *    event and `blazzctl campaign status`; approved, a new campaign on it
 *    runs;
 *  - template_paused_mid_campaign: Meta pauses the template after some
 *    messages went: the campaign pauses with the reason and nothing fails;
 *    approved again while campaign-sender is down (SIGKILL), it resumes
 *    when campaign-sender starts; disabled while it is down, it is paused
 *    when it starts; approved, it completes with one message per contact;
 *  - agent_named_template: an agent's template of named variables is
 *    accepted with one parameter per variable and sent with their names;
 *  - agent_reaction_through_meta: an agent's reaction and its removal go as
 *    Meta's reaction requests; the target shows, then loses, the account's
 *    reaction;
 *  - campaign_over_meta_limits_refused_at_start: a reply-button title over
 *    20 characters, a fourth button, a footer over 60, a footer on a text:
 *    the campaign fails at start with the field and the limit, nothing
 *    reaches Meta;
 *  - campaign_header_text_and_footer_sent_whole: within the limits, the
 *    text header and the footer are in every request;
 *  - agent_interactive_through_meta: an agent's list, URL button,
 *    location request and flow go as Meta's pages show them and are stored with
 *    their interactive message; over Meta's limits, a non-web URL or no
 *    type, each is refused naming its field, with no request; one whose
 *    Meta account is gone at release, failed over to a whatsapp-web.js
 *    account, fails (provider_limit) without leaving;
 *  - agent_message_over_meta_limits: an audio with a caption is refused
 *    (400, media.caption) when the account is named or the conversation's,
 *    and else fails at acceptance with the reason, with no request;
 *  - opt_out_by_keyword_and_button: a keyword written whole and Meta's
 *    marketing opt-out button opt contacts out, the next campaign skips
 *    them (counted, completed), an agent's reply still goes, "mulai" opts
 *    back in; replays and an older "STOP" change nothing; one
 *    contact.opted_out / contact.opted_in webhook each.
 *  - opt_out_by_user_preferences: Meta's user_preferences webhook (stop,
 *    resume; a contact named by phone, one by its BSUID alone) opts
 *    contacts out and back in as the keywords do: campaigns skip them,
 *    contact.opted_out / contact.opted_in, an older redelivery changes
 *    nothing.
 *  - preference_stop_reaches_a_running_campaign: a stop that comes while a
 *    campaign runs (paused after its first sends, so the contact is still
 *    waiting) makes the campaign skip that contact once it resumes.
 *  - agent_message_outside_service_window: Meta's 24-hour customer-service
 *    window (issue 35): a contact whose last message is 25 h old gets no
 *    free-form message (422 outside_service_window, the account named or
 *    the conversation's) but a template (202, sent); a contact who wrote an
 *    hour ago gets the free-form reply; one who never wrote, whose account
 *    chat-sync chooses, has the message failed at acceptance with the
 *    reason and a message.status failed event, with no request to Meta.
 * Every wait polls PostgreSQL or a file with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent_itest.h"
#include "blazz/v1/campaign.pb-c.h"
#include "blazz/v1/chat_event.pb-c.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "itest.h"
#include "meta_world.h"

#define fx agent_test_fx
#define mw meta_test_world

static const char TEMPLATES[] =
    "[{\"name\": \"promo_named\", \"language\": \"id\", \"parameter_format\": \"NAMED\", "
    "\"components\": [{\"type\": \"BODY\", \"text\": \"Halo {{first_name}}, nomor {{phone}}\"}]},"
    " {\"name\": \"promo_positional\", \"language\": \"id\", \"parameter_format\": \"POSITIONAL\", "
    "\"components\": [{\"type\": \"BODY\", \"text\": \"Halo {{1}}, kode {{2}}\"}]}]";

/* The world with the templates above, APPROVED in the templates table and
 * at the Graph test server; the account's metadata.rate_limits. */
static void start_with_templates(const char *name, const char *rate_limits)
{
    meta_world_prepare(name, rate_limits);
    char path[760];
    snprintf(path, sizeof path, "%s/templates.json", fx->camp.dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(TEMPLATES, f) < 0)
        fail_msg("cannot write %s", path);
    fclose(f);
    json_t *list = json_loads(TEMPLATES, 0, NULL);
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t) {
        const char *body = json_string_value(json_object_get(
            json_array_get(json_object_get(t, "components"), 0), "text"));
        agent_int(fx, "INSERT INTO templates (workspace_id, name, language, status, body_text) "
                      "VALUES (%lld, '%s', 'id', 'APPROVED', '%s') RETURNING id",
                  (long long)mw.ws, json_string_value(json_object_get(t, "name")), body);
    }
    json_decref(list);
    const char *args[] = {"--templates", path, NULL};
    meta_world_launch(args);
}

/* A template campaign of template `name` to n contacts (tag: their phones
 * +1<tag>000000i, first names Firsti) with campaigns.metadata, started. */
static int64_t template_campaign(const char *name, int n, int tag, const char *metadata)
{
    int64_t group = camp_audience(&fx->camp, mw.ws, n, tag);
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, mw.account, "", "draft", metadata);
    agent_int(fx, "UPDATE campaigns SET campaign_type = 'template', message_content = NULL, "
                  "template_id = (SELECT id FROM templates WHERE workspace_id = %lld AND name = "
                  "'%s') WHERE id = %lld RETURNING id",
              (long long)mw.ws, name, (long long)campaign);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    return campaign;
}

/* What a body parameter must hold for a contact: prefix + one of its fields
 * (first_name, phone), and its parameter_name (NULL: positional). */
typedef struct param_want {
    const char *name, *prefix, *field;
} param_want;

/* The contact of audience `tag` number i: first name Firsti, phone
 * +1<tag>000000i (camp_audience). */
static void want_text(const param_want *w, int tag, int contact, char *out, size_t cap)
{
    if (strcmp(w->field, "first_name") == 0)
        snprintf(out, cap, "%sFirst%d", w->prefix, contact);
    else
        snprintf(out, cap, "%s+1%03d%07d", w->prefix, tag, contact);
}

/* Each template request's body component: the parameters of want, with each
 * contact's values; n template requests in all. */
static void assert_body_parameters(int n, int tag, const param_want *want, size_t nparams)
{
    size_t count;
    graph_body *b = graph_bodies(&count);
    int templates = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *tpl = json_object_get(b[i].doc, "template");
        if (!tpl)
            continue;
        templates++;
        const char *to = json_string_value(json_object_get(b[i].doc, "to"));
        int contact = (int)strtol(to + strlen(to) - 7, NULL, 10);
        json_t *body = NULL, *c;
        size_t k;
        json_array_foreach(json_object_get(tpl, "components"), k, c)
            if (strcmp(json_string_value(json_object_get(c, "type")), "body") == 0)
                body = c;
        if (!body)
            fail_msg("template request to %s has no body component", to);
        json_t *params = json_object_get(body, "parameters");
        assert_int_equal(json_array_size(params), nparams);
        for (k = 0; k < nparams; k++) {
            json_t *p = json_array_get(params, k);
            char text[64];
            want_text(&want[k], tag, contact, text, sizeof text);
            assert_string_equal(json_string_value(json_object_get(p, "type")), "text");
            assert_string_equal(json_string_value(json_object_get(p, "text")), text);
            const char *pname = json_string_value(json_object_get(p, "parameter_name"));
            if (want[k].name)
                assert_string_equal(pname ? pname : "(none)", want[k].name);
            else
                assert_null(pname);
        }
    }
    graph_bodies_free(b, count);
    assert_int_equal(templates, n);
}

/* No log of the campaign failed; else the failure names the first reason. */
static void assert_no_failed_logs(int64_t campaign)
{
    int64_t failed = agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND status = 'failed'",
                               (long long)campaign);
    if (failed == 0)
        return;
    char *text = itest_pg_textf(fx->camp.pg, "SELECT coalesce(error_message, '') FROM "
                                            "campaign_logs WHERE campaign_id = %lld AND status "
                                            "= 'failed' ORDER BY id LIMIT 1",
                                (long long)campaign);
    char why[512];
    snprintf(why, sizeof why, "%s", text);
    free(text);
    fail_msg("%lld message(s) of campaign %lld failed, the first: %s", (long long)failed,
             (long long)campaign, why);
}

/* ---- defect 3: template parameters -------------------------------------------------------- */

static void template_campaign_named_parameters(void **state)
{
    (void)state;
    start_with_templates("tn", "{}");
    int n = 3;
    int64_t campaign = template_campaign("promo_named", n, 71, NULL);
    camp_wait_status(&fx->camp, campaign, "completed", 120);
    assert_no_failed_logs(campaign);
    const param_want want[] = {{"first_name", "", "first_name"}, {"phone", "", "phone"}};
    assert_body_parameters(n, 71, want, 2);
    /* what was stored is what the contact reads: the template with its values */
    agent_wait(fx, n, 60,
               "SELECT count(*) FROM campaign_logs l JOIN chats ch ON "
               "ch.metadata->>'client_reference' = l.uuid::text JOIN contacts c ON c.id = "
               "l.contact_id WHERE l.campaign_id = %lld AND "
               "ch.metadata->>'body' = 'Halo ' || c.first_name || ', nomor ' || c.phone",
               (long long)campaign);
    camp_assert_counters_exact(&fx->camp, campaign);
}

static void template_campaign_positional_parameters(void **state)
{
    (void)state;
    start_with_templates("tp", "{}");
    int n = 3;
    int64_t campaign = template_campaign(
        "promo_positional", n, 72,
        "{\"template_params\": {\"1\": \"{{first_name}}\", \"2\": \"K-{{phone}}\"}}");
    camp_wait_status(&fx->camp, campaign, "completed", 120);
    assert_no_failed_logs(campaign);
    const param_want want[] = {{NULL, "", "first_name"}, {NULL, "K-", "phone"}};
    assert_body_parameters(n, 72, want, 2);
    agent_wait(fx, n, 60,
               "SELECT count(*) FROM campaign_logs l JOIN chats ch ON "
               "ch.metadata->>'client_reference' = l.uuid::text JOIN contacts c ON c.id = "
               "l.contact_id WHERE l.campaign_id = %lld AND "
               "ch.metadata->>'body' = 'Halo ' || c.first_name || ', kode K-' || c.phone",
               (long long)campaign);
    camp_assert_counters_exact(&fx->camp, campaign);
}

/* The campaign's error_message holds each of the texts in has[]. */
static void assert_error_names(int64_t campaign, const char *const *has)
{
    char *text = itest_pg_textf(fx->camp.pg, "SELECT coalesce(error_message, '') FROM "
                                            "campaigns WHERE id = %lld",
                                (long long)campaign);
    char why[512];
    snprintf(why, sizeof why, "%s", text);
    free(text);
    for (size_t i = 0; has[i]; i++)
        if (!strstr(why, has[i]))
            fail_msg("campaign %lld has error_message \"%s\", expected it to name \"%s\"",
                     (long long)campaign, why, has[i]);
}

static void assert_failed_at_start(int64_t campaign, const char *reason_has)
{
    camp_wait_status(&fx->camp, campaign, "failed", 60);
    const char *has[] = {reason_has, NULL};
    assert_error_names(campaign, has);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld",
                               (long long)campaign),
                     0);
}

static void template_campaign_refused_at_start(void **state)
{
    (void)state;
    start_with_templates("tr", "{}");
    int64_t unmapped = template_campaign("promo_positional", 2, 73, NULL);
    assert_failed_at_start(unmapped, "{{1}}");
    int64_t extra = template_campaign(
        "promo_named", 2, 74, "{\"template_params\": {\"first_name\": \"Kak {{first_name}}\", "
                              "\"city\": \"Bandung\"}}");
    assert_failed_at_start(extra, "{{city}}");
    int64_t partial = template_campaign("promo_positional", 2, 75,
                                        "{\"template_params\": {\"1\": \"{{first_name}}\"}}");
    assert_failed_at_start(partial, "{{2}}");
    assert_int_equal(meta_world_count_kind("template"), 0);
}

/* ---- issue 35: Meta's template status ------------------------------------------------------ */

static int count_events(int64_t campaign, int kind, const char *reason_has)
{
    camp_wait_outbox_empty(&fx->camp, 60);
    return camp_count_events(&fx->camp, campaign, kind, reason_has, NULL, 0);
}

static void template_not_approved_refused_at_start(void **state)
{
    (void)state;
    start_with_templates("tj", "{}");
    meta_world_report_template("promo_named", "REJECTED", "INVALID_FORMAT");
    int64_t rejected = template_campaign("promo_named", 2, 76, NULL);
    assert_failed_at_start(rejected, "is REJECTED at Meta: INVALID_FORMAT");
    const char *names[] = {"template 'promo_named' (", NULL};
    assert_error_names(rejected, names);
    assert_int_equal(count_events(rejected,
                                  BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_FAILED,
                                  "is REJECTED at Meta: INVALID_FORMAT"),
                     1);
    char id[24], out[700];
    snprintf(id, sizeof id, "%lld", (long long)rejected);
    snprintf(out, sizeof out, "%s/campaign-status.txt", fx->camp.dir);
    const char *args[] = {"campaign", "status", id, NULL};
    assert_int_equal(camp_blazzctl(&fx->camp, args, out), 0);
    if (!itest_file_contains(out, "is REJECTED at Meta: INVALID_FORMAT"))
        fail_msg("blazzctl campaign status does not show why (%s)", out);
    /* a template Meta never reported on */
    agent_int(fx, "UPDATE templates SET status = NULL WHERE workspace_id = %lld AND name = "
                  "'promo_positional' RETURNING id",
              (long long)mw.ws);
    int64_t unknown = template_campaign(
        "promo_positional", 2, 77,
        "{\"template_params\": {\"1\": \"{{first_name}}\", \"2\": \"{{phone}}\"}}");
    assert_failed_at_start(unknown, "template 'promo_positional' (");
    const char *unreported[] = {"has no status from Meta yet", NULL};
    assert_error_names(unknown, unreported);
    assert_int_equal(meta_world_count_kind("template"), 0);
    /* approved: a new campaign on it runs */
    meta_world_report_template("promo_named", "APPROVED", NULL);
    int64_t approved = template_campaign("promo_named", 3, 78, NULL);
    camp_wait_status(&fx->camp, approved, "completed", 120);
    assert_no_failed_logs(approved);
    assert_int_equal(meta_world_count_kind("template"), 3);
}

/* Wait until the Graph test server accepted at least `min` template
 * messages. */
static void wait_template_requests(long min)
{
    for (int i = 0; i < 1200 && meta_world_count_kind("template") < min; i++)
        itest_sleep_ms(50);
    if (meta_world_count_kind("template") < min)
        fail_msg("fewer than %ld template messages reached the Cloud API", min);
}

static void wait_paused(int64_t campaign)
{
    agent_wait(fx, 1, 60, "SELECT count(*) FROM campaigns WHERE id = %lld AND status = 'paused'",
               (long long)campaign);
}

static void template_paused_mid_campaign(void **state)
{
    (void)state;
    start_with_templates("tq", "{\"per_second\": 5, \"per_minute\": 0, \"per_hour\": 0}");
    int n = 30;
    int64_t campaign = template_campaign("promo_named", n, 79, NULL);
    wait_template_requests(3);
    meta_world_report_template("promo_named", "PAUSED", NULL);
    wait_paused(campaign);
    const char *paused[] = {"template 'promo_named' (", "is PAUSED at Meta", NULL};
    assert_error_names(campaign, paused);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaigns WHERE id = %lld AND "
                                   "pause_reason LIKE 'template_not_sendable%%'",
                               (long long)campaign),
                     1);
    assert_int_equal(count_events(campaign,
                                  BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_PAUSED,
                                  "is PAUSED at Meta"),
                     1);
    assert_no_failed_logs(campaign);
    assert_true(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND "
                              "status = 'pending'",
                          (long long)campaign) > 0);
    /* approved while campaign-sender is down: resumed when it starts */
    camp_kill_sender(&fx->camp, 0);
    meta_world_report_template("promo_named", "APPROVED", NULL);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_wait(fx, 1, 60, "SELECT count(*) FROM campaigns WHERE id = %lld AND status IN "
                          "('running', 'completed')",
               (long long)campaign);
    /* disabled while it is down: paused when it starts */
    wait_template_requests(meta_world_count_kind("template") + 3);
    camp_kill_sender(&fx->camp, 0);
    meta_world_report_template("promo_named", "DISABLED", NULL);
    camp_start_sender(&fx->camp, 0, NULL);
    wait_paused(campaign);
    const char *disabled[] = {"template 'promo_named' (", "is DISABLED at Meta", NULL};
    assert_error_names(campaign, disabled);
    /* approved again: it resumes and completes, one message per contact */
    meta_world_report_template("promo_named", "APPROVED", NULL);
    camp_wait_status(&fx->camp, campaign, "completed", 120);
    assert_no_failed_logs(campaign);
    assert_int_equal(meta_world_check_one_per_contact(campaign, n), 0);
    assert_int_equal(meta_world_count_kind("template"), n);
    assert_int_equal(count_events(campaign,
                                  BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_PAUSED,
                                  "template 'promo_named'"),
                     2);
    assert_int_equal(count_events(campaign,
                                  BLAZZ__V1__CAMPAIGN_EVENT_KIND__CAMPAIGN_EVENT_KIND_RESUMED,
                                  "template_approved"),
                     2);
}

/* An agent's template of named variables: its parameters, in the order the
 * text first uses the variables, go with their names. */
static void agent_named_template(void **state)
{
    (void)state;
    start_with_templates("ta", "{}");
    int64_t contact = agent_contact(fx, mw.ws, "+6281300000071", "Ann");
    char fields[512], id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"template\",\"template\":{\"name\":"
             "\"promo_named\",\"language\":\"id\",\"body_params\":[\"Ann\",\"0813\"]}",
             (long long)contact);
    meta_world_post_message(fields, "tpl-named-1", id);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status IN ('sent', "
               "'delivered', 'read') AND metadata->>'body' = 'Halo Ann, nomor 0813'",
               id);
    size_t count;
    graph_body *b = graph_bodies(&count);
    assert_int_equal(count, 1);
    json_t *params = json_object_get(
        json_array_get(json_object_get(json_object_get(b[0].doc, "template"), "components"), 0),
        "parameters");
    assert_string_equal(json_string_value(json_object_get(json_array_get(params, 0),
                                                          "parameter_name")),
                        "first_name");
    assert_string_equal(json_string_value(json_object_get(json_array_get(params, 1), "text")),
                        "0813");
    graph_bodies_free(b, count);
}

/* ---- defect 5: reactions ------------------------------------------------------------------ */

/* An agent's reaction through the Cloud API: Meta's reaction request with
 * the target and the emoji, then its removal (emoji ""); the echo sets,
 * then removes, the account's reaction on the target. */
static void agent_reaction_through_meta(void **state)
{
    (void)state;
    meta_world_start("rx", "{}", NULL);
    int64_t contact = agent_contact(fx, mw.ws, "+6281300000072", "Budi");
    agent_inbound(fx, mw.session, "wamid.IN-R1", "+6281300000072", "halo", bz_wall_ms());
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.IN-R1'");
    char fields[256], set_id[BZ_UUID_STR_SIZE], removed_id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"reaction\",\"target_wam_id\":"
             "\"wamid.IN-R1\",\"emoji\":\"\xf0\x9f\x91\x8d\"",
             (long long)contact);
    meta_world_post_message(fields, "react-meta-1", set_id);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE wam_id = 'wamid.IN-R1' AND "
               "metadata->'reactions'->'me'->>'emoji' = '\xf0\x9f\x91\x8d'");
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status IN ('sent', "
               "'delivered', 'read')",
               set_id);
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"reaction\",\"target_wam_id\":"
             "\"wamid.IN-R1\",\"emoji\":\"\"",
             (long long)contact);
    meta_world_post_message(fields, "react-meta-2", removed_id);
    agent_wait(fx, 0, 90,
               "SELECT count(*) FROM chats WHERE wam_id = 'wamid.IN-R1' AND metadata->'reactions' "
               "? 'me'");
    size_t count;
    graph_body *b = graph_bodies(&count);
    assert_int_equal(count, 2);
    const char *want[] = {"\xf0\x9f\x91\x8d", ""};
    for (size_t i = 0; i < count; i++) {
        json_t *r = json_object_get(b[i].doc, "reaction");
        assert_string_equal(json_string_value(json_object_get(b[i].doc, "type")), "reaction");
        assert_string_equal(json_string_value(json_object_get(r, "message_id")), "wamid.IN-R1");
        assert_string_equal(json_string_value(json_object_get(r, "emoji")), want[i]);
    }
    graph_bodies_free(b, count);
}

/* ---- defect 4: Meta's limits ----------------------------------------------------------------- */

/* A draft campaign of text body with buttons_data, footer and header text
 * (NULL: none) to n contacts of audience tag, who wrote an hour ago (inside
 * the window a free-form message needs, §12.7). */
static int64_t campaign_with_extras(int n, int tag, const char *body, const char *buttons,
                                    const char *footer, const char *header_text)
{
    int64_t group = camp_audience(&fx->camp, mw.ws, n, tag);
    meta_world_audience_wrote(group, 3600 * 1000LL);
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, mw.account, body, "draft", NULL);
    char ws[24], id[24];
    snprintf(ws, sizeof ws, "%lld", (long long)mw.ws);
    snprintf(id, sizeof id, "%lld", (long long)campaign);
    camp_sql(&fx->camp,
             "UPDATE campaigns SET buttons_data = $2::jsonb, footer_text = $3, header_text = $4, "
             "header_type = CASE WHEN $4::text IS NULL THEN NULL ELSE 'text' END WHERE id = $1 "
             "AND workspace_id = $5 RETURNING id",
             5, id, buttons, footer, header_text, ws);
    return campaign;
}

static void campaign_over_meta_limits_refused_at_start(void **state)
{
    (void)state;
    meta_world_start("lc", "{}", NULL);
    int64_t c = campaign_with_extras(2, 81, "Promo {{first_name}}",
                                     "[\"Ya\", \"Tidak, terima kasih banyak\"]", NULL, NULL);
    camp_command(&fx->camp, mw.ws, c, "start", "itest");
    assert_failed_at_start(c, "buttons[1]: 26 characters, Meta takes at most 20");
    c = campaign_with_extras(2, 82, "Promo", "[\"A\", \"B\", \"C\", \"D\"]", NULL, NULL);
    camp_command(&fx->camp, mw.ws, c, "start", "itest");
    assert_failed_at_start(c, "buttons: 4 reply buttons, Meta takes at most 3");
    c = campaign_with_extras(2, 83, "Promo", "[\"Ya\"]",
                             "Balas STOP untuk berhenti menerima pesan promosi dari kami ya", NULL);
    camp_command(&fx->camp, mw.ws, c, "start", "itest");
    assert_failed_at_start(c, "footer: 61 characters, Meta takes at most 60");
    c = campaign_with_extras(2, 84, "Promo", NULL, "stop: STOP", NULL);
    camp_command(&fx->camp, mw.ws, c, "start", "itest");
    assert_failed_at_start(c, "footer: a Meta text or media message has no footer");
    assert_int_equal(meta_world_count_kind("interactive") + meta_world_count_kind("text"), 0);
}

/* A campaign within Meta's limits goes whole: its text header and footer
 * are in every request, personalized. */
static void campaign_header_text_and_footer_sent_whole(void **state)
{
    (void)state;
    meta_world_start("lw", "{}", NULL);
    int n = 2;
    int64_t c = campaign_with_extras(n, 85, "Diskon untuk {{first_name}}", "[\"Ya\", \"Tidak\"]",
                                     "stop: STOP", "Promo {{first_name}}");
    camp_command(&fx->camp, mw.ws, c, "start", "itest");
    camp_wait_status(&fx->camp, c, "completed", 120);
    assert_no_failed_logs(c);
    size_t count;
    graph_body *b = graph_bodies(&count);
    assert_int_equal(count, n);
    for (size_t i = 0; i < count; i++) {
        json_t *in = json_object_get(b[i].doc, "interactive");
        const char *to = json_string_value(json_object_get(b[i].doc, "to"));
        char want[64];
        snprintf(want, sizeof want, "Promo First%d", (int)strtol(to + strlen(to) - 7, NULL, 10));
        json_t *h = json_object_get(in, "header");
        const char *type = json_string_value(json_object_get(h, "type"));
        const char *header = json_string_value(json_object_get(h, "text"));
        const char *footer = json_string_value(json_object_get(json_object_get(in, "footer"),
                                                                "text"));
        if (!type || strcmp(type, "text") != 0 || !header || strcmp(header, want) != 0 ||
            !footer || strcmp(footer, "stop: STOP") != 0) {
            char *text = json_dumps(b[i].doc, JSON_COMPACT);
            char shown[700];
            snprintf(shown, sizeof shown, "%s", text ? text : "?");
            free(text);
            graph_bodies_free(b, count);
            fail_msg("request without the header \"%s\" or the footer: %s", want, shown);
        }
    }
    graph_bodies_free(b, count);
}

/* POST /v1/messages: status and body of the answer (into resp). */
static long post_raw(const char *json_fields, const char *idem, char *resp, size_t cap)
{
    char req[1024];
    snprintf(req, sizeof req, "{\"idempotency_key\":\"%s\",%s}", idem, json_fields);
    return agent_post(fx, "/v1/messages", mw.api_key, req, resp, cap, NULL, 0);
}

/* POST /v1/messages must answer want with error reason naming field. */
static void assert_refused(const char *fields, const char *idem, long want, const char *reason,
                           const char *field)
{
    char resp[1024];
    long status = post_raw(fields, idem, resp, sizeof resp);
    json_t *j = json_loads(resp, 0, NULL);
    const char *error = json_string_value(json_object_get(j, "error"));
    const char *named = json_string_value(json_object_get(j, "field"));
    int ok = status == want && error && strcmp(error, reason) == 0 && named &&
             strcmp(named, field) == 0;
    json_decref(j);
    if (!ok)
        fail_msg("expected %ld %s naming %s, got %ld: %s", want, reason, field, status, resp);
}

#define AUDIO_WITH_CAPTION                                                                       \
    "\"message_type\":\"audio\",\"media\":{\"url\":\"https://example.com/a.ogg\","           \
    "\"mime_type\":\"audio/ogg\",\"caption\":\"dengarkan\"}"

/* An agent's audio with a caption (Meta sends none): 400 naming
 * media.caption when the account is known at the API (named, or the
 * conversation's), else the row fails at acceptance with the reason and no
 * request reaches Meta; nothing stored says a caption was sent. */
static void agent_message_over_meta_limits(void **state)
{
    (void)state;
    meta_world_start("la", "{}", NULL);
    int64_t named = agent_contact(fx, mw.ws, "+6281300000081", "Ani");
    int64_t talked = agent_contact(fx, mw.ws, "+6281300000082", "Bob");
    int64_t fresh = agent_contact(fx, mw.ws, "+6281300000083", "Cici");
    agent_inbound(fx, mw.session, "wamid.IN-L1", "+6281300000082", "halo", bz_wall_ms());
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.IN-L1'");
    char fields[512];
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"whatsapp_account_id\":%lld," AUDIO_WITH_CAPTION,
             (long long)named, (long long)mw.account);
    assert_refused(fields, "limit-named", 400, "provider_limit", "media.caption");
    snprintf(fields, sizeof fields, "\"contact_id\":%lld," AUDIO_WITH_CAPTION, (long long)talked);
    assert_refused(fields, "limit-chat", 400, "provider_limit", "media.caption");
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE contact_id IN (%lld, %lld) "
                                   "AND type = 'outbound'",
                               (long long)named, (long long)talked),
                     0);
    /* no account known at the API: chat-sync chooses the Meta account and
     * fails the message with the reason, before any request */
    char id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields, "\"contact_id\":%lld," AUDIO_WITH_CAPTION, (long long)fresh);
    meta_world_post_message(fields, "limit-fresh", id);
    agent_wait(fx, 1, 60,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'failed' AND "
               "metadata->>'error_code' = 'provider_limit' AND metadata->>'error_message' LIKE "
               "'field media.caption:%%'",
               id);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM outbound_queue WHERE message_id = '%s'",
                               id),
                     0);
    assert_int_equal(meta_world_count_kind("audio"), 0);
}

/* ---- interactive messages (issue 53) ---------------------------------------------------- */

#define LIST_JSON                                                                                 \
    "\"message_type\":\"interactive\",\"body\":\"Mau dikirim bagaimana?\",\"interactive\":"     \
    "{\"type\":\"list\",\"header_text\":\"Pengiriman\",\"footer\":\"Toko Budi\",\"button\":"      \
    "\"Pilih\",\"sections\":[{\"title\":\"Kurir\",\"rows\":[{\"id\":\"kirim-besok\",\"title\":"    \
    "\"Besok\",\"description\":\"1-2 hari kerja\"}" LIST_MORE_ROWS "]},{\"title\":\"Toko\","       \
    "\"rows\":[{\"id\":\"ambil\",\"title\":\"Ambil sendiri\"}]}]}"
#define LIST_MORE_ROWS ""

/* The body Meta was asked to send for the message whose interactive type
 * is `type` (the server's record of accepted requests); fails when none. */
static json_t *interactive_sent(graph_body *b, size_t n, const char *type)
{
    for (size_t i = 0; i < n; i++) {
        json_t *in = json_object_get(b[i].doc, "interactive");
        const char *t = json_string_value(json_object_get(in, "type"));
        if (t && strcmp(t, type) == 0)
            return in;
    }
    fail_msg("no interactive %s message reached Meta", type);
    return NULL;
}

static const char *member(json_t *o, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(o, a), b));
}

/* An agent's list, URL button and location request through the Cloud API:
 * each request as Meta's pages show it, accepted by the server applying
 * Meta's limits, each row stored with its interactive message and sent;
 * a list over Meta's limits, a location request with a footer, a URL
 * button to a non-web URL and an interactive message without its type are
 * refused naming the field, with no request. */
static void agent_interactive_through_meta(void **state)
{
    (void)state;
    meta_world_start("ix", "{}", NULL);
    int64_t contact = agent_contact(fx, mw.ws, "+6281300000073", "Citra");
    agent_inbound(fx, mw.session, "wamid.IN-X1", "+6281300000073", "halo", bz_wall_ms());
    agent_wait(fx, 1, 60, "SELECT count(*) FROM chats WHERE wam_id = 'wamid.IN-X1'");
    char fields[1024], list_id[BZ_UUID_STR_SIZE], cta_id[BZ_UUID_STR_SIZE],
        where_id[BZ_UUID_STR_SIZE], flow_id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields, "\"contact_id\":%lld," LIST_JSON, (long long)contact);
    meta_world_post_message(fields, "ix-list", list_id);
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"interactive\",\"body\":\"Jadwal baru\","
             "\"interactive\":{\"type\":\"cta_url\",\"display_text\":\"Lihat jadwal\","
             "\"url\":\"https://example.com/jadwal?id=7\",\"footer\":\"Toko Budi\"}",
             (long long)contact);
    meta_world_post_message(fields, "ix-cta", cta_id);
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"interactive\",\"body\":\"Kirim lokasi "
             "Anda\",\"interactive\":{\"type\":\"location_request\"}",
             (long long)contact);
    meta_world_post_message(fields, "ix-where", where_id);
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"interactive\",\"body\":\"Isi pesanan\","
             "\"interactive\":{\"type\":\"flow\",\"flow_id\":\"1234567890\",\"flow_cta\":"
             "\"Pesan\",\"flow_token\":\"order-17\",\"flow_screen\":\"ORDER\",\"flow_data\":"
             "{\"product\":\"Kopi\"}}",
             (long long)contact);
    meta_world_post_message(fields, "ix-flow", flow_id);
    agent_wait(fx, 4, 90,
               "SELECT count(*) FROM chats WHERE uuid IN ('%s', '%s', '%s', '%s') AND "
               "message_status IN ('sent', 'delivered', 'read') AND metadata->>'message_type' = "
               "'interactive'",
               list_id, cta_id, where_id, flow_id);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE uuid = '%s' AND "
                                   "metadata->'interactive'->'flow_data'->>'product' = 'Kopi'",
                               flow_id),
                     1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE uuid = '%s' AND "
                                   "metadata->'interactive'->'sections'->1->'rows'->0->>'id' = "
                                   "'ambil' AND metadata->>'body' = 'Mau dikirim bagaimana?'",
                               list_id),
                     1);
    size_t count;
    graph_body *b = graph_bodies(&count);
    assert_int_equal(count, 4);
    json_t *list = interactive_sent(b, count, "list");
    assert_string_equal(member(list, "header", "text"), "Pengiriman");
    assert_string_equal(member(list, "body", "text"), "Mau dikirim bagaimana?");
    assert_string_equal(member(list, "action", "button"), "Pilih");
    json_t *rows = json_object_get(
        json_array_get(json_object_get(json_object_get(list, "action"), "sections"), 0), "rows");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "id")),
                        "kirim-besok");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0),
                                                          "description")),
                        "1-2 hari kerja");
    json_t *cta = interactive_sent(b, count, "cta_url");
    assert_string_equal(member(cta, "action", "name"), "cta_url");
    assert_string_equal(member(json_object_get(cta, "action"), "parameters", "url"),
                        "https://example.com/jadwal?id=7");
    assert_string_equal(member(cta, "footer", "text"), "Toko Budi");
    json_t *where = interactive_sent(b, count, "location_request_message");
    assert_string_equal(member(where, "action", "name"), "send_location");
    json_t *flow = json_object_get(json_object_get(interactive_sent(b, count, "flow"), "action"),
                                   "parameters");
    assert_string_equal(json_string_value(json_object_get(flow, "flow_id")), "1234567890");
    assert_string_equal(member(flow, "flow_action_payload", "screen"), "ORDER");
    graph_bodies_free(b, count);

    /* refused at the API, the conversation's account being Meta's */
#undef LIST_MORE_ROWS
#define LIST_MORE_ROWS                                                                            \
    ",{\"id\":\"a\",\"title\":\"a\"},{\"id\":\"b\",\"title\":\"b\"},{\"id\":\"c\",\"title\":"   \
    "\"c\"},{\"id\":\"d\",\"title\":\"d\"},{\"id\":\"e\",\"title\":\"e\"},{\"id\":\"f\","        \
    "\"title\":\"f\"},{\"id\":\"g\",\"title\":\"g\"},{\"id\":\"h\",\"title\":\"h\"},{\"id\":"    \
    "\"i\",\"title\":\"i\"}"
    snprintf(fields, sizeof fields, "\"contact_id\":%lld," LIST_JSON, (long long)contact);
    assert_refused(fields, "ix-eleven", 400, "provider_limit", "interactive.sections");
#undef LIST_MORE_ROWS
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"interactive\",\"body\":\"Lokasi?\","
             "\"interactive\":{\"type\":\"location_request\",\"footer\":\"Toko Budi\"}",
             (long long)contact);
    assert_refused(fields, "ix-footer", 400, "provider_limit", "interactive.footer");
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"interactive\",\"body\":\"Jadwal\","
             "\"interactive\":{\"type\":\"cta_url\",\"display_text\":\"Lihat\","
             "\"url\":\"javascript:alert(1)\"}",
             (long long)contact);
    assert_refused(fields, "ix-url", 400, "invalid_field", "interactive.url");
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"interactive\",\"body\":\"Jadwal\"",
             (long long)contact);
    assert_refused(fields, "ix-untyped", 400, "missing_field", "interactive.type");

    /* queued for the Meta account, which is gone at release: the failover
     * finds only a whatsapp-web.js account, and the message fails there */
    camp_account(&fx->camp, mw.ws, "ix-webjs", 0, 100, "{}");
    camp_stop_sender(&fx->camp, 0);
    char failover_id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"interactive\",\"body\":\"Lokasi?\","
             "\"interactive\":{\"type\":\"location_request\"}",
             (long long)contact);
    meta_world_post_message(fields, "ix-failover", failover_id);
    agent_wait(fx, 1, 60,
               "SELECT count(*) FROM outbound_queue q JOIN chats c ON c.id = q.chat_id WHERE "
               "c.uuid = '%s' AND q.whatsapp_account_id = %lld",
               failover_id, (long long)mw.account);
    agent_int(fx, "UPDATE whatsapp_accounts SET status = 'disconnected' WHERE id = %lld "
                  "RETURNING id",
              (long long)mw.account);
    camp_start_sender(&fx->camp, 0, NULL);
    agent_wait(fx, 1, 90,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'failed' AND "
               "metadata->>'error_code' = 'provider_limit'",
               failover_id);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM outbound_queue q JOIN chats c ON "
                                   "c.id = q.chat_id WHERE c.uuid = '%s'",
                               failover_id),
                     0);
    assert_int_equal(meta_world_count_kind("interactive"), 4);
}

/* ---- opt-out (issue 35) ------------------------------------------------------------------- */

/* The audience of the opt-out test (camp_audience tag 71): Meta's wa_id of
 * contact i is 1071000000i, its phone +1071000000i. */
#define OPT_A "10710000001"
#define OPT_B "10710000002"
#define OPT_C "10710000003"
#define OPT_ENDPOINT "/ok/optout"
/* When the opt-outs, then the opt-in, were sent (Meta's timestamps): ten
 * minutes before the test, so the contacts' 24-hour windows are open and
 * an agent may reply (§12.7). */
static long long opt_base;
#define OPT_OUT_AT (opt_base + 100)
#define OPT_IN_AT (opt_base + 200)

/* The contact of wa_id `from` matches cond (on contacts c); else fail
 * showing the workspace's contacts of that phone. */
static void expect_contact(const char *from, const char *cond)
{
    if (agent_int(fx, "SELECT count(*) FROM contacts c WHERE c.workspace_id = %lld AND "
                      "c.phone = '+%s' AND %s",
                  (long long)mw.ws, from, cond) == 1)
        return;
    char *rows = itest_pg_textf(fx->camp.pg,
                                "SELECT json_agg(c)::text FROM contacts c WHERE workspace_id = "
                                "%lld AND phone LIKE '%%%s'",
                                (long long)mw.ws, from + 4);
    fail_msg("contact %s does not match %s: %s", from, cond, rows);
}

/* A campaign "Promo {{first_name}}" to the group, started and completed. */
static int64_t completed_campaign(int64_t group)
{
    int64_t campaign = camp_campaign(&fx->camp, mw.ws, group, mw.account, "Promo {{first_name}}",
                                     "draft", NULL);
    camp_command(&fx->camp, mw.ws, campaign, "start", "itest");
    meta_world_wait_completed(campaign, 90);
    return campaign;
}

/* The campaign's logs of contact `from` with status (and skip reason). */
static int64_t logs_of(int64_t campaign, const char *from, const char *cond)
{
    return agent_int(fx, "SELECT count(*) FROM campaign_logs l JOIN contacts c ON c.id = "
                         "l.contact_id WHERE l.campaign_id = %lld AND c.phone = '+%s' AND %s",
                     (long long)campaign, from, cond);
}

/* Skipped logs counted where the CRM reads them: the campaign's counter,
 * the campaign.completed webhook, `blazzctl campaign status`. */
static void assert_skipped(int64_t campaign, int64_t skipped)
{
    assert_int_equal(agent_int(fx, "SELECT messages_skipped FROM campaigns WHERE id = %lld",
                               (long long)campaign),
                     skipped);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND status = 'skipped' AND skip_reason = 'opted_out'",
                               (long long)campaign),
                     skipped);
    char cond[160];
    snprintf(cond, sizeof cond,
             "(b #>> '{data,campaign_id}')::bigint = %lld AND "
             "(b #>> '{data,counters,messages_skipped}')::int = %lld",
             (long long)campaign, (long long)skipped);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM webhook_retry_queue q, LATERAL (SELECT "
                          "convert_from(q.payload, 'UTF8')::jsonb AS b) j WHERE q.event_type = "
                          "'campaign.completed' AND q.status = 'success' AND %s",
               cond);
    json_t *out = camp_status_json(&fx->camp, campaign);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "counters"),
                                                        "messages_skipped")),
                     skipped);
    json_decref(out);
}

/* Opt-out by keyword and by Meta's button, through signed webhooks, ingest
 * and chat-sync: A writes "  Berhenti Langganan " (a keyword whole, case
 * and spaces aside), B taps Meta's "Stop promotions" button, C writes a
 * sentence with "stop" in it (not an opt-out). The next campaign skips A
 * and B (counted) and completes; an agent's reply still reaches B. A
 * writes "mulai": opted in. Then, to a restarted ingest (its duplicate
 * window forgotten), both opt-outs again and an older "STOP" from A: no
 * change, no webhook. The next campaign sends to A and skips B; one
 * contact.opted_out per contact and one contact.opted_in came. */
static void opt_out_by_keyword_and_button(void **state)
{
    (void)state;
    opt_base = (long long)time(NULL) - 600;
    meta_world_start("optout", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, OPT_ENDPOINT);
    agent_start_dispatcher(fx);
    int64_t group = camp_audience(&fx->camp, mw.ws, 3, 71);
    const char *keyword = "\"text\":{\"body\":\"  Berhenti Langganan \"}";
    const char *button = "\"button\":{\"payload\":\"Stop promotions\",\"text\":\"Stop promotions\"}";
    meta_world_post_inbound(OPT_A, "wamid.opt.a1", OPT_OUT_AT, "text", keyword);
    meta_world_post_inbound(OPT_B, "wamid.opt.b1", OPT_OUT_AT, "button", button);
    meta_world_post_inbound(OPT_C, "wamid.opt.c1", OPT_OUT_AT, "text",
                            "\"text\":{\"body\":\"tolong jangan stop promonya\"}");
    agent_wait(fx, 3, 90, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id LIKE "
                          "'wamid.opt.%%'", (long long)mw.ws);
    char cond[256];
    snprintf(cond, sizeof cond,
             "c.opted_out_at = to_timestamp(%lld) AND c.opt_out_source = 'keyword' AND "
             "c.opt_out_keyword = 'BERHENTI LANGGANAN'", OPT_OUT_AT);
    expect_contact(OPT_A, cond);
    snprintf(cond, sizeof cond,
             "c.opted_out_at = to_timestamp(%lld) AND c.opt_out_source = 'button' AND "
             "c.opt_out_keyword = 'Stop promotions'", OPT_OUT_AT);
    expect_contact(OPT_B, cond);
    expect_contact(OPT_C, "c.opted_out_at IS NULL");

    int64_t first = completed_campaign(group);
    assert_skipped(first, 2);
    assert_int_equal(logs_of(first, OPT_C, "l.status IN ('sent', 'delivered', 'read')"), 1);
    assert_int_equal(meta_world_count_kind("text"), 1);

    /* a service reply from an agent still goes */
    char fields[256], id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields,
             "\"contact_phone\":\"+" OPT_B "\",\"message_type\":\"text\",\"body\":\"Baik, "
             "kami berhenti\"");
    meta_world_post_message(fields, "optout-reply-1", id);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status IN "
                          "('sent', 'delivered', 'read')", id);

    meta_world_post_inbound(OPT_A, "wamid.opt.a2", OPT_IN_AT, "text", "\"text\":{\"body\":\"mulai\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND phone = "
                          "'+" OPT_A "' AND opted_out_at IS NULL AND opt_out_changed_at = "
                          "to_timestamp(%lld)", (long long)mw.ws, OPT_IN_AT);

    meta_world_restart_ingest();
    meta_world_post_inbound(OPT_A, "wamid.opt.a1", OPT_OUT_AT, "text", keyword);
    meta_world_post_inbound(OPT_B, "wamid.opt.b1", OPT_OUT_AT, "button", button);
    meta_world_post_inbound(OPT_A, "wamid.opt.a0", OPT_OUT_AT + 50, "text",
                            "\"text\":{\"body\":\"STOP\"}");
    /* sentinels: applied and fanned out after what came before them */
    meta_world_post_inbound(OPT_A, "wamid.opt.a3", OPT_IN_AT + 10, "text",
                            "\"text\":{\"body\":\"sentinel\"}");
    meta_world_post_inbound(OPT_B, "wamid.opt.b3", OPT_IN_AT + 10, "text",
                            "\"text\":{\"body\":\"sentinel\"}");
    agent_wait(fx, 2, 90, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
                          "AND status = 'success' AND convert_from(payload, 'UTF8')::jsonb #>> "
                          "'{data,chat,message}' = 'sentinel'", (long long)mw.ws);
    expect_contact(OPT_A, "c.opted_out_at IS NULL");
    assert_int_equal(meta_world_webhooks_delivered("contact.opted_out", "true"), 2);
    assert_int_equal(meta_world_webhooks_delivered("contact.opted_out",
                                        "b #>> '{data,opt_out,source}' = 'button' AND "
                                        "b #>> '{data,contact,phone}' = '+" OPT_B "'"),
                     1);
    assert_int_equal(meta_world_webhooks_delivered("contact.opted_in",
                                        "b #>> '{data,opt_out,keyword}' = 'MULAI' AND "
                                        "b #>> '{data,contact,phone}' = '+" OPT_A "'"),
                     1);
    assert_int_equal(meta_world_webhooks_delivered("contact.opted_in", "true"), 1);

    int64_t second = completed_campaign(group);
    assert_skipped(second, 1);
    assert_int_equal(logs_of(second, OPT_A, "l.status IN ('sent', 'delivered', 'read')"), 1);
    assert_int_equal(logs_of(second, OPT_B, "l.status = 'skipped'"), 1);
    assert_int_equal(meta_world_count_kind("text"), 4);
}

#define PREF_A "10720000001"
#define PREF_B "10720000002"
#define PREF_C "10720000003"
#define PREF_C_BSUID "US.10720000003000000003"
#define PREF_ENDPOINT "/ok/prefs"

/* Meta's user_preferences webhook, as the Graph test server plays it
 * (graph_phone.c, from Meta's reference): the user named by wa_id (phone
 * digits) and/or user_id (BSUID) stopped or resumed marketing messages at
 * ts. */
static void post_preference(const char *wa_id, const char *user_id, const char *value,
                            long long ts)
{
    char ids[160] = "", body[512];
    if (wa_id)
        snprintf(ids, sizeof ids, "\"wa_id\":\"%s\",", wa_id);
    if (user_id)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "\"user_id\":\"%s\",", user_id);
    snprintf(body, sizeof body,
             "{\"phone_number_id\":\"%s\",%s\"value\":\"%s\",\"timestamp\":%lld}", mw.session,
             ids, value, ts);
    meta_world_graph_plays("_preference", body);
}

/* Meta's user_preferences honoured as the STOP keyword is (issue 53): A,
 * B and C wrote (inside the service window); A (named by phone) and C (a
 * contact known by its BSUID, named by it alone) stop marketing messages;
 * B does not. They are opted out (source
 * "preference"), the next campaign skips both and completes, and the CRM
 * got contact.opted_out for each. A resumes: opted in (contact.opted_in),
 * and Meta redelivering the older stop changes nothing; the next campaign
 * sends to A and skips C. */
static void opt_out_by_user_preferences(void **state)
{
    (void)state;
    long long base = (long long)time(NULL) - 600;
    meta_world_start("prefs", META_WORLD_PACED, NULL);
    agent_endpoint(fx, mw.ws, PREF_ENDPOINT);
    agent_start_dispatcher(fx);
    int64_t group = camp_audience(&fx->camp, mw.ws, 3, 72);
    agent_int(fx, "WITH u AS (UPDATE contacts SET bsuid = '" PREF_C_BSUID "' WHERE workspace_id = "
                  "%lld AND phone = '+" PREF_C "' RETURNING 1) SELECT count(*) FROM u",
              (long long)mw.ws);
    /* each wrote within the hour: inside Meta's service window (§12.7) */
    const char *const audience[] = {PREF_A, PREF_B, PREF_C};
    for (int i = 0; i < 3; i++) {
        char wamid[40];
        snprintf(wamid, sizeof wamid, "wamid.pref.%d", i);
        meta_world_post_inbound(audience[i], wamid, base + 50, "text",
                                "\"text\":{\"body\":\"halo\"}");
    }
    agent_wait(fx, 3, 90, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id LIKE "
                          "'wamid.pref.%%'", (long long)mw.ws);
    post_preference(PREF_A, NULL, "stop", base + 100);
    post_preference(NULL, PREF_C_BSUID, "stop", base + 100);
    agent_wait(fx, 2, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND "
                          "opted_out_at IS NOT NULL", (long long)mw.ws);
    char cond[256];
    snprintf(cond, sizeof cond,
             "c.opted_out_at = to_timestamp(%lld) AND c.opt_out_source = 'preference'",
             base + 100);
    expect_contact(PREF_A, cond);
    expect_contact(PREF_C, cond);
    expect_contact(PREF_B, "c.opted_out_at IS NULL");
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM contacts WHERE workspace_id = %lld",
                               (long long)mw.ws),
                     3);

    int64_t first = completed_campaign(group);
    assert_skipped(first, 2);
    assert_int_equal(logs_of(first, PREF_B, "l.status IN ('sent', 'delivered', 'read')"), 1);

    post_preference(PREF_A, NULL, "resume", base + 200);
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE workspace_id = %lld AND phone = "
                          "'+" PREF_A "' AND opted_out_at IS NULL AND opt_out_changed_at = "
                          "to_timestamp(%lld)", (long long)mw.ws, base + 200);
    post_preference(PREF_A, NULL, "stop", base + 150);
    /* A writes: on the redelivery's key (A's phone), so read after it */
    meta_world_post_inbound(PREF_A, "wamid.pref.after", base + 250, "text",
                            "\"text\":{\"body\":\"halo lagi\"}");
    agent_wait(fx, 1, 90, "SELECT count(*) FROM chats WHERE workspace_id = %lld AND wam_id = "
                          "'wamid.pref.after'", (long long)mw.ws);
    expect_contact(PREF_A, "c.opted_out_at IS NULL");
    agent_wait(fx, 3, 90, "SELECT count(*) FROM webhook_retry_queue WHERE workspace_id = %lld "
                          "AND status = 'success' AND event_type IN ('contact.opted_out', "
                          "'contact.opted_in')", (long long)mw.ws);
    assert_int_equal(meta_world_webhooks_delivered("contact.opted_out",
                                        "b #>> '{data,opt_out,source}' = 'preference'"),
                     2);
    assert_int_equal(meta_world_webhooks_delivered("contact.opted_in",
                                        "b #>> '{data,opt_out,source}' = 'preference' AND "
                                        "b #>> '{data,contact,phone}' = '+" PREF_A "'"),
                     1);

    int64_t second = completed_campaign(group);
    assert_skipped(second, 1);
    assert_int_equal(logs_of(second, PREF_A, "l.status IN ('sent', 'delivered', 'read')"), 1);
    assert_int_equal(logs_of(second, PREF_C, "l.status = 'skipped'"), 1);
    expect_contact(PREF_A, "c.opted_out_at IS NULL");
    assert_int_equal(meta_world_webhooks_delivered("contact.opted_out", "true"), 2);
    assert_int_equal(meta_world_webhooks_delivered("contact.opted_in", "true"), 1);
}

/* A user_preferences stop reaches a campaign already running (issue 53): a
 * template campaign to 40 contacts at 2 a second (20 s to send, room for
 * the pause to land whatever the load), paused after its first sends;
 * a contact still waiting stops marketing messages; resumed, the campaign
 * skips that contact (counted once) and sends to every other. */
static void preference_stop_reaches_a_running_campaign(void **state)
{
    (void)state;
    int n = 40;
    start_with_templates("prefrun", "{\"per_second\": 2, \"per_minute\": 0, \"per_hour\": 0}");
    agent_endpoint(fx, mw.ws, PREF_ENDPOINT);
    agent_start_dispatcher(fx);
    int64_t campaign = template_campaign("promo_named", n, 79, NULL);
    agent_wait(fx, 1, 90, "SELECT least(count(*), 1) FROM campaign_logs WHERE campaign_id = %lld "
                          "AND status <> 'pending'", (long long)campaign);
    camp_command(&fx->camp, mw.ws, campaign, "pause", "itest");
    camp_wait_status(&fx->camp, campaign, "paused", 60);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld AND "
                          "status = 'queued'", (long long)campaign);
    int64_t waiting = agent_int(fx, "SELECT coalesce(max(contact_id), 0) FROM campaign_logs WHERE "
                                    "campaign_id = %lld AND status = 'pending'",
                                (long long)campaign);
    assert_true(waiting > 0);
    char phone[32], *digits = itest_pg_textf(fx->camp.pg, "SELECT substr(phone, 2) FROM "
                                                          "contacts WHERE id = %lld",
                                              (long long)waiting);
    snprintf(phone, sizeof phone, "%s", digits);
    free(digits);
    post_preference(phone, NULL, "stop", (long long)time(NULL));
    agent_wait(fx, 1, 90, "SELECT count(*) FROM contacts WHERE id = %lld AND opted_out_at IS NOT "
                          "NULL AND opt_out_source = 'preference'", (long long)waiting);
    camp_command(&fx->camp, mw.ws, campaign, "resume", "itest");
    meta_world_wait_completed(campaign, 120);
    assert_skipped(campaign, 1);
    assert_int_equal(logs_of(campaign, phone, "l.status = 'skipped'"), 1);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM campaign_logs WHERE campaign_id = %lld "
                                   "AND status IN ('sent', 'delivered', 'read')",
                               (long long)campaign),
                     n - 1);
}

/* ---- issue 35: the 24-hour customer-service window ---------------------------------------- */

typedef struct failed_events {
    const char *uuid;
    int n;
} failed_events;

/* Count the STATUS_CHANGED events failing chat ctx->uuid with the window's
 * reason. */
static void count_window_failure(void *ctx, const rd_kafka_message_t *msg)
{
    failed_events *f = ctx;
    Blazz__V1__ChatEvent *e =
        blazz__v1__chat_event__unpack(NULL, msg->len, (const uint8_t *)msg->payload);
    if (!e)
        return;
    f->n += e->kind == BLAZZ__V1__CHAT_EVENT_KIND__CHAT_EVENT_KIND_STATUS_CHANGED && e->chat &&
            strcmp(e->chat->uuid, f->uuid) == 0 && e->status_change &&
            e->status_change->status == BLAZZ__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED &&
            strcmp(e->status_change->error_code, "outside_service_window") == 0;
    blazz__v1__chat_event__free_unpacked(e, NULL);
}

static void agent_message_outside_service_window(void **state)
{
    (void)state;
    start_with_templates("sw", "{}");
    int64_t hour_ms = 3600 * 1000;
    int64_t old = agent_contact(fx, mw.ws, "+6281300000091", "Dedi");
    int64_t recent = agent_contact(fx, mw.ws, "+6281300000092", "Eka");
    int64_t fresh = agent_contact(fx, mw.ws, "+6281300000093", "Fani");
    /* through ingest's Kafka path and chat-sync, with the contacts' own
     * timestamps (ingest refuses only future ones) */
    int64_t now = bz_wall_ms();
    agent_inbound(fx, mw.session, "wamid.IN-W1", "+6281300000091", "halo", now - 25 * hour_ms);
    agent_inbound(fx, mw.session, "wamid.IN-W2", "+6281300000092", "halo", now - hour_ms);
    agent_wait(fx, 2, 60,
               "SELECT count(*) FROM chats WHERE wam_id IN ('wamid.IN-W1', 'wamid.IN-W2')");
    /* 25 h after the contact's last message: no free-form message, whether
     * the account is named or the conversation's */
    char fields[512], tpl_id[BZ_UUID_STR_SIZE], reply_id[BZ_UUID_STR_SIZE],
        fresh_id[BZ_UUID_STR_SIZE];
    snprintf(fields, sizeof fields, "\"contact_id\":%lld,\"whatsapp_account_id\":%lld,"
             "\"body\":\"masih ada?\"", (long long)old, (long long)mw.account);
    assert_refused(fields, "window-named", 422, "outside_service_window", "message_type");
    snprintf(fields, sizeof fields, "\"contact_id\":%lld,\"body\":\"masih ada?\"", (long long)old);
    assert_refused(fields, "window-chat", 422, "outside_service_window", "message_type");
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM chats WHERE contact_id = %lld AND type = "
                                   "'outbound'", (long long)old),
                     0);
    /* a template may open the conversation again */
    snprintf(fields, sizeof fields,
             "\"contact_id\":%lld,\"message_type\":\"template\",\"template\":{\"name\":"
             "\"promo_named\",\"language\":\"id\",\"body_params\":[\"Dedi\",\"0813\"]}",
             (long long)old);
    meta_world_post_message(fields, "window-template", tpl_id);
    /* an hour after the contact's message the agent replies freely */
    meta_world_post_text(recent, "siap, kami bantu", "window-reply", reply_id);
    /* nobody wrote and no account is known at the API: chat-sync chooses
     * the Meta account and fails the message before release */
    meta_world_post_text(fresh, "halo Fani", "window-fresh", fresh_id);
    agent_wait(fx, 2, 90,
               "SELECT count(*) FROM chats WHERE uuid IN ('%s', '%s') AND message_status IN "
               "('sent', 'delivered', 'read')",
               tpl_id, reply_id);
    agent_wait(fx, 1, 60,
               "SELECT count(*) FROM chats WHERE uuid = '%s' AND message_status = 'failed' AND "
               "metadata->>'error_code' = 'outside_service_window'",
               fresh_id);
    assert_int_equal(agent_int(fx, "SELECT count(*) FROM outbound_queue WHERE message_id = '%s'",
                               fresh_id),
                     0);
    agent_wait(fx, 0, 60, "SELECT count(*) FROM outbox");
    char topic[256];
    snprintf(topic, sizeof topic, "%schat.events", fx->wh.prefix);
    failed_events f = {.uuid = fresh_id};
    itest_consume_all(topic, count_window_failure, &f);
    assert_int_equal(f.n, 1);
    /* Meta was asked for the template and the reply only */
    size_t count;
    graph_body *b = graph_bodies(&count);
    assert_int_equal(count, 2);
    for (size_t i = 0; i < count; i++) {
        const char *to = json_string_value(json_object_get(b[i].doc, "to"));
        assert_string_not_equal(to ? to : "", "6281300000093");
        assert_string_not_equal(to ? to : "", "+6281300000093");
    }
    graph_bodies_free(b, count);
    assert_int_equal(meta_world_count_kind("template"), 1);
    assert_int_equal(meta_world_count_kind("text"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(template_campaign_named_parameters, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(template_campaign_positional_parameters, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(template_campaign_refused_at_start, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(template_not_approved_refused_at_start, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(template_paused_mid_campaign, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(agent_named_template, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(agent_reaction_through_meta, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(campaign_over_meta_limits_refused_at_start,
                                        agent_test_setup, meta_world_teardown),
        cmocka_unit_test_setup_teardown(campaign_header_text_and_footer_sent_whole,
                                        agent_test_setup, meta_world_teardown),
        cmocka_unit_test_setup_teardown(agent_interactive_through_meta, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(agent_message_over_meta_limits, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(opt_out_by_keyword_and_button, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(opt_out_by_user_preferences, agent_test_setup,
                                        meta_world_teardown),
        cmocka_unit_test_setup_teardown(preference_stop_reaches_a_running_campaign,
                                        agent_test_setup, meta_world_teardown),
        cmocka_unit_test_setup_teardown(agent_message_outside_service_window, agent_test_setup,
                                        meta_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
