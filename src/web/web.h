/* The web UI's files, served by the server on the API's port: from the copy
 * embedded in the binary at build time, or from a folder on disk
 * (--web-root, for development). */
#ifndef NIMDECK_WEB_WEB_H
#define NIMDECK_WEB_WEB_H

#include <stddef.h>

#include "http/http.h"

/* Where a request path leads (web_route). */
typedef enum {
    WEB_ROUTE_NONE,       /* not a page or file of the UI: 404 */
    WEB_ROUTE_BAD,        /* a /ui/ path that is unsafe or malformed: 400 */
    WEB_ROUTE_FILE,       /* a UI file, framing forbidden */
    WEB_ROUTE_EMBED,      /* the embed page, which any site may frame */
    WEB_ROUTE_EMBED_NONE, /* under /embed/ but not /embed/ID/METRIC: 404 as a page */
} web_route_t;

/* Map a request path (not decoded, without the query) to the file's name
 * relative to web/: "/" is index.html, "/ui/NAME" is NAME after
 * percent-decoding, and "/embed/ID/METRIC" is embed.html. file receives the
 * name for WEB_ROUTE_FILE and WEB_ROUTE_EMBED. Other paths under /embed/
 * are WEB_ROUTE_EMBED_NONE, because an iframe would show a JSON error as
 * raw text. */
web_route_t web_route(const char *path, size_t len, char *file, size_t size);

/* Return 1 when name (relative to web/, decoded) may be served: segments of
 * printable ASCII without '\\', none empty, none starting with '.', and not
 * the npm files (node_modules/, package.json, package-lock.json) or tests/.
 * The build embeds the same set. */
int web_name_allowed(const char *name);

/* Return the Content-Type for name by its extension, or
 * "application/octet-stream" for an unknown one. */
const char *web_content_type(const char *name);

/* Return the file under web/ that a vendored npm file name stands for
 * ("vendor/uPlot.esm.js" is "node_modules/uplot/dist/uPlot.esm.js"), or
 * NULL when name is not vendored. */
const char *web_vendor_source(const char *name);

/* Reply to a request outside /api/ with a file of the UI. web_root is a
 * folder holding the web/ files, or NULL or "" for the embedded copy. Only
 * GET and HEAD are allowed. */
void web_serve(http_exchange_t *ex, const char *web_root);

/* Check that dir can serve as --web-root (a folder with a readable
 * index.html) and write its canonical path into out, which web_serve
 * needs. Returns 0, or -1 with a message naming dir in err. */
int web_check_root(const char *dir, char *out, size_t out_size, char *err, size_t err_size);

#endif
