/* State long-polling on a detached thread; snapshots reach the loop thread
 * through a mutex-guarded, reference-counted pointer. */
#include "gateway/gw_poll.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/api_client.h"
#include "util/clock.h"
#include "util/log.h"

/* The HTTP timeout covers the server's wait plus a margin for a slow response. */
#define GW_POLL_TIMEOUT_MS ((GW_POLL_WAIT_S + 10) * 1000L)
#define GW_POLL_BACKOFF_MS 1000
#define GW_POLL_LOG_EVERY_MS 30000

struct gw_poller {
    atomic_int refs;           /* the gateway's handle and the thread */
    pthread_mutex_t lock;
    pthread_cond_t changed;    /* a snapshot arrived, or stop was set */
    int stop;
    gw_state_t *current;
    /* Read without the lock by the loop thread on every request. */
    _Atomic int64_t answered_ms;   /* monotonic ms of the last 200 or 304 */
    _Atomic int64_t version;       /* counts the snapshots published */
    char *server_url;
    char *api_token;
    size_t failures;           /* failed polls since the last success */
    int64_t last_error_log_ms;
    int64_t last_auth_log_ms;  /* last error about a rejected token, or 0 */
    /* The status (401 or 403) of a poll that rejected the token before any
     * snapshot arrived, and the server's message, for gateway_start. */
    long rejected_status;
    char rejected_message[512];
    int first_wait_over;       /* gw_poller_wait_first returned */
};

static void gw_poller_release(gw_poller_t *poller)
{
    if (atomic_fetch_sub(&poller->refs, 1) != 1)
        return;

    gw_state_unref(poller->current);
    pthread_mutex_destroy(&poller->lock);
    pthread_cond_destroy(&poller->changed);
    free(poller->server_url);
    free(poller->api_token);
    free(poller);
}

/* Sleep for the back-off unless stop comes first. Returns 1 when stopping. */
static int gw_poller_backoff(gw_poller_t *poller)
{
    struct timespec deadline;
    int stop;

    clock_mono_deadline(GW_POLL_BACKOFF_MS, &deadline);
    pthread_mutex_lock(&poller->lock);
    while (!poller->stop &&
           pthread_cond_timedwait(&poller->changed, &poller->lock, &deadline) == 0)
        ;
    stop = poller->stop;
    pthread_mutex_unlock(&poller->lock);
    return stop;
}

static int gw_poller_stopping(gw_poller_t *poller)
{
    pthread_mutex_lock(&poller->lock);
    int stop = poller->stop;
    pthread_mutex_unlock(&poller->lock);
    return stop;
}

static void gw_poller_failed(gw_poller_t *poller, const char *why)
{
    int64_t now = clock_mono_ms();

    /* A poll cut short by the shutdown is no failure worth a warning. */
    if (gw_poller_stopping(poller))
        return;
    poller->failures++;
    if (poller->failures == 1 || now - poller->last_error_log_ms >= GW_POLL_LOG_EVERY_MS) {
        log_warn("gateway", "polling %s/api/v1/gateway/state failed (%zu in a row): %s; "
                 "retrying every %d ms", poller->server_url, poller->failures, why,
                 GW_POLL_BACKOFF_MS);
        poller->last_error_log_ms = now;
    }
}

/* The server refused the token (401 or 403). While gateway_start waits for
 * the first snapshot, gw_poller_wait_first reports it, so the gateway fails
 * to start instead of responding 503 for ever. Later (a token revoked while
 * running) the snapshot ages into 503 state_stale, and an error is logged
 * at most every 30 s. */
static void gw_poller_rejected(gw_poller_t *poller, long status, const char *why)
{
    int64_t now = clock_mono_ms();

    if (gw_poller_stopping(poller))
        return;
    poller->failures++;

    pthread_mutex_lock(&poller->lock);
    int first = poller->current == NULL && !poller->first_wait_over;
    if (first) {
        poller->rejected_status = status;
        snprintf(poller->rejected_message, sizeof(poller->rejected_message), "%s", why);
        pthread_cond_broadcast(&poller->changed);
    }
    pthread_mutex_unlock(&poller->lock);

    if (first || (poller->last_auth_log_ms != 0 &&
                  now - poller->last_auth_log_ms < GW_POLL_LOG_EVERY_MS))
        return;
    log_error("gateway", "the server %s rejects the gateway's api token with HTTP %ld (%s): "
              "the token is unknown, expired, revoked or not an admin's api token; requests "
              "get 503 once the state is stale; restart the gateway with a valid --token",
              poller->server_url, status, why);
    poller->last_auth_log_ms = now;
}

static void gw_poller_answered(gw_poller_t *poller)
{
    atomic_store(&poller->answered_ms, clock_mono_ms());
}

static void gw_poller_publish(gw_poller_t *poller, gw_state_t *state)
{
    pthread_mutex_lock(&poller->lock);
    gw_state_t *old = poller->current;
    poller->current = state;
    atomic_store(&poller->answered_ms, clock_mono_ms());
    atomic_fetch_add(&poller->version, 1);
    pthread_cond_broadcast(&poller->changed);
    pthread_mutex_unlock(&poller->lock);

    /* Requests still using the old snapshot hold their own references. */
    gw_state_unref(old);
}

/* One long poll. Returns the new generation, or -1 when the caller should
 * back off (failure, or a 200 that repeats the generation it has). */
static int64_t gw_poller_once(gw_poller_t *poller, int64_t generation)
{
    char path[128], err[256];
    api_result_t res;
    int64_t next = -1;

    snprintf(path, sizeof(path), "/api/v1/gateway/state?since=%" PRId64 "&wait=%d", generation,
             GW_POLL_WAIT_S);
    if (api_call(poller->server_url, poller->api_token, "GET", path, NULL, GW_POLL_TIMEOUT_MS,
                 &res) != 0) {
        gw_poller_failed(poller, res.error);
        return -1;
    }

    if (res.status == 304) {
        next = generation;
        gw_poller_answered(poller);
    } else if (res.status == 401 || res.status == 403) {
        gw_poller_rejected(poller, res.status, res.error[0] ? res.error : "no detail");
    } else if (res.status != 200) {
        gw_poller_failed(poller, res.error);
    } else {
        gw_state_t *state = gw_state_from_json(res.body, err, sizeof(err));
        if (state == NULL) {
            gw_poller_failed(poller, err);
        } else if (gw_state_generation(state) == generation) {
            /* The server must hold the poll open until something changes. */
            gw_state_unref(state);
            gw_poller_failed(poller, "the server answered 200 with an unchanged generation");
        } else {
            next = gw_state_generation(state);
            log_debug("gateway", "state generation %" PRId64, next);
            gw_poller_publish(poller, state);
        }
    }

    if (next >= 0 && poller->failures > 0) {
        log_info("gateway", "polling the state works again after %zu failures",
                 poller->failures);
        poller->failures = 0;
    }
    api_result_free(&res);
    return next;
}

static void *gw_poller_thread(void *arg)
{
    gw_poller_t *poller = arg;
    int64_t generation = -1;

    while (!gw_poller_stopping(poller)) {
        int64_t next = gw_poller_once(poller, generation);
        if (next >= 0)
            generation = next;
        else if (gw_poller_backoff(poller))
            break;
    }

    gw_poller_release(poller);
    return NULL;
}

gw_poller_t *gw_poller_start(const char *server_url, const char *api_token, char *err,
                             size_t err_size)
{
    pthread_condattr_t attr;
    pthread_attr_t thread_attr;
    pthread_t thread;
    gw_poller_t *poller = calloc(1, sizeof(*poller));

    if (poller == NULL) {
        snprintf(err, err_size, "out of memory starting the state poller");
        return NULL;
    }
    atomic_init(&poller->refs, 2);
    atomic_init(&poller->answered_ms, 0);
    atomic_init(&poller->version, 0);
    pthread_mutex_init(&poller->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&poller->changed, &attr);
    pthread_condattr_destroy(&attr);
    poller->server_url = strdup(server_url);
    poller->api_token = api_token ? strdup(api_token) : NULL;
    if (poller->server_url == NULL || (api_token != NULL && poller->api_token == NULL)) {
        snprintf(err, err_size, "out of memory starting the state poller");
        atomic_store(&poller->refs, 1);
        gw_poller_release(poller);
        return NULL;
    }

    pthread_attr_init(&thread_attr);
    pthread_attr_setdetachstate(&thread_attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&thread, &thread_attr, gw_poller_thread, poller);
    pthread_attr_destroy(&thread_attr);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the state poller thread: %s", strerror(rc));
        atomic_store(&poller->refs, 1);
        gw_poller_release(poller);
        return NULL;
    }
    return poller;
}

int gw_poller_wait_first(gw_poller_t *poller, int64_t timeout_ms, long *rejected_status,
                         char *message, size_t message_size)
{
    struct timespec deadline;
    int result;

    clock_mono_deadline(timeout_ms, &deadline);
    pthread_mutex_lock(&poller->lock);
    while (poller->current == NULL && poller->rejected_status == 0 &&
           pthread_cond_timedwait(&poller->changed, &poller->lock, &deadline) == 0)
        ;
    poller->first_wait_over = 1;
    if (poller->current != NULL) {
        result = 1;
    } else if (poller->rejected_status != 0) {
        *rejected_status = poller->rejected_status;
        snprintf(message, message_size, "%s", poller->rejected_message);
        result = -1;
    } else {
        result = 0;
    }
    pthread_mutex_unlock(&poller->lock);
    return result;
}

gw_state_t *gw_poller_current(gw_poller_t *poller, int64_t *age_ms)
{
    pthread_mutex_lock(&poller->lock);
    gw_state_t *state = poller->current ? gw_state_ref(poller->current) : NULL;
    pthread_mutex_unlock(&poller->lock);

    *age_ms = gw_poller_age_ms(poller);
    return state;
}

int64_t gw_poller_version(const gw_poller_t *poller)
{
    return atomic_load(&((gw_poller_t *)poller)->version);
}

int64_t gw_poller_age_ms(const gw_poller_t *poller)
{
    return clock_mono_ms() - atomic_load(&((gw_poller_t *)poller)->answered_ms);
}

void gw_poller_stop(gw_poller_t *poller)
{
    if (poller == NULL)
        return;

    pthread_mutex_lock(&poller->lock);
    poller->stop = 1;
    pthread_cond_broadcast(&poller->changed);
    pthread_mutex_unlock(&poller->lock);
    gw_poller_release(poller);
}
