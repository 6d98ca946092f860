/* `nimdeck apps`: list, show, stop, delete, export and clone instances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli_internal.h"
#include "config/config.h"
#include "util/clock.h"

#define APPS_KEY_MAX 256

static const char apps_usage[] =
    "usage: nimdeck apps COMMAND [OPTIONS]\n"
    "\n"
    "Manage app instances.\n"
    "\n"
    "Commands:\n"
    "  list [--json]                         instances you can read, newest first\n"
    "  show ID [--json]                      one instance: status, endpoint, configuration\n"
    "  stop ID [--wait [--timeout S]]        request a stop; --wait waits for 'stopped'\n"
    "  delete ID                             delete a stopped or failed instance\n"
    "  export ID [--include-secrets]         print the configuration as JSON\n"
    "  clone ID [--set K=V]... [--unset K]... [--json]\n"
    "                                        launch a new instance from ID's configuration\n"
    "  logs ID [--follow] [--json]           console log lines; --follow keeps printing\n"
    "                                        new ones until the instance ends or Ctrl-C\n"
    "  metrics ID [--json] [--step S] [--range S]\n"
    "                                        requests, tokens, latency\n"
    "  history ID [--json]                   status changes\n"
    "\n"
    "Run 'nimdeck apps COMMAND --help' for a command's options.\n";

/* Fetch one instance; prints the error on failure. */
static int apps_get(cli_ctx_t *ctx, const char *id, api_result_t *res)
{
    buf_t path = BUF_INIT;
    int rc = cli_path(&path, "apps/", id, NULL) == 0 ? cli_request(ctx, "GET", path.data, NULL, res)
                                                      : CLI_FAILED;
    buf_free(&path);
    return rc;
}

static void apps_format_idle(const json_t *instance, char *out, size_t size)
{
    json_t *idle = json_object_get(instance, "idle_seconds");

    if (!json_is_number(idle)) {
        snprintf(out, size, "-");
        return;
    }
    cli_format_duration(json_number_value(idle), out, size);
}

static const cli_command_t list_command = {
    .name = "apps list",
    .usage = "usage: nimdeck apps list [--json]\n"
             "\n"
             "List the instances you can read, newest first.\n"
             "\n"
             "Options:\n"
             "  --json    print the API object {\"apps\": [...]}\n",
    .options = cli_json_only_options,
};

static int apps_list(int argc, char **argv)
{
    static const cli_column_t columns[] = {
        {"ID", "id", CLI_CELL_STRING},
        {"NAME", "name", CLI_CELL_STRING},
        {"PROJECT", "project", CLI_CELL_STRING},
        {"STATUS", "status", CLI_CELL_STRING},
        {"IDLE", "idle_seconds", CLI_CELL_SECONDS},
        {"ENDPOINT", "endpoint", CLI_CELL_STRING},
        {NULL, NULL, CLI_CELL_STRING},
    };
    return cli_run_list(&list_command, argc, argv, "/api/v1/apps", "apps", columns);
}

static const cli_command_t show_command = {
    .name = "apps show",
    .usage = "usage: nimdeck apps show ID [--json]\n"
             "\n"
             "Show one instance: status and reason, idle time, endpoint, times and the\n"
             "configuration (secrets shown as null).\n"
             "\n"
             "Options:\n"
             "  --json    print the instance object\n",
    .options = cli_json_only_options,
    .arguments = "ID",
    .min_positional = 1,
    .max_positional = 1,
};

/* Print "label value" with the server's value made safe for a terminal;
 * the value's further lines (a failure reason's log tail) are indented. */
static void apps_print_field(const char *label, const char *value)
{
    printf("%-16s ", label);
    cli_print_visible(stdout, value, "\n                 ");
    fputc('\n', stdout);
}

static void apps_print_time(const json_t *instance, const char *key, const char *label)
{
    char text[40];

    cli_format_time(json_object_get(instance, key), text, sizeof(text));
    apps_print_field(label, text);
}

static void apps_print_instance(const json_t *instance)
{
    char text[64];
    json_t *value;

    apps_print_field("id:", cli_string_or(json_object_get(instance, "id"), "-"));
    apps_print_field("name:", cli_string_or(json_object_get(instance, "name"), "-"));
    apps_print_field("project:", cli_string_or(json_object_get(instance, "project"), "-"));
    apps_print_field("owner:", cli_string_or(json_object_get(instance, "owner"), "-"));
    apps_print_field("status:", cli_string_or(json_object_get(instance, "status"), "-"));
    apps_print_field("status_reason:", cli_string_or(json_object_get(instance, "status_reason"), "-"));
    apps_format_idle(instance, text, sizeof(text));
    apps_print_field("idle:", text);

    value = json_object_get(instance, "idle_time_limit_hours");
    if (json_is_number(value) && json_number_value(value) > 0)
        snprintf(text, sizeof(text), "%g h", json_number_value(value));
    else
        snprintf(text, sizeof(text), "never");
    apps_print_field("idle limit:", text);

    apps_print_field("endpoint:", cli_string_or(json_object_get(instance, "endpoint"), "-"));
    apps_print_field("route:", cli_string_or(json_object_get(instance, "route"), "-"));
    apps_print_field("queue:", cli_string_or(json_object_get(instance, "queue"), "-"));
    apps_print_field("agent:", cli_string_or(json_object_get(instance, "agent"), "-"));
    apps_print_field("upstream:", cli_string_or(json_object_get(instance, "upstream"), "-"));
    apps_print_time(instance, "created_at", "created:");
    apps_print_time(instance, "started_at", "started:");
    apps_print_time(instance, "ready_at", "ready:");
    apps_print_time(instance, "last_activity_at", "last activity:");
    apps_print_time(instance, "stopped_at", "stopped:");

    value = json_object_get(instance, "exit_code");
    if (json_is_integer(value)) {
        snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        apps_print_field("exit code:", text);
    }

    printf("config:\n");
    char *config = cli_json_text(json_object_get(instance, "config"), JSON_INDENT(2));
    for (char *line = config, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        printf("  %s\n", line);
    }
    free(config);
}

static int apps_show(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    int rc = cli_begin(&ctx, &show_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    rc = apps_get(&ctx, ctx.args.positional[0], &res);
    if (rc != CLI_OK)
        goto out;

    if (cli_flag(&ctx.args, "json"))
        cli_print_json(res.body);
    else
        apps_print_instance(res.body);
    api_result_free(&res);

out:
    cli_end(&ctx);
    return rc;
}

static const cli_option_spec_t stop_options[] = {{"wait", 0}, {"timeout", 1}, {NULL, 0}};

static const cli_command_t stop_command = {
    .name = "apps stop",
    .usage = "usage: nimdeck apps stop ID [--wait [--timeout S]]\n"
             "\n"
             "Request a stop and return. The instance is 'stopped' once its process has\n"
             "exited.\n"
             "\n"
             "Options:\n"
             "  --wait         wait until the instance is stopped (or failed)\n"
             "  --timeout S    with --wait, give up after S seconds (default 60)\n",
    .options = stop_options,
    .arguments = "ID",
    .min_positional = 1,
    .max_positional = 1,
};

/* Print "ID STATUS"; the status comes from the server. */
static void apps_print_status(const char *id, const char *status)
{
    printf("%s ", id);
    cli_print_visible(stdout, status, NULL);
    fputc('\n', stdout);
}

static int apps_status_ended(const char *status)
{
    return strcmp(status, "stopped") == 0 || strcmp(status, "failed") == 0;
}

/* Poll every 500 ms until the instance ends or timeout_s passes. */
static int apps_wait_stopped(cli_ctx_t *ctx, const char *id, double timeout_s)
{
    int64_t deadline = clock_mono_ms() + (int64_t)(timeout_s * 1000);
    const struct timespec pause = {0, 500 * 1000 * 1000};
    char status[32] = "";

    for (;;) {
        api_result_t res;
        int rc = apps_get(ctx, id, &res);
        if (rc != CLI_OK)
            return rc;
        snprintf(status, sizeof(status), "%s", cli_string_or(json_object_get(res.body, "status"), "?"));
        api_result_free(&res);

        if (apps_status_ended(status)) {
            apps_print_status(id, status);
            return CLI_OK;
        }
        if (clock_mono_ms() >= deadline)
            break;
        nanosleep(&pause, NULL);
    }

    fprintf(stderr, "error: %s is still ", id);
    cli_print_visible(stderr, status, NULL);
    fprintf(stderr, " after %g s; run 'nimdeck apps show %s' to see why\n", timeout_s, id);
    return CLI_FAILED;
}

static int apps_stop(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    buf_t path = BUF_INIT;
    double timeout_s = 60;
    int rc = cli_begin(&ctx, &stop_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;

    const char *timeout = cli_option(&ctx.args, "timeout");
    if (timeout != NULL && !cli_flag(&ctx.args, "wait")) {
        rc = cli_usage_error(&stop_command, "--timeout works only with --wait");
        goto out;
    }
    if (timeout != NULL && (cli_parse_double(timeout, &timeout_s) != 0 || timeout_s <= 0)) {
        rc = cli_usage_error(&stop_command, "--timeout must be a number of seconds > 0, got '%s'",
                             timeout);
        goto out;
    }

    const char *id = ctx.args.positional[0];
    rc = CLI_FAILED;
    if (cli_path(&path, "apps/", id, "/stop") != 0)
        goto out;
    rc = cli_request(&ctx, "POST", path.data, NULL, &res);
    if (rc != CLI_OK)
        goto out;

    const char *status = cli_string_or(json_object_get(res.body, "status"), "?");
    if (!cli_flag(&ctx.args, "wait") || apps_status_ended(status)) {
        apps_print_status(id, status);
        api_result_free(&res);
        goto out;
    }
    api_result_free(&res);
    rc = apps_wait_stopped(&ctx, id, timeout_s);

out:
    buf_free(&path);
    cli_end(&ctx);
    return rc;
}

static const cli_command_t delete_command = {
    .name = "apps delete",
    .usage = "usage: nimdeck apps delete ID\n"
             "\n"
             "Delete an instance that is stopped or failed, with its logs and metrics.\n"
             "Stop a running one first with 'nimdeck apps stop ID --wait'.\n",
    .options = NULL,
    .arguments = "ID",
    .min_positional = 1,
    .max_positional = 1,
};

static int apps_delete(int argc, char **argv)
{
    return cli_run_delete(&delete_command, argc, argv, "apps/", "deleted", NULL);
}

static const cli_option_spec_t export_options[] = {{"include-secrets", 0}, {NULL, 0}};

static const cli_command_t export_command = {
    .name = "apps export",
    .usage = "usage: nimdeck apps export ID [--include-secrets]\n"
             "\n"
             "Print the instance's configuration as JSON, ready for 'nimdeck launch\n"
             "--config'. Secret env values (names containing KEY, TOKEN, SECRET,\n"
             "PASSWORD or CREDENTIAL) are written as null, which launch takes from the\n"
             "vault.\n"
             "\n"
             "Options:\n"
             "  --include-secrets    write the secret values out\n",
    .options = export_options,
    .arguments = "ID",
    .min_positional = 1,
    .max_positional = 1,
};

static int apps_export(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    buf_t path = BUF_INIT;
    int rc = cli_begin(&ctx, &export_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    rc = CLI_FAILED;
    const char *query = cli_flag(&ctx.args, "include-secrets") ? "/export?include_secrets=1" : "/export";
    if (cli_path(&path, "apps/", ctx.args.positional[0], query) != 0)
        goto out;
    rc = cli_request(&ctx, "GET", path.data, NULL, &res);
    if (rc != CLI_OK)
        goto out;
    cli_print_json(res.body);
    api_result_free(&res);

out:
    buf_free(&path);
    cli_end(&ctx);
    return rc;
}

static const cli_option_spec_t clone_options[] = {
    {"set", 1}, {"unset", 1}, {"json", 0}, {NULL, 0},
};

static const cli_command_t clone_command = {
    .name = "apps clone",
    .usage = "usage: nimdeck apps clone ID [--set KEY=VALUE]... [--unset KEY]... [--json]\n"
             "\n"
             "Launch a new instance from ID's stored configuration (secrets kept).\n"
             "The --set and --unset edits apply in command-line order, so a later one\n"
             "wins over an earlier one on the same key.\n"
             "\n"
             "Options:\n"
             "  --set KEY=VALUE   change a key; dots address nested keys; VALUE is read as\n"
             "                    JSON when it parses as JSON, otherwise as a string\n"
             "  --unset KEY       remove a key\n"
             "  --json            print the new instance as JSON\n",
    .options = clone_options,
    .arguments = "ID",
    .min_positional = 1,
    .max_positional = 1,
};

/* Build {"edits": [{"set": KEY, "value": V}, {"unset": KEY}, ...]} from the
 * --set and --unset options in command-line order, so a later option wins
 * as it does for launch; prints errors. */
static json_t *apps_clone_body(const cli_args_t *args)
{
    json_t *edits = json_array();
    json_t *body = json_pack("{s:o}", "edits", edits);
    config_error_t err;
    char key[APPS_KEY_MAX];

    if (body == NULL)
        return NULL;
    for (size_t i = 0; i < args->option_count; i++) {
        const cli_option_t *option = &args->options[i];
        json_t *value, *edit = NULL;

        if (strcmp(option->name, "unset") == 0) {
            edit = json_pack("{s:s}", "unset", option->value);
        } else if (strcmp(option->name, "set") == 0) {
            if (config_parse_assignment(option->value, key, sizeof(key), &value, &err) != 0) {
                fputs("error: ", stderr);
                cli_print_visible(stderr, err.message, NULL);
                fputc('\n', stderr);
                json_decref(body);
                return NULL;
            }
            edit = json_pack("{s:s, s:o}", "set", key, "value", value);
        } else {
            continue;
        }
        if (edit == NULL || json_array_append_new(edits, edit) != 0) {
            fprintf(stderr, "error: invalid --%s '%s': keys and values must be valid UTF-8\n",
                    option->name, option->value);
            json_decref(body);
            return NULL;
        }
    }
    return body;
}

static int apps_clone(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    buf_t path = BUF_INIT;
    json_t *body = NULL;
    int rc = cli_begin(&ctx, &clone_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    body = apps_clone_body(&ctx.args);
    rc = CLI_USAGE;
    if (body == NULL)
        goto out;

    rc = CLI_FAILED;
    if (cli_path(&path, "apps/", ctx.args.positional[0], "/clone") != 0)
        goto out;
    rc = cli_request_config(&ctx, "POST", path.data, body, NULL, &res);
    if (rc != CLI_OK)
        goto out;
    cli_print_launched(res.body, cli_flag(&ctx.args, "json"));
    api_result_free(&res);

out:
    json_decref(body);
    buf_free(&path);
    cli_end(&ctx);
    return rc;
}

int cli_apps_main(int argc, char **argv)
{
    static const cli_subcommand_t subs[] = {
        {"list", apps_list},       {"show", apps_show},
        {"stop", apps_stop},       {"delete", apps_delete},
        {"export", apps_export},   {"clone", apps_clone},
        {"logs", cli_apps_logs},   {"metrics", cli_apps_metrics},
        {"history", cli_apps_history}, {NULL, NULL},
    };

    return cli_dispatch("apps", apps_usage, subs, argc, argv);
}
