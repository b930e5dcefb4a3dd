/*
 * kafka_conf.c - a librdkafka client configuration from a node's config:
 * `brokers`, then the `librdkafka:` map passed through key by key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

const char *kafka_conf_value(sl_ctx_t *ctx, const char *key) {
  size_t n = sl_config_count(ctx), plen = strlen(KAFKA_PASS_PREFIX);
  for (size_t i = 0; i < n; i++) {
    sl_config_entry_t e;
    if (sl_config_at(ctx, i, &e) != 0) continue;
    if (strncmp(e.key, KAFKA_PASS_PREFIX, plen) == 0 && strcmp(e.key + plen, key) == 0)
      return e.text;
  }
  return NULL;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, const char *what,
                    char *err, size_t errlen) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "%s%s: %s", what, key, errstr);
    return -1;
  }
  return 0;
}

int kafka_conf_default(sl_ctx_t *ctx, rd_kafka_conf_t *conf, const char *key, const char *value,
                       char *err, size_t errlen) {
  if (kafka_conf_value(ctx, key)) return 0; /* the user's own setting wins */
  return conf_set(conf, key, value, "", err, errlen);
}

int kafka_topic_name_ok(const char *name, char *err, size_t errlen) {
  size_t n = strlen(name);
  if (n == 0 || n > 249) {
    snprintf(err, errlen, "topic '%s': a name has 1 to 249 characters", name);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-')) {
      snprintf(err, errlen, "topic '%s': a name has only letters, digits, '.', '_' and '-'", name);
      return -1;
    }
  }
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    snprintf(err, errlen, "topic '%s': '.' and '..' are not topic names", name);
    return -1;
  }
  return 0;
}

char *kafka_conf_cluster(const rd_kafka_conf_t *conf) {
  const char *keys[] = {"bootstrap.servers", "metadata.broker.list"};
  for (size_t k = 0; k < 2; k++) {
    size_t n = 0;
    if (rd_kafka_conf_get(conf, keys[k], NULL, &n) != RD_KAFKA_CONF_OK || n <= 1) continue;
    char *buf = malloc(n);
    if (buf && rd_kafka_conf_get(conf, keys[k], buf, &n) == RD_KAFKA_CONF_OK && buf[0]) return buf;
    free(buf);
  }
  return NULL;
}

rd_kafka_conf_t *kafka_conf_new(sl_ctx_t *ctx, int *embedded, char *err, size_t errlen) {
  *embedded = 0;
  const char *brokers = sl_config_string(ctx, "brokers");
  if (!brokers || !*brokers) {
    snprintf(err, errlen, "config 'brokers' is empty (host:port,... or embedded)");
    return NULL;
  }
  if (strcmp(brokers, "embedded") == 0) {
    brokers = kafka_embedded_acquire(err, errlen);
    if (!brokers) return NULL;
    *embedded = 1;
  }
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (conf_set(conf, "bootstrap.servers", brokers, "", err, errlen) != 0) goto fail;
  /* librdkafka's own log lines go to stderr through its default logger;
   * only warnings and errors unless the user asks for more. */
  if (kafka_conf_default(ctx, conf, "log_level", "4", err, errlen) != 0) goto fail;
  size_t n = sl_config_count(ctx), plen = strlen(KAFKA_PASS_PREFIX);
  for (size_t i = 0; i < n; i++) {
    sl_config_entry_t e;
    if (sl_config_at(ctx, i, &e) != 0 || strncmp(e.key, KAFKA_PASS_PREFIX, plen) != 0) continue;
    if (conf_set(conf, e.key + plen, e.text, "config 'librdkafka' key ", err, errlen) != 0)
      goto fail;
  }
  return conf;
fail:
  rd_kafka_conf_destroy(conf);
  if (*embedded) kafka_embedded_release();
  *embedded = 0;
  return NULL;
}
