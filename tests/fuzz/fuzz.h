/*
 * fuzz.h - what the libFuzzer targets in tests/fuzz/ share: the entry point's
 * prototype and a NUL-terminated copy of the input (most parsers here read
 * C strings: file contents, query parameters). Built only by `make fuzz`
 * (clang -fsanitize=fuzzer,address,undefined); see docs/RELIABILITY.md.
 */
#ifndef MONITOR_FUZZ_H
#define MONITOR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "agent/util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'd copy of data with a NUL after it (the caller frees); aborts on
 * allocation failure, which libFuzzer reports. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* The agent's warnings about bad input are expected here by the million. */
__attribute__((constructor)) static void fuzz_quiet(void)
{
	log_set_level(LOG_ERROR);
}

#endif
