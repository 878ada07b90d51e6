/*
 * backup.h - writing and reading one backup.
 *
 * Writing: entries -> chunks (content-defined or fixed, per entry) -> chunk
 * id -> dedup lookup in the repository index -> frame (compress, encrypt)
 * -> pack. On commit: the last pack, the index object of the new packs, the
 * manifest, and last the catalog entry that makes the backup exist. A
 * writer freed without commit leaves no listed backup (its packs are
 * garbage for the collector).
 *
 * Reading: the catalog entry, then the manifest streamed entry by entry;
 * chunk data is fetched by range from packs and verified only when read.
 */
#ifndef CAIRN_BACKUP_H
#define CAIRN_BACKUP_H

#include <cairn/plugin.h>

#include "manifest.h"
#include "repo.h"

/* Starts a backup of `engine`; takes a shared repository lock. */
int cairn_backup_writer_new(cairn_backup_writer **out, cairn_repo *repo, const char *engine);
int cairn_backup_writer_entry_begin(cairn_backup_writer *w, const cairn_entry *entry);
int cairn_backup_writer_entry_write(cairn_backup_writer *w, const void *data, size_t len);
int cairn_backup_writer_entry_end(cairn_backup_writer *w);
/* Content-defined chunk sizes of the current entry (ABI 3, see plugin.h). */
int cairn_backup_writer_entry_chunk_size(cairn_backup_writer *w, size_t avg_size);
int cairn_backup_writer_meta_set(cairn_backup_writer *w, const char *key, const char *value);
/*
 * When the previous backup of the same source (meta "source", and
 * "identity" when set) has a regular file at entry->path with the same size
 * and modification time, modified at least a second before that backup
 * started, records the entry with its chunks and returns 1: the caller then
 * skips entry_begin/write/end. Returns 0 when the file must be read.
 * Setting skip-unchanged=false turns it off.
 */
int cairn_backup_writer_entry_reuse(cairn_backup_writer *w, const cairn_entry *entry);
/* ABI 7, see plugin.h: meta of the backup entry_reuse takes files from. */
const char *cairn_backup_writer_prev_meta(cairn_backup_writer *w, const char *key);
/* ABI 7, see plugin.h: the next length bytes of a fixed-block entry as in that backup. */
int cairn_backup_writer_entry_copy_prev(cairn_backup_writer *w, uint64_t length);
/* Finishes the backup; its summary (name, sizes) is copied to *info when not NULL. */
int cairn_backup_writer_commit(cairn_backup_writer *w, cairn_backup_info *info);
/* Aborts when not committed; releases the lock; accepts NULL. */
void cairn_backup_writer_free(cairn_backup_writer *w);

/* Reads a catalog entry. */
int cairn_backup_info_load(cairn_repo *repo, const char *name, cairn_backup_info *out);
/*
 * Lists catalog entries sorted by end time (oldest first); engine NULL for
 * all. The caller frees each with cairn_backup_info_free, then the array.
 */
int cairn_backup_list(cairn_repo *repo, const char *engine, cairn_backup_info **out,
                      size_t *count);
/* Resolves NAME or LATEST (newest of `engine`, or of all when NULL). */
int cairn_backup_resolve(cairn_repo *repo, const char *engine, const char *name,
                         char out[CAIRN_NAME_MAX]);

int cairn_backup_reader_open(cairn_backup_reader **out, cairn_repo *repo, const char *name);
int cairn_backup_reader_next(cairn_backup_reader *r, const cairn_entry **out);
int cairn_backup_reader_read(cairn_backup_reader *r, void *buf, size_t len, size_t *out_len);
const char *cairn_backup_reader_meta(cairn_backup_reader *r, const char *key);
const cairn_backup_info *cairn_backup_reader_info(cairn_backup_reader *r);
/* Checks the manifest was read to its end line. */
int cairn_backup_reader_finish(cairn_backup_reader *r);
void cairn_backup_reader_free(cairn_backup_reader *r);

/*
 * Calls fn with every "c" line held by list chunk `id` (an "l" line of a
 * manifest: long chunk lists are stored as chunks themselves, so an
 * unchanged list is deduplicated like data).
 */
int cairn_chunk_list_each(cairn_repo *repo, const uint8_t id[CAIRN_HASH_LEN], uint32_t len,
                          int (*fn)(void *arg, const char *line), void *arg);

/* Fetches and verifies one chunk into out (appending). */
int cairn_chunk_fetch(cairn_repo *repo, const uint8_t id[CAIRN_HASH_LEN], uint32_t plain_len,
                      cairn_buf *out);

/* The session a driver reaches through host->writer_session/reader_session. */
void cairn_backup_writer_set_session(cairn_backup_writer *w, cairn_session *s);
cairn_session *cairn_backup_writer_session(cairn_backup_writer *w);
void cairn_backup_reader_set_session(cairn_backup_reader *r, cairn_session *s);
cairn_session *cairn_backup_reader_session(cairn_backup_reader *r);

/* Set by signal handlers: long work stops with CAIRN_ECANCELED. */
extern volatile int cairn_interrupted;

#endif
