/*
 * delta.h - blocks changed since the previous backup, from the WAL (see
 * delta.c for why reading only those is safe).
 */
#ifndef CAIRN_PG_DELTA_H
#define CAIRN_PG_DELTA_H

#include "pg.h"

typedef struct pg_delta pg_delta;

typedef struct pg_delta_params {
	const cairn_host *host;
	cairn_backup_writer *writer; /* "source" and "identity" already set */
	cairn_session *session;
	const char *pgdata;
	uint64_t start_lsn; /* this backup's start (redo point) */
	uint32_t timeline;
	uint64_t seg_size, page_size, blocks_per_seg;
	uint32_t block_size; /* bytes per chunk of relation files */
	uint64_t max_wal;    /* more WAL than this since the previous start: no delta */
} pg_delta_params;

/* A relation file the delta covers: which relation, which 1 GB segment. */
typedef struct pg_delta_file_t {
	uint32_t spc, db, rel, seg;
	uint64_t first_chunk; /* relation-wide number of the file's first block */
} pg_delta_file_t;

/*
 * Scans the WAL from the previous backup's start to this one's. The host
 * must have ABI 7 and a previous backup (host->prev_meta(w, "name")). *out is
 * NULL (and the reason logged) when the delta cannot be used; errors are
 * only failures to read the repository or memory.
 */
int pg_delta_prepare(const pg_delta_params *p, pg_delta **out);
/*
 * 1 when the file at backup path `path` (pgdata/base/<db>/<rel>[.<n>],
 * pgdata/global/<rel>[.<n>], tablespace/<spc>/<dir>/<db>/<rel>[.<n>]) is a
 * main fork the delta covers, with *f set; 0 when it must be read whole.
 */
int pg_delta_file(const pg_delta *d, const char *path, pg_delta_file_t *f);
/* 1 when block number `chunk` of the file may have changed. */
int pg_delta_changed(const pg_delta *d, const pg_delta_file_t *f, uint64_t chunk);
void pg_delta_free(pg_delta *d);

#endif
