/* The image pull progress parser. */
#include "agent/docker_pull.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

void docker_pull_init(docker_pull_t *pull)
{
    memset(pull, 0, sizeof(*pull));
}

void docker_pull_free(docker_pull_t *pull)
{
    buf_free(&pull->pending);
}

static docker_pull_layer_t *docker_pull_layer(docker_pull_t *pull, const char *id)
{
    for (size_t i = 0; i < pull->layer_count; i++) {
        if (strcmp(pull->layers[i].id, id) == 0)
            return &pull->layers[i];
    }
    if (pull->layer_count == DOCKER_PULL_MAX_LAYERS || strlen(id) >= sizeof(pull->layers[0].id))
        return NULL;
    docker_pull_layer_t *layer = &pull->layers[pull->layer_count++];
    snprintf(layer->id, sizeof(layer->id), "%s", id);
    return layer;
}

/* Update the layer counts from a message. Messages about the image as a
 * whole ("Pulling from ...", "Digest: ...") carry no layer status. */
static void docker_pull_track(docker_pull_t *pull, const docker_pull_event_t *event)
{
    static const char *const layer_statuses[] = {
        "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete",
        "Extracting", "Pull complete", "Already exists", NULL,
    };
    const char *status = event->status;
    size_t i = 0;

    if (event->id == NULL || status == NULL)
        return;
    while (layer_statuses[i] != NULL && strcmp(layer_statuses[i], status) != 0)
        i++;
    if (layer_statuses[i] == NULL)
        return;

    docker_pull_layer_t *layer = docker_pull_layer(pull, event->id);
    if (layer == NULL)
        return;
    if (strcmp(status, "Downloading") == 0) {
        layer->downloaded = event->current;
        if (event->total > 0)
            layer->size = event->total;
    } else if (strcmp(status, "Already exists") == 0 || strcmp(status, "Pull complete") == 0) {
        layer->done = 1;
        layer->downloaded = layer->size;
    } else if (strcmp(status, "Download complete") == 0 || strcmp(status, "Extracting") == 0 ||
               strcmp(status, "Verifying Checksum") == 0) {
        layer->downloaded = layer->size;
    }
}

static void docker_pull_take_error(docker_pull_t *pull, const json_t *msg)
{
    const json_t *error = json_object_get(msg, "error");
    const char *text = json_string_value(json_object_get(json_object_get(msg, "errorDetail"),
                                                         "message"));

    if (text == NULL)
        text = json_string_value(error);
    snprintf(pull->error, sizeof(pull->error), "%s",
             text != NULL && text[0] != '\0' ? text : "the registry reported an error");
}

/* Handle one line. Returns 0, or -1 for an error message. */
static int docker_pull_line(docker_pull_t *pull, const char *line, size_t len,
                            docker_pull_event_fn fn, void *ctx)
{
    json_t *msg = json_loadb(line, len, 0, NULL);
    json_t *detail;
    int rc = 0;

    if (!json_is_object(msg)) {
        json_decref(msg);
        return 0;
    }
    if (json_object_get(msg, "error") != NULL || json_object_get(msg, "errorDetail") != NULL) {
        docker_pull_take_error(pull, msg);
        rc = -1;
        goto out;
    }

    detail = json_object_get(msg, "progressDetail");
    docker_pull_event_t event = {
        .id = json_string_value(json_object_get(msg, "id")),
        .status = json_string_value(json_object_get(msg, "status")),
        .current = json_number_value(json_object_get(detail, "current")),
        .total = json_number_value(json_object_get(detail, "total")),
    };
    docker_pull_track(pull, &event);
    if (fn != NULL)
        fn(ctx, &event);

out:
    json_decref(msg);
    return rc;
}

int docker_pull_feed(docker_pull_t *pull, const char *data, size_t len, docker_pull_event_fn fn,
                     void *ctx)
{
    while (len > 0) {
        if (pull->error[0] != '\0')
            return -1;

        const char *newline = memchr(data, '\n', len);
        size_t take = newline != NULL ? (size_t)(newline - data) : len;

        if (!pull->skipping && pull->pending.len + take > DOCKER_PULL_MAX_LINE) {
            pull->skipping = 1;
            buf_reset(&pull->pending);
        }
        if (!pull->skipping && buf_append(&pull->pending, data, take) != 0)
            pull->skipping = 1;
        data += take;
        len -= take;
        if (newline == NULL)
            break;

        data++;
        len--;
        if (!pull->skipping && pull->pending.len > 0 &&
            docker_pull_line(pull, pull->pending.data, pull->pending.len, fn, ctx) != 0)
            return -1;
        pull->skipping = 0;
        buf_reset(&pull->pending);
    }
    return pull->error[0] != '\0' ? -1 : 0;
}

int docker_pull_finish(docker_pull_t *pull, docker_pull_event_fn fn, void *ctx)
{
    int rc = 0;

    if (pull->error[0] != '\0')
        return -1;
    if (!pull->skipping && pull->pending.len > 0)
        rc = docker_pull_line(pull, pull->pending.data, pull->pending.len, fn, ctx);
    pull->skipping = 0;
    buf_reset(&pull->pending);
    return rc;
}

void docker_format_bytes(double bytes, char *out, size_t size)
{
    if (bytes < 1e3)
        snprintf(out, size, "%.0f B", bytes);
    else if (bytes < 1e6)
        snprintf(out, size, "%.1f kB", bytes / 1e3);
    else if (bytes < 1e9)
        snprintf(out, size, "%.1f MB", bytes / 1e6);
    else
        snprintf(out, size, "%.1f GB", bytes / 1e9);
}

void docker_pull_summary(const docker_pull_t *pull, char *out, size_t size)
{
    double downloaded = 0, total = 0;
    size_t done = 0;
    char got[32], of[32];

    out[0] = '\0';
    if (pull->layer_count == 0)
        return;
    for (size_t i = 0; i < pull->layer_count; i++) {
        const docker_pull_layer_t *layer = &pull->layers[i];
        done += layer->done ? 1 : 0;
        downloaded += layer->downloaded;
        total += layer->size;
    }
    docker_format_bytes(downloaded, got, sizeof(got));
    docker_format_bytes(total, of, sizeof(of));
    snprintf(out, size, "%zu of %zu layers done, %s of %s downloaded", done, pull->layer_count,
             got, of);
}
