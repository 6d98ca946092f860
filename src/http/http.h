/* HTTP/1.1 server on libuv: parses requests, hands each complete request to a
 * handler, and writes whole or streamed responses with backpressure. */
#ifndef NIMDECK_HTTP_HTTP_H
#define NIMDECK_HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/parser.h"

typedef struct http_server http_server_t;
typedef struct http_exchange http_exchange_t;

/* Called once per complete request (head and whole body), on the loop thread.
 * The handler must eventually finish the exchange with http_respond*() or
 * http_stream_end(); it may do so later (long poll, proxying) as long as it
 * keeps the exchange pointer only until http_exchange_on_close() fires. */
typedef void (*http_handler_fn)(http_exchange_t *ex, void *user);

/* Called when a streamed response's queued bytes drop below the low-water
 * mark after http_stream_write() returned 1 (the writer should resume). */
typedef void (*http_drain_fn)(http_exchange_t *ex, void *user);

/* Called once when the exchange ends for any reason: response finished, or
 * the client disconnected first (aborted = 1). After it returns the exchange
 * pointer is invalid. */
typedef void (*http_close_fn)(http_exchange_t *ex, int aborted, void *user);

typedef struct {
    size_t max_header_bytes;    /* whole request head; default 16 KiB, over → 431 */
    size_t max_headers;         /* default 64, over → 431 */
    size_t max_body_bytes;      /* default 16 MiB, over → 413 */
    uint64_t header_timeout_ms; /* head must arrive within; default 10000 */
    uint64_t idle_timeout_ms;   /* keep-alive idle; default 60000 */
    size_t max_connections;     /* default 10000; further accepts are closed */
    size_t write_high_water;    /* queued response bytes at which writes report 1; default 256 KiB */
} http_limits_t;

/* Fill limits with the defaults above. */
void http_limits_default(http_limits_t *limits);

/* Create a server on loop, listening on host:port (port 0 picks a free one).
 * Returns NULL and writes a message into err on failure (e.g. address in use). */
http_server_t *http_server_start(uv_loop_t *loop, const char *host, int port,
                                 const http_limits_t *limits, http_handler_fn handler,
                                 void *user, char *err, size_t err_size);

/* The port actually bound (useful with port 0). */
int http_server_port(const http_server_t *server);

/* Stop accepting, close every connection (open exchanges get their close
 * callback with aborted = 1) and free the server once its handles close.
 * Run the loop afterwards until it has no more work. */
void http_server_stop(http_server_t *server);

/* The parsed request; valid until the close callback returns.
 * Body bytes are in req->body (NUL-terminated, body_len bytes). */
const http_request_t *http_exchange_request(const http_exchange_t *ex);

/* Peer address as text ("127.0.0.1"), for logs. */
const char *http_exchange_peer(const http_exchange_t *ex);

void http_exchange_on_close(http_exchange_t *ex, http_close_fn fn, void *user);
void http_exchange_on_drain(http_exchange_t *ex, http_drain_fn fn, void *user);

/* Whole responses. extra_headers is NULL or "Name: value\r\n..." lines.
 * Content-Length and keep-alive handling are added here. */
void http_respond(http_exchange_t *ex, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len);

/* Send `{"error": {"code": code, "message": message}}` (plus "field" when
 * field is non-NULL) with the given status. */
void http_respond_error(http_exchange_t *ex, int status, const char *code,
                        const char *message, const char *field);

/* Streamed responses: head first (chunked transfer encoding is used unless
 * extra_headers carries a Content-Length), then writes, then end.
 * http_stream_write returns 0 when queued below the high-water mark, 1 when
 * the caller should pause until the drain callback, -1 if the client is gone. */
int http_stream_start(http_exchange_t *ex, int status, const char *content_type,
                      const char *extra_headers);
int http_stream_write(http_exchange_t *ex, const void *data, size_t len);
void http_stream_end(http_exchange_t *ex);

/* Standard reason phrase for a status code ("Not Found"). */
const char *http_status_text(int status);

#endif
