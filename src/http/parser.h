/* Incremental HTTP/1.1 parsing of request heads, response heads and chunked
 * bodies. The parsers allocate nothing, and results point into the caller's
 * buffer. */
#ifndef NIMDECK_HTTP_PARSER_H
#define NIMDECK_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define HTTP_MAX_HEADERS 64

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} http_header_t;

typedef struct {
    const char *method;
    size_t method_len;
    const char *target;       /* path and query as sent */
    size_t target_len;
    const char *path;         /* target up to '?' */
    size_t path_len;
    const char *query;        /* after '?', or NULL */
    size_t query_len;
    int minor_version;        /* 0 or 1 */
    http_header_t headers[HTTP_MAX_HEADERS];
    size_t num_headers;
    int64_t content_length;   /* -1 when absent */
    int chunked;              /* Transfer-Encoding: chunked */
    int keep_alive;           /* after Connection header and version rules */
    int expect_continue;
    const char *body;         /* set by the server once the body is complete */
    size_t body_len;
} http_request_t;

typedef struct {
    int minor_version;
    int status;
    const char *reason;
    size_t reason_len;
    http_header_t headers[HTTP_MAX_HEADERS];
    size_t num_headers;
    int64_t content_length;   /* -1 when absent */
    int chunked;
    int keep_alive;
} http_response_t;

/* Return values of the head parsers. */
#define HTTP_PARSE_INCOMPLETE 0   /* need more bytes */
#define HTTP_PARSE_BAD (-400)     /* malformed: respond with 400 and close */
#define HTTP_PARSE_TOO_LARGE (-431) /* head or header count over the limit */
#define HTTP_PARSE_URI_TOO_LONG (-414) /* the request line alone is over the head limit */
#define HTTP_PARSE_NOT_IMPLEMENTED (-501) /* e.g. a transfer coding other than chunked */

/* Parse a request head from data[0..len). Returns the head's length in bytes
 * (> 0) when complete, or one of the codes above. Rejects (HTTP_PARSE_BAD)
 * both Content-Length and Transfer-Encoding, differing Content-Length values,
 * obs-folded headers, and bare LF line ends inside the head. A request line
 * that with its CRLF exceeds max_head, or that has not ended within max_head
 * bytes, gives HTTP_PARSE_URI_TOO_LONG. Any other head over max_head gives
 * HTTP_PARSE_TOO_LARGE. The Host header is not checked here (see
 * http_request_host_error). */
int http_parse_request(const char *data, size_t len, size_t max_head,
                       size_t max_headers, http_request_t *req);

/* Parse a response head, with the same contract as http_parse_request. */
int http_parse_response(const char *data, size_t len, size_t max_head,
                        http_response_t *resp);

/* Check the Host rule of RFC 9112 section 3.2: an HTTP/1.1 request needs
 * exactly one Host header, and no request may have more than one. Returns
 * NULL when req is valid, else the reason for a 400 response. */
const char *http_request_host_error(const http_request_t *req);

/* Look up a header by name, case-insensitively. Returns the value (not
 * NUL-terminated) and sets *value_len, or returns NULL when it is absent. */
const char *http_header_find(const http_header_t *headers, size_t n,
                             const char *name, size_t *value_len);

/* Count the header lines named name (case-insensitive). */
size_t http_header_count(const http_header_t *headers, size_t n, const char *name);

/* Find "Authorization: Bearer TOKEN" (scheme matched case-insensitively,
 * spaces or tabs around the token). Returns 1 with token/len pointing into
 * the header value, or 0 when the header is missing, has another scheme, or
 * does not contain exactly one token. */
int http_bearer_token(const http_header_t *headers, size_t num_headers, const char **token,
                      size_t *len);

/* Value of a hexadecimal digit (either case), or -1 for another character. */
int http_hex_digit(char c);

/* Percent-decode src[0..len) into out as a C string; with plus_is_space a
 * '+' becomes a space (query strings). Returns 0, or -1 on a bad escape, an
 * encoded NUL, or when it does not fit in size bytes. */
int http_percent_decode(const char *src, size_t len, char *out, size_t size, int plus_is_space);

/* Incremental chunked-body decoder. */
typedef struct {
    int state;
    uint64_t remaining;  /* bytes left in the current chunk */
    int done;            /* set after the last chunk and trailers */
} http_chunked_t;

/* Decode raw bytes in[0..in_len), appending the payload to out. Returns the
 * raw bytes consumed (all of them unless the body ended first), or -1 on
 * malformed input. Call again as more bytes arrive, and stop when dec->done
 * is set. */
long http_chunked_decode(http_chunked_t *dec, const char *in, size_t in_len, buf_t *out);

#endif
