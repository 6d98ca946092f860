/* The multiplexed log stream decoder. */
#include "agent/docker_frames.h"

#include <string.h>

void docker_frames_init(docker_frames_t *frames, int raw)
{
    memset(frames, 0, sizeof(*frames));
    frames->raw = raw;
}

/* Take a complete header. Returns 0, or -1 when it is not one. */
static int docker_frames_take_header(docker_frames_t *frames)
{
    const unsigned char *h = frames->header;

    frames->header_len = 0;
    if (h[0] > 2 || h[1] != 0 || h[2] != 0 || h[3] != 0)
        return -1;
    frames->stream = h[0] == 2 ? DOCKER_FRAME_STDERR : DOCKER_FRAME_STDOUT;
    frames->remaining = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    return 0;
}

int docker_frames_feed(docker_frames_t *frames, const char *data, size_t len, docker_frame_fn fn,
                       void *ctx)
{
    while (len > 0) {
        if (frames->raw) {
            fn(ctx, DOCKER_FRAME_STDOUT, data, len);
            return 0;
        }

        if (frames->remaining > 0) {
            size_t n = len < frames->remaining ? len : frames->remaining;
            fn(ctx, frames->stream, data, n);
            frames->remaining -= (uint32_t)n;
            data += n;
            len -= n;
            continue;
        }

        size_t want = sizeof(frames->header) - frames->header_len;
        size_t n = len < want ? len : want;
        memcpy(frames->header + frames->header_len, data, n);
        frames->header_len += n;
        data += n;
        len -= n;
        if (frames->header_len < sizeof(frames->header))
            return 0;
        if (docker_frames_take_header(frames) != 0) {
            /* Not a multiplexed stream after all: pass the bytes on. */
            frames->raw = 1;
            fn(ctx, DOCKER_FRAME_STDOUT, (const char *)frames->header, sizeof(frames->header));
            if (len > 0)
                fn(ctx, DOCKER_FRAME_STDOUT, data, len);
            return -1;
        }
    }
    return 0;
}
