/*
 * forecast_refresh.h - what the files of the forecaster share, private to
 * alerting/: the refresh's state and the functions each file gives the
 * others. The models themselves are forecast_int.h's.
 *
 *   forecast.c       configuration, the resources forecast, one refresh
 *                    (selecting, pairing with limits, choosing between the
 *                    kept sums and a full fit) and the refresh thread;
 *   forecast_read.c  reading the store: points of a series, breaks in
 *                    them, a family's selection keyed for pairing;
 *   forecast_inc.c   a linear fit carried between refreshes as sums by
 *                    cells of time (struct fc_inc), fed from the store's
 *                    copy of each new sample (store_cursor_follow);
 *   forecast_out.c   the published table: its samples for the tick, the
 *                    API's JSON, the PromQL functions.
 *
 * Everything here runs on the refresh thread, except the table (refcounted
 * under forecaster.lock) and what forecast_out.c's readers take from it.
 */
#ifndef MONITOR_FORECAST_REFRESH_H
#define MONITOR_FORECAST_REFRESH_H

#include "alerting/alerting.h"
#include "alerting/forecast_int.h"
#include "collectors/collector.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FC_MAX_RAW_POINTS (1u << 20)     /* per series and read; a 1h window at 100ms is 36000 */
#define FC_MAX_ENTRIES 200000            /* resources in one table */
#define FC_LABELS_CAP 8192               /* rendered labels of one container */
/* How often a series' long history (1 m roll-ups over forecast.history) is
 * read and fitted again; in between its Holt-Winters or peaks fit is
 * carried forward. A week of roll-ups is 10,080 points a series. */
#define FC_HISTORY_EVERY_MS (15 * 60 * 1000LL)
/* The same for a series whose history fit was the line again (kept as
 * sums): a week of roll-ups read to learn that nothing changed is most of
 * what a steady series costs, so it is looked at again after an hour; a
 * break, a step or a new limit still refits it at once. */
#define FC_HISTORY_LINE_EVERY_MS (60 * 60 * 1000LL)
/* What is read of a resource without a limit: enough for its value now. */
#define FC_TAIL_MS (2 * 60 * 1000LL)
/* How often a linear fit kept as running sums (struct fc_inc) is thrown
 * away and made again from the whole window: bounds the rounding the sums
 * gather and lets the step detector's scale follow the series. The sums
 * move by whole cells (compensated), so their rounding stays near a
 * cell's own after hours; a step, a break or a new limit refits at once,
 * and the history check (FC_HISTORY_LINE_EVERY_MS) still asks every hour
 * whether the line is the model. Each series is due at its own refresh
 * (staggered by its id), so that not every series pays for a full read in
 * the same refresh. Every 8 h: a full read of the window is most of what a
 * kept series costs besides its new samples (at 1 s, 3,600 samples decoded
 * and fitted whole), and the sums' rounding does not gather. */
#define FC_FULL_EVERY_MS (8 * 60 * 60 * 1000LL)
/* At most this many cells of a kept window (struct fc_inc): 48 bytes
 * each, 62 for the default hour refreshed every minute. */
#define FC_MAX_CELLS 120
/* How long a family's selection of series is kept while no series is made
 * or dropped (fc_keyed_get): series that stopped are dropped from it at
 * most this late (their reads find nothing new and say so), and series
 * that came back join it. Each selection is due at its own refresh. */
#define FC_SELECT_EVERY_MS (10 * 60 * 1000LL)
/* Blocks of the kept range of a window (struct fc_inc): a window spans at
 * most FC_RANGE_BLOCKS - 2 of them. */
#define FC_RANGE_BLOCKS 32

enum fc_res {
	RES_MEMORY, RES_PIDS, RES_FS, RES_VOLUME, RES_WRITABLE, RES_CPU, RES_HOST_MEMORY,
	RES_HOST_FS, RES__COUNT
};

/* One resource: where its usage and limit come from. */
struct resource {
	const char *name;                /* the resource label */
	const char *unit;                /* for the API and CLI */
	const char *usage, *limit;       /* families */
	const char *usage_match;         /* extra matcher on usage: name=value, or NULL */
	const char *limit2;              /* cpu: the period the quota divides by; volume:
					  * the filesystem's use by all (others_use) */
	bool counter;                    /* usage is a counter: forecast its rate */
	bool machine;                    /* the host's, not a container's */
	bool by_mountpoint;
	bool others_use;                 /* the limit is what limit2's other users leave */
	bool staircase;                  /* usage moves in steps (a walk a minute): growth */
	const char *no_limit;            /* the reason when there is no limit */
};

/*
 * What a usage selection writes for its series' entries and samples: their
 * labels, id and mountpoint, and the labels of their model and horizon
 * samples (made when first needed: fc_model_label, fc_horizon_labels).
 * Shared by the selection and every table made from it, so that a refresh
 * neither copies nor renders 7,000 label texts; freed with the last of
 * them (refs atomic: the tick may drop the last table). Written by the
 * refresh thread only, and a string once written never changes.
 */
struct fc_texts {
	int refs;
	struct arena arena;
};

struct fc_entry {
	/* in the fc_texts of its selection (the table holds a reference) */
	const char *labels;              /* its samples' labels as exposition text (the series'
					  * but __name__ and cpu, resource, mountpoint); NULL past
					  * FC_LABELS_CAP */
	const char *id;                  /* the id label; NULL for the host */
	const char *mountpoint;          /* fs; NULL otherwise */
	struct keyed_txt *tx;            /* its series' texts: the building refresh's only
					  * (fc_render_samples clears it) */
	enum fc_res res;
	/* what the table keeps of the fit (the fit itself, a kilobyte with its
	 * season, is the refresh's: 7,000 of them were most of a new table's
	 * pages each refresh) */
	enum fc_model model;             /* NONE: see reason */
	double trend;                    /* per second */
	size_t npoints;
	int64_t segment_start_ms;
	double err_linear, err_hw;       /* backtest errors; NAN when not tried */
	const char *reason;
	double now, limit;               /* NAN when unknown */
	double eta, early, late;
	double y[FORECAST_MAX_HORIZONS], lo[FORECAST_MAX_HORIZONS], hi[FORECAST_MAX_HORIZONS];
};

/* One sample as the tick emits it (rendered once per refresh). */
struct fc_sample {
	uint32_t family;                 /* enum metric_id */
	const char *extra;               /* in the table's arena */
	double value;
};

struct fc_table {
	int refs;                        /* under forecaster.lock */
	int64_t time_ms;
	double refresh_seconds;
	size_t n, cap;
	struct fc_entry *e;
	struct fc_sample *samples;       /* what forecast_emit copies */
	size_t nsamples, samples_cap, with;
	struct arena arena;
	struct fc_texts *texts[RES__COUNT]; /* references: what its entries' texts are in */
};

struct forecaster {
	struct store *st;
	struct forecast_config cfg;
	struct fc_params params;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, threaded;
	pthread_t thread;
	struct fc_table *current;        /* under lock */
	/* the newest tick in the store (forecast_data), under lock: its time,
	 * the step between ticks, and when it came (monotonic ms) */
	int64_t data_ms, data_step_ms, data_arrival_ms;
	uint64_t refreshes;              /* atomic */
	struct log_limit ll;
	struct smap *slow;               /* limits and start times (refresh thread) */
	/* the families' selections, kept between refreshes (keyed_get):
	 * usage, limit, limit2 of each resource (sel[3 * res + k]), then the
	 * start times (sel[3 * RES__COUNT]) */
	struct keyed *sel;
	/* a refresh's read buffers (struct refresh's raw, hist, lim, lim2,
	 * aux, rate_t), kept for the next: not allocated and faulted in anew
	 * each refresh */
	struct pts *scratch;             /* FC_NSCRATCH */
};
#define FC_NSCRATCH 6
#define FC_NSEL (3 * RES__COUNT + 1)

/* Points of one read; grown as needed up to FC_MAX_RAW_POINTS. */
struct pts {
	int64_t *t;
	double *v;
	size_t n, cap;
};

/* One family's series selected by name (and one equality matcher), sorted
 * by their keys (base or full) for lookups. */
struct keyed_ent {
	const char *key;
	const struct store_series_info *si;
};

/* A usage series' keys and texts, worked out once per selection. */
struct keyed_txt {
	const char *full, *base;         /* as series_key gives them */
	/* the labels of its forecast samples (keyed_texts), NULL past the cap */
	const char *text;
	const char *mp, *id;            /* the mountpoint and id labels, or NULL */
	/* the labels of its model sample (by model; for none, with
	 * none_reason) and of its horizon samples, in the selection's
	 * fc_texts once made */
	const char *mlabel[FC_MODEL_PEAKS + 1], *none_reason;
	const char **hz;
	/* its limit, limit2 and start time series (pair_txt), found in the
	 * selections made at these times: found again only when one is new */
	const struct store_series_info *lim, *lim2, *start;
	uint64_t lim_gen, lim2_gen, start_gen;
};

struct keyed {
	struct store_series_set set;
	struct keyed_ent *ent;
	size_t n;
	struct keyed_txt *txt;           /* by set index, when asked for */
	struct fc_texts *texts;          /* txt's texts (a reference) */
	int64_t made_at;                 /* the refresh that selected it */
	int64_t due;                     /* when it is selected again (fc_keyed_get) */
	uint64_t gen;                    /* unique to this selection (keyed_gens) */
	uint64_t epoch;                  /* store_series_epoch then */
	bool valid;
	bool dups;                       /* two of its series share a key */
	/* the forecaster's, kept by fc_keyed_free: which refreshes of each
	 * FC_SELECT_EVERY_MS select it again (fc_stagger), and their step */
	uint32_t phase;
	int64_t slot_ms;
	struct arena arena;
};

/*
 * Limits and start times change rarely: the forecaster keeps each one's
 * newest value and the time it last changed, and reads only what came since
 * the last refresh. An open-addressing map by series id; refresh thread only.
 */
struct sstate {
	uint32_t id;
	bool used, stale;
	int64_t last_t, change_t;
	double last_v;
	/* usage series: when the long history was last fitted, and that fit
	 * when it needed the history (holt_winters, peaks); owned */
	int64_t long_at, long_due;
	struct fc_fit *long_fit;
	struct fc_inc *inc;            /* the linear fit's running sums; owned */
};

/*
 * A usage series whose last full fit was linear: the window's sums and what
 * the next refresh needs to add the points that arrived since (newer than
 * last_t) and remove those that left the window (from from_t up to its new
 * start), so that it reads a minute of points instead of the window. Any
 * doubt (a stale marker, a new break, a jump, too few points, time for a
 * full fit) drops it and the series is read and fitted whole again.
 *
 * The points are also summed by cells of time, (k cell_ms, (k+1) cell_ms]:
 * a cell older than the window's start leaves the sums in one step. Refreshes
 * are made at multiples of the interval (the thread's slots), and cell_ms
 * divides both the interval and the window, so every window starts on a
 * cell's edge and nothing old is read again; a refresh at another time (a
 * test, an odd interval) reads back only the part of the one cell that
 * straddles the window's start.
 */
struct fc_inc {
	struct fc_window w;
	int64_t from_t;                /* points at or after it (up to last_t) are in w */
	int64_t first_t, last_t;       /* the oldest and newest point in w */
	double last_v;
	int64_t chg;                   /* the newest break known at the full fit */
	int64_t seg_start;             /* the full fit's segment_start_ms */
	int64_t full_at;               /* when the next full fit is due */
	double limit;                  /* at the full fit (host memory is limit - available) */
	double scale;                  /* step detector: fc_diff_scale of the last full fit */
	/* The window's range for the step detector (a tenth of it is the least
	 * jump), as the lowest and highest value of each block of blk_ms: the
	 * blocks that overlap the window give its range, off by at most one
	 * block of samples that already left it. */
	int64_t blk_ms;
	int64_t blk[FC_RANGE_BLOCKS];  /* block number (t / blk_ms), or -1 */
	int64_t blk_t0, blk_t1;        /* the newest block's times, [t0, t1) ... */
	size_t blk_k;                  /* ... and its slot: no division a point */
	double blo[FC_RANGE_BLOCKS], bhi[FC_RANGE_BLOCKS];
	int64_t cell_ms;               /* the cells (not for a counter) ... */
	int64_t cell_lo, cell_hi;      /* ... from cell_lo to cell_hi hold the points; all
					* but the newest (cell_hi, still filling) are in w */
	size_t ncells;
	struct fc_wcell *cells;        /* ring: cell k at k % ncells; owned */
	struct fc_wcell *hi_cell;      /* cell_hi's (no division a point) */
	/* A counter (CPU): w holds its rate points, made here from the
	 * samples as they arrive (acc), and ahead holds every one of them
	 * still in the window (a minute's point each: an hour is 60), from
	 * ahead_i on, so nothing old is read again; last_t/last_v are the
	 * newest point. */
	struct pts ahead;
	size_t ahead_i;
	bool rate;
	struct fc_rate_acc acc;
	struct store_cursor *cur;      /* where the last read of new samples ended */
};

struct smap {
	struct sstate *e;
	size_t cap, n;
};
#define SMAP_MAX (4u << 20)

struct refresh {
	struct forecaster *f;
	struct fc_table *t;
	int64_t now;
	struct pts raw, hist, lim, lim2, aux, rate_t;
	struct fc_fit fit;               /* the fit of the resource at hand */
	struct keyed *starts;            /* container_start_time_seconds */
	uint64_t epoch;                  /* store_series_epoch at the start */
};

/* The resources and where their usage and limit come from (forecast.c). */
extern const struct resource fc_resources[RES__COUNT];

/* ---- forecast.c ---- */
/* Converts p (a counter) into its rate, in place through r->rate_t. */
int fc_to_rate(struct refresh *r, struct pts *p, int64_t step_ms);

/* ---- forecast_read.c: reading the store ---- */
/* A read's points: freed; grown to want (at most FC_MAX_RAW_POINTS: -E2BIG). */
void fc_pts_fini(struct pts *p);
int fc_pts_grow(struct pts *p, size_t want);
/* Raw points of a series in [mint, maxt] (stale markers kept), or 1 m
 * roll-up means when tier is STORE_TIER_1M (last values when last). */
int fc_read_series(struct store *st, uint32_t id, enum store_tier tier, bool last,
		       int64_t mint, int64_t maxt, struct pts *p);
/* Where the data after the newest stale marker begins (removing the
 * markers), or INT64_MIN; the newest change of value (a reset only when
 * reset_only), or INT64_MIN; drops the points before t. */
int64_t fc_drop_stale(struct pts *p, bool *ends_stale);
int64_t fc_last_change(const struct pts *p, bool reset_only);
void fc_cut_at(struct pts *p, int64_t t);
/* A family's selection as of this refresh, kept between refreshes while no
 * series is made or dropped (forecast_read.c); freed; a usage series'
 * limit, limit2 and start series looked up once per selection. */
int fc_keyed_get(struct store *st, struct keyed *k, const char *family, const char *match,
		     int64_t mint, int64_t now, uint64_t epoch, bool full,
		 const char *resource);
void fc_keyed_free(struct keyed *k);
void fc_pair_txt(struct keyed_txt *x, const struct keyed *lim, const struct keyed *lim2,
		     const struct keyed *starts);

/* ---- forecast_inc.c: the linear fit carried as sums ---- */
/* Frees a kept fit (NULL is fine); the state of a series by id (NULL on
 * ENOMEM); when a periodic look is due, staggered by id. */
void fc_inc_free(struct fc_inc *in);
struct sstate *fc_smap_get(struct smap *m, uint32_t id);
int64_t fc_stagger(int64_t now, uint32_t id, int64_t every, int64_t slot_ms);
/* Drops a series' kept sums; keeps the sums of a full linear fit of p;
 * moves them to r->now into *fit (false: read and fit it whole); whether
 * its history fit is still the line (false: fit it whole). */
void fc_inc_drop(struct sstate *ss);
void fc_inc_build(struct refresh *r, struct sstate *ss, const struct pts *p,
		      const struct fc_fit *fit, int64_t chg, double limit,
		      const struct fc_rate_acc *acc);
bool fc_inc_advance(struct refresh *r, struct sstate *ss, uint32_t id, bool usage_of_limit,
			bool steps_are_growth, struct fc_fit *fit);
bool fc_inc_history_keeps(struct refresh *r, struct sstate *ss, uint32_t id, enum fc_res res,
			      double limit, int64_t chg, int64_t hist_from);

/* ---- forecast_out.c: the table and its readers ---- */
/* A new fc_texts with one reference (NULL on ENOMEM); another reference;
 * drops one (NULL is fine), freeing it with the last. Any thread. */
struct fc_texts *fc_texts_new(void);
struct fc_texts *fc_texts_ref(struct fc_texts *x);
void fc_texts_unref(struct fc_texts *x);
/* Frees a table no one else holds (its references to texts dropped). */
void fc_table_free(struct fc_table *t);
/* A reference to a table (under forecaster.lock); a new entry (NULL past
 * FC_MAX_ENTRIES or on ENOMEM); the samples the tick copies, rendered once
 * (-ENOMEM); a fit's trend per second. */
void fc_table_unref(struct forecaster *f, struct fc_table *t);
struct fc_table *fc_table_ref(struct forecaster *f);
struct fc_entry *fc_table_add(struct fc_table *t);
int fc_render_samples(const struct forecaster *f, struct fc_table *t);
double fc_trend_per_second(const struct fc_fit *fit);

#endif
