/* Wall-clock and monotonic time in milliseconds. */
#ifndef NIMDECK_UTIL_CLOCK_H
#define NIMDECK_UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): for stored times. */
int64_t clock_wall_ms(void);

/* Milliseconds on CLOCK_MONOTONIC: for durations and timeouts. */
int64_t clock_mono_ms(void);

/* Microseconds on CLOCK_MONOTONIC: for request latencies. */
int64_t clock_mono_us(void);

/* Fill out with the CLOCK_MONOTONIC time ms milliseconds from now, as a
 * deadline for pthread_cond_timedwait on a condition set to that clock. */
void clock_mono_deadline(int64_t ms, struct timespec *out);

/* Format a wall-clock time as RFC 3339 UTC with milliseconds into out
 * (at least 32 bytes). */
void clock_format_rfc3339(int64_t wall_ms, char *out, size_t size);

#endif
