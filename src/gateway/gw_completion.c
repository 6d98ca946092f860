/* Completion request bodies: the only request JSON the gateway reads, to ask
 * streamed completions for their usage. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_request.h"

static int gw_path_is(const char *path, size_t path_len, const char *expected)
{
    size_t expected_len = strlen(expected);

    return path_len == expected_len && memcmp(path, expected, path_len) == 0;
}

int gw_is_completion(const char *method, size_t method_len, const char *path, size_t path_len)
{
    if (method_len != 4 || memcmp(method, "POST", 4) != 0)
        return 0;
    return gw_path_is(path, path_len, "/v1/chat/completions") ||
           gw_path_is(path, path_len, "/v1/completions");
}

/* Set stream_options.include_usage to true, keeping the client's other
 * stream options. Returns 0, or -1 when stream_options is not an object or
 * memory runs out. */
static int gw_request_usage(json_t *root)
{
    json_t *options = json_object_get(root, "stream_options");

    if (options == NULL || json_is_null(options)) {
        options = json_object();
        if (options == NULL || json_object_set_new(root, "stream_options", options) != 0)
            return -1;
    }
    if (!json_is_object(options))
        return -1;
    return json_object_set_new(options, "include_usage", json_true());
}

/* Whether the body can hold a "stream" member at all. Without the bytes
 * "stream" and without a \u escape (the only escape that can spell a
 * letter), it cannot, and parsing the JSON is skipped: most non-streamed
 * requests then cost one scan. */
static int gw_may_stream(const char *body, size_t len)
{
    if (memmem(body, len, "stream", 6) != NULL)
        return 1;
    for (const char *p = memchr(body, '\\', len); p != NULL && p + 1 < body + len;
         p = memchr(p + 1, '\\', (size_t)(body + len - p - 1))) {
        if (p[1] == 'u')
            return 1;
    }
    return 0;
}

int gw_completion_prepare(const char *body, size_t len, gw_completion_t *out)
{
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (len == 0 || !gw_may_stream(body, len))
        return 0;

    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root))
        goto out;

    out->stream = json_is_true(json_object_get(root, "stream"));
    if (!out->stream)
        goto out;

    const json_t *options = json_object_get(root, "stream_options");
    if (json_is_true(json_object_get(options, "include_usage")))
        goto out;

    /* The client did not ask for usage: ask for it anyway for accounting, and
     * remember to hide the extra chunk from the client. A stream_options of
     * the wrong type is the upstream's to reject, so it is forwarded as is. */
    if (gw_request_usage(root) != 0)
        goto out;

    out->body = json_dumps(root, JSON_COMPACT);
    if (out->body == NULL) {
        rc = -1;
        goto out;
    }
    out->body_len = strlen(out->body);
    out->strip_usage = 1;

out:
    json_decref(root);
    return rc;
}
