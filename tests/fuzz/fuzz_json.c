/*
 * fuzz_json.c - the JSON reader (agent/util/json.c), which reads the Docker
 * engine's answers, API request bodies and log lines: parse, then walk
 * the tree through the accessors.
 */
#include "tests/fuzz/fuzz.h"
#include "agent/util/util.h"

static void walk(const struct json *v, int depth)
{
	if (!v || depth > 64)
		return;
	(void)json_get(v, "a");
	(void)json_get_str(v, "log");
	(void)json_path(v, "State.Running");
	size_t n = 0;
	for (const struct json *c = v->child; c; c = c->next, n++)
		walk(c, depth + 1);
	if ((v->type == JSON_ARRAY || v->type == JSON_OBJECT) && n != v->count)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	struct json_doc doc;
	size_t off = 0;
	if (json_parse(&doc, text, size, &off) == 0) {
		walk(doc.root, 0);
		json_doc_free(&doc);
	} else if (off > size) {
		abort();
	}
	free(text);
	return 0;
}
