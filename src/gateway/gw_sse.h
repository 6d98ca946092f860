/* Server-sent event pass-through for completion streams: finds the usage
 * object across reads, counts content events and can drop the usage-only
 * chunk. No I/O. */
#ifndef NIMDECK_GATEWAY_GW_SSE_H
#define NIMDECK_GATEWAY_GW_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Default bound on the bytes kept of one event. An event longer than this is
 * forwarded without being parsed, so its usage (if any) is not seen. */
#define GW_SSE_MAX_EVENT (256u * 1024)

typedef struct {
    int strip_usage_only;   /* drop events with "choices": [] and a usage object */
    size_t max_event;       /* bound on event (the leftover buffer) */
    buf_t event;            /* bytes of the event being read */
    buf_t data;             /* the data lines of the event being inspected */
    int overflow;           /* event outgrew max_event: forwarded, not parsed */
    int at_line_start;      /* the previous byte ended a line */
    int after_cr;           /* the previous byte was CR (a following LF joins it) */
    int cr_event_end;       /* an event just ended on CR: was it kept or dropped */
    int have_usage;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    size_t dropped_events;  /* usage-only events removed so far */
    /* Complete events with a non-empty choices[].delta.content or
     * choices[].text. NIM streams about one token per event, so this is
     * the completion-token estimate when no usage object arrives. */
    size_t content_events;
    size_t consumed;        /* leading input bytes the last feed accounted for */
    unsigned fail_append_at; /* test hook: the Nth append from now fails (0: none) */
} gw_sse_t;

/* Bytes the client still needs after a failed feed or finish. */
typedef struct {
    const char *data;
    size_t len;
} gw_sse_span_t;

/* Prepare a parser. strip_usage_only: remove usage-only chunks from the
 * output (set when the gateway added stream_options.include_usage itself).
 * max_event 0 means GW_SSE_MAX_EVENT. */
void gw_sse_init(gw_sse_t *sse, int strip_usage_only, size_t max_event);

/* Consume data[0..len) of the response body and append what the client must
 * receive to out. Without stripping, out receives every byte at once; with
 * stripping, bytes of an incomplete event wait in sse->event until the blank
 * line that ends it (or until it outgrows max_event) and are then appended
 * unchanged, unless the event is usage-only. Returns 0, or -1 when memory
 * runs out: the client must then get out and the spans of gw_sse_unsent. */
int gw_sse_feed(gw_sse_t *sse, const char *data, size_t len, buf_t *out);

/* End of the body: append any bytes still held (an unterminated last event is
 * forwarded as it is, and parsed for usage) to out. Returns 0, or -1 when
 * memory runs out: the client must then get out and the spans of
 * gw_sse_unsent(sse, NULL, 0, spans). */
int gw_sse_finish(gw_sse_t *sse, buf_t *out);

/* After gw_sse_feed(data, len) or gw_sse_finish returned -1, fill spans
 * with the bytes the client must receive after out, in order. The first is
 * the held event, but only when stripping, because otherwise it was sent
 * already. The second is the part of data not yet accounted for. No byte is
 * lost or repeated, and the caller must pass the rest of the body through
 * unparsed. Returns the number of spans (0 to 2), which point into
 * sse->event and data. */
size_t gw_sse_unsent(const gw_sse_t *sse, const char *data, size_t len, gw_sse_span_t spans[2]);

void gw_sse_free(gw_sse_t *sse);

/* Read "usage": {"prompt_tokens", "completion_tokens"} from a JSON document
 * (a whole non-streamed completion body). Returns 1 and sets both when the
 * document has a usage object, 0 otherwise (also for invalid JSON). */
int gw_usage_from_json(const char *json, size_t len, int64_t *prompt_tokens,
                       int64_t *completion_tokens);

#endif
