/* Checks shared by the fuzz targets that need more than a few lines. */
#include "fuzz_util.h"

#include "http/parser.h"

/* Decode data as a chunked body, split into reads by mode. */
static void fuzz_decode_chunked(const char *data, size_t len, int mode, uint64_t seed,
                                fuzz_chunked_result_t *res)
{
    http_chunked_t dec = {0};
    fuzz_splitter_t s;
    size_t pos = 0;

    memset(res, 0, sizeof(*res));
    fuzz_splitter_init(&s, mode, seed);
    while (pos < len && !dec.done) {
        size_t n = fuzz_next_size(&s, len - pos);
        char *piece = fuzz_piece((const uint8_t *)data + pos, n);
        long used = http_chunked_decode(&dec, piece, n, &res->payload);

        free(piece);
        if (used < 0) {
            res->used = -1;
            return;
        }
        FUZZ_CHECK((size_t)used <= n, "decoder consumed %ld of %zu bytes", used, n);
        FUZZ_CHECK((size_t)used == n || dec.done, "decoder stopped at %ld of %zu before the end",
                   used, n);
        pos += (size_t)used;
    }
    res->used = (long)pos;
    res->done = dec.done;
}

void fuzz_chunked_body(const char *data, size_t len, uint64_t seed, fuzz_chunked_result_t *whole)
{
    fuzz_decode_chunked(data, len, 0, seed, whole);
    for (int mode = 1; mode <= 2; mode++) {
        fuzz_chunked_result_t split;

        fuzz_decode_chunked(data, len, mode, seed, &split);
        FUZZ_CHECK(split.used == whole->used, "mode %d consumed %ld, one read %ld", mode,
                   split.used, whole->used);
        if (whole->used >= 0) {
            FUZZ_CHECK(split.done == whole->done, "mode %d done %d, one read %d", mode, split.done,
                       whole->done);
            FUZZ_CHECK(fuzz_bytes_equal(split.payload.data, split.payload.len, whole->payload.data,
                                        whole->payload.len),
                       "mode %d decoded %zu bytes, one read %zu", mode, split.payload.len,
                       whole->payload.len);
        }
        buf_free(&split.payload);
    }
}
