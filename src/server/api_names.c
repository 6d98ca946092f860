/* Name rules of users, projects, routes, queues and agents, the upstream
 * address check, and the quoting of client values in error messages. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "server/server_internal.h"

/* Maximum length in bytes of a value quoted in an error message. */
#define API_QUOTE_MAX 80

void api_printable(const char *text, char *out, size_t size)
{
    size_t len = strlen(text), used = 0;
    size_t room = size > 4 ? size - 4 : 0;   /* keeps space for "..." */

    if (size == 0)
        return;
    for (size_t i = 0; i < len && used < room; i++) {
        unsigned char c = (unsigned char)text[i];
        out[used++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[used] = '\0';
    if (used < len && size > 4)
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
