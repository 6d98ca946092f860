/* SQLite backend: opening the database (WAL, busy timeout, foreign keys),
 * schema migrations and the vtable. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_internal.h"

/* Milliseconds a statement waits for another connection's lock. */
#define STORE_SQLITE_BUSY_MS 5000

/* Each migration runs once, in order, in its own transaction; its index + 1
 * is the schema version it produces. Append new ones, never edit old ones. */
static const char *const store_migrations[] = {
    "CREATE TABLE users ("
    "  name TEXT PRIMARY KEY, password_hash TEXT, admin INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE projects (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);"
    "CREATE TABLE grants ("
    "  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    "  project TEXT NOT NULL REFERENCES projects(name) ON DELETE CASCADE,"
    "  permission TEXT NOT NULL CHECK (permission IN ('read', 'write', 'admin')),"
    "  PRIMARY KEY (user, project));"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE,"
    "  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    "  scope TEXT NOT NULL CHECK (scope IN ('api', 'gateway', 'embed')),"
    "  instance_id TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tokens_user ON tokens(user);"
    "CREATE INDEX tokens_scope ON tokens(scope, revoked);"
    "CREATE TABLE queues (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);"
    "CREATE TABLE agents ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, hostname TEXT, address TEXT,"
    "  queues TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL, last_seen_at INTEGER);"
    "CREATE TABLE instances ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL,"
    "  project TEXT NOT NULL REFERENCES projects(name),"
    "  owner TEXT NOT NULL REFERENCES users(name),"
    "  config TEXT NOT NULL, status TEXT NOT NULL, status_reason TEXT,"
    "  queue TEXT NOT NULL, agent TEXT, route TEXT, path TEXT NOT NULL, upstream TEXT,"
    "  exit_code INTEGER, created_at INTEGER NOT NULL, started_at INTEGER,"
    "  ready_at INTEGER, last_activity_at INTEGER, stopped_at INTEGER,"
    "  stop_requested INTEGER NOT NULL DEFAULT 0, stop_reason TEXT);"
    "CREATE INDEX instances_status ON instances(status);"
    "CREATE INDEX instances_queue ON instances(queue, status, created_at);"
    "CREATE INDEX instances_agent ON instances(agent, status);"
    "CREATE INDEX instances_created ON instances(created_at);"
    "CREATE TABLE status_history ("
    "  id INTEGER PRIMARY KEY,"
    "  instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  time INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT);"
    "CREATE INDEX status_history_instance ON status_history(instance_id, id);"
    "CREATE TABLE routes ("
    "  name TEXT PRIMARY KEY,"
    "  instance_id TEXT REFERENCES instances(id) ON DELETE SET NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE vault ("
    "  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, name TEXT NOT NULL,"
    "  nonce BLOB NOT NULL, ciphertext BLOB NOT NULL, updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user, name));"
    "CREATE TABLE console_log ("
    "  instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL, time INTEGER NOT NULL, stream TEXT NOT NULL, text TEXT NOT NULL,"
    "  PRIMARY KEY (instance_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE request_records ("
    "  id INTEGER PRIMARY KEY,"
    "  instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  token_id TEXT, time INTEGER NOT NULL, status INTEGER NOT NULL,"
    "  latency_ms REAL NOT NULL, ttfb_ms REAL, prompt_tokens INTEGER NOT NULL DEFAULT 0,"
    "  completion_tokens INTEGER NOT NULL DEFAULT 0, cancelled INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX request_records_instance ON request_records(instance_id, time);"
    "CREATE INDEX request_records_time ON request_records(time);"
    "CREATE TABLE machine_samples ("
    "  id INTEGER PRIMARY KEY, agent TEXT NOT NULL, time INTEGER NOT NULL,"
    "  cpu_percent REAL, mem_used_bytes REAL, mem_total_bytes REAL,"
    "  net_rx_bytes_per_s REAL, net_tx_bytes_per_s REAL,"
    "  disk_read_bytes_per_s REAL, disk_write_bytes_per_s REAL);"
    "CREATE INDEX machine_samples_agent ON machine_samples(agent, time);"
    "CREATE INDEX machine_samples_time ON machine_samples(time);",

    /* 2: deleted users keep their row, so their past instances keep an owner. */
    "ALTER TABLE users ADD COLUMN deleted_at INTEGER;",

    /* 3: web login sessions, keyed by the SHA-256 of the cookie value.
     * token_id is the api token used to log in, NULL after a password. */
    "CREATE TABLE sessions ("
    "  hash TEXT PRIMARY KEY,"
    "  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    "  token_id TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
    "CREATE INDEX sessions_expires ON sessions(expires_at);",

    /* 4: GPU readings per agent device, and each instance's own use. */
    "CREATE TABLE gpu_samples ("
    "  id INTEGER PRIMARY KEY, agent TEXT NOT NULL, gpu TEXT NOT NULL, time INTEGER NOT NULL,"
    "  util_percent REAL, mem_used_bytes REAL, mem_total_bytes REAL, temp_c REAL, power_w REAL);"
    "CREATE INDEX gpu_samples_agent ON gpu_samples(agent, time);"
    "CREATE INDEX gpu_samples_time ON gpu_samples(time);"
    "CREATE TABLE usage_samples ("
    "  id INTEGER PRIMARY KEY,"
    "  instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,"
    "  time INTEGER NOT NULL, cpu_percent REAL, mem_used_bytes REAL, mem_limit_bytes REAL,"
    "  net_rx_bytes_per_s REAL, net_tx_bytes_per_s REAL,"
    "  disk_read_bytes_per_s REAL, disk_write_bytes_per_s REAL);"
    "CREATE INDEX usage_samples_instance ON usage_samples(instance_id, time);"
    "CREATE INDEX usage_samples_time ON usage_samples(time);",

    /* 5: each agent's GPU inventory and machine facts (JSON text, as the
     * agent registers them), and the device ids an instance was given
     * (a JSON array, NULL until its agent reports them). */
    "ALTER TABLE agents ADD COLUMN gpus TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE agents ADD COLUMN machine TEXT;"
    "ALTER TABLE instances ADD COLUMN gpus TEXT;",
};

int store_sqlite_migrate(store_t *st)
{
    sqlite3 *db = sq_db(st);
    size_t count = sizeof(store_migrations) / sizeof(store_migrations[0]);
    int64_t version = 0;

    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(st, "create schema_version");
    if (sq_int_query(st, &version, "SELECT coalesce(max(version), 0) FROM schema_version", "") != 0)
        return STORE_ERROR;
    if (version > (int64_t)count) {
        snprintf(st->error, sizeof(st->error),
                 "the database has schema version %lld but this nimdeck knows only %zu; "
                 "run a newer nimdeck",
                 (long long)version, count);
        return STORE_ERROR;
    }

    for (size_t i = (size_t)version; i < count; i++) {
        if (sq_begin(st) != 0)
            return STORE_ERROR;
        if (sqlite3_exec(db, store_migrations[i], NULL, NULL, NULL) != SQLITE_OK ||
            sq_exec(st, NULL, "INSERT INTO schema_version (version) VALUES (?)", "i",
                    (int64_t)(i + 1)) != 0) {
            char what[64];
            snprintf(what, sizeof(what), "migration %zu", i + 1);
            sq_fail(st, what);
            sq_rollback(st);
            return STORE_ERROR;
        }
        if (sq_commit(st) != 0)
            return STORE_ERROR;
    }
    return STORE_OK;
}

static void store_sqlite_close(store_t *st)
{
    sq_records_close(st);
    sqlite3_close_v2(sq_db(st));
    free(st);
}

static store_ops_t store_sqlite_ops;
static pthread_once_t store_sqlite_ops_once = PTHREAD_ONCE_INIT;

static void store_sqlite_fill_ops(void)
{
    store_sqlite_users_ops(&store_sqlite_ops);
    store_sqlite_agents_ops(&store_sqlite_ops);
    store_sqlite_instances_ops(&store_sqlite_ops);
    store_sqlite_logs_ops(&store_sqlite_ops);
    store_sqlite_vault_ops(&store_sqlite_ops);
    store_sqlite_sessions_ops(&store_sqlite_ops);
    store_sqlite_usage_ops(&store_sqlite_ops);
    store_sqlite_ops.close = store_sqlite_close;
}

static const store_ops_t *store_sqlite_vtable(void)
{
    pthread_once(&store_sqlite_ops_once, store_sqlite_fill_ops);
    return &store_sqlite_ops;
}

store_t *store_open_sqlite(const char *path, char *err, size_t err_size)
{
    store_sqlite_t *sq = calloc(1, sizeof(*sq));

    if (sq == NULL) {
        snprintf(err, err_size, "out of memory opening the store");
        return NULL;
    }
    sq->base.ops = store_sqlite_vtable();

    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &sq->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, err_size, "cannot open the database %s: %s", path,
                 sq->db ? sqlite3_errmsg(sq->db) : "out of memory");
        goto fail;
    }

    sqlite3_busy_timeout(sq->db, STORE_SQLITE_BUSY_MS);
    const char *pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                          " PRAGMA foreign_keys=ON;";
    if (sqlite3_exec(sq->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, err_size, "cannot configure the database %s: %s", path,
                 sqlite3_errmsg(sq->db));
        goto fail;
    }

    if (store_sqlite_migrate(&sq->base) != STORE_OK) {
        snprintf(err, err_size, "cannot migrate the database %s: %s", path, sq->base.error);
        goto fail;
    }
    return &sq->base;

fail:
    sqlite3_close_v2(sq->db);
    free(sq);
    return NULL;
}
