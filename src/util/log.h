/* Leveled logging: one line per event on stderr, "TIME LEVEL component: text". */
#ifndef NIMDECK_UTIL_LOG_H
#define NIMDECK_UTIL_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Set the lowest level that is written (default LOG_INFO, or the value of
 * NIMDECK_LOG_LEVEL: debug, info, warn, error). */
void log_set_level(log_level_t level);
void log_init_from_env(void);

/* Write one line. The caller must never pass a secret value: the log is not
 * masked. Thread-safe: each line is written with one write(2). */
void log_write(log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(comp, ...) log_write(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...)  log_write(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...)  log_write(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_write(LOG_ERROR, comp, __VA_ARGS__)

#endif
