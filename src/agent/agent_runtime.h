/* The interface between an instance's lifecycle and what runs it: a local
 * process or a Docker container. */
#ifndef NIMDECK_AGENT_AGENT_RUNTIME_H
#define NIMDECK_AGENT_AGENT_RUNTIME_H

#include <jansson.h>
#include <stddef.h>

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
} agent_runtime_spec_t;

typedef struct {
    const char *name;             /* the configuration's "runtime" value */
    const char *starting_reason;  /* status reason while loading, e.g. "starting process" */

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
} agent_runtime_t;

extern const agent_runtime_t agent_runtime_process;

/* The runtime named name, or NULL when this agent has none by that name. */
const agent_runtime_t *agent_runtime_find(const char *name);

#endif
