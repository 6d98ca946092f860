/* Server start-up: data folder, store, vault key, the admin user, the
 * default queue and the admin token file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/server_internal.h"
#include "store/token.h"
#include "util/clock.h"
#include "util/log.h"

/* Ten years, the admin token's lifetime. */
#define SERVER_ADMIN_TOKEN_MS (3650LL * 24 * 3600 * 1000)

void server_random_id(char *out, size_t len, const char *alphabet)
{
    token_random_chars(out, len, alphabet);
}

static int server_make_data_dir(const char *dir, char *err, size_t err_size)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    snprintf(err, err_size, "cannot create the data folder %s: %s", dir, strerror(errno));
    return -1;
}

/* Take the exclusive lock on DATA/lock for the server's lifetime, so that
 * two servers never share one data folder: both would run the idle checker,
 * lease the same instances and write the same database. The kernel drops
 * the lock when the process exits, however it exits. */
static int server_lock_data_dir(server_t *srv, char *err, size_t err_size)
{
    char path[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%s/lock", srv->data_dir);
    srv->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (srv->lock_fd < 0) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(srv->lock_fd, LOCK_EX | LOCK_NB) == 0)
        return 0;

    if (errno == EWOULDBLOCK)
        snprintf(err, err_size,
                 "the data folder %s is in use by another nimdeck server (%s is locked); stop "
                 "that server first or pass another --data folder",
                 srv->data_dir, path);
    else
        snprintf(err, err_size, "cannot lock %s: %s", path, strerror(errno));
    close(srv->lock_fd);
    srv->lock_fd = -1;
    return -1;
}

static int server_ensure_admin(server_t *srv, char *err, size_t err_size)
{
    store_t *st = srv->store;
    store_user_t admin = {.admin = 1, .created_at = clock_wall_ms()};

    snprintf(admin.name, sizeof(admin.name), "admin");
    int rc = st->ops->user_create(st, &admin);
    if (rc == STORE_OK)
        log_info(SERVER_LOG, "created the admin user");
    if (rc == STORE_OK || rc == STORE_EXISTS)
        rc = st->ops->queue_create(st, "default", admin.created_at);
    if (rc != STORE_OK && rc != STORE_EXISTS) {
        snprintf(err, err_size, "cannot create the admin user or default queue: %s",
                 store_error(st));
        return -1;
    }
    return 0;
}

/* Read DATA/admin-token; 1 when it contains a usable (known, unrevoked,
 * unexpired) api token, 0 when absent or unusable, -1 on a read error. */
static int server_read_admin_token(server_t *srv, const char *path, char *err, size_t err_size)
{
    char text[sizeof(srv->admin_token)] = "", hash[TOKEN_HASH_HEX_LEN + 1];
    store_token_t token;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t got = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (got < 0) {
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    text[got] = '\0';
    text[strcspn(text, " \r\n\t")] = '\0';

    token_hash_hex(text, hash, sizeof(hash));
    if (srv->store->ops->token_find_hash(srv->store, hash, &token) != STORE_OK ||
        token.revoked || token.expires_at <= clock_wall_ms() || strcmp(token.scope, "api") != 0) {
        log_warn(SERVER_LOG, "%s contains no valid admin token (unknown, revoked or expired); writing a new one", path);
        return 0;
    }
    snprintf(srv->admin_token, sizeof(srv->admin_token), "%s", text);
    snprintf(srv->admin_token_id, sizeof(srv->admin_token_id), "%s", token.id);
    return 1;
}

static int server_write_admin_token(server_t *srv, const char *path, char *err, size_t err_size)
{
    store_token_t token = {.created_at = clock_wall_ms()};
    char tmp[PATH_MAX + 48];

    if (token_generate(srv->admin_token, sizeof(srv->admin_token)) != 0) {
        snprintf(err, err_size, "cannot generate the admin token: libsodium failed");
        return -1;
    }
    server_random_id(token.id, SERVER_INSTANCE_ID_LEN, TOKEN_ALPHABET_HEX);
    token_hash_hex(srv->admin_token, token.hash, sizeof(token.hash));
    snprintf(token.user, sizeof(token.user), "admin");
    snprintf(token.scope, sizeof(token.scope), "api");
    token.expires_at = token.created_at + SERVER_ADMIN_TOKEN_MS;
    if (srv->store->ops->token_insert(srv->store, &token) != STORE_OK) {
        snprintf(err, err_size, "cannot store the admin token: %s", store_error(srv->store));
        return -1;
    }

    /* Write beside and rename, so a crash never leaves a half-written file. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_size, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t len = strlen(srv->admin_token);
    int ok = write(fd, srv->admin_token, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
             fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    snprintf(srv->admin_token_id, sizeof(srv->admin_token_id), "%s", token.id);
    log_info(SERVER_LOG, "wrote a new admin token (id %s) to %s", token.id, path);
    return 0;
}

int server_bootstrap(server_t *srv, char *err, size_t err_size)
{
    char path[PATH_MAX + 32];

    if (server_make_data_dir(srv->data_dir, err, err_size) != 0 ||
        server_lock_data_dir(srv, err, err_size) != 0)
        return -1;

    /* SQLite gives the -wal and -shm files the database file's mode, so
     * creating it 0600 first keeps all three private. */
    snprintf(path, sizeof(path), "%s/nimdeck.db", srv->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    srv->store = store_open_sqlite(path, err, err_size);
    if (srv->store == NULL)
        return -1;

    snprintf(path, sizeof(path), "%s/vault.key", srv->data_dir);
    if (vault_key_load(path, &srv->vault_key, err, err_size) != 0)
        return -1;

    if (server_ensure_admin(srv, err, err_size) != 0)
        return -1;

    snprintf(path, sizeof(path), "%s/admin-token", srv->data_dir);
    int found = server_read_admin_token(srv, path, err, err_size);
    if (found < 0)
        return -1;
    if (found == 0 && server_write_admin_token(srv, path, err, err_size) != 0)
        return -1;
    return 0;
}
