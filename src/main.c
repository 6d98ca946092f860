/* Entry point: dispatch `nimdeck COMMAND` to the component or client command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "gateway/gateway.h"
#include "server/server.h"
#include "sim/sim.h"
#include "up/up.h"
#include "util/log.h"

#define NIMDECK_VERSION "0.1.0"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: nimdeck COMMAND [OPTIONS]\n"
            "\n"
            "Run model servers on your GPUs behind an authenticated gateway.\n"
            "\n"
            "Services:\n"
            "  up         server, gateway and a local agent in one process (SQLite)\n"
            "  server     the REST API and store\n"
            "  gateway    the authenticated reverse proxy for model endpoints\n"
            "  agent      run instances from queues on this machine\n"
            "  sim        a NIM API simulator for machines without a GPU\n"
            "\n");
    cli_print_commands(out);
    fprintf(out,
            "\n"
            "Client commands take --server URL and --token TOKEN, before or after the\n"
            "command, or NIMDECK_SERVER and NIMDECK_TOKEN.\n"
            "Run 'nimdeck COMMAND --help' for a command's options.\n");
}

/* Take "--server URL" and "--token TOKEN" given before the command, as in
 * "nimdeck --server URL apps list", by moving them into the environment
 * that client commands read. Returns the index of the command, or -1 on a
 * missing value. */
static int take_global_options(int argc, char **argv)
{
    int i = 1;

    while (i < argc && (strcmp(argv[i], "--server") == 0 || strcmp(argv[i], "--token") == 0)) {
        if (i + 1 >= argc) {
            fprintf(stderr, "nimdeck: %s needs a value; run 'nimdeck --help'\n", argv[i]);
            return -1;
        }
        setenv(strcmp(argv[i], "--server") == 0 ? "NIMDECK_SERVER" : "NIMDECK_TOKEN", argv[i + 1], 1);
        i += 2;
    }
    return i;
}

int main(int argc, char **argv)
{
    log_init_from_env();

    int first = take_global_options(argc, argv);
    if (first < 0)
        return 2;
    argv += first - 1;
    argc -= first - 1;

    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }

    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("nimdeck %s\n", NIMDECK_VERSION);
        return 0;
    }

    /* Each component parses its own options from argv[1..]: argv[0] is the
     * command name, as getopt expects. */
    if (strcmp(cmd, "up") == 0)
        return up_main(argc - 1, argv + 1);
    if (strcmp(cmd, "server") == 0)
        return server_main(argc - 1, argv + 1);
    if (strcmp(cmd, "gateway") == 0)
        return gateway_main(argc - 1, argv + 1);
    if (strcmp(cmd, "agent") == 0)
        return agent_main(argc - 1, argv + 1);
    if (strcmp(cmd, "sim") == 0)
        return sim_main(argc - 1, argv + 1);

    int rc = cli_main(argc - 1, argv + 1);
    if (rc >= 0)
        return rc;

    fprintf(stderr, "nimdeck: unknown command '%s'; run 'nimdeck --help' for the list\n", cmd);
    return 2;
}
