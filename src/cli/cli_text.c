/* Server text made safe for a terminal: control characters in log lines,
 * reasons and messages become visible escapes instead of terminal commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when p does not start
 * one: overlong forms, surrogates and code points above U+10FFFF are invalid. */
static size_t cli_utf8_length(const unsigned char *p)
{
    unsigned char lead = p[0];
    unsigned char low = 0x80, high = 0xbf;
    size_t length;

    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        length = 2;
    else if (lead >= 0xe0 && lead <= 0xef)
        length = 3;
    else if (lead >= 0xf0 && lead <= 0xf4)
        length = 4;
    else
        return 0;

    /* The second byte's range rules out the overlong and out-of-range forms. */
    if (lead == 0xe0)
        low = 0xa0;
    else if (lead == 0xed)
        high = 0x9f;
    else if (lead == 0xf0)
        low = 0x90;
    else if (lead == 0xf4)
        high = 0x8f;

    if (p[1] < low || p[1] > high)
        return 0;
    for (size_t i = 2; i < length; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return length;
}

int cli_append_visible(buf_t *out, const char *text, const char *newline)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)text;

    while (*p != '\0') {
        size_t length = cli_utf8_length(p);
        char escape[7] = {'\\', 'x', hex[*p >> 4], hex[*p & 15], '\0', '\0', '\0'};
        int rc;

        if (*p == '\n' && newline != NULL) {
            rc = buf_append_str(out, newline);
        } else if (length == 1 && *p != '\t' && (*p < 0x20 || *p == 0x7f)) {
            rc = buf_append(out, escape, 4);
        } else if (length == 2 && p[0] == 0xc2 && p[1] <= 0x9f) {
            /* U+0080-U+009F are the C1 controls; 0x9b alone is CSI to some terminals. */
            char c1[6] = {'\\', 'u', '0', '0', hex[p[1] >> 4], hex[p[1] & 15]};
            rc = buf_append(out, c1, sizeof(c1));
        } else if (length == 0) {
            rc = buf_append(out, escape, 4);
            length = 1;
        } else {
            rc = buf_append(out, p, length);
        }
        if (rc != 0)
            return -1;
        p += length;
    }
    return 0;
}

void cli_print_visible(FILE *out, const char *text, const char *newline)
{
    buf_t clean = BUF_INIT;

    if (text == NULL)
        return;
    if (cli_append_visible(&clean, text, newline) == 0 && clean.data != NULL)
        fputs(clean.data, out);
    else if (clean.data == NULL && text[0] != '\0')
        fputs("[text not shown: out of memory]", out);
    buf_free(&clean);
}

char *cli_json_text(const json_t *value, size_t flags)
{
    char *dumped = json_dumps(value, flags | JSON_ENCODE_ANY);
    buf_t clean = BUF_INIT;

    if (dumped == NULL)
        return NULL;

    /* json_dumps escapes bytes below 0x20 but writes DEL and the C1
     * controls raw. They occur only inside JSON strings, where \u007f and
     * \u0080-\u009f stand for the same characters, so the output stays
     * equal JSON. */
    for (const unsigned char *p = (const unsigned char *)dumped; *p != '\0'; p++) {
        char escape[7];
        int rc;

        if (*p == 0x7f) {
            snprintf(escape, sizeof(escape), "\\u007F");
            rc = buf_append(&clean, escape, 6);
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            snprintf(escape, sizeof(escape), "\\u%04X", p[1]);
            rc = buf_append(&clean, escape, 6);
            p++;
        } else {
            rc = buf_append(&clean, p, 1);
        }
        if (rc != 0) {
            buf_free(&clean);
            free(dumped);
            return NULL;
        }
    }
    free(dumped);
    return clean.data != NULL ? buf_steal(&clean) : strdup("");
}
