/* Signal handling and address parsing shared by the long-running commands. */
#include "util/service.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void service_fill_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

void service_block_signals(void)
{
    sigset_t set;

    service_fill_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* A peer that closes early must produce EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
}

void service_unblock_signals(void)
{
    sigset_t set;

    service_fill_set(&set);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGPIPE, SIG_DFL);
}

int service_wait_signal(void)
{
    sigset_t set;
    int sig = 0;

    service_fill_set(&set);
    while (sigwait(&set, &sig) != 0 && errno == EINTR)
        ;
    return sig;
}

int service_parse_hostport(const char *text, const char *default_host, char *host,
                           size_t host_size, int *port)
{
    const char *colon = strrchr(text, ':');
    const char *port_text = colon ? colon + 1 : text;
    char *end;

    errno = 0;
    long value = strtol(port_text, &end, 10);
    if (*port_text == '\0' || *end != '\0' || errno != 0 || value < 0 || value > 65535)
        return -1;

    if (colon != NULL && colon != text)
        snprintf(host, host_size, "%.*s", (int)(colon - text), text);
    else
        snprintf(host, host_size, "%s", default_host);
    *port = (int)value;
    return 0;
}

int service_parse_long(const char *text, long min, long max, long *out)
{
    char *end;

    errno = 0;
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno != 0 || value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

int service_read_token_file(const char *path, char *out, size_t out_size, char *err,
                            size_t err_size)
{
    FILE *file = fopen(path, "r");

    if (file == NULL) {
        snprintf(err, err_size, "cannot read token file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fgets(out, (int)out_size, file) == NULL)
        out[0] = '\0';
    fclose(file);

    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' ' ||
                       out[len - 1] == '\t'))
        out[--len] = '\0';
    if (len == 0) {
        snprintf(err, err_size, "token file %s is empty; it must hold an api token on its first line",
                 path);
        return -1;
    }
    return 0;
}
