/* Unit tests for token generation, hashing and random identifiers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "store/token.h"

static void token_has_prefix_and_length(void **state)
{
    char text[TOKEN_TEXT_LEN + 1];
    (void)state;

    assert_int_equal(token_generate(text, sizeof(text)), 0);
    assert_int_equal(strlen(text), TOKEN_TEXT_LEN);
    assert_memory_equal(text, "nd_", 3);
    assert_true(token_well_formed(text));
}

static void token_generate_small_buffer(void **state)
{
    char text[10];
    (void)state;

    assert_int_equal(token_generate(text, sizeof(text)), -1);
}

static void tokens_differ(void **state)
{
    char a[TOKEN_TEXT_LEN + 1], b[TOKEN_TEXT_LEN + 1];
    (void)state;

    assert_int_equal(token_generate(a, sizeof(a)), 0);
    assert_int_equal(token_generate(b, sizeof(b)), 0);
    assert_string_not_equal(a, b);
}

static void hash_known_vector(void **state)
{
    char hex[TOKEN_HASH_HEX_LEN + 1];
    (void)state;

    token_hash_hex("abc", hex, sizeof(hex));
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void well_formed_rejects_bad(void **state)
{
    (void)state;

    assert_false(token_well_formed(""));
    assert_false(token_well_formed("nd_short"));
    assert_false(token_well_formed("xx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_false(token_well_formed("nd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
    assert_true(token_well_formed("nd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_a"));
}

static void random_chars_use_alphabet(void **state)
{
    char id[13];
    (void)state;

    token_random_chars(id, 12, TOKEN_ALPHABET_HEX);
    assert_int_equal(strlen(id), 12);
    assert_int_equal(strspn(id, TOKEN_ALPHABET_HEX), 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_has_prefix_and_length),
        cmocka_unit_test(token_generate_small_buffer),
        cmocka_unit_test(tokens_differ),
        cmocka_unit_test(hash_known_vector),
        cmocka_unit_test(well_formed_rejects_bad),
        cmocka_unit_test(random_chars_use_alphabet),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
