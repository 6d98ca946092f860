/* API: routes and queues. */
#include <stdio.h>
#include <string.h>

#include "server/server_internal.h"
#include "util/clock.h"
#include "util/log.h"

/* The "name" of a route or queue creation body, checked against the rule;
 * NULL with err filled. */
static const char *api_body_name(api_ctx_t *ctx, api_error_t *err, const char *kind)
{
    static const api_field_t fields[] = {
        {"name", API_JSON_STRING, 1},
        {NULL, 0, 0},
    };
    const char *name;

    if (api_check_body(ctx, err, fields) != 0)
        return NULL;
    name = api_body_string(ctx, "name");
    if (api_check_slug(err, kind, name) != 0)
        return NULL;
    return name;
}

int api_routes_create(api_ctx_t *ctx, api_error_t *err)
{
    const char *name = api_body_name(ctx, err, "route");
    int64_t now = clock_wall_ms();

    if (name == NULL)
        return -1;
    int rc = ctx->srv->store->ops->route_create(ctx->srv->store, name, now);
    if (rc == STORE_EXISTS)
        return api_fail(err, 409, "conflict", "name", "route %s already exists", name);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "creating a route");
    log_info(SERVER_LOG, "created route %s", name);
    api_reply(ctx, 201, json_pack("{s:s, s:n, s:I}", "name", name, "instance_id", "created_at",
                                  (json_int_t)now));
    return 0;
}

int api_routes_list(api_ctx_t *ctx, api_error_t *err)
{
    json_t *rows = NULL;

    if (ctx->srv->store->ops->route_list(ctx->srv->store, &rows) != STORE_OK)
        return api_fail_store(ctx, err, "listing routes");
    api_reply(ctx, 200, json_pack("{s:o}", "routes", rows));
    return 0;
}

int api_routes_delete(api_ctx_t *ctx, api_error_t *err)
{
    const char *name = ctx->params[0];
    char holder[64] = "";

    int rc = ctx->srv->store->ops->route_delete(ctx->srv->store, name, holder, sizeof(holder));
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL, "route %s not found", name);
    if (rc == STORE_CONFLICT)
        return api_fail(err, 409, "conflict", NULL,
                        "route %s is held by running instance %s; stop it first", name, holder);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "deleting a route");
    log_info(SERVER_LOG, "deleted route %s", name);
    api_reply(ctx, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
    return 0;
}

int api_queues_create(api_ctx_t *ctx, api_error_t *err)
{
    const char *name = api_body_name(ctx, err, "queue");
    int64_t now = clock_wall_ms();

    if (name == NULL)
        return -1;
    int rc = ctx->srv->store->ops->queue_create(ctx->srv->store, name, now);
    if (rc == STORE_EXISTS)
        return api_fail(err, 409, "conflict", "name", "queue %s already exists", name);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "creating a queue");
    log_info(SERVER_LOG, "created queue %s", name);
    api_reply(ctx, 201, json_pack("{s:s, s:I}", "name", name, "created_at", (json_int_t)now));
    return 0;
}

int api_queues_delete(api_ctx_t *ctx, api_error_t *err)
{
    const char *name = ctx->params[0];
    char holder[64] = "";

    if (strcmp(name, "default") == 0)
        return api_fail(err, 409, "conflict", NULL,
                        "queue default always exists and cannot be deleted");
    int rc = ctx->srv->store->ops->queue_delete(ctx->srv->store, name, holder, sizeof(holder));
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL, "queue %s not found", name);
    if (rc == STORE_CONFLICT)
        return api_fail(err, 409, "conflict", NULL,
                        "queue %s has instance %s queued or running on it; stop it first "
                        "(`nimdeck apps stop %s`)",
                        name, holder, holder);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "deleting a queue");
    log_info(SERVER_LOG, "queue %s deleted by %s", name, ctx->user.name);
    api_reply(ctx, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
    return 0;
}

int api_queues_list(api_ctx_t *ctx, api_error_t *err)
{
    json_t *rows = NULL;

    if (ctx->srv->store->ops->queue_list(ctx->srv->store, &rows) != STORE_OK)
        return api_fail_store(ctx, err, "listing queues");
    api_reply(ctx, 200, json_pack("{s:o}", "queues", rows));
    return 0;
}
