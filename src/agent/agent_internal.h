/* Shared state of the agent's threads: the work poll, the instances, the
 * metrics sampler and the log shipper. */
#ifndef NIMDECK_AGENT_AGENT_INTERNAL_H
#define NIMDECK_AGENT_AGENT_INTERNAL_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "agent/agent.h"
#include "agent/agent_lines.h"
#include "agent/agent_runtime.h"
#include "agent/agent_shipper.h"
#include "util/mask.h"

#define AGENT_STOP_GRACE_MS 10000
#define AGENT_ENDED_IDS 128
#define AGENT_TAIL_LINES 5
#define AGENT_MAX_LINE 16384

typedef struct agent_instance agent_instance_t;

struct agent {
    char *server_url;
    char *token;
    char *name;
    char *hostname;
    char *advertise_host;
    char **queues;              /* NULL-terminated */
    int metrics_interval_s;
    char id[128];               /* given by the server at registration */
    char self_exe[PATH_MAX];    /* this binary, for commands named "nimdeck"; "" if unknown */
    atomic_int stopping;
    agent_shipper_t *shipper;

    pthread_t poll_thread;
    pthread_t metrics_thread;
    int poll_started;
    int metrics_started;

    pthread_mutex_t lock;
    pthread_cond_t changed;        /* an instance ended, or the stop began */
    agent_instance_t *running;     /* instances whose thread runs */
    agent_instance_t *finished;    /* instances whose thread has ended, to join */
    char ended[AGENT_ENDED_IDS][64]; /* recently ended ids: repeated stops for them are ignored */
    unsigned ended_next;
};

/* One leased instance. Fields after lock are guarded by it. */
struct agent_instance {
    agent_instance_t *next;        /* in agent->running or agent->finished, under agent->lock */
    agent_t *agent;
    char id[64];
    json_t *lease;
    mask_set_t *mask;
    const char **secrets;          /* NULL-terminated, borrowed from lease */
    const agent_runtime_t *runtime;
    pthread_t thread;
    agent_lines_t out_lines;       /* touched only by the runtime's thread */
    agent_lines_t err_lines;

    pthread_mutex_t lock;
    pthread_cond_t changed;        /* exit, or a stop request */
    agent_runtime_handle_t *handle;
    int port;
    int stop_requested;
    int agent_stopping;            /* the stop comes from agent_stop */
    int exited;
    agent_exit_t exit;
    char *tail[AGENT_TAIL_LINES];  /* last console lines, masked */
    unsigned tail_next;
    size_t dropped_lines;
};

/* Milliseconds between health probes once an instance is ready (10 s);
 * tests shorten it. */
extern int agent_health_probe_ms;

/* agent_report.c: calls to the server. */
int agent_register(agent_t *agent, long *status, char *err, size_t err_size);
void agent_report_status(agent_t *agent, const char *instance_id, const char *status,
                         const char *reason, const char *upstream, int exit_code);

/* agent_instance.c: one instance's lifecycle on its own thread. Takes a
 * reference to lease. Returns NULL when memory runs out. */
agent_instance_t *agent_instance_new(agent_t *agent, json_t *lease);
int agent_instance_launch(agent_instance_t *inst);
void agent_instance_request_stop(agent_instance_t *inst, int agent_stopping);
void agent_instance_free(agent_instance_t *inst);

/* agent.c: the instance table. */
agent_instance_t *agent_find_running(agent_t *agent, const char *id);  /* under agent->lock */
int agent_was_ended(agent_t *agent, const char *id);                    /* under agent->lock */
void agent_mark_ended(agent_t *agent, const char *id);                  /* under agent->lock */
void agent_instance_finished(agent_instance_t *inst);
void agent_reap_finished(agent_t *agent);

/* Sleep up to ms, returning early when the agent stops. */
void agent_wait(agent_t *agent, int ms);

/* agent_poll.c and agent_metrics.c: thread bodies. */
void *agent_poll_run(void *arg);
void *agent_metrics_run(void *arg);

#endif
