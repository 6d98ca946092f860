/* The agent's health probe of an instance. */
#include "agent/agent_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "util/api_client.h"

static size_t agent_http_discard(char *data, size_t size, size_t nmemb, void *user)
{
    (void)data;
    (void)user;
    return size * nmemb;
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
