/* Loading reasons while an instance starts: the runtime's own (image pull
 * progress) and NIM start-up milestones seen in its console lines. The
 * latest one is kept and reported as a repeated `loading` status, at most
 * once a second, until the instance is ready. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "agent/agent_milestone.h"
#include "util/clock.h"
#include "util/log.h"

#define AGENT_REASON_EVERY_MS 1000

/* Keep reason as the pending one, replacing an older one. The caller holds
 * inst->lock. */
static void agent_instance_keep_reason(agent_instance_t *inst, const char *reason)
{
    char *copy;

    if (inst->ready || inst->exited || (copy = strdup(reason)) == NULL)
        return;
    free(inst->pending_reason);
    inst->pending_reason = copy;
    pthread_cond_broadcast(&inst->changed);
}

/* Send one loading report with reason masked and made valid UTF-8. One try:
 * a newer reason follows soon when this one is lost. */
static void agent_instance_send_reason(agent_instance_t *inst, const char *reason)
{
    buf_t masked = BUF_INIT, clean = BUF_INIT;

    if (mask_apply(inst->mask, reason, strlen(reason), &masked) == 0 && masked.data != NULL &&
        agent_utf8_sanitize(masked.data, masked.len, &clean) == 0 && clean.data != NULL)
        agent_report_send(inst->agent, inst->id, "loading", clean.data, NULL, -1);
    buf_free(&masked);
    buf_free(&clean);
}

int64_t agent_instance_flush_reason(agent_instance_t *inst)
{
    int64_t now = clock_mono_ms();
    char *reason;

    if (inst->pending_reason == NULL)
        return 0;
    if (inst->ready || inst->exited) {
        free(inst->pending_reason);
        inst->pending_reason = NULL;
        return 0;
    }
    if (now < inst->next_reason_ms)
        return inst->next_reason_ms;

    reason = inst->pending_reason;
    inst->pending_reason = NULL;
    inst->next_reason_ms = now + AGENT_REASON_EVERY_MS;
    pthread_mutex_unlock(&inst->lock);
    agent_instance_send_reason(inst, reason);
    free(reason);
    pthread_mutex_lock(&inst->lock);
    return inst->pending_reason != NULL ? inst->next_reason_ms : 0;
}

/* A runtime's reason may come from inside start, before the instance
 * thread waits for anything, so a due one is sent from the caller. */
void agent_instance_on_reason(void *ctx, const char *reason)
{
    agent_instance_t *inst = ctx;

    pthread_mutex_lock(&inst->lock);
    agent_instance_keep_reason(inst, reason);
    agent_instance_flush_reason(inst);
    pthread_mutex_unlock(&inst->lock);
}

/* Milestones come on the runtime's output thread, which must keep reading:
 * the instance thread sends them. */
void agent_instance_check_milestone(agent_instance_t *inst, const char *line, size_t len)
{
    char reason[AGENT_MILESTONE_MAX + 1];

    if (!agent_milestone_match(line, len, reason, sizeof(reason)))
        return;
    pthread_mutex_lock(&inst->lock);
    agent_instance_keep_reason(inst, reason);
    pthread_mutex_unlock(&inst->lock);
}
