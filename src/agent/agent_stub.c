/* Placeholder until the agent lands. */
#include "agent/agent.h"
#include <stdio.h>
agent_t *agent_start(const agent_options_t *o, char *e, size_t n) { (void)o; snprintf(e, n, "not built"); return NULL; }
void agent_stop(agent_t *a) { (void)a; }
int agent_main(int c, char **v) { (void)c; (void)v; return 1; }
