/*
 * test_config_http.c - the http: section of the config (the HTTP server's
 * limits and CORS origins) and which requests cors.c gives CORS headers:
 * defaults, every key, the example file, errors naming file, line and key.
 */
#include "agent/agent.h"
#include "agent/http_priv.h"
#include "../test.h"
#include "config_text.h"

static void test_defaults_and_example(void)
{
	struct agent_config c;
	config_defaults(&c);
	CHECK_EQ_INT(c.http.timeout_ms, 30000);
	CHECK_EQ_INT(c.http.header_timeout_ms, 30000);
	CHECK_EQ_INT(c.http.max_connections, 256);
	CHECK_EQ_INT(c.http.max_connections_per_address, 32);
	CHECK_EQ_INT(c.http.max_header_bytes, 65536);
	CHECK_EQ_INT(c.http.max_body_bytes, 1048576);
	CHECK_EQ_INT(c.http.ncors_origins, 0);
	CHECK_EQ_INT(load_example(&c), 0);
	CHECK_EQ_INT(c.http.max_connections, 256);
	CHECK_EQ_INT(c.http.ncors_origins, 0);
	config_fini(&c);
}

static void test_values(void)
{
	struct agent_config c;
	char err[512] = "";
	int rc = load_text(&c, "http:\n  timeout: 10s\n  header_timeout: 1500ms\n"
			       "  max_connections: 64\n  max_connections_per_address: 8\n"
			       "  max_header_bytes: 16KiB\n  max_body_bytes: 2MB\n"
			       "  cors_origins: [\"https://a.example:3000\", \"*\"]\n",
			   err, sizeof(err));
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(c.http.timeout_ms, 10000);
	CHECK_EQ_INT(c.http.header_timeout_ms, 1500);
	CHECK_EQ_INT(c.http.max_connections, 64);
	CHECK_EQ_INT(c.http.max_connections_per_address, 8);
	CHECK_EQ_INT(c.http.max_header_bytes, 16384);
	CHECK_EQ_INT(c.http.max_body_bytes, 2000000);
	CHECK_EQ_INT(c.http.ncors_origins, 2);
	CHECK_STR(c.http.cors_origins[0], "https://a.example:3000");
	config_fini(&c);
}

static void test_errors(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "http:\n  timeout: 1500ms\n", ":2:12: http.timeout: must be whole seconds" },
		{ "http:\n  timeout: 2h\n", ":2:12: http.timeout: must be at most 1h" },
		{ "http:\n  header_timeout: 10ms\n", ":2:19: http.header_timeout: must be at least 100ms" },
		{ "http:\n  max_connections: -1\n", ":2:20: http.max_connections: expected a number" },
		{ "http:\n  max_connections: 4\n  max_connections_per_address: 5\n",
		  ":3:32: http.max_connections_per_address: must not exceed http.max_connections (4)" },
		{ "http:\n  max_header_bytes: 2GiB\n", ":2:21: http.max_header_bytes: must be from" },
		{ "http:\n  max_body_bytes: big\n", ":2:19: http.max_body_bytes: expected a size" },
		{ "http:\n  cors_origins: https://a.example\n", "http.cors_origins: expected a list" },
		{ "http:\n  cors_origins: [\"https://a.example/\"]\n", "http.cors_origins: expected" },
		{ "http:\n  cors_origins: [\"a.example\"]\n", "http.cors_origins: expected" },
		{ "http:\n  cors_origins: [\"https://*.example\"]\n", "http.cors_origins: expected" },
		{ "http:\n  cors: yes\n", ":2:9: cors: unknown key in http" },
		{ "http: on\n", "http: expected a mapping" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct agent_config c;
		char err[512] = "";
		CHECK(load_text(&c, cases[i].text, err, sizeof(err)) < 0);
		if (!strstr(err, cases[i].want))
			fprintf(stderr, "  %s -> %s\n", cases[i].text, err);
		CHECK(strstr(err, cases[i].want) != NULL);
		config_fini(&c);
	}
}

static void test_cors_allow(void)
{
	struct http_config h;
	config_http_defaults(&h);
	bool cred = true;
	const char *o = "https://dash.example";
	/* off by default */
	CHECK(cors_allow(&h, o, "GET", "/api/v1/query", &cred) == NULL);
	CHECK(!cred);
	char named[] = "https://DASH.example", star[] = "*";
	h.cors_origins[0] = named;
	h.ncors_origins = 1;
	CHECK_STR(cors_allow(&h, o, "GET", "/api/v1/query", &cred), o);
	CHECK(cred);
	CHECK_STR(cors_allow(&h, o, "HEAD", "/metrics", &cred), o);
	CHECK(cors_allow(&h, "https://evil.example", "GET", "/metrics", &cred) == NULL);
	CHECK(cors_allow(&h, NULL, "GET", "/metrics", &cred) == NULL);
	/* never sensitive reads, writes or admin routes */
	static const char *const never[][2] = {
		{ "GET", "/api/v1/logs" }, { "GET", "/api/v1/containers/x/env" },
		{ "GET", "/api/v1/containers/x/processes" }, { "GET", "/api/v2/silences" },
		{ "GET", "/api/v1/notifications" }, { "POST", "/api/v1/containers/x/stop" },
		{ "POST", "/-/reload" }, { "DELETE", "/api/v2/silence/x" },
		{ "POST", "/api/v1/query" }, { "GET", "/web/app.js" },
	};
	for (size_t i = 0; i < ARRAY_LEN(never); i++)
		CHECK(cors_allow(&h, o, never[i][0], never[i][1], &cred) == NULL);
	/* "*": any origin, no credentials; a named origin still gets them */
	h.cors_origins[0] = star;
	CHECK_STR(cors_allow(&h, "https://x.example", "GET", "/metrics", &cred), "*");
	CHECK(!cred);
	h.cors_origins[1] = named;
	h.ncors_origins = 2;
	CHECK_STR(cors_allow(&h, o, "GET", "/metrics", &cred), o);
	CHECK(cred);
	/* preflights */
	struct http_resp resp = { 0 };
	buf_init(&resp.body, 1024);
	CHECK_EQ_INT(cors_preflight(&h, o, "GET", "/api/v1/query", &resp), 204);
	CHECK(resp.cors_preflight && resp.cors_credentials);
	struct http_resp resp2 = { 0 };
	buf_init(&resp2.body, 1024);
	CHECK_EQ_INT(cors_preflight(&h, o, "POST", "/api/v1/containers/x/stop", &resp2), 0);
	CHECK_EQ_INT(cors_preflight(&h, o, NULL, "/metrics", &resp2), 0);
	CHECK(!resp2.cors_origin);
	buf_fini(&resp.body);
	buf_fini(&resp2.body);
}

int main(void)
{
	RUN(test_defaults_and_example);
	RUN(test_values);
	RUN(test_errors);
	RUN(test_cors_allow);
	TEST_END();
}
