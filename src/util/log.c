/* Leveled logging to stderr with UTC timestamps. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static log_level_t log_min_level = LOG_INFO;

static const char *log_level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(log_level_t level)
{
    log_min_level = level;
}

void log_init_from_env(void)
{
    const char *value = getenv("NIMDECK_LOG_LEVEL");

    if (value == NULL)
        return;
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (strcasecmp(value, log_level_names[i]) == 0 ||
            (i == LOG_WARN && strcasecmp(value, "warning") == 0))
            log_min_level = (log_level_t)i;
    }
}

void log_write(log_level_t level, const char *component, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (level < log_min_level)
        return;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000, log_level_names[level], component);

    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);

    /* A truncated line still ends with a newline. */
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';

    ssize_t ignored = write(STDERR_FILENO, line, (size_t)n);
    (void)ignored;
}
