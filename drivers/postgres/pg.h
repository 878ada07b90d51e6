/*
 * pg.h - shared parts of the PostgreSQL driver ("pg", alias "postgres").
 *
 * The driver is split by task: pg.c (registration, settings, libpq and
 * WAL-name helpers), backup.c (base backups), restore.c (backup-fetch,
 * recovery settings, partial restore) and wal.c (wal-push, wal-fetch,
 * wal-verify, pruning of WAL no backup needs).
 *
 * Layout of a backup, as entries:
 *   relmap                  stream: databases and user relations (partial restore)
 *   pgdata, pgdata/...      the data directory, as PostgreSQL's base backup has it
 *   tablespace/<oid>/...    the contents of each tablespace
 *   pgdata/backup_label     last but one, from pg_backup_stop
 *   pgdata/tablespace_map   last, from pg_backup_stop (only with tablespaces)
 *
 * WAL in the repository (names under logs/pg/):
 *   wal/<timeline>/<file>   segments, .partial and .backup files: the
 *                           timeline is the first 8 hex digits of the name
 *   timelines/<tli>.history timeline history files
 */
#ifndef CAIRN_PG_H
#define CAIRN_PG_H

#include <cairn/plugin.h>
#include <cairn/util.h>

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* Longest repository name of a WAL file: "timelines/" or "wal/TTTTTTTT/" + name. */
#define PG_LOG_NAME_MAX 128

/* Bounds the memory of reading and writing files. */
#define PG_IO_BUFFER_SIZE (1024 * 1024)

/* PostgreSQL's FirstNormalObjectId: OIDs below it belong to the system. */
#define PG_FIRST_NORMAL_OID 16384u

/* ---- pg.c ---- */

int pg_out_of_memory(const cairn_host *host);
int pg_syscall_error(const cairn_host *host, int err, const char *action, const char *path);

/*
 * Connects with the conninfo setting (and the PG* variables libpq reads);
 * `dbname`, when not NULL, overrides the database. On failure returns a
 * negative code with a message and hint; *out is NULL.
 */
int pg_connect(const cairn_host *host, const char *dbname, PGconn **out);
/*
 * Runs a query that must return tuples (or, with want_tuples 0, succeed).
 * On failure the result is cleared and a message recorded.
 */
int pg_query(const cairn_host *host, PGconn *conn, const char *sql, int want_tuples,
             PGresult **out);

/* "X/Y" to a 64-bit LSN; -1 when it is not one. */
int pg_parse_lsn(const char *text, uint64_t *out);
void pg_format_lsn(uint64_t lsn, char *out, size_t len);
/* The 24-character name of segment number `segno` (LSN / seg_size). */
void pg_segment_name(uint32_t timeline, uint64_t segno, uint64_t seg_size, char out[25]);
/* Parses a 24-hex segment name (a suffix after position 24 is ignored). */
int pg_parse_segment_name(const char *name, uint32_t *timeline, uint64_t *segno,
                          uint64_t seg_size);
int pg_is_hex(const char *s, size_t len);

/*
 * Maps a file name PostgreSQL gives (%f) to the segment's name in the
 * repository; CAIRN_EINVALID with a message when it is not a WAL file name.
 */
int pg_log_name(const cairn_host *host, const char *file, char *out, size_t len);

/* ---- backup.c / restore.c / wal.c ---- */

int pg_backup(const cairn_host *host, cairn_backup_writer *w, int argc, char *const *argv);
int pg_restore(const cairn_host *host, cairn_backup_reader *r, const char *dest);

int pg_cmd_wal_push(const cairn_host *host, cairn_session *s, int argc, char *const *argv);
int pg_cmd_wal_fetch(const cairn_host *host, cairn_session *s, int argc, char *const *argv);
int pg_cmd_wal_verify(const cairn_host *host, cairn_session *s, int argc, char *const *argv);
int pg_prune_logs(const cairn_host *host, cairn_session *s);

/*
 * Whether every segment from `start` to `stop` (inclusive, one timeline) is
 * in the repository; names the first missing one in `missing`.
 */
int pg_wal_range_present(const cairn_host *host, cairn_session *s, uint32_t timeline,
                         uint64_t start, uint64_t stop, uint64_t seg_size, int *present,
                         char missing[25]);

#endif
