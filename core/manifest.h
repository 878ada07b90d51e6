/*
 * manifest.h - text records of manifests and catalog entries (FORMAT.md).
 *
 * Manifest lines:  "entry T MODE UID GID MTIME NSEC SIZE PATH [TARGET]",
 * "c CHUNKID LEN" for each chunk of the entry before it, "meta KEY VALUE",
 * and a closing "end ENTRIES SIZE". Fields are separated by one space;
 * PATH, TARGET, KEY and VALUE are escaped (bytes <= 0x20, 0x7f and '%' as %XX).
 */
#ifndef CAIRN_MANIFEST_H
#define CAIRN_MANIFEST_H

#include <stdint.h>
#include <cairn/plugin.h>

#include "buf.h"
#include "crypto.h"

#define CAIRN_NAME_MAX 128

/* Appends the escaped form of s. */
int cairn_escape(cairn_buf *out, const char *s);
/* Unescapes in place; CAIRN_ECORRUPT on a bad escape or an embedded NUL. */
int cairn_unescape(char *s);

/* Appends the "entry ..." line (with '\n') for e. */
int cairn_manifest_entry_line(cairn_buf *out, const cairn_entry *e, uint64_t size);
/*
 * Parses an "entry" line in place (line is modified); pointers in *e point
 * into line. Checks the path is safe (relative, no "..").
 */
int cairn_manifest_entry_parse(char *line, cairn_entry *e);
/* Parses a "c ID LEN" line. */
int cairn_manifest_chunk_parse(const char *line, uint8_t id[CAIRN_HASH_LEN], uint32_t *len);
/* Parses an "l ID LEN" line: a chunk holding part of an entry's "c" lines. */
int cairn_manifest_list_parse(const char *line, uint8_t id[CAIRN_HASH_LEN], uint32_t *len);

/* A catalog entry: what backup-list shows without reading manifests. */
typedef struct cairn_meta {
	char *key;
	char *value;
} cairn_meta;

typedef struct cairn_backup_info {
	char name[CAIRN_NAME_MAX];
	char engine[64];
	int64_t start_time; /* unix seconds */
	int64_t end_time;
	uint64_t size;        /* logical bytes */
	uint64_t stored_size; /* new stored bytes this backup added */
	uint64_t entries;
	uint64_t chunks;
	uint64_t reused_bytes; /* not written to the catalog: bytes of files not read again */
	cairn_meta *meta;
	size_t meta_count;
} cairn_backup_info;

int cairn_backup_info_meta_set(cairn_backup_info *info, const char *key, const char *value);
const char *cairn_backup_info_meta(const cairn_backup_info *info, const char *key);
int cairn_backup_info_format(const cairn_backup_info *info, cairn_buf *out);
int cairn_backup_info_parse(cairn_backup_info *info, char *text);
void cairn_backup_info_free(cairn_backup_info *info);

/* Backup names: [A-Za-z0-9._-], 1..127 characters. */
int cairn_backup_name_valid(const char *name);
/* "2026-11-26T18:30:12Z" */
void cairn_format_time(int64_t t, char *out, size_t len);
/* Parses ISO 8601 UTC ("2026-11-26", "2026-11-26T18:30", "...:12Z", "+02:00") or "@unix". */
int cairn_parse_time(const char *text, int64_t *out);

#endif
