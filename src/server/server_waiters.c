/* Long polls: requests parked on the loop until they are woken or their
 * wait runs out. A waiter is freed once both its timer has closed and its
 * exchange has ended, because either can happen first. */
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

static void server_waiter_maybe_free(server_waiter_t *w)
{
    if (w->timer_closed && w->exchange_closed) {
        json_decref(w->queues);
        json_decref(w->gpus_inventory);
        json_decref(w->gpus_free);
        free(w);
    }
}

static void server_waiter_on_timer_closed(uv_handle_t *handle)
{
    server_waiter_t *w = handle->data;

    w->timer_closed = 1;
    server_waiter_maybe_free(w);
}

/* Take w off the list and stop its timer; safe to call twice. */
static void server_waiter_detach(server_waiter_t *w)
{
    if (w->replied)
        return;
    w->replied = 1;

    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        w->srv->waiters = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;

    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, server_waiter_on_timer_closed);
}

static void server_waiter_on_close(http_exchange_t *ex, int aborted, void *user)
{
    server_waiter_t *w = user;
    (void)ex, (void)aborted;

    /* A client that leaves before the reply drops its place in the queue. */
    server_waiter_detach(w);
    w->exchange_closed = 1;
    w->ex = NULL;
    server_waiter_maybe_free(w);
}

static void server_waiter_on_timeout(uv_timer_t *timer)
{
    server_waiter_t *w = timer->data;

    w->evaluate(w, 1);
    if (!w->replied)
        server_waiter_reply(w, 304, NULL);
}

server_waiter_t *server_waiter_park(server_t *srv, http_exchange_t *ex, server_wait_kind_t kind,
                                    uint64_t wait_ms, server_waiter_fn evaluate)
{
    server_waiter_t *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->srv = srv;
    w->ex = ex;
    w->kind = kind;
    w->evaluate = evaluate;

    uv_timer_init(&srv->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, server_waiter_on_timeout, wait_ms, 0);
    http_exchange_on_close(ex, server_waiter_on_close, w);

    w->next = srv->waiters;
    if (srv->waiters != NULL)
        srv->waiters->prev = w;
    srv->waiters = w;
    return w;
}

void server_waiter_reply(server_waiter_t *w, int status, json_t *body)
{
    http_exchange_t *ex = w->ex;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    /* Detach first: the close callback may run inside http_respond. */
    server_waiter_detach(w);
    if (ex == NULL) {
        free(text);
        return;
    }
    if (status == 304 || text == NULL)
        http_respond(ex, status == 304 ? 304 : 500, NULL, NULL, NULL, 0);
    else
        http_respond(ex, status, "application/json", NULL, text, strlen(text));
    free(text);
}

/* The first waiter of kind that this pass or a later (nested) one has not
 * evaluated yet, or NULL. */
static server_waiter_t *server_waiter_next_unvisited(server_t *srv, server_wait_kind_t kind,
                                                     uint64_t pass)
{
    for (server_waiter_t *w = srv->waiters; w != NULL; w = w->next) {
        if (w->kind == kind && !w->replied && w->wake_pass < pass)
            return w;
    }
    return NULL;
}

void server_waiters_wake(server_t *srv, server_wait_kind_t kind)
{
    uint64_t pass = ++srv->wake_pass;
    server_waiter_t *w;

    /* An evaluation can reply to other waiters, directly or through a
     * nested wake, which unlinks them, so a saved next pointer may already
     * be off the list. The walk therefore restarts from the head after
     * every evaluation. The pass marks keep each waiter to one evaluation,
     * and a mark from a nested wake's higher pass counts as visited. */
    while ((w = server_waiter_next_unvisited(srv, kind, pass)) != NULL) {
        w->wake_pass = pass;
        w->evaluate(w, 0);
    }
}

int server_agent_is_polling(const server_t *srv, const char *name)
{
    for (const server_waiter_t *w = srv->waiters; w != NULL; w = w->next) {
        if (w->kind == SERVER_WAIT_WORK && !w->replied && strcmp(w->agent_name, name) == 0)
            return 1;
    }
    return 0;
}
