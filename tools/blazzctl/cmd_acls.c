/*
 * cmd_acls.c - `blazzctl acls apply|principals`: the Kafka ACLs of a
 * deployment, generated from the matrix in ARCHITECTURE.md §9.1
 * (libs/kafka/acl.h).
 *
 * `apply` creates the bindings of every service row for the deployment
 * prefix and of the gateway row for each --gateway ID[=PRINCIPAL]; it
 * needs a principal allowed to alter the cluster's ACLs (the stack's
 * admin). `--dry-run` prints them instead. Transactional-id bindings cannot
 * be created through librdkafka 2.0.2: `apply` says how many it left out,
 * and `--transactional-ids` prints just those, one per line as
 * "principal pattern name" (pattern literal or prefixed), for Kafka's own
 * kafka-acls tool (scripts/stack.sh). `principals` lists the matrix's fixed
 * principals, one per line: the SCRAM users a deployment needs besides its
 * gateways and the admin.
 */
#include <stdio.h>
#include <string.h>

#include "blazzctl.h"
#include "kafka/acl.h"

static const char acls_help[] =
    "usage: blazzctl acls apply [--brokers B] [--prefix P] [--gateway ID[=PRINCIPAL]]...\n"
    "                           [--no-services] [--dry-run | --transactional-ids]\n"
    "                           [--timeout MS]\n"
    "       blazzctl acls principals\n"
    "\n"
    "apply:      create the ACLs of ARCHITECTURE.md §9.1 for the deployment prefix P:\n"
    "            every service row, and the gateway row for each gateway ID (whose\n"
    "            principal is gateway-ID unless given). Needs the admin principal.\n"
    "            Existing ACLs are kept; nothing is removed.\n"
    "principals: the fixed principals of the matrix, one per line.\n"
    "\n"
    "  --brokers B           bootstrap brokers (default $BLAZZ_KAFKA_BROKERS)\n"
    "  --prefix P            deployment prefix (default $BLAZZ_TOPIC_PREFIX or none)\n"
    "  --no-services         only the gateways' ACLs\n"
    "  --dry-run             print the bindings instead of creating them\n"
    "  --transactional-ids   print only the transactional-id bindings (which librdkafka\n"
    "                        cannot create) as 'principal literal|prefixed name'\n"
    "  --timeout MS          give up on the broker after MS milliseconds (default 10000)\n"
    "  --help                this text\n";

#define MAX_GATEWAYS 64

typedef struct acls_options {
    const char *action, *brokers, *prefix, *timeout;
    const char *gateways[MAX_GATEWAYS];
    size_t ngateways;
    int no_services, dry_run, txn_ids, timeout_ms;
} acls_options;

static int add_gateway(acls_options *o, const char *arg)
{
    if (o->ngateways == MAX_GATEWAYS) {
        bz_ctl_usage_error("acls", "at most %d --gateway options", MAX_GATEWAYS);
        return 1;
    }
    o->gateways[o->ngateways++] = arg;
    return 0;
}

static int acls_option(void *opts, int option, char *value)
{
    acls_options *o = opts;
    switch (option) {
    case 'b': o->brokers = value; break;
    case 'p': o->prefix = value; break;
    case 'g': return add_gateway(o, value);
    case 'n': o->no_services = 1; break;
    case 'd': o->dry_run = 1; break;
    case 'x': o->txn_ids = 1; break;
    case 't': o->timeout = value; break;
    }
    return 0;
}

/* BZ_CTL_OPTIONS_RUN, _BAD or _HELP (options.h). */
static int parse_acls_options(int argc, char **argv, acls_options *o)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"prefix", required_argument, NULL, 'p'},
        {"gateway", required_argument, NULL, 'g'}, {"no-services", no_argument, NULL, 'n'},
        {"dry-run", no_argument, NULL, 'd'},       {"transactional-ids", no_argument, NULL, 'x'},
        {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static const bz_ctl_command_line cl = {"acls", acls_help, longopts, acls_option, 0};
    o->timeout = "10000";
    int rc = bz_ctl_read_options(argc, argv, &cl, o);
    if (rc != BZ_CTL_OPTIONS_RUN)
        return rc;
    if (optind + 1 != argc) {
        bz_ctl_usage_error("acls", "say 'apply' or 'principals'");
        return 1;
    }
    o->action = argv[optind];
    o->brokers = bz_ctl_setting(o->brokers, "BLAZZ_KAFKA_BROKERS", NULL);
    o->prefix = bz_ctl_setting(o->prefix, "BLAZZ_TOPIC_PREFIX", "");
    return bz_ctl_option_int("acls", o->timeout, 1, 3600000, "timeout", &o->timeout_ms);
}

/* The bindings apply asks for: services (unless --no-services), then each
 * gateway "ID" or "ID=PRINCIPAL". */
static bz_status build_bindings(const acls_options *o, bz_kafka_acl_list *list, bz_error *err)
{
    bz_status st = o->no_services ? BZ_OK : bz_kafka_acls_for_services(o->prefix, list, err);
    for (size_t i = 0; st == BZ_OK && i < o->ngateways; i++) {
        char id[BZ_GATEWAY_ID_MAX + 2];
        const char *eq = strchr(o->gateways[i], '=');
        size_t len = eq ? (size_t)(eq - o->gateways[i]) : strlen(o->gateways[i]);
        if (len >= sizeof id)
            return bz_fail(err, BZ_ERR_CONFIG, "gateway id '%.*s...': too long", 20,
                           o->gateways[i]);
        memcpy(id, o->gateways[i], len);
        id[len] = '\0';
        st = bz_kafka_acls_for_gateway(o->prefix, id, eq ? eq + 1 : NULL, list, err);
    }
    return st;
}

static void print_binding(const bz_kafka_acl *a)
{
    printf("%-20s %-8s %-15s %-9s %s\n", a->principal, bz_kafka_acl_op_name(a->op),
           bz_kafka_acl_resource_name(a->resource), a->prefixed ? "prefixed" : "literal",
           a->name);
}

static int run_apply(const acls_options *o)
{
    bz_error err;
    bz_error_clear(&err);
    bz_kafka_acl_list list = {0};
    if (build_bindings(o, &list, &err) != BZ_OK) {
        bz_kafka_acl_list_free(&list);
        return bz_ctl_fail("acls apply", &err);
    }
    int rc = 0;
    size_t skipped = 0;
    if (o->txn_ids || o->dry_run) {
        for (size_t i = 0; i < list.count; i++) {
            const bz_kafka_acl *a = &list.items[i];
            if (!o->txn_ids)
                print_binding(a);
            else if (a->resource == BZ_ACL_TRANSACTIONAL_ID)
                printf("%s %s %s\n", a->principal, a->prefixed ? "prefixed" : "literal", a->name);
        }
    } else if (!o->brokers) {
        bz_ctl_usage_error("acls", "no brokers: set BLAZZ_KAFKA_BROKERS or pass --brokers");
        rc = 1;
    } else if (bz_kafka_acls_create(o->brokers, &list, o->timeout_ms, &skipped, &err) != BZ_OK) {
        rc = bz_ctl_fail("acls apply", &err);
    } else {
        printf("acls: %zu binding(s) applied for prefix '%s' on %s", list.count - skipped,
               o->prefix, o->brokers);
        if (skipped)
            printf("; %zu transactional-id binding(s) left to kafka-acls "
                   "(see --transactional-ids)",
                   skipped);
        printf("\n");
    }
    bz_kafka_acl_list_free(&list);
    return rc;
}

static int run_principals(void)
{
    for (size_t i = 0; i < bz_kafka_acl_principal_count(); i++)
        printf("%s\n", bz_kafka_acl_principal(i));
    return 0;
}

int bz_ctl_cmd_acls(int argc, char **argv)
{
    acls_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_acls_options(argc, argv, &o);
    if (rc != 0)
        return rc == BZ_CTL_OPTIONS_HELP ? 0 : 1;
    if (strcmp(o.action, "apply") == 0)
        return run_apply(&o);
    if (strcmp(o.action, "principals") == 0)
        return run_principals();
    bz_ctl_usage_error("acls", "unknown action '%s' (apply or principals)", o.action);
    return 1;
}
