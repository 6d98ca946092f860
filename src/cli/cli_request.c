/* REST calls for the client commands, with one place that turns a failed
 * call into an error message and an exit status. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_internal.h"

#define CLI_TIMEOUT_MS 30000L

/* Print "error: SOURCE: message" with the message made safe for a terminal. */
static void cli_print_error(const char *source, const char *message)
{
    fputs("error: ", stderr);
    if (source != NULL)
        fprintf(stderr, "%s: ", source);
    cli_print_visible(stderr, message, NULL);
}

void cli_report_failure(const cli_ctx_t *ctx, const api_result_t *res)
{
    if (res->status == 0) {
        cli_print_error(NULL, res->error);
        fprintf(stderr,
                "\nIs the server running at %s? Start one with 'nimdeck up', or pass --server URL "
                "(or set NIMDECK_SERVER).\n",
                ctx->server);
        return;
    }

    cli_print_error(NULL, res->error);
    fputc('\n', stderr);
    if (res->status == 401)
        fprintf(stderr, "The server rejected the token: pass an api-scope token with --token or "
                        "NIMDECK_TOKEN.\n");
}

/* source, when not NULL, names where the configuration came from, for the
 * message of an invalid_config response. */
static int cli_call(cli_ctx_t *ctx, const char *method, const char *path, const json_t *body,
                    api_result_t *res, int config_errors_are_usage, const char *source)
{
    memset(res, 0, sizeof(*res));
    if (cli_connect(ctx) != 0)
        return CLI_USAGE;
    if (api_call(ctx->server, ctx->token, method, path, body, CLI_TIMEOUT_MS, res) != 0) {
        cli_report_failure(ctx, res);
        api_result_free(res);
        return CLI_FAILED;
    }
    if (res->status >= 200 && res->status < 300)
        return CLI_OK;

    int usage = config_errors_are_usage && res->status == 400 &&
                strcmp(res->error_code, "invalid_config") == 0;
    if (usage) {
        cli_print_error(source, res->error);
        if (res->error_field[0] != '\0' && strstr(res->error, res->error_field) == NULL) {
            fputs(" (key \"", stderr);
            cli_print_visible(stderr, res->error_field, NULL);
            fputs("\")", stderr);
        }
        fputc('\n', stderr);
    } else {
        cli_report_failure(ctx, res);
    }

    api_result_free(res);
    return usage ? CLI_USAGE : CLI_FAILED;
}

int cli_request(cli_ctx_t *ctx, const char *method, const char *path, const json_t *body,
                api_result_t *res)
{
    return cli_call(ctx, method, path, body, res, 0, NULL);
}

int cli_request_config(cli_ctx_t *ctx, const char *method, const char *path, const json_t *body,
                       const char *source, api_result_t *res)
{
    return cli_call(ctx, method, path, body, res, 1, source);
}

int cli_append_escaped(buf_t *b, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL;
        char encoded[3] = {'%', hex[*p >> 4], hex[*p & 15]};

        if (buf_append(b, plain ? (const char *)p : encoded, plain ? 1 : 3) != 0)
            return -1;
    }
    return 0;
}

int cli_path(buf_t *b, const char *prefix, const char *id, const char *suffix)
{
    if (buf_printf(b, "/api/v1/%s", prefix) != 0)
        return -1;
    if (id != NULL && cli_append_escaped(b, id) != 0)
        return -1;
    return suffix != NULL ? buf_append_str(b, suffix) : 0;
}
