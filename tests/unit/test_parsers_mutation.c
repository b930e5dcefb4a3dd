/*
 * Mutation tests for the parsers: every DAG file in tests/bad_input/ and
 * examples/, and a set of JSON documents, mutated many times with a fixed
 * seed (byte flips, deletions, duplications, truncation, splices of YAML
 * punctuation), then loaded, validated, planned / scanned. The assertions
 * are the absence of crashes, hangs and leaks (this test runs in the
 * ASan+UBSan build too) and that every failed load leaves a diagnostic.
 * Deterministic: a failure reproduces with the same seed.
 * SLUICE_MUTATIONS=N raises the count per file (default 300) for a long run.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dag.h"
#include "json_scan.h"
#include "plan.h"
#include "registry.h"

static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static const char *const splices[] = {":", "- ", "{", "}", "[", "]", "\n", "  ", "\t", "\"",
                                      "'", "&a ", "*a", "#", "!!str ", "---\n", ",", "|\n",
                                      "from: ", "nodes:", "use: ", "parallelism: 99999999999",
                                      "key_by: ", ".errors", "\\u0000", "1e999"};

/* One random mutation of buf (len bytes, capacity cap); returns the new length. */
static size_t mutate(char *buf, size_t len, size_t cap) {
  size_t pos = len ? (size_t)(rnd() % len) : 0;
  switch (rnd() % 6) {
  case 0: /* flip a byte */
    if (len) buf[pos] = (char)(rnd() & 0xff);
    break;
  case 1: { /* delete a run */
    size_t n = 1 + (size_t)(rnd() % 8);
    if (pos + n > len) n = len - pos;
    memmove(buf + pos, buf + pos + n, len - pos - n);
    len -= n;
    break;
  }
  case 2: { /* duplicate a run */
    size_t n = 1 + (size_t)(rnd() % 32);
    if (pos + n > len) n = len - pos;
    if (len + n > cap) break;
    memmove(buf + pos + n, buf + pos, len - pos);
    len += n;
    break;
  }
  case 3: /* truncate */
    len = pos;
    break;
  default: { /* splice in YAML/JSON punctuation or a key */
    const char *s = splices[rnd() % (sizeof(splices) / sizeof(splices[0]))];
    size_t n = strlen(s);
    if (len + n > cap) break;
    memmove(buf + pos + n, buf + pos, len - pos);
    memcpy(buf + pos, s, n);
    len += n;
    break;
  }
  }
  return len;
}

static int mutations_per_file(void) {
  const char *env = getenv("SLUICE_MUTATIONS");
  int n = env ? atoi(env) : 300;
  return n > 0 ? n : 300;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  *len = fread(buf, 1, (size_t)n, f);
  fclose(f);
  return buf;
}

static void run_dag_corpus(const char *dir, sl_registry_t *reg, int per_file) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(d)) != NULL) {
    if (!strstr(e->d_name, ".yaml")) continue;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    size_t len = 0;
    char *orig = read_file(path, &len);
    if (!orig) continue;
    files++;
    size_t cap = len * 2 + 256;
    char *buf = malloc(cap);
    for (int m = 0; m < per_file; m++) {
      memcpy(buf, orig, len);
      size_t n = len;
      int k = 1 + (int)(rnd() % 4);
      for (int i = 0; i < k; i++) n = mutate(buf, n, cap);
      sl_diag_list_t diags;
      sl_diag_init(&diags);
      sl_dag_t *dag = sl_dag_load_string(buf, n, "mutant.yaml", &diags);
      if (!dag) {
        /* No DAG at all must come with a reason. */
        assert_true(diags.errors > 0);
      } else {
        sl_dag_validate(dag, reg, &diags);
        if (diags.errors == 0) {
          sl_plan_t *plan = sl_plan_build(dag, &diags);
          sl_plan_free(plan);
        }
        sl_dag_free(dag);
      }
      FILE *null = fopen("/dev/null", "w");
      sl_diag_sort(&diags);
      sl_diag_print(&diags, null);
      fclose(null);
      sl_diag_free(&diags);
    }
    free(buf);
    free(orig);
  }
  closedir(d);
  assert_true(files > 0);
}

static void dag_files_survive_mutation(void **st) {
  rng_state = 20261124;
  sl_registry_t *reg = sl_registry_new();
  sl_registry_add_dir(reg, SLUICE_TEST_PLUGIN_DIR);
  int n = mutations_per_file();
  run_dag_corpus(SLUICE_TEST_SOURCE_DIR "/tests/bad_input", reg, n);
  run_dag_corpus(SLUICE_TEST_SOURCE_DIR "/examples/quickstart", reg, n * 4);
  sl_registry_free(reg);
}

static void json_scan_survives_mutation(void **st) {
  static const char *const docs[] = {
      "{\"ts\":1700000000000,\"user_id\":\"u42\",\"product_id\":\"p17\",\"page\":\"/p\"}",
      "{\"a\":{\"b\":[1,2,{\"c\":\"d\\\"e\"}]},\"k\":\"v\",\"n\":-1.5e3,\"t\":true,\"z\":null}",
      "  {  \"x\" :  \"\\\\\" , \"y\":[ ] }  ",
  };
  static const char *const fields[] = {"ts", "product_id", "k", "y", "x", "missing", ""};
  rng_state = 42;
  int n = mutations_per_file() * 20;
  for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
    size_t len = strlen(docs[d]), cap = len * 2 + 64;
    for (int m = 0; m < n; m++) {
      /* Exactly-sized heap copy: ASan flags any read past the length. */
      char *tmp = malloc(cap);
      memcpy(tmp, docs[d], len);
      size_t l = len;
      int k = 1 + (int)(rnd() % 3);
      for (int i = 0; i < k; i++) l = mutate(tmp, l, cap);
      char *exact = malloc(l ? l : 1);
      memcpy(exact, tmp, l);
      free(tmp);
      for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        sl_json_value_t v;
        int rc = sl_json_scan_get(exact, l, fields[f], &v);
        if (rc == 0) {
          /* A found value lies inside the document. */
          assert_true(v.ptr >= exact && v.ptr + v.len <= exact + l);
        } else {
          assert_true(rc == SL_ENOTFOUND || rc == SL_ERECORD);
        }
      }
      free(exact);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dag_files_survive_mutation),
      cmocka_unit_test(json_scan_survives_mutation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
