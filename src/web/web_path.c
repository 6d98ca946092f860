/* Request paths of the web UI: mapping to file names, the rules for a safe
 * name, and content types by extension. */
#include <string.h>

#include "http/parser.h"
#include "web/web.h"

#define WEB_UI_PREFIX "/ui/"
#define WEB_EMBED_PREFIX "/embed/"

/* The npm files served under /ui/vendor/, with their place in web/. */
static const struct {
    const char *name;
    const char *source;
} web_vendor[] = {
    {"vendor/uPlot.esm.js", "node_modules/uplot/dist/uPlot.esm.js"},
    {"vendor/uPlot.min.css", "node_modules/uplot/dist/uPlot.min.css"},
};

static const struct {
    const char *extension;
    const char *type;
} web_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
};

const char *web_content_type(const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < sizeof(web_types) / sizeof(web_types[0]); i++) {
        size_t ext = strlen(web_types[i].extension);
        if (len > ext && strcmp(name + len - ext, web_types[i].extension) == 0)
            return web_types[i].type;
    }
    return "application/octet-stream";
}

const char *web_vendor_source(const char *name)
{
    for (size_t i = 0; i < sizeof(web_vendor) / sizeof(web_vendor[0]); i++) {
        if (strcmp(name, web_vendor[i].name) == 0)
            return web_vendor[i].source;
    }
    return NULL;
}

/* Return 1 when segment [start, start + len) equals word. */
static int web_segment_is(const char *start, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(start, word, len) == 0;
}

int web_name_allowed(const char *name)
{
    const char *segment = name;
    int first = 1;

    if (*name == '\0')
        return 0;
    for (const char *p = name;; p++) {
        if (*p != '/' && *p != '\0') {
            /* Printable ASCII only, and no backslash, which some tools
             * read as a separator. */
            if (*p < 0x21 || *p > 0x7e || *p == '\\')
                return 0;
            continue;
        }

        size_t len = (size_t)(p - segment);
        /* Empty segments, "." and "..", and hidden files such as .git. */
        if (len == 0 || segment[0] == '.')
            return 0;
        if (first && (web_segment_is(segment, len, "node_modules") ||
                      web_segment_is(segment, len, "tests") ||
                      web_segment_is(segment, len, "package.json") ||
                      web_segment_is(segment, len, "package-lock.json")))
            return 0;
        if (*p == '\0')
            return 1;
        first = 0;
        segment = p + 1;
    }
}

/* Return 1 for 1-64 characters of A-Z a-z 0-9 . _ -, the characters of
 * instance ids and metric names, other than "." and "..". */
static int web_plain_segment(const char *start, size_t len)
{
    if (len == 0 || len > 64 || web_segment_is(start, len, ".") || web_segment_is(start, len, ".."))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = start[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* "/embed/ID/METRIC" with two plain segments. */
static int web_is_embed_path(const char *path, size_t len)
{
    size_t prefix = strlen(WEB_EMBED_PREFIX);

    if (len <= prefix || memcmp(path, WEB_EMBED_PREFIX, prefix) != 0)
        return 0;
    const char *id = path + prefix;
    const char *end = path + len;
    const char *slash = memchr(id, '/', (size_t)(end - id));
    if (slash == NULL)
        return 0;
    return web_plain_segment(id, (size_t)(slash - id)) &&
           web_plain_segment(slash + 1, (size_t)(end - slash - 1));
}

/* True for prefix itself and for prefix followed by '/' and anything. */
static int web_has_prefix(const char *path, size_t len, const char *prefix)
{
    size_t prefix_len = strlen(prefix);

    return len >= prefix_len && memcmp(path, prefix, prefix_len) == 0 &&
           (len == prefix_len || path[prefix_len] == '/');
}

static web_route_t web_copy_name(const char *name, char *file, size_t size)
{
    size_t len = strlen(name);

    if (len + 1 > size)
        return WEB_ROUTE_NONE;
    memcpy(file, name, len + 1);
    return WEB_ROUTE_FILE;
}

web_route_t web_route(const char *path, size_t len, char *file, size_t size)
{
    size_t prefix = strlen(WEB_UI_PREFIX);

    if (len == 1 && path[0] == '/')
        return web_copy_name("index.html", file, size);
    if (len == strlen("/favicon.ico") && memcmp(path, "/favicon.ico", len) == 0)
        return web_copy_name("favicon.ico", file, size);
    if (web_is_embed_path(path, len))
        return web_copy_name("embed.html", file, size) == WEB_ROUTE_FILE ? WEB_ROUTE_EMBED
                                                                          : WEB_ROUTE_NONE;
    if (web_has_prefix(path, len, "/embed"))
        return WEB_ROUTE_EMBED_NONE;
    if (len <= prefix || memcmp(path, WEB_UI_PREFIX, prefix) != 0)
        return WEB_ROUTE_NONE;
    if (http_percent_decode(path + prefix, len - prefix, file, size, 0) != 0 ||
        !web_name_allowed(file))
        return WEB_ROUTE_BAD;
    return WEB_ROUTE_FILE;
}
