/* Placeholder until the gateway lands. */
#include "gateway/gateway.h"
#include <stdio.h>
gateway_t *gateway_start(const gateway_options_t *o, char *e, size_t n) { (void)o; snprintf(e, n, "not built"); return NULL; }
int gateway_port(const gateway_t *g) { (void)g; return 0; }
void gateway_stop(gateway_t *g) { (void)g; }
int gateway_main(int c, char **v) { (void)c; (void)v; return 1; }
