/* libFuzzer target for the compact request record lines that gateways post
 * (src/util/rec_rows.c): reading every line, writing each row read back out
 * and reading that again.
 *
 * Input: one byte whose low 4 bits are the number of instances and high 4
 * bits the number of tokens that indexes are checked against ('2' is 2
 * instances and 3 tokens), then the text of the rows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "util/rec_rows.h"

static int fuzz_rows_equal(const rec_row_t *a, const rec_row_t *b)
{
    return a->instance == b->instance && a->token == b->token && a->time == b->time &&
           a->status == b->status && a->latency_ms == b->latency_ms &&
           a->ttfb_ms == b->ttfb_ms && a->prompt_tokens == b->prompt_tokens &&
           a->completion_tokens == b->completion_tokens && a->flags == b->flags;
}

/* Abort unless every field of row lies in its documented range. */
static void fuzz_check_ranges(const rec_row_t *row, size_t num_instances, size_t num_tokens)
{
    FUZZ_CHECK(row->instance >= 0 && (uint64_t)row->instance < num_instances,
               "instance %lld of %zu", (long long)row->instance, num_instances);
    FUZZ_CHECK(row->token >= -1 && (row->token == -1 || (uint64_t)row->token < num_tokens),
               "token %lld of %zu", (long long)row->token, num_tokens);
    FUZZ_CHECK(row->time >= 0 && row->time <= REC_TIME_MAX, "time %lld", (long long)row->time);
    FUZZ_CHECK(row->status >= 100 && row->status <= 599, "status %lld", (long long)row->status);
    FUZZ_CHECK(row->latency_ms >= 0 && row->latency_ms <= REC_DURATION_MAX_MS,
               "latency_ms %lld", (long long)row->latency_ms);
    FUZZ_CHECK(row->ttfb_ms >= -1 && row->ttfb_ms <= REC_DURATION_MAX_MS, "ttfb_ms %lld",
               (long long)row->ttfb_ms);
    FUZZ_CHECK(row->prompt_tokens >= -1 && row->prompt_tokens <= REC_TOKENS_MAX,
               "prompt_tokens %lld", (long long)row->prompt_tokens);
    FUZZ_CHECK(row->completion_tokens >= -1 && row->completion_tokens <= REC_TOKENS_MAX,
               "completion_tokens %lld", (long long)row->completion_tokens);
    FUZZ_CHECK((row->flags & ~(int64_t)(REC_ROW_CANCELLED | REC_ROW_USAGE_ESTIMATED)) == 0,
               "flags %lld", (long long)row->flags);
}

/* Write row as a line, read it back and abort unless it is the same row,
 * and unless writing that row gives the same line again. */
static void fuzz_round_trip(const rec_row_t *row, size_t num_instances, size_t num_tokens)
{
    buf_t line = BUF_INIT, again = BUF_INIT;
    char err[256] = "";
    rec_row_t back;
    size_t pos = 0;

    FUZZ_CHECK(rec_rows_append(&line, row) == 0, "append failed");
    FUZZ_CHECK(line.len > 0 && line.data[line.len - 1] == '\n', "line does not end in a newline");
    FUZZ_CHECK(memchr(line.data, '\n', line.len) == line.data + line.len - 1,
               "one row became more than one line");
    FUZZ_CHECK(rec_rows_count(line.data, line.len) == 1, "one line counted as %zu",
               rec_rows_count(line.data, line.len));

    char *copy = fuzz_piece((const uint8_t *)line.data, line.len);
    int rc = rec_rows_next(copy, line.len, &pos, num_instances, num_tokens, &back, err,
                           sizeof(err));
    FUZZ_CHECK(rc == 1, "re-reading \"%.*s\" returned %d: %s", (int)line.len - 1, line.data, rc,
               err);
    FUZZ_CHECK(pos == line.len, "re-reading stopped at %zu of %zu", pos, line.len);
    FUZZ_CHECK(fuzz_rows_equal(&back, row), "\"%.*s\" reads back as another row",
               (int)line.len - 1, line.data);
    FUZZ_CHECK(rec_rows_next(copy, line.len, &pos, num_instances, num_tokens, &back, err,
                             sizeof(err)) == 0,
               "a row after the only line");
    free(copy);

    FUZZ_CHECK(rec_rows_append(&again, &back) == 0, "append failed");
    FUZZ_CHECK(fuzz_bytes_equal(line.data, line.len, again.data, again.len),
               "the same row written twice differs: \"%.*s\" and \"%.*s\"", (int)line.len - 1,
               line.data, (int)again.len - 1, again.data);
    buf_free(&line);
    buf_free(&again);
}

/* Return 1 when err names one of the fields of a line, else 0. */
static int fuzz_names_field(const char *err)
{
    static const char *const names[REC_ROWS_FIELDS] = {
        "instance", "token", "time", "status", "latency_ms",
        "ttfb_ms", "prompt_tokens", "completion_tokens", "flags",
    };

    for (int i = 0; i < REC_ROWS_FIELDS; i++) {
        if (strstr(err, names[i]) != NULL)
            return 1;
    }
    return 0;
}

/* Return the line number (from 1) of the line that starts at pos. */
static size_t fuzz_line_number(const char *text, size_t pos)
{
    size_t line = 1;

    for (size_t i = 0; i < pos; i++)
        line += text[i] == '\n';
    return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;

    size_t num_instances = data[0] & 0x0f;
    size_t num_tokens = data[0] >> 4;
    size_t len = size - 1;
    /* An exact-size heap copy: AddressSanitizer stops a read past the end. */
    char *text = fuzz_piece(data + 1, len);
    size_t lines = rec_rows_count(text, len);
    size_t pos = 0, rows = 0;
    char err[256];
    rec_row_t row;
    int rc;

    for (;;) {
        size_t start = pos;

        memset(err, 0, sizeof(err));
        rc = rec_rows_next(text, len, &pos, num_instances, num_tokens, &row, err, sizeof(err));
        if (rc != 1) {
            FUZZ_CHECK(pos == start, "a %s moved the position from %zu to %zu",
                       rc == 0 ? "end" : "rejected line", start, pos);
            break;
        }

        FUZZ_CHECK(pos > start && pos <= len, "position %zu after %zu, text of %zu", pos, start,
                   len);
        FUZZ_CHECK(text[pos - 1] == '\n', "a row did not end at a newline");
        FUZZ_CHECK(memchr(text + start, '\n', pos - start) == text + pos - 1,
                   "a row spanned more than one line");
        fuzz_check_ranges(&row, num_instances, num_tokens);
        fuzz_round_trip(&row, num_instances, num_tokens);
        rows++;
    }

    if (rc == 0) {
        FUZZ_CHECK(pos == len, "end of rows at %zu of %zu", pos, len);
        FUZZ_CHECK(rows == lines, "read %zu rows of %zu lines", rows, lines);
    } else {
        char expected[48];

        FUZZ_CHECK(rc == -1, "rec_rows_next returned %d", rc);
        FUZZ_CHECK(rows < lines, "rejected a line after reading all %zu of %zu", rows, lines);
        FUZZ_CHECK(err[0] != '\0', "an empty error");
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "error not terminated");
        snprintf(expected, sizeof(expected), "record line %zu:", fuzz_line_number(text, pos));
        FUZZ_CHECK(strstr(err, expected) != NULL, "expected \"%s\" in: %s", expected, err);
        FUZZ_CHECK(fuzz_names_field(err), "the error names no field: %s", err);
        FUZZ_CHECK(rows + 1 == fuzz_line_number(text, pos), "line %zu rejected after %zu rows",
                   fuzz_line_number(text, pos), rows);
    }
    free(text);
    return 0;
}
