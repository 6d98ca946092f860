/* OpenAI-shaped completion bodies and SSE events, built with jansson so the
 * model name and text are escaped correctly. */
#include "sim/sim_reply.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sim/sim_text.h"

static int sim_is_chat(const sim_reply_t *reply)
{
    return reply->req->api == SIM_API_CHAT;
}

/* A reply that ended on its own finishes its last word with a period. */
static int sim_stopped(const sim_gen_request_t *req)
{
    return strcmp(req->finish_reason, "stop") == 0;
}

static json_t *sim_reply_usage(const sim_gen_request_t *req)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", req->prompt_tokens,
                     "completion_tokens", req->completion_tokens, "total_tokens",
                     req->prompt_tokens + req->completion_tokens);
}

/* The fields every chunk and body starts with. */
static json_t *sim_reply_envelope(const sim_reply_t *reply, const char *object)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", reply->id, "object", object, "created",
                     (json_int_t)reply->created, "model", reply->model);
}

/* Dump root (taking ownership) to out, as a bare body or as one SSE event. */
static int sim_reply_emit(json_t *root, int event, buf_t *out)
{
    char *text = NULL;
    int rc = -1;

    if (root == NULL)
        return -1;
    text = json_dumps(root, JSON_COMPACT);
    if (text == NULL)
        goto out;

    if (event)
        rc = buf_printf(out, "data: %s\n\n", text);
    else
        rc = buf_append_str(out, text);

out:
    free(text);
    json_decref(root);
    return rc;
}

int sim_reply_text(const sim_gen_request_t *req, buf_t *out)
{
    int stopped = sim_stopped(req);

    for (int i = 0; i < req->completion_tokens; i++) {
        int last = i == req->completion_tokens - 1;

        if (sim_text_append_token(req->seed, i, last && stopped, out) != 0)
            return -1;
    }
    return 0;
}

int sim_reply_body(const sim_reply_t *reply, buf_t *out)
{
    const sim_gen_request_t *req = reply->req;
    buf_t text = BUF_INIT;
    json_t *root = NULL;
    json_t *choice;

    if (sim_reply_text(req, &text) != 0 || buf_append_str(&text, "") != 0)
        goto fail;

    root = sim_reply_envelope(reply, sim_is_chat(reply) ? "chat.completion" : "text_completion");
    if (sim_is_chat(reply))
        choice = json_pack("{s:i, s:{s:s, s:s}, s:n, s:s}", "index", 0, "message", "role",
                           "assistant", "content", text.data, "logprobs", "finish_reason",
                           req->finish_reason);
    else
        choice = json_pack("{s:i, s:s, s:n, s:s}", "index", 0, "text", text.data, "logprobs",
                           "finish_reason", req->finish_reason);
    if (root == NULL || choice == NULL)
        goto fail_choice;

    json_object_set_new(root, "choices", json_pack("[o]", choice));
    json_object_set_new(root, "usage", sim_reply_usage(req));
    buf_free(&text);
    return sim_reply_emit(root, 0, out);

fail_choice:
    json_decref(choice);
fail:
    json_decref(root);
    buf_free(&text);
    return -1;
}

/* One streamed chunk. content (owned) is the chat delta object or the
 * completion text string; finish is NULL until the last token. */
static int sim_reply_chunk(const sim_reply_t *reply, json_t *content, const char *finish,
                           buf_t *out)
{
    json_t *root = sim_reply_envelope(reply, sim_is_chat(reply) ? "chat.completion.chunk"
                                                                : "text_completion");
    json_t *choice = json_pack("{s:i, s:o, s:n, s:o}", "index", 0,
                               sim_is_chat(reply) ? "delta" : "text", content, "logprobs",
                               "finish_reason", finish ? json_string(finish) : json_null());

    if (root == NULL || choice == NULL) {
        json_decref(root);
        json_decref(choice);
        return -1;
    }

    json_object_set_new(root, "choices", json_pack("[o]", choice));
    /* OpenAI sends "usage": null on every chunk but the last when usage was
     * requested. */
    if (reply->req->include_usage)
        json_object_set_new(root, "usage", json_null());
    return sim_reply_emit(root, 1, out);
}

int sim_reply_role_event(const sim_reply_t *reply, buf_t *out)
{
    return sim_reply_chunk(reply, json_pack("{s:s, s:s}", "role", "assistant", "content", ""),
                           NULL, out);
}

int sim_reply_token_event(const sim_reply_t *reply, int index, buf_t *out)
{
    const sim_gen_request_t *req = reply->req;
    int last = index == req->completion_tokens - 1;
    int stopped = sim_stopped(req);
    buf_t token = BUF_INIT;
    json_t *content;

    if (sim_text_append_token(req->seed, index, last && stopped, &token) != 0) {
        buf_free(&token);
        return -1;
    }
    content = json_stringn(token.data, token.len);
    buf_free(&token);

    if (sim_is_chat(reply))
        content = json_pack("{s:o}", "content", content);
    return sim_reply_chunk(reply, content, last ? req->finish_reason : NULL, out);
}

int sim_reply_usage_event(const sim_reply_t *reply, buf_t *out)
{
    json_t *root = sim_reply_envelope(reply, sim_is_chat(reply) ? "chat.completion.chunk"
                                                                : "text_completion");

    if (root == NULL)
        return -1;
    json_object_set_new(root, "choices", json_array());
    json_object_set_new(root, "usage", sim_reply_usage(reply->req));
    return sim_reply_emit(root, 1, out);
}

int sim_reply_done_event(buf_t *out)
{
    return buf_append_str(out, "data: [DONE]\n\n");
}
