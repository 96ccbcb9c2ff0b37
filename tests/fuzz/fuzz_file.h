/*
 * fuzz_file.h - for targets whose parser takes a path (the config and rule
 * files): the input is written to one temporary file per fuzzing process,
 * removed at exit.
 */
#ifndef MONITOR_FUZZ_FILE_H
#define MONITOR_FUZZ_FILE_H

#include <stdio.h>
#include <unistd.h>
#include "tests/fuzz/fuzz.h"

static char fuzz_path[64];

static void fuzz_file_rm(void)
{
	if (fuzz_path[0])
		unlink(fuzz_path);
}

/* Writes data to the process's temporary file and returns its path. */
static const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
	if (!fuzz_path[0]) {
		snprintf(fuzz_path, sizeof(fuzz_path), "/tmp/monitor-fuzz-%d%s", (int)getpid(),
			 suffix);
		atexit(fuzz_file_rm);
	}
	FILE *f = fopen(fuzz_path, "w");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
		abort();
	return fuzz_path;
}

#endif
