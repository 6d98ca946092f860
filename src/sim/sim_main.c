/* `nimdeck sim`: start-up lines, simulated loading, the HTTP server, periodic
 * throughput lines and shutdown on SIGTERM or SIGINT, all on one libuv loop. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sim/sim.h"
#include "sim/sim_server.h"
#include "util/clock.h"
#include "util/log.h"

/* Throughput lines come at most this often, and only after activity. */
#define SIM_STATS_INTERVAL_MS 10000

void sim_say(const char *fmt, ...)
{
    char when[40];
    char text[1024];
    va_list ap;

    clock_format_rfc3339(clock_wall_ms(), when, sizeof(when));
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);

    /* stdout is line-buffered, so each line leaves in one write. */
    printf("INFO %s nimdeck-sim: %s\n", when, text);
}

static void sim_handle_closed(uv_handle_t *handle)
{
    (void)handle;
}

static void sim_on_signal(uv_signal_t *handle, int signum)
{
    sim_t *sim = handle->data;

    if (sim->stopping)
        return;
    sim->stopping = 1;
    sim_say("shutting down (signal %d)", signum);

    uv_close((uv_handle_t *)&sim->sigterm, sim_handle_closed);
    uv_close((uv_handle_t *)&sim->sigint, sim_handle_closed);
    uv_close((uv_handle_t *)&sim->load_timer, sim_handle_closed);
    uv_close((uv_handle_t *)&sim->stats_timer, sim_handle_closed);
    /* Open exchanges get their close callbacks here, which frees every
     * generation still in progress. */
    http_server_stop(sim->server);
    sim->server = NULL;
}

static void sim_on_loaded(uv_timer_t *timer)
{
    sim_t *sim = timer->data;
    double took = (double)(clock_mono_ms() - sim->start_mono_ms) / 1000.0;
    int port = http_server_port(sim->server);

    sim->ready = 1;
    sim_say("Model workspace is now ready. It took %.3f seconds", took);
    sim_say("Loading model weights took 0.0 GB (simulated: there are no weights)");
    sim_say("Serving endpoints: GET /v1/health/live, GET /v1/health/ready, GET /v1/models, "
            "GET /v1/version, GET /v1/metadata, GET /v1/metrics, POST /v1/chat/completions, "
            "POST /v1/completions, POST /v1/embeddings");
    sim_say("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", sim->opt.host, port);
}

static void sim_on_stats(uv_timer_t *timer)
{
    sim_t *sim = timer->data;
    sim_metrics_t *m = &sim->metrics;
    int64_t now = clock_mono_ms();
    double seconds = (double)(now - sim->logged_at_ms) / 1000.0;
    int active = sim->requests != sim->logged_requests || m->running > 0;

    if (active && seconds > 0.0) {
        sim_gen_update_cache_usage(sim);
        sim_say("Avg prompt throughput: %.1f tokens/s, Avg generation throughput: %.1f "
                "tokens/s, Running: %d reqs, Waiting: %d reqs, GPU KV cache usage: %.1f%%",
                (double)(m->prompt_tokens - sim->logged_prompt_tokens) / seconds,
                (double)(m->generation_tokens - sim->logged_generation_tokens) / seconds,
                m->running, m->waiting, m->cache_usage * 100.0);
    }

    sim->logged_requests = sim->requests;
    sim->logged_prompt_tokens = m->prompt_tokens;
    sim->logged_generation_tokens = m->generation_tokens;
    sim->logged_at_ms = now;
}

/* Start listening and arm the signal handlers and timers. Returns 0, or -1
 * after writing the reason to stderr. */
static int sim_start(sim_t *sim)
{
    http_limits_t limits;
    char err[256];
    uint64_t load_ms = (uint64_t)llround(sim->opt.load_seconds * 1000.0);

    http_limits_default(&limits);
    sim->server = http_server_start(sim->loop, sim->opt.host, sim->opt.port, &limits,
                                    sim_handle_request, sim, err, sizeof(err));
    if (sim->server == NULL) {
        /* err names the address and suggests picking another one. */
        log_error("sim", "%s (set the address with --host and --port)", err);
        return -1;
    }
    sim_say("Listening on http://%s:%d; /v1/health/ready returns 200 after %.3f seconds of "
            "simulated loading",
            sim->opt.host, http_server_port(sim->server), sim->opt.load_seconds);

    uv_signal_init(sim->loop, &sim->sigterm);
    uv_signal_init(sim->loop, &sim->sigint);
    sim->sigterm.data = sim;
    sim->sigint.data = sim;
    uv_signal_start(&sim->sigterm, sim_on_signal, SIGTERM);
    uv_signal_start(&sim->sigint, sim_on_signal, SIGINT);

    uv_timer_init(sim->loop, &sim->load_timer);
    uv_timer_init(sim->loop, &sim->stats_timer);
    sim->load_timer.data = sim;
    sim->stats_timer.data = sim;
    uv_timer_start(&sim->load_timer, sim_on_loaded, load_ms, 0);
    uv_timer_start(&sim->stats_timer, sim_on_stats, SIM_STATS_INTERVAL_MS, SIM_STATS_INTERVAL_MS);
    return 0;
}

int sim_main(int argc, char **argv)
{
    sim_t sim;
    uv_loop_t loop;
    char err[512];
    int rc;

    memset(&sim, 0, sizeof(sim));
    rc = sim_options_parse(argc, argv, &sim.opt, err, sizeof(err));
    if (rc == 1) {
        sim_options_usage(stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "nimdeck sim: %s\n", err);
        return 2;
    }

    /* stdout is often a pipe to the agent: send each line as it is written.
     * A reader that goes away must not kill the process with SIGPIPE. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);

    sim_metrics_init(&sim.metrics);
    sim.start_mono_ms = clock_mono_ms();
    sim.start_wall_ms = clock_wall_ms();
    sim.logged_at_ms = sim.start_mono_ms;
    rc = uv_loop_init(&loop);
    if (rc != 0) {
        log_error("sim", "failed to create the event loop: %s", uv_strerror(rc));
        return 1;
    }
    sim.loop = &loop;

    sim_say("this is nimdeck's NIM simulator, not a model (pid %ld)", (long)getpid());
    sim_say("Detected 1 compatible profile(s)");
    sim_say("Selected profile: sim0000 (simulator-fp16-tp1)");
    sim_say("Model %s: %.1f tokens/s per request, ready after %.3f seconds", sim.opt.model,
            sim.opt.tokens_per_second, sim.opt.load_seconds);

    rc = sim_start(&sim);
    if (rc == 0)
        uv_run(&loop, UV_RUN_DEFAULT);

    /* On a failed start nothing but the loop itself needs closing. */
    uv_loop_close(&loop);
    if (rc == 0)
        sim_say("Application shutdown complete");
    return rc == 0 ? 0 : 1;
}
