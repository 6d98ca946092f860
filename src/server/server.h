/* The control-plane server: REST API under /api/v1, the store, the idle
 * checker. Runs on its own thread with its own libuv loop. */
#ifndef NIMDECK_SERVER_SERVER_H
#define NIMDECK_SERVER_SERVER_H

#include <stddef.h>

typedef struct server server_t;

typedef struct {
    const char *data_dir;          /* SQLite database, vault key, admin-token */
    const char *listen_host;       /* default "127.0.0.1" */
    int listen_port;               /* default 8470; 0 picks a free port */
    const char *gateway_url;       /* public base of endpoints, e.g. "http://127.0.0.1:8471" */
    int active_window_s;           /* default 60 */
    size_t log_lines_max;          /* console lines kept per instance; 0 means 10000 */
    int agent_timeout_s;           /* an agent that has not polled for this long is lost
                                    * and its instances fail; 0 means 90 */
    int retention_days;            /* request records and machine samples older than
                                    * this are deleted; 0 means 30 */
    int downsample_after_hours;    /* machine samples older than this are merged into
                                    * one per minute per agent; 0 means 24 */
    const char *web_root;          /* serve the web UI from this folder instead of
                                    * the copy in the binary; NULL or "" for the copy */
} server_options_t;

/* Lock the data folder (flock on DATA/lock, held until server_stop), open
 * the store (running migrations), create the admin user and
 * DATA/admin-token on first start, bind the listener and start the thread.
 * Returns NULL with a message in err on failure, among them when another
 * server holds the data folder's lock. */
server_t *server_start(const server_options_t *opts, char *err, size_t err_size);

/* Base URL the server listens on, e.g. "http://127.0.0.1:8470". */
const char *server_url(const server_t *server);

/* The admin API token read from or written to DATA/admin-token. */
const char *server_admin_token(const server_t *server);

/* Stop the thread, close the store and free everything. */
void server_stop(server_t *server);

/* `nimdeck server ...`: start, wait for SIGINT/SIGTERM, stop. */
int server_main(int argc, char **argv);

#endif
