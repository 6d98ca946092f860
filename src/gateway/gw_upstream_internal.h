/* Upstream client internals shared by gw_upstream.c (requests and their
 * connections) and gw_pool.c (the per-instance pools). Not part of the
 * public interface.
 *
 * Lifetimes. A gw_upconn_t (one TCP connection) lives until both its libuv
 * handles have closed; libuv runs the callbacks of its pending connect and
 * write requests first, with UV_ECANCELED, and they check `closing`. Its
 * pool stays allocated while any of its connections does (refs). A
 * gw_upstream_t (one request) has no handles: it is recycled through the
 * pools' free list as soon as no callback of it is on the stack. */
#ifndef NIMDECK_GATEWAY_GW_UPSTREAM_INTERNAL_H
#define NIMDECK_GATEWAY_GW_UPSTREAM_INTERNAL_H

#include <sys/socket.h>

#include "gateway/gw_upstream.h"

/* Bound on a response head; instances send a few hundred bytes. */
#define GW_UPSTREAM_MAX_HEAD (64u * 1024)
/* Size of the read buffer that every upstream connection shares: a read is
 * consumed (copied or forwarded) before the next one starts. */
#define GW_UPSTREAM_READ_BUF (64u * 1024)
#define GW_POOL_BUCKETS 64
/* Spare request structs kept for reuse; more are freed. */
#define GW_REQUESTS_FREE_MAX 1024
/* Spare buffers for request and response-head bytes. A long response
 * gives its request's buffers back once the head arrived, so thousands of
 * open streams hold none; the next requests take them. */
#define GW_SPARE_BUFS 64
#define GW_SPARE_BUF_MAX (16u * 1024)

typedef struct gw_upconn gw_upconn_t;
typedef struct gw_pool gw_pool_t;

typedef enum {
    GW_BODY_NONE,
    GW_BODY_LENGTH,
    GW_BODY_CHUNKED,
    GW_BODY_UNTIL_CLOSE,
} gw_body_mode_t;

/* The connections of one instance at one address. */
struct gw_pool {
    gw_pools_t *pools;
    gw_pool_t *next;              /* bucket chain, while in the table */
    char *instance_id;
    char *host_port;
    struct sockaddr_storage addr;
    gw_upconn_t *idle;            /* idle connections, most recently used first */
    size_t num_idle;
    size_t refs;                  /* its connections, plus one while in the table */
    int retired;                  /* out of the table: connections close when done */
};

struct gw_pools {
    uv_loop_t *loop;
    gw_upstream_limits_t limits;
    gw_pool_t *buckets[GW_POOL_BUCKETS];
    gw_upstream_t *free_requests;
    size_t num_free_requests;
    gw_pools_stats_t stats;
    int closed;                   /* gw_pools_close ran: nothing is pooled any more */
    buf_t decoded;                /* chunked payload of the current read */
    buf_t spare[GW_SPARE_BUFS];
    size_t num_spare;
    char read_buf[GW_UPSTREAM_READ_BUF];
};

struct gw_upconn {
    uv_tcp_t tcp;
    uv_timer_t timer;             /* connect, first byte, read or idle timeout */
    uv_connect_t connect_req;
    uv_write_t write_req;
    gw_pool_t *pool;
    gw_upconn_t *idle_prev;
    gw_upconn_t *idle_next;
    gw_upstream_t *req;           /* the request it carries; NULL while idle or closing */
    int handles_open;
    int closing;
    int connected;
    int idle;                     /* in its pool's idle list */
    int writing;                  /* write_req in flight */
    int reading;                  /* uv_read_start active */
    int error;                    /* a libuv error to report from the timer callback */
};

struct gw_upstream {
    gw_pools_t *pools;
    gw_pool_t *pool;              /* a reference, for a retry's new connection */
    gw_upconn_t *conn;
    gw_upstream_t *next_free;
    gw_upstream_callbacks_t cb;
    void *user;
    int depth;                    /* callbacks of this request on the stack */
    int ended;                    /* finished or aborted: no more callbacks */
    int head_only;
    int reused;                   /* sent on a pooled connection */
    int retried;
    int connect_reported;         /* on_connect ran */
    int got_bytes;                /* some response byte arrived */
    int have_head;
    int keep_alive;               /* the response allows reuse */
    int extra_bytes;              /* bytes after the end of the response */
    int paused;
    buf_t request;
    buf_t head;                   /* response bytes until the head is complete */
    gw_body_mode_t body_mode;
    uint64_t remaining;           /* GW_BODY_LENGTH */
    http_chunked_t chunked;
};

/* gw_pool.c: find or create the pool of instance_id at host_port (a pool at
 * another address is retired). Returns NULL with err set on a bad address or
 * out of memory. */
gw_pool_t *gw_pool_get(gw_pools_t *pools, const char *instance_id, const char *host_port,
                       char *err, size_t err_size);

/* Take the most recently used idle connection, or NULL. */
gw_upconn_t *gw_pool_take(gw_pool_t *pool);

/* Keep conn idle in its pool, or close it when the pool is retired or full. */
void gw_pool_put(gw_upconn_t *conn);

/* Unlink conn from the idle list (it is closing). */
void gw_pool_unlink(gw_upconn_t *conn);

/* Drop one reference; frees a retired pool with none left. */
void gw_pool_unref(gw_pool_t *pool);

/* gw_upstream.c: close a connection (idle or busy, detached from any
 * request) and release its pool reference once the handles have closed. */
void gw_upconn_close(gw_upconn_t *conn);

#endif
