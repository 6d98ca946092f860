/* Unit tests for the check that a started bridge container has its port
 * published, read from the container's inspect document. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "agent/agent_docker_internal.h"

static int published(const char *doc_text, int port)
{
    json_t *doc = json_loads(doc_text, 0, NULL);
    int rc;

    assert_non_null(doc);
    rc = agent_docker_port_published(doc, port);
    json_decref(doc);
    return rc;
}

static void port_bound_on_loopback(void **state)
{
    (void)state;
    assert_true(published("{\"NetworkSettings\":{\"Ports\":{\"8123/tcp\":"
                          "[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"8123\"}]}}}", 8123));
}

/* What a daemon started with --bridge=none shows for a bridge container. */
static void no_bridge_has_no_binding(void **state)
{
    (void)state;
    assert_false(published("{\"NetworkSettings\":{\"Ports\":{},\"Networks\":{\"bridge\":"
                           "{\"IPAddress\":\"\"}}}}", 8123));
}

static void exposed_but_unbound(void **state)
{
    (void)state;
    assert_false(published("{\"NetworkSettings\":{\"Ports\":{\"8123/tcp\":null}}}", 8123));
    assert_false(published("{\"NetworkSettings\":{\"Ports\":{\"8123/tcp\":[]}}}", 8123));
}

static void other_port_bound(void **state)
{
    (void)state;
    assert_false(published("{\"NetworkSettings\":{\"Ports\":{\"9000/tcp\":"
                           "[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"9000\"}]}}}", 8123));
}

static void missing_settings(void **state)
{
    (void)state;
    assert_false(published("{}", 8123));
    assert_false(agent_docker_port_published(NULL, 8123));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(port_bound_on_loopback),
        cmocka_unit_test(no_bridge_has_no_binding),
        cmocka_unit_test(exposed_but_unbound),
        cmocka_unit_test(other_port_bound),
        cmocka_unit_test(missing_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
