/* Simulated embeddings: validation, hash-derived unit vectors, base64. */
#include "sim/sim_embed.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_text.h"

static int sim_embed_parse_input(json_t *root, sim_embed_request_t *out, sim_error_t *err)
{
    json_t *input = json_object_get(root, "input");
    json_t *item;
    size_t i;

    if (json_is_string(input)) {
        out->inputs = json_array();
        if (out->inputs == NULL || json_array_append(out->inputs, input) != 0) {
            sim_error_set(err, 500, "internal_error", NULL, "out of memory");
            return -1;
        }
    } else if (json_is_array(input) && json_array_size(input) > 0) {
        out->inputs = json_incref(input);
    } else {
        sim_error_set(err, 400, "invalid_value", "input",
                      "input must be a string or a non-empty array of strings, got %s",
                      input ? (json_is_array(input) ? "an empty array" : sim_json_type_name(input))
                            : "nothing");
        return -1;
    }

    json_array_foreach(out->inputs, i, item) {
        int words;

        if (!json_is_string(item)) {
            sim_error_set(err, 400, "invalid_type", "input",
                          "input[%zu] must be a string, got %s", i, sim_json_type_name(item));
            return -1;
        }
        words = sim_text_count_words(json_string_value(item), json_string_length(item));
        out->prompt_tokens += words > 0 ? words : 1;
    }
    return 0;
}

static int sim_embed_parse_format(json_t *root, sim_embed_request_t *out, sim_error_t *err)
{
    json_t *format = json_object_get(root, "encoding_format");

    if (format == NULL || json_is_null(format))
        return 0;
    if (json_is_string(format) && strcmp(json_string_value(format), "float") == 0)
        return 0;
    if (json_is_string(format) && strcmp(json_string_value(format), "base64") == 0) {
        out->base64 = 1;
        return 0;
    }
    sim_error_set(err, 400, "invalid_value", "encoding_format",
                  "encoding_format must be \"float\" or \"base64\"");
    return -1;
}

static int sim_embed_parse_dimensions(json_t *root, int default_dimensions,
                                      sim_embed_request_t *out, sim_error_t *err)
{
    json_t *dims = json_object_get(root, "dimensions");

    out->dimensions = default_dimensions;
    if (dims == NULL || json_is_null(dims))
        return 0;
    if (!json_is_integer(dims) || json_integer_value(dims) < 1 ||
        json_integer_value(dims) > SIM_MAX_DIMENSIONS) {
        sim_error_set(err, 400, "invalid_value", "dimensions",
                      "dimensions must be an integer from 1 to %d, got %s", SIM_MAX_DIMENSIONS,
                      json_is_integer(dims) ? "a value out of range" : sim_json_type_name(dims));
        return -1;
    }
    out->dimensions = (int)json_integer_value(dims);
    return 0;
}

/* NIM embedding options: checked so a typo is reported, otherwise unused. */
static int sim_embed_parse_choice(json_t *root, const char *name, const char *const *allowed,
                                  sim_error_t *err)
{
    json_t *value = json_object_get(root, name);

    if (value == NULL || json_is_null(value))
        return 0;
    for (size_t i = 0; allowed[i] != NULL && json_is_string(value); i++) {
        if (strcmp(json_string_value(value), allowed[i]) == 0)
            return 0;
    }
    sim_error_set(err, 400, "invalid_value", name, "%s must be one of %s%s%s%s%s", name,
                  allowed[0], allowed[1] ? ", " : "", allowed[1] ? allowed[1] : "",
                  allowed[1] && allowed[2] ? ", " : "",
                  allowed[1] && allowed[2] ? allowed[2] : "");
    return -1;
}

int sim_embed_request_parse(const char *body, size_t len, const char *model,
                            int default_dimensions, sim_embed_request_t *out,
                            sim_error_t *err)
{
    static const char *const input_types[] = {"query", "passage", NULL};
    static const char *const truncates[] = {"NONE", "START", "END", NULL};

    memset(out, 0, sizeof(*out));

    out->root = sim_request_load(body, len, err);
    if (out->root == NULL)
        goto fail;

    if (sim_request_check_model(out->root, model, err) != 0)
        goto fail;
    if (sim_embed_parse_input(out->root, out, err) != 0)
        goto fail;
    if (sim_embed_parse_format(out->root, out, err) != 0)
        goto fail;
    if (sim_embed_parse_dimensions(out->root, default_dimensions, out, err) != 0)
        goto fail;
    if (sim_embed_parse_choice(out->root, "input_type", input_types, err) != 0)
        goto fail;
    if (sim_embed_parse_choice(out->root, "truncate", truncates, err) != 0)
        goto fail;
    return 0;

fail:
    sim_embed_request_free(out);
    return -1;
}

void sim_embed_request_free(sim_embed_request_t *req)
{
    json_decref(req->inputs);
    json_decref(req->root);
    req->root = NULL;
    req->inputs = NULL;
}

/* Component i of the vector before scaling: uniform in [-1, 1). */
static double sim_embed_component(uint64_t seed, int i)
{
    uint64_t bits = sim_text_mix(seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL);

    return (double)(bits >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

void sim_embed_vector(const char *text, size_t len, int dimensions, float *out)
{
    uint64_t seed = sim_text_hash(SIM_HASH_INIT, text, len);
    double norm = 0.0;

    /* Two passes over the components instead of a scratch array, so the
     * vector needs no allocation. */
    for (int i = 0; i < dimensions; i++) {
        double value = sim_embed_component(seed, i);

        norm += value * value;
    }
    norm = sqrt(norm);

    for (int i = 0; i < dimensions; i++) {
        if (norm > 0.0)
            out[i] = (float)(sim_embed_component(seed, i) / norm);
        else
            out[i] = i == 0 ? 1.0f : 0.0f;
    }
}

int sim_embed_base64(const void *data, size_t len, buf_t *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;

    if (buf_reserve(out, (len + 2) / 3 * 4) != 0)
        return -1;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t group = (uint32_t)in[i] << 16;
        char quad[4];

        if (i + 1 < len)
            group |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            group |= in[i + 2];

        quad[0] = alphabet[(group >> 18) & 63];
        quad[1] = alphabet[(group >> 12) & 63];
        quad[2] = i + 1 < len ? alphabet[(group >> 6) & 63] : '=';
        quad[3] = i + 2 < len ? alphabet[group & 63] : '=';
        buf_append(out, quad, sizeof(quad));
    }
    return 0;
}

/* Build the OpenAI "embedding" value for vector: an array of numbers, or
 * a base64 string of little-endian float32 values. */
static json_t *sim_embed_value(const float *vector, int dimensions, int base64)
{
    json_t *value;

    if (base64) {
        buf_t bytes = BUF_INIT;
        buf_t text = BUF_INIT;

        for (int i = 0; i < dimensions; i++) {
            uint32_t bits;
            unsigned char le[4];

            memcpy(&bits, &vector[i], sizeof(bits));
            for (int b = 0; b < 4; b++)
                le[b] = (unsigned char)(bits >> (8 * b));
            if (buf_append(&bytes, le, sizeof(le)) != 0)
                break;
        }
        value = NULL;
        if (bytes.len == (size_t)dimensions * 4 && sim_embed_base64(bytes.data, bytes.len, &text) == 0)
            value = json_stringn(text.data ? text.data : "", text.len);
        buf_free(&bytes);
        buf_free(&text);
        return value;
    }

    value = json_array();
    for (int i = 0; value != NULL && i < dimensions; i++) {
        if (json_array_append_new(value, json_real(vector[i])) != 0) {
            json_decref(value);
            value = NULL;
        }
    }
    return value;
}

int sim_embed_response(const sim_embed_request_t *req, const char *model, buf_t *out)
{
    float *vector = calloc((size_t)req->dimensions, sizeof(float));
    json_t *data = json_array();
    json_t *root = NULL;
    json_t *item;
    char *text = NULL;
    size_t i;
    int rc = -1;

    if (vector == NULL || data == NULL)
        goto out;

    json_array_foreach(req->inputs, i, item) {
        json_t *value;

        sim_embed_vector(json_string_value(item), json_string_length(item), req->dimensions,
                         vector);
        value = sim_embed_value(vector, req->dimensions, req->base64);
        if (value == NULL)
            goto out;
        if (json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding",
                                                  "index", (json_int_t)i, "embedding", value)) != 0)
            goto out;
    }

    root = json_pack("{s:s, s:O, s:s, s:{s:i, s:i}}", "object", "list", "data", data, "model",
                     model, "usage", "prompt_tokens", req->prompt_tokens, "total_tokens",
                     req->prompt_tokens);
    if (root == NULL)
        goto out;
    text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (text == NULL)
        goto out;
    rc = buf_append_str(out, text);

out:
    free(text);
    json_decref(root);
    json_decref(data);
    free(vector);
    return rc;
}
