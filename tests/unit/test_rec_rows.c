/* Unit tests for the compact request record lines (util/rec_rows.h):
 * writing and reading back, line counts, and the rejection of every
 * malformed or out-of-range line with its line number and field name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/buf.h"
#include "util/rec_rows.h"

/* A valid line for 2 instances and 1 token, used before a bad line. */
#define GOOD_LINE "1 0 1700000000000 200 120 15 3 7 0\n"
/* A line with a NUL byte after the time field. */
#define NUL_LINE "1 0 1700000000000\0 200 120 15 3 7 0\n"

static void assert_rows_equal(const rec_row_t *got, const rec_row_t *want)
{
    assert_int_equal(got->instance, want->instance);
    assert_int_equal(got->token, want->token);
    assert_int_equal(got->time, want->time);
    assert_int_equal(got->status, want->status);
    assert_int_equal(got->latency_ms, want->latency_ms);
    assert_int_equal(got->ttfb_ms, want->ttfb_ms);
    assert_int_equal(got->prompt_tokens, want->prompt_tokens);
    assert_int_equal(got->completion_tokens, want->completion_tokens);
    assert_int_equal(got->flags, want->flags);
}

static void rows_round_trip(void **state)
{
    const rec_row_t rows[] = {
        /* The smallest value of every field. */
        {0, -1, 0, 100, 0, -1, -1, -1, 0},
        /* The largest value of every field, all flags. */
        {2, 1, REC_TIME_MAX, 599, REC_DURATION_MAX_MS, REC_DURATION_MAX_MS, REC_TOKENS_MAX,
         REC_TOKENS_MAX, REC_ROW_CANCELLED | REC_ROW_USAGE_ESTIMATED},
        {1, 0, 1700000000000, 200, 120, 15, 3, 7, REC_ROW_CANCELLED},
        {1, -1, 1700000000001, 503, 9, 0, 0, 0, REC_ROW_USAGE_ESTIMATED},
    };
    const size_t num_rows = sizeof(rows) / sizeof(rows[0]);
    buf_t text = BUF_INIT;
    char err[160] = "";
    rec_row_t row;
    size_t pos = 0;
    (void)state;

    for (size_t i = 0; i < num_rows; i++)
        assert_int_equal(rec_rows_append(&text, &rows[i]), 0);

    /* The exact text of the first two lines: plain decimal, single spaces. */
    const char *expected_start =
        "0 -1 0 100 0 -1 -1 -1 0\n"
        "2 1 253402300799999 599 2592000000 2592000000 1000000000 1000000000 3\n";
    assert_memory_equal(text.data, expected_start, strlen(expected_start));
    assert_int_equal(rec_rows_count(text.data, text.len), num_rows);

    /* 3 instances and 2 tokens: every index above is the largest allowed. */
    for (size_t i = 0; i < num_rows; i++) {
        int rc = rec_rows_next(text.data, text.len, &pos, 3, 2, &row, err, sizeof(err));
        if (rc != 1)
            fail_msg("row %zu: expected 1, got %d: %s", i, rc, err);
        assert_rows_equal(&row, &rows[i]);
    }
    assert_int_equal(pos, text.len);
    assert_int_equal(rec_rows_next(text.data, text.len, &pos, 3, 2, &row, err, sizeof(err)), 0);
    assert_int_equal(pos, text.len);
    buf_free(&text);
}

static void rows_count_lines(void **state)
{
    (void)state;

    assert_int_equal(rec_rows_count("", 0), 0);
    /* The server counts a post without "rows" this way. */
    assert_int_equal(rec_rows_count(NULL, 0), 0);
    assert_int_equal(rec_rows_count("\n", 1), 1);
    assert_int_equal(rec_rows_count("a", 1), 1);
    assert_int_equal(rec_rows_count("a\nb\n", 4), 2);
    assert_int_equal(rec_rows_count("a\nb", 3), 2);
    assert_int_equal(rec_rows_count("\n\n\n", 3), 3);
    /* Only len bytes count, not the text up to a NUL. */
    assert_int_equal(rec_rows_count("a\nb\nc\n", 2), 1);
    assert_int_equal(rec_rows_count("a\0b\nc", 5), 2);
}

static void rows_next_empty_text(void **state)
{
    char err[160] = "";
    rec_row_t row;
    size_t pos = 0;
    (void)state;

    assert_int_equal(rec_rows_next("", 0, &pos, 1, 1, &row, err, sizeof(err)), 0);
    assert_int_equal(pos, 0);

    /* A position at the end of a non-empty text is the end too. */
    pos = strlen(GOOD_LINE);
    assert_int_equal(rec_rows_next(GOOD_LINE, strlen(GOOD_LINE), &pos, 2, 1, &row, err,
                                   sizeof(err)),
                     0);
}

/* One invalid line, the field that its error names, and the limits the
 * indexes are checked against. */
typedef struct {
    const char *name;
    const char *line;
    size_t len;            /* 0: strlen(line) */
    const char *field;
    size_t num_instances;
    size_t num_tokens;
} bad_line_t;

static const bad_line_t bad_lines[] = {
    {"two spaces", "1  0 1700000000000 200 120 15 3 7 0\n", 0, "token", 2, 1},
    {"leading space", " 1 0 1700000000000 200 120 15 3 7 0\n", 0, "instance", 2, 1},
    {"space before newline", "1 0 1700000000000 200 120 15 3 7 0 \n", 0, "flags", 2, 1},
    {"tab", "1\t0 1700000000000 200 120 15 3 7 0\n", 0, "instance", 2, 1},
    {"plus sign", "1 0 +1700000000000 200 120 15 3 7 0\n", 0, "time", 2, 1},
    {"two minus signs", "1 0 1700000000000 200 120 --1 3 7 0\n", 0, "ttfb_ms", 2, 1},
    {"lone minus sign", "1 0 1700000000000 200 120 - 3 7 0\n", 0, "ttfb_ms", 2, 1},
    {"20 digits", "1 0 12345678901234567890 200 120 15 3 7 0\n", 0, "time", 2, 1},
    {"20 digits, small value", "1 0 00000000000000000001 200 120 15 3 7 0\n", 0, "time", 2, 1},
    {"INT64_MAX + 1", "1 0 9223372036854775808 200 120 15 3 7 0\n", 0, "time", 2, 1},
    {"19 nines", "1 0 1700000000000 200 9999999999999999999 15 3 7 0\n", 0, "latency_ms", 2,
     1},
    {"INT64_MIN", "1 0 1700000000000 200 120 15 -9223372036854775808 7 0\n", 0,
     "prompt_tokens", 2, 1},
    {"no newline at the end", "1 0 1700000000000 200 120 15 3 7 0", 0, "flags", 2, 1},
    {"8 fields", "1 0 1700000000000 200 120 15 3 7\n", 0, "completion_tokens", 2, 1},
    {"10 fields", "1 0 1700000000000 200 120 15 3 7 0 0\n", 0, "flags", 2, 1},
    {"instance index too large", "2 0 1700000000000 200 120 15 3 7 0\n", 0, "instance", 2, 1},
    {"instance -1", "-1 0 1700000000000 200 120 15 3 7 0\n", 0, "instance", 2, 1},
    {"no instances", "0 -1 1700000000000 200 120 15 3 7 0\n", 0, "instance", 0, 0},
    {"token index too large", "1 1 1700000000000 200 120 15 3 7 0\n", 0, "token", 2, 1},
    {"token -2", "1 -2 1700000000000 200 120 15 3 7 0\n", 0, "token", 2, 1},
    {"token without tokens", "1 0 1700000000000 200 120 15 3 7 0\n", 0, "token", 2, 0},
    {"time -1", "1 0 -1 200 120 15 3 7 0\n", 0, "time", 2, 1},
    {"status 99", "1 0 1700000000000 99 120 15 3 7 0\n", 0, "status", 2, 1},
    {"status 600", "1 0 1700000000000 600 120 15 3 7 0\n", 0, "status", 2, 1},
    {"status -1", "1 0 1700000000000 -1 120 15 3 7 0\n", 0, "status", 2, 1},
    {"latency -1", "1 0 1700000000000 200 -1 15 3 7 0\n", 0, "latency_ms", 2, 1},
    {"ttfb -2", "1 0 1700000000000 200 120 -2 3 7 0\n", 0, "ttfb_ms", 2, 1},
    {"prompt -2", "1 0 1700000000000 200 120 15 -2 7 0\n", 0, "prompt_tokens", 2, 1},
    {"completion -2", "1 0 1700000000000 200 120 15 3 -2 0\n", 0, "completion_tokens", 2, 1},
    /* One above each maximum of util/rec_rows.h, and INT64_MAX, which the
     * reader accepted before those maximums. */
    {"time max + 1", "1 0 253402300800000 200 120 15 3 7 0\n", 0, "time", 2, 1},
    {"time INT64_MAX", "1 0 9223372036854775807 200 120 15 3 7 0\n", 0, "time", 2, 1},
    {"latency max + 1", "1 0 1700000000000 200 2592000001 15 3 7 0\n", 0, "latency_ms", 2, 1},
    {"latency INT64_MAX", "1 0 1700000000000 200 9223372036854775807 15 3 7 0\n", 0,
     "latency_ms", 2, 1},
    {"ttfb max + 1", "1 0 1700000000000 200 120 2592000001 3 7 0\n", 0, "ttfb_ms", 2, 1},
    {"prompt max + 1", "1 0 1700000000000 200 120 15 1000000001 7 0\n", 0, "prompt_tokens",
     2, 1},
    {"prompt INT64_MAX", "1 0 1700000000000 200 120 15 9223372036854775807 7 0\n", 0,
     "prompt_tokens", 2, 1},
    {"completion max + 1", "1 0 1700000000000 200 120 15 3 1000000001 0\n", 0,
     "completion_tokens", 2, 1},
    {"flags 4", "1 0 1700000000000 200 120 15 3 7 4\n", 0, "flags", 2, 1},
    {"flags -1", "1 0 1700000000000 200 120 15 3 7 -1\n", 0, "flags", 2, 1},
    {"empty line", "\n", 0, "instance", 2, 1},
    {"CRLF", "1 0 1700000000000 200 120 15 3 7 0\r\n", 0, "flags", 2, 1},
    {"NUL byte", NUL_LINE, sizeof(NUL_LINE) - 1, "time", 2, 1},
    {"letters", "1 0 17e11 200 120 15 3 7 0\n", 0, "time", 2, 1},
};

/* Read text, which has good_lines valid lines before the bad one, and
 * check that the bad line is rejected with its number and field. */
static void check_bad_line(const bad_line_t *bad, const char *text, size_t len,
                           size_t good_lines)
{
    char err[160] = "", expected_line[32];
    rec_row_t row;
    size_t pos = 0;
    int rc;

    for (size_t i = 0; i < good_lines; i++) {
        rc = rec_rows_next(text, len, &pos, bad->num_instances, bad->num_tokens, &row, err,
                           sizeof(err));
        if (rc != 1)
            fail_msg("%s: good line %zu: expected 1, got %d: %s", bad->name, i + 1, rc, err);
    }

    size_t bad_start = pos;
    err[0] = '\0';
    rc = rec_rows_next(text, len, &pos, bad->num_instances, bad->num_tokens, &row, err,
                       sizeof(err));
    if (rc != -1)
        fail_msg("%s on line %zu: expected -1, got %d", bad->name, good_lines + 1, rc);
    snprintf(expected_line, sizeof(expected_line), "record line %zu:", good_lines + 1);
    if (strstr(err, expected_line) == NULL)
        fail_msg("%s: the error does not name \"%s\": %s", bad->name, expected_line, err);
    if (strstr(err, bad->field) == NULL)
        fail_msg("%s: the error does not name the field %s: %s", bad->name, bad->field, err);
    /* A rejected line is not consumed. */
    assert_int_equal(pos, bad_start);
}

static void rows_reject_bad_lines(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
        const bad_line_t *bad = &bad_lines[i];
        size_t len = bad->len ? bad->len : strlen(bad->line);
        char text[256];

        check_bad_line(bad, bad->line, len, 0);

        /* After two valid lines the same line is line 3. The valid lines
         * need 2 instances and 1 token, so cases with fewer skip this. */
        if (bad->num_instances < 2 || bad->num_tokens < 1)
            continue;
        size_t good_len = strlen(GOOD_LINE);
        assert_true(2 * good_len + len <= sizeof(text));
        memcpy(text, GOOD_LINE, good_len);
        memcpy(text + good_len, GOOD_LINE, good_len);
        memcpy(text + 2 * good_len, bad->line, len);
        check_bad_line(bad, text, 2 * good_len + len, 2);
    }
}

/* A field of rec_row_t and the largest value the reader accepts in it. */
typedef struct {
    const char *name;
    size_t offset;
    int64_t max;
} field_max_t;

/* Each field at its maximum reads back, and one more is rejected with an
 * error that names the field. The lines come from rec_rows_append, so the
 * test does not depend on the digits of the maximums. */
static void rows_reject_above_maximum(void **state)
{
    static const field_max_t fields[] = {
        {"time", offsetof(rec_row_t, time), REC_TIME_MAX},
        {"status", offsetof(rec_row_t, status), 599},
        {"latency_ms", offsetof(rec_row_t, latency_ms), REC_DURATION_MAX_MS},
        {"ttfb_ms", offsetof(rec_row_t, ttfb_ms), REC_DURATION_MAX_MS},
        {"prompt_tokens", offsetof(rec_row_t, prompt_tokens), REC_TOKENS_MAX},
        {"completion_tokens", offsetof(rec_row_t, completion_tokens), REC_TOKENS_MAX},
        {"flags", offsetof(rec_row_t, flags), REC_ROW_CANCELLED | REC_ROW_USAGE_ESTIMATED},
    };
    const rec_row_t base = {1, 0, 1700000000000, 200, 120, 15, 3, 7, 0};
    (void)state;

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        for (int64_t extra = 0; extra <= 1; extra++) {
            rec_row_t row = base, back;
            buf_t line = BUF_INIT;
            char err[160] = "";
            size_t pos = 0;

            *(int64_t *)((char *)&row + fields[i].offset) = fields[i].max + extra;
            assert_int_equal(rec_rows_append(&line, &row), 0);
            int rc = rec_rows_next(line.data, line.len, &pos, 2, 1, &back, err, sizeof(err));
            if (extra == 0 && rc != 1)
                fail_msg("%s at its maximum: expected 1, got %d: %s", fields[i].name, rc, err);
            if (extra == 0)
                assert_rows_equal(&back, &row);
            if (extra == 1 && rc != -1)
                fail_msg("%s one above its maximum: expected -1, got %d", fields[i].name, rc);
            if (extra == 1 && strstr(err, fields[i].name) == NULL)
                fail_msg("%s one above its maximum: the error does not name it: %s",
                         fields[i].name, err);
            buf_free(&line);
        }
    }
}

/* Check that err contains every part in parts (NULL-terminated). */
static void assert_error_names(const char *err, const char *const *parts)
{
    for (size_t i = 0; parts[i] != NULL; i++) {
        if (strstr(err, parts[i]) == NULL)
            fail_msg("the error does not contain \"%s\": %s", parts[i], err);
    }
}

/* An out-of-range error states the value and the allowed range, and the
 * error for a malformed field names the expected form, so a gateway author
 * can fix it. */
static void rows_error_messages(void **state)
{
    const char *status_600 = "1 0 1700000000000 600 120 15 3 7 0\n";
    const char *tab = "1 0 1700000000000\t200 120 15 3 7 0\n";
    char err[160] = "";
    rec_row_t row;
    size_t pos = 0;
    (void)state;

    assert_int_equal(rec_rows_next(status_600, strlen(status_600), &pos, 2, 1, &row, err,
                                   sizeof(err)),
                     -1);
    assert_error_names(err, (const char *const[]){"record line 1:", "status 600", "100", "599",
                                                  NULL});

    pos = 0;
    assert_int_equal(rec_rows_next(tab, strlen(tab), &pos, 2, 1, &row, err, sizeof(err)), -1);
    assert_error_names(err, (const char *const[]){"record line 1:", "field 3", "time",
                                                  "one space", NULL});

    pos = 0;
    assert_int_equal(rec_rows_next(GOOD_LINE, strlen(GOOD_LINE) - 1, &pos, 2, 1, &row, err,
                                   sizeof(err)),
                     -1);
    assert_error_names(err, (const char *const[]){"record line 1:", "field 9", "flags",
                                                  "newline", NULL});

    /* A value above a maximum is reported with the range, maximum included. */
    const char *late = "1 0 253402300800000 200 120 15 3 7 0\n";
    pos = 0;
    assert_int_equal(rec_rows_next(late, strlen(late), &pos, 2, 1, &row, err, sizeof(err)), -1);
    assert_error_names(err, (const char *const[]){"record line 1:", "time 253402300800000",
                                                  "0 to 253402300799999", NULL});

    /* The index range comes from the post's arrays. */
    pos = 0;
    assert_int_equal(rec_rows_next(GOOD_LINE, strlen(GOOD_LINE), &pos, 1, 1, &row, err,
                                   sizeof(err)),
                     -1);
    assert_error_names(err, (const char *const[]){"record line 1:", "instance 1", "instances",
                                                  NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_round_trip),
        cmocka_unit_test(rows_count_lines),
        cmocka_unit_test(rows_next_empty_text),
        cmocka_unit_test(rows_reject_bad_lines),
        cmocka_unit_test(rows_reject_above_maximum),
        cmocka_unit_test(rows_error_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
