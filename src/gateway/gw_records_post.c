/* The records post: its JSON text and the HTTP POST on one libcurl handle
 * that keeps its connection. The text is written directly, with the records
 * as compact rows, because a post carries thousands of records and a JSON
 * object per record cost the server more CPU than the request itself. */
#include "gateway/gw_records_post.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/rec_rows.h"

struct gw_poster {
    CURL *curl;
    struct curl_slist *headers;
    char *auth;            /* the Authorization line, wiped before it is freed */
    char *url;
    buf_t response;
};

/* Append s as a JSON string, quotes included. */
static int gw_text_string(buf_t *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = buf_append(out, "\"", 1);
    const char *run = s;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc |= buf_append(out, run, (size_t)(s - run));
        char escape[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        /* The rows string is mostly digits and newlines: \n keeps it short. */
        if (c == '"' || c == '\\' || c == '\n') {
            escape[1] = c == '\n' ? 'n' : (char)c;
            rc |= buf_append(out, escape, 2);
        } else {
            rc |= buf_append(out, escape, 6);
        }
        run = s + 1;
    }
    rc |= buf_append(out, run, (size_t)(s - run));
    rc |= buf_append(out, "\"", 1);
    return rc;
}

static int gw_text_int(buf_t *out, int64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%" PRId64, v);

    return buf_append(out, digits, (size_t)n);
}

/* Distinct strings of one post, each sent once and referred to by index. */
typedef struct {
    const char **items;
    size_t count;
    size_t last;   /* index of the latest hit: records come in runs */
} gw_strings_t;

/* A batch rarely names more than a few instances and tokens. Past this
 * many, new strings are appended without a search (the format allows
 * repeats), so a post with thousands of tokens stays linear. */
#define GW_STRINGS_SEARCH 64

/* The index of s in strings, added when missing; items has room for one
 * string per record of the post. */
static size_t gw_strings_index(gw_strings_t *strings, const char *s)
{
    if (strings->count > 0 && strcmp(strings->items[strings->last], s) == 0)
        return strings->last;
    for (size_t i = 0; i < strings->count && i < GW_STRINGS_SEARCH; i++) {
        if (strcmp(strings->items[i], s) == 0)
            return strings->last = i;
    }
    strings->items[strings->count] = s;
    return strings->last = strings->count++;
}

static int gw_text_strings(buf_t *out, const char *key, const gw_strings_t *strings)
{
    int rc = buf_printf(out, ",\"%s\":[", key);

    for (size_t i = 0; i < strings->count; i++) {
        if (i > 0)
            rc |= buf_append(out, ",", 1);
        rc |= gw_text_string(out, strings->items[i]);
    }
    rc |= buf_append(out, "]", 1);
    return rc;
}

/* A count above the server's maximum (util/rec_rows.h) would get the whole
 * post rejected, so an implausible count from a model server is sent as
 * unknown. */
static int64_t gw_row_count(int64_t count)
{
    return count < 0 || count > REC_TOKENS_MAX ? -1 : count;
}

/* A start time is kept within the server's range for the same reason. */
static int64_t gw_row_time(int64_t ms)
{
    if (ms < 0)
        return 0;
    return ms > REC_TIME_MAX ? REC_TIME_MAX : ms;
}

/* A duration is capped at the server's maximum for the same reason. */
static int64_t gw_row_duration(int64_t ms, int64_t unknown)
{
    if (ms < 0)
        return unknown;
    return ms > REC_DURATION_MAX_MS ? REC_DURATION_MAX_MS : ms;
}

/* Append the "instances", "tokens" and "rows" members for records. */
static int gw_text_rows(buf_t *out, const gw_record_t *records, size_t num_records)
{
    size_t slots = num_records ? num_records : 1;
    gw_strings_t instances = {calloc(slots, sizeof(char *)), 0, 0};
    gw_strings_t tokens = {calloc(slots, sizeof(char *)), 0, 0};
    buf_t rows = BUF_INIT;
    int rc = instances.items == NULL || tokens.items == NULL ? -1 : 0;

    for (size_t i = 0; i < num_records && rc == 0; i++) {
        const gw_record_t *r = &records[i];
        rec_row_t row = {
            .instance = (int64_t)gw_strings_index(&instances, r->instance_id),
            .token = r->token_id[0] ? (int64_t)gw_strings_index(&tokens, r->token_id) : -1,
            .time = gw_row_time(r->time),
            .status = r->status,
            .latency_ms = gw_row_duration(r->latency_ms, 0),
            .ttfb_ms = gw_row_duration(r->ttfb_ms, -1),
            .prompt_tokens = gw_row_count(r->prompt_tokens),
            .completion_tokens = gw_row_count(r->completion_tokens),
            .flags = (r->cancelled ? REC_ROW_CANCELLED : 0) |
                     (r->usage_estimated ? REC_ROW_USAGE_ESTIMATED : 0),
        };
        rc = rec_rows_append(&rows, &row);
    }

    if (rc == 0) {
        rc |= gw_text_strings(out, "instances", &instances);
        rc |= gw_text_strings(out, "tokens", &tokens);
        rc |= buf_append_str(out, ",\"rows\":");
        /* The rows hold only digits, '-', spaces and newlines. */
        rc |= gw_text_string(out, rows.data ? rows.data : "");
    }
    free(instances.items);
    free(tokens.items);
    buf_free(&rows);
    return rc;
}

int gw_records_text(const char *gateway_id, int64_t batch, const gw_record_t *records,
                    size_t num_records, const gw_activity_t *activity, size_t num_activity,
                    buf_t *out)
{
    int rc = buf_append_str(out, "{\"gateway_id\":");

    rc |= gw_text_string(out, gateway_id);
    rc |= buf_append_str(out, ",\"batch\":");
    rc |= gw_text_int(out, batch);
    rc |= gw_text_rows(out, records, num_records);
    rc |= buf_append_str(out, ",\"activity\":[");
    for (size_t i = 0; i < num_activity; i++) {
        rc |= buf_append_str(out, i > 0 ? ",{\"instance_id\":" : "{\"instance_id\":");
        rc |= gw_text_string(out, activity[i].instance_id);
        rc |= buf_append_str(out, ",\"last_activity_at\":");
        rc |= gw_text_int(out, activity[i].last_activity_at);
        rc |= buf_append_str(out, ",\"in_flight\":");
        rc |= gw_text_int(out, activity[i].in_flight);
        rc |= buf_append(out, "}", 1);
    }
    rc |= buf_append_str(out, "]}");
    return rc != 0 ? -1 : 0;
}

json_t *gw_records_json(const char *gateway_id, const gw_record_t *records, size_t num_records,
                        const gw_activity_t *activity, size_t num_activity)
{
    buf_t text = BUF_INIT;
    json_t *doc = NULL;

    if (gw_records_text(gateway_id, 1, records, num_records, activity, num_activity, &text) == 0)
        doc = json_loadb(text.data, text.len, 0, NULL);
    buf_free(&text);
    return doc;
}

/* ---- the poster ---- */

static size_t gw_poster_on_body(char *data, size_t size, size_t nmemb, void *user)
{
    buf_t *response = user;

    return buf_append(response, data, size * nmemb) == 0 ? size * nmemb : 0;
}

gw_poster_t *gw_poster_new(const char *server_url, const char *path, const char *api_token)
{
    gw_poster_t *poster = calloc(1, sizeof(*poster));
    buf_t text = BUF_INIT;

    if (poster == NULL)
        return NULL;
    poster->curl = curl_easy_init();
    buf_printf(&text, "%s%s", server_url, path);
    poster->url = buf_steal(&text);
    if (api_token != NULL) {
        buf_printf(&text, "Authorization: Bearer %s", api_token);
        poster->auth = buf_steal(&text);
    }
    poster->headers = curl_slist_append(NULL, "Accept: application/json");
    poster->headers = curl_slist_append(poster->headers, "Content-Type: application/json");
    if (poster->auth != NULL)
        poster->headers = curl_slist_append(poster->headers, poster->auth);
    if (poster->curl == NULL || poster->url == NULL || poster->headers == NULL ||
        (api_token != NULL && poster->auth == NULL)) {
        gw_poster_free(poster);
        return NULL;
    }

    CURL *curl = poster->curl;
    curl_easy_setopt(curl, CURLOPT_URL, poster->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, poster->headers);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, gw_poster_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &poster->response);
    return poster;
}

/* The server's error.message from a JSON error body, else a fallback. */
static void gw_poster_error(const buf_t *response, long status, char *error, size_t error_size)
{
    json_t *doc = response->len > 0 ? json_loadb(response->data, response->len, 0, NULL) : NULL;
    const char *message = json_string_value(json_object_get(json_object_get(doc, "error"),
                                                            "message"));

    if (message != NULL)
        snprintf(error, error_size, "%s", message);
    else
        snprintf(error, error_size, "server responded with HTTP %ld", status);
    json_decref(doc);
}

int gw_poster_post(gw_poster_t *poster, const char *body, size_t len, long timeout_ms,
                   long *status, char *error, size_t error_size)
{
    CURL *curl = poster->curl;

    *status = 0;
    error[0] = '\0';
    buf_reset(&poster->response);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);

    CURLcode code = curl_easy_perform(curl);
    if (code != CURLE_OK) {
        snprintf(error, error_size, "request to %s failed: %s", poster->url,
                 curl_easy_strerror(code));
        return -1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    if (*status >= 400)
        gw_poster_error(&poster->response, *status, error, error_size);
    return 0;
}

void gw_poster_free(gw_poster_t *poster)
{
    if (poster == NULL)
        return;
    if (poster->curl != NULL)
        curl_easy_cleanup(poster->curl);
    curl_slist_free_all(poster->headers);
    /* The Authorization line contains the token. */
    if (poster->auth != NULL)
        memset(poster->auth, 0, strlen(poster->auth));
    free(poster->auth);
    free(poster->url);
    buf_free(&poster->response);
    free(poster);
}
