/* Blocking JSON client for the server's REST API (libcurl), used by the CLI,
 * the agent and the gateway. Each call is independent and thread-safe. */
#ifndef NIMDECK_UTIL_API_CLIENT_H
#define NIMDECK_UTIL_API_CLIENT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct {
    long status;          /* HTTP status, or 0 when no response arrived */
    json_t *body;         /* parsed JSON body, or NULL (empty or not JSON) */
    char error[512];      /* transport failure, or the server's error message */
    char error_code[64];  /* the server's error.code, or "" */
    char error_field[128];/* the server's error.field, or "" */
} api_result_t;

/* Call base_url + path with method and an optional JSON body (not stolen).
 * token may be NULL. timeout_ms 0 means 30 s. Returns 0 when a response
 * arrived (any status; see res->status), -1 on a transport failure with
 * res->error naming the URL and the cause. The caller frees res->body with
 * api_result_free. */
int api_call(const char *base_url, const char *token, const char *method, const char *path,
             const json_t *body, long timeout_ms, api_result_t *res);

/* Like api_call, but gives up as soon as *cancel is non-zero (libcurl checks
 * it at least once a second while waiting), so a long poll can be cut short
 * at shutdown. A cancelled call returns -1 with res->error saying so. */
int api_call_cancellable(const char *base_url, const char *token, const char *method,
                         const char *path, const json_t *body, long timeout_ms,
                         const atomic_int *cancel, api_result_t *res);

void api_result_free(api_result_t *res);

/* Call curl_global_init once; safe to call from several places. */
void api_client_global_init(void);

#endif
