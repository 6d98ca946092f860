/* The log shipper: a bounded queue of masked console lines, sent to the
 * server in per-instance batches at most every 250 ms. */
#include "agent/agent_shipper.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_lines.h"
#include "agent/agent_sync.h"
#include "util/api_client.h"
#include "util/clock.h"
#include "util/log.h"

#define AGENT_SHIPPER_INTERVAL_MS 250
#define AGENT_SHIPPER_BATCH_LINES 1000
/* Text per POST. JSON escaping can grow text up to six times ("\u0001"),
 * which keeps a batch under the server's 16 MiB body limit. */
#define AGENT_SHIPPER_BATCH_BYTES (1024u * 1024)
#define AGENT_SHIPPER_MAX_BYTES (8u * 1024 * 1024)
#define AGENT_SHIPPER_WARN_EVERY_MS 30000

typedef struct agent_log_entry {
    struct agent_log_entry *next;
    char instance_id[64];
    char stream[8];
    int64_t time_ms;
    int sent;
    size_t len;
    char text[];
} agent_log_entry_t;

struct agent_shipper {
    char *server_url;
    char *token;
    size_t max_lines;
    pthread_t thread;

    pthread_mutex_t lock;
    pthread_cond_t wake;       /* to the thread: lines, a flush or the stop */
    pthread_cond_t sent;       /* to flushers: a batch went out */
    agent_log_entry_t *head;
    agent_log_entry_t *tail;
    size_t count;
    size_t bytes;
    uint64_t pushed;           /* lines queued since the start */
    uint64_t done;             /* lines sent (or given up on) since the start */
    int flush_requested;
    int stopping;

    int64_t last_warn_ms;      /* only the shipper thread touches these two */
    unsigned failed_batches;
};

int agent_shipper_push(agent_shipper_t *shipper, const char *instance_id, const char *stream,
                       int64_t time_ms, const char *text, size_t len)
{
    agent_log_entry_t *entry;
    int rc = -1;

    pthread_mutex_lock(&shipper->lock);
    if (shipper->count >= shipper->max_lines || shipper->bytes + len > AGENT_SHIPPER_MAX_BYTES)
        goto out;
    if ((entry = malloc(sizeof(*entry) + len + 1)) == NULL)
        goto out;

    entry->next = NULL;
    snprintf(entry->instance_id, sizeof(entry->instance_id), "%s", instance_id);
    snprintf(entry->stream, sizeof(entry->stream), "%s", stream);
    entry->time_ms = time_ms;
    entry->sent = 0;
    entry->len = len;
    memcpy(entry->text, text, len);
    entry->text[len] = '\0';

    if (shipper->tail != NULL)
        shipper->tail->next = entry;
    else
        shipper->head = entry;
    shipper->tail = entry;
    shipper->count++;
    shipper->bytes += len;
    shipper->pushed++;
    pthread_cond_signal(&shipper->wake);
    rc = 0;

out:
    pthread_mutex_unlock(&shipper->lock);
    return rc;
}

static json_t *agent_shipper_line_json(const agent_log_entry_t *entry)
{
    buf_t text = BUF_INIT;
    json_t *line = NULL;

    if (agent_utf8_sanitize(entry->text, entry->len, &text) == 0)
        line = json_pack("{s:I, s:s, s:s#}", "time", (json_int_t)entry->time_ms, "stream",
                         entry->stream, "text", text.data != NULL ? text.data : "", text.len);
    buf_free(&text);
    return line;
}

static void agent_shipper_warn(agent_shipper_t *shipper, const char *instance_id,
                               const char *error)
{
    int64_t now = clock_mono_ms();

    shipper->failed_batches++;
    if (shipper->last_warn_ms != 0 && now - shipper->last_warn_ms < AGENT_SHIPPER_WARN_EVERY_MS)
        return;
    log_warn("agent", "instance %s: cannot send console lines (%u batches lost since the last "
             "warning): %s", instance_id, shipper->failed_batches, error);
    shipper->last_warn_ms = now;
    shipper->failed_batches = 0;
}

/* POST the unsent lines of first's instance, up to one batch. */
static void agent_shipper_send_batch(agent_shipper_t *shipper, agent_log_entry_t *first)
{
    json_t *lines = json_array();
    json_t *body = json_pack("{s:o}", "lines", lines);
    api_result_t res;
    char path[160];
    size_t count = 0, bytes = 0;

    for (agent_log_entry_t *e = first; e != NULL && count < AGENT_SHIPPER_BATCH_LINES; e = e->next) {
        if (e->sent || strcmp(e->instance_id, first->instance_id) != 0)
            continue;
        if (count > 0 && bytes + e->len > AGENT_SHIPPER_BATCH_BYTES)
            break;
        e->sent = 1;
        count++;
        bytes += e->len;
        json_t *line = agent_shipper_line_json(e);
        if (line != NULL)
            json_array_append_new(lines, line);
    }
    if (body == NULL || json_array_size(lines) == 0)
        goto out;

    snprintf(path, sizeof(path), "/api/v1/apps/%s/logs", first->instance_id);
    if (api_call(shipper->server_url, shipper->token, "POST", path, body, 10000, &res) != 0)
        agent_shipper_warn(shipper, first->instance_id, res.error);
    else if (res.status >= 300)
        agent_shipper_warn(shipper, first->instance_id, res.error);
    api_result_free(&res);

out:
    json_decref(body);
}

static void agent_shipper_send_all(agent_shipper_t *shipper, agent_log_entry_t *list)
{
    for (agent_log_entry_t *e = list; e != NULL; e = e->next) {
        if (!e->sent)
            agent_shipper_send_batch(shipper, e);
    }
    while (list != NULL) {
        agent_log_entry_t *next = list->next;
        free(list);
        list = next;
    }
}

/* Wait until the interval since the last send has passed, unless a flush or
 * the stop requests the lines sooner. Called with the lock held. */
static void agent_shipper_pace(agent_shipper_t *shipper, int64_t last_send_ms)
{
    int64_t deadline_ms = last_send_ms + AGENT_SHIPPER_INTERVAL_MS;

    while (!shipper->stopping && !shipper->flush_requested && clock_mono_ms() < deadline_ms) {
        if (agent_cond_wait_until(&shipper->wake, &shipper->lock, deadline_ms) != 0)
            break;
    }
}

static void *agent_shipper_run(void *arg)
{
    agent_shipper_t *shipper = arg;

    pthread_mutex_lock(&shipper->lock);
    for (;;) {
        while (shipper->head == NULL && !shipper->stopping)
            pthread_cond_wait(&shipper->wake, &shipper->lock);
        if (shipper->head == NULL)
            break;

        agent_log_entry_t *list = shipper->head;
        uint64_t taken = shipper->pushed;
        int64_t started_ms = clock_mono_ms();
        shipper->head = shipper->tail = NULL;
        shipper->count = shipper->bytes = 0;
        shipper->flush_requested = 0;
        pthread_mutex_unlock(&shipper->lock);

        agent_shipper_send_all(shipper, list);

        pthread_mutex_lock(&shipper->lock);
        shipper->done = taken;
        pthread_cond_broadcast(&shipper->sent);
        agent_shipper_pace(shipper, started_ms);
    }
    pthread_mutex_unlock(&shipper->lock);
    return NULL;
}

agent_shipper_t *agent_shipper_start(const char *server_url, const char *token, size_t max_lines)
{
    agent_shipper_t *shipper = calloc(1, sizeof(*shipper));

    if (shipper == NULL)
        return NULL;
    shipper->server_url = strdup(server_url);
    shipper->token = strdup(token != NULL ? token : "");
    shipper->max_lines = max_lines > 0 ? max_lines : 10000;
    pthread_mutex_init(&shipper->lock, NULL);
    agent_cond_init(&shipper->wake);
    agent_cond_init(&shipper->sent);
    if (shipper->server_url == NULL || shipper->token == NULL ||
        pthread_create(&shipper->thread, NULL, agent_shipper_run, shipper) != 0) {
        free(shipper->server_url);
        free(shipper->token);
        pthread_mutex_destroy(&shipper->lock);
        pthread_cond_destroy(&shipper->wake);
        pthread_cond_destroy(&shipper->sent);
        free(shipper);
        return NULL;
    }
    return shipper;
}

void agent_shipper_flush(agent_shipper_t *shipper, int timeout_ms)
{
    int64_t deadline_ms = clock_mono_ms() + timeout_ms;

    pthread_mutex_lock(&shipper->lock);
    uint64_t target = shipper->pushed;
    shipper->flush_requested = 1;
    pthread_cond_signal(&shipper->wake);
    while (shipper->done < target && clock_mono_ms() < deadline_ms)
        agent_cond_wait_until(&shipper->sent, &shipper->lock, deadline_ms);
    pthread_mutex_unlock(&shipper->lock);
}

void agent_shipper_stop(agent_shipper_t *shipper)
{
    if (shipper == NULL)
        return;

    pthread_mutex_lock(&shipper->lock);
    shipper->stopping = 1;
    pthread_cond_signal(&shipper->wake);
    pthread_mutex_unlock(&shipper->lock);
    pthread_join(shipper->thread, NULL);

    /* The thread sends everything queued before it ends. */
    memset(shipper->token, 0, strlen(shipper->token));
    free(shipper->server_url);
    free(shipper->token);
    pthread_mutex_destroy(&shipper->lock);
    pthread_cond_destroy(&shipper->wake);
    pthread_cond_destroy(&shipper->sent);
    free(shipper);
}
