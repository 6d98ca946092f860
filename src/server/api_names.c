/* Name rules of users, projects, routes, queues and agents, the upstream
 * address check, and the quoting of client values in error messages. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "server/server_internal.h"

/* Maximum length in bytes of a value quoted in an error message. */
#define API_QUOTE_MAX 80

/* Decode one UTF-8 sequence at text[0..len). Returns its length and sets
 * *code, or 0 when the bytes there are not valid UTF-8 (a stray
 * continuation byte, a cut sequence, an overlong form or a surrogate). */
static size_t api_utf8_decode(const unsigned char *text, size_t len, unsigned long *code)
{
    static const unsigned long min_code[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t need;
    unsigned long value;

    if (text[0] >= 0xC2 && text[0] <= 0xDF) {
        need = 2;
        value = text[0] & 0x1F;
    } else if (text[0] >= 0xE0 && text[0] <= 0xEF) {
        need = 3;
        value = text[0] & 0x0F;
    } else if (text[0] >= 0xF0 && text[0] <= 0xF4) {
        need = 4;
        value = text[0] & 0x07;
    } else {
        return 0;
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((text[i] & 0xC0) != 0x80)
            return 0;
        value = (value << 6) | (text[i] & 0x3F);
    }
    if (value < min_code[need] || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
        return 0;
    *code = value;
    return need;
}

/* Write the escaped form of the character at text[0..len) into out (at
 * least 13 bytes) and return how many input bytes it took. */
static size_t api_escape_one(const unsigned char *text, size_t len, char *out, size_t size)
{
    unsigned long code;
    size_t taken;

    if (text[0] >= 0x20 && text[0] < 0x7f) {
        if (text[0] == '\\' || text[0] == '"')
            snprintf(out, size, "\\%c", text[0]);
        else
            snprintf(out, size, "%c", text[0]);
        return 1;
    }
    if (text[0] < 0x80) {
        snprintf(out, size, "\\u%04x", text[0]);
        return 1;
    }
    taken = api_utf8_decode(text, len, &code);
    if (taken == 0) {
        snprintf(out, size, "\\x%02x", text[0]);
        return 1;
    }
    if (code <= 0xFFFF)
        snprintf(out, size, "\\u%04lx", code);
    else
        snprintf(out, size, "\\u%04lx\\u%04lx", 0xD800 + ((code - 0x10000) >> 10),
                 0xDC00 + ((code - 0x10000) & 0x3FF));
    return taken;
}

void api_printable(const char *text, char *out, size_t size)
{
    const unsigned char *in = (const unsigned char *)text;
    size_t len = strlen(text), used = 0, i = 0;
    size_t room = size > 4 ? size - 4 : 0;   /* keeps space for "..." */
    char piece[16];

    if (size == 0)
        return;
    while (i < len) {
        size_t taken = api_escape_one(in + i, len - i, piece, sizeof(piece));
        size_t piece_len = strlen(piece);
        if (used + piece_len > room)
            break;
        memcpy(out + used, piece, piece_len);
        used += piece_len;
        i += taken;
    }
    out[used] = '\0';
    if (i < len && size > 4)
        memcpy(out + used, "...", 4);
}

/* True for "." and "..", which name the current and parent folder and so
 * are never valid names, even where the characters are. */
static int api_is_dot_name(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

static int api_name_chars(const char *name, size_t max, int lowercase_only)
{
    size_t len = strlen(name);

    if (len < 1 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        int ok = islower(c) || isdigit(c) || c == '.' || c == '_' || c == '-' ||
                 (!lowercase_only && isupper(c));
        if (!ok || !isascii(c))
            return 0;
    }
    return 1;
}

int api_valid_user_name(const char *name)
{
    return api_name_chars(name, 64, 0) && !api_is_dot_name(name);
}

int api_valid_route_name(const char *name)
{
    return api_name_chars(name, 64, 1) &&
           (islower((unsigned char)name[0]) || isdigit((unsigned char)name[0]));
}

int api_check_name_key(api_error_t *err, const char *kind, const char *name, const char *key)
{
    char shown[API_QUOTE_MAX];

    if (api_valid_user_name(name))
        return 0;
    api_printable(name, shown, sizeof(shown));
    return api_fail(err, 400, "bad_request", key, "invalid %s name \"%s\": expected %s", kind,
                    shown, API_NAME_RULE);
}

int api_check_name(api_error_t *err, const char *kind, const char *name)
{
    return api_check_name_key(err, kind, name, "name");
}

int api_check_slug(api_error_t *err, const char *kind, const char *name)
{
    char shown[API_QUOTE_MAX];

    if (api_valid_route_name(name))
        return 0;
    api_printable(name, shown, sizeof(shown));
    return api_fail(err, 400, "bad_request", "name", "invalid %s name \"%s\": expected %s", kind,
                    shown, API_SLUG_RULE);
}

/* True when host is a DNS name or IPv4 address ([A-Za-z0-9.-], 1-253
 * characters) or a bracketed IPv6 address. */
static int api_valid_host(const char *host, size_t len)
{
    const char *chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-";

    if (len >= 4 && host[0] == '[' && host[len - 1] == ']') {
        for (size_t i = 1; i + 1 < len; i++) {
            if (!isxdigit((unsigned char)host[i]) && host[i] != ':' && host[i] != '.')
                return 0;
        }
        return 1;
    }
    if (len < 1 || len > 253)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (strchr(chars, host[i]) == NULL || host[i] == '\0')
            return 0;
    }
    return 1;
}

/* True when port is 1-5 digits with a value from 1 to 65535. */
static int api_valid_port(const char *port)
{
    size_t len = strlen(port);
    long value = 0;

    if (len < 1 || len > 5 || strspn(port, "0123456789") != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        value = value * 10 + (port[i] - '0');
    return value >= 1 && value <= 65535;
}

int api_check_upstream(api_error_t *err, const char *upstream)
{
    const char *colon = strrchr(upstream, ':');
    char shown[API_QUOTE_MAX];

    if (colon != NULL && api_valid_host(upstream, (size_t)(colon - upstream)) &&
        api_valid_port(colon + 1))
        return 0;
    api_printable(upstream, shown, sizeof(shown));
    return api_fail(err, 400, "bad_request", "upstream",
                    "invalid upstream \"%s\": expected HOST:PORT with a port from 1 to 65535, "
                    "e.g. 127.0.0.1:8000",
                    shown);
}
