/*
 * promql_int.h - what the PromQL engine's files share and nobody else sees:
 * the syntax tree the parser builds and the evaluator walks, the function
 * table, and label-set helpers. Private to storage/promql*.c.
 */
#ifndef MONITOR_PROMQL_INT_H
#define MONITOR_PROMQL_INT_H

#include "storage/promql.h"
#include "storage/storage.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- tokens ---------------------------------------------------------------- */

enum tok {
	T_EOF, T_ERROR, T_IDENT, T_METRIC_IDENT, T_NUMBER, T_STRING, T_DURATION,
	T_LPAREN, T_RPAREN, T_LBRACE, T_RBRACE, T_LBRACKET, T_RBRACKET, T_COMMA,
	T_EQL, T_COLON, T_AT,
	/* operators */
	T_OPS_START,
	T_ADD, T_SUB, T_MUL, T_MOD, T_DIV, T_LAND, T_LOR, T_LUNLESS, T_EQLC, T_NEQ,
	T_LTE, T_LSS, T_GTE, T_GTR, T_EQL_REGEX, T_NEQ_REGEX, T_POW, T_ATAN2,
	T_OPS_END,
	/* aggregators */
	T_AGG_START,
	T_SUM, T_AVG, T_COUNT, T_MIN, T_MAX, T_GROUP, T_STDDEV, T_STDVAR, T_TOPK,
	T_BOTTOMK, T_COUNT_VALUES, T_QUANTILE,
	T_AGG_END,
	/* keywords */
	T_KW_START,
	T_OFFSET, T_BY, T_WITHOUT, T_ON, T_IGNORING, T_GROUP_LEFT, T_GROUP_RIGHT,
	T_BOOL, T_START, T_END,
	T_KW_END,
};

struct token {
	enum tok t;
	int pos;                     /* byte offset in the query */
	int len;
	const char *s;               /* points into the query; ERROR: the message */
};

/* ---- the syntax tree ------------------------------------------------------- */

enum node_kind {
	N_NUMBER, N_STRING, N_VSEL, N_MSEL, N_SUBQ, N_CALL, N_AGG, N_BIN, N_UNARY, N_PAREN
};

enum at_kind { AT_NONE, AT_TIME, AT_START, AT_END };

enum card { CARD_ONE_TO_ONE, CARD_MANY_TO_ONE, CARD_ONE_TO_MANY, CARD_MANY_TO_MANY };

struct func;

struct node {
	enum node_kind kind;
	enum promql_value_type type;
	int pos, end;                /* byte range in the query */
	int depth;                   /* levels of nodes below and including this one */

	double num;                  /* N_NUMBER */
	char *str;                   /* N_STRING (unquoted) */

	/* N_VSEL (also the selector inside N_MSEL) */
	char *metric;                /* name outside the braces, or NULL */
	struct promql_matcher *m;
	size_t nm;
	/* N_VSEL, N_SUBQ: modifiers */
	int64_t offset_ms;
	bool has_offset;
	enum at_kind at;
	int64_t at_ms;
	/* N_MSEL, N_SUBQ */
	int64_t range_ms;
	int64_t step_ms;             /* N_SUBQ: 0 = the default step */

	struct node *expr;           /* N_MSEL: its N_VSEL; N_SUBQ, N_PAREN, N_UNARY, N_AGG */

	/* N_CALL */
	const struct func *fn;
	struct node **args;
	size_t nargs;

	/* N_AGG, N_BIN, N_UNARY: the operator token */
	enum tok op;
	struct node *param;          /* N_AGG: topk's k, quantile's q, count_values' label */
	char **grouping;             /* N_AGG: by/without labels; N_BIN: on/ignoring */
	size_t ngrouping;
	bool without;                /* N_AGG */
	bool has_grouping;

	struct node *lhs, *rhs;      /* N_BIN */
	bool ret_bool;
	enum card card;
	bool on;                     /* matching labels are on(...) (else ignoring) */
	bool has_matching;           /* on/ignoring was given */
	char **include;              /* group_left/right(...) labels */
	size_t ninclude;
	int op_pos;                  /* where the operator is, for errors */
};

/* Trees deeper than this are refused: evaluation recurses once a level. */
#define PROMQL_MAX_DEPTH 1000

struct promql_expr {
	struct node *root;
	struct arena arena;          /* every node and string */
	struct promql_regex **regexes; /* to free */
	size_t nregexes, capregexes;
	char *text;
};

/* ---- functions ---------------------------------------------------------------- */

enum func_id {
	F_ABS, F_ABSENT, F_ABSENT_OVER_TIME, F_ACOS, F_ACOSH, F_ASIN, F_ASINH, F_ATAN, F_ATANH,
	F_AVG_OVER_TIME, F_CEIL, F_CHANGES, F_CLAMP, F_CLAMP_MAX, F_CLAMP_MIN, F_COS, F_COSH,
	F_COUNT_OVER_TIME, F_DAYS_IN_MONTH, F_DAY_OF_MONTH, F_DAY_OF_WEEK, F_DAY_OF_YEAR,
	F_DEG, F_DELTA, F_DERIV, F_EXP, F_FLOOR, F_HISTOGRAM_QUANTILE, F_HOLT_WINTERS, F_HOUR,
	F_IDELTA, F_INCREASE, F_IRATE, F_LABEL_JOIN, F_LABEL_REPLACE, F_LAST_OVER_TIME, F_LN,
	F_LOG10, F_LOG2, F_MAX_OVER_TIME, F_MIN_OVER_TIME, F_MINUTE, F_MONTH, F_PI,
	F_PREDICT_LINEAR, F_PRESENT_OVER_TIME, F_QUANTILE_OVER_TIME, F_RAD, F_RATE, F_RESETS,
	F_ROUND, F_SCALAR, F_SGN, F_SIN, F_SINH, F_SORT, F_SORT_DESC, F_SQRT,
	F_STDDEV_OVER_TIME, F_STDVAR_OVER_TIME, F_SUM_OVER_TIME, F_TAN, F_TANH, F_TIME,
	F_TIMESTAMP, F_VECTOR, F_YEAR,
	F_FORECAST, F_FORECAST_EXHAUSTION,  /* through promql_opts.forecaster */
};

#define FUNC_MAX_ARGS 5
struct func {
	const char *name;
	enum func_id id;
	enum promql_value_type args[FUNC_MAX_ARGS];
	int nargs;
	int variadic;                /* 0: fixed; n > 0: up to n optional; -1: any */
	enum promql_value_type ret;
};
/* The function called name, or NULL. */
const struct func *promql_func_find(const char *name);

/* ---- label sets ------------------------------------------------------------------ */

/* An immutable label set, sorted by name, no empty values. */
struct labels {
	uint32_t n;
	uint64_t hash;
	struct promql_label l[];
};

const struct labels *labels_make(struct arena *a, const struct promql_label *l, size_t n);
const char *labels_get(const struct labels *ls, const char *name);
bool labels_equal(const struct labels *a, const struct labels *b);
int labels_cmp(const struct labels *a, const struct labels *b);
/* labels_cmp over two label arrays sorted by name: pair by pair by name,
 * then value, the shorter first when one is a prefix of the other. */
int label_list_cmp(const struct promql_label *a, size_t na, const struct promql_label *b,
		   size_t nb);
/* Copies of ls with changes; the same pointer when nothing changes. NULL
 * only when the arena is out of memory. */
const struct labels *labels_drop_name(struct arena *a, const struct labels *ls);
const struct labels *labels_keep(struct arena *a, const struct labels *ls, char *const *names,
				 size_t n);
const struct labels *labels_del(struct arena *a, const struct labels *ls, char *const *names,
				size_t n);
/* Sets name to value (value "" deletes it). value is copied when copy. */
const struct labels *labels_set(struct arena *a, const struct labels *ls, const char *name,
				const char *value);
void labels_format(const struct labels *ls, struct buf *b);
/* Hash of the labels named (on) or of all but the named and __name__. */
uint64_t labels_sig(const struct labels *ls, char *const *names, size_t n, bool on);
/* Do a and b agree on the labels that labels_sig(…, on) covers? */
bool labels_sig_equal(const struct labels *a, const struct labels *b, char *const *names,
		      size_t n, bool on);

/* The PromQL engine's name for store_label_name_valid (storage.h). */
static inline bool promql_valid_label_name(const char *s)
{
	return store_label_name_valid(s);
}

/* Go's strconv.FormatFloat(v, 'f', -1, 64) into out (at least 400 bytes). */
void promql_fmt_float(char *out, size_t size, double v);

#endif
