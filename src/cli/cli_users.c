/* `nimdeck users`: add and delete users, grant and revoke project
 * permissions, list users. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"

static const cli_option_spec_t add_options[] = {{"password-stdin", 0}, {"admin", 0}, {NULL, 0}};

static const cli_command_t add_command = {
    .name = "users add",
    .usage = "usage: nimdeck users add NAME [--password-stdin] [--admin]\n"
             "\n"
             "Add a user (admin only). Names are 1-64 of A-Z a-z 0-9 . _ -.\n"
             "\n"
             "Options:\n"
             "  --password-stdin   read a password for the web UI from stdin (one\n"
             "                     trailing newline is removed)\n"
             "  --admin            make the user an administrator\n",
    .options = add_options,
    .arguments = "NAME",
    .min_positional = 1,
    .max_positional = 1,
};

static int users_name_valid(const char *name)
{
    size_t len = strlen(name);

    return len > 0 && len <= 64 &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

static int users_add(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    json_t *body = NULL;
    char *password = NULL;
    int rc = cli_begin(&ctx, &add_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    const char *name = ctx.args.positional[0];
    if (!users_name_valid(name)) {
        rc = cli_usage_error(&add_command, "user name '%s' must be 1-64 characters of A-Z a-z 0-9 . _ -",
                             name);
        goto out;
    }

    rc = CLI_USAGE;
    body = json_pack("{s:s, s:b}", "name", name, "admin", cli_flag(&ctx.args, "admin"));
    if (body == NULL)
        goto out;
    if (cli_flag(&ctx.args, "password-stdin")) {
        password = cli_read_secret_stdin("password (not echoed): ");
        if (password == NULL)
            goto out;
        if (password[0] == '\0') {
            fprintf(stderr, "error: --password-stdin read an empty password\n");
            goto out;
        }
        if (json_object_set_new(body, "password", json_string(password)) != 0) {
            fprintf(stderr, "error: the password is not valid UTF-8\n");
            goto out;
        }
    }

    rc = cli_request(&ctx, "POST", "/api/v1/users", body, &res);
    if (rc != CLI_OK)
        goto out;
    printf("added user %s%s\n", name, cli_flag(&ctx.args, "admin") ? " (admin)" : "");
    api_result_free(&res);

out:
    if (password != NULL) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    json_decref(body);
    cli_end(&ctx);
    return rc;
}

static const cli_command_t grant_command = {
    .name = "users grant",
    .usage = "usage: nimdeck users grant NAME PROJECT read|write|admin\n"
             "\n"
             "Grant a user a permission on a project, replacing an earlier grant\n"
             "(admin only). read: see instances and call their endpoints; write: also\n"
             "launch, stop, clone and delete; admin: everything in the project.\n",
    .options = NULL,
    .arguments = "NAME PROJECT read|write|admin",
    .min_positional = 3,
    .max_positional = 3,
};

static int users_grant(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    buf_t path = BUF_INIT;
    json_t *body = NULL;
    int rc = cli_begin(&ctx, &grant_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    const char *name = ctx.args.positional[0];
    const char *project = ctx.args.positional[1];
    const char *permission = ctx.args.positional[2];
    if (strcmp(permission, "read") != 0 && strcmp(permission, "write") != 0 &&
        strcmp(permission, "admin") != 0) {
        rc = cli_usage_error(&grant_command, "permission must be read, write or admin, got '%s'",
                             permission);
        goto out;
    }

    rc = CLI_USAGE;
    body = json_pack("{s:s, s:s}", "project", project, "permission", permission);
    if (body == NULL) {
        fprintf(stderr, "error: project name '%s' is not valid UTF-8\n", project);
        goto out;
    }
    rc = CLI_FAILED;
    if (cli_path(&path, "users/", name, "/grants") != 0)
        goto out;
    rc = cli_request(&ctx, "POST", path.data, body, &res);
    if (rc != CLI_OK)
        goto out;
    printf("granted %s %s on project %s\n", name, permission, project);
    api_result_free(&res);

out:
    json_decref(body);
    buf_free(&path);
    cli_end(&ctx);
    return rc;
}

static const cli_command_t delete_command = {
    .name = "users delete",
    .usage = "usage: nimdeck users delete NAME\n"
             "\n"
             "Delete a user (admin only). The user's tokens are revoked at once, and the\n"
             "user's grants, vault entries and password are removed. Ended instances keep\n"
             "the name as their owner, so the name cannot be given to a new user. The\n"
             "server rejects deleting the user admin, yourself, or a user who owns a\n"
             "queued or running instance (stop it first with 'nimdeck apps stop ID').\n",
    .options = NULL,
    .arguments = "NAME",
    .min_positional = 1,
    .max_positional = 1,
};

static int users_delete_check(const cli_command_t *command, const char *name)
{
    if (users_name_valid(name))
        return CLI_CONTINUE;
    return cli_usage_error(command, "user name '%s' must be 1-64 characters of A-Z a-z 0-9 . _ -",
                           name);
}

static int users_delete(int argc, char **argv)
{
    return cli_run_delete(&delete_command, argc, argv, "users/", "deleted user",
                          users_delete_check);
}

static const cli_command_t revoke_command = {
    .name = "users revoke",
    .usage = "usage: nimdeck users revoke NAME PROJECT\n"
             "\n"
             "Remove a user's grant on a project (admin only), whatever its permission.\n"
             "The user's tokens stay valid but no longer reach that project's instances.\n",
    .options = NULL,
    .arguments = "NAME PROJECT",
    .min_positional = 2,
    .max_positional = 2,
};

static int users_revoke(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    buf_t path = BUF_INIT;
    int rc = cli_begin(&ctx, &revoke_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    const char *name = ctx.args.positional[0];
    const char *project = ctx.args.positional[1];

    rc = CLI_FAILED;
    if (cli_path(&path, "users/", name, "/grants/") != 0 ||
        cli_append_escaped(&path, project) != 0)
        goto out;
    rc = cli_request(&ctx, "DELETE", path.data, NULL, &res);
    if (rc != CLI_OK)
        goto out;
    printf("removed the grant of user %s on project %s\n", name, project);
    api_result_free(&res);

out:
    buf_free(&path);
    cli_end(&ctx);
    return rc;
}

static const cli_command_t list_command = {
    .name = "users list",
    .usage = "usage: nimdeck users list [--json]\n"
             "\n"
             "List users with their grants (admin only).\n"
             "\n"
             "Options:\n"
             "  --json    print the API object {\"users\": [...]}\n",
    .options = cli_json_only_options,
};

static int users_list(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    json_t *user, *grant;
    size_t i, g;
    int rc = cli_begin(&ctx, &list_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    rc = cli_request(&ctx, "GET", "/api/v1/users", NULL, &res);
    if (rc != CLI_OK)
        goto out;
    if (cli_flag(&ctx.args, "json")) {
        cli_print_json(res.body);
        api_result_free(&res);
        goto out;
    }

    /* Grants are shown as one "project:permission,..." column. */
    json_array_foreach(json_object_get(res.body, "users"), i, user) {
        buf_t grants = BUF_INIT;
        json_array_foreach(json_object_get(user, "grants"), g, grant)
            buf_printf(&grants, "%s%s:%s", g ? "," : "",
                       cli_string_or(json_object_get(grant, "project"), "?"),
                       cli_string_or(json_object_get(grant, "permission"), "?"));
        json_object_set_new(user, "grants_text", json_string(grants.data ? grants.data : "-"));
        buf_free(&grants);
    }

    static const cli_column_t columns[] = {
        {"NAME", "name", CLI_CELL_STRING},
        {"ADMIN", "admin", CLI_CELL_BOOL},
        {"GRANTS", "grants_text", CLI_CELL_STRING},
        {"CREATED", "created_at", CLI_CELL_TIME},
        {NULL, NULL, CLI_CELL_STRING},
    };
    cli_print_rows(json_object_get(res.body, "users"), columns);
    api_result_free(&res);

out:
    cli_end(&ctx);
    return rc;
}

int cli_users_main(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimdeck users COMMAND [OPTIONS]\n"
        "\n"
        "Manage users and their per-project permissions (admin only).\n"
        "\n"
        "Commands:\n"
        "  add NAME [--password-stdin] [--admin]     add a user\n"
        "  delete NAME                               delete a user, revoking the user's tokens\n"
        "  grant NAME PROJECT read|write|admin       grant a permission on a project\n"
        "  revoke NAME PROJECT                       remove a user's grant on a project\n"
        "  list [--json]                             list users and grants\n"
        "\n"
        "Run 'nimdeck users COMMAND --help' for a command's options.\n";
    static const cli_subcommand_t subs[] = {
        {"add", users_add},       {"delete", users_delete}, {"grant", users_grant},
        {"revoke", users_revoke}, {"list", users_list},     {NULL, NULL},
    };
    return cli_dispatch("users", usage, subs, argc, argv);
}
