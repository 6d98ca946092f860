/* Request records and activity: a mutex-guarded batch filled by the loop
 * thread and posted by a background thread. It posts every 250 ms when
 * there is anything and at once when an instance becomes busy. Instances
 * with requests in flight go out every GW_RECORDS_HEARTBEAT_MS. */
#include "gateway/gw_records.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/api_client.h"
#include "util/clock.h"
#include "util/log.h"

#define GW_RECORDS_PERIOD_MS 250
#define GW_RECORDS_TIMEOUT_MS 5000
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
    int urgent;                /* an instance just became busy: post now */

    gw_record_t *pending;      /* GW_RECORDS_MAX_PENDING slots */
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

void gw_records_begin(gw_records_t *records, const char *instance_id, int64_t now_ms)
{
    pthread_mutex_lock(&records->lock);
    gw_activity_entry_t *entry = gw_activity_find(records, instance_id);
    if (entry != NULL) {
        entry->activity.in_flight++;
        entry->activity.last_activity_at = now_ms;
        entry->dirty = 1;
        if (entry->activity.in_flight == 1) {
            records->urgent = 1;
            pthread_cond_signal(&records->wake);
        }
    }
    pthread_mutex_unlock(&records->lock);
}

void gw_records_end(gw_records_t *records, const gw_record_t *record, int64_t end_ms,
                    int active)
{
    pthread_mutex_lock(&records->lock);
    gw_activity_entry_t *entry = active ? gw_activity_find(records, record->instance_id) : NULL;
    if (entry != NULL) {
        if (entry->activity.in_flight > 0)
            entry->activity.in_flight--;
        entry->activity.last_activity_at = end_ms;
        entry->dirty = 1;
    }

    if (records->num_pending < GW_RECORDS_MAX_PENDING)
        records->pending[records->num_pending++] = *record;
    else
        records->dropped++;
    pthread_mutex_unlock(&records->lock);
}

static json_t *gw_nullable_int(int64_t value)
{
    return value >= 0 ? json_integer(value) : json_null();
}

json_t *gw_records_json(const char *gateway_id, const gw_record_t *records, size_t num_records,
                        const gw_activity_t *activity, size_t num_activity)
{
    json_t *list = json_array();
    json_t *busy = json_array();

    for (size_t i = 0; i < num_records; i++) {
        const gw_record_t *r = &records[i];
        json_t *item = json_pack("{s:s, s:s?, s:I, s:i, s:I, s:o, s:o, s:o, s:b}",
                                 "instance_id", r->instance_id, "token_id",
                                 r->token_id[0] ? r->token_id : NULL, "time", (json_int_t)r->time,
                                 "status", r->status, "latency_ms", (json_int_t)r->latency_ms,
                                 "ttfb_ms", gw_nullable_int(r->ttfb_ms), "prompt_tokens",
                                 gw_nullable_int(r->prompt_tokens), "completion_tokens",
                                 gw_nullable_int(r->completion_tokens), "cancelled",
                                 r->cancelled);
        /* Only estimated records carry the flag, so the usual record reads
         * the same to a server that does not know it. */
        if (item != NULL && r->usage_estimated)
            json_object_set_new(item, "usage_estimated", json_true());
        json_array_append_new(list, item);
    }
    for (size_t i = 0; i < num_activity; i++) {
        json_array_append_new(busy, json_pack("{s:s, s:I, s:i}", "instance_id",
                                              activity[i].instance_id, "last_activity_at",
                                              (json_int_t)activity[i].last_activity_at,
                                              "in_flight", activity[i].in_flight));
    }
    return json_pack("{s:s, s:o, s:o}", "gateway_id", gateway_id, "records", list, "activity",
                     busy);
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
    batch->records = malloc((records->num_pending + 1) * sizeof(*batch->records));
    batch->activity = malloc((records->num_activity + 1) * sizeof(*batch->activity));
    if (batch->records == NULL || batch->activity == NULL) {
        free(batch->records);
        free(batch->activity);
        return -1;
    }

    memcpy(batch->records, records->pending, records->num_pending * sizeof(*batch->records));
    batch->num_records = records->num_pending;
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

/* A failed post puts its records back in front (as many as fit) and marks
 * its instances changed again; caller holds the lock. */
static void gw_batch_return(gw_records_t *records, const gw_batch_t *batch)
{
    size_t room = GW_RECORDS_MAX_PENDING - records->num_pending;
    size_t back = batch->num_records < room ? batch->num_records : room;

    memmove(records->pending + back, records->pending,
            records->num_pending * sizeof(*records->pending));
    memcpy(records->pending, batch->records + (batch->num_records - back),
           back * sizeof(*records->pending));
    records->num_pending += back;
    records->dropped += batch->num_records - back;

    for (size_t i = 0; i < batch->num_activity; i++) {
        gw_activity_entry_t *entry = gw_activity_find(records, batch->activity[i].instance_id);
        if (entry != NULL)
            entry->dirty = 1;
    }
}

/* Results of one post. */
enum { GW_POST_OK = 0, GW_POST_RETRY = -1, GW_POST_REJECTED = -2 };

static int gw_batch_post(gw_records_t *records, const gw_batch_t *batch)
{
    api_result_t res;
    json_t *body = gw_records_json(records->gateway_id, batch->records, batch->num_records,
                                   batch->activity, batch->num_activity);
    int ok = 0;

    if (body == NULL)
        return GW_POST_RETRY;
    if (api_call(records->server_url, records->api_token, "POST", "/api/v1/gateway/records",
                 body, GW_RECORDS_TIMEOUT_MS, &res) == 0 &&
        res.status >= 200 && res.status < 300)
        ok = 1;

    /* The same body would be rejected again and hold up every later record,
     * for example when this gateway sends a field an older server does not
     * know: drop these records instead. */
    if (!ok && res.status == 400) {
        log_error("gateway", "the server rejected %zu request records with 400: %s; dropping "
                  "them (run the gateway and the server from the same nimdeck version)",
                  batch->num_records, res.error[0] ? res.error : "no detail");
        api_result_free(&res);
        json_decref(body);
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
                     "(%zu in a row): %s; retrying", batch->num_records, records->server_url,
                     records->failures, res.error[0] ? res.error : "no detail");
            records->last_error_log_ms = now;
        }
    }
    api_result_free(&res);
    json_decref(body);
    return ok ? GW_POST_OK : GW_POST_RETRY;
}

static void gw_batch_free(gw_batch_t *batch)
{
    free(batch->records);
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
    if (gw_batch_take(records, &batch) != 0)
        return;
    if (batch.num_records == 0 && batch.num_activity == 0) {
        gw_batch_free(&batch);
        return;
    }

    pthread_mutex_unlock(&records->lock);
    int rc = gw_batch_post(records, &batch);
    pthread_mutex_lock(&records->lock);

    if (rc == GW_POST_REJECTED)
        batch.num_records = 0;   /* dropped; the activity goes out again */
    if (rc != GW_POST_OK)
        gw_batch_return(records, &batch);
    gw_batch_free(&batch);
}

static int gw_records_due(const gw_records_t *records)
{
    int64_t now = clock_mono_ms();

    if (records->num_pending > 0)
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

    records->server_url = strdup(server_url);
    records->api_token = api_token ? strdup(api_token) : NULL;
    records->pending = calloc(GW_RECORDS_MAX_PENDING, sizeof(*records->pending));
    if (records->server_url == NULL || (api_token && records->api_token == NULL) ||
        records->pending == NULL) {
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
