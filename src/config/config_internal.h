/* Helpers shared by the configuration's validation and edit files. */
#ifndef NIMDECK_CONFIG_CONFIG_INTERNAL_H
#define NIMDECK_CONFIG_CONFIG_INTERNAL_H

#include "config/config.h"

/* Fill err with field and a printf-style message. Returns -1 so that a
 * check can end with `return config_fail(...)`. */
int config_fail(config_error_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Describe a JSON value for an error message: a string quoted and cut to a
 * readable length, a number as written, or "an array", "an object". */
void config_describe(const json_t *value, char *out, size_t size);

#endif
