/* The GPU readings and per-instance usage in an agent's metrics post. */
#ifndef NIMDECK_SERVER_API_AGENT_USAGE_H
#define NIMDECK_SERVER_API_AGENT_USAGE_H

#include <stdint.h>

#include "server/server_internal.h"

/* Check the optional "gpus" and "instances" arrays of the body. Returns 0,
 * or -1 with a 400 in err naming the item at fault. */
int api_agent_usage_check(api_ctx_t *ctx, api_error_t *err);

/* Store them as samples of agent (its name) taken at time. Instances not
 * leased to agent are skipped. Returns 0, or -1 with err set. */
int api_agent_usage_store(api_ctx_t *ctx, api_error_t *err, const char *agent, int64_t time);

#endif
