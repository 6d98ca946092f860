/* The JSON text of a records post and the HTTP client that sends it. */
#ifndef NIMDECK_GATEWAY_GW_RECORDS_POST_H
#define NIMDECK_GATEWAY_GW_RECORDS_POST_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/gw_records.h"
#include "util/buf.h"

/* Append the POST body {"gateway_id", "batch", "instances", "tokens",
 * "rows", "activity"} to out, with the records as lines of util/rec_rows.h.
 * Returns 0, or -1 when memory runs out. */
int gw_records_text(const char *gateway_id, int64_t batch, const gw_record_t *records,
                    size_t num_records, const gw_activity_t *activity, size_t num_activity,
                    buf_t *out);

/* A libcurl handle for POSTs of JSON text to one URL, kept between posts so
 * its connection to the server is reused. Use it from one thread at a time. */
typedef struct gw_poster gw_poster_t;

/* Create a poster for server_url + path with an optional bearer token
 * (copied, and wiped from memory when the poster is freed). Returns NULL
 * when memory runs out. */
gw_poster_t *gw_poster_new(const char *server_url, const char *path, const char *api_token);

/* POST body[0..len). Returns 0 when a response arrived, with *status set
 * and, for a status of 400 or more, the server's error message in error;
 * or -1 on a transport failure with error naming the URL and the cause. */
int gw_poster_post(gw_poster_t *poster, const char *body, size_t len, long timeout_ms,
                   long *status, char *error, size_t error_size);

void gw_poster_free(gw_poster_t *poster);

#endif
