/* bench-backend: a small, fast HTTP/1.1 model server for the gateway
 * benchmark. One thread, epoll, keep-alive. It responds with a small JSON chat
 * completion, or an SSE stream whose events leave at a fixed interval and
 * carry their send time, so a client on the same machine can measure each
 * event's delay.
 *
 *   bench-backend --port N [--host ADDR] [--chunks N] [--interval-ms MS]
 *
 * Routes: GET /v1/health/..., GET /v1/models, POST /v1/chat/completions and
 * /v1/completions. A body with "stream":true gets the stream. The query
 * parameters chunks=N and interval_ms=MS override the stream's defaults.
 * The first event leaves at once, each later one after the interval. Every
 * event's JSON has "t_us": the CLOCK_MONOTONIC microseconds at its write. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP 16384           /* bound on one request (head and body) */
#define OUT_MAX (1024 * 1024)  /* queued output beyond this closes the connection */
#define MAX_EVENTS 256

typedef struct conn {
    int fd;
    char in[IN_CAP];
    size_t in_len;
    char *out;                 /* bytes the socket did not take yet */
    size_t out_len;
    size_t out_cap;
    int close_after;           /* close once out is flushed */
    int want_out;              /* EPOLLOUT registered */
    /* Stream state: events left, the interval, the next deadline and the
     * place in the timer heap (-1 when not streaming). */
    int stream_left;
    int stream_seq;
    int stream_usage;
    uint64_t interval_us;
    uint64_t next_us;
    long heap_pos;
} conn_t;

static int epfd;
static int default_chunks = 20;
static int default_interval_ms = 10;
static conn_t **heap;
static long heap_len;
static long heap_cap;

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- timer heap of streams, ordered by next_us ---- */

static void heap_swap(long a, long b)
{
    conn_t *t = heap[a];

    heap[a] = heap[b];
    heap[b] = t;
    heap[a]->heap_pos = a;
    heap[b]->heap_pos = b;
}

static void heap_up(long i)
{
    while (i > 0 && heap[(i - 1) / 2]->next_us > heap[i]->next_us) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(long i)
{
    for (;;) {
        long l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l]->next_us < heap[m]->next_us)
            m = l;
        if (r < heap_len && heap[r]->next_us < heap[m]->next_us)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static int heap_push(conn_t *c)
{
    if (heap_len == heap_cap) {
        long cap = heap_cap ? heap_cap * 2 : 1024;
        conn_t **grown = realloc(heap, (size_t)cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        heap = grown;
        heap_cap = cap;
    }
    heap[heap_len] = c;
    c->heap_pos = heap_len++;
    heap_up(c->heap_pos);
    return 0;
}

static void heap_remove(conn_t *c)
{
    long i = c->heap_pos;

    if (i < 0)
        return;
    c->heap_pos = -1;
    heap_len--;
    if (i == heap_len)
        return;
    heap[i] = heap[heap_len];
    heap[i]->heap_pos = i;
    heap_up(i);
    heap_down(heap[i]->heap_pos);
}

/* ---- output ---- */

static void conn_free(conn_t *c)
{
    heap_remove(c);
    close(c->fd);
    free(c->out);
    free(c);
}

static void conn_watch_out(conn_t *c, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

    if (c->want_out == on)
        return;
    c->want_out = on;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is queued. Returns -1 when the connection must close. */
static int conn_flush(conn_t *c)
{
    while (c->out_len > 0) {
        ssize_t n = write(c->fd, c->out, c->out_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            conn_watch_out(c, 1);
            return 0;
        }
        if (n <= 0)
            return -1;
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    conn_watch_out(c, 0);
    return c->close_after ? -1 : 0;
}

/* Send bytes, queueing what the socket does not take. Returns -1 when the
 * connection must close. */
static int conn_send(conn_t *c, const char *data, size_t len)
{
    if (c->out_len == 0) {
        ssize_t n = write(c->fd, data, len);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
        if (len == 0)
            return 0;
    }
    if (c->out_len + len > OUT_MAX)
        return -1;
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        char *grown = realloc(c->out, cap);
        if (grown == NULL)
            return -1;
        c->out = grown;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    conn_watch_out(c, 1);
    return 0;
}

static int send_response(conn_t *c, int status, const char *reason, const char *type,
                         const char *body)
{
    char msg[2048];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s",
                     status, reason, type, strlen(body),
                     c->close_after ? "Connection: close\r\n" : "", body);

    if (n < 0 || (size_t)n >= sizeof(msg))
        return -1;
    return conn_send(c, msg, (size_t)n);
}

/* ---- streams ---- */

/* Write one chunk-coded event of the stream, or its end. */
static int stream_step(conn_t *c)
{
    char event[512], chunk[600];
    int len;

    if (c->stream_left > 0) {
        len = snprintf(event, sizeof(event),
                       "data: {\"id\":\"bench\",\"object\":\"chat.completion.chunk\",\"seq\":%d,"
                       "\"t_us\":%llu,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"}}]}"
                       "\n\n",
                       c->stream_seq, (unsigned long long)now_us());
        c->stream_seq++;
        c->stream_left--;
    } else {
        len = snprintf(event, sizeof(event), "%sdata: [DONE]\n\n",
                       c->stream_usage ? "data: {\"id\":\"bench\",\"choices\":[],\"usage\":"
                                         "{\"prompt_tokens\":12,\"completion_tokens\":1,"
                                         "\"total_tokens\":13}}\n\n"
                                       : "");
    }
    int n = snprintf(chunk, sizeof(chunk), "%x\r\n%s\r\n", len, event);

    return conn_send(c, chunk, (size_t)n);
}

static int stream_tick(conn_t *c)
{
    int ending = c->stream_left == 0;

    if (stream_step(c) != 0)
        return -1;
    if (ending) {
        heap_remove(c);
        return conn_send(c, "0\r\n\r\n", 5);
    }
    c->next_us += c->interval_us;
    heap_down(c->heap_pos);
    return 0;
}

/* Read an integer query parameter ("name=123"), or return fallback. */
static long query_int(const char *target, size_t len, const char *name, long fallback)
{
    const char *q = memchr(target, '?', len);
    size_t name_len = strlen(name);

    while (q != NULL && q < target + len) {
        q++;
        if ((size_t)(target + len - q) > name_len && memcmp(q, name, name_len) == 0 &&
            q[name_len] == '=')
            return strtol(q + name_len + 1, NULL, 10);
        q = memchr(q, '&', (size_t)(target + len - q));
    }
    return fallback;
}

static int stream_start(conn_t *c, const char *target, size_t target_len, const char *body)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

    c->stream_left = (int)query_int(target, target_len, "chunks", default_chunks);
    c->interval_us = 1000u * (uint64_t)query_int(target, target_len, "interval_ms",
                                                 default_interval_ms);
    c->stream_seq = 0;
    c->stream_usage = strstr(body, "\"include_usage\":true") != NULL;
    if (c->stream_left < 1)
        c->stream_left = 1;
    if (conn_send(c, head, sizeof(head) - 1) != 0)
        return -1;
    c->next_us = now_us();
    if (heap_push(c) != 0)
        return -1;
    return stream_tick(c);
}

/* ---- requests ---- */

static const char completion_json[] =
    "{\"id\":\"cmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"bench\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hello from the bench backend.\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}";

/* Find header name in the head. Returns the start of its value or NULL. */
static const char *head_find(const char *head, size_t head_len, const char *name)
{
    size_t name_len = strlen(name);
    const char *line = memchr(head, '\n', head_len);

    while (line != NULL && (size_t)(line - head) + 1 + name_len < head_len) {
        line++;
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *v = line + name_len + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
        line = memchr(line, '\n', head_len - (size_t)(line - head));
    }
    return NULL;
}

/* Handle one complete request in c->in. Returns the bytes it used, 0 when
 * more must arrive, or -1 to close. */
static long handle_request(conn_t *c)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL)
        return c->in_len >= IN_CAP ? -1 : 0;

    size_t head_len = (size_t)(end - c->in) + 4;
    const char *cl = head_find(c->in, head_len, "content-length");
    long body_len = cl ? strtol(cl, NULL, 10) : 0;
    if (body_len < 0 || head_len + (size_t)body_len >= IN_CAP)
        return -1;
    if (c->in_len < head_len + (size_t)body_len)
        return 0;

    const char *conn_hdr = head_find(c->in, head_len, "connection");
    c->close_after = conn_hdr != NULL && strncasecmp(conn_hdr, "close", 5) == 0;

    const char *sp = memchr(c->in, ' ', head_len);
    const char *target = sp ? sp + 1 : c->in;
    const char *tend = memchr(target, ' ', head_len - (size_t)(target - c->in));
    size_t target_len = tend ? (size_t)(tend - target) : 0;
    size_t used = head_len + (size_t)body_len;

    /* NUL-terminate the body for strstr. The byte after it is restored later. */
    char saved = c->in[used];
    c->in[used] = '\0';
    const char *body = c->in + head_len;
    int rc;

    if (target_len >= 10 && memcmp(target, "/v1/health", 10) == 0) {
        rc = send_response(c, 200, "OK", "application/json", "{\"status\":\"ready\"}");
    } else if (target_len >= 10 && memcmp(target, "/v1/models", 10) == 0) {
        rc = send_response(c, 200, "OK", "application/json",
                           "{\"object\":\"list\",\"data\":[{\"id\":\"bench\",\"object\":\"model\"}]}");
    } else if (strncmp(c->in, "POST ", 5) == 0 && target_len >= 15 &&
               memmem(target, target_len, "completions", 11) != NULL) {
        if (strstr(body, "\"stream\":true") != NULL || strstr(body, "\"stream\": true") != NULL)
            rc = stream_start(c, target, target_len, body);
        else
            rc = send_response(c, 200, "OK", "application/json", completion_json);
    } else {
        rc = send_response(c, 404, "Not Found", "application/json",
                           "{\"error\":{\"message\":\"not found\"}}");
    }
    c->in[used] = saved;
    return rc != 0 ? -1 : (long)used;
}

static int conn_read(conn_t *c)
{
    for (;;) {
        ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - 1 - c->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            return -1;
        c->in_len += (size_t)n;
        if (c->in_len >= IN_CAP - 1)
            break;
    }

    /* A stream occupies its connection, so later bytes wait until it ends. */
    while (c->heap_pos < 0 && c->in_len > 0 && !c->close_after) {
        long used = handle_request(c);
        if (used < 0)
            return -1;
        if (used == 0)
            break;
        memmove(c->in, c->in + used, c->in_len - (size_t)used);
        c->in_len -= (size_t)used;
    }
    if (c->close_after && c->out_len == 0 && c->heap_pos < 0)
        return -1;
    return 0;
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_t *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->heap_pos = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
            conn_free(c);
    }
}

/* Run the streams whose deadline has come. Returns the epoll timeout. */
static int run_timers(void)
{
    uint64_t now = now_us();

    while (heap_len > 0 && heap[0]->next_us <= now) {
        conn_t *c = heap[0];
        if (stream_tick(c) != 0)
            conn_free(c);
        else if (c->heap_pos < 0 && c->in_len > 0 && conn_read(c) != 0)
            conn_free(c);
    }
    if (heap_len == 0)
        return -1;
    uint64_t wait = heap[0]->next_us - now;
    return (int)((wait + 999) / 1000);
}

/* Parse a non-negative decimal option value, or return -1. */
static long parse_count(const char *text)
{
    char *end;
    long v = strtol(text, &end, 10);

    return *text != '\0' && *end == '\0' && v >= 0 ? v : -1;
}

static int listen_on(const char *host, int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0 || inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 4096) != 0)
        return -1;
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"port", required_argument, NULL, 'p'},
        {"host", required_argument, NULL, 'H'},
        {"chunks", required_argument, NULL, 'c'},
        {"interval-ms", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1";
    int port = -1, opt;

    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'p': port = (int)parse_count(optarg); break;
        case 'H': host = optarg; break;
        case 'c': default_chunks = (int)parse_count(optarg); break;
        case 'i': default_interval_ms = (int)parse_count(optarg); break;
        default:
            fprintf(stderr, "usage: bench-backend --port N [--host ADDR] [--chunks N] "
                    "[--interval-ms MS]\n");
            return 2;
        }
    }
    if (port < 0 || port > 65535 || default_chunks < 0 || default_interval_ms < 0) {
        fprintf(stderr, "bench-backend: invalid or missing --port (0-65535), --chunks or "
                "--interval-ms\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(host, port);
    if (lfd < 0) {
        fprintf(stderr, "bench-backend: cannot listen on %s:%d: %s\n", host, port,
                strerror(errno));
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    fprintf(stderr, "bench-backend: listening on %s:%d\n", host, port);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int timeout = run_timers();
        int n = epoll_wait(epfd, events, MAX_EVENTS, timeout);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c == NULL) {
                accept_all(lfd);
                continue;
            }
            int bad = 0;
            if (events[i].events & (EPOLLERR | EPOLLHUP))
                bad = 1;
            if (!bad && (events[i].events & EPOLLOUT))
                bad = conn_flush(c) != 0;
            if (!bad && (events[i].events & EPOLLIN))
                bad = conn_read(c) != 0;
            if (bad)
                conn_free(c);
        }
    }
}
