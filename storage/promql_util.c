/*
 * promql_util.c - the PromQL engine's small parts: label sets, regular
 * expressions with RE2's meaning on top of POSIX regcomp, number and time
 * formats as the Prometheus API writes and reads them.
 *
 * Regular expressions: PromQL patterns are RE2, anchored at both ends. This
 * file translates the RE2 syntax people write in selectors and
 * label_replace (\d \w \s, (?:...), (?P<name>...), (?i), lazy quantifiers,
 * escapes inside brackets, a literal '{') into POSIX ERE for glibc, keeps a
 * map from RE2 group numbers to POSIX ones for $1 and $name, and refuses
 * what it cannot express (\pL, backreferences) with a message.
 */
#include "storage/promql_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- stale markers and points ------------------------------------------------- */

double promql_stale_nan(void)
{
	double v;
	uint64_t b = PROMQL_STALE_NAN_BITS;
	memcpy(&v, &b, sizeof(v));
	return v;
}

int promql_points_reserve(struct promql_points *pts, size_t n)
{
	if (pts->n + n <= pts->cap)
		return 0;
	size_t nc = pts->cap ? pts->cap : 256;
	while (nc < pts->n + n)
		nc *= 2;
	struct promql_point *p = realloc(pts->p, nc * sizeof(*p));
	if (!p)
		return -ENOMEM;
	pts->p = p;
	pts->cap = nc;
	return 0;
}

int promql_points_push(struct promql_points *pts, int64_t t, double v)
{
	if (pts->n == pts->cap && promql_points_reserve(pts, 1) < 0)
		return -ENOMEM;
	pts->p[pts->n].t = t;
	pts->p[pts->n].v = v;
	pts->n++;
	return 0;
}

void promql_points_fini(struct promql_points *pts)
{
	free(pts->p);
	pts->p = NULL;
	pts->n = pts->cap = 0;
}

/* ---- label sets ---------------------------------------------------------------- */

static uint64_t fnv_add(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL;
}

static uint64_t labels_hash(const struct promql_label *l, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = fnv_add(fnv_add(h, l[i].name), l[i].value);
	return h;
}

static int cmp_label(const void *a, const void *b)
{
	return strcmp(((const struct promql_label *)a)->name,
		      ((const struct promql_label *)b)->name);
}

/* A label set from n pairs (any order; empty values dropped). Strings are
 * not copied. */
const struct labels *labels_make(struct arena *a, const struct promql_label *l, size_t n)
{
	struct labels *ls = arena_alloc(a, sizeof(*ls) + n * sizeof(ls->l[0]));
	if (!ls)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (l[i].value && l[i].value[0])
			ls->l[k++] = l[i];
	bool sorted = true;
	for (size_t i = 1; i < k && sorted; i++)
		sorted = strcmp(ls->l[i - 1].name, ls->l[i].name) < 0;
	if (!sorted)
		qsort(ls->l, k, sizeof(ls->l[0]), cmp_label);
	ls->n = (uint32_t)k;
	ls->hash = labels_hash(ls->l, k);
	return ls;
}

const char *labels_get(const struct labels *ls, const char *name)
{
	for (uint32_t i = 0; i < ls->n; i++)
		if (!strcmp(ls->l[i].name, name))
			return ls->l[i].value;
	return "";
}

bool labels_equal(const struct labels *a, const struct labels *b)
{
	if (a == b)
		return true;
	if (a->hash != b->hash || a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n; i++)
		if (strcmp(a->l[i].name, b->l[i].name) || strcmp(a->l[i].value, b->l[i].value))
			return false;
	return true;
}

int label_list_cmp(const struct promql_label *a, size_t na, const struct promql_label *b,
		   size_t nb)
{
	size_t n = na < nb ? na : nb;
	for (size_t i = 0; i < n; i++) {
		int c = strcmp(a[i].name, b[i].name);
		if (c)
			return c;
		c = strcmp(a[i].value, b[i].value);
		if (c)
			return c;
	}
	return (na > nb) - (na < nb);
}

/* Prometheus' labels.Compare: pairwise by name, then value, then length. */
int labels_cmp(const struct labels *a, const struct labels *b)
{
	return label_list_cmp(a->l, a->n, b->l, b->n);
}

int promql_series_cmp(const void *a, const void *b)
{
	const struct promql_series *x = a, *y = b;
	return label_list_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static bool in_list(const char *name, char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

static const struct labels *labels_filter(struct arena *a, const struct labels *ls,
					  char *const *names, size_t n, bool keep, bool drop_name)
{
	size_t k = 0;
	for (uint32_t i = 0; i < ls->n; i++) {
		bool listed = in_list(ls->l[i].name, names, n);
		bool stays = keep ? listed : !listed;
		if (drop_name && !strcmp(ls->l[i].name, "__name__"))
			stays = false;
		k += stays;
	}
	if (k == ls->n)
		return ls;
	struct labels *out = arena_alloc(a, sizeof(*out) + k * sizeof(out->l[0]));
	if (!out)
		return NULL;
	k = 0;
	for (uint32_t i = 0; i < ls->n; i++) {
		bool listed = in_list(ls->l[i].name, names, n);
		bool stays = keep ? listed : !listed;
		if (drop_name && !strcmp(ls->l[i].name, "__name__"))
			stays = false;
		if (stays)
			out->l[k++] = ls->l[i];
	}
	out->n = (uint32_t)k;
	out->hash = labels_hash(out->l, k);
	return out;
}

const struct labels *labels_drop_name(struct arena *a, const struct labels *ls)
{
	return labels_filter(a, ls, NULL, 0, false, true);
}

const struct labels *labels_keep(struct arena *a, const struct labels *ls, char *const *names,
				 size_t n)
{
	return labels_filter(a, ls, names, n, true, false);
}

const struct labels *labels_del(struct arena *a, const struct labels *ls, char *const *names,
				size_t n)
{
	return labels_filter(a, ls, names, n, false, false);
}

const struct labels *labels_set(struct arena *a, const struct labels *ls, const char *name,
				const char *value)
{
	const char *old = labels_get(ls, name);
	if (!strcmp(old, value))
		return ls;
	struct labels *out = arena_alloc(a, sizeof(*out) + (ls->n + 1) * sizeof(out->l[0]));
	if (!out)
		return NULL;
	size_t k = 0;
	bool done = false;
	for (uint32_t i = 0; i < ls->n; i++) {
		int c = strcmp(ls->l[i].name, name);
		if (c == 0) {
			if (*value)
				out->l[k++] = (struct promql_label){ ls->l[i].name, value };
			done = true;
			continue;
		}
		if (c > 0 && !done) {
			if (*value)
				out->l[k++] = (struct promql_label){ name, value };
			done = true;
		}
		out->l[k++] = ls->l[i];
	}
	if (!done && *value)
		out->l[k++] = (struct promql_label){ name, value };
	out->n = (uint32_t)k;
	out->hash = labels_hash(out->l, k);
	return out;
}

void labels_format(const struct labels *ls, struct buf *b)
{
	buf_putc(b, '{');
	for (uint32_t i = 0; i < ls->n; i++) {
		if (i)
			buf_puts(b, ", ");
		buf_puts(b, ls->l[i].name);
		buf_putc(b, '=');
		buf_put_json_str(b, ls->l[i].value);
	}
	buf_putc(b, '}');
}

static bool sig_covers(const char *name, char *const *names, size_t n, bool on)
{
	if (on)
		return in_list(name, names, n);
	return strcmp(name, "__name__") != 0 && !in_list(name, names, n);
}

uint64_t labels_sig(const struct labels *ls, char *const *names, size_t n, bool on)
{
	uint64_t h = 1469598103934665603ULL;
	for (uint32_t i = 0; i < ls->n; i++)
		if (sig_covers(ls->l[i].name, names, n, on))
			h = fnv_add(fnv_add(h, ls->l[i].name), ls->l[i].value);
	return h;
}

bool labels_sig_equal(const struct labels *a, const struct labels *b, char *const *names,
		      size_t n, bool on)
{
	uint32_t i = 0, j = 0;
	for (;;) {
		while (i < a->n && !sig_covers(a->l[i].name, names, n, on))
			i++;
		while (j < b->n && !sig_covers(b->l[j].name, names, n, on))
			j++;
		if (i == a->n || j == b->n)
			return i == a->n && j == b->n;
		if (strcmp(a->l[i].name, b->l[j].name) || strcmp(a->l[i].value, b->l[j].value))
			return false;
		i++;
		j++;
	}
}

/* ---- regular expressions ---------------------------------------------------------- */

#define RE_MAX_GROUPS 64

struct promql_regex {
	regex_t re;
	bool compiled;
	bool literal;                /* no special characters: compare */
	bool match_all;              /* .* */
	char *posix;                 /* translated, unanchored */
	char *literal_text;
	int ngroups;                 /* RE2 capture groups */
	int posix_group[RE_MAX_GROUPS + 1];  /* RE2 group i -> POSIX group */
	char *group_name[RE_MAX_GROUPS + 1];
};

/* A 256-bit byte set for bracket expressions. */
struct bset {
	uint8_t b[32];
};
static void bs_add(struct bset *s, int c)
{
	s->b[c >> 3] |= (uint8_t)(1u << (c & 7));
}
static bool bs_has(const struct bset *s, int c)
{
	return s->b[c >> 3] & (1u << (c & 7));
}
static void bs_range(struct bset *s, int lo, int hi)
{
	for (int c = lo; c <= hi; c++)
		bs_add(s, c);
}

static bool add_class_escape(struct bset *s, char e)
{
	switch (e) {
	case 'd':
		bs_range(s, '0', '9');
		return true;
	case 'w':
		bs_range(s, '0', '9');
		bs_range(s, 'a', 'z');
		bs_range(s, 'A', 'Z');
		bs_add(s, '_');
		return true;
	case 's':
		bs_add(s, '\t');
		bs_add(s, '\n');
		bs_add(s, '\f');
		bs_add(s, '\r');
		bs_add(s, ' ');
		return true;
	default:
		return false;
	}
}

static bool add_posix_class(struct bset *s, const char *name, size_t n)
{
	static const struct {
		const char *name;
		int (*fn)(int);
	} classes[] = { { "alpha", isalpha }, { "digit", isdigit }, { "alnum", isalnum },
			{ "space", isspace }, { "upper", isupper }, { "lower", islower },
			{ "punct", ispunct }, { "xdigit", isxdigit }, { "cntrl", iscntrl },
			{ "print", isprint }, { "graph", isgraph }, { "blank", isblank } };
	if (n == 4 && !strncmp(name, "word", 4)) {
		add_class_escape(s, 'w');
		return true;
	}
	if (n == 5 && !strncmp(name, "ascii", 5)) {
		bs_range(s, 0, 127);
		return true;
	}
	for (size_t i = 0; i < ARRAY_LEN(classes); i++)
		if (strlen(classes[i].name) == n && !strncmp(classes[i].name, name, n)) {
			for (int c = 1; c < 128; c++)
				if (classes[i].fn(c))
					bs_add(s, c);
			return true;
		}
	return false;
}

/* Writes a set as a POSIX bracket expression (ASCII bytes only). */
static void bs_emit(struct buf *o, const struct bset *s, bool neg)
{
	buf_putc(o, '[');
	if (neg)
		buf_putc(o, '^');
	if (bs_has(s, ']'))
		buf_putc(o, ']');
	bool any = bs_has(s, ']');
	for (int c = 1; c < 256; c++) {
		if (!bs_has(s, c) || c == ']' || c == '-' || c == '^')
			continue;
		int e = c;
		while (e + 1 < 256 && bs_has(s, e + 1) && e + 1 != ']' && e + 1 != '-' &&
		       e + 1 != '^')
			e++;
		buf_putc(o, (char)c);
		if (e > c + 1) {
			buf_putc(o, '-');
			buf_putc(o, (char)e);
		} else if (e == c + 1) {
			buf_putc(o, (char)e);
		}
		c = e;
		any = true;
	}
	if (bs_has(s, '^')) {
		buf_putc(o, '^');
		any = true;
	}
	if (bs_has(s, '-')) {
		buf_putc(o, '-');
		any = true;
	}
	if (!any) {
		/* An empty set: match nothing (or anything, negated). */
		buf_reset(o);
		return;
	}
	buf_putc(o, ']');
}

/* Parses a bracket expression at p[i] == '['; appends POSIX to o. Returns
 * the index after ']' or -1 with err. */
static int tr_class(const char *p, int i, bool icase, struct buf *o, char *err, size_t errsize)
{
	struct bset s = { { 0 } };
	bool neg = false;
	int j = i + 1;
	if (p[j] == '^') {
		neg = true;
		j++;
	}
	bool first = true;
	for (;; first = false) {
		int c = (unsigned char)p[j];
		if (!c) {
			snprintf(err, errsize, "missing closing ]: `%s`", p + i);
			return -1;
		}
		if (c == ']' && !first)
			break;
		if (c == '[' && p[j + 1] == ':') {
			const char *end = strstr(p + j + 2, ":]");
			bool negc = p[j + 2] == '^';
			const char *name = p + j + 2 + negc;
			if (!end || negc || !add_posix_class(&s, name, (size_t)(end - name))) {
				snprintf(err, errsize, "invalid character class range: `%.*s`",
					 end ? (int)(end + 2 - (p + j)) : 2, p + j);
				return -1;
			}
			j = (int)(end - p) + 2;
			continue;
		}
		int lo;
		if (c == '\\') {
			char e = p[j + 1];
			if (!e) {
				snprintf(err, errsize, "trailing backslash at end of expression: ``");
				return -1;
			}
			if (add_class_escape(&s, e)) {
				j += 2;
				continue;
			}
			if (isalnum((unsigned char)e) && !strchr("ntrfvax", e)) {
				snprintf(err, errsize, "invalid escape sequence: `\\%c`", e);
				return -1;
			}
			lo = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'f' ? '\f'
			     : e == 'v' ? '\v' : e == 'a' ? '\a' : (unsigned char)e;
			if (e == 'x') {
				unsigned v = 0;
				int k = j + 2;
				while (isxdigit((unsigned char)p[k]) && k < j + 4)
					v = v * 16 + (unsigned)(isdigit((unsigned char)p[k]) ? p[k] - '0'
								: (tolower((unsigned char)p[k]) - 'a' + 10)),
					k++;
				lo = (int)v;
				j = k;
			} else {
				j += 2;
			}
		} else {
			if (c >= 0x80) {
				snprintf(err, errsize, "non-ASCII character in a character class is not supported: `%s`",
					 p + i);
				return -1;
			}
			lo = c;
			j++;
		}
		int hi = lo;
		if (p[j] == '-' && p[j + 1] && p[j + 1] != ']') {
			int h = (unsigned char)p[j + 1];
			if (h == '\\' && p[j + 2]) {
				h = (unsigned char)p[j + 2];
				j++;
			}
			hi = h;
			j += 2;
			if (hi < lo) {
				snprintf(err, errsize, "invalid character class range: `%c-%c`", lo, hi);
				return -1;
			}
		}
		for (int c2 = lo; c2 <= hi; c2++) {
			bs_add(&s, c2);
			if (icase && isalpha(c2)) {
				bs_add(&s, tolower(c2));
				bs_add(&s, toupper(c2));
			}
		}
	}
	struct buf tmp;
	buf_init(&tmp, 4096);
	bs_emit(&tmp, &s, neg);
	if (!tmp.len) /* [^...] of everything matches nothing; NUL never occurs */
		buf_puts(&tmp, neg ? "[\001-\377]" : "[^\001-\377]");
	buf_add(o, tmp.data, tmp.len);
	buf_fini(&tmp);
	return j + 1;
}

/* Is p[i..] a valid RE2 repetition {n}, {n,}, {n,m}? Returns its length. */
static int repetition_len(const char *p, int i)
{
	int j = i + 1;
	if (!isdigit((unsigned char)p[j]))
		return 0;
	while (isdigit((unsigned char)p[j]))
		j++;
	if (p[j] == ',') {
		j++;
		while (isdigit((unsigned char)p[j]))
			j++;
	}
	return p[j] == '}' ? j - i + 1 : 0;
}

/*
 * Nested repetitions multiply: glibc's regcomp copies the repeated
 * expression for {n,m} (max(n,m) copies) and for + (two), so `a++++...` or
 * `((a{99}){99}){99}` take exponential time and memory to compile (found
 * by fuzzing: 30 '+' held a core and 1 GB). RE2 refuses a doubled
 * operator and repeat counts past 1000, also as a product of nested ones;
 * the same here, plus a cap on the expression's size once copied.
 */
#define RE_MAX_REPEAT 1000
#define RE_MAX_EXPANDED 100000

struct re_size {
	int64_t sum[RE_MAX_GROUPS + 1];  /* expanded size of each open group */
	int64_t cnt[RE_MAX_GROUPS + 1];  /* largest nested repeat count in it */
	int64_t last_w, last_c;          /* the same for the last element */
	bool rep_last;                   /* the last token was a repetition */
};

/* Accounts for the token at p[i] (depth groups open, before the token is
 * handled). 0, or -1 with RE2's message in err. */
static int re_size_token(struct re_size *z, const char *p, int i, int depth, char *err,
			 size_t errsize)
{
	char c = p[i];
	int rl = c == '{' ? repetition_len(p, i) : 0;
	if (c == '*' || c == '+' || c == '?' || rl) {
		if (z->rep_last) {
			int k = i - 1;
			while (k > 0 && p[k] != '*' && p[k] != '+' && p[k] != '?' && p[k] != '{')
				k--;
			snprintf(err, errsize, "bad repetition operator: `%.*s`", i - k + (rl ? rl : 1),
				 p + k);
			return -1;
		}
		z->rep_last = true;
		int64_t fw = c == '+' ? 2 : 1, fc = 1;
		if (rl) {
			char *e;
			long n = strtol(p + i + 1, &e, 10), m = *e == ',' && e[1] != '}' ?
								  strtol(e + 1, NULL, 10) : n;
			if (n > RE_MAX_REPEAT || m > RE_MAX_REPEAT || (m < n && *e == ',' && e[1] != '}')) {
				snprintf(err, errsize, "invalid repeat count: `%.*s`", rl, p + i);
				return -1;
			}
			fc = n > m ? n : m;
			fw = fc + 1;
		}
		int64_t w = z->last_w * fw, cnt = z->last_c * fc;
		if (cnt > RE_MAX_REPEAT) {
			snprintf(err, errsize, "bad repetition operator: `%.*s`", rl, p + i);
			return -1;
		}
		z->sum[depth] += w - z->last_w;
		if (cnt > z->cnt[depth])
			z->cnt[depth] = cnt;
		z->last_w = w;
		z->last_c = cnt;
	} else {
		z->rep_last = false;
		if (c == '(') {
			if (depth < RE_MAX_GROUPS) {
				z->sum[depth + 1] = 0;
				z->cnt[depth + 1] = 1;
			}
			return 0;
		}
		if (c == '|')
			return 0;
		if (c == ')') {
			if (depth == 0)
				return 0;
			z->last_w = z->sum[depth] ? z->sum[depth] : 1;
			z->last_c = z->cnt[depth];
			depth--;
			if (z->last_c > z->cnt[depth])
				z->cnt[depth] = z->last_c;
		} else {
			z->last_w = z->last_c = 1;
		}
		z->sum[depth] += z->last_w;
	}
	if (z->sum[depth] > RE_MAX_EXPANDED) {
		snprintf(err, errsize, "expression too large: nested repetitions");
		return -1;
	}
	return 0;
}

/* Length of the bracket expression at p[i] ('[' ... ']', with "[]...]",
 * "[^]...]", escapes and [:class:] inside); 0 when it is not closed. */
static int bracket_len(const char *p, int i)
{
	int j = i + 1;
	if (p[j] == '^')
		j++;
	if (p[j] == ']')
		j++;
	while (p[j] && p[j] != ']') {
		if (p[j] == '\\' && p[j + 1]) {
			j += 2;
		} else if (p[j] == '[' && p[j + 1] == ':') {
			const char *e = strstr(p + j + 2, ":]");
			j = e ? (int)(e - p) + 2 : j + 1;
		} else {
			j++;
		}
	}
	return p[j] ? j - i + 1 : 0;
}

int promql_regex_check(const char *p, char *err, size_t errsize)
{
	size_t len = strlen(p);
	if (len > PROMQL_REGEX_MAX_LEN) {
		snprintf(err, errsize, "expression too long (%zu bytes, at most %d)", len,
			 PROMQL_REGEX_MAX_LEN);
		return -EINVAL;
	}
	/* The same token walk as translate, for its size accounting only. */
	struct re_size z = { .cnt = { 1 } };
	int depth = 0;
	for (int i = 0; p[i];) {
		if (re_size_token(&z, p, i, depth, err, errsize) < 0)
			return -EINVAL;
		char c = p[i];
		int n;
		if (c == '\\') {
			i += p[i + 1] ? 2 : 1;
		} else if (c == '[') {
			i += (n = bracket_len(p, i)) ? n : 1;
		} else if (c == '(') {
			if (depth == RE_MAX_GROUPS) {
				snprintf(err, errsize, "expression nests too deeply");
				return -EINVAL;
			}
			depth++;
			i++;
			if (p[i] == '?') { /* (?:, (?P<name>, (?<name>, (?i): not operators */
				while (p[i] && p[i] != ':' && p[i] != '>' && p[i] != ')')
					i++;
				if (p[i] == ':' || p[i] == '>')
					i++;
			}
		} else if (c == ')') {
			depth -= depth > 0;
			i++;
		} else if (c == '{' && (n = repetition_len(p, i))) {
			i += n;
			i += p[i] == '?'; /* lazy */
		} else if (c == '*' || c == '+' || c == '?') {
			i++;
			i += p[i] == '?';
		} else {
			i++;
		}
	}
	return 0;
}

static int translate(struct promql_regex *r, const char *p, struct buf *o, char *err,
		     size_t errsize)
{
	bool icase = false;
	int i = 0;
	while (p[i] == '(' && p[i + 1] == '?' && p[i + 2] && strchr("ims", p[i + 2])) {
		/* leading flag groups: (?i) (?s) (?is) */
		int j = i + 2;
		bool ok = true;
		while (p[j] && p[j] != ')') {
			if (p[j] == 'i')
				icase = true;
			else if (p[j] != 's' && p[j] != 'm')
				ok = false;
			j++;
		}
		if (!ok || p[j] != ')')
			break;
		i = j + 1;
	}
	int posix_groups = 1; /* the anchoring group */
	int depth = 0;
	int stack[RE_MAX_GROUPS];
	struct re_size z = { .cnt = { 1 } };
	for (; p[i];) {
		unsigned char c = (unsigned char)p[i];
		if (re_size_token(&z, p, i, depth, err, errsize) < 0)
			return -1;
		if (c == '\\') {
			char e = p[i + 1];
			if (!e) {
				snprintf(err, errsize, "trailing backslash at end of expression: ``");
				return -1;
			}
			struct bset s = { { 0 } };
			if (add_class_escape(&s, (char)tolower((unsigned char)e))) {
				bs_emit(o, &s, isupper((unsigned char)e));
			} else if (e == 'b' || e == 'B') {
				buf_putc(o, '\\');
				buf_putc(o, e);
			} else if (strchr("ntrfva", e)) {
				buf_putc(o, e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r'
					 : e == 'f' ? '\f' : e == 'v' ? '\v' : '\a');
			} else if (isalnum((unsigned char)e)) {
				snprintf(err, errsize, "invalid escape sequence: `\\%c`", e);
				return -1;
			} else {
				buf_putc(o, '\\');
				buf_putc(o, e);
			}
			i += 2;
			continue;
		}
		if (c == '[') {
			int j = tr_class(p, i, icase, o, err, errsize);
			if (j < 0)
				return -1;
			i = j;
			continue;
		}
		if (c == '(') {
			if (depth == RE_MAX_GROUPS) {
				snprintf(err, errsize, "expression nests too deeply");
				return -1;
			}
			posix_groups++;
			int skip = 1;
			bool capture = true;
			const char *name = NULL;
			size_t nlen = 0;
			if (p[i + 1] == '?') {
				if (p[i + 2] == ':') {
					capture = false;
					skip = 3;
				} else if ((p[i + 2] == 'P' && p[i + 3] == '<') || p[i + 2] == '<') {
					int k = i + (p[i + 2] == 'P' ? 4 : 3);
					name = p + k;
					while (isalnum((unsigned char)p[k]) || p[k] == '_')
						k++;
					nlen = (size_t)(p + k - name);
					if (p[k] != '>' || !nlen) {
						snprintf(err, errsize, "invalid named capture: `%.*s`",
							 k - i + 1, p + i);
						return -1;
					}
					skip = k - i + 1;
				} else {
					snprintf(err, errsize,
						 "invalid or unsupported Perl syntax: `%.3s`", p + i);
					return -1;
				}
			}
			if (capture) {
				if (r->ngroups == RE_MAX_GROUPS) {
					snprintf(err, errsize, "too many capture groups");
					return -1;
				}
				r->ngroups++;
				r->posix_group[r->ngroups] = posix_groups;
				if (name) {
					r->group_name[r->ngroups] = strndup(name, nlen);
					if (!r->group_name[r->ngroups]) {
						snprintf(err, errsize, "out of memory");
						return -1;
					}
				}
			}
			stack[depth++] = posix_groups;
			buf_putc(o, '(');
			i += skip;
			continue;
		}
		if (c == ')') {
			if (depth == 0) {
				snprintf(err, errsize, "unexpected ): `%s`", p);
				return -1;
			}
			depth--;
			buf_putc(o, ')');
			i++;
			continue;
		}
		if (c == '*' || c == '+' || c == '?') {
			buf_putc(o, (char)c);
			i++;
			if (p[i] == '?')
				i++;  /* lazy: the same set of full matches */
			continue;
		}
		if (c == '{') {
			int n = repetition_len(p, i);
			if (n) {
				buf_add(o, p + i, (size_t)n);
				i += n;
				if (p[i] == '?')
					i++;
			} else {
				buf_puts(o, "\\{");
				i++;
			}
			continue;
		}
		if (c == '}') {
			buf_puts(o, "\\}");
			i++;
			continue;
		}
		if (c == '.') {
			buf_puts(o, "[^\n]");
			i++;
			continue;
		}
		if (icase && isalpha(c)) {
			buf_printf(o, "[%c%c]", tolower(c), toupper(c));
			i++;
			continue;
		}
		buf_putc(o, (char)c);
		i++;
	}
	if (depth) {
		snprintf(err, errsize, "missing closing ): `^(?:%s)$`", p);
		return -1;
	}
	(void)stack;
	return 0;
}

struct promql_regex *promql_regex_new(const char *pattern, char *err, size_t errsize)
{
	struct promql_regex *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	char why[256];
	if (strlen(pattern) > PROMQL_REGEX_MAX_LEN) {
		snprintf(err, errsize, "error parsing regexp: expression too long (at most %d bytes)",
			 PROMQL_REGEX_MAX_LEN);
		promql_regex_free(r);
		return NULL;
	}
	struct buf o;
	buf_init(&o, 1u << 20);
	if (translate(r, pattern, &o, why, sizeof(why)) < 0 || o.overflow) {
		snprintf(err, errsize, "error parsing regexp: %s", o.overflow ? "too long" : why);
		buf_fini(&o);
		promql_regex_free(r);
		return NULL;
	}
	r->posix = o.data ? buf_steal(&o, NULL) : strdup("");
	buf_fini(&o);
	if (!r->posix) {
		promql_regex_free(r);
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	if (!strpbrk(pattern, "\\^$.|?*+()[]{}")) {
		r->literal = true;
		r->literal_text = strdup(pattern);
	}
	r->match_all = !strcmp(pattern, ".*");
	size_t n = strlen(r->posix) + 8;
	char *anch = malloc(n);
	if (!anch || (r->literal && !r->literal_text)) {
		free(anch);
		promql_regex_free(r);
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	snprintf(anch, n, "^(%s)$", r->posix);
	int rc = regcomp(&r->re, anch, REG_EXTENDED);
	free(anch);
	if (rc) {
		char msg[200];
		regerror(rc, &r->re, msg, sizeof(msg));
		snprintf(err, errsize, "error parsing regexp: %s: `^(?:%s)$`", msg, pattern);
		promql_regex_free(r);
		return NULL;
	}
	r->compiled = true;
	return r;
}

void promql_regex_free(struct promql_regex *re)
{
	if (!re)
		return;
	if (re->compiled)
		regfree(&re->re);
	for (int i = 0; i <= RE_MAX_GROUPS; i++)
		free(re->group_name[i]);
	free(re->posix);
	free(re->literal_text);
	free(re);
}

const char *promql_regex_posix(const struct promql_regex *re)
{
	return re->posix;
}

bool promql_regex_match(const struct promql_regex *re, const char *s)
{
	if (re->literal)
		return !strcmp(re->literal_text, s);
	if (re->match_all)
		return !strchr(s, '\n');
	return regexec(&re->re, s, 0, NULL, 0) == 0;
}

/*
 * Go's Regexp.ExpandString for label_replace: $1, ${1}, $name, ${name},
 * $$. Returns false when the regex does not match s.
 */
bool promql_regex_expand(const struct promql_regex *re, const char *s, const char *tmpl,
			 struct buf *out);
bool promql_regex_expand(const struct promql_regex *re, const char *s, const char *tmpl,
			 struct buf *out)
{
	regmatch_t m[RE_MAX_GROUPS + 2];
	if (regexec(&re->re, s, ARRAY_LEN(m), m, 0) != 0)
		return false;
	for (const char *t = tmpl; *t;) {
		if (*t != '$') {
			buf_putc(out, *t++);
			continue;
		}
		if (t[1] == '$') {
			buf_putc(out, '$');
			t += 2;
			continue;
		}
		const char *name = t + 1, *end;
		bool brace = *name == '{';
		if (brace)
			name++;
		end = name;
		while (isalnum((unsigned char)*end) || *end == '_')
			end++;
		if (end == name || (brace && *end != '}')) {
			buf_putc(out, '$');
			t++;
			continue;
		}
		size_t nlen = (size_t)(end - name);
		int g = -1;
		bool digits = true;
		for (size_t k = 0; k < nlen; k++)
			digits &= isdigit((unsigned char)name[k]) != 0;
		if (digits) {
			long v = nlen < 9 ? strtol(name, NULL, 10) : -1;
			if (v >= 0 && v <= re->ngroups)
				g = (int)v;
		} else {
			for (int k = 1; k <= re->ngroups; k++)
				if (re->group_name[k] && strlen(re->group_name[k]) == nlen &&
				    !strncmp(re->group_name[k], name, nlen)) {
					g = k;
					break;
				}
		}
		if (g >= 0) {
			int pg = g == 0 ? 1 : re->posix_group[g];
			if (m[pg].rm_so >= 0)
				buf_add(out, s + m[pg].rm_so, (size_t)(m[pg].rm_eo - m[pg].rm_so));
		}
		t = end + (brace ? 1 : 0);
	}
	return true;
}

bool promql_matcher_match(const struct promql_matcher *m, const char *value)
{
	if (!value)
		value = "";
	switch (m->op) {
	case PROMQL_MATCH_EQ:
		return !strcmp(m->value, value);
	case PROMQL_MATCH_NE:
		return strcmp(m->value, value) != 0;
	case PROMQL_MATCH_RE:
		return promql_regex_match(m->re, value);
	case PROMQL_MATCH_NRE:
		return !promql_regex_match(m->re, value);
	}
	return false;
}

/* ---- numbers and times as the API writes them ----------------------------------------- */

/*
 * Shortest digits of a positive finite double, Grisu2 (Loitsch, "Printing
 * Floating-Point Numbers Quickly and Accurately with Integers", PLDI 2010):
 * the digits always read back as v and are the shortest in all but a few
 * cases in a thousand, where one more digit comes out. value = digits x
 * 10^K. Results are formatted thousands of times per query answer, which
 * printf-and-strtod searching for the shortest form was too slow for.
 */
struct diyfp {
	uint64_t f;
	int e;
};

static const uint64_t cached_f[] = {
	0xfa8fd5a0081c0288ULL, 0xbaaee17fa23ebf76ULL, 0x8b16fb203055ac76ULL,
	0xcf42894a5dce35eaULL, 0x9a6bb0aa55653b2dULL, 0xe61acf033d1a45dfULL,
	0xab70fe17c79ac6caULL, 0xff77b1fcbebcdc4fULL, 0xbe5691ef416bd60cULL,
	0x8dd01fad907ffc3cULL, 0xd3515c2831559a83ULL, 0x9d71ac8fada6c9b5ULL,
	0xea9c227723ee8bcbULL, 0xaecc49914078536dULL, 0x823c12795db6ce57ULL,
	0xc21094364dfb5637ULL, 0x9096ea6f3848984fULL, 0xd77485cb25823ac7ULL,
	0xa086cfcd97bf97f4ULL, 0xef340a98172aace5ULL, 0xb23867fb2a35b28eULL,
	0x84c8d4dfd2c63f3bULL, 0xc5dd44271ad3cdbaULL, 0x936b9fcebb25c996ULL,
	0xdbac6c247d62a584ULL, 0xa3ab66580d5fdaf6ULL, 0xf3e2f893dec3f126ULL,
	0xb5b5ada8aaff80b8ULL, 0x87625f056c7c4a8bULL, 0xc9bcff6034c13053ULL,
	0x964e858c91ba2655ULL, 0xdff9772470297ebdULL, 0xa6dfbd9fb8e5b88fULL,
	0xf8a95fcf88747d94ULL, 0xb94470938fa89bcfULL, 0x8a08f0f8bf0f156bULL,
	0xcdb02555653131b6ULL, 0x993fe2c6d07b7facULL, 0xe45c10c42a2b3b06ULL,
	0xaa242499697392d3ULL, 0xfd87b5f28300ca0eULL, 0xbce5086492111aebULL,
	0x8cbccc096f5088ccULL, 0xd1b71758e219652cULL, 0x9c40000000000000ULL,
	0xe8d4a51000000000ULL, 0xad78ebc5ac620000ULL, 0x813f3978f8940984ULL,
	0xc097ce7bc90715b3ULL, 0x8f7e32ce7bea5c70ULL, 0xd5d238a4abe98068ULL,
	0x9f4f2726179a2245ULL, 0xed63a231d4c4fb27ULL, 0xb0de65388cc8ada8ULL,
	0x83c7088e1aab65dbULL, 0xc45d1df942711d9aULL, 0x924d692ca61be758ULL,
	0xda01ee641a708deaULL, 0xa26da3999aef774aULL, 0xf209787bb47d6b85ULL,
	0xb454e4a179dd1877ULL, 0x865b86925b9bc5c2ULL, 0xc83553c5c8965d3dULL,
	0x952ab45cfa97a0b3ULL, 0xde469fbd99a05fe3ULL, 0xa59bc234db398c25ULL,
	0xf6c69a72a3989f5cULL, 0xb7dcbf5354e9beceULL, 0x88fcf317f22241e2ULL,
	0xcc20ce9bd35c78a5ULL, 0x98165af37b2153dfULL, 0xe2a0b5dc971f303aULL,
	0xa8d9d1535ce3b396ULL, 0xfb9b7cd9a4a7443cULL, 0xbb764c4ca7a44410ULL,
	0x8bab8eefb6409c1aULL, 0xd01fef10a657842cULL, 0x9b10a4e5e9913129ULL,
	0xe7109bfba19c0c9dULL, 0xac2820d9623bf429ULL, 0x80444b5e7aa7cf85ULL,
	0xbf21e44003acdd2dULL, 0x8e679c2f5e44ff8fULL, 0xd433179d9c8cb841ULL,
	0x9e19db92b4e31ba9ULL, 0xeb96bf6ebadf77d9ULL, 0xaf87023b9bf0ee6bULL,
};
static const int16_t cached_e[] = {
	-1220, -1193, -1166, -1140, -1113, -1087, -1060, -1034, -1007, -980,
	-954, -927, -901, -874, -847, -821, -794, -768, -741, -715,
	-688, -661, -635, -608, -582, -555, -529, -502, -475, -449,
	-422, -396, -369, -343, -316, -289, -263, -236, -210, -183,
	-157, -130, -103, -77, -50, -24, 3, 30, 56, 83,
	109, 136, 162, 189, 216, 242, 269, 295, 322, 348,
	375, 402, 428, 455, 481, 508, 534, 561, 588, 614,
	641, 667, 694, 720, 747, 774, 800, 827, 853, 880,
	907, 933, 960, 986, 1013, 1039, 1066,
};

static struct diyfp diy_mul(struct diyfp a, struct diyfp b)
{
	unsigned __int128 p = (unsigned __int128)a.f * b.f;
	uint64_t hi = (uint64_t)(p >> 64), lo = (uint64_t)p;
	hi += lo >> 63;   /* round */
	return (struct diyfp){ hi, a.e + b.e + 64 };
}

static struct diyfp diy_normalize(struct diyfp d)
{
	int s = __builtin_clzll(d.f);
	return (struct diyfp){ d.f << s, d.e - s };
}

static void grisu_round(char *buf, int len, uint64_t delta, uint64_t rest, uint64_t ten_kappa,
			uint64_t wp_w)
{
	while (rest < wp_w && delta - rest >= ten_kappa &&
	       (rest + ten_kappa < wp_w || wp_w - rest > rest + ten_kappa - wp_w)) {
		buf[len - 1]--;
		rest += ten_kappa;
	}
}

/* The digit of p1 at 10^e (0 <= e <= 9) and what is left below it: by
 * constant divisors, which compile to multiplications (a division by a
 * variable power was most of a number's cost). */
static inline uint32_t digit_at(uint32_t *p1, int e)
{
#define DIGIT(P) { uint32_t d = *p1 / (P); *p1 %= (P); return d; }
	switch (e) {
	case 9: DIGIT(1000000000)
	case 8: DIGIT(100000000)
	case 7: DIGIT(10000000)
	case 6: DIGIT(1000000)
	case 5: DIGIT(100000)
	case 4: DIGIT(10000)
	case 3: DIGIT(1000)
	case 2: DIGIT(100)
	case 1: DIGIT(10)
	default: DIGIT(1)
	}
#undef DIGIT
}

static int grisu2(double value, char *buf, int *K)
{
	static const uint32_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
					  100000000, 1000000000 };
	static const uint64_t pow10_64[] = {
		1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
		100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
		10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
		100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
	};
	uint64_t bits;
	memcpy(&bits, &value, sizeof(bits));
	int be = (int)((bits >> 52) & 0x7ff);
	uint64_t sig = bits & ((1ULL << 52) - 1);
	struct diyfp v = be ? (struct diyfp){ sig | (1ULL << 52), be - 1075 }
			    : (struct diyfp){ sig, -1074 };
	/* boundaries m- and m+ */
	struct diyfp pl = { (v.f << 1) + 1, v.e - 1 };
	while (!(pl.f & (1ULL << 53))) {
		pl.f <<= 1;
		pl.e--;
	}
	pl.f <<= 10;
	pl.e -= 10;
	struct diyfp mi = v.f == (1ULL << 52) ? (struct diyfp){ (v.f << 2) - 1, v.e - 2 }
					       : (struct diyfp){ (v.f << 1) - 1, v.e - 1 };
	mi.f <<= mi.e - pl.e;
	mi.e = pl.e;
	/* a cached power of ten bringing the exponent into [-60, -32] */
	double dk = (-61 - pl.e) * 0.30102999566398114 + 347;
	int k = (int)dk;
	if (dk - k > 0.0)
		k++;
	unsigned idx = (unsigned)((k >> 3) + 1);
	*K = -(-348 + (int)(idx << 3));
	struct diyfp c = { cached_f[idx], cached_e[idx] };
	struct diyfp W = diy_mul(diy_normalize(v), c), Wp = diy_mul(pl, c), Wm = diy_mul(mi, c);
	Wm.f++;
	Wp.f--;
	uint64_t delta = Wp.f - Wm.f;
	/* digit generation */
	struct diyfp one = { 1ULL << -Wp.e, Wp.e };
	uint64_t wp_w = Wp.f - W.f;
	uint32_t p1 = (uint32_t)(Wp.f >> -one.e);
	uint64_t p2 = Wp.f & (one.f - 1);
	int kappa = 1, len = 0;
	while (kappa < 10 && p1 >= pow10[kappa])
		kappa++;
	while (kappa > 0) {
		uint32_t d = digit_at(&p1, kappa - 1);
		if (d || len)
			buf[len++] = (char)('0' + d);
		kappa--;
		uint64_t tmp = ((uint64_t)p1 << -one.e) + p2;
		if (tmp <= delta) {
			*K += kappa;
			grisu_round(buf, len, delta, tmp, (uint64_t)pow10[kappa] << -one.e, wp_w);
			return len;
		}
	}
	for (;;) {
		p2 *= 10;
		delta *= 10;
		char d = (char)(p2 >> -one.e);
		if (d || len)
			buf[len++] = (char)('0' + d);
		p2 &= one.f - 1;
		kappa--;
		if (p2 < delta) {
			*K += kappa;
			grisu_round(buf, len, delta, p2, one.f, wp_w * (-kappa < 20 ? pow10_64[-kappa] : 0));
			return len;
		}
	}
}

/* Writes v as Go's FormatFloat(v, 'f', -1, 64) into out (room for
 * PROMQL_FLOAT_MAX bytes); returns the length, without a NUL. */
#define PROMQL_FLOAT_MAX 400
static size_t fmt_float_raw(char *out, double v)
{
	if (isnan(v)) {
		memcpy(out, "NaN", 3);
		return 3;
	}
	if (isinf(v)) {
		memcpy(out, v > 0 ? "+Inf" : "-Inf", 4);
		return 4;
	}
	size_t o = 0;
	if (signbit(v)) {
		out[o++] = '-';
		v = -v;
	}
	if (v == 0) {
		out[o++] = '0';
		return o;
	}
	char digits[64];   /* 17 digits at most; room for the fixed copies below */
	int nd, K;
	if (v < 9007199254740992.0 && v == (double)(uint64_t)v) {
		/* integers: their own digits */
		uint64_t u = (uint64_t)v;
		char rev[24];
		nd = 0;
		while (u) {
			rev[nd++] = (char)('0' + u % 10);
			u /= 10;
		}
		for (int i = 0; i < nd; i++)
			digits[i] = rev[nd - 1 - i];
		K = 0;
	} else {
		nd = grisu2(v, digits, &K);
	}
	while (nd > 1 && digits[nd - 1] == '0') {
		nd--;
		K++;
	}
	int point = nd + K; /* digits before the decimal point */
	/* Copies of a fixed 32 bytes (nd <= 17; out has room for 400) compile
	 * to a few moves where a call to memcpy per part cost more than the
	 * copying; what lands past the number is never read. */
	if (point <= 0) {
		out[o++] = '0';
		out[o++] = '.';
		size_t z = (size_t)-point;
		memset(out + o, '0', z <= 32 ? 32 : z);
		o += z;
		memcpy(out + o, digits, 32);
		o += (size_t)nd;
	} else if (point >= nd) {
		memcpy(out + o, digits, 32);
		o += (size_t)nd;
		size_t z = (size_t)(point - nd);
		memset(out + o, '0', z <= 32 ? 32 : z);
		o += z;
	} else {
		memcpy(out + o, digits, 32);
		o += (size_t)point;
		out[o++] = '.';
		memcpy(out + o, digits + point, 32);
		o += (size_t)(nd - point);
	}
	return o;
}

void promql_fmt_float(char *out, size_t size, double v)
{
	char tmp[PROMQL_FLOAT_MAX];
	size_t n = fmt_float_raw(tmp, v);
	if (size == 0)
		return;
	if (n >= size)
		n = size - 1;
	memcpy(out, tmp, n);
	out[n] = '\0';
}

void promql_format_value(struct buf *b, double v)
{
	if (buf_reserve(b, PROMQL_FLOAT_MAX) < 0)
		return;
	b->len += fmt_float_raw(b->data + b->len, v);
	b->data[b->len] = '\0';
}

void promql_format_time(struct buf *b, int64_t t)
{
	char tmp[32];
	size_t o = sizeof(tmp);
	bool neg = t < 0;
	uint64_t u = neg ? 0 - (uint64_t)t : (uint64_t)t; /* INT64_MIN too (found by fuzzing) */
	unsigned frac = (unsigned)(u % 1000);
	u /= 1000;
	if (frac) {
		/* Prometheus writes the milliseconds without dropping zeros. */
		for (int i = 0; i < 3; i++) {
			tmp[--o] = (char)('0' + frac % 10);
			frac /= 10;
		}
		tmp[--o] = '.';
	}
	do {
		tmp[--o] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (neg)
		tmp[--o] = '-';
	buf_add(b, tmp + o, sizeof(tmp) - o);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool num_at(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int promql_parse_time(const char *s, int64_t *out_ms)
{
	if (!s || !*s)
		return -EINVAL;
	char *end;
	double f = strtod(s, &end);
	if (*end == '\0' && end != s && !isspace((unsigned char)*s)) {
		if (isnan(f) || !(f < 9.2e15 && f > -9.2e15))
			return -EINVAL;
		double ip;
		double frac = modf(f, &ip);
		frac = round(frac * 1000) / 1000;
		*out_ms = (int64_t)ip * 1000 + (int64_t)llround(frac * 1000);
		return 0;
	}
	/* RFC 3339: 2006-01-02T15:04:05[.999999999](Z|+07:00) */
	int Y, M, D, h, m, sec;
	size_t n = strlen(s);
	if (n < 20 || !num_at(s, 4, &Y) || s[4] != '-' || !num_at(s + 5, 2, &M) || s[7] != '-' ||
	    !num_at(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || !num_at(s + 11, 2, &h) ||
	    s[13] != ':' || !num_at(s + 14, 2, &m) || s[16] != ':' || !num_at(s + 17, 2, &sec))
		goto special;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 59)
		return -EINVAL;
	const char *p = s + 19;
	int64_t ms = 0;
	if (*p == '.') {
		p++;
		int k = 0;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++, k++)
			if (k < 3)
				ms = ms * 10 + (*p - '0');
		for (; k < 3; k++)
			ms *= 10;
	}
	int64_t tz = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int th, tm;
		if (!num_at(p + 1, 2, &th) || p[3] != ':' || !num_at(p + 4, 2, &tm))
			return -EINVAL;
		tz = (th * 60 + tm) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	int64_t secs = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + m * 60 +
		       sec - tz;
	*out_ms = secs * 1000 + ms;
	return 0;
special:
	/* Prometheus' own boundary times (Go's time cannot print them in RFC 3339). */
	if (!strcmp(s, "-292273086-05-16T16:47:06Z")) {
		*out_ms = INT64_MIN / 2;
		return 0;
	}
	if (!strcmp(s, "292277025-08-18T07:12:54.999999999Z")) {
		*out_ms = INT64_MAX / 2;
		return 0;
	}
	return -EINVAL;
}
