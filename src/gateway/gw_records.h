/* Request records and instance activity, batched by the loop thread and
 * posted to the server's POST /api/v1/gateway/records by a thread of their own. */
#ifndef NIMDECK_GATEWAY_GW_RECORDS_H
#define NIMDECK_GATEWAY_GW_RECORDS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define GW_ID_MAX 128
/* A gateway id: 16 hex characters and the NUL. */
#define GW_GATEWAY_ID_SIZE 17

typedef struct {
    char instance_id[GW_ID_MAX];
    char token_id[GW_ID_MAX];
    int64_t time;               /* request start, wall ms */
    int status;                 /* HTTP status the client got (502 when the upstream failed) */
    int64_t latency_ms;         /* start to the last byte */
    int64_t ttfb_ms;            /* start to the first body byte; -1 when there was none */
    int64_t prompt_tokens;      /* -1 when unknown */
    int64_t completion_tokens;  /* -1 when unknown */
    /* completion_tokens is the count of content events the client got,
     * because the stream ended without a usage object; prompt_tokens is
     * then -1. Posted as the REC_ROW_USAGE_ESTIMATED bit of the row's flags. */
    int usage_estimated;
    int cancelled;              /* the client disconnected first */
} gw_record_t;

typedef struct gw_records gw_records_t;

/* Records waiting for a post beyond this are dropped (and counted in a
 * warning) so a server outage cannot grow the gateway's memory. */
#define GW_RECORDS_MAX_PENDING 10000

/* An instance with requests in flight is posted at least this often even
 * when nothing changed, because the server drops an in-flight count that
 * is not refreshed for 5 s (so a crashed gateway cannot keep it busy). */
#define GW_RECORDS_HEARTBEAT_MS 500

/* Start the posting thread under a new random gateway id, which every post
 * carries. Copies server_url and api_token. libsodium must be initialised.
 * Returns NULL and writes the reason into err on failure. */
gw_records_t *gw_records_start(const char *server_url, const char *api_token, char *err,
                               size_t err_size);

/* This gateway process's id: 16 hex characters. */
const char *gw_records_gateway_id(const gw_records_t *records);

/* One change to apply: a request that began or ended. */
typedef enum { GW_EVENT_BEGIN, GW_EVENT_END } gw_record_event_kind_t;

typedef struct {
    gw_record_event_kind_t kind;
    int active;            /* END: the request was counted by a BEGIN */
    int64_t time_ms;       /* wall ms: BEGIN's start, END's end */
    gw_record_t record;    /* END: the record; BEGIN: only instance_id is used */
} gw_record_event_t;

/* Apply events in order under the mutex (which no thread holds across
 * I/O). BEGIN counts an inference request to an instance as activity in
 * flight; a change from 0 to 1 is posted at once, so the idle checker treats
 * the instance as busy. A post also starts at once when many records wait. END appends the record of a forwarded request that
 * ended (any way); when it was active, it also lowers the in-flight count
 * and sets the last activity. */
void gw_records_apply(gw_records_t *records, const gw_record_event_t *events, size_t n);

/* One-event forms of gw_records_apply. */
void gw_records_begin(gw_records_t *records, const char *instance_id, int64_t now_ms);
void gw_records_end(gw_records_t *records, const gw_record_t *record, int64_t end_ms,
                    int active);

/* Post what is pending (one try), stop the thread and free everything. */
void gw_records_stop(gw_records_t *records);

/* Build the POST body from records and activity; exposed for tests. */
typedef struct {
    char instance_id[GW_ID_MAX];
    int64_t last_activity_at;
    int in_flight;
} gw_activity_t;

json_t *gw_records_json(const char *gateway_id, const gw_record_t *records, size_t num_records,
                        const gw_activity_t *activity, size_t num_activity);

#endif
