/* Client command dispatch and the client part of the top-level help. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli_internal.h"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_group_t;

static const cli_group_t cli_groups[] = {
    {"launch", "start an instance from a configuration file", cli_launch_main},
    {"apps", "list, show, stop, delete, export and clone instances; logs, metrics, history",
     cli_apps_main},
    {"tokens", "create, list and revoke api, gateway and embed tokens", cli_tokens_main},
    {"vault", "store secrets that instances receive as environment variables", cli_vault_main},
    {"routes", "create, list and delete stable endpoint names", cli_routes_main},
    {"queues", "create, list and delete queues", cli_queues_main},
    {"agents", "list the agents that run instances", cli_agents_main},
    {"endpoints", "list the model endpoints you can read, with their request figures",
     cli_endpoints_main},
    {"users", "add, delete and list users; grant and revoke project permissions",
     cli_users_main},
    {NULL, NULL, NULL},
};

int cli_main(int argc, char **argv)
{
    if (argc < 1 || argv[0] == NULL)
        return -1;

    for (const cli_group_t *group = cli_groups; group->name != NULL; group++) {
        if (strcmp(group->name, argv[0]) == 0)
            return group->run(argc, argv);
    }
    return -1;
}

void cli_print_commands(FILE *out)
{
    fprintf(out, "Client commands:\n");
    for (const cli_group_t *group = cli_groups; group->name != NULL; group++)
        fprintf(out, "  %-10s %s\n", group->name, group->summary);
}

int cli_dispatch(const char *group, const char *usage, const cli_subcommand_t *subs, int argc,
                 char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "error: 'nimdeck %s' needs a sub-command\n\n%s", group, usage);
        return CLI_USAGE;
    }

    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        fputs(usage, stdout);
        return CLI_OK;
    }

    for (const cli_subcommand_t *sub = subs; sub->name != NULL; sub++) {
        if (strcmp(sub->name, name) == 0)
            return sub->run(argc - 1, argv + 1);
    }

    fprintf(stderr, "error: unknown sub-command '%s' for 'nimdeck %s'\n\n%s", name, group, usage);
    return CLI_USAGE;
}
