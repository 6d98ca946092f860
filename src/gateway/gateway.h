/* The gateway: authenticated reverse proxy under /serve/<path>/ in front of
 * every running instance. Runs on its own thread with its own libuv loop. */
#ifndef NIMDECK_GATEWAY_GATEWAY_H
#define NIMDECK_GATEWAY_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

typedef struct gateway gateway_t;

typedef struct {
    const char *server_url;   /* e.g. "http://127.0.0.1:8470" */
    const char *api_token;    /* admin api-scope token for the server's gateway endpoints */
    const char *listen_host;  /* default "127.0.0.1" */
    int listen_port;          /* default 8471; 0 picks a free port */
    /* Requests get 503 once the last state response from the server is
     * older than this, because revocations may have been missed. 0: the
     * long poll's wait plus 10 s (35 s). */
    int64_t state_max_age_ms;
    /* A client that reads nothing of a queued response for this long is
     * disconnected and its request cancelled. 0: the HTTP server's 60 s. */
    uint64_t write_stall_timeout_ms;
} gateway_options_t;

/* Start the records and state threads, wait up to 5 s for the first state
 * and serve on a thread of its own. Returns NULL and writes the reason into
 * err on failure. */
gateway_t *gateway_start(const gateway_options_t *opts, char *err, size_t err_size);
int gateway_port(const gateway_t *gateway);
void gateway_stop(gateway_t *gateway);

/* `nimdeck gateway ...`: start, wait for SIGINT/SIGTERM, stop. */
int gateway_main(int argc, char **argv);

#endif
