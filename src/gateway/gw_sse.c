/* Server-sent event scanning for completion streams: event boundaries across
 * reads, usage extraction and removal of the usage-only chunk. */
#include "gateway/gw_sse.h"

#include <string.h>

#include "gateway/gw_json.h"

/* How the last event ended when its final line terminator was a CR: an LF
 * that follows belongs to the same terminator and shares the event's fate. */
enum { GW_SSE_CR_NONE, GW_SSE_CR_KEPT, GW_SSE_CR_DROPPED };

void gw_sse_init(gw_sse_t *sse, int strip_usage_only, size_t max_event)
{
    memset(sse, 0, sizeof(*sse));
    sse->strip_usage_only = strip_usage_only;
    sse->max_event = max_event > 0 ? max_event : GW_SSE_MAX_EVENT;
    sse->at_line_start = 1;
}

void gw_sse_free(gw_sse_t *sse)
{
    buf_free(&sse->event);
    buf_free(&sse->data);
}

/* Every append of this file goes through here, so a test can make any one
 * of them fail as if memory ran out. */
static int gw_sse_append(gw_sse_t *sse, buf_t *b, const char *data, size_t len)
{
    if (sse->fail_append_at > 0 && --sse->fail_append_at == 0)
        return -1;
    return buf_append(b, data, len);
}

/* Runs once per non-streamed completion, so it scans without allocating
 * instead of building a jansson tree. */
int gw_usage_from_json(const char *json, size_t len, int64_t *prompt_tokens,
                       int64_t *completion_tokens)
{
    return gw_json_usage(json, len, prompt_tokens, completion_tokens);
}

/* Join the event's "data:" field values with LF, as an SSE client would. */
static int gw_sse_event_data(gw_sse_t *sse, const char *event, size_t len, buf_t *data)
{
    size_t pos = 0;
    int lines = 0;

    while (pos < len) {
        size_t end = pos;
        while (end < len && event[end] != '\r' && event[end] != '\n')
            end++;

        const char *line = event + pos;
        size_t line_len = end - pos;
        if (line_len >= 5 && memcmp(line, "data:", 5) == 0) {
            size_t skip = (line_len > 5 && line[5] == ' ') ? 6 : 5;
            if (lines > 0 && gw_sse_append(sse, data, "\n", 1) != 0)
                return -1;
            if (gw_sse_append(sse, data, line + skip, line_len - skip) != 0)
                return -1;
            lines++;
        }

        pos = end;
        if (pos < len && event[pos] == '\r')
            pos++;
        if (pos < len && event[pos] == '\n')
            pos++;
    }
    return lines;
}

/* Parse one complete event for usage and content. Returns 1 when it is a
 * usage-only chunk ("choices": [] with a usage object), 0 otherwise, -1 out
 * of memory. This runs once per streamed token, so the chunk is scanned
 * without allocating (gw_json_chunk) and its data lines are joined in a
 * buffer that the stream keeps. */
static int gw_sse_inspect(gw_sse_t *sse, const char *event, size_t len)
{
    gw_json_chunk_t chunk;

    /* Skip the JSON scan unless the event can hold usage or content at all
     * (keep-alive comments, [DONE], role-only deltas). */
    if (len == 0 || (memmem(event, len, "\"usage\"", 7) == NULL &&
                     memmem(event, len, "\"content\"", 9) == NULL &&
                     memmem(event, len, "\"text\"", 6) == NULL))
        return 0;

    buf_reset(&sse->data);
    int lines = gw_sse_event_data(sse, event, len, &sse->data);
    if (lines <= 0)
        return lines;
    if (!gw_json_chunk(sse->data.data, sse->data.len, &chunk))
        return 0;

    if (chunk.has_content)
        sse->content_events++;
    if (!chunk.has_usage)
        return 0;
    sse->have_usage = 1;
    sse->prompt_tokens = chunk.prompt_tokens;
    sse->completion_tokens = chunk.completion_tokens;
    return chunk.choices_empty;
}

/* Add bytes of the event being read. Past max_event the event is no longer
 * kept: with stripping its held bytes go out at once, without stripping they
 * were already sent. */
static int gw_sse_hold(gw_sse_t *sse, const char *data, size_t len, buf_t *out)
{
    if (sse->overflow)
        return sse->strip_usage_only ? gw_sse_append(sse, out, data, len) : 0;

    if (sse->event.len + len <= sse->max_event)
        return gw_sse_append(sse, &sse->event, data, len);

    /* The held bytes leave the event as soon as they are in out, so a
     * failure on data afterwards leaves no byte in both places. */
    sse->overflow = 1;
    if (sse->strip_usage_only &&
        gw_sse_append(sse, out, sse->event.data, sse->event.len) != 0)
        return -1;
    buf_reset(&sse->event);
    return sse->strip_usage_only ? gw_sse_append(sse, out, data, len) : 0;
}

/* The blank line ending the held event was seen and is held too. Decide
 * whether the event reaches the client. */
static int gw_sse_dispatch(gw_sse_t *sse, buf_t *out, int ends_with_cr)
{
    int kept = 1;

    if (!sse->overflow) {
        int usage_only = gw_sse_inspect(sse, sse->event.data, sse->event.len);
        if (usage_only < 0)
            return -1;
        if (sse->strip_usage_only) {
            if (usage_only) {
                kept = 0;
                sse->dropped_events++;
            } else if (gw_sse_append(sse, out, sse->event.data, sse->event.len) != 0) {
                return -1;
            }
        }
    }

    sse->overflow = 0;
    buf_reset(&sse->event);
    sse->after_cr = ends_with_cr;
    if (ends_with_cr)
        sse->cr_event_end = kept ? GW_SSE_CR_KEPT : GW_SSE_CR_DROPPED;
    return 0;
}

int gw_sse_feed(gw_sse_t *sse, const char *data, size_t len, buf_t *out)
{
    size_t start = 0;
    int rc = -1;

    /* Without stripping nothing is ever removed, so every byte leaves now
     * and the held copy serves only the usage parse. */
    sse->consumed = 0;
    if (!sse->strip_usage_only && gw_sse_append(sse, out, data, len) != 0)
        return -1;

    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        int cr_event_end = sse->cr_event_end;

        sse->cr_event_end = GW_SSE_CR_NONE;
        if (sse->after_cr && c == '\n') {
            sse->after_cr = 0;
            if (cr_event_end == GW_SSE_CR_NONE)
                continue;
            /* The LF completes the terminator of an event already decided:
             * it leaves with that event, never held with the next one. */
            if (cr_event_end == GW_SSE_CR_KEPT && sse->strip_usage_only &&
                gw_sse_append(sse, out, data + i, 1) != 0)
                goto done;
            start = i + 1;
            continue;
        }

        if (c != '\r' && c != '\n') {
            sse->after_cr = 0;
            sse->at_line_start = 0;
            continue;
        }

        sse->after_cr = (c == '\r');
        if (!sse->at_line_start) {
            sse->at_line_start = 1;
            continue;
        }

        if (gw_sse_hold(sse, data + start, i + 1 - start, out) != 0)
            goto done;
        start = i + 1;
        if (gw_sse_dispatch(sse, out, c == '\r') != 0)
            goto done;
    }

    if (gw_sse_hold(sse, data + start, len - start, out) != 0)
        goto done;
    start = len;
    rc = 0;

done:
    /* Bytes before start are in out, in the held event, or were dropped
     * with a usage-only event; without stripping, all of data is in out. */
    sse->consumed = sse->strip_usage_only ? start : len;
    return rc;
}

int gw_sse_finish(gw_sse_t *sse, buf_t *out)
{
    sse->consumed = 0;
    if (!sse->overflow && sse->event.len > 0 &&
        gw_sse_inspect(sse, sse->event.data, sse->event.len) < 0)
        return -1;

    if (sse->strip_usage_only && !sse->overflow &&
        gw_sse_append(sse, out, sse->event.data, sse->event.len) != 0)
        return -1;

    sse->overflow = 0;
    buf_reset(&sse->event);
    return 0;
}

size_t gw_sse_unsent(const gw_sse_t *sse, const char *data, size_t len, gw_sse_span_t spans[2])
{
    size_t n = 0;

    /* Without stripping the held bytes were sent when they arrived. */
    if (sse->strip_usage_only && sse->event.len > 0) {
        spans[n].data = sse->event.data;
        spans[n].len = sse->event.len;
        n++;
    }
    if (sse->consumed < len) {
        spans[n].data = data + sse->consumed;
        spans[n].len = len - sse->consumed;
        n++;
    }
    return n;
}
