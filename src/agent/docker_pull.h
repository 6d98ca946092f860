/* Reading the progress stream of an image pull: JSON messages, one a line,
 * parsed with state across reads (a read may hold several lines or part of
 * one), with per-layer byte counts for a one-line summary. A message with
 * "error" fails the pull even though the HTTP status was 200. */
#ifndef NIMDECK_AGENT_DOCKER_PULL_H
#define NIMDECK_AGENT_DOCKER_PULL_H

#include <stddef.h>

#include "util/buf.h"

/* Layers tracked for the summary; a larger image still pulls, and the
 * summary then counts only these. */
#define DOCKER_PULL_MAX_LAYERS 256

/* A message line longer than this is dropped (progress lines are about
 * 200 bytes). */
#define DOCKER_PULL_MAX_LINE (64 * 1024)

typedef struct {
    char id[72];
    double downloaded;   /* bytes */
    double size;         /* bytes, 0 while unknown */
    int done;            /* pulled, or already present */
} docker_pull_layer_t;

/* One progress message. Strings are valid only during the callback. */
typedef struct {
    const char *id;      /* a layer id or a tag, or NULL */
    const char *status;  /* "Downloading", "Pull complete", ..., or NULL */
    double current;      /* progressDetail, 0 when absent */
    double total;
} docker_pull_event_t;

typedef void (*docker_pull_event_fn)(void *ctx, const docker_pull_event_t *event);

typedef struct {
    buf_t pending;                 /* the partial line read so far */
    int skipping;                  /* inside a line longer than DOCKER_PULL_MAX_LINE */
    docker_pull_layer_t layers[DOCKER_PULL_MAX_LAYERS];
    size_t layer_count;
    char error[512];               /* the first error message, "" while none */
} docker_pull_t;

void docker_pull_init(docker_pull_t *pull);

/* Parse data and call fn (may be NULL) for every complete message that is
 * not an error. Returns 0, or -1 once an error message has arrived: then
 * pull->error holds its text and later data is ignored. A line that is not
 * a JSON object is skipped. */
int docker_pull_feed(docker_pull_t *pull, const char *data, size_t len, docker_pull_event_fn fn,
                     void *ctx);

/* Parse a last line that had no newline, at the end of the stream. Returns
 * as docker_pull_feed. */
int docker_pull_finish(docker_pull_t *pull, docker_pull_event_fn fn, void *ctx);

/* Write "N of M layers done, X of Y downloaded" into out, or "" before any
 * layer is known. Sizes are decimal (kB, MB, GB), as Docker shows them. */
void docker_pull_summary(const docker_pull_t *pull, char *out, size_t size);

/* Write bytes as "512 B", "1.5 kB", "12.3 MB" or "8.4 GB". */
void docker_format_bytes(double bytes, char *out, size_t size);

void docker_pull_free(docker_pull_t *pull);

#endif
