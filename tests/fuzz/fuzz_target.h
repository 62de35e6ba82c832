/*
 * fuzz_target.h - what every fuzz target includes: one function that takes
 * one input and checks its properties, and one line that turns it into a
 * program.
 *
 * A target lives in tests/fuzz/<component>/fuzz_<what>.c, where <component>
 * is a folder of services/ or tools/ (the target links that component's
 * objects except main.o, and sees its headers) or `libs` (libblazz only).
 * It defines
 *     static int fuzz_<what>(const uint8_t *data, size_t size)
 * returning BZ_FUZZ_ACCEPTED or BZ_FUZZ_REJECTED, checks with BZ_FUZZ_CHECK
 * (a violation prints the condition and aborts, which libFuzzer and the
 * test runner both report), and ends with BZ_FUZZ_TARGET(fuzz_<what>).
 * The Makefile builds each target twice from the same source:
 *   make fuzz   clang, -fsanitize=fuzzer,address,undefined, -DBZ_FUZZ_LIBFUZZER:
 *               the macro expands to LLVMFuzzerTestOneInput, run by libFuzzer
 *               seeded from tests/fuzz/corpus/fuzz_<what>/.
 *   make test   the ASan+UBSan build: the macro expands to a cmocka main
 *               (replay.c) that runs every file of that corpus through the
 *               function, as OUT/tests/unit/test_corpus_<what>.
 * BZ_FUZZ_TARGET_EXPECTING(fn, table) also pins the outcome of named corpus
 * files ({"file", BZ_FUZZ_ACCEPTED}, ..., {NULL, 0}) in the replay, so the
 * corpus keeps covering both sides of a parser.
 */
#ifndef BZ_FUZZ_TARGET_H
#define BZ_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BZ_FUZZ_REJECTED = 0, BZ_FUZZ_ACCEPTED = 1 };

typedef int (*bz_fuzz_fn)(const uint8_t *data, size_t size);

typedef struct bz_fuzz_expect {
    const char *file; /* a file name in the target's corpus folder */
    int outcome;      /* BZ_FUZZ_ACCEPTED or BZ_FUZZ_REJECTED */
} bz_fuzz_expect;

/* The input as a C string in buf (cap bytes): cut to cap - 1 bytes, then
 * NUL-terminated; a NUL inside ends it early, as for any C caller. */
static inline void bz_fuzz_text(const void *data, size_t size, char *buf, size_t cap)
{
    if (size >= cap)
        size = cap - 1;
    memcpy(buf, data, size);
    buf[size] = '\0';
}

static inline void bz_fuzz_violation(const char *cond, const char *file, int line)
{
    fprintf(stderr, "fuzz property violated at %s:%d: %s\n", file, line, cond);
    abort();
}

#define BZ_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                          \
        if (!(cond))                                                                              \
            bz_fuzz_violation(#cond, __FILE__, __LINE__);                                         \
    } while (0)

#ifdef BZ_FUZZ_LIBFUZZER
#define BZ_FUZZ_TARGET_EXPECTING(fn, expect)                                                      \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                                 \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                                  \
    {                                                                                             \
        (void)(expect);                                                                           \
        (void)fn(data, size);                                                                     \
        return 0;                                                                                 \
    }
#else
/* Replay the corpus of the target defined in source_file (its __FILE__);
 * the program's exit status. */
int bz_fuzz_replay_main(const char *source_file, bz_fuzz_fn fn, const bz_fuzz_expect *expect);

#define BZ_FUZZ_TARGET_EXPECTING(fn, expect)                                                      \
    int main(void)                                                                                \
    {                                                                                             \
        return bz_fuzz_replay_main(__FILE__, fn, expect);                                         \
    }
#endif

#define BZ_FUZZ_TARGET(fn) BZ_FUZZ_TARGET_EXPECTING(fn, (const bz_fuzz_expect *)NULL)

#endif
