/*
 * top_text.c - `monitor top` as text: compact units, bars, sparklines,
 * middle ellipsis, every cell of the list, the header, a whole frame
 * (--once prints it; the curses view draws the same cells with colours),
 * the JSON snapshot (--json), and the small settings file that the column
 * chooser saves.
 *
 * Units: memory in binary units ("512M" is 512 MiB, as htop and ctop show
 * it), rates in decimal bytes per second ("1.2M" = 1.2 MB/s, as docker
 * stats' NET I/O and BLOCK I/O).
 */
#include "agent/top.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- units, bars, sparklines, ellipsis ------------------------------------------ */

void top_fmt_units(char *out, size_t size, double v, bool binary)
{
	static const char suffix[] = "BkMGTPE";
	double base = binary ? 1024.0 : 1000.0;
	if (!isfinite(v) || v < 0) {
		snprintf(out, size, "-");
		return;
	}
	size_t i = 0;
	while (v >= 999.5 && i + 1 < sizeof(suffix) - 1) {
		v /= base;
		i++;
	}
	char s = i == 0 ? 0 : (binary && suffix[i] == 'k') ? 'K' : suffix[i];
	if (i == 0)
		snprintf(out, size, "%.0f", v);
	else if (v < 9.95)
		snprintf(out, size, "%.1f%c", v, s);
	else
		snprintf(out, size, "%.0f%c", v, s);
}

void top_bar(double pct, int width, char *out, size_t size)
{
	if (width < 3 || (size_t)width >= size) {
		if (size)
			out[0] = '\0';
		return;
	}
	int inner = width - 2;
	if (!isfinite(pct) || pct < 0)
		pct = 0;
	int fill = (int)(pct / 100.0 * inner + 0.5);
	if (fill > inner)
		fill = inner;
	if (pct > 0 && fill == 0)
		fill = 1;     /* something, however little, shows */
	out[0] = '[';
	for (int i = 0; i < inner; i++)
		out[1 + i] = i < fill ? '|' : ' ';
	out[width - 1] = ']';
	out[width] = '\0';
}

void top_sparkline(const double *v, size_t n, double max, int width, bool utf8, char *out,
		   size_t size)
{
	static const char *const blocks[] = { "\u2581", "\u2582", "\u2583", "\u2584",
					      "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char ascii[] = " .:-=+*#";
	size_t o = 0;
	if (size)
		out[0] = '\0';
	if (width <= 0 || size < 4)
		return;
	if (max <= 0)
		for (size_t i = 0; i < n; i++)
			if (isfinite(v[i]) && v[i] > max)
				max = v[i];
	/* The newest width values, right-aligned. */
	size_t first = n > (size_t)width ? n - (size_t)width : 0;
	int pad = (int)((size_t)width - (n - first));
	for (int i = 0; i < pad && o + 2 < size; i++)
		out[o++] = ' ';
	for (size_t i = first; i < n; i++) {
		const char *g;
		char one[2] = { 0, 0 };
		if (!isfinite(v[i])) {
			one[0] = ' ';
			g = one;
		} else {
			int k = max > 0 ? (int)(v[i] / max * 7.0 + 0.5) : 0;
			k = k < 0 ? 0 : k > 7 ? 7 : k;
			if (utf8) {
				g = blocks[k];
			} else {
				one[0] = ascii[k];
				g = one;
			}
		}
		size_t gl = strlen(g);
		if (o + gl + 1 >= size)
			break;
		memcpy(out + o, g, gl);
		o += gl;
	}
	out[o] = '\0';
}

/* Display width of UTF-8 text (one column per code point). */
static int text_width(const char *s)
{
	int w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

/* Byte offset of display column col in s. */
static size_t col_offset(const char *s, int col)
{
	size_t i = 0;
	int w = 0;
	while (s[i]) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (w == col)
				return i;
			w++;
		}
		i++;
	}
	return i;
}

void top_ellipsize(const char *s, int width, bool utf8, char *out, size_t size)
{
	int w = text_width(s);
	if (w <= width || width < 4) {
		size_t n = col_offset(s, width > 0 ? width : 0);
		snprintf(out, size, "%.*s", (int)n, s);
		return;
	}
	const char *dots = utf8 ? "\u2026" : "~";
	int keep = width - 1, head = (keep + 1) / 2, tail = keep - head;
	size_t h = col_offset(s, head), t = col_offset(s, w - tail);
	snprintf(out, size, "%.*s%s%s", (int)h, s, dots, s + t);
}

/* Pads (left-aligned, or right-aligned) text to width display columns. */
static void pad(char *out, size_t size, const char *text, int width, bool right)
{
	int w = text_width(text);
	int fill = width > w ? width - w : 0;
	if (right)
		snprintf(out, size, "%*s%s", fill, "", text);
	else
		snprintf(out, size, "%s%*s", text, fill, "");
}

/* text cut with an ellipsis to width display columns when it is wider,
 * then padded to width as pad() does. */
static void fit(char *out, size_t size, const char *text, int width, bool utf8, bool right)
{
	char cut[512];
	if (text_width(text) > width) {
		top_ellipsize(text, width, utf8, cut, sizeof(cut));
		text = cut;
	}
	pad(out, size, text, width, right);
}

/* A percentage column's text n: after a bar of pct, left-aligned, when
 * bars are on, else alone; returns whether it is right-aligned. */
static bool bar_cell(char *t, size_t size, bool bars, double pct, enum top_col col,
		     const char *n)
{
	if (!bars) {
		snprintf(t, size, "%s", n);
		return true;
	}
	char bar[64] = "";
	top_bar(pct, top_cols[col].bar_width - 1, bar, sizeof(bar));
	snprintf(t, size, "%s %*s", bar, top_cols[col].width, n);
	return false;
}

/* v as a whole number, or "-" when it is not known. */
static void whole_or_dash(char *out, size_t size, double v, bool known)
{
	if (known)
		snprintf(out, size, "%.0f", v);
	else
		snprintf(out, size, "-");
}

/* ---- cells ------------------------------------------------------------------------ */

static const char *status_glyph(const struct top_row *r, bool utf8, char *buf, size_t size)
{
	const char *st = r->state, *h = r->health;
	const char *a, *b = " ";
	if (!strcmp(st, "running") || !*st)
		a = utf8 ? "\u25cf" : "R";             /* ● */
	else if (!strcmp(st, "paused"))
		a = utf8 ? "\u2016" : "P";             /* ‖ */
	else if (!strcmp(st, "restarting"))
		a = utf8 ? "\u21bb" : "r";             /* ↻ */
	else if (!strcmp(st, "created"))
		a = utf8 ? "\u25cc" : "C";             /* ◌ */
	else
		a = utf8 ? "\u25cb" : "S";             /* ○ exited, dead, ... */
	if (!strcmp(h, "healthy"))
		b = utf8 ? "\u2713" : "+";             /* ✓ */
	else if (!strcmp(h, "unhealthy"))
		b = utf8 ? "\u2717" : "!";             /* ✗ */
	else if (!strcmp(h, "starting"))
		b = utf8 ? "\u2026" : "~";
	else if (r->oom_killed)
		b = "K";
	snprintf(buf, size, "%s%s", a, b);
	return buf;
}

static void pair(char *out, size_t size, double a, double b, bool have, bool binary)
{
	char x[16], y[16];
	if (!have) {
		snprintf(out, size, "-");
		return;
	}
	top_fmt_units(x, sizeof(x), a, binary);
	top_fmt_units(y, sizeof(y), b, binary);
	snprintf(out, size, "%s/%s", x, y);
}

void top_cell(const struct top_model *m, const struct top_row *r, enum top_col col, int width,
	      bool bars, bool utf8, char *out, size_t size, int *level)
{
	char t[512] = "";
	bool right = false;
	*level = 0;
	switch (col) {
	case TOP_COL_STATUS:
		status_glyph(r, utf8, t, sizeof(t));
		*level = r->bad ? 3 : 0;
		break;
	case TOP_COL_NAME:
		top_ellipsize(r->name, width, utf8, t, sizeof(t));
		*level = r->bad ? 3 : 0;
		break;
	case TOP_COL_CPU: {
		char n[32] = "-";
		if (r->u.have_cpu && r->up)
			snprintf(n, sizeof(n), "%.1f", r->u.cpu_percent);
		right = bar_cell(t, sizeof(t), bars, r->up ? r->cpu_of_limit : 0, col, n);
		*level = top_level(m, r->cpu_of_limit);
		break;
	}
	case TOP_COL_CPU_LIMIT:
		whole_or_dash(t, sizeof(t), r->cpu_of_limit,
			      r->cpu_limit_cores > 0 && r->u.have_cpu && r->up);
		right = true;
		*level = r->cpu_limit_cores > 0 ? top_level(m, r->cpu_of_limit) : 0;
		break;
	case TOP_COL_MEM: {
		char used[16] = "-", lim[16] = "-", n[40];
		if (r->u.have_mem && r->up) {
			top_fmt_units(used, sizeof(used), r->u.mem_bytes, true);
			if (r->mem_limited)
				top_fmt_units(lim, sizeof(lim), r->u.mem_limit_bytes, true);
		}
		snprintf(n, sizeof(n), "%s/%s", used, lim);
		right = bar_cell(t, sizeof(t), bars, r->up ? r->u.mem_percent : 0, col, n);
		*level = r->up ? top_level(m, r->u.mem_percent) : 0;
		break;
	}
	case TOP_COL_NET:
		pair(t, sizeof(t), r->net_rx_rate, r->net_tx_rate, r->have_rates && r->u.have_net && r->up,
		     false);
		right = true;
		break;
	case TOP_COL_IO:
		pair(t, sizeof(t), r->io_read_rate, r->io_write_rate, r->have_rates && r->up, false);
		right = true;
		break;
	case TOP_COL_PIDS:
		whole_or_dash(t, sizeof(t), r->u.pids, r->u.have_pids && r->up);
		right = true;
		break;
	case TOP_COL_RESTARTS:
		whole_or_dash(t, sizeof(t), r->restarts, r->restarts >= 0);
		right = true;
		*level = r->restarts > 0 ? 1 : 0;
		break;
	case TOP_COL_UPTIME:
		if (r->uptime_s >= 0)
			cli_short_duration(t, sizeof(t), r->uptime_s);
		else if (r->exit_code >= 0 && !r->up)
			snprintf(t, sizeof(t), "exit%.0f", r->exit_code);
		else
			snprintf(t, sizeof(t), "-");
		right = true;
		*level = !r->up && r->exit_code > 0 ? 3 : 0;
		break;
	case TOP_COL_ALERT:
		switch (r->alert) {
		case TOP_ALERT_FIRING: snprintf(t, sizeof(t), "%s", utf8 ? "\u25b2" : "!"); *level = 3; break;
		case TOP_ALERT_PENDING: snprintf(t, sizeof(t), "?"); *level = 1; break;
		case TOP_ALERT_SILENCED: snprintf(t, sizeof(t), "s"); break;
		case TOP_ALERT_NONE: snprintf(t, sizeof(t), " "); break;
		}
		break;
	case TOP_COL_ID:
		snprintf(t, sizeof(t), "%.12s", r->id);
		break;
	case TOP_COL_IMAGE:
		top_ellipsize(r->image, width, utf8, t, sizeof(t));
		break;
	case TOP_COL_GROUP:
		top_ellipsize(r->group, width, utf8, t, sizeof(t));
		break;
	case TOP_COL_THROTTLE:
		whole_or_dash(t, sizeof(t), r->throttle_pct, r->throttle_pct >= 0 && r->up);
		right = true;
		*level = top_level(m, r->throttle_pct * 4);   /* 25 % throttled is critical */
		break;
	case TOP_COL_OOM:
		whole_or_dash(t, sizeof(t), r->oom_events, r->oom_events >= 0);
		right = true;
		*level = r->oom_events > 0 ? 3 : 0;
		break;
	case TOP_COL__COUNT:
		break;
	}
	fit(out, size, t, width, utf8, right);
}

void top_sum_cell(const struct top_sum *s, const char *label, enum top_col col, int width,
		  bool utf8, char *out, size_t size)
{
	char t[256] = "";
	bool right = true;
	switch (col) {
	case TOP_COL_NAME:
		top_ellipsize(label, width, utf8, t, sizeof(t));
		right = false;
		break;
	case TOP_COL_CPU:
		snprintf(t, sizeof(t), "%.1f", s->cpu_percent);
		break;
	case TOP_COL_MEM:
		top_fmt_units(t, sizeof(t), s->mem_bytes, true);
		break;
	case TOP_COL_NET:
		pair(t, sizeof(t), s->net_rx_rate, s->net_tx_rate, s->have_rates, false);
		break;
	case TOP_COL_IO:
		pair(t, sizeof(t), s->io_read_rate, s->io_write_rate, s->have_rates, false);
		break;
	case TOP_COL_PIDS:
		snprintf(t, sizeof(t), "%.0f", s->pids);
		break;
	default:
		break;
	}
	fit(out, size, t, width, utf8, right);
}

void top_title_line(const struct top_model *m, const struct top_layout *lay, char *out,
		    size_t size)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < lay->ncols && o < size; i++) {
		enum top_col c = lay->cols[i];
		char title[64], cell[256];
		snprintf(title, sizeof(title), "%s%s", top_cols[c].title,
			 c == m->sort ? (m->reverse ? "^" : "v") : "");
		bool right = c != TOP_COL_NAME && c != TOP_COL_STATUS && c != TOP_COL_ID &&
			     c != TOP_COL_IMAGE && c != TOP_COL_GROUP && c != TOP_COL_ALERT &&
			     !((c == TOP_COL_CPU || c == TOP_COL_MEM) && lay->bars);
		pad(cell, sizeof(cell), title, lay->width[i], right);
		o += (size_t)snprintf(out + o, size - o, "%s%s", i ? " " : "", cell);
	}
}

/* ---- the header and a whole frame ---------------------------------------------------- */

void top_header_lines(const struct top_model *m, const char *url, const char *status,
		      char lines[2][512])
{
	const struct top_host *h = &m->host;
	char cpu[32] = "-", mem[64] = "-", load[64] = "-", used[16], total[16];
	if (h->have_cpu)
		snprintf(cpu, sizeof(cpu), "%.1f%% of %.0f", h->cpu_percent, h->cpus);
	else if (h->cpus > 0)
		snprintf(cpu, sizeof(cpu), "- of %.0f", h->cpus);
	if (h->mem_total_bytes > 0) {
		top_fmt_units(total, sizeof(total), h->mem_total_bytes, true);
		if (h->mem_used_bytes >= 0) {
			top_fmt_units(used, sizeof(used), h->mem_used_bytes, true);
			snprintf(mem, sizeof(mem), "%s/%s (%.0f%%)", used, total,
				 h->mem_used_bytes / h->mem_total_bytes * 100.0);
		} else {
			snprintf(mem, sizeof(mem), "-/%s", total);
		}
	}
	if (h->load[0] >= 0)
		snprintf(load, sizeof(load), "%.2f %.2f %.2f", h->load[0], h->load[1], h->load[2]);
	snprintf(lines[0], 512, "monitor top - %s   CPU %s   MEM %s   load %s", url, cpu, mem, load);
	char alerts[64];
	if (m->alerts_available)
		snprintf(alerts, sizeof(alerts), "%zu firing, %zu silenced", h->firing, h->silenced);
	else
		snprintf(alerts, sizeof(alerts), "not available");
	char filt[TOP_FILTER_TEXT_MAX + 16] = "";
	if (m->filter.nterms)
		snprintf(filt, sizeof(filt), "   filter: %s", m->filter.text);
	snprintf(lines[1], 512, "containers %zu: %zu running, %zu stopped%s, %zu unhealthy"
		 "   alerts: %s%s%s%s", h->total, h->running, h->stopped,
		 m->show_all ? "" : " (hidden)", h->unhealthy, alerts, filt,
		 status && *status ? "   " : "", status ? status : "");
}

/* Appends one list line (a row or a subtotal) of the layout to out. */
static void line_text(const struct top_model *m, const struct top_layout *lay,
		      const struct top_line *ln, bool utf8, struct buf *out)
{
	for (size_t i = 0; i < lay->ncols; i++) {
		char cell[1024];
		int level;
		if (ln->kind == TOP_LINE_ROW) {
			top_cell(m, &m->rows[ln->index], lay->cols[i], lay->width[i], lay->bars, utf8,
				 cell, sizeof(cell), &level);
		} else {
			const struct top_group *g = &m->groups[ln->index];
			char label[TOP_NAME_MAX + 32];
			snprintf(label, sizeof(label), "%s (%zu)", *g->key ? g->key : "(no group)",
				 g->sum.count);
			top_sum_cell(&g->sum, label, lay->cols[i], lay->width[i], utf8, cell,
				     sizeof(cell));
		}
		if (i)
			buf_putc(out, ' ');
		buf_puts(out, cell);
	}
	/* no trailing blanks */
	while (out->len && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
	buf_putc(out, '\n');
}

int top_render_text(const struct top_model *m, const char *url, int width, bool utf8,
		    struct buf *out)
{
	struct top_layout lay;
	top_layout_compute(m, width, &lay);
	char head[2][512], title[4096];
	top_header_lines(m, url, "", head);
	buf_printf(out, "%s\n%s\n", head[0], head[1]);
	top_title_line(m, &lay, title, sizeof(title));
	buf_printf(out, "%s\n", title);
	for (size_t i = 0; i < m->nlines; i++)
		line_text(m, &lay, &m->lines[i], utf8, out);
	char label[64];
	snprintf(label, sizeof(label), "TOTAL (%zu)", m->totals.count);
	for (size_t i = 0; i < lay.ncols; i++) {
		char cell[512];
		top_sum_cell(&m->totals, label, lay.cols[i], lay.width[i], utf8, cell, sizeof(cell));
		if (i)
			buf_putc(out, ' ');
		buf_puts(out, cell);
	}
	while (out->len && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
	buf_putc(out, '\n');
	return out->overflow ? -ENOMEM : 0;
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void jnum(struct buf *b, const char *key, bool have, double v)
{
	buf_printf(b, ",\"%s\":", key);
	if (have && isfinite(v))
		buf_put_double(b, v);
	else
		buf_puts(b, "null");
}

static void jsum(struct buf *b, const struct top_sum *s)
{
	buf_printf(b, "{\"containers\":%zu", s->count);
	jnum(b, "cpu_percent", true, s->cpu_percent);
	jnum(b, "memory_usage_bytes", true, s->mem_bytes);
	jnum(b, "net_rx_bytes_per_second", s->have_rates, s->net_rx_rate);
	jnum(b, "net_tx_bytes_per_second", s->have_rates, s->net_tx_rate);
	jnum(b, "block_read_bytes_per_second", s->have_rates, s->io_read_rate);
	jnum(b, "block_write_bytes_per_second", s->have_rates, s->io_write_rate);
	jnum(b, "pids", true, s->pids);
	buf_putc(b, '}');
}

static const char *alert_name(enum top_alert_state a)
{
	switch (a) {
	case TOP_ALERT_FIRING: return "firing";
	case TOP_ALERT_PENDING: return "pending";
	case TOP_ALERT_SILENCED: return "silenced";
	case TOP_ALERT_NONE: break;
	}
	return NULL;
}

int top_render_json(const struct top_model *m, struct buf *b)
{
	const struct top_host *h = &m->host;
	buf_puts(b, "{\"time\":");
	buf_put_double(b, m->cur.time);
	buf_puts(b, ",\"host\":{\"cpus\":");
	buf_put_double(b, h->cpus);
	jnum(b, "cpu_percent", h->have_cpu, h->cpu_percent);
	jnum(b, "memory_bytes", h->mem_total_bytes > 0, h->mem_total_bytes);
	jnum(b, "memory_used_bytes", h->mem_used_bytes >= 0, h->mem_used_bytes);
	jnum(b, "load1", h->load[0] >= 0, h->load[0]);
	jnum(b, "load5", h->load[1] >= 0, h->load[1]);
	jnum(b, "load15", h->load[2] >= 0, h->load[2]);
	buf_printf(b, ",\"containers\":%zu,\"running\":%zu,\"stopped\":%zu,\"unhealthy\":%zu",
		   h->total, h->running, h->stopped, h->unhealthy);
	if (m->alerts_available)
		buf_printf(b, ",\"alerts_firing\":%zu,\"alerts_silenced\":%zu", h->firing,
			   h->silenced);
	else
		buf_puts(b, ",\"alerts_firing\":null,\"alerts_silenced\":null");
	buf_puts(b, "},\"sort\":");
	buf_put_json_str(b, top_cols[m->sort].key);
	buf_puts(b, m->reverse ? ",\"reverse\":true" : ",\"reverse\":false");
	buf_puts(b, ",\"filter\":");
	buf_put_json_str(b, m->filter.text);
	buf_puts(b, ",\"containers\":[");
	size_t k = 0;
	for (size_t i = 0; i < m->nlines; i++) {
		if (m->lines[i].kind != TOP_LINE_ROW)
			continue;
		const struct top_row *r = &m->rows[m->lines[i].index];
		buf_puts(b, k++ ? ",{\"id\":" : "{\"id\":");
		buf_put_json_str(b, r->id);
		buf_puts(b, ",\"name\":");
		buf_put_json_str(b, r->name);
		buf_puts(b, ",\"image\":");
		buf_put_json_str(b, r->image);
		buf_puts(b, ",\"state\":");
		buf_put_json_str(b, r->state);
		buf_puts(b, ",\"health\":");
		if (*r->health)
			buf_put_json_str(b, r->health);
		else
			buf_puts(b, "null");
		buf_puts(b, ",\"group\":");
		buf_put_json_str(b, r->group);
		cli_usage_json(b, &r->u);
		jnum(b, "cpu_limit_cores", r->cpu_limit_cores > 0, r->cpu_limit_cores);
		jnum(b, "cpu_limit_percent", r->cpu_limit_cores > 0 && r->u.have_cpu, r->cpu_of_limit);
		jnum(b, "net_rx_bytes_per_second", r->have_rates, r->net_rx_rate);
		jnum(b, "net_tx_bytes_per_second", r->have_rates, r->net_tx_rate);
		jnum(b, "block_read_bytes_per_second", r->have_rates, r->io_read_rate);
		jnum(b, "block_write_bytes_per_second", r->have_rates, r->io_write_rate);
		jnum(b, "restarts", r->restarts >= 0, r->restarts);
		jnum(b, "uptime_seconds", r->uptime_s >= 0, r->uptime_s);
		jnum(b, "exit_code", r->exit_code >= 0, r->exit_code);
		buf_puts(b, r->oom_killed ? ",\"oom_killed\":true" : ",\"oom_killed\":false");
		jnum(b, "oom_events", r->oom_events >= 0, r->oom_events);
		jnum(b, "throttled_percent", r->throttle_pct >= 0, r->throttle_pct);
		buf_puts(b, ",\"alert\":");
		const char *an = alert_name(r->alert);
		if (an)
			buf_put_json_str(b, an);
		else
			buf_puts(b, "null");
		buf_puts(b, r->bad ? ",\"bad\":true}" : ",\"bad\":false}");
	}
	buf_puts(b, "],\"groups\":[");
	for (size_t g = 0; g < m->ngroups; g++) {
		buf_puts(b, g ? ",{\"group\":" : "{\"group\":");
		buf_put_json_str(b, m->groups[g].key);
		buf_puts(b, ",\"subtotal\":");
		jsum(b, &m->groups[g].sum);
		buf_putc(b, '}');
	}
	buf_puts(b, "],\"totals\":");
	jsum(b, &m->totals);
	buf_puts(b, "}\n");
	return b->overflow ? -ENOMEM : 0;
}

/* ---- the settings file ------------------------------------------------------------------- */

int top_config_path(char *out, size_t size)
{
	const char *p = getenv("MONITOR_TOP_CONFIG");
	if (p && *p)
		return snprintf(out, size, "%s", p) < (int)size ? 0 : -ENAMETOOLONG;
	const char *x = getenv("XDG_CONFIG_HOME");
	if (x && *x)
		return snprintf(out, size, "%s/monitor/top.conf", x) < (int)size ? 0 : -ENAMETOOLONG;
	const char *home = getenv("HOME");
	if (!home || !*home)
		return -ENOENT;
	return snprintf(out, size, "%s/.config/monitor/top.conf", home) < (int)size ? 0
										 : -ENAMETOOLONG;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
		 !strcasecmp(v, "off"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_pct(const char *v, double *out)
{
	char *end;
	double d = strtod(v, &end);
	while (*end == '%' || *end == ' ')
		end++;
	if (end == v || *end || !(d > 0 && d <= 1000))
		return -EINVAL;
	*out = d;
	return 0;
}

/* Sets the columns from a comma-separated list of keys. */
static int parse_columns(struct top_model *m, const char *v, char *err, size_t errsize)
{
	bool on[TOP_COL__COUNT] = { false };
	char copy[1024], *save = NULL;
	snprintf(copy, sizeof(copy), "%s", v);
	for (char *k = strtok_r(copy, ", ", &save); k; k = strtok_r(NULL, ", ", &save)) {
		int c = top_col_by_key(k);
		if (c < 0) {
			snprintf(err, errsize, "unknown column \"%.32s\"", k);
			return -EINVAL;
		}
		on[c] = true;
	}
	on[TOP_COL_STATUS] = on[TOP_COL_NAME] = true;
	memcpy(m->col_on, on, sizeof(on));
	return 0;
}

int top_config_load(struct top_model *m, int64_t *interval_ms, const char *path, char *err,
		    size_t errsize)
{
	char text[8192];
	ssize_t n = read_file(path, text, sizeof(text));
	if (n < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror((int)-n));
		return (int)n;
	}
	int line = 0;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		line++;
		while (*l == ' ' || *l == '\t')
			l++;
		if (!*l || *l == '#')
			continue;
		char *eq = strchr(l, '=');
		if (!eq) {
			snprintf(err, errsize, "%s:%d: expected key = value", path, line);
			return -EINVAL;
		}
		char *k = l, *v = eq + 1, *e = eq;
		while (e > k && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		size_t vl = strlen(v);
		while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t' || v[vl - 1] == '\r'))
			v[--vl] = '\0';
		char why[128] = "";
		int rc = 0;
		if (!strcmp(k, "columns")) {
			rc = parse_columns(m, v, why, sizeof(why));
		} else if (!strcmp(k, "sort")) {
			int c = top_col_by_key(v);
			if (c < 0)
				snprintf(why, sizeof(why), "unknown column \"%.32s\"", v), rc = -EINVAL;
			else
				m->sort = (enum top_col)c;
		} else if (!strcmp(k, "reverse")) {
			rc = parse_bool(v, &m->reverse);
		} else if (!strcmp(k, "show_all")) {
			rc = parse_bool(v, &m->show_all);
		} else if (!strcmp(k, "group")) {
			rc = parse_bool(v, &m->group);
		} else if (!strcmp(k, "warn")) {
			rc = parse_pct(v, &m->warn_pct);
		} else if (!strcmp(k, "crit")) {
			rc = parse_pct(v, &m->crit_pct);
		} else if (!strcmp(k, "interval")) {
			int64_t ms;
			rc = parse_duration_ms(v, &ms);
			if (rc == 0 && (ms < 100 || ms > 3600000))
				rc = -EINVAL;
			if (rc == 0 && interval_ms)
				*interval_ms = ms;
		} else {
			snprintf(err, errsize, "%s:%d: unknown key \"%.32s\"", path, line, k);
			return -EINVAL;
		}
		if (rc < 0) {
			snprintf(err, errsize, "%s:%d: %s: %s", path, line, k,
				 *why ? why : "bad value");
			return -EINVAL;
		}
	}
	if (m->warn_pct > m->crit_pct) {
		snprintf(err, errsize, "%s: warn (%g) is above crit (%g)", path, m->warn_pct,
			 m->crit_pct);
		return -EINVAL;
	}
	return 0;
}

int top_config_save(const struct top_model *m, int64_t interval_ms, const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	/* make the parent directories (~/.config/monitor) */
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "# monitor top settings (written by the column chooser, S)\ncolumns = ");
	bool first = true;
	for (int c = 0; c < TOP_COL__COUNT; c++)
		if (m->col_on[c]) {
			fprintf(f, "%s%s", first ? "" : ",", top_cols[c].key);
			first = false;
		}
	fprintf(f, "\nsort = %s\nreverse = %s\nshow_all = %s\ngroup = %s\nwarn = %g\ncrit = %g\n"
		   "interval = %lldms\n", top_cols[m->sort].key, m->reverse ? "true" : "false",
		m->show_all ? "true" : "false", m->group ? "true" : "false", m->warn_pct,
		m->crit_pct, (long long)interval_ms);
	if (fclose(f) != 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	return 0;
}
