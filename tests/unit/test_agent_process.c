/* Unit tests for the process runtime: output, exit status, stop with a
 * grace period, failures to start, and the private working directory. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent_runtime.h"
#include "agent/agent_sync.h"
#include "agent/agent_workdir.h"
#include "util/buf.h"
#include "util/clock.h"

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    buf_t out;
    buf_t err;
    int exited;
    agent_exit_t exit;
} events_t;

static void on_output(void *ctx, agent_stream_t stream, const char *data, size_t len)
{
    events_t *e = ctx;

    pthread_mutex_lock(&e->lock);
    buf_append(stream == AGENT_STREAM_STDOUT ? &e->out : &e->err, data, len);
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
}

static void on_exit_event(void *ctx, const agent_exit_t *exit)
{
    events_t *e = ctx;

    pthread_mutex_lock(&e->lock);
    e->exited = 1;
    e->exit = *exit;
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
}

static void events_init(events_t *e)
{
    memset(e, 0, sizeof(*e));
    pthread_mutex_init(&e->lock, NULL);
    agent_cond_init(&e->changed);
}

static void events_free(events_t *e)
{
    buf_free(&e->out);
    buf_free(&e->err);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->changed);
}

/* Wait up to ms for the exit; returns 1 when it came. */
static int wait_exit(events_t *e, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;

    pthread_mutex_lock(&e->lock);
    while (!e->exited && clock_mono_ms() < deadline)
        agent_cond_wait_until(&e->changed, &e->lock, deadline);
    int exited = e->exited;
    pthread_mutex_unlock(&e->lock);
    return exited;
}

/* Wait up to ms until stdout contains text; returns 1 when it does. */
static int wait_stdout(events_t *e, const char *text, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;

    pthread_mutex_lock(&e->lock);
    while ((e->out.data == NULL || strstr(e->out.data, text) == NULL) && clock_mono_ms() < deadline)
        agent_cond_wait_until(&e->changed, &e->lock, deadline);
    int found = e->out.data != NULL && strstr(e->out.data, text) != NULL;
    pthread_mutex_unlock(&e->lock);
    return found;
}

/* Start `sh -c script` with env; returns the handle. */
static agent_runtime_handle_t *start_shell(events_t *e, const char *script, json_t *env, int *port)
{
    json_t *config = json_pack("{s:[s, s, s], s:i}", "command", "/bin/sh", "-c", script, "port",
                               24999);
    agent_runtime_spec_t spec = {.instance_id = "test1", .config = config, .env = env};
    agent_runtime_events_t events = {.ctx = e, .on_output = on_output, .on_exit = on_exit_event};
    agent_runtime_handle_t *handle = NULL;
    char err[256] = "";

    int rc = agent_runtime_process.start(&spec, &events, &handle, port, err, sizeof(err));
    json_decref(config);
    assert_int_equal(rc, 0);
    assert_non_null(handle);
    return handle;
}

static void process_output_and_status(void **state)
{
    events_t e;
    json_t *env = json_pack("{s:s}", "GREETING", "hello");
    int port = 0;

    (void)state;
    events_init(&e);
    agent_runtime_handle_t *h =
        start_shell(&e, "echo \"$GREETING on $PORT/$NIM_SERVER_PORT\"; echo oops >&2; exit 3", env, &port);
    assert_int_equal(port, 24999);
    assert_true(wait_exit(&e, 5000));
    agent_runtime_process.release(h);

    assert_string_equal(e.out.data, "hello on 24999/24999\n");
    assert_string_equal(e.err.data, "oops\n");
    assert_int_equal(e.exit.signaled, 0);
    assert_int_equal(e.exit.status, 3);
    assert_int_equal(e.exit.exit_code, 3);
    events_free(&e);
    json_decref(env);
}

static void process_stop_with_sigterm(void **state)
{
    events_t e;
    int port = 0;

    (void)state;
    events_init(&e);
    agent_runtime_handle_t *h = start_shell(&e, "echo up; exec sleep 30", NULL, &port);
    assert_true(wait_stdout(&e, "up", 3000));
    int64_t started = clock_mono_ms();
    agent_runtime_process.stop(h, 5000);
    assert_true(wait_exit(&e, 3000));
    assert_true(clock_mono_ms() - started < 1000);
    agent_runtime_process.release(h);

    assert_int_equal(e.exit.signaled, 1);
    assert_int_equal(e.exit.signal, SIGTERM);
    assert_int_equal(e.exit.exit_code, 128 + SIGTERM);
    events_free(&e);
}

static void process_killed_after_grace(void **state)
{
    events_t e;
    int port = 0;

    (void)state;
    events_init(&e);
    /* The shell ignores SIGTERM, so only the SIGKILL after the grace ends it. */
    agent_runtime_handle_t *h =
        start_shell(&e, "trap '' TERM; echo ready; while :; do sleep 0.05; done", NULL, &port);
    assert_true(wait_stdout(&e, "ready", 3000));
    int64_t started = clock_mono_ms();
    agent_runtime_process.stop(h, 300);
    assert_true(wait_exit(&e, 5000));
    int64_t took = clock_mono_ms() - started;
    agent_runtime_process.release(h);

    assert_true(took >= 290);
    assert_true(took < 3000);
    assert_int_equal(e.exit.signaled, 1);
    assert_int_equal(e.exit.signal, SIGKILL);
    events_free(&e);
}

static void process_group_children_killed(void **state)
{
    events_t e;
    int port = 0;

    (void)state;
    events_init(&e);
    /* The background child keeps stdout open; the exit must not wait for it. */
    agent_runtime_handle_t *h = start_shell(&e, "sleep 30 & echo started; exit 0", NULL, &port);
    int64_t started = clock_mono_ms();
    assert_true(wait_exit(&e, 3000));
    assert_true(clock_mono_ms() - started < 2000);
    agent_runtime_process.release(h);

    assert_int_equal(e.exit.status, 0);
    assert_string_equal(e.out.data, "started\n");
    events_free(&e);
}

static void process_exec_failure(void **state)
{
    json_t *config = json_pack("{s:[s]}", "command", "/nonexistent/nimdeck-test-binary");
    agent_runtime_spec_t spec = {.instance_id = "test2", .config = config};
    events_t e;
    agent_runtime_events_t events = {.ctx = &e, .on_output = on_output, .on_exit = on_exit_event};
    agent_runtime_handle_t *handle = NULL;
    char err[256] = "";
    int port = 0;

    (void)state;
    events_init(&e);
    assert_int_equal(agent_runtime_process.start(&spec, &events, &handle, &port, err, sizeof(err)), -1);
    assert_null(handle);
    assert_non_null(strstr(err, "/nonexistent/nimdeck-test-binary"));
    assert_non_null(strstr(err, "No such file"));
    events_free(&e);
    json_decref(config);
}

static void process_free_port_chosen(void **state)
{
    json_t *config = json_pack("{s:[s, s, s]}", "command", "/bin/sh", "-c", "echo {port} $PORT");
    agent_runtime_spec_t spec = {.instance_id = "test3", .config = config};
    events_t e;
    agent_runtime_events_t events = {.ctx = &e, .on_output = on_output, .on_exit = on_exit_event};
    agent_runtime_handle_t *handle = NULL;
    char err[256] = "", expected[64];
    int port = 0;

    (void)state;
    events_init(&e);
    assert_int_equal(agent_runtime_process.start(&spec, &events, &handle, &port, err, sizeof(err)), 0);
    assert_true(wait_exit(&e, 5000));
    agent_runtime_process.release(handle);
    assert_true(port > 0);
    snprintf(expected, sizeof(expected), "%d %d\n", port, port);
    assert_string_equal(e.out.data, expected);
    events_free(&e);
    json_decref(config);
}

/* The value of "NAME=" on its own line of text, copied into out. */
static void line_value(const char *text, const char *name, char *out, size_t size)
{
    const char *at = strstr(text, name);

    assert_non_null(at);
    at += strlen(name);
    snprintf(out, size, "%.*s", (int)strcspn(at, "\n"), at);
}

static void process_private_workdir(void **state)
{
    char base[] = "/tmp/nimdeck-test-workdir-XXXXXX";
    char outside[512], cwd[512], workdir[512], mode[16], home[512], prefix[600];
    const char *old_tmpdir = getenv("TMPDIR");
    char *saved_tmpdir = old_tmpdir != NULL ? strdup(old_tmpdir) : NULL;
    struct stat st;
    events_t e;
    int port = 0;

    (void)state;
    assert_non_null(mkdtemp(base));
    assert_int_equal(setenv("TMPDIR", base, 1), 0);
    snprintf(outside, sizeof(outside), "%s/outside", base);
    assert_int_equal(mkdir(outside, 0700), 0);
    assert_non_null(getcwd(cwd, sizeof(cwd)));

    /* The instance leaves a file, a subdirectory and links to a directory
     * outside it; the removal must take the links, not what they point to. */
    char script[2048];
    snprintf(script, sizeof(script),
             "echo \"cwd=$(pwd)\"; echo \"mode=$(stat -c %%a .)\"; echo \"home=$HOME\"; "
             "echo kept > %s/file; mkdir -p sub/deeper; echo x > sub/deeper/f; "
             "ln -s %s out-link; ln -s %s sub/out-link; exit 0", outside, outside, outside);
    events_init(&e);
    json_t *config = json_pack("{s:[s, s, s], s:i}", "command", "/bin/sh", "-c", script, "port",
                               24997);
    agent_runtime_spec_t spec = {.instance_id = "inst/4", .config = config,
                                 .agent_name = "agent one"};
    agent_runtime_events_t events = {.ctx = &e, .on_output = on_output, .on_exit = on_exit_event};
    agent_runtime_handle_t *h = NULL;
    char err[256] = "";
    assert_int_equal(agent_runtime_process.start(&spec, &events, &h, &port, err, sizeof(err)), 0);
    assert_true(wait_exit(&e, 5000));
    agent_runtime_process.release(h);
    json_decref(config);

    assert_int_equal(e.exit.status, 0);
    line_value(e.out.data, "cwd=", workdir, sizeof(workdir));
    line_value(e.out.data, "mode=", mode, sizeof(mode));
    line_value(e.out.data, "home=", home, sizeof(home));
    snprintf(prefix, sizeof(prefix), "%s/nimdeck-agent_one-inst_4-", base);
    if (strncmp(workdir, prefix, strlen(prefix)) != 0)
        fail_msg("working directory \"%s\" does not start with \"%s\"", workdir, prefix);
    assert_string_not_equal(workdir, cwd);
    assert_string_equal(mode, "700");
    assert_string_equal(home, getenv("HOME") != NULL ? getenv("HOME") : "");

    /* Removed once the instance ended; what the links pointed to is kept. */
    assert_int_equal(lstat(workdir, &st), -1);
    char kept[600];
    snprintf(kept, sizeof(kept), "%s/file", outside);
    assert_int_equal(stat(kept, &st), 0);

    events_free(&e);
    assert_int_equal(agent_workdir_remove(base), 0);
    if (saved_tmpdir != NULL)
        setenv("TMPDIR", saved_tmpdir, 1);
    else
        unsetenv("TMPDIR");
    free(saved_tmpdir);
}

static void runtime_lookup(void **state)
{
    (void)state;
    assert_ptr_equal(agent_runtime_find("process"), &agent_runtime_process);
    assert_null(agent_runtime_find("docker-compose"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(process_output_and_status),
        cmocka_unit_test(process_stop_with_sigterm),
        cmocka_unit_test(process_killed_after_grace),
        cmocka_unit_test(process_group_children_killed),
        cmocka_unit_test(process_exec_failure),
        cmocka_unit_test(process_free_port_chosen),
        cmocka_unit_test(process_private_workdir),
        cmocka_unit_test(runtime_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
