/* Unit tests for GPU and instance usage samples in the SQLite store, their
 * downsampling and retention, and the metrics series built from them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/metrics.h"
#include "store/metrics_usage.h"
#include "store/store.h"
#include "store_fixture.h"

#define GIB (1024.0 * 1024 * 1024)

static void make_leased_instance(store_t *st, const char *id, const char *agent,
                                 int64_t started_at, int64_t stopped_at)
{
    store_instance_t inst;
    char holder[64];

    memset(&inst, 0, sizeof(inst));
    snprintf(inst.id, sizeof(inst.id), "%s", id);
    snprintf(inst.name, sizeof(inst.name), "sim");
    snprintf(inst.project, sizeof(inst.project), "demo");
    snprintf(inst.owner, sizeof(inst.owner), "admin");
    snprintf(inst.status, sizeof(inst.status), "queued");
    snprintf(inst.queue, sizeof(inst.queue), "default");
    snprintf(inst.path, sizeof(inst.path), "%s", id);
    inst.created_at = 1000;
    inst.config = json_pack("{s:s}", "name", "sim");
    assert_int_equal(st->ops->instance_insert(st, &inst, "queued", holder, sizeof(holder)),
                     STORE_OK);

    snprintf(inst.status, sizeof(inst.status), "%s", stopped_at ? "stopped" : "active");
    snprintf(inst.agent, sizeof(inst.agent), "%s", agent);
    inst.started_at = started_at;
    inst.stopped_at = stopped_at;
    assert_int_equal(st->ops->instance_save(st, &inst), STORE_OK);
    json_decref(inst.config);
}

/* A store with the admin user and the default queue that instances need. */
static int fixture_setup(void **state)
{
    store_user_t admin = {.admin = 1, .created_at = 1000};

    if (store_fixture_setup(state, "usage") != 0)
        return -1;
    fixture_t *f = *state;
    snprintf(admin.name, sizeof(admin.name), "admin");
    if (f->st->ops->user_create(f->st, &admin) != STORE_OK ||
        f->st->ops->queue_create(f->st, "default", 1000) != STORE_OK)
        return -1;
    return 0;
}

static void insert_gpu(store_t *st, const char *agent, const char *gpu, int64_t time, double util,
                       double mem, double temp, double power)
{
    store_gpu_sample_t s = {agent, gpu, time, util, mem, 80 * GIB, temp, power};
    assert_int_equal(st->ops->gpu_samples_insert(st, &s, 1), STORE_OK);
}

static void insert_usage(store_t *st, const char *agent, const char *id, int64_t time, double cpu,
                         double mem)
{
    store_usage_sample_t s = {id, time, cpu, mem, NAN, NAN, NAN, 10, 20};
    assert_int_equal(st->ops->usage_samples_insert(st, agent, &s, 1), STORE_OK);
}

/* Each scanned row as [gpu, time, util] or [time, cpu]. */
static int collect_gpu(const store_gpu_sample_t *s, void *user)
{
    json_array_append_new(user, json_pack("[s, I, f]", s->gpu, (json_int_t)s->time,
                                          isnan(s->util_percent) ? -1.0 : s->util_percent));
    return 0;
}

static int collect_usage(const store_usage_sample_t *s, void *user)
{
    json_array_append_new(user, json_pack("[I, f]", (json_int_t)s->time,
                                          isnan(s->cpu_percent) ? -1.0 : s->cpu_percent));
    return 0;
}

static json_t *gpu_rows(store_t *st, const char *agent, json_t *gpus)
{
    json_t *rows = json_array();
    assert_int_equal(st->ops->gpu_samples_scan(st, agent, gpus, 0, INT64_MAX, collect_gpu, rows),
                     STORE_OK);
    return rows;
}

static json_t *usage_rows(store_t *st, const char *id)
{
    json_t *rows = json_array();
    assert_int_equal(st->ops->usage_samples_scan(st, id, 0, INT64_MAX, collect_usage, rows),
                     STORE_OK);
    return rows;
}

static void gpu_scan_keeps_to_the_listed_devices(void **state)
{
    fixture_t *f = *state;
    json_t *only_one = json_pack("[s]", "1"), *none = json_array();

    insert_gpu(f->st, "a1", "0", 5000, 10, GIB, 40, 100);
    insert_gpu(f->st, "a1", "1", 5000, 20, GIB, 41, 101);
    insert_gpu(f->st, "a1", "1", 4000, NAN, GIB, 41, 101);
    insert_gpu(f->st, "a2", "1", 5000, 30, GIB, 41, 101);

    json_t *rows = gpu_rows(f->st, "a1", only_one);
    char *text = json_dumps(rows, JSON_COMPACT);
    assert_string_equal(text, "[[\"1\",4000,-1.0],[\"1\",5000,20.0]]");
    free(text);
    json_decref(rows);

    rows = gpu_rows(f->st, "a1", none);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    json_decref(only_one);
    json_decref(none);
}

static void usage_insert_skips_instances_of_other_agents(void **state)
{
    fixture_t *f = *state;

    make_leased_instance(f->st, "i1", "a1", 1000, 0);
    insert_usage(f->st, "a1", "i1", 5000, 12.5, 100);
    insert_usage(f->st, "a2", "i1", 6000, 99, 100);      /* not a2's */
    insert_usage(f->st, "a1", "missing", 6000, 99, 100); /* no such instance */

    json_t *rows = usage_rows(f->st, "i1");
    char *text = json_dumps(rows, JSON_COMPACT);
    assert_string_equal(text, "[[5000,12.5]]");
    free(text);
    json_decref(rows);
    rows = usage_rows(f->st, "missing");
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);

    /* Deleting the instance deletes its samples. */
    assert_int_equal(f->st->ops->instance_delete(f->st, "i1"), STORE_OK);
    make_leased_instance(f->st, "i1", "a1", 1000, 0);
    rows = usage_rows(f->st, "i1");
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
}

static void downsample_and_prune_cover_usage(void **state)
{
    fixture_t *f = *state;
    const int64_t minute = 60000, base = 10 * minute;
    json_t *gpus = json_pack("[s, s]", "0", "1");

    make_leased_instance(f->st, "i1", "a1", 1000, 0);
    insert_gpu(f->st, "a1", "0", base + 1000, 10, GIB, 40, 100);
    insert_gpu(f->st, "a1", "0", base + 2000, 30, GIB, 40, 100);
    insert_gpu(f->st, "a1", "1", base + 2000, NAN, GIB, 40, 100);
    insert_gpu(f->st, "a1", "0", base + minute + 1000, 50, GIB, 40, 100);
    insert_usage(f->st, "a1", "i1", base + 1000, 10, 1);
    insert_usage(f->st, "a1", "i1", base + 3000, 20, 1);
    insert_usage(f->st, "a1", "i1", base + minute + 1000, 70, 1);

    assert_int_equal(f->st->ops->samples_downsample(f->st, base + minute + 30000, minute),
                     STORE_OK);
    json_t *rows = gpu_rows(f->st, "a1", gpus);
    char *text = json_dumps(rows, JSON_COMPACT);
    /* Device 0's two readings merged; device 1's single null one kept. */
    assert_string_equal(text, "[[\"0\",600000,20.0],[\"1\",602000,-1.0],[\"0\",661000,50.0]]");
    free(text);
    json_decref(rows);
    rows = usage_rows(f->st, "i1");
    text = json_dumps(rows, JSON_COMPACT);
    assert_string_equal(text, "[[600000,15.0],[661000,70.0]]");
    free(text);
    json_decref(rows);

    assert_int_equal(f->st->ops->prune(f->st, base + minute), STORE_OK);
    rows = gpu_rows(f->st, "a1", gpus);
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
    rows = usage_rows(f->st, "i1");
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
    json_decref(gpus);
}

static double at(json_t *series, const char *name, size_t i)
{
    json_t *value = json_array_get(json_object_get(series, name), i);
    return json_is_number(value) ? json_number_value(value) : NAN;
}

/* Fail with both values unless series[name][i] is expected (NAN: null). */
static void check(json_t *series, const char *name, size_t i, double expected)
{
    double got = at(series, name, i);

    if (isnan(expected) ? !isnan(got) : got != expected) {
        print_error("%s[%zu]: expected %g, got %g\n", name, i, expected, got);
        fail();
    }
}

static void gpu_series_combine_devices_while_held(void **state)
{
    fixture_t *f = *state;
    metrics_grid_t grid = {100000, 10000, 4};  /* [100 s, 140 s) in 10 s buckets */
    json_t *gpus = json_pack("[s, s]", "0", "1"), *series = json_object();
    metrics_gpu_scope_t scope = {"a1", gpus, 110000, 130000};

    /* Bucket 0 is before the hold, and bucket 3 after it. Bucket 1 has two
     * readings of both GPUs. Bucket 2 has one, where GPU 1 has no
     * utilization. GPU 2 belongs to another instance. */
    insert_gpu(f->st, "a1", "0", 105000, 99, GIB, 90, 300);
    insert_gpu(f->st, "a1", "0", 111000, 10, 1 * GIB, 40, 100);
    insert_gpu(f->st, "a1", "1", 111000, 30, 3 * GIB, 50, 200);
    insert_gpu(f->st, "a1", "0", 116000, 20, 1 * GIB, 44, 100);
    insert_gpu(f->st, "a1", "1", 116000, 40, 3 * GIB, 42, 200);
    insert_gpu(f->st, "a1", "2", 116000, 100, 9 * GIB, 99, 900);
    insert_gpu(f->st, "a1", "0", 121000, 60, 2 * GIB, 45, NAN);
    insert_gpu(f->st, "a1", "1", 121000, NAN, 2 * GIB, 46, 150);
    insert_gpu(f->st, "a1", "0", 131000, 70, GIB, 40, 100);

    assert_int_equal(metrics_usage_add(f->st, "nobody", &scope, &grid, series), STORE_OK);
    check(series, "gpu_util_percent", 0, NAN);
    check(series, "gpu_util_percent", 1, 25);        /* mean of 20 and 30 */
    check(series, "gpu_mem_used_bytes", 1, 4 * GIB);  /* sum per time, then mean */
    check(series, "gpu_mem_total_bytes", 1, 160 * GIB);
    check(series, "gpu_temp_c", 1, 47);               /* max per time: 50, 44 */
    check(series, "gpu_power_w", 1, 300);
    check(series, "gpu_util_percent", 2, 60);
    check(series, "gpu_power_w", 2, 150);
    check(series, "gpu_util_percent", 3, NAN);
    assert_int_equal(json_array_size(json_object_get(series, "instance_cpu_percent")), 4);
    json_decref(series);

    /* No GPUs: the GPU series are absent, the instance series present. */
    series = json_object();
    scope.gpus = NULL;
    assert_int_equal(metrics_usage_add(f->st, "nobody", &scope, &grid, series), STORE_OK);
    assert_null(json_object_get(series, "gpu_util_percent"));
    assert_non_null(json_object_get(series, "instance_mem_used_bytes"));
    json_decref(series);
    json_decref(gpus);
}

static void metrics_build_adds_instance_series(void **state)
{
    fixture_t *f = *state;
    const int64_t now = 1000000;

    make_leased_instance(f->st, "i1", "a1", 900000, 0);
    /* Buckets: [980 s, 990 s), [990 s, 1000 s), [1000 s, 1010 s). */
    insert_usage(f->st, "a1", "i1", now - 15000, 10, 100);
    insert_usage(f->st, "a1", "i1", now - 14000, 30, 300);
    insert_usage(f->st, "a1", "i1", now + 1000, NAN, 500);

    json_t *m = metrics_build(f->st, "i1", "a1", now, 10, 30);
    assert_non_null(m);
    json_t *series = json_object_get(m, "series");
    assert_int_equal(json_array_size(json_object_get(series, "instance_cpu_percent")), 3);
    check(series, "instance_cpu_percent", 0, 20);
    check(series, "instance_mem_used_bytes", 0, 200);
    check(series, "instance_cpu_percent", 1, NAN);
    check(series, "instance_cpu_percent", 2, NAN);
    check(series, "instance_mem_used_bytes", 2, 500);
    check(series, "instance_disk_write_bytes_per_s", 2, 20);
    check(series, "instance_net_rx_bytes_per_s", 2, NAN);
    assert_null(json_object_get(series, "gpu_util_percent"));
    json_decref(m);
}

static void insert_host(store_t *st, const char *agent, int64_t time, double cpu)
{
    store_sample_t s = {.agent = agent, .time = time, .cpu_percent = cpu,
                        .mem_used_bytes = cpu * 10, .mem_total_bytes = NAN,
                        .net_rx_bytes_per_s = NAN, .net_tx_bytes_per_s = NAN,
                        .disk_read_bytes_per_s = NAN, .disk_write_bytes_per_s = NAN};
    assert_int_equal(st->ops->sample_insert(st, &s), STORE_OK);
}

/* The agent's machine series show only samples taken while the instance
 * ran: none before started_at, none after stopped_at, none at all for an
 * instance that never started. */
static void host_series_only_while_running(void **state)
{
    fixture_t *f = *state;
    const int64_t now = 1000000;

    make_leased_instance(f->st, "ended", "a1", 975000, 995000);
    make_leased_instance(f->st, "never", "a1", 0, 0);
    make_leased_instance(f->st, "running", "a1", 990000, 0);
    /* Buckets: [960 s, 970 s), [970 s, 980 s), ... [1000 s, 1010 s). */
    insert_host(f->st, "a1", 965000, 1);
    insert_host(f->st, "a1", 972000, 2);
    insert_host(f->st, "a1", 978000, 3);
    insert_host(f->st, "a1", 985000, 4);
    insert_host(f->st, "a1", 995000, 5);
    insert_host(f->st, "a1", 996000, 7);
    insert_host(f->st, "a1", 1001000, 8);

    json_t *m = metrics_build(f->st, "ended", "a1", now, 10, 50);
    assert_non_null(m);
    json_t *series = json_object_get(m, "series");
    assert_int_equal(json_array_size(json_object_get(series, "cpu_percent")), 5);
    check(series, "cpu_percent", 0, NAN);
    check(series, "cpu_percent", 1, 3);   /* 972 s is before the start */
    check(series, "mem_used_bytes", 1, 30);
    check(series, "cpu_percent", 2, 4);
    check(series, "cpu_percent", 3, 5);   /* the sample at the stop counts, 996 s not */
    check(series, "cpu_percent", 4, NAN);
    json_decref(m);

    m = metrics_build(f->st, "never", "a1", now, 10, 50);
    assert_non_null(m);
    series = json_object_get(m, "series");
    assert_int_equal(json_array_size(json_object_get(series, "cpu_percent")), 5);
    for (size_t i = 0; i < 5; i++) {
        check(series, "cpu_percent", i, NAN);
        check(series, "mem_used_bytes", i, NAN);
    }
    json_decref(m);

    m = metrics_build(f->st, "running", "a1", now, 10, 50);
    assert_non_null(m);
    series = json_object_get(m, "series");
    check(series, "cpu_percent", 2, NAN);
    check(series, "cpu_percent", 3, 6);   /* mean of 5 and 7 */
    check(series, "cpu_percent", 4, 8);   /* open end while it runs */
    json_decref(m);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, store_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(gpu_scan_keeps_to_the_listed_devices),
        T(usage_insert_skips_instances_of_other_agents),
        T(downsample_and_prune_cover_usage),
        T(gpu_series_combine_devices_while_held),
        T(metrics_build_adds_instance_series),
        T(host_series_only_while_running),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
