/*
 * fuzz_config.c - the agent's YAML config (agent/config.c config_load and
 * the section loaders it calls: logs, rules, storage, remote_write, and
 * the Alertmanager-shape notifier config: route, receivers,
 * inhibit_rules, templates, checked with notify_config_check). The input
 * is the whole file; the same text also goes through the YAML tree reader
 * (agent/util/yaml.c) directly.
 */
#include "tests/fuzz/fuzz_file.h"
#include "agent/util/util.h"
#include "agent/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	char err[1024];
	struct ydoc doc;
	if (ydoc_parse(&doc, "fuzz.yml", (const char *)data, size, err, sizeof(err)) == 0)
		ydoc_free(&doc);

	struct agent_config *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	config_defaults(c);
	(void)config_load(c, fuzz_file(data, size, ".yml"), err, sizeof(err));
	config_fini(c);
	free(c);
	return 0;
}
