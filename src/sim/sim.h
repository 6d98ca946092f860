/* `nimdeck sim`: a NIM API simulator for machines without a GPU. */
#ifndef NIMDECK_SIM_SIM_H
#define NIMDECK_SIM_SIM_H

/* Run the simulator until SIGTERM or SIGINT. argv[0] is the command name.
 * Returns the exit status: 0 after a signal or --help, 1 when the server
 * fails to start (for example the port is in use), 2 on bad usage. */
int sim_main(int argc, char **argv);

#endif
