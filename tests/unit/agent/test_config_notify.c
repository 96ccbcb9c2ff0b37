/*
 * test_config_notify.c - the notifier's keys in the agent's config file:
 * route:, receivers:, inhibit_rules: and templates: beside the other
 * top-level keys, in any order; errors name the file, line and key; a
 * route naming a receiver defined later in the file is fine, one naming no
 * receiver at all is not.
 */
#include "tests/unit/test.h"

#include <errno.h>

#include "tests/unit/agent/config_text.h"
#include "alerting/notify_int.h"

static void test_notify_keys(void)
{
	struct agent_config c;
	char err[1024];
	int rc = load_text(&c,
			   "route:\n  receiver: ops\n  group_wait: 0s\n"
			   "interval: 2s\n"
			   "inhibit_rules:\n- source_matchers: [severity=critical]\n"
			   "  target_matchers: [severity=warning]\n  equal: [host]\n"
			   "receivers:\n- name: ops\n  webhook_configs:\n  - url: http://127.0.0.1:1/x\n"
			   "    send_resolved: false\n",
			   err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	if (rc)
		fprintf(stderr, "  %s\n", err);
	CHECK_EQ_INT(c.interval_ms, 2000);
	CHECK(c.notify != NULL);
	if (c.notify) {
		CHECK_EQ_INT(c.notify->nrecv, 1);
		CHECK_EQ_INT(c.notify->ninteg, 1);
		CHECK(!c.notify->integ[0].send_resolved);
		CHECK_EQ_INT(c.notify->root->group_wait_ms, 0);
		CHECK_EQ_INT(c.notify->root->group_interval_ms, 300000); /* Alertmanager's */
		CHECK_EQ_INT(c.notify->root->repeat_interval_ms, 4 * 3600000);
		CHECK_EQ_INT(c.notify->ninhibit, 1);
	}
	config_fini(&c);
	CHECK(c.notify == NULL);

	rc = load_text(&c, "route:\n  receiver: nobody\nreceivers:\n- name: ops\n", err, sizeof(err));
	CHECK_EQ_INT(rc, -EINVAL);
	CHECK(strstr(err, "receiver \"nobody\" is not defined") != NULL);
	CHECK(strstr(err, "/tmp/monitor-test-config-") == err);
	config_fini(&c);

	rc = load_text(&c, "receivers:\n- name: ops\n  slack_configs:\n  - url: http://x\n"
			   "    colour: red\n", err, sizeof(err));
	CHECK_EQ_INT(rc, -EINVAL);
	CHECK(strstr(err, ":5:13: colour: unknown key in slack_configs") != NULL);
	config_fini(&c);

	rc = load_text(&c, "receivers:\n- name: ops\n", err, sizeof(err));
	CHECK_EQ_INT(rc, -EINVAL);
	CHECK(strstr(err, "no route:") != NULL);
	config_fini(&c);
}

int main(void)
{
	RUN(test_notify_keys);
	TEST_END();
}
