/* `nimdeck up`: server, gateway and a local agent in one process. */
#ifndef NIMDECK_UP_UP_H
#define NIMDECK_UP_UP_H

int up_main(int argc, char **argv);

#endif
