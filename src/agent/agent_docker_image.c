/* The image step of a docker start: check that the image is present and
 * pull it with the registry login, reporting progress as it goes. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_docker_internal.h"
#include "agent/docker_auth.h"
#include "agent/docker_pull.h"
#include "util/clock.h"
#include "util/log.h"

/* Progress goes to the loading reason every 2 s and to the console every
 * 10 s; layer completions go to the console as they come. */
#define AGENT_DOCKER_REASON_EVERY_MS 2000
#define AGENT_DOCKER_CONSOLE_EVERY_MS 10000

typedef struct {
    const agent_runtime_events_t *events;
    const char *image;
    docker_pull_t pull;
    int64_t next_reason_ms;
    int64_t next_console_ms;
} agent_docker_pull_ctx_t;

static void agent_docker_console(const agent_runtime_events_t *events, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void agent_docker_console(const agent_runtime_events_t *events, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    events->on_output(events->ctx, AGENT_STREAM_STDOUT, line, (size_t)n);
}

static void agent_docker_reason(const agent_runtime_events_t *events, const char *reason)
{
    if (events->on_reason != NULL)
        events->on_reason(events->ctx, reason);
}

/* Per-layer steps that would flood the console; their bytes show in the
 * periodic summary instead. */
static int agent_docker_is_layer_noise(const docker_pull_event_t *event)
{
    static const char *const noise[] = {
        "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete",
        "Extracting", NULL,
    };

    for (size_t i = 0; event->id != NULL && noise[i] != NULL; i++) {
        if (strcmp(event->status, noise[i]) == 0)
            return 1;
    }
    return 0;
}

static void agent_docker_on_pull_event(void *arg, const docker_pull_event_t *event)
{
    agent_docker_pull_ctx_t *ctx = arg;
    int64_t now = clock_mono_ms();
    char summary[160], reason[800];

    if (event->status != NULL && !agent_docker_is_layer_noise(event))
        agent_docker_console(ctx->events, "docker pull %s: %s%s%s", ctx->image,
                             event->id != NULL ? event->id : "", event->id != NULL ? ": " : "",
                             event->status);

    docker_pull_summary(&ctx->pull, summary, sizeof(summary));
    if (summary[0] == '\0')
        return;
    if (now >= ctx->next_console_ms) {
        ctx->next_console_ms = now + AGENT_DOCKER_CONSOLE_EVERY_MS;
        agent_docker_console(ctx->events, "docker pull %s: %s", ctx->image, summary);
    }
    if (now >= ctx->next_reason_ms) {
        ctx->next_reason_ms = now + AGENT_DOCKER_REASON_EVERY_MS;
        snprintf(reason, sizeof(reason), "pulling image %s: %s", ctx->image, summary);
        agent_docker_reason(ctx->events, reason);
    }
}

static int agent_docker_on_pull_data(void *arg, const char *data, size_t len)
{
    agent_docker_pull_ctx_t *ctx = arg;

    /* An error line ends the transfer: the daemon stops after one anyway. */
    return docker_pull_feed(&ctx->pull, data, len, agent_docker_on_pull_event, ctx);
}

static int agent_docker_pull_cancelled(void *arg)
{
    agent_docker_pull_ctx_t *ctx = arg;

    return ctx->events->stop_requested != NULL && ctx->events->stop_requested(ctx->events->ctx);
}

/* Build "/images/create?fromImage=REPO&tag=TAG". Without a tag Docker would
 * pull every tag of the repository, so "latest" is named. */
static int agent_docker_pull_path(const char *image, buf_t *path)
{
    char repository[512];
    const char *rest;

    docker_image_repository(image, repository, sizeof(repository));
    rest = image + strlen(repository);
    if (buf_append_str(path, "/images/create?fromImage=") != 0 ||
        docker_append_escaped(path, repository) != 0 || buf_append_str(path, "&tag=") != 0)
        return -1;
    return docker_append_escaped(path, rest[0] != '\0' ? rest + 1 : "latest");
}

/* Stream the pull. Returns 0, or -1 with err set. */
static int agent_docker_pull_stream(const docker_client_t *client, agent_docker_pull_ctx_t *ctx,
                                    const char *auth_header, char *err, size_t err_size)
{
    const char *headers[] = {auth_header, NULL};
    buf_t path = BUF_INIT;
    docker_response_t res;
    int rc = -1;

    if (agent_docker_pull_path(ctx->image, &path) != 0) {
        snprintf(err, err_size, "out of memory preparing the pull of %s", ctx->image);
        return -1;
    }
    docker_stream_t request = {
        .method = "POST",
        .path = path.data,
        .headers = auth_header[0] != '\0' ? headers : NULL,
        .on_data = agent_docker_on_pull_data,
        .cancelled = agent_docker_pull_cancelled,
        .ctx = ctx,
    };
    int sent = docker_stream(client, &request, &res);

    if (sent == 0 && res.status == 200)
        docker_pull_finish(&ctx->pull, agent_docker_on_pull_event, ctx);
    if (ctx->pull.error[0] != '\0')
        snprintf(err, err_size, "cannot pull image %s: %s", ctx->image, ctx->pull.error);
    else if (agent_docker_pull_cancelled(ctx))
        snprintf(err, err_size, "stop requested while pulling image %s", ctx->image);
    else if (sent != 0 || res.status != 200)
        snprintf(err, err_size, "cannot pull image %s: %s", ctx->image, res.error);
    else
        rc = 0;
    docker_response_free(&res);
    buf_free(&path);
    return rc;
}

static int agent_docker_pull(const docker_client_t *client, const char *image, const json_t *env,
                             const agent_runtime_events_t *events, char *err, size_t err_size)
{
    agent_docker_pull_ctx_t *ctx = calloc(1, sizeof(*ctx));
    const char *user = NULL, *password = NULL;
    char registry[256], reason[600];
    buf_t auth = BUF_INIT;
    int rc = -1;

    if (ctx == NULL) {
        snprintf(err, err_size, "out of memory preparing the pull of %s", image);
        return -1;
    }
    ctx->events = events;
    ctx->image = image;
    docker_pull_init(&ctx->pull);
    docker_image_registry(image, registry, sizeof(registry));
    int login = docker_auth_find(image, env, &user, &password, err, err_size);
    if (login < 0)
        goto out;
    if (login > 0 && docker_auth_header(user, password, registry, &auth) != 0) {
        snprintf(err, err_size, "out of memory preparing the registry login");
        goto out;
    }

    log_info("agent", "pulling image %s from %s (%s)", image, registry,
             login > 0 ? "with a login" : "anonymously");
    agent_docker_console(events, "docker pull %s: pulling from %s %s", image, registry,
                         login > 0 ? "with a login" : "anonymously");
    snprintf(reason, sizeof(reason), "pulling image %s", image);
    agent_docker_reason(events, reason);
    rc = agent_docker_pull_stream(client, ctx, auth.data != NULL ? auth.data : "", err, err_size);
    if (rc == 0)
        agent_docker_console(events, "docker pull %s: done", image);

out:
    if (auth.data != NULL)
        sodium_memzero(auth.data, auth.len);
    buf_free(&auth);
    docker_pull_free(&ctx->pull);
    free(ctx);
    return rc;
}

/* Whether the image is present. Returns 1, 0, or -1 with err set. */
static int agent_docker_has_image(const docker_client_t *client, const char *image, char *err,
                                  size_t err_size)
{
    buf_t path = BUF_INIT;
    docker_response_t res;
    int rc = -1;

    if (buf_printf(&path, "/images/%s/json", image) != 0) {
        snprintf(err, err_size, "out of memory looking up image %s", image);
        return -1;
    }
    if (docker_call(client, "GET", path.data, NULL, NULL, 30000, &res) != 0)
        snprintf(err, err_size, "cannot look up image %s: %s", image, res.error);
    else if (res.status == 200 || res.status == 404)
        rc = res.status == 200;
    else
        snprintf(err, err_size, "cannot look up image %s: %s", image, res.error);
    docker_response_free(&res);
    buf_free(&path);
    return rc;
}

int agent_docker_ensure_image(const docker_client_t *client, const docker_options_t *opts,
                              const json_t *env, const agent_runtime_events_t *events, char *err,
                              size_t err_size)
{
    if (!opts->pull_always) {
        int present = agent_docker_has_image(client, opts->image, err, err_size);
        if (present != 0)
            return present > 0 ? 0 : -1;
    }
    return agent_docker_pull(client, opts->image, env, events, err, err_size);
}
