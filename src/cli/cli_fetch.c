/* GET requests whose body the client commands pass on unparsed (CSV
 * downloads), with the same error reporting as cli_request. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_internal.h"

#define CLI_FETCH_TIMEOUT_MS 30000L
#define CLI_FETCH_MAX (64u * 1024 * 1024)

static size_t cli_on_body(char *data, size_t size, size_t nmemb, void *user)
{
    buf_t *body = user;
    size_t len = size * nmemb;

    /* Returning less than len makes libcurl fail the transfer. */
    if (body->len + len > CLI_FETCH_MAX)
        return 0;
    return buf_append(body, data, len) == 0 ? len : 0;
}

/* Fill res with the error of a non-2xx response: the message of the API's
 * {"error": {...}} body, or the bare status when the body is not one. */
static void cli_read_failure(const buf_t *body, long status, api_result_t *res)
{
    json_t *doc = body->len > 0 ? json_loadb(body->data, body->len, 0, NULL) : NULL;
    json_t *error = json_object_get(doc, "error");
    const char *message = json_string_value(json_object_get(error, "message"));
    const char *code = json_string_value(json_object_get(error, "code"));

    res->status = status;
    if (message != NULL)
        snprintf(res->error, sizeof(res->error), "%s", message);
    else
        snprintf(res->error, sizeof(res->error), "server responded with HTTP %ld", status);
    if (code != NULL)
        snprintf(res->error_code, sizeof(res->error_code), "%s", code);
    json_decref(doc);
}

/* Perform the GET. Returns 0 when a response arrived, with its status in
 * *status, or -1 with the cause in res->error. */
static int cli_fetch(const cli_ctx_t *ctx, const char *path, const char *accept, buf_t *body,
                     long *status, api_result_t *res)
{
    struct curl_slist *headers = NULL;
    buf_t url = BUF_INIT, auth = BUF_INIT, accept_line = BUF_INIT;
    CURL *curl;
    CURLcode code = CURLE_OUT_OF_MEMORY;

    api_client_global_init();
    curl = curl_easy_init();
    if (curl == NULL) {
        snprintf(res->error, sizeof(res->error), "cannot initialise libcurl");
        return -1;
    }

    if (buf_printf(&url, "%s%s", ctx->server, path) != 0 ||
        buf_printf(&auth, "Authorization: Bearer %s", ctx->token) != 0 ||
        buf_printf(&accept_line, "Accept: %s", accept) != 0)
        goto out;
    headers = curl_slist_append(headers, accept_line.data);
    headers = curl_slist_append(headers, auth.data);

    curl_easy_setopt(curl, CURLOPT_URL, url.data);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, CLI_FETCH_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cli_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    code = curl_easy_perform(curl);
    if (code == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);

out:
    if (code == CURLE_WRITE_ERROR)
        snprintf(res->error, sizeof(res->error), "request to %s failed: the response is over %u MiB",
                 url.data, CLI_FETCH_MAX / (1024 * 1024));
    else if (code != CURLE_OK)
        snprintf(res->error, sizeof(res->error), "request to %s failed: %s",
                 url.data != NULL ? url.data : path, curl_easy_strerror(code));

    /* The Authorization line contains the token, so wipe it before freeing. */
    if (auth.data != NULL)
        explicit_bzero(auth.data, auth.len);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    buf_free(&url);
    buf_free(&auth);
    buf_free(&accept_line);
    return code == CURLE_OK ? 0 : -1;
}

int cli_request_text(cli_ctx_t *ctx, const char *path, const char *accept, buf_t *body)
{
    api_result_t res;
    long status = 0;

    memset(&res, 0, sizeof(res));
    if (cli_connect(ctx) != 0)
        return CLI_USAGE;
    if (cli_fetch(ctx, path, accept, body, &status, &res) != 0) {
        cli_report_failure(ctx, &res);
        buf_free(body);
        return CLI_FAILED;
    }
    if (status >= 200 && status < 300)
        return CLI_OK;

    cli_read_failure(body, status, &res);
    cli_report_failure(ctx, &res);
    buf_free(body);
    return CLI_FAILED;
}

void cli_write_text(const buf_t *text)
{
    const char *line = text->data;
    const char *end = text->data + text->len;

    if (text->data == NULL)
        return;
    if (!isatty(STDOUT_FILENO)) {
        fwrite(text->data, 1, text->len, stdout);
        return;
    }

    /* Server text on a terminal could carry escape sequences, so each line
     * goes through cli_print_visible. A NUL byte, which the server never
     * sends, would end what is shown of its line. */
    while (line < end) {
        const char *newline = memchr(line, '\n', (size_t)(end - line));
        size_t len = newline != NULL ? (size_t)(newline - line) : (size_t)(end - line);
        buf_t one = BUF_INIT;

        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (buf_append(&one, line, len) == 0 && one.data != NULL)
            cli_print_visible(stdout, one.data, NULL);
        buf_free(&one);
        fputc('\n', stdout);
        line = newline != NULL ? newline + 1 : end;
    }
}
