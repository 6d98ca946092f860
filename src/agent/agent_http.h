/* HTTP calls the agent makes beyond api_call: a long poll that agent_stop can
 * cut short, and the health probe of an instance. */
#ifndef NIMDECK_AGENT_AGENT_HTTP_H
#define NIMDECK_AGENT_AGENT_HTTP_H

#include <stdatomic.h>

#include "util/api_client.h"

/* Like api_call with no body, but gives up as soon as *cancel is non-zero
 * (libcurl checks it at least once a second while waiting). A cancelled call
 * returns -1 with res->error saying so. */
int agent_http_call_cancellable(const char *base_url, const char *token, const char *method,
                                const char *path, long timeout_ms, const atomic_int *cancel,
                                api_result_t *res);

/* GET url and return the HTTP status, or 0 when no response arrived within
 * timeout_ms. The body is read and thrown away. */
long agent_http_probe(const char *url, long timeout_ms);

#endif
