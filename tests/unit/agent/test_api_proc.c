/*
 * test_api_proc.c - the helpers of the /processes and /ports handlers
 * (agent/api_proc.c) that need no running agent: user names from
 * /etc/passwd text, golden and malformed. The handlers themselves are
 * exercised over HTTP by tests/integration/test_netproc.py.
 */
#include "agent/agent.h"
#include "../test.h"

static void test_passwd_name(void)
{
	static const char passwd[] =
		"root:x:0:0:root:/root:/bin/bash\n"
		"broken line without colons\n"
		"half:x\n"
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
		":x:77:77::/:/bin/sh\n"
		"app:x:1000:1000::/home/app:/bin/sh";      /* no final newline */
	char name[16];
	CHECK(api_passwd_name(passwd, 0, name, sizeof(name)));
	CHECK_STR(name, "root");
	CHECK(api_passwd_name(passwd, 65534, name, sizeof(name)));
	CHECK_STR(name, "nobody");
	CHECK(api_passwd_name(passwd, 1000, name, sizeof(name)));
	CHECK_STR(name, "app");
	CHECK(!api_passwd_name(passwd, 4242, name, sizeof(name)));
	CHECK(!api_passwd_name(passwd, 77, name, sizeof(name)));   /* an empty name */
	/* A name that does not fit is not cut short: it is not found. */
	CHECK(!api_passwd_name(passwd, 65534, name, 4));
	CHECK(!api_passwd_name("", 0, name, sizeof(name)));
	CHECK(!api_passwd_name("root:x:notanumber:0::/:/bin/sh\n", 0, name, sizeof(name)));
}

int main(void)
{
	RUN(test_passwd_name);
	TEST_END();
}
