/* libFuzzer target for instance configurations: JSON parsing, validation
 * with defaults, the --set/--unset editor and export without secrets.
 *
 * Input: a JSON document, optionally followed by a line "--" and one edit
 * per line. A line starting with "-" unsets the key after the dash; any
 * other line is a --set KEY=VALUE argument. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fuzz_util.h"

#define FUZZ_MAX_EDITS 32
#define FUZZ_EDIT_MAX 1024
/* Shorter values are too likely to occur in a message by chance. */
#define FUZZ_MIN_SECRET 4

static int fuzz_utf8_valid(const char *text)
{
    json_t *probe = json_string(text);
    int valid = probe != NULL;

    json_decref(probe);
    return valid;
}

/* The error is NUL-terminated and says something. A validation error also
 * goes into JSON responses, so it must be valid UTF-8; an edit error quotes
 * the command-line argument as given and is printed with control bytes
 * escaped, so it need not be. */
static void fuzz_check_error(const config_error_t *err, int from_validate)
{
    FUZZ_CHECK(memchr(err->field, '\0', sizeof(err->field)) != NULL, "field not terminated");
    FUZZ_CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL, "message not terminated");
    FUZZ_CHECK(err->message[0] != '\0', "empty error message");
    if (!from_validate)
        return;
    FUZZ_CHECK(fuzz_utf8_valid(err->message), "message is not valid UTF-8: %s", err->message);
    FUZZ_CHECK(fuzz_utf8_valid(err->field), "field is not valid UTF-8: %s", err->field);
}

/* Run one step on cfg: validation when edit is NULL, else the edit line
 * (a leading "-" unsets the key after it, anything else is a --set). */
static int fuzz_run_step(json_t *cfg, const char *edit, config_error_t *err)
{
    if (edit == NULL)
        return config_validate(cfg, err);
    if (edit[0] == '-')
        return config_unset_path(cfg, edit + 1, err);
    return config_apply_set(cfg, edit, err);
}

/* No error message may quote the value of a secret env key. The secret's
 * text may still occur in a message for other reasons (the same text is in
 * another key, in the user's own --set argument, or in the message's fixed
 * words), so a suspect is confirmed by running the same step with the
 * secret replaced: if the text is gone, it came from the secret. */
static void fuzz_check_no_secret(const json_t *before, const config_error_t *err, const char *edit)
{
    const json_t *env = json_object_get(before, "env");
    const char *key;
    json_t *value;

    if (!json_is_object(env))
        return;
    json_object_foreach((json_t *)env, key, value) {
        const char *secret = json_string_value(value);
        if (!config_is_secret_name(key) || secret == NULL || strlen(secret) < FUZZ_MIN_SECRET)
            continue;
        if (strstr(err->message, secret) == NULL && strstr(err->field, secret) == NULL)
            continue;

        json_t *other = json_deep_copy(before);
        char *placeholder = strdup(secret);
        config_error_t err2;
        FUZZ_CHECK(other != NULL && placeholder != NULL, "out of memory");
        memset(placeholder, '~', strlen(placeholder));
        json_object_set_new(json_object_get(other, "env"), key, json_string(placeholder));
        memset(&err2, 0, sizeof(err2));
        (void)fuzz_run_step(other, edit, &err2);
        FUZZ_CHECK(strstr(err2.message, secret) != NULL || strstr(err2.field, secret) != NULL,
                   "the value of env.%s appears in the error: %s", key, err->message);
        free(placeholder);
        json_decref(other);
    }
}

/* Validation fills in defaults and normalises numbers: doing it again must
 * succeed and change nothing. Export hides every secret. */
static void fuzz_check_valid(json_t *cfg)
{
    config_error_t err;
    json_t *again = json_deep_copy(cfg);

    FUZZ_CHECK(again != NULL, "out of memory");
    FUZZ_CHECK(config_validate(again, &err) == 0, "a validated configuration failed again: %s",
               err.message);
    FUZZ_CHECK(json_equal(cfg, again), "validating twice changed the configuration");
    json_decref(again);

    json_t *exported = config_export(cfg, 0);
    const char *key;
    json_t *value;
    FUZZ_CHECK(exported != NULL, "out of memory");
    json_object_foreach(json_object_get(exported, "env"), key, value) {
        if (config_is_secret_name(key))
            FUZZ_CHECK(json_is_null(value), "export kept env.%s", key);
    }
    json_decref(exported);

    json_t *full = config_export(cfg, 1);
    FUZZ_CHECK(full != NULL && json_equal(full, cfg), "export with secrets differs");
    json_decref(full);

    (void)config_image_needs_ngc_key(json_string_value(json_object_get(cfg, "image")));
}

static void fuzz_validate(json_t *cfg)
{
    config_error_t err;
    json_t *before = json_deep_copy(cfg);

    FUZZ_CHECK(before != NULL, "out of memory");
    if (config_validate(cfg, &err) == 0) {
        fuzz_check_valid(cfg);
    } else {
        fuzz_check_error(&err, 1);
        fuzz_check_no_secret(before, &err, NULL);
    }
    json_decref(before);
}

/* Apply one edit line; the key and value cannot contain a NUL, as on a
 * command line. */
static void fuzz_edit(json_t *cfg, const char *line, size_t len)
{
    char edit[FUZZ_EDIT_MAX];
    config_error_t err;

    if (len >= sizeof(edit) || memchr(line, '\0', len) != NULL)
        return;
    memcpy(edit, line, len);
    edit[len] = '\0';

    json_t *before = json_deep_copy(cfg);
    FUZZ_CHECK(before != NULL, "out of memory");
    if (fuzz_run_step(cfg, edit, &err) != 0) {
        fuzz_check_error(&err, 0);
        fuzz_check_no_secret(before, &err, edit);
    }
    json_decref(before);
}

static const char *fuzz_find_separator(const char *data, size_t size)
{
    static const char separator[] = "\n--\n";

    return memmem(data, size, separator, sizeof(separator) - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *sep = fuzz_find_separator(text, size);
    size_t doc_len = sep != NULL ? (size_t)(sep - text) : size;
    json_error_t jerr;

    /* The CLI reads files with duplicate keys rejected, as here. */
    json_t *cfg = json_loadb(text, doc_len, JSON_REJECT_DUPLICATES, &jerr);
    if (cfg == NULL)
        return 0;

    /* Validation fills in defaults, so the edits, as on the command line,
     * apply to the document as read. */
    json_t *as_read = json_deep_copy(cfg);
    FUZZ_CHECK(as_read != NULL, "out of memory");
    fuzz_validate(as_read);
    json_decref(as_read);

    if (sep != NULL) {
        const char *pos = sep + 4;
        const char *end = text + size;
        for (int i = 0; i < FUZZ_MAX_EDITS && pos < end; i++) {
            const char *nl = memchr(pos, '\n', (size_t)(end - pos));
            size_t len = nl != NULL ? (size_t)(nl - pos) : (size_t)(end - pos);

            fuzz_edit(cfg, pos, len);
            pos += len + 1;
        }
        fuzz_validate(cfg);
    }

    json_decref(cfg);
    return 0;
}
