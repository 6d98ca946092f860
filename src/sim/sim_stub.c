/* Placeholder until the simulator lands. */
#include "sim/sim.h"
int sim_main(int c, char **v) { (void)c; (void)v; return 1; }
