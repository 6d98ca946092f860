/* Server-sent event scanning for completion streams: event boundaries across
 * reads, usage extraction and removal of the usage-only chunk. */
#include "gateway/gw_sse.h"

#include <jansson.h>
#include <string.h>

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
}

static int gw_usage_read(const json_t *root, int64_t *prompt_tokens, int64_t *completion_tokens)
{
    const json_t *usage = json_object_get(root, "usage");

    if (!json_is_object(usage))
        return 0;
    *prompt_tokens = json_integer_value(json_object_get(usage, "prompt_tokens"));
    *completion_tokens = json_integer_value(json_object_get(usage, "completion_tokens"));
    return 1;
}

int gw_usage_from_json(const char *json, size_t len, int64_t *prompt_tokens,
                       int64_t *completion_tokens)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    int found = gw_usage_read(root, prompt_tokens, completion_tokens);

    json_decref(root);
    return found;
}

/* Join the event's "data:" field values with LF, as an SSE client would. */
static int gw_sse_event_data(const char *event, size_t len, buf_t *data)
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
            if (lines > 0 && buf_append(data, "\n", 1) != 0)
                return -1;
            if (buf_append(data, line + skip, line_len - skip) != 0)
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

/* Parse one complete event for usage. Returns 1 when it is a usage-only
 * chunk ("choices": [] with a usage object), 0 otherwise, -1 out of memory. */
static int gw_sse_inspect(gw_sse_t *sse, const char *event, size_t len)
{
    buf_t data = BUF_INIT;
    int usage_only = 0;

    /* Most events are content deltas: skip the JSON parse unless the event
     * can hold a usage object at all. */
    if (len == 0 || memmem(event, len, "\"usage\"", 7) == NULL)
        return 0;

    int lines = gw_sse_event_data(event, len, &data);
    if (lines < 0) {
        buf_free(&data);
        return -1;
    }
    if (lines == 0) {
        buf_free(&data);
        return 0;
    }

    json_t *root = json_loadb(data.data, data.len, 0, NULL);
    int64_t prompt = 0, completion = 0;
    if (gw_usage_read(root, &prompt, &completion)) {
        sse->have_usage = 1;
        sse->prompt_tokens = prompt;
        sse->completion_tokens = completion;

        const json_t *choices = json_object_get(root, "choices");
        usage_only = json_is_array(choices) && json_array_size(choices) == 0;
    }

    json_decref(root);
    buf_free(&data);
    return usage_only;
}

/* Add bytes of the event being read. Past max_event the event is no longer
 * kept: with stripping its held bytes go out at once, without stripping they
 * were already sent. */
static int gw_sse_hold(gw_sse_t *sse, const char *data, size_t len, buf_t *out)
{
    if (sse->overflow)
        return sse->strip_usage_only ? buf_append(out, data, len) : 0;

    if (sse->event.len + len <= sse->max_event)
        return buf_append(&sse->event, data, len);

    sse->overflow = 1;
    if (sse->strip_usage_only) {
        if (buf_append(out, sse->event.data, sse->event.len) != 0)
            return -1;
        if (buf_append(out, data, len) != 0)
            return -1;
    }
    buf_reset(&sse->event);
    return 0;
}

/* The blank line ending the held event was seen, and span is the event's
 * last bytes. Decide whether the event reaches the client. */
static int gw_sse_dispatch(gw_sse_t *sse, const char *span, size_t len, buf_t *out,
                           int ends_with_cr)
{
    int kept = 1;

    if (gw_sse_hold(sse, span, len, out) != 0)
        return -1;

    if (!sse->overflow) {
        int usage_only = gw_sse_inspect(sse, sse->event.data, sse->event.len);
        if (usage_only < 0)
            return -1;
        if (sse->strip_usage_only) {
            if (usage_only) {
                kept = 0;
                sse->dropped_events++;
            } else if (buf_append(out, sse->event.data, sse->event.len) != 0) {
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

    /* Without stripping nothing is ever removed, so every byte leaves now
     * and the held copy serves only the usage parse. */
    if (!sse->strip_usage_only && buf_append(out, data, len) != 0)
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
                buf_append(out, data + i, 1) != 0)
                return -1;
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

        if (gw_sse_dispatch(sse, data + start, i + 1 - start, out, c == '\r') != 0)
            return -1;
        start = i + 1;
    }

    return gw_sse_hold(sse, data + start, len - start, out);
}

int gw_sse_finish(gw_sse_t *sse, buf_t *out)
{
    if (!sse->overflow && sse->event.len > 0 &&
        gw_sse_inspect(sse, sse->event.data, sse->event.len) < 0)
        return -1;

    if (sse->strip_usage_only && !sse->overflow &&
        buf_append(out, sse->event.data, sse->event.len) != 0)
        return -1;

    sse->overflow = 0;
    buf_reset(&sse->event);
    return 0;
}
