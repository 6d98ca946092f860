/* bench-client: the gateway benchmark's measuring client for what wrk does
 * not measure.
 *
 *   bench-client stream --port N --path PATH [--token T] [--streams N]
 *       Runs N streamed completions one after another on one keep-alive
 *       connection and prints the time to the first event and each event's
 *       delay, which is the arrival time minus the "t_us" send time the bench
 *       backend wrote into it. Both use CLOCK_MONOTONIC on this machine.
 *
 *   bench-client hold --port N --path PATH [--token T] --count N --kind idle|sse
 *                     [--ready-file F] [--hold-s S]
 *       Opens up to N connections. Each one either completes one request and
 *       stays open as an idle keep-alive connection (idle), or starts a stream
 *       and keeps reading it (sse). It writes the number it holds to F, holds
 *       them for S seconds, then closes them all.
 *
 *   bench-client ports --count N
 *       Prints N distinct ports that were free on 127.0.0.1 a moment ago.
 *
 * Output lines start with STREAM or HOLD and carry key=value pairs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STREAM_BODY "{\"model\":\"bench\",\"stream\":true,\"messages\":[{\"role\":\"user\"," \
                    "\"content\":\"hi\"}]}"

typedef struct {
    const char *mode;
    int port;
    const char *path;
    const char *token;
    int streams;
    long count;
    const char *kind;
    const char *ready_file;
    int hold_s;
} options_t;

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int connect_to(int port, int nonblock)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    int one = 1;

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Format a request. A NULL body sends a GET. */
static int format_request(char *out, size_t size, const options_t *o, const char *body)
{
    char auth[600] = "";

    if (o->token != NULL && o->token[0] != '\0')
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", o->token);
    if (body == NULL)
        return snprintf(out, size, "GET %s HTTP/1.1\r\nHost: bench\r\n%s\r\n", o->path, auth);
    return snprintf(out, size,
                    "POST %s HTTP/1.1\r\nHost: bench\r\n%sContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n%s",
                    o->path, auth, strlen(body), body);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static uint64_t percentile(uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* ---- stream mode ---- */

typedef struct {
    uint64_t *ttfb;
    size_t num_ttfb;
    uint64_t *delay;
    size_t num_delay;
    size_t cap_delay;
} stream_stats_t;

/* Read one chunked event-stream response from a blocking socket. Returns
 * 0 when it ended with the last chunk, -1 on an error. */
static int read_stream(int fd, uint64_t t0, stream_stats_t *st)
{
    static char buf[1 << 16];
    size_t len = 0;
    int have_head = 0, first = 1;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 10000) <= 0)
            return -1;
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        uint64_t arrival = now_us();
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';

        char *p = buf;
        if (!have_head) {
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL)
                continue;
            if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
                fprintf(stderr, "bench-client: stream got %.40s\n", buf);
                return -1;
            }
            have_head = 1;
            p = end + 4;
        }

        /* Each complete event (up to the last blank line) carries
         * "t_us":N; the events of one read share its arrival time. */
        char *last = NULL;
        for (char *q = strstr(p, "\n\n"); q != NULL; q = strstr(q + 2, "\n\n"))
            last = q;
        char *t = p;
        while (last != NULL && (t = strstr(t, "\"t_us\":")) != NULL && t < last) {
            uint64_t sent = strtoull(t + 7, NULL, 10);
            if (first) {
                st->ttfb[st->num_ttfb++] = arrival - t0;
                first = 0;
            }
            if (st->num_delay == st->cap_delay) {
                st->cap_delay = st->cap_delay ? st->cap_delay * 2 : 1024;
                st->delay = realloc(st->delay, st->cap_delay * sizeof(*st->delay));
                if (st->delay == NULL)
                    return -1;
            }
            st->delay[st->num_delay++] = arrival > sent ? arrival - sent : 0;
            t += 7;
        }
        if (last != NULL)
            p = last + 2;
        if (strstr(p, "0\r\n\r\n") != NULL && strstr(p, "data:") == NULL)
            return 0;
        len = strlen(p);
        memmove(buf, p, len);
    }
}

static int run_stream(const options_t *o)
{
    char req[2048];
    stream_stats_t st = {0};
    int fd = connect_to(o->port, 0);

    if (fd < 0) {
        fprintf(stderr, "bench-client: cannot connect to port %d: %s\n", o->port, strerror(errno));
        return 1;
    }
    st.ttfb = calloc((size_t)o->streams, sizeof(*st.ttfb));
    int len = format_request(req, sizeof(req), o, STREAM_BODY);
    for (int i = 0; i < o->streams; i++) {
        uint64_t t0 = now_us();
        if (write(fd, req, (size_t)len) != len || read_stream(fd, t0, &st) != 0) {
            fprintf(stderr, "bench-client: stream %d failed\n", i + 1);
            return 1;
        }
    }
    close(fd);
    size_t events = st.num_delay;
    printf("STREAM streams=%zu events=%zu ttfb_p50_us=%llu ttfb_p99_us=%llu "
           "delay_p50_us=%llu delay_p99_us=%llu\n",
           st.num_ttfb, events, (unsigned long long)percentile(st.ttfb, st.num_ttfb, 50),
           (unsigned long long)percentile(st.ttfb, st.num_ttfb, 99),
           (unsigned long long)percentile(st.delay, events, 50),
           (unsigned long long)percentile(st.delay, events, 99));
    free(st.ttfb);
    free(st.delay);
    return 0;
}

/* ---- hold mode ---- */

enum { HOLD_CONNECTING, HOLD_SENT, HOLD_HELD, HOLD_DEAD };

typedef struct {
    int fd;
    int state;
    size_t got;      /* response bytes read before the connection counted as held */
    char head[1024]; /* the first bytes of the response, for its head */
} hold_conn_t;

/* Whether an idle-mode response is complete: its head (the first bytes,
 * head_len of them kept) with Content-Length, and that many body bytes
 * among the got bytes read in all. */
static int response_complete(const char *head, size_t got)
{
    size_t head_len = got < 1024 ? got : 1024;
    const char *end = memmem(head, head_len, "\r\n\r\n", 4);
    const char *cl = memmem(head, head_len, "Content-Length:", 15);

    if (end == NULL || cl == NULL || cl > end)
        return 0;
    return got >= (size_t)(end - head) + 4 + strtoul(cl + 15, NULL, 10);
}

static void hold_read(hold_conn_t *c, int sse, long *held, long *failed)
{
    static char buf[(1 << 16) + 1];

    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf) - 1);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            if (c->state == HOLD_HELD)
                (*held)--;
            (*failed)++;
            c->state = HOLD_DEAD;
            close(c->fd);
            return;
        }
        if (c->state != HOLD_SENT)
            continue;   /* stream events after the first: discard */
        buf[n] = '\0';
        if (c->got < sizeof(c->head)) {
            size_t take = (size_t)n < sizeof(c->head) - c->got ? (size_t)n : sizeof(c->head) - c->got;
            memcpy(c->head + c->got, buf, take);
        }
        c->got += (size_t)n;
        if (c->got >= 12 && strncmp(c->head, "HTTP/1.1 200", 12) != 0) {
            (*failed)++;
            c->state = HOLD_DEAD;
            close(c->fd);
            return;
        }
        if (sse ? strstr(buf, "data:") != NULL : response_complete(c->head, c->got)) {
            c->state = HOLD_HELD;
            (*held)++;
        }
    }
}

static int run_hold(const options_t *o)
{
    char req[2048], getreq[2048];
    int sse = strcmp(o->kind, "sse") == 0;
    hold_conn_t *conns = calloc((size_t)o->count, sizeof(*conns));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event events[512];
    long opened = 0, held = 0, failed = 0, pending = 0;
    uint64_t deadline = now_us() + 60u * 1000000u;

    int len = format_request(req, sizeof(req), o, STREAM_BODY);
    int getlen = format_request(getreq, sizeof(getreq), o, NULL);

    /* Keep at most 256 connections waiting for a response at a time, so the
     * listen backlogs do not overflow as long as each allows 256 entries. */
    while ((opened < o->count || pending > 0) && now_us() < deadline) {
        while (opened < o->count && pending < 256) {
            hold_conn_t *c = &conns[opened++];
            c->fd = connect_to(o->port, 1);
            if (c->fd < 0) {
                c->state = HOLD_DEAD;
                failed++;
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            pending++;
        }
        int n = epoll_wait(ep, events, 512, 100);
        for (int i = 0; i < n; i++) {
            hold_conn_t *c = events[i].data.ptr;
            int was_pending = c->state == HOLD_CONNECTING || c->state == HOLD_SENT;
            if (c->state == HOLD_CONNECTING && (events[i].events & EPOLLOUT)) {
                int l = sse ? len : getlen;
                const char *r = sse ? req : getreq;
                if (write(c->fd, r, (size_t)l) != l) {
                    c->state = HOLD_DEAD;
                    failed++;
                    close(c->fd);
                } else {
                    c->state = HOLD_SENT;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            } else if (c->state != HOLD_DEAD && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                hold_read(c, sse, &held, &failed);
            }
            if (was_pending && c->state != HOLD_CONNECTING && c->state != HOLD_SENT)
                pending--;
        }
    }

    printf("HOLD kind=%s requested=%ld held=%ld failed=%ld\n", o->kind, o->count, held, failed);
    fflush(stdout);
    if (o->ready_file != NULL) {
        FILE *f = fopen(o->ready_file, "w");
        if (f != NULL) {
            fprintf(f, "%ld\n", held);
            fclose(f);
        }
    }

    /* Keep reading (streams send events) until the hold time is over. */
    uint64_t end = now_us() + (uint64_t)o->hold_s * 1000000u;
    while (now_us() < end) {
        int n = epoll_wait(ep, events, 512, 200);
        for (int i = 0; i < n; i++) {
            hold_conn_t *c = events[i].data.ptr;
            if (c->state != HOLD_DEAD)
                hold_read(c, sse, &held, &failed);
        }
    }
    printf("HOLD kind=%s still_held=%ld\n", o->kind, held);
    for (long i = 0; i < opened; i++) {
        if (conns[i].state != HOLD_DEAD)
            close(conns[i].fd);
    }
    free(conns);
    return 0;
}

/* Bind N sockets to port 0 at once (so the ports differ), print the ports
 * and release them. */
static int run_ports(long count)
{
    int *fds = calloc((size_t)count, sizeof(*fds));

    for (long i = 0; i < count; i++) {
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(addr);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&addr, &len) != 0) {
            fprintf(stderr, "bench-client: cannot find a free port: %s\n", strerror(errno));
            return 1;
        }
        printf("%d\n", ntohs(addr.sin_port));
    }
    for (long i = 0; i < count; i++)
        close(fds[i]);
    free(fds);
    return 0;
}

static long parse_long(const char *text, long min, long max)
{
    char *end;
    long v = strtol(text, &end, 10);

    if (*text == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bench-client: invalid number '%s' (%ld-%ld)\n", text, min, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"port", required_argument, NULL, 'p'},   {"path", required_argument, NULL, 'P'},
        {"token", required_argument, NULL, 't'},  {"streams", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},  {"kind", required_argument, NULL, 'k'},
        {"ready-file", required_argument, NULL, 'r'}, {"hold-s", required_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    options_t o = {.streams = 20, .count = 100, .kind = "idle", .hold_s = 5, .port = -1};
    int opt;

    if (argc < 2) {
        fprintf(stderr, "usage: bench-client stream|hold --port N --path PATH [options]\n");
        return 2;
    }
    o.mode = argv[1];
    optind = 2;
    if (strcmp(o.mode, "ports") == 0)
        o.count = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'p': o.port = (int)parse_long(optarg, 1, 65535); break;
        case 'P': o.path = optarg; break;
        case 't': o.token = optarg; break;
        case 's': o.streams = (int)parse_long(optarg, 1, 100000); break;
        case 'n': o.count = parse_long(optarg, 1, 1000000); break;
        case 'k': o.kind = optarg; break;
        case 'r': o.ready_file = optarg; break;
        case 'h': o.hold_s = (int)parse_long(optarg, 0, 3600); break;
        default: return 2;
        }
    }
    if (strcmp(o.mode, "ports") == 0)
        return run_ports(o.count);
    if (o.port < 0 || o.path == NULL) {
        fprintf(stderr, "bench-client: --port and --path are required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(o.mode, "stream") == 0)
        return run_stream(&o);
    if (strcmp(o.mode, "hold") == 0 && (strcmp(o.kind, "idle") == 0 || strcmp(o.kind, "sse") == 0))
        return run_hold(&o);
    fprintf(stderr, "bench-client: unknown mode '%s' or --kind '%s'\n", o.mode, o.kind);
    return 2;
}
