/*
 * replay.c - the `make test` side of every fuzz target (fuzz_target.h): a
 * cmocka program that runs each file of tests/fuzz/corpus/<target>/ through
 * the target's function, so every seed and every past crash is checked on
 * each test run, under ASan and UBSan, without libFuzzer.
 *
 * Files run in name order; each is copied into a buffer of exactly its size
 * (as libFuzzer does), so reading past the input is an ASan error here too.
 * The file about to run is printed to stderr first, so a crash names it.
 * The corpus folder is found relative to the working directory (the
 * repository root, as scripts/test.sh runs tests) or under
 * BLAZZ_FUZZ_CORPUS; a missing or empty folder fails the test.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fuzz_target.h"

typedef struct replay_job {
    char target[128];
    bz_fuzz_fn fn;
    const bz_fuzz_expect *expect;
} replay_job;

/* "tests/fuzz/ingest/fuzz_ingest_json.c" -> "fuzz_ingest_json" */
static void target_name(const char *source_file, char *out, size_t cap)
{
    const char *slash = strrchr(source_file, '/');
    const char *base = slash ? slash + 1 : source_file;
    size_t len = strcspn(base, ".");
    snprintf(out, cap, "%.*s", (int)len, base);
}

static const char *corpus_root(void)
{
    const char *env = getenv("BLAZZ_FUZZ_CORPUS");
    return env && *env ? env : "tests/fuzz/corpus";
}

/* The file's bytes in a buffer of exactly their size (1 byte when empty);
 * the caller frees. */
static uint8_t *read_input(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0)
        fail_msg("cannot size %s", path);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (*len != (size_t)n)
        fail_msg("short read of %s", path);
    return buf;
}

static int not_hidden(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static int outcome_of(struct dirent **files, const int *outcomes, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(files[i]->d_name, name) == 0)
            return outcomes[i];
    return -1;
}

/* The first pinned outcome the replay contradicts, written into why; 0 when
 * none does. */
static int contradicted(const replay_job *job, struct dirent **files, const int *outcomes, int n,
                        char *why, size_t cap)
{
    for (const bz_fuzz_expect *e = job->expect; e && e->file; e++) {
        int got = outcome_of(files, outcomes, n, e->file);
        if (got < 0) {
            snprintf(why, cap, "%s: the corpus has no file %s", job->target, e->file);
            return 1;
        }
        if (got != e->outcome) {
            snprintf(why, cap, "%s/%s should be %s", job->target, e->file,
                     e->outcome == BZ_FUZZ_ACCEPTED ? "accepted" : "rejected");
            return 1;
        }
    }
    return 0;
}

static void replay_corpus(void **state)
{
    const replay_job *job = *state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", corpus_root(), job->target);
    struct dirent **files = NULL;
    int n = scandir(dir, &files, not_hidden, alphasort);
    if (n <= 0) {
        free(files);
        fail_msg("corpus folder %s is missing or empty (run from the repository root)", dir);
        return;
    }
    int *outcomes = calloc((size_t)n, sizeof *outcomes);
    assert_non_null(outcomes);
    int accepted = 0;
    for (int i = 0; i < n; i++) {
        char path[1024];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]->d_name);
        fprintf(stderr, "replay %s\n", path);
        uint8_t *data = read_input(path, &len);
        outcomes[i] = job->fn(data, len);
        accepted += outcomes[i] == BZ_FUZZ_ACCEPTED;
        free(data);
    }
    print_message("%s: %d corpus files, %d accepted\n", job->target, n, accepted);
    char why[512];
    int failed = contradicted(job, files, outcomes, n, why, sizeof why);
    for (int i = 0; i < n; i++)
        free(files[i]);
    free(files);
    free(outcomes);
    if (failed)
        fail_msg("%s", why);
}

int bz_fuzz_replay_main(const char *source_file, bz_fuzz_fn fn, const bz_fuzz_expect *expect)
{
    static replay_job job;
    target_name(source_file, job.target, sizeof job.target);
    job.fn = fn;
    job.expect = expect;
    const struct CMUnitTest tests[] = {
        {.name = job.target, .test_func = replay_corpus, .initial_state = &job},
    };
    return cmocka_run_group_tests_name("corpus replay", tests, NULL, NULL);
}
