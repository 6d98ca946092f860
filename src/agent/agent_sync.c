/* Condition variables on the monotonic clock. */
#include "agent/agent_sync.h"

#include <time.h>

void agent_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

int agent_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline_ms)
{
    struct timespec until;

    until.tv_sec = deadline_ms / 1000;
    until.tv_nsec = (deadline_ms % 1000) * 1000000;
    return pthread_cond_timedwait(cond, lock, &until);
}
