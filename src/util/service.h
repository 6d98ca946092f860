/* Process-wide signal handling for long-running commands: SIGINT and SIGTERM
 * are blocked in every thread and taken by the main thread with sigwait. */
#ifndef NIMDECK_UTIL_SERVICE_H
#define NIMDECK_UTIL_SERVICE_H

#include <stddef.h>

/* Block SIGINT, SIGTERM and SIGPIPE in the calling thread; threads created
 * afterwards inherit the mask. Call before starting any component. A child
 * process must restore its mask with service_unblock_signals() before exec. */
void service_block_signals(void);
void service_unblock_signals(void);

/* Wait for SIGINT or SIGTERM and return its number. */
int service_wait_signal(void);

/* Parse "HOST:PORT" (or ":PORT", or "PORT") into host (default_host when
 * absent) and port. Returns 0, or -1 when the port is not 0..65535. */
int service_parse_hostport(const char *text, const char *default_host, char *host,
                           size_t host_size, int *port);

/* Parse a whole decimal integer from min to max. Returns 0, or -1 when text
 * is empty, has trailing characters, or is out of range (callers print the
 * message, naming their option). */
int service_parse_long(const char *text, long min, long max, long *out);

/* Read an API token from the first line of path into out (trailing
 * whitespace removed). Returns 0, or -1 with a message naming the file in err.
 * A file in place of --token keeps the token out of the process list. */
int service_read_token_file(const char *path, char *out, size_t out_size, char *err,
                            size_t err_size);

#endif
