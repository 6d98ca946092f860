/* The log shipper: a bounded queue of masked console lines, sent to the
 * server in per-instance batches by one thread. */
#ifndef NIMDECK_AGENT_AGENT_SHIPPER_H
#define NIMDECK_AGENT_AGENT_SHIPPER_H

#include <stddef.h>
#include <stdint.h>

typedef struct agent_shipper agent_shipper_t;

/* Start the shipper thread. server_url and token are copied. max_lines
 * is the maximum number of queued lines (0 means 10000). Returns NULL when
 * memory runs out or the thread cannot be created. */
agent_shipper_t *agent_shipper_start(const char *server_url, const char *token, size_t max_lines);

/* Queue one line of instance_id's stream ("stdout" or "stderr"). The line
 * is already masked and may contain any bytes. Returns 0, or -1 when the
 * line was dropped because the queue is full (max_lines lines or 8 MiB of
 * text) or memory ran out. The caller counts dropped lines. Thread-safe,
 * and does not wait on the network. */
int agent_shipper_push(agent_shipper_t *shipper, const char *instance_id, const char *stream,
                       int64_t time_ms, const char *text, size_t len);

/* Send everything queued so far, waiting at most timeout_ms. */
void agent_shipper_flush(agent_shipper_t *shipper, int timeout_ms);

/* Send what is queued (at most a few seconds), stop the thread and free. */
void agent_shipper_stop(agent_shipper_t *shipper);

#endif
