/* Request records and instance activity, batched by the loop thread and
 * posted to the server's POST /api/v1/gateway/records by a thread of their own. */
#ifndef NIMDECK_GATEWAY_GW_RECORDS_H
#define NIMDECK_GATEWAY_GW_RECORDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define GW_ID_MAX 128

typedef struct {
    char instance_id[GW_ID_MAX];
    char token_id[GW_ID_MAX];
    int64_t time;               /* request start, wall ms */
    int status;                 /* HTTP status the client got (502 when the upstream failed) */
    int64_t latency_ms;         /* start to the last byte */
    int64_t ttfb_ms;            /* start to the first body byte; -1 when there was none */
    int64_t prompt_tokens;      /* -1 when the response carried no usage */
    int64_t completion_tokens;
    int cancelled;              /* the client disconnected first */
} gw_record_t;

typedef struct gw_records gw_records_t;

/* Records waiting for a post beyond this are dropped (and counted in a
 * warning) so a server outage cannot grow the gateway's memory. */
#define GW_RECORDS_MAX_PENDING 10000

/* Start the posting thread. Copies server_url and api_token. Returns NULL
 * and writes the reason into err on failure. */
gw_records_t *gw_records_start(const char *server_url, const char *api_token, char *err,
                               size_t err_size);

/* Count a request forwarded to instance_id at now_ms (wall) as in flight.
 * A change from 0 to 1 is posted at once, so the idle checker treats the
 * instance as busy. Takes only a mutex that no thread holds across I/O. */
void gw_records_begin(gw_records_t *records, const char *instance_id, int64_t now_ms);

/* Append the record of a request that ended (any way), lower its in-flight
 * count and set the last activity to end_ms. Takes the same mutex only. */
void gw_records_end(gw_records_t *records, const gw_record_t *record, int64_t end_ms);

/* Post what is pending (one try), stop the thread and free everything. */
void gw_records_stop(gw_records_t *records);

/* Build the POST body from records and activity; exposed for tests. */
typedef struct {
    char instance_id[GW_ID_MAX];
    int64_t last_activity_at;
    int in_flight;
} gw_activity_t;

json_t *gw_records_json(const gw_record_t *records, size_t num_records,
                               const gw_activity_t *activity, size_t num_activity);

#endif
