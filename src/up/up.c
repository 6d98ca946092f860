/* `nimdeck up`: the server, the gateway and a local agent in one process.
 *
 * The three components still talk to each other over HTTP on loopback, as
 * they do when run apart, so this is the same architecture on one machine. */
#include "up/up.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/docker_client.h"
#include "gateway/gateway.h"
#include "server/server.h"
#include "util/log.h"
#include "util/service.h"

typedef struct {
    const char *data_dir;
    char api_host[256];
    int api_port;
    char gateway_host[256];
    int gateway_port;
    const char *gateway_url;
    int active_window_s;
    int log_lines;
    int retention_days;
    int downsample_after_hours;
    int run_agent;
    const char *agent_name;
    const char *web_root;
    const char *gpus;
    const char *docker_host;
} up_options_t;

static void up_print_help(FILE *out)
{
    fprintf(out,
            "usage: nimdeck up [--data DIR] [--api HOST:PORT] [--gateway HOST:PORT]\n"
            "                  [--gateway-url URL] [--active-window SECONDS]\n"
            "                  [--log-lines N] [--retention-days DAYS]\n"
            "                  [--downsample-after-hours HOURS]\n"
            "                  [--agent-name NAME] [--no-agent] [--web-root DIR]\n"
            "                  [--gpus LIST] [--docker-host unix:///PATH]\n"
            "\n"
            "Run the server, the gateway and a local agent in one process, with the\n"
            "SQLite store in DIR. Stop with Ctrl-C or SIGTERM: process instances are\n"
            "stopped first, while docker containers keep running and the next\n"
            "'nimdeck up' with the same data, API address and agent name adopts them.\n"
            "\n"
            "  --data DIR            data folder (default ./nimdeck-data); holds the\n"
            "                        database, the vault key and admin-token\n"
            "  --api HOST:PORT       REST API listen address (default 127.0.0.1:8470);\n"
            "                        port 0 picks a free port, shown in the banner\n"
            "  --gateway HOST:PORT   gateway listen address (default 127.0.0.1:8471);\n"
            "                        port 0 picks a free port, shown in the banner\n"
            "  --gateway-url URL     public base URL of endpoints (default\n"
            "                        http://GATEWAY-HOST:GATEWAY-PORT, with the port\n"
            "                        the gateway listens on)\n"
            "  --active-window S     seconds without requests before an instance\n"
            "                        shows as idle (default 60)\n"
            "  --log-lines N         console lines kept per instance (default 10000)\n"
            "  --retention-days DAYS request records and machine samples older than\n"
            "                        this are deleted (default 30)\n"
            "  --downsample-after-hours HOURS\n"
            "                        machine samples older than this are merged into\n"
            "                        one sample per minute per agent (default 24);\n"
            "                        request records are kept as they are\n"
            "  --agent-name NAME     name of the local agent (default: the host name)\n"
            "  --no-agent            do not run a local agent\n"
            "  --gpus LIST           GPUs the local agent may give instances: all\n"
            "                        (default: every GPU NVML lists), none, or device\n"
            "                        ids such as 0,1; see 'nimdeck agent --help'\n"
            "  --docker-host URL     the Docker daemon's socket for docker instances\n"
            "                        (default $DOCKER_HOST, else\n"
            "                        unix:///var/run/docker.sock)\n"
            "  --web-root DIR        serve the web UI from DIR (the repository's web/\n"
            "                        folder) instead of the copy built into the binary,\n"
            "                        so that edits show on reload (development)\n"
            "  --help                show this help\n"
            "\n"
            "Gateway limits and timeouts:\n");
    gateway_limit_options_help(out);
}

static int up_parse_int(const char *text, const char *option, int min, int max, int *out)
{
    long value;

    if (service_parse_long(text, min, max, &value) != 0) {
        fprintf(stderr, "nimdeck up: invalid %s '%s': expected an integer from %d to %d\n",
                option, text, min, max);
        return -1;
    }
    *out = (int)value;
    return 0;
}

/* Returns 0 to run, 1 when help was printed, 2 on bad usage. */
static int up_parse_args(int argc, char **argv, up_options_t *opts)
{
    enum {
        OPT_GATEWAY_URL = 256,
        OPT_ACTIVE_WINDOW,
        OPT_LOG_LINES,
        OPT_RETENTION_DAYS,
        OPT_DOWNSAMPLE_AFTER_HOURS,
        OPT_AGENT_NAME,
        OPT_NO_AGENT,
        OPT_WEB_ROOT,
        OPT_GPUS,
        OPT_DOCKER_HOST
    };
    static const struct option long_options[] = {
        {"data", required_argument, NULL, 'd'},
        {"api", required_argument, NULL, 'a'},
        {"gateway", required_argument, NULL, 'g'},
        {"gateway-url", required_argument, NULL, OPT_GATEWAY_URL},
        {"active-window", required_argument, NULL, OPT_ACTIVE_WINDOW},
        {"log-lines", required_argument, NULL, OPT_LOG_LINES},
        {"retention-days", required_argument, NULL, OPT_RETENTION_DAYS},
        {"downsample-after-hours", required_argument, NULL, OPT_DOWNSAMPLE_AFTER_HOURS},
        {"agent-name", required_argument, NULL, OPT_AGENT_NAME},
        {"no-agent", no_argument, NULL, OPT_NO_AGENT},
        {"web-root", required_argument, NULL, OPT_WEB_ROOT},
        {"gpus", required_argument, NULL, OPT_GPUS},
        {"docker-host", required_argument, NULL, OPT_DOCKER_HOST},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 'd':
            opts->data_dir = optarg;
            break;
        case 'a':
        case 'g': {
            char *host = c == 'a' ? opts->api_host : opts->gateway_host;
            int *port = c == 'a' ? &opts->api_port : &opts->gateway_port;
            if (service_parse_hostport(optarg, "127.0.0.1", host, sizeof(opts->api_host), port) != 0) {
                fprintf(stderr, "nimdeck up: invalid address '%s' for --%s: expected HOST:PORT "
                        "with a port from 0 to 65535\n", optarg, c == 'a' ? "api" : "gateway");
                return 2;
            }
            break;
        }
        case OPT_GATEWAY_URL:
            opts->gateway_url = optarg;
            break;
        case OPT_ACTIVE_WINDOW:
            if (up_parse_int(optarg, "--active-window", 1, 86400, &opts->active_window_s) != 0)
                return 2;
            break;
        case OPT_LOG_LINES:
            if (up_parse_int(optarg, "--log-lines", 1, 10000000, &opts->log_lines) != 0)
                return 2;
            break;
        case OPT_RETENTION_DAYS:
            if (up_parse_int(optarg, "--retention-days", 1, 36500, &opts->retention_days) != 0)
                return 2;
            break;
        case OPT_DOWNSAMPLE_AFTER_HOURS:
            if (up_parse_int(optarg, "--downsample-after-hours", 1, 876000,
                             &opts->downsample_after_hours) != 0)
                return 2;
            break;
        case OPT_AGENT_NAME:
            opts->agent_name = optarg;
            break;
        case OPT_NO_AGENT:
            opts->run_agent = 0;
            break;
        case OPT_WEB_ROOT:
            opts->web_root = optarg;
            break;
        case OPT_GPUS:
            opts->gpus = optarg;
            break;
        case OPT_DOCKER_HOST: {
            docker_client_t client;
            char err[512];
            if (docker_client_init(&client, optarg, err, sizeof(err)) != 0) {
                fprintf(stderr, "nimdeck up: %s\n", err);
                return 2;
            }
            opts->docker_host = optarg;
            break;
        }
        case 'h':
            up_print_help(stdout);
            return 1;
        default:
            fprintf(stderr, "nimdeck up: unknown or incomplete option '%s'; run 'nimdeck up --help'\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nimdeck up: unexpected argument '%s'; run 'nimdeck up --help'\n",
                argv[optind]);
        return 2;
    }
    return 0;
}

/* Reserve a free port for the gateway when --gateway requests port 0: bind
 * a socket to HOST:0 without listening and return its descriptor, with the
 * port in *port. The server builds every endpoint from the gateway's URL
 * when it starts, before the gateway listens, so the port must be known
 * first. While the socket stays bound no other program gets the port from
 * the kernel, and the gateway can still bind it because both sockets set
 * SO_REUSEADDR and this one never listens (Linux). NOTE: a program that
 * binds this port by number with SO_REUSEADDR and listens first still
 * takes it, and the gateway then fails to start. Returns -1 with a
 * message in err on failure. */
static int up_reserve_port(const char *host, int *port, char *err, size_t err_size)
{
    struct sockaddr_storage addr = {0};
    socklen_t len;
    int family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
    int one = 1;

    if (family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
        in6->sin6_family = AF_INET6;
        len = sizeof(*in6);
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            goto invalid;
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
        in4->sin_family = AF_INET;
        len = sizeof(*in4);
        if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
            goto invalid;
    }

    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, len) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        snprintf(err, err_size, "cannot pick a free port on %s for the gateway: %s", host,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                     : ((struct sockaddr_in *)&addr)->sin_port);
    return fd;

invalid:
    snprintf(err, err_size, "invalid listen address \"%s\": use an IPv4 or IPv6 address", host);
    return -1;
}

/* Write the default public base URL of the gateway into out, with an IPv6
 * address in brackets as URLs need it. */
static void up_gateway_url(const char *host, int port, char *out, size_t size)
{
    if (strchr(host, ':') != NULL)
        snprintf(out, size, "http://[%s]:%d", host, port);
    else
        snprintf(out, size, "http://%s:%d", host, port);
}

static void up_print_banner(const up_options_t *opts, server_t *server, const char *gateway_url,
                            int agent_running)
{
    char data_path[PATH_MAX];
    char binary[PATH_MAX];

    if (realpath(opts->data_dir, data_path) == NULL)
        snprintf(data_path, sizeof(data_path), "%s", opts->data_dir);

    /* Show the binary by its full path: a fresh build is not on PATH. */
    ssize_t n = readlink("/proc/self/exe", binary, sizeof(binary) - 1);
    if (n <= 0)
        n = snprintf(binary, sizeof(binary), "nimdeck");
    binary[n] = '\0';

    printf("nimdeck is up (pid %ld)\n"
           "  web UI:      %s/\n"
           "  API:         %s/api/v1\n"
           "  gateway:     %s/serve/\n"
           "  agent:       %s\n"
           "  data:        %s\n"
           "  admin token: %s/admin-token (api scope; the CLI reads it from there\n"
           "               when run in the folder that holds ./nimdeck-data)\n"
           "\n"
           "Next: %s launch --config examples/nim-sim.json\n"
           "      %s tokens create        (a gateway token for the endpoint)\n",
           (long)getpid(), server_url(server), server_url(server), gateway_url,
           agent_running ? "local, serving queue 'default'" : "none (--no-agent)", data_path,
           data_path, binary, binary);
    fflush(stdout);
}

int up_main(int argc, char **argv)
{
    up_options_t opts = {
        .data_dir = "./nimdeck-data",
        .api_host = "127.0.0.1",
        .api_port = 8470,
        .gateway_host = "127.0.0.1",
        .gateway_port = 8471,
        .active_window_s = 60,
        .run_agent = 1,
    };
    char err[512] = "";
    char gateway_url[512];
    gateway_t *gateway = NULL;
    agent_t *agent = NULL;
    int rc = 1;
    int reserved_fd = -1;
    gateway_limits_t gateway_limits = {0};

    if (gateway_take_limit_options(&argc, argv, &gateway_limits, err, sizeof(err)) != 0) {
        fprintf(stderr, "nimdeck up: %s; run 'nimdeck up --help'\n", err);
        return 2;
    }
    int parsed = up_parse_args(argc, argv, &opts);
    if (parsed != 0)
        return parsed == 1 ? 0 : 2;

    if (opts.gateway_port == 0) {
        reserved_fd = up_reserve_port(opts.gateway_host, &opts.gateway_port, err, sizeof(err));
        if (reserved_fd < 0) {
            fprintf(stderr, "nimdeck up: %s\n", err);
            return 1;
        }
    }
    if (opts.gateway_url != NULL)
        snprintf(gateway_url, sizeof(gateway_url), "%s", opts.gateway_url);
    else
        up_gateway_url(opts.gateway_host, opts.gateway_port, gateway_url, sizeof(gateway_url));

    /* Threads started below inherit the blocked mask, so only this thread
     * takes SIGINT and SIGTERM. */
    service_block_signals();

    server_options_t server_opts = {
        .data_dir = opts.data_dir,
        .listen_host = opts.api_host,
        .listen_port = opts.api_port,
        .gateway_url = gateway_url,
        .active_window_s = opts.active_window_s,
        .log_lines_max = (size_t)opts.log_lines,
        .retention_days = opts.retention_days,
        .downsample_after_hours = opts.downsample_after_hours,
        .web_root = opts.web_root,
    };
    server_t *server = server_start(&server_opts, err, sizeof(err));
    if (server == NULL) {
        fprintf(stderr, "nimdeck up: server failed to start: %s\n", err);
        if (reserved_fd >= 0)
            close(reserved_fd);
        return 1;
    }

    gateway_options_t gateway_opts = {
        .server_url = server_url(server),
        .api_token = server_admin_token(server),
        .listen_host = opts.gateway_host,
        .listen_port = opts.gateway_port,
        .limits = gateway_limits,
    };
    gateway = gateway_start(&gateway_opts, err, sizeof(err));
    if (reserved_fd >= 0)
        close(reserved_fd);
    reserved_fd = -1;
    if (gateway == NULL) {
        fprintf(stderr, "nimdeck up: gateway failed to start: %s\n", err);
        goto out;
    }

    if (opts.run_agent) {
        agent_options_t agent_opts = {
            .server_url = server_url(server),
            .api_token = server_admin_token(server),
            .name = opts.agent_name,
            .advertise_host = "127.0.0.1",
            .gpus = opts.gpus,
            .docker_host = opts.docker_host,
        };
        agent = agent_start(&agent_opts, err, sizeof(err));
        if (agent == NULL) {
            fprintf(stderr, "nimdeck up: agent failed to start: %s\n", err);
            goto out;
        }
    }

    up_print_banner(&opts, server, gateway_url, agent != NULL);

    int sig = service_wait_signal();
    log_info("up", "received %s, stopping instances and services", strsignal(sig));
    rc = 0;

out:
    /* The agent stops its process instances first, while the server can
     * still record their final status. Containers keep running. */
    if (agent != NULL)
        agent_stop(agent);
    if (gateway != NULL)
        gateway_stop(gateway);
    server_stop(server);
    log_info("up", "stopped");
    return rc;
}
