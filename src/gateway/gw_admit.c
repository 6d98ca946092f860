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

static int gw_is_ready(const char *status)
{
    return strcmp(status, "active") == 0 || strcmp(status, "idle") == 0;
}

void gw_admit(const gw_state_t *state, const http_header_t *headers, size_t num_headers,
              const char *name, int64_t now_ms, gw_admission_t *out)
{
    const char *token_text;
    size_t token_len;
    char hash[65];

    memset(out, 0, sizeof(*out));
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
    if (!gw_is_ready(out->instance->status) || out->instance->upstream == NULL) {
        gw_deny(out, 503, "service_unavailable", "instance_not_ready",
                "instance %s is %s; retry in a few seconds", out->instance->id,
                out->instance->status);
        return;
    }
}
