/* Resource counters of a container from the Engine API's one-shot stats. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/agent_docker_internal.h"

static double agent_docker_number(const json_t *value)
{
    return json_is_number(value) ? json_number_value(value) : NAN;
}

/* Memory in use as `docker stats` shows it: the usage without the page
 * cache that the kernel can drop (inactive_file on cgroup v2,
 * total_inactive_file on v1). */
static double agent_docker_memory_used(const json_t *memory)
{
    const json_t *stats = json_object_get(memory, "stats");
    double usage = agent_docker_number(json_object_get(memory, "usage"));
    double inactive = agent_docker_number(json_object_get(stats, "inactive_file"));

    if (isnan(inactive))
        inactive = agent_docker_number(json_object_get(stats, "total_inactive_file"));
    if (!isnan(inactive) && inactive <= usage)
        usage -= inactive;
    return usage;
}

/* A container without a memory limit reports the machine's memory as its
 * limit, which is no limit at all. */
static double agent_docker_memory_limit(const json_t *memory)
{
    double limit = agent_docker_number(json_object_get(memory, "limit"));
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);

    if (isnan(limit) || limit <= 0)
        return NAN;
    if (pages > 0 && page_size > 0 && limit >= (double)pages * (double)page_size)
        return NAN;
    return limit;
}

/* Sum rx_bytes and tx_bytes over the container's interfaces. A container
 * on the host network has none of its own, so both stay NAN. */
static void agent_docker_network(const json_t *networks, agent_usage_t *out)
{
    const char *name;
    json_t *net;

    out->net_rx_bytes = out->net_tx_bytes = NAN;
    if (!json_is_object(networks) || json_object_size(networks) == 0)
        return;
    out->net_rx_bytes = out->net_tx_bytes = 0;
    json_object_foreach((json_t *)networks, name, net) {
        out->net_rx_bytes += agent_docker_number(json_object_get(net, "rx_bytes"));
        out->net_tx_bytes += agent_docker_number(json_object_get(net, "tx_bytes"));
    }
}

/* Sum the block I/O entries: "Read"/"Write" on cgroup v1, "read"/"write" on
 * v2. No entries at all leaves both NAN. */
static void agent_docker_block_io(const json_t *blkio, agent_usage_t *out)
{
    const json_t *entries = json_object_get(blkio, "io_service_bytes_recursive");
    json_t *entry;
    size_t i;

    out->disk_read_bytes = out->disk_write_bytes = NAN;
    if (!json_is_array(entries))
        return;
    out->disk_read_bytes = out->disk_write_bytes = 0;
    json_array_foreach(entries, i, entry) {
        const char *op = json_string_value(json_object_get(entry, "op"));
        double value = agent_docker_number(json_object_get(entry, "value"));
        if (op == NULL || isnan(value))
            continue;
        if (strcasecmp(op, "read") == 0)
            out->disk_read_bytes += value;
        else if (strcasecmp(op, "write") == 0)
            out->disk_write_bytes += value;
    }
}

int agent_docker_sample(agent_runtime_handle_t *h, agent_usage_t *out)
{
    docker_response_t res;
    char path[200];
    json_t *doc = NULL;
    int rc = -1;

    snprintf(path, sizeof(path), "/containers/%s/stats?stream=false&one-shot=true",
             h->container_id);
    if (docker_call(&h->client, "GET", path, NULL, NULL, 10000, &res) == 0 && res.status == 200)
        doc = json_loadb(res.body.data != NULL ? res.body.data : "", res.body.len, 0, NULL);
    docker_response_free(&res);
    if (doc == NULL)
        return -1;

    const json_t *cpu = json_object_get(json_object_get(doc, "cpu_stats"), "cpu_usage");
    const json_t *memory = json_object_get(doc, "memory_stats");
    double cpu_ns = agent_docker_number(json_object_get(cpu, "total_usage"));

    /* A stopped container reports empty stats. */
    if (!isnan(cpu_ns) && cpu_ns > 0) {
        out->cpu_seconds = cpu_ns / 1e9;
        out->mem_used_bytes = agent_docker_memory_used(memory);
        out->mem_limit_bytes = agent_docker_memory_limit(memory);
        agent_docker_network(json_object_get(doc, "networks"), out);
        agent_docker_block_io(json_object_get(doc, "blkio_stats"), out);
        rc = 0;
    }
    json_decref(doc);
    return rc;
}
