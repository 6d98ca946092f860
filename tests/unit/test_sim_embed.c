/* Unit tests for the simulator's embeddings: validation, unit vectors and
 * the base64 encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <math.h>

#include <cmocka.h>

#include "sim/sim_embed.h"

#define MODEL "nimdeck/sim-llm"

static double vector_norm(const float *v, int n)
{
    double sum = 0.0;

    for (int i = 0; i < n; i++)
        sum += (double)v[i] * v[i];
    return sqrt(sum);
}

static void vectors_have_unit_length(void **state)
{
    (void)state;
    static const int dims[] = {1, 2, 16, 1024};
    float v[1024];

    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
        sim_embed_vector("some text", 9, dims[i], v);
        assert_true(fabs(vector_norm(v, dims[i]) - 1.0) < 1e-5);
    }
    sim_embed_vector("", 0, 16, v);
    assert_true(fabs(vector_norm(v, 16) - 1.0) < 1e-5);
}

static void vectors_are_deterministic(void **state)
{
    (void)state;
    float a[16];
    float b[16];
    float c[16];

    sim_embed_vector("hello", 5, 16, a);
    sim_embed_vector("hello", 5, 16, b);
    sim_embed_vector("hellp", 5, 16, c);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));
}

static void base64_known_values(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},
        {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"foobar", "Zm9vYmFy"},
    };
    buf_t out = BUF_INIT;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&out);
        assert_int_equal(sim_embed_base64(cases[i].in, strlen(cases[i].in), &out), 0);
        assert_int_equal(out.len, strlen(cases[i].out));
        if (out.len > 0)
            assert_string_equal(out.data, cases[i].out);
    }
    buf_free(&out);
}

static int parse(const char *body, sim_embed_request_t *req, sim_error_t *err)
{
    return sim_embed_request_parse(body, strlen(body), MODEL, 16, req, err);
}

static void expect_error(const char *body, int status, const char *param)
{
    sim_embed_request_t req;
    sim_error_t err;

    assert_int_equal(parse(body, &req, &err), -1);
    assert_int_equal(err.status, status);
    assert_string_equal(err.param, param);
    assert_null(req.root);
}

static void request_forms(void **state)
{
    (void)state;
    sim_embed_request_t req;
    sim_error_t err;

    assert_int_equal(parse("{\"input\":\"one two three\"}", &req, &err), 0);
    assert_int_equal(json_array_size(req.inputs), 1);
    assert_int_equal(req.prompt_tokens, 3);
    assert_int_equal(req.dimensions, 16);
    assert_int_equal(req.base64, 0);
    sim_embed_request_free(&req);

    assert_int_equal(parse("{\"input\":[\"a b\",\"\"],\"dimensions\":8,\"encoding_format\":"
                           "\"base64\",\"input_type\":\"query\",\"truncate\":\"END\",\"model\":\"" MODEL
                           "\"}",
                           &req, &err),
                     0);
    assert_int_equal(json_array_size(req.inputs), 2);
    /* An empty input still counts one token. */
    assert_int_equal(req.prompt_tokens, 3);
    assert_int_equal(req.dimensions, 8);
    assert_int_equal(req.base64, 1);
    sim_embed_request_free(&req);
}

static void request_rejected(void **state)
{
    (void)state;
    expect_error("{}", 400, "input");
    expect_error("{\"input\":[]}", 400, "input");
    expect_error("{\"input\":5}", 400, "input");
    expect_error("{\"input\":[\"a\",7]}", 400, "input");
    expect_error("{\"input\":\"a\",\"encoding_format\":\"int8\"}", 400, "encoding_format");
    expect_error("{\"input\":\"a\",\"dimensions\":0}", 400, "dimensions");
    expect_error("{\"input\":\"a\",\"dimensions\":\"8\"}", 400, "dimensions");
    expect_error("{\"input\":\"a\",\"input_type\":\"document\"}", 400, "input_type");
    expect_error("{\"input\":\"a\",\"truncate\":\"MIDDLE\"}", 400, "truncate");
    expect_error("{\"input\":\"a\",\"model\":\"other\"}", 404, "model");
    expect_error("nope", 400, "");
}

static void response_float_vectors(void **state)
{
    (void)state;
    sim_embed_request_t req;
    sim_error_t err;
    buf_t out = BUF_INIT;
    json_error_t jerr;

    assert_int_equal(parse("{\"input\":[\"x\",\"y z\"],\"dimensions\":5}", &req, &err), 0);
    assert_int_equal(sim_embed_response(&req, MODEL, &out), 0);
    json_t *root = json_loads(out.data, 0, &jerr);
    assert_non_null(root);

    json_t *data = json_object_get(root, "data");
    assert_int_equal(json_array_size(data), 2);
    json_t *second = json_array_get(data, 1);
    assert_int_equal(json_integer_value(json_object_get(second, "index")), 1);
    json_t *embedding = json_object_get(second, "embedding");
    assert_int_equal(json_array_size(embedding), 5);

    float expected[5];
    sim_embed_vector("y z", 3, 5, expected);
    for (size_t i = 0; i < 5; i++)
        assert_true(fabs(json_number_value(json_array_get(embedding, i)) - expected[i]) < 1e-6);

    json_t *usage = json_object_get(root, "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), 3);
    assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), 3);
    json_decref(root);
    buf_free(&out);
    sim_embed_request_free(&req);
}

static void response_base64_decodes(void **state)
{
    (void)state;
    sim_embed_request_t req;
    sim_error_t err;
    buf_t out = BUF_INIT;
    buf_t expected = BUF_INIT;
    json_error_t jerr;
    float vector[4];
    unsigned char bytes[16];

    assert_int_equal(parse("{\"input\":\"x\",\"dimensions\":4,\"encoding_format\":\"base64\"}",
                           &req, &err),
                     0);
    assert_int_equal(sim_embed_response(&req, MODEL, &out), 0);
    json_t *root = json_loads(out.data, 0, &jerr);
    assert_non_null(root);

    /* Little-endian float32 values, as OpenAI clients decode them. */
    sim_embed_vector("x", 1, 4, vector);
    for (int i = 0; i < 4; i++) {
        uint32_t bits;

        memcpy(&bits, &vector[i], sizeof(bits));
        for (int b = 0; b < 4; b++)
            bytes[i * 4 + b] = (unsigned char)(bits >> (8 * b));
    }
    assert_int_equal(sim_embed_base64(bytes, sizeof(bytes), &expected), 0);

    json_t *embedding = json_object_get(json_array_get(json_object_get(root, "data"), 0),
                                        "embedding");
    assert_true(json_is_string(embedding));
    assert_string_equal(json_string_value(embedding), expected.data);
    json_decref(root);
    buf_free(&out);
    buf_free(&expected);
    sim_embed_request_free(&req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors_have_unit_length),
        cmocka_unit_test(vectors_are_deterministic),
        cmocka_unit_test(base64_known_values),
        cmocka_unit_test(request_forms),
        cmocka_unit_test(request_rejected),
        cmocka_unit_test(response_float_vectors),
        cmocka_unit_test(response_base64_decodes),
    };
    return cmocka_run_group_tests_name("sim_embed", tests, NULL, NULL);
}
