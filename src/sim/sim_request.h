/* Validation of the simulator's OpenAI-style request bodies, and the
 * OpenAI-shaped error that reports a rejected one. */
#ifndef NIMDECK_SIM_SIM_REQUEST_H
#define NIMDECK_SIM_SIM_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/buf.h"

#define SIM_DEFAULT_MAX_TOKENS 64
#define SIM_MAX_MAX_TOKENS 4096
#define SIM_MAX_DIMENSIONS 8192

/* A rejected request: HTTP status, OpenAI error type and code, the request
 * field at fault and a message naming the value and the fix. */
typedef struct {
    int status;
    const char *type;
    const char *code;
    char param[64];          /* empty when no single field is at fault */
    char message[320];
} sim_error_t;

typedef enum { SIM_API_CHAT, SIM_API_COMPLETION } sim_api_t;

/* A validated text generation request and the reply planned for it. */
typedef struct {
    sim_api_t api;
    int stream;
    int include_usage;       /* stream_options.include_usage */
    int max_tokens;          /* the limit in force: given, or the default */
    uint64_t seed;           /* hash of the prompt; picks the reply's words */
    int prompt_tokens;
    int completion_tokens;   /* min(max_tokens, natural length for seed) */
    const char *finish_reason; /* "length" when max_tokens cut the reply, else "stop" */
} sim_gen_request_t;

/* Fill err: status, code, param (NULL for none), the OpenAI type that goes
 * with the status, and the formatted message. */
void sim_error_set(sim_error_t *err, int status, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Decode body as a JSON object. Returns it (the caller owns it), or NULL and
 * fills err with a 400 naming the problem. */
json_t *sim_request_load(const char *body, size_t len, sim_error_t *err);

/* Check the optional "model" member of root against the served name. Returns
 * 0, or -1 and fills err: 400 when it is not a string, 404 model_not_found
 * when it names another model. */
int sim_request_check_model(json_t *root, const char *model, sim_error_t *err);

/* Name of a JSON value's type for messages ("a string", "null"). */
const char *sim_json_type_name(const json_t *value);

/* Append err as `{"error": {"message", "type", "param", "code"}}` to out.
 * Returns 0, or -1 when memory runs out. */
int sim_error_to_json(const sim_error_t *err, buf_t *out);

/* Validate a /v1/chat/completions (SIM_API_CHAT) or /v1/completions body of
 * len bytes. model is the served name: a request naming another model gets
 * 404 model_not_found, a request without one is accepted. Returns 0 and fills
 * out, or -1 and fills err (400 for a malformed body or field). */
int sim_gen_request_parse(sim_api_t api, const char *body, size_t len, const char *model,
                          sim_gen_request_t *out, sim_error_t *err);

#endif
