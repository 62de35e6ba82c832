/*
 * cmd_health.c - `blazzctl health [URL]`: probe a service's admin endpoint.
 *
 * The container images run this as their HEALTHCHECK (the runtime image
 * has no curl), so it must be quick, quiet and exact: exit 0 only for a 2xx
 * answer within the timeout, 1 for anything else, with one line saying
 * what was wrong. Only http and https URLs are fetched, without following
 * redirects, so a probe never wanders off the host it was pointed at.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "blazzctl.h"
#include "core/text_head.h"

#define HEALTH_DEFAULT_URL "http://127.0.0.1:9100/healthz"
#define HEALTH_BODY_MAX 512

static const char health_help[] =
    "usage: blazzctl health [URL] [--timeout MS] [--json]\n"
    "\n"
    "GET URL (default $BLAZZ_HEALTH_URL or " HEALTH_DEFAULT_URL ") and exit 0\n"
    "when it answers 2xx within the timeout, 1 otherwise. Use /readyz to ask\n"
    "whether the service is connected and has its partitions.\n"
    "\n"
    "  --timeout MS   give up after MS milliseconds (default 3000)\n"
    "  --json         print the outcome as JSON\n"
    "  --help         this text\n";

typedef struct health_options {
    const char *url;
    int timeout_ms;
    int json;
} health_options;

static int health_option(void *opts, int option, char *value)
{
    health_options *o = opts;
    if (option == 'j')
        o->json = 1;
    else if (option == 't')
        return bz_ctl_option_int("health", value, 1, 600000, "timeout", &o->timeout_ms);
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_health_options(int argc, char **argv, health_options *o)
{
    static const struct option longopts[] = {{"timeout", required_argument, NULL, 't'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"health", health_help, longopts, health_option, 0};
    o->timeout_ms = 3000;
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (argc - optind > 1) {
        bz_ctl_usage_error("health", "unexpected argument '%s'", argv[optind + 1]);
        return 1;
    }
    o->url = optind < argc ? argv[optind]
                           : bz_ctl_setting(NULL, "BLAZZ_HEALTH_URL", HEALTH_DEFAULT_URL);
    return 0;
}

int bz_ctl_cmd_health(int argc, char **argv)
{
    health_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_health_options(argc, argv, &o);
    if (rc != 0)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "blazzctl health: libcurl initialisation failed\n");
        return 1;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    char body_text[HEALTH_BODY_MAX];
    bz_text_head body;
    bz_text_head_init(&body, body_text, sizeof body_text);
    long status = 0;
    CURLcode res = bz_ctl_http_get(o.url, NULL, o.timeout_ms, bz_text_head_keep, &body, &status,
                                   errbuf);
    curl_global_cleanup();
    int healthy = res == CURLE_OK && status >= 200 && status < 300;
    const char *problem = res != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(res)) : "";
    if (o.json) {
        rc = bz_ctl_print_json(json_pack("{s:s, s:b, s:i, s:s, s:s}", "url", o.url, "healthy",
                                         healthy, "status", (int)status, "error", problem,
                                         "body", body.text));
        return rc ? rc : !healthy;
    }
    if (res != CURLE_OK)
        fprintf(stderr, "blazzctl health: %s: %s\n", o.url, problem);
    else if (!healthy)
        fprintf(stderr, "blazzctl health: %s answered %ld: %s\n", o.url, status, body.text);
    else
        printf("%s: %ld %s\n", o.url, status, body.text);
    return !healthy;
}
