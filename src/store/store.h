/* Persistent storage for every nimdeck record, behind a backend vtable so
 * that a PostgreSQL backend can be added next to the SQLite one. */
#ifndef NIMDECK_STORE_STORE_H
#define NIMDECK_STORE_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Results of every store operation. On STORE_ERROR, store_error() returns a
 * message naming the operation and the backend's cause. */
#define STORE_OK 0
#define STORE_ERROR (-1)
#define STORE_NOT_FOUND (-2)
#define STORE_EXISTS (-3)
#define STORE_CONFLICT (-4)

/* Default maximum number of console lines kept per instance. */
#define STORE_LOG_CAP_DEFAULT 10000

/* Permission levels, ordered so that a higher level implies the lower ones. */
typedef enum {
    STORE_PERM_NONE = 0,
    STORE_PERM_READ = 1,
    STORE_PERM_WRITE = 2,
    STORE_PERM_ADMIN = 3,
} store_perm_t;

typedef struct {
    char name[65];
    int admin;
    int has_password;
    char password_hash[128];  /* crypto_pwhash_str output when has_password */
    int64_t created_at;       /* ms since the epoch */
} store_user_t;

typedef struct {
    char id[33];
    char hash[65];            /* lowercase hex SHA-256 of the token text */
    char user[65];
    char scope[16];           /* "api", "gateway" or "embed" */
    char instance_id[33];     /* embed scope only, else "" */
    int64_t created_at;
    int64_t expires_at;
    int revoked;
} store_token_t;

/* An app instance. Times are ms since the epoch, 0 when unset. The strings
 * status_reason and stop_reason and the config are owned by the struct:
 * release them with store_instance_clear(). */
typedef struct {
    char id[33];
    char name[257];
    char project[129];
    char owner[65];
    char status[16];          /* queued, loading, active, idle, stopping, stopped, failed */
    char *status_reason;      /* NULL when none */
    char queue[65];
    char agent[65];           /* agent name, "" until leased */
    char route[65];           /* "" for an ephemeral path */
    char path[65];
    char upstream[128];       /* "host:port", "" until reported */
    int has_exit_code;
    int exit_code;
    int64_t created_at;
    int64_t started_at;
    int64_t ready_at;
    int64_t last_activity_at;
    int64_t stopped_at;
    int stop_requested;
    char *stop_reason;        /* NULL unless stop_requested */
    json_t *config;           /* the configuration, secrets included */
    json_t *gpus;             /* device ids its agent gave it (array), NULL until reported */
} store_instance_t;

/* Decides whether the polling agent may lease inst: 1 to lease it, 0 to pass
 * over it. Called inside the lease's transaction, so it must not write to
 * the store. */
typedef int (*store_lease_fit_fn)(const store_instance_t *inst, void *user);

/* A web login session. Only the SHA-256 of the cookie value is stored. */
typedef struct {
    char hash[65];            /* lowercase hex SHA-256 of the cookie value */
    char user[65];
    char token_id[33];        /* the api token used to log in, "" after a password */
    int64_t created_at;
    int64_t expires_at;
} store_session_t;

/* Instance list filters. */
#define STORE_INSTANCES_ALL 0
#define STORE_INSTANCES_LIVE 1   /* queued, loading, active, idle or stopping */

typedef struct {
    int64_t time;
    const char *stream;       /* "stdout", "stderr" or "system" */
    const char *text;
} store_log_line_t;

typedef struct {
    const char *instance_id;
    const char *token_id;     /* may be NULL */
    int64_t time;             /* request start */
    int status;
    double latency_ms;
    double ttfb_ms;           /* < 0 when no byte arrived */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int cancelled;
} store_record_t;

/* One machine sample of an agent. A value the agent did not report is NAN,
 * stored as SQL NULL and left out of averages. */
typedef struct {
    const char *agent;        /* agent name */
    int64_t time;
    double cpu_percent;
    double mem_used_bytes;
    double mem_total_bytes;
    double net_rx_bytes_per_s;
    double net_tx_bytes_per_s;
    double disk_read_bytes_per_s;
    double disk_write_bytes_per_s;
} store_sample_t;

/* One reading of one GPU of an agent. A value NVML could not give is NAN. */
typedef struct {
    const char *agent;        /* agent name */
    const char *gpu;          /* the agent's device id, e.g. "0" */
    int64_t time;
    double util_percent;
    double mem_used_bytes;
    double mem_total_bytes;
    double temp_c;
    double power_w;
} store_gpu_sample_t;

/* One reading of an instance's own use (its process group or container).
 * A value its runtime could not give is NAN. */
typedef struct {
    const char *instance_id;
    int64_t time;
    double cpu_percent;       /* of all of the machine's CPUs, 0-100 */
    double mem_used_bytes;
    double mem_limit_bytes;
    double net_rx_bytes_per_s;
    double net_tx_bytes_per_s;
    double disk_read_bytes_per_s;
    double disk_write_bytes_per_s;
} store_usage_sample_t;

/* Row callbacks for scans. A non-zero return value stops the scan. */
typedef int (*store_record_fn)(const store_record_t *record, void *user);
typedef int (*store_sample_fn)(const store_sample_t *sample, void *user);
typedef int (*store_gpu_sample_fn)(const store_gpu_sample_t *sample, void *user);
typedef int (*store_usage_sample_fn)(const store_usage_sample_t *sample, void *user);
typedef int (*store_vault_fn)(const char *name, const unsigned char *nonce, size_t nonce_len,
                              const unsigned char *ciphertext, size_t ciphertext_len,
                              int64_t updated_at, void *user);

typedef struct store store_t;

/* Backend vtable. Unless noted, each operation returns a STORE_* code.
 * List operations set *rows to a new JSON array of row objects that the
 * caller owns. Row keys are the column names, with times in ms and null for
 * unset values. Every operation that writes more than one row runs in one
 * transaction, so a failure changes nothing. */
typedef struct {
    void (*close)(store_t *st);

    /* Users, projects and grants. A deleted user is absent from user_get
     * and user_list. user_create returns STORE_EXISTS when the name is
     * taken, and STORE_CONFLICT when it belonged to a deleted user. The name
     * stays the owner of that user's past instances, so it is not reused. */
    int (*user_create)(store_t *st, const store_user_t *user);
    int (*user_get)(store_t *st, const char *name, store_user_t *out);
    int (*user_list)(store_t *st, json_t **rows);                 /* name, admin, created_at */
    /* Delete a user by revoking every token of the user, removing the
     * user's grants, vault entries and password, and marking the user
     * deleted. Returns STORE_NOT_FOUND when there is no such user. While the
     * user owns an instance in queued, loading, active, idle or stopping,
     * returns STORE_CONFLICT with the id of one such instance in
     * instance_out. */
    int (*user_delete)(store_t *st, const char *name, int64_t now, char *instance_out,
                       size_t instance_size);
    int (*project_ensure)(store_t *st, const char *name, int64_t now);
    int (*project_list)(store_t *st, json_t **rows);              /* name, created_at */
    /* Replace the user's grant on project, creating the project if needed. */
    int (*grant_set)(store_t *st, const char *user, const char *project, store_perm_t perm,
                     int64_t now);
    int (*grant_get)(store_t *st, const char *user, const char *project, store_perm_t *out);
    int (*grant_list)(store_t *st, json_t **rows);                /* user, project, permission */
    /* Remove the user's grant on project. Returns STORE_NOT_FOUND when there
     * is none. */
    int (*grant_delete)(store_t *st, const char *user, const char *project);

    /* Tokens. user and scope filter when non-NULL. */
    int (*token_insert)(store_t *st, const store_token_t *token);
    int (*token_find_hash)(store_t *st, const char *hash, store_token_t *out);
    int (*token_get)(store_t *st, const char *id, store_token_t *out);
    int (*token_list)(store_t *st, const char *user, const char *scope, int include_revoked,
                      json_t **rows);  /* id, hash, user, scope, instance_id, created_at, expires_at, revoked */
    int (*token_revoke)(store_t *st, const char *id);

    /* Web login sessions. session_find returns a session as stored: the
     * caller checks its expiry, its user and its login token.
     * session_delete returns STORE_NOT_FOUND when there is none.
     * session_prune deletes the sessions that have expired, whose user was
     * deleted, or whose login token was revoked or has expired. */
    int (*session_insert)(store_t *st, const store_session_t *session);
    int (*session_find)(store_t *st, const char *hash, store_session_t *out);
    int (*session_delete)(store_t *st, const char *hash);
    int (*session_prune)(store_t *st, int64_t now);

    /* Queues and agents. Queue rows contain "queued" and "agents" counts. */
    int (*queue_create)(store_t *st, const char *name, int64_t now);
    int (*queue_exists)(store_t *st, const char *name);          /* 1, 0 or STORE_ERROR */
    int (*queue_list)(store_t *st, json_t **rows);
    /* Delete a queue. Returns STORE_NOT_FOUND when there is no such queue.
     * While an instance on it is in queued, loading, active, idle or
     * stopping, returns STORE_CONFLICT with the id of one such instance in
     * instance_out. Agents that list the queue keep it in their list and
     * lease nothing from it. */
    int (*queue_delete)(store_t *st, const char *name, char *instance_out, size_t instance_size);
    /* Insert the agent or update the one of that name. id_out receives its
     * id, which is new_id when inserted. queues is a JSON array of names,
     * gpus the inventory array ([] when NULL), machine an object or NULL. */
    int (*agent_upsert)(store_t *st, const char *new_id, const char *name, const char *hostname,
                        const char *address, const json_t *queues, const json_t *gpus,
                        const json_t *machine, int64_t now, char *id_out, size_t id_size);
    /* Set *gpus_out to a new copy of the GPU inventory the agent called name
     * registered ([] when none). */
    int (*agent_gpus)(store_t *st, const char *name, json_t **gpus_out);
    /* Look up an agent by id and write its name and queues. *queues_out is
     * a new JSON array that the caller owns. */
    int (*agent_get)(store_t *st, const char *id, char *name_out, size_t name_size,
                     json_t **queues_out);
    int (*agent_touch)(store_t *st, const char *id, int64_t now);
    int (*agent_list)(store_t *st, json_t **rows);  /* id, name, hostname, address, queues, gpus, machine, last_seen_at, instances */

    /* Instances. instance_insert also creates the project, appends the
     * first history entry and console line (log_text), and claims the route.
     * It returns STORE_CONFLICT with holder_out set when a live instance
     * already has the route, and STORE_NOT_FOUND when the route does not exist. */
    int (*instance_insert)(store_t *st, const store_instance_t *inst, const char *log_text,
                           char *holder_out, size_t holder_size);
    int (*instance_get)(store_t *st, const char *id, store_instance_t *out);
    /* List instances newest first, only those of agent when it is non-NULL.
     * *out is an array that the caller frees with store_instances_free. */
    int (*instance_list)(store_t *st, int filter, const char *agent, store_instance_t **out,
                         size_t *count);
    /* Save every mutable column of inst, append a history entry (time,
     * inst->status, inst->status_reason) and a system console line
     * (log_text, when non-NULL), and release the route once the instance
     * has ended. */
    int (*instance_transition)(store_t *st, const store_instance_t *inst, int64_t time,
                               const char *log_text, size_t log_cap);
    /* Save every mutable column of inst without a history entry. */
    int (*instance_save)(store_t *st, const store_instance_t *inst);
    /* Move the oldest queued, unleased instance on one of queues for which
     * fit returns 1 (the oldest of all when fit is NULL) to agent, and clear
     * its status_reason. */
    int (*instance_lease)(store_t *st, const json_t *queues, const char *agent,
                          store_lease_fit_fn fit, void *fit_user, store_instance_t *out);
    /* Raise last_activity_at to time when it is later. Only an instance in
     * loading, active, idle or stopping is touched, so idle_seconds stays
     * frozen once it has ended. */
    int (*instance_touch)(store_t *st, const char *id, int64_t time);
    /* Delete an instance with its history, console log and records. */
    int (*instance_delete)(store_t *st, const char *id);
    int (*history_list)(store_t *st, const char *id, json_t **rows);  /* time, status, reason */

    /* Routes. */
    int (*route_create)(store_t *st, const char *name, int64_t now);
    /* Return 1 when the route exists, 0 when it does not, or STORE_ERROR.
     * holder_out receives the id of the live holder, or "" when none. */
    int (*route_get)(store_t *st, const char *name, char *holder_out, size_t holder_size);
    int (*route_list)(store_t *st, json_t **rows);  /* name, instance_id, created_at */
    /* Delete a route. Returns STORE_CONFLICT, with holder_out set, while a
     * live instance has it. */
    int (*route_delete)(store_t *st, const char *name, char *holder_out, size_t holder_size);

    /* Vault. The store receives and stores only encrypted values, and vault.h
     * describes the encryption. */
    int (*vault_put)(store_t *st, const char *user, const char *name, const unsigned char *nonce,
                     size_t nonce_len, const unsigned char *ciphertext, size_t ciphertext_len,
                     int64_t now);
    int (*vault_scan)(store_t *st, const char *user, store_vault_fn fn, void *fn_user);
    int (*vault_delete)(store_t *st, const char *user, const char *name);

    /* Console log. Sequence numbers start at 1 for each instance and grow by
     * one per line. log_append keeps only the newest cap lines (all when cap
     * is 0). */
    int (*log_append)(store_t *st, const char *instance_id, const store_log_line_t *lines,
                      size_t count, size_t cap);
    /* List at most limit lines with seq > after, oldest first. *next is set
     * to the last seq returned, or to after when none. Rows: seq, time,
     * stream, text. */
    int (*log_list)(store_t *st, const char *instance_id, int64_t after, int64_t limit,
                    json_t **rows, int64_t *next);

    /* Request records and machine samples. Records of unknown instances
     * are skipped. Scans visit rows with from <= time < to in time order. */
    int (*records_insert)(store_t *st, const store_record_t *records, size_t count);
    int (*records_scan)(store_t *st, const char *instance_id, int64_t from, int64_t to,
                        store_record_fn fn, void *user);
    int (*sample_insert)(store_t *st, const store_sample_t *sample);
    int (*samples_scan)(store_t *st, const char *agent, int64_t from, int64_t to,
                        store_sample_fn fn, void *user);
    /* Delete records and samples older than before. */
    int (*prune)(store_t *st, int64_t before);
    /* Merge the machine samples older than before into one sample per agent
     * and bucket_ms-aligned bucket, each value the average of the non-null
     * values merged. before is rounded down to a bucket boundary, so a
     * bucket is merged only once it is complete. Request records are not
     * downsampled. */
    int (*samples_downsample)(store_t *st, int64_t before, int64_t bucket_ms);

    /* GPU samples and instance usage samples. prune and samples_downsample
     * treat them as machine samples (GPU samples merged per agent and
     * device, usage samples per instance). Each insert writes all or
     * nothing; usage samples of instances not leased to agent are skipped.
     * gpu_samples_scan visits the samples of agent's devices listed in gpus
     * (a JSON array of id strings) ordered by time, then device. */
    int (*gpu_samples_insert)(store_t *st, const store_gpu_sample_t *samples, size_t count);
    int (*gpu_samples_scan)(store_t *st, const char *agent, const json_t *gpus, int64_t from,
                            int64_t to, store_gpu_sample_fn fn, void *user);
    int (*usage_samples_insert)(store_t *st, const char *agent,
                                const store_usage_sample_t *samples, size_t count);
    int (*usage_samples_scan)(store_t *st, const char *instance_id, int64_t from, int64_t to,
                              store_usage_sample_fn fn, void *user);
} store_ops_t;

/* The base every backend embeds first. */
struct store {
    const store_ops_t *ops;
    char error[512];
};

/* Open (creating if needed) the SQLite store at path, applying pending
 * migrations. Returns NULL with a message in err on failure. */
store_t *store_open_sqlite(const char *path, char *err, size_t err_size);

/* Return the message of the last STORE_ERROR. */
const char *store_error(const store_t *st);

void store_close(store_t *st);

/* Release what an instance struct owns, so that the struct can be reused. */
void store_instance_clear(store_instance_t *inst);
void store_instances_free(store_instance_t *list, size_t count);

/* Convert a permission level to and from "read", "write" or "admin".
 * store_perm_parse returns STORE_PERM_NONE for any other name. */
const char *store_perm_name(store_perm_t perm);
store_perm_t store_perm_parse(const char *name);

/* Return 1 for queued, loading, active, idle and stopping, else 0. */
int store_status_is_live(const char *status);

#endif
