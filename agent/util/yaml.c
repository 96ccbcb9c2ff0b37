/*
 * yaml.c - a YAML document as a tree of struct ynode, built with libyaml.
 *
 * The agent config and the Prometheus-format alert rule files are loaded
 * through here. The tree is built from libyaml's event stream rather than
 * its document API so each node keeps the line and column a config error
 * must name, and so the features this project does not want are refused
 * with a message instead of being half-supported:
 *
 *   - anchors and aliases (&x, *x, and so "<<" merges) are rejected, not
 *     copied: a rule file is read by people, and expanding references makes
 *     the error positions point at the wrong place;
 *   - duplicate keys in one mapping are an error (YAML says so; libyaml
 *     does not check);
 *   - tags other than the standard !!str, !!int, !!float, !!bool, !!null,
 *     !!timestamp, !!seq, !!map are rejected;
 *   - a stream may hold several documents, but at most one of them may be
 *     non-empty, and that one is the result;
 *   - NUL characters in scalars ("\0" escapes) are rejected, since the tree
 *     holds C strings.
 *
 * Nodes and strings live in the document's arena. Errors are written as
 * "name:line:col: message" with 1-based line and column.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define YAML_MAX_BYTES (4u << 20)
#define YAML_MAX_DEPTH 64

/* Set of (mapping, key) pairs seen so far, for duplicate-key checks. */
struct key_ent {
	const struct ynode *map;
	const char *key;
	uint64_t hash;
};
struct key_set {
	struct key_ent *ents;
	size_t size, used;   /* size is a power of two */
};

/* Builder state for one ydoc_parse call. */
struct yb {
	yaml_parser_t parser;
	struct ydoc *doc;
	const char *name;
	const char *text;
	size_t n;
	char *err;
	size_t errsize;
	struct key_set keys;
};

static void errf(struct yb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void errf(struct yb *b, const char *fmt, ...)
{
	if (!b->err || !b->errsize)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->err, b->errsize, fmt, ap);
	va_end(ap);
}

/* ---- duplicate keys ---- */

static uint64_t key_hash(const struct ynode *map, const char *key)
{
	return hash_str(key) ^ ((uint64_t)(uintptr_t)map * 0x9e3779b97f4a7c15ULL);
}

/* Returns 1 if key was already in map, 0 after adding it, or -ENOMEM. */
static int key_set_add(struct key_set *ks, const struct ynode *map, const char *key)
{
	if (2 * (ks->used + 1) > ks->size) {
		size_t size = ks->size ? 2 * ks->size : 64;
		struct key_ent *ents = calloc(size, sizeof(*ents));
		if (!ents)
			return -ENOMEM;
		for (size_t i = 0; i < ks->size; i++) {
			struct key_ent *e = &ks->ents[i];
			if (!e->map)
				continue;
			size_t j = e->hash & (size - 1);
			while (ents[j].map)
				j = (j + 1) & (size - 1);
			ents[j] = *e;
		}
		free(ks->ents);
		ks->ents = ents;
		ks->size = size;
	}
	uint64_t h = key_hash(map, key);
	size_t j = h & (ks->size - 1);
	for (; ks->ents[j].map; j = (j + 1) & (ks->size - 1)) {
		struct key_ent *e = &ks->ents[j];
		if (e->hash == h && e->map == map && strcmp(e->key, key) == 0)
			return 1;
	}
	ks->ents[j] = (struct key_ent){ .map = map, .key = key, .hash = h };
	ks->used++;
	return 0;
}

/* ---- errors ---- */

static int err_at(struct yb *b, yaml_mark_t m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes "name:line:col: message" for a libyaml mark; returns -EINVAL. */
static int err_at(struct yb *b, yaml_mark_t m, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errf(b, "%s:%zu:%zu: %s", b->name, m.line + 1, m.column + 1, msg);
	return -EINVAL;
}

/* Turns the parser's error state into a message and a return code. */
static int parser_error(struct yb *b)
{
	yaml_parser_t *p = &b->parser;
	const char *problem = p->problem ? p->problem : "syntax error";
	if (p->error == YAML_MEMORY_ERROR) {
		errf(b, "%s: out of memory", b->name);
		return -ENOMEM;
	}
	if (p->error == YAML_READER_ERROR) {
		/* Reader errors carry a byte offset, not a mark. */
		yaml_mark_t m = { 0 };
		size_t off = p->problem_offset < b->n ? p->problem_offset : b->n;
		for (size_t i = 0; i < off; i++) {
			if (b->text[i] == '\n') {
				m.line++;
				m.column = 0;
			} else if (((unsigned char)b->text[i] & 0xc0) != 0x80) {
				m.column++;
			}
		}
		if (p->problem_value != -1)
			return err_at(b, m, "%s (0x%x)", problem, (unsigned)p->problem_value);
		return err_at(b, m, "%s", problem);
	}
	/* libyaml's words for a tab in the indentation are no help. */
	const char *hint = "";
	size_t at = p->problem_mark.index;
	if (p->error == YAML_SCANNER_ERROR && at < b->n && b->text[at] == '\t')
		hint = "; tabs cannot be used for indentation";
	if (p->context)
		return err_at(b, p->problem_mark, "%s (%s at line %zu)%s", problem,
			      p->context, p->context_mark.line + 1, hint);
	return err_at(b, p->problem_mark, "%s%s", problem, hint);
}

static int next_event(struct yb *b, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&b->parser, ev))
		return parser_error(b);
	return 0;
}

/* ---- tree ---- */

enum kind { K_SCALAR, K_SEQ, K_MAP };

/*
 * Refuses anchors and unknown tags on a node. Sets *is_str when the tag
 * forces the scalar to be a string (!!str, or the non-specific "!").
 */
static int check_props(struct yb *b, yaml_mark_t m, const yaml_char_t *anchor,
		       const yaml_char_t *tag, enum kind kind, bool *is_str)
{
	static const char *const scalar_tags[] = {
		YAML_INT_TAG, YAML_FLOAT_TAG, YAML_BOOL_TAG, YAML_NULL_TAG,
		YAML_TIMESTAMP_TAG,
	};
	if (anchor)
		return err_at(b, m, "anchors (&%s) are not supported; repeat the content instead",
			      (const char *)anchor);
	if (is_str)
		*is_str = false;
	if (!tag)
		return 0;
	const char *t = (const char *)tag;
	switch (kind) {
	case K_SCALAR:
		if (strcmp(t, YAML_STR_TAG) == 0 || strcmp(t, "!") == 0) {
			*is_str = true;
			return 0;
		}
		for (size_t i = 0; i < ARRAY_LEN(scalar_tags); i++)
			if (strcmp(t, scalar_tags[i]) == 0)
				return 0;
		break;
	case K_SEQ:
		if (strcmp(t, YAML_SEQ_TAG) == 0)
			return 0;
		break;
	case K_MAP:
		if (strcmp(t, YAML_MAP_TAG) == 0)
			return 0;
		break;
	}
	return err_at(b, m, "unsupported tag \"%s\"", t);
}

static struct ynode *new_node(struct yb *b, enum ynode_type type, yaml_mark_t m)
{
	struct ynode *y = arena_alloc(&b->doc->arena, sizeof(*y));
	if (!y) {
		errf(b, "%s: out of memory", b->name);
		return NULL;
	}
	memset(y, 0, sizeof(*y));
	y->type = type;
	y->line = (int)m.line + 1;
	y->col = (int)m.column + 1;
	return y;
}

/* Copies a scalar's text into the arena; refuses embedded NULs. */
static int copy_scalar(struct yb *b, const yaml_event_t *ev, char **out)
{
	size_t len = ev->data.scalar.length;
	const char *v = (const char *)ev->data.scalar.value;
	if (memchr(v, '\0', len))
		return err_at(b, ev->start_mark, "NUL character in a scalar");
	char *s = arena_alloc(&b->doc->arena, len + 1);
	if (!s) {
		errf(b, "%s: out of memory", b->name);
		return -ENOMEM;
	}
	memcpy(s, v, len);
	s[len] = '\0';
	*out = s;
	return 0;
}

static int build(struct yb *b, const yaml_event_t *ev, int depth, struct ynode **out);

static int build_seq(struct yb *b, struct ynode *seq, int depth)
{
	struct ynode **tail = &seq->child;
	for (;;) {
		yaml_event_t e;
		int rc = next_event(b, &e);
		if (rc < 0)
			return rc;
		if (e.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&e);
			return 0;
		}
		struct ynode *item;
		rc = build(b, &e, depth + 1, &item);
		yaml_event_delete(&e);
		if (rc < 0)
			return rc;
		*tail = item;
		tail = &item->next;
		seq->count++;
	}
}

static int build_map(struct yb *b, struct ynode *map, int depth)
{
	struct ynode **tail = &map->child;
	for (;;) {
		yaml_event_t k, v;
		int rc = next_event(b, &k);
		if (rc < 0)
			return rc;
		if (k.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&k);
			return 0;
		}
		if (k.type == YAML_ALIAS_EVENT) {
			rc = err_at(b, k.start_mark, "aliases (*%s) are not supported",
				    (const char *)k.data.alias.anchor);
			yaml_event_delete(&k);
			return rc;
		}
		if (k.type != YAML_SCALAR_EVENT) {
			rc = err_at(b, k.start_mark, "mapping keys must be scalars");
			yaml_event_delete(&k);
			return rc;
		}
		char *key = NULL;
		rc = check_props(b, k.start_mark, k.data.scalar.anchor, k.data.scalar.tag,
				 K_SCALAR, &(bool){ false });
		if (rc == 0)
			rc = copy_scalar(b, &k, &key);
		if (rc == 0) {
			int dup = key_set_add(&b->keys, map, key);
			if (dup < 0) {
				errf(b, "%s: out of memory", b->name);
				rc = dup;
			} else if (dup) {
				rc = err_at(b, k.start_mark, "duplicate key \"%s\"", key);
			}
		}
		int key_line = (int)k.start_mark.line + 1;
		yaml_event_delete(&k);
		if (rc < 0)
			return rc;

		rc = next_event(b, &v);
		if (rc < 0)
			return rc;
		struct ynode *val;
		rc = build(b, &v, depth + 1, &val);
		yaml_event_delete(&v);
		if (rc < 0)
			return rc;
		val->key = key;
		val->key_line = key_line;
		*tail = val;
		tail = &val->next;
		map->count++;
	}
}

/* Builds the node that starts with ev (owned by the caller) and its children. */
static int build(struct yb *b, const yaml_event_t *ev, int depth, struct ynode **out)
{
	struct ynode *y;
	int rc;
	bool is_str = false;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		rc = check_props(b, ev->start_mark, ev->data.scalar.anchor,
				 ev->data.scalar.tag, K_SCALAR, &is_str);
		if (rc < 0)
			return rc;
		y = new_node(b, YNODE_SCALAR, ev->start_mark);
		if (!y)
			return -ENOMEM;
		rc = copy_scalar(b, ev, &y->scalar);
		if (rc < 0)
			return rc;
		/* Quoted and block (| >) scalars are strings, never numbers. */
		y->quoted = is_str || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
		rc = seq ? check_props(b, ev->start_mark, ev->data.sequence_start.anchor,
				       ev->data.sequence_start.tag, K_SEQ, NULL)
			 : check_props(b, ev->start_mark, ev->data.mapping_start.anchor,
				       ev->data.mapping_start.tag, K_MAP, NULL);
		if (rc < 0)
			return rc;
		if (depth >= YAML_MAX_DEPTH)
			return err_at(b, ev->start_mark, "nesting deeper than %d levels",
				      YAML_MAX_DEPTH);
		y = new_node(b, seq ? YNODE_SEQ : YNODE_MAP, ev->start_mark);
		if (!y)
			return -ENOMEM;
		rc = seq ? build_seq(b, y, depth) : build_map(b, y, depth);
		if (rc < 0)
			return rc;
		break;
	}
	case YAML_ALIAS_EVENT:
		return err_at(b, ev->start_mark, "aliases (*%s) are not supported",
			      (const char *)ev->data.alias.anchor);
	default:
		return err_at(b, ev->start_mark, "unexpected YAML event %d", (int)ev->type);
	}
	*out = y;
	return 0;
}

/* Walks the event stream; keeps the only non-empty document's root. */
static int build_stream(struct yb *b)
{
	for (;;) {
		yaml_event_t e;
		int rc = next_event(b, &e);
		if (rc < 0)
			return rc;
		yaml_event_type_t type = e.type;
		yaml_mark_t start = e.start_mark;
		yaml_event_delete(&e);
		if (type == YAML_STREAM_END_EVENT)
			return 0;
		if (type != YAML_DOCUMENT_START_EVENT)
			continue;

		struct ynode *root;
		rc = next_event(b, &e);
		if (rc < 0)
			return rc;
		rc = build(b, &e, 0, &root);
		yaml_event_delete(&e);
		if (rc < 0)
			return rc;
		rc = next_event(b, &e);     /* DOCUMENT-END */
		yaml_event_delete(&e);
		if (rc < 0)
			return rc;
		bool empty = root->type == YNODE_SCALAR && !root->quoted && !root->scalar[0];
		if (empty)
			continue;
		if (b->doc->root)
			return err_at(b, start, "a second YAML document; only one is allowed per file");
		b->doc->root = root;
	}
}

/*
 * Parses text[0..n) (at most 4 MiB) into doc, which is overwritten. name is
 * used in messages and copied into doc->path. Returns 0 (doc->root NULL for
 * an empty stream); -EINVAL with "name:line:col: message" in err for bad or
 * refused YAML; -EFBIG past the size cap; -ENOMEM. On error doc holds
 * nothing to free. Nodes belong to doc until ydoc_free. Any thread, one doc
 * per thread.
 */
int ydoc_parse(struct ydoc *doc, const char *name, const char *text, size_t n,
	       char *err, size_t errsize)
{
	memset(doc, 0, sizeof(*doc));
	snprintf(doc->path, sizeof(doc->path), "%s", name);
	if (err && errsize)
		err[0] = '\0';
	struct yb b = {
		.doc = doc, .name = name, .text = text, .n = n,
		.err = err, .errsize = errsize,
	};
	if (n > YAML_MAX_BYTES) {
		errf(&b, "%s: larger than %u MiB", name, YAML_MAX_BYTES >> 20);
		return -EFBIG;
	}
	if (!yaml_parser_initialize(&b.parser)) {
		errf(&b, "%s: out of memory", name);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&b.parser,
				     (const unsigned char *)(text ? text : ""), n);
	int rc = build_stream(&b);
	yaml_parser_delete(&b.parser);
	free(b.keys.ents);
	if (rc < 0) {
		arena_free(&doc->arena);
		doc->root = NULL;
	}
	return rc;
}

/*
 * Reads path (at most 4 MiB) and parses it as ydoc_parse does, with path as
 * the name in messages. Returns 0, -errno when the file cannot be read
 * ("path: reason" in err), or ydoc_parse's errors.
 */
int ydoc_load(struct ydoc *doc, const char *path, char *err, size_t errsize)
{
	memset(doc, 0, sizeof(*doc));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		if (err && errsize)
			snprintf(err, errsize, "%s: %s", path, strerror(-rc));
		return rc;
	}
	/* Grow as we read: sizes from stat lie for /proc and pipes. */
	size_t size = 0, len = 0;
	char *data = NULL;
	int rc = 0;
	for (;;) {
		if (len == size) {
			if (size > YAML_MAX_BYTES) {
				rc = -EFBIG;
				break;
			}
			size_t nsize = size ? 2 * size : 16384;
			if (nsize > YAML_MAX_BYTES + 1)
				nsize = YAML_MAX_BYTES + 1;
			char *p = realloc(data, nsize);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			data = p;
			size = nsize;
		}
		ssize_t r = read(fd, data + len, size - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (rc < 0) {
		if (err && errsize) {
			if (rc == -EFBIG)
				snprintf(err, errsize, "%s: larger than %u MiB", path,
					 YAML_MAX_BYTES >> 20);
			else
				snprintf(err, errsize, "%s: %s", path, strerror(-rc));
		}
		free(data);
		return rc;
	}
	rc = ydoc_parse(doc, path, data ? data : "", len, err, errsize);
	free(data);
	return rc;
}

/* Releases the tree and its strings. NULL-safe; doc may be reused. */
void ydoc_free(struct ydoc *doc)
{
	if (!doc)
		return;
	arena_free(&doc->arena);
	doc->root = NULL;
}

/*
 * The value for key in a mapping, or NULL when map is NULL, not a mapping,
 * or lacks the key. Points into map's document.
 */
const struct ynode *ynode_get(const struct ynode *map, const char *key)
{
	if (!map || map->type != YNODE_MAP || !key)
		return NULL;
	for (const struct ynode *c = map->child; c; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}
