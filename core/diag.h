/*
 * diag.h - collected diagnostics (errors and warnings) with file:line:column.
 * Loading and validating a DAG reports every problem it finds, not only the
 * first: each step appends here and the caller prints the whole list.
 */
#ifndef SL_DIAG_H
#define SL_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef enum sl_diag_severity { SL_DIAG_ERROR = 0, SL_DIAG_WARNING = 1 } sl_diag_severity_t;

/** A position in a source file, 1-based; line 0 = no position known. */
typedef struct sl_pos {
  int line;
  int col;
} sl_pos_t;

/** No position known (use in macro arguments, where a compound literal's comma breaks). */
static const sl_pos_t SL_NOPOS = {0, 0};

typedef struct sl_diag {
  sl_diag_severity_t severity;
  char *file; /* owned; may be NULL */
  sl_pos_t pos;
  char *message; /* owned */
} sl_diag_t;

typedef struct sl_diag_list {
  sl_diag_t *items;
  size_t count;
  size_t capacity;
  size_t errors;
} sl_diag_list_t;

void sl_diag_init(sl_diag_list_t *list);
void sl_diag_free(sl_diag_list_t *list);
/** Append a diagnostic; file may be NULL, pos.line 0 means "no position". */
void sl_diag_add(sl_diag_list_t *list, sl_diag_severity_t sev, const char *file, sl_pos_t pos,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define sl_diag_error(list, file, pos, ...) sl_diag_add((list), SL_DIAG_ERROR, (file), (pos), __VA_ARGS__)
/** Sort by file, line, column (stable), so output reads top to bottom. */
void sl_diag_sort(sl_diag_list_t *list);
/** Print "file:line:col: error: message" lines. */
void sl_diag_print(const sl_diag_list_t *list, FILE *out);

#endif
