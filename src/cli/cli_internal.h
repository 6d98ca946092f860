/* Shared parts of the client commands: option parsing, connection settings,
 * REST calls with uniform error reporting, and output helpers. */
#ifndef NIMDECK_CLI_CLI_INTERNAL_H
#define NIMDECK_CLI_CLI_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "util/api_client.h"
#include "util/buf.h"

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8470"
#define CLI_DEFAULT_DATA "./nimdeck-data"
#define CLI_MAX_OPTIONS 128
#define CLI_MAX_POSITIONAL 8

/* Returned by cli_begin when the command should go on running. */
#define CLI_CONTINUE (-1)

/* One option a command accepts, named without its leading "--". */
typedef struct {
    const char *name;
    int takes_value;
} cli_option_spec_t;

/* Options of the commands whose only option is --json. */
extern const cli_option_spec_t cli_json_only_options[];

typedef struct {
    const char *name;   /* the spec's name */
    const char *value;  /* points into argv, or NULL for a flag */
} cli_option_t;

/* Parsed command line: options in the order given, then positionals. */
typedef struct {
    cli_option_t options[CLI_MAX_OPTIONS];
    size_t option_count;
    const char *positional[CLI_MAX_POSITIONAL];
    size_t positional_count;
    int help;
} cli_args_t;

/* What one command accepts, for cli_begin. */
typedef struct {
    const char *name;                   /* "apps list", for messages */
    const char *usage;                  /* full --help text, without the connection options */
    const cli_option_spec_t *options;   /* NULL-terminated; --server, --token, --help are implied */
    const char *arguments;              /* positional arguments for messages: "ID" */
    size_t min_positional;
    size_t max_positional;
} cli_command_t;

typedef struct {
    const cli_command_t *command;
    cli_args_t args;
    char server[512];
    char *token;  /* owned, and wiped and freed by cli_end */
} cli_ctx_t;

/* Parse argv[1..argc) against specs (plus --server, --token, --help).
 * Accepts "--name value", "--name=value", "-h", and "--" to end options.
 * Returns 0, or -1 with a message naming the bad argument in error. */
int cli_parse_args(int argc, char **argv, const cli_option_spec_t *specs, cli_args_t *args,
                   char *error, size_t error_size);

/* Return the last value given for an option, or NULL. */
const char *cli_option(const cli_args_t *args, const char *name);
int cli_flag(const cli_args_t *args, const char *name);

/* Resolve the server URL and token from the options first, then from
 * NIMDECK_SERVER and NIMDECK_TOKEN, then from the default URL and
 * $NIMDECK_DATA/admin-token. Returns 0, or -1 with *token_out NULL when no
 * token is found. The caller owns *token_out. */
int cli_resolve_connection(const cli_args_t *args, char *server, size_t server_size,
                           char **token_out);

/* Parse argv for a command and check the positional count. Returns
 * CLI_CONTINUE when the command should run, or the exit status: CLI_OK
 * after --help, CLI_USAGE after a usage error (already printed). */
int cli_begin(cli_ctx_t *ctx, const cli_command_t *command, int argc, char **argv);
void cli_end(cli_ctx_t *ctx);

/* Settle the server URL and token (once). Returns 0, or -1 after printing
 * that no token was found. cli_request calls it, so that usage errors and
 * local checks come before a missing token is reported. */
int cli_connect(cli_ctx_t *ctx);

/* Print "error: ..." and a hint to run --help. Returns CLI_USAGE. */
int cli_usage_error(const cli_command_t *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Call the API. Returns CLI_OK on a 2xx response with res filled (the caller
 * frees it), CLI_FAILED after printing the error through cli_print_visible
 * (res freed), or CLI_USAGE when no token is found. */
int cli_request(cli_ctx_t *ctx, const char *method, const char *path, const json_t *body,
                api_result_t *res);

/* Like cli_request, but a 400 invalid_config returns CLI_USAGE, and its
 * message starts with source ("my.json: ...") when source is not NULL.
 * Server messages are printed through cli_print_visible. */
int cli_request_config(cli_ctx_t *ctx, const char *method, const char *path, const json_t *body,
                       const char *source, api_result_t *res);

/* Print the error of a failed call (res->status 0: no response) with a
 * hint for the usual causes: no server at the URL, or a rejected token. */
void cli_report_failure(const cli_ctx_t *ctx, const api_result_t *res);

/* GET path and keep the response body as the server sent it (for a CSV
 * download, where cli_request would parse JSON), asking for accept.
 * Returns CLI_OK with body filled on a 2xx response (the caller frees
 * body), CLI_FAILED after printing the error, or CLI_USAGE when no token
 * is found. */
int cli_request_text(cli_ctx_t *ctx, const char *path, const char *accept, buf_t *body);

/* Write text to stdout unchanged, or, when stdout is a terminal, line by
 * line with "\r\n" ends as newlines and other control characters made
 * visible as cli_append_visible does. */
void cli_write_text(const buf_t *text);

/* Append text to b percent-encoded for one URL path segment or query value. */
int cli_append_escaped(buf_t *b, const char *text);

/* Build "/api/v1/<prefix><escaped id><suffix>" into b. */
int cli_path(buf_t *b, const char *prefix, const char *id, const char *suffix);

/* Append text to out with every control character made visible, so that
 * server text cannot send commands to the reader's terminal. Bytes below
 * 0x20 except tab, 0x7f, and bytes that are not valid UTF-8 become \xHH.
 * The C1 controls U+0080-U+009F become \u00HH. Other valid UTF-8 is copied
 * as it is. A newline becomes the string newline when that is not NULL (for
 * example "\n    " to indent a reason's next lines), and \x0a otherwise.
 * Returns 0, or -1 when memory runs out. */
int cli_append_visible(buf_t *out, const char *text, const char *newline);

/* Write text to out as cli_append_visible renders it. NULL text writes nothing. */
void cli_print_visible(FILE *out, const char *text, const char *newline);

/* Serialize value like json_dumps(value, flags), but write DEL and the C1
 * controls as \u escapes, which jansson leaves raw. The JSON value is the
 * same. Returns a string the caller frees, or NULL when memory runs out. */
char *cli_json_text(const json_t *value, size_t flags);

/* Output helpers. cli_print_json writes pretty JSON and a newline. */
void cli_print_json(const json_t *value);
void cli_print_launched(const json_t *instance, int as_json);
void cli_format_time(const json_t *ms, char *out, size_t size);
void cli_format_duration(double seconds, char *out, size_t size);
const char *cli_string_or(const json_t *value, const char *fallback);

/* A table of text cells added row by row and printed with aligned columns
 * (at most 32). Cells are copied. */
typedef struct {
    size_t columns;
    size_t count;  /* cells added so far */
    size_t cap;
    char **cells;
} cli_table_t;

void cli_table_init(cli_table_t *table, size_t columns);
int cli_table_add(cli_table_t *table, const char *cell);
void cli_table_print(const cli_table_t *table, FILE *out);
void cli_table_free(cli_table_t *table);

/* How a list command shows one field of each row. */
typedef enum {
    CLI_CELL_STRING,  /* a string, "-" when null */
    CLI_CELL_TIME,    /* milliseconds since the epoch, shown as RFC 3339 */
    CLI_CELL_NUMBER,
    CLI_CELL_BOOL,    /* "yes" or "no" */
    CLI_CELL_LIST,    /* an array of strings, comma-separated */
    CLI_CELL_SECONDS, /* a duration in seconds, shown as 5m03s, or "-" when null */
    CLI_CELL_MILLISECONDS, /* a time in milliseconds, shown as "35.2 ms", or "-" when null */
} cli_cell_kind_t;

typedef struct {
    const char *header;
    const char *key;
    cli_cell_kind_t kind;
} cli_column_t;

/* Print the array rows as a table with the given columns, which end with a
 * NULL header. */
void cli_print_rows(const json_t *rows, const cli_column_t *columns);

/* Run a list command: GET path, then print body[array_key] as a table, or
 * the body as JSON with --json. */
int cli_run_list(const cli_command_t *command, int argc, char **argv, const char *path,
                 const char *array_key, const cli_column_t *columns);

/* Run a command that deletes what its first positional ARG names. It calls
 * check on ARG when check is not NULL, and stops with check's exit status
 * unless check returns CLI_CONTINUE. It then sends DELETE to
 * /api/v1/<prefix><escaped ARG> and prints done and ARG on one line.
 * Returns the exit status. */
int cli_run_delete(const cli_command_t *command, int argc, char **argv, const char *prefix,
                   const char *done, int (*check)(const cli_command_t *command, const char *arg));

/* Read all of stdin (at most 1 MiB) with one trailing newline removed.
 * When stdin is a terminal, prompt on stderr and turn echo off. Returns a
 * string the caller wipes and frees, or NULL after printing the error. */
char *cli_read_secret_stdin(const char *prompt);

/* Strict number parsing for option values. Each returns 0 or -1. */
int cli_parse_double(const char *text, double *out);

/* Parse a plain decimal number: digits with an optional fraction ("30",
 * "0.5"), no sign, exponent, hexadecimal, spaces, "inf" or "nan". */
int cli_parse_decimal(const char *text, double *out);
int cli_parse_long(const char *text, long *out);

/* Command groups, each dispatching its sub-commands. argv[0] is the group. */
int cli_launch_main(int argc, char **argv);
int cli_apps_main(int argc, char **argv);
int cli_tokens_main(int argc, char **argv);
int cli_vault_main(int argc, char **argv);
int cli_routes_main(int argc, char **argv);
int cli_queues_main(int argc, char **argv);
int cli_agents_main(int argc, char **argv);
int cli_users_main(int argc, char **argv);
int cli_endpoints_main(int argc, char **argv);

/* apps sub-commands that live in their own files. */
int cli_apps_logs(int argc, char **argv);
int cli_apps_metrics(int argc, char **argv);
int cli_apps_history(int argc, char **argv);

/* A group's sub-command table, for cli_dispatch. */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
} cli_subcommand_t;

/* Run the sub-command named argv[1], printing usage for --help, a missing
 * or an unknown sub-command. */
int cli_dispatch(const char *group, const char *usage, const cli_subcommand_t *subs, int argc,
                 char **argv);

#endif
