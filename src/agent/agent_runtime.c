/* The runtimes this agent can run instances with. */
#include "agent/agent_runtime.h"

#include <string.h>

const agent_runtime_t *agent_runtime_find(const char *name)
{
    static const agent_runtime_t *const runtimes[] = {&agent_runtime_process,
                                                      &agent_runtime_docker};

    for (size_t i = 0; i < sizeof(runtimes) / sizeof(runtimes[0]); i++) {
        if (strcmp(runtimes[i]->name, name) == 0)
            return runtimes[i];
    }
    return NULL;
}
