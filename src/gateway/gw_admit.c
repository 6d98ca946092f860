/* Access decisions: bearer token, instance path, read permission and
 * readiness, each failure mapped to its OpenAI-shaped error. */
#include "gateway/gw_admit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gateway/gw_request.h"

static void gw_deny(gw_admission_t *out, int status, const char *type, const char *code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void gw_deny(gw_admission_t *out, int status, const char *type, const char *code,
                    const char *fmt, ...)
{
    va_list ap;

    out->status = status;
    out->type = type;
    out->code = code;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
}

/* The 503 for an instance that cannot take requests, by its status. */
static void gw_deny_not_serving(gw_admission_t *out, const gw_instance_t *instance)
{
    if (strcmp(instance->status, "stopping") == 0) {
        gw_deny(out, 503, "service_unavailable", "instance_stopping",
                "instance %s is stopping and will not serve again; launch a new one or use "
                "another endpoint from 'nimdeck apps list'", instance->id);
        return;
    }

    if (strcmp(instance->status, "queued") == 0)
        gw_deny(out, 503, "service_unavailable", "instance_queued",
                "instance %s is queued, waiting for an agent; retry in a few seconds, or check "
                "'nimdeck apps show %s' for what it waits for", instance->id, instance->id);
    else
        gw_deny(out, 503, "service_unavailable", "instance_not_ready",
                "instance %s is %s; retry in a few seconds", instance->id, instance->status);
    out->retry_after_s = GW_RETRY_AFTER_S;
}

void gw_admit(const gw_state_t *state, const http_header_t *headers, size_t num_headers,
              const char *name, int64_t now_ms, gw_admission_t *out)
{
    const char *token_text;
    size_t token_len;
    char hash[65];

    memset(out, 0, sizeof(*out));
    if (http_header_count(headers, num_headers, "Authorization") > 1) {
        gw_deny(out, 400, "invalid_request_error", "ambiguous_credentials",
                "the request carries more than one Authorization header; send exactly one: "
                "'Authorization: Bearer TOKEN'");
        return;
    }
    if (!http_bearer_token(headers, num_headers, &token_text, &token_len)) {
        gw_deny(out, 401, "authentication_error", "missing_token",
                "missing bearer token: send the header 'Authorization: Bearer TOKEN' with a "
                "gateway token from 'nimdeck tokens create'");
        return;
    }

    gw_token_hash(token_text, token_len, hash);
    out->token = gw_state_token(state, hash);
    if (out->token == NULL) {
        gw_deny(out, 401, "authentication_error", "invalid_token",
                "invalid token: it is unknown, revoked or not a gateway token; create one with "
                "'nimdeck tokens create'");
        return;
    }
    if (out->token->expires_at <= now_ms) {
        gw_deny(out, 401, "authentication_error", "token_expired",
                "token %s has expired; create a new one with 'nimdeck tokens create'",
                out->token->id);
        return;
    }

    out->instance = gw_state_instance(state, name);
    if (out->instance == NULL) {
        gw_deny(out, 404, "not_found_error", "instance_not_found",
                "no running instance serves /serve/%s; 'nimdeck apps list' shows the endpoints",
                name);
        return;
    }
    if (!gw_state_can_read(state, out->token->user, out->instance->project)) {
        gw_deny(out, 403, "permission_error", "forbidden",
                "user '%s' has no read permission on project '%s'; an admin can grant it with "
                "'nimdeck users grant %s %s read'", out->token->user, out->instance->project,
                out->token->user, out->instance->project);
        return;
    }
    if (!gw_instance_serves(out->instance))
        gw_deny_not_serving(out, out->instance);
}
