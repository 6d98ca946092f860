/* Request dispatch for /api/v1: routing, authentication, permission checks,
 * and the one place where API errors become HTTP responses. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"
#include "server/server_internal.h"
#include "store/token.h"
#include "util/clock.h"
#include "util/log.h"
#include "web/web.h"

/* AUTH_EMBED: a user, or an embed token of the instance that the path's
 * first '*' names. */
typedef enum { AUTH_NONE, AUTH_USER, AUTH_ADMIN, AUTH_EMBED } api_auth_t;

/* BODY_NONE: the route takes no body, so any key is rejected here.
 * BODY_CHECKED: the handler checks the body against its own schema. */
typedef enum { BODY_NONE, BODY_CHECKED } api_body_t;

typedef struct {
    const char *method;
    const char *pattern;   /* '*' matches one path segment */
    api_handler_fn handler;
    api_auth_t auth;
    api_body_t body;
} api_route_t;

static const api_route_t api_routes[] = {
    {"GET", "/health", api_health, AUTH_NONE, BODY_NONE},
    {"POST", "/login", api_login, AUTH_NONE, BODY_CHECKED},
    {"POST", "/logout", api_logout, AUTH_NONE, BODY_NONE},
    {"GET", "/whoami", api_whoami, AUTH_USER, BODY_NONE},
    {"POST", "/users", api_users_create, AUTH_ADMIN, BODY_CHECKED},
    {"GET", "/users", api_users_list, AUTH_ADMIN, BODY_NONE},
    {"DELETE", "/users/*", api_users_delete, AUTH_ADMIN, BODY_NONE},
    {"POST", "/users/*/grants", api_grants_set, AUTH_ADMIN, BODY_CHECKED},
    {"DELETE", "/users/*/grants/*", api_grants_delete, AUTH_ADMIN, BODY_NONE},
    {"GET", "/projects", api_projects_list, AUTH_USER, BODY_NONE},
    {"POST", "/tokens", api_tokens_create, AUTH_USER, BODY_CHECKED},
    {"GET", "/tokens", api_tokens_list, AUTH_USER, BODY_NONE},
    {"DELETE", "/tokens/*", api_tokens_revoke, AUTH_USER, BODY_NONE},
    {"PUT", "/vault/*", api_vault_put, AUTH_USER, BODY_CHECKED},
    {"GET", "/vault", api_vault_list, AUTH_USER, BODY_NONE},
    {"DELETE", "/vault/*", api_vault_delete, AUTH_USER, BODY_NONE},
    {"POST", "/routes", api_routes_create, AUTH_ADMIN, BODY_CHECKED},
    {"GET", "/routes", api_routes_list, AUTH_USER, BODY_NONE},
    {"DELETE", "/routes/*", api_routes_delete, AUTH_ADMIN, BODY_NONE},
    {"POST", "/queues", api_queues_create, AUTH_ADMIN, BODY_CHECKED},
    {"GET", "/queues", api_queues_list, AUTH_USER, BODY_NONE},
    {"DELETE", "/queues/*", api_queues_delete, AUTH_ADMIN, BODY_NONE},
    /* The configuration has its own checks (config_validate). */
    {"POST", "/apps", api_apps_launch, AUTH_USER, BODY_CHECKED},
    {"GET", "/apps", api_apps_list, AUTH_USER, BODY_NONE},
    {"GET", "/apps/*", api_apps_show, AUTH_USER, BODY_NONE},
    {"DELETE", "/apps/*", api_apps_delete, AUTH_USER, BODY_NONE},
    {"POST", "/apps/*/stop", api_apps_stop, AUTH_USER, BODY_NONE},
    {"GET", "/apps/*/export", api_apps_export, AUTH_USER, BODY_NONE},
    {"POST", "/apps/*/clone", api_apps_clone, AUTH_USER, BODY_CHECKED},
    {"GET", "/apps/*/logs", api_apps_logs, AUTH_USER, BODY_NONE},
    {"POST", "/apps/*/logs", api_apps_logs_append, AUTH_ADMIN, BODY_CHECKED},
    {"GET", "/apps/*/history", api_apps_history, AUTH_USER, BODY_NONE},
    {"GET", "/apps/*/metrics", api_apps_metrics, AUTH_EMBED, BODY_NONE},
    {"GET", "/embed/*", api_embed_show, AUTH_EMBED, BODY_NONE},
    {"GET", "/endpoints", api_endpoints_list, AUTH_USER, BODY_NONE},
    {"POST", "/apps/*/status", api_apps_status, AUTH_ADMIN, BODY_CHECKED},
    {"GET", "/apps/*/lease", api_apps_lease, AUTH_ADMIN, BODY_NONE},
    {"POST", "/agents", api_agents_register, AUTH_ADMIN, BODY_CHECKED},
    {"GET", "/agents", api_agents_list, AUTH_ADMIN, BODY_NONE},
    {"GET", "/agents/*/work", api_agents_work, AUTH_ADMIN, BODY_NONE},
    {"POST", "/agents/*/metrics", api_agents_metrics, AUTH_ADMIN, BODY_CHECKED},
    {"GET", "/gateway/state", api_gateway_state, AUTH_ADMIN, BODY_NONE},
    {"POST", "/gateway/records", api_gateway_records, AUTH_ADMIN, BODY_CHECKED},
};

#define API_PREFIX "/api/v1"

int api_fail(api_error_t *err, int status, const char *code, const char *field, const char *fmt,
             ...)
{
    va_list ap;

    err->status = status;
    err->code = code;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

int api_fail_store(api_ctx_t *ctx, api_error_t *err, const char *what)
{
    log_error(SERVER_LOG, "store failure while %s: %s", what, store_error(ctx->srv->store));
    return api_fail(err, 500, "internal", NULL, "internal error while %s; see the server log",
                    what);
}

void api_reply(api_ctx_t *ctx, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (text == NULL) {
        http_respond_error(ctx->ex, 500, "internal", "out of memory building the response",
                           NULL);
        return;
    }
    http_respond(ctx->ex, status, "application/json", NULL, text, strlen(text));
    free(text);
}

void api_reply_empty(api_ctx_t *ctx, int status)
{
    http_respond(ctx->ex, status, NULL, NULL, NULL, 0);
}

int api_query(const api_ctx_t *ctx, const char *name, char *out, size_t size)
{
    const char *query = ctx->req->query;
    size_t left = ctx->req->query_len, name_len = strlen(name);

    while (query != NULL && left > 0) {
        const char *amp = memchr(query, '&', left);
        size_t part = amp ? (size_t)(amp - query) : left;

        if (part > name_len && memcmp(query, name, name_len) == 0 && query[name_len] == '=')
            return http_percent_decode(query + name_len + 1, part - name_len - 1, out, size, 1) == 0;
        if (part == name_len && memcmp(query, name, name_len) == 0) {
            if (size > 0)
                out[0] = '\0';
            return 1;
        }
        query += part + (amp ? 1 : 0);
        left -= part + (amp ? 1 : 0);
    }
    return 0;
}

const char *api_body_string(const api_ctx_t *ctx, const char *key)
{
    return json_string_value(json_object_get(ctx->body, key));
}

int api_require_object(api_ctx_t *ctx, api_error_t *err)
{
    if (!json_is_object(ctx->body))
        return api_fail(err, 400, "bad_request", NULL,
                        "the request body must be a JSON object");
    return 0;
}

store_perm_t api_project_perm(api_ctx_t *ctx, const char *project)
{
    store_perm_t perm = STORE_PERM_NONE;

    if (ctx->user.admin)
        return STORE_PERM_ADMIN;
    if (ctx->srv->store->ops->grant_get(ctx->srv->store, ctx->user.name, project, &perm) !=
        STORE_OK)
        return STORE_PERM_NONE;
    return perm;
}

int api_require_perm(api_ctx_t *ctx, api_error_t *err, const char *project, store_perm_t need)
{
    if (api_project_perm(ctx, project) >= need)
        return 0;
    return api_fail(err, 403, "forbidden", NULL,
                    "user %s needs %s permission on project %s; ask an admin for a grant",
                    ctx->user.name, store_perm_name(need), project);
}

int api_load_instance(api_ctx_t *ctx, api_error_t *err, const char *id, store_perm_t need,
                      store_instance_t *out)
{
    int rc = ctx->srv->store->ops->instance_get(ctx->srv->store, id, out);

    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL, "instance %s not found", id);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "reading an instance");
    if (api_require_perm(ctx, err, out->project, need) != 0) {
        store_instance_clear(out);
        return -1;
    }
    return 0;
}

/* Match path against pattern, capturing '*' segments. */
static int api_match(const char *pattern, const char *path, size_t path_len, api_ctx_t *ctx)
{
    const char *end = path + path_len;
    int captured = 0;

    while (*pattern != '\0' && path < end) {
        if (*pattern == '*') {
            const char *slash = memchr(path, '/', (size_t)(end - path));
            size_t len = slash ? (size_t)(slash - path) : (size_t)(end - path);
            if (len == 0 || captured >= 2 ||
                http_percent_decode(path, len, ctx->params[captured], sizeof(ctx->params[0]),
                                    0) != 0)
                return 0;
            captured++;
            path += len;
            pattern++;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return *pattern == '\0' && path == end;
}

/* Authenticate the Authorization header, or the session cookie when there
 * is no such header; 0 with ctx->user filled, or -1. The header is read by
 * http_bearer_token, as the gateway reads it. */
static int api_authenticate(api_ctx_t *ctx, api_error_t *err, api_auth_t auth)
{
    const http_request_t *req = ctx->req;
    const char *value;
    size_t len = 0;
    char text[128], hash[TOKEN_HASH_HEX_LEN + 1];
    store_token_t token;

    if (http_header_find(req->headers, req->num_headers, "Authorization", &len) == NULL) {
        if (api_session_cookie(req, text, sizeof(text)))
            return api_session_authenticate(ctx, err, text);
        return api_fail(err, 401, "unauthorized", NULL,
                        "missing Authorization: Bearer token; pass an api token or log in");
    }
    if (!http_bearer_token(req->headers, req->num_headers, &value, &len))
        return api_fail(err, 401, "unauthorized", NULL,
                        "the Authorization header must be 'Bearer TOKEN'");
    if (len >= sizeof(text))
        return api_fail(err, 401, "unauthorized", NULL, "unknown token");
    memcpy(text, value, len);
    text[len] = '\0';

    token_hash_hex(text, hash, sizeof(hash));
    int rc = ctx->srv->store->ops->token_find_hash(ctx->srv->store, hash, &token);
    if (rc == STORE_ERROR)
        return api_fail_store(ctx, err, "checking a token");
    if (rc != STORE_OK)
        return api_fail(err, 401, "unauthorized", NULL, "unknown token");
    if (token.revoked)
        return api_fail(err, 401, "unauthorized", NULL, "token %s is revoked", token.id);
    if (token.expires_at <= clock_wall_ms())
        return api_fail(err, 401, "unauthorized", NULL, "token %s has expired", token.id);
    if (strcmp(token.scope, "embed") == 0 &&
        (auth != AUTH_EMBED || strcmp(token.instance_id, ctx->params[0]) != 0))
        return api_fail(err, 401, "unauthorized", NULL,
                        "token %s has scope embed; it reads only the metrics of instance %s",
                        token.id, token.instance_id);
    if (strcmp(token.scope, "api") != 0 && strcmp(token.scope, "embed") != 0)
        return api_fail(err, 401, "unauthorized", NULL,
                        "token %s has scope %s; the API needs an api-scope token", token.id,
                        token.scope);
    rc = ctx->srv->store->ops->user_get(ctx->srv->store, token.user, &ctx->user);
    if (rc == STORE_ERROR)
        return api_fail_store(ctx, err, "reading the token's user");
    if (rc != STORE_OK)
        return api_fail(err, 401, "unauthorized", NULL, "the user of token %s no longer exists",
                        token.id);
    snprintf(ctx->token_id, sizeof(ctx->token_id), "%s", token.id);
    ctx->token_expires_at = token.expires_at;
    return 0;
}

static int api_parse_body(api_ctx_t *ctx, api_error_t *err)
{
    json_error_t jerr;

    if (ctx->req->body == NULL || ctx->req->body_len == 0)
        return 0;
    ctx->body = json_loadb(ctx->req->body, ctx->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (ctx->body == NULL)
        return api_fail_json_syntax(err, &jerr);
    return 0;
}

/* Append method to the comma-separated list in allow once. */
static void api_allow_add(char *allow, size_t size, const char *method)
{
    size_t used = strlen(allow), len = strlen(method);
    const char *at = allow;

    while ((at = strstr(at, method)) != NULL) {
        if ((at == allow || at[-1] == ' ') && (at[len] == ',' || at[len] == '\0'))
            return;
        at += len;
    }
    snprintf(allow + used, size - used, "%s%s", used ? ", " : "", method);
}

/* Find the route; NULL with a 404, or a 405 and its Allow list, in err
 * when none matches. */
static const api_route_t *api_find_route(api_ctx_t *ctx, const char *path, size_t path_len,
                                         api_error_t *err)
{
    const http_request_t *req = ctx->req;
    char allow[sizeof(err->allow)] = "";

    for (size_t i = 0; i < sizeof(api_routes) / sizeof(api_routes[0]); i++) {
        const api_route_t *route = &api_routes[i];
        if (!api_match(route->pattern, path, path_len, ctx))
            continue;
        if (strlen(route->method) == req->method_len &&
            memcmp(route->method, req->method, req->method_len) == 0)
            return route;
        api_allow_add(allow, sizeof(allow), route->method);
    }
    if (allow[0] != '\0') {
        api_fail(err, 405, "method_not_allowed", NULL,
                 "method %.*s is not allowed on %.*s; allowed: %s", (int)req->method_len,
                 req->method, (int)req->path_len, req->path, allow);
        snprintf(err->allow, sizeof(err->allow), "%s", allow);
    } else {
        api_fail(err, 404, "not_found", NULL, "no API endpoint at %.*s", (int)req->path_len,
                 req->path);
    }
    return NULL;
}

static int api_dispatch(api_ctx_t *ctx, api_error_t *err)
{
    const http_request_t *req = ctx->req;
    size_t prefix = strlen(API_PREFIX);

    if (req->path_len < prefix || memcmp(req->path, API_PREFIX, prefix) != 0 ||
        (req->path_len > prefix && req->path[prefix] != '/'))
        return api_fail(err, 404, "not_found", NULL, "no API endpoint at %.*s",
                        (int)req->path_len, req->path);

    const api_route_t *route = api_find_route(ctx, req->path + prefix, req->path_len - prefix, err);
    if (route == NULL)
        return -1;
    if (route->auth != AUTH_NONE && api_authenticate(ctx, err, route->auth) != 0)
        return -1;
    if (route->auth == AUTH_ADMIN && !ctx->user.admin)
        return api_fail(err, 403, "forbidden", NULL, "%s %s needs an admin", route->method,
                        route->pattern);
    if (api_parse_body(ctx, err) != 0)
        return -1;
    if (route->body == BODY_NONE && api_check_body(ctx, err, NULL) != 0)
        return -1;
    return route->handler(ctx, err);
}

/* The JSON error body of err. A message that is not valid UTF-8 (it may
 * quote a percent-decoded path) is sent with its odd bytes as '?'. */
static char *api_error_text(const api_error_t *err)
{
    char printable[sizeof(err->message)];
    json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", err->code, "message",
                             err->message);
    char *text;

    if (body == NULL) {
        api_printable(err->message, printable, sizeof(printable));
        body = json_pack("{s:{s:s, s:s}}", "error", "code", err->code, "message", printable);
    }
    if (body != NULL && err->field[0] != '\0')
        json_object_set_new(json_object_get(body, "error"), "field", json_string(err->field));
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

/* Send err as the JSON error body; a 405 also carries its Allow header. */
static void api_send_error(http_exchange_t *ex, const api_error_t *err)
{
    char headers[sizeof(err->allow) + 16] = "";
    char *text = api_error_text(err);

    if (text == NULL) {
        http_respond_error(ex, err->status, err->code, err->message, NULL);
        return;
    }
    if (err->allow[0] != '\0')
        snprintf(headers, sizeof(headers), "Allow: %s\r\n", err->allow);
    http_respond(ex, err->status, "application/json", headers[0] ? headers : NULL, text,
                 strlen(text));
    free(text);
}

void server_on_request(http_exchange_t *ex, void *user)
{
    api_ctx_t ctx = {.srv = user, .ex = ex, .req = http_exchange_request(ex)};
    api_error_t err = {0};

    /* Everything outside /api/ is the web UI. */
    if (ctx.req->path_len < 4 || memcmp(ctx.req->path, "/api", 4) != 0 ||
        (ctx.req->path_len > 4 && ctx.req->path[4] != '/')) {
        web_serve(ex, ctx.srv->web_root);
        return;
    }
    if (api_dispatch(&ctx, &err) != 0) {
        if (err.status >= 500)
            log_error(SERVER_LOG, "%.*s %.*s: %s", (int)ctx.req->method_len, ctx.req->method,
                      (int)ctx.req->path_len, ctx.req->path, err.message);
        api_send_error(ex, &err);
    }
    json_decref(ctx.body);
}
