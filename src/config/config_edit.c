/* Configuration edits by dotted key (--set, --unset), secret detection and
 * export with secrets removed. */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

#define CONFIG_PATH_MAX 256
#define CONFIG_ENV_KEY "env"

/* Split a dotted key into a writable copy whose segments are NUL-separated;
 * rejects empty keys and empty segments ("a..b", ".a", "a."). */
static int config_split_path(const char *dotted, char *copy, size_t size, config_error_t *err)
{
    size_t len = dotted ? strlen(dotted) : 0;

    if (len == 0)
        return config_fail(err, "", "empty key: use a key such as \"idle_time_limit_hours\" or \"env.NAME\"");
    if (len >= size)
        return config_fail(err, "", "key of %zu characters is too long (at most %zu)", len, size - 1);
    if (dotted[0] == '.' || dotted[len - 1] == '.' || strstr(dotted, "..") != NULL)
        return config_fail(err, dotted, "key \"%s\" has an empty part between dots", dotted);

    memcpy(copy, dotted, len + 1);
    return 0;
}

/* An example whole value for an array at key, for error messages. */
static const char *config_array_example(const char *key)
{
    if (strcmp(key, "tags") == 0)
        return "[\"a\",\"b\"]";
    if (strcmp(key, "command") == 0)
        return "[\"my-server\",\"--port\",\"{port}\"]";
    if (strcmp(key, "gpus") == 0)
        return "[0,1]";
    return "[...]";
}

/* Fail for a dotted key that goes through an array: a dot addresses an
 * object's key, and "tags.0" would otherwise turn the array into an object
 * with the key "0". prefix_len is the length of the array's own key. */
static int config_fail_through_array(config_error_t *err, const char *dotted, size_t prefix_len)
{
    char key[CONFIG_PATH_MAX];

    snprintf(key, sizeof(key), "%.*s", (int)prefix_len, dotted);
    return config_fail(err, dotted,
                       "cannot use \"%s\": \"%s\" is an array, and arrays are set whole, for "
                       "example --set '%s=%s'",
                       dotted, key, key, config_array_example(key));
}

/* Whether a missing top-level key must be an array: a dotted key through it
 * would create an object that validation then rejects. */
static int config_is_array_key(const char *key)
{
    return strcmp(key, "tags") == 0 || strcmp(key, "command") == 0;
}

/* Walk to the object that contains the last segment, creating missing objects
 * when create is set. Returns the parent and points *leaf at the last
 * segment, or NULL (err filled, or *leaf NULL when absent and !create). */
static json_t *config_walk(json_t *cfg, char *copy, const char *dotted, int create, char **leaf,
                           config_error_t *err)
{
    json_t *node = cfg;
    char *segment = copy;
    char *dot;
    int in_env = 0;

    *leaf = NULL;
    while ((dot = strchr(segment, '.')) != NULL) {
        *dot = '\0';
        if (segment == copy)
            in_env = strcmp(segment, CONFIG_ENV_KEY) == 0;
        json_t *next = json_object_get(node, segment);
        size_t prefix_len = (size_t)(dot - copy);

        if (json_is_array(next) || (next == NULL && node == cfg && config_is_array_key(segment))) {
            config_fail_through_array(err, dotted, prefix_len);
            return NULL;
        }
        if (next == NULL && !create)
            return NULL;
        if (next == NULL) {
            next = json_object();
            if (next == NULL || json_object_set_new(node, segment, next) != 0) {
                config_fail(err, dotted, "out of memory while setting \"%s\"", dotted);
                return NULL;
            }
        }
        if (!json_is_object(next)) {
            char got[96];
            /* A value under env may be a secret: name its type only. */
            if (in_env)
                config_describe_type(next, got, sizeof(got));
            else
                config_describe(next, got, sizeof(got));
            config_fail(err, dotted, "cannot use \"%s\": \"%s\" is %s, not an object", dotted,
                        segment, got);
            return NULL;
        }
        node = next;
        segment = dot + 1;
    }
    *leaf = segment;
    return node;
}

int config_set_path(json_t *cfg, const char *dotted, json_t *value, config_error_t *err)
{
    char copy[CONFIG_PATH_MAX];
    char *leaf;
    json_t *parent;

    if (err != NULL)
        memset(err, 0, sizeof(*err));
    if (value == NULL)
        return config_fail(err, dotted ? dotted : "", "no value given for \"%s\"", dotted ? dotted : "");
    if (!json_is_object(cfg)) {
        json_decref(value);
        return config_fail(err, "", "the configuration must be a JSON object");
    }
    if (config_split_path(dotted, copy, sizeof(copy), err) != 0) {
        json_decref(value);
        return -1;
    }

    parent = config_walk(cfg, copy, dotted, 1, &leaf, err);
    if (parent == NULL) {
        json_decref(value);
        return -1;
    }
    if (json_object_set_new(parent, leaf, value) != 0)
        return config_fail(err, dotted, "cannot set \"%s\": the key is not valid UTF-8", dotted);
    return 0;
}

int config_unset_path(json_t *cfg, const char *dotted, config_error_t *err)
{
    char copy[CONFIG_PATH_MAX];
    char *leaf;
    json_t *parent;
    config_error_t local;

    if (err == NULL)
        err = &local;
    memset(err, 0, sizeof(*err));
    if (!json_is_object(cfg))
        return config_fail(err, "", "the configuration must be a JSON object");
    if (config_split_path(dotted, copy, sizeof(copy), err) != 0)
        return -1;

    /* A missing object on the way means the key is already absent. */
    parent = config_walk(cfg, copy, dotted, 0, &leaf, err);
    if (parent == NULL)
        return err->message[0] != '\0' ? -1 : 0;

    /* Removing a key that is not there leaves nothing to do. */
    json_object_del(parent, leaf);
    return 0;
}

/* Copy into out the part of an assignment without "=" that an error may
 * show. Under env the value cannot be separated from the key
 * ("env.NGC_API_KEY:nvapi-..."), so only the leading variable name is kept. */
static void config_assignment_shown(const char *assignment, char *out, size_t size)
{
    static const char name_chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
    size_t prefix = sizeof(CONFIG_ENV_KEY) - 1;

    if (strncasecmp(assignment, CONFIG_ENV_KEY, prefix) != 0) {
        snprintf(out, size, "%s", assignment);
        return;
    }
    if (assignment[prefix] == '.')
        prefix += 1 + strspn(assignment + prefix + 1, name_chars);
    snprintf(out, size, "%.*s%s", (int)prefix, assignment,
             assignment[prefix] != '\0' ? "..." : "");
}

int config_parse_assignment(const char *assignment, char *key, size_t key_size, json_t **value,
                            config_error_t *err)
{
    const char *equals = assignment ? strchr(assignment, '=') : NULL;
    char shown[CONFIG_PATH_MAX];

    *value = NULL;
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    if (equals == NULL) {
        config_assignment_shown(assignment ? assignment : "", shown, sizeof(shown));
        return config_fail(err, "",
                           "--set \"%s\" has no \"=\": use KEY=VALUE, for example idle_time_limit_hours=2",
                           shown);
    }

    /* Without a key the value may be a secret, so it is not shown. */
    size_t key_len = (size_t)(equals - assignment);
    if (key_len == 0)
        return config_fail(err, "", "--set argument has no key before \"=\": use KEY=VALUE");
    if (key_len >= key_size)
        return config_fail(err, "", "--set key of %zu characters is too long (at most %zu)", key_len,
                           key_size - 1);
    memcpy(key, assignment, key_len);
    key[key_len] = '\0';

    /* A complete JSON value (number, null, true, array, object, quoted
     * string) is taken as JSON; anything else is the raw text. */
    *value = json_loads(equals + 1, JSON_DECODE_ANY, NULL);
    if (*value == NULL)
        *value = json_string(equals + 1);
    if (*value == NULL)
        return config_fail(err, key, "--set value for \"%s\" is not valid UTF-8", key);
    return 0;
}

int config_apply_set(json_t *cfg, const char *assignment, config_error_t *err)
{
    char key[CONFIG_PATH_MAX];
    json_t *value;

    if (config_parse_assignment(assignment, key, sizeof(key), &value, err) != 0)
        return -1;
    return config_set_path(cfg, key, value, err);
}

int config_is_secret_name(const char *name)
{
    static const char *const markers[] = {"KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", NULL};

    if (name == NULL)
        return 0;
    for (size_t i = 0; markers[i] != NULL; i++) {
        if (strcasestr(name, markers[i]) != NULL)
            return 1;
    }
    return 0;
}

json_t *config_export(const json_t *cfg, int include_secrets)
{
    json_t *copy = json_deep_copy(cfg);
    json_t *env = json_object_get(copy, "env");
    const char *key;
    json_t *value;

    if (copy == NULL || include_secrets || !json_is_object(env))
        return copy;

    json_object_foreach(env, key, value) {
        if (config_is_secret_name(key) && json_object_set_new(env, key, json_null()) != 0) {
            /* A copy that still contains a secret must not be returned. */
            json_decref(copy);
            return NULL;
        }
    }
    return copy;
}

int config_image_needs_ngc_key(const char *image)
{
    static const char prefix[] = "nvcr.io/nim/";

    if (image == NULL)
        return 0;
    return strncasecmp(image, prefix, sizeof(prefix) - 1) == 0;
}
