/* Bearer token extraction from an Authorization header (RFC 6750). */
#include "http/parser.h"

#include <strings.h>

static int http_is_space(char c)
{
    return c == ' ' || c == '\t';
}

int http_bearer_token(const http_header_t *headers, size_t num_headers, const char **token,
                    size_t *len)
{
    size_t value_len = 0;
    const char *value = http_header_find(headers, num_headers, "Authorization", &value_len);

    if (value == NULL || value_len < 7 || strncasecmp(value, "Bearer", 6) != 0 ||
        !http_is_space(value[6]))
        return 0;

    size_t start = 7;
    while (start < value_len && http_is_space(value[start]))
        start++;
    size_t end = value_len;
    while (end > start && http_is_space(value[end - 1]))
        end--;
    if (end == start)
        return 0;

    /* A token is one word: "Bearer a b" is malformed, not the token "a b". */
    for (size_t i = start; i < end; i++) {
        if (http_is_space(value[i]))
            return 0;
    }

    *token = value + start;
    *len = end - start;
    return 1;
}

