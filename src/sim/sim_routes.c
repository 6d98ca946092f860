/* Request routing and the simulator's small endpoints: health, models,
 * version, metadata, metrics and embeddings. Completions go to sim_gen.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sim/sim_embed.h"
#include "sim/sim_server.h"
#include "util/log.h"

#define SIM_RELEASE "0.1.0"
#define SIM_PROFILE_ID "sim0000"
#define SIM_PROFILE_NAME "simulator-fp16-tp1"

typedef void (*sim_route_fn)(sim_t *sim, http_exchange_t *ex, const http_request_t *req);

typedef struct {
    const char *method;
    const char *path;
    sim_route_fn handle;
    int while_loading;        /* served before the simulated model is ready */
} sim_route_t;

void sim_respond_out_of_memory(http_exchange_t *ex, const char *body_kind)
{
    log_error("sim", "out of memory building %s; responding with 500", body_kind);
    http_respond_error(ex, 500, "internal_error", "out of memory", NULL);
}

/* Send root (taking ownership) as a JSON body. */
static void sim_respond_json(http_exchange_t *ex, int status, json_t *root,
                             const char *extra_headers)
{
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;

    json_decref(root);
    if (text == NULL) {
        sim_respond_out_of_memory(ex, "a JSON response");
        return;
    }
    http_respond(ex, status, "application/json", extra_headers, text, strlen(text));
    free(text);
}

static void sim_respond_error_with(http_exchange_t *ex, const sim_error_t *err,
                                   const char *extra)
{
    buf_t body = BUF_INIT;

    log_debug("sim", "rejected request: %d %s: %s", err->status, err->code, err->message);
    if (sim_error_to_json(err, &body) != 0) {
        sim_respond_out_of_memory(ex, "an error response");
    } else {
        http_respond(ex, err->status, "application/json", extra, body.data, body.len);
    }
    buf_free(&body);
}

void sim_respond_error(http_exchange_t *ex, const sim_error_t *err)
{
    sim_respond_error_with(ex, err, err->status == 503 ? "Retry-After: 1\r\n" : NULL);
}

static void sim_live(sim_t *sim, http_exchange_t *ex, const http_request_t *req)
{
    (void)sim;
    (void)req;
    sim_respond_json(ex, 200,
                     json_pack("{s:s, s:s, s:b}", "object", "health.response", "message", "live",
                               "live", 1),
                     NULL);
}

static void sim_ready(sim_t *sim, http_exchange_t *ex, const http_request_t *req)
{
    (void)req;
    sim_respond_json(ex, sim->ready ? 200 : 503,
                     json_pack("{s:s, s:s, s:b}", "object", "health.response", "message",
                               sim->ready ? "ready" : "not ready", "ready", sim->ready),
                     NULL);
}

static void sim_models(sim_t *sim, http_exchange_t *ex, const http_request_t *req)
{
    (void)req;
    sim_respond_json(ex, 200,
                     json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:s, s:n, s:i, s:b, s:s, s:[]}]}",
                               "object", "list", "data", "id", sim->opt.model, "object", "model",
                               "created", (json_int_t)(sim->start_wall_ms / 1000), "owned_by",
                               "nimdeck-simulator", "root", sim->opt.model, "parent",
                               "max_model_len", SIM_MAX_MAX_TOKENS * 2, "simulator", 1,
                               "description", "nimdeck's NIM simulator, not a model",
                               "permission"),
                     NULL);
}

static void sim_version(sim_t *sim, http_exchange_t *ex, const http_request_t *req)
{
    (void)sim;
    (void)req;
    sim_respond_json(ex, 200,
                     json_pack("{s:s, s:s, s:b}", "release", SIM_RELEASE, "api", "1.0.0",
                               "simulator", 1),
                     NULL);
}

static void sim_metadata(sim_t *sim, http_exchange_t *ex, const http_request_t *req)
{
    (void)req;
    sim_respond_json(ex, 200,
                     json_pack("{s:s, s:b, s:s, s:s, s:[{s:s, s:s}], s:{s:s, s:s}}", "version",
                               SIM_RELEASE, "simulator", 1, "description",
                               "nimdeck's NIM simulator, not a model", "repository_override", "",
                               "modelInfo", "shortName", sim->opt.model, "modelUrl", "",
                               "selectedProfile", "id", SIM_PROFILE_ID, "name",
                               SIM_PROFILE_NAME),
                     NULL);
}

static void sim_metrics(sim_t *sim, http_exchange_t *ex, const http_request_t *req)
{
    buf_t text = BUF_INIT;

    (void)req;
    sim_gen_update_cache_usage(sim);
    if (sim_metrics_format(&sim->metrics, sim->opt.model, &text) != 0) {
        sim_respond_out_of_memory(ex, "the metrics text");
    } else {
        http_respond(ex, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text.data,
                     text.len);
    }
    buf_free(&text);
}

static void sim_generate(sim_t *sim, http_exchange_t *ex, const http_request_t *req,
                         sim_api_t api)
{
    sim_gen_request_t gen;
    sim_error_t err;

    if (sim_gen_request_parse(api, req->body, req->body_len, sim->opt.model, &gen, &err) != 0) {
        sim_respond_error(ex, &err);
        return;
    }
    sim_gen_start(sim, ex, &gen);
}

static void sim_chat(sim_t *sim, http_exchange_t *ex, const http_request_t *req)
{
    sim_generate(sim, ex, req, SIM_API_CHAT);
}

static void sim_completions(sim_t *sim, http_exchange_t *ex, const http_request_t *req)
{
    sim_generate(sim, ex, req, SIM_API_COMPLETION);
}

static void sim_embeddings(sim_t *sim, http_exchange_t *ex, const http_request_t *req)
{
    sim_embed_request_t embed;
    sim_error_t err;
    buf_t body = BUF_INIT;

    if (sim_embed_request_parse(req->body, req->body_len, sim->opt.model,
                                sim->opt.embedding_dim, &embed, &err) != 0) {
        sim_respond_error(ex, &err);
        return;
    }

    if (sim_embed_response(&embed, sim->opt.model, &body) != 0) {
        sim_respond_out_of_memory(ex, "an embeddings response");
    } else {
        sim->requests++;
        sim->metrics.prompt_tokens += (uint64_t)embed.prompt_tokens;
        sim->metrics.success_stop++;
        http_respond(ex, 200, "application/json", NULL, body.data, body.len);
    }
    buf_free(&body);
    sim_embed_request_free(&embed);
}

static const sim_route_t sim_routes[] = {
    {"GET", "/v1/health/live", sim_live, 1},
    {"GET", "/v1/health/ready", sim_ready, 1},
    {"GET", "/v1/models", sim_models, 0},
    {"GET", "/v1/version", sim_version, 0},
    {"GET", "/v1/metadata", sim_metadata, 0},
    {"GET", "/v1/metrics", sim_metrics, 0},
    {"POST", "/v1/chat/completions", sim_chat, 0},
    {"POST", "/v1/completions", sim_completions, 0},
    {"POST", "/v1/embeddings", sim_embeddings, 0},
};

static int sim_text_equals(const char *text, size_t len, const char *literal)
{
    return strlen(literal) == len && memcmp(text, literal, len) == 0;
}

void sim_handle_request(http_exchange_t *ex, void *user)
{
    sim_t *sim = user;
    const http_request_t *req = http_exchange_request(ex);
    const sim_route_t *found = NULL;
    sim_error_t err;

    for (size_t i = 0; i < sizeof(sim_routes) / sizeof(sim_routes[0]); i++) {
        if (sim_text_equals(req->path, req->path_len, sim_routes[i].path)) {
            found = &sim_routes[i];
            break;
        }
    }

    if (found == NULL) {
        sim_error_set(&err, 404, "not_found", NULL,
                      "no endpoint at %.*s; the simulator serves /v1/health/live, "
                      "/v1/health/ready, /v1/models, /v1/chat/completions, /v1/completions, "
                      "/v1/embeddings and /v1/metrics",
                      (int)(req->path_len > 200 ? 200 : req->path_len), req->path);
        sim_respond_error(ex, &err);
        return;
    }

    if (!sim_text_equals(req->method, req->method_len, found->method)) {
        char allow[32];

        snprintf(allow, sizeof(allow), "Allow: %s\r\n", found->method);
        sim_error_set(&err, 405, "method_not_allowed", NULL, "%s takes %s, not %.*s",
                      found->path, found->method,
                      (int)(req->method_len > 20 ? 20 : req->method_len), req->method);
        sim_respond_error_with(ex, &err, allow);
        return;
    }

    if (!sim->ready && !found->while_loading) {
        sim_error_set(&err, 503, "model_not_ready", NULL,
                      "the model is still loading; retry when /v1/health/ready returns 200");
        sim_respond_error(ex, &err);
        return;
    }

    found->handle(sim, ex, req);
}
