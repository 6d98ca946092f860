/* GPU-aware leasing: which queued instance fits the free GPUs of the agent
 * that polls for work, the reason shown while one waits for GPUs, and the
 * GPUs an ended instance gives back to its agent's parked work poll. */
#ifndef NIMDECK_SERVER_SERVER_GPUS_H
#define NIMDECK_SERVER_SERVER_GPUS_H

#include <jansson.h>

#include "server/server_internal.h"

/* The state of one lease attempt for the agent of a work poll. */
typedef struct {
    server_t *srv;
    const char *agent;         /* the polling agent's name */
    const json_t *inventory;   /* its GPUs: [{"id", "uuid", ...}] */
    const json_t *free;        /* ids of its free GPUs */
    json_t *agents;            /* every agent's row, read once when first needed; NULL before */
    json_t *waiting;           /* instance id -> reason, for the instances passed over */
} server_gpus_fit_t;

/* Read the work poll's free_gpus value ("0,2"; "" for none) into *out, a
 * new array of ids. Returns 0, or -1 with a 400 naming the bad id in err. */
int server_gpus_parse_free(const char *text, json_t **out, api_error_t *err);

/* A store_lease_fit_fn over a server_gpus_fit_t. It accepts an instance
 * that needs no GPU, or whose request the agent's free GPUs meet. It also
 * accepts one that requests more than the agent has at all, unless another
 * live agent on its queue has enough, so that the agent fails it with a
 * reason. Every other instance is passed over with a reason in waiting. */
int server_gpus_fit(const store_instance_t *inst, void *user);

/* Record the waiting reasons as the status_reason of the instances still
 * queued, then release what fit holds. */
void server_gpus_fit_finish(server_gpus_fit_t *fit);

/* Call after a report ended inst: its GPUs count as free again in the work
 * poll its agent has parked (the agent frees them before it reports the
 * end), and the work polls are evaluated again. */
void server_gpus_released(server_t *srv, const store_instance_t *inst);

/* Check the registration's "gpus" (each item {"id", "uuid"?, "name"?,
 * "mem_total_bytes"?}, ids unique) and "machine" ({"hostname"?, "cpu_count"?,
 * "mem_total_bytes"?}). Returns 0, or -1 with a 400 naming the key. */
int server_gpus_check_registration(const json_t *body, api_error_t *err);

/* Check a status report's "gpus" (an array of device ids, or null).
 * Returns 0, or -1 with a 400 naming the element. */
int server_gpus_check_ids(const json_t *gpus, api_error_t *err);

#endif
