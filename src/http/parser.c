/* HTTP/1.1 request and response head parsing (RFC 9112), strict by design:
 * every ambiguity that could let two parsers disagree is rejected. */
#include "http/parser.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "http/parser_internal.h"

/* tchar from RFC 9110 section 5.6.2: the bytes allowed in methods and
 * header names. */
static bool is_tchar(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar or SP/HTAB: every byte except controls and DEL. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Visible ASCII or obs-text, as allowed in a request target. */
static bool is_target_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

bool http_token_eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    return len == n && strncasecmp(s, lit, n) == 0;
}

/* Find the next line in data[*pos..len). Returns 1 with the line (CRLF
 * excluded) when complete, 0 when its end has not arrived, or
 * HTTP_PARSE_BAD for a bare LF. */
static int next_line(const char *data, size_t len, size_t *pos, const char **line,
                     size_t *line_len)
{
    const char *start = data + *pos;
    const char *lf = memchr(start, '\n', len - *pos);

    if (lf == NULL)
        return 0;
    if (lf == start || lf[-1] != '\r')
        return HTTP_PARSE_BAD;

    *line = start;
    *line_len = (size_t)(lf - start) - 1;
    *pos = (size_t)(lf - data) + 1;
    return 1;
}

/* Accept "HTTP/1.0" and "HTTP/1.1" only. */
static int parse_version(const char *s, size_t len, int *minor)
{
    if (len != 8 || memcmp(s, "HTTP/1.", 7) != 0)
        return -1;
    if (s[7] != '0' && s[7] != '1')
        return -1;
    *minor = s[7] - '0';
    return 0;
}

static int parse_request_line(const char *line, size_t len, http_request_t *req)
{
    size_t i = 0;

    while (i < len && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i == len || line[i] != ' ')
        return HTTP_PARSE_BAD;
    req->method = line;
    req->method_len = i;

    size_t target_start = ++i;
    while (i < len && is_target_char((unsigned char)line[i]))
        i++;
    if (i == target_start || i == len || line[i] != ' ')
        return HTTP_PARSE_BAD;
    if (line[target_start] != '/')
        return HTTP_PARSE_BAD;
    req->target = line + target_start;
    req->target_len = i - target_start;

    if (parse_version(line + i + 1, len - i - 1, &req->minor_version) != 0)
        return HTTP_PARSE_BAD;

    const char *q = memchr(req->target, '?', req->target_len);
    req->path = req->target;
    req->path_len = q ? (size_t)(q - req->target) : req->target_len;
    req->query = q ? q + 1 : NULL;
    req->query_len = q ? req->target_len - req->path_len - 1 : 0;
    return 0;
}

/* Split "Name: value" with the value's surrounding whitespace trimmed.
 * Whitespace before the colon and obs-fold lines are rejected. */
static int parse_header_line(const char *line, size_t len, http_header_t *h)
{
    size_t i = 0;

    while (i < len && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i == len || line[i] != ':')
        return HTTP_PARSE_BAD;
    h->name = line;
    h->name_len = i;

    size_t start = i + 1;
    size_t end = len;
    for (size_t k = start; k < len; k++) {
        if (!is_value_char((unsigned char)line[k]))
            return HTTP_PARSE_BAD;
    }
    while (start < end && (line[start] == ' ' || line[start] == '\t'))
        start++;
    while (end > start && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    h->value = line + start;
    h->value_len = end - start;
    return 0;
}

/* Read header lines from *pos up to and including the empty line. Returns
 * 1 when the head ended, or 0 / a parse error code. */
static int parse_header_block(const char *data, size_t len, size_t *pos, size_t max_headers,
                              http_header_t *headers, size_t *num_headers)
{
    *num_headers = 0;

    for (;;) {
        const char *line;
        size_t line_len;
        int rc = next_line(data, len, pos, &line, &line_len);

        if (rc <= 0)
            return rc;
        if (line_len == 0)
            return 1;
        if (line[0] == ' ' || line[0] == '\t')
            return HTTP_PARSE_BAD;
        if (*num_headers >= max_headers)
            return HTTP_PARSE_TOO_LARGE;

        rc = parse_header_line(line, line_len, &headers[*num_headers]);
        if (rc != 0)
            return rc;
        (*num_headers)++;
    }
}

/* Content-Length: digits only, at most INT64_MAX. */
static int parse_content_length(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int digit = s[i] - '0';
        if (v > (INT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

/* Whether a comma-separated token list (a Connection value) contains token. */
static bool list_has_token(const char *s, size_t len, const char *token)
{
    size_t i = 0;

    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t start = i;
        while (i < len && s[i] != ',' && s[i] != ' ' && s[i] != '\t')
            i++;
        if (i > start && http_token_eq(s + start, i - start, token))
            return true;
        while (i < len && s[i] != ',')
            i++;
    }
    return false;
}

int http_framing_from_headers(const http_header_t *headers, size_t n, int minor_version,
                              http_framing_t *out)
{
    bool have_cl = false;
    bool have_te = false;
    bool conn_close = false;
    bool conn_keep_alive = false;

    out->content_length = -1;
    out->chunked = 0;
    out->expect_continue = 0;

    for (size_t i = 0; i < n; i++) {
        const http_header_t *h = &headers[i];

        if (http_token_eq(h->name, h->name_len, "content-length")) {
            int64_t v;
            if (parse_content_length(h->value, h->value_len, &v) != 0)
                return HTTP_PARSE_BAD;
            if (have_cl && v != out->content_length)
                return HTTP_PARSE_BAD;
            have_cl = true;
            out->content_length = v;
        } else if (http_token_eq(h->name, h->name_len, "transfer-encoding")) {
            /* A second Transfer-Encoding line would apply chunked twice or
             * add a coding: both are codings this parser does not decode. */
            if (have_te || !http_token_eq(h->value, h->value_len, "chunked"))
                return HTTP_PARSE_NOT_IMPLEMENTED;
            have_te = true;
        } else if (http_token_eq(h->name, h->name_len, "connection")) {
            conn_close |= list_has_token(h->value, h->value_len, "close");
            conn_keep_alive |= list_has_token(h->value, h->value_len, "keep-alive");
        } else if (http_token_eq(h->name, h->name_len, "expect")) {
            out->expect_continue = http_token_eq(h->value, h->value_len, "100-continue");
        }
    }

    if (have_cl && have_te)
        return HTTP_PARSE_BAD;
    out->chunked = have_te;
    if (conn_close)
        out->keep_alive = 0;
    else
        out->keep_alive = minor_version >= 1 || conn_keep_alive;
    return 0;
}

/* Skip empty lines before the start line, which RFC 9112 section 2.2 lets a
 * server ignore (some clients send a CRLF after a POST body). */
static size_t skip_leading_crlf(const char *data, size_t len)
{
    size_t pos = 0;

    while (pos + 1 < len && data[pos] == '\r' && data[pos + 1] == '\n')
        pos += 2;
    return pos;
}

/* Map an incomplete or oversized head onto the result codes. */
static int head_result(int rc, size_t pos, size_t len, size_t max_head)
{
    if (rc < 0)
        return rc;
    if (rc == 0)
        return len >= max_head ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_INCOMPLETE;
    if (pos > max_head)
        return HTTP_PARSE_TOO_LARGE;
    return (int)pos;
}

/* The request line starting at data[start..len) decides between 414 and
 * 431: a client that sent an over-long target needs a shorter URI, not
 * fewer headers. Returns the code for a line over max_head, 0 when the line
 * is within it (or has not ended yet and may still fit). */
static int request_line_too_long(int rc, size_t start, size_t pos, size_t len, size_t max_head)
{
    if (rc == 0 && len - start >= max_head)
        return HTTP_PARSE_URI_TOO_LONG;
    if (rc > 0 && pos - start > max_head)
        return HTTP_PARSE_URI_TOO_LONG;
    return 0;
}

int http_parse_request(const char *data, size_t len, size_t max_head, size_t max_headers,
                       http_request_t *req)
{
    size_t start = skip_leading_crlf(data, len);
    size_t pos = start;
    const char *line;
    size_t line_len;
    http_framing_t framing;

    if (max_headers > HTTP_MAX_HEADERS)
        max_headers = HTTP_MAX_HEADERS;
    if (max_head > (size_t)INT32_MAX)
        max_head = (size_t)INT32_MAX;

    int rc = next_line(data, len, &pos, &line, &line_len);
    int too_long = request_line_too_long(rc, start, pos, len, max_head);
    if (too_long != 0)
        return too_long;
    if (rc <= 0)
        return head_result(rc, pos, len, max_head);
    if (pos > max_head)
        return HTTP_PARSE_TOO_LARGE;
    rc = parse_request_line(line, line_len, req);
    if (rc != 0)
        return rc;

    rc = parse_header_block(data, len, &pos, max_headers, req->headers, &req->num_headers);
    if (rc != 1)
        return head_result(rc, pos, len, max_head);
    if (pos > max_head)
        return HTTP_PARSE_TOO_LARGE;

    rc = http_framing_from_headers(req->headers, req->num_headers, req->minor_version, &framing);
    if (rc != 0)
        return rc;
    req->content_length = framing.content_length;
    req->chunked = framing.chunked;
    req->keep_alive = framing.keep_alive;
    req->expect_continue = framing.expect_continue && req->minor_version >= 1;
    req->body = NULL;
    req->body_len = 0;
    return (int)pos;
}

/* "HTTP/1.x SSS reason"; the reason may be empty and the space before it
 * may be missing. */
static int parse_status_line(const char *line, size_t len, http_response_t *resp)
{
    if (len < 12 || parse_version(line, 8, &resp->minor_version) != 0 || line[8] != ' ')
        return HTTP_PARSE_BAD;

    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return HTTP_PARSE_BAD;
        status = status * 10 + (line[i] - '0');
    }
    if (status < 100 || status > 599)
        return HTTP_PARSE_BAD;
    if (len > 12 && line[12] != ' ')
        return HTTP_PARSE_BAD;

    for (size_t i = 12; i < len; i++) {
        if (!is_value_char((unsigned char)line[i]))
            return HTTP_PARSE_BAD;
    }
    resp->status = status;
    resp->reason = len > 12 ? line + 13 : line + 12;
    resp->reason_len = len > 12 ? len - 13 : 0;
    return 0;
}

int http_parse_response(const char *data, size_t len, size_t max_head, http_response_t *resp)
{
    size_t pos = 0;
    const char *line;
    size_t line_len;
    http_framing_t framing;

    if (max_head > (size_t)INT32_MAX)
        max_head = (size_t)INT32_MAX;

    int rc = next_line(data, len, &pos, &line, &line_len);
    if (rc <= 0)
        return head_result(rc, pos, len, max_head);
    if (pos > max_head)
        return HTTP_PARSE_TOO_LARGE;
    rc = parse_status_line(line, line_len, resp);
    if (rc != 0)
        return rc;

    rc = parse_header_block(data, len, &pos, HTTP_MAX_HEADERS, resp->headers,
                            &resp->num_headers);
    if (rc != 1)
        return head_result(rc, pos, len, max_head);
    if (pos > max_head)
        return HTTP_PARSE_TOO_LARGE;

    rc = http_framing_from_headers(resp->headers, resp->num_headers, resp->minor_version,
                                   &framing);
    if (rc != 0)
        return rc;
    resp->content_length = framing.content_length;
    resp->chunked = framing.chunked;
    resp->keep_alive = framing.keep_alive;
    return (int)pos;
}

size_t http_header_count(const http_header_t *headers, size_t n, const char *name)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++) {
        if (http_token_eq(headers[i].name, headers[i].name_len, name))
            count++;
    }
    return count;
}

const char *http_request_host_error(const http_request_t *req)
{
    size_t hosts = http_header_count(req->headers, req->num_headers, "Host");
    if (hosts > 1)
        return "the request carries more than one Host header; send exactly one";
    if (hosts == 0 && req->minor_version >= 1)
        return "missing Host header: an HTTP/1.1 request must carry one (RFC 9112 section 3.2)";
    return NULL;
}

const char *http_header_find(const http_header_t *headers, size_t n, const char *name,
                             size_t *value_len)
{
    for (size_t i = 0; i < n; i++) {
        if (http_token_eq(headers[i].name, headers[i].name_len, name)) {
            if (value_len != NULL)
                *value_len = headers[i].value_len;
            return headers[i].value;
        }
    }
    return NULL;
}
