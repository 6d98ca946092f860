/* A client of the Docker Engine API over its unix socket (libcurl with
 * CURLOPT_UNIX_SOCKET_PATH). Paths are unversioned, so the daemon serves
 * them at its own API version. Each call is independent and thread-safe. */
#ifndef NIMDECK_AGENT_DOCKER_CLIENT_H
#define NIMDECK_AGENT_DOCKER_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"

#define DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"

typedef struct {
    char socket_path[108];   /* the size of sun_path */
} docker_client_t;

/* Set the socket from host: "unix:///path/docker.sock". A NULL or empty host
 * takes $DOCKER_HOST, and then DOCKER_DEFAULT_SOCKET. Returns 0, or -1 with
 * err naming the value and the fix (only unix:// sockets are supported). */
int docker_client_init(docker_client_t *client, const char *host, char *err, size_t err_size);

typedef struct {
    long status;        /* HTTP status, or 0 when no response arrived */
    buf_t body;         /* the response body (for a stream: only an error body) */
    char error[512];    /* the transport failure, or the daemon's "message" */
} docker_response_t;

/* Call method path with an optional JSON body (not stolen) and optional
 * extra headers (NULL-terminated "Name: value" strings, or NULL). timeout_ms
 * 0 means no limit. Returns 0 when a response arrived (any status; see
 * res->status and res->error), or -1 on a transport failure with res->error
 * naming the socket and the cause. Free res with docker_response_free. */
int docker_call(const docker_client_t *client, const char *method, const char *path,
                const json_t *body, const char *const *headers, long timeout_ms,
                docker_response_t *res);

/* Called with each piece of a 2xx response body as it arrives. Returns 0
 * to go on, or -1 to abort the transfer. */
typedef int (*docker_data_fn)(void *ctx, const char *data, size_t len);

/* Returns non-zero when a stream should end now. */
typedef int (*docker_cancel_fn)(void *ctx);

typedef struct {
    const char *method;
    const char *path;
    const char *const *headers;   /* as for docker_call; may be NULL */
    docker_data_fn on_data;
    docker_cancel_fn cancelled;   /* checked at least once a second; may be NULL */
    void *ctx;                    /* passed to on_data and cancelled */
} docker_stream_t;

/* Run a request whose 2xx body is a stream (pull progress, logs, wait) and
 * pass the body to on_data. A non-2xx body is kept in res->body and its
 * message in res->error instead. Returns 0 when the stream ended normally,
 * or -1 on a transport failure, an abort by on_data or a cancellation, each
 * with res->error saying which. */
int docker_stream(const docker_client_t *client, const docker_stream_t *request,
                  docker_response_t *res);

void docker_response_free(docker_response_t *res);

/* Append component to out with every byte outside [A-Za-z0-9._~-]
 * percent-encoded, for a query value or a path segment. */
int docker_append_escaped(buf_t *out, const char *component);

#endif
