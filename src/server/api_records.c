/* Reading the request records of a gateway's post, with the same range
 * checks for JSON record objects and for compact rows. */
#include "server/api_records.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/rec_rows.h"

static const api_field_t api_record_fields[] = {
    {"instance_id", API_JSON_STRING, 1},
    {"token_id", API_JSON_STRING | API_JSON_NULL, 0},
    {"time", API_JSON_INTEGER, 1},
    {"status", API_JSON_INTEGER, 1},
    {"latency_ms", API_JSON_NUMBER, 0},
    {"ttfb_ms", API_JSON_NUMBER | API_JSON_NULL, 0},
    {"prompt_tokens", API_JSON_INTEGER | API_JSON_NULL, 0},
    {"completion_tokens", API_JSON_INTEGER | API_JSON_NULL, 0},
    {"cancelled", API_JSON_BOOLEAN | API_JSON_INTEGER, 0},
    /* NOTE: accepted but not stored yet; the token counts are kept as sent. */
    {"usage_estimated", API_JSON_BOOLEAN, 0},
    {NULL, 0, 0},
};

/* Fail with a 400 for member key of records[index]. */
static int api_record_fail(api_error_t *err, size_t index, const char *key, const char *problem)
{
    char field[64];

    snprintf(field, sizeof(field), "records[%zu].%s", index, key);
    return api_fail(err, 400, "bad_request", field, "\"%s\" %s", field, problem);
}

/* Check that member key of item, when present and not null, is a number
 * from min to max. */
static int api_check_range(api_error_t *err, json_t *item, size_t index, const char *key,
                           double min, double max)
{
    json_t *value = json_object_get(item, key);
    char problem[96];

    if (value == NULL || json_is_null(value))
        return 0;
    double number = json_number_value(value);
    if (isfinite(number) && number >= min && number <= max)
        return 0;
    snprintf(problem, sizeof(problem), "must be from %.0f to %.0f", min, max);
    return api_record_fail(err, index, key, problem);
}

/* Check the values of a record object already checked for its types. */
static int api_check_record(api_error_t *err, json_t *item, size_t index)
{
    json_t *token = json_object_get(item, "token_id");

    if (json_string_length(json_object_get(item, "instance_id")) > REC_ID_MAX)
        return api_record_fail(err, index, "instance_id", "is longer than 127 bytes");
    if (json_string_length(token) > REC_ID_MAX)
        return api_record_fail(err, index, "token_id", "is longer than 127 bytes");

    if (api_check_range(err, item, index, "time", 0, (double)REC_TIME_MAX) != 0 ||
        api_check_range(err, item, index, "status", 100, 599) != 0 ||
        api_check_range(err, item, index, "latency_ms", 0, (double)REC_DURATION_MAX_MS) != 0 ||
        api_check_range(err, item, index, "ttfb_ms", 0, (double)REC_DURATION_MAX_MS) != 0 ||
        api_check_range(err, item, index, "prompt_tokens", 0, (double)REC_TOKENS_MAX) != 0 ||
        api_check_range(err, item, index, "completion_tokens", 0, (double)REC_TOKENS_MAX) != 0)
        return -1;
    return 0;
}

/* Read one record object, already checked. */
static void api_read_record(json_t *item, store_record_t *r)
{
    json_t *ttfb = json_object_get(item, "ttfb_ms");

    r->instance_id = json_string_value(json_object_get(item, "instance_id"));
    r->token_id = json_string_value(json_object_get(item, "token_id"));
    r->time = json_integer_value(json_object_get(item, "time"));
    r->status = (int)json_integer_value(json_object_get(item, "status"));
    r->latency_ms = json_number_value(json_object_get(item, "latency_ms"));
    r->ttfb_ms = json_is_number(ttfb) ? json_number_value(ttfb) : -1;
    r->prompt_tokens = json_integer_value(json_object_get(item, "prompt_tokens"));
    r->completion_tokens = json_integer_value(json_object_get(item, "completion_tokens"));
    r->cancelled = json_is_true(json_object_get(item, "cancelled")) ||
                   json_integer_value(json_object_get(item, "cancelled")) != 0;
}

/* The instance or token ids at key: an array of strings the rows refer to
 * by index, each at most REC_ID_MAX bytes. Returns the count, or -1 with
 * err set. */
static long api_read_ids(api_error_t *err, json_t *ids, const char *key, const char ***out)
{
    json_t *item;
    size_t i, count = json_array_size(ids);

    *out = calloc(count ? count : 1, sizeof(**out));
    if (*out == NULL)
        return api_fail(err, 500, "internal", NULL, "out of memory reading %s", key);
    json_array_foreach(ids, i, item) {
        if (!json_is_string(item) || json_string_length(item) > REC_ID_MAX) {
            free(*out);
            *out = NULL;
            return api_fail(err, 400, "bad_request", key,
                            "\"%s[%zu]\" must be a string of at most %d bytes", key, i,
                            REC_ID_MAX);
        }
        (*out)[i] = json_string_value(item);
    }
    return (long)count;
}

/* Append the rows of text to batch (which has room for them). Returns 0,
 * or -1 with err set. */
static int api_read_rows(api_error_t *err, json_t *rows, const char **instances,
                         long num_instances, const char **tokens, long num_tokens,
                         store_record_t *batch, size_t *count)
{
    const char *text = json_string_value(rows);
    size_t len = json_string_length(rows), pos = 0;
    char reason[160];
    rec_row_t row;
    int rc;

    while ((rc = rec_rows_next(text, len, &pos, (size_t)num_instances, (size_t)num_tokens, &row,
                               reason, sizeof(reason))) == 1) {
        batch[(*count)++] = (store_record_t){
            .instance_id = instances[row.instance],
            .token_id = row.token >= 0 ? tokens[row.token] : NULL,
            .time = row.time,
            .status = (int)row.status,
            .latency_ms = (double)row.latency_ms,
            .ttfb_ms = (double)row.ttfb_ms,
            /* Unknown counts are stored as 0, as a JSON null is. */
            .prompt_tokens = row.prompt_tokens < 0 ? 0 : row.prompt_tokens,
            .completion_tokens = row.completion_tokens < 0 ? 0 : row.completion_tokens,
            .cancelled = (row.flags & REC_ROW_CANCELLED) != 0,
        };
    }
    if (rc < 0)
        return api_fail(err, 400, "bad_request", "rows", "invalid \"rows\": %s", reason);
    return 0;
}

/* Check and read the record objects into batch. */
static int api_read_objects(api_error_t *err, json_t *objects, store_record_t *batch,
                            size_t *count)
{
    json_t *item;
    size_t i;

    if (api_check_items(err, objects, "records", api_record_fields) != 0)
        return -1;
    json_array_foreach(objects, i, item) {
        if (api_check_record(err, item, i) != 0)
            return -1;
        api_read_record(item, &batch[(*count)++]);
    }
    return 0;
}

int api_read_records(api_error_t *err, json_t *body, store_record_t **records, size_t *count)
{
    json_t *objects = json_object_get(body, "records");
    json_t *rows = json_object_get(body, "rows");
    const char **instances = NULL, **tokens = NULL;
    size_t total = json_array_size(objects) +
                   rec_rows_count(json_string_value(rows), json_string_length(rows));

    *records = NULL;
    *count = 0;
    if (total > API_RECORDS_MAX)
        return api_fail(err, 400, "bad_request", NULL,
                        "\"records\" and \"rows\" hold %zu records; at most %d are accepted "
                        "in one post", total, API_RECORDS_MAX);

    long num_instances = api_read_ids(err, json_object_get(body, "instances"), "instances",
                                      &instances);
    long num_tokens = num_instances < 0
                          ? -1
                          : api_read_ids(err, json_object_get(body, "tokens"), "tokens", &tokens);
    store_record_t *batch = calloc(total ? total : 1, sizeof(*batch));
    int rc = num_instances < 0 || num_tokens < 0 ? -1 : 0;

    if (rc == 0 && batch == NULL)
        rc = api_fail(err, 500, "internal", NULL, "out of memory reading records");
    if (rc == 0)
        rc = api_read_objects(err, objects, batch, count);
    if (rc == 0 && rows != NULL)
        rc = api_read_rows(err, rows, instances, num_instances, tokens, num_tokens, batch, count);

    /* The id strings stay alive in body; the arrays only pointed at them. */
    free(instances);
    free(tokens);
    if (rc != 0) {
        free(batch);
        *count = 0;
        return -1;
    }
    *records = batch;
    return 0;
}
