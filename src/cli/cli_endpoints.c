/* `nimdeck endpoints`: the Model Endpoints list of the web UI as a table,
 * JSON or CSV. */
#include <stdio.h>

#include "cli/cli_internal.h"

static const cli_option_spec_t endpoints_options[] = {
    {"json", 0},
    {"csv", 0},
    {NULL, 0},
};

static const cli_command_t endpoints_command = {
    .name = "endpoints",
    .usage = "usage: nimdeck endpoints [--json | --csv]\n"
             "\n"
             "List the model endpoints you can read, as the web UI's Model Endpoints page\n"
             "shows them: each serving endpoint with its model, URL, instances, uptime,\n"
             "requests (since the instance was created, within the record retention),\n"
             "requests per minute (over the last 5 minutes) and mean latency (over the\n"
             "last hour). The instances still queued or loading follow in a second table.\n"
             "\n"
             "Options:\n"
             "  --json    print the API object {\"endpoints\": [...], \"loading\": [...]}\n"
             "  --csv     print the CSV file the web UI downloads, as the server sends it\n",
    .options = endpoints_options,
    .min_positional = 0,
    .max_positional = 0,
};

static void endpoints_print_tables(const json_t *body)
{
    static const cli_column_t serving[] = {
        {"ENDPOINT", "path", CLI_CELL_STRING},
        {"MODEL", "model", CLI_CELL_STRING},
        {"URL", "endpoint", CLI_CELL_STRING},
        {"INSTANCES", "instances", CLI_CELL_LIST},
        {"UPTIME", "uptime_seconds", CLI_CELL_SECONDS},
        {"REQUESTS", "requests", CLI_CELL_NUMBER},
        {"REQ/MIN", "requests_per_minute", CLI_CELL_NUMBER},
        {"MEAN LATENCY", "latency_ms_mean", CLI_CELL_MILLISECONDS},
        {NULL, NULL, CLI_CELL_STRING},
    };
    static const cli_column_t loading[] = {
        {"ENDPOINT", "path", CLI_CELL_STRING},
        {"MODEL", "model", CLI_CELL_STRING},
        {"URL", "endpoint", CLI_CELL_STRING},
        {"INSTANCES", "instances", CLI_CELL_LIST},
        {"STATUS", "status", CLI_CELL_STRING},
        {NULL, NULL, CLI_CELL_STRING},
    };
    const json_t *waiting = json_object_get(body, "loading");

    cli_print_rows(json_object_get(body, "endpoints"), serving);
    if (json_array_size(waiting) == 0) {
        printf("\nLoading: none\n");
        return;
    }
    printf("\nLoading:\n");
    cli_print_rows(waiting, loading);
}

/* GET the CSV form and write it out. */
static int endpoints_csv(cli_ctx_t *ctx)
{
    buf_t csv = BUF_INIT;
    int rc = cli_request_text(ctx, "/api/v1/endpoints?format=csv", "text/csv", &csv);

    if (rc != CLI_OK)
        return rc;
    cli_write_text(&csv);
    buf_free(&csv);
    return CLI_OK;
}

int cli_endpoints_main(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    int rc = cli_begin(&ctx, &endpoints_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    if (cli_flag(&ctx.args, "json") && cli_flag(&ctx.args, "csv")) {
        rc = cli_usage_error(&endpoints_command, "--json and --csv cannot be combined; pick one");
        goto out;
    }
    if (cli_flag(&ctx.args, "csv")) {
        rc = endpoints_csv(&ctx);
        goto out;
    }

    rc = cli_request(&ctx, "GET", "/api/v1/endpoints", NULL, &res);
    if (rc != CLI_OK)
        goto out;
    if (cli_flag(&ctx.args, "json"))
        cli_print_json(res.body);
    else
        endpoints_print_tables(res.body);
    api_result_free(&res);

out:
    cli_end(&ctx);
    return rc;
}
