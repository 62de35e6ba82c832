/*
 * main.c - blazzctl, the ops command line of the Blazz backbone.
 *
 * This file only dispatches: `blazzctl <command> [args]` runs the command
 * module named in the table below. To add a command, write cmd_<name>.c with
 * `int bz_ctl_cmd_<name>(int argc, char **argv)` and add one line to
 * BZ_CTL_COMMANDS; the prototype and the table entry are generated from it.
 */
#include <stdio.h>
#include <string.h>

#include "blazzctl.h"

#ifndef BZ_VERSION
#define BZ_VERSION "dev"
#endif

/* name, one-line summary */
#define BZ_CTL_COMMANDS(X)                                             \
    X(migrate, "apply the numbered SQL migrations to PostgreSQL")      \
    X(topics, "list the topics, create the missing ones, show brokers") \
    X(acls, "create the Kafka ACLs of the principal matrix")           \
    X(webhooks, "webhook endpoints: add, list, disable, enable, replay") \
    X(secrets, "secrets at rest: status, rotate (re-seal with the newest key)") \
    X(gateways, "gateways: add, rotate-key, bind, list, disable, enable")   \
    X(cleanup, "run a manual session cleanup, or preview one (--dry-run)") \
    X(dlq, "dead-letter topics: tail, stats, replay")                   \
    X(lag, "consumer lag per group and partition")                       \
    X(campaign, "campaigns: start, pause, resume, cancel, status")      \
    X(send, "send a WhatsApp message as an agent (crm.commands)")       \
    X(read, "mark a conversation read as the CRM (crm.commands)")       \
    X(sessions, "whatsapp-web.js sessions: create, restart, logout, primary, instances") \
    X(workspaces, "workspaces (tenants): create, list")                  \
    X(apikeys, "the CRM's API keys: create, list, revoke")               \
    X(meta, "Meta Cloud API accounts: access token, business (WABA), status, templates sync") \
    X(health, "probe a service's /healthz (the container health check)")

#define BZ_CTL_DECLARE(name, summary) int bz_ctl_cmd_##name(int argc, char **argv);
BZ_CTL_COMMANDS(BZ_CTL_DECLARE)

typedef struct bz_ctl_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} bz_ctl_command;

#define BZ_CTL_ENTRY(name, summary) {#name, summary, bz_ctl_cmd_##name},
static const bz_ctl_command commands[] = {BZ_CTL_COMMANDS(BZ_CTL_ENTRY)};

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: blazzctl <command> [options]\n"
            "\n"
            "Operate a Blazz backbone: PostgreSQL schema, Kafka topics.\n"
            "Connections default from BLAZZ_PG_DSN and BLAZZ_KAFKA_BROKERS.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'blazzctl <command> --help' describes a command.\n");
}

static const bz_ctl_command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 1;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        printf("blazzctl %s\n", BZ_VERSION);
        return 0;
    }
    const bz_ctl_command *cmd = find_command(name);
    if (!cmd) {
        fprintf(stderr, "blazzctl: unknown command '%s'\n\n", name);
        print_usage(stderr);
        return 1;
    }
    return cmd->run(argc - 1, argv + 1);
}
