/* Decoding the log stream of a container created without a TTY: frames of
 * an 8-byte header (stream type, three zero bytes, a big-endian payload
 * length) and the payload. The decoder keeps its state across reads, so a
 * read may end anywhere, inside a header or a payload. */
#ifndef NIMDECK_AGENT_DOCKER_FRAMES_H
#define NIMDECK_AGENT_DOCKER_FRAMES_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DOCKER_FRAME_STDOUT = 1, DOCKER_FRAME_STDERR = 2 } docker_frame_stream_t;

typedef struct {
    int raw;                      /* a TTY container: everything is stdout, no headers */
    unsigned char header[8];
    size_t header_len;            /* header bytes read so far */
    uint32_t remaining;           /* payload bytes left in the current frame */
    docker_frame_stream_t stream; /* the current frame's stream */
} docker_frames_t;

/* Called with a piece of one frame's payload; a long frame may come in
 * several pieces. */
typedef void (*docker_frame_fn)(void *ctx, docker_frame_stream_t stream, const char *data,
                                size_t len);

void docker_frames_init(docker_frames_t *frames, int raw);

/* Decode data and call fn for every payload piece in it. Returns 0, or -1
 * when a header is not a frame header (a stream type other than 0, 1 or 2,
 * or non-zero padding), after which the decoder passes everything on raw
 * as stdout so that no output is lost. Stream 0 (stdin) counts as stdout. */
int docker_frames_feed(docker_frames_t *frames, const char *data, size_t len, docker_frame_fn fn,
                       void *ctx);

#endif
