/* Client commands (launch, apps, tokens, vault, routes, users, queues,
 * agents, endpoints) that call the server's REST API. */
#ifndef NIMDECK_CLI_CLI_H
#define NIMDECK_CLI_CLI_H

#include <stdio.h>

/* Exit status: 0 success, 1 failed operation, 2 bad usage. */
#define CLI_OK 0
#define CLI_FAILED 1
#define CLI_USAGE 2

/* Run the client command argv[0] ("launch", "apps", ...). Returns -1 when
 * argv[0] is not a client command. */
int cli_main(int argc, char **argv);

/* Print the client commands' part of the top-level help. */
void cli_print_commands(FILE *out);

#endif
