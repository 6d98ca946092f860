/* Shared state of the agent's threads: the work poll, the instances, the
 * metrics sampler and the log shipper. */
#ifndef NIMDECK_AGENT_AGENT_INTERNAL_H
#define NIMDECK_AGENT_AGENT_INTERNAL_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "agent/agent.h"
#include "agent/agent_gpus.h"
#include "agent/agent_lines.h"
#include "agent/agent_runtime.h"
#include "agent/agent_shipper.h"
#include "agent/agent_state.h"
#include "util/mask.h"

#define AGENT_STOP_GRACE_MS 10000
#define AGENT_ENDED_IDS 128
#define AGENT_STATUS_MAX 16
#define AGENT_TAIL_LINES 5
#define AGENT_MAX_LINE 16384

typedef struct agent_instance agent_instance_t;

/* The final status of an instance that ended here. It is kept so that it
 * can be retried while the server cannot be reached, and sent again when
 * the server still requests a stop of the instance. */
typedef struct {
    char id[64];                   /* "" for an unused slot */
    uint64_t serial;               /* distinguishes a reused slot from the entry a send began with */
    char status[AGENT_STATUS_MAX]; /* "stopped" or "failed" */
    char *reason;                  /* masked, valid UTF-8, or NULL for none */
    int exit_code;                 /* -1 for none */
    int pending;                   /* 1 until the server takes it, rejects it, or retries end */
    int delivered;                 /* the server responded to the last send (accepted or rejected it) */
    int attempts;
    int backoff_ms;
    int64_t next_try_ms;           /* clock_mono_ms times */
    int64_t retry_until_ms;
    int64_t last_sent_ms;
} agent_final_t;

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
    agent_state_t *state;       /* the running process groups, or NULL when none is kept */
    agent_gpus_t *gpus;         /* the GPU inventory; which instance holds which GPU */
    char key[512];              /* "name@server": the state key, and the label of its containers */
    char *docker_host;          /* --docker-host, or NULL for $DOCKER_HOST or the default */

    pthread_t poll_thread;
    pthread_t metrics_thread;
    pthread_t final_thread;
    int poll_started;
    int metrics_started;
    int final_started;

    /* Guards id (rewritten when the agent registers again) and the fields
     * below it. */
    pthread_mutex_t lock;
    pthread_cond_t changed;        /* an instance ended, or the stop began */
    pthread_cond_t final_due;      /* a final status to send, or final_closing set */
    agent_instance_t *running;     /* instances whose thread runs */
    agent_instance_t *finished;    /* instances whose thread has ended, to join */
    agent_final_t ended[AGENT_ENDED_IDS]; /* final statuses of recently ended instances */
    unsigned ended_next;
    uint64_t final_serial;
    int final_closing;             /* all instances stopped, so send what is pending and end */
};

/* One leased instance. Fields after lock are guarded by it. */
struct agent_instance {
    agent_instance_t *next;        /* in agent->running or agent->finished, under agent->lock */
    agent_t *agent;
    char id[64];
    json_t *lease;
    mask_set_t *mask;
    const char **secrets;          /* NULL-terminated, borrowed from lease and agent->token */
    const agent_runtime_t *runtime;
    char **gpu_ids;                /* the GPUs it holds, NULL-terminated; freed on release */
    pthread_t thread;
    agent_lines_t out_lines;       /* touched only by the runtime's thread */
    agent_lines_t err_lines;

    pthread_mutex_t lock;
    pthread_cond_t changed;        /* exit, or a stop request */
    agent_runtime_handle_t *handle;
    int sampling;                  /* the metrics thread reads handle: release waits */
    char adopt_ref[80];            /* a runtime's name of the instance to adopt, "" to start */
    int adopt_ready;               /* the adopted instance was ready before the restart */
    int lease_missing;             /* adopted without its lease: output is not masked, so dropped */
    char *pending_reason;          /* the latest loading reason not yet reported, or NULL */
    int64_t next_reason_ms;        /* no loading reason is reported before this monotonic time */
    int ready;                     /* reported ready: milestones no longer change the reason */
    int port;
    int stop_requested;
    int agent_stopping;            /* the stop comes from agent_stop */
    int exited;
    agent_exit_t exit;
    char *tail[AGENT_TAIL_LINES];  /* last console lines, masked */
    unsigned tail_next;
    size_t dropped_lines;
};

/* Milliseconds between health probes once an instance is ready (10 s).
 * Tests shorten it. */
extern int agent_health_probe_ms;

/* Milliseconds before the first retry of a final status (1 s, doubling up
 * to 30 s). Retries go on for agent_final_retry_window_ms (5 minutes)
 * before the agent gives up. Tests shorten both. */
extern int agent_final_retry_ms;
extern int agent_final_retry_window_ms;

/* agent_report.c: calls to the server. agent_register sends the ids of the
 * instances this agent runs or still owes a final status for, and sets
 * agent->id. It handles the response's "stop" list as the work poll does.
 * That list names instances that ended on the server, for example after the
 * agent was declared lost. It takes agent->lock, so call it without. */
int agent_register(agent_t *agent, long *status, char *err, size_t err_size);

/* Send one status report. Returns 0 when the server took it, 1 when it may
 * be retried (no response or HTTP 5xx), -1 when the server rejected it. */
int agent_report_send(agent_t *agent, const char *instance_id, const char *status,
                      const char *reason, const char *upstream, int exit_code);

/* Report loading or ready, trying three times a second apart unless the
 * agent is stopping. Blocks the caller. */
void agent_report_status(agent_t *agent, const char *instance_id, const char *status,
                         const char *reason, const char *upstream, int exit_code);

/* The same two with the instance's GPU ids (a JSON array of strings, sent
 * as "gpus"; NULL leaves it out). */
int agent_report_send_gpus(agent_t *agent, const char *instance_id, const char *status,
                           const char *reason, const char *upstream, int exit_code,
                           const json_t *gpus);
void agent_report_status_gpus(agent_t *agent, const char *instance_id, const char *status,
                              const char *reason, const char *upstream, int exit_code,
                              const json_t *gpus);

/* Copy agent->id (which a new registration may change) into out. */
void agent_copy_id(agent_t *agent, char *out, size_t size);

/* agent_final.c: final statuses, sent by a thread of their own. */

/* Store the final status of instance id, "stopped" or "failed", with an
 * optional reason (NULL for none) and exit_code (-1 for none). The sender
 * thread posts it at once and retries with backoff for
 * agent_final_retry_window_ms. Takes agent->lock. */
void agent_final_record(agent_t *agent, const char *id, const char *status, const char *reason,
                        int exit_code);

/* Resend the stored final status of an instance that ended here, for a stop
 * request on it, at most every few seconds, and return 1. Returns 0 when id
 * is not among the recently ended. The caller holds agent->lock. */
int agent_final_resend(agent_t *agent, const char *id);

/* Append to ids every instance whose final status the server has not taken
 * yet. The caller holds agent->lock. Returns 0, or -1 when memory runs out. */
int agent_final_append_pending(agent_t *agent, json_t *ids);

/* Thread body of the sender. Once agent_final_close is called, it tries
 * every pending status one last time and ends. */
void *agent_final_run(void *arg);
void agent_final_close(agent_t *agent);
void agent_final_free(agent_t *agent);

/* agent_instance.c: one instance's lifecycle on its own thread. Takes a
 * reference to lease. Returns NULL when memory runs out. */
agent_instance_t *agent_instance_new(agent_t *agent, json_t *lease);

/* Replace the lease of an instance whose thread has not started, with its
 * secrets (adoption fetches the lease after the instance was created).
 * Returns 0, or -1 when memory runs out and the old lease stays. */
int agent_instance_set_lease(agent_instance_t *inst, json_t *lease);

/* agent_instance_reason.c: loading reasons from the runtime (pull
 * progress) and from start-up milestones in console lines. Each is
 * reported at most once a second and never once the instance is ready. */
void agent_instance_on_reason(void *ctx, const char *reason);
void agent_instance_check_milestone(agent_instance_t *inst, const char *line, size_t len);

/* Report the pending reason when one is due. Called by the instance thread
 * with inst->lock held; drops it during the report. Returns the monotonic
 * time of the next due report, or 0 when none is pending. */
int64_t agent_instance_flush_reason(agent_instance_t *inst);

/* agent_adopt.c: adoption of the containers an earlier run of this agent
 * left. agent_adopt_find, before the registration, lists them and adds an
 * instance for each to agent->running, so the registration keeps them.
 * agent_adopt_launch, after it, fetches each lease again and starts the
 * instance threads. */
void agent_adopt_find(agent_t *agent);
void agent_adopt_launch(agent_t *agent);

/* Free the instances agent_adopt_find added when the agent does not start
 * after all. Their containers keep running for the next start. */
void agent_adopt_forget(agent_t *agent);
int agent_instance_launch(agent_instance_t *inst);
void agent_instance_request_stop(agent_instance_t *inst, int agent_stopping);
void agent_instance_free(agent_instance_t *inst);

/* agent.c: the instance table. */
agent_instance_t *agent_find_running(agent_t *agent, const char *id);  /* under agent->lock */
void agent_instance_finished(agent_instance_t *inst);
void agent_reap_finished(agent_t *agent);

/* Sleep up to ms, returning early when the agent stops. */
void agent_wait(agent_t *agent, int ms);

/* agent_poll.c and agent_metrics.c: thread bodies. */
void *agent_poll_run(void *arg);

/* Handle a stop of instance id from the server: stop it when it runs here,
 * send its final status again when it ended here, else report it stopped.
 * Takes agent->lock, so call it without. */
void agent_poll_stop(agent_t *agent, const char *id);
void *agent_metrics_run(void *arg);

#endif
