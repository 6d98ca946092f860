/* The last records batch stored from each gateway, so a post that a gateway
 * retried after a timeout is stored once even when the first try arrives
 * late.
 * NOTE: kept in memory only, so a server restart loses it. */
#include <stdio.h>
#include <string.h>

#include "server/server_internal.h"

/* The index of gateway_id's entry, or srv->batch_count when there is none. */
static size_t server_batch_index(const server_t *srv, const char *gateway_id)
{
    size_t i = 0;

    while (i < srv->batch_count && strcmp(srv->batches[i].gateway_id, gateway_id) != 0)
        i++;
    return i;
}

int server_batch_stored(const server_t *srv, const char *gateway_id, int64_t batch)
{
    size_t i = server_batch_index(srv, gateway_id);

    /* A gateway numbers its posts from 1 and sends none newer while one
     * is unsent, so anything at or below the last stored is a repeat. */
    return i < srv->batch_count && batch <= srv->batches[i].batch;
}

/* The slot for a gateway not remembered yet: a free one, else the least
 * recently seen. */
static server_batch_t *server_batch_slot(server_t *srv)
{
    if (srv->batch_count < SERVER_BATCH_GATEWAYS)
        return &srv->batches[srv->batch_count++];

    server_batch_t *oldest = &srv->batches[0];
    for (size_t i = 1; i < srv->batch_count; i++) {
        if (srv->batches[i].seen_ms < oldest->seen_ms)
            oldest = &srv->batches[i];
    }
    return oldest;
}

void server_batch_remember(server_t *srv, const char *gateway_id, int64_t batch, int64_t now_ms)
{
    size_t i = server_batch_index(srv, gateway_id);
    server_batch_t *entry = i < srv->batch_count ? &srv->batches[i] : NULL;

    if (entry == NULL) {
        entry = server_batch_slot(srv);
        snprintf(entry->gateway_id, sizeof(entry->gateway_id), "%s", gateway_id);
    }
    entry->batch = batch;
    entry->seen_ms = now_ms;
}
