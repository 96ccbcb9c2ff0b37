/*
 * test_api_web.c - the web page's handlers (agent/api_web.c) without a
 * server: every embedded file is byte for byte the file under
 * dashboards/web/ with its content type, and only those names answer
 * (traversal, prefixes, suffixes and unknown names are 404). The page in a
 * browser is tests/integration/test_web.py.
 */
#include "agent/agent.h"
#include "../test.h"

static int get(const char *arg, struct http_resp *resp)
{
	struct http_req req = { .method = "GET", .url = "/web/", .arg = arg };
	memset(resp, 0, sizeof(*resp));
	buf_init(&resp->body, 16u << 20);
	return api_web_asset(&req, resp);
}

static void check_file(const char *arg, const char *path, const char *type)
{
	struct http_resp resp;
	CHECK_EQ_INT(get(arg, &resp), 200);
	CHECK(resp.type && strncmp(resp.type, type, strlen(type)) == 0);
	CHECK(resp.gzip_ok);
	static char want[1 << 20];
	ssize_t n = read_file(path, want, sizeof(want));
	CHECK(n > 0);
	CHECK_EQ_INT(resp.body.len, n);
	CHECK(n > 0 && resp.body.len == (size_t)n && memcmp(resp.body.data, want, (size_t)n) == 0);
	buf_fini(&resp.body);
}

static void test_files(void)
{
	check_file("app.js", "dashboards/web/app.js", "application/javascript");
	check_file("app.css", "dashboards/web/app.css", "text/css");
	check_file("index.html", "dashboards/web/index.html", "text/html");
	check_file("vendor/uPlot.iife.min.js", "dashboards/web/vendor/uPlot.iife.min.js", "application/javascript");
	check_file("vendor/uPlot.min.css", "dashboards/web/vendor/uPlot.min.css", "text/css");
	check_file("vendor/uPlot.LICENSE", "dashboards/web/vendor/uPlot.LICENSE", "text/plain");
	/* A query string or fragment does not change the file. */
	check_file("app.js?v=2", "dashboards/web/app.js", "application/javascript");

	struct http_req req = { .method = "GET", .url = "/", .arg = "" };
	struct http_resp resp;
	memset(&resp, 0, sizeof(resp));
	buf_init(&resp.body, 1u << 20);
	CHECK_EQ_INT(api_web_index(&req, &resp), 200);
	CHECK(strstr(resp.body.data, "/web/app.js") != NULL);
	CHECK(strncmp(resp.type, "text/html", 9) == 0);
	buf_fini(&resp.body);
}

static void test_unknown_names(void)
{
	static const char *bad[] = {
		"", "/", "../agent/http.c", "vendor/../app.js", "./app.js", "app.js/", "app.j", "app.jsx",
		"APP.JS", "vendor/", "vendor", "/etc/passwd", "..", "index.html/..", "app.js\n",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct http_resp resp;
		int st = get(bad[i], &resp);
		if (st != 404)
			fprintf(stderr, "  %s: %d\n", bad[i], st);
		CHECK_EQ_INT(st, 404);
		buf_fini(&resp.body);
	}
	struct http_resp resp;
	memset(&resp, 0, sizeof(resp));
	buf_init(&resp.body, 1024);
	struct http_req req = { .method = "GET", .url = "/web/", .arg = NULL };
	CHECK_EQ_INT(api_web_asset(&req, &resp), 404);
	buf_fini(&resp.body);
}

int main(void)
{
	RUN(test_files);
	RUN(test_unknown_names);
	TEST_END();
}
