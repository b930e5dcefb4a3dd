/*
 * state_rocksdb.h - what the RocksDB keyed-state backend (state_rocksdb.c)
 * offers besides state.h: its tuned options, so that a benchmark can open a
 * bare RocksDB configured exactly like the backend's.
 */
#ifndef SL_STATE_ROCKSDB_H
#define SL_STATE_ROCKSDB_H

#include <rocksdb/c.h>

/**
 * New options as the backend opens an instance's database with (shared
 * block cache, bloom filters, write buffers, compression; see the top of
 * state_rocksdb.c), create_if_missing set. The caller destroys them.
 */
rocksdb_options_t *sl_state_rocksdb_options(void);

/** Write options of the backend: no write-ahead log (checkpoints give durability). */
rocksdb_writeoptions_t *sl_state_rocksdb_writeoptions(void);

struct sl_keyed_state;
/**
 * Benchmarks and tests: flush a RocksDB instance's memtables and compact
 * its whole key range (so that two databases compared are in the same
 * shape). 0, or -1 with a message (also when ks is not a RocksDB instance).
 */
int sl_state_rocksdb_compact(struct sl_keyed_state *ks, char *err, size_t errlen);

#endif
