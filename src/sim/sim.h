/* `nimdeck sim`: a NIM API simulator for machines without a GPU. */
#ifndef NIMDECK_SIM_SIM_H
#define NIMDECK_SIM_SIM_H

int sim_main(int argc, char **argv);

#endif
