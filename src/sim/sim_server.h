/* The running simulator: its state on the libuv loop, shared by the request
 * routes, the generation engine and the entry point. */
#ifndef NIMDECK_SIM_SIM_SERVER_H
#define NIMDECK_SIM_SIM_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "http/http.h"
#include "sim/sim_metrics.h"
#include "sim/sim_options.h"
#include "sim/sim_request.h"

typedef struct sim_gen sim_gen_t;

typedef struct {
    sim_options_t opt;
    uv_loop_t *loop;
    http_server_t *server;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t load_timer;
    uv_timer_t stats_timer;
    int ready;                /* simulated loading is over */
    int stopping;
    int64_t start_mono_ms;
    int64_t start_wall_ms;
    sim_metrics_t metrics;
    sim_gen_t *gens;          /* generations whose exchange is still open */
    uint64_t next_id;
    uint64_t requests;        /* inference requests received */

    /* Totals at the last throughput line, to log only what changed. */
    uint64_t logged_requests;
    uint64_t logged_prompt_tokens;
    uint64_t logged_generation_tokens;
    int64_t logged_at_ms;
} sim_t;

/* Write one NIM-style "INFO <time> nimdeck-sim: text" line to stdout. */
void sim_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The HTTP handler: routes every request of the simulator's server. */
void sim_handle_request(http_exchange_t *ex, void *user);

/* Log the failure and send a 500 because memory ran out while building
 * body_kind ("an embeddings response"). */
void sim_respond_out_of_memory(http_exchange_t *ex, const char *body_kind);

/* Send err as an OpenAI-shaped JSON error. */
void sim_respond_error(http_exchange_t *ex, const sim_error_t *err);

/* Start generating the reply for req on ex, streamed or whole, at the
 * configured token rate. The generation ends the exchange itself and frees
 * itself when the exchange closes, also when the client disconnects first. */
void sim_gen_start(sim_t *sim, http_exchange_t *ex, const sim_gen_request_t *req);

/* Update the simulated KV cache use from the generations in progress. */
void sim_gen_update_cache_usage(sim_t *sim);

#endif
