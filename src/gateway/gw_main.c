/* `nimdeck gateway`: options, then run the gateway until SIGINT or SIGTERM. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "util/log.h"
#include "util/service.h"

#define GW_DEFAULT_SERVER "http://127.0.0.1:8470"
#define GW_DEFAULT_LISTEN "127.0.0.1:8471"

static void gw_usage(FILE *out)
{
    fprintf(out,
            "usage: nimdeck gateway [--server URL] [--token-file FILE | --token TOKEN]\n"
            "                       [--listen HOST:PORT] [LIMIT OPTIONS]\n"
            "\n"
            "Serve every running instance under /serve/PATH/ behind gateway-token checks,\n"
            "streaming responses and recording usage for the server.\n"
            "\n"
            "  --server URL        the nimdeck server (default $NIMDECK_SERVER, else\n"
            "                      %s)\n"
            "  --token-file FILE   read an admin api-scope token from FILE, such as the\n"
            "                      server's DATA/admin-token\n"
            "  --token TOKEN       the token itself (default $NIMDECK_TOKEN); other local\n"
            "                      users can see it in the process list, so prefer\n"
            "                      --token-file or NIMDECK_TOKEN\n"
            "  --listen HOST:PORT  address to serve on (default %s; port 0 picks one)\n"
            "  --help              show this help\n"
            "\n"
            "Limits and timeouts (also taken by 'nimdeck up'):\n",
            GW_DEFAULT_SERVER, GW_DEFAULT_LISTEN);
    gateway_limit_options_help(out);
}

static const char *gw_env_or(const char *name, const char *fallback)
{
    const char *value = getenv(name);

    return value != NULL && value[0] != '\0' ? value : fallback;
}

int gateway_main(int argc, char **argv)
{
    static const struct option options[] = {
        {"server", required_argument, NULL, 's'},
        {"token", required_argument, NULL, 't'},
        {"token-file", required_argument, NULL, 'f'},
        {"listen", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *server = gw_env_or("NIMDECK_SERVER", GW_DEFAULT_SERVER);
    const char *token = gw_env_or("NIMDECK_TOKEN", NULL);
    const char *listen = GW_DEFAULT_LISTEN;
    char host[256], err[512], token_text[512];
    gateway_limits_t limits = {0};
    int port, opt;

    if (gateway_take_limit_options(&argc, argv, &limits, err, sizeof(err)) != 0) {
        fprintf(stderr, "nimdeck gateway: %s; see --help\n", err);
        return 2;
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 's': server = optarg; break;
        case 't': token = optarg; break;
        case 'f':
            if (service_read_token_file(optarg, token_text, sizeof(token_text), err,
                                        sizeof(err)) != 0) {
                fprintf(stderr, "nimdeck gateway: %s\n", err);
                return 2;
            }
            token = token_text;
            break;
        case 'l': listen = optarg; break;
        case 'h': gw_usage(stdout); return 0;
        default: gw_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nimdeck gateway: unexpected argument '%s'; see --help\n", argv[optind]);
        return 2;
    }
    if (service_parse_hostport(listen, "127.0.0.1", host, sizeof(host), &port) != 0) {
        fprintf(stderr, "nimdeck gateway: invalid --listen '%s': expected HOST:PORT with a port "
                "of 0-65535\n", listen);
        return 2;
    }
    if (token == NULL) {
        fprintf(stderr, "nimdeck gateway: missing token: pass --token-file, --token or set NIMDECK_TOKEN to an "
                "admin api token (the server writes one to DATA/admin-token)\n");
        return 2;
    }

    service_block_signals();
    gateway_options_t opts = {
        .server_url = server, .api_token = token, .listen_host = host, .listen_port = port,
        .limits = limits,
    };
    gateway_t *gw = gateway_start(&opts, err, sizeof(err));
    if (gw == NULL) {
        log_error("gateway", "cannot start: %s", err);
        return 1;
    }
    log_info("gateway", "serving on http://%s:%d/serve/ for the server %s", host,
             gateway_port(gw), server);

    int sig = service_wait_signal();
    log_info("gateway", "stopping on signal %d", sig);
    gateway_stop(gw);
    return 0;
}
