/* The gateway's access decision for one request: token, instance,
 * permission and readiness, checked against a state snapshot. No I/O. */
#ifndef NIMDECK_GATEWAY_GW_ADMIT_H
#define NIMDECK_GATEWAY_GW_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/gw_state.h"
#include "http/parser.h"

typedef struct {
    int status;                       /* 0: forward; else the error status to send */
    const char *type;                 /* OpenAI error type, when status != 0 */
    const char *code;                 /* machine-readable code, when status != 0 */
    char message[512];
    int retry_after_s;                /* > 0: send Retry-After with this many seconds */
    const gw_token_t *token;          /* set once the token checked out */
    const gw_instance_t *instance;    /* set once the path was found */
} gw_admission_t;

/* Retry-After seconds for an instance that will serve soon (queued or
 * loading). */
#define GW_RETRY_AFTER_S 5

/* Decide whether the request for instance path `name` may be forwarded.
 * Order: more than one Authorization header (400), token (401), path (404),
 * permission (403), readiness (503), so a caller without a valid token
 * learns nothing about which paths exist. A queued or loading instance, or
 * one without an upstream yet, gets retry_after_s; a stopping one does not,
 * because it will not serve again.
 * now_ms is the wall clock for the expiry check. The pointers in out live
 * as long as state. */
void gw_admit(const gw_state_t *state, const http_header_t *headers, size_t num_headers,
              const char *name, int64_t now_ms, gw_admission_t *out);

#endif
