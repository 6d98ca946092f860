/* The loop thread's side of the request records: begin and end events go
 * into a local batch without locks, and the batch moves into the shared
 * records (one mutex acquisition) when it fills, on a short timer, or at
 * once for a begin after a quiet spell. */
#ifndef NIMDECK_GATEWAY_GW_RECORDER_H
#define NIMDECK_GATEWAY_GW_RECORDER_H

#include <stdint.h>
#include <uv.h>

#include "gateway/gw_records.h"

typedef struct gw_recorder gw_recorder_t;

/* Events wait at most this long in the local batch. */
#define GW_RECORDER_FLUSH_MS 20
/* Events per local batch; a full batch moves at once. */
#define GW_RECORDER_BATCH 256

/* Create the recorder on loop (its timer is a handle of that loop). Returns
 * NULL when memory runs out. */
gw_recorder_t *gw_recorder_new(uv_loop_t *loop, gw_records_t *records);

/* See gw_records_begin and gw_records_end; both run on the loop thread. */
void gw_recorder_begin(gw_recorder_t *rec, const char *instance_id, int64_t now_ms);
void gw_recorder_end(gw_recorder_t *rec, const gw_record_t *record, int64_t end_ms, int active);

/* Move what is batched into the shared records now. */
void gw_recorder_flush(gw_recorder_t *rec);

/* Flush, close the timer and free the recorder once it has closed (the loop
 * must run). */
void gw_recorder_close(gw_recorder_t *rec);

#endif
