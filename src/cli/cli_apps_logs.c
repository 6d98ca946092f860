/* `nimdeck apps logs`, `apps metrics` and `apps history`: an instance's
 * console log, usage series and status changes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli_internal.h"

#define LOGS_PAGE 500
#define LOGS_POLL_MS 500
#define LOGS_TIMEOUT_MS 30000L
/* --follow retries a server it cannot reach after 0.5 s, then twice as
 * long each time, up to 5 s between tries. */
#define LOGS_RETRY_FIRST_MS 500L
#define LOGS_RETRY_MAX_MS 5000L
/* Returned by the fetch helpers when Ctrl-C ended a wait for the server. */
#define LOGS_INTERRUPTED (-2)
#define METRICS_STEP_MAX 3600
#define METRICS_RANGE_MAX (30L * 86400)

static volatile sig_atomic_t logs_interrupted;

static void logs_on_sigint(int signo)
{
    (void)signo;
    logs_interrupted = 1;
}

static const cli_option_spec_t logs_options[] = {{"follow", 0}, {"json", 0}, {NULL, 0}};

static const cli_command_t logs_command = {
    .name = "apps logs",
    .usage = "usage: nimdeck apps logs ID [--follow] [--json]\n"
             "\n"
             "Print the instance's console log as \"TIME STREAM text\" lines (STREAM is\n"
             "stdout, stderr or system). Secret values are masked as ****.\n"
             "\n"
             "Options:\n"
             "  --follow    keep printing new lines every 0.5 s until the instance is\n"
             "              stopped, failed or deleted and no lines remain, or until\n"
             "              Ctrl-C; when the server stops answering (a restart), it\n"
             "              retries every 0.5-5 s until the server is back\n"
             "  --json      print the API's lines object, {\"lines\": [{\"seq\", \"time\",\n"
             "              \"stream\", \"text\"}], \"next\": SEQ}, with every line of the log;\n"
             "              with --follow, print each line as one JSON object on its own\n"
             "              output line as it arrives\n",
    .options = logs_options,
    .arguments = "ID",
    .min_positional = 1,
    .max_positional = 1,
};

/* Output mode of the log lines. Lines are printed as text, gathered into
 * one lines object printed at the end (--json), or printed as one compact
 * JSON object each (--json with --follow). */
typedef struct {
    int json;
    int follow;
    json_t *gathered;   /* the lines of --json without --follow */
    int reached;        /* the server responded once, so a later failure is a restart */
    int waiting;        /* --follow lost the server and reported it once */
    long retry_ms;      /* the next pause before trying the server again */
} logs_output_t;

static void logs_print_text(const json_t *line)
{
    const char *stream = cli_string_or(json_object_get(line, "stream"), "-");
    char time_text[40], indent[64];
    const char *newline = NULL;

    cli_format_time(json_object_get(line, "time"), time_text, sizeof(time_text));

    /* nimdeck writes the system lines, and a status reason there may span
     * lines (a failure ends with the instance's last output): its next
     * lines start under the text. Instance output may carry terminal escape
     * sequences, so there every control character is shown, not run. */
    if (strcmp(stream, "system") == 0) {
        snprintf(indent, sizeof(indent), "\n%*s", (int)(strlen(time_text) + strlen(stream) + 2),
                 "");
        newline = indent;
    }
    printf("%s ", time_text);
    cli_print_visible(stdout, stream, NULL);
    fputc(' ', stdout);
    cli_print_visible(stdout, cli_string_or(json_object_get(line, "text"), ""), newline);
    fputc('\n', stdout);
}

/* Print or gather one line. Returns 0, or -1 when memory runs out. */
static int logs_emit(logs_output_t *out, json_t *line)
{
    if (!out->json) {
        logs_print_text(line);
        return 0;
    }
    if (!out->follow)
        return json_array_append(out->gathered, line);

    char *text = cli_json_text(line, JSON_COMPACT);
    if (text == NULL)
        return -1;
    printf("%s\n", text);
    free(text);
    return 0;
}

/* True for a failure that a server restart causes: no response, or a
 * proxy in front reporting that the server is down. */
static int logs_server_down(int called, const api_result_t *res)
{
    return called != 0 || res->status == 502 || res->status == 503 || res->status == 504;
}

/* Pause before the next try, interrupted by Ctrl-C, and lengthen the next
 * pause. */
static void logs_retry_pause(logs_output_t *out)
{
    struct timespec pause = {out->retry_ms / 1000, (out->retry_ms % 1000) * 1000L * 1000L};

    nanosleep(&pause, NULL);
    out->retry_ms = out->retry_ms * 2 > LOGS_RETRY_MAX_MS ? LOGS_RETRY_MAX_MS : out->retry_ms * 2;
}

/* GET path. With --follow, a server that responded before and cannot be
 * reached now (a restart) is tried again until it responds or Ctrl-C. The
 * loss is reported once on stderr and the return once more. A server that
 * never responded is an error at once, as a wrong URL is. Returns CLI_OK with res filled (the caller frees it),
 * CLI_FAILED after printing the error (a 404 once the instance is deleted),
 * CLI_USAGE when no token is found, or LOGS_INTERRUPTED. */
static int logs_get(cli_ctx_t *ctx, logs_output_t *out, const char *path, api_result_t *res)
{
    if (cli_connect(ctx) != 0)
        return CLI_USAGE;

    for (;;) {
        memset(res, 0, sizeof(*res));
        int called = api_call(ctx->server, ctx->token, "GET", path, NULL, LOGS_TIMEOUT_MS, res);
        if (called == 0 && res->status >= 200 && res->status < 300) {
            if (out->waiting)
                fprintf(stderr, "nimdeck: the server at %s is back; following the log again\n",
                        ctx->server);
            out->reached = 1;
            out->waiting = 0;
            out->retry_ms = LOGS_RETRY_FIRST_MS;
            return CLI_OK;
        }
        if (!out->follow || !out->reached || logs_interrupted ||
            !logs_server_down(called, res)) {
            cli_report_failure(ctx, res);
            api_result_free(res);
            return CLI_FAILED;
        }

        if (!out->waiting) {
            fputs("nimdeck: cannot reach the server: ", stderr);
            cli_print_visible(stderr, res->error, NULL);
            fputs("\nnimdeck: retrying until it is back; press Ctrl-C to stop\n", stderr);
            out->waiting = 1;
        }
        api_result_free(res);
        logs_retry_pause(out);
        if (logs_interrupted)
            return LOGS_INTERRUPTED;
    }
}

/* Print one page of lines after *after; sets *count and advances *after. */
static int logs_fetch(cli_ctx_t *ctx, logs_output_t *out, const char *id, long long *after,
                      size_t *count)
{
    buf_t path = BUF_INIT;
    api_result_t res;
    json_t *line;
    size_t i;
    int rc = CLI_FAILED;

    *count = 0;
    if (cli_path(&path, "apps/", id, "/logs") != 0 ||
        buf_printf(&path, "?after=%lld&limit=%d", *after, LOGS_PAGE) != 0)
        goto out;
    rc = logs_get(ctx, out, path.data, &res);
    if (rc != CLI_OK)
        goto out;

    json_array_foreach(json_object_get(res.body, "lines"), i, line) {
        json_t *seq = json_object_get(line, "seq");
        if (logs_emit(out, line) != 0) {
            fprintf(stderr, "error: out of memory printing the log of instance %s\n", id);
            rc = CLI_FAILED;
            break;
        }
        if (json_is_integer(seq) && json_integer_value(seq) > *after)
            *after = json_integer_value(seq);
        (*count)++;
    }
    json_t *next = json_object_get(res.body, "next");
    if (json_is_integer(next) && json_integer_value(next) > *after)
        *after = json_integer_value(next);
    fflush(stdout);
    api_result_free(&res);

out:
    buf_free(&path);
    return rc;
}

/* Whether the instance has ended (stopped or failed). Returns -1 with *rc
 * set when the call failed or was interrupted. */
static int logs_instance_ended(cli_ctx_t *ctx, logs_output_t *out, const char *id, int *rc)
{
    buf_t path = BUF_INIT;
    api_result_t res;
    int ended = -1;

    *rc = CLI_FAILED;
    if (cli_path(&path, "apps/", id, NULL) == 0)
        *rc = logs_get(ctx, out, path.data, &res);
    buf_free(&path);
    if (*rc != CLI_OK)
        return -1;

    const char *status = cli_string_or(json_object_get(res.body, "status"), "");
    ended = strcmp(status, "stopped") == 0 || strcmp(status, "failed") == 0;
    api_result_free(&res);
    return ended;
}

static int logs_follow(cli_ctx_t *ctx, logs_output_t *out, const char *id, long long *after)
{
    const struct timespec pause = {0, LOGS_POLL_MS * 1000L * 1000L};
    int ended = 0;
    size_t count;
    int rc;

    while (!logs_interrupted) {
        rc = logs_fetch(ctx, out, id, after, &count);
        if (rc != CLI_OK)
            return rc == LOGS_INTERRUPTED ? CLI_OK : rc;
        if (count == LOGS_PAGE)
            continue;
        if (!out->follow || ended)
            return CLI_OK;

        /* Once the instance has ended, one more fetch takes the last lines. */
        ended = logs_instance_ended(ctx, out, id, &rc);
        if (ended < 0)
            return rc == LOGS_INTERRUPTED ? CLI_OK : rc;
        if (!ended)
            nanosleep(&pause, NULL);
    }
    return CLI_OK;
}

/* Run the fetch loop, then print the gathered lines object for --json. */
static int logs_run(cli_ctx_t *ctx, const char *id)
{
    logs_output_t out = {
        .json = cli_flag(&ctx->args, "json"),
        .follow = cli_flag(&ctx->args, "follow"),
        .retry_ms = LOGS_RETRY_FIRST_MS,
    };
    long long after = 0;
    int rc;

    if (out.json && !out.follow && (out.gathered = json_array()) == NULL) {
        fprintf(stderr, "error: out of memory reading the log of instance %s\n", id);
        return CLI_FAILED;
    }
    rc = logs_follow(ctx, &out, id, &after);
    if (rc == CLI_OK && out.gathered != NULL) {
        json_t *body = json_pack("{s:O, s:I}", "lines", out.gathered, "next", (json_int_t)after);
        if (body == NULL) {
            fprintf(stderr, "error: out of memory printing the log of instance %s\n", id);
            rc = CLI_FAILED;
        } else {
            cli_print_json(body);
        }
        json_decref(body);
    }
    json_decref(out.gathered);
    return rc;
}

int cli_apps_logs(int argc, char **argv)
{
    cli_ctx_t ctx;
    struct sigaction action, previous;
    int rc = cli_begin(&ctx, &logs_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;

    /* Without SA_RESTART the 0.5 s pause ends at once on Ctrl-C. */
    memset(&action, 0, sizeof(action));
    action.sa_handler = logs_on_sigint;
    sigemptyset(&action.sa_mask);
    logs_interrupted = 0;
    sigaction(SIGINT, &action, &previous);
    rc = logs_run(&ctx, ctx.args.positional[0]);
    sigaction(SIGINT, &previous, NULL);

out:
    cli_end(&ctx);
    return rc;
}

static const cli_option_spec_t metrics_options[] = {
    {"json", 0}, {"step", 1}, {"range", 1}, {NULL, 0},
};

static const cli_command_t metrics_command = {
    .name = "apps metrics",
    .usage = "usage: nimdeck apps metrics ID [--json] [--step S] [--range S]\n"
             "\n"
             "Summarise the instance's requests, tokens, errors and latency over a time\n"
             "range, or print the series as JSON.\n"
             "\n"
             "Options:\n"
             "  --json       print the API object (series per interval, and totals)\n"
             "  --step S     interval length in seconds, 1-3600 (default 10)\n"
             "  --range S    how far back to look in seconds, at most 30 days (default 3600)\n",
    .options = metrics_options,
    .arguments = "ID",
    .min_positional = 1,
    .max_positional = 1,
};

static json_int_t metrics_total(const json_t *body, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(body, "totals"), key));
}

/* Index of the latest bucket whose value in series is a number, or -1. */
static long metrics_latest(const json_t *series)
{
    for (size_t i = json_array_size(series); i > 0; i--) {
        if (json_is_number(json_array_get(series, i - 1)))
            return (long)i - 1;
    }
    return -1;
}

static void metrics_print_latency(const json_t *series)
{
    const json_t *requests = json_object_get(series, "requests");
    const json_t *means = json_object_get(series, "latency_ms_mean");
    const json_t *p95s = json_object_get(series, "latency_ms_p95");
    const json_t *ttfts = json_object_get(series, "ttft_ms_mean");
    double weighted = 0, ttft = 0, worst_p95 = -1, weight = 0;

    /* Means are weighted by each interval's requests. The worst interval's
     * p95 bounds the p95 of the whole range from above. */
    for (size_t i = 0; i < json_array_size(means); i++) {
        double n = json_number_value(json_array_get(requests, i));
        json_t *mean = json_array_get(means, i), *p95 = json_array_get(p95s, i);
        json_t *first = json_array_get(ttfts, i);

        if (!json_is_number(mean) || n <= 0)
            continue;
        weighted += json_number_value(mean) * n;
        ttft += json_is_number(first) ? json_number_value(first) * n : 0;
        weight += n;
        if (json_is_number(p95) && json_number_value(p95) > worst_p95)
            worst_p95 = json_number_value(p95);
    }

    if (weight == 0) {
        printf("  latency:              -\n");
        return;
    }
    printf("  latency mean:         %.1f ms\n", weighted / weight);
    if (worst_p95 >= 0)
        printf("  latency p95:          %.1f ms (worst interval)\n", worst_p95);
    printf("  time to first token:  %.1f ms (mean)\n", ttft / weight);
}

static void metrics_print_summary(const char *id, const json_t *body)
{
    const json_t *series = json_object_get(body, "series");
    const json_t *times = json_object_get(body, "time");
    const json_t *requests = json_object_get(series, "requests");
    char when[40];

    printf("Metrics for %s, intervals of %" JSON_INTEGER_FORMAT " s:\n", id,
           json_integer_value(json_object_get(body, "step")));
    printf("  requests:             %" JSON_INTEGER_FORMAT "\n", metrics_total(body, "requests"));
    printf("  errors:               %" JSON_INTEGER_FORMAT "\n", metrics_total(body, "errors"));
    printf("  prompt tokens:        %" JSON_INTEGER_FORMAT "\n", metrics_total(body, "prompt_tokens"));
    printf("  completion tokens:    %" JSON_INTEGER_FORMAT "\n",
           metrics_total(body, "completion_tokens"));
    metrics_print_latency(series);

    /* The latest interval that saw requests; the current one may be empty. */
    long last = -1;
    for (size_t i = json_array_size(requests); i > 0 && last < 0; i--) {
        if (json_number_value(json_array_get(requests, i - 1)) > 0)
            last = (long)i - 1;
    }
    if (last >= 0) {
        json_t *tps = json_array_get(json_object_get(series, "tokens_per_second"), (size_t)last);
        json_t *start = json_array_get(times, (size_t)last);
        json_t *start_ms = json_integer((json_int_t)(json_number_value(start) * 1000));
        cli_format_time(start_ms, when, sizeof(when));
        json_decref(start_ms);
        printf("  tokens/s (last):      %.1f (interval from %s)\n", json_number_value(tps), when);
    } else {
        printf("  tokens/s (last):      0\n");
    }

    const json_t *cpu = json_object_get(series, "cpu_percent");
    long latest = metrics_latest(cpu);
    if (latest >= 0) {
        double used = json_number_value(json_array_get(json_object_get(series, "mem_used_bytes"), (size_t)latest));
        double total = json_number_value(json_array_get(json_object_get(series, "mem_total_bytes"), (size_t)latest));
        printf("  machine (latest):     cpu %.1f%%, memory %.1f of %.1f GiB\n",
               json_number_value(json_array_get(cpu, (size_t)latest)), used / (1u << 30),
               total / (1u << 30));
    }
}

/* Read --step and --range into the query; prints a usage error. */
static int metrics_query(cli_ctx_t *ctx, buf_t *path)
{
    const char *step = cli_option(&ctx->args, "step");
    const char *range = cli_option(&ctx->args, "range");
    long value;
    char sep = '?';

    if (step != NULL) {
        if (cli_parse_long(step, &value) != 0 || value < 1 || value > METRICS_STEP_MAX)
            return cli_usage_error(ctx->command, "--step must be whole seconds from 1 to %d, got '%s'",
                                   METRICS_STEP_MAX, step);
        buf_printf(path, "%cstep=%ld", sep, value);
        sep = '&';
    }
    if (range != NULL) {
        if (cli_parse_long(range, &value) != 0 || value < 1 || value > METRICS_RANGE_MAX)
            return cli_usage_error(ctx->command,
                                   "--range must be whole seconds from 1 to %ld (30 days), got '%s'",
                                   METRICS_RANGE_MAX, range);
        buf_printf(path, "%crange=%ld", sep, value);
    }
    return CLI_OK;
}

int cli_apps_metrics(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    buf_t path = BUF_INIT;
    int rc = cli_begin(&ctx, &metrics_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    const char *id = ctx.args.positional[0];
    rc = CLI_FAILED;
    if (cli_path(&path, "apps/", id, "/metrics") != 0)
        goto out;
    rc = metrics_query(&ctx, &path);
    if (rc != CLI_OK)
        goto out;

    rc = cli_request(&ctx, "GET", path.data, NULL, &res);
    if (rc != CLI_OK)
        goto out;
    if (cli_flag(&ctx.args, "json"))
        cli_print_json(res.body);
    else
        metrics_print_summary(id, res.body);
    api_result_free(&res);

out:
    buf_free(&path);
    cli_end(&ctx);
    return rc;
}

static const cli_command_t history_command = {
    .name = "apps history",
    .usage = "usage: nimdeck apps history ID [--json]\n"
             "\n"
             "Print the instance's status changes, oldest first, as \"TIME STATUS reason\".\n"
             "\n"
             "Options:\n"
             "  --json    print the API object {\"history\": [...]}\n",
    .options = cli_json_only_options,
    .arguments = "ID",
    .min_positional = 1,
    .max_positional = 1,
};

int cli_apps_history(int argc, char **argv)
{
    cli_ctx_t ctx;
    api_result_t res;
    buf_t path = BUF_INIT;
    json_t *entry;
    size_t i;
    char when[40];
    int rc = cli_begin(&ctx, &history_command, argc, argv);

    if (rc != CLI_CONTINUE)
        goto out;
    rc = CLI_FAILED;
    if (cli_path(&path, "apps/", ctx.args.positional[0], "/history") != 0)
        goto out;
    rc = cli_request(&ctx, "GET", path.data, NULL, &res);
    if (rc != CLI_OK)
        goto out;

    if (cli_flag(&ctx.args, "json")) {
        cli_print_json(res.body);
    } else {
        json_array_foreach(json_object_get(res.body, "history"), i, entry) {
            cli_format_time(json_object_get(entry, "time"), when, sizeof(when));
            buf_t status = BUF_INIT;
            cli_append_visible(&status, cli_string_or(json_object_get(entry, "status"), "-"), NULL);
            printf("%s  %-9s ", when, status.data != NULL ? status.data : "-");
            buf_free(&status);

            /* A failure reason may end with the instance's last log lines. */
            cli_print_visible(stdout, cli_string_or(json_object_get(entry, "reason"), ""),
                              "\n                                    ");
            fputc('\n', stdout);
        }
    }
    api_result_free(&res);

out:
    buf_free(&path);
    cli_end(&ctx);
    return rc;
}
