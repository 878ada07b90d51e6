/*
 * storage.h - the core's side of a storage: opening by URL, error wording,
 * and retries with backoff for idempotent operations.
 *
 * Plugins report failures with short messages; this layer adds which object
 * of which repository was involved, so the user gets one complete line.
 */
#ifndef CAIRN_STORAGE_H
#define CAIRN_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <cairn/plugin.h>

#include "buf.h"

typedef struct cairn_store {
	cairn_storage *st;
	const cairn_storage_plugin *plugin;
	char *display_url; /* without credentials */
} cairn_store;

/* Opens the storage whose plugin handles the URL's scheme. Frees with close. */
int cairn_store_open(cairn_store **out, const char *url);
void cairn_store_close(cairn_store *s);

/* Writes a whole object. */
int cairn_store_put(cairn_store *s, const char *key, const void *data, size_t len);
/* Appends length bytes (CAIRN_TO_END: all) from offset to out. */
int cairn_store_get(cairn_store *s, const char *key, uint64_t offset, uint64_t length,
                    cairn_buf *out);
int cairn_store_get_sink(cairn_store *s, const char *key, uint64_t offset, uint64_t length,
                         cairn_sink_fn sink, void *arg);
int cairn_store_stat(cairn_store *s, const char *key, cairn_stat *out);
int cairn_store_list(cairn_store *s, const char *prefix, cairn_list_fn cb, void *arg);
int cairn_store_remove(cairn_store *s, const char *const *keys, size_t count);

/* The keys (and sizes) under a prefix, sorted by key. */
typedef struct cairn_keylist {
	char **keys;
	uint64_t *sizes;
	size_t count, cap;
} cairn_keylist;

int cairn_store_list_keys(cairn_store *s, const char *prefix, cairn_keylist *out);
void cairn_keylist_free(cairn_keylist *l);

/* Streaming upload; commit or abort frees the upload. */
int cairn_store_upload_begin(cairn_store *s, const char *key, cairn_upload **out);
int cairn_store_upload_write(cairn_store *s, cairn_upload *up, const char *key, const void *data,
                             size_t len);
int cairn_store_upload_commit(cairn_store *s, cairn_upload *up, const char *key);
void cairn_store_upload_abort(cairn_store *s, cairn_upload *up);

#endif
