/* Validation of chat and completion requests, and OpenAI-shaped errors. */
#include "sim/sim_request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_text.h"

/* Tokens a chat template adds around each message and before the reply. The
 * counts are an estimate of what chat templates add, not any model's real
 * template. */
#define SIM_TOKENS_PER_MESSAGE 4
#define SIM_TOKENS_REPLY_PRIMING 2

static const char *sim_error_type(int status)
{
    if (status == 404)
        return "not_found_error";
    if (status == 405)
        return "invalid_request_error";
    if (status == 503)
        return "service_unavailable";
    if (status >= 500)
        return "server_error";
    return "invalid_request_error";
}

void sim_error_set(sim_error_t *err, int status, const char *code, const char *param,
                   const char *fmt, ...)
{
    va_list ap;

    err->status = status;
    err->code = code;
    err->type = sim_error_type(status);
    snprintf(err->param, sizeof(err->param), "%s", param ? param : "");

    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

int sim_error_to_json(const sim_error_t *err, buf_t *out)
{
    json_t *root = json_pack("{s:{s:s, s:s, s:o, s:s}}", "error", "message", err->message,
                             "type", err->type, "param",
                             err->param[0] ? json_string(err->param) : json_null(), "code",
                             err->code);
    char *text = NULL;
    int rc = -1;

    if (root == NULL)
        goto out;
    text = json_dumps(root, JSON_COMPACT);
    if (text == NULL)
        goto out;
    rc = buf_append_str(out, text);

out:
    free(text);
    json_decref(root);
    return rc;
}

const char *sim_json_type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
    default:
        return "null";
    }
}

json_t *sim_request_load(const char *body, size_t len, sim_error_t *err)
{
    json_error_t jerr;
    json_t *root;

    if (body == NULL || len == 0) {
        sim_error_set(err, 400, "invalid_request", NULL,
                      "request body is empty; send a JSON object");
        return NULL;
    }

    root = json_loadb(body, len, 0, &jerr);
    if (root == NULL) {
        sim_error_set(err, 400, "invalid_json", NULL,
                      "request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                      jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        sim_error_set(err, 400, "invalid_request", NULL,
                      "request body must be a JSON object, got %s", sim_json_type_name(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

int sim_request_check_model(json_t *root, const char *model, sim_error_t *err)
{
    json_t *value = json_object_get(root, "model");

    if (value == NULL || json_is_null(value))
        return 0;
    if (!json_is_string(value)) {
        sim_error_set(err, 400, "invalid_type", "model",
                      "model must be a string, got %s; this server serves \"%s\"",
                      sim_json_type_name(value), model);
        return -1;
    }
    if (strcmp(json_string_value(value), model) != 0) {
        sim_error_set(err, 404, "model_not_found", "model",
                      "The model `%.100s` does not exist; this server serves `%.100s`",
                      json_string_value(value), model);
        return -1;
    }
    return 0;
}

/* Count the words of one chat message's content and fold it into the seed.
 * Content is a string, an array of content parts, or null. */
static int sim_chat_content_words(json_t *content, size_t index, uint64_t *seed,
                                  sim_error_t *err)
{
    char param[64];
    size_t i;
    json_t *part;
    int words = 0;

    snprintf(param, sizeof(param), "messages[%zu].content", index);
    if (content == NULL || json_is_null(content))
        return 0;

    if (json_is_string(content)) {
        *seed = sim_text_hash(*seed, json_string_value(content), json_string_length(content));
        return sim_text_count_words(json_string_value(content), json_string_length(content));
    }

    if (!json_is_array(content)) {
        sim_error_set(err, 400, "invalid_type", param,
                      "%s must be a string, an array of content parts or null, got %s", param,
                      sim_json_type_name(content));
        return -1;
    }

    json_array_foreach(content, i, part) {
        json_t *text = json_object_get(part, "text");

        if (!json_is_object(part)) {
            sim_error_set(err, 400, "invalid_type", param,
                          "%s[%zu] must be a content part object, got %s", param, i,
                          sim_json_type_name(part));
            return -1;
        }
        /* Non-text parts (images, audio) carry no words the simulator reads. */
        if (!json_is_string(text))
            continue;
        *seed = sim_text_hash(*seed, json_string_value(text), json_string_length(text));
        words += sim_text_count_words(json_string_value(text), json_string_length(text));
    }
    return words;
}

static int sim_parse_messages(json_t *root, sim_gen_request_t *out, sim_error_t *err)
{
    json_t *messages = json_object_get(root, "messages");
    json_t *message;
    size_t i;
    int tokens = SIM_TOKENS_REPLY_PRIMING;

    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        sim_error_set(err, 400, "invalid_value", "messages",
                      "messages must be a non-empty array of {role, content} objects, got %s",
                      messages ? (json_is_array(messages) ? "an empty array"
                                                          : sim_json_type_name(messages))
                               : "nothing");
        return -1;
    }

    json_array_foreach(messages, i, message) {
        char param[64];
        json_t *role = json_object_get(message, "role");
        int words;

        snprintf(param, sizeof(param), "messages[%zu]", i);
        if (!json_is_object(message)) {
            sim_error_set(err, 400, "invalid_type", param, "%s must be an object, got %s",
                          param, sim_json_type_name(message));
            return -1;
        }
        snprintf(param, sizeof(param), "messages[%zu].role", i);
        if (!json_is_string(role) || json_string_length(role) == 0) {
            sim_error_set(err, 400, "invalid_value", param,
                          "%s must be a non-empty string such as \"user\"", param);
            return -1;
        }

        out->seed = sim_text_hash(out->seed, json_string_value(role), json_string_length(role) + 1);
        words = sim_chat_content_words(json_object_get(message, "content"), i, &out->seed, err);
        if (words < 0)
            return -1;
        tokens += words + SIM_TOKENS_PER_MESSAGE;
    }

    out->prompt_tokens = tokens;
    return 0;
}

/* A prompt is a string, or an array of strings or token ids. Each string
 * counts its words plus one start token, and each token id counts one. */
static int sim_parse_prompt(json_t *root, sim_gen_request_t *out, sim_error_t *err)
{
    json_t *prompt = json_object_get(root, "prompt");
    json_t *item;
    size_t i;
    int tokens = 0;

    if (json_is_string(prompt)) {
        out->seed = sim_text_hash(out->seed, json_string_value(prompt), json_string_length(prompt));
        out->prompt_tokens =
            1 + sim_text_count_words(json_string_value(prompt), json_string_length(prompt));
        return 0;
    }

    if (!json_is_array(prompt) || json_array_size(prompt) == 0) {
        sim_error_set(err, 400, "invalid_value", "prompt",
                      "prompt must be a string or a non-empty array of strings, got %s",
                      prompt ? (json_is_array(prompt) ? "an empty array"
                                                      : sim_json_type_name(prompt))
                             : "nothing");
        return -1;
    }

    json_array_foreach(prompt, i, item) {
        if (json_is_string(item)) {
            out->seed = sim_text_hash(out->seed, json_string_value(item), json_string_length(item));
            tokens += 1 + sim_text_count_words(json_string_value(item), json_string_length(item));
        } else if (json_is_integer(item)) {
            json_int_t id = json_integer_value(item);

            out->seed = sim_text_hash(out->seed, &id, sizeof(id));
            tokens++;
        } else {
            sim_error_set(err, 400, "invalid_type", "prompt",
                          "prompt[%zu] must be a string or a token id, got %s", i,
                          sim_json_type_name(item));
            return -1;
        }
    }

    out->prompt_tokens = tokens;
    return 0;
}

/* max_completion_tokens (newer chat clients) wins over max_tokens. */
static int sim_parse_max_tokens(json_t *root, sim_gen_request_t *out, sim_error_t *err)
{
    const char *name = "max_completion_tokens";
    json_t *value = json_object_get(root, name);

    if (value == NULL || json_is_null(value)) {
        name = "max_tokens";
        value = json_object_get(root, name);
    }

    out->max_tokens = SIM_DEFAULT_MAX_TOKENS;
    if (value == NULL || json_is_null(value))
        return 0;

    if (!json_is_integer(value)) {
        sim_error_set(err, 400, "invalid_type", name,
                      "%s must be an integer from 1 to %d, got %s", name, SIM_MAX_MAX_TOKENS,
                      sim_json_type_name(value));
        return -1;
    }
    if (json_integer_value(value) < 1 || json_integer_value(value) > SIM_MAX_MAX_TOKENS) {
        sim_error_set(err, 400, "invalid_value", name,
                      "%s must be an integer from 1 to %d, got %" JSON_INTEGER_FORMAT, name,
                      SIM_MAX_MAX_TOKENS, json_integer_value(value));
        return -1;
    }

    out->max_tokens = (int)json_integer_value(value);
    return 0;
}

static int sim_parse_stream(json_t *root, sim_gen_request_t *out, sim_error_t *err)
{
    json_t *stream = json_object_get(root, "stream");
    json_t *options = json_object_get(root, "stream_options");
    json_t *include_usage;

    if (stream != NULL && !json_is_null(stream) && !json_is_boolean(stream)) {
        sim_error_set(err, 400, "invalid_type", "stream", "stream must be true or false, got %s",
                      sim_json_type_name(stream));
        return -1;
    }
    out->stream = json_is_true(stream);

    if (options == NULL || json_is_null(options))
        return 0;
    if (!json_is_object(options)) {
        sim_error_set(err, 400, "invalid_type", "stream_options",
                      "stream_options must be an object such as {\"include_usage\": true}, got %s",
                      sim_json_type_name(options));
        return -1;
    }

    include_usage = json_object_get(options, "include_usage");
    if (include_usage != NULL && !json_is_null(include_usage) && !json_is_boolean(include_usage)) {
        sim_error_set(err, 400, "invalid_type", "stream_options.include_usage",
                      "stream_options.include_usage must be true or false, got %s",
                      sim_json_type_name(include_usage));
        return -1;
    }
    out->include_usage = out->stream && json_is_true(include_usage);
    return 0;
}

/* The simulator makes one choice per request. */
static int sim_parse_n(json_t *root, sim_error_t *err)
{
    json_t *n = json_object_get(root, "n");

    if (n == NULL || json_is_null(n))
        return 0;
    if (json_is_integer(n) && json_integer_value(n) == 1)
        return 0;
    sim_error_set(err, 400, "invalid_value", "n",
                  "n must be 1 (the simulator makes one choice per request)");
    return -1;
}

int sim_gen_request_parse(sim_api_t api, const char *body, size_t len, const char *model,
                          sim_gen_request_t *out, sim_error_t *err)
{
    json_t *root = NULL;
    int natural;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->api = api;
    out->seed = SIM_HASH_INIT;

    root = sim_request_load(body, len, err);
    if (root == NULL)
        goto out;

    if (sim_request_check_model(root, model, err) != 0)
        goto out;
    if (api == SIM_API_CHAT ? sim_parse_messages(root, out, err) != 0
                            : sim_parse_prompt(root, out, err) != 0)
        goto out;
    if (sim_parse_max_tokens(root, out, err) != 0)
        goto out;
    if (sim_parse_stream(root, out, err) != 0)
        goto out;
    if (sim_parse_n(root, err) != 0)
        goto out;

    natural = sim_text_natural_length(out->seed);
    out->completion_tokens = natural < out->max_tokens ? natural : out->max_tokens;
    out->finish_reason = out->max_tokens < natural ? "length" : "stop";
    rc = 0;

out:
    json_decref(root);
    return rc;
}
