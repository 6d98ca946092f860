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

/* Every null env value is taken from the owner's vault at lease time, so
 * the vault must have an entry of that name now. */
static int api_check_vault_env(api_ctx_t *ctx, api_error_t *err, json_t *cfg)
{
    const char *name;
    json_t *value;
    char field[160];

    json_object_foreach(json_object_get(cfg, "env"), name, value) {
        if (!json_is_null(value) || api_vault_has(ctx, ctx->user.name, name))
            continue;
        snprintf(field, sizeof(field), "env.%s", name);
        return api_fail(err, 400, "invalid_config", field,
                        "env %s is null, which takes its value from the vault, but the vault of "
                        "user %s has no entry %s; add it with `nimdeck vault set %s` or give a "
                        "value",
                        name, ctx->user.name, name, name);
    }
    return 0;
}

/* Only admins may use the process runtime: it runs the command as the
 * agent's OS user, which can read the data folder, the admin token and the
 * database. */
static int api_check_runtime(api_ctx_t *ctx, api_error_t *err, json_t *cfg)
{
    const char *runtime = json_string_value(json_object_get(cfg, "runtime"));

    if (ctx->user.admin || runtime == NULL || strcmp(runtime, "process") != 0)
        return 0;
    return api_fail(err, 403, "forbidden", "runtime",
                    "the process runtime runs commands as the agent's OS user, so only admins "
                    "may use it; user %s is not an admin (the docker runtime will be open to "
                    "writers)",
                    ctx->user.name);
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
                        "queue \"%s\" does not exist; create it with `nimdeck queues create "
                        "%s` (POST /api/v1/queues) or use \"default\"",
                        queue, queue);

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
    return api_check_vault_env(ctx, err, cfg);
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
    const char *project = json_string_value(json_object_get(cfg, "project"));
    if (!api_valid_user_name(project))
        return api_fail(err, 400, "invalid_config", "project",
                        "\"project\" must be %s, got \"%s\"", API_NAME_RULE, project);
    /* The 403 names "project", so that the launch form shows it there. */
    if (api_require_perm(ctx, err, project, STORE_PERM_WRITE) != 0)
        return api_set_field(err, "project");
    if (api_check_runtime(ctx, err, cfg) != 0 || api_launch_checks(ctx, err, cfg) != 0)
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
    /* The gateway state lists queued instances too, so the gateway returns
     * 503 for them, not 404. */
    server_state_changed(ctx->srv);
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
    api_reply(ctx, 200,
              include ? config_export(inst.config, 1) : server_config_public(ctx->srv, &inst));
    store_instance_clear(&inst);
    return 0;
}

/* Apply one {"set": KEY, "value": V} or {"unset": KEY} edit to cfg. */
static int api_clone_edit(api_error_t *err, json_t *cfg, json_t *edit, size_t index)
{
    static const api_field_t fields[] = {
        {"set", API_JSON_STRING, 0},
        {"value", API_JSON_ANY, 0},
        {"unset", API_JSON_STRING, 0},
        {NULL, 0, 0},
    };
    json_t *set = json_object_get(edit, "set");
    json_t *unset = json_object_get(edit, "unset");
    json_t *value = json_object_get(edit, "value");
    config_error_t cerr = {0};
    char where[32];

    snprintf(where, sizeof(where), "edits[%zu]", index);
    if (api_check_fields(err, edit, fields, where) != 0)
        return -1;
    if ((set != NULL) == (unset != NULL) || (set != NULL) != (value != NULL))
        return api_fail(err, 400, "bad_request", where,
                        "edits[%zu] must be {\"set\": KEY, \"value\": VALUE} or "
                        "{\"unset\": KEY}",
                        index);
    const char *key = json_string_value(set != NULL ? set : unset);

    int rc = set != NULL ? config_set_path(cfg, key, json_incref(value), &cerr)
                         : config_unset_path(cfg, key, &cerr);
    if (rc != 0)
        return api_fail(err, 400, "invalid_config", cerr.field[0] ? cerr.field : key, "%s",
                        cerr.message);
    return 0;
}

/* Apply the older body form: every "set" (an object) first, then every
 * "unset" (an array of keys). */
static int api_clone_legacy_edits(api_ctx_t *ctx, api_error_t *err, json_t *cfg)
{
    json_t *set = json_object_get(ctx->body, "set");
    json_t *unset = json_object_get(ctx->body, "unset");
    config_error_t cerr = {0};
    const char *key;
    json_t *value;
    size_t i;

    if (set != NULL && !json_is_object(set))
        return api_fail(err, 400, "bad_request", "set",
                        "\"set\" must be an object of dotted keys to values");
    if (unset != NULL && !json_is_array(unset))
        return api_fail(err, 400, "bad_request", "unset",
                        "\"unset\" must be an array of dotted keys");

    json_object_foreach(set, key, value) {
        if (config_set_path(cfg, key, json_incref(value), &cerr) != 0)
            return api_fail(err, 400, "invalid_config", cerr.field[0] ? cerr.field : key, "%s",
                            cerr.message);
    }
    json_array_foreach(unset, i, value) {
        if (!json_is_string(value))
            return api_fail(err, 400, "bad_request", "unset", "\"unset\" entries must be strings");
        if (config_unset_path(cfg, json_string_value(value), &cerr) != 0)
            return api_fail(err, 400, "invalid_config",
                            cerr.field[0] ? cerr.field : json_string_value(value), "%s",
                            cerr.message);
    }
    return 0;
}

/* Apply the clone body's edits to cfg: the "edits" list in its order, or
 * the older "set"/"unset" form. */
static int api_clone_edits(api_ctx_t *ctx, api_error_t *err, json_t *cfg)
{
    json_t *edits = json_object_get(ctx->body, "edits");
    json_t *edit;
    size_t i;

    if (edits == NULL)
        return api_clone_legacy_edits(ctx, err, cfg);
    if (!json_is_array(edits))
        return api_fail(err, 400, "bad_request", "edits",
                        "\"edits\" must be an array of {\"set\": KEY, \"value\": VALUE} and "
                        "{\"unset\": KEY}");
    if (json_object_get(ctx->body, "set") != NULL || json_object_get(ctx->body, "unset") != NULL)
        return api_fail(err, 400, "bad_request", NULL,
                        "send either \"edits\" or the older \"set\" and \"unset\", not both");

    json_array_foreach(edits, i, edit) {
        if (api_clone_edit(err, cfg, edit, i) != 0)
            return -1;
    }
    return 0;
}

int api_apps_clone(api_ctx_t *ctx, api_error_t *err)
{
    static const api_field_t fields[] = {
        {"edits", API_JSON_ARRAY, 0},
        {"set", API_JSON_OBJECT, 0},
        {"unset", API_JSON_ARRAY, 0},
        {NULL, 0, 0},
    };
    store_instance_t source;
    int rc = -1;

    if (api_check_body(ctx, err, fields) != 0)
        return -1;
    if (api_load_instance(ctx, err, ctx->params[0], STORE_PERM_READ, &source) != 0)
        return -1;

    /* A clone by someone else must not carry the source owner's secrets. */
    json_t *cfg = ctx->user.admin || strcmp(source.owner, ctx->user.name) == 0
                      ? json_deep_copy(source.config)
                      : server_config_public(ctx->srv, &source);
    store_instance_clear(&source);

    if (cfg != NULL && api_clone_edits(ctx, err, cfg) == 0)
        rc = api_launch(ctx, err, cfg);
    else if (cfg == NULL)
        api_fail(err, 500, "internal", NULL, "out of memory cloning the configuration");
    json_decref(cfg);
    return rc;
}
