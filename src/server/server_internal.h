/* Internals shared by the server's files, such as the server struct, the
 * request context of an API call, typed API errors, long-poll waiters and
 * the instance lifecycle. Everything here runs on the server's loop thread. */
#ifndef NIMDECK_SERVER_SERVER_INTERNAL_H
#define NIMDECK_SERVER_SERVER_INTERNAL_H

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "http/http.h"
#include "server/server.h"
#include "store/store.h"
#include "store/vault.h"

#define SERVER_VERSION "0.1.0"
#define SERVER_LOG "server"

/* Instance ids are 12 lowercase hex characters, and ephemeral paths are 16
 * base32 characters. */
#define SERVER_INSTANCE_ID_LEN 12
#define SERVER_PATH_LEN 16

/* Defaults for server options that are left at 0. */
#define SERVER_AGENT_TIMEOUT_S 90
#define SERVER_RETENTION_DAYS 30
#define SERVER_DOWNSAMPLE_AFTER_HOURS 24

/* A gateway's in-flight count not refreshed for this long is forgotten, so
 * a crashed gateway cannot keep an instance busy. Gateways refresh every
 * non-zero count at least once a second. */
#define SERVER_IN_FLIGHT_TTL_MS 5000

/* Machine samples older than the downsampling age are merged into buckets
 * of this length. */
#define SERVER_DOWNSAMPLE_BUCKET_MS (60LL * 1000)

typedef struct server_waiter server_waiter_t;

/* In-flight request count of one instance on one gateway. */
typedef struct {
    char gateway_id[65];
    char instance_id[33];
    int64_t in_flight;
    int64_t refreshed_ms;    /* monotonic clock of the last report */
} server_activity_t;

/* Gateways whose last stored records batch the server remembers. */
#define SERVER_BATCH_GATEWAYS 256

/* The number of the last records batch stored from one gateway. */
typedef struct {
    char gateway_id[65];
    int64_t batch;
    int64_t seen_ms;         /* monotonic clock of the last post */
} server_batch_t;

struct server {
    char data_dir[PATH_MAX];
    char listen_host[256];
    int listen_port;
    char gateway_url[512];
    char web_root[PATH_MAX];       /* canonical --web-root folder, "" for the embedded UI */
    char url[300];
    char admin_token[64];
    char admin_token_id[33];       /* id of the token in DATA/admin-token */
    int lock_fd;                   /* DATA/lock, locked for the server's lifetime, or -1 */
    int64_t active_window_ms;
    size_t log_cap;
    int64_t agent_timeout_ms;      /* an agent silent this long is lost */
    int64_t retention_ms;          /* records and samples older are deleted */
    int64_t downsample_after_ms;   /* samples older are merged per minute */
    int64_t started_at;            /* wall clock ms at start */

    store_t *store;
    vault_key_t vault_key;

    uv_loop_t loop;
    uv_thread_t thread;
    int thread_started;
    uv_async_t stop_async;
    uv_timer_t idle_timer;
    http_server_t *http;

    /* Gateway state generation, changed on every state change. It starts at
     * the wall clock so that a restarted server never repeats an old value. */
    int64_t generation;
    server_waiter_t *waiters;
    uint64_t wake_pass;            /* counter incremented by each server_waiters_wake call */
    int64_t last_prune_ms;
    int64_t last_agent_check_ms;

    server_activity_t *activity;
    size_t activity_count, activity_cap;

    server_batch_t batches[SERVER_BATCH_GATEWAYS];
    size_t batch_count;

    /* Instances whose stop request has already been sent to their agent. A
     * work poll returns at once only for stops that were not sent yet. */
    char (*stops_sent)[33];
    size_t stops_sent_count, stops_sent_cap;

    /* Names of agents declared lost, as keys, until they register again.
     * Their work polls get 404, so that they register again with the list of
     * instances they still run. NULL while there are none. */
    json_t *lost_agents;
};

/* ---- API errors and replies (server_router.c) ---- */

typedef struct {
    int status;
    const char *code;
    char field[128];
    char message[512];
    char allow[64];          /* the Allow header value of a 405, else "" */
} api_error_t;

/* Context of one API request: the exchange, its parsed inputs and the caller. */
typedef struct {
    server_t *srv;
    http_exchange_t *ex;
    const http_request_t *req;
    char params[2][200];     /* path segments matched by '*', percent-decoded */
    json_t *body;            /* parsed JSON body, or NULL when empty */
    store_user_t user;       /* authenticated user (empty for /health) */
    char token_id[33];
    int64_t token_expires_at; /* expiry of the caller's token, ms since the epoch */
} api_ctx_t;

/* Fill err and return -1, so that a handler can `return api_fail(...)`.
 * field names the one body key or configuration key at fault ("days",
 * "env.NGC_API_KEY", "name" for a name in the path), or is NULL. */
int api_fail(api_error_t *err, int status, const char *code, const char *field, const char *fmt,
             ...) __attribute__((format(printf, 5, 6)));

/* Log the store's error message and fill err with a 500 that names only
 * what (the failed step). Returns -1 like api_fail. */
int api_fail_store(api_ctx_t *ctx, api_error_t *err, const char *what);

/* Send body as JSON with status and release body. A NULL body, or one that
 * cannot be serialized, sends 500 instead. */
void api_reply(api_ctx_t *ctx, int status, json_t *body);
void api_reply_empty(api_ctx_t *ctx, int status);

/* Copy the percent-decoded query parameter name into out. Returns 1 when
 * the parameter is present. */
int api_query(const api_ctx_t *ctx, const char *name, char *out, size_t size);

/* Body helpers. Neither matches unless the body is a JSON object. */
const char *api_body_string(const api_ctx_t *ctx, const char *key);
int api_require_object(api_ctx_t *ctx, api_error_t *err);

/* ---- Request body schemas (api_body.c) ---- */

/* JSON types a body field accepts, combined as bits. */
#define API_JSON_STRING (1u << 0)
#define API_JSON_INTEGER (1u << 1)
#define API_JSON_NUMBER (1u << 2)    /* an integer or a real */
#define API_JSON_BOOLEAN (1u << 3)
#define API_JSON_ARRAY (1u << 4)
#define API_JSON_OBJECT (1u << 5)
#define API_JSON_NULL (1u << 6)
#define API_JSON_ANY 0x7fu

/* Schema entry for one key of a body object. A list of them ends with {NULL}. */
typedef struct {
    const char *key;
    unsigned types;          /* API_JSON_* bits */
    int required;
} api_field_t;

/* Check that obj is a JSON object whose keys are all in fields, each of an
 * allowed type, with every required key present. where names obj in
 * messages ("" for the body itself, e.g. "records[3]" for an item).
 * Returns 0, or -1 with a 400 bad_request naming the key in err, whose
 * field is the key's path ("days", "records[3].time"). */
int api_check_fields(api_error_t *err, const json_t *obj, const api_field_t *fields,
                     const char *where);

/* Fail with a 400 for a request body that jansson could not parse, with
 * jansson's message, line and column. Returns -1. */
int api_fail_json_syntax(api_error_t *err, const json_error_t *jerr);

/* Run api_check_fields on every item of the array items (NULL counts as
 * empty), naming a failed item "key[i]". */
int api_check_items(api_error_t *err, const json_t *items, const char *key,
                    const api_field_t *fields);

/* Run api_check_fields on the request body. An absent body counts as {}. */
int api_check_body(api_ctx_t *ctx, api_error_t *err, const api_field_t *fields);

/* Set the field of an error that a shared check filled (the 403 of
 * api_require_perm, the 404 of api_load_instance) to the body key whose
 * value it was about, and return -1. A 500 keeps no field. */
int api_set_field(api_error_t *err, const char *key);

/* Return the caller's permission on project. Admins have STORE_PERM_ADMIN. */
store_perm_t api_project_perm(api_ctx_t *ctx, const char *project);
int api_require_perm(api_ctx_t *ctx, api_error_t *err, const char *project, store_perm_t need);

/* Load an instance that the caller may access with need. Otherwise fill err
 * with 404 or 403 and return -1. */
int api_load_instance(api_ctx_t *ctx, api_error_t *err, const char *id, store_perm_t need,
                      store_instance_t *out);

/* ---- Name rules (api_names.c) ---- */

/* Users, agents and projects: 1-64 of [A-Za-z0-9._-], not "." or "..". */
#define API_NAME_RULE "1-64 characters of A-Z a-z 0-9 . _ -, not \".\" or \"..\""
/* Routes and queues: 1-64 of [a-z0-9._-], starting with a letter or digit. */
#define API_SLUG_RULE "1-64 characters of a-z 0-9 . _ -, starting with a letter or digit"

int api_valid_user_name(const char *name);
int api_valid_route_name(const char *name);

/* Check name against its rule. On failure, return -1 with a 400 bad_request
 * that names the kind ("user", "project", "route", ...), the value and the
 * rule. The error's field is key, the body key that carries the name;
 * api_check_name and api_check_slug report it as "name". */
int api_check_name_key(api_error_t *err, const char *kind, const char *name, const char *key);
int api_check_name(api_error_t *err, const char *kind, const char *name);
int api_check_slug(api_error_t *err, const char *kind, const char *name);

/* Check an upstream "HOST:PORT", where the port is 1-65535 and the host is a
 * name, an IPv4 address or a bracketed IPv6 address. Returns -1 with a 400
 * naming the value (field "upstream") when it is invalid. */
int api_check_upstream(api_error_t *err, const char *upstream);

/* Copy text into out for an error message, escaped so that every byte
 * stays visible and the message is printable ASCII. A backslash and a
 * double quote get a backslash. Control characters and non-ASCII
 * characters become \uXXXX as in JSON ("\u00fc" for ü), and bytes that
 * are not valid UTF-8 become \xHH. A value too long for out is cut after a
 * whole escape and ends in "...". */
void api_printable(const char *text, char *out, size_t size);

/* ---- Web sessions (api_session.c, api_login.c) ---- */

#define API_SESSION_COOKIE "nimdeck_session"
#define API_SESSION_COOKIE_MAX 128            /* maximum cookie value length read */
#define API_SESSION_TTL_MS (12LL * 3600 * 1000)

/* Copy the session cookie's value from req into out. Returns 1 when the
 * request carries one that fits, else 0. */
int api_session_cookie(const http_request_t *req, char *out, size_t size);

/* Return 1 when req is a GET or HEAD, or carries Content-Type:
 * application/json or X-Requested-With: nimdeck. Other requests are the
 * ones a form on another site could send. */
int api_session_request_is_safe(const http_request_t *req);

/* Authenticate the caller by the session whose cookie value is cookie:
 * the session must not have expired, its user must exist, and the api
 * token it logged in with (if any) must be neither revoked nor expired. A
 * request that changes state must also pass api_session_request_is_safe.
 * Returns 0 with ctx->user filled, or -1 with a 401 or 403 in err. */
int api_session_authenticate(api_ctx_t *ctx, api_error_t *err, const char *cookie);

/* The request dispatcher handed to http_server_start. */
void server_on_request(http_exchange_t *ex, void *user);

/* ---- Handlers. Each returns 0 once it has replied or parked a long poll,
 * or -1 with err filled. ---- */
typedef int (*api_handler_fn)(api_ctx_t *ctx, api_error_t *err);

int api_health(api_ctx_t *ctx, api_error_t *err);
int api_login(api_ctx_t *ctx, api_error_t *err);
int api_logout(api_ctx_t *ctx, api_error_t *err);
int api_whoami(api_ctx_t *ctx, api_error_t *err);
int api_users_create(api_ctx_t *ctx, api_error_t *err);
int api_users_list(api_ctx_t *ctx, api_error_t *err);
int api_users_delete(api_ctx_t *ctx, api_error_t *err);
int api_grants_delete(api_ctx_t *ctx, api_error_t *err);
int api_grants_set(api_ctx_t *ctx, api_error_t *err);
int api_projects_list(api_ctx_t *ctx, api_error_t *err);
int api_tokens_create(api_ctx_t *ctx, api_error_t *err);
int api_tokens_list(api_ctx_t *ctx, api_error_t *err);
int api_tokens_revoke(api_ctx_t *ctx, api_error_t *err);
int api_vault_put(api_ctx_t *ctx, api_error_t *err);
int api_vault_list(api_ctx_t *ctx, api_error_t *err);
int api_vault_delete(api_ctx_t *ctx, api_error_t *err);
int api_routes_create(api_ctx_t *ctx, api_error_t *err);
int api_routes_list(api_ctx_t *ctx, api_error_t *err);
int api_routes_delete(api_ctx_t *ctx, api_error_t *err);
int api_queues_create(api_ctx_t *ctx, api_error_t *err);
int api_queues_list(api_ctx_t *ctx, api_error_t *err);
int api_queues_delete(api_ctx_t *ctx, api_error_t *err);
int api_apps_launch(api_ctx_t *ctx, api_error_t *err);
int api_apps_list(api_ctx_t *ctx, api_error_t *err);
int api_apps_show(api_ctx_t *ctx, api_error_t *err);
int api_apps_stop(api_ctx_t *ctx, api_error_t *err);
int api_apps_delete(api_ctx_t *ctx, api_error_t *err);
int api_apps_export(api_ctx_t *ctx, api_error_t *err);
int api_apps_clone(api_ctx_t *ctx, api_error_t *err);
int api_apps_logs(api_ctx_t *ctx, api_error_t *err);
int api_apps_logs_append(api_ctx_t *ctx, api_error_t *err);
int api_apps_history(api_ctx_t *ctx, api_error_t *err);
int api_apps_metrics(api_ctx_t *ctx, api_error_t *err);
int api_embed_show(api_ctx_t *ctx, api_error_t *err);
int api_endpoints_list(api_ctx_t *ctx, api_error_t *err);
int api_apps_status(api_ctx_t *ctx, api_error_t *err);
int api_apps_lease(api_ctx_t *ctx, api_error_t *err);
int api_agents_register(api_ctx_t *ctx, api_error_t *err);

/* api_agents.c: build the lease of inst (its configuration with secrets,
 * the merged environment, the secret values to mask). Returns NULL, with
 * the reason the instance cannot start in reason, when the owner's vault
 * cannot be read or lacks an entry that env names. */
json_t *api_build_lease(server_t *srv, const store_instance_t *inst, char *reason,
                        size_t reason_size);
int api_agents_list(api_ctx_t *ctx, api_error_t *err);
int api_agents_work(api_ctx_t *ctx, api_error_t *err);
int api_agents_metrics(api_ctx_t *ctx, api_error_t *err);
int api_gateway_state(api_ctx_t *ctx, api_error_t *err);
int api_gateway_records(api_ctx_t *ctx, api_error_t *err);

/* ---- Long polls (server_waiters.c) ---- */

typedef enum { SERVER_WAIT_WORK, SERVER_WAIT_STATE } server_wait_kind_t;

/* Called when the waiter is woken (timed_out 0) or its time is up
 * (timed_out 1). It replies with server_waiter_reply, or returns without
 * replying to keep waiting (only when not timed out). */
typedef void (*server_waiter_fn)(server_waiter_t *waiter, int timed_out);

struct server_waiter {
    server_t *srv;
    http_exchange_t *ex;
    server_wait_kind_t kind;
    server_waiter_fn evaluate;
    uv_timer_t timer;
    char agent_id[33];
    char agent_name[65];
    json_t *queues;
    json_t *gpus_inventory;  /* work polls: the agent's GPUs, as registered */
    json_t *gpus_free;       /* work polls: ids of its free GPUs (free_gpus), grown on release */
    int64_t since;
    int replied, exchange_closed, timer_closed;
    uint64_t wake_pass;      /* the latest wake pass that evaluated it */
    server_waiter_t *prev, *next;
};

/* Park ex for up to wait_ms. The caller fills the kind-specific fields of
 * the returned waiter. Returns NULL when out of memory. */
server_waiter_t *server_waiter_park(server_t *srv, http_exchange_t *ex, server_wait_kind_t kind,
                                    uint64_t wait_ms, server_waiter_fn evaluate);

/* Reply to a parked request, detach it and release body. Status 304 sends
 * no body. Otherwise a NULL body, or one that cannot be serialized, sends 500. */
void server_waiter_reply(server_waiter_t *waiter, int status, json_t *body);

/* Re-evaluate every waiter of kind once. An evaluation may reply to any
 * waiter or wake waiters again (nested). A waiter that a nested wake has
 * already evaluated is not evaluated again. */
void server_waiters_wake(server_t *srv, server_wait_kind_t kind);

/* Return 1 while a work poll of the agent called name is parked, else 0. */
int server_agent_is_polling(const server_t *srv, const char *name);

/* ---- Gateway state and instance output (server_output.c) ---- */

/* Bump the generation and wake the gateway state waiters. */
void server_state_changed(server_t *srv);

/* Build the API object of an instance. Returns NULL when out of memory. */
json_t *server_instance_json(server_t *srv, const store_instance_t *inst);

/* Copy inst's configuration for API output, with every secret env value and
 * every env value equal to one of the owner's vault values set to null. When
 * the vault cannot be read, every env string value is null. Returns NULL when
 * out of memory. */
json_t *server_config_public(server_t *srv, const store_instance_t *inst);

/* Build the gateway state document. Returns NULL on a store failure. */
json_t *server_gateway_state(server_t *srv);

/* ---- Lifecycle (server_lifecycle.c) ---- */

/* Move inst to status with reason, which may be NULL. Sets the times that
 * status implies and appends history and the console line "status: S" or
 * "status: S (detail)". Returns a STORE_* code. */
int server_transition(server_t *srv, store_instance_t *inst, const char *status,
                      const char *reason);

/* Request that inst stop with reason. A queued instance without an agent
 * stops at once. A running one becomes `stopping` and its agent is woken. An
 * ended or already stopping instance is left as it is. */
int server_request_stop(server_t *srv, store_instance_t *inst, const char *reason);

/* Apply an agent's status report. loading is accepted from queued or
 * loading, ready from loading, and stopped and failed from any live status.
 * A stopping instance also accepts a late loading or ready report and stays
 * stopping. An ended instance ignores stopped and failed. Any other report
 * returns STORE_CONFLICT with a 409 in err. */
int server_apply_report(server_t *srv, store_instance_t *inst, const char *status,
                        const char *reason, const char *upstream, int has_exit_code,
                        int exit_code, api_error_t *err);

/* ---- The idle checker (server_idle.c) ---- */

/* Run one tick of the idle checker: switch instances between active and
 * idle, stop idle ones, handle lost agents, downsample and prune. */
void server_idle_tick(uv_timer_t *timer);

/* Fail the running instances of agents that have not polled for work for
 * agent_timeout_ms (counted from the server's start at the earliest) and
 * put their leased, not yet started instances back in the queue. */
void server_check_agents(server_t *srv, int64_t now);

/* ---- Records batches per gateway (server_batches.c) ---- */

/* Whether batch of gateway_id is stored already: a gateway sends a post
 * again, unchanged, when the first try timed out, and that first try may
 * still arrive. */
int server_batch_stored(const server_t *srv, const char *gateway_id, int64_t batch);

/* Remember that batch of gateway_id is stored. The least recently seen
 * gateway is forgotten when SERVER_BATCH_GATEWAYS are remembered. */
void server_batch_remember(server_t *srv, const char *gateway_id, int64_t batch, int64_t now_ms);

/* ---- In-flight requests per gateway (server_activity.c) ---- */

/* Record the count that gateway_id reports for instance_id at now_ms, on the
 * monotonic clock. A count of 0 or less removes the entry. */
void server_set_in_flight(server_t *srv, const char *gateway_id, const char *instance_id,
                          int64_t in_flight, int64_t now_ms);

/* Return the sum over gateways of the counts of instance_id refreshed within
 * SERVER_IN_FLIGHT_TTL_MS before now_ms. */
int64_t server_in_flight(const server_t *srv, const char *instance_id, int64_t now_ms);

/* Drop every gateway's count of instance_id (the instance has ended). */
void server_forget_in_flight(server_t *srv, const char *instance_id);

/* Drop the counts not refreshed within SERVER_IN_FLIGHT_TTL_MS. */
void server_expire_in_flight(server_t *srv, int64_t now_ms);

/* Bookkeeping of the stop requests already sent to agents in work polls. */
int server_stop_was_sent(const server_t *srv, const char *instance_id);
void server_stop_mark_sent(server_t *srv, const char *instance_id);
void server_stop_forget(server_t *srv, const char *instance_id);

/* Agents declared lost (server_idle.c). name is copied. A failed
 * allocation leaves the agent unmarked, which only skips the clean-up of
 * its old processes. */
void server_agent_mark_lost(server_t *srv, const char *name);
int server_agent_was_lost(const server_t *srv, const char *name);
void server_agent_clear_lost(server_t *srv, const char *name);

/* ---- Start-up (server_bootstrap.c) ---- */

/* Create the data folder and lock DATA/lock into srv->lock_fd, failing when
 * another server holds the lock. Then open the store and vault key, ensure
 * the admin user and default queue, and read or write DATA/admin-token. */
int server_bootstrap(server_t *srv, char *err, size_t err_size);

/* Write a random identifier of len characters from alphabet, plus a NUL,
 * into out. */
void server_random_id(char *out, size_t len, const char *alphabet);

#endif
