/* In-flight request counts per gateway and instance, from gateway reports.
 * Each gateway reports its own count, so the busy test sums over gateways,
 * and a count that stops being refreshed expires. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"
#include "util/log.h"

static server_activity_t *server_activity_find(server_t *srv, const char *gateway_id,
                                               const char *instance_id)
{
    for (size_t i = 0; i < srv->activity_count; i++) {
        server_activity_t *entry = &srv->activity[i];
        if (strcmp(entry->gateway_id, gateway_id) == 0 &&
            strcmp(entry->instance_id, instance_id) == 0)
            return entry;
    }
    return NULL;
}

static void server_activity_remove(server_t *srv, size_t index)
{
    srv->activity[index] = srv->activity[srv->activity_count - 1];
    srv->activity_count--;
}

static server_activity_t *server_activity_add(server_t *srv)
{
    if (srv->activity_count == srv->activity_cap) {
        size_t cap = srv->activity_cap ? srv->activity_cap * 2 : 16;
        server_activity_t *grown = realloc(srv->activity, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        srv->activity = grown;
        srv->activity_cap = cap;
    }
    return &srv->activity[srv->activity_count++];
}

void server_set_in_flight(server_t *srv, const char *gateway_id, const char *instance_id,
                          int64_t in_flight, int64_t now_ms)
{
    server_activity_t *entry = server_activity_find(srv, gateway_id, instance_id);

    if (in_flight <= 0) {
        if (entry != NULL)
            server_activity_remove(srv, (size_t)(entry - srv->activity));
        return;
    }

    if (entry == NULL) {
        entry = server_activity_add(srv);
        if (entry == NULL) {
            log_error(SERVER_LOG, "out of memory tracking in-flight requests of %s from gateway %s",
                      instance_id, gateway_id);
            return;
        }
        snprintf(entry->gateway_id, sizeof(entry->gateway_id), "%s", gateway_id);
        snprintf(entry->instance_id, sizeof(entry->instance_id), "%s", instance_id);
    }
    entry->in_flight = in_flight;
    entry->refreshed_ms = now_ms;
}

int64_t server_in_flight(const server_t *srv, const char *instance_id, int64_t now_ms)
{
    int64_t sum = 0;

    for (size_t i = 0; i < srv->activity_count; i++) {
        const server_activity_t *entry = &srv->activity[i];
        if (strcmp(entry->instance_id, instance_id) == 0 &&
            now_ms - entry->refreshed_ms < SERVER_IN_FLIGHT_TTL_MS)
            sum += entry->in_flight;
    }
    return sum;
}

void server_forget_in_flight(server_t *srv, const char *instance_id)
{
    size_t i = 0;

    while (i < srv->activity_count) {
        if (strcmp(srv->activity[i].instance_id, instance_id) == 0)
            server_activity_remove(srv, i);
        else
            i++;
    }
}

void server_expire_in_flight(server_t *srv, int64_t now_ms)
{
    size_t i = 0;

    while (i < srv->activity_count) {
        server_activity_t *entry = &srv->activity[i];
        if (now_ms - entry->refreshed_ms < SERVER_IN_FLIGHT_TTL_MS) {
            i++;
            continue;
        }
        log_warn(SERVER_LOG,
                 "gateway %s stopped reporting %lld in-flight requests of %s; forgetting them",
                 entry->gateway_id[0] ? entry->gateway_id : "(no id)",
                 (long long)entry->in_flight, entry->instance_id);
        server_activity_remove(srv, i);
    }
}
