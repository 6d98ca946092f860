/* Per-instance pools of idle keep-alive connections to instances: a small
 * hash table by instance id, idle lists, and pruning when the state changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_upstream_internal.h"

void gw_upstream_limits_default(gw_upstream_limits_t *limits)
{
    limits->connect_timeout_ms = 10000;
    limits->first_byte_timeout_ms = 10u * 60 * 1000;
    limits->read_timeout_ms = 10u * 60 * 1000;
    limits->max_idle = 64;
    /* Below uvicorn's default keep-alive timeout of 5 s (its settings
     * documentation). NIM serves its API with uvicorn (it logs "Uvicorn
     * running on"), so the gateway closes an idle connection before the
     * instance does and rarely sends on one that is being closed. */
    limits->idle_timeout_ms = 4000;
}

static uint64_t gw_pool_hash(const char *key)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */

    for (; *key != '\0'; key++) {
        h ^= (unsigned char)*key;
        h *= 1099511628211ull;
    }
    return h;
}

gw_pools_t *gw_pools_new(uv_loop_t *loop, const gw_upstream_limits_t *limits)
{
    gw_pools_t *pools = calloc(1, sizeof(*pools));
    gw_upstream_limits_t def;

    if (pools == NULL)
        return NULL;
    pools->loop = loop;
    gw_upstream_limits_default(&def);
    pools->limits = limits != NULL ? *limits : def;
    if (pools->limits.connect_timeout_ms == 0)
        pools->limits.connect_timeout_ms = def.connect_timeout_ms;
    if (pools->limits.first_byte_timeout_ms == 0)
        pools->limits.first_byte_timeout_ms = def.first_byte_timeout_ms;
    if (pools->limits.read_timeout_ms == 0)
        pools->limits.read_timeout_ms = def.read_timeout_ms;
    if (pools->limits.idle_timeout_ms == 0)
        pools->limits.idle_timeout_ms = def.idle_timeout_ms;
    return pools;
}

/* Parse "IPv4:PORT", "[IPv6]:PORT" or "localhost:PORT". */
static int gw_pool_address(const char *host_port, struct sockaddr_storage *addr)
{
    char host[64];
    const char *colon = strrchr(host_port, ':');
    char *end;

    memset(addr, 0, sizeof(*addr));
    if (colon == NULL)
        return -1;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return -1;

    size_t host_len = (size_t)(colon - host_port);
    const char *start = host_port;
    if (host_len >= 2 && start[0] == '[' && start[host_len - 1] == ']') {
        start++;
        host_len -= 2;
    }
    if (host_len == 0 || host_len >= sizeof(host))
        return -1;
    memcpy(host, start, host_len);
    host[host_len] = '\0';

    if (strcmp(host, "localhost") == 0)
        return uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)addr);
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0)
        return 0;
    return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr);
}

void gw_pool_unlink(gw_upconn_t *conn)
{
    gw_pool_t *pool = conn->pool;

    if (!conn->idle)
        return;
    conn->idle = 0;
    if (conn->idle_prev != NULL)
        conn->idle_prev->idle_next = conn->idle_next;
    else
        pool->idle = conn->idle_next;
    if (conn->idle_next != NULL)
        conn->idle_next->idle_prev = conn->idle_prev;
    conn->idle_prev = conn->idle_next = NULL;
    pool->num_idle--;
    pool->pools->stats.idle--;
}

static void gw_pool_free(gw_pool_t *pool)
{
    free(pool->instance_id);
    free(pool->host_port);
    free(pool);
}

void gw_pool_unref(gw_pool_t *pool)
{
    if (--pool->refs == 0)
        gw_pool_free(pool);
}

/* Take pool out of the table and close its idle connections; busy ones
 * close when their requests end. */
static void gw_pool_retire(gw_pool_t *pool)
{
    if (pool->retired)
        return;
    pool->retired = 1;

    gw_pool_t **link = &pool->pools->buckets[gw_pool_hash(pool->instance_id) % GW_POOL_BUCKETS];
    while (*link != NULL && *link != pool)
        link = &(*link)->next;
    if (*link == pool)
        *link = pool->next;
    pool->next = NULL;

    /* The table's reference goes last, so closing the connections cannot
     * free the pool while this loop still reads it. */
    pool->refs++;
    while (pool->idle != NULL)
        gw_upconn_close(pool->idle);
    pool->refs--;
    gw_pool_unref(pool);
}

gw_pool_t *gw_pool_get(gw_pools_t *pools, const char *instance_id, const char *host_port,
                       char *err, size_t err_size)
{
    gw_pool_t **bucket = &pools->buckets[gw_pool_hash(instance_id) % GW_POOL_BUCKETS];

    for (gw_pool_t *pool = *bucket; pool != NULL; pool = pool->next) {
        if (strcmp(pool->instance_id, instance_id) != 0)
            continue;
        if (strcmp(pool->host_port, host_port) == 0)
            return pool;
        /* The instance moved: its old connections lead elsewhere. */
        gw_pool_retire(pool);
        break;
    }

    gw_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        snprintf(err, err_size, "out of memory connecting to %s", host_port);
        return NULL;
    }
    if (gw_pool_address(host_port, &pool->addr) != 0) {
        /* NOTE: host names other than localhost would need an asynchronous
         * resolver; agents report literal addresses. */
        snprintf(err, err_size, "upstream address '%s' is not IP:PORT", host_port);
        free(pool);
        return NULL;
    }
    pool->instance_id = strdup(instance_id);
    pool->host_port = strdup(host_port);
    if (pool->instance_id == NULL || pool->host_port == NULL) {
        snprintf(err, err_size, "out of memory connecting to %s", host_port);
        gw_pool_free(pool);
        return NULL;
    }
    pool->pools = pools;
    pool->refs = 1;
    pool->retired = pools->closed;
    if (!pool->retired) {
        pool->next = *bucket;
        *bucket = pool;
    }
    return pool;
}

gw_upconn_t *gw_pool_take(gw_pool_t *pool)
{
    gw_upconn_t *conn = pool->idle;

    if (conn != NULL)
        gw_pool_unlink(conn);
    return conn;
}

void gw_pool_put(gw_upconn_t *conn)
{
    gw_pool_t *pool = conn->pool;
    gw_pools_t *pools = pool->pools;

    if (pool->retired || pool->num_idle >= pools->limits.max_idle) {
        gw_upconn_close(conn);
        return;
    }
    conn->idle = 1;
    conn->idle_prev = NULL;
    conn->idle_next = pool->idle;
    if (pool->idle != NULL)
        pool->idle->idle_prev = conn;
    pool->idle = conn;
    pool->num_idle++;
    pools->stats.idle++;
}

void gw_pools_prune(gw_pools_t *pools, const gw_state_t *state)
{
    for (size_t b = 0; b < GW_POOL_BUCKETS; b++) {
        gw_pool_t *pool = pools->buckets[b];
        while (pool != NULL) {
            gw_pool_t *next = pool->next;
            const gw_instance_t *instance = gw_state_instance_by_id(state, pool->instance_id);
            if (instance == NULL || instance->upstream == NULL ||
                strcmp(instance->upstream, pool->host_port) != 0 ||
                !gw_instance_serves(instance))
                gw_pool_retire(pool);
            pool = next;
        }
    }
}

void gw_pools_close(gw_pools_t *pools)
{
    pools->closed = 1;
    for (size_t b = 0; b < GW_POOL_BUCKETS; b++) {
        while (pools->buckets[b] != NULL)
            gw_pool_retire(pools->buckets[b]);
    }
}

void gw_pools_free(gw_pools_t *pools)
{
    if (pools == NULL)
        return;
    while (pools->free_requests != NULL) {
        gw_upstream_t *r = pools->free_requests;
        pools->free_requests = r->next_free;
        buf_free(&r->request);
        buf_free(&r->head);
        free(r);
    }
    buf_free(&pools->decoded);
    for (size_t i = 0; i < pools->num_spare; i++)
        buf_free(&pools->spare[i]);
    free(pools);
}

void gw_pools_stats(const gw_pools_t *pools, gw_pools_stats_t *stats)
{
    *stats = pools->stats;
}
