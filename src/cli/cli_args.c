/* Option parsing and connection settings shared by every client command. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"

#define CLI_TOKEN_FILE_MAX 4096

static const cli_option_spec_t cli_connection_specs[] = {
    {"server", 1},
    {"token", 1},
    {NULL, 0},
};

static const char cli_connection_help[] =
    "\n"
    "Connection options:\n"
    "  --server URL     the server's API address (default $NIMDECK_SERVER, else " CLI_DEFAULT_SERVER ")\n"
    "  --token TOKEN    an api-scope token (default $NIMDECK_TOKEN, else the file\n"
    "                   $NIMDECK_DATA/admin-token, where 'nimdeck up' writes the admin\n"
    "                   token; NIMDECK_DATA defaults to " CLI_DEFAULT_DATA ")\n"
    "  -h, --help       show this help\n";

static const cli_option_spec_t *cli_find_spec(const cli_option_spec_t *specs, const char *name,
                                              size_t name_len)
{
    const cli_option_spec_t *lists[] = {specs, cli_connection_specs};

    for (size_t l = 0; l < 2; l++) {
        for (const cli_option_spec_t *spec = lists[l]; spec != NULL && spec->name != NULL; spec++) {
            if (strlen(spec->name) == name_len && strncmp(spec->name, name, name_len) == 0)
                return spec;
        }
    }
    return NULL;
}

static int cli_has_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

/* Store one option occurrence; value may be NULL for a flag. */
static int cli_store_option(cli_args_t *args, const char *name, const char *value, char *error,
                            size_t error_size)
{
    if (args->option_count == CLI_MAX_OPTIONS) {
        snprintf(error, error_size, "too many options (at most %d)", CLI_MAX_OPTIONS);
        return -1;
    }
    args->options[args->option_count].name = name;
    args->options[args->option_count].value = value;
    args->option_count++;
    return 0;
}

static int cli_store_positional(cli_args_t *args, const char *value, char *error, size_t error_size)
{
    if (args->positional_count == CLI_MAX_POSITIONAL) {
        snprintf(error, error_size, "unexpected argument '%s'", value);
        return -1;
    }
    args->positional[args->positional_count++] = value;
    return 0;
}

/* Parse argv[*index] as an option, consuming its value when it has one. */
static int cli_parse_option(int argc, char **argv, int *index, const cli_option_spec_t *specs,
                            cli_args_t *args, char *error, size_t error_size)
{
    const char *arg = argv[*index];
    const char *name = arg + 2;
    const char *equals = strchr(name, '=');
    size_t name_len = equals ? (size_t)(equals - name) : strlen(name);
    const cli_option_spec_t *spec = cli_find_spec(specs, name, name_len);

    if (arg[1] != '-' || spec == NULL) {
        int shown = (int)(equals ? (size_t)(equals - arg) : strlen(arg));
        snprintf(error, error_size, "unknown option '%.*s'", shown, arg);
        return -1;
    }
    if (!spec->takes_value) {
        if (equals != NULL) {
            snprintf(error, error_size, "option --%s takes no value, got '%s'", spec->name, arg);
            return -1;
        }
        return cli_store_option(args, spec->name, NULL, error, error_size);
    }

    if (equals != NULL)
        return cli_store_option(args, spec->name, equals + 1, error, error_size);

    /* The next argument is the value, unless it is another long option. */
    const char *next = *index + 1 < argc ? argv[*index + 1] : NULL;
    if (next == NULL || (strncmp(next, "--", 2) == 0 && next[2] != '\0')) {
        snprintf(error, error_size, "option --%s needs a value", spec->name);
        return -1;
    }
    (*index)++;
    return cli_store_option(args, spec->name, next, error, error_size);
}

int cli_parse_args(int argc, char **argv, const cli_option_spec_t *specs, cli_args_t *args,
                   char *error, size_t error_size)
{
    int options_done = 0;

    memset(args, 0, sizeof(*args));
    if (cli_has_help(argc, argv)) {
        args->help = 1;
        return 0;
    }

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int rc;

        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] != '\0')
            rc = cli_parse_option(argc, argv, &i, specs, args, error, error_size);
        else
            rc = cli_store_positional(args, arg, error, error_size);
        if (rc != 0)
            return -1;
    }
    return 0;
}

const char *cli_option(const cli_args_t *args, const char *name)
{
    const char *value = NULL;

    for (size_t i = 0; i < args->option_count; i++) {
        if (strcmp(args->options[i].name, name) == 0)
            value = args->options[i].value;
    }
    return value;
}

int cli_flag(const cli_args_t *args, const char *name)
{
    for (size_t i = 0; i < args->option_count; i++) {
        if (strcmp(args->options[i].name, name) == 0)
            return 1;
    }
    return 0;
}

/* Read a token file's first line; NULL when it is absent or unreadable. */
static char *cli_read_token_file(const char *path)
{
    char text[CLI_TOKEN_FILE_MAX];
    FILE *file = fopen(path, "r");
    size_t len;

    if (file == NULL)
        return NULL;
    len = fread(text, 1, sizeof(text) - 1, file);
    fclose(file);
    text[len] = '\0';

    len = strcspn(text, "\r\n");
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    text[len] = '\0';

    char *token = len > 0 ? strdup(text) : NULL;
    explicit_bzero(text, sizeof(text));
    return token;
}

int cli_resolve_connection(const cli_args_t *args, char *server, size_t server_size,
                           char **token_out)
{
    const char *url = cli_option(args, "server");
    const char *token = cli_option(args, "token");

    if (url == NULL || url[0] == '\0')
        url = getenv("NIMDECK_SERVER");
    if (url == NULL || url[0] == '\0')
        url = CLI_DEFAULT_SERVER;

    /* A bare HOST:PORT is taken as plain HTTP. */
    snprintf(server, server_size, "%s%s", strstr(url, "://") ? "" : "http://", url);
    size_t len = strlen(server);
    while (len > 0 && server[len - 1] == '/')
        server[--len] = '\0';

    if (token == NULL || token[0] == '\0')
        token = getenv("NIMDECK_TOKEN");
    if (token != NULL && token[0] != '\0') {
        *token_out = strdup(token);
        return *token_out != NULL ? 0 : -1;
    }

    const char *data = getenv("NIMDECK_DATA");
    char path[4096];
    snprintf(path, sizeof(path), "%s/admin-token", data && data[0] ? data : CLI_DEFAULT_DATA);
    *token_out = cli_read_token_file(path);
    return *token_out != NULL ? 0 : -1;
}

/* Print the usage synopsis: the help text up to its first blank line, as a
 * long synopsis may wrap onto several lines. */
static void cli_print_usage_line(const cli_command_t *command)
{
    const char *end = strstr(command->usage, "\n\n");
    size_t len = end != NULL ? (size_t)(end - command->usage) : strcspn(command->usage, "\n");

    fprintf(stderr, "%.*s\n", (int)len, command->usage);
}

int cli_usage_error(const cli_command_t *command, const char *fmt, ...)
{
    va_list ap;

    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_print_usage_line(command);
    fprintf(stderr, "Run 'nimdeck %s --help' for details.\n", command->name);
    return CLI_USAGE;
}

/* Write the name of positional argument index, the index-th word of the
 * command's arguments ("ID", "PROJECT"), into out. */
static void cli_argument_name(const cli_command_t *command, size_t index, char *out, size_t size)
{
    const char *word = command->arguments;

    for (size_t i = 0; word != NULL && i < index; i++) {
        word = strchr(word, ' ');
        if (word != NULL)
            word++;
    }
    if (word == NULL || *word == '\0') {
        snprintf(out, size, "argument %zu", index + 1);
        return;
    }
    snprintf(out, size, "%.*s", (int)strcspn(word, " "), word);
}

int cli_begin(cli_ctx_t *ctx, const cli_command_t *command, int argc, char **argv)
{
    char error[512];

    memset(ctx, 0, sizeof(*ctx));
    ctx->command = command;

    if (cli_parse_args(argc, argv, command->options, &ctx->args, error, sizeof(error)) != 0)
        return cli_usage_error(command, "%s for 'nimdeck %s'", error, command->name);

    if (ctx->args.help) {
        fputs(command->usage, stdout);
        fputs(cli_connection_help, stdout);
        return CLI_OK;
    }

    if (ctx->args.positional_count < command->min_positional)
        return cli_usage_error(command, "'nimdeck %s' needs %s", command->name,
                               command->arguments ? command->arguments : "more arguments");
    if (ctx->args.positional_count > command->max_positional)
        return cli_usage_error(command, "unexpected argument '%s' for 'nimdeck %s'",
                               ctx->args.positional[command->max_positional], command->name);

    /* An empty ID or name would become a request for the collection
     * ("/api/v1/apps/"), which fails with a confusing message. */
    for (size_t i = 0; i < ctx->args.positional_count; i++) {
        if (ctx->args.positional[i][0] != '\0')
            continue;
        char name[64];
        cli_argument_name(command, i, name, sizeof(name));
        return cli_usage_error(command, "%s must not be empty: 'nimdeck %s' needs a value there",
                               name, command->name);
    }

    return CLI_CONTINUE;
}

int cli_connect(cli_ctx_t *ctx)
{
    const char *data;

    if (ctx->token != NULL)
        return 0;
    if (cli_resolve_connection(&ctx->args, ctx->server, sizeof(ctx->server), &ctx->token) == 0)
        return 0;

    data = getenv("NIMDECK_DATA");
    fprintf(stderr,
            "error: no API token: pass --token TOKEN or set NIMDECK_TOKEN\n"
            "('nimdeck up' writes an admin token to %s/admin-token; set NIMDECK_DATA to the folder "
            "it was given with --data)\n",
            data && data[0] ? data : CLI_DEFAULT_DATA);
    return -1;
}

void cli_end(cli_ctx_t *ctx)
{
    if (ctx->token != NULL) {
        explicit_bzero(ctx->token, strlen(ctx->token));
        free(ctx->token);
        ctx->token = NULL;
    }
}

int cli_parse_double(const char *text, double *out)
{
    char *end;

    if (text == NULL || text[0] == '\0')
        return -1;
    errno = 0;
    *out = strtod(text, &end);
    return errno == 0 && *end == '\0' && isfinite(*out) ? 0 : -1;
}

int cli_parse_long(const char *text, long *out)
{
    char *end;

    if (text == NULL || text[0] == '\0')
        return -1;
    errno = 0;
    *out = strtol(text, &end, 10);
    return errno == 0 && *end == '\0' ? 0 : -1;
}

int cli_parse_decimal(const char *text, double *out)
{
    size_t digits, fraction = 0;

    if (text == NULL)
        return -1;
    digits = strspn(text, "0123456789");
    if (digits == 0)
        return -1;
    if (text[digits] == '.') {
        fraction = strspn(text + digits + 1, "0123456789");
        if (fraction == 0)
            return -1;
        fraction++;
    }
    if (text[digits + fraction] != '\0')
        return -1;

    /* Only digits and one dot remain. strtod reads the dot as the radix
     * character because nimdeck stays in the C locale (no setlocale call). */
    return cli_parse_double(text, out);
}
