/* API: launching, listing, showing, stopping, deleting, exporting and
 * cloning app instances. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "server/server_internal.h"
#include "store/token.h"
#include "util/clock.h"
#include "util/log.h"

/* True when the owner's vault contains an entry called name. */
static int api_vault_has(api_ctx_t *ctx, const char *owner, const char *name)
{
    json_t *entries = vault_list(ctx->srv->store, owner), *entry;
    size_t i;
    int found = 0;

    json_array_foreach(entries, i, entry) {
        if (strcmp(json_string_value(json_object_get(entry, "name")), name) == 0)
            found = 1;
    }
    json_decref(entries);
    return found;
}

/* The launch checks after config_validate, in the documented order. */
static int api_launch_checks(api_ctx_t *ctx, api_error_t *err, json_t *cfg)
{
    const char *queue = json_string_value(json_object_get(cfg, "queue"));
    const char *route = json_string_value(json_object_get(cfg, "route"));
    const char *image = json_string_value(json_object_get(cfg, "image"));
    store_t *st = ctx->srv->store;

    int rc = st->ops->queue_exists(st, queue);
    if (rc < 0)
        return api_fail_store(ctx, err, "checking the queue");
    if (rc == 0)
        return api_fail(err, 400, "invalid_config", "queue",
                        "queue \"%s\" does not exist; create it (POST /api/v1/queues) or use "
                        "\"default\"",
                        queue);

    if (route != NULL) {
        char holder[64];
        rc = st->ops->route_get(st, route, holder, sizeof(holder));
        if (rc < 0)
            return api_fail_store(ctx, err, "checking the route");
        if (rc == 0)
            return api_fail(err, 400, "invalid_config", "route",
                            "route \"%s\" does not exist; create it with `nimdeck routes create "
                            "%s` or set \"route\" to null",
                            route, route);
    }

    if (image != NULL && config_image_needs_ngc_key(image)) {
        json_t *key = json_object_get(json_object_get(cfg, "env"), "NGC_API_KEY");
        if (!json_is_string(key) && !api_vault_has(ctx, ctx->user.name, "NGC_API_KEY"))
            return api_fail(err, 400, "invalid_config", "env.NGC_API_KEY",
                            "image %s needs NGC_API_KEY: add it to \"env\" or run `nimdeck vault "
                            "set NGC_API_KEY`",
                            image);
    }
    return 0;
}

static void api_fill_instance(api_ctx_t *ctx, json_t *cfg, store_instance_t *inst)
{
    const char *route = json_string_value(json_object_get(cfg, "route"));

    memset(inst, 0, sizeof(*inst));
    server_random_id(inst->id, SERVER_INSTANCE_ID_LEN, TOKEN_ALPHABET_HEX);
    snprintf(inst->name, sizeof(inst->name), "%s", json_string_value(json_object_get(cfg, "name")));
    snprintf(inst->project, sizeof(inst->project), "%s",
             json_string_value(json_object_get(cfg, "project")));
    snprintf(inst->owner, sizeof(inst->owner), "%s", ctx->user.name);
    snprintf(inst->status, sizeof(inst->status), "queued");
    snprintf(inst->queue, sizeof(inst->queue), "%s",
             json_string_value(json_object_get(cfg, "queue")));
    if (route != NULL) {
        snprintf(inst->route, sizeof(inst->route), "%s", route);
        snprintf(inst->path, sizeof(inst->path), "%s", route);
    } else {
        /* The ephemeral path is drawn apart from the id, so knowing an
         * instance id does not reveal its endpoint. */
        server_random_id(inst->path, SERVER_PATH_LEN, TOKEN_ALPHABET_BASE32);
    }
    inst->created_at = clock_wall_ms();
    inst->config = cfg;
}

/* Validate cfg (owned by the caller), create the instance and reply 201. */
static int api_launch(api_ctx_t *ctx, api_error_t *err, json_t *cfg)
{
    config_error_t cerr = {0};
    store_instance_t inst;
    char holder[64] = "";

    if (!json_is_object(cfg))
        return api_fail(err, 400, "invalid_config", NULL,
                        "the configuration must be a JSON object");
    if (config_validate(cfg, &cerr) != 0)
        return api_fail(err, 400, "invalid_config", cerr.field[0] ? cerr.field : NULL, "%s",
                        cerr.message);
    if (api_require_perm(ctx, err, json_string_value(json_object_get(cfg, "project")),
                         STORE_PERM_WRITE) != 0 ||
        api_launch_checks(ctx, err, cfg) != 0)
        return -1;

    api_fill_instance(ctx, cfg, &inst);
    int rc = ctx->srv->store->ops->instance_insert(ctx->srv->store, &inst, "status: queued",
                                                   holder, sizeof(holder));
    inst.config = NULL;
    if (rc == STORE_CONFLICT)
        return api_fail(err, 409, "conflict", "route",
                        "route \"%s\" is held by instance %s; stop it first or pick another route",
                        inst.route, holder);
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 400, "invalid_config", "route", "route \"%s\" does not exist",
                        inst.route);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "creating an instance");

    log_info(SERVER_LOG, "instance %s (%s) queued on %s by %s", inst.id, inst.name, inst.queue,
             inst.owner);
    server_waiters_wake(ctx->srv, SERVER_WAIT_WORK);

    store_instance_t saved;
    if (ctx->srv->store->ops->instance_get(ctx->srv->store, inst.id, &saved) != STORE_OK)
        return api_fail_store(ctx, err, "reading the new instance");
    api_reply(ctx, 201, server_instance_json(ctx->srv, &saved));
    store_instance_clear(&saved);
    return 0;
}

int api_apps_launch(api_ctx_t *ctx, api_error_t *err)
{
    json_t *cfg = json_deep_copy(ctx->body);
    int rc;

    if (ctx->body == NULL)
        return api_fail(err, 400, "invalid_config", NULL,
                        "the request body must be the configuration (a JSON object)");
    rc = api_launch(ctx, err, cfg);
    json_decref(cfg);
    return rc;
}

int api_apps_list(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t *list = NULL;
    size_t count = 0;

    if (ctx->srv->store->ops->instance_list(ctx->srv->store, STORE_INSTANCES_ALL, NULL, &list,
                                            &count) != STORE_OK)
        return api_fail_store(ctx, err, "listing instances");

    json_t *apps = json_array();
    for (size_t i = 0; i < count; i++) {
        if (api_project_perm(ctx, list[i].project) >= STORE_PERM_READ)
            json_array_append_new(apps, server_instance_json(ctx->srv, &list[i]));
    }
    store_instances_free(list, count);
    api_reply(ctx, 200, json_pack("{s:o}", "apps", apps));
    return 0;
}

int api_apps_show(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t inst;

    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_READ, &inst) != 0)
        return -1;
    api_reply(ctx, 200, server_instance_json(ctx->srv, &inst));
    store_instance_clear(&inst);
    return 0;
}

int api_apps_stop(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t inst;

    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_WRITE, &inst) != 0)
        return -1;
    if (server_request_stop(ctx->srv, &inst, "stopped by user") != STORE_OK) {
        store_instance_clear(&inst);
        return api_fail_store(ctx, err, "requesting a stop");
    }
    api_reply(ctx, 202, server_instance_json(ctx->srv, &inst));
    store_instance_clear(&inst);
    return 0;
}

int api_apps_delete(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t inst;
    const char *id = ctx->params[0];

    if (api_load_instance(ctx, err, id, STORE_PERM_WRITE, &inst) != 0)
        return -1;
    int live = store_status_is_live(inst.status);
    char status[16];
    snprintf(status, sizeof(status), "%s", inst.status);
    store_instance_clear(&inst);
    if (live)
        return api_fail(err, 409, "conflict", NULL,
                        "instance %s is %s; stop it first (`nimdeck apps stop %s`)", id, status,
                        id);

    if (ctx->srv->store->ops->instance_delete(ctx->srv->store, id) != STORE_OK)
        return api_fail_store(ctx, err, "deleting an instance");
    log_info(SERVER_LOG, "instance %s deleted by %s", id, ctx->user.name);
    api_reply(ctx, 200, json_pack("{s:s, s:b}", "id", id, "deleted", 1));
    return 0;
}

int api_apps_export(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t inst;
    char flag[8] = "";
    int include = api_query(ctx, "include_secrets", flag, sizeof(flag)) &&
                  (strcmp(flag, "1") == 0 || strcmp(flag, "true") == 0);

    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_READ, &inst) != 0)
        return -1;
    /* Secret values belong to the owner, so only the owner or an admin may export them. */
    if (include && !ctx->user.admin && strcmp(inst.owner, ctx->user.name) != 0) {
        store_instance_clear(&inst);
        return api_fail(err, 403, "forbidden", NULL,
                        "only the owner or an admin may export secrets of instance %s",
                        ctx->params[0]);
    }
    api_reply(ctx, 200, config_export(inst.config, include));
    store_instance_clear(&inst);
    return 0;
}

/* Apply the clone body's "set" and "unset" edits to cfg. */
static int api_clone_edits(api_ctx_t *ctx, api_error_t *err, json_t *cfg)
{
    json_t *set = json_object_get(ctx->body, "set");
    json_t *unset = json_object_get(ctx->body, "unset");
    config_error_t cerr = {0};
    const char *key;
    json_t *value;
    size_t i;

    if (set != NULL && !json_is_object(set))
        return api_fail(err, 400, "bad_request", NULL,
                        "\"set\" must be an object of dotted keys to values");
    if (unset != NULL && !json_is_array(unset))
        return api_fail(err, 400, "bad_request", NULL, "\"unset\" must be an array of dotted keys");

    json_object_foreach(set, key, value) {
        if (config_set_path(cfg, key, json_incref(value), &cerr) != 0)
            return api_fail(err, 400, "invalid_config", cerr.field[0] ? cerr.field : key, "%s",
                            cerr.message);
    }
    json_array_foreach(unset, i, value) {
        if (!json_is_string(value))
            return api_fail(err, 400, "bad_request", NULL, "\"unset\" entries must be strings");
        if (config_unset_path(cfg, json_string_value(value), &cerr) != 0)
            return api_fail(err, 400, "invalid_config",
                            cerr.field[0] ? cerr.field : json_string_value(value), "%s",
                            cerr.message);
    }
    return 0;
}

int api_apps_clone(api_ctx_t *ctx, api_error_t *err)
{
    store_instance_t source;
    int rc = -1;

    if (ctx->body != NULL && api_require_object(ctx, err) != 0)
        return -1;
    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_READ, &source) != 0)
        return -1;

    json_t *cfg = json_deep_copy(source.config);
    /* A clone by someone else must not carry the source owner's secrets. */
    if (!ctx->user.admin && strcmp(source.owner, ctx->user.name) != 0) {
        json_t *without = config_export(cfg, 0);
        json_decref(cfg);
        cfg = without;
    }
    store_instance_clear(&source);

    if (cfg != NULL && api_clone_edits(ctx, err, cfg) == 0)
        rc = api_launch(ctx, err, cfg);
    else if (cfg == NULL)
        api_fail(err, 500, "internal", NULL, "out of memory cloning the configuration");
    json_decref(cfg);
    return rc;
}
