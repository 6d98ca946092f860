/* One leased instance's lifecycle, on its own thread: start through the
 * runtime, wait for readiness, watch health, stop on request, report. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_http.h"
#include "agent/agent_internal.h"
#include "agent/agent_secrets.h"
#include "agent/agent_sync.h"
#include "util/clock.h"
#include "util/log.h"

#define AGENT_READY_PROBE_MS 500
#define AGENT_PROBE_TIMEOUT_MS 1000
#define AGENT_HEALTH_FAILURES 3
#define AGENT_TAIL_LINE_MAX 240

/* The final status of an adopted container that the agent stops because
 * the server would not give its lease again. No user requested that stop,
 * so the instance fails, with the reason the server gives the instances a
 * restarted agent no longer runs. */
#define AGENT_ADOPT_ABANDONED_REASON "agent restarted"

int agent_health_probe_ms = 10000;

typedef struct {
    agent_instance_t *inst;
    const char *stream;
} agent_line_sink_t;

static const json_t *agent_instance_config(const agent_instance_t *inst)
{
    return json_object_get(inst->lease, "config");
}

/* Keep a line for the reason of an unexpected exit. */
static void agent_instance_keep_tail(agent_instance_t *inst, const char *text, size_t len)
{
    char *copy = strndup(text, len > AGENT_TAIL_LINE_MAX ? AGENT_TAIL_LINE_MAX : len);

    if (copy == NULL)
        return;
    pthread_mutex_lock(&inst->lock);
    free(inst->tail[inst->tail_next]);
    inst->tail[inst->tail_next] = copy;
    inst->tail_next = (inst->tail_next + 1) % AGENT_TAIL_LINES;
    pthread_mutex_unlock(&inst->lock);
}

/* Queue a masked line, first telling the console how many were dropped
 * while the queue was full. */
static void agent_instance_ship(agent_instance_t *inst, const char *stream, const char *text,
                                size_t len)
{
    agent_shipper_t *shipper = inst->agent->shipper;
    int64_t now = clock_wall_ms();
    size_t dropped;

    pthread_mutex_lock(&inst->lock);
    dropped = inst->dropped_lines;
    pthread_mutex_unlock(&inst->lock);

    if (dropped > 0) {
        char notice[160];
        int n = snprintf(notice, sizeof(notice),
                         "[nimdeck agent: %zu console lines dropped because the queue to the "
                         "server was full]", dropped);
        if (agent_shipper_push(shipper, inst->id, stream, now, notice, (size_t)n) == 0) {
            pthread_mutex_lock(&inst->lock);
            inst->dropped_lines -= dropped;
            pthread_mutex_unlock(&inst->lock);
        }
    }

    if (agent_shipper_push(shipper, inst->id, stream, now, text, len) != 0) {
        pthread_mutex_lock(&inst->lock);
        if (inst->dropped_lines++ == 0)
            log_warn("agent", "instance %s: console line queue is full; dropping lines", inst->id);
        pthread_mutex_unlock(&inst->lock);
    }
}

static void agent_instance_on_line(void *ctx, const char *line, size_t len)
{
    agent_line_sink_t *sink = ctx;
    agent_instance_t *inst = sink->inst;
    buf_t masked = BUF_INIT;

    if (mask_apply(inst->mask, line, len, &masked) != 0 || masked.data == NULL) {
        buf_free(&masked);
        return;
    }
    agent_instance_keep_tail(inst, masked.data, masked.len);
    agent_instance_ship(inst, sink->stream, masked.data, masked.len);
    agent_instance_check_milestone(inst, masked.data, masked.len);
    buf_free(&masked);
}

static void agent_instance_on_output(void *ctx, agent_stream_t stream, const char *data, size_t len)
{
    agent_instance_t *inst = ctx;
    int is_out = stream == AGENT_STREAM_STDOUT;
    agent_line_sink_t sink = {inst, is_out ? "stdout" : "stderr"};

    if (inst->lease_missing)
        return;
    if (agent_lines_feed(is_out ? &inst->out_lines : &inst->err_lines, data, len,
                         agent_instance_on_line, &sink) != 0)
        log_warn("agent", "instance %s: out of memory splitting %s; a partial line was dropped",
                 inst->id, sink.stream);
}

static void agent_instance_on_exit(void *ctx, const agent_exit_t *exit)
{
    agent_instance_t *inst = ctx;
    agent_line_sink_t out_sink = {inst, "stdout"}, err_sink = {inst, "stderr"};

    agent_lines_flush(&inst->out_lines, agent_instance_on_line, &out_sink);
    agent_lines_flush(&inst->err_lines, agent_instance_on_line, &err_sink);

    pthread_mutex_lock(&inst->lock);
    inst->exited = 1;
    inst->exit = *exit;
    pthread_cond_broadcast(&inst->changed);
    pthread_mutex_unlock(&inst->lock);
}

/* Stop the instance, or, when the agent stops and the runtime can leave
 * the instance running for the next run of the agent to adopt
 * (containers), let go of it. The caller holds inst->lock. */
static void agent_instance_signal_stop(agent_instance_t *inst)
{
    if (inst->agent_stopping && inst->runtime->detach != NULL)
        inst->runtime->detach(inst->handle);
    else
        inst->runtime->stop(inst->handle, AGENT_STOP_GRACE_MS);
}

void agent_instance_request_stop(agent_instance_t *inst, int agent_stopping)
{
    pthread_mutex_lock(&inst->lock);
    if (agent_stopping)
        inst->agent_stopping = 1;
    if (!inst->stop_requested) {
        inst->stop_requested = 1;
        log_info("agent", "instance %s: stop requested%s", inst->id,
                 agent_stopping ? " because the agent is stopping" : "");
        /* Signal at once from the caller's thread: the instance thread may
         * be inside a health probe for up to a second. */
        if (inst->handle != NULL && !inst->exited)
            agent_instance_signal_stop(inst);
    }
    pthread_cond_broadcast(&inst->changed);
    pthread_mutex_unlock(&inst->lock);
}

/* Report a status with the reason masked and made valid UTF-8. Loading and
 * ready are sent now. A final status (stopped, failed) goes to the sender
 * thread, which retries it and keeps it for a repeated stop request. */
static void agent_instance_report(agent_instance_t *inst, const char *status, const char *reason,
                                  const char *upstream, int exit_code)
{
    buf_t masked = BUF_INIT, clean = BUF_INIT;
    const char *text = NULL;
    int final = strcmp(status, "stopped") == 0 || strcmp(status, "failed") == 0;

    if (reason != NULL && mask_apply(inst->mask, reason, strlen(reason), &masked) == 0 &&
        masked.data != NULL && agent_utf8_sanitize(masked.data, masked.len, &clean) == 0)
        text = clean.data != NULL ? clean.data : "";
    if (final) {
        /* Released first: the server counts the GPUs free again once it has
         * the final status. */
        agent_gpus_release(inst->agent->gpus, inst->id);
        agent_final_record(inst->agent, inst->id, status, text, exit_code);
    } else if (strcmp(status, "loading") == 0) {
        json_t *gpus = agent_gpus_ids_json(inst->gpu_ids);
        agent_report_status_gpus(inst->agent, inst->id, status, text, upstream, exit_code, gpus);
        json_decref(gpus);
    } else {
        agent_report_status(inst->agent, inst->id, status, text, upstream, exit_code);
    }
    buf_free(&masked);
    buf_free(&clean);
}

/* "process exited with status N", "killed by signal NAME", or for an OOM
 * kill "container ran out of memory ...", then the runtime's detail. */
static void agent_instance_exit_summary(const agent_instance_t *inst, const agent_exit_t *exit,
                                        buf_t *out)
{
    const char *noun = inst->runtime->noun != NULL ? inst->runtime->noun : "process";

    if (exit->oom_killed) {
        buf_printf(out, "%s ran out of memory: the kernel's OOM killer ended it (exit status %d)",
                   noun, exit->exit_code);
    } else if (exit->signaled) {
        const char *name = sigabbrev_np(exit->signal);
        if (name != NULL)
            buf_printf(out, "killed by signal SIG%s", name);
        else
            buf_printf(out, "killed by signal %d", exit->signal);
    } else if (exit->exit_code >= 0) {
        buf_printf(out, "%s exited with status %d", noun, exit->status);
    } else {
        buf_printf(out, "%s ended", noun);
    }
    if (exit->detail[0] != '\0')
        buf_printf(out, " (%s)", exit->detail);
}

static void agent_instance_append_tail(agent_instance_t *inst, buf_t *out)
{
    pthread_mutex_lock(&inst->lock);
    int first = 1;
    for (unsigned i = 0; i < AGENT_TAIL_LINES; i++) {
        const char *line = inst->tail[(inst->tail_next + i) % AGENT_TAIL_LINES];
        /* Blank lines carry no information, and a tail of only blank lines would
         * leave "last log lines:" with nothing after it. */
        if (line == NULL || line[strspn(line, " \t\r\n")] == '\0')
            continue;
        buf_printf(out, "%s%s", first ? "; last log lines:\n" : "\n", line);
        first = 0;
    }
    pthread_mutex_unlock(&inst->lock);
}

/* Probe health once and act on the response. Called and returns with the
 * instance lock held; drops it during the probe. */
static void agent_instance_probe(agent_instance_t *inst, int *ready, int *failures,
                                 int *health_failed, int64_t *next_probe_ms)
{
    const char *path = json_string_value(json_object_get(agent_instance_config(inst), "health_path"));
    char url[512];
    long status;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", inst->port,
             path != NULL && path[0] == '/' ? path : "/v1/health/ready");
    pthread_mutex_unlock(&inst->lock);
    status = agent_http_probe(url, AGENT_PROBE_TIMEOUT_MS);
    pthread_mutex_lock(&inst->lock);
    if (inst->exited || inst->stop_requested)
        return;

    /* NOTE: there is no loading deadline: an instance that never passes
     * its health check stays loading until it exits or is stopped, because
     * a NIM's first start may download weights for hours. */
    if (!*ready) {
        *next_probe_ms = clock_mono_ms() + AGENT_READY_PROBE_MS;
        if (status != 200)
            return;
        *ready = 1;
        inst->ready = 1;
        *next_probe_ms = clock_mono_ms() + agent_health_probe_ms;
        pthread_mutex_unlock(&inst->lock);
        log_info("agent", "instance %s: ready on port %d", inst->id, inst->port);
        agent_instance_report(inst, "ready", NULL, NULL, -1);
        pthread_mutex_lock(&inst->lock);
        return;
    }

    *next_probe_ms = clock_mono_ms() + agent_health_probe_ms;
    if (status == 200) {
        *failures = 0;
        return;
    }
    (*failures)++;
    log_warn("agent", "instance %s: health check %s failed (%s; %d in a row)", inst->id, url,
             status == 0 ? "no response within 1 s" : "not HTTP 200", *failures);
    if (*failures >= AGENT_HEALTH_FAILURES && !*health_failed) {
        *health_failed = 1;
        log_error("agent", "instance %s: health check failed %d times in a row; stopping it",
                  inst->id, *failures);
        inst->runtime->stop(inst->handle, AGENT_STOP_GRACE_MS);
    }
}

/* Wait for the exit, probing readiness and then health meanwhile, and send
 * the final report. */
static void agent_instance_supervise(agent_instance_t *inst)
{
    int ready, failures = 0, health_failed = 0;
    int64_t next_probe_ms = clock_mono_ms() + AGENT_READY_PROBE_MS;
    buf_t reason = BUF_INIT;

    pthread_mutex_lock(&inst->lock);
    ready = inst->ready;
    while (!inst->exited) {
        /* The next wake-up: a due loading reason, then the next probe. */
        int64_t wake_ms = agent_instance_flush_reason(inst);
        if (inst->exited)
            break;
        if (!inst->stop_requested && !health_failed) {
            if (clock_mono_ms() >= next_probe_ms) {
                agent_instance_probe(inst, &ready, &failures, &health_failed, &next_probe_ms);
                continue;
            }
            if (wake_ms == 0 || next_probe_ms < wake_ms)
                wake_ms = next_probe_ms;
        }
        if (wake_ms == 0)
            pthread_cond_wait(&inst->changed, &inst->lock);
        else
            agent_cond_wait_until(&inst->changed, &inst->lock, wake_ms);
    }
    int stop_requested = inst->stop_requested, agent_stopping = inst->agent_stopping;
    int detached = inst->exit.detached;
    pthread_mutex_unlock(&inst->lock);

    /* The server keeps the instance as it is, and the next run of the agent
     * adopts it, so no final status goes out. */
    if (detached) {
        log_info("agent", "instance %s: left running without a final status, for the next run "
                 "of the agent to adopt", inst->id);
        return;
    }
    log_info("agent", "instance %s: %s exited (exit code %d)", inst->id,
             inst->runtime->noun != NULL ? inst->runtime->noun : "process", inst->exit.exit_code);
    agent_shipper_flush(inst->agent->shipper, 1000);

    if (health_failed) {
        agent_instance_report(inst, "failed", "health check failed", NULL, inst->exit.exit_code);
    } else if (stop_requested && inst->lease_missing) {
        agent_instance_report(inst, "failed", AGENT_ADOPT_ABANDONED_REASON, NULL,
                              inst->exit.exit_code);
    } else if (stop_requested) {
        agent_instance_report(inst, "stopped", agent_stopping ? "agent stopped" : NULL, NULL,
                              inst->exit.exit_code);
    } else {
        agent_instance_exit_summary(inst, &inst->exit, &reason);
        log_warn("agent", "instance %s: %s without a stop request", inst->id,
                 reason.data != NULL ? reason.data : "ended");
        agent_instance_append_tail(inst, &reason);
        agent_instance_report(inst, "failed", reason.data, NULL, inst->exit.exit_code);
    }
    buf_free(&reason);
}

static int agent_instance_stop_requested(void *ctx)
{
    agent_instance_t *inst = ctx;
    int stop;

    pthread_mutex_lock(&inst->lock);
    stop = inst->stop_requested;
    pthread_mutex_unlock(&inst->lock);
    return stop;
}

/* Report a start or adoption that failed: `stopped` when a stop request
 * cut it short, else `failed` with the cause. */
static void agent_instance_start_failed(agent_instance_t *inst, const char *err, int adopting)
{
    buf_t reason = BUF_INIT;
    int stop, agent_stopping;

    pthread_mutex_lock(&inst->lock);
    stop = inst->stop_requested;
    agent_stopping = inst->agent_stopping;
    pthread_mutex_unlock(&inst->lock);
    if (stop && inst->lease_missing) {
        log_info("agent", "instance %s: not adopted: %s", inst->id, err);
        agent_instance_report(inst, "failed", AGENT_ADOPT_ABANDONED_REASON, NULL, -1);
        return;
    }
    if (stop) {
        log_info("agent", "instance %s: stopped while starting: %s", inst->id, err);
        agent_instance_report(inst, "stopped", agent_stopping ? "agent stopped" : NULL, NULL, -1);
        return;
    }
    buf_printf(&reason, "%s%s", adopting ? "cannot adopt it after an agent restart: " : "", err);
    log_error("agent", "instance %s: cannot start: %s", inst->id, reason.data ? reason.data : err);
    agent_instance_report(inst, "failed", reason.data ? reason.data : err, NULL, -1);
    buf_free(&reason);
}

/* Start through the runtime, or adopt what an earlier run of the agent
 * started, and report loading. Returns 0 when the instance runs, or -1
 * after reporting why it does not. */
static int agent_instance_start(agent_instance_t *inst)
{
    agent_t *agent = inst->agent;
    agent_runtime_spec_t spec = {
        .instance_id = inst->id,
        .config = agent_instance_config(inst),
        .env = json_object_get(inst->lease, "env"),
        .self_exe = agent->self_exe[0] != '\0' ? agent->self_exe : NULL,
        .agent_name = agent->name,
        .state = agent->state,
        .gpu_ids = (const char *const *)inst->gpu_ids,
        .agent_key = agent->key,
        .docker_host = agent->docker_host,
        .gpus = agent->gpus,
        .advertise_host = agent->advertise_host,
    };
    agent_runtime_events_t events = {
        .ctx = inst,
        .on_output = agent_instance_on_output,
        .on_exit = agent_instance_on_exit,
        .on_reason = agent_instance_on_reason,
        .stop_requested = agent_instance_stop_requested,
    };
    agent_runtime_handle_t *handle = NULL;
    char err[512], upstream[300];
    int port = 0, stop_now, rc;
    int adopting = inst->adopt_ref[0] != '\0';

    snprintf(err, sizeof(err), "runtime %s cannot adopt instances", inst->runtime->name);
    if (adopting && inst->runtime->adopt == NULL)
        rc = -1;
    else if (adopting)
        rc = inst->runtime->adopt(&spec, inst->adopt_ref, &events, &handle, &port, err, sizeof(err));
    else
        rc = inst->runtime->start(&spec, &events, &handle, &port, err, sizeof(err));
    if (rc != 0) {
        agent_instance_start_failed(inst, err, adopting);
        return -1;
    }

    pthread_mutex_lock(&inst->lock);
    inst->handle = handle;
    inst->port = port;
    stop_now = inst->stop_requested;
    if (stop_now)
        agent_instance_signal_stop(inst);
    pthread_mutex_unlock(&inst->lock);

    /* An adopted instance that was serving stays active on the server. */
    if (adopting && inst->ready)
        return 0;
    snprintf(upstream, sizeof(upstream), "%s:%d", agent->advertise_host, port);
    agent_instance_report(inst, "loading",
                          adopting ? "adopted after an agent restart" : inst->runtime->starting_reason,
                          upstream, -1);
    return 0;
}

static void *agent_instance_run(void *arg)
{
    agent_instance_t *inst = arg;
    const char *name = json_string_value(json_object_get(agent_instance_config(inst), "runtime"));
    agent_runtime_handle_t *handle;
    int stop_first, agent_stopping;

    inst->runtime = agent_runtime_find(name != NULL ? name : "process");
    if (inst->runtime == NULL) {
        char reason[256];
        snprintf(reason, sizeof(reason), "runtime '%s' is not supported by this agent; it runs "
                 "'process' and 'docker' instances", name);
        log_error("agent", "instance %s: %s", inst->id, reason);
        agent_instance_report(inst, "failed", reason, NULL, -1);
        goto out;
    }

    pthread_mutex_lock(&inst->lock);
    stop_first = inst->stop_requested;
    agent_stopping = inst->agent_stopping;
    pthread_mutex_unlock(&inst->lock);
    /* An adopted container runs already: it is attached and then stopped. */
    if (stop_first && inst->adopt_ref[0] == '\0') {
        log_info("agent", "instance %s: stopped before it started", inst->id);
        agent_instance_report(inst, "stopped", agent_stopping ? "agent stopped" : NULL, NULL, -1);
        goto out;
    }

    if (agent_instance_start(inst) == 0) {
        agent_instance_supervise(inst);
        /* agent_instance_request_stop reads the handle under the lock, and
         * the metrics thread may be sampling it. */
        pthread_mutex_lock(&inst->lock);
        handle = inst->handle;
        inst->handle = NULL;
        while (inst->sampling)
            pthread_cond_wait(&inst->changed, &inst->lock);
        pthread_mutex_unlock(&inst->lock);
        inst->runtime->release(handle);
    }

out:
    agent_instance_finished(inst);
    return NULL;
}

/* Warn once, by variable name, about secrets that console lines may show. */
static void agent_instance_warn_unmaskable(const agent_instance_t *inst)
{
    buf_t names = BUF_INIT;
    size_t count = agent_secrets_unmaskable(inst->lease, &names);

    if (count > 0)
        log_warn("agent", "instance %s: secret values shorter than %d bytes cannot be masked and "
                 "may appear in its console log; variables: %s; use longer secret values",
                 inst->id, MASK_MIN_LEN, names.data != NULL ? names.data : "");
    buf_free(&names);
}

agent_instance_t *agent_instance_new(agent_t *agent, json_t *lease)
{
    agent_instance_t *inst = calloc(1, sizeof(*inst));
    const char *id = json_string_value(json_object_get(lease, "id"));

    if (inst == NULL)
        return NULL;
    inst->agent = agent;
    inst->lease = json_incref(lease);
    snprintf(inst->id, sizeof(inst->id), "%s", id != NULL ? id : "");
    pthread_mutex_init(&inst->lock, NULL);
    agent_cond_init(&inst->changed);

    if (agent_secrets_collect(lease, agent->token, &inst->mask, &inst->secrets) != 0) {
        agent_instance_free(inst);
        return NULL;
    }
    agent_lines_init(&inst->out_lines, AGENT_MAX_LINE, inst->secrets);
    agent_lines_init(&inst->err_lines, AGENT_MAX_LINE, inst->secrets);
    agent_instance_warn_unmaskable(inst);
    return inst;
}

int agent_instance_set_lease(agent_instance_t *inst, json_t *lease)
{
    mask_set_t *mask;
    const char **secrets;

    if (agent_secrets_collect(lease, inst->agent->token, &mask, &secrets) != 0)
        return -1;
    mask_set_free(inst->mask);
    free(inst->secrets);
    json_decref(inst->lease);
    inst->lease = json_incref(lease);
    inst->mask = mask;
    inst->secrets = secrets;
    /* The splitters borrow the list of secrets. */
    agent_lines_free(&inst->out_lines);
    agent_lines_free(&inst->err_lines);
    agent_lines_init(&inst->out_lines, AGENT_MAX_LINE, inst->secrets);
    agent_lines_init(&inst->err_lines, AGENT_MAX_LINE, inst->secrets);
    agent_instance_warn_unmaskable(inst);
    return 0;
}

int agent_instance_launch(agent_instance_t *inst)
{
    return pthread_create(&inst->thread, NULL, agent_instance_run, inst) == 0 ? 0 : -1;
}

void agent_instance_free(agent_instance_t *inst)
{
    if (inst == NULL)
        return;
    for (unsigned i = 0; i < AGENT_TAIL_LINES; i++)
        free(inst->tail[i]);
    agent_lines_free(&inst->out_lines);
    agent_lines_free(&inst->err_lines);
    if (inst->mask != NULL)
        mask_set_free(inst->mask);
    free(inst->secrets);
    free(inst->pending_reason);
    agent_gpus_ids_free(inst->gpu_ids);
    json_decref(inst->lease);
    pthread_mutex_destroy(&inst->lock);
    pthread_cond_destroy(&inst->changed);
    free(inst);
}
