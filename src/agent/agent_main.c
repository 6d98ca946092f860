/* `nimdeck agent`: parse options, start the agent, run until SIGINT or
 * SIGTERM, stop it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/docker_client.h"
#include "util/log.h"
#include "util/service.h"

#define AGENT_MAX_QUEUES 32

static void agent_print_help(FILE *out)
{
    fprintf(out,
            "usage: nimdeck agent [--server URL] [--token-file FILE | --token TOKEN] [--name NAME]\n"
            "                     [--queue Q]...\n"
            "                     [--advertise-host HOST] [--metrics-interval S] [--gpus LIST]\n"
            "                     [--docker-host unix:///PATH]\n"
            "\n"
            "Register with the server, take instances from the queues and run them on this\n"
            "machine. Stop with Ctrl-C or SIGTERM: process instances are stopped first,\n"
            "while docker containers keep running and the agent adopts them when it\n"
            "starts again with the same --name and --server.\n"
            "\n"
            "  --server URL           server base URL (default $NIMDECK_SERVER, else\n"
            "                         http://127.0.0.1:8470)\n"
            "  --token-file FILE      read an admin's api-scope token from FILE, such as\n"
            "                         the server's DATA/admin-token\n"
            "  --token TOKEN          the token itself (default $NIMDECK_TOKEN); other\n"
            "                         local users can see it in the process list, so\n"
            "                         prefer --token-file or NIMDECK_TOKEN\n"
            "  --name NAME            agent name (default: the host name)\n"
            "  --queue Q              a queue to serve; repeat for several (default: default)\n"
            "  --advertise-host HOST  address the gateway uses to reach instances here\n"
            "                         (default 127.0.0.1)\n"
            "  --metrics-interval S   seconds between machine metric samples, 1-3600\n"
            "                         (default 5)\n"
            "  --gpus LIST            GPUs that instances may use: all (default: every GPU\n"
            "                         NVML lists), none, or device ids such as 0,1 (NVML\n"
            "                         indices or GPU UUIDs). Without NVML, name the GPUs\n"
            "                         here. NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES\n"
            "                         narrow the list further\n"
            "  --docker-host URL      the Docker daemon's socket for docker instances\n"
            "                         (default $DOCKER_HOST, else unix:///var/run/docker.sock)\n"
            "  --help                 show this help\n");
}

typedef struct {
    agent_options_t options;
    const char *queues[AGENT_MAX_QUEUES + 1];
    size_t queue_count;
    char token_text[512];   /* the token read by --token-file */
} agent_cli_t;

static int agent_parse_interval(const char *text, int *out)
{
    long value;

    if (service_parse_long(text, 1, 3600, &value) != 0) {
        fprintf(stderr, "nimdeck agent: invalid --metrics-interval '%s': expected whole seconds "
                "from 1 to 3600\n", text);
        return -1;
    }
    *out = (int)value;
    return 0;
}

/* Returns 0 to run, 1 when help was printed, 2 on bad usage. */
static int agent_parse_args(int argc, char **argv, agent_cli_t *cli)
{
    enum { OPT_ADVERTISE = 256, OPT_INTERVAL, OPT_TOKEN_FILE, OPT_GPUS, OPT_DOCKER_HOST };
    static const struct option long_options[] = {
        {"server", required_argument, NULL, 's'},
        {"token", required_argument, NULL, 't'},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"name", required_argument, NULL, 'n'},
        {"queue", required_argument, NULL, 'q'},
        {"advertise-host", required_argument, NULL, OPT_ADVERTISE},
        {"metrics-interval", required_argument, NULL, OPT_INTERVAL},
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
        case 's':
            cli->options.server_url = optarg;
            break;
        case 't':
            cli->options.api_token = optarg;
            break;
        case OPT_TOKEN_FILE: {
            char err[512];
            if (service_read_token_file(optarg, cli->token_text, sizeof(cli->token_text), err,
                                        sizeof(err)) != 0) {
                fprintf(stderr, "nimdeck agent: %s\n", err);
                return 2;
            }
            cli->options.api_token = cli->token_text;
            break;
        }
        case 'n':
            cli->options.name = optarg;
            break;
        case 'q':
            if (cli->queue_count == AGENT_MAX_QUEUES) {
                fprintf(stderr, "nimdeck agent: too many --queue options: at most %d\n",
                        AGENT_MAX_QUEUES);
                return 2;
            }
            cli->queues[cli->queue_count++] = optarg;
            break;
        case OPT_ADVERTISE:
            cli->options.advertise_host = optarg;
            break;
        case OPT_INTERVAL:
            if (agent_parse_interval(optarg, &cli->options.metrics_interval_s) != 0)
                return 2;
            break;
        case OPT_GPUS:
            cli->options.gpus = optarg;
            break;
        case OPT_DOCKER_HOST: {
            docker_client_t client;
            char err[512];
            if (docker_client_init(&client, optarg, err, sizeof(err)) != 0) {
                fprintf(stderr, "nimdeck agent: %s\n", err);
                return 2;
            }
            cli->options.docker_host = optarg;
            break;
        }
        case 'h':
            agent_print_help(stdout);
            return 1;
        default:
            fprintf(stderr, "nimdeck agent: unknown or incomplete option '%s'; run 'nimdeck agent "
                    "--help'\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nimdeck agent: unexpected argument '%s'; run 'nimdeck agent --help'\n",
                argv[optind]);
        return 2;
    }
    return 0;
}

int agent_main(int argc, char **argv)
{
    agent_cli_t cli;
    char err[512];
    agent_t *agent;
    int rc;

    memset(&cli, 0, sizeof(cli));
    cli.options.server_url = getenv("NIMDECK_SERVER");
    cli.options.api_token = getenv("NIMDECK_TOKEN");
    cli.options.metrics_interval_s = 5;
    if ((rc = agent_parse_args(argc, argv, &cli)) != 0)
        return rc == 1 ? 0 : rc;
    cli.options.queues = cli.queue_count > 0 ? cli.queues : NULL;
    if (cli.options.api_token == NULL || cli.options.api_token[0] == '\0') {
        fprintf(stderr, "nimdeck agent: missing API token: pass an admin's api-scope token with "
                "--token-file or --token, or set NIMDECK_TOKEN\n");
        return 2;
    }

    service_block_signals();
    agent = agent_start(&cli.options, err, sizeof(err));
    if (agent == NULL) {
        fprintf(stderr, "nimdeck agent: %s\n", err);
        return 1;
    }

    int sig = service_wait_signal();
    log_info("agent", "received signal %d; stopping the agent", sig);
    agent_stop(agent);
    return 0;
}
