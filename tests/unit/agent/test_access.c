/*
 * test_access.c - access.c without a server: route classes, loopback
 * addresses (v4, v6, v4-mapped), the listen check (loopback names and
 * addresses pass; 0.0.0.0, [::], an empty host and other addresses need
 * allow_remote), and auth.basic_auth_file: loading (comments, scopes,
 * duplicates, plain-text passwords, an empty file) and checking passwords
 * against SHA-512 ($6$) and yescrypt ($y$) hashes made by Python's crypt.
 */
#include "agent/agent.h"
#include "../test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHA512_HASH "$6$abcdefgh$gPLGlu/CBL3aX.axmxNf.xPE2HjNVL50NNc3WVwy6.QmLfKDmC5BFgWt6nDNJgVy26ZuoNSkdk7fcCvpkxCrP/"
#define YESCRYPT_HASH "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$hH9t.De3gP.pnFvXorO68FY18txblfw/wfrPDmlG1q9"
#define PASSWORD "s3cret-pass"

static char dir[64];

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(path, 0600);
	return path;
}

static void test_classify(void)
{
	CHECK_EQ_INT(access_classify("GET", "/-/healthy"), ACCESS_PUBLIC);
	CHECK_EQ_INT(access_classify("GET", "/-/ready"), ACCESS_PUBLIC);
	CHECK_EQ_INT(access_classify("GET", "/"), ACCESS_PUBLIC);
	CHECK_EQ_INT(access_classify("GET", "/web/app.js"), ACCESS_PUBLIC);
	CHECK_EQ_INT(access_classify("GET", "/metrics"), ACCESS_READ);
	CHECK_EQ_INT(access_classify("HEAD", "/metrics"), ACCESS_READ);
	CHECK_EQ_INT(access_classify("GET", "/api/v1/containers"), ACCESS_READ);
	CHECK_EQ_INT(access_classify("GET", "/api/v1/containers/web"), ACCESS_READ);
	CHECK_EQ_INT(access_classify("GET", "/api/v1/containers/web/ports"), ACCESS_READ);
	CHECK_EQ_INT(access_classify("POST", "/api/v1/query"), ACCESS_READ);
	CHECK_EQ_INT(access_classify("POST", "/api/v1/query_range"), ACCESS_READ);
	CHECK_EQ_INT(access_classify("POST", "/api/v1/series"), ACCESS_READ);
	CHECK_EQ_INT(access_classify("GET", "/api/v1/containers/web/env"), ACCESS_SENSITIVE);
	CHECK_EQ_INT(access_classify("GET", "/api/v1/containers/web/processes"), ACCESS_SENSITIVE);
	CHECK_EQ_INT(access_classify("GET", "/api/v1/logs"), ACCESS_SENSITIVE);
	CHECK_EQ_INT(access_classify("GET", "/api/v1/logs/patterns"), ACCESS_SENSITIVE);
	CHECK_EQ_INT(access_classify("GET", "/api/v1/notifications"), ACCESS_SENSITIVE);
	CHECK_EQ_INT(access_classify("GET", "/api/v2/silences"), ACCESS_SENSITIVE);
	CHECK_EQ_INT(access_classify("GET", "/api/v2/silence/abc"), ACCESS_SENSITIVE);
	CHECK_EQ_INT(access_classify("POST", "/api/v1/containers/web/stop"), ACCESS_ADMIN);
	CHECK_EQ_INT(access_classify("POST", "/-/reload"), ACCESS_ADMIN);
	CHECK_EQ_INT(access_classify("PUT", "/-/reload"), ACCESS_ADMIN);
	CHECK_EQ_INT(access_classify("POST", "/api/v2/silences"), ACCESS_ADMIN);
	CHECK_EQ_INT(access_classify("DELETE", "/api/v2/silence/abc"), ACCESS_ADMIN);
	CHECK_EQ_INT(access_classify("POST", "/api/v1/notifications/test"), ACCESS_ADMIN);
	/* a method no route has is still not a read */
	CHECK_EQ_INT(access_classify("PATCH", "/metrics"), ACCESS_ADMIN);
}

static bool lo4(const char *a)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	inet_pton(AF_INET, a, &in.sin_addr);
	return access_addr_is_loopback((struct sockaddr *)&in);
}

static bool lo6(const char *a)
{
	struct sockaddr_in6 in = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET6, a, &in.sin6_addr);
	return access_addr_is_loopback((struct sockaddr *)&in);
}

static void test_loopback(void)
{
	CHECK(lo4("127.0.0.1"));
	CHECK(lo4("127.255.0.2"));
	CHECK(!lo4("128.0.0.1"));
	CHECK(!lo4("10.0.0.1"));
	CHECK(!lo4("0.0.0.0"));
	CHECK(lo6("::1"));
	CHECK(lo6("::ffff:127.0.0.1"));
	CHECK(!lo6("::ffff:192.0.2.1"));
	CHECK(!lo6("::"));
	CHECK(!lo6("fe80::1"));
	CHECK(!access_addr_is_loopback(NULL));
}

static void test_listen_check(void)
{
	char err[512];
	CHECK_EQ_INT(access_listen_check("127.0.0.1:9838", false, err, sizeof(err)), 0);
	CHECK_EQ_INT(access_listen_check("127.0.0.2:9838", false, err, sizeof(err)), 0);
	CHECK_EQ_INT(access_listen_check("[::1]:9838", false, err, sizeof(err)), 0);
	CHECK_EQ_INT(access_listen_check("localhost:9838", false, err, sizeof(err)), 0);
	CHECK_EQ_INT(access_listen_check("0.0.0.0:9838", false, err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "0.0.0.0:9838") && strstr(err, "--allow-remote") &&
	      strstr(err, "listen_remote"));
	CHECK_EQ_INT(access_listen_check("[::]:9838", false, err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(access_listen_check("192.0.2.7:9838", false, err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(access_listen_check(":9838", false, err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "every address") != NULL);
	CHECK_EQ_INT(access_listen_check("0.0.0.0:9838", true, err, sizeof(err)), 0);
	CHECK_EQ_INT(access_listen_check(":9838", true, err, sizeof(err)), 0);
}

static void test_users(void)
{
	char err[512];
	struct access_users *u = NULL;
	const char *p = write_file("users", "# comment\n\nreader:" SHA512_HASH "\n"
				   "boss:" YESCRYPT_HASH ":admin\r\n"
				   "other:" SHA512_HASH ":read\n");
	CHECK_EQ_INT(access_users_load(p, &u, err, sizeof(err)), 0);
	CHECK(u != NULL);
	CHECK_EQ_INT(access_users_check(u, "reader", 6, PASSWORD), 1);
	CHECK_EQ_INT(access_users_check(u, "other", 5, PASSWORD), 1);
	CHECK_EQ_INT(access_users_check(u, "boss", 4, PASSWORD), 2);
	CHECK_EQ_INT(access_users_check(u, "boss", 4, PASSWORD "x"), 0);
	CHECK_EQ_INT(access_users_check(u, "reader", 6, ""), 0);
	CHECK_EQ_INT(access_users_check(u, "read", 4, PASSWORD), 0);
	CHECK_EQ_INT(access_users_check(u, "nobody", 6, PASSWORD), 0);
	/* the name is compared by length too: "readerX" with len 6 is reader */
	CHECK_EQ_INT(access_users_check(u, "readerX", 6, PASSWORD), 1);
	access_users_free(u);
	CHECK_EQ_INT(access_users_check(NULL, "reader", 6, PASSWORD), 0);

	struct {
		const char *text, *want;
	} bad[] = {
		{ "alice:plaintext\n", ":1: expected a crypt(3) hash" },
		{ "alice\n", ":1: expected user:hash" },
		{ ":" SHA512_HASH "\n", ":1: expected user:hash" },
		{ "a:" SHA512_HASH "\na:" SHA512_HASH "\n", ":2: the user is listed twice" },
		{ "a:" SHA512_HASH ":root\n", ":1: the scope after the hash must be admin or read" },
		{ "# nobody\n", "no users in the file" },
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		u = (struct access_users *)1;
		p = write_file("bad", bad[i].text);
		CHECK_EQ_INT(access_users_load(p, &u, err, sizeof(err)), -EINVAL);
		CHECK(u == NULL);
		if (!strstr(err, bad[i].want))
			fprintf(stderr, "  bad[%zu]: %s\n", i, err);
		CHECK(strstr(err, bad[i].want) != NULL);
		CHECK(strstr(err, "plaintext") == NULL);
	}
	char missing[128];
	snprintf(missing, sizeof(missing), "%s/missing", dir);
	CHECK_EQ_INT(access_users_load(missing, &u, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, missing) != NULL);
}

static void test_config_keys(void)
{
	char err[1024];
	struct agent_config c;
	config_defaults(&c);
	const char *p = write_file("ok.yml", "listen_remote: true\nauth:\n"
				   "  read_token_file: /r\n  admin_token_file: /a\n"
				   "  basic_auth_file: /u\ntls:\n  cert_file: /c\n  key_file: /k\n");
	CHECK_EQ_INT(config_load(&c, p, err, sizeof(err)), 0);
	CHECK(c.listen_remote);
	CHECK_STR(c.read_token_file, "/r");
	CHECK_STR(c.admin_token_file, "/a");
	CHECK_STR(c.basic_auth_file, "/u");
	CHECK_STR(c.tls.cert_file, "/c");
	CHECK_STR(c.tls.key_file, "/k");
	config_fini(&c);
	config_defaults(&c);
	CHECK(!c.listen_remote);
	CHECK(!c.tls.cert_file[0] && !c.read_token_file[0] && !c.basic_auth_file[0]);
	config_fini(&c);
	struct {
		const char *text, *want;
	} bad[] = {
		{ "tls:\n  cert_file: /c\n", "cert_file and key_file go together" },
		{ "tls:\n  ca_file: /c\n", "unknown key in tls" },
		{ "auth:\n  password: x\n", "unknown key in auth" },
		{ "auth:\n  read_token_file: ''\n", "auth.read_token_file" },
		{ "listen_remote: maybe\n", "listen_remote" },
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		config_defaults(&c);
		p = write_file("bad.yml", bad[i].text);
		CHECK(config_load(&c, p, err, sizeof(err)) < 0);
		if (!strstr(err, bad[i].want))
			fprintf(stderr, "  bad[%zu]: %s\n", i, err);
		CHECK(strstr(err, bad[i].want) != NULL);
		config_fini(&c);
	}
}

int main(void)
{
	log_set_level(LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/monitor-test-access-XXXXXX");
	if (!mkdtemp(dir))
		return 2;
	RUN(test_classify);
	RUN(test_loopback);
	RUN(test_listen_check);
	RUN(test_users);
	RUN(test_config_keys);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {}
	TEST_END();
}
