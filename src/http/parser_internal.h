/* Helpers shared by the HTTP parser and server files; not part of the
 * public interface. */
#ifndef NIMDECK_HTTP_PARSER_INTERNAL_H
#define NIMDECK_HTTP_PARSER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parser.h"

/* Message framing derived from a header block. */
typedef struct {
    int64_t content_length; /* -1 when absent */
    int chunked;
    int keep_alive;
    int expect_continue;
} http_framing_t;

/* Derive framing from headers. Returns 0, HTTP_PARSE_BAD (bad or differing
 * Content-Length, both Content-Length and Transfer-Encoding) or
 * HTTP_PARSE_NOT_IMPLEMENTED (a transfer coding other than one "chunked"). */
int http_framing_from_headers(const http_header_t *headers, size_t n, int minor_version,
                              http_framing_t *out);

/* Case-insensitive comparison of s[0..len) with the NUL-terminated lit. */
bool http_token_eq(const char *s, size_t len, const char *lit);

#endif
