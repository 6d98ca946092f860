/* Immutable state snapshots: parsed once per generation into hash tables so
 * each request's checks are a few lookups with no locking beyond a ref. */
#include "gateway/gw_state.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open-addressing table from a NUL-terminated key to a value; keys and
 * values are owned by the snapshot. */
typedef struct {
    const char *key;
    const void *value;
} gw_slot_t;

typedef struct {
    gw_slot_t *slots;
    size_t mask;   /* capacity - 1; capacity is a power of two */
} gw_table_t;

struct gw_state {
    atomic_int refs;
    int64_t generation;
    gw_token_t *tokens;
    size_t num_tokens;
    gw_instance_t *instances;
    size_t num_instances;
    char **pairs;          /* "user\nproject" of each grant, then admin names */
    size_t num_pairs;
    gw_table_t by_hash;    /* token hash -> gw_token_t */
    gw_table_t by_path;    /* instance path -> gw_instance_t */
    gw_table_t by_id;      /* instance id -> gw_instance_t */
    gw_table_t grants;     /* "user\nproject" -> non-NULL */
    gw_table_t admins;     /* user -> non-NULL */
};

static uint64_t gw_hash_key(const char *key)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */

    for (; *key != '\0'; key++) {
        h ^= (unsigned char)*key;
        h *= 1099511628211ull;
    }
    return h;
}

static int gw_table_init(gw_table_t *table, size_t entries)
{
    size_t cap = 16;

    /* At most half full, so probes stay short and always find a hole. */
    while (cap < entries * 2)
        cap *= 2;
    table->slots = calloc(cap, sizeof(*table->slots));
    table->mask = cap - 1;
    return table->slots != NULL ? 0 : -1;
}

/* Insert key; a duplicate key keeps its first value. */
static void gw_table_put(gw_table_t *table, const char *key, const void *value)
{
    size_t i = gw_hash_key(key) & table->mask;

    while (table->slots[i].key != NULL) {
        if (strcmp(table->slots[i].key, key) == 0)
            return;
        i = (i + 1) & table->mask;
    }
    table->slots[i].key = key;
    table->slots[i].value = value;
}

static const void *gw_table_get(const gw_table_t *table, const char *key)
{
    if (table->slots == NULL)
        return NULL;

    size_t i = gw_hash_key(key) & table->mask;
    while (table->slots[i].key != NULL) {
        if (strcmp(table->slots[i].key, key) == 0)
            return table->slots[i].value;
        i = (i + 1) & table->mask;
    }
    return NULL;
}

static void gw_state_free(gw_state_t *state)
{
    for (size_t i = 0; i < state->num_tokens; i++) {
        free(state->tokens[i].id);
        free(state->tokens[i].user);
    }
    for (size_t i = 0; i < state->num_instances; i++) {
        free(state->instances[i].id);
        free(state->instances[i].path);
        free(state->instances[i].project);
        free(state->instances[i].status);
        free(state->instances[i].upstream);
    }
    for (size_t i = 0; i < state->num_pairs; i++)
        free(state->pairs[i]);
    free(state->tokens);
    free(state->instances);
    free(state->pairs);
    free(state->by_hash.slots);
    free(state->by_path.slots);
    free(state->by_id.slots);
    free(state->grants.slots);
    free(state->admins.slots);
    free(state);
}

gw_state_t *gw_state_ref(gw_state_t *state)
{
    atomic_fetch_add(&state->refs, 1);
    return state;
}

void gw_state_unref(gw_state_t *state)
{
    if (state != NULL && atomic_fetch_sub(&state->refs, 1) == 1)
        gw_state_free(state);
}

int64_t gw_state_generation(const gw_state_t *state)
{
    return state->generation;
}

const gw_token_t *gw_state_token(const gw_state_t *state, const char *hash_hex)
{
    return gw_table_get(&state->by_hash, hash_hex);
}

const gw_instance_t *gw_state_instance(const gw_state_t *state, const char *path)
{
    return gw_table_get(&state->by_path, path);
}

const gw_instance_t *gw_state_instance_by_id(const gw_state_t *state, const char *id)
{
    return gw_table_get(&state->by_id, id);
}

int gw_instance_serves(const gw_instance_t *instance)
{
    return (strcmp(instance->status, "active") == 0 || strcmp(instance->status, "idle") == 0) &&
           instance->upstream != NULL;
}

int gw_state_can_read(const gw_state_t *state, const char *user, const char *project)
{
    char key[512];

    if (gw_table_get(&state->admins, user) != NULL)
        return 1;
    int n = snprintf(key, sizeof(key), "%s\n%s", user, project);
    if (n < 0 || (size_t)n >= sizeof(key))
        return 0;
    return gw_table_get(&state->grants, key) != NULL;
}

void gw_token_hash(const char *token, size_t len, char out[65])
{
    unsigned char digest[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(digest, (const unsigned char *)token, len);
    sodium_bin2hex(out, 65, digest, sizeof(digest));
}

/* Copy a string member, or format an integer one (ids may be either). */
static char *gw_json_text(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    char number[32];

    if (json_is_string(value))
        return strdup(json_string_value(value));
    if (json_is_integer(value)) {
        snprintf(number, sizeof(number), "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return strdup(number);
    }
    return NULL;
}

static int gw_copy_hash(char out[65], const json_t *hash)
{
    const char *text = json_string_value(hash);

    if (text == NULL || strlen(text) != 64)
        return -1;
    for (size_t i = 0; i < 64; i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        out[i] = c;
    }
    out[64] = '\0';
    return 0;
}

static int gw_parse_tokens(gw_state_t *state, const json_t *tokens, char *err, size_t err_size)
{
    size_t i;
    const json_t *item;

    state->tokens = calloc(json_array_size(tokens) + 1, sizeof(*state->tokens));
    if (state->tokens == NULL || gw_table_init(&state->by_hash, json_array_size(tokens)) != 0) {
        snprintf(err, err_size, "out of memory reading %zu tokens", json_array_size(tokens));
        return -1;
    }

    json_array_foreach(tokens, i, item) {
        gw_token_t *token = &state->tokens[state->num_tokens];
        const json_t *expires = json_object_get(item, "expires_at");

        token->id = gw_json_text(item, "id");
        token->user = gw_json_text(item, "user");
        state->num_tokens++;
        if (token->id == NULL || token->user == NULL ||
            gw_copy_hash(token->hash, json_object_get(item, "hash")) != 0 ||
            (expires != NULL && !json_is_null(expires) && !json_is_number(expires))) {
            snprintf(err, err_size, "tokens[%zu] needs \"id\", \"user\", a 64-digit hex "
                     "\"hash\" and a numeric or null \"expires_at\"", i);
            return -1;
        }
        token->expires_at = json_is_number(expires) ? (int64_t)json_number_value(expires)
                                                     : INT64_MAX;
        gw_table_put(&state->by_hash, token->hash, token);
    }
    return 0;
}

static int gw_parse_instances(gw_state_t *state, const json_t *instances, char *err,
                              size_t err_size)
{
    size_t i;
    const json_t *item;

    state->instances = calloc(json_array_size(instances) + 1, sizeof(*state->instances));
    if (state->instances == NULL ||
        gw_table_init(&state->by_path, json_array_size(instances)) != 0 ||
        gw_table_init(&state->by_id, json_array_size(instances)) != 0) {
        snprintf(err, err_size, "out of memory reading %zu instances",
                 json_array_size(instances));
        return -1;
    }

    json_array_foreach(instances, i, item) {
        gw_instance_t *instance = &state->instances[state->num_instances];
        const json_t *upstream = json_object_get(item, "upstream");

        instance->id = gw_json_text(item, "id");
        instance->path = gw_json_text(item, "path");
        instance->project = gw_json_text(item, "project");
        instance->status = gw_json_text(item, "status");
        if (json_is_string(upstream) && json_string_length(upstream) > 0)
            instance->upstream = strdup(json_string_value(upstream));
        state->num_instances++;
        if (instance->id == NULL || instance->path == NULL || instance->project == NULL ||
            instance->status == NULL || (json_is_string(upstream) && instance->upstream == NULL)) {
            snprintf(err, err_size, "instances[%zu] needs string \"id\", \"path\", "
                     "\"project\" and \"status\"", i);
            return -1;
        }
        gw_table_put(&state->by_path, instance->path, instance);
        gw_table_put(&state->by_id, instance->id, instance);
    }
    return 0;
}

static char *gw_pair_key(const char *user, const char *project)
{
    size_t len = strlen(user) + 1 + strlen(project) + 1;
    char *key = malloc(len);

    if (key != NULL)
        snprintf(key, len, "%s\n%s", user, project);
    return key;
}

static int gw_parse_access(gw_state_t *state, const json_t *grants, const json_t *admins,
                           char *err, size_t err_size)
{
    size_t i;
    const json_t *item;
    size_t total = json_array_size(grants) + json_array_size(admins);

    state->pairs = calloc(total + 1, sizeof(*state->pairs));
    if (state->pairs == NULL || gw_table_init(&state->grants, json_array_size(grants)) != 0 ||
        gw_table_init(&state->admins, json_array_size(admins)) != 0) {
        snprintf(err, err_size, "out of memory reading %zu grants", total);
        return -1;
    }

    json_array_foreach(grants, i, item) {
        const char *user = json_string_value(json_object_get(item, "user"));
        const char *project = json_string_value(json_object_get(item, "project"));
        if (user == NULL || project == NULL) {
            snprintf(err, err_size, "grants[%zu] needs string \"user\" and \"project\"", i);
            return -1;
        }
        char *key = gw_pair_key(user, project);
        if (key == NULL) {
            snprintf(err, err_size, "out of memory reading grants[%zu]", i);
            return -1;
        }
        state->pairs[state->num_pairs++] = key;
        gw_table_put(&state->grants, key, key);
    }

    json_array_foreach(admins, i, item) {
        char *name = json_is_string(item) ? strdup(json_string_value(item)) : NULL;
        if (name == NULL) {
            snprintf(err, err_size, "admins[%zu] must be a user name", i);
            return -1;
        }
        state->pairs[state->num_pairs++] = name;
        gw_table_put(&state->admins, name, name);
    }
    return 0;
}

/* A missing or null list reads as empty (NULL works as an empty array in
 * jansson's array calls); any other non-array is an error. */
static const json_t *gw_json_list(const json_t *doc, const char *key, int *bad)
{
    const json_t *list = json_object_get(doc, key);

    if (list == NULL || json_is_null(list))
        return NULL;
    if (!json_is_array(list))
        *bad = 1;
    return list;
}

gw_state_t *gw_state_from_json(const json_t *doc, char *err, size_t err_size)
{
    int bad = 0;
    const json_t *generation = json_object_get(doc, "generation");
    const json_t *tokens = gw_json_list(doc, "tokens", &bad);
    const json_t *instances = gw_json_list(doc, "instances", &bad);
    const json_t *grants = gw_json_list(doc, "grants", &bad);
    const json_t *admins = gw_json_list(doc, "admins", &bad);

    if (!json_is_integer(generation) || bad) {
        snprintf(err, err_size, "state needs an integer \"generation\" and arrays "
                 "\"tokens\", \"instances\", \"grants\", \"admins\"");
        return NULL;
    }

    gw_state_t *state = calloc(1, sizeof(*state));
    if (state == NULL) {
        snprintf(err, err_size, "out of memory reading the state");
        return NULL;
    }
    atomic_init(&state->refs, 1);
    state->generation = json_integer_value(generation);

    if (gw_parse_tokens(state, tokens, err, err_size) != 0 ||
        gw_parse_instances(state, instances, err, err_size) != 0 ||
        gw_parse_access(state, grants, admins, err, err_size) != 0) {
        gw_state_free(state);
        return NULL;
    }
    return state;
}
