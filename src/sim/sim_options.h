/* Command-line options of `nimdeck sim`. */
#ifndef NIMDECK_SIM_SIM_OPTIONS_H
#define NIMDECK_SIM_SIM_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#define SIM_DEFAULT_MODEL "nimdeck/sim-llm"

typedef struct {
    char host[256];
    int port;                  /* 0 picks a free port */
    double load_seconds;       /* simulated model loading before ready */
    double tokens_per_second;  /* generation rate of each request */
    char model[256];           /* the served model name */
    int embedding_dim;         /* default embedding dimensions */
} sim_options_t;

/* Parse argv[1..argc) (argv[0] is the command name). Defaults: port from
 * NIM_SERVER_PORT, else PORT, else 8000; host 127.0.0.1; 5 s of loading;
 * 50 tokens/s; model from NIM_SERVED_MODEL_NAME, else SIM_DEFAULT_MODEL;
 * 16 embedding dimensions. Returns 0 to run, 1 when --help was given, or -1
 * with a message naming the bad option or variable and its value in err. */
int sim_options_parse(int argc, char **argv, sim_options_t *opt, char *err, size_t err_size);

/* Write the --help text to out. */
void sim_options_usage(FILE *out);

#endif
