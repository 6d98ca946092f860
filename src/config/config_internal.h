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

/* Fail for a key that takes a string (or one of a few strings). A number,
 * boolean or null there usually comes from --set, which reads VALUE as JSON
 * when it parses as JSON (--set env.PORT=8000 gives the number 8000), so the
 * message then shows how to pass the text as a string, when that string
 * would pass text_ok (NULL: any non-empty string). Only call it when value
 * may be shown: never for a string under "env". */
int config_fail_string(config_error_t *err, const char *field, const char *expected,
                       const json_t *value, int (*text_ok)(const char *));

/* A text_ok for config_fail_string for keys whose strings are a fixed set
 * of words: a number, boolean or null is never one of them, so no quoting
 * would help. */
int config_no_text(const char *text);

/* Fail, naming the key and the valid ones, when object has a key that is
 * not in keys (NULL-terminated). prefix goes before the key in the field
 * ("docker."). Returns 0 or -1. */
int config_check_keys(const json_t *object, const char *const *keys, const char *prefix,
                      config_error_t *err);

/* True when value is integral: a JSON integer, or a real with no fraction
 * (1.0). The value is stored in *out. */
int config_integral(const json_t *value, json_int_t *out);

#endif
