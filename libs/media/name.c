/*
 * name.c - the check of a stored media object's name (see name.h).
 */
#include "name.h"

#include "core/utf8.h"

bz_status bz_media_name_check(const char *name, size_t len, bz_error *err)
{
    if (len == 0)
        return bz_reject(err, "invalid", "field filename: empty");
    if (len > BZ_MEDIA_NAME_MAX)
        return bz_reject(err, "invalid", "field filename: %zu bytes, at most %d allowed",
                         len, BZ_MEDIA_NAME_MAX);
    if (!bz_utf8_valid(name, len))
        return bz_reject(err, "invalid",
                         "field filename: not UTF-8 text (or it holds a NUL byte)");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return bz_reject(err, "invalid",
                             "field filename: control characters are not taken");
    return BZ_OK;
}
