/* Splitting an instance's output stream into console lines. */
#include "agent/agent_lines.h"

#include <string.h>

void agent_lines_init(agent_lines_t *lines, size_t max_line, const char *const *secrets)
{
    buf_t empty = BUF_INIT;

    lines->pending = empty;
    lines->max_line = max_line > 16 ? max_line : 16;
    lines->secrets = secrets;
}

void agent_lines_free(agent_lines_t *lines)
{
    buf_free(&lines->pending);
}

static void agent_lines_emit(const char *line, size_t len, agent_line_fn fn, void *ctx)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    fn(ctx, line, len);
}

/* Move a cut of pending back to the start of any secret that would straddle
 * it, including one whose tail has not arrived yet. Masking then finds the
 * whole secret in the next piece. */
static size_t agent_lines_cut_before_secrets(const agent_lines_t *lines, size_t cut)
{
    const char *data = lines->pending.data;
    size_t len = lines->pending.len;

    for (size_t i = 0; lines->secrets != NULL && lines->secrets[i] != NULL; i++) {
        const char *secret = lines->secrets[i];
        size_t secret_len = strlen(secret);
        size_t first = cut >= secret_len ? cut - secret_len + 1 : 1;

        for (size_t start = first; start < cut && secret_len > 1; start++) {
            size_t avail = len - start < secret_len ? len - start : secret_len;
            if (memcmp(data + start, secret, avail) == 0) {
                cut = start;
                break;
            }
        }
    }
    return cut;
}

/* Return the cut point for a line that has grown past max_line, which is
 * never inside a secret or a UTF-8 sequence. */
static size_t agent_lines_cut_point(const agent_lines_t *lines)
{
    const unsigned char *data = (const unsigned char *)lines->pending.data;
    size_t cut = agent_lines_cut_before_secrets(lines, lines->max_line);
    size_t limit = cut > 3 ? 3 : cut - 1;

    for (size_t back = 0; back < limit && (data[cut] & 0xC0) == 0x80; back++)
        cut--;
    return cut;
}

int agent_lines_feed(agent_lines_t *lines, const char *data, size_t len, agent_line_fn fn,
                     void *ctx)
{
    buf_t *pending = &lines->pending;
    size_t scanned = pending->len;

    if (buf_append(pending, data, len) != 0) {
        buf_reset(pending);
        return -1;
    }

    for (;;) {
        const char *newline = memchr(pending->data + scanned, '\n', pending->len - scanned);
        size_t line_len;

        if (newline != NULL && (size_t)(newline - pending->data) <= lines->max_line) {
            line_len = (size_t)(newline - pending->data);
            agent_lines_emit(pending->data, line_len, fn, ctx);
            buf_consume(pending, line_len + 1);
        } else if (pending->len > lines->max_line) {
            line_len = agent_lines_cut_point(lines);
            fn(ctx, pending->data, line_len);
            buf_consume(pending, line_len);
        } else {
            break;
        }
        scanned = 0;
    }
    return 0;
}

void agent_lines_flush(agent_lines_t *lines, agent_line_fn fn, void *ctx)
{
    if (lines->pending.len > 0)
        agent_lines_emit(lines->pending.data, lines->pending.len, fn, ctx);
    buf_reset(&lines->pending);
}

/* Length of the valid UTF-8 sequence at text, or 0 when it is invalid. */
static size_t agent_utf8_sequence(const unsigned char *text, size_t len)
{
    unsigned char c = text[0];
    size_t need;
    unsigned min_second = 0x80, max_second = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4;
    else
        return 0;

    /* Reject overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
    if (c == 0xE0)
        min_second = 0xA0;
    else if (c == 0xED)
        max_second = 0x9F;
    else if (c == 0xF0)
        min_second = 0x90;
    else if (c == 0xF4)
        max_second = 0x8F;

    if (len < need || text[1] < min_second || text[1] > max_second)
        return 0;
    for (size_t i = 2; i < need; i++) {
        if ((text[i] & 0xC0) != 0x80)
            return 0;
    }
    return need;
}

int agent_utf8_sanitize(const char *text, size_t len, buf_t *out)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *bytes = (const unsigned char *)text;
    size_t i = 0;

    if (buf_reserve(out, len) != 0)
        return -1;
    while (i < len) {
        size_t run = agent_utf8_sequence(bytes + i, len - i);
        int rc;

        /* NUL would end the text early in C strings on the server side. */
        if (run == 0 || bytes[i] == 0) {
            rc = buf_append(out, replacement, sizeof(replacement) - 1);
            run = 1;
        } else {
            rc = buf_append(out, text + i, run);
        }
        if (rc != 0)
            return -1;
        i += run;
    }
    return 0;
}
