/* The Docker Engine API client: requests over the daemon's unix socket. */
#include "agent/docker_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/api_client.h"

/* Error bodies and the small JSON documents of the API; logs and pull
 * progress go through docker_stream and are never kept whole. */
#define DOCKER_MAX_BODY (16u * 1024 * 1024)

int docker_client_init(docker_client_t *client, const char *host, char *err, size_t err_size)
{
    const char *source = "--docker-host";

    if (host == NULL || host[0] == '\0') {
        host = getenv("DOCKER_HOST");
        source = "DOCKER_HOST";
    }
    if (host == NULL || host[0] == '\0') {
        snprintf(client->socket_path, sizeof(client->socket_path), "%s", DOCKER_DEFAULT_SOCKET);
        return 0;
    }
    if (strncmp(host, "unix://", 7) != 0 || host[7] != '/') {
        snprintf(err, err_size, "invalid %s '%s': expected a unix socket such as "
                 "unix://" DOCKER_DEFAULT_SOCKET " (TCP daemons are not supported)", source, host);
        return -1;
    }
    if (strlen(host + 7) >= sizeof(client->socket_path)) {
        snprintf(err, err_size, "invalid %s '%s': the socket path is longer than %zu bytes",
                 source, host, sizeof(client->socket_path) - 1);
        return -1;
    }
    snprintf(client->socket_path, sizeof(client->socket_path), "%s", host + 7);
    return 0;
}

int docker_append_escaped(buf_t *out, const char *component)
{
    static const char unreserved[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";

    for (const char *p = component; *p != '\0'; p++) {
        int rc = strchr(unreserved, *p) != NULL ? buf_append(out, p, 1)
                                                : buf_printf(out, "%%%02X", (unsigned char)*p);
        if (rc != 0)
            return -1;
    }
    return 0;
}

void docker_response_free(docker_response_t *res)
{
    buf_free(&res->body);
}

typedef struct {
    CURL *curl;
    const docker_stream_t *request;   /* NULL for a plain call */
    docker_response_t *res;
    int aborted;                      /* on_data asked to stop */
} docker_transfer_t;

static int docker_is_success(CURL *curl)
{
    long status = 0;

    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return status >= 200 && status < 300;
}

static size_t docker_on_body(char *data, size_t size, size_t nmemb, void *user)
{
    docker_transfer_t *t = user;
    size_t len = size * nmemb;

    if (t->request != NULL && docker_is_success(t->curl)) {
        if (t->request->on_data(t->request->ctx, data, len) != 0) {
            t->aborted = 1;
            return 0;
        }
        return len;
    }
    if (t->res->body.len + len > DOCKER_MAX_BODY)
        return 0;
    return buf_append(&t->res->body, data, len) == 0 ? len : 0;
}

static int docker_on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow,
                              curl_off_t ultotal, curl_off_t ulnow)
{
    docker_transfer_t *t = user;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return t->request->cancelled(t->request->ctx) ? 1 : 0;
}

/* The daemon's errors are {"message": "..."}. */
static void docker_read_error(docker_response_t *res)
{
    json_t *doc;
    const char *message;

    if (res->status >= 200 && res->status < 300)
        return;
    doc = json_loadb(res->body.data != NULL ? res->body.data : "", res->body.len, 0, NULL);
    message = json_string_value(json_object_get(doc, "message"));
    if (message != NULL)
        snprintf(res->error, sizeof(res->error), "%s", message);
    else
        snprintf(res->error, sizeof(res->error), "HTTP %ld from the Docker daemon", res->status);
    json_decref(doc);
}

static void docker_transport_error(const docker_client_t *client, CURL *curl, CURLcode code,
                                   docker_response_t *res)
{
    long os_errno = 0;

    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
    if (code == CURLE_COULDNT_CONNECT && os_errno != 0)
        snprintf(res->error, sizeof(res->error),
                 "cannot connect to the Docker daemon at unix://%s: %s", client->socket_path,
                 strerror((int)os_errno));
    else
        snprintf(res->error, sizeof(res->error), "request to the Docker daemon at unix://%s "
                 "failed: %s", client->socket_path, curl_easy_strerror(code));
}

/* Run one request. body_text and headers may be NULL. */
static int docker_perform(const docker_client_t *client, const char *method, const char *path,
                          const char *body_text, const char *const *extra,
                          const docker_stream_t *request, long timeout_ms, docker_response_t *res)
{
    struct curl_slist *headers = NULL;
    buf_t url = BUF_INIT;
    docker_transfer_t transfer = {NULL, request, res, 0};
    CURLcode code;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    api_client_global_init();
    if ((transfer.curl = curl_easy_init()) == NULL ||
        buf_printf(&url, "http://docker%s", path) != 0) {
        snprintf(res->error, sizeof(res->error), "out of memory preparing a Docker request");
        goto out;
    }
    CURL *curl = transfer.curl;

    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, client->socket_path);
    curl_easy_setopt(curl, CURLOPT_URL, url.data);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, docker_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    if (request != NULL && request->cancelled != NULL) {
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, docker_on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        headers = curl_slist_append(headers, extra[i]);
    if (body_text != NULL) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body_text);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

    code = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
    if (code == CURLE_OK) {
        docker_read_error(res);
        rc = 0;
    } else if (transfer.aborted) {
        snprintf(res->error, sizeof(res->error), "%s %s: the response stream was abandoned",
                 method, path);
    } else if (code == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(res->error, sizeof(res->error), "%s %s: cancelled", method, path);
    } else {
        docker_transport_error(client, curl, code, res);
    }

out:
    curl_slist_free_all(headers);
    if (transfer.curl != NULL)
        curl_easy_cleanup(transfer.curl);
    buf_free(&url);
    return rc;
}

int docker_call(const docker_client_t *client, const char *method, const char *path,
                const json_t *body, const char *const *headers, long timeout_ms,
                docker_response_t *res)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc;

    if (body != NULL && text == NULL) {
        memset(res, 0, sizeof(*res));
        snprintf(res->error, sizeof(res->error), "out of memory encoding a Docker request");
        return -1;
    }
    rc = docker_perform(client, method, path, text, headers, NULL, timeout_ms, res);
    free(text);
    return rc;
}

int docker_stream(const docker_client_t *client, const docker_stream_t *request,
                  docker_response_t *res)
{
    return docker_perform(client, request->method, request->path, NULL, request->headers,
                          request, 0, res);
}
