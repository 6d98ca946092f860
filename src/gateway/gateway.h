/* The gateway: authenticated reverse proxy under /serve/<path>/ in front of
 * every running instance. Runs on its own thread with its own libuv loop. */
#ifndef NIMDECK_GATEWAY_GATEWAY_H
#define NIMDECK_GATEWAY_GATEWAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct gateway gateway_t;

/* Hard limits and timeouts. A zero field takes its default. */
typedef struct {
    size_t max_header_bytes;     /* request head; over → 431 (414 for the request line); 16 KiB */
    size_t max_headers;          /* header fields; over → 431; 64, also the most allowed */
    size_t max_body_bytes;       /* request body; over → 413; 16 MiB */
    uint64_t header_timeout_ms;  /* a request head must arrive within; 10 s */
    uint64_t idle_timeout_ms;    /* keep-alive connection without a request; 60 s */
    size_t max_connections;      /* client connections; (descriptor limit - 64) / 2 */
    size_t write_buffer_bytes;   /* response bytes queued for a client before the
                                  * gateway stops reading from the instance; 256 KiB */
    uint64_t write_stall_timeout_ms;         /* see gateway_options_t; 60 s */
    uint64_t upstream_connect_timeout_ms;    /* over → 504; 10 s */
    uint64_t upstream_first_byte_timeout_ms; /* request sent to the first response byte;
                                              * over → 504; 600 s */
    long upstream_keepalive;     /* idle connections kept per instance; 64; -1 for none */
} gateway_limits_t;

/* Take the limit options (--max-header-bytes N, --header-timeout S, ...)
 * out of argv, in "--name VALUE" or "--name=VALUE" form, filling limits,
 * and shift the rest down so argv[0..*argc) holds the other arguments.
 * Returns 0, or -1 with a message naming the option and the fix in err. */
int gateway_take_limit_options(int *argc, char **argv, gateway_limits_t *limits, char *err,
                               size_t err_size);

/* Print the limit options' help lines, for `nimdeck gateway` and `nimdeck up`. */
void gateway_limit_options_help(FILE *out);

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
     * disconnected and its request cancelled. 0: the HTTP server's 60 s.
     * Overrides limits.write_stall_timeout_ms when set. */
    uint64_t write_stall_timeout_ms;
    gateway_limits_t limits;
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
