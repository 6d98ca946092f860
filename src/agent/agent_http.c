/* HTTP calls the agent makes beyond api_call. */
#include "agent/agent_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "util/buf.h"

/* API responses are small JSON documents, so this only bounds a misbehaving server. */
#define AGENT_HTTP_MAX_BODY (16u * 1024 * 1024)

static size_t agent_http_on_body(char *data, size_t size, size_t nmemb, void *user)
{
    buf_t *body = user;
    size_t len = size * nmemb;

    if (body->len + len > AGENT_HTTP_MAX_BODY)
        return 0;
    return buf_append(body, data, len) == 0 ? len : 0;
}

static size_t agent_http_discard(char *data, size_t size, size_t nmemb, void *user)
{
    (void)data;
    (void)user;
    return size * nmemb;
}

static int agent_http_on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow,
                                  curl_off_t ultotal, curl_off_t ulnow)
{
    const atomic_int *cancel = user;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(cancel) ? 1 : 0;
}

static void agent_http_read_error(api_result_t *res)
{
    json_t *error = json_object_get(res->body, "error");
    const char *value;

    snprintf(res->error, sizeof(res->error), "server responded with HTTP %ld", res->status);
    if (!json_is_object(error))
        return;
    if ((value = json_string_value(json_object_get(error, "message"))) != NULL)
        snprintf(res->error, sizeof(res->error), "%s", value);
    if ((value = json_string_value(json_object_get(error, "code"))) != NULL)
        snprintf(res->error_code, sizeof(res->error_code), "%s", value);
    if ((value = json_string_value(json_object_get(error, "field"))) != NULL)
        snprintf(res->error_field, sizeof(res->error_field), "%s", value);
}

int agent_http_call_cancellable(const char *base_url, const char *token, const char *method,
                                const char *path, long timeout_ms, const atomic_int *cancel,
                                api_result_t *res)
{
    struct curl_slist *headers = NULL;
    buf_t url = BUF_INIT, auth = BUF_INIT, response = BUF_INIT;
    CURLcode code;
    CURL *curl;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    api_client_global_init();
    if ((curl = curl_easy_init()) == NULL) {
        snprintf(res->error, sizeof(res->error), "cannot initialise libcurl");
        return -1;
    }

    if (buf_printf(&url, "%s%s", base_url, path) != 0 ||
        buf_printf(&auth, "Authorization: Bearer %s", token != NULL ? token : "") != 0) {
        snprintf(res->error, sizeof(res->error), "out of memory");
        goto out;
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    if (token != NULL)
        headers = curl_slist_append(headers, auth.data);

    curl_easy_setopt(curl, CURLOPT_URL, url.data);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, agent_http_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, agent_http_on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)cancel);

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
    if (res->status >= 400)
        agent_http_read_error(res);
    rc = 0;

out:
    /* The Authorization line holds the token: wipe it before freeing. */
    if (auth.data != NULL)
        memset(auth.data, 0, auth.len);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    buf_free(&url);
    buf_free(&auth);
    buf_free(&response);
    return rc;
}

long agent_http_probe(const char *url, long timeout_ms)
{
    long status = 0;
    CURL *curl;

    api_client_global_init();
    if ((curl = curl_easy_init()) == NULL)
        return 0;

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, agent_http_discard);
    /* The instance is local: an http_proxy in the agent's environment must
     * not route the probe elsewhere. */
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    return status;
}
