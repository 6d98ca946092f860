/* `nimdeck server`: parse options, run the server until SIGINT or SIGTERM. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "util/service.h"

static void server_usage(FILE *out)
{
    fprintf(out,
            "usage: nimdeck server [--data DIR] [--api HOST:PORT] [--gateway-url URL]\n"
            "                      [--active-window SECONDS] [--log-lines N]\n"
            "                      [--agent-timeout SECONDS] [--retention-days DAYS]\n"
            "                      [--downsample-after-hours HOURS] [--web-root DIR]\n"
            "\n"
            "Run the REST API and the store.\n"
            "\n"
            "  --data DIR               data folder: database, vault key, admin-token\n"
            "                           (default ./nimdeck-data, created with mode 0700)\n"
            "  --api HOST:PORT          address the API listens on (default 127.0.0.1:8470)\n"
            "  --gateway-url URL        public base URL of the gateway, used to build\n"
            "                           endpoints (default http://127.0.0.1:8471)\n"
            "  --active-window SECONDS  an instance without requests for this long is\n"
            "                           idle (default 60)\n"
            "  --log-lines N            console lines kept per instance (default 10000)\n"
            "  --agent-timeout SECONDS  an agent that has not polled for work for this\n"
            "                           long is lost, and its running instances fail\n"
            "                           (default 90)\n"
            "  --retention-days DAYS    request records and machine samples older than\n"
            "                           this are deleted (default 30)\n"
            "  --downsample-after-hours HOURS\n"
            "                           machine samples older than this are merged into\n"
            "                           one sample per minute per agent (default 24);\n"
            "                           request records are kept as they are\n"
            "  --web-root DIR           serve the web UI from DIR (the repository's web/\n"
            "                           folder) instead of the copy built into the binary,\n"
            "                           so that edits show on reload (development)\n"
            "  --help                   show this help\n");
}

/* Parse a positive integer option; exits 2 naming the value when invalid. */
static long server_parse_positive(const char *option, const char *text, long max)
{
    long value;

    if (service_parse_long(text, 1, max, &value) != 0) {
        fprintf(stderr, "nimdeck server: invalid %s '%s': expected an integer from 1 to %ld\n",
                option, text, max);
        exit(2);
    }
    return value;
}

int server_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"data", required_argument, NULL, 'd'},
        {"api", required_argument, NULL, 'a'},
        {"gateway-url", required_argument, NULL, 'g'},
        {"active-window", required_argument, NULL, 'w'},
        {"log-lines", required_argument, NULL, 'l'},
        {"agent-timeout", required_argument, NULL, 't'},
        {"retention-days", required_argument, NULL, 'r'},
        {"downsample-after-hours", required_argument, NULL, 's'},
        {"web-root", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    server_options_t opts = {.data_dir = "./nimdeck-data",
                             .listen_host = "127.0.0.1",
                             .listen_port = 8470,
                             .gateway_url = "http://127.0.0.1:8471",
                             .active_window_s = 60};
    char host[256], err[512];
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'd':
            opts.data_dir = optarg;
            break;
        case 'a':
            if (service_parse_hostport(optarg, "127.0.0.1", host, sizeof(host),
                                       &opts.listen_port) != 0) {
                fprintf(stderr, "nimdeck server: invalid --api '%s': expected HOST:PORT\n",
                        optarg);
                return 2;
            }
            opts.listen_host = host;
            break;
        case 'g':
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                fprintf(stderr,
                        "nimdeck server: invalid --gateway-url '%s': expected http:// or "
                        "https:// URL\n",
                        optarg);
                return 2;
            }
            opts.gateway_url = optarg;
            break;
        case 'w':
            opts.active_window_s = (int)server_parse_positive("--active-window", optarg, 86400);
            break;
        case 'l':
            opts.log_lines_max = (size_t)server_parse_positive("--log-lines", optarg, 10000000);
            break;
        case 't':
            opts.agent_timeout_s = (int)server_parse_positive("--agent-timeout", optarg, 86400);
            break;
        case 'r':
            opts.retention_days = (int)server_parse_positive("--retention-days", optarg, 36500);
            break;
        case 's':
            opts.downsample_after_hours =
                (int)server_parse_positive("--downsample-after-hours", optarg, 876000);
            break;
        case 'W':
            opts.web_root = optarg;
            break;
        case 'h':
            server_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "nimdeck server: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            server_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nimdeck server: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    service_block_signals();
    server_t *srv = server_start(&opts, err, sizeof(err));
    if (srv == NULL) {
        fprintf(stderr, "nimdeck server: %s\n", err);
        return 1;
    }
    printf("nimdeck server listening on %s\n", server_url(srv));
    printf("admin token in %s/admin-token\n", opts.data_dir);
    fflush(stdout);

    int sig = service_wait_signal();
    fprintf(stderr, "nimdeck server: signal %d, stopping\n", sig);
    server_stop(srv);
    return 0;
}
