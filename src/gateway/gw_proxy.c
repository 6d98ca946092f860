/* The request handler: admission, forwarding to the instance, streaming the
 * response back with backpressure, usage accounting and the request record.
 *
 * A gw_proxy_t lives while either side is open: the client's exchange (until
 * its close callback) or the upstream (until its end callback or an abort).
 * Callbacks of one side can run inside calls to the other (ending a stream
 * may close the exchange at once), so `depth` counts the callbacks on the
 * stack and only the outermost one releases the struct, to a free list that
 * the next request takes it from. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_admit.h"
#include "gateway/gw_internal.h"
#include "gateway/gw_request.h"
#include "gateway/gw_sse.h"
#include "gateway/gw_upstream.h"
#include "util/clock.h"
#include "util/log.h"

/* Status recorded for a request the client abandoned before any response
 * head arrived (the nginx convention). */
#define GW_STATUS_CLIENT_CLOSED 499
/* Repeated refusals for a stale state are logged at most this often. */
#define GW_STALE_LOG_EVERY_MS 30000
/* Failed upstream requests are logged at most this often; a down instance
 * under load would otherwise log a line per request. */
#define GW_UPSTREAM_LOG_EVERY_MS 1000
/* Spare request structs kept for reuse, and the buffer capacity each may
 * keep. Memory beyond either limit goes back to the allocator. */
#define GW_PROXY_FREE_MAX 1024
#define GW_PROXY_KEEP_BUF (64u * 1024)

typedef enum {
    GW_USAGE_NONE,   /* not a completion, or a response without usage */
    GW_USAGE_SSE,    /* streamed completion: events parsed by gw_sse */
    GW_USAGE_JSON,   /* whole completion body kept (bounded) for its usage */
} gw_usage_mode_t;

struct gw_proxy {
    gateway_t *gw;
    gw_proxy_t *next_free;
    http_exchange_t *ex;       /* NULL once the exchange closed */
    gw_upstream_t *up;         /* NULL once the upstream ended or was aborted */
    int depth;
    int finished;              /* record written, in-flight count lowered if active */
    int inference;             /* a POST: counts as activity once connected */
    int active;                /* counted in flight with gw_recorder_begin */
    int cutting;               /* the gateway itself is closing the client connection */
    int paused;
    int head_pending;          /* the response head waits in gw->pending_head */

    gw_record_t record;
    int64_t start_us;
    int64_t first_byte_us;     /* -1 until the first body byte reaches the client */
    char upstream[80];
    char method[16];
    char path[128];            /* forwarded path without the query, for logs */

    int completion;
    int strip_usage;
    gw_usage_mode_t usage_mode;
    gw_sse_t sse;
    buf_t body;                /* GW_USAGE_JSON: the response body so far */
    int body_overflow;
    buf_t out;                 /* GW_USAGE_SSE: bytes of one read for the client */

    /* Whether a failed stream can still end cleanly: the client's response
     * is a chunked event stream and what it got so far ends on an event
     * boundary (tail contains its last bytes). */
    int event_stream;
    int client_chunked;
    char tail[4];
    size_t tail_len;
};

/* ---- allocation and the callback guard ---- */

static gw_proxy_t *gw_proxy_alloc(gateway_t *gw)
{
    gw_proxy_t *p = gw->free_proxies;

    if (p == NULL)
        return calloc(1, sizeof(*p));
    gw->free_proxies = p->next_free;
    gw->num_free_proxies--;

    /* Keep the buffers' memory and clear everything else. */
    buf_t body = p->body, out = p->out;
    memset(p, 0, sizeof(*p));
    p->body = body;
    p->out = out;
    buf_reset(&p->body);
    buf_reset(&p->out);
    return p;
}

static void gw_proxy_release(gw_proxy_t *p)
{
    gateway_t *gw = p->gw;

    gw_sse_free(&p->sse);
    if (gw->num_free_proxies >= GW_PROXY_FREE_MAX) {
        buf_free(&p->body);
        buf_free(&p->out);
        free(p);
        return;
    }
    if (p->body.cap > GW_PROXY_KEEP_BUF)
        buf_free(&p->body);
    if (p->out.cap > GW_PROXY_KEEP_BUF)
        buf_free(&p->out);
    p->next_free = gw->free_proxies;
    gw->free_proxies = p;
    gw->num_free_proxies++;
}

void gw_proxy_free_spares(gateway_t *gw)
{
    while (gw->free_proxies != NULL) {
        gw_proxy_t *p = gw->free_proxies;
        gw->free_proxies = p->next_free;
        buf_free(&p->body);
        buf_free(&p->out);
        free(p);
    }
    gw->num_free_proxies = 0;
}

static void gw_proxy_enter(gw_proxy_t *p)
{
    p->depth++;
}

static void gw_proxy_leave(gw_proxy_t *p)
{
    if (--p->depth > 0 || p->ex != NULL || p->up != NULL || !p->finished)
        return;
    gw_proxy_release(p);
}

static int64_t gw_elapsed_ms(int64_t since_us)
{
    return (clock_mono_us() - since_us) / 1000;
}

/* ---- the record ---- */

/* Token counts of a streamed completion, on whichever path it ends: the
 * usage object when one arrived, else the content events the client got
 * (cancelled, cut, or a server that sends no usage), marked as estimated. */
static void gw_proxy_stream_usage(gw_proxy_t *p)
{
    gw_record_t *r = &p->record;

    if (p->sse.have_usage) {
        r->prompt_tokens = p->sse.prompt_tokens;
        r->completion_tokens = p->sse.completion_tokens;
        return;
    }
    /* Not a stream, or one whose parsing stopped when memory ran out: the
     * count stopped short there, so no estimate. */
    if (p->usage_mode != GW_USAGE_SSE)
        return;
    r->prompt_tokens = -1;
    r->completion_tokens = (int64_t)p->sse.content_events;
    r->usage_estimated = 1;
}

static void gw_proxy_log(const gw_proxy_t *p, int status, int cancelled)
{
    const gw_record_t *r = &p->record;
    const char *how = cancelled ? ", cancelled by the client" : "";

    if (r->usage_estimated)
        log_debug("gateway", "instance %s: %s %s -> %d in %" PRId64 " ms%s, about %" PRId64
                  " completion tokens (no usage)", r->instance_id, p->method, p->path, status,
                  r->latency_ms, how, r->completion_tokens);
    else if (r->prompt_tokens >= 0)
        log_debug("gateway", "instance %s: %s %s -> %d in %" PRId64 " ms%s, %" PRId64
                  " prompt and %" PRId64 " completion tokens", r->instance_id, p->method,
                  p->path, status, r->latency_ms, how, r->prompt_tokens, r->completion_tokens);
    else
        log_debug("gateway", "instance %s: %s %s -> %d in %" PRId64 " ms%s", r->instance_id,
                  p->method, p->path, status, r->latency_ms, how);
}

/* Write the request's record and lower its in-flight count, once, on
 * whichever path ends it. */
static void gw_proxy_finish(gw_proxy_t *p, int status, int cancelled)
{
    if (p->finished)
        return;
    p->finished = 1;

    gw_record_t *r = &p->record;
    gw_proxy_stream_usage(p);
    r->status = status;
    r->cancelled = cancelled;
    r->latency_ms = gw_elapsed_ms(p->start_us);
    r->ttfb_ms = p->first_byte_us >= 0 ? (p->first_byte_us - p->start_us) / 1000 : -1;
    gw_recorder_end(p->gw->recorder, r, clock_wall_ms(), p->active);
    gw_proxy_log(p, status, cancelled);
}

/* Close the client's connection without finishing the response, so the
 * client sees the body was cut rather than a complete, shorter one. */
static void gw_exchange_cut(gw_proxy_t *p)
{
    if (p->ex == NULL)
        return;
    p->cutting = 1;
    http_exchange_abort(p->ex);
}

/* ---- client side ---- */

static void gw_proxy_on_close(http_exchange_t *ex, int aborted, void *user)
{
    gw_proxy_t *p = user;

    (void)ex;
    gw_proxy_enter(p);
    p->ex = NULL;

    /* The client left first: stop the instance's work at once. */
    if (p->up != NULL) {
        gw_upstream_abort(p->up);
        p->up = NULL;
    }
    if (aborted && !p->cutting)
        gw_proxy_finish(p, p->record.status ? p->record.status : GW_STATUS_CLIENT_CLOSED, 1);
    else
        gw_proxy_finish(p, p->record.status ? p->record.status : 502, 0);
    gw_proxy_leave(p);
}

static void gw_proxy_on_drain(http_exchange_t *ex, void *user)
{
    gw_proxy_t *p = user;

    (void)ex;
    if (p->paused && p->up != NULL) {
        p->paused = 0;
        gw_upstream_resume(p->up);
    }
}

/* Remember the last bytes the client got, to tell whether its stream ends
 * on an event boundary. */
static void gw_proxy_note_tail(gw_proxy_t *p, const char *data, size_t len)
{
    size_t keep = sizeof(p->tail);

    if (len >= keep) {
        memcpy(p->tail, data + len - keep, keep);
        p->tail_len = keep;
        return;
    }
    size_t old = p->tail_len + len > keep ? keep - len : p->tail_len;
    memmove(p->tail, p->tail + p->tail_len - old, old);
    memcpy(p->tail + old, data, len);
    p->tail_len = old + len;
}

/* Whether the bytes sent end with an empty line, whatever the line ends
 * (CRLF, LF or CR): then no event is half sent. */
static int gw_proxy_at_event_boundary(const gw_proxy_t *p)
{
    static const char *const endings[] = {"\n\n", "\r\r", "\r\n\r\n", "\n\r\n", "\r\n\n",
                                          "\n\r", "\r\n\r"};

    if (p->tail_len == 0)
        return 1;
    for (size_t i = 0; i < sizeof(endings) / sizeof(endings[0]); i++) {
        size_t n = strlen(endings[i]);
        if (p->tail_len >= n && memcmp(p->tail + p->tail_len - n, endings[i], n) == 0)
            return 1;
    }
    return 0;
}

/* React to a write to the client: pause the instance when the client's
 * queue is over its high-water mark, stop it when the client is gone. */
static void gw_proxy_wrote(gw_proxy_t *p, int rc)
{
    if (rc == 1 && !p->paused && p->up != NULL) {
        p->paused = 1;
        gw_upstream_pause(p->up);
    } else if (rc < 0 && p->up != NULL) {
        /* The client is gone; its close callback follows. */
        gw_upstream_abort(p->up);
        p->up = NULL;
        gw_proxy_finish(p, p->record.status, 1);
    }
}

/* Send the held response head, with data (the first body bytes) in the
 * same write. */
static void gw_proxy_flush_head(gw_proxy_t *p, const char *data, size_t len)
{
    gw_response_head_t *head = &p->gw->pending_head;

    if (!p->head_pending)
        return;
    p->head_pending = 0;
    if (p->ex == NULL)
        return;
    int rc = http_stream_start_with(p->ex, p->record.status,
                                    head->content_type[0] ? head->content_type : NULL,
                                    head->extra.data, data, len);
    gw_proxy_wrote(p, rc);
}

/* Hand body bytes to the client. */
static void gw_proxy_send(gw_proxy_t *p, const char *data, size_t len)
{
    if (len == 0 || p->ex == NULL)
        return;
    if (p->first_byte_us < 0)
        p->first_byte_us = clock_mono_us();
    if (p->event_stream)
        gw_proxy_note_tail(p, data, len);

    if (p->head_pending)
        gw_proxy_flush_head(p, data, len);
    else
        gw_proxy_wrote(p, http_stream_write(p->ex, data, len));
}

/* ---- upstream side ---- */

/* Activity is an inference request that reached the instance: model
 * listings, health checks, metrics scrapes and failed connects are
 * recorded but do not keep an instance busy or active. */
static void gw_proxy_on_connect(void *user)
{
    gw_proxy_t *p = user;

    if (!p->inference || p->finished)
        return;
    p->active = 1;
    gw_recorder_begin(p->gw->recorder, p->record.instance_id, clock_wall_ms());
}

static void gw_proxy_on_head(void *user, const http_response_t *resp)
{
    gw_proxy_t *p = user;
    gw_response_head_t *head = &p->gw->pending_head;

    p->record.status = resp->status;
    if (gw_response_head_reuse(resp, 0, head) != 0)
        buf_reset(&head->extra);

    /* The upstream's Content-Length stays valid unless events may be
     * removed from the body; without it the client gets chunked coding. */
    int rewrites_body = head->event_stream && p->completion && p->strip_usage;
    if (resp->content_length >= 0 && !rewrites_body)
        gw_append_number_header(&head->extra, "Content-Length", (uint64_t)resp->content_length);
    else
        p->client_chunked = 1;
    p->event_stream = head->event_stream;

    if (p->completion && head->event_stream) {
        p->usage_mode = GW_USAGE_SSE;
        gw_sse_init(&p->sse, p->strip_usage, 0);
    } else if (p->completion && resp->status >= 200 && resp->status < 300) {
        p->usage_mode = GW_USAGE_JSON;
    }

    /* Sent with the first body bytes of this read, or at its end. */
    p->head_pending = 1;
}

static void gw_proxy_on_read_end(void *user)
{
    gw_proxy_t *p = user;

    gw_proxy_enter(p);
    gw_proxy_flush_head(p, NULL, 0);
    gw_proxy_leave(p);
}

static void gw_proxy_keep_body(gw_proxy_t *p, const char *data, size_t len)
{
    if (p->body_overflow)
        return;
    if (p->body.len + len > GW_MAX_USAGE_BODY || buf_append(&p->body, data, len) != 0) {
        p->body_overflow = 1;
        buf_free(&p->body);
    }
}

/* gw_sse ran out of memory: send what it produced and every byte it had
 * not yet passed on, once each, and forward the rest of the body unparsed. */
static void gw_proxy_sse_failed(gw_proxy_t *p, const char *data, size_t len)
{
    gw_sse_span_t spans[2];
    size_t n = gw_sse_unsent(&p->sse, data, len, spans);

    log_warn("gateway", "instance %s: out of memory reading the event stream; forwarding "
             "the rest unparsed, without token counts", p->record.instance_id);
    p->usage_mode = GW_USAGE_NONE;
    gw_proxy_send(p, p->out.data, p->out.len);
    for (size_t i = 0; i < n; i++)
        gw_proxy_send(p, spans[i].data, spans[i].len);
}

static void gw_proxy_on_body(void *user, const char *data, size_t len)
{
    gw_proxy_t *p = user;

    gw_proxy_enter(p);
    if (p->usage_mode == GW_USAGE_SSE) {
        buf_reset(&p->out);
        if (gw_sse_feed(&p->sse, data, len, &p->out) != 0)
            gw_proxy_sse_failed(p, data, len);
        else
            gw_proxy_send(p, p->out.data, p->out.len);
    } else {
        if (p->usage_mode == GW_USAGE_JSON)
            gw_proxy_keep_body(p, data, len);
        gw_proxy_send(p, data, len);
    }
    gw_proxy_leave(p);
}

/* The body ended whole: pass on any event still held, and read the usage
 * of a non-streamed completion. A stream's counts are taken when the
 * request finishes (gw_proxy_stream_usage). */
static void gw_proxy_take_usage(gw_proxy_t *p)
{
    int64_t prompt = 0, completion = 0;

    if (p->usage_mode == GW_USAGE_SSE) {
        buf_reset(&p->out);
        if (gw_sse_finish(&p->sse, &p->out) == 0)
            gw_proxy_send(p, p->out.data, p->out.len);
        else
            gw_proxy_sse_failed(p, NULL, 0);
    } else if (p->usage_mode == GW_USAGE_JSON && !p->body_overflow && p->body.len > 0 &&
               gw_usage_from_json(p->body.data, p->body.len, &prompt, &completion)) {
        p->record.prompt_tokens = prompt;
        p->record.completion_tokens = completion;
    }
}

/* The instance failed after the response head went out. An event stream
 * that is between events ends with an error event and the last chunk,
 * which OpenAI clients raise as an API error. Any other body is cut, so the
 * client sees it is incomplete. */
static void gw_proxy_end_broken(gw_proxy_t *p, const char *detail)
{
    char event[512];

    if (p->ex == NULL)
        return;
    if (!p->event_stream || !p->client_chunked || !gw_proxy_at_event_boundary(p)) {
        gw_exchange_cut(p);
        return;
    }

    char message[256];
    snprintf(message, sizeof(message), "instance %s stopped mid-stream: %s",
             p->record.instance_id, detail);
    char *error = gw_error_body("upstream_error", "upstream_error", message);
    int n = snprintf(event, sizeof(event), "data: %s\n\n", error != NULL ? error : "{}");
    free(error);
    if (n > 0 && (size_t)n < sizeof(event))
        http_stream_write(p->ex, event, (size_t)n);
    http_stream_end(p->ex);
}

/* Log a failed upstream request, at most once per GW_UPSTREAM_LOG_EVERY_MS
 * with the count of failures left unlogged in between. */
static void gw_log_upstream_failure(gateway_t *gw, const gw_proxy_t *p, const char *detail)
{
    int64_t now = clock_mono_ms();

    if (gw->upstream_logged_ms != 0 && now - gw->upstream_logged_ms < GW_UPSTREAM_LOG_EVERY_MS) {
        gw->upstream_unlogged++;
        return;
    }
    if (gw->upstream_unlogged > 0)
        log_warn("gateway", "instance %s: request to upstream %s failed: %s (%zu more failed "
                 "upstream requests, of any instance, not logged in the last %lld ms)",
                 p->record.instance_id, p->upstream, detail, gw->upstream_unlogged,
                 (long long)(now - gw->upstream_logged_ms));
    else
        log_warn("gateway", "instance %s: request to upstream %s failed: %s",
                 p->record.instance_id, p->upstream, detail);
    gw->upstream_logged_ms = now;
    gw->upstream_unlogged = 0;
}

static void gw_proxy_on_end(void *user, gw_upstream_result_t result, const char *detail)
{
    gw_proxy_t *p = user;
    char message[256];

    gw_proxy_enter(p);
    p->up = NULL;

    if (result == GW_UPSTREAM_DONE) {
        gw_proxy_take_usage(p);
        gw_proxy_flush_head(p, NULL, 0);
        gw_proxy_finish(p, p->record.status, 0);
        if (p->ex != NULL)
            http_stream_end(p->ex);
        gw_proxy_leave(p);
        return;
    }
    gw_proxy_flush_head(p, NULL, 0);

    gw_log_upstream_failure(p->gw, p, detail);
    int started = p->record.status != 0;
    int timeout = result == GW_UPSTREAM_TIMEOUT;
    gw_proxy_finish(p, started || !timeout ? 502 : 504, 0);
    if (started) {
        gw_proxy_end_broken(p, detail);
    } else if (p->ex != NULL) {
        snprintf(message, sizeof(message), "instance %s did not answer: %s",
                 p->record.instance_id, detail);
        gw_reply_error(p->ex, timeout ? 504 : 502, "service_unavailable",
                       timeout                                   ? "upstream_timeout"
                       : result == GW_UPSTREAM_CONNECT_FAILED    ? "upstream_unreachable"
                                                                 : "upstream_error",
                       message, NULL);
    }
    gw_proxy_leave(p);
}

/* ---- requests ---- */

static const gw_upstream_callbacks_t gw_proxy_upstream_callbacks = {
    .on_connect = gw_proxy_on_connect,
    .on_head = gw_proxy_on_head,
    .on_body = gw_proxy_on_body,
    .on_read_end = gw_proxy_on_read_end,
    .on_end = gw_proxy_on_end,
};

/* Copy a NUL-terminated string into a fixed field, truncating. */
static void gw_copy(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static gw_proxy_t *gw_proxy_new(gateway_t *gw, http_exchange_t *ex, const gw_admission_t *adm,
                                const gw_target_t *target)
{
    const http_request_t *req = http_exchange_request(ex);
    gw_proxy_t *p = gw_proxy_alloc(gw);

    if (p == NULL)
        return NULL;
    p->gw = gw;
    p->ex = ex;
    p->start_us = clock_mono_us();
    p->first_byte_us = -1;
    p->record.time = clock_wall_ms();
    p->record.prompt_tokens = -1;
    p->record.completion_tokens = -1;
    p->record.ttfb_ms = -1;
    gw_copy(p->record.instance_id, sizeof(p->record.instance_id), adm->instance->id,
            strlen(adm->instance->id));
    gw_copy(p->record.token_id, sizeof(p->record.token_id), adm->token->id,
            strlen(adm->token->id));
    gw_copy(p->upstream, sizeof(p->upstream), adm->instance->upstream,
            strlen(adm->instance->upstream));
    gw_copy(p->method, sizeof(p->method), req->method, req->method_len);
    gw_copy(p->path, sizeof(p->path), target->forward_path, target->forward_path_len);
    p->inference = req->method_len == 4 && memcmp(req->method, "POST", 4) == 0;
    p->completion = gw_is_completion(req->method, req->method_len, target->forward_path,
                                     target->forward_path_len);
    return p;
}

/* Build the upstream request and send it. Returns 0, or -1 with err set
 * when the request could not even be started. */
static int gw_proxy_forward(gw_proxy_t *p, const gw_target_t *target, char *err,
                            size_t err_size)
{
    const http_request_t *req = http_exchange_request(p->ex);
    gw_completion_t completion = {0};
    buf_t *request = &p->gw->request_scratch;
    const char *body = req->body;
    size_t body_len = req->body_len;

    if (p->completion && gw_completion_prepare(req->body, req->body_len, &completion) == 0 &&
        completion.body != NULL) {
        body = completion.body;
        body_len = completion.body_len;
        p->strip_usage = completion.strip_usage;
    }

    buf_reset(request);
    int rc = gw_build_upstream_request(req, target->forward, target->forward_len, p->upstream,
                                       body, body_len, p->completion, request);
    free(completion.body);
    if (rc != 0) {
        snprintf(err, err_size, "out of memory building the request for instance %s",
                 p->record.instance_id);
        return -1;
    }

    int head_only = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    p->up = gw_upstream_start(p->gw->pools, p->record.instance_id, p->upstream, request,
                              head_only, &gw_proxy_upstream_callbacks, p, err, err_size);
    return p->up != NULL ? 0 : -1;
}

static void gw_proxy_start(gateway_t *gw, http_exchange_t *ex, const gw_admission_t *adm,
                           const gw_target_t *target)
{
    char err[256];
    gw_proxy_t *p = gw_proxy_new(gw, ex, adm, target);

    if (p == NULL) {
        gw_reply_error(ex, 503, "service_unavailable", "out_of_memory",
                       "the gateway is out of memory; retry later", "Retry-After: 5\r\n");
        return;
    }

    gw_proxy_enter(p);
    http_exchange_on_close(ex, gw_proxy_on_close, p);
    http_exchange_on_drain(ex, gw_proxy_on_drain, p);

    if (gw_proxy_forward(p, target, err, sizeof(err)) != 0) {
        gw_log_upstream_failure(p->gw, p, err);
        gw_proxy_finish(p, 502, 0);
        gw_reply_error(ex, 502, "service_unavailable", "upstream_unreachable", err, NULL);
    }
    gw_proxy_leave(p);
}

static void gw_reply_gateway_only(http_exchange_t *ex, gw_target_kind_t kind)
{
    const http_request_t *req = http_exchange_request(ex);
    static const char ok[] = "{\"ok\":true}";

    if (kind == GW_TARGET_OTHER && req->path_len == 8 && memcmp(req->path, "/healthz", 8) == 0) {
        http_respond(ex, 200, "application/json", NULL, ok, sizeof(ok) - 1);
        return;
    }
    gw_reply_error(ex, 404, "not_found_error", "not_found",
                   kind == GW_TARGET_BAD
                       ? "invalid instance path: use /serve/PATH/v1/... where PATH is a route "
                         "name or instance id of [A-Za-z0-9._-]"
                       : "not found: the gateway serves only /serve/PATH/... and /healthz",
                   NULL);
}

/* The snapshot may miss revocations, so reject rather than serve from it. */
static void gw_reply_stale(gateway_t *gw, http_exchange_t *ex, int64_t age_ms)
{
    char message[256];
    int64_t now = clock_mono_ms();

    if (gw->stale_logged_ms == 0 || now - gw->stale_logged_ms >= GW_STALE_LOG_EVERY_MS) {
        log_warn("gateway", "rejecting requests with 503: the last state response from the "
                 "server is %" PRId64 " ms old (limit %" PRId64 " ms); check that the server "
                 "is up", age_ms, gw->state_max_age_ms);
        gw->stale_logged_ms = now;
    }
    snprintf(message, sizeof(message),
             "the gateway has had no state from the server for %" PRId64 " s, so it cannot "
             "check tokens; retry later", age_ms / 1000);
    gw_reply_error(ex, 503, "service_unavailable", "state_stale", message,
                   "Retry-After: 5\r\n");
}

/* The newest snapshot, taken from the poller (under its lock) only when it
 * published a new one. The loop thread keeps a reference to it between
 * requests. A new snapshot also prunes the connection pools. */
static gw_state_t *gw_current_state(gateway_t *gw, int64_t *age_ms)
{
    int64_t version = gw_poller_version(gw->poller);

    if (version != gw->state_version || gw->state == NULL) {
        int64_t ignored;
        gw_state_t *state = gw_poller_current(gw->poller, &ignored);
        if (state != NULL) {
            gw_state_unref(gw->state);
            gw->state = state;
            gw->state_version = version;
            gw_pools_prune(gw->pools, state);
        }
    }
    *age_ms = gw_poller_age_ms(gw->poller);
    return gw->state;
}

void gw_proxy_handle(http_exchange_t *ex, void *user)
{
    gateway_t *gw = user;
    const http_request_t *req = http_exchange_request(ex);
    gw_admission_t adm;
    gw_target_t target;

    gw_target_kind_t kind = gw_split_target(req->target, req->target_len, &target);
    if (kind != GW_TARGET_SERVE) {
        gw_reply_gateway_only(ex, kind);
        return;
    }

    int64_t age_ms;
    gw_state_t *state = gw_current_state(gw, &age_ms);
    if (state == NULL) {
        gw_reply_error(ex, 503, "service_unavailable", "no_state",
                       "the gateway has not yet received its state from the server; retry "
                       "in a few seconds", "Retry-After: 5\r\n");
        return;
    }
    if (age_ms > gw->state_max_age_ms) {
        gw_reply_stale(gw, ex, age_ms);
        return;
    }

    gw_admit(state, req->headers, req->num_headers, target.name, clock_wall_ms(), &adm);
    if (adm.status != 0) {
        char retry_after[32] = "";
        if (adm.retry_after_s > 0)
            snprintf(retry_after, sizeof(retry_after), "Retry-After: %d\r\n", adm.retry_after_s);
        log_debug("gateway", "/serve/%s: %d %s (from %s)", target.name, adm.status, adm.code,
                  http_exchange_peer(ex));
        gw_reply_error(ex, adm.status, adm.type, adm.code, adm.message,
                       retry_after[0] ? retry_after : NULL);
        return;
    }
    gw_proxy_start(gw, ex, &adm, &target);
}
