/* The gateway's view of the server: an immutable, reference-counted snapshot
 * of tokens, instances, grants and admins, built from GET /gateway/state. */
#ifndef NIMDECK_GATEWAY_GW_STATE_H
#define NIMDECK_GATEWAY_GW_STATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char hash[65];        /* hex SHA-256 of the token, lower case */
    char *id;
    char *user;
    int64_t expires_at;   /* wall ms; INT64_MAX when the token never expires */
} gw_token_t;

typedef struct {
    char *id;
    char *path;
    char *project;
    char *status;         /* queued, loading, active, idle or stopping */
    char *upstream;       /* "HOST:PORT", or NULL before the agent reports one */
} gw_instance_t;

typedef struct gw_state gw_state_t;

/* Build a snapshot from the state document. Returns NULL and writes the
 * reason into err when the document is malformed or memory runs out. The
 * snapshot starts with one reference, owned by the caller. */
gw_state_t *gw_state_from_json(const json_t *doc, char *err, size_t err_size);

/* Reference counting is atomic: any thread may hold and release a snapshot,
 * and the last release frees it. */
gw_state_t *gw_state_ref(gw_state_t *state);
void gw_state_unref(gw_state_t *state);

int64_t gw_state_generation(const gw_state_t *state);

/* Look up a token by the hex SHA-256 of its text; NULL when unknown. */
const gw_token_t *gw_state_token(const gw_state_t *state, const char *hash_hex);

/* Look up a running instance by its path (route name or ephemeral id). */
const gw_instance_t *gw_state_instance(const gw_state_t *state, const char *path);

/* Look up a running instance by its id. */
const gw_instance_t *gw_state_instance_by_id(const gw_state_t *state, const char *id);

/* Whether the instance takes requests: active or idle, with an upstream. */
int gw_instance_serves(const gw_instance_t *instance);

/* Whether user may read project: admins always may, others need a grant. */
int gw_state_can_read(const gw_state_t *state, const char *user, const char *project);

/* Hex SHA-256 of a token's text (libsodium) into out (65 bytes). */
void gw_token_hash(const char *token, size_t len, char out[65]);

#endif
