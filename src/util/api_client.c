/* Blocking JSON client for the server's REST API. */
#include "util/api_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util/buf.h"

static pthread_once_t api_client_once = PTHREAD_ONCE_INIT;

static void api_client_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void api_client_global_init(void)
{
    pthread_once(&api_client_once, api_client_init_once);
}

static size_t api_on_body(char *data, size_t size, size_t nmemb, void *user)
{
    buf_t *body = user;
    size_t len = size * nmemb;

    /* Responses of the API are small JSON documents; 64 MiB is far beyond them. */
    if (body->len + len > 64u * 1024 * 1024)
        return 0;
    return buf_append(body, data, len) == 0 ? len : 0;
}

static int api_on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    const atomic_int *cancel = user;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(cancel) ? 1 : 0;
}

static void api_read_error(api_result_t *res)
{
    json_t *error = json_object_get(res->body, "error");
    const char *value;

    if (!json_is_object(error))
        return;
    if ((value = json_string_value(json_object_get(error, "message"))) != NULL)
        snprintf(res->error, sizeof(res->error), "%s", value);
    if ((value = json_string_value(json_object_get(error, "code"))) != NULL)
        snprintf(res->error_code, sizeof(res->error_code), "%s", value);
    if ((value = json_string_value(json_object_get(error, "field"))) != NULL)
        snprintf(res->error_field, sizeof(res->error_field), "%s", value);
}

int api_call(const char *base_url, const char *token, const char *method, const char *path,
             const json_t *body, long timeout_ms, api_result_t *res)
{
    return api_call_cancellable(base_url, token, method, path, body, timeout_ms, NULL, res);
}

int api_call_cancellable(const char *base_url, const char *token, const char *method,
                         const char *path, const json_t *body, long timeout_ms,
                         const atomic_int *cancel, api_result_t *res)
{
    struct curl_slist *headers = NULL;
    buf_t url = BUF_INIT, auth = BUF_INIT, response = BUF_INIT;
    char *payload = NULL;
    CURLcode code;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    api_client_global_init();

    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        snprintf(res->error, sizeof(res->error), "cannot initialise libcurl");
        return -1;
    }

    buf_printf(&url, "%s%s", base_url, path);
    curl_easy_setopt(curl, CURLOPT_URL, url.data);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 30000L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, api_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
    if (cancel != NULL) {
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, api_on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)cancel);
    }

    headers = curl_slist_append(headers, "Accept: application/json");
    if (token != NULL) {
        buf_printf(&auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth.data);
    }
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload ? payload : "null");
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

    code = curl_easy_perform(curl);
    if (code == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(res->error, sizeof(res->error), "request to %s cancelled", url.data);
        goto out;
    }
    if (code != CURLE_OK) {
        snprintf(res->error, sizeof(res->error), "request to %s failed: %s", url.data,
                 curl_easy_strerror(code));
        goto out;
    }

    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    if (response.len > 0)
        res->body = json_loadb(response.data, response.len, 0, NULL);
    if (res->status >= 400) {
        snprintf(res->error, sizeof(res->error), "server responded with HTTP %ld", res->status);
        api_read_error(res);
    }
    rc = 0;

out:
    /* The Authorization line contains the token, so wipe it before freeing. */
    if (auth.data != NULL)
        memset(auth.data, 0, auth.len);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(payload);
    buf_free(&url);
    buf_free(&auth);
    buf_free(&response);
    return rc;
}

void api_result_free(api_result_t *res)
{
    json_decref(res->body);
    res->body = NULL;
}
