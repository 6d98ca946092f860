/* Unit tests for splitting instance output into masked console lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent_lines.h"
#include "util/mask.h"

#define MAX_LINES 64

typedef struct {
    mask_set_t *mask;
    char *lines[MAX_LINES];
    size_t count;
} collected_t;

static void collect_line(void *ctx, const char *line, size_t len)
{
    collected_t *c = ctx;
    buf_t out = BUF_INIT;

    assert_true(c->count < MAX_LINES);
    if (c->mask != NULL)
        assert_int_equal(mask_apply(c->mask, line, len, &out), 0);
    else
        assert_int_equal(buf_append(&out, line, len), 0);
    c->lines[c->count++] = out.data != NULL ? buf_steal(&out) : strdup("");
}

static void collected_free(collected_t *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->lines[i]);
    if (c->mask != NULL)
        mask_set_free(c->mask);
}

/* Feed text in pieces of step bytes. */
static void feed_in_steps(agent_lines_t *lines, const char *text, size_t step, collected_t *c)
{
    size_t len = strlen(text);

    for (size_t at = 0; at < len; at += step) {
        size_t n = len - at < step ? len - at : step;
        assert_int_equal(agent_lines_feed(lines, text + at, n, collect_line, c), 0);
    }
}

static void lines_split_across_reads(void **state)
{
    agent_lines_t lines;
    collected_t c = {0};

    (void)state;
    agent_lines_init(&lines, 1024, NULL);
    feed_in_steps(&lines, "first line\nsecond\r\n\nthird", 3, &c);
    assert_int_equal(c.count, 3);
    assert_string_equal(c.lines[0], "first line");
    assert_string_equal(c.lines[1], "second");
    assert_string_equal(c.lines[2], "");

    agent_lines_flush(&lines, collect_line, &c);
    assert_int_equal(c.count, 4);
    assert_string_equal(c.lines[3], "third");
    agent_lines_free(&lines);
    collected_free(&c);
}

static void lines_mask_secret_split_by_reads(void **state)
{
    static const char *const secrets[] = {"s3cr3t-value", NULL};
    agent_lines_t lines;
    collected_t c = {0};

    (void)state;
    c.mask = mask_set_new();
    assert_int_equal(mask_set_add(c.mask, secrets[0]), 0);
    agent_lines_init(&lines, 1024, secrets);

    /* One byte per read: the secret never arrives in one read. */
    feed_in_steps(&lines, "key=s3cr3t-value end\nagain s3cr3t-value, s3cr3t-value\n", 1, &c);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.lines[0], "key=**** end");
    assert_string_equal(c.lines[1], "again ****, ****");
    agent_lines_free(&lines);
    collected_free(&c);
}

static void lines_long_line_cut(void **state)
{
    agent_lines_t lines;
    collected_t c = {0};
    char text[100];

    (void)state;
    memset(text, 'a', 40);
    text[40] = '\n';
    text[41] = '\0';
    agent_lines_init(&lines, 16, NULL);
    feed_in_steps(&lines, text, 7, &c);
    assert_int_equal(c.count, 3);
    assert_int_equal(strlen(c.lines[0]), 16);
    assert_int_equal(strlen(c.lines[1]), 16);
    assert_int_equal(strlen(c.lines[2]), 8);
    agent_lines_free(&lines);
    collected_free(&c);
}

static void lines_cut_keeps_secret_whole(void **state)
{
    static const char *const secrets[] = {"TOPSECRET", NULL};
    agent_lines_t lines;
    collected_t c = {0};

    (void)state;
    c.mask = mask_set_new();
    assert_int_equal(mask_set_add(c.mask, secrets[0]), 0);
    agent_lines_init(&lines, 16, secrets);

    /* The 16-byte cut would fall inside the secret, which starts at 12. */
    feed_in_steps(&lines, "0123456789abTOPSECRETxyz\n", 5, &c);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.lines[0], "0123456789ab");
    assert_string_equal(c.lines[1], "****xyz");
    for (size_t i = 0; i < c.count; i++)
        assert_null(strstr(c.lines[i], "TOPS"));
    agent_lines_free(&lines);
    collected_free(&c);
}

static void lines_cut_keeps_utf8_whole(void **state)
{
    agent_lines_t lines;
    collected_t c = {0};

    (void)state;
    agent_lines_init(&lines, 16, NULL);
    /* 15 ASCII bytes, then "é" (2 bytes) straddles the 16-byte cut. */
    feed_in_steps(&lines, "abcdefghijklmno\xC3\xA9z\n", 4, &c);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.lines[0], "abcdefghijklmno");
    assert_string_equal(c.lines[1], "\xC3\xA9z");
    agent_lines_free(&lines);
    collected_free(&c);
}

static void utf8_sanitize_replaces_invalid(void **state)
{
    buf_t out = BUF_INIT;
    const char text[] = "ok \xC3\xA9 bad \xFF\xC3 end \xED\xA0\x80";

    (void)state;
    assert_int_equal(agent_utf8_sanitize(text, sizeof(text) - 1, &out), 0);
    assert_string_equal(out.data, "ok \xC3\xA9 bad \xEF\xBF\xBD\xEF\xBF\xBD end "
                                  "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_split_across_reads),
        cmocka_unit_test(lines_mask_secret_split_by_reads),
        cmocka_unit_test(lines_long_line_cut),
        cmocka_unit_test(lines_cut_keeps_secret_whole),
        cmocka_unit_test(lines_cut_keeps_utf8_whole),
        cmocka_unit_test(utf8_sanitize_replaces_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
