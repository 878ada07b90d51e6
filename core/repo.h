/*
 * repo.h - an open repository: storage, keys, parameters, the chunk index,
 * framed object reading and writing, and locks.
 *
 * Layout (FORMAT.md): config, keys/<id>, packs/<2 hex>/<64 hex>,
 * index/<hex>, manifests/<name>, catalog/<name>, locks/<name>.
 */
#ifndef CAIRN_REPO_H
#define CAIRN_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "chunker.h"
#include "frame.h"
#include "storage.h"

#define CAIRN_PACK_ID_HEX 64

typedef struct cairn_index_entry {
	uint8_t id[CAIRN_HASH_LEN];
	uint32_t pack;      /* number in the index's pack table */
	uint32_t length;    /* stored frame length, header included */
	uint64_t offset;    /* of the frame in the pack */
	uint32_t plain_len;
} cairn_index_entry;

typedef struct cairn_index_run cairn_index_run;

/*
 * The chunk index: id -> where the chunk is stored. Entries live in a hash
 * table in memory; with a memory limit set (cairn_index_set_memory, as
 * backups and restores do) a full table is sorted and written to a run in
 * an unlinked temp file, and lookups that miss in memory search the runs
 * (a binary search over the first id of every page of a run, then one read
 * of that page). Memory then stays at the limit plus a fence of 32 bytes
 * per 256 spilled entries, whatever the size of the repository.
 * `entries` and `count` describe the in-memory part only: code that walks
 * every entry (maintenance) leaves the limit unset.
 */
typedef struct cairn_index {
	cairn_index_entry *entries;
	size_t count, cap;
	uint32_t *slots; /* open addressing: entry number + 1, 0 empty */
	size_t slot_cap;
	char (*packs)[CAIRN_PACK_ID_HEX + 1];
	size_t pack_count, pack_cap;
	size_t spill_at;       /* in-memory entries that make a run; 0: never */
	uint64_t memory;       /* the limit it was computed from */
	cairn_index_run *runs; /* oldest first */
	size_t run_count;
	uint64_t spilled;      /* entries in runs */
} cairn_index;

typedef struct cairn_repo {
	cairn_store *store;
	cairn_keys keys;
	char id[33];
	int codec, level;             /* for new data, from the compression setting */
	cairn_chunker_params cdc;     /* repository's content-defined chunking */
	cairn_gear gear;
	uint64_t pack_size;
	cairn_index index;
	int index_loaded;
} cairn_repo;

/*
 * Opens the repository at url. With create set, a missing repository is
 * created (encrypted when a key file or passphrase is configured); without
 * it, CAIRN_ENOTFOUND. Keys come from the settings.
 */
int cairn_repo_open(cairn_repo **out, const char *url, int create);
void cairn_repo_free(cairn_repo *repo);

/* Reads every index object into repo->index (once). */
int cairn_repo_load_index(cairn_repo *repo);
/*
 * The same with the in-memory part bounded by the setting index-memory
 * (backups and restores; maintenance walks every entry and uses the above).
 */
int cairn_repo_load_index_bounded(cairn_repo *repo);

/* ---- index ---- */
/*
 * The entry of a chunk, or NULL. An entry found in a run is copied to a
 * buffer of the calling thread: the pointer is valid until that thread's
 * next find. Safe on several threads while nobody adds.
 */
const cairn_index_entry *cairn_index_find(const cairn_index *idx, const uint8_t id[CAIRN_HASH_LEN]);
/* The same, looking only at the in-memory part (no reads). */
const cairn_index_entry *cairn_index_find_memory(const cairn_index *idx,
                                                 const uint8_t id[CAIRN_HASH_LEN]);
/*
 * Adds an entry unless its id is already in memory (an id that is only in
 * a run may be added again: both entries are valid places of the chunk).
 */
int cairn_index_add(cairn_index *idx, const cairn_index_entry *e);
/*
 * Bounds the in-memory part at about `bytes` (at least 64 KiB); beyond it
 * entries go to temp files in $TMPDIR (default /var/tmp). Before any add.
 */
int cairn_index_set_memory(cairn_index *idx, uint64_t bytes);
/* Entries in memory and in runs. */
uint64_t cairn_index_size(const cairn_index *idx);
/* Number of the pack in the pack table, adding it when new. */
int cairn_index_pack(cairn_index *idx, const char *pack_hex, uint32_t *out);
void cairn_index_free(cairn_index *idx);
/* Parses one index object's text into idx. */
int cairn_index_parse(cairn_index *idx, const char *text, size_t len);
/* "packs/ab/abcd..." for a pack id. */
void cairn_pack_key(const char *pack_hex, char *out, size_t len);

/* ---- framed objects ---- */
typedef struct cairn_objwriter cairn_objwriter;
/* Streams an object of `type` to key in frames of at most 1 MiB plaintext. */
int cairn_objwriter_begin(cairn_objwriter **out, cairn_repo *repo, const char *key,
                          cairn_object_type type);
int cairn_objwriter_write(cairn_objwriter *w, const void *data, size_t len);
int cairn_objwriter_printf(cairn_objwriter *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes the last frame and makes the object visible; frees w. */
int cairn_objwriter_commit(cairn_objwriter *w);
/* Discards; frees w; accepts NULL. */
void cairn_objwriter_abort(cairn_objwriter *w);

typedef struct cairn_objreader cairn_objreader;
int cairn_objreader_open(cairn_objreader **out, cairn_repo *repo, const char *key,
                         cairn_object_type type);
/*
 * Next frame's plaintext (owned by the reader, valid until the next call):
 * 1 and data set, 0 after the last frame (checking nothing follows it), or a
 * negative code with a message naming the object and offset.
 */
int cairn_objreader_frame(cairn_objreader *r, const uint8_t **data, size_t *len);
/* Next text line without its '\n' (NUL-terminated, owned by the reader); 1, 0 at end, < 0. */
int cairn_objreader_line(cairn_objreader *r, char **line);
/* Offset of the next frame in the object. */
uint64_t cairn_objreader_offset(const cairn_objreader *r);
/* Header, offset and stored length of the frame the last call returned. */
const cairn_frame_header *cairn_objreader_last(const cairn_objreader *r, uint64_t *offset,
                                               uint64_t *length);
void cairn_objreader_free(cairn_objreader *r);

/* Writes a whole small object; reads a whole object into out. */
int cairn_repo_put_object(cairn_repo *repo, const char *key, cairn_object_type type,
                          const void *data, size_t len);
int cairn_repo_get_object(cairn_repo *repo, const char *key, cairn_object_type type,
                          cairn_buf *out);

/* ---- locks ---- */
/*
 * Takes a shared (backups) or exclusive (deletion, garbage collection) lock.
 * A lock of a dead process on this host, or older than lock-stale-after from
 * another host, is ignored. CAIRN_ELOCKED names the holder.
 */
int cairn_lock_acquire(cairn_repo *repo, int exclusive, const char *what, char **out_key);
void cairn_lock_release(cairn_repo *repo, char *key);

/* Random lowercase hex of 2*bytes characters into out. */
int cairn_random_hex(char *out, size_t bytes);

#endif
