/* The agent's start and stop, its instance table and shared waits. */
#include "agent/agent.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "agent/agent_sync.h"
#include "util/clock.h"
#include "util/log.h"

#define AGENT_REGISTER_BACKOFF_MAX_MS 10000

agent_instance_t *agent_find_running(agent_t *agent, const char *id)
{
    for (agent_instance_t *inst = agent->running; inst != NULL; inst = inst->next) {
        if (strcmp(inst->id, id) == 0)
            return inst;
    }
    return NULL;
}

void agent_instance_finished(agent_instance_t *inst)
{
    agent_t *agent = inst->agent;

    pthread_mutex_lock(&agent->lock);
    for (agent_instance_t **link = &agent->running; *link != NULL; link = &(*link)->next) {
        if (*link == inst) {
            *link = inst->next;
            break;
        }
    }
    inst->next = agent->finished;
    agent->finished = inst;
    pthread_cond_broadcast(&agent->changed);
    pthread_mutex_unlock(&agent->lock);
}

void agent_reap_finished(agent_t *agent)
{
    pthread_mutex_lock(&agent->lock);
    agent_instance_t *list = agent->finished;
    agent->finished = NULL;
    pthread_mutex_unlock(&agent->lock);

    while (list != NULL) {
        agent_instance_t *next = list->next;
        pthread_join(list->thread, NULL);
        agent_instance_free(list);
        list = next;
    }
}

void agent_wait(agent_t *agent, int ms)
{
    int64_t deadline_ms = clock_mono_ms() + ms;

    pthread_mutex_lock(&agent->lock);
    while (!atomic_load(&agent->stopping) && clock_mono_ms() < deadline_ms)
        agent_cond_wait_until(&agent->changed, &agent->lock, deadline_ms);
    pthread_mutex_unlock(&agent->lock);
}

/* Sleep ms between registration attempts. When SIGINT or SIGTERM is blocked
 * (as in `nimdeck agent`), one that arrives ends the wait: it is put back
 * pending for the caller's own wait, and 1 is returned. */
static int agent_register_pause(int ms)
{
    sigset_t blocked, waited;
    struct timespec pause = {ms / 1000, (long)(ms % 1000) * 1000000};

    pthread_sigmask(SIG_BLOCK, NULL, &blocked);
    if (!sigismember(&blocked, SIGINT) || !sigismember(&blocked, SIGTERM)) {
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
            ;
        return 0;
    }

    sigemptyset(&waited);
    sigaddset(&waited, SIGINT);
    sigaddset(&waited, SIGTERM);
    int sig = sigtimedwait(&waited, NULL, &pause);
    if (sig <= 0)
        return 0;
    kill(getpid(), sig);
    return 1;
}

/* Register, retrying while the server cannot be reached or fails. Returns
 * 0, or -1 with err set when the server rejects the agent. */
static int agent_register_until_done(agent_t *agent, char *err, size_t err_size)
{
    int backoff_ms = 1000;
    long status;

    for (int attempt = 1;; attempt++) {
        if (agent_register(agent, &status, err, err_size) == 0)
            return 0;
        if (status == 401) {
            snprintf(err, err_size, "server %s rejected the API token (HTTP 401); pass an admin's "
                     "api-scope token with --token or NIMDECK_TOKEN", agent->server_url);
            return -1;
        }
        if (status >= 400 && status < 500)
            return -1;

        log_warn("agent", "cannot register agent '%s' with %s (attempt %d): %s; retrying in %d s",
                 agent->name, agent->server_url, attempt, err, backoff_ms / 1000);
        if (agent_register_pause(backoff_ms) != 0) {
            snprintf(err, err_size, "registration with %s interrupted by a signal",
                     agent->server_url);
            return -1;
        }
        backoff_ms = backoff_ms * 2 > AGENT_REGISTER_BACKOFF_MAX_MS ? AGENT_REGISTER_BACKOFF_MAX_MS
                                                                    : backoff_ms * 2;
    }
}

static void agent_free(agent_t *agent)
{
    if (agent == NULL)
        return;
    for (size_t i = 0; agent->queues != NULL && agent->queues[i] != NULL; i++)
        free(agent->queues[i]);
    free(agent->queues);
    if (agent->token != NULL)
        memset(agent->token, 0, strlen(agent->token));
    free(agent->token);
    free(agent->server_url);
    free(agent->name);
    free(agent->hostname);
    free(agent->advertise_host);
    free(agent->docker_host);
    agent_state_close(agent->state);
    agent_gpus_free(agent->gpus);
    agent_final_free(agent);
    pthread_mutex_destroy(&agent->lock);
    pthread_cond_destroy(&agent->changed);
    pthread_cond_destroy(&agent->final_due);
    free(agent);
}

/* Copy the options, filling in defaults. Returns 0, or -1 with err set. */
static int agent_copy_options(agent_t *agent, const agent_options_t *opts, char *err,
                              size_t err_size)
{
    static const char *const default_queues[] = {"default", NULL};
    const char *const *queues = opts->queues != NULL && opts->queues[0] != NULL ? opts->queues
                                                                                 : default_queues;
    char host[256] = "localhost";
    size_t count = 0;

    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    while (queues[count] != NULL)
        count++;

    agent->server_url = strdup(opts->server_url != NULL ? opts->server_url : "http://127.0.0.1:8470");
    agent->token = strdup(opts->api_token);
    agent->hostname = strdup(host);
    agent->name = strdup(opts->name != NULL && opts->name[0] != '\0' ? opts->name : host);
    agent->advertise_host = strdup(opts->advertise_host != NULL ? opts->advertise_host : "127.0.0.1");
    agent->metrics_interval_s = opts->metrics_interval_s > 0 ? opts->metrics_interval_s : 5;
    if (opts->docker_host != NULL && (agent->docker_host = strdup(opts->docker_host)) == NULL)
        goto oom;
    agent->queues = calloc(count + 1, sizeof(*agent->queues));
    if (agent->server_url == NULL || agent->token == NULL || agent->hostname == NULL ||
        agent->name == NULL || agent->advertise_host == NULL || agent->queues == NULL)
        goto oom;
    for (size_t i = 0; i < count; i++) {
        if ((agent->queues[i] = strdup(queues[i])) == NULL)
            goto oom;
    }

    /* A trailing slash would double the one every API path starts with. */
    size_t len = strlen(agent->server_url);
    while (len > 0 && agent->server_url[len - 1] == '/')
        agent->server_url[--len] = '\0';
    return 0;

oom:
    snprintf(err, err_size, "out of memory copying the agent options");
    return -1;
}

/* Start the shipper, the final status sender, the work poll and the
 * metrics sampler. */
static int agent_start_threads(agent_t *agent, char *err, size_t err_size)
{
    agent->shipper = agent_shipper_start(agent->server_url, agent->token, 0);
    if (agent->shipper == NULL) {
        snprintf(err, err_size, "cannot start the log shipper thread");
        return -1;
    }
    if (pthread_create(&agent->final_thread, NULL, agent_final_run, agent) != 0) {
        snprintf(err, err_size, "cannot start the status report thread");
        return -1;
    }
    agent->final_started = 1;
    if (pthread_create(&agent->poll_thread, NULL, agent_poll_run, agent) != 0) {
        snprintf(err, err_size, "cannot start the work poll thread");
        return -1;
    }
    agent->poll_started = 1;
    if (pthread_create(&agent->metrics_thread, NULL, agent_metrics_run, agent) != 0) {
        snprintf(err, err_size, "cannot start the metrics thread");
        return -1;
    }
    agent->metrics_started = 1;
    return 0;
}

static void agent_log_started(agent_t *agent)
{
    buf_t queues = BUF_INIT;
    char id[sizeof(agent->id)];

    agent_copy_id(agent, id, sizeof(id));
    for (size_t i = 0; agent->queues[i] != NULL; i++)
        buf_printf(&queues, "%s%s", i > 0 ? ", " : "", agent->queues[i]);
    log_info("agent", "agent %s ('%s') registered with %s; serving queues: %s", id,
             agent->name, agent->server_url, queues.data != NULL ? queues.data : "");
    buf_free(&queues);
}

agent_t *agent_start(const agent_options_t *opts, char *err, size_t err_size)
{
    agent_t *agent;
    ssize_t len;

    if (opts->api_token == NULL || opts->api_token[0] == '\0') {
        snprintf(err, err_size, "missing API token: pass an admin's api-scope token with --token "
                 "or NIMDECK_TOKEN");
        return NULL;
    }
    if ((agent = calloc(1, sizeof(*agent))) == NULL) {
        snprintf(err, err_size, "out of memory starting the agent");
        return NULL;
    }
    pthread_mutex_init(&agent->lock, NULL);
    agent_cond_init(&agent->changed);
    agent_cond_init(&agent->final_due);
    atomic_init(&agent->stopping, 0);
    if (agent_copy_options(agent, opts, err, err_size) != 0)
        goto fail;
    /* The registration sends the inventory, so it comes first. */
    if ((agent->gpus = agent_gpus_open(opts->gpus, err, err_size)) == NULL)
        goto fail;

    /* Resolved now: /proc/self/exe names a deleted file after an upgrade. */
    len = readlink("/proc/self/exe", agent->self_exe, sizeof(agent->self_exe) - 1);
    agent->self_exe[len > 0 ? len : 0] = '\0';

    /* Before anything runs: kills what a crashed run of this agent left.
     * The state is per name and server, so agents of two servers on one
     * machine (two `nimdeck up`, each naming its agent after the host) do
     * not share it. */
    const char *server = strstr(agent->server_url, "://");
    snprintf(agent->key, sizeof(agent->key), "%s@%s", agent->name,
             server != NULL ? server + 3 : agent->server_url);
    agent->state = agent_state_open(agent->key);
    /* Containers, by contrast, are adopted: listed before the registration
     * so that the server keeps their instances. */
    agent_adopt_find(agent);

    if (agent_register_until_done(agent, err, err_size) != 0)
        goto fail;
    agent_adopt_launch(agent);
    if (agent_start_threads(agent, err, err_size) != 0) {
        agent_stop(agent);
        return NULL;
    }
    agent_log_started(agent);
    return agent;

fail:
    agent_adopt_forget(agent);
    agent_free(agent);
    return NULL;
}

/* Stop every instance, or detach from it where its runtime leaves it
 * running (containers), and wait for their threads. */
static void agent_stop_instances(agent_t *agent)
{
    pthread_mutex_lock(&agent->lock);
    for (agent_instance_t *inst = agent->running; inst != NULL; inst = inst->next)
        agent_instance_request_stop(inst, 1);
    while (agent->running != NULL)
        pthread_cond_wait(&agent->changed, &agent->lock);
    pthread_mutex_unlock(&agent->lock);
    agent_reap_finished(agent);
}

void agent_stop(agent_t *agent)
{
    char id[sizeof(agent->id)];

    if (agent == NULL)
        return;

    agent_copy_id(agent, id, sizeof(id));
    log_info("agent", "agent %s: stopping", id);
    pthread_mutex_lock(&agent->lock);
    atomic_store(&agent->stopping, 1);
    pthread_cond_broadcast(&agent->changed);
    pthread_mutex_unlock(&agent->lock);

    /* No new lease may start once the instances are being stopped. */
    if (agent->poll_started)
        pthread_join(agent->poll_thread, NULL);
    agent_stop_instances(agent);
    if (agent->final_started) {
        agent_final_close(agent);
        pthread_join(agent->final_thread, NULL);
    }
    if (agent->metrics_started)
        pthread_join(agent->metrics_thread, NULL);
    agent_shipper_stop(agent->shipper);

    log_info("agent", "agent %s: stopped", agent->id);
    agent_free(agent);
}
