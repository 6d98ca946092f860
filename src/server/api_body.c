/* Request body schemas: every API body is a JSON object with known, typed
 * keys, so a typo or a wrong type is rejected instead of silently ignored. */
#include <stdio.h>
#include <string.h>

#include "server/server_internal.h"

static unsigned api_json_type_bit(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_STRING:
        return API_JSON_STRING;
    case JSON_INTEGER:
        return API_JSON_INTEGER | API_JSON_NUMBER;
    case JSON_REAL:
        return API_JSON_NUMBER;
    case JSON_TRUE:
    case JSON_FALSE:
        return API_JSON_BOOLEAN;
    case JSON_ARRAY:
        return API_JSON_ARRAY;
    case JSON_OBJECT:
        return API_JSON_OBJECT;
    default:
        return API_JSON_NULL;
    }
}

static const char *api_json_type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_ARRAY:
        return "an array";
    case JSON_OBJECT:
        return "an object";
    default:
        return "null";
    }
}

/* "a string or null" for the bits of types. */
static void api_describe_types(unsigned types, char *out, size_t size)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {API_JSON_STRING, "a string"},   {API_JSON_INTEGER, "an integer"},
        {API_JSON_NUMBER, "a number"},   {API_JSON_BOOLEAN, "true or false"},
        {API_JSON_ARRAY, "an array"},    {API_JSON_OBJECT, "an object"},
        {API_JSON_NULL, "null"},
    };
    size_t used = 0;

    out[0] = '\0';
    /* A number already includes the integers. */
    if (types & API_JSON_NUMBER)
        types &= ~API_JSON_INTEGER;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(types & names[i].bit))
            continue;
        int wrote = snprintf(out + used, size - used, "%s%s", used ? " or " : "", names[i].name);
        if (wrote < 0 || (size_t)wrote >= size - used)
            return;
        used += (size_t)wrote;
    }
}

/* "name, password, admin" for the keys of fields. */
static void api_list_keys(const api_field_t *fields, char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (const api_field_t *f = fields; f->key != NULL; f++) {
        int wrote = snprintf(out + used, size - used, "%s%s", used ? ", " : "", f->key);
        if (wrote < 0 || (size_t)wrote >= size - used)
            return;
        used += (size_t)wrote;
    }
}

static const api_field_t *api_find_field(const api_field_t *fields, const char *key)
{
    for (const api_field_t *f = fields; f->key != NULL; f++) {
        if (strcmp(f->key, key) == 0)
            return f;
    }
    return NULL;
}

/* The dotted path of key inside where ("records[3].time", or "time" for
 * the body itself), which errors report as their field. */
static const char *api_key_path(const char *where, const char *key, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s", where, where[0] ? "." : "", key);
    return out;
}

int api_check_fields(api_error_t *err, const json_t *obj, const api_field_t *fields,
                     const char *where)
{
    const char *key;
    json_t *value;
    char expected[128], keys[256], path[sizeof(err->field)];

    if (!json_is_object(obj))
        return api_fail(err, 400, "bad_request", where[0] ? where : NULL,
                        "%s must be a JSON object, got %s",
                        where[0] ? where : "the request body", api_json_type_name(obj));

    json_object_foreach((json_t *)obj, key, value) {
        const api_field_t *field = api_find_field(fields, key);
        if (field == NULL) {
            api_key_path(where, key, path, sizeof(path));
            api_list_keys(fields, keys, sizeof(keys));
            return api_fail(err, 400, "bad_request", path,
                            "unknown key \"%.80s\" in the request body; the known keys are: %s",
                            path, keys[0] ? keys : "none (send no body)");
        }
        if (!(api_json_type_bit(value) & field->types)) {
            api_key_path(where, key, path, sizeof(path));
            api_describe_types(field->types, expected, sizeof(expected));
            return api_fail(err, 400, "bad_request", path, "\"%s\" must be %s, got %s", path,
                            expected, api_json_type_name(value));
        }
    }

    for (const api_field_t *f = fields; f->key != NULL; f++) {
        if (f->required && json_object_get(obj, f->key) == NULL) {
            api_describe_types(f->types, expected, sizeof(expected));
            api_key_path(where, f->key, path, sizeof(path));
            return api_fail(err, 400, "bad_request", path,
                            "missing key \"%s\" in the request body: expected %s", path,
                            expected);
        }
    }
    return 0;
}

int api_check_body(api_ctx_t *ctx, api_error_t *err, const api_field_t *fields)
{
    static const api_field_t none[] = {{NULL, 0, 0}};
    json_t *empty = NULL;
    int rc;

    if (ctx->body != NULL)
        return api_check_fields(err, ctx->body, fields ? fields : none, "");

    /* An absent body still has to carry the required keys. */
    empty = json_object();
    if (empty == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory checking the request body");
    rc = api_check_fields(err, empty, fields ? fields : none, "");
    json_decref(empty);
    return rc;
}

int api_set_field(api_error_t *err, const char *key)
{
    /* A store failure is no fault of the key. */
    if (err->status < 500)
        snprintf(err->field, sizeof(err->field), "%s", key);
    return -1;
}

int api_fail_json_syntax(api_error_t *err, const json_error_t *jerr)
{
    /* jansson's own text for this case names its decoder flag, which a
     * client cannot set. */
    const char *text = json_error_code(jerr) == json_error_null_character
                           ? "NUL characters (\\u0000) are not allowed in JSON strings"
                           : jerr->text;

    return api_fail(err, 400, "bad_request", NULL,
                    "the request body is not valid JSON: %s (line %d, column %d)", text,
                    jerr->line, jerr->column);
}

int api_check_items(api_error_t *err, const json_t *items, const char *key,
                    const api_field_t *fields)
{
    json_t *item;
    size_t i;
    char where[64];

    /* A post may carry thousands of items: the item's path is written only
     * when it fails, and the check then runs again to name it. */
    json_array_foreach((json_t *)items, i, item) {
        if (api_check_fields(err, item, fields, "") == 0)
            continue;
        snprintf(where, sizeof(where), "%.32s[%zu]", key, i);
        return api_check_fields(err, item, fields, where);
    }
    return 0;
}
