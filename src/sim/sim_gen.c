/* Simulated generation: tokens are produced on a timer at the configured
 * rate, written as SSE events or collected into one body, and never block
 * the loop.
 *
 * Lifetime: a generation lives from sim_gen_start until its exchange's close
 * callback. That callback fires once, after the response is finished or when
 * the client disconnects first. The timer handle is then closed, and the
 * timer's close callback frees the memory. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_reply.h"
#include "sim/sim_server.h"
#include "util/clock.h"
#include "util/log.h"

/* Size of the simulated KV cache in tokens. Cache usage is the prompt and
 * generated tokens of running requests divided by this. */
#define SIM_KV_CACHE_TOKENS 65536.0

struct sim_gen {
    sim_t *sim;
    http_exchange_t *ex;       /* NULL once the exchange closed */
    uv_timer_t timer;
    sim_gen_request_t req;
    sim_reply_t reply;
    char id[48];
    int64_t start_us;
    int emitted;               /* tokens produced so far */
    int finished;              /* the whole response was handed to the server */
    int paused;                /* waiting for the drain callback */
    sim_gen_t *prev;
    sim_gen_t *next;
};

static void sim_gen_tick(uv_timer_t *timer);

static void sim_gen_link(sim_t *sim, sim_gen_t *gen)
{
    gen->next = sim->gens;
    if (sim->gens != NULL)
        sim->gens->prev = gen;
    sim->gens = gen;
}

static void sim_gen_unlink(sim_t *sim, sim_gen_t *gen)
{
    if (gen->prev != NULL)
        gen->prev->next = gen->next;
    else
        sim->gens = gen->next;
    if (gen->next != NULL)
        gen->next->prev = gen->prev;
    gen->prev = gen->next = NULL;
}

void sim_gen_update_cache_usage(sim_t *sim)
{
    double tokens = 0.0;

    for (sim_gen_t *gen = sim->gens; gen != NULL; gen = gen->next) {
        if (!gen->finished)
            tokens += gen->req.prompt_tokens + gen->emitted;
    }
    sim->metrics.cache_usage = tokens >= SIM_KV_CACHE_TOKENS ? 1.0 : tokens / SIM_KV_CACHE_TOKENS;
}

static double sim_gen_elapsed_s(const sim_gen_t *gen)
{
    return (double)(clock_mono_us() - gen->start_us) / 1e6;
}

static void sim_gen_timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void sim_gen_on_close(http_exchange_t *ex, int aborted, void *user)
{
    sim_gen_t *gen = user;
    sim_t *sim = gen->sim;

    (void)ex;
    (void)aborted;
    gen->ex = NULL;
    if (!gen->finished) {
        gen->finished = 1;
        sim->metrics.running--;
        sim->metrics.cancelled++;
        sim_say("request %s cancelled after %d of %d tokens: %s", gen->id, gen->emitted,
                gen->req.completion_tokens,
                sim->stopping ? "the simulator is shutting down" : "the client disconnected");
    }

    uv_timer_stop(&gen->timer);
    sim_gen_unlink(sim, gen);
    uv_close((uv_handle_t *)&gen->timer, sim_gen_timer_closed);
}

static void sim_gen_on_drain(http_exchange_t *ex, void *user)
{
    sim_gen_t *gen = user;

    (void)ex;
    if (!gen->paused || gen->ex == NULL)
        return;
    gen->paused = 0;
    sim_gen_tick(&gen->timer);
}

/* Write one SSE event. Returns 0 to go on, 1 to wait for drain, or -1 when
 * the client is gone and the exchange is closing. */
static int sim_gen_write(sim_gen_t *gen, const buf_t *event)
{
    int rc = http_stream_write(gen->ex, event->data, event->len);
    if (rc == 1)
        gen->paused = 1;
    return rc;
}

static void sim_gen_finish(sim_gen_t *gen)
{
    sim_t *sim = gen->sim;
    buf_t out = BUF_INIT;

    gen->finished = 1;
    sim->metrics.running--;
    if (strcmp(gen->req.finish_reason, "length") == 0)
        sim->metrics.success_length++;
    else
        sim->metrics.success_stop++;
    sim_histogram_observe(&sim->metrics.e2e, sim_gen_elapsed_s(gen));

    if (!gen->req.stream) {
        if (sim_reply_body(&gen->reply, &out) != 0) {
            sim_respond_out_of_memory(gen->ex, "a completion body");
        } else {
            http_respond(gen->ex, 200, "application/json", NULL, out.data, out.len);
        }
        buf_free(&out);
        return;
    }

    /* The usage-only event and [DONE] go out even if the writes report the
     * high-water mark, because they are small and the server queues them. */
    if (gen->req.include_usage && sim_reply_usage_event(&gen->reply, &out) == 0 &&
        http_stream_write(gen->ex, out.data, out.len) < 0) {
        buf_free(&out);
        return;
    }
    buf_reset(&out);
    if (sim_reply_done_event(&out) == 0 && http_stream_write(gen->ex, out.data, out.len) < 0) {
        buf_free(&out);
        return;
    }
    buf_free(&out);
    http_stream_end(gen->ex);
}

/* Arm the timer for the next token's due time: token k (1-based) is due
 * k / rate seconds after the start. */
static void sim_gen_schedule(sim_gen_t *gen)
{
    double rate = gen->sim->opt.tokens_per_second;
    int64_t due_us = gen->start_us + (int64_t)((double)(gen->emitted + 1) / rate * 1e6);
    int64_t wait_us = due_us - clock_mono_us();
    uint64_t wait_ms = wait_us <= 0 ? 0 : (uint64_t)((wait_us + 999) / 1000);

    uv_timer_start(&gen->timer, sim_gen_tick, wait_ms, 0);
}

/* Produce the next token. Returns 0 to go on, 1 to wait for drain, -1 when
 * the exchange is ending. */
static int sim_gen_emit(sim_gen_t *gen)
{
    sim_t *sim = gen->sim;
    int index = gen->emitted;
    buf_t event = BUF_INIT;
    int rc = 0;

    gen->emitted++;
    sim->metrics.generation_tokens++;
    if (index == 0)
        sim_histogram_observe(&sim->metrics.ttft, sim_gen_elapsed_s(gen));

    if (gen->req.stream) {
        /* When memory runs out, end the stream early rather than leave it hanging. */
        if (sim_reply_token_event(&gen->reply, index, &event) != 0) {
            log_error("sim", "out of memory building token %d of %s; ending its stream", index,
                      gen->id);
            buf_free(&event);
            gen->finished = 1;
            sim->metrics.running--;
            http_stream_end(gen->ex);
            return -1;
        }
        /* Each token is its own write, so the client sees it arrive alone. */
        rc = sim_gen_write(gen, &event);
    }
    buf_free(&event);
    return rc;
}

static void sim_gen_tick(uv_timer_t *timer)
{
    sim_gen_t *gen = timer->data;
    double rate = gen->sim->opt.tokens_per_second;
    int due;

    if (gen->ex == NULL || gen->finished || gen->paused)
        return;

    /* Tokens due by now. The epsilon absorbs rounding at exact due times. */
    due = (int)(sim_gen_elapsed_s(gen) * rate + 1e-6);
    if (due > gen->req.completion_tokens)
        due = gen->req.completion_tokens;

    while (gen->emitted < due) {
        int rc = sim_gen_emit(gen);

        if (rc < 0)
            return;
        if (rc == 1)
            break;
    }

    if (gen->emitted == gen->req.completion_tokens) {
        sim_gen_finish(gen);
        return;
    }
    if (!gen->paused)
        sim_gen_schedule(gen);
}

void sim_gen_start(sim_t *sim, http_exchange_t *ex, const sim_gen_request_t *req)
{
    sim_gen_t *gen = calloc(1, sizeof(*gen));
    buf_t event = BUF_INIT;

    if (gen == NULL) {
        sim_respond_out_of_memory(ex, "a generation");
        return;
    }

    gen->sim = sim;
    gen->ex = ex;
    gen->req = *req;
    snprintf(gen->id, sizeof(gen->id), "%s-sim%06" PRIu64,
             req->api == SIM_API_CHAT ? "chatcmpl" : "cmpl", ++sim->next_id);
    gen->reply.req = &gen->req;
    gen->reply.id = gen->id;
    gen->reply.created = clock_wall_ms() / 1000;
    gen->reply.model = sim->opt.model;
    gen->start_us = clock_mono_us();
    uv_timer_init(sim->loop, &gen->timer);
    gen->timer.data = gen;

    sim_gen_link(sim, gen);
    sim->requests++;
    sim->metrics.running++;
    sim->metrics.prompt_tokens += (uint64_t)req->prompt_tokens;
    http_exchange_on_close(ex, sim_gen_on_close, gen);
    http_exchange_on_drain(ex, sim_gen_on_drain, gen);

    if (req->stream) {
        if (http_stream_start(ex, 200, "text/event-stream",
                              "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n") < 0)
            return;
        if (req->api == SIM_API_CHAT && sim_reply_role_event(&gen->reply, &event) == 0 &&
            sim_gen_write(gen, &event) < 0) {
            buf_free(&event);
            return;
        }
        buf_free(&event);
    }

    /* The close callback may already have run if the client went away. */
    if (gen->ex != NULL)
        sim_gen_schedule(gen);
}
