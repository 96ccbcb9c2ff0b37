/*
 * fuzz_import.c - the backfill format `monitor import` reads
 * (storage/import.c: Prometheus text 0.0.4 with timestamps, or OpenMetrics
 * ending in "# EOF"), imported into one store opened per fuzzing process
 * in a temporary directory; and the label text parser under it
 * (labels_parse, which also reads stored series' labels).
 */
#include <ftw.h>
#include <stdio.h>
#include "tests/fuzz/fuzz_file.h"
#include "agent/util/util.h"
#include "storage/internal.h"

static struct store *fz_store;
static char fz_dir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void fz_close(void)
{
	store_close(fz_store);
	fz_store = NULL;
	if (fz_dir[0])
		nftw(fz_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(fz_dir, sizeof(fz_dir), "/tmp/monitor-fuzz-import-XXXXXX");
	if (!mkdtemp(fz_dir))
		abort();
	struct store_config c;
	store_config_defaults(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", fz_dir);
	char err[512];
	if (store_open(&fz_store, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_import: store_open: %s\n", err);
		abort();
	}
	atexit(fz_close);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	char *text = fuzz_cstr(data, size);
	struct store_label l[STORE_MAX_LABELS];
	char *mem = malloc(size + 1);
	const char *end = NULL;
	if (!mem)
		abort();
	(void)labels_parse(text, l, STORE_MAX_LABELS, mem, false, &end);
	(void)labels_parse(text, l, STORE_MAX_LABELS, mem, true, &end);
	free(mem);
	free(text);

	struct store_import_result r;
	char err[512];
	(void)store_import_file(fz_store, fuzz_file(data, size, ".prom"), &r, err, sizeof(err));
	return 0;
}
