/* The gateway's limit options, shared by `nimdeck gateway` and `nimdeck up`. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"

typedef enum { GW_OPT_COUNT, GW_OPT_BYTES, GW_OPT_SECONDS, GW_OPT_KEEPALIVE } gw_opt_kind_t;

typedef struct {
    const char *name;
    gw_opt_kind_t kind;
    size_t offset;          /* of the field in gateway_limits_t */
    double max;             /* largest value accepted, in the option's unit */
    const char *help;
} gw_limit_option_t;

#define GW_FIELD(f) offsetof(gateway_limits_t, f)

static const gw_limit_option_t gw_limit_options[] = {
    {"max-header-bytes", GW_OPT_BYTES, GW_FIELD(max_header_bytes), 1048576,
     "request head size; a larger head gets 431 (default 16384)"},
    {"max-headers", GW_OPT_COUNT, GW_FIELD(max_headers), 64,
     "header fields per request, up to 64; more get 431 (default 64)"},
    {"max-body-bytes", GW_OPT_BYTES, GW_FIELD(max_body_bytes), 1073741824.0,
     "request body size; a larger body gets 413 (default 16777216)"},
    {"header-timeout", GW_OPT_SECONDS, GW_FIELD(header_timeout_ms), 3600,
     "seconds for a request head to arrive, then the connection closes (default 10)"},
    {"idle-timeout", GW_OPT_SECONDS, GW_FIELD(idle_timeout_ms), 86400,
     "seconds a keep-alive connection may wait for its next request (default 60)"},
    {"max-connections", GW_OPT_COUNT, GW_FIELD(max_connections), 10000000,
     "client connections; more are refused with 503 (default: half the descriptor "
     "limit less 64)"},
    {"write-buffer-bytes", GW_OPT_BYTES, GW_FIELD(write_buffer_bytes), 1073741824.0,
     "response bytes queued for a slow client before reading from the instance "
     "pauses (default 262144)"},
    {"write-stall-timeout", GW_OPT_SECONDS, GW_FIELD(write_stall_timeout_ms), 86400,
     "seconds a client may read nothing of a queued response before it is cut off "
     "(default 60)"},
    {"upstream-connect-timeout", GW_OPT_SECONDS, GW_FIELD(upstream_connect_timeout_ms), 3600,
     "seconds to connect to an instance, then 504 (default 10)"},
    {"upstream-first-byte-timeout", GW_OPT_SECONDS,
     GW_FIELD(upstream_first_byte_timeout_ms), 86400,
     "seconds from the request to the instance's first response byte, then 504 "
     "(default 600)"},
    {"upstream-keepalive", GW_OPT_KEEPALIVE, GW_FIELD(upstream_keepalive), 100000,
     "idle connections kept open per instance, 0 for none (default 64)"},
};

#define GW_NUM_LIMIT_OPTIONS (sizeof(gw_limit_options) / sizeof(gw_limit_options[0]))

static const char *gw_unit(gw_opt_kind_t kind)
{
    switch (kind) {
    case GW_OPT_SECONDS: return "SECONDS";
    case GW_OPT_BYTES: return "BYTES";
    default: return "N";
    }
}

void gateway_limit_options_help(FILE *out)
{
    for (size_t i = 0; i < GW_NUM_LIMIT_OPTIONS; i++) {
        const gw_limit_option_t *o = &gw_limit_options[i];
        char left[64];

        snprintf(left, sizeof(left), "--%s %s", o->name, gw_unit(o->kind));
        fprintf(out, "  %s\n      %s\n", left, o->help);
    }
}

/* Store text as option o's value. Returns 0 or -1 with err set. */
static int gw_set_limit(const gw_limit_option_t *o, const char *text, gateway_limits_t *limits,
                        char *err, size_t err_size)
{
    char *end;
    double min = o->kind == GW_OPT_SECONDS ? 0.001 : o->kind == GW_OPT_KEEPALIVE ? 0 : 1;

    errno = 0;
    double v = strtod(text, &end);
    int integral = o->kind != GW_OPT_SECONDS;
    if (text[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v < min || v > o->max ||
        (integral && v != floor(v))) {
        snprintf(err, err_size, "invalid --%s '%s': expected %s from %g to %g", o->name, text,
                 integral ? "an integer" : "seconds (fractions allowed)", min, o->max);
        return -1;
    }

    char *field = (char *)limits + o->offset;
    switch (o->kind) {
    case GW_OPT_SECONDS: {
        uint64_t ms = (uint64_t)llround(v * 1000.0);
        memcpy(field, &ms, sizeof(ms));
        return 0;
    }
    case GW_OPT_KEEPALIVE: {
        /* 0 on the command line turns pooling off; in the struct 0 means
         * the default, so none is stored as -1. */
        long n = v == 0 ? -1 : (long)v;
        memcpy(field, &n, sizeof(n));
        return 0;
    }
    default: {
        size_t n = (size_t)v;
        memcpy(field, &n, sizeof(n));
        return 0;
    }
    }
}

/* Match argv[i] against the options; returns the option or NULL, and sets
 * *inline_value to the text after '=' when there is one. */
static const gw_limit_option_t *gw_match(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    if (strncmp(arg, "--", 2) != 0)
        return NULL;
    arg += 2;
    for (size_t i = 0; i < GW_NUM_LIMIT_OPTIONS; i++) {
        size_t n = strlen(gw_limit_options[i].name);
        if (strncmp(arg, gw_limit_options[i].name, n) != 0)
            continue;
        if (arg[n] == '\0')
            return &gw_limit_options[i];
        if (arg[n] == '=') {
            *inline_value = arg + n + 1;
            return &gw_limit_options[i];
        }
    }
    return NULL;
}

int gateway_take_limit_options(int *argc, char **argv, gateway_limits_t *limits, char *err,
                               size_t err_size)
{
    int kept = 1;

    for (int i = 1; i < *argc; i++) {
        const char *value;
        const gw_limit_option_t *o = gw_match(argv[i], &value);

        /* "--" ends the options: the rest is kept as it is. */
        if (strcmp(argv[i], "--") == 0) {
            while (i < *argc)
                argv[kept++] = argv[i++];
            break;
        }
        if (o == NULL) {
            argv[kept++] = argv[i];
            continue;
        }
        if (value == NULL) {
            if (i + 1 >= *argc) {
                snprintf(err, err_size, "missing value for --%s", o->name);
                return -1;
            }
            value = argv[++i];
        }
        if (gw_set_limit(o, value, limits, err, err_size) != 0)
            return -1;
    }
    *argc = kept;
    argv[kept] = NULL;
    return 0;
}
