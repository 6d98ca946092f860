/* Condition variables on the monotonic clock, so that waits with a deadline
 * are not moved by changes to the wall clock. */
#ifndef NIMDECK_AGENT_AGENT_SYNC_H
#define NIMDECK_AGENT_AGENT_SYNC_H

#include <pthread.h>
#include <stdint.h>

void agent_cond_init(pthread_cond_t *cond);

/* Wait on cond until signalled or until deadline_ms (clock_mono_ms time).
 * Returns 0 when signalled (or woken spuriously), ETIMEDOUT after the
 * deadline. */
int agent_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ms);

#endif
