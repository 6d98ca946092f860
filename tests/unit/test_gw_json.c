/* Tests of the no-allocation JSON scanner against jansson, the parser it
 * replaces on the hot path: the same usage, or the same refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gateway/gw_json.h"

/* What jansson reads: 1 with the counts, or 0. */
static int reference_usage(const char *text, size_t len, int64_t *prompt, int64_t *completion)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    const json_t *usage = json_object_get(root, "usage");
    int found = json_is_object(usage);

    if (found) {
        *prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
        *completion = json_integer_value(json_object_get(usage, "completion_tokens"));
    }
    json_decref(root);
    return found;
}

static void expect_same(const char *text, size_t len)
{
    int64_t p1 = -7, c1 = -7, p2 = -7, c2 = -7;
    int want = reference_usage(text, len, &p1, &c1);
    int got = gw_json_usage(text, len, &p2, &c2);

    if (got != want)
        fail_msg("usage of %.*s: scanner %d, jansson %d", (int)len, text, got, want);
    if (want) {
        assert_int_equal(p2, p1);
        assert_int_equal(c2, c1);
    }
}

static void json_usage_cases(void **state)
{
    static const char *const cases[] = {
        "{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}",
        " \r\n{ \"id\" : \"x\", \"usage\" : { \"completion_tokens\" : 7 , \"prompt_tokens\" : 12 } }\n",
        ("{\"choices\":[{\"message\":{\"content\":\"usage: \\\"usage\\\"\"}}],"
         "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":3,\"total_tokens\":4}}"),
        "{\"usage\":{\"prompt_tokens\":1},\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":8}}",
        "{\"usage\":{\"prompt_tokens\":1},\"usage\":null}",
        "{\"usage\":null}",
        "{\"usage\":[1,2]}",
        "{\"usage\":{}}",
        "{\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":-3}}",
        "{\"usage\":{\"prompt_tokens\":1e3,\"completion_tokens\":true}}",
        "{\"us\\u0061ge\":{\"prompt_tokens\":4,\"completion\\u005ftokens\":5}}",
        "{\"nested\":{\"usage\":{\"prompt_tokens\":1}}}",
        "{\"usage\":{\"prompt_tokens\":9223372036854775807,\"completion_tokens\":-9223372036854775808}}",
        "{\"usage\":{\"prompt_tokens\":9223372036854775808}}",
        "{\"usage\":{\"prompt_tokens\":5}} x",
        "{\"usage\":{\"prompt_tokens\":5}}}",
        "{\"usage\":{\"prompt_tokens\":05}}",
        "{\"usage\":{\"prompt_tokens\":-}}",
        "{\"usage\":{\"prompt_tokens\":1.}}",
        "{\"usage\":{\"prompt_tokens\":1,}}",
        "{\"a\":\"\\ud83d\\ude00\",\"usage\":{\"prompt_tokens\":2}}",
        "{\"a\":\"\\ud83d\",\"usage\":{\"prompt_tokens\":2}}",
        "{\"a\":\"\\ude00\",\"usage\":{\"prompt_tokens\":2}}",
        "{\"a\":\"\\u0000\",\"usage\":{\"prompt_tokens\":2}}",
        "{\"a\":\"\\x\",\"usage\":{\"prompt_tokens\":2}}",
        "{\"a\":\"tab\there\",\"usage\":{\"prompt_tokens\":2}}",
        "{\"a\":[true,false,null,[],{},\"\",0,-0,1.25e-3],\"usage\":{\"prompt_tokens\":2}}",
        "{\"a\":tru,\"usage\":{\"prompt_tokens\":2}}",
        "[{\"usage\":{\"prompt_tokens\":2}}]",
        "\"usage\"",
        "",
        "{",
        "{\"usage\":{\"prompt_tokens\":2}",
        "{\"usage\" {\"prompt_tokens\":2}}",
        "{usage:{\"prompt_tokens\":2}}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_same(cases[i], strlen(cases[i]));
}

/* Nesting within jansson's depth limit reads the same; past it both give up. */
static void json_usage_deep_nesting(void **state)
{
    static char text[16384];

    (void)state;
    for (int depth = 100; depth <= 4000; depth *= 2) {
        size_t n = (size_t)snprintf(text, sizeof(text), "{\"usage\":{\"prompt_tokens\":1},\"x\":");
        for (int i = 0; i < depth; i++)
            text[n++] = '[';
        for (int i = 0; i < depth; i++)
            text[n++] = ']';
        text[n++] = '}';
        expect_same(text, n);
    }
}

/* Byte-level mutations of a real completion body must never crash the
 * scanner, and must agree with jansson whenever the bytes stay ASCII. */
static void json_usage_mutations(void **state)
{
    static const char base[] =
        "{\"id\":\"cmpl-1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
        "{\"role\":\"assistant\",\"content\":\"Hi \\\"there\\\" \\u00e9\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}";
    static const char alphabet[] = "{}[]\":,0123456789-.eE \\u\"truefalsenull";
    char text[sizeof(base)];

    (void)state;
    srand(1234);
    for (int round = 0; round < 20000; round++) {
        memcpy(text, base, sizeof(base));
        size_t len = sizeof(base) - 1;
        int edits = 1 + rand() % 3;
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)rand() % len;
            switch (rand() % 3) {
            case 0:
                text[at] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
                break;
            case 1:
                memmove(text + at, text + at + 1, len - at - 1);
                len--;
                break;
            default:
                len = at;
                break;
            }
            if (len == 0)
                break;
        }
        expect_same(text, len);
    }
}

static int reference_nonempty(const json_t *value)
{
    return json_is_string(value) && json_string_length(value) > 0;
}

/* What jansson reads from a streamed chunk, as the gateway read it before. */
static int reference_chunk(const char *text, size_t len, gw_json_chunk_t *out)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    const json_t *choice;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(root)) {
        json_decref(root);
        return 0;
    }
    json_array_foreach(json_object_get(root, "choices"), i, choice) {
        if (reference_nonempty(json_object_get(json_object_get(choice, "delta"), "content")) ||
            reference_nonempty(json_object_get(choice, "text")))
            out->has_content = 1;
    }
    const json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage)) {
        out->has_usage = 1;
        out->prompt_tokens = json_integer_value(json_object_get(usage, "prompt_tokens"));
        out->completion_tokens = json_integer_value(json_object_get(usage, "completion_tokens"));
    }
    const json_t *choices = json_object_get(root, "choices");
    out->choices_empty = json_is_array(choices) && json_array_size(choices) == 0;
    json_decref(root);
    return 1;
}

static void expect_same_chunk(const char *text, size_t len)
{
    gw_json_chunk_t want, got;
    int want_rc = reference_chunk(text, len, &want);
    int got_rc = gw_json_chunk(text, len, &got);

    if (got_rc != want_rc)
        fail_msg("chunk %.*s: scanner %d, jansson %d", (int)len, text, got_rc, want_rc);
    if (!want_rc)
        return;
    if (got.has_content != want.has_content || got.has_usage != want.has_usage ||
        got.choices_empty != want.choices_empty)
        fail_msg("chunk %.*s: content %d/%d, usage %d/%d, choices empty %d/%d", (int)len, text,
                 got.has_content, want.has_content, got.has_usage, want.has_usage,
                 got.choices_empty, want.choices_empty);
    assert_int_equal(got.prompt_tokens, want.prompt_tokens);
    assert_int_equal(got.completion_tokens, want.completion_tokens);
}

static void json_chunk_cases(void **state)
{
    static const char *const cases[] = {
        "{\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"\"}}]}",
        "{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":null}}],\"usage\":null}",
        "{\"choices\":[{\"text\":\"x\"}]}",
        "{\"choices\":[{\"text\":\"\"},{\"delta\":{\"content\":\"\\u00e9\"}}]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3}}",
        "{\"choices\":[1,\"a\",null],\"usage\":{}}",
        "{\"choices\":{\"delta\":{\"content\":\"x\"}}}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"choices\":[]}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\",\"content\":\"\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"\"},\"delta\":{\"content\":\"y\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":[\"x\"]},\"text\":1}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]",
        "[]",
        "",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_same_chunk(cases[i], strlen(cases[i]));
}

static void json_chunk_mutations(void **state)
{
    static const char base[] =
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w\\n\"},"
        "\"text\":\"\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}";
    static const char alphabet[] = "{}[]\":,01-. \\\"ntextdeltacontentchoices";
    char text[sizeof(base)];

    (void)state;
    srand(99);
    for (int round = 0; round < 20000; round++) {
        memcpy(text, base, sizeof(base));
        size_t len = sizeof(base) - 1;
        int edits = 1 + rand() % 3;
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = (size_t)rand() % len;
            if (rand() % 2) {
                text[at] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
            } else {
                memmove(text + at, text + at + 1, len - at - 1);
                len--;
            }
        }
        expect_same_chunk(text, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_usage_cases),
        cmocka_unit_test(json_usage_deep_nesting),
        cmocka_unit_test(json_usage_mutations),
        cmocka_unit_test(json_chunk_cases),
        cmocka_unit_test(json_chunk_mutations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
