/* Lock-free batching of request records on the gateway's loop thread. */
#include "gateway/gw_recorder.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

struct gw_recorder {
    uv_timer_t timer;
    gw_records_t *records;
    int64_t flushed_ms;        /* monotonic ms of the last flush */
    size_t num_events;
    gw_record_event_t events[GW_RECORDER_BATCH];
};

static void gw_recorder_on_timer(uv_timer_t *timer)
{
    gw_recorder_flush(timer->data);
}

gw_recorder_t *gw_recorder_new(uv_loop_t *loop, gw_records_t *records)
{
    gw_recorder_t *rec = calloc(1, sizeof(*rec));

    if (rec == NULL)
        return NULL;
    rec->records = records;
    uv_timer_init(loop, &rec->timer);
    rec->timer.data = rec;
    return rec;
}

void gw_recorder_flush(gw_recorder_t *rec)
{
    uv_timer_stop(&rec->timer);
    rec->flushed_ms = clock_mono_ms();
    if (rec->num_events == 0)
        return;
    gw_records_apply(rec->records, rec->events, rec->num_events);
    rec->num_events = 0;
}

/* Take the next slot, flushing a full batch first; the timer bounds how
 * long the first event of a batch waits. */
static gw_record_event_t *gw_recorder_slot(gw_recorder_t *rec)
{
    if (rec->num_events == GW_RECORDER_BATCH)
        gw_recorder_flush(rec);
    if (rec->num_events == 0)
        uv_timer_start(&rec->timer, gw_recorder_on_timer, GW_RECORDER_FLUSH_MS, 0);
    return &rec->events[rec->num_events++];
}

void gw_recorder_begin(gw_recorder_t *rec, const char *instance_id, int64_t now_ms)
{
    gw_record_event_t *event = gw_recorder_slot(rec);

    event->kind = GW_EVENT_BEGIN;
    event->active = 0;
    event->time_ms = now_ms;
    size_t len = strnlen(instance_id, sizeof(event->record.instance_id) - 1);
    memcpy(event->record.instance_id, instance_id, len);
    event->record.instance_id[len] = '\0';

    /* A begin may have to wake the records thread at once (an instance
     * turning busy); under load the timer's flush is soon enough. */
    if (clock_mono_ms() - rec->flushed_ms >= GW_RECORDER_FLUSH_MS)
        gw_recorder_flush(rec);
}

void gw_recorder_end(gw_recorder_t *rec, const gw_record_t *record, int64_t end_ms, int active)
{
    gw_record_event_t *event = gw_recorder_slot(rec);

    event->kind = GW_EVENT_END;
    event->active = active;
    event->time_ms = end_ms;
    event->record = *record;
}

static void gw_recorder_on_closed(uv_handle_t *handle)
{
    free(handle->data);
}

void gw_recorder_close(gw_recorder_t *rec)
{
    if (rec == NULL)
        return;
    gw_recorder_flush(rec);
    uv_close((uv_handle_t *)&rec->timer, gw_recorder_on_closed);
}
