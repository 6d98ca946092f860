/* Helpers shared by the configuration's validation and edit files. */
#ifndef NIMDECK_CONFIG_CONFIG_INTERNAL_H
#define NIMDECK_CONFIG_CONFIG_INTERNAL_H

#include "config/config.h"

/* Fill err with field and a printf-style message. Returns -1 so that a
 * check can end with `return config_fail(...)`. */
int config_fail(config_error_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Describe a JSON value for an error message: a string quoted and cut to a
 * readable length, a number as written, or "an array", "an object". Never
 * use it on a value under "env", which may be a secret. */
void config_describe(const json_t *value, char *out, size_t size);

/* Describe only the type of a JSON value ("a string", "a number", "a
 * boolean", "null", "an array", "an object"), for values that may be
 * secrets. */
void config_describe_type(const json_t *value, char *out, size_t size);

#endif
