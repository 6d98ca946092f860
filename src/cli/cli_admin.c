/* `nimdeck vault`, `routes`, `queues` and `agents`: named resources that
 * are created, listed and deleted by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"

/* POST {"name": NAME} to collection and print done_verb NAME. */
static int admin_create(const cli_command_t *command, int argc, char **argv, const char *path,
                        const char *what)
{
    cli_ctx_t ctx;
    api_result_t res;
    json_t *body = NULL;
    int rc = cli_begin(&ctx, command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    body = json_pack("{s:s}", "name", ctx.args.positional[0]);
    rc = CLI_USAGE;
    if (body == NULL) {
        fprintf(stderr, "error: %s name '%s' is not valid UTF-8\n", what, ctx.args.positional[0]);
        goto out;
    }
    rc = cli_request(&ctx, "POST", path, body, &res);
    if (rc != CLI_OK)
        goto out;
    printf("created %s %s\n", what, ctx.args.positional[0]);
    api_result_free(&res);

out:
    json_decref(body);
    cli_end(&ctx);
    return rc;
}

/* Vault names as the API stores them: 1-128 of [A-Za-z0-9._-]. */
static int vault_name_valid(const char *name)
{
    size_t len = strlen(name);

    return len > 0 && len <= 128 &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

static const cli_command_t vault_set_command = {
    .name = "vault set",
    .usage = "usage: nimdeck vault set NAME < value\n"
             "\n"
             "Store a secret under NAME, reading the value from stdin (one trailing\n"
             "newline is removed; on a terminal the input is not echoed). Entries whose\n"
             "names are valid environment variable names are set in every instance you\n"
             "launch, and configuration env values of null are taken from here.\n"
             "Example: printf '%s' \"$NGC_API_KEY\" | nimdeck vault set NGC_API_KEY\n",
    .options = NULL,
    .arguments = "NAME",
    .min_positional = 1,
    .max_positional = 1,
};

static int vault_set(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    buf_t path = BUF_INIT;
    json_t *body = NULL;
    char *value = NULL;
    int rc = cli_begin(&ctx, &vault_set_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    const char *name = ctx.args.positional[0];
    if (!vault_name_valid(name)) {
        rc = cli_usage_error(&vault_set_command, "vault name '%s' must be 1-128 characters of A-Z a-z 0-9 . _ -",
                             name);
        goto out;
    }

    rc = CLI_USAGE;
    value = cli_read_secret_stdin("value (not echoed): ");
    if (value == NULL)
        goto out;
    if (value[0] == '\0') {
        fprintf(stderr, "error: no value on stdin for vault entry %s\n", name);
        goto out;
    }
    body = json_pack("{s:s}", "value", value);
    if (body == NULL) {
        fprintf(stderr, "error: the value for vault entry %s is not valid UTF-8\n", name);
        goto out;
    }

    rc = CLI_FAILED;
    if (cli_path(&path, "vault/", name, NULL) != 0)
        goto out;
    rc = cli_request(&ctx, "PUT", path.data, body, &res);
    if (rc != CLI_OK)
        goto out;
    printf("stored vault entry %s\n", name);
    api_result_free(&res);

out:
    if (value != NULL) {
        explicit_bzero(value, strlen(value));
        free(value);
    }
    json_decref(body);
    buf_free(&path);
    cli_end(&ctx);
    return rc;
}

static const cli_command_t vault_list_command = {
    .name = "vault list",
    .usage = "usage: nimdeck vault list [--json]\n"
             "\n"
             "List your vault entries by name and update time. Values are never shown.\n"
             "\n"
             "Options:\n"
             "  --json    print the API object {\"entries\": [...]}\n",
    .options = cli_json_only_options,
};

static int vault_list(int argc, char **argv)
{
    static const cli_column_t columns[] = {
        {"NAME", "name", CLI_CELL_STRING},
        {"UPDATED", "updated_at", CLI_CELL_TIME},
        {NULL, NULL, CLI_CELL_STRING},
    };
    return cli_run_list(&vault_list_command, argc, argv, "/api/v1/vault", "entries", columns);
}

static const cli_command_t vault_delete_command = {
    .name = "vault delete",
    .usage = "usage: nimdeck vault delete NAME\n"
             "\n"
             "Delete a vault entry. Instances already running keep their environment.\n",
    .options = NULL,
    .arguments = "NAME",
    .min_positional = 1,
    .max_positional = 1,
};

static int vault_delete(int argc, char **argv)
{
    return cli_run_delete(&vault_delete_command, argc, argv, "vault/", "deleted vault entry", NULL);
}

int cli_vault_main(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimdeck vault COMMAND [OPTIONS]\n"
        "\n"
        "Store secrets (API keys, passwords) encrypted on the server. They reach\n"
        "instances as environment variables and are masked in logs.\n"
        "\n"
        "Commands:\n"
        "  set NAME         store a value read from stdin\n"
        "  list [--json]    list entry names\n"
        "  delete NAME      delete an entry\n"
        "\n"
        "Run 'nimdeck vault COMMAND --help' for a command's options.\n";
    static const cli_subcommand_t subs[] = {
        {"set", vault_set}, {"list", vault_list}, {"delete", vault_delete}, {NULL, NULL},
    };
    return cli_dispatch("vault", usage, subs, argc, argv);
}

static const cli_command_t routes_create_command = {
    .name = "routes create",
    .usage = "usage: nimdeck routes create NAME\n"
             "\n"
             "Create a route: a stable endpoint path /serve/NAME/ that an instance\n"
             "launched with \"route\": \"NAME\" serves. Names are 1-64 of a-z 0-9 . _ -,\n"
             "starting with a letter or digit. Admin only.\n",
    .options = NULL,
    .arguments = "NAME",
    .min_positional = 1,
    .max_positional = 1,
};

static int routes_create(int argc, char **argv)
{
    return admin_create(&routes_create_command, argc, argv, "/api/v1/routes", "route");
}

static const cli_command_t routes_list_command = {
    .name = "routes list",
    .usage = "usage: nimdeck routes list [--json]\n"
             "\n"
             "List routes and the instance holding each.\n"
             "\n"
             "Options:\n"
             "  --json    print the API object {\"routes\": [...]}\n",
    .options = cli_json_only_options,
};

static int routes_list(int argc, char **argv)
{
    static const cli_column_t columns[] = {
        {"NAME", "name", CLI_CELL_STRING},
        {"INSTANCE", "instance_id", CLI_CELL_STRING},
        {"CREATED", "created_at", CLI_CELL_TIME},
        {NULL, NULL, CLI_CELL_STRING},
    };
    return cli_run_list(&routes_list_command, argc, argv, "/api/v1/routes", "routes", columns);
}

static const cli_command_t routes_delete_command = {
    .name = "routes delete",
    .usage = "usage: nimdeck routes delete NAME\n"
             "\n"
             "Delete a route. It fails while a running instance holds it. Admin only.\n",
    .options = NULL,
    .arguments = "NAME",
    .min_positional = 1,
    .max_positional = 1,
};

static int routes_delete(int argc, char **argv)
{
    return cli_run_delete(&routes_delete_command, argc, argv, "routes/", "deleted route", NULL);
}

int cli_routes_main(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimdeck routes COMMAND [OPTIONS]\n"
        "\n"
        "Manage routes: stable endpoint paths held by one running instance at a time.\n"
        "\n"
        "Commands:\n"
        "  create NAME      create a route\n"
        "  list [--json]    list routes\n"
        "  delete NAME      delete a route\n"
        "\n"
        "Run 'nimdeck routes COMMAND --help' for a command's options.\n";
    static const cli_subcommand_t subs[] = {
        {"create", routes_create}, {"list", routes_list}, {"delete", routes_delete}, {NULL, NULL},
    };
    return cli_dispatch("routes", usage, subs, argc, argv);
}

static const cli_command_t queues_create_command = {
    .name = "queues create",
    .usage = "usage: nimdeck queues create NAME\n"
             "\n"
             "Create a queue that agents can serve (agent --queue NAME) and\n"
             "configurations can name (\"queue\": \"NAME\"). Names are 1-64 of\n"
             "a-z 0-9 . _ -, starting with a letter or digit. Admin only.\n",
    .options = NULL,
    .arguments = "NAME",
    .min_positional = 1,
    .max_positional = 1,
};

static int queues_create(int argc, char **argv)
{
    return admin_create(&queues_create_command, argc, argv, "/api/v1/queues", "queue");
}

static const cli_command_t queues_list_command = {
    .name = "queues list",
    .usage = "usage: nimdeck queues list [--json]\n"
             "\n"
             "List queues with the number of queued instances and serving agents.\n"
             "\n"
             "Options:\n"
             "  --json    print the API object {\"queues\": [...]}\n",
    .options = cli_json_only_options,
};

static int queues_list(int argc, char **argv)
{
    static const cli_column_t columns[] = {
        {"NAME", "name", CLI_CELL_STRING},
        {"QUEUED", "queued", CLI_CELL_NUMBER},
        {"AGENTS", "agents", CLI_CELL_NUMBER},
        {"CREATED", "created_at", CLI_CELL_TIME},
        {NULL, NULL, CLI_CELL_STRING},
    };
    return cli_run_list(&queues_list_command, argc, argv, "/api/v1/queues", "queues", columns);
}

static const cli_command_t queues_delete_command = {
    .name = "queues delete",
    .usage = "usage: nimdeck queues delete NAME\n"
             "\n"
             "Delete a queue. The server rejects deleting 'default', or a queue while an\n"
             "instance on it is queued or running. Agents that list a deleted queue take\n"
             "nothing from it. Admin only.\n",
    .options = NULL,
    .arguments = "NAME",
    .min_positional = 1,
    .max_positional = 1,
};

static int queues_delete(int argc, char **argv)
{
    return cli_run_delete(&queues_delete_command, argc, argv, "queues/", "deleted queue", NULL);
}

int cli_queues_main(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimdeck queues COMMAND [OPTIONS]\n"
        "\n"
        "Manage queues. The queue 'default' always exists.\n"
        "\n"
        "Commands:\n"
        "  create NAME      create a queue\n"
        "  list [--json]    list queues\n"
        "  delete NAME      delete a queue that no queued or running instance uses\n"
        "\n"
        "Run 'nimdeck queues COMMAND --help' for a command's options.\n";
    static const cli_subcommand_t subs[] = {
        {"create", queues_create}, {"list", queues_list}, {"delete", queues_delete}, {NULL, NULL},
    };
    return cli_dispatch("queues", usage, subs, argc, argv);
}

static const cli_command_t agents_list_command = {
    .name = "agents list",
    .usage = "usage: nimdeck agents list [--json]\n"
             "\n"
             "List registered agents, their queues, running instances and last contact.\n"
             "\n"
             "Options:\n"
             "  --json    print the API object {\"agents\": [...]}\n",
    .options = cli_json_only_options,
};

static int agents_list(int argc, char **argv)
{
    static const cli_column_t columns[] = {
        {"ID", "id", CLI_CELL_STRING},
        {"NAME", "name", CLI_CELL_STRING},
        {"HOSTNAME", "hostname", CLI_CELL_STRING},
        {"ADDRESS", "address", CLI_CELL_STRING},
        {"QUEUES", "queues", CLI_CELL_LIST},
        {"INSTANCES", "instances", CLI_CELL_NUMBER},
        {"LAST SEEN", "last_seen_at", CLI_CELL_TIME},
        {NULL, NULL, CLI_CELL_STRING},
    };
    return cli_run_list(&agents_list_command, argc, argv, "/api/v1/agents", "agents", columns);
}

int cli_agents_main(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimdeck agents COMMAND [OPTIONS]\n"
        "\n"
        "Inspect the agents that run instances ('nimdeck agent' starts one).\n"
        "\n"
        "Commands:\n"
        "  list [--json]    list agents\n"
        "\n"
        "Run 'nimdeck agents COMMAND --help' for a command's options.\n";
    static const cli_subcommand_t subs[] = {{"list", agents_list}, {NULL, NULL}};
    return cli_dispatch("agents", usage, subs, argc, argv);
}
