/*
 * logtail.c - the log tailer: one thread that follows every container's log
 * file and hands parsed lines, with the file positions they end at, to the
 * agent (which stores both in one transaction), plus the small collector
 * that publishes its counters as container_log_* series each tick.
 *
 * Finding files: every rescan interval the thread lists Docker's
 * containers directory (<id>/<id>-json.log, the name from config.v2.json),
 * the CRI pod log directory (/var/log/pods/<ns>_<pod>_<uid>/<ctr>/<n>.log,
 * ids from the kubelet's /var/log/containers links), podman's k8s-file logs
 * and the configured globs; the collector adds the paths and names the
 * registry knows (Docker's LogPath). Nothing needs configuring.
 *
 * Reading: each poll every file that changed is read from where it was
 * left with pread. An inotify watch on each open file says which changed,
 * so an idle file costs nothing a poll; a file without a watch (no
 * inotify, the watch limit reached, a filesystem that sends no notices) is
 * checked with fstat every poll, and every file at each rescan.
 * Storing: lines read are stored (one transaction with their positions) at
 * most once a commit interval while they keep coming: a SQLite commit with
 * its full-text index costs far more than the lines it holds, so steady
 * output from many containers is stored about once a second, while a line
 * after a quiet spell is stored at the poll that reads it. Docker's 16 KiB splits and CRI "P" records are joined per stream;
 * a line longer than the line cap is cut with a marker; bytes that are not
 * UTF-8 or are control characters are escaped. The position saved with a
 * batch is the end of the last line that is complete and stored, so a
 * restart resumes exactly there: a half-joined line is read again whole.
 *
 * Rotation: a file renamed away (the path now names another inode) is read
 * to its end before the new file is opened from 0; a file truncated in
 * place (copy-truncate: smaller than the offset, or its first bytes
 * changed) is read again from 0; a file deleted is read to its end and
 * forgotten. After a restart, a saved position whose inode is no longer at
 * the path is looked for among the path's siblings (<id>-json.log.1,
 * 0.log.<time>) and that file is finished first.
 *
 * The ingest cap: a token bucket per container (lines/s and bytes/s, one
 * second of burst). Past it, lines are not decoded, only counted (file
 * lines and bytes) as dropped, and once a second a line saying how many
 * were dropped is stored in their place.
 */
#include "collectors/collector.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (256u << 10)
#define READ_BUDGET (8u << 20)          /* bytes per file per poll */
#define BATCH_LINES 8192
#define BATCH_BYTES (8u << 20)
#define BATCH_CAP (96u << 20)
#define FP_BYTES 256
#define MAX_FILES 20000
#define MAX_CTRS 20000
#define MAX_HINTS 4096
#define CTR_BUCKETS 1024
#define DOCKER_CONFIG_CAP (1u << 20)
#define MAX_LINKS 65536
#define RETRY_MS 1000
#define MAX_NOTICES 4096           /* per poll; past it every file is checked */
/* A Docker record holds 16 KiB of log, JSON-escaped up to six times that. */
#define CARRY_EXTRA (160u << 10)

enum fmt { FMT_AUTO, FMT_RAW, FMT_DOCKER, FMT_CRI };
enum { FLAG_ESCAPED = 1, FLAG_TRUNCATED = 2, FLAG_PARTIAL = 4 };

static const char *const level_names[COLL_LOG__LEVELS] = {
	"unknown", "trace", "debug", "info", "warn", "error", "fatal",
};

const char *coll_log_level_name(int level)
{
	return level >= 0 && level < COLL_LOG__LEVELS ? level_names[level] : "unknown";
}

void coll_log_config_defaults(struct coll_log_config *c)
{
	memset(c, 0, sizeof(*c));
	c->enabled = true;
	snprintf(c->docker_dir, sizeof(c->docker_dir), "/var/lib/docker/containers");
	snprintf(c->cri_dir, sizeof(c->cri_dir), "/var/log/pods");
	snprintf(c->cri_links_dir, sizeof(c->cri_links_dir), "/var/log/containers");
	snprintf(c->podman_dir, sizeof(c->podman_dir),
		 "/var/lib/containers/storage/overlay-containers");
	c->rate_lines = 5000;
	c->rate_bytes = 4 << 20;
	c->line_cap = COLL_LOG_LINE_CAP_DEFAULT;
	c->poll_ms = 200;
	c->rescan_ms = 2000;
	c->commit_ms = 1000;
}

void coll_log_config_fini(struct coll_log_config *c)
{
	for (size_t i = 0; i < c->nglobs; i++)
		free(c->globs[i]);
	c->nglobs = 0;
}

/* A container as the tailer counts it. */
struct ctr {
	struct ctr *next;
	char id[80];
	char name[128];
	struct coll_log_counters c;      /* read by other threads under t->lock */
	double tok_lines, tok_bytes;
	int64_t refill_ns;
	uint64_t pend_drop_lines, pend_drop_bytes; /* since the last drop notice */
	int64_t notice_ns;
	int64_t used_ms;                 /* last line or hint */
	/* The registry has it (hinted, not forgotten since). One that it does
	 * not have, with no file left and nothing pending, is freed at the
	 * next rescan (drop_gone), so that the table follows what runs and
	 * not every container the host ever had. */
	bool known;
	uint32_t mark;                   /* drop_gone's pass that found a file of it */
};

struct join {
	struct buf text;
	bool active;
	uint64_t total;                  /* bytes joined, also past the cap */
	int64_t time_ns;
	uint64_t start;                  /* file offset of its first record */
};

struct tfile {
	struct tfile *next;
	char path[PATH_MAX];             /* the file read (host root applied) */
	char key[PATH_MAX];              /* the position's key: path, or for a rotated
					  * sibling being finished, the live path */
	struct ctr *ctr;
	enum fmt fmt;
	int fd;
	uint64_t dev, ino;
	uint64_t off, committed, saved;
	uint64_t saved_ino;              /* the inode the saved position is of */
	uint64_t last_size;
	uint64_t fp, fp_len;
	struct buf carry;                /* the physical line read in part */
	uint64_t carry_skipped;          /* its bytes past the cap */
	struct join join[2];
	bool seen;                       /* listed by the last rescan or hinted */
	bool draining;                   /* a rotated sibling: read to the end, then drop */
	int wd;                          /* its inotify watch, or -1 */
	bool dirty;                      /* changed (a notice) or not yet read to its end */
	bool moved;                      /* a notice says its path may name another file */
	struct tfile *waiter;            /* the live file waiting for this sibling */
	bool waiting;                    /* waits for a sibling to be finished */
	bool remove;                     /* closed: drop after the flush */
	bool forget_pos;                 /* delete the position at the flush */
	struct log_limit ll;
};

struct hint {
	char id[80];
	char name[128];
	char path[PATH_MAX];
	bool gone;                       /* the registry forgot it */
};

struct coll_logtail {
	struct coll_log_config cfg;
	struct coll_log_output out;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;            /* ctrs' counters, hints, stop, stats */
	pthread_cond_t cond;
	bool stop;
	int stopping;                    /* stop, read without the lock (atomic) */
	struct hint *hints;
	size_t nhints;
	struct ctr *ctrs[CTR_BUCKETS];
	size_t nctrs;
	uint32_t sweep;                  /* drop_gone's passes */
	struct coll_logtail_stats stats;

	/* the thread's own */
	struct tfile *files;
	size_t nfiles;
	int64_t last_rescan_ms;
	int64_t now_ns, now_mono;
	char *rbuf;
	struct buf dec;                  /* a decoded Docker record */
	struct coll_log_line *lines;
	size_t *text_off;
	size_t nlines;
	struct buf text;
	int64_t last_flush_ms;           /* when lines were last stored */
	int ino_fd;                      /* inotify on the open files, or -1 */
	struct notice { int wd; bool gone, moved; } *notices; /* this poll's, by wd */
	size_t nnotices;
	bool failed;                     /* the last write failed: retry later */
	bool full_check;                 /* this poll also looks at idle files' paths */
	struct log_limit write_ll, scan_ll;
};

/* ---- containers ------------------------------------------------------------- */

/* The container id, or NULL. Called with t->lock held. */
static struct ctr *ctr_find(struct coll_logtail *t, const char *id)
{
	size_t b = hash_bytes(id, strlen(id)) % CTR_BUCKETS;
	for (struct ctr *c = t->ctrs[b]; c; c = c->next)
		if (!strcmp(c->id, id))
			return c;
	return NULL;
}

/* The container id, created on first use. Called with t->lock held. */
static struct ctr *ctr_get(struct coll_logtail *t, const char *id)
{
	size_t b = hash_bytes(id, strlen(id)) % CTR_BUCKETS;
	struct ctr *found = ctr_find(t, id);
	if (found)
		return found;
	if (t->nctrs >= MAX_CTRS) {
		/* Drop the longest unused one (its counters restart). */
		struct ctr **old = NULL;
		for (size_t i = 0; i < CTR_BUCKETS; i++)
			for (struct ctr **p = &t->ctrs[i]; *p; p = &(*p)->next)
				if (!old || (*p)->used_ms < (*old)->used_ms)
					old = p;
		bool in_use = false;
		for (struct tfile *f = t->files; f && old; f = f->next)
			in_use |= f->ctr == *old;
		if (!old || in_use)
			return NULL;
		struct ctr *dead = *old;
		*old = dead->next;
		free(dead);
		t->nctrs--;
	}
	struct ctr *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->tok_lines = t->cfg.rate_lines;
	c->tok_bytes = t->cfg.rate_bytes;
	c->refill_ns = t->now_mono;
	c->used_ms = now_ms();
	c->next = t->ctrs[b];
	t->ctrs[b] = c;
	t->nctrs++;
	return c;
}

int coll_logtail_counters(struct coll_logtail *t, const char *id, struct coll_log_counters *out)
{
	if (!t)
		return -ENOENT;
	int rc = -ENOENT;
	pthread_mutex_lock(&t->lock);
	struct ctr *c = ctr_find(t, id);
	if (c) {
		*out = c->c;
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void coll_logtail_stats(struct coll_logtail *t, struct coll_logtail_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	*out = t->stats;
	pthread_mutex_unlock(&t->lock);
}

/* Queues a hint, or (gone) the registry's forgetting of id: one queue, so
 * that the thread applies them in the order they came. */
static void queue_hint(struct coll_logtail *t, const char *id, const char *name,
		       const char *log_path, bool gone)
{
	if (!t || !id || !*id)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->nhints < MAX_HINTS) {
		struct hint *h = &t->hints[t->nhints++];
		snprintf(h->id, sizeof(h->id), "%s", id);
		snprintf(h->name, sizeof(h->name), "%s", name ? name : "");
		snprintf(h->path, sizeof(h->path), "%s", log_path ? log_path : "");
		h->gone = gone;
	}
	pthread_mutex_unlock(&t->lock);
}

void coll_logtail_hint(struct coll_logtail *t, const char *id, const char *name,
		       const char *log_path)
{
	queue_hint(t, id, name, log_path, false);
}

void coll_logtail_forget(struct coll_logtail *t, const char *id)
{
	queue_hint(t, id, NULL, NULL, true);
}

/* ---- the batch ----------------------------------------------------------------- */

static bool batch_full(const struct coll_logtail *t)
{
	return t->nlines >= BATCH_LINES || t->text.len >= BATCH_BYTES;
}

/* Appends a line whose message the caller writes into t->text next. */
static struct coll_log_line *batch_line(struct coll_logtail *t, struct ctr *c)
{
	struct coll_log_line *l = &t->lines[t->nlines];
	memset(l, 0, sizeof(*l));
	l->id = c->id;
	l->name = c->name[0] ? c->name : NULL;
	t->text_off[t->nlines] = t->text.len;
	t->nlines++;
	return l;
}

static void rewind_file(struct tfile *f)
{
	/* A file reopened after a rotation starts over from its beginning. */
	f->off = f->committed = f->saved_ino == f->ino ? f->saved : 0;
	f->dirty = true;
	buf_reset(&f->carry);
	f->carry_skipped = 0;
	for (int s = 0; s < 2; s++) {
		f->join[s].active = false;
		buf_reset(&f->join[s].text);
	}
}

/* Hands the batch and the positions of the files it advanced to the
 * output. On failure every file goes back to its saved position. */
static int flush(struct coll_logtail *t)
{
	size_t np = 0;
	/* A file waiting for a rotated sibling keeps its old position: the
	 * sibling's, under the same key, is the one that counts. */
	for (struct tfile *f = t->files; f; f = f->next)
		np += (f->committed != f->saved && !f->waiting) || f->forget_pos;
	if (!t->nlines && !np)
		return 0;
	t->last_flush_ms = now_ms();
	struct coll_log_pos *pos = np ? calloc(np, sizeof(*pos)) : NULL;
	if (np && !pos)
		return -ENOMEM;
	size_t k = 0;
	for (struct tfile *f = t->files; f; f = f->next) {
		if (f->forget_pos) {
			pos[k++] = (struct coll_log_pos){ .path = f->key, .offset = UINT64_MAX };
		} else if (f->committed != f->saved && !f->waiting) {
			pos[k++] = (struct coll_log_pos){ .path = f->key, .dev = f->dev, .ino = f->ino,
							  .offset = f->committed, .fingerprint = f->fp,
							  .fingerprint_len = f->fp_len };
		}
	}
	for (size_t i = 0; i < t->nlines; i++) {
		size_t end = i + 1 < t->nlines ? t->text_off[i + 1] : t->text.len;
		t->lines[i].msg = t->text.data ? t->text.data + t->text_off[i] : "";
		t->lines[i].msg_len = end - t->text_off[i];
	}
	int rc = t->text.overflow ? -ENOMEM : t->out.write(t->out.arg, t->lines, t->nlines, pos, k);
	free(pos);
	pthread_mutex_lock(&t->lock);
	if (rc == 0)
		t->stats.lines += t->nlines;
	else
		t->stats.write_errors++;
	pthread_mutex_unlock(&t->lock);
	if (rc == 0) {
		log_recovered(&t->write_ll, "storing container logs");
		for (struct tfile *f = t->files; f; f = f->next) {
			if (!f->waiting) {
				f->saved = f->committed;
				f->saved_ino = f->ino;
			}
			f->forget_pos = false;
		}
	} else {
		log_limited(&t->write_ll, LOG_WARN, "storing container logs: %s; reading again "
			    "from the stored positions", strerror(-rc));
		for (struct tfile *f = t->files; f; f = f->next)
			if (!f->remove)
				rewind_file(f);
		t->failed = true;
	}
	t->nlines = 0;
	buf_reset(&t->text);
	t->text.overflow = false;
	return rc;
}

/* ---- lines ---------------------------------------------------------------------- */

/* Refills c's bucket and says whether a line may pass. */
static bool rate_ok(struct coll_logtail *t, struct ctr *c)
{
	if (t->cfg.rate_lines <= 0 && t->cfg.rate_bytes <= 0)
		return true;
	double dt = (double)(t->now_mono - c->refill_ns) / 1e9;
	if (dt > 0) {
		c->refill_ns = t->now_mono;
		c->tok_lines += dt * t->cfg.rate_lines;
		c->tok_bytes += dt * t->cfg.rate_bytes;
		if (c->tok_lines > t->cfg.rate_lines)
			c->tok_lines = t->cfg.rate_lines;
		if (c->tok_bytes > t->cfg.rate_bytes)
			c->tok_bytes = t->cfg.rate_bytes;
	}
	return (t->cfg.rate_lines <= 0 || c->tok_lines >= 1) &&
	       (t->cfg.rate_bytes <= 0 || c->tok_bytes > 0);
}

/* Stores the notice of lines dropped since the last one (at most one a
 * second per container). */
static void drop_notice(struct coll_logtail *t, struct ctr *c, bool force)
{
	if (!c->pend_drop_lines || (!force && t->now_mono - c->notice_ns < 1000000000LL))
		return;
	if (batch_full(t))
		flush(t);
	struct coll_log_line *l = batch_line(t, c);
	l->time_ns = t->now_ns;
	l->stream = 1;
	l->level = COLL_LOG_WARN;
	buf_printf(&t->text, "[monitor] %llu log lines (%llu bytes) of this container were dropped "
		   "by the ingest cap (logs.rate_limit)", (unsigned long long)c->pend_drop_lines,
		   (unsigned long long)c->pend_drop_bytes);
	c->pend_drop_lines = c->pend_drop_bytes = 0;
	c->notice_ns = t->now_mono;
}

/* Stores one logical line (msg, len bytes kept of total). */
static void emit(struct coll_logtail *t, struct tfile *f, int stream, int64_t time_ns,
		 const char *msg, size_t len, uint64_t total, uint32_t flags)
{
	struct ctr *c = f->ctr;
	size_t cap = t->cfg.line_cap;
	if (len > cap || total > len) {
		len = coll_log_utf8_cut(msg, len, cap);
		flags |= FLAG_TRUNCATED;
	}
	if (batch_full(t))
		flush(t);
	struct coll_log_line *l = batch_line(t, c);
	l->time_ns = time_ns >= 0 ? time_ns : t->now_ns;
	l->stream = stream;
	l->level = coll_log_level(msg, len);
	if (coll_log_needs_escape(msg, len)) {
		flags |= FLAG_ESCAPED;
		coll_log_escape(msg, len, &t->text);
	} else {
		buf_add(&t->text, msg, len);
	}
	if (flags & FLAG_TRUNCATED)
		buf_printf(&t->text, " [truncated by monitor: %llu bytes in all]",
			   (unsigned long long)total);
	l->flags = flags;
	pthread_mutex_lock(&t->lock);
	c->c.lines[stream][l->level]++;
	c->c.bytes[stream] += total;
	if (flags & FLAG_TRUNCATED)
		c->c.truncated++;
	pthread_mutex_unlock(&t->lock);
	/* The cap guards the store: what is kept counts, not what was cut. */
	c->tok_lines -= 1;
	c->tok_bytes -= (double)len;
}

static void update_committed(struct tfile *f, uint64_t line_end)
{
	uint64_t c = line_end;
	for (int s = 0; s < 2; s++)
		if (f->join[s].active && f->join[s].start < c)
			c = f->join[s].start;
	f->committed = c;
}

/* Ends the joins of f (the file ended before their last record). */
static void finish_joins(struct coll_logtail *t, struct tfile *f)
{
	for (int s = 0; s < 2; s++) {
		struct join *j = &f->join[s];
		if (!j->active)
			continue;
		emit(t, f, s, j->time_ns, j->text.data ? j->text.data : "", j->text.len, j->total,
		     FLAG_PARTIAL);
		j->active = false;
		buf_reset(&j->text);
	}
}

static enum fmt detect(const char *s, size_t n)
{
	struct coll_log_entry e;
	if (n >= 7 && !memcmp(s, "{\"log\":", 7))
		return FMT_DOCKER;
	if (coll_log_parse_cri(s, n, &e) == 0)
		return FMT_CRI;
	return FMT_RAW;
}

/* One physical line of f: [start, end) in the file, skipped bytes past
 * the cap not in s. */
static void physical(struct coll_logtail *t, struct tfile *f, const char *s, size_t n,
		     uint64_t skipped, uint64_t start, uint64_t end)
{
	struct ctr *c = f->ctr;
	if (!rate_ok(t, c)) {
		/* Over the cap: count, do not decode. Joins in progress go too. */
		uint64_t lines = 1;
		for (int k = 0; k < 2; k++) {
			if (f->join[k].active) {
				f->join[k].active = false;
				buf_reset(&f->join[k].text);
				lines++;
			}
		}
		pthread_mutex_lock(&t->lock);
		c->c.dropped_lines += lines;
		c->c.dropped_bytes += n + skipped + 1;
		t->stats.dropped_lines += lines;
		pthread_mutex_unlock(&t->lock);
		c->pend_drop_lines += lines;
		c->pend_drop_bytes += n + skipped + 1;
		f->committed = end;
		return;
	}
	drop_notice(t, c, false);
	if (f->fmt == FMT_AUTO)
		f->fmt = detect(s, n);
	struct coll_log_entry e;
	int rc = -EINVAL;
	if (skipped == 0 && f->fmt == FMT_DOCKER) {
		buf_reset(&t->dec);
		t->dec.overflow = false;
		rc = coll_log_parse_docker(s, n, &t->dec, &e);
	} else if (skipped == 0 && f->fmt == FMT_CRI) {
		rc = coll_log_parse_cri(s, n, &e);
	}
	if (rc < 0) {
		if (f->fmt != FMT_RAW) {
			pthread_mutex_lock(&t->lock);
			t->stats.malformed++;
			pthread_mutex_unlock(&t->lock);
		}
		/* Kept as it is: nothing read is lost for being malformed. */
		e = (struct coll_log_entry){ .time_ns = -1, .stream = 0, .text = s, .len = n };
		if (n && s[n - 1] == '\r')
			e.len--;
	}
	struct join *j = &f->join[e.stream];
	if (j->active || e.partial) {
		if (!j->active) {
			j->active = true;
			j->total = 0;
			j->time_ns = e.time_ns;
			j->start = start;
			buf_reset(&j->text);
		}
		size_t room = t->cfg.line_cap + 1 > j->text.len ? t->cfg.line_cap + 1 - j->text.len : 0;
		buf_add(&j->text, e.text, e.len < room ? e.len : room);
		j->total += e.len;
		if (!e.partial) {
			emit(t, f, e.stream, j->time_ns, j->text.data ? j->text.data : "", j->text.len,
			     j->total, 0);
			j->active = false;
			buf_reset(&j->text);
		}
	} else {
		emit(t, f, e.stream, e.time_ns, e.text, e.len, e.len + skipped, 0);
	}
	update_committed(f, end);
}

/* Splits data (read at file offset base) into physical lines. */
static void process(struct coll_logtail *t, struct tfile *f, const char *data, size_t n,
		    uint64_t base)
{
	const char *p = data, *end = data + n;
	size_t cap = t->cfg.line_cap + CARRY_EXTRA; /* room for a record's framing */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t k = (size_t)((nl ? nl : end) - p);
		if (f->carry.len || f->carry_skipped || !nl) {
			size_t room = cap > f->carry.len ? cap - f->carry.len : 0;
			buf_add(&f->carry, p, k < room ? k : room);
			f->carry_skipped += k > room ? k - room : 0;
		}
		if (!nl)
			break;
		uint64_t line_end = base + (uint64_t)(nl - data) + 1;
		if (f->carry.len || f->carry_skipped) {
			uint64_t total = f->carry.len + f->carry_skipped;
			physical(t, f, f->carry.data ? f->carry.data : "", f->carry.len,
				 f->carry_skipped, line_end - total - 1, line_end);
			buf_reset(&f->carry);
			f->carry_skipped = 0;
		} else {
			physical(t, f, p, k, 0, line_end - k - 1, line_end);
		}
		p = nl + 1;
	}
}

/* ---- files ------------------------------------------------------------------------ */

static uint64_t fingerprint(int fd, uint64_t *len)
{
	char b[FP_BYTES];
	ssize_t n = pread(fd, b, sizeof(b), 0);
	if (n < 0)
		n = 0;
	*len = (uint64_t)n;
	return n ? hash_bytes(b, (size_t)n) : 0;
}

static uint64_t fingerprint_n(int fd, uint64_t want)
{
	char b[FP_BYTES];
	if (want > sizeof(b))
		want = sizeof(b);
	ssize_t n = pread(fd, b, want, 0);
	return n == (ssize_t)want && n > 0 ? hash_bytes(b, (size_t)n) : (uint64_t)-1;
}

/* ---- change notices ------------------------------------------------------------- */

/* Watches the file f has open (through its descriptor: the path may
 * already name another file). Without a watch f is checked every poll. */
static void watch(struct coll_logtail *t, struct tfile *f)
{
	f->dirty = f->moved = true;
	if (t->ino_fd < 0 || f->fd < 0)
		return;
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", f->fd);
	f->wd = inotify_add_watch(t->ino_fd, p, IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF |
				  IN_DELETE_SELF);
	if (f->wd < 0)
		log_limited(&t->scan_ll, LOG_INFO, "logs: no change notices for %s (%s); it is "
			    "checked every poll", f->path, strerror(errno));
}

/* Drops f's watch unless another open file shares it (the same inode). */
static void unwatch(struct coll_logtail *t, struct tfile *f)
{
	if (f->wd < 0 || t->ino_fd < 0) {
		f->wd = -1;
		return;
	}
	bool shared = false;
	for (struct tfile *g = t->files; g && !shared; g = g->next)
		shared = g != f && g->fd >= 0 && g->wd == f->wd;
	if (!shared)
		inotify_rm_watch(t->ino_fd, f->wd); /* EINVAL when the kernel dropped it */
	f->wd = -1;
}

static int notice_cmp(const void *a, const void *b)
{
	const struct notice *x = a, *y = b;
	return (x->wd > y->wd) - (x->wd < y->wd);
}

/* Reads the notices that came since the last poll and marks their files
 * dirty; on a queue overflow (or more notices than kept) every file. */
static void read_notices(struct coll_logtail *t)
{
	if (t->ino_fd < 0)
		return;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool all = false;
	t->nnotices = 0;
	ssize_t n;
	while ((n = read(t->ino_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p + sizeof(struct inotify_event) <= buf + n;) {
			const struct inotify_event *ev = (const void *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW || t->nnotices == MAX_NOTICES)
				all = true;
			else
				t->notices[t->nnotices++] = (struct notice){
					ev->wd, (ev->mask & IN_IGNORED) != 0,
					(ev->mask & (IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF |
						     IN_IGNORED)) != 0 };
		}
	}
	if (!all && !t->nnotices)
		return;
	qsort(t->notices, t->nnotices, sizeof(*t->notices), notice_cmp);
	for (struct tfile *f = t->files; f; f = f->next) {
		if (f->wd < 0)
			continue;
		struct notice key = { f->wd, false, false };
		struct notice *q = bsearch(&key, t->notices, t->nnotices, sizeof(key), notice_cmp);
		if (!q && !all)
			continue;
		f->dirty = true;
		f->moved |= all;
		while (q && q > t->notices && q[-1].wd == f->wd)
			q--;
		int wd = f->wd;
		for (; q && q < t->notices + t->nnotices && q->wd == wd; q++) {
			f->moved |= q->moved;
			if (q->gone)
				f->wd = -1; /* the kernel dropped the watch: poll it */
		}
	}
}

static void file_close(struct coll_logtail *t, struct tfile *f)
{
	unwatch(t, f);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static void file_free(struct coll_logtail *t, struct tfile *f)
{
	file_close(t, f);
	buf_fini(&f->carry);
	buf_fini(&f->join[0].text);
	buf_fini(&f->join[1].text);
	free(f);
}

static struct tfile *file_find(struct coll_logtail *t, const char *path)
{
	for (struct tfile *f = t->files; f; f = f->next)
		if (!f->draining && !strcmp(f->path, path))
			return f;
	return NULL;
}

static struct tfile *file_new(struct coll_logtail *t, const char *path, const char *key,
			      struct ctr *c, enum fmt fmt)
{
	struct tfile *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	snprintf(f->path, sizeof(f->path), "%s", path);
	snprintf(f->key, sizeof(f->key), "%s", key);
	f->ctr = c;
	f->fmt = fmt;
	f->fd = -1;
	f->wd = -1;
	buf_init(&f->carry, t->cfg.line_cap + CARRY_EXTRA + 1);
	buf_init(&f->join[0].text, t->cfg.line_cap + 128);
	buf_init(&f->join[1].text, t->cfg.line_cap + 128);
	return f;
}

/* Opens f->path at 0 (a new file, or the new one after a rotation). */
static int file_open_fresh(struct coll_logtail *t, struct tfile *f)
{
	int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	file_close(t, f);
	f->fd = fd;
	watch(t, f);
	f->dev = (uint64_t)st.st_dev;
	f->ino = (uint64_t)st.st_ino;
	f->off = f->committed = 0;
	f->last_size = 0;
	f->fp = fingerprint(fd, &f->fp_len);
	buf_reset(&f->carry);
	f->carry_skipped = 0;
	for (int s = 0; s < 2; s++) {
		f->join[s].active = false;
		buf_reset(&f->join[s].text);
	}
	return 0;
}

/* Looks in path's directory for the file with inode ino (a rotated
 * sibling); its name goes to out. */
static bool find_sibling(const char *path, uint64_t dev, uint64_t ino, char *out, size_t size)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return false;
	*slash = '\0';
	const char *base = slash + 1 - dir + path;
	size_t blen = strlen(base);
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		/* Rotated names start with the live name's stem. */
		size_t stem = blen > 4 ? blen - 4 : blen;
		if (strncmp(de->d_name, base, stem) || !strcmp(de->d_name, base))
			continue;
		char p[PATH_MAX];
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= sizeof(p))
			continue;
		struct stat st;
		if (stat(p, &st) == 0 && (uint64_t)st.st_ino == ino && (uint64_t)st.st_dev == dev) {
			snprintf(out, size, "%s", p);
			found = true;
		}
	}
	closedir(d);
	return found;
}

struct rotated {
	char path[PATH_MAX];
	int64_t mtime_ns;
	uint64_t dev, ino;
};

static int rotated_cmp(const void *a, const void *b)
{
	const struct rotated *x = a, *y = b;
	if (x->mtime_ns != y->mtime_ns)
		return x->mtime_ns < y->mtime_ns ? -1 : 1;
	return -strcmp(x->path, y->path); /* -json.log.2 is older than .1 */
}

/*
 * The files rotated away from live's path after the one (dev, ino,
 * mtime_ns) that was read last: when rotations come faster than the polls
 * (or while the agent was down), these were never read. They are queued
 * oldest first, each waiting for the one before it (pred, when given, goes
 * first), and live waits for the last.
 */
static void chain_rotated(struct coll_logtail *t, struct tfile *live, struct tfile *pred,
			  uint64_t dev, uint64_t ino, int64_t mtime_ns)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", live->path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0';
	const char *base = live->path + (slash - dir) + 1;
	size_t blen = strlen(base), stem = blen > 4 ? blen - 4 : blen;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct rotated r[32];
	size_t n = 0;
	struct dirent *de;
	while (n < ARRAY_LEN(r) && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (strncmp(de->d_name, base, stem) || !strcmp(de->d_name, base) ||
		    (len > 3 && !strcmp(de->d_name + len - 3, ".gz")))
			continue;
		if ((size_t)snprintf(r[n].path, sizeof(r[n].path), "%s/%s", dir, de->d_name) >=
		    sizeof(r[n].path))
			continue;
		struct stat st;
		if (stat(r[n].path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		r[n].dev = (uint64_t)st.st_dev;
		r[n].ino = (uint64_t)st.st_ino;
		r[n].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
		if ((r[n].ino == ino && r[n].dev == dev) || (r[n].ino == live->ino && r[n].dev == live->dev) ||
		    r[n].mtime_ns < mtime_ns)
			continue;
		n++;
	}
	closedir(d);
	if (!n)
		return;
	qsort(r, n, sizeof(r[0]), rotated_cmp);
	struct tfile *next = live;
	for (size_t i = n; i-- > 0;) {
		struct tfile *c = file_new(t, r[i].path, live->key, live->ctr, live->fmt);
		if (!c)
			continue;
		if (file_open_fresh(t, c) < 0 || c->ino != r[i].ino) {
			file_free(t, c);
			continue;
		}
		c->draining = true;
		c->seen = true;
		c->waiter = next;
		next->waiting = true;
		c->next = t->files;
		t->files = c;
		t->nfiles++;
		next = c;
		log_info("logs: %s: also reading %s, rotated away before it was read", live->path,
			 r[i].path);
	}
	if (pred && next != live) {
		pred->waiter = next;
		next->waiting = true;
	}
}

/* Starts following path for container c, resuming at its saved position. */
static void track(struct coll_logtail *t, const char *path, struct ctr *c, enum fmt fmt)
{
	struct tfile *f = file_find(t, path);
	if (f) {
		f->seen = true;
		if (c && f->ctr != c && !f->ctr->name[0])
			f->ctr = c;
		return;
	}
	if (t->nfiles >= MAX_FILES || !c)
		return;
	f = file_new(t, path, path, c, fmt);
	if (!f)
		return;
	int rc = file_open_fresh(t, f);
	if (rc < 0) {
		log_limited(&t->scan_ll, LOG_WARN, "logs: %s: %s", path, strerror(-rc));
		pthread_mutex_lock(&t->lock);
		t->stats.read_errors++;
		pthread_mutex_unlock(&t->lock);
		file_free(t, f);
		return;
	}
	f->seen = true;
	struct tfile *sib = NULL;
	struct coll_log_pos p;
	bool had_pos = t->out.position && t->out.position(t->out.arg, path, &p) == 0;
	if (had_pos) {
		if (p.dev == f->dev && p.ino == f->ino) {
			struct stat st;
			bool same = fstat(f->fd, &st) == 0 && (uint64_t)st.st_size >= p.offset &&
				    (p.fingerprint_len == 0 ||
				     fingerprint_n(f->fd, p.fingerprint_len) == p.fingerprint);
			if (same) {
				f->off = f->committed = f->saved = p.offset;
				f->saved_ino = f->ino;
				f->fp = p.fingerprint;
				f->fp_len = p.fingerprint_len;
			} else {
				log_info("logs: %s was truncated or replaced while the agent was "
					 "down; reading it from the start", path);
			}
		} else {
			char old[PATH_MAX];
			if (find_sibling(path, p.dev, p.ino, old, sizeof(old))) {
				sib = file_new(t, old, path, c, fmt);
				if (sib && file_open_fresh(t, sib) == 0 &&
				    (p.fingerprint_len == 0 ||
				     fingerprint_n(sib->fd, p.fingerprint_len) == p.fingerprint)) {
					sib->off = sib->committed = sib->saved = p.offset;
					sib->saved_ino = sib->ino;
					sib->fp = p.fingerprint;
					sib->fp_len = p.fingerprint_len;
					sib->draining = true;
					sib->seen = true;
					sib->waiter = f;
					f->waiting = true;
					log_info("logs: %s was rotated while the agent was down; "
						 "finishing %s first", path, old);
				} else if (sib) {
					file_free(t, sib);
					sib = NULL;
				}
			}
			if (!sib)
				log_warn("logs: %s was rotated while the agent was down and the old "
					 "file is gone; lines written to it after the agent stopped "
					 "are lost", path);
		}
	}
	f->next = t->files;
	t->files = f;
	t->nfiles++;
	/* A file never read before: its rotated predecessors come first (a
	 * container found after its runtime rotated its log). */
	if (!had_pos)
		chain_rotated(t, f, NULL, 0, 0, 0);
	if (sib) {
		struct stat st;
		int64_t mt = fstat(sib->fd, &st) == 0 ?
			(int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec : 0;
		chain_rotated(t, f, sib, sib->dev, sib->ino, mt);
		sib->next = t->files;
		t->files = sib;
		t->nfiles++;
	}
}

/* Reads what f gained. Returns the bytes read. */
static uint64_t poll_file(struct coll_logtail *t, struct tfile *f)
{
	if (f->fd < 0 || f->waiting || f->remove)
		return 0;
	/* A watched file with no notice since it was read to its end is idle. */
	if (f->wd >= 0 && !f->dirty && !f->draining && !t->full_check)
		return 0;
	struct stat fs, ps;
	if (fstat(f->fd, &fs) < 0)
		return 0;
	/* An unwatched idle file costs one fstat a poll; whether its path
	 * still names it (rotation, deletion) is checked when it grew, or at
	 * each rescan. */
	if (!f->draining && !t->full_check && !f->moved && (uint64_t)fs.st_size == f->off &&
	    (uint64_t)fs.st_size == f->last_size) {
		f->dirty = false;
		return 0;
	}
	bool renamed = false, gone = false;
	/* Whether the path still names f: a watched file is renamed or
	 * unlinked only with a notice (IN_MOVE_SELF, IN_ATTRIB for the link
	 * count), so its growth alone needs no path walk. */
	if (!f->draining && (f->wd < 0 || f->moved || t->full_check)) {
		f->moved = false;
		if (stat(f->path, &ps) < 0)
			gone = errno == ENOENT || errno == ENOTDIR;
		else
			renamed = (uint64_t)ps.st_ino != f->ino || (uint64_t)ps.st_dev != f->dev;
	}
	uint64_t size = (uint64_t)fs.st_size;
	bool truncated = size < f->off;
	if (!truncated && size != f->last_size && f->fp_len > 0 && f->off > 0 &&
	    fingerprint_n(f->fd, f->fp_len) != f->fp)
		truncated = true; /* cut and written past the old offset already */
	if (truncated) {
		finish_joins(t, f);
		buf_reset(&f->carry);
		f->carry_skipped = 0;
		f->off = f->committed = 0;
		f->fp = fingerprint(f->fd, &f->fp_len);
		log_debug("logs: %s was truncated; reading from the start", f->path);
	} else if (f->fp_len < FP_BYTES && size > f->fp_len && f->off == 0) {
		f->fp = fingerprint(f->fd, &f->fp_len);
	}
	f->last_size = size;
	uint64_t got = 0;
	bool eof = false;
	while (got < READ_BUDGET && !__atomic_load_n(&t->stopping, __ATOMIC_RELAXED)) {
		ssize_t n = pread(f->fd, t->rbuf, READ_CHUNK, (off_t)f->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_limited(&f->ll, LOG_WARN, "logs: reading %s: %s", f->path, strerror(errno));
			pthread_mutex_lock(&t->lock);
			t->stats.read_errors++;
			pthread_mutex_unlock(&t->lock);
			break;
		}
		if (n == 0) {
			eof = true;
			break;
		}
		uint64_t base = f->off;
		f->off += (uint64_t)n;
		got += (uint64_t)n;
		process(t, f, t->rbuf, (size_t)n, base);
		/* A regular file reads short only at its end: no read for the 0. */
		if ((size_t)n < READ_CHUNK) {
			eof = true;
			break;
		}
	}
	/* Only a file read to its very end is finished (not one cut short by
	 * the budget, a read error or the agent stopping). */
	if (eof)
		f->dirty = false;
	if (!eof || !(renamed || gone || f->draining))
		return got;
	/* The file is finished: what is left of a line is a line. */
	if (f->carry.len || f->carry_skipped) {
		uint64_t total = f->carry.len + f->carry_skipped;
		physical(t, f, f->carry.data ? f->carry.data : "", f->carry.len, f->carry_skipped,
			 f->off - total, f->off);
		buf_reset(&f->carry);
		f->carry_skipped = 0;
	}
	finish_joins(t, f);
	f->committed = f->off;
	if (f->draining) {
		if (f->waiter) {
			f->waiter->waiting = false;
			f->waiter->dirty = true;
		}
		file_close(t, f);
		f->remove = true;
	} else if (renamed) {
		/* Rotated by rename: the path is a new file, read from 0, after
		 * any rotated away between two polls. */
		uint64_t odev = f->dev, oino = f->ino;
		int64_t omt = (int64_t)fs.st_mtim.tv_sec * 1000000000LL + fs.st_mtim.tv_nsec;
		int rc = file_open_fresh(t, f);
		if (rc == 0)
			chain_rotated(t, f, NULL, odev, oino, omt);
		if (rc < 0) {
			file_close(t, f);
			f->remove = true;
			f->forget_pos = true;
		}
		log_debug("logs: %s was rotated; following the new file", f->path);
	} else {
		file_close(t, f);
		f->remove = true;
		f->forget_pos = true;
	}
	return got;
}

/* ---- discovery ------------------------------------------------------------------------ */

static bool is_hex64(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

/* The name Docker keeps in config.v2.json ("Name": "/web"). */
static void docker_name(const char *dir, char *out, size_t size)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/config.v2.json", dir);
	char *text = malloc(DOCKER_CONFIG_CAP);
	if (!text)
		return;
	ssize_t n = read_file(path, text, DOCKER_CONFIG_CAP);
	struct json_doc doc;
	size_t eoff;
	if (n > 0 && json_parse(&doc, text, (size_t)n, &eoff) == 0) {
		const char *name = json_get_str(doc.root, "Name");
		if (name)
			snprintf(out, size, "%s", name[0] == '/' ? name + 1 : name);
		json_doc_free(&doc);
	}
	free(text);
}

static struct ctr *ctr_locked(struct coll_logtail *t, const char *id, const char *name)
{
	pthread_mutex_lock(&t->lock);
	struct ctr *c = ctr_get(t, id);
	if (c && name && *name && strcmp(c->name, name))
		snprintf(c->name, sizeof(c->name), "%s", name);
	if (c)
		c->used_ms = now_ms();
	pthread_mutex_unlock(&t->lock);
	return c;
}

/* opendir that says once (rate-limited) why a configured directory cannot
 * be listed; a missing one is normal (no such runtime here). */
static DIR *open_dir(struct coll_logtail *t, const char *path)
{
	DIR *d = opendir(path);
	if (!d && errno != ENOENT && errno != ENOTDIR) {
		log_limited(&t->scan_ll, LOG_WARN, "logs: cannot list %s: %s", path, strerror(errno));
		pthread_mutex_lock(&t->lock);
		t->stats.read_errors++;
		pthread_mutex_unlock(&t->lock);
	}
	return d;
}

/* The configured runtime directory cfg_dir under the host root, its path
 * left in root; NULL when it is not set, too long, or cannot be listed. */
static DIR *open_cfg_dir(struct coll_logtail *t, const char *cfg_dir, char root[PATH_MAX])
{
	if (!cfg_dir[0] || hostroot_path(root, PATH_MAX, cfg_dir) < 0)
		return NULL;
	return open_dir(t, root);
}

/* True when path is followed already; marks it seen by this scan, so that
 * it is kept. */
static bool seen_again(struct coll_logtail *t, const char *path)
{
	struct tfile *f = file_find(t, path);
	if (f)
		f->seen = true;
	return f != NULL;
}

static void scan_docker(struct coll_logtail *t)
{
	char root[PATH_MAX];
	DIR *d = open_cfg_dir(t, t->cfg.docker_dir, root);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!is_hex64(de->d_name))
			continue;
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s-json.log", root, de->d_name,
				     de->d_name) >= sizeof(path))
			continue;
		if (seen_again(t, path))
			continue;
		if (access(path, F_OK) < 0)
			continue;
		char dir[PATH_MAX], name[128] = "";
		if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name) >= sizeof(dir))
			continue;
		docker_name(dir, name, sizeof(name));
		track(t, path, ctr_locked(t, de->d_name, name), FMT_DOCKER);
	}
	closedir(d);
}

/* /var/log/containers/<pod>_<ns>_<ctr>-<id>.log -> /var/log/pods/.../<n>.log */
struct link_map {
	char target[PATH_MAX];
	char id[80];
};

/* Reads the kubelet's links into *out (malloc'd, caller frees); returns
 * how many. */
static size_t read_links(struct coll_logtail *t, struct link_map **out)
{
	*out = NULL;
	char root[PATH_MAX];
	if (!t->cfg.cri_links_dir[0] || hostroot_path(root, sizeof(root), t->cfg.cri_links_dir) < 0)
		return 0;
	DIR *d = opendir(root);
	if (!d)
		return 0;
	size_t n = 0, cap = 0;
	struct link_map *m = NULL;
	struct dirent *de;
	while (n < MAX_LINKS && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 4 + 65 || strcmp(de->d_name + len - 4, ".log") || de->d_name[len - 69] != '-')
			continue;
		char id[80];
		snprintf(id, sizeof(id), "%.64s", de->d_name + len - 68);
		if (!is_hex64(id))
			continue;
		char lp[PATH_MAX], target[PATH_MAX];
		if ((size_t)snprintf(lp, sizeof(lp), "%s/%s", root, de->d_name) >= sizeof(lp))
			continue;
		ssize_t k = readlink(lp, target, sizeof(target) - 1);
		if (k <= 0)
			continue;
		target[k] = '\0';
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct link_map *nm = realloc(m, ncap * sizeof(*m));
			if (!nm)
				break;
			m = nm;
			cap = ncap;
		}
		if (hostroot_path(m[n].target, sizeof(m[n].target), target) < 0)
			continue;
		snprintf(m[n].id, sizeof(m[n].id), "%s", id);
		n++;
	}
	closedir(d);
	*out = m;
	return n;
}

static void scan_cri(struct coll_logtail *t)
{
	char root[PATH_MAX];
	DIR *pods = open_cfg_dir(t, t->cfg.cri_dir, root);
	if (!pods)
		return;
	struct link_map *links;
	size_t nlinks = read_links(t, &links);
	struct dirent *pd;
	while ((pd = readdir(pods))) {
		if (pd->d_name[0] == '.')
			continue;
		char pdir[PATH_MAX];
		if ((size_t)snprintf(pdir, sizeof(pdir), "%s/%s", root, pd->d_name) >= sizeof(pdir))
			continue;
		DIR *cd = open_dir(t, pdir);
		if (!cd)
			continue;
		/* <ns>_<pod>_<uid> */
		char pod[128] = "";
		const char *u1 = strchr(pd->d_name, '_');
		const char *u2 = u1 ? strrchr(pd->d_name, '_') : NULL;
		if (u1 && u2 > u1)
			snprintf(pod, sizeof(pod), "%.*s", (int)(u2 - u1 - 1), u1 + 1);
		struct dirent *ce;
		while ((ce = readdir(cd))) {
			if (ce->d_name[0] == '.')
				continue;
			char cdir[PATH_MAX];
			if ((size_t)snprintf(cdir, sizeof(cdir), "%s/%s", pdir, ce->d_name) >= sizeof(cdir))
				continue;
			DIR *fd = opendir(cdir);
			if (!fd)
				continue;
			struct dirent *fe;
			while ((fe = readdir(fd))) {
				size_t len = strlen(fe->d_name);
				/* <n>.log only: rotated 0.log.<time> files are finished
				 * by the live file's tracker. */
				if (len < 5 || strcmp(fe->d_name + len - 4, ".log"))
					continue;
				char path[PATH_MAX];
				if ((size_t)snprintf(path, sizeof(path), "%s/%s", cdir, fe->d_name) >=
				    sizeof(path))
					continue;
				if (seen_again(t, path))
					continue;
				char id[80];
				if ((size_t)snprintf(id, sizeof(id), "%s/%s/%.*s", pd->d_name, ce->d_name,
						     (int)(len - 4), fe->d_name) >= sizeof(id))
					id[sizeof(id) - 1] = '\0'; /* a long id is cut, still unique enough */
				for (size_t i = 0; i < nlinks; i++)
					if (!strcmp(links[i].target, path))
						snprintf(id, sizeof(id), "%s", links[i].id);
				track(t, path, ctr_locked(t, id, ce->d_name), FMT_CRI);
			}
			closedir(fd);
		}
		closedir(cd);
	}
	closedir(pods);
	free(links);
}

static void scan_podman(struct coll_logtail *t)
{
	char root[PATH_MAX];
	DIR *d = open_cfg_dir(t, t->cfg.podman_dir, root);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!is_hex64(de->d_name))
			continue;
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s/userdata/ctr.log", root, de->d_name) >=
		    sizeof(path))
			continue;
		if (seen_again(t, path))
			continue;
		if (access(path, F_OK) == 0)
			track(t, path, ctr_locked(t, de->d_name, NULL), FMT_CRI);
	}
	closedir(d);
}

static void scan_globs(struct coll_logtail *t)
{
	for (size_t i = 0; i < t->cfg.nglobs; i++) {
		char pat[PATH_MAX];
		if (hostroot_path(pat, sizeof(pat), t->cfg.globs[i]) < 0)
			continue;
		glob_t g;
		if (glob(pat, GLOB_NOSORT, NULL, &g) != 0)
			continue;
		for (size_t k = 0; k < g.gl_pathc; k++) {
			const char *path = g.gl_pathv[k];
			if (seen_again(t, path))
				continue;
			struct stat st;
			if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
				continue;
			/* A file's own name is its container: "file:<path>". */
			char id[80], name[128];
			const char *host = path + (strcmp(hostroot_get(), "/") ? strlen(hostroot_get()) : 0);
			snprintf(id, sizeof(id), "file:%.74s", host);
			const char *base = strrchr(path, '/');
			snprintf(name, sizeof(name), "%s", base ? base + 1 : path);
			track(t, path, ctr_locked(t, id, name), FMT_AUTO);
		}
		globfree(&g);
	}
}

static void apply_hints(struct coll_logtail *t)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->nhints;
	struct hint *h = NULL;
	if (n) {
		h = malloc(n * sizeof(*h));
		if (h)
			memcpy(h, t->hints, n * sizeof(*h));
		t->nhints = 0;
	}
	pthread_mutex_unlock(&t->lock);
	for (size_t i = 0; h && i < n; i++) {
		if (h[i].gone) {
			pthread_mutex_lock(&t->lock);
			struct ctr *g = ctr_find(t, h[i].id);
			if (g)
				g->known = false;
			pthread_mutex_unlock(&t->lock);
			continue;
		}
		/* A new name for a container with lines: the store learns it now,
		 * not only with its next line. */
		bool renamed = false;
		if (h[i].name[0] && t->out.name) {
			pthread_mutex_lock(&t->lock);
			struct ctr *k = ctr_find(t, h[i].id);
			renamed = k && strcmp(k->name, h[i].name) != 0 && k->c.lines[0][0] +
				  k->c.lines[1][0] + k->c.bytes[0] + k->c.bytes[1] +
				  k->c.dropped_lines > 0;
			pthread_mutex_unlock(&t->lock);
		}
		struct ctr *c = ctr_locked(t, h[i].id, h[i].name);
		if (c) {
			pthread_mutex_lock(&t->lock);
			c->known = true;
			pthread_mutex_unlock(&t->lock);
		}
		if (renamed) {
			flush(t);  /* lines read under the old name first */
			t->out.name(t->out.arg, h[i].id, h[i].name);
		}
		if (!c || !h[i].path[0])
			continue;
		char path[PATH_MAX];
		if (hostroot_path(path, sizeof(path), h[i].path) < 0 || file_find(t, path) ||
		    access(path, F_OK) < 0)
			continue;
		size_t len = strlen(path);
		bool docker = len > 9 && !strcmp(path + len - 9, "-json.log");
		track(t, path, c, docker ? FMT_DOCKER : FMT_AUTO);
	}
	free(h);
}

static void rescan(struct coll_logtail *t)
{
	scan_docker(t);
	scan_cri(t);
	scan_podman(t);
	scan_globs(t);
	pthread_mutex_lock(&t->lock);
	t->stats.files = t->nfiles;
	pthread_mutex_unlock(&t->lock);
}

static void drop_removed(struct coll_logtail *t)
{
	for (struct tfile **p = &t->files; *p;) {
		struct tfile *f = *p;
		if (f->remove && !f->forget_pos && f->committed == f->saved) {
			*p = f->next;
			t->nfiles--;
			file_free(t, f);
		} else {
			p = &f->next;
		}
	}
}

/* Frees the containers the registry no longer has, once no file of theirs
 * is followed and no drop notice is pending (after the flush: the batch,
 * which points at their ids, is empty). */
static void drop_gone(struct coll_logtail *t)
{
	uint32_t pass = ++t->sweep;
	for (struct tfile *f = t->files; f; f = f->next)
		if (f->ctr)
			f->ctr->mark = pass;
	pthread_mutex_lock(&t->lock);
	for (size_t b = 0; b < CTR_BUCKETS; b++) {
		for (struct ctr **p = &t->ctrs[b]; *p;) {
			struct ctr *c = *p;
			if (c->known || c->mark == pass || c->pend_drop_lines) {
				p = &c->next;
				continue;
			}
			*p = c->next;
			free(c);
			t->nctrs--;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

/* ---- the thread ---------------------------------------------------------------------- */

static void clock_now(struct coll_logtail *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	t->now_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	t->now_mono = mono_ns();
}

static void *run(void *arg)
{
	struct coll_logtail *t = arg;
	for (;;) {
		pthread_mutex_lock(&t->lock);
		bool stop = t->stop;
		pthread_mutex_unlock(&t->lock);
		if (stop)
			break;
		clock_now(t);
		apply_hints(t);
		t->full_check = now_ms() - t->last_rescan_ms >= t->cfg.rescan_ms;
		if (t->full_check) {
			rescan(t);
			t->last_rescan_ms = now_ms();
		}
		read_notices(t);
		uint64_t got = 0;
		for (struct tfile *f = t->files; f && !__atomic_load_n(&t->stopping, __ATOMIC_RELAXED);
		     f = f->next) {
			got += poll_file(t, f);
			clock_now(t);
		}
		for (size_t b = 0; b < CTR_BUCKETS; b++)
			for (struct ctr *c = t->ctrs[b]; c; c = c->next)
				drop_notice(t, c, false);
		if (now_ms() - t->last_flush_ms >= t->cfg.commit_ms)
			flush(t);
		drop_removed(t);
		if (t->full_check && !t->nlines)
			drop_gone(t);
		pthread_mutex_lock(&t->lock);
		t->stats.files = t->nfiles;
		pthread_mutex_unlock(&t->lock);
		/* Busy files are read again at once; idle ones every poll. */
		int64_t wait_ms = t->failed ? RETRY_MS : got >= READ_BUDGET ? 0 : t->cfg.poll_ms;
		t->failed = false;
		if (wait_ms > 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t ns = ts.tv_nsec + (wait_ms % 1000) * 1000000;
			ts.tv_sec += wait_ms / 1000 + ns / 1000000000;
			ts.tv_nsec = ns % 1000000000;
			pthread_mutex_lock(&t->lock);
			if (!t->stop)
				pthread_cond_timedwait(&t->cond, &t->lock, &ts);
			pthread_mutex_unlock(&t->lock);
		}
	}
	/* The lines read are stored before the thread ends. */
	for (size_t b = 0; b < CTR_BUCKETS; b++)
		for (struct ctr *c = t->ctrs[b]; c; c = c->next)
			drop_notice(t, c, true);
	flush(t);
	return NULL;
}

int coll_logtail_start(struct coll_logtail **out, const struct coll_log_config *cfg,
		       const struct coll_log_output *o)
{
	struct coll_logtail *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	t->cfg.nglobs = 0;
	for (size_t i = 0; i < cfg->nglobs && i < COLL_LOG_MAX_GLOBS; i++)
		if ((t->cfg.globs[i] = strdup(cfg->globs[i])))
			t->cfg.nglobs++;
	if (t->cfg.line_cap < 1024)
		t->cfg.line_cap = 1024;
	if (t->cfg.poll_ms < 10)
		t->cfg.poll_ms = 10;
	if (t->cfg.commit_ms < 0)
		t->cfg.commit_ms = 0;
	t->out = *o;
	t->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (t->ino_fd < 0)
		log_info("logs: no inotify (%s): every log file is checked every poll",
			 strerror(errno));
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->rbuf = malloc(READ_CHUNK);
	t->hints = calloc(MAX_HINTS, sizeof(*t->hints));
	t->lines = calloc(BATCH_LINES + 1, sizeof(*t->lines));
	t->text_off = calloc(BATCH_LINES + 1, sizeof(*t->text_off));
	t->notices = calloc(MAX_NOTICES, sizeof(*t->notices));
	buf_init(&t->text, BATCH_CAP);
	buf_init(&t->dec, t->cfg.line_cap * 6 + 1024);
	if (!t->rbuf || !t->hints || !t->lines || !t->text_off || !t->notices) {
		coll_logtail_stop(t);
		return -ENOMEM;
	}
	clock_now(t);
	int rc = pthread_create(&t->thread, NULL, run, t);
	if (rc) {
		coll_logtail_stop(t);
		return -rc;
	}
	pthread_setname_np(t->thread, "logs"); /* its CPU apart in top and perf */
	t->started = true;
	*out = t;
	return 0;
}

void coll_logtail_stop(struct coll_logtail *t)
{
	if (!t)
		return;
	if (t->started) {
		pthread_mutex_lock(&t->lock);
		t->stop = true;
		__atomic_store_n(&t->stopping, 1, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->thread, NULL);
	}
	if (t->ino_fd >= 0)
		close(t->ino_fd);   /* drops every watch */
	t->ino_fd = -1;
	while (t->files) {
		struct tfile *f = t->files;
		t->files = f->next;
		file_free(t, f);
	}
	for (size_t b = 0; b < CTR_BUCKETS; b++) {
		while (t->ctrs[b]) {
			struct ctr *c = t->ctrs[b];
			t->ctrs[b] = c->next;
			free(c);
		}
	}
	coll_log_config_fini(&t->cfg);
	free(t->rbuf);
	free(t->hints);
	free(t->lines);
	free(t->text_off);
	free(t->notices);
	buf_fini(&t->text);
	buf_fini(&t->dec);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}

/* ---- the collector ------------------------------------------------------------------------ */

/* Per container: the metadata generation last hinted. */
struct logs_priv {
	uint32_t gen;
	bool hinted;
};

static int logs_init(void **state, const struct coll_ctx *ctx)
{
	*state = ctx->logs;
	return 0;
}

static int logs_collect(void *state, struct coll_container *c, void **priv,
			struct coll_sink *sink)
{
	struct coll_logtail *t = state;
	if (!t)
		return 0;
	struct logs_priv *p = *priv;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return 1;
		*priv = p;
	}
	if (!p->hinted || p->gen != c->meta_gen) {
		coll_logtail_hint(t, c->id, c->meta.name, c->meta.log_path);
		p->hinted = true;
		p->gen = c->meta_gen;
	}
	struct coll_log_counters k;
	if (coll_logtail_counters(t, c->id, &k) < 0)
		return 0;
	char extra[96];
	for (int s = 0; s < 2; s++) {
		const char *sn = s ? "stderr" : "stdout";
		for (int l = 0; l < COLL_LOG__LEVELS; l++) {
			if (!k.lines[s][l])
				continue;
			snprintf(extra, sizeof(extra), "stream=\"%s\",level=\"%s\"", sn, level_names[l]);
			sink_emit(sink, M_LOG_LINES, extra, (double)k.lines[s][l]);
		}
		if (k.bytes[s]) {
			snprintf(extra, sizeof(extra), "stream=\"%s\"", sn);
			sink_emit(sink, M_LOG_BYTES, extra, (double)k.bytes[s]);
		}
	}
	sink_emit(sink, M_LOG_DROPPED_LINES, "reason=\"rate_limit\"", (double)k.dropped_lines);
	sink_emit(sink, M_LOG_DROPPED_BYTES, "reason=\"rate_limit\"", (double)k.dropped_bytes);
	sink_emit(sink, M_LOG_TRUNCATED, NULL, (double)k.truncated);
	return 0;
}

static void logs_forget(void *state, struct coll_container *c, void **priv)
{
	/* Only the containers it hinted: the tailer's own (found by a scan)
	 * are its to keep while their files last. */
	if (*priv)
		coll_logtail_forget(state, c->id);
	free(*priv);
	*priv = NULL;
}

static void logs_destroy(void *state)
{
	/* The tailer belongs to the agent, which stops it (logs.c). */
}

static void logs_agent_metrics(void *state, struct coll_sink *sink)
{
	struct coll_logtail *t = state;
	if (!t)
		return;
	struct coll_logtail_stats s;
	coll_logtail_stats(t, &s);
	sink_emit(sink, M_AGENT_LOG_FILES, NULL, (double)s.files);
	sink_emit(sink, M_AGENT_LOG_LINES, NULL, (double)s.lines);
	sink_emit(sink, M_AGENT_LOG_DROPPED, NULL, (double)s.dropped_lines);
	sink_emit(sink, M_AGENT_LOG_READ_ERRORS, NULL, (double)s.read_errors);
	sink_emit(sink, M_AGENT_LOG_MALFORMED, NULL, (double)s.malformed);
	sink_emit(sink, M_AGENT_LOG_WRITE_ERRORS, NULL, (double)s.write_errors);
}

const struct coll_ops coll_logs_ops = {
	.name = "logs",
	.init = logs_init,
	.collect = logs_collect,
	.forget = logs_forget,
	.destroy = logs_destroy,
	.agent_metrics = logs_agent_metrics,
};
