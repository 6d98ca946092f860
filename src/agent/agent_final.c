/* Final statuses (stopped, failed) of ended instances: a ring of the recent
 * ones and the thread that sends them. A final status that does not reach
 * the server would leave the instance live there, so it is retried with
 * backoff, and sent again whenever the server still requests a stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "agent/agent_sync.h"
#include "util/clock.h"
#include "util/log.h"

#define AGENT_FINAL_BACKOFF_MAX_MS 30000
/* Stop requests repeat on every work poll until the server has the final
 * status. A poll response built just before the status arrived still lists
 * the stop, so a status the server accepted this recently is not resent. */
#define AGENT_FINAL_RESEND_MIN_MS 5000

int agent_final_retry_ms = 1000;
int agent_final_retry_window_ms = 5 * 60 * 1000;

/* What one send needs, copied out of the ring so that the lock is not held
 * across the HTTP call. */
typedef struct {
    char id[64];
    uint64_t serial;
    char status[AGENT_STATUS_MAX];
    char *reason;
    int exit_code;
} agent_final_copy_t;

static agent_final_t *agent_final_find(agent_t *agent, const char *id)
{
    for (unsigned i = 0; i < AGENT_ENDED_IDS; i++) {
        if (agent->ended[i].id[0] != '\0' && strcmp(agent->ended[i].id, id) == 0)
            return &agent->ended[i];
    }
    return NULL;
}

/* Make entry due now, with a fresh retry window. */
static void agent_final_schedule(agent_t *agent, agent_final_t *entry)
{
    int64_t now = clock_mono_ms();

    entry->pending = 1;
    entry->delivered = 0;
    entry->attempts = 0;
    entry->backoff_ms = agent_final_retry_ms;
    entry->next_try_ms = now;
    entry->retry_until_ms = now + agent_final_retry_window_ms;
    pthread_cond_broadcast(&agent->final_due);
}

/* Under agent->lock: the slot for id, reusing its own entry or the oldest. */
static agent_final_t *agent_final_slot(agent_t *agent, const char *id)
{
    agent_final_t *entry = agent_final_find(agent, id);

    if (entry != NULL)
        return entry;
    entry = &agent->ended[agent->ended_next];
    agent->ended_next = (agent->ended_next + 1) % AGENT_ENDED_IDS;
    if (entry->pending)
        log_error("agent", "instance %s: final status %s was never delivered; more than %d "
                  "instances ended since, so it is dropped", entry->id, entry->status,
                  AGENT_ENDED_IDS);
    return entry;
}

void agent_final_record(agent_t *agent, const char *id, const char *status, const char *reason,
                        int exit_code)
{
    char *reason_copy = reason != NULL ? strdup(reason) : NULL;

    if (reason != NULL && reason_copy == NULL)
        log_warn("agent", "instance %s: out of memory keeping the reason of status %s; it is "
                 "reported without one", id, status);

    pthread_mutex_lock(&agent->lock);
    agent_final_t *entry = agent_final_slot(agent, id);
    free(entry->reason);
    snprintf(entry->id, sizeof(entry->id), "%s", id);
    snprintf(entry->status, sizeof(entry->status), "%s", status);
    entry->serial = ++agent->final_serial;
    entry->reason = reason_copy;
    entry->exit_code = exit_code;
    entry->last_sent_ms = 0;
    agent_final_schedule(agent, entry);
    pthread_mutex_unlock(&agent->lock);
}

int agent_final_resend(agent_t *agent, const char *id)
{
    agent_final_t *entry = agent_final_find(agent, id);
    int64_t now = clock_mono_ms();

    if (entry == NULL)
        return 0;
    if (entry->pending)
        return 1;
    if (entry->delivered && now - entry->last_sent_ms < AGENT_FINAL_RESEND_MIN_MS)
        return 1;

    log_info("agent", "instance %s: the server still requests a stop of this ended instance; "
             "sending its final status %s again", id, entry->status);
    agent_final_schedule(agent, entry);
    return 1;
}

int agent_final_append_pending(agent_t *agent, json_t *ids)
{
    for (unsigned i = 0; i < AGENT_ENDED_IDS; i++) {
        const agent_final_t *entry = &agent->ended[i];
        if (entry->pending && json_array_append_new(ids, json_string(entry->id)) != 0)
            return -1;
    }
    return 0;
}

/* Under agent->lock: the pending entry due first, or NULL. */
static agent_final_t *agent_final_next_due(agent_t *agent)
{
    agent_final_t *due = NULL;

    for (unsigned i = 0; i < AGENT_ENDED_IDS; i++) {
        agent_final_t *entry = &agent->ended[i];
        if (entry->pending && (due == NULL || entry->next_try_ms < due->next_try_ms))
            due = entry;
    }
    return due;
}

/* Under agent->lock. Returns 0, or -1 when memory runs out. */
static int agent_final_copy(const agent_final_t *entry, agent_final_copy_t *copy)
{
    snprintf(copy->id, sizeof(copy->id), "%s", entry->id);
    snprintf(copy->status, sizeof(copy->status), "%s", entry->status);
    copy->serial = entry->serial;
    copy->exit_code = entry->exit_code;
    copy->reason = entry->reason != NULL ? strdup(entry->reason) : NULL;
    return entry->reason != NULL && copy->reason == NULL ? -1 : 0;
}

/* Under agent->lock: record the outcome of one send (see agent_report_send). */
static void agent_final_settle(agent_t *agent, const agent_final_copy_t *copy, int rc)
{
    agent_final_t *entry = agent_final_find(agent, copy->id);
    int64_t now = clock_mono_ms();

    /* A newer status for the id replaced the one that was sent. */
    if (entry == NULL || entry->serial != copy->serial)
        return;

    entry->attempts++;
    entry->last_sent_ms = now;
    if (rc <= 0) {
        entry->pending = 0;
        entry->delivered = 1;
        return;
    }
    /* The agent is stopping: agent_final_drain counts what is left. */
    if (agent->final_closing)
        return;
    if (now >= entry->retry_until_ms) {
        entry->pending = 0;
        log_error("agent", "instance %s: giving up on reporting status %s after %d attempts; it "
                  "is sent again when the server next asks to stop the instance", entry->id,
                  entry->status, entry->attempts);
        return;
    }
    entry->next_try_ms = now + entry->backoff_ms;
    log_info("agent", "instance %s: retrying status %s in %d ms (attempt %d failed)", entry->id,
             entry->status, entry->backoff_ms, entry->attempts);
    entry->backoff_ms = entry->backoff_ms * 2 > AGENT_FINAL_BACKOFF_MAX_MS
                            ? AGENT_FINAL_BACKOFF_MAX_MS
                            : entry->backoff_ms * 2;
}

/* Under agent->lock, which it drops during the HTTP call: send entry once.
 * Returns what agent_report_send returns. */
static int agent_final_send(agent_t *agent, agent_final_t *entry)
{
    agent_final_copy_t copy;
    int rc;

    if (agent_final_copy(entry, &copy) != 0) {
        /* Try again later, when memory may be back. */
        entry->next_try_ms = clock_mono_ms() + entry->backoff_ms;
        return 1;
    }
    pthread_mutex_unlock(&agent->lock);
    rc = agent_report_send(agent, copy.id, copy.status, copy.reason, NULL, copy.exit_code);
    pthread_mutex_lock(&agent->lock);
    agent_final_settle(agent, &copy, rc);
    free(copy.reason);
    return rc;
}

/* Under agent->lock: one last try of every pending status, ending at the
 * first that cannot reach the server, because the rest would wait out the
 * same timeout. */
static void agent_final_drain(agent_t *agent)
{
    agent_final_t *entry;
    int lost = 0;

    while ((entry = agent_final_next_due(agent)) != NULL) {
        if (agent_final_send(agent, entry) > 0)
            break;
    }
    for (unsigned i = 0; i < AGENT_ENDED_IDS; i++) {
        if (agent->ended[i].pending)
            lost++;
    }
    if (lost > 0)
        log_error("agent", "agent stopped with %d final statuses not delivered; the server marks "
                  "those instances failed (\"agent restarted\") when an agent with this name "
                  "registers again", lost);
}

void *agent_final_run(void *arg)
{
    agent_t *agent = arg;

    pthread_mutex_lock(&agent->lock);
    while (!agent->final_closing) {
        agent_final_t *due = agent_final_next_due(agent);
        if (due == NULL)
            pthread_cond_wait(&agent->final_due, &agent->lock);
        else if (clock_mono_ms() < due->next_try_ms)
            agent_cond_wait_until(&agent->final_due, &agent->lock, due->next_try_ms);
        else
            agent_final_send(agent, due);
    }
    agent_final_drain(agent);
    pthread_mutex_unlock(&agent->lock);
    return NULL;
}

void agent_final_close(agent_t *agent)
{
    pthread_mutex_lock(&agent->lock);
    agent->final_closing = 1;
    pthread_cond_broadcast(&agent->final_due);
    pthread_mutex_unlock(&agent->lock);
}

void agent_final_free(agent_t *agent)
{
    for (unsigned i = 0; i < AGENT_ENDED_IDS; i++) {
        free(agent->ended[i].reason);
        agent->ended[i].reason = NULL;
    }
}
