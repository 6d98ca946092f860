/* Request-side rewriting for the gateway: bearer tokens, the /serve/<path>
 * prefix and the upstream request head. */
#include "gateway/gw_request.h"

#include <string.h>
#include <strings.h>

#define GW_SERVE_PREFIX "/serve/"

static int gw_is_space(char c)
{
    return c == ' ' || c == '\t';
}

static int gw_is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

gw_target_kind_t gw_split_target(const char *target, size_t target_len, gw_target_t *out)
{
    const size_t prefix_len = sizeof(GW_SERVE_PREFIX) - 1;

    memset(out, 0, sizeof(*out));
    if (target_len < prefix_len || memcmp(target, GW_SERVE_PREFIX, prefix_len) != 0)
        return GW_TARGET_OTHER;

    const char *name = target + prefix_len;
    size_t name_len = 0;
    while (prefix_len + name_len < target_len && name[name_len] != '/' &&
           name[name_len] != '?') {
        if (!gw_is_name_char(name[name_len]))
            return GW_TARGET_BAD;
        name_len++;
    }
    if (name_len == 0 || name_len > GW_MAX_PATH_NAME)
        return GW_TARGET_BAD;
    memcpy(out->name, name, name_len);
    out->name[name_len] = '\0';

    /* The rest keeps its leading '/'; "/serve/x" and "/serve/x?q" forward
     * to "/" and "/?q", so the slash is written by the caller's builder. */
    out->forward = name + name_len;
    out->forward_len = target_len - prefix_len - name_len;
    const char *query = memchr(out->forward, '?', out->forward_len);
    out->forward_path = out->forward;
    out->forward_path_len = query ? (size_t)(query - out->forward) : out->forward_len;
    return GW_TARGET_SERVE;
}

static int gw_token_listed(const char *list, size_t list_len, const char *name,
                           size_t name_len)
{
    size_t pos = 0;

    while (pos < list_len) {
        while (pos < list_len && (gw_is_space(list[pos]) || list[pos] == ','))
            pos++;
        size_t end = pos;
        while (end < list_len && list[end] != ',')
            end++;
        size_t token_end = end;
        while (token_end > pos && gw_is_space(list[token_end - 1]))
            token_end--;
        if (token_end - pos == name_len && strncasecmp(list + pos, name, name_len) == 0)
            return 1;
        pos = end;
    }
    return 0;
}

static int gw_name_is(const char *name, size_t name_len, const char *expected)
{
    size_t expected_len = strlen(expected);

    return name_len == expected_len && strncasecmp(name, expected, name_len) == 0;
}

int gw_is_hop_header(const char *name, size_t name_len, const http_header_t *headers,
                     size_t num_headers)
{
    static const char *const hop[] = {"Connection", "Keep-Alive", "TE", "Trailer",
                                      "Transfer-Encoding", "Upgrade"};

    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        if (gw_name_is(name, name_len, hop[i]))
            return 1;
    }
    if (name_len >= 6 && strncasecmp(name, "Proxy-", 6) == 0)
        return 1;

    /* RFC 9110 section 7.6.1: Connection lists more hop-by-hop headers. */
    for (size_t i = 0; i < num_headers; i++) {
        if (gw_name_is(headers[i].name, headers[i].name_len, "Connection") &&
            gw_token_listed(headers[i].value, headers[i].value_len, name, name_len))
            return 1;
    }
    return 0;
}

static int gw_forward_request_header(const http_request_t *req, const http_header_t *h,
                                     int identity_only)
{
    if (gw_is_hop_header(h->name, h->name_len, req->headers, req->num_headers))
        return 0;
    if (identity_only && gw_name_is(h->name, h->name_len, "Accept-Encoding"))
        return 0;

    /* The model server must never see the user's token; Host, length and
     * Expect are rewritten for the new connection and body. */
    return !gw_name_is(h->name, h->name_len, "Authorization") &&
           !gw_name_is(h->name, h->name_len, "Host") &&
           !gw_name_is(h->name, h->name_len, "Content-Length") &&
           !gw_name_is(h->name, h->name_len, "Expect");
}

int gw_is_token_param(const char *param, size_t len)
{
    static const char *const names[] = {"api_key", "access_token", "token", "key"};
    char name[16];
    size_t name_len = 0;

    /* The name is compared percent-decoded, as the model server would read
     * it, so "api%5Fkey" is caught too. */
    for (size_t i = 0; i < len && param[i] != '='; i++) {
        char c = param[i];
        if (c == '%' && i + 2 < len && http_hex_digit(param[i + 1]) >= 0 &&
            http_hex_digit(param[i + 2]) >= 0) {
            c = (char)(http_hex_digit(param[i + 1]) * 16 + http_hex_digit(param[i + 2]));
            i += 2;
        }
        if (name_len == sizeof(name))
            return 0;
        name[name_len++] = c;
    }

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (gw_name_is(name, name_len, names[i]))
            return 1;
    }
    return 0;
}

/* Append the forward target without query parameters that may carry a
 * token: they are not credentials here, and a model server that logs
 * URLs would write them to the console log. */
static int gw_append_target(buf_t *out, const char *forward, size_t forward_len)
{
    const char *query = memchr(forward, '?', forward_len);
    size_t path_len = query ? (size_t)(query - forward) : forward_len;
    int rc = 0;
    int kept = 0;

    if (path_len == 0 || forward[0] != '/')
        rc |= buf_append(out, "/", 1);
    rc |= buf_append(out, forward, path_len);
    if (query == NULL)
        return rc;

    const char *pos = query + 1;
    const char *end = forward + forward_len;
    while (pos <= end) {
        const char *amp = memchr(pos, '&', (size_t)(end - pos));
        const char *param_end = amp ? amp : end;
        size_t param_len = (size_t)(param_end - pos);

        if (param_len > 0 && !gw_is_token_param(pos, param_len)) {
            rc |= buf_append(out, kept ? "&" : "?", 1);
            rc |= buf_append(out, pos, param_len);
            kept++;
        }
        pos = param_end + 1;
    }
    return rc;
}

int gw_build_upstream_request(const http_request_t *req, const char *forward,
                              size_t forward_len, const char *host_port, const char *body,
                              size_t body_len, int identity_only, buf_t *out)
{
    int rc = 0;
    int bodiless = body_len == 0 && (gw_name_is(req->method, req->method_len, "GET") ||
                                     gw_name_is(req->method, req->method_len, "HEAD"));

    rc |= buf_append(out, req->method, req->method_len);
    rc |= buf_append(out, " ", 1);
    rc |= gw_append_target(out, forward, forward_len);
    rc |= buf_append_str(out, " HTTP/1.1\r\n");

    for (size_t i = 0; i < req->num_headers; i++) {
        const http_header_t *h = &req->headers[i];
        if (!gw_forward_request_header(req, h, identity_only))
            continue;
        rc |= buf_append(out, h->name, h->name_len);
        rc |= buf_append(out, ": ", 2);
        rc |= buf_append(out, h->value, h->value_len);
        rc |= buf_append(out, "\r\n", 2);
    }

    rc |= buf_append(out, "Host: ", 6);
    rc |= buf_append_str(out, host_port);
    rc |= buf_append(out, "\r\n", 2);
    if (!bodiless)
        rc |= gw_append_number_header(out, "Content-Length", body_len);
    rc |= buf_append(out, "\r\n", 2);
    if (body_len > 0)
        rc |= buf_append(out, body, body_len);
    return rc != 0 ? -1 : 0;
}

int gw_append_number_header(buf_t *out, const char *name, uint64_t value)
{
    char digits[24];
    size_t n = sizeof(digits);
    int rc = 0;

    do {
        digits[--n] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    rc |= buf_append_str(out, name);
    rc |= buf_append(out, ": ", 2);
    rc |= buf_append(out, digits + n, sizeof(digits) - n);
    rc |= buf_append(out, "\r\n", 2);
    return rc != 0 ? -1 : 0;
}

int gw_response_head(const http_response_t *resp, int keep_length, gw_response_head_t *head)
{
    memset(head, 0, sizeof(*head));
    return gw_response_head_reuse(resp, keep_length, head);
}

int gw_response_head_reuse(const http_response_t *resp, int keep_length,
                           gw_response_head_t *head)
{
    size_t type_len = 0;
    int rc = 0;

    buf_reset(&head->extra);
    head->content_type[0] = '\0';
    head->event_stream = 0;
    const char *type = http_header_find(resp->headers, resp->num_headers, "Content-Type",
                                        &type_len);
    if (type != NULL) {
        size_t n = type_len < sizeof(head->content_type) - 1 ? type_len
                                                             : sizeof(head->content_type) - 1;
        memcpy(head->content_type, type, n);
        head->content_type[n] = '\0';
    }
    head->event_stream = strncasecmp(head->content_type, "text/event-stream", 17) == 0;

    for (size_t i = 0; i < resp->num_headers; i++) {
        const http_header_t *h = &resp->headers[i];

        if (gw_is_hop_header(h->name, h->name_len, resp->headers, resp->num_headers))
            continue;
        if (gw_name_is(h->name, h->name_len, "Content-Type"))
            continue;
        if (gw_name_is(h->name, h->name_len, "Content-Length") && !keep_length)
            continue;
        /* Event streams get the gateway's own values, added below. */
        if (head->event_stream && (gw_name_is(h->name, h->name_len, "X-Accel-Buffering") ||
                                   gw_name_is(h->name, h->name_len, "Cache-Control")))
            continue;
        rc |= buf_append(&head->extra, h->name, h->name_len);
        rc |= buf_append(&head->extra, ": ", 2);
        rc |= buf_append(&head->extra, h->value, h->value_len);
        rc |= buf_append(&head->extra, "\r\n", 2);
    }

    if (head->event_stream)
        rc |= buf_append_str(&head->extra, "X-Accel-Buffering: no\r\nCache-Control: no-cache\r\n");
    return rc != 0 ? -1 : 0;
}
