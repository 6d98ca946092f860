/* Simulated embeddings: request validation and deterministic unit vectors
 * derived from a hash of each input. */
#ifndef NIMDECK_SIM_SIM_EMBED_H
#define NIMDECK_SIM_SIM_EMBED_H

#include <stddef.h>

#include <jansson.h>

#include "sim/sim_request.h"
#include "util/buf.h"

/* A validated /v1/embeddings request. It holds a reference to root and to
 * inputs, released by sim_embed_request_free. */
typedef struct {
    json_t *root;
    json_t *inputs;          /* array of strings (a single string is wrapped) */
    int dimensions;
    int base64;              /* encoding_format "base64": little-endian float32 */
    int prompt_tokens;       /* words of every input, at least one per input */
} sim_embed_request_t;

/* Validate a /v1/embeddings body of len bytes: input is a string or a
 * non-empty array of strings, encoding_format is float or base64, dimensions
 * is 1..SIM_MAX_DIMENSIONS (default_dimensions when absent), input_type is
 * query or passage, truncate is NONE, START or END. Returns 0 and fills out
 * (release it with sim_embed_request_free), or -1 and fills err. */
int sim_embed_request_parse(const char *body, size_t len, const char *model,
                            int default_dimensions, sim_embed_request_t *out,
                            sim_error_t *err);
void sim_embed_request_free(sim_embed_request_t *req);

/* Write the unit vector for text[0..len) into out[0..dimensions). The same
 * text always gets the same vector. */
void sim_embed_vector(const char *text, size_t len, int dimensions, float *out);

/* Append the base64 encoding of data[0..len) to out. Returns 0, or -1 when
 * memory runs out. */
int sim_embed_base64(const void *data, size_t len, buf_t *out);

/* Append the OpenAI embeddings response for req to out. Returns 0, or -1
 * when memory runs out. */
int sim_embed_response(const sim_embed_request_t *req, const char *model, buf_t *out);

#endif
