/*
 * fuzz_ingest_meta.c - libFuzzer target: ingest's meta decode path, from raw
 * bytes through normalization, with the properties of fuzz_ingest.h.
 * Built and run by `make fuzz` (FUZZ_SECONDS per target); seeds in
 * tests/fuzz/corpus/fuzz_ingest_meta/, replayed by tests/unit/test_ingest_corpus.c.
 */
#include "fuzz_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ingest_meta(data, size);
    return 0;
}
