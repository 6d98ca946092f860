/* Unit tests for secret masking of console log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/mask.h"

/* Mask text with the given NULL-terminated secrets and compare. */
static void check_mask(const char *const *secrets, const char *text, const char *expected)
{
    mask_set_t *set = mask_set_new();
    buf_t out = BUF_INIT;

    assert_non_null(set);
    for (size_t i = 0; secrets[i] != NULL; i++)
        assert_int_equal(mask_set_add(set, secrets[i]), 0);

    assert_int_equal(mask_apply(set, text, strlen(text), &out), 0);
    assert_string_equal(out.data ? out.data : "", expected);

    buf_free(&out);
    mask_set_free(set);
}

static void mask_secret_in_middle(void **state)
{
    (void)state;
    const char *secrets[] = {"s3cr3t-value", NULL};
    check_mask(secrets, "key is s3cr3t-value here", "key is **** here");
}

static void mask_secret_at_start(void **state)
{
    (void)state;
    const char *secrets[] = {"nvapi-abcdef", NULL};
    check_mask(secrets, "nvapi-abcdef was used", "**** was used");
}

static void mask_secret_at_end(void **state)
{
    (void)state;
    const char *secrets[] = {"nvapi-abcdef", NULL};
    check_mask(secrets, "using nvapi-abcdef", "using ****");
}

static void mask_whole_text(void **state)
{
    (void)state;
    const char *secrets[] = {"nvapi-abcdef", NULL};
    check_mask(secrets, "nvapi-abcdef", "****");
}

static void mask_repeated_secret(void **state)
{
    (void)state;
    const char *secrets[] = {"hunter22", NULL};
    check_mask(secrets, "hunter22 and hunter22 again", "**** and **** again");
}

static void mask_adjacent_repeats(void **state)
{
    (void)state;
    const char *secrets[] = {"abcd", NULL};
    check_mask(secrets, "abcdabcd", "********");
}

static void mask_longest_wins(void **state)
{
    (void)state;
    const char *secrets[] = {"token", "token-extended", NULL};
    check_mask(secrets, "x token-extended y", "x **** y");
}

static void mask_longest_wins_added_first(void **state)
{
    (void)state;
    const char *secrets[] = {"token-extended", "token", NULL};
    check_mask(secrets, "x token-extended y token z", "x **** y **** z");
}

static void mask_overlap_hides_tail(void **state)
{
    (void)state;
    /* "abcdef" starts first but "defghi" reaches further: neither may leak. */
    const char *secrets[] = {"abcdef", "defghi", NULL};
    check_mask(secrets, "<abcdefghi>", "<****>");
}

static void mask_nested_secret(void **state)
{
    (void)state;
    const char *secrets[] = {"inner", "outer-inner-outer", NULL};
    check_mask(secrets, "outer-inner-outer inner", "**** ****");
}

static void mask_split_prefix_kept(void **state)
{
    (void)state;
    /* Only part of the secret is present: nothing is a secret here. */
    const char *secrets[] = {"secretvalue", NULL};
    check_mask(secrets, "secretval", "secretval");
}

static void mask_split_suffix_kept(void **state)
{
    (void)state;
    const char *secrets[] = {"secretvalue", NULL};
    check_mask(secrets, "tvalue and secret", "tvalue and secret");
}

static void mask_short_values_ignored(void **state)
{
    (void)state;
    const char *secrets[] = {"abc", "", "1", NULL};
    check_mask(secrets, "abc 1 abcd", "abc 1 abcd");
}

static void mask_four_bytes_masked(void **state)
{
    (void)state;
    const char *secrets[] = {"abcd", NULL};
    check_mask(secrets, "xabcdx", "x****x");
}

static void mask_min_len_stated(void **state)
{
    (void)state;
    const char *secrets[] = {"abc", "wxyz", NULL};

    /* The header states the limit; below it a secret stays visible. */
    assert_int_equal(MASK_MIN_LEN, 4);
    check_mask(secrets, "abc wxyz", "abc ****");
}

static void mask_no_secrets(void **state)
{
    (void)state;
    const char *secrets[] = {NULL};
    check_mask(secrets, "plain text", "plain text");
}

static void mask_binary_text(void **state)
{
    (void)state;
    mask_set_t *set = mask_set_new();
    buf_t out = BUF_INIT;
    const char text[] = {'a', '\0', 'p', 'a', 's', 's', 'w', 'd', '\0', 'b'};

    assert_int_equal(mask_set_add(set, "passwd"), 0);
    assert_int_equal(mask_apply(set, text, sizeof(text), &out), 0);

    assert_int_equal(out.len, 8);
    assert_memory_equal(out.data, "a\0****\0b", 8);

    buf_free(&out);
    mask_set_free(set);
}

static void mask_appends_to_buffer(void **state)
{
    (void)state;
    mask_set_t *set = mask_set_new();
    buf_t out = BUF_INIT;

    assert_int_equal(mask_set_add(set, "secret1"), 0);
    assert_int_equal(buf_append_str(&out, "[x] "), 0);
    assert_int_equal(mask_apply(set, "a secret1", 9, &out), 0);
    assert_string_equal(out.data, "[x] a ****");

    buf_free(&out);
    mask_set_free(set);
}

static void mask_max_len_tracks_longest(void **state)
{
    (void)state;
    mask_set_t *set = mask_set_new();

    assert_int_equal(mask_set_max_len(set), 0);
    assert_int_equal(mask_set_add(set, "abcdef"), 0);
    assert_int_equal(mask_set_add(set, "abcdefghij"), 0);
    assert_int_equal(mask_set_add(set, "xyz"), 0);
    assert_int_equal(mask_set_max_len(set), 10);

    mask_set_free(set);
}

static void mask_duplicate_add(void **state)
{
    (void)state;
    const char *secrets[] = {"dupvalue", "dupvalue", NULL};
    check_mask(secrets, "a dupvalue b", "a **** b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mask_secret_in_middle),
        cmocka_unit_test(mask_secret_at_start),
        cmocka_unit_test(mask_secret_at_end),
        cmocka_unit_test(mask_whole_text),
        cmocka_unit_test(mask_repeated_secret),
        cmocka_unit_test(mask_adjacent_repeats),
        cmocka_unit_test(mask_longest_wins),
        cmocka_unit_test(mask_longest_wins_added_first),
        cmocka_unit_test(mask_overlap_hides_tail),
        cmocka_unit_test(mask_nested_secret),
        cmocka_unit_test(mask_split_prefix_kept),
        cmocka_unit_test(mask_split_suffix_kept),
        cmocka_unit_test(mask_short_values_ignored),
        cmocka_unit_test(mask_four_bytes_masked),
        cmocka_unit_test(mask_min_len_stated),
        cmocka_unit_test(mask_no_secrets),
        cmocka_unit_test(mask_binary_text),
        cmocka_unit_test(mask_appends_to_buffer),
        cmocka_unit_test(mask_max_len_tracks_longest),
        cmocka_unit_test(mask_duplicate_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
