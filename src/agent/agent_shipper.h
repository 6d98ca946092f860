/* The log shipper: a bounded queue of masked console lines, sent to the
 * server in per-instance batches by one thread. */
#ifndef NIMDECK_AGENT_AGENT_SHIPPER_H
#define NIMDECK_AGENT_AGENT_SHIPPER_H

#include <stddef.h>
#include <stdint.h>

typedef struct agent_shipper agent_shipper_t;

/* Start the shipper thread. server_url and token are copied. max_lines
 * bounds the queue (0 means 10000). Returns NULL when memory or the thread
 * cannot be had. */
agent_shipper_t *agent_shipper_start(const char *server_url, const char *token, size_t max_lines);

/* Queue one line (already masked; any bytes) of instance_id's stream
 * ("stdout" or "stderr"). Returns 0, or -1 when the queue is full and the
 * line was dropped: the caller counts those. Thread-safe; never blocks on
 * the network. */
int agent_shipper_push(agent_shipper_t *shipper, const char *instance_id, const char *stream,
                       int64_t time_ms, const char *text, size_t len);

/* Send everything queued so far, waiting at most timeout_ms. */
void agent_shipper_flush(agent_shipper_t *shipper, int timeout_ms);

/* Send what is queued (at most a few seconds), stop the thread and free. */
void agent_shipper_stop(agent_shipper_t *shipper);

#endif
