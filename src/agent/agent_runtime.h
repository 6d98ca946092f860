/* The interface between an instance's lifecycle and what runs it: a local
 * process or a Docker container. */
#ifndef NIMDECK_AGENT_AGENT_RUNTIME_H
#define NIMDECK_AGENT_AGENT_RUNTIME_H

#include <jansson.h>
#include <stddef.h>

#include "agent/agent_gpus.h"
#include "agent/agent_state.h"

typedef struct agent_runtime_handle agent_runtime_handle_t;

typedef enum { AGENT_STREAM_STDOUT, AGENT_STREAM_STDERR } agent_stream_t;

/* How an instance ended. exit_code is the status for a normal exit and
 * 128 + signal for a signal, as shells and Docker report it. */
typedef struct {
    int signaled;     /* 1 when a signal ended it */
    int status;       /* exit status, when !signaled */
    int signal;       /* signal number, when signaled */
    int exit_code;
    int oom_killed;   /* the kernel's OOM killer ended it (Docker reports this) */
    int detached;     /* it has not ended: the runtime let go of it (see detach), and the
                         other fields are unset */
    char detail[256]; /* the runtime's own account of the end, such as Docker's State.Error
                         or a lost daemon; "" for none */
} agent_exit_t;

/* Cumulative resource counters of one instance, read by sample. A value the
 * runtime cannot read is NAN. The sampler turns two readings into rates. */
typedef struct {
    double cpu_seconds;        /* CPU time used since the start */
    double mem_used_bytes;     /* now */
    double mem_limit_bytes;    /* the instance's memory limit, or NAN for none */
    double net_rx_bytes;
    double net_tx_bytes;
    double disk_read_bytes;
    double disk_write_bytes;
} agent_usage_t;

/* Callbacks a runtime makes from its own thread. on_output gets raw bytes in
 * order per stream (not split into lines). on_exit comes once, after the last
 * on_output; the callbacks must not call back into the runtime's stop. */
typedef struct {
    void *ctx;
    void (*on_output)(void *ctx, agent_stream_t stream, const char *data, size_t len);
    void (*on_exit)(void *ctx, const agent_exit_t *exit);
    /* A new loading reason while the instance starts, such as image pull
     * progress. May be NULL. Called from the runtime's threads, including
     * from inside start. */
    void (*on_reason)(void *ctx, const char *reason);
    /* Whether a stop was requested. A start that takes long (an image pull)
     * checks it at least once a second and gives up. May be NULL. */
    int (*stop_requested)(void *ctx);
} agent_runtime_events_t;

/* The instance a lease requests. Borrowed for the duration of start only. */
typedef struct {
    const char *instance_id;
    const json_t *config;    /* the configuration, secrets included */
    const json_t *env;       /* vault values, then config env (config wins) */
    const char *self_exe;    /* path that replaces a command named "nimdeck" */
    const char *agent_name;  /* names the working directory; NULL for "agent" */
    agent_state_t *state;    /* records the process group until it ends; NULL for none. It
                                must outlive the handle. */
    const char *const *gpu_ids; /* device ids this instance was given, NULL-terminated;
                                   NULL or empty for none */
    const char *agent_key;   /* "name@server", the agent's state key: labels what it starts,
                                so that a later run can adopt it */
    const char *docker_host; /* "unix:///path" of the Docker daemon; NULL for $DOCKER_HOST,
                                else /var/run/docker.sock */
    const agent_gpus_t *gpus; /* the agent's GPU inventory, which names gpu_ids by UUID;
                                 NULL for none */
    const char *advertise_host; /* where the gateway reaches the instance's port; NULL for
                                   127.0.0.1 */
} agent_runtime_spec_t;

/* An instance that an earlier run of this agent started and that a runtime
 * can adopt. */
typedef struct {
    char instance_id[64];
    char ref[80];            /* the runtime's name for it, such as a container id */
    char gpu_ids[256];       /* the agent's ids of the GPUs it was given, comma-separated;
                                "" for none */
} agent_runtime_found_t;

typedef struct {
    const char *name;             /* the configuration's "runtime" value */
    const char *starting_reason;  /* status reason while loading, e.g. "starting process" */
    const char *noun;             /* what an instance is, in messages: "process", "container" */

    /* Start the instance. On success it returns 0 and sets *handle and *port
     * (the port the instance listens on), and events begin. On failure it
     * returns -1 with err naming the cause, and no event is ever made. The
     * calling thread must outlive the instance, because a process runtime
     * ties the child's parent-death signal to it. */
    int (*start)(const agent_runtime_spec_t *spec, const agent_runtime_events_t *events,
                 agent_runtime_handle_t **handle, int *port, char *err, size_t err_size);

    /* Ask the instance to stop: a graceful signal now, a forced kill after
     * grace_ms. Returns at once; on_exit reports the end. Thread-safe; later
     * calls do nothing. */
    void (*stop)(agent_runtime_handle_t *handle, int grace_ms);

    /* Wait until on_exit has returned, then free the handle. */
    void (*release)(agent_runtime_handle_t *handle);

    /* Read the instance's resource counters into out. Returns 0, or -1 when
     * none can be read now. May be NULL for a runtime that cannot. */
    int (*sample)(agent_runtime_handle_t *handle, agent_usage_t *out);

    /* List the instances an earlier run of the agent agent_key started that
     * are still there, running or exited, with their GPUs named by the ids
     * of gpus (the inventory; NULL for none). Returns 0 with *found a new
     * array (free it) of *count entries, or -1 with err naming the cause.
     * May be NULL for a runtime whose instances end with the agent. */
    int (*find_owned)(const char *agent_key, const char *docker_host, const agent_gpus_t *gpus,
                      agent_runtime_found_t **found, size_t *count, char *err, size_t err_size);

    /* Attach to the instance ref that find_owned listed, as if start had
     * started it: on success *handle and *port are set and events begin
     * (with new output only; an exited instance's last lines and its exit
     * come at once). On failure nothing is attached. May be NULL when
     * find_owned is. */
    int (*adopt)(const agent_runtime_spec_t *spec, const char *ref,
                 const agent_runtime_events_t *events, agent_runtime_handle_t **handle,
                 int *port, char *err, size_t err_size);

    /* Let go of the instance and leave it running, for the next run of the
     * agent to adopt: the runtime stops watching it, and on_exit comes with
     * exit->detached set instead of an exit. A stop sent earlier goes on,
     * and its end is reported as usual. Returns at once; thread-safe. May
     * be NULL, and is when find_owned is: the agent then stops such
     * instances when it stops. */
    void (*detach)(agent_runtime_handle_t *handle);
} agent_runtime_t;

extern const agent_runtime_t agent_runtime_process;
extern const agent_runtime_t agent_runtime_docker;

/* The runtime named name, or NULL when this agent has none by that name. */
const agent_runtime_t *agent_runtime_find(const char *name);

#endif
