/* The state poller: a background thread that long-polls the server's
 * GET /api/v1/gateway/state and publishes each new snapshot. */
#ifndef NIMDECK_GATEWAY_GW_POLL_H
#define NIMDECK_GATEWAY_GW_POLL_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/gw_state.h"

typedef struct gw_poller gw_poller_t;

/* Start polling. Copies server_url and api_token. Returns NULL and writes the
 * reason into err when the thread cannot start. */
gw_poller_t *gw_poller_start(const char *server_url, const char *api_token, char *err,
                             size_t err_size);

/* Wait up to timeout_ms for the first snapshot. Returns 1 once one arrived,
 * 0 on timeout. */
int gw_poller_wait_first(gw_poller_t *poller, int64_t timeout_ms);

/* The newest snapshot with a reference the caller releases with
 * gw_state_unref, or NULL before the first. Takes a mutex held only for a
 * pointer swap, so the loop thread may call it per request. */
gw_state_t *gw_poller_current(gw_poller_t *poller);

/* Stop polling and release the caller's handle. The thread may be inside a
 * long poll (up to ~30 s): it is detached and frees the shared state itself
 * when that call returns, so this never waits on the network. */
void gw_poller_stop(gw_poller_t *poller);

#endif
