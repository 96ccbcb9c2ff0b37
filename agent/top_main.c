/*
 * top_main.c - the monitor-top binary: `monitor top` without libcurl and the
 * agent's libraries (ncurses and libc only), so that the terminal view stays
 * small (issue 14: under 10 MB resident with 200 containers). `monitor top`
 * execs it for http:// URLs when it lies beside the monitor binary; it takes
 * the same flags.
 */
#include "agent/top.h"

int main(int argc, char **argv)
{
	return top_lite_main(argc, argv);
}
