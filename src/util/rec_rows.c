/* Writing and reading the compact request record lines. */
#include "util/rec_rows.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Names and ranges of the fields, in line order, for checks and errors. */
static const struct {
    const char *name;
    int64_t min;
    int64_t max;   /* 0 for the index fields: checked against the post's arrays */
} rec_fields[REC_ROWS_FIELDS] = {
    {"instance", 0, 0},
    {"token", -1, 0},
    {"time", 0, REC_TIME_MAX},
    {"status", 100, 599},
    {"latency_ms", 0, REC_DURATION_MAX_MS},
    {"ttfb_ms", -1, REC_DURATION_MAX_MS},
    {"prompt_tokens", -1, REC_TOKENS_MAX},
    {"completion_tokens", -1, REC_TOKENS_MAX},
    {"flags", 0, REC_ROW_CANCELLED | REC_ROW_USAGE_ESTIMATED},
};

/* Write v in decimal backwards from end, and return its first character. */
static char *rec_format(int64_t v, char *end)
{
    uint64_t magnitude = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--end = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude != 0);
    if (v < 0)
        *--end = '-';
    return end;
}

int rec_rows_append(buf_t *out, const rec_row_t *row)
{
    const int64_t values[REC_ROWS_FIELDS] = {
        row->instance,   row->token,         row->time,
        row->status,     row->latency_ms,    row->ttfb_ms,
        row->prompt_tokens, row->completion_tokens, row->flags,
    };
    /* Nine fields of at most 20 characters, their separators and '\n'. */
    char line[REC_ROWS_FIELDS * 21];
    size_t len = 0;

    for (int i = 0; i < REC_ROWS_FIELDS; i++) {
        char digits[21];
        char *end = digits + sizeof(digits);
        char *start = rec_format(values[i], end);

        memcpy(line + len, start, (size_t)(end - start));
        len += (size_t)(end - start);
        line[len++] = i + 1 < REC_ROWS_FIELDS ? ' ' : '\n';
    }
    return buf_append(out, line, len);
}

size_t rec_rows_count(const char *text, size_t len)
{
    size_t lines = 0, pos = 0;

    /* Offsets rather than pointers, because text is NULL when len is 0. */
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        lines++;
        if (nl == NULL)
            break;
        pos = (size_t)(nl - text) + 1;
    }
    return lines;
}

/* Read one decimal integer at text[*pos..len): an optional '-' and 1 to 19
 * digits. Returns 0, or -1 when there is none or it overflows int64. */
static int rec_parse_int(const char *text, size_t len, size_t *pos, int64_t *value)
{
    size_t i = *pos;
    int negative = i < len && text[i] == '-';
    uint64_t magnitude = 0;
    size_t digits = 0;

    if (negative)
        i++;
    while (i < len && text[i] >= '0' && text[i] <= '9') {
        if (++digits > 19)
            return -1;
        magnitude = magnitude * 10 + (uint64_t)(text[i] - '0');
        i++;
    }
    if (digits == 0 || magnitude > (uint64_t)INT64_MAX)
        return -1;
    *value = negative ? -(int64_t)magnitude : (int64_t)magnitude;
    *pos = i;
    return 0;
}

/* The line number (from 1) of the line that starts at pos. */
static size_t rec_line_number(const char *text, size_t pos)
{
    size_t line = 1;

    for (size_t i = 0; i < pos; i++)
        line += text[i] == '\n';
    return line;
}

int rec_rows_next(const char *text, size_t len, size_t *pos, size_t num_instances,
                  size_t num_tokens, rec_row_t *row, char *err, size_t err_size)
{
    int64_t values[REC_ROWS_FIELDS];
    size_t start = *pos, i = *pos;

    if (i >= len)
        return 0;

    for (int f = 0; f < REC_ROWS_FIELDS; f++) {
        char want = f + 1 < REC_ROWS_FIELDS ? ' ' : '\n';
        int64_t max = rec_fields[f].max;

        if (f == 0)
            max = (int64_t)num_instances - 1;
        else if (f == 1)
            max = (int64_t)num_tokens - 1;

        if (rec_parse_int(text, len, &i, &values[f]) != 0 || i >= len || text[i] != want) {
            snprintf(err, err_size, "record line %zu: field %d (%s) must be a decimal integer "
                     "followed by %s", rec_line_number(text, start), f + 1, rec_fields[f].name,
                     want == ' ' ? "one space" : "a newline");
            return -1;
        }
        if (values[f] >= rec_fields[f].min && values[f] <= max) {
            i++;
            continue;
        }

        if (f < 2)
            snprintf(err, err_size, "record line %zu: %s %" PRId64 " is not an index of "
                     "\"%ss\", which has %" PRId64 " entries%s", rec_line_number(text, start),
                     rec_fields[f].name, values[f], rec_fields[f].name, max + 1,
                     f == 1 ? " (-1: no token)" : "");
        else
            snprintf(err, err_size, "record line %zu: %s %" PRId64 " is out of range "
                     "(%" PRId64 " to %" PRId64 ")", rec_line_number(text, start),
                     rec_fields[f].name, values[f], rec_fields[f].min, max);
        return -1;
    }

    *row = (rec_row_t){values[0], values[1], values[2], values[3], values[4],
                       values[5], values[6], values[7], values[8]};
    *pos = i;
    return 1;
}
