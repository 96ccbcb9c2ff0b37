/*
 * util.h - the few utilities every module of monitor needs: logging, bounded
 * buffers, an arena, time, hashing, the host-root path prefix, a small JSON
 * reader and writer helpers, a YAML document tree and typed config values
 * read from it.
 *
 * This is the only header below agent/ that other folders may include.
 * Nothing here knows about containers, metrics or storage.
 */
#ifndef MONITOR_UTIL_H
#define MONITOR_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- logging (log.c) ---------------------------------------------------- */

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the threshold; messages above it are dropped. Any thread. */
void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
/* Writes one line to stderr with time and level. Thread-safe. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * A rate-limited complaint: the first failure is logged, repeats are counted
 * and summarised at most once per interval, and a recovery is logged once.
 * Owned by the caller (embed it in the state of whoever complains).
 */
struct log_limit {
	int64_t last_ms;
	uint64_t suppressed;
	bool failing;
};
void log_limited(struct log_limit *ll, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Logs "<what> recovered" once if ll was failing. */
void log_recovered(struct log_limit *ll, const char *what);

/* ---- time (misc.c) ------------------------------------------------------ */

int64_t now_ms(void);          /* CLOCK_REALTIME, milliseconds */
int64_t mono_ns(void);         /* CLOCK_MONOTONIC, nanoseconds */
int64_t cpu_time_ns(void);     /* this process' user+system CPU */
/* Parses "500ms", "1s", "2m", "1h", "1d" or a bare number of seconds. */
int parse_duration_ms(const char *s, int64_t *out_ms);

/* ---- hashing (misc.c) --------------------------------------------------- */

uint64_t hash_bytes(const void *p, size_t n);
static inline uint64_t hash_str(const char *s);

/* ---- bounded buffer (buf.c) --------------------------------------------- */

/*
 * A growable byte buffer that refuses to grow past cap. Once a write fails
 * the buffer is marked overflowed and later writes are ignored, so callers
 * check once at the end. Always NUL-terminated when len > 0.
 */
struct buf {
	char *data;
	size_t len;
	size_t size;
	size_t cap;
	bool overflow;
	bool mapped;             /* buf_init_mapped */
};
void buf_init(struct buf *b, size_t cap);
/* A buffer in pages of its own mapping (grown with mremap, unmapped by
 * buf_fini): for big short-lived work that malloc would keep in a thread's
 * arena, or that would raise glibc's dynamic mmap threshold when freed. */
void buf_init_mapped(struct buf *b, size_t cap);
void buf_fini(struct buf *b);
void buf_reset(struct buf *b);
/* Ensures room for n more bytes; returns 0 or -ENOMEM (sets overflow). */
int buf_reserve(struct buf *b, size_t n);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_put_u64(struct buf *b, uint64_t v);
/* v in decimal at the end of tmp, no NUL; returns where the digits start
 * (they end at tmp + U64_DIGITS_MAX). What printf's %llu writes, cheaper
 * where numbers are many (the cgroup iterator's records, each tick). */
#define U64_DIGITS_MAX 20
char *u64_digits(uint64_t v, char tmp[U64_DIGITS_MAX]);
/* Shortest text that reads back as the same double; NaN, +Inf, -Inf. */
void buf_put_double(struct buf *b, double v);
/* Writes s as a JSON string literal (with quotes). */
void buf_put_json_str(struct buf *b, const char *s);
/* Writes v as a label value of the Prometheus text format: in quotes,
 * with backslash, double quote and newline escaped. */
void buf_put_label_value(struct buf *b, const char *v);
/* key="value" into out, the value escaped as buf_put_label_value does;
 * false when it does not fit in size bytes (out is then cut). */
bool label_pair_text(char *out, size_t size, const char *key, const char *value);
/* Takes the data out of b (caller frees); b is left empty. */
char *buf_steal(struct buf *b, size_t *len);

/* ---- arena (buf.c) ------------------------------------------------------ */

/* Bump allocator: many small allocations, one free. Not thread-safe. */
struct arena_block;
struct arena {
	struct arena_block *head;
	size_t used_bytes;
};
void *arena_alloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
void arena_free(struct arena *a);

/* ---- host root (hostroot.c) --------------------------------------------- */

/*
 * Every /proc, /sys and cgroupfs path goes through the host-root prefix so
 * the agent can run in a container with the host at /host, and tests can
 * point it at fixture trees. Set once at start-up, before any thread.
 */
int hostroot_set(const char *dir);
const char *hostroot_get(void);
/* Writes prefix + path into out; returns 0 or -ENAMETOOLONG. */
int hostroot_path(char *out, size_t size, const char *path);

/* Reads a whole small file (at most cap bytes) into out, NUL-terminated.
 * Returns the length or -errno. */
ssize_t read_file(const char *path, char *out, size_t cap);
/* Creates dir and its missing parents (mode 0750), as mkdir -p does;
 * returns 0 (also when they exist) or -errno. (misc.c) */
int mkdir_p(const char *dir);

/* ---- JSON reader (json.c) ----------------------------------------------- */

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

/*
 * A parsed JSON document. Values live in one arena owned by the document;
 * json_doc_free releases everything. Object members keep document order.
 */
struct json {
	enum json_type type;
	bool boolean;
	double number;
	char *string;            /* STRING: decoded UTF-8; member key for children */
	char *key;               /* set when this value is an object member */
	struct json *child;      /* first element or member */
	struct json *next;       /* next sibling */
	size_t count;            /* ARRAY/OBJECT: number of children */
};
struct json_doc {
	struct json *root;
	struct arena arena;
};
/* Parses text (length n). Returns 0, or -EINVAL with *err_off set to the
 * byte offset of the problem. depth and size are bounded. */
int json_parse(struct json_doc *doc, const char *text, size_t n, size_t *err_off);
void json_doc_free(struct json_doc *doc);
/* Member of an object by key, or NULL. */
const struct json *json_get(const struct json *obj, const char *key);
/* String value of a member, or NULL when absent or not a string. */
const char *json_get_str(const struct json *obj, const char *key);
/* Walks a dotted path of object keys ("State.Running"). */
const struct json *json_path(const struct json *obj, const char *path);

/* ---- YAML tree (yaml.c) ------------------------------------------------- */

enum ynode_type { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

/*
 * A YAML document as a tree, each node carrying its line and column so that
 * a config or rule error can name the place. Maps keep document order; a
 * map's children are key/value pairs: child->key is the key scalar.
 */
struct ynode {
	enum ynode_type type;
	int line, col;           /* 1-based */
	char *scalar;            /* SCALAR */
	bool quoted;             /* SCALAR was quoted (never a number/bool) */
	char *key;               /* set when this node is a map value */
	int key_line;
	struct ynode *child;
	struct ynode *next;
	size_t count;
};
struct ydoc {
	struct ynode *root;      /* NULL for an empty document */
	struct arena arena;
	char path[256];
};
/* Loads a file. On error returns -errno or -EINVAL and writes
 * "file:line:col: message" into err. */
int ydoc_load(struct ydoc *doc, const char *path, char *err, size_t errsize);
/* Same, from a string; name is used in messages. */
int ydoc_parse(struct ydoc *doc, const char *name, const char *text, size_t n,
	       char *err, size_t errsize);
void ydoc_free(struct ydoc *doc);
const struct ynode *ynode_get(const struct ynode *map, const char *key);

/* ---- typed config values from a YAML tree (ycfg.c) ---------------------- */

/*
 * Where a config section's errors go. Each ycfg_ function below checks one
 * node; on a bad value it writes "file:line:col: key: message" into err
 * (truncated to errsize) and returns -EINVAL, else stores the value and
 * returns 0. They keep no state: any thread, given its own err buffer.
 */
struct ycfg {
	const char *file;
	char *err;
	size_t errsize;
};
/* Writes the error for node n (NULL: line and column 0); returns -EINVAL. */
int ycfg_fail(const struct ycfg *x, const struct ynode *n, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A string of fewer than size bytes, copied into out. */
int ycfg_str(const struct ycfg *x, const struct ynode *n, const char *key, char *out, size_t size);
/* A duration (parse_duration_ms) of at least min_ms. bad is the message for
 * a value that is no duration; NULL words it "such as 500ms, 1s, 2m" and
 * quotes the value. */
int ycfg_duration(const struct ycfg *x, const struct ynode *n, const char *key, int64_t min_ms,
		  int64_t *out, const char *bad);
/* An unquoted whole number in [lo, hi]. */
int ycfg_int(const struct ycfg *x, const struct ynode *n, const char *key, int64_t lo, int64_t hi,
	     int64_t *out);
/* Unquoted true/yes or false/no. */
int ycfg_bool(const struct ycfg *x, const struct ynode *n, const char *key, bool *out);
/* A byte count: a number with an optional unit B, KB, MB, GB, TB, KiB, MiB,
 * GiB, TiB; 0 is allowed. bad as for ycfg_duration ("such as 4GiB or
 * 500MB" when NULL). */
int ycfg_size(const struct ycfg *x, const struct ynode *n, const char *key, uint64_t *out,
	      const char *bad);

static inline uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

#endif
