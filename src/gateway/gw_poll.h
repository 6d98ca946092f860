/* The state poller: a background thread that long-polls the server's
 * GET /api/v1/gateway/state and publishes each new snapshot. */
#ifndef NIMDECK_GATEWAY_GW_POLL_H
#define NIMDECK_GATEWAY_GW_POLL_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/gw_state.h"

typedef struct gw_poller gw_poller_t;

/* Seconds the server may hold one long poll of the state. */
#define GW_POLL_WAIT_S 25
/* Default age of the last poll response beyond which the gateway stops
 * serving from its snapshot: one full long poll plus a margin. */
#define GW_STATE_MAX_AGE_MS ((GW_POLL_WAIT_S + 10) * 1000L)

/* Start polling. Copies server_url and api_token. Returns NULL and writes the
 * reason into err when the thread cannot start. */
gw_poller_t *gw_poller_start(const char *server_url, const char *api_token, char *err,
                             size_t err_size);

/* Wait up to timeout_ms for the first snapshot. Returns 1 once one arrived,
 * 0 on timeout, or -1 as soon as a poll gets 401 or 403 before any
 * snapshot. Then *rejected_status is that status and message receives the
 * server's error message (never the token). */
int gw_poller_wait_first(gw_poller_t *poller, int64_t timeout_ms, long *rejected_status,
                         char *message, size_t message_size);

/* The newest snapshot with a reference the caller releases with
 * gw_state_unref, or NULL before the first. *age_ms receives the
 * milliseconds since the last successful poll response (200 or 304),
 * which bounds how far the snapshot may lag behind revocations. Takes a mutex held
 * only for a pointer swap, so the loop thread may call it per request. */
gw_state_t *gw_poller_current(gw_poller_t *poller, int64_t *age_ms);

/* The number of snapshots published so far, read without the lock: a
 * caller that caches a snapshot fetches the new one with gw_poller_current
 * only when this changes. */
int64_t gw_poller_version(const gw_poller_t *poller);

/* Milliseconds since the last successful poll response, without the lock. */
int64_t gw_poller_age_ms(const gw_poller_t *poller);

/* Stop polling and release the caller's handle. The polling thread may be
 * inside a long poll, whose HTTP timeout is GW_POLL_WAIT_S plus 10 s. The
 * thread is detached and frees the shared state itself when that request
 * returns, so gw_poller_stop does not wait on the network. */
void gw_poller_stop(gw_poller_t *poller);

#endif
