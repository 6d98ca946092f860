/* Placeholder until up lands. */
#include "up/up.h"
int up_main(int c, char **v) { (void)c; (void)v; return 1; }
