/* Command shapes shared by several client commands: list tables, deletes
 * by name and secrets read from stdin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli_internal.h"

const cli_option_spec_t cli_json_only_options[] = {{"json", 0}, {NULL, 0}};

#define CLI_STDIN_MAX (1024 * 1024)

int cli_run_list(const cli_command_t *command, int argc, char **argv, const char *path,
                 const char *array_key, const cli_column_t *columns)
{
    cli_ctx_t ctx;
    api_result_t res;
    int rc = cli_begin(&ctx, command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    rc = cli_request(&ctx, "GET", path, NULL, &res);
    if (rc != CLI_OK)
        goto out;

    if (cli_flag(&ctx.args, "json"))
        cli_print_json(res.body);
    else
        cli_print_rows(json_object_get(res.body, array_key), columns);
    api_result_free(&res);

out:
    cli_end(&ctx);
    return rc;
}

int cli_run_delete(const cli_command_t *command, int argc, char **argv, const char *prefix,
                   const char *done, int (*check)(const cli_command_t *command, const char *arg))
{
    cli_ctx_t ctx;
    api_result_t res;
    buf_t path = BUF_INIT;
    int rc = cli_begin(&ctx, command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    const char *arg = ctx.args.positional[0];
    if (check != NULL && (rc = check(command, arg)) != CLI_CONTINUE)
        goto out;

    rc = CLI_FAILED;
    if (cli_path(&path, prefix, arg, NULL) != 0)
        goto out;
    rc = cli_request(&ctx, "DELETE", path.data, NULL, &res);
    if (rc != CLI_OK)
        goto out;
    printf("%s %s\n", done, arg);
    api_result_free(&res);

out:
    buf_free(&path);
    cli_end(&ctx);
    return rc;
}

static int cli_read_all(FILE *in, buf_t *value)
{
    char chunk[4096];
    size_t n;

    while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0) {
        if (value->len + n > CLI_STDIN_MAX) {
            fprintf(stderr, "error: the value on stdin is longer than %d bytes\n", CLI_STDIN_MAX);
            explicit_bzero(chunk, sizeof(chunk));
            return -1;
        }
        if (buf_append(value, chunk, n) != 0) {
            explicit_bzero(chunk, sizeof(chunk));
            fprintf(stderr, "error: out of memory reading stdin\n");
            return -1;
        }
    }
    explicit_bzero(chunk, sizeof(chunk));
    if (ferror(in)) {
        fprintf(stderr, "error: cannot read stdin\n");
        return -1;
    }
    return 0;
}

/* Read one line from the terminal with echo off. */
static int cli_read_terminal(const char *prompt, buf_t *value)
{
    struct termios saved, quiet;
    char *line = NULL;
    size_t cap = 0;
    int echo_off = tcgetattr(STDIN_FILENO, &saved) == 0;

    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    if (echo_off) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    ssize_t n = getline(&line, &cap, stdin);
    if (echo_off)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    fputc('\n', stderr);

    int rc = n >= 0 && buf_append(value, line, (size_t)n) == 0 ? 0 : -1;
    if (line != NULL) {
        explicit_bzero(line, cap);
        free(line);
    }
    if (rc != 0)
        fprintf(stderr, "error: no value read from the terminal\n");
    return rc;
}

char *cli_read_secret_stdin(const char *prompt)
{
    buf_t value = BUF_INIT;
    int rc = isatty(STDIN_FILENO) ? cli_read_terminal(prompt, &value) : cli_read_all(stdin, &value);

    if (rc != 0) {
        if (value.data != NULL)
            explicit_bzero(value.data, value.len);
        buf_free(&value);
        return NULL;
    }

    /* One trailing newline ("\n" or "\r\n") is the end of the input line. */
    if (value.len > 0 && value.data[value.len - 1] == '\n') {
        value.data[--value.len] = '\0';
        if (value.len > 0 && value.data[value.len - 1] == '\r')
            value.data[--value.len] = '\0';
    }

    if (value.data == NULL)
        return strdup("");
    if (memchr(value.data, '\0', value.len) != NULL) {
        fprintf(stderr, "error: the value on stdin contains a NUL byte, which cannot be stored\n");
        explicit_bzero(value.data, value.len);
        buf_free(&value);
        return NULL;
    }
    return buf_steal(&value);
}
