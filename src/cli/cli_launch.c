/* `nimdeck launch`: read a configuration file, apply edits, check it here,
 * then create the instance on the server. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_internal.h"
#include "config/config.h"

static const cli_option_spec_t launch_options[] = {
    {"config", 1},
    {"set", 1},
    {"unset", 1},
    {"json", 0},
    {NULL, 0},
};

static const cli_command_t launch_command = {
    .name = "launch",
    .usage =
        "usage: nimdeck launch --config FILE [--set KEY=VALUE]... [--unset KEY]... [--json]\n"
        "\n"
        "Start an instance from a configuration file. The configuration is checked\n"
        "before anything is sent: an invalid one is reported and nothing is created.\n"
        "\n"
        "Options:\n"
        "  --config FILE     the configuration, a JSON object (\"-\" reads stdin),\n"
        "                    for example examples/nim-sim.json\n"
        "  --set KEY=VALUE   change a key first; dots address nested keys\n"
        "                    (env.NGC_API_KEY=..., docker.shm_size=16g). VALUE is read\n"
        "                    as JSON when it parses as JSON (2, 0.5, null, true, [..]),\n"
        "                    otherwise as a string. Repeatable, applied in order.\n"
        "  --unset KEY       remove a key first. Repeatable.\n"
        "  --json            print the new instance as JSON (id, status, endpoint, ...)\n",
    .options = launch_options,
    .min_positional = 0,
    .max_positional = 0,
};

/* Return the name that messages give the configuration's source. */
static const char *launch_source(const char *path)
{
    return strcmp(path, "-") == 0 ? "standard input" : path;
}

/* Open path ("-" is stdin) for reading; prints the error and returns NULL,
 * also for a directory, which fopen accepts but which cannot be read. */
static FILE *launch_open(const char *path)
{
    FILE *file = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    struct stat info;

    if (file == NULL) {
        fprintf(stderr, "error: cannot read configuration file '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(file), &info) == 0 && S_ISDIR(info.st_mode)) {
        if (file == stdin)
            fprintf(stderr, "error: standard input is a directory, not a configuration file\n");
        else
            fprintf(stderr, "error: --config '%s' is a directory; give a JSON configuration file "
                            "such as examples/nim-sim.json\n",
                    path);
        if (file != stdin)
            fclose(file);
        return NULL;
    }
    return file;
}

/* Load the configuration; prints the error and returns NULL. */
static json_t *launch_load(const char *path)
{
    const char *source = launch_source(path);
    FILE *file = launch_open(path);
    json_error_t jerr;
    json_t *cfg;

    if (file == NULL)
        return NULL;
    cfg = json_loadf(file, JSON_REJECT_DUPLICATES, &jerr);
    if (file != stdin)
        fclose(file);
    if (cfg != NULL)
        return cfg;

    /* jansson reports empty input as "'[' or '{' expected near end of file". */
    if (jerr.position == 0)
        fprintf(stderr, "error: %s is empty; a configuration is a JSON object such as "
                        "examples/nim-sim.json\n",
                source);
    else
        fprintf(stderr, "error: %s is not valid JSON: %s (line %d, column %d)\n", source,
                json_error_code(&jerr) == json_error_null_character
                    ? "NUL characters (\\u0000) are not allowed in JSON strings"
                    : jerr.text,
                jerr.line, jerr.column);
    return NULL;
}

/* Apply --set and --unset in the order given. */
static int launch_apply_edits(const cli_args_t *args, json_t *cfg)
{
    config_error_t err;

    for (size_t i = 0; i < args->option_count; i++) {
        const cli_option_t *option = &args->options[i];
        int rc = 0;

        if (strcmp(option->name, "set") == 0)
            rc = config_apply_set(cfg, option->value, &err);
        else if (strcmp(option->name, "unset") == 0)
            rc = config_unset_path(cfg, option->value, &err);
        if (rc != 0) {
            fputs("error: ", stderr);
            cli_print_visible(stderr, err.message, NULL);
            fputc('\n', stderr);
            return -1;
        }
    }
    return 0;
}

void cli_print_launched(const json_t *instance, int as_json)
{
    const char *id = cli_string_or(json_object_get(instance, "id"), "?");

    if (as_json) {
        cli_print_json(instance);
        return;
    }
    /* Every value comes from the server, so each is made safe for a terminal. */
    buf_t visible_id = BUF_INIT;
    const char *shown_id = cli_append_visible(&visible_id, id, NULL) == 0 && visible_id.data != NULL
                               ? visible_id.data
                               : "?";

    printf("Launched ");
    cli_print_visible(stdout, cli_string_or(json_object_get(instance, "name"), "instance"), NULL);
    printf(" as %s\n  status:   ", shown_id);
    cli_print_visible(stdout, cli_string_or(json_object_get(instance, "status"), "-"), NULL);
    printf("\n  endpoint: ");
    cli_print_visible(stdout, cli_string_or(json_object_get(instance, "endpoint"), "-"), NULL);
    printf("\nFollow it with 'nimdeck apps show %s' or 'nimdeck apps logs %s --follow'.\n",
           shown_id, shown_id);
    buf_free(&visible_id);
}

int cli_launch_main(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    config_error_t err;
    json_t *cfg = NULL;
    int rc = cli_begin(&ctx, &launch_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;

    const char *path = cli_option(&ctx.args, "config");
    if (path == NULL) {
        rc = cli_usage_error(&launch_command, "missing --config FILE");
        goto out;
    }

    rc = CLI_USAGE;
    cfg = launch_load(path);
    if (cfg == NULL || launch_apply_edits(&ctx.args, cfg) != 0)
        goto out;
    if (config_validate(cfg, &err) != 0) {
        /* The message quotes the file's values, which may hold control characters. */
        fprintf(stderr, "error: %s: ", launch_source(path));
        cli_print_visible(stderr, err.message, NULL);
        fputc('\n', stderr);
        goto out;
    }

    rc = cli_request_config(&ctx, "POST", "/api/v1/apps", cfg, launch_source(path), &res);
    if (rc != CLI_OK)
        goto out;
    cli_print_launched(res.body, cli_flag(&ctx.args, "json"));
    api_result_free(&res);

out:
    json_decref(cfg);
    cli_end(&ctx);
    return rc;
}
