/*
 * fuzz_logparse.c - the container log line formats (collectors/logparse.c):
 * one input is one line as a log file holds it, fed to the Docker json-file
 * and CRI parsers, the level detector (JSON, logfmt, glog, words), the
 * RFC 3339 time parser and the escaper/UTF-8 cutter the store uses.
 */
#include "tests/fuzz/fuzz.h"
#include "agent/util/util.h"
#include "collectors/collector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size heap copy (no NUL) so ASan sees a read past the end. */
	char *line = malloc(size ? size : 1);
	if (!line)
		abort();
	memcpy(line, data, size);

	struct buf text;
	buf_init(&text, 64 << 10);
	struct coll_log_entry e;
	if (coll_log_parse_docker(line, size, &text, &e) == 0) {
		(void)coll_log_level(e.text, e.len);
	}
	buf_fini(&text);
	if (coll_log_parse_cri(line, size, &e) == 0)
		(void)coll_log_level(e.text, e.len);
	(void)coll_log_parse_time(line, size);
	(void)coll_log_level(line, size);

	struct buf esc;
	buf_init(&esc, 0);
	if (coll_log_needs_escape(line, size))
		coll_log_escape(line, size, &esc);
	buf_fini(&esc);
	size_t cut = coll_log_utf8_cut(line, size, size / 2);
	if (cut > size / 2)
		abort();
	free(line);
	return 0;
}
