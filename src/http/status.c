/* Reason phrases and JSON error responses. */
#include "http/http.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_internal.h"

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: break;
    }
    if (status >= 100 && status < 200)
        return "Informational";
    if (status >= 200 && status < 300)
        return "Success";
    if (status >= 300 && status < 400)
        return "Redirection";
    if (status >= 400 && status < 500)
        return "Client Error";
    return "Server Error";
}

char *http_error_body(const char *code, const char *message, const char *field)
{
    json_t *error = json_object();
    json_t *root = json_object();
    char *out = NULL;

    if (error == NULL || root == NULL)
        goto done;
    if (json_object_set_new(error, "code", json_string(code ? code : "error")) != 0 ||
        json_object_set_new(error, "message", json_string(message ? message : "")) != 0)
        goto done;
    if (field != NULL && json_object_set_new(error, "field", json_string(field)) != 0)
        goto done;
    if (json_object_set(root, "error", error) != 0)
        goto done;
    out = json_dumps(root, JSON_COMPACT);

done:
    json_decref(error);
    json_decref(root);
    return out;
}

void http_conn_send_error(http_conn_t *conn, int status, const char *code,
                          const char *message)
{
    char head[256];
    char *body = http_error_body(code, message, NULL);
    size_t body_len = body != NULL ? strlen(body) : 0;

    int head_len = snprintf(head, sizeof head,
                            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                            status, http_status_text(status), body_len);
    uv_buf_t segs[2] = {uv_buf_init(head, (unsigned)head_len),
                        uv_buf_init(body, (unsigned)body_len)};

    http_conn_write(conn, segs, 2);
    free(body);
    http_conn_linger(conn);
}
