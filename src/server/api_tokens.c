/* API: tokens and the vault. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "server/server_internal.h"
#include "store/token.h"
#include "util/clock.h"
#include "util/log.h"

#define API_DAY_MS (24.0 * 3600.0 * 1000.0)

/* The expiry of a new token of day_count days (days_given: asked for
 * explicitly). A token may not outlive the token that creates it unless an
 * admin creates it, because otherwise any api token could mint a longer one
 * and its expiry would bound nothing. The default is cut to fit; an
 * explicit request for more is rejected. */
static int api_token_expiry(api_ctx_t *ctx, api_error_t *err, double day_count, int days_given,
                            int64_t now, int64_t *expires_at)
{
    int64_t wanted = now + (int64_t)(day_count * API_DAY_MS);
    int64_t limit = ctx->token_expires_at;

    *expires_at = wanted;
    if (ctx->user.admin || wanted <= limit)
        return 0;

    /* A request that overshoots by less than a minute (the caller's token
     * and this one were both asked for N days) is cut, not rejected. */
    if (!days_given || wanted - limit < 60 * 1000) {
        *expires_at = limit;
        return 0;
    }

    /* Round the allowed figure down, so that asking for it succeeds. */
    double allowed = floor((double)(limit - now) / API_DAY_MS * 10000.0) / 10000.0;
    return api_fail(err, 400, "bad_request", "days",
                    "\"days\" %g is too long: a new token may not outlive the token that "
                    "creates it (%s); ask for at most %.4f days, or leave out --days to get "
                    "the longest allowed",
                    day_count, ctx->token_id, allowed);
}

/* Check scope, days, user and instance_id of a token request into token. */
static int api_token_fields(api_ctx_t *ctx, api_error_t *err, store_token_t *token)
{
    static const api_field_t fields[] = {
        {"scope", API_JSON_STRING | API_JSON_NULL, 0},
        {"days", API_JSON_NUMBER | API_JSON_NULL, 0},
        {"user", API_JSON_STRING | API_JSON_NULL, 0},
        {"instance_id", API_JSON_STRING | API_JSON_NULL, 0},
        {NULL, 0, 0},
    };

    if (api_check_body(ctx, err, fields) != 0)
        return -1;
    const char *scope = api_body_string(ctx, "scope");
    json_t *days = json_object_get(ctx->body, "days");
    const char *user = api_body_string(ctx, "user");
    const char *instance_id = api_body_string(ctx, "instance_id");
    double day_count = 30;
    char shown[80];

    scope = scope ? scope : "gateway";
    if (strcmp(scope, "gateway") != 0 && strcmp(scope, "api") != 0 && strcmp(scope, "embed") != 0) {
        api_printable(scope, shown, sizeof(shown));
        return api_fail(err, 400, "bad_request", "scope",
                        "invalid scope \"%s\": expected gateway, api or embed", shown);
    }
    if (json_is_number(days)) {
        day_count = json_number_value(days);
        if (!(day_count > 0) || day_count > 3650)
            return api_fail(err, 400, "bad_request", "days",
                            "invalid \"days\" %g: expected a number above 0 and at most 3650",
                            day_count);
    }
    user = user ? user : ctx->user.name;
    if (strcmp(user, ctx->user.name) != 0 && !ctx->user.admin)
        return api_fail(err, 403, "forbidden", "user",
                        "only an admin may create a token for another user (%s)", user);

    store_user_t owner;
    int rc = ctx->srv->store->ops->user_get(ctx->srv->store, user, &owner);
    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 400, "bad_request", "user", "user %s does not exist", user);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "reading a user");

    if (strcmp(scope, "embed") == 0) {
        store_instance_t inst;
        if (instance_id == NULL)
            return api_fail(err, 400, "bad_request", "instance_id",
                            "an embed token needs instance_id");
        if (api_load_instance(ctx, err, instance_id, STORE_PERM_READ, &inst) != 0)
            return api_set_field(err, "instance_id");
        store_instance_clear(&inst);
        snprintf(token->instance_id, sizeof(token->instance_id), "%s", instance_id);
    } else if (instance_id != NULL) {
        return api_fail(err, 400, "bad_request", "instance_id",
                        "instance_id is only for embed tokens");
    }

    snprintf(token->scope, sizeof(token->scope), "%s", scope);
    snprintf(token->user, sizeof(token->user), "%s", user);
    token->created_at = clock_wall_ms();
    return api_token_expiry(ctx, err, day_count, json_is_number(days), token->created_at,
                            &token->expires_at);
}

int api_tokens_create(api_ctx_t *ctx, api_error_t *err)
{
    store_token_t token = {0};
    char text[TOKEN_TEXT_LEN + 1];

    if (api_require_object(ctx, err) != 0 || api_token_fields(ctx, err, &token) != 0)
        return -1;
    if (token_generate(text, sizeof(text)) != 0)
        return api_fail(err, 500, "internal", NULL, "cannot generate a token");
    server_random_id(token.id, SERVER_INSTANCE_ID_LEN, TOKEN_ALPHABET_HEX);
    token_hash_hex(text, token.hash, sizeof(token.hash));

    if (ctx->srv->store->ops->token_insert(ctx->srv->store, &token) != STORE_OK) {
        sodium_memzero(text, sizeof(text));
        return api_fail_store(ctx, err, "saving a token");
    }
    log_info(SERVER_LOG, "created %s token %s for user %s", token.scope, token.id, token.user);
    server_state_changed(ctx->srv);

    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "id", token.id, "token", text,
                             "user", token.user, "scope", token.scope, "created_at",
                             (json_int_t)token.created_at, "expires_at",
                             (json_int_t)token.expires_at);
    if (body != NULL && token.instance_id[0] != '\0')
        json_object_set_new(body, "instance_id", json_string(token.instance_id));
    sodium_memzero(text, sizeof(text));
    api_reply(ctx, 201, body);
    return 0;
}

int api_tokens_list(api_ctx_t *ctx, api_error_t *err)
{
    json_t *rows = NULL, *row;
    size_t i;
    const char *user = ctx->user.admin ? NULL : ctx->user.name;

    if (ctx->srv->store->ops->token_list(ctx->srv->store, user, NULL, 1, &rows) != STORE_OK)
        return api_fail_store(ctx, err, "listing tokens");
    json_array_foreach(rows, i, row) {
        const char *id = json_string_value(json_object_get(row, "id"));
        json_object_set_new(row, "builtin",
                            json_boolean(id != NULL && strcmp(id, ctx->srv->admin_token_id) == 0));
        json_object_del(row, "hash");
        json_object_set_new(row, "revoked",
                            json_boolean(json_integer_value(json_object_get(row, "revoked"))));
        if (json_is_null(json_object_get(row, "instance_id")))
            json_object_del(row, "instance_id");
    }
    api_reply(ctx, 200, json_pack("{s:o}", "tokens", rows));
    return 0;
}

int api_tokens_revoke(api_ctx_t *ctx, api_error_t *err)
{
    const char *id = ctx->params[0];
    store_token_t token;

    int rc = ctx->srv->store->ops->token_get(ctx->srv->store, id, &token);
    if (rc == STORE_ERROR)
        return api_fail_store(ctx, err, "reading a token");
    /* Another user's token is reported as absent, not as forbidden. */
    if (rc != STORE_OK || (!ctx->user.admin && strcmp(token.user, ctx->user.name) != 0))
        return api_fail(err, 404, "not_found", NULL, "token %s not found", id);
    if (strcmp(id, ctx->srv->admin_token_id) == 0)
        return api_fail(err, 409, "conflict", NULL,
                        "token %s is the built-in admin token in %s/admin-token; the built-in "
                        "gateway and agent of `nimdeck up` use it, so it cannot be revoked. To "
                        "replace it, stop the server, delete that file and start it again "
                        "(a new token is written), then revoke this one",
                        id, ctx->srv->data_dir);

    if (ctx->srv->store->ops->token_revoke(ctx->srv->store, id) != STORE_OK)
        return api_fail_store(ctx, err, "revoking a token");
    log_info(SERVER_LOG, "revoked token %s of user %s", id, token.user);
    server_state_changed(ctx->srv);
    api_reply(ctx, 200, json_pack("{s:s, s:b}", "id", id, "revoked", 1));
    return 0;
}

int api_vault_put(api_ctx_t *ctx, api_error_t *err)
{
    const char *name = ctx->params[0];
    int64_t now = clock_wall_ms();

    static const api_field_t fields[] = {
        {"value", API_JSON_STRING, 1},
        {NULL, 0, 0},
    };
    char shown[80];

    if (!vault_name_valid(name)) {
        api_printable(name, shown, sizeof(shown));
        return api_fail(err, 400, "bad_request", "name",
                        "invalid vault name \"%s\": expected 1-128 characters of A-Z a-z 0-9 "
                        ". _ -, not \".\" or \"..\"",
                        shown);
    }
    if (api_check_body(ctx, err, fields) != 0)
        return -1;
    const char *value = api_body_string(ctx, "value");
    if (value[0] == '\0')
        return api_fail(err, 400, "bad_request", "value",
                        "the vault value for %s is empty; send the secret, or delete the entry "
                        "with DELETE /api/v1/vault/%s",
                        name, name);
    if (strlen(value) > VAULT_VALUE_MAX)
        return api_fail(err, 413, "payload_too_large", "value",
                        "vault value for %s is %zu bytes; the limit is %d bytes", name,
                        strlen(value), VAULT_VALUE_MAX);

    int rc = vault_set(ctx->srv->store, &ctx->srv->vault_key, ctx->user.name, name, value, now);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "saving a vault entry");
    log_info(SERVER_LOG, "user %s set vault entry %s", ctx->user.name, name);
    api_reply(ctx, 200, json_pack("{s:s, s:I}", "name", name, "updated_at", (json_int_t)now));
    return 0;
}

int api_vault_list(api_ctx_t *ctx, api_error_t *err)
{
    json_t *entries = vault_list(ctx->srv->store, ctx->user.name);

    if (entries == NULL)
        return api_fail_store(ctx, err, "listing the vault");
    api_reply(ctx, 200, json_pack("{s:o}", "entries", entries));
    return 0;
}

int api_vault_delete(api_ctx_t *ctx, api_error_t *err)
{
    const char *name = ctx->params[0];
    int rc = ctx->srv->store->ops->vault_delete(ctx->srv->store, ctx->user.name, name);

    if (rc == STORE_NOT_FOUND)
        return api_fail(err, 404, "not_found", NULL, "vault entry %s not found", name);
    if (rc != STORE_OK)
        return api_fail_store(ctx, err, "deleting a vault entry");
    log_info(SERVER_LOG, "user %s deleted vault entry %s", ctx->user.name, name);
    api_reply(ctx, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
    return 0;
}
