/*
 * api_web.c - the agent's own web page: GET / and GET /web/<file>.
 *
 * The page (dashboards/web/: index.html, app.js, app.css and the uPlot
 * chart library committed under dashboards/web/vendor/) is copied into
 * .rodata by the assembler's .incbin at build time, as alerting/pack.c does
 * with the default rule pack, so an agent installed as one file serves its
 * page offline and the page always matches the API of the same build. The
 * Makefile makes this object depend on the files.
 *
 * Only the names in the assets[] table are served: the request path is
 * compared with them, never joined to a directory, so there is nothing to
 * traverse. Bodies are gzipped by http.c when the client accepts it.
 */
#include "agent/agent.h"

#include <string.h>

#define WEB_ASSET(sym, file)                                   \
	".balign 16\n"                                         \
	".globl " #sym "_begin\n.hidden " #sym "_begin\n"      \
	#sym "_begin:\n"                                       \
	".incbin \"" file "\"\n"                               \
	".globl " #sym "_end\n.hidden " #sym "_end\n"          \
	#sym "_end:\n"                                         \
	".byte 0\n"

__asm__(".pushsection .rodata\n"
	WEB_ASSET(web_index, "dashboards/web/index.html")
	WEB_ASSET(web_app_js, "dashboards/web/app.js")
	WEB_ASSET(web_app_css, "dashboards/web/app.css")
	WEB_ASSET(web_uplot_js, "dashboards/web/vendor/uPlot.iife.min.js")
	WEB_ASSET(web_uplot_css, "dashboards/web/vendor/uPlot.min.css")
	WEB_ASSET(web_uplot_lic, "dashboards/web/vendor/uPlot.LICENSE")
	".popsection\n");

extern const char web_index_begin[], web_index_end[];
extern const char web_app_js_begin[], web_app_js_end[];
extern const char web_app_css_begin[], web_app_css_end[];
extern const char web_uplot_js_begin[], web_uplot_js_end[];
extern const char web_uplot_css_begin[], web_uplot_css_end[];
extern const char web_uplot_lic_begin[], web_uplot_lic_end[];

struct web_asset {
	const char *name; /* path under /web/ */
	const char *type;
	const char *begin, *end;
};

static const struct web_asset assets[] = {
	{ "index.html", "text/html; charset=utf-8", web_index_begin, web_index_end },
	{ "app.js", "application/javascript; charset=utf-8", web_app_js_begin, web_app_js_end },
	{ "app.css", "text/css; charset=utf-8", web_app_css_begin, web_app_css_end },
	{ "vendor/uPlot.iife.min.js", "application/javascript; charset=utf-8", web_uplot_js_begin,
	  web_uplot_js_end },
	{ "vendor/uPlot.min.css", "text/css; charset=utf-8", web_uplot_css_begin, web_uplot_css_end },
	{ "vendor/uPlot.LICENSE", "text/plain; charset=utf-8", web_uplot_lic_begin, web_uplot_lic_end },
};

static int serve_asset(const struct web_asset *a, struct http_resp *resp)
{
	buf_add(&resp->body, a->begin, (size_t)(a->end - a->begin));
	resp->type = a->type;
	resp->gzip_ok = true;
	return 200;
}

int api_web_index(struct http_req *req, struct http_resp *resp)
{
	return serve_asset(&assets[0], resp);
}

int api_web_asset(struct http_req *req, struct http_resp *resp)
{
	const char *name = req->arg ? req->arg : "";
	size_t n = strcspn(name, "?#");
	for (size_t i = 0; i < ARRAY_LEN(assets); i++)
		if (strlen(assets[i].name) == n && strncmp(assets[i].name, name, n) == 0)
			return serve_asset(&assets[i], resp);
	buf_puts(&resp->body, "not found\n");
	return 404;
}
