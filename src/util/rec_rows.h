/* The compact text form of request records that a gateway posts: one line
 * per record, so the server reads thousands of records with a scan instead
 * of building a JSON object for each. */
#ifndef NIMDECK_UTIL_REC_ROWS_H
#define NIMDECK_UTIL_REC_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* A line is nine decimal integers separated by single spaces and ended by
 * '\n', in the order of the fields below. Unknown values are -1. */
#define REC_ROWS_FIELDS 9

/* Largest values a record may carry, in either form of a post. They keep
 * the server's sums of thousands of records far from overflow. */
#define REC_TIME_MAX 253402300799999LL      /* ms: the end of the year 9999 */
#define REC_DURATION_MAX_MS 2592000000LL    /* 30 days, for latency and ttfb */
#define REC_TOKENS_MAX 1000000000LL         /* per request, for each count */
/* Maximum length of an instance or token id, without the NUL. Real ids are
 * far shorter. */
#define REC_ID_MAX 127

#define REC_ROW_CANCELLED 1         /* the client disconnected first */
#define REC_ROW_USAGE_ESTIMATED 2   /* completion_tokens counts content events */

typedef struct {
    int64_t instance;           /* index into the post's "instances" */
    int64_t token;              /* index into the post's "tokens", or -1 */
    int64_t time;               /* request start, wall ms */
    int64_t status;             /* HTTP status, 100 to 599 */
    int64_t latency_ms;
    int64_t ttfb_ms;            /* -1 when no body byte arrived */
    int64_t prompt_tokens;      /* -1 when unknown */
    int64_t completion_tokens;  /* -1 when unknown */
    int64_t flags;              /* REC_ROW_* bits */
} rec_row_t;

/* Append the line of row to out. Returns 0, or -1 when memory runs out. */
int rec_rows_append(buf_t *out, const rec_row_t *row);

/* Count the lines of text[0..len): its '\n' bytes, plus one for a last line
 * that lacks it (rec_rows_next rejects that line). */
size_t rec_rows_count(const char *text, size_t len);

/* Read the line of text[0..len) that starts at *pos into row and move *pos
 * past it. Indexes are checked against num_instances and num_tokens, and
 * every field against its range. Returns 1 for a row, 0 at the end of the
 * text, or -1 with err naming the line number and the invalid field. */
int rec_rows_next(const char *text, size_t len, size_t *pos, size_t num_instances,
                  size_t num_tokens, rec_row_t *row, char *err, size_t err_size);

#endif
