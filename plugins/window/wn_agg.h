/*
 * wn_agg.h - the window plugin's aggregates, behind one vtable.
 *
 * An aggregate keeps its accumulator in one of two ways:
 *  - WN_STORE_FIXED: a fixed number of bytes inside the pane (the per-slice
 *    or per-window record the operator keeps in value state): count, sum,
 *    min, max, avg. add/merge work on those bytes; the bytes are the
 *    serialized form (POD, host byte order).
 *  - WN_STORE_ITEMS: a collection of items, each a key (bytes) and a
 *    fixed-size value, which the operator keeps in map state, one entry
 *    per item: distinct (item = a value, no payload), top_n (item = a
 *    value, payload = its count or its sum of g), approx_distinct (one
 *    item with an empty key, payload = the 4 KiB HyperLogLog registers).
 *    A record updates one item (item_key), add/merge work on the item's
 *    payload, and the result is computed from the merged items of a window
 *    (a wn_tab_t: item key -> payload).
 *
 *  - WN_STORE_VAR: a user-defined aggregate (SDK 1.4 sl_aggregate_t, in C
 *    or Lua) whose accumulator is a byte string of varying length: one
 *    entry per pane in the same map state, with an empty item, the
 *    accumulator as its payload. window.c handles it through wn_udaf.h.
 * A user-defined aggregate with a fixed-size accumulator is a FIXED one
 * (wn_udaf.c). Pure: no host calls (a user-defined aggregate's callbacks
 * are the plugin's functions, not the host's).
 */
#ifndef WN_AGG_H
#define WN_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "wn_json.h"
#include "wn_tab.h"

enum { WN_STORE_FIXED = 1, WN_STORE_ITEMS = 2, WN_STORE_VAR = 3 };

enum wn_fn {
  WN_FN_COUNT = 1,
  WN_FN_SUM,
  WN_FN_MIN,
  WN_FN_MAX,
  WN_FN_AVG,
  WN_FN_DISTINCT,
  WN_FN_APPROX_DISTINCT,
  WN_FN_TOP_N,
  WN_FN_UDAF /* user-defined (wn_udaf.h) */
};

/** Arguments an aggregate may take (SL_AGG_ARGS_MAX of the SDK). */
#define WN_ARGS_MAX 8

/** What a field held in the current record (wn_val_t.type). */
enum { WN_VAL_NONE = 0, WN_VAL_STRING, WN_VAL_NUMBER, WN_VAL_BOOL };

/** Field index meaning "no field" (count; top_n without a weight). */
#define WN_FIELD_NONE (-1)

/** One input field of a record, as the aggregates see it. */
typedef struct wn_val {
  const char *s; /* the value as text: a string decoded, a number or boolean as written */
  size_t len;
  wn_num_t num;  /* when the field is a number */
  int type;      /* WN_VAL_*: set for fields with need_any */
} wn_val_t;

/** A field the aggregates read (deduplicated: sum(x), max(x) share one). */
typedef struct wn_field {
  char *name;     /* owned; JSON field name, or NULL for the record key */
  int is_key;     /* the record key (`$key` in the aggregate list) */
  int need_num;   /* some aggregate needs a number (sum/min/max/avg f, top_n g) */
  int need_value; /* some aggregate needs a scalar value (distinct, approx_distinct, top_n f) */
  int need_any;   /* a user-defined aggregate takes it: a string, number or boolean */
  const char *first_user; /* function name of the first aggregate needing it (messages) */
} wn_field_t;

struct wn_agg;

typedef struct wn_agg_ops {
  const char *fn; /* function name as written */
  int storage;    /* WN_STORE_* */
  /** Bytes of the accumulator (FIXED) or of one item's payload (ITEMS). */
  size_t (*size)(const struct wn_agg *a);
  /** Initialize an accumulator / payload. */
  void (*init)(const struct wn_agg *a, void *acc);
  /** Add one record; returns 1 when the accumulator / payload changed. */
  int (*add)(const struct wn_agg *a, void *acc, const wn_val_t *vals);
  /** dst += src. */
  void (*merge)(const struct wn_agg *a, void *dst, const void *src);
  /** ITEMS: the item a record updates. */
  void (*item_key)(const struct wn_agg *a, const wn_val_t *vals, const void **key, size_t *len);
  /**
   * ITEMS: items carry no payload, so an add needs no read (distinct).
   */
  int set_only;
  /** Append the result as JSON: FIXED from acc, ITEMS from items (key -> payload). */
  void (*result)(const struct wn_agg *a, const void *acc, const wn_tab_t *items, wn_buf_t *out);
} wn_agg_ops_t;

typedef struct wn_agg {
  const wn_agg_ops_t *ops;
  enum wn_fn fn;
  char *name;     /* owned: output name */
  int field;      /* index into wn_aggs_t.fields, or WN_FIELD_NONE (count) */
  int weight;     /* top_n's g: field index, or WN_FIELD_NONE */
  uint32_t n;     /* top_n's n */
  uint32_t index; /* position in the list (0..) */
  size_t acc_off; /* FIXED: offset of the accumulator in a pane's accumulator area */
  int column;     /* 1-based column of the item in the aggregate string */
  struct wn_udaf *udaf;      /* WN_FN_UDAF: the function (owned by wn_aggs_t.udafs) */
  int args[WN_ARGS_MAX];     /* WN_FN_UDAF: field index of each argument */
  uint32_t nargs;
} wn_agg_t;

/** A parsed aggregate list. */
typedef struct wn_aggs {
  wn_agg_t *v;
  size_t n;
  wn_field_t *fields;
  size_t nfields;
  size_t acc_size;  /* total FIXED accumulator bytes (multiple of 8) */
  size_t items;     /* number of ITEMS aggregates */
  uint32_t layout;  /* fingerprint of the accumulator layout (checked on state read) */
  struct wn_udaf **udafs; /* the user-defined functions the list uses, one per name */
  size_t nudafs;
  int fallible;     /* some add can refuse a record (a user-defined aggregate) */
} wn_aggs_t;

#define WN_TOP_N_MAX 1000
#define WN_AGGS_MAX 64

/** The ops of a function name, or NULL. */
const wn_agg_ops_t *wn_agg_ops_find(const char *name, size_t len);

void wn_aggs_free(wn_aggs_t *a);
/** Offsets and layout, after the list is parsed (wn_parse.c calls it). */
void wn_aggs_finish(wn_aggs_t *a);

/** Init every FIXED accumulator of an accumulator area. */
void wn_aggs_init(const wn_aggs_t *a, void *area);
/** Merge an accumulator area into another. */
void wn_aggs_merge(const wn_aggs_t *a, void *dst, const void *src);

#endif
