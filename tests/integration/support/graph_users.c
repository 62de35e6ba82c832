/*
 * graph_users.c - graph_test_server's directory of WhatsApp users
 * (graph_users.h), written from Meta's business-scoped user ids (BSUID)
 * page: since April 2026 every webhook names a user by their BSUID; a
 * user who adopted a username has their phone withheld from webhooks
 * unless the phone is in the business's contact book, where Meta records
 * the pair once a message is exchanged by phone (the 30-day cache is not
 * played: a test lists a user without a username for a phone always
 * shown).
 *
 * The directory is read once at start; the contact book grows as the
 * server accepts messages, under a lock (the server answers on many
 * threads).
 */
#include "graph_users.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GU_MAX 64
#define GU_ID 160

typedef struct gu_user {
    char phone[32], bsuid[GU_ID], username[64];
    int in_contact_book;
} gu_user;

static struct {
    pthread_mutex_t lock;
    gu_user users[GU_MAX];
    int n;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int load_users(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[512];
    while (g.n < GU_MAX && fgets(line, sizeof line, f)) {
        gu_user *u = &g.users[g.n];
        *u = (gu_user){0};
        if (sscanf(line, "%31s %159s %63s", u->phone, u->bsuid, u->username) >= 2)
            g.n++;
    }
    fclose(f);
    return 1;
}

int gu_option(const char *name, const char *value)
{
    return strcmp(name, "--users") == 0 && load_users(value);
}

static gu_user *find_locked(const char *to)
{
    for (int i = 0; i < g.n; i++)
        if (strcmp(g.users[i].phone, to) == 0 || strcmp(g.users[i].bsuid, to) == 0)
            return &g.users[i];
    return NULL;
}

void gu_recipient(const char *to, char *phone, size_t phone_cap, char *bsuid, size_t bsuid_cap)
{
    int by_bsuid = strchr(to, '.') != NULL; /* a phone's digits have no dot */
    pthread_mutex_lock(&g.lock);
    gu_user *u = find_locked(to);
    if (u && !by_bsuid)
        u->in_contact_book = 1;
    int phone_shown = u ? !*u->username || u->in_contact_book : !by_bsuid;
    snprintf(phone, phone_cap, "%s", !phone_shown ? "" : u ? u->phone : to);
    snprintf(bsuid, bsuid_cap, "%s", u ? u->bsuid : by_bsuid ? to : "");
    pthread_mutex_unlock(&g.lock);
}
