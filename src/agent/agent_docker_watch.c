/* Watching a container: follow its logs, wait for its exit, read the exit
 * code and the OOM flag, remove it and report the end, or let go of it
 * when the agent detaches. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_docker_internal.h"
#include "agent/docker_frames.h"
#include "util/log.h"

/* How long the log stream may trail the exit before it is cut off. */
#define AGENT_DOCKER_LOG_DRAIN_S 5

/* While the daemon cannot be reached, the wait is retried this often for
 * this many times (2 minutes) before the container counts as lost. A
 * detach ends the retries within AGENT_DOCKER_DETACH_CHECK_MS. */
#define AGENT_DOCKER_WAIT_RETRY_MS 2000
#define AGENT_DOCKER_WAIT_ATTEMPTS 60
#define AGENT_DOCKER_DETACH_CHECK_MS 100

/* The wait response is one small JSON object; more is not read. */
#define AGENT_DOCKER_WAIT_BODY_MAX 65536

typedef struct {
    agent_runtime_handle_t *h;
    docker_frames_t frames;
} agent_docker_logs_t;

static void agent_docker_on_frame(void *arg, docker_frame_stream_t stream, const char *data,
                                  size_t len)
{
    agent_runtime_handle_t *h = arg;

    h->events.on_output(h->events.ctx,
                        stream == DOCKER_FRAME_STDERR ? AGENT_STREAM_STDERR : AGENT_STREAM_STDOUT,
                        data, len);
}

static int agent_docker_on_log_data(void *arg, const char *data, size_t len)
{
    agent_docker_logs_t *logs = arg;

    if (docker_frames_feed(&logs->frames, data, len, agent_docker_on_frame, logs->h) != 0)
        log_warn("agent", "instance %s: the log stream of container %.12s is not framed; "
                 "reading it raw", logs->h->instance_id, logs->h->container_id);
    return 0;
}

static int agent_docker_logs_cancelled(void *arg)
{
    agent_docker_logs_t *logs = arg;

    return atomic_load(&logs->h->logs_cancel);
}

static void *agent_docker_logs_run(void *arg)
{
    agent_runtime_handle_t *h = arg;
    agent_docker_logs_t logs = {.h = h};
    docker_response_t res;
    char path[300];

    docker_frames_init(&logs.frames, h->tty);
    /* NOTE: Docker stores stdout and stderr apart, so lines written to both
     * within a moment can arrive here in another order than written. */
    snprintf(path, sizeof(path), "/containers/%s/logs?follow=1&stdout=1&stderr=1%s",
             h->container_id, h->logs_query);
    docker_stream_t request = {
        .method = "GET",
        .path = path,
        .on_data = agent_docker_on_log_data,
        .cancelled = agent_docker_logs_cancelled,
        .ctx = &logs,
    };
    if ((docker_stream(&h->client, &request, &res) != 0 || res.status != 200) &&
        !atomic_load(&h->logs_cancel))
        log_warn("agent", "instance %s: the log stream of container %.12s ended: %s",
                 h->instance_id, h->container_id, res.error);
    docker_response_free(&res);
    return NULL;
}

/* Read the wait response: {"StatusCode": N, "Error": {"Message": "..."}}. */
static void agent_docker_read_wait(const buf_t *body, agent_exit_t *result)
{
    json_t *doc = json_loadb(body->data != NULL ? body->data : "", body->len, 0, NULL);
    json_t *code = json_object_get(doc, "StatusCode");
    const char *message = json_string_value(json_object_get(json_object_get(doc, "Error"),
                                                            "Message"));

    if (json_is_integer(code))
        result->status = result->exit_code = (int)json_integer_value(code);
    if (message != NULL && message[0] != '\0')
        snprintf(result->detail, sizeof(result->detail), "%.250s", message);
    json_decref(doc);
}

typedef struct {
    agent_runtime_handle_t *h;
    buf_t body;
} agent_docker_wait_t;

static int agent_docker_on_wait_data(void *arg, const char *data, size_t len)
{
    agent_docker_wait_t *wait = arg;

    if (wait->body.len + len > AGENT_DOCKER_WAIT_BODY_MAX)
        return 0;
    return buf_append(&wait->body, data, len) == 0 ? 0 : -1;
}

static int agent_docker_wait_detached(void *arg)
{
    agent_docker_wait_t *wait = arg;

    return atomic_load(&wait->h->detaching);
}

/* Sleep ms, or less when a detach comes. Returns 1 when detached. */
static int agent_docker_pause(agent_runtime_handle_t *h, int ms)
{
    for (int slept = 0; slept < ms; slept += AGENT_DOCKER_DETACH_CHECK_MS) {
        if (atomic_load(&h->detaching))
            return 1;
        usleep(AGENT_DOCKER_DETACH_CHECK_MS * 1000);
    }
    return atomic_load(&h->detaching);
}

/* Block until the container exits or the agent detaches. Returns 0 with
 * the exit code in result, 1 when detached, or -1 with result->detail
 * saying why no exit can be known. The wait is a stream so that a detach
 * can cut it, because the daemon responds only at the exit. */
static int agent_docker_wait_exit(agent_runtime_handle_t *h, agent_exit_t *result)
{
    char path[160];
    int lost_contact = 0;

    snprintf(path, sizeof(path), "/containers/%s/wait", h->container_id);
    for (int attempt = 1;; attempt++) {
        agent_docker_wait_t wait = {.h = h, .body = BUF_INIT};
        docker_stream_t request = {
            .method = "POST",
            .path = path,
            .on_data = agent_docker_on_wait_data,
            .cancelled = agent_docker_wait_detached,
            .ctx = &wait,
        };
        docker_response_t res;
        int sent = docker_stream(&h->client, &request, &res);
        int rc = 2;

        if (atomic_load(&h->detaching) && (sent != 0 || res.status != 200))
            rc = 1;
        else if (sent == 0 && res.status == 200)
            rc = 0;
        else if (sent == 0 && res.status == 404)
            snprintf(result->detail, sizeof(result->detail), "the container was removed "
                     "outside nimdeck");
        else if (attempt == AGENT_DOCKER_WAIT_ATTEMPTS)
            snprintf(result->detail, sizeof(result->detail), "lost contact with the Docker "
                     "daemon: %.200s", res.error);
        else if (attempt == 1)
            log_warn("agent", "instance %s: waiting for container %.12s failed: %s; retrying "
                     "every %d ms", h->instance_id, h->container_id, res.error,
                     AGENT_DOCKER_WAIT_RETRY_MS);
        if (rc == 2)
            lost_contact = 1;
        if (rc == 0)
            agent_docker_read_wait(&wait.body, result);
        /* A daemon that shuts down closes its API first and then stops its
         * containers (unless live-restore is on), so an exit found after
         * the daemon was unreachable is most likely its doing. */
        if (rc == 0 && lost_contact && result->detail[0] == '\0')
            snprintf(result->detail, sizeof(result->detail), "the Docker daemon stopped or "
                     "restarted while the container ran, which stops its containers unless "
                     "live-restore is on");
        buf_free(&wait.body);
        docker_response_free(&res);

        if (rc != 2)
            return rc;
        if (result->detail[0] != '\0')
            return -1;
        if (agent_docker_pause(h, AGENT_DOCKER_WAIT_RETRY_MS))
            return 1;
    }
}

/* Take the exit code, the OOM flag and the daemon's error from the
 * container's state, which is more precise than the wait response. */
static void agent_docker_read_state(agent_runtime_handle_t *h, agent_exit_t *result)
{
    char err[256];
    long status;
    json_t *doc = agent_docker_inspect(&h->client, h->container_id, &status, err, sizeof(err));
    json_t *state = json_object_get(doc, "State");
    json_t *code = json_object_get(state, "ExitCode");
    const char *error = json_string_value(json_object_get(state, "Error"));

    if (doc == NULL && status == 0 && result->detail[0] == '\0')
        snprintf(result->detail, sizeof(result->detail), "the Docker daemon stopped responding "
                 "as the container exited; a daemon that shuts down stops its containers unless "
                 "live-restore is on");
    if (doc == NULL)
        return;
    if (json_is_integer(code))
        result->status = result->exit_code = (int)json_integer_value(code);
    result->oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
    if (error != NULL && error[0] != '\0')
        snprintf(result->detail, sizeof(result->detail), "%.250s", error);
    json_decref(doc);
}

/* Let the log stream deliver what the container wrote last, then cut it. */
static void agent_docker_join_logs(agent_runtime_handle_t *h, pthread_t logger)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += AGENT_DOCKER_LOG_DRAIN_S;
    if (pthread_timedjoin_np(logger, NULL, &deadline) == 0)
        return;
    atomic_store(&h->logs_cancel, 1);
    pthread_join(logger, NULL);
}

/* End the log stream at once and report the detach: the container runs on. */
static void agent_docker_let_go(agent_runtime_handle_t *h, pthread_t logger, int logging)
{
    agent_exit_t result = {.exit_code = -1, .status = -1, .detached = 1};

    atomic_store(&h->logs_cancel, 1);
    if (logging)
        pthread_join(logger, NULL);
    log_info("agent", "instance %s: left container %.12s running for the next run of the agent "
             "to adopt", h->instance_id, h->container_id);
    h->events.on_exit(h->events.ctx, &result);
}

static void *agent_docker_wait_run(void *arg)
{
    agent_runtime_handle_t *h = arg;
    agent_exit_t result = {.exit_code = -1, .status = -1};
    char err[256];
    pthread_t logger;
    int logging = pthread_create(&logger, NULL, agent_docker_logs_run, h) == 0;

    if (!logging)
        log_error("agent", "instance %s: cannot create the log thread of container %.12s; its "
                  "output is lost", h->instance_id, h->container_id);
    int waited = agent_docker_wait_exit(h, &result);
    if (waited == 1) {
        agent_docker_let_go(h, logger, logging);
        return NULL;
    }
    if (logging)
        agent_docker_join_logs(h, logger);
    if (waited == 0)
        agent_docker_read_state(h, &result);

    if (agent_docker_remove(&h->client, h->container_id, err, sizeof(err)) != 0)
        log_warn("agent", "instance %s: %s", h->instance_id, err);
    log_info("agent", "instance %s: container %.12s ended (exit code %d%s)", h->instance_id,
             h->container_id, result.exit_code, result.oom_killed ? ", killed for lack of memory" : "");
    h->events.on_exit(h->events.ctx, &result);
    return NULL;
}

int agent_docker_watch(agent_runtime_handle_t *h)
{
    return pthread_create(&h->waiter, NULL, agent_docker_wait_run, h) == 0 ? 0 : -1;
}
