/* Placeholder until the server lands. */
#include "server/server.h"
#include <stdio.h>
server_t *server_start(const server_options_t *o, char *e, size_t n) { (void)o; snprintf(e, n, "not built"); return NULL; }
const char *server_url(const server_t *s) { (void)s; return ""; }
const char *server_admin_token(const server_t *s) { (void)s; return ""; }
void server_stop(server_t *s) { (void)s; }
int server_main(int c, char **v) { (void)c; (void)v; return 1; }
