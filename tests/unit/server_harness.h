/* Shared harness of the server unit tests: a server on a free port in a
 * temporary data folder, its admin token, and JSON calls to its REST API.
 * Include it after cmocka.h. Every function is static inline, so each test
 * binary takes only what it uses. */
#ifndef NIMDECK_TESTS_SERVER_HARNESS_H
#define NIMDECK_TESTS_SERVER_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "util/api_client.h"

typedef struct {
    char dir[64];            /* the data folder, ".../data" inside a temporary folder */
    server_t *srv;
    const char *url;
    const char *token;       /* the built-in admin token */
    long timeout_ms;         /* per call */
    char user_token[128];    /* api token of a non-admin user, when a test makes one */
} fixture_t;

/* Return the options of a test server on 127.0.0.1 port 0 with an
 * unreachable gateway and a 60 s active window. The caller sets data_dir. */
static inline server_options_t harness_options(void)
{
    return (server_options_t){.listen_host = "127.0.0.1", .listen_port = 0,
                              .gateway_url = "http://gw.test:1", .active_window_s = 60};
}

/* Start a server with opts in a new folder /tmp/nimdeck-NAME-XXXXXX/data and
 * put the fixture in *state. Returns 0, or -1 when it cannot start. */
static inline int harness_start(void **state, const char *name, server_options_t opts)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[512];

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/nimdeck-%s-XXXXXX", name);
    if (mkdtemp(f->dir) == NULL)
        return -1;
    strncat(f->dir, "/data", sizeof(f->dir) - strlen(f->dir) - 1);

    opts.data_dir = f->dir;
    f->srv = server_start(&opts, err, sizeof(err));
    if (f->srv == NULL) {
        fprintf(stderr, "server_start failed: %s\n", err);
        return -1;
    }
    f->url = server_url(f->srv);
    f->token = server_admin_token(f->srv);
    f->timeout_ms = 5000;
    *state = f;
    return 0;
}

/* cmocka teardown: stop the server and remove its temporary folder. */
static inline int fixture_teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];

    server_stop(f->srv);
    snprintf(cmd, sizeof(cmd), "rm -rf %.*s", (int)(strlen(f->dir) - 5), f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Call the API with token and a JSON body text (NULL for none). The caller
 * frees res. Returns the HTTP status. */
static inline long harness_call(fixture_t *f, const char *token, const char *method,
                                const char *path, const char *body, api_result_t *res)
{
    json_t *json = body ? json_loads(body, 0, NULL) : NULL;

    assert_true(body == NULL || json != NULL);
    assert_int_equal(api_call(f->url, token, method, path, json, f->timeout_ms, res), 0);
    json_decref(json);
    return res->status;
}

/* Call the API and fail unless the reply has status and, when part is not
 * NULL, a message containing part. The body is dropped. */
static inline void harness_expect(fixture_t *f, const char *token, const char *method,
                                  const char *path, const char *body, long status,
                                  const char *part)
{
    api_result_t res;

    harness_call(f, token, method, path, body, &res);
    if (res.status != status || (part != NULL && strstr(res.error, part) == NULL)) {
        if (part == NULL)
            fail_msg("%s %s: expected %ld, got %ld: %s", method, path, status, res.status,
                     res.error);
        else
            fail_msg("%s %s: expected %ld with \"%s\", got %ld: %s", method, path, status,
                     part, res.status, res.error);
    }
    api_result_free(&res);
}

/* Call the API as the admin with a JSON body text (NULL for none). */
static inline long admin_call(fixture_t *f, const char *method, const char *path,
                              const char *body, api_result_t *res)
{
    return harness_call(f, f->token, method, path, body, res);
}

/* Call the API as the admin and expect status and a message containing
 * part (NULL for any message). */
static inline void admin_expect(fixture_t *f, const char *method, const char *path,
                                const char *body, long status, const char *part)
{
    harness_expect(f, f->token, method, path, body, status, part);
}

#endif
