/* Unit tests for decoding a container's multiplexed log stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/docker_frames.h"
#include "util/buf.h"

typedef struct {
    buf_t out;
    buf_t err;
    int pieces;
} frames_sink_t;

static void collect_frame(void *ctx, docker_frame_stream_t stream, const char *data, size_t len)
{
    frames_sink_t *sink = ctx;

    assert_true(len > 0);
    sink->pieces++;
    assert_int_equal(buf_append(stream == DOCKER_FRAME_STDERR ? &sink->err : &sink->out, data, len),
                     0);
}

static void sink_free(frames_sink_t *sink)
{
    buf_free(&sink->out);
    buf_free(&sink->err);
}

/* Append one frame: header (stream, 0, 0, 0, big-endian length) and payload. */
static void add_frame(buf_t *stream, unsigned char type, const char *payload)
{
    size_t len = strlen(payload);
    unsigned char header[8] = {type, 0, 0, 0, (unsigned char)(len >> 24),
                               (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                               (unsigned char)len};

    assert_int_equal(buf_append(stream, header, sizeof(header)), 0);
    assert_int_equal(buf_append(stream, payload, len), 0);
}

static void build_stream(buf_t *stream)
{
    add_frame(stream, 1, "Selected profile: abc\n");
    add_frame(stream, 2, "warning: slow disk\n");
    add_frame(stream, 1, "partial ");
    add_frame(stream, 1, "line\n");
    add_frame(stream, 2, "");
    add_frame(stream, 0, "stdin counts as stdout\n");
}

static void frames_every_split(void **state)
{
    buf_t stream = BUF_INIT;

    (void)state;
    build_stream(&stream);
    for (size_t step = 1; step <= stream.len; step++) {
        docker_frames_t frames;
        frames_sink_t sink = {BUF_INIT, BUF_INIT, 0};

        docker_frames_init(&frames, 0);
        for (size_t at = 0; at < stream.len; at += step) {
            size_t n = stream.len - at < step ? stream.len - at : step;
            assert_int_equal(docker_frames_feed(&frames, stream.data + at, n, collect_frame, &sink),
                             0);
        }
        assert_string_equal(sink.out.data,
                            "Selected profile: abc\npartial line\nstdin counts as stdout\n");
        assert_string_equal(sink.err.data, "warning: slow disk\n");
        sink_free(&sink);
    }
    buf_free(&stream);
}

static void frames_long_payload(void **state)
{
    char payload[70000];
    buf_t stream = BUF_INIT;
    docker_frames_t frames;
    frames_sink_t sink = {BUF_INIT, BUF_INIT, 0};

    (void)state;
    memset(payload, 'x', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    add_frame(&stream, 2, payload);
    docker_frames_init(&frames, 0);
    for (size_t at = 0; at < stream.len; at += 4096) {
        size_t n = stream.len - at < 4096 ? stream.len - at : 4096;
        assert_int_equal(docker_frames_feed(&frames, stream.data + at, n, collect_frame, &sink), 0);
    }
    assert_int_equal(sink.err.len, sizeof(payload) - 1);
    assert_int_equal(sink.out.len, 0);
    sink_free(&sink);
    buf_free(&stream);
}

static void frames_tty_raw(void **state)
{
    docker_frames_t frames;
    frames_sink_t sink = {BUF_INIT, BUF_INIT, 0};
    const char text[] = "\x01\x00\x00\x00 raw tty bytes\n";

    (void)state;
    docker_frames_init(&frames, 1);
    assert_int_equal(docker_frames_feed(&frames, text, sizeof(text) - 1, collect_frame, &sink), 0);
    assert_int_equal(sink.out.len, sizeof(text) - 1);
    assert_memory_equal(sink.out.data, text, sizeof(text) - 1);
    sink_free(&sink);
}

static void frames_bad_header_goes_raw(void **state)
{
    docker_frames_t frames;
    frames_sink_t sink = {BUF_INIT, BUF_INIT, 0};
    const char text[] = "hello, not framed\n";

    (void)state;
    docker_frames_init(&frames, 0);
    assert_int_equal(docker_frames_feed(&frames, text, 5, collect_frame, &sink), 0);
    assert_int_equal(sink.pieces, 0);
    assert_int_equal(docker_frames_feed(&frames, text + 5, sizeof(text) - 6, collect_frame, &sink),
                     -1);
    assert_string_equal(sink.out.data, text);
    assert_int_equal(docker_frames_feed(&frames, "more\n", 5, collect_frame, &sink), 0);
    assert_string_equal(sink.out.data, "hello, not framed\nmore\n");
    sink_free(&sink);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_every_split),
        cmocka_unit_test(frames_long_payload),
        cmocka_unit_test(frames_tty_raw),
        cmocka_unit_test(frames_bad_header_goes_raw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
