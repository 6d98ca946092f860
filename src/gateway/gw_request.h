/* Pure request and response rewriting for the gateway: bearer tokens, the
 * /serve/<path> prefix, hop-by-hop headers and completion bodies. No I/O. */
#ifndef NIMDECK_GATEWAY_GW_REQUEST_H
#define NIMDECK_GATEWAY_GW_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "http/parser.h"
#include "util/buf.h"

/* Maximum length of an instance path (route name or ephemeral id). */
#define GW_MAX_PATH_NAME 128

/* Outcome of splitting a request target. */
typedef enum {
    GW_TARGET_OTHER,   /* not under /serve/ */
    GW_TARGET_BAD,     /* under /serve/ but without a valid path name */
    GW_TARGET_SERVE,   /* name and forward are set */
} gw_target_kind_t;

typedef struct {
    char name[GW_MAX_PATH_NAME + 1];  /* the instance path, NUL-terminated */
    const char *forward;              /* target sent to the instance: "/v1/...?query" */
    size_t forward_len;
    const char *forward_path;         /* forward up to the '?' */
    size_t forward_path_len;
} gw_target_t;

/* Split "/serve/NAME/rest?query" into NAME and the target to forward
 * ("/rest?query"; "/" when rest is empty). forward points into target.
 * Path names are 1..GW_MAX_PATH_NAME of [A-Za-z0-9._-]. */
gw_target_kind_t gw_split_target(const char *target, size_t target_len, gw_target_t *out);

/* Whether a header must not be forwarded by a proxy: the hop-by-hop headers
 * (Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding,
 * Upgrade) and any header named in the message's Connection header. */
int gw_is_hop_header(const char *name, size_t name_len, const http_header_t *headers,
                     size_t num_headers);

/* Whether a query parameter ("name=value" or "name") is one that clients
 * use for tokens: api_key, access_token, token or key, matched
 * case-insensitively after percent-decoding the name. */
int gw_is_token_param(const char *param, size_t len);

/* Append the upstream request head and body to out. The head has the
 * method and the forward target without token query parameters (see
 * gw_is_token_param), whose other parameters stay in order. The client's
 * headers follow, except hop-by-hop ones, Authorization, Host,
 * Content-Length and Expect. Then come Host: host_port and the
 * Content-Length of body. No Connection header is sent: HTTP/1.1 keeps the
 * connection open, and the gateway closes it itself when it does not pool
 * it. With identity_only, Accept-Encoding is dropped too, so the response
 * arrives uncompressed and its usage can be read. Returns 0, or -1 when
 * memory runs out. */
int gw_build_upstream_request(const http_request_t *req, const char *forward,
                              size_t forward_len, const char *host_port, const char *body,
                              size_t body_len, int identity_only, buf_t *out);

/* Append "name: value\r\n" with value in decimal, without printf (this
 * runs for most requests). Returns 0, or -1 when memory runs out. */
int gw_append_number_header(buf_t *out, const char *name, uint64_t value);

/* Response headers for the client, as http_stream_start takes them. */
typedef struct {
    char content_type[256];  /* the upstream's Content-Type, or "" */
    int event_stream;        /* Content-Type is text/event-stream */
    buf_t extra;             /* "Name: value\r\n" lines */
} gw_response_head_t;

/* Copy the upstream response's headers minus hop-by-hop ones, Content-Type
 * (returned apart) and Content-Length (kept only when keep_length is set and
 * the upstream sent one). Event streams get X-Accel-Buffering: no and
 * Cache-Control: no-cache. head is overwritten; the caller frees
 * head->extra. Returns 0 or -1. */
int gw_response_head(const http_response_t *resp, int keep_length, gw_response_head_t *head);

/* gw_response_head into a head whose extra buffer is initialised and is
 * reused: it is emptied, and keeps its memory for the next response. */
int gw_response_head_reuse(const http_response_t *resp, int keep_length,
                           gw_response_head_t *head);

/* Whether a forwarded request is an OpenAI completion call whose JSON body
 * the gateway reads: POST to /v1/chat/completions or /v1/completions. */
int gw_is_completion(const char *method, size_t method_len, const char *path,
                     size_t path_len);

typedef struct {
    int stream;         /* the body requests a streamed response */
    int strip_usage;    /* the gateway added include_usage: drop the usage-only chunk */
    char *body;         /* rewritten body (caller frees), or NULL to forward as sent */
    size_t body_len;
} gw_completion_t;

/* Read a completion request body. For "stream": true without
 * stream_options.include_usage set by the client, rewrite the body with
 * include_usage true. A body that is not a JSON object is left alone.
 * Returns 0, or -1 when memory runs out. */
int gw_completion_prepare(const char *body, size_t len, gw_completion_t *out);

#endif
