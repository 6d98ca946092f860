/* The agent: registers with the server, takes instances from its queues and
 * runs them through a runtime, streams console logs and machine metrics. */
#ifndef NIMDECK_AGENT_AGENT_H
#define NIMDECK_AGENT_AGENT_H

#include <stddef.h>

typedef struct agent agent_t;

typedef struct {
    const char *server_url;      /* e.g. "http://127.0.0.1:8470" */
    const char *api_token;       /* api-scope token of an admin */
    const char *name;            /* default: the host name */
    const char *const *queues;   /* NULL-terminated; default {"default"} */
    const char *advertise_host;  /* address the gateway uses to reach instances; default "127.0.0.1" */
    int metrics_interval_s;      /* default 5 */
    const char *gpus;            /* --gpus: "all" (NULL), "none" or device ids "0,1" */
    const char *docker_host;     /* --docker-host "unix:///path"; NULL for $DOCKER_HOST, else
                                    /var/run/docker.sock */
} agent_options_t;

agent_t *agent_start(const agent_options_t *opts, char *err, size_t err_size);

/* Stop every process instance (reason "agent stopped") and let go of the
 * containers, which keep running without a final status for the next start
 * of the agent to adopt; then stop the threads and free the agent. */
void agent_stop(agent_t *agent);

/* `nimdeck agent ...`: start, wait for SIGINT/SIGTERM, stop. */
int agent_main(int argc, char **argv);

#endif
