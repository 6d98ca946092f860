/* Placeholder until the CLI lands. */
#include "cli/cli.h"
int cli_main(int c, char **v) { (void)c; (void)v; return -1; }
void cli_print_commands(void) {}
