/* `nimdeck tokens`: create, list and revoke tokens. A token is printed only
 * on the stdout of `tokens create`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_internal.h"

#define TOKENS_DAYS_MAX 3650
#define TOKENS_DAYS_MIN_TEXT "0.0000116"
#define TOKENS_SECONDS_PER_DAY 86400.0

static const char tokens_usage[] =
    "usage: nimdeck tokens COMMAND [OPTIONS]\n"
    "\n"
    "Manage tokens. Scopes: 'api' (CLI, REST API, web UI), 'gateway' (model\n"
    "endpoints), 'embed' (read-only plots of one instance).\n"
    "\n"
    "Commands:\n"
    "  create [--days N] [--scope gateway|api|embed] [--user NAME] [--instance ID] [--json]\n"
    "                      create a token and print it (shown only this once);\n"
    "                      an embed token needs --instance ID\n"
    "  list [--json]       list tokens (never the token values); BUILT-IN marks\n"
    "                      the admin token that 'nimdeck up' wrote\n"
    "  revoke ID           revoke a token at once\n"
    "\n"
    "Run 'nimdeck tokens COMMAND --help' for a command's options.\n";

static const cli_option_spec_t create_options[] = {
    {"days", 1}, {"scope", 1}, {"user", 1}, {"instance", 1}, {"json", 0}, {NULL, 0},
};

static const cli_command_t create_command = {
    .name = "tokens create",
    .usage = "usage: nimdeck tokens create [--days N] [--scope gateway|api|embed] [--user NAME]\n"
             "                             [--instance ID] [--json]\n"
             "\n"
             "Create a token and print it alone on stdout. It is shown only this once.\n"
             "\n"
             "Options:\n"
             "  --days N        lifetime in days, a decimal number such as 30 or 0.5, from\n"
             "                  0.0000116 (1 second) to 3650 (default 30)\n"
             "  --scope SCOPE   gateway (default), api or embed\n"
             "  --user NAME     owner of the token (admin only; default: yourself)\n"
             "  --instance ID   the instance whose plots an embed token may read; required\n"
             "                  with --scope embed and accepted only there\n"
             "  --json          print id, token, user, scope, created_at, expires_at as JSON\n",
    .options = create_options,
};

/* A lifetime shorter than a second would create a token that has expired
 * before it is printed. */
static int tokens_parse_days(const char *text, double *days)
{
    if (cli_parse_decimal(text, days) != 0)
        return -1;
    if (*days * TOKENS_SECONDS_PER_DAY < 1.0 || *days > TOKENS_DAYS_MAX)
        return -1;
    return 0;
}

static int tokens_create(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    json_t *body = NULL;
    double days = 0;
    int rc = cli_begin(&ctx, &create_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;

    const char *days_text = cli_option(&ctx.args, "days");
    const char *scope = cli_option(&ctx.args, "scope");
    const char *user = cli_option(&ctx.args, "user");
    const char *instance = cli_option(&ctx.args, "instance");
    if (days_text != NULL && tokens_parse_days(days_text, &days) != 0) {
        rc = cli_usage_error(&create_command,
                             "--days must be a decimal number of days from %s (1 second) to %d, "
                             "got '%s'",
                             TOKENS_DAYS_MIN_TEXT, TOKENS_DAYS_MAX, days_text);
        goto out;
    }
    if (scope == NULL)
        scope = "gateway";
    if (strcmp(scope, "gateway") != 0 && strcmp(scope, "api") != 0 && strcmp(scope, "embed") != 0) {
        rc = cli_usage_error(&create_command, "--scope must be gateway, api or embed, got '%s'", scope);
        goto out;
    }
    if (strcmp(scope, "embed") == 0 && instance == NULL) {
        rc = cli_usage_error(&create_command,
                             "an embed token reads one instance's plots: add --instance ID "
                             "(an id from 'nimdeck apps list')");
        goto out;
    }
    if (strcmp(scope, "embed") != 0 && instance != NULL) {
        rc = cli_usage_error(&create_command,
                             "--instance '%s' applies only to --scope embed, got --scope %s",
                             instance, scope);
        goto out;
    }

    /* Without --days the server picks its default (30 days, cut to the
     * caller's own token expiry for non-admins). */
    body = json_pack("{s:s}", "scope", scope);
    if (body == NULL ||
        (days_text != NULL && json_object_set_new(body, "days", json_real(days)) != 0) ||
        (user != NULL && json_object_set_new(body, "user", json_string(user)) != 0) ||
        (instance != NULL && json_object_set_new(body, "instance_id", json_string(instance)) != 0)) {
        fprintf(stderr, "error: out of memory building the request\n");
        rc = CLI_FAILED;
        goto out;
    }

    rc = cli_request(&ctx, "POST", "/api/v1/tokens", body, &res);
    if (rc != CLI_OK)
        goto out;
    if (cli_flag(&ctx.args, "json")) {
        cli_print_json(res.body);
    } else {
        const char *token = json_string_value(json_object_get(res.body, "token"));
        if (token == NULL) {
            fprintf(stderr, "error: the server's response contains no token\n");
            rc = CLI_FAILED;
        } else {
            printf("%s\n", token);
        }
    }
    api_result_free(&res);

out:
    json_decref(body);
    cli_end(&ctx);
    return rc;
}

static const cli_command_t list_command = {
    .name = "tokens list",
    .usage = "usage: nimdeck tokens list [--json]\n"
             "\n"
             "List your tokens (an admin sees all): id, user, scope, created, expires,\n"
             "revoked, and whether it is built in. The built-in token is the admin token\n"
             "in DATA/admin-token that 'nimdeck up' wrote; its gateway and agent use it,\n"
             "so it cannot be revoked. Token values are never shown.\n"
             "\n"
             "Options:\n"
             "  --json    print the API object {\"tokens\": [...]}\n",
    .options = cli_json_only_options,
};

static int tokens_list(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    json_t *token;
    size_t i;
    int rc = cli_begin(&ctx, &list_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    rc = cli_request(&ctx, "GET", "/api/v1/tokens", NULL, &res);
    if (rc != CLI_OK)
        goto out;

    /* The API never lists token values; drop any that slipped in anyway. */
    json_array_foreach(json_object_get(res.body, "tokens"), i, token)
        json_object_del(token, "token");

    if (cli_flag(&ctx.args, "json")) {
        cli_print_json(res.body);
        api_result_free(&res);
        goto out;
    }

    static const cli_column_t columns[] = {
        {"ID", "id", CLI_CELL_STRING},
        {"USER", "user", CLI_CELL_STRING},
        {"SCOPE", "scope", CLI_CELL_STRING},
        {"CREATED", "created_at", CLI_CELL_TIME},
        {"EXPIRES", "expires_at", CLI_CELL_TIME},
        {"REVOKED", "revoked", CLI_CELL_BOOL},
        {"BUILT-IN", "builtin", CLI_CELL_BOOL},
        {NULL, NULL, CLI_CELL_STRING},
    };
    cli_print_rows(json_object_get(res.body, "tokens"), columns);
    api_result_free(&res);

out:
    cli_end(&ctx);
    return rc;
}

static const cli_command_t revoke_command = {
    .name = "tokens revoke",
    .usage = "usage: nimdeck tokens revoke ID\n"
             "\n"
             "Revoke a token by its id (from 'nimdeck tokens list'). Gateways reject it\n"
             "at once. The built-in admin token cannot be revoked: to replace it, stop\n"
             "the server, delete DATA/admin-token, start the server again (it writes a\n"
             "new one), then revoke the old one.\n",
    .options = NULL,
    .arguments = "ID",
    .min_positional = 1,
    .max_positional = 1,
};

static int tokens_revoke(int argc, char **argv)
{
    return cli_run_delete(&revoke_command, argc, argv, "tokens/", "revoked token", NULL);
}

int cli_tokens_main(int argc, char **argv)
{
    static const cli_subcommand_t subs[] = {
        {"create", tokens_create},
        {"list", tokens_list},
        {"revoke", tokens_revoke},
        {NULL, NULL},
    };

    return cli_dispatch("tokens", tokens_usage, subs, argc, argv);
}
