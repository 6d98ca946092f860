/* Responses with the UI's files: lookup in the embedded table or on disk,
 * ETags, caching and the security headers of pages. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web/web.h"
#include "web/web_assets.h"

/* Larger files in a --web-root folder are not served. */
#define WEB_FILE_MAX (16u * 1024 * 1024)

/* uPlot sets inline styles, hence 'unsafe-inline' for styles alone. */
#define WEB_CSP "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"

typedef struct {
    const unsigned char *data;
    size_t len;
    unsigned char *owned;       /* a file read from disk, freed after the response */
} web_file_t;

static const web_asset_t *web_embedded(const char *name)
{
    for (size_t i = 0; i < web_assets_count; i++) {
        if (strcmp(web_assets[i].name, name) == 0)
            return &web_assets[i];
    }
    return NULL;
}

/* Read root/name into file. Returns 0, or -1 when it is missing, not a
 * regular file, too large, or resolves (through a link) outside root.
 * NOTE: this blocks the server's loop while it reads; --web-root is for
 * development. */
static int web_read_disk(const char *root, const char *name, web_file_t *file)
{
    char joined[PATH_MAX], resolved[PATH_MAX];
    size_t root_len = strlen(root);
    struct stat st;

    if ((size_t)snprintf(joined, sizeof(joined), "%s/%s", root, name) >= sizeof(joined))
        return -1;
    if (realpath(joined, resolved) == NULL)
        return -1;
    if (strncmp(resolved, root, root_len) != 0 || resolved[root_len] != '/')
        return -1;

    int fd = open(resolved, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > WEB_FILE_MAX) {
        close(fd);
        return -1;
    }

    size_t size = (size_t)st.st_size, used = 0;
    unsigned char *data = malloc(size + 1);
    while (data != NULL && used < size) {
        ssize_t n = read(fd, data + used, size - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    if (data == NULL || used != size) {
        free(data);
        return -1;
    }
    file->data = data;
    file->len = size;
    file->owned = data;
    return 0;
}

/* Find name in the embedded table or under web_root. In a --web-root
 * folder the vendored npm files are read from node_modules/. */
static int web_load(const char *web_root, const char *name, web_file_t *file)
{
    memset(file, 0, sizeof(*file));
    if (web_root == NULL || web_root[0] == '\0') {
        const web_asset_t *asset = web_embedded(name);
        if (asset == NULL)
            return -1;
        file->data = asset->data;
        file->len = asset->len;
        return 0;
    }

    const char *vendored = web_vendor_source(name);
    return web_read_disk(web_root, vendored ? vendored : name, file);
}

/* A strong ETag from a BLAKE2b hash of the bytes, quotes included. */
static void web_etag(const web_file_t *file, char *out, size_t size)
{
    unsigned char hash[16];
    char hex[sizeof(hash) * 2 + 1];

    crypto_generichash(hash, sizeof(hash), file->data, file->len, NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    snprintf(out, size, "\"%s\"", hex);
}

/* Return 1 when the request's If-None-Match lists etag or is "*". */
static int web_etag_matches(const http_request_t *req, const char *etag)
{
    size_t len = 0, etag_len = strlen(etag);
    const char *value = http_header_find(req->headers, req->num_headers, "If-None-Match", &len);

    if (value == NULL)
        return 0;
    if (len == 1 && value[0] == '*')
        return 1;
    for (size_t i = 0; i + etag_len <= len; i++) {
        if (memcmp(value + i, etag, etag_len) == 0)
            return 1;
    }
    return 0;
}

/* Send a JSON error. The path is left out of the message because it may
 * hold bytes that are not valid UTF-8. */
static void web_fail(http_exchange_t *ex, int status, const char *code, const char *message)
{
    http_respond_error(ex, status, code, message, NULL);
}

static int web_method_is(const http_request_t *req, const char *method)
{
    return req->method_len == strlen(method) && memcmp(req->method, method, req->method_len) == 0;
}

/* Write the security headers of a response with a file or page into out.
 * Pages may be framed only by this origin's own pages, except those under
 * /embed/, which exist to be framed by any site. */
static void web_security_headers(int embed, char *out, size_t size)
{
    snprintf(out, size,
             "Cache-Control: no-cache\r\n"
             "X-Content-Type-Options: nosniff\r\n"
             "Referrer-Policy: no-referrer\r\n"
             "Content-Security-Policy: %s%s\r\n"
             "%s",
             WEB_CSP, embed ? "" : "; frame-ancestors 'none'",
             embed ? "" : "X-Frame-Options: DENY\r\n");
}

/* Send the 404 of a path under /embed/ as a page, since it shows inside
 * another site's iframe. The page is static: it quotes nothing of the
 * request, so no path can inject markup into it. */
static void web_send_embed_not_found(http_exchange_t *ex)
{
    static const char page[] =
        "<!doctype html>\n"
        "<html lang=\"en\">\n"
        "<head>\n"
        "  <meta charset=\"utf-8\">\n"
        "  <meta name=\"referrer\" content=\"no-referrer\">\n"
        "  <title>nimdeck plot not found</title>\n"
        "  <link rel=\"stylesheet\" href=\"/ui/style.css\">\n"
        "</head>\n"
        "<body class=\"embed\">\n"
        "  <main>\n"
        "    <h1>Plot not found</h1>\n"
        "    <p>No plot is at this address. The address of an embedded plot is\n"
        "    /embed/ID/METRIC followed by #key= and an embed token.</p>\n"
        "  </main>\n"
        "</body>\n"
        "</html>\n";
    char headers[512];

    web_security_headers(1, headers, sizeof(headers));
    http_respond(ex, 404, web_content_type("page.html"), headers, page, sizeof(page) - 1);
}

static void web_send(http_exchange_t *ex, web_route_t route, const char *name,
                     const web_file_t *file)
{
    const http_request_t *req = http_exchange_request(ex);
    char etag[40], security[512], headers[640];

    web_etag(file, etag, sizeof(etag));
    web_security_headers(route == WEB_ROUTE_EMBED, security, sizeof(security));
    snprintf(headers, sizeof(headers), "ETag: %s\r\n%s", etag, security);

    if (web_etag_matches(req, etag)) {
        http_respond(ex, 304, NULL, headers, NULL, 0);
        return;
    }
    http_respond(ex, 200, web_content_type(name), headers, file->data, file->len);
}

void web_serve(http_exchange_t *ex, const char *web_root)
{
    const http_request_t *req = http_exchange_request(ex);
    char name[512];
    web_file_t file;

    web_route_t route = web_route(req->path, req->path_len, name, sizeof(name));
    if (route == WEB_ROUTE_NONE) {
        web_fail(ex, 404, "not_found",
                 "no page or file at this path; the web UI is at / and the API under /api/v1");
        return;
    }
    if (route == WEB_ROUTE_EMBED_NONE) {
        web_send_embed_not_found(ex);
        return;
    }
    if (route == WEB_ROUTE_BAD) {
        web_fail(ex, 400, "bad_request",
                 "invalid file path under /ui/: segments must be non-empty printable ASCII, "
                 "without a leading '.', and not the npm or test files");
        return;
    }
    if (!web_method_is(req, "GET") && !web_method_is(req, "HEAD")) {
        static const char body[] = "{\"error\":{\"code\":\"method_not_allowed\",\"message\":"
                                   "\"the web UI's files allow only GET and HEAD\"}}";
        http_respond(ex, 405, "application/json", "Allow: GET, HEAD\r\n", body,
                     sizeof(body) - 1);
        return;
    }
    if (web_load(web_root, name, &file) != 0) {
        if (route == WEB_ROUTE_EMBED)
            web_send_embed_not_found(ex);
        else
            web_fail(ex, 404, "not_found", "no such file in the web UI");
        return;
    }
    web_send(ex, route, name, &file);
    free(file.owned);
}

int web_check_root(const char *dir, char *out, size_t out_size, char *err, size_t err_size)
{
    char resolved[PATH_MAX], index[PATH_MAX + 16];
    struct stat st;

    if (realpath(dir, resolved) == NULL || stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_size, "--web-root %s is not a folder; pass the repository's web/ folder",
                 dir);
        return -1;
    }
    snprintf(index, sizeof(index), "%s/index.html", resolved);
    if (access(index, R_OK) != 0) {
        snprintf(err, err_size,
                 "--web-root %s has no readable index.html; pass the repository's web/ folder",
                 dir);
        return -1;
    }
    if ((size_t)snprintf(out, out_size, "%s", resolved) >= out_size) {
        snprintf(err, err_size, "--web-root %s is too long a path", dir);
        return -1;
    }
    return 0;
}
