/* Unit tests for the simulator's pseudo-text and word counting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_text.h"

static void hash_is_deterministic(void **state)
{
    (void)state;
    uint64_t a = sim_text_hash(SIM_HASH_INIT, "hello", 5);
    uint64_t b = sim_text_hash(SIM_HASH_INIT, "hello", 5);
    uint64_t c = sim_text_hash(SIM_HASH_INIT, "hellp", 5);

    assert_int_equal(a, b);
    assert_int_not_equal(a, c);
}

static void hash_chains_pieces(void **state)
{
    (void)state;
    uint64_t whole = sim_text_hash(SIM_HASH_INIT, "abcdef", 6);
    uint64_t parts = sim_text_hash(sim_text_hash(SIM_HASH_INIT, "abc", 3), "def", 3);

    assert_int_equal(whole, parts);
}

static void natural_length_in_range(void **state)
{
    (void)state;
    int seen_min = 100;
    int seen_max = 0;

    for (uint64_t seed = 0; seed < 2000; seed++) {
        int n = sim_text_natural_length(seed);

        assert_in_range(n, 24, 40);
        assert_int_equal(n, sim_text_natural_length(seed));
        seen_min = n < seen_min ? n : seen_min;
        seen_max = n > seen_max ? n : seen_max;
    }
    /* The length varies with the prompt, over the whole range. */
    assert_int_equal(seen_min, 24);
    assert_int_equal(seen_max, 40);
}

static void token_spacing_and_period(void **state)
{
    (void)state;
    buf_t out = BUF_INIT;

    assert_int_equal(sim_text_append_token(42, 0, 0, &out), 0);
    assert_true(out.len > 0);
    assert_int_not_equal(out.data[0], ' ');

    size_t first = out.len;
    assert_int_equal(sim_text_append_token(42, 1, 1, &out), 0);
    assert_int_equal(out.data[first], ' ');
    assert_int_equal(out.data[out.len - 1], '.');
    assert_int_equal(sim_text_count_words(out.data, out.len), 2);
    buf_free(&out);
}

static void tokens_same_for_same_seed(void **state)
{
    (void)state;
    buf_t a = BUF_INIT;
    buf_t b = BUF_INIT;
    buf_t c = BUF_INIT;

    for (int i = 0; i < 32; i++) {
        assert_int_equal(sim_text_append_token(7, i, 0, &a), 0);
        assert_int_equal(sim_text_append_token(7, i, 0, &b), 0);
        assert_int_equal(sim_text_append_token(8, i, 0, &c), 0);
    }
    assert_string_equal(a.data, b.data);
    assert_string_not_equal(a.data, c.data);
    assert_int_equal(sim_text_count_words(a.data, a.len), 32);
    buf_free(&a);
    buf_free(&b);
    buf_free(&c);
}

static void count_words_cases(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int words;
    } cases[] = {
        {"", 0},
        {"   \t\n", 0},
        {"one", 1},
        {"  one  ", 1},
        {"one two", 2},
        {" hello  world\tand\nmore ", 4},
        {"a,b c", 2},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(sim_text_count_words(cases[i].text, strlen(cases[i].text)),
                         cases[i].words);
}

static void count_words_respects_length(void **state)
{
    (void)state;
    assert_int_equal(sim_text_count_words("one two three", 7), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_is_deterministic),
        cmocka_unit_test(hash_chains_pieces),
        cmocka_unit_test(natural_length_in_range),
        cmocka_unit_test(token_spacing_and_period),
        cmocka_unit_test(tokens_same_for_same_seed),
        cmocka_unit_test(count_words_cases),
        cmocka_unit_test(count_words_respects_length),
    };
    return cmocka_run_group_tests_name("sim_text", tests, NULL, NULL);
}
