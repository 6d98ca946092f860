/* A validating JSON scanner that allocates nothing, for reading a few
 * members out of response bodies on the gateway's hot path. */
#ifndef NIMDECK_GATEWAY_GW_JSON_H
#define NIMDECK_GATEWAY_GW_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Deepest nesting accepted; a deeper document is treated as invalid, as
 * jansson 2.14 does past the same depth. */
#define GW_JSON_MAX_DEPTH 2048

/* Read the integer members prompt_tokens and completion_tokens of the
 * top-level member "usage" of the JSON document json[0..len). Returns 1 when
 * the document is valid JSON whose top level is an object with a "usage"
 * object (the last one, when the key repeats), 0 otherwise. A member that
 * is missing or not an integer reads as 0. Keys are compared after decoding
 * their escapes. Unlike a full parser, it does not check that strings hold
 * valid UTF-8. */
int gw_json_usage(const char *json, size_t len, int64_t *prompt_tokens,
                  int64_t *completion_tokens);

/* What the gateway reads from one streamed completion chunk. */
typedef struct {
    int has_usage;              /* the top level has a "usage" object */
    int64_t prompt_tokens;      /* its members, as gw_json_usage reads them */
    int64_t completion_tokens;
    int choices_empty;          /* "choices" is an empty array */
    int has_content;            /* a choice has a non-empty delta.content or text string */
} gw_json_chunk_t;

/* Read a chunk: returns 1 and fills out when json[0..len) is valid JSON
 * whose top level is an object, 0 otherwise (out is then all zero). For a
 * repeated key the last value counts, as in jansson. */
int gw_json_chunk(const char *json, size_t len, gw_json_chunk_t *out);

#endif
