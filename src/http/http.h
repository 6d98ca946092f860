/* HTTP/1.1 server on libuv: parses requests, hands each complete request to a
 * handler, and writes whole or streamed responses with backpressure.
 *
 * Exchange lifetime. Every call below runs on the loop thread. An exchange
 * pointer is valid from the handler call until its close callback returns,
 * and the close callback fires exactly once:
 *  - aborted = 0 after the last byte of the response has been written to
 *    the socket, always in a later loop iteration than the http_respond() or
 *    http_stream_end() call that finished it (never inside that call);
 *  - aborted = 1 when the client disconnects (a read EOF or error, including
 *    a half-close with shutdown(SHUT_WR)), a write fails, or
 *    http_server_stop() runs. A disconnect is noticed at once while the
 *    exchange is open, unless the client has pipelined more bytes beyond
 *    the request than its read buffer has room for (at least 512), which
 *    pauses reading until the exchange ends.
 * Inside the close callback the response calls are harmless no-ops
 * (http_stream_write() returns -1) and http_server_stop() is safe. After it
 * returns the memory is freed, so a handler that finishes later (a timer,
 * an upstream callback) must register a close callback and drop its pointer
 * there. */
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
 * http_stream_end(). It may do so later (long poll, proxying) as long as it
 * keeps the exchange pointer only until http_exchange_on_close() fires. */
typedef void (*http_handler_fn)(http_exchange_t *ex, void *user);

/* Called when a streamed response's queued bytes drop below the low-water
 * mark after http_stream_write() returned 1, so that the writer can resume. */
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
    uint64_t write_stall_timeout_ms; /* default 60000; see below */
} http_limits_t;

/* A client that stops reading must not hold its exchange open forever. When
 * a connection's queued response bytes stay above write_high_water, or a
 * writer paused by http_stream_write still waits for its drain callback,
 * with no write progress (no byte taken by the kernel) for
 * write_stall_timeout_ms, the connection is closed and an open exchange
 * ends with aborted = 1. */

/* Fill limits with the defaults above. */
void http_limits_default(http_limits_t *limits);

/* Create a server on loop, listening on host:port (port 0 picks a free one).
 * host is an IPv4 or IPv6 address literal. limits may be NULL, and a zero
 * field takes its default. On failure (e.g. address in use), returns NULL
 * with a message in err, and the loop must still run once to release the
 * listening handle. A fresh connection must send its first head within
 * header_timeout_ms. Between keep-alive requests idle_timeout_ms applies,
 * and while a body arrives it is the longest pause allowed between reads. */
http_server_t *http_server_start(uv_loop_t *loop, const char *host, int port,
                                 const http_limits_t *limits, http_handler_fn handler,
                                 void *user, char *err, size_t err_size);

/* Return the port actually bound, which is useful with port 0. */
int http_server_port(const http_server_t *server);

/* Stop accepting, close every connection (open exchanges get their close
 * callback with aborted = 1, synchronously inside this call) and free the
 * server once its handles close. Run the loop afterwards until it has no
 * more work. The server pointer is invalid after this call. */
void http_server_stop(http_server_t *server);

/* Return the parsed request, valid until the close callback returns. Header and
 * target pointers are not NUL-terminated (use the lengths). Body bytes are
 * in req->body (NUL-terminated, body_len bytes, "" when there is none). */
const http_request_t *http_exchange_request(const http_exchange_t *ex);

/* Return the peer address as text ("127.0.0.1"), for logs. */
const char *http_exchange_peer(const http_exchange_t *ex);

void http_exchange_on_close(http_exchange_t *ex, http_close_fn fn, void *user);
void http_exchange_on_drain(http_exchange_t *ex, http_drain_fn fn, void *user);

/* Send a whole response. extra_headers is NULL or "Name: value\r\n..."
 * lines, copied as given, and must not contain Content-Length or
 * Transfer-Encoding. A "Connection: close" line among them closes the
 * connection afterwards. This function adds Content-Length and keep-alive
 * handling. The body is copied, so the caller may free it on return. A HEAD
 * request gets the head alone, and 1xx, 204 and 304 responses get neither
 * body nor Content-Length. Calls after the response started are ignored. */
void http_respond(http_exchange_t *ex, int status, const char *content_type,
                  const char *extra_headers, const void *body, size_t len);

/* Send `{"error": {"code": code, "message": message}}` (plus "field" when
 * field is non-NULL) with the given status. */
void http_respond_error(http_exchange_t *ex, int status, const char *code,
                        const char *message, const char *field);

/* Streamed responses: head first (chunked transfer encoding is used unless
 * extra_headers carries a Content-Length), then writes, then end.
 * http_stream_start returns 0, or -1 when the response already started or
 * the client is gone. http_stream_write copies data and returns 0 when the
 * connection's queued bytes are at most write_high_water, or 1 when they
 * exceed it. The caller should then pause until the drain callback, which
 * fires once they fall to half of it. It returns -1 if the client is gone
 * or the stream ended.
 * Zero-length writes send nothing. http_stream_end without a start sends an
 * empty 200 response. */
int http_stream_start(http_exchange_t *ex, int status, const char *content_type,
                      const char *extra_headers);
/* http_stream_start followed by http_stream_write of data, in one write to
 * the socket. Returns what http_stream_write would. */
int http_stream_start_with(http_exchange_t *ex, int status, const char *content_type,
                           const char *extra_headers, const void *data, size_t len);
int http_stream_write(http_exchange_t *ex, const void *data, size_t len);
void http_stream_end(http_exchange_t *ex);

/* Close the client's connection without finishing the response, so that a
 * client reading a streamed body can tell that it was cut short. The close
 * callback fires with aborted = 1. */
void http_exchange_abort(http_exchange_t *ex);

/* Return the standard reason phrase for a status code ("Not Found"). */
const char *http_status_text(int status);

#endif
