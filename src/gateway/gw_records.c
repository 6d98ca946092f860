/* Request records and activity: a mutex-guarded batch filled by the loop
 * thread and posted by a background thread. It posts every 250 ms when
 * there is anything, and at once when an instance becomes busy or
 * GW_RECORDS_POST_AT records wait. Instances with requests in flight go
 * out every GW_RECORDS_HEARTBEAT_MS. */
#include "gateway/gw_records.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gw_records_post.h"
#include "util/clock.h"
#include "util/log.h"

#define GW_RECORDS_PERIOD_MS 250
/* An instance whose last request ended this long ago, or that has no entry,
 * is posted at once when a request to it begins. After a shorter pause the
 * regular post, at most GW_RECORDS_PERIOD_MS later, is soon enough: the
 * server already has a recent last activity for it. */
#define GW_RECORDS_QUIET_MS 1000
/* Records waiting that start a post before the period ends. Under heavy
 * traffic this keeps each post, and the server's work on it, short, and
 * keeps the pending records far below GW_RECORDS_MAX_PENDING. */
#define GW_RECORDS_POST_AT 256
#define GW_RECORDS_TIMEOUT_MS 5000
/* Capacity of the post body kept between posts. */
#define GW_RECORDS_BODY_KEEP (256u * 1024)
/* Repeated post failures are logged at most this often. */
#define GW_RECORDS_LOG_EVERY_MS 30000

typedef struct {
    gw_activity_t activity;
    int dirty;                 /* changed since the last successful post */
    int64_t taken_ms;          /* monotonic ms when a post last carried it */
} gw_activity_entry_t;

struct gw_records {
    char gateway_id[GW_GATEWAY_ID_SIZE];
    char *server_url;
    char *api_token;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    int urgent;                /* post now: an instance became busy, or many records wait */

    gw_record_t *pending;      /* GW_RECORDS_MAX_PENDING slots */
    gw_record_t *spare;        /* as many, swapped with pending by each post */
    gw_poster_t *poster;       /* records thread only */
    buf_t body;                /* records thread only: the post's JSON text */
    /* Records thread only: the text of a post that failed, sent again
     * unchanged before anything newer. A post that timed out may still
     * reach the server, which stores each batch number once. */
    buf_t retry;
    size_t retry_records;
    int64_t next_batch;        /* records thread only: the number of the next post */
    size_t num_pending;
    size_t dropped;            /* records lost to the bound since the last warning */

    /* NOTE: a linear array: one entry per instance with recent traffic,
     * which stays small (tens) on one gateway. */
    gw_activity_entry_t *activity;
    size_t num_activity;
    size_t cap_activity;

    int64_t last_error_log_ms;
    size_t failures;           /* failed posts since the last success */
};

/* Find or add the activity entry of an instance; caller holds the lock. */
static gw_activity_entry_t *gw_activity_find(gw_records_t *records, const char *instance_id)
{
    for (size_t i = 0; i < records->num_activity; i++) {
        if (strcmp(records->activity[i].activity.instance_id, instance_id) == 0)
            return &records->activity[i];
    }

    if (records->num_activity == records->cap_activity) {
        size_t cap = records->cap_activity ? records->cap_activity * 2 : 16;
        gw_activity_entry_t *grown = realloc(records->activity, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        records->activity = grown;
        records->cap_activity = cap;
    }

    gw_activity_entry_t *entry = &records->activity[records->num_activity++];
    memset(entry, 0, sizeof(*entry));
    snprintf(entry->activity.instance_id, sizeof(entry->activity.instance_id), "%s",
             instance_id);
    return entry;
}

/* Apply one event; caller holds the lock. Returns 1 when a post should
 * start now: an instance went from no request in flight to one, or the
 * pending records reached GW_RECORDS_POST_AT. */
static int gw_records_apply_one(gw_records_t *records, const gw_record_event_t *event)
{
    if (event->kind == GW_EVENT_BEGIN) {
        gw_activity_entry_t *entry = gw_activity_find(records, event->record.instance_id);
        if (entry == NULL)
            return 0;
        /* Under steady traffic the regular posts keep the server's view
         * fresh; only an instance that was quiet needs the post at once. */
        int quiet = entry->activity.in_flight == 0 &&
                    event->time_ms - entry->activity.last_activity_at >= GW_RECORDS_QUIET_MS;
        entry->activity.in_flight++;
        entry->activity.last_activity_at = event->time_ms;
        entry->dirty = 1;
        return quiet;
    }

    gw_activity_entry_t *entry =
        event->active ? gw_activity_find(records, event->record.instance_id) : NULL;
    if (entry != NULL) {
        if (entry->activity.in_flight > 0)
            entry->activity.in_flight--;
        entry->activity.last_activity_at = event->time_ms;
        entry->dirty = 1;
    }
    if (records->num_pending < GW_RECORDS_MAX_PENDING)
        records->pending[records->num_pending++] = event->record;
    else
        records->dropped++;
    return records->num_pending == GW_RECORDS_POST_AT;
}

void gw_records_apply(gw_records_t *records, const gw_record_event_t *events, size_t n)
{
    int post_now = 0;

    pthread_mutex_lock(&records->lock);
    for (size_t i = 0; i < n; i++)
        post_now |= gw_records_apply_one(records, &events[i]);
    if (post_now) {
        records->urgent = 1;
        pthread_cond_signal(&records->wake);
    }
    pthread_mutex_unlock(&records->lock);
}

void gw_records_begin(gw_records_t *records, const char *instance_id, int64_t now_ms)
{
    gw_record_event_t event = {.kind = GW_EVENT_BEGIN, .time_ms = now_ms};

    snprintf(event.record.instance_id, sizeof(event.record.instance_id), "%s", instance_id);
    gw_records_apply(records, &event, 1);
}

void gw_records_end(gw_records_t *records, const gw_record_t *record, int64_t end_ms,
                    int active)
{
    gw_record_event_t event = {.kind = GW_EVENT_END, .active = active, .time_ms = end_ms,
                               .record = *record};

    gw_records_apply(records, &event, 1);
}

/* What one post carries, taken out of the shared batch under the lock. */
typedef struct {
    gw_record_t *records;
    size_t num_records;
    gw_activity_t *activity;
    size_t num_activity;
} gw_batch_t;

/* Whether a post must carry this entry: it changed, or it has requests in
 * flight and no post carried it for a heartbeat period. */
static int gw_activity_due(const gw_activity_entry_t *entry, int64_t now_ms)
{
    return entry->dirty ||
           (entry->activity.in_flight > 0 && now_ms - entry->taken_ms >= GW_RECORDS_HEARTBEAT_MS);
}

/* Move the pending records and the due activity into batch; caller holds
 * the lock. Returns 0, or -1 when memory runs out (nothing moved). */
static int gw_batch_take(gw_records_t *records, gw_batch_t *batch)
{
    int64_t now = clock_mono_ms();

    memset(batch, 0, sizeof(*batch));
    batch->activity = malloc((records->num_activity + 1) * sizeof(*batch->activity));
    if (batch->activity == NULL)
        return -1;

    /* The pending array itself becomes the batch, and the spare one takes
     * its place: no copy, and no allocation of megabytes per post. */
    batch->records = records->pending;
    batch->num_records = records->num_pending;
    records->pending = records->spare;
    records->spare = NULL;
    records->num_pending = 0;

    /* An entry idle since the previous take (posted then, nothing new since)
     * is forgotten, so the table holds only instances with recent traffic.
     * Entries taken now stay, so a failed post can mark them again. */
    size_t kept = 0;
    for (size_t i = 0; i < records->num_activity; i++) {
        gw_activity_entry_t entry = records->activity[i];
        if (!entry.dirty && entry.activity.in_flight == 0)
            continue;
        if (gw_activity_due(&entry, now)) {
            batch->activity[batch->num_activity++] = entry.activity;
            entry.taken_ms = now;
        }
        entry.dirty = 0;
        records->activity[kept++] = entry;
    }
    records->num_activity = kept;
    return 0;
}

/* A failed post marks its instances changed again, so the next post
 * carries their current activity; caller holds the lock. Its records stay
 * in the retry text. */
static void gw_batch_return(gw_records_t *records, const gw_batch_t *batch)
{
    for (size_t i = 0; i < batch->num_activity; i++) {
        gw_activity_entry_t *entry = gw_activity_find(records, batch->activity[i].instance_id);
        if (entry != NULL)
            entry->dirty = 1;
    }
}

/* Results of one post. */
enum { GW_POST_OK = 0, GW_POST_RETRY = -1, GW_POST_REJECTED = -2 };

/* POST body, which carries num_records records, and log the outcome. */
static int gw_body_post(gw_records_t *records, const buf_t *body, size_t num_records)
{
    char error[512] = "";
    long status = 0;
    int ok = 0;

    if (gw_poster_post(records->poster, body->data, body->len, GW_RECORDS_TIMEOUT_MS, &status,
                       error, sizeof(error)) == 0 &&
        status >= 200 && status < 300)
        ok = 1;

    /* The same body would be rejected again and hold up every later record,
     * for example when this gateway sends a field an older server does not
     * know: drop these records instead. */
    if (!ok && status == 400) {
        log_error("gateway", "the server rejected %zu request records with 400: %s; dropping "
                  "them (run the gateway and the server from the same nimdeck version)",
                  num_records, error[0] ? error : "no detail");
        return GW_POST_REJECTED;
    }

    int64_t now = clock_mono_ms();
    if (ok) {
        if (records->failures > 0)
            log_info("gateway", "posting records works again after %zu failures",
                     records->failures);
        records->failures = 0;
    } else {
        records->failures++;
        if (records->failures == 1 || now - records->last_error_log_ms >= GW_RECORDS_LOG_EVERY_MS) {
            log_warn("gateway", "posting %zu records to %s/api/v1/gateway/records failed "
                     "(%zu in a row): %s; retrying", num_records, records->server_url,
                     records->failures, error[0] ? error : "no detail");
            records->last_error_log_ms = now;
        }
    }
    return ok ? GW_POST_OK : GW_POST_RETRY;
}

/* Write batch under the next batch number and post it. A failed post's
 * text moves to records->retry. */
static int gw_batch_post(gw_records_t *records, const gw_batch_t *batch)
{
    buf_reset(&records->body);
    if (gw_records_text(records->gateway_id, records->next_batch, batch->records,
                        batch->num_records, batch->activity, batch->num_activity,
                        &records->body) != 0) {
        log_error("gateway", "out of memory writing a post of %zu request records; dropping "
                  "them", batch->num_records);
        return GW_POST_REJECTED;
    }
    records->next_batch++;

    int rc = gw_body_post(records, &records->body, batch->num_records);
    if (rc == GW_POST_RETRY) {
        buf_t kept = records->retry;
        records->retry = records->body;
        records->retry_records = batch->num_records;
        records->body = kept;
        buf_reset(&records->body);
    }

    /* A batch of thousands of records grows the body to megabytes; that
     * much is not kept for the quiet times. */
    if (records->body.cap > GW_RECORDS_BODY_KEEP)
        buf_free(&records->body);
    return rc;
}

/* Post the text of a failed post again. Returns GW_POST_OK when nothing is
 * left to retry. */
static int gw_retry_post(gw_records_t *records)
{
    int rc = gw_body_post(records, &records->retry, records->retry_records);
    if (rc == GW_POST_RETRY)
        return rc;
    if (records->retry.cap > GW_RECORDS_BODY_KEEP)
        buf_free(&records->retry);
    else
        buf_reset(&records->retry);
    return GW_POST_OK;
}

/* The batch's records array becomes the spare again; caller holds the lock. */
static void gw_batch_free(gw_records_t *records, gw_batch_t *batch)
{
    records->spare = batch->records;
    free(batch->activity);
}

/* Post one batch if there is anything. The caller holds the lock, which is
 * released during the network call so the loop thread never waits on it. */
static void gw_records_flush(gw_records_t *records)
{
    gw_batch_t batch;

    if (records->dropped > 0) {
        log_warn("gateway", "dropped %zu request records: the server did not take them in time "
                 "(at most %d wait)", records->dropped, GW_RECORDS_MAX_PENDING);
        records->dropped = 0;
    }

    /* Nothing newer goes out while a failed post is still unsent, so the
     * server receives the batch numbers in order. */
    if (records->retry.len > 0) {
        pthread_mutex_unlock(&records->lock);
        int retry_rc = gw_retry_post(records);
        pthread_mutex_lock(&records->lock);
        if (retry_rc != GW_POST_OK)
            return;
    }

    if (gw_batch_take(records, &batch) != 0)
        return;
    if (batch.num_records == 0 && batch.num_activity == 0) {
        gw_batch_free(records, &batch);
        return;
    }

    pthread_mutex_unlock(&records->lock);
    int rc = gw_batch_post(records, &batch);
    pthread_mutex_lock(&records->lock);

    /* A rejected batch is dropped, but its activity goes out again. */
    if (rc != GW_POST_OK)
        gw_batch_return(records, &batch);
    gw_batch_free(records, &batch);
}

static int gw_records_due(const gw_records_t *records)
{
    int64_t now = clock_mono_ms();

    if (records->num_pending > 0 || records->retry.len > 0)
        return 1;
    for (size_t i = 0; i < records->num_activity; i++) {
        if (gw_activity_due(&records->activity[i], now))
            return 1;
    }
    return 0;
}

static void *gw_records_thread(void *arg)
{
    gw_records_t *records = arg;
    int64_t last_post = 0;

    pthread_mutex_lock(&records->lock);
    while (!records->stop) {
        int64_t now = clock_mono_ms();
        int64_t wait = GW_RECORDS_PERIOD_MS - (now - last_post);

        if (records->urgent || (wait <= 0 && gw_records_due(records))) {
            records->urgent = 0;
            last_post = now;
            gw_records_flush(records);
            continue;
        }

        struct timespec deadline;
        clock_mono_deadline(wait > 0 ? wait : GW_RECORDS_PERIOD_MS, &deadline);
        pthread_cond_timedwait(&records->wake, &records->lock, &deadline);
    }

    /* One last try, so requests that ended just before the stop count. */
    gw_records_flush(records);
    pthread_mutex_unlock(&records->lock);
    return NULL;
}

static void gw_records_free(gw_records_t *records)
{
    pthread_mutex_destroy(&records->lock);
    pthread_cond_destroy(&records->wake);
    free(records->pending);
    free(records->spare);
    gw_poster_free(records->poster);
    buf_free(&records->body);
    buf_free(&records->retry);
    free(records->activity);
    free(records->server_url);
    free(records->api_token);
    free(records);
}

gw_records_t *gw_records_start(const char *server_url, const char *api_token, char *err,
                               size_t err_size)
{
    pthread_condattr_t attr;
    gw_records_t *records = calloc(1, sizeof(*records));

    if (records == NULL) {
        snprintf(err, err_size, "out of memory starting the records thread");
        return NULL;
    }
    unsigned char id[(GW_GATEWAY_ID_SIZE - 1) / 2];
    randombytes_buf(id, sizeof(id));
    sodium_bin2hex(records->gateway_id, sizeof(records->gateway_id), id, sizeof(id));

    pthread_mutex_init(&records->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&records->wake, &attr);
    pthread_condattr_destroy(&attr);

    records->next_batch = 1;
    records->server_url = strdup(server_url);
    records->api_token = api_token ? strdup(api_token) : NULL;
    records->pending = calloc(GW_RECORDS_MAX_PENDING, sizeof(*records->pending));
    records->spare = calloc(GW_RECORDS_MAX_PENDING, sizeof(*records->spare));
    records->poster = gw_poster_new(server_url, "/api/v1/gateway/records", api_token);
    if (records->server_url == NULL || (api_token && records->api_token == NULL) ||
        records->pending == NULL || records->spare == NULL || records->poster == NULL) {
        snprintf(err, err_size, "out of memory starting the records thread");
        gw_records_free(records);
        return NULL;
    }

    int rc = pthread_create(&records->thread, NULL, gw_records_thread, records);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the records thread: %s", strerror(rc));
        gw_records_free(records);
        return NULL;
    }
    return records;
}

const char *gw_records_gateway_id(const gw_records_t *records)
{
    return records->gateway_id;
}

void gw_records_stop(gw_records_t *records)
{
    if (records == NULL)
        return;

    pthread_mutex_lock(&records->lock);
    records->stop = 1;
    pthread_cond_signal(&records->wake);
    pthread_mutex_unlock(&records->lock);

    pthread_join(records->thread, NULL);
    gw_records_free(records);
}
