/*
 * fuzz_promql.c - the PromQL parser (storage/promql_parse.c), which reads
 * queries from the HTTP API, rule files and the CLI: parse, print back in
 * canonical form, and the printed form must parse again (a query the
 * printer writes is one the parser reads). Also the selector parser the
 * series/labels APIs use.
 */
#include <stdio.h>
#include "tests/fuzz/fuzz.h"
#include "agent/util/util.h"
#include "storage/promql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *q = fuzz_cstr(data, size);
	char err[256];
	struct promql_expr *e = NULL;
	if (promql_parse(q, &e, err, sizeof(err)) == 0) {
		(void)promql_expr_type(e);
		struct buf out;
		buf_init(&out, 1 << 20);
		promql_expr_format(e, &out);
		if (!out.overflow && out.len) {
			struct promql_expr *e2 = NULL;
			if (promql_parse(out.data, &e2, err, sizeof(err)) != 0) {
				fprintf(stderr, "query: %s\nprinted: %s\ndoes not parse: %s\n", q,
					out.data, err);
				abort();
			}
			promql_expr_free(e2);
		}
		buf_fini(&out);
		promql_expr_free(e);
	}
	e = NULL;
	const struct promql_matcher *m = NULL;
	size_t n = 0;
	if (promql_parse_selector(q, &e, &m, &n, err, sizeof(err)) == 0)
		promql_expr_free(e);
	free(q);
	return 0;
}
