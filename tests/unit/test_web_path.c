/* Unit tests for the web UI's request paths: mapping to files, unsafe
 * names and content types. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "web/web.h"

static web_route_t route(const char *path, char *file, size_t size)
{
    return web_route(path, strlen(path), file, size);
}

static void route_index_and_favicon(void **state)
{
    char file[256];
    (void)state;

    assert_int_equal(route("/", file, sizeof(file)), WEB_ROUTE_FILE);
    assert_string_equal(file, "index.html");
    assert_int_equal(route("/favicon.ico", file, sizeof(file)), WEB_ROUTE_FILE);
    assert_string_equal(file, "favicon.ico");
}

static void route_ui_files(void **state)
{
    char file[256];
    (void)state;

    assert_int_equal(route("/ui/app.js", file, sizeof(file)), WEB_ROUTE_FILE);
    assert_string_equal(file, "app.js");
    assert_int_equal(route("/ui/views/instance.js", file, sizeof(file)), WEB_ROUTE_FILE);
    assert_string_equal(file, "views/instance.js");
    assert_int_equal(route("/ui/vendor/uPlot.esm.js", file, sizeof(file)), WEB_ROUTE_FILE);
    assert_string_equal(file, "vendor/uPlot.esm.js");
    assert_int_equal(route("/ui/a%20b.js", file, sizeof(file)), WEB_ROUTE_BAD);
    assert_int_equal(route("/ui/lib%2Fapi.js", file, sizeof(file)), WEB_ROUTE_FILE);
    assert_string_equal(file, "lib/api.js");
}

static void route_embed_page(void **state)
{
    char file[256];
    (void)state;

    assert_int_equal(route("/embed/0123456789ab/requests", file, sizeof(file)), WEB_ROUTE_EMBED);
    assert_string_equal(file, "embed.html");
    assert_int_equal(route("/embed/0123456789ab/gpu_util_percent", file, sizeof(file)),
                     WEB_ROUTE_EMBED);
}

/* Other paths under /embed get a page, not JSON, since they show in an
 * iframe; paths that only start with "/embed" are not embed paths. */
static void route_embed_not_found(void **state)
{
    static const char *const pages[] = {
        "/embed",
        "/embed/",
        "/embed/0123456789ab",
        "/embed/0123456789ab/",
        "/embed//requests",
        "/embed/a/b/c",
        "/embed/a%2fb/c",
        "/embed/a%20b/requests",
        "/embed/<script>/x",
        "/embed/../index.html",
    };
    char file[256];
    (void)state;

    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        if (route(pages[i], file, sizeof(file)) != WEB_ROUTE_EMBED_NONE)
            fail_msg("path %s is not WEB_ROUTE_EMBED_NONE", pages[i]);
    }
    assert_int_equal(route("/embedded/a/b", file, sizeof(file)), WEB_ROUTE_NONE);
    assert_int_equal(route("/embedx", file, sizeof(file)), WEB_ROUTE_NONE);
}

static void route_rejects_traversal(void **state)
{
    static const char *const bad[] = {
        "/ui/../index.html", "/ui/%2e%2e/index.html", "/ui/%2E%2E/x", "/ui/lib/../../x",
        "/ui/./app.js",      "/ui//etc/passwd",        "/ui/%2fetc/passwd", "/ui/a%00.js",
        "/ui/a%zz.js",       "/ui/a%2",                "/ui/lib/",          "/ui/a\\b.js",
        "/ui/.git/config",   "/ui/lib/.hidden",        "/ui/a%0a.js",       "/ui/%c3%a9.js",
    };
    char file[256];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (route(bad[i], file, sizeof(file)) != WEB_ROUTE_BAD)
            fail_msg("path %s was not rejected", bad[i]);
    }
}

static void route_rejects_npm_and_tests(void **state)
{
    char file[256];
    (void)state;

    assert_int_equal(route("/ui/package.json", file, sizeof(file)), WEB_ROUTE_BAD);
    assert_int_equal(route("/ui/package-lock.json", file, sizeof(file)), WEB_ROUTE_BAD);
    assert_int_equal(route("/ui/node_modules/uplot/dist/uPlot.esm.js", file, sizeof(file)),
                     WEB_ROUTE_BAD);
    assert_int_equal(route("/ui/tests/x.js", file, sizeof(file)), WEB_ROUTE_BAD);
    /* Only the top-level names are excluded. */
    assert_int_equal(route("/ui/lib/tests/x.js", file, sizeof(file)), WEB_ROUTE_FILE);
}

static void route_other_paths_are_none(void **state)
{
    char file[256];
    (void)state;

    assert_int_equal(route("", file, sizeof(file)), WEB_ROUTE_NONE);
    assert_int_equal(route("/index.html", file, sizeof(file)), WEB_ROUTE_NONE);
    assert_int_equal(route("/ui", file, sizeof(file)), WEB_ROUTE_NONE);
    assert_int_equal(route("/ui/", file, sizeof(file)), WEB_ROUTE_NONE);
    assert_int_equal(route("/uix/app.js", file, sizeof(file)), WEB_ROUTE_NONE);
}

static void route_long_name_does_not_fit(void **state)
{
    char path[400] = "/ui/";
    char file[64];
    (void)state;

    memset(path + 4, 'a', 300);
    path[304] = '\0';
    assert_int_equal(route(path, file, sizeof(file)), WEB_ROUTE_BAD);
}

static void name_allowed_rules(void **state)
{
    (void)state;

    assert_true(web_name_allowed("index.html"));
    assert_true(web_name_allowed("views/instance.js"));
    assert_true(web_name_allowed("a..b.js"));
    assert_false(web_name_allowed(""));
    assert_false(web_name_allowed("/abs"));
    assert_false(web_name_allowed("a//b"));
    assert_false(web_name_allowed("a/"));
    assert_false(web_name_allowed(".."));
    assert_false(web_name_allowed("a/../b"));
    assert_false(web_name_allowed("a b"));
    assert_false(web_name_allowed("a\x7f"));
}

static void content_types_by_extension(void **state)
{
    (void)state;

    assert_string_equal(web_content_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(web_content_type("lib/api.js"), "text/javascript; charset=utf-8");
    assert_string_equal(web_content_type("style.css"), "text/css; charset=utf-8");
    assert_string_equal(web_content_type("logo.svg"), "image/svg+xml");
    assert_string_equal(web_content_type("shot.png"), "image/png");
    assert_string_equal(web_content_type("data.json"), "application/json");
    assert_string_equal(web_content_type("favicon.ico"), "image/x-icon");
    assert_string_equal(web_content_type("README"), "application/octet-stream");
    assert_string_equal(web_content_type("x.jsx"), "application/octet-stream");
    assert_string_equal(web_content_type(".js"), "application/octet-stream");
}

static void vendor_sources(void **state)
{
    (void)state;

    assert_string_equal(web_vendor_source("vendor/uPlot.esm.js"),
                        "node_modules/uplot/dist/uPlot.esm.js");
    assert_string_equal(web_vendor_source("vendor/uPlot.min.css"),
                        "node_modules/uplot/dist/uPlot.min.css");
    assert_null(web_vendor_source("vendor/other.js"));
    assert_null(web_vendor_source("app.js"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(route_index_and_favicon),
        cmocka_unit_test(route_ui_files),
        cmocka_unit_test(route_embed_page),
        cmocka_unit_test(route_embed_not_found),
        cmocka_unit_test(route_rejects_traversal),
        cmocka_unit_test(route_rejects_npm_and_tests),
        cmocka_unit_test(route_other_paths_are_none),
        cmocka_unit_test(route_long_name_does_not_fit),
        cmocka_unit_test(name_allowed_rules),
        cmocka_unit_test(content_types_by_extension),
        cmocka_unit_test(vendor_sources),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
