/* Entry point: dispatch `nimdeck COMMAND` to the component or client command. */
#include <stdio.h>
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
            "Run 'nimdeck COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    log_init_from_env();

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
