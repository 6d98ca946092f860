/* The OpenAI response bodies and SSE chunks of simulated completions. */
#ifndef NIMDECK_SIM_SIM_REPLY_H
#define NIMDECK_SIM_SIM_REPLY_H

#include <stdint.h>

#include "sim/sim_request.h"
#include "util/buf.h"

/* What every body of one reply shares. */
typedef struct {
    const sim_gen_request_t *req;
    const char *id;           /* "chatcmpl-..." or "cmpl-..." */
    int64_t created;          /* Unix seconds */
    const char *model;
} sim_reply_t;

/* Each function appends to out and returns 0, or -1 when memory runs out. */

/* The reply's whole text: req->completion_tokens words. */
int sim_reply_text(const sim_gen_request_t *req, buf_t *out);

/* The non-streamed body: chat.completion or text_completion with usage. */
int sim_reply_body(const sim_reply_t *reply, buf_t *out);

/* The chat stream's opening event, whose delta has role "assistant". */
int sim_reply_role_event(const sim_reply_t *reply, buf_t *out);

/* The event carrying token number index (0-based). The last token's event
 * also carries the finish reason. */
int sim_reply_token_event(const sim_reply_t *reply, int index, buf_t *out);

/* The usage-only event sent when stream_options.include_usage is set:
 * empty choices and the usage object. */
int sim_reply_usage_event(const sim_reply_t *reply, buf_t *out);

/* The stream's terminating "data: [DONE]" event. */
int sim_reply_done_event(buf_t *out);

#endif
