/* Responses the gateway makes itself, in the OpenAI error shape that model
 * clients (the openai SDKs) know how to read. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_internal.h"

char *gw_error_body(const char *type, const char *code, const char *message)
{
    json_t *doc = json_pack("{s:{s:s, s:s, s:s}}", "error", "message", message, "type", type,
                            "code", code);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

    json_decref(doc);
    return text;
}

void gw_reply_error(http_exchange_t *ex, int status, const char *type, const char *code,
                    const char *message, const char *extra_headers)
{
    static const char fallback[] = "{\"error\":{\"message\":\"out of memory\","
                                   "\"type\":\"service_unavailable\",\"code\":\"internal\"}}";
    char *body = gw_error_body(type, code, message);

    if (body == NULL) {
        http_respond(ex, 500, "application/json", NULL, fallback, sizeof(fallback) - 1);
        return;
    }
    http_respond(ex, status, "application/json", extra_headers, body, strlen(body));
    free(body);
}
