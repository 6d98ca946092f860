/* Unit tests for inserting request records into the SQLite store: batches
 * split into INSERTs of 32 rows plus single-row INSERTs for the rest, records
 * of missing instances dropped, the prepared statements kept between
 * batches and finalized when the store closes. Also the metrics of stored
 * token counts too large to add. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/metrics.h"
#include "store/store.h"
#include "store_fixture.h"

/* Rows per INSERT in store_sqlite_records.c. */
#define CHUNK 32
/* Records of one batch whose instance exists: three full chunks and a
 * tail of 4 single-row INSERTs. */
#define STORED (3 * CHUNK + 4)
/* Records of the batch that name a missing instance, all in the middle. */
#define MISSING 20
#define BATCH (STORED + MISSING)
#define BASE_TIME 1700000000000LL

static const char *const live_ids[] = {"rec-a", "rec-b", "rec-c"};
#define NUM_LIVE (sizeof(live_ids) / sizeof(live_ids[0]))

static int fixture_setup(void **state)
{
    return store_fixture_setup(state, "records");
}

static void add_instance(store_t *st, const char *id)
{
    store_instance_t inst;

    memset(&inst, 0, sizeof(inst));
    snprintf(inst.id, sizeof(inst.id), "%s", id);
    snprintf(inst.name, sizeof(inst.name), "sim");
    snprintf(inst.project, sizeof(inst.project), "demo");
    snprintf(inst.owner, sizeof(inst.owner), "admin");
    snprintf(inst.status, sizeof(inst.status), "queued");
    snprintf(inst.queue, sizeof(inst.queue), "default");
    snprintf(inst.path, sizeof(inst.path), "%s", id);
    inst.created_at = 2000;
    inst.config = json_pack("{s:s}", "name", "sim");
    assert_int_equal(st->ops->instance_insert(st, &inst, NULL, NULL, 0), STORE_OK);
    store_instance_clear(&inst);
}

/* The three live instances, and one made and deleted again, whose records
 * must be dropped like those of an id that never existed. */
static void add_instances(store_t *st)
{
    store_user_t admin = {.admin = 1, .created_at = 1000};

    snprintf(admin.name, sizeof(admin.name), "admin");
    assert_int_equal(st->ops->user_create(st, &admin), STORE_OK);
    for (size_t i = 0; i < NUM_LIVE; i++)
        add_instance(st, live_ids[i]);
    add_instance(st, "rec-deleted");
    assert_int_equal(st->ops->instance_delete(st, "rec-deleted"), STORE_OK);
}

/* Missing ids of the batch: the deleted instance and more never-created
 * ids than the store's per-batch lookup cache has slots for (16), so live
 * ids after them are looked up again. */
static char missing_ids[MISSING][32];

/* Fill records with a batch: STORED records of the live instances in
 * turn, with the MISSING records of missing instances after the first 40.
 * Record i of the batch has time base + i and latency i, so a stored row
 * identifies the record it came from. */
static void make_batch(store_record_t *records, int64_t base)
{
    size_t live = 0;

    for (size_t m = 0; m < MISSING; m++)
        snprintf(missing_ids[m], sizeof(missing_ids[m]), m == 0 ? "rec-deleted" : "gone-%02zu",
                 m);
    for (size_t i = 0; i < BATCH; i++) {
        int is_missing = i >= 40 && i < 40 + MISSING;

        records[i] = (store_record_t){
            .instance_id = is_missing ? missing_ids[i - 40] : live_ids[live++ % NUM_LIVE],
            .token_id = i % 3 == 0 ? NULL : "tok-1",
            .time = base + (int64_t)i,
            .status = i % 5 == 0 ? 502 : 200,
            .latency_ms = (double)i,
            .ttfb_ms = i % 4 == 0 ? -1 : (double)i / 2,
            .prompt_tokens = (int64_t)i,
            .completion_tokens = 2 * (int64_t)i,
            .cancelled = i % 7 == 0,
        };
    }
}

typedef struct {
    const store_record_t *batch;   /* what was inserted, to compare against */
    int64_t base;                  /* time of batch[0] */
    size_t seen;
    int64_t last_time;
} scan_check_t;

/* Check a stored row against the batch record with the same time. */
static int check_stored(const store_record_t *got, void *user)
{
    scan_check_t *check = user;
    int64_t index = got->time - check->base;

    assert_true(index >= 0 && index < BATCH);
    const store_record_t *want = &check->batch[index];
    assert_string_equal(got->instance_id, want->instance_id);
    if (want->token_id == NULL)
        assert_null(got->token_id);
    else
        assert_string_equal(got->token_id, want->token_id);
    assert_int_equal(got->status, want->status);
    assert_true(got->latency_ms == want->latency_ms);
    assert_true(got->ttfb_ms == want->ttfb_ms);
    assert_int_equal(got->prompt_tokens, want->prompt_tokens);
    assert_int_equal(got->completion_tokens, want->completion_tokens);
    assert_int_equal(got->cancelled, want->cancelled);
    /* Scans return time order, which is batch order here. */
    assert_true(got->time > check->last_time);
    check->last_time = got->time;
    check->seen++;
    return 0;
}

static int count_row(const store_record_t *record, void *user)
{
    (void)record;
    (*(size_t *)user)++;
    return 0;
}

/* Records of instance_id stored with from <= time < to. */
static size_t count_records(store_t *st, const char *instance_id, int64_t from, int64_t to)
{
    size_t count = 0;

    assert_int_equal(st->ops->records_scan(st, instance_id, from, to, count_row, &count),
                     STORE_OK);
    return count;
}

/* Every record of a live instance in the batch at base is stored with its
 * fields, and nothing else is. */
static void check_batch_stored(store_t *st, const store_record_t *batch, int64_t base)
{
    size_t total = 0;

    for (size_t i = 0; i < NUM_LIVE; i++) {
        scan_check_t check = {.batch = batch, .base = base, .last_time = base - 1};
        size_t expected = 0;

        for (size_t r = 0; r < BATCH; r++)
            expected += strcmp(batch[r].instance_id, live_ids[i]) == 0;
        assert_int_equal(st->ops->records_scan(st, live_ids[i], base, base + BATCH,
                                               check_stored, &check),
                         STORE_OK);
        assert_int_equal(check.seen, expected);
        total += check.seen;
    }
    assert_int_equal(total, STORED);
    for (size_t m = 0; m < MISSING; m++)
        assert_int_equal(count_records(st, missing_ids[m], 0, INT64_MAX), 0);
}

static void records_chunks_skip_missing(void **state)
{
    fixture_t *f = *state;
    static store_record_t batch[BATCH];

    add_instances(f->st);
    make_batch(batch, BASE_TIME);
    assert_int_equal(f->st->ops->records_insert(f->st, batch, BATCH), STORE_OK);
    check_batch_stored(f->st, batch, BASE_TIME);

    /* A second batch runs on the statements kept from the first. */
    static store_record_t again[BATCH];
    make_batch(again, BASE_TIME + 1000);
    assert_int_equal(f->st->ops->records_insert(f->st, again, BATCH), STORE_OK);
    check_batch_stored(f->st, again, BASE_TIME + 1000);
    size_t all = 0;
    for (size_t i = 0; i < NUM_LIVE; i++)
        all += count_records(f->st, live_ids[i], 0, INT64_MAX);
    assert_int_equal(all, 2 * STORED);
}

/* Batch sizes around the chunk size: only single-row INSERTs, exactly one
 * chunk, a chunk and one row, and a batch whose records are all dropped. */
static void records_sizes_around_chunk(void **state)
{
    fixture_t *f = *state;
    const size_t sizes[] = {1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK};
    store_record_t records[2 * CHUNK];
    int64_t base = BASE_TIME;
    size_t expected = 0;

    add_instances(f->st);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (size_t i = 0; i < sizes[s]; i++)
            records[i] = (store_record_t){.instance_id = "rec-a", .time = base + (int64_t)i,
                                          .status = 200, .latency_ms = 1, .ttfb_ms = -1};
        assert_int_equal(f->st->ops->records_insert(f->st, records, sizes[s]), STORE_OK);
        expected += sizes[s];
        base += 1000;
        if (count_records(f->st, "rec-a", 0, INT64_MAX) != expected)
            fail_msg("after a batch of %zu: expected %zu records, got %zu", sizes[s], expected,
                     count_records(f->st, "rec-a", 0, INT64_MAX));
    }

    for (size_t i = 0; i < CHUNK + 1; i++)
        records[i] = (store_record_t){.instance_id = "rec-deleted", .time = base, .status = 200};
    assert_int_equal(f->st->ops->records_insert(f->st, records, CHUNK + 1), STORE_OK);
    assert_int_equal(f->st->ops->records_insert(f->st, records, 0), STORE_OK);
    assert_int_equal(count_records(f->st, "rec-a", 0, INT64_MAX), expected);
    assert_int_equal(count_records(f->st, "rec-deleted", 0, INT64_MAX), 0);
}

/* Closing the store finalizes the kept statements: SQLite then frees the
 * connection, and every byte it had allocated, at once. An unfinalized
 * statement would keep the connection alive as a zombie. */
static void records_close_frees_statements(void **state)
{
    fixture_t *f = *state;
    static store_record_t batch[BATCH];
    char err[256];

    add_instances(f->st);
    make_batch(batch, BASE_TIME);
    assert_int_equal(f->st->ops->records_insert(f->st, batch, BATCH), STORE_OK);
    assert_true(sqlite3_memory_used() > 0);

    store_close(f->st);
    f->st = NULL;
    if (sqlite3_memory_used() != 0)
        fail_msg("SQLite still holds %lld bytes after the store closed: a statement was not "
                 "finalized", (long long)sqlite3_memory_used());

    /* The records were committed, and a reopened store inserts again. */
    f->st = store_open_sqlite(f->db_path, err, sizeof(err));
    assert_non_null(f->st);
    check_batch_stored(f->st, batch, BASE_TIME);
    make_batch(batch, BASE_TIME + 1000);
    assert_int_equal(f->st->ops->records_insert(f->st, batch, BATCH), STORE_OK);
    check_batch_stored(f->st, batch, BASE_TIME + 1000);
}

/* The integer at index of the metrics series key. */
static json_int_t series_at(json_t *metrics, const char *key, size_t index)
{
    json_t *series = json_object_get(json_object_get(metrics, "series"), key);
    json_t *value = json_array_get(series, index);

    assert_true(json_is_integer(value));
    return json_integer_value(value);
}

static json_int_t total_of(json_t *metrics, const char *key)
{
    json_t *value = json_object_get(json_object_get(metrics, "totals"), key);

    assert_true(json_is_integer(value));
    return json_integer_value(value);
}

/* Token counts whose sums overflow int64, as a database written before the
 * range checks may hold: each bucket's sum and the totals stop at
 * INT64_MAX. Run under UBSan, a signed overflow would abort the test. */
static void metrics_token_sums_saturate(void **state)
{
    fixture_t *f = *state;
    const int64_t now = BASE_TIME;   /* a multiple of 10 s */
    store_record_t records[] = {
        /* Bucket 0: prompt counts whose sum overflows, and completion
         * counts that add up to INT64_MAX exactly. */
        {.instance_id = "rec-a", .time = now, .status = 200, .ttfb_ms = -1,
         .prompt_tokens = INT64_MAX, .completion_tokens = INT64_MAX - 1},
        {.instance_id = "rec-a", .time = now + 1, .status = 200, .ttfb_ms = -1,
         .prompt_tokens = INT64_MAX, .completion_tokens = 1},
        /* Bucket 1: small counts, which take the totals past INT64_MAX. */
        {.instance_id = "rec-a", .time = now + 10000, .status = 200, .ttfb_ms = -1,
         .prompt_tokens = 5, .completion_tokens = 7},
        /* Bucket 2: a record of another instance, not counted. */
        {.instance_id = "rec-b", .time = now + 20000, .status = 200, .ttfb_ms = -1,
         .prompt_tokens = INT64_MAX, .completion_tokens = INT64_MAX},
    };

    add_instances(f->st);
    assert_int_equal(f->st->ops->records_insert(f->st, records, 4), STORE_OK);

    json_t *m = metrics_build(f->st, "rec-a", NULL, now + 20000, 10, 30);
    assert_non_null(m);
    assert_int_equal(json_array_size(json_object_get(m, "time")), 3);
    assert_int_equal(series_at(m, "requests", 0), 2);
    assert_int_equal(series_at(m, "prompt_tokens", 0), INT64_MAX);
    assert_int_equal(series_at(m, "completion_tokens", 0), INT64_MAX);
    assert_int_equal(series_at(m, "prompt_tokens", 1), 5);
    assert_int_equal(series_at(m, "completion_tokens", 1), 7);
    assert_int_equal(series_at(m, "prompt_tokens", 2), 0);

    assert_int_equal(total_of(m, "requests"), 3);
    assert_int_equal(total_of(m, "prompt_tokens"), INT64_MAX);
    assert_int_equal(total_of(m, "completion_tokens"), INT64_MAX);
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(records_chunks_skip_missing, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(records_sizes_around_chunk, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(records_close_frees_statements, fixture_setup,
                                        store_fixture_teardown),
        cmocka_unit_test_setup_teardown(metrics_token_sums_saturate, fixture_setup,
                                        store_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
