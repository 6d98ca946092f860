/* Command-line options of `nimdeck sim`, checked before anything starts. */
#include "sim/sim_options.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SIM_MAX_LOAD_SECONDS 86400.0
#define SIM_MAX_TOKENS_PER_SECOND 1000000.0

void sim_options_usage(FILE *out)
{
    fprintf(out,
            "usage: nimdeck sim [--port N] [--host H] [--load-seconds S]\n"
            "                   [--tokens-per-second R] [--model NAME] [--embedding-dim D]\n"
            "\n"
            "Serve a simulated NVIDIA NIM: the same HTTP API, start-up lines and metrics,\n"
            "with generated pseudo-text instead of a model. For tests and demos on\n"
            "machines without a GPU.\n"
            "\n"
            "  --port N               TCP port, 0 for a free one (default: $NIM_SERVER_PORT,\n"
            "                         else $PORT, else 8000)\n"
            "  --host H               address to listen on (default 127.0.0.1)\n"
            "  --load-seconds S       simulated model loading time before /v1/health/ready\n"
            "                         answers 200 (default 5; fractions allowed)\n"
            "  --tokens-per-second R  generation rate of each request (default 50)\n"
            "  --model NAME           served model name (default: $NIM_SERVED_MODEL_NAME,\n"
            "                         else " SIM_DEFAULT_MODEL ")\n"
            "  --embedding-dim D      embedding dimensions when a request sets none\n"
            "                         (default 16)\n"
            "  --help                 show this help\n"
            "\n"
            "Endpoints: /v1/health/live, /v1/health/ready, /v1/models, /v1/version,\n"
            "/v1/metadata, /v1/chat/completions, /v1/completions, /v1/embeddings,\n"
            "/v1/metrics. SIGTERM or SIGINT stops it.\n");
}

static int sim_parse_int(const char *text, long min, long max, int *out)
{
    char *end;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return -1;
    *out = (int)value;
    return 0;
}

static int sim_parse_double(const char *text, double min, double max, int min_exclusive,
                            double *out)
{
    char *end;
    double value;

    errno = 0;
    value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(value))
        return -1;
    if (value < min || (min_exclusive && value == min) || value > max)
        return -1;
    *out = value;
    return 0;
}

static int sim_copy_text(const char *text, char *out, size_t size)
{
    size_t len = strlen(text);

    if (len == 0 || len >= size)
        return -1;
    memcpy(out, text, len + 1);
    return 0;
}

static int sim_option_known(const char *name)
{
    static const char *const names[] = {"--port",  "--host",          "--load-seconds",
                                        "--tokens-per-second", "--model", "--embedding-dim"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0)
            return 1;
    }
    return 0;
}

/* Apply one option and its value. Returns 0, or -1 with err filled. */
static int sim_apply_option(sim_options_t *opt, const char *name, const char *value, char *err,
                            size_t err_size)
{
    int ok = -1;
    const char *expect = "";

    if (strcmp(name, "--port") == 0) {
        ok = sim_parse_int(value, 0, 65535, &opt->port);
        expect = "a port number from 0 to 65535";
    } else if (strcmp(name, "--host") == 0) {
        ok = sim_copy_text(value, opt->host, sizeof(opt->host));
        expect = "an address such as 127.0.0.1 or 0.0.0.0";
    } else if (strcmp(name, "--load-seconds") == 0) {
        ok = sim_parse_double(value, 0.0, SIM_MAX_LOAD_SECONDS, 0, &opt->load_seconds);
        expect = "seconds from 0 to 86400";
    } else if (strcmp(name, "--tokens-per-second") == 0) {
        ok = sim_parse_double(value, 0.0, SIM_MAX_TOKENS_PER_SECOND, 1, &opt->tokens_per_second);
        expect = "a rate above 0 and at most 1000000";
    } else if (strcmp(name, "--model") == 0) {
        ok = sim_copy_text(value, opt->model, sizeof(opt->model));
        expect = "a name of 1 to 255 bytes";
    } else if (strcmp(name, "--embedding-dim") == 0) {
        ok = sim_parse_int(value, 1, 8192, &opt->embedding_dim);
        expect = "an integer from 1 to 8192";
    } else {
        snprintf(err, err_size, "unknown option '%s'; run 'nimdeck sim --help' for the list",
                 name);
        return -1;
    }

    if (ok != 0)
        snprintf(err, err_size, "invalid value '%s' for %s: expected %s", value, name, expect);
    return ok;
}

/* Environment defaults, applied only where no option set the value: the
 * port from NIM_SERVER_PORT, else PORT, else 8000, and the model from
 * NIM_SERVED_MODEL_NAME, else SIM_DEFAULT_MODEL. */
static int sim_options_from_env(sim_options_t *opt, char *err, size_t err_size)
{
    const char *name = "NIM_SERVER_PORT";
    const char *port = getenv(name);
    const char *model = getenv("NIM_SERVED_MODEL_NAME");

    if (port == NULL || port[0] == '\0') {
        name = "PORT";
        port = getenv(name);
    }

    if (opt->port < 0 && port != NULL && port[0] != '\0' &&
        sim_parse_int(port, 0, 65535, &opt->port) != 0) {
        snprintf(err, err_size,
                 "invalid %s='%s': expected a port number from 0 to 65535; fix it or pass "
                 "--port",
                 name, port);
        return -1;
    }
    if (opt->port < 0)
        opt->port = 8000;

    if (opt->model[0] != '\0')
        return 0;
    if (model == NULL || model[0] == '\0')
        model = SIM_DEFAULT_MODEL;
    if (sim_copy_text(model, opt->model, sizeof(opt->model)) != 0) {
        snprintf(err, err_size,
                 "invalid NIM_SERVED_MODEL_NAME: expected a name of 1 to 255 bytes; fix it or "
                 "pass --model");
        return -1;
    }
    return 0;
}

int sim_options_parse(int argc, char **argv, sim_options_t *opt, char *err, size_t err_size)
{
    memset(opt, 0, sizeof(*opt));
    snprintf(opt->host, sizeof(opt->host), "127.0.0.1");
    opt->port = -1; /* until an option or the environment sets it */
    opt->load_seconds = 5.0;
    opt->tokens_per_second = 50.0;
    opt->embedding_dim = 16;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        char name[64];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, err_size,
                     "unexpected argument '%s'; run 'nimdeck sim --help' for the options", arg);
            return -1;
        }

        /* Both "--name value" and "--name=value". */
        if (eq != NULL) {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - arg), arg);
            if (sim_apply_option(opt, name, eq + 1, err, err_size) != 0)
                return -1;
            continue;
        }
        if (!sim_option_known(arg)) {
            snprintf(err, err_size, "unknown option '%s'; run 'nimdeck sim --help' for the list",
                     arg);
            return -1;
        }
        if (i + 1 >= argc) {
            snprintf(err, err_size, "option %s needs a value; run 'nimdeck sim --help'", arg);
            return -1;
        }
        if (sim_apply_option(opt, arg, argv[++i], err, err_size) != 0)
            return -1;
    }
    return sim_options_from_env(opt, err, err_size);
}
