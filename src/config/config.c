/* Configuration validation: known keys, types, ranges, required fields and
 * defaults. Each check names the dotted key and what it expects. */
#include "config/config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_docker.h"
#include "config/config_gpus.h"
#include "config/config_internal.h"
#include "util/buf.h"

#define CONFIG_DEFAULT_QUEUE "default"
#define CONFIG_DEFAULT_HEALTH_PATH "/v1/health/ready"
#define CONFIG_NAME_MAX 64

static const char *const config_top_keys[] = {
    "version", "name", "project", "image", "runtime", "command", "queue", "route",
    "idle_time_limit_hours", "env", "tags", "gpus", "port", "health_path", "docker", NULL,
};

/* Length of the longest prefix of text[0..len) that does not end inside a
 * UTF-8 sequence, so that a cut text stays valid for a JSON string. */
static size_t config_utf8_boundary(const char *text, size_t len)
{
    size_t start = len;

    while (start > 0 && len - start < 4 && ((unsigned char)text[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return len;

    /* The lead byte gives the length of its sequence. A sequence with fewer
     * bytes than that is incomplete, so the prefix ends before its lead byte. */
    unsigned char lead = (unsigned char)text[start - 1];
    size_t need = 1;
    if (lead >= 0xF0)
        need = 4;
    else if (lead >= 0xE0)
        need = 3;
    else if (lead >= 0xC0)
        need = 2;

    if (len - (start - 1) < need)
        return start - 1;
    return len;
}

static void config_trim_utf8(char *text)
{
    text[config_utf8_boundary(text, strlen(text))] = '\0';
}

/* Number of characters (code points) in a valid UTF-8 string. */
static size_t config_utf8_chars(const char *text)
{
    size_t count = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        count += (*p & 0xC0) != 0x80;
    return count;
}

int config_fail(config_error_t *err, const char *field, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return -1;
    snprintf(err->field, sizeof(err->field), "%s", field);
    config_trim_utf8(err->field);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    config_trim_utf8(err->message);
    return -1;
}

void config_describe(const json_t *value, char *out, size_t size)
{
    switch (json_typeof(value)) {
    case JSON_STRING: {
        const char *text = json_string_value(value);
        size_t len = json_string_length(value);
        size_t quoted_len = len > 40 ? config_utf8_boundary(text, 40) : len;
        snprintf(out, size, "\"%.*s%s\"", (int)quoted_len, text, quoted_len < len ? "..." : "");
        break;
    }
    case JSON_INTEGER:
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        break;
    case JSON_REAL:
        snprintf(out, size, "%g", json_real_value(value));
        break;
    case JSON_TRUE:
        snprintf(out, size, "true");
        break;
    case JSON_FALSE:
        snprintf(out, size, "false");
        break;
    case JSON_NULL:
        snprintf(out, size, "null");
        break;
    case JSON_ARRAY:
        snprintf(out, size, "an array");
        break;
    case JSON_OBJECT:
        snprintf(out, size, "an object");
        break;
    }
}

void config_describe_type(const json_t *value, char *out, size_t size)
{
    const char *type = "an object";

    switch (json_typeof(value)) {
    case JSON_STRING:
        type = "a string";
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        type = "a number";
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        type = "a boolean";
        break;
    case JSON_NULL:
        type = "null";
        break;
    case JSON_ARRAY:
        type = "an array";
        break;
    case JSON_OBJECT:
        break;
    }
    snprintf(out, size, "%s", type);
}

/* Describe a number, boolean or null with its type, for a key that wants a
 * string: "the number 8000", "the boolean true", "null". */
static void config_describe_scalar(const json_t *value, char *out, size_t size)
{
    char text[64];

    config_describe(value, text, sizeof(text));
    if (json_is_number(value))
        snprintf(out, size, "the number %s", text);
    else if (json_is_boolean(value))
        snprintf(out, size, "the boolean %s", text);
    else
        snprintf(out, size, "%s", text);
}

int config_fail_string(config_error_t *err, const char *field, const char *expected,
                       const json_t *value, int (*text_ok)(const char *))
{
    char got[96];
    char *text = NULL;
    int rc;

    if (!json_is_number(value) && !json_is_boolean(value) && !json_is_null(value)) {
        config_describe(value, got, sizeof(got));
        return config_fail(err, field, "\"%s\" must be %s, got %s", field, expected, got);
    }

    config_describe_scalar(value, got, sizeof(got));
    text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (text != NULL && (text_ok == NULL || text_ok(text)))
        rc = config_fail(err, field,
                         "\"%s\" must be %s, got %s; to set it from the command line, quote it "
                         "as JSON: --set '%s=\"%s\"'",
                         field, expected, got, field, text);
    else
        rc = config_fail(err, field, "\"%s\" must be %s, got %s", field, expected, got);
    free(text);
    return rc;
}

int config_no_text(const char *text)
{
    (void)text;
    return 0;
}

static int config_key_known(const char *const *keys, const char *key)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        if (strcmp(keys[i], key) == 0)
            return 1;
    }
    return 0;
}

int config_check_keys(const json_t *object, const char *const *keys, const char *prefix,
                      config_error_t *err)
{
    const char *key;
    json_t *value;
    char field[128];

    json_object_foreach((json_t *)object, key, value) {
        if (config_key_known(keys, key))
            continue;

        buf_t valid = BUF_INIT;
        for (size_t i = 0; keys[i] != NULL; i++)
            buf_printf(&valid, "%s%s", i ? ", " : "", keys[i]);
        snprintf(field, sizeof(field), "%s%s", prefix, key);
        config_trim_utf8(field);
        config_fail(err, field, "unknown key \"%s\"; valid keys are %s", field,
                    valid.data ? valid.data : "");
        buf_free(&valid);
        return -1;
    }
    return 0;
}

int config_integral(const json_t *value, json_int_t *out)
{
    if (json_is_integer(value)) {
        *out = json_integer_value(value);
        return 1;
    }
    if (json_is_real(value)) {
        double real = json_real_value(value);
        if (real == floor(real) && fabs(real) < 9.0e15) {
            *out = (json_int_t)real;
            return 1;
        }
    }
    return 0;
}

static int config_name_valid(const char *text)
{
    size_t len = strlen(text);

    if (len == 0 || len > CONFIG_NAME_MAX)
        return 0;
    return strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* Route and queue names as the API stores them: 1-64 of [a-z0-9._-],
 * starting with a letter or digit. */
static int config_slug_valid(const char *text)
{
    size_t len = strlen(text);

    if (len == 0 || len > CONFIG_NAME_MAX)
        return 0;
    if (strchr("._-", text[0]) != NULL)
        return 0;
    return strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

static int config_env_name_valid(const char *text)
{
    size_t len = strlen(text);
    static const char first[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";

    if (len == 0 || strchr(first, text[0]) == NULL)
        return 0;
    return strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789") == len;
}

static int config_check_version(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "version");
    json_int_t version;
    char got[96];

    if (value == NULL)
        return json_object_set_new(cfg, "version", json_integer(1));
    if (config_integral(value, &version) && version == 1)
        return json_object_set_new(cfg, "version", json_integer(1));

    config_describe(value, got, sizeof(got));
    return config_fail(err, "version", "\"version\" must be 1 (the only configuration version), got %s",
                       got);
}

static int config_check_name(json_t *cfg, const char *key, config_error_t *err)
{
    json_t *value = json_object_get(cfg, key);

    if (value == NULL)
        return config_fail(err, key, "missing required key \"%s\": 1-64 characters of A-Z a-z 0-9 . _ -",
                           key);
    if (json_is_string(value) && config_name_valid(json_string_value(value)))
        return 0;
    return config_fail_string(err, key, "1-64 characters of A-Z a-z 0-9 . _ -", value,
                              config_name_valid);
}

static int config_check_runtime(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "runtime");
    const char *text = json_string_value(value);

    if (value == NULL)
        return config_fail(err, "runtime", "missing required key \"runtime\": \"process\" or \"docker\"");
    if (text != NULL && (strcmp(text, "process") == 0 || strcmp(text, "docker") == 0))
        return 0;

    return config_fail_string(err, "runtime", "\"process\" or \"docker\"", value, config_no_text);
}

/* Docker reads the image of a docker instance, so it must be a reference
 * Docker accepts; for a process instance it only names the model. */
static int config_check_image(json_t *cfg, int docker, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "image");

    if (docker)
        return config_docker_check_image(value, err);
    if (value == NULL || json_is_null(value))
        return 0;
    if (json_is_string(value) && json_string_length(value) > 0)
        return 0;

    return config_fail_string(err, "image", "a non-empty string naming an image", value, NULL);
}

static int config_check_command(json_t *cfg, int docker, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "command");
    json_t *item;
    size_t i;
    char got[96];

    if (value == NULL && docker)
        return 0;
    if (value == NULL)
        return config_fail(err, "command",
                           "missing required key \"command\": runtime \"process\" needs an array of strings such as [\"my-server\", \"--port\", \"{port}\"]");
    if (!json_is_array(value)) {
        config_describe(value, got, sizeof(got));
        return config_fail(err, "command", "\"command\" must be an array of strings, got %s", got);
    }
    if (!docker && (json_array_size(value) == 0))
        return config_fail(err, "command",
                           "\"command\" must not be empty: runtime \"process\" needs the program to run");

    json_array_foreach(value, i, item) {
        if (!json_is_string(item)) {
            config_describe(item, got, sizeof(got));
            return config_fail(err, "command", "\"command\" element %zu must be a string, got %s", i,
                               got);
        }
    }
    if (!docker && json_string_length(json_array_get(value, 0)) == 0)
        return config_fail(err, "command", "\"command\" element 0 must name the program to run, got \"\"");
    return 0;
}

static int config_check_queue(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "queue");

    if (value == NULL)
        return json_object_set_new(cfg, "queue", json_string(CONFIG_DEFAULT_QUEUE));
    if (json_is_string(value) && config_slug_valid(json_string_value(value)))
        return 0;
    return config_fail_string(err, "queue",
                              "a queue name (1-64 of a-z 0-9 . _ -, starting with a letter or digit)",
                              value, config_slug_valid);
}

static int config_check_route(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "route");

    if (value == NULL)
        return json_object_set_new(cfg, "route", json_null());
    if (json_is_null(value))
        return 0;
    if (json_is_string(value) && config_slug_valid(json_string_value(value)))
        return 0;

    return config_fail_string(
        err, "route", "a route name (1-64 of a-z 0-9 . _ -, starting with a letter or digit) or null",
        value, config_slug_valid);
}

static int config_check_idle(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "idle_time_limit_hours");
    char got[96];

    if (value == NULL)
        return json_object_set_new(cfg, "idle_time_limit_hours", json_null());
    if (json_is_null(value))
        return 0;
    if (json_is_number(value) && json_number_value(value) >= 0 && isfinite(json_number_value(value)))
        return 0;

    config_describe(value, got, sizeof(got));
    return config_fail(err, "idle_time_limit_hours",
                       "\"idle_time_limit_hours\" must be a number of hours >= 0 or null (0 and null never stop), got %s",
                       got);
}

static int config_check_env(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "env");
    const char *key;
    json_t *item;
    size_t total = 0;
    char got[96], field[128];

    if (value == NULL)
        return json_object_set_new(cfg, "env", json_object());
    if (!json_is_object(value)) {
        /* Only the type: whatever is here was meant as secret values. */
        config_describe_type(value, got, sizeof(got));
        return config_fail(err, "env",
                           "\"env\" must be an object such as {\"NAME\": \"value\"}, got %s; "
                           "use {} or --unset env for no variables",
                           got);
    }
    if (json_object_size(value) > CONFIG_ENV_MAX)
        return config_fail(err, "env", "\"env\" has %zu variables; the limit is %d",
                           json_object_size(value), CONFIG_ENV_MAX);

    json_object_foreach(value, key, item) {
        snprintf(field, sizeof(field), "env.%s", key);
        config_trim_utf8(field);
        if (!config_env_name_valid(key))
            return config_fail(err, field,
                               "\"%s\" is not a valid environment variable name: use [A-Za-z_][A-Za-z0-9_]*",
                               field);
        if (json_is_string(item) && json_string_length(item) > CONFIG_ENV_VALUE_MAX)
            return config_fail(err, field, "the value of \"%s\" is %zu bytes; the limit is %d bytes "
                               "(32 KiB)", field, json_string_length(item), CONFIG_ENV_VALUE_MAX);
        /* Each variable takes NAME=VALUE and a NUL byte of the process's
         * environment block, which execve limits as a whole. */
        total += strlen(key) + 2 + (json_is_string(item) ? json_string_length(item) : 0);
        if (total > CONFIG_ENV_TOTAL_MAX)
            return config_fail(err, "env", "\"env\" holds more than %d bytes (256 KiB) of "
                               "NAME=value text; put large data in a file or volume instead",
                               CONFIG_ENV_TOTAL_MAX);
        if (json_is_string(item) || json_is_null(item))
            continue;
        /* A number or boolean may be shown (--set env.PORT=8000 makes one),
         * while an array or object could hold secret strings: type only. */
        if (json_is_number(item) || json_is_boolean(item))
            return config_fail_string(err, field, "a string or null", item, NULL);
        config_describe_type(item, got, sizeof(got));
        return config_fail(err, field, "\"%s\" must be a string or null, got %s", field, got);
    }
    return 0;
}

static int config_check_tags(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "tags");
    json_t *item;
    size_t i;
    char got[96];

    if (value == NULL)
        return json_object_set_new(cfg, "tags", json_array());
    if (!json_is_array(value)) {
        config_describe(value, got, sizeof(got));
        return config_fail(err, "tags", "\"tags\" must be an array of strings, got %s", got);
    }

    if (json_array_size(value) > CONFIG_TAGS_MAX)
        return config_fail(err, "tags", "\"tags\" has %zu elements; the limit is %d tags",
                           json_array_size(value), CONFIG_TAGS_MAX);

    json_array_foreach(value, i, item) {
        if (!json_is_string(item) || json_string_length(item) == 0) {
            config_describe(item, got, sizeof(got));
            return config_fail(err, "tags", "\"tags\" element %zu must be a non-empty string, got %s", i,
                               got);
        }
        size_t chars = config_utf8_chars(json_string_value(item));
        if (chars > CONFIG_TAG_CHARS_MAX) {
            config_describe(item, got, sizeof(got));
            return config_fail(err, "tags",
                               "\"tags\" element %zu is %zu characters long; the limit is %d "
                               "characters, got %s",
                               i, chars, CONFIG_TAG_CHARS_MAX, got);
        }
    }
    return 0;
}

/* Check each element of a "gpus" array: a valid device id, listed once.
 * An integer and its decimal string (0 and "0") name the same device. */
static int config_check_gpu_ids(const json_t *value, config_error_t *err)
{
    size_t size = json_array_size(value);
    char id[CONFIG_GPU_ID_MAX + 32], earlier[CONFIG_GPU_ID_MAX + 32], got[96];

    if (size > CONFIG_GPUS_IDS_MAX)
        return config_fail(err, "gpus", "\"gpus\" lists %zu device ids; the limit is %d", size,
                           CONFIG_GPUS_IDS_MAX);

    for (size_t i = 0; i < size; i++) {
        json_t *item = json_array_get(value, i);
        if (config_gpus_id_text(item, id, sizeof(id)) != 0) {
            config_describe(item, got, sizeof(got));
            return config_fail(err, "gpus",
                               "\"gpus\" element %zu must be a device id (an integer >= 0, or "
                               "1-%d characters of A-Z a-z 0-9 . _ : / -), got %s",
                               i, CONFIG_GPU_ID_MAX, got);
        }
        for (size_t j = 0; j < i; j++) {
            config_gpus_id_text(json_array_get(value, j), earlier, sizeof(earlier));
            if (strcmp(id, earlier) == 0)
                return config_fail(err, "gpus",
                                   "\"gpus\" lists device \"%s\" twice (elements %zu and %zu); "
                                   "list each device id once",
                                   id, j, i);
        }
    }
    return 0;
}

static int config_check_gpus(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "gpus");
    json_int_t count;
    char got[96];

    if (value == NULL)
        return json_object_set_new(cfg, "gpus", json_integer(0));
    if (json_is_null(value))
        return 0;
    if (json_is_string(value) && strcmp(json_string_value(value), "all") == 0)
        return 0;
    if (config_integral(value, &count) && count >= 0)
        return json_object_set_new(cfg, "gpus", json_integer(count));

    if (json_is_array(value))
        return config_check_gpu_ids(value, err);

    config_describe(value, got, sizeof(got));
    return config_fail(err, "gpus",
                       "\"gpus\" must be \"all\", a count >= 0, an array of device ids, or null, got %s", got);
}

static int config_check_port(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "port");
    json_int_t port;
    char got[96];

    if (value == NULL)
        return json_object_set_new(cfg, "port", json_null());
    if (json_is_null(value))
        return 0;
    if (config_integral(value, &port) && port >= 1 && port <= 65535)
        return json_object_set_new(cfg, "port", json_integer(port));

    config_describe(value, got, sizeof(got));
    return config_fail(err, "port",
                       "\"port\" must be an integer from 1 to 65535, or null to pick a free port, got %s", got);
}

static int config_check_health_path(json_t *cfg, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "health_path");
    const char *text = json_string_value(value);

    if (value == NULL)
        return json_object_set_new(cfg, "health_path", json_string(CONFIG_DEFAULT_HEALTH_PATH));
    if (text != NULL && text[0] == '/' && strpbrk(text, " \t\r\n") == NULL)
        return 0;

    return config_fail_string(err, "health_path",
                              "a path starting with \"/\" such as \"" CONFIG_DEFAULT_HEALTH_PATH "\"",
                              value, config_no_text);
}

static int config_check_docker(json_t *cfg, int docker_runtime, config_error_t *err)
{
    json_t *value = json_object_get(cfg, "docker");

    if (value == NULL)
        return docker_runtime ? json_object_set_new(cfg, "docker", json_object()) : 0;
    return config_docker_check(value, err);
}

int config_validate(json_t *cfg, config_error_t *err)
{
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    if (!json_is_object(cfg))
        return config_fail(err, "", "the configuration must be a JSON object");

    if (config_check_keys(cfg, config_top_keys, "", err) != 0)
        return -1;

    if (config_check_version(cfg, err) != 0 || config_check_name(cfg, "name", err) != 0 ||
        config_check_name(cfg, "project", err) != 0 || config_check_runtime(cfg, err) != 0)
        goto fail;

    int docker = strcmp(json_string_value(json_object_get(cfg, "runtime")), "docker") == 0;

    if (config_check_image(cfg, docker, err) != 0 || config_check_command(cfg, docker, err) != 0 ||
        config_check_queue(cfg, err) != 0 || config_check_route(cfg, err) != 0 ||
        config_check_idle(cfg, err) != 0 || config_check_env(cfg, err) != 0 ||
        config_check_tags(cfg, err) != 0 || config_check_gpus(cfg, err) != 0 ||
        config_check_port(cfg, err) != 0 || config_check_health_path(cfg, err) != 0 ||
        config_check_docker(cfg, docker, err) != 0)
        goto fail;
    return 0;

fail:
    /* A default that could not be stored leaves the message empty. */
    if (err != NULL && err->message[0] == '\0')
        config_fail(err, "", "out of memory while filling in configuration defaults");
    return -1;
}
