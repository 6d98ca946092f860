/* The agent's health probe of an instance. */
#ifndef NIMDECK_AGENT_AGENT_HTTP_H
#define NIMDECK_AGENT_AGENT_HTTP_H

/* GET url and return the HTTP status, or 0 when no response arrived within
 * timeout_ms. The body is read and thrown away. */
long agent_http_probe(const char *url, long timeout_ms);

#endif
