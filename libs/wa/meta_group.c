/*
 * meta_group.c - the shape of a group's key (see meta_group.h): a Meta
 * group_id is checked byte by byte, a JID by its server.
 */
#include "wa/meta_group.h"

#include <string.h>

static bool is_id_byte(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '=';
}

bool bz_meta_group_id_valid(const char *s)
{
    size_t n = 0;
    while (s && n <= BZ_META_GROUP_ID_MAX && is_id_byte(s[n]))
        n++;
    return n >= 1 && n <= BZ_META_GROUP_ID_MAX && s[n] == '\0';
}

bool bz_group_key_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return (n > 5 && strcmp(s + n - 5, "@g.us") == 0) || bz_meta_group_id_valid(s);
}
