/* The records post: its JSON text, written directly (a post carries up to
 * thousands of records, and building a jansson tree of them cost more than
 * the loop thread spends on the requests), and the HTTP POST on one libcurl
 * handle that keeps its connection to the server. */
#include "gateway/gw_records_post.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        if (c == '"' || c == '\\') {
            escape[1] = (char)c;
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

/* A count that is unknown when negative: null. */
static int gw_text_nullable(buf_t *out, int64_t v)
{
    return v >= 0 ? gw_text_int(out, v) : buf_append(out, "null", 4);
}

static int gw_text_record(buf_t *out, const gw_record_t *r)
{
    int rc = buf_append_str(out, "{\"instance_id\":");

    rc |= gw_text_string(out, r->instance_id);
    rc |= buf_append_str(out, ",\"token_id\":");
    rc |= r->token_id[0] ? gw_text_string(out, r->token_id) : buf_append(out, "null", 4);
    rc |= buf_append_str(out, ",\"time\":");
    rc |= gw_text_int(out, r->time);
    rc |= buf_append_str(out, ",\"status\":");
    rc |= gw_text_int(out, r->status);
    rc |= buf_append_str(out, ",\"latency_ms\":");
    rc |= gw_text_int(out, r->latency_ms);
    rc |= buf_append_str(out, ",\"ttfb_ms\":");
    rc |= gw_text_nullable(out, r->ttfb_ms);
    rc |= buf_append_str(out, ",\"prompt_tokens\":");
    rc |= gw_text_nullable(out, r->prompt_tokens);
    rc |= buf_append_str(out, ",\"completion_tokens\":");
    rc |= gw_text_nullable(out, r->completion_tokens);
    rc |= buf_append_str(out, r->cancelled ? ",\"cancelled\":true" : ",\"cancelled\":false");
    /* Only estimated records carry the flag, so the usual record reads the
     * same to a server that does not know it. */
    if (r->usage_estimated)
        rc |= buf_append_str(out, ",\"usage_estimated\":true");
    rc |= buf_append(out, "}", 1);
    return rc;
}

int gw_records_text(const char *gateway_id, const gw_record_t *records, size_t num_records,
                    const gw_activity_t *activity, size_t num_activity, buf_t *out)
{
    int rc = buf_append_str(out, "{\"gateway_id\":");

    rc |= gw_text_string(out, gateway_id);
    rc |= buf_append_str(out, ",\"records\":[");
    for (size_t i = 0; i < num_records; i++) {
        if (i > 0)
            rc |= buf_append(out, ",", 1);
        rc |= gw_text_record(out, &records[i]);
    }
    rc |= buf_append_str(out, "],\"activity\":[");
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

    if (gw_records_text(gateway_id, records, num_records, activity, num_activity, &text) == 0)
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
