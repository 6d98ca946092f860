/* API: health, identity, users, grants and projects. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"
#include "util/clock.h"
#include "util/log.h"

int api_health(api_ctx_t *ctx, api_error_t *err)
{
    (void)err;
    api_reply(ctx, 200, json_pack("{s:b, s:s}", "ok", 1, "version", SERVER_VERSION));
    return 0;
}

int api_whoami(api_ctx_t *ctx, api_error_t *err)
{
    (void)err;
    api_reply(ctx, 200, json_pack("{s:s, s:b}", "user", ctx->user.name, "admin", ctx->user.admin));
    return 0;
}

/* A user creation whose password is hashed on the libuv thread pool, since
 * crypto_pwhash takes tens of milliseconds and must not stall the loop. */
typedef struct {
    uv_work_t work;
    server_t *srv;
    http_exchange_t *ex;
    int exchange_gone;
    store_user_t user;
    char *password;
    int hash_failed;
} api_user_job_t;

static void api_user_job_hash(uv_work_t *work)
{
    api_user_job_t *job = work->data;
    size_t len = strlen(job->password);

    job->hash_failed = crypto_pwhash_str(job->user.password_hash, job->password, len,
                                         crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                         crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0;
    job->user.has_password = !job->hash_failed;
}

static void api_user_job_on_close(http_exchange_t *ex, int aborted, void *user)
{
    api_user_job_t *job = user;
    (void)ex, (void)aborted;

    job->exchange_gone = 1;
}

static void api_user_insert_and_reply(server_t *srv, http_exchange_t *ex, const store_user_t *user,
                                      int hash_failed)
{
    api_ctx_t ctx = {.srv = srv, .ex = ex, .req = http_exchange_request(ex)};

    if (hash_failed) {
        http_respond_error(ex, 500, "internal", "cannot hash the password (out of memory)", NULL);
        return;
    }
    int rc = srv->store->ops->user_create(srv->store, user);
    if (rc == STORE_EXISTS) {
        http_respond_error(ex, 409, "conflict", "a user with this name already exists", "name");
        return;
    }
    if (rc == STORE_CONFLICT) {
        http_respond_error(ex, 409, "conflict",
                           "this name belonged to a deleted user and stays the owner of that "
                           "user's past instances, so it cannot be used again; pick another name",
                           "name");
        return;
    }
    if (rc != STORE_OK) {
        log_error(SERVER_LOG, "cannot create user %s: %s", user->name, store_error(srv->store));
        http_respond_error(ex, 500, "internal", "cannot create the user; see the server log",
                           NULL);
        return;
    }
    log_info(SERVER_LOG, "created user %s (admin %d)", user->name, user->admin);
    if (user->admin)
        server_state_changed(srv);
    api_reply(&ctx, 201, json_pack("{s:s, s:b, s:I}", "name", user->name, "admin", user->admin,
                                   "created_at", (json_int_t)user->created_at));
}

static void api_user_job_done(uv_work_t *work, int status)
{
    api_user_job_t *job = work->data;

    if (!job->exchange_gone) {
        http_exchange_on_close(job->ex, NULL, NULL);
        api_user_insert_and_reply(job->srv, job->ex, &job->user,
                                  job->hash_failed || status != 0);
    }
    sodium_memzero(job->password, strlen(job->password));
    free(job->password);
    free(job);
}

int api_users_create(api_ctx_t *ctx, api_error_t *err)
{
    static const api_field_t fields[] = {
        {"name", API_JSON_STRING, 1},
        {"password", API_JSON_STRING | API_JSON_NULL, 0},
        {"admin", API_JSON_BOOLEAN, 0},
        {NULL, 0, 0},
    };
    store_user_t user = {.created_at = clock_wall_ms()};

    if (api_check_body(ctx, err, fields) != 0)
        return -1;
    const char *name = api_body_string(ctx, "name");
    json_t *password = json_object_get(ctx->body, "password");
    json_t *admin = json_object_get(ctx->body, "admin");

    if (api_check_name(err, "user", name) != 0)
        return -1;
    if (json_is_string(password) && json_string_length(password) == 0)
        return api_fail(err, 400, "bad_request", "password",
                        "\"password\" must not be empty; leave it out for a user without one");

    snprintf(user.name, sizeof(user.name), "%s", name);
    user.admin = json_is_true(admin);
    store_user_t existing;
    if (ctx->srv->store->ops->user_get(ctx->srv->store, name, &existing) == STORE_OK)
        return api_fail(err, 409, "conflict", "name", "user %s already exists", name);

    if (!json_is_string(password)) {
        api_user_insert_and_reply(ctx->srv, ctx->ex, &user, 0);
        return 0;
    }

    api_user_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL || (job->password = strdup(json_string_value(password))) == NULL) {
        free(job);
        return api_fail(err, 500, "internal", NULL, "out of memory creating user %s", name);
    }
    job->srv = ctx->srv;
    job->ex = ctx->ex;
    job->user = user;
    job->work.data = job;
    http_exchange_on_close(ctx->ex, api_user_job_on_close, job);
    uv_queue_work(&ctx->srv->loop, &job->work, api_user_job_hash, api_user_job_done);
    return 0;
}

int api_users_list(api_ctx_t *ctx, api_error_t *err)
{
    json_t *users = NULL, *grants = NULL, *user, *grant;
    size_t i, j;

    if (ctx->srv->store->ops->user_list(ctx->srv->store, &users) != STORE_OK ||
        ctx->srv->store->ops->grant_list(ctx->srv->store, &grants) != STORE_OK) {
        json_decref(users);
        return api_fail_store(ctx, err, "listing users");
    }
    json_array_foreach(users, i, user) {
        json_t *own = json_array();
        const char *name = json_string_value(json_object_get(user, "name"));

        json_array_foreach(grants, j, grant) {
            if (strcmp(json_string_value(json_object_get(grant, "user")), name) == 0)
                json_array_append_new(own, json_pack("{s:O, s:O}", "project",
                                                     json_object_get(grant, "project"),
                                                     "permission",
                                                     json_object_get(grant, "permission")));
        }
        json_object_set_new(user, "admin",
                            json_boolean(json_integer_value(json_object_get(user, "admin"))));
        json_object_set_new(user, "grants", own);
    }
    json_decref(grants);
    api_reply(ctx, 200, json_pack("{s:o}", "users", users));
    return 0;
}

int api_grants_set(api_ctx_t *ctx, api_error_t *err)
{
    static const api_field_t fields[] = {
        {"project", API_JSON_STRING, 1},
        {"permission", API_JSON_STRING, 1},
        {NULL, 0, 0},
    };
    const char *name = ctx->params[0];
    store_user_t user;

    if (api_check_body(ctx, err, fields) != 0)
        return -1;
    const char *project = api_body_string(ctx, "project");
    const char *permission = api_body_string(ctx, "permission");
    store_perm_t perm = store_perm_parse(permission);
    char shown[80];

    if (api_check_name_key(err, "project", project, "project") != 0)
        return -1;
    if (perm == STORE_PERM_NONE) {
        api_printable(permission, shown, sizeof(shown));
        return api_fail(err, 400, "bad_request", "permission",
                        "invalid permission \"%s\": expected read, write or admin", shown);
    }
    int rc = ctx->srv->store->ops->user_get(ctx->srv->store, name, &user);
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL, "user %s not found", name);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "reading a user");

    if (ctx->srv->store->ops->grant_set(ctx->srv->store, name, project, perm, clock_wall_ms()) !=
        STORE_OK)
        return api_fail_store(ctx, err, "saving a grant");
    log_info(SERVER_LOG, "granted %s on project %s to user %s", store_perm_name(perm), project,
             name);
    server_state_changed(ctx->srv);
    api_reply(ctx, 200, json_pack("{s:s, s:s, s:s}", "user", name, "project", project,
                                  "permission", store_perm_name(perm)));
    return 0;
}

int api_grants_delete(api_ctx_t *ctx, api_error_t *err)
{
    const char *name = ctx->params[0];
    const char *project = ctx->params[1];

    int rc = ctx->srv->store->ops->grant_delete(ctx->srv->store, name, project);
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL, "user %s has no grant on project %s", name,
                        project);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "deleting a grant");
    log_info(SERVER_LOG, "withdrew the grant on project %s from user %s", project, name);
    server_state_changed(ctx->srv);
    api_reply(ctx, 200, json_pack("{s:s, s:s, s:b}", "user", name, "project", project, "deleted",
                                  1));
    return 0;
}

int api_users_delete(api_ctx_t *ctx, api_error_t *err)
{
    const char *name = ctx->params[0];
    char holder[64] = "";

    /* The built-in admin owns DATA/admin-token, which `nimdeck up` runs on. */
    if (strcmp(name, "admin") == 0)
        return api_fail(err, 409, "conflict", NULL,
                        "user admin is the built-in admin that DATA/admin-token belongs to; it "
                        "cannot be deleted");
    if (strcmp(name, ctx->user.name) == 0)
        return api_fail(err, 409, "conflict", NULL,
                        "user %s cannot delete itself; ask another admin", name);

    int rc = ctx->srv->store->ops->user_delete(ctx->srv->store, name, clock_wall_ms(), holder,
                                               sizeof(holder));
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL, "user %s not found", name);
    if (rc == STORE_CONFLICT)
        return api_fail(err, 409, "conflict", NULL,
                        "user %s owns instance %s, which is still queued or running; stop it "
                        "first (`nimdeck apps stop %s`)",
                        name, holder, holder);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "deleting a user");
    log_info(SERVER_LOG, "user %s deleted by %s (tokens revoked, grants and vault removed)", name,
             ctx->user.name);
    server_state_changed(ctx->srv);
    api_reply(ctx, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
    return 0;
}

int api_projects_list(api_ctx_t *ctx, api_error_t *err)
{
    json_t *rows = NULL, *row;
    json_t *visible = json_array();
    size_t i;

    if (ctx->srv->store->ops->project_list(ctx->srv->store, &rows) != STORE_OK) {
        json_decref(visible);
        return api_fail_store(ctx, err, "listing projects");
    }
    json_array_foreach(rows, i, row) {
        const char *name = json_string_value(json_object_get(row, "name"));
        if (api_project_perm(ctx, name) >= STORE_PERM_READ)
            json_array_append(visible, row);
    }
    json_decref(rows);
    api_reply(ctx, 200, json_pack("{s:o}", "projects", visible));
    return 0;
}
