/* Web sessions as API credentials: the session cookie, its checks on every
 * request, and the header rule that keeps other sites from using it. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/server_internal.h"
#include "store/token.h"
#include "util/clock.h"

/* Return 1 when value[0..len) is the media type type, parameters aside. */
static int api_media_type_is(const char *value, size_t len, const char *type)
{
    size_t type_len = strlen(type);

    if (len < type_len || strncasecmp(value, type, type_len) != 0)
        return 0;
    return len == type_len || value[type_len] == ';' || value[type_len] == ' ' ||
           value[type_len] == '\t';
}

int api_session_cookie(const http_request_t *req, char *out, size_t size)
{
    size_t len = 0, name_len = strlen(API_SESSION_COOKIE);
    const char *value = http_header_find(req->headers, req->num_headers, "Cookie", &len);

    if (value == NULL)
        return 0;
    const char *end = value + len;
    while (value < end) {
        while (value < end && (*value == ' ' || *value == '\t'))
            value++;
        const char *semi = memchr(value, ';', (size_t)(end - value));
        const char *item_end = semi ? semi : end;
        size_t item_len = (size_t)(item_end - value);

        if (item_len > name_len && memcmp(value, API_SESSION_COOKIE, name_len) == 0 &&
            value[name_len] == '=') {
            size_t value_len = item_len - name_len - 1;
            while (value_len > 0 && (value[name_len + value_len] == ' ' ||
                                     value[name_len + value_len] == '\t'))
                value_len--;
            if (value_len == 0 || value_len >= size)
                return 0;
            memcpy(out, value + name_len + 1, value_len);
            out[value_len] = '\0';
            return 1;
        }
        value = semi ? semi + 1 : end;
    }
    return 0;
}

int api_session_request_is_safe(const http_request_t *req)
{
    size_t len = 0;
    const char *value;

    if ((req->method_len == 3 && memcmp(req->method, "GET", 3) == 0) ||
        (req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0))
        return 1;
    value = http_header_find(req->headers, req->num_headers, "Content-Type", &len);
    if (value != NULL && api_media_type_is(value, len, "application/json"))
        return 1;
    value = http_header_find(req->headers, req->num_headers, "X-Requested-With", &len);
    return value != NULL && len == strlen("nimdeck") && memcmp(value, "nimdeck", len) == 0;
}

/* Check the login token of a session; 0 when it still holds. */
static int api_session_token(api_ctx_t *ctx, api_error_t *err, const store_session_t *session,
                             int64_t now)
{
    store_token_t token;
    int rc = ctx->srv->store->ops->token_get(ctx->srv->store, session->token_id, &token);

    if (rc == STORE_ERROR)
        return api_fail_store(ctx, err, "checking a session's token");
    if (rc != STORE_OK || token.revoked)
        return api_fail(err, 401, "unauthorized", NULL,
                        "the api token %s that this session logged in with is revoked; log in "
                        "again",
                        session->token_id);
    if (token.expires_at <= now)
        return api_fail(err, 401, "unauthorized", NULL,
                        "the api token %s that this session logged in with has expired; log in "
                        "again",
                        session->token_id);
    ctx->token_expires_at = token.expires_at;
    return 0;
}

int api_session_authenticate(api_ctx_t *ctx, api_error_t *err, const char *cookie)
{
    char hash[TOKEN_HASH_HEX_LEN + 1];
    store_session_t session;
    int64_t now = clock_wall_ms();

    token_hash_hex(cookie, hash, sizeof(hash));
    int rc = ctx->srv->store->ops->session_find(ctx->srv->store, hash, &session);
    if (rc == STORE_ERROR)
        return api_fail_store(ctx, err, "checking a session");
    if (rc != STORE_OK)
        return api_fail(err, 401, "unauthorized", NULL,
                        "unknown or ended session; log in again");
    if (session.expires_at <= now)
        return api_fail(err, 401, "unauthorized", NULL, "the session has expired; log in again");

    /* A password login may create tokens of any length, as the password
     * outlives every token; a token login is bound by its token. */
    ctx->token_expires_at = INT64_MAX;
    if (session.token_id[0] != '\0' && api_session_token(ctx, err, &session, now) != 0)
        return -1;

    rc = ctx->srv->store->ops->user_get(ctx->srv->store, session.user, &ctx->user);
    if (rc == STORE_ERROR)
        return api_fail_store(ctx, err, "reading the session's user");
    if (rc != STORE_OK)
        return api_fail(err, 401, "unauthorized", NULL,
                        "the user of this session no longer exists");

    /* A second defence next to SameSite=Strict: a form on another site can
     * send neither header, and a script there only after a CORS preflight,
     * which this server never allows. */
    if (!api_session_request_is_safe(ctx->req))
        return api_fail(err, 403, "forbidden", NULL,
                        "a request that changes state with the session cookie needs the header "
                        "Content-Type: application/json or X-Requested-With: nimdeck");
    snprintf(ctx->token_id, sizeof(ctx->token_id), "%s", session.token_id);
    return 0;
}
