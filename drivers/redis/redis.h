/*
 * redis.h - internals shared by the files of the redis driver.
 *
 *   redis.c  descriptor, settings, backup-push, backup-fetch
 *   conn.c   connection settings, hiredis connections, the replication
 *            handshake that streams an RDB snapshot
 *   rdb.c    RDB checks: CRC-64 of the stream, header (aux fields)
 *   aof.c    Redis 7 multi-part AOF: pinning a consistent set of files,
 *            aof-push, and rebuilding an AOF directory cut at a time
 *   util.c   files, time parsing, small helpers
 *
 * Every function that fails records its message with host->error and
 * returns a negative cairn_error_code; passwords never reach a message.
 */
#ifndef CAIRN_REDIS_H
#define CAIRN_REDIS_H

#include <cairn/plugin.h>
#include <cairn/util.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads and writes go through buffers of this size: memory is bounded. */
#define REDIS_IO_BUFFER_SIZE (1024 * 1024)

/* ---- util.c ---- */

int redis_out_of_memory(const cairn_host *host);
/* "cannot <action> <path>: <strerror>" with the code the core gives errno. */
int redis_syscall_error(const cairn_host *host, int err, const char *action, const char *path);
/* Reads up to len bytes at offset, retrying short reads; returns bytes read or -1. */
ssize_t redis_pread_full(int fd, void *buf, size_t len, uint64_t offset);
/*
 * Parses a point in time: unix seconds ("1714560000" or "@1714560000"), or
 * "YYYY-MM-DD[ T]HH:MM[:SS]" in UTC, with an optional "Z" or "+HH:MM"/"-HH:MM".
 */
int redis_parse_time(const char *text, int64_t *out);
void redis_format_time(int64_t t, char *out, size_t len);
/* A name usable as one part of a log segment name ([A-Za-z0-9._-], not starting with '.'). */
int redis_name_is_safe(const char *name);
/* Parses an interval: seconds, or a number with s, m or h. */
int redis_parse_interval(const char *text, unsigned int *out_seconds);
/* Copies an open file's bytes [0, size) into the writer; 1 MiB buffer. */
int redis_copy_fd_to_writer(const cairn_host *host, cairn_backup_writer *w, int fd,
                            uint64_t size, const char *what, void *rdb_check_or_null);
/* Removes a directory holding only regular files (a refused or replaced restore). */
int redis_remove_flat_dir(const cairn_host *host, const char *path);

/* ---- rdb.c ---- */

#define RDB_HEAD_MAX (64 * 1024)

/* The fields of an RDB header that end up in the manifest. */
typedef struct rdb_header {
	int version;          /* the 4 digits after "REDIS" */
	char redis_ver[32];   /* aux "redis-ver", "" when absent */
	int64_t ctime;        /* aux "ctime": when the snapshot was taken; 0 when absent */
	char repl_id[48];     /* aux "repl-id" */
	char repl_offset[24]; /* aux "repl-offset", as text */
	int aof_base;         /* aux "aof-base" is 1: the base of a multi-part AOF */
} rdb_header;

/*
 * Follows an RDB stream of any size with constant memory: its CRC-64 (over
 * all bytes but the last 8, which hold the checksum), its size, and its
 * first bytes for the header.
 */
typedef struct rdb_check {
	uint64_t crc;
	uint64_t size;
	uint8_t tail[8];
	size_t tail_len;
	uint8_t head[RDB_HEAD_MAX];
	size_t head_len;
} rdb_check;

void rdb_check_init(rdb_check *c);
void rdb_check_update(rdb_check *c, const void *data, size_t len);
/*
 * Checks the finished stream: "REDIS" magic, and the stored checksum when
 * there is one (a server with rdbchecksum no stores 0). `what` names the
 * stream in messages. Fills *hdr from the head.
 */
int rdb_check_finish(const cairn_host *host, rdb_check *c, const char *what, rdb_header *hdr);
/* Parses the header from the first bytes of an RDB; -1 when it is not one. */
int rdb_header_parse(const uint8_t *buf, size_t len, rdb_header *out);
uint64_t rdb_crc64(uint64_t crc, const void *data, size_t len);

/* ---- conn.c ---- */

typedef struct redis_target {
	char *host;      /* NULL for a unix socket */
	int port;
	char *unix_path; /* unix:///path */
	char *user;      /* NULL: no user (AUTH password) */
	char *password;  /* NULL: no AUTH */
	char where[300]; /* "redis://host:port" for messages: never credentials */
	int timeout;     /* seconds */
} redis_target;

/* Reads redis-url, redis-host, redis-port, redis-user, redis-password, redis-timeout. */
int redis_target_load(const cairn_host *host, redis_target *out);
void redis_target_free(redis_target *t);

/* What a snapshot from the network records in the manifest. */
typedef struct redis_server_info {
	char version[32];
	int databases_used;      /* databases holding keys (INFO keyspace) */
	char databases_conf[16]; /* CONFIG GET databases, "" when not allowed */
	uint64_t keys;
	char dbfilename[256];
	char dir[4096];
	char appenddirname[256];
	char appendonly[8];
} redis_server_info;

typedef struct redis_conn redis_conn;

/* Connects, authenticates and checks it is a Redis server (PING). */
int redis_conn_open(const cairn_host *host, const redis_target *t, redis_conn **out);
void redis_conn_close(redis_conn *c);
/* INFO server, INFO keyspace, CONFIG GET of a few names (missing ones stay ""). */
int redis_conn_server_info(redis_conn *c, redis_server_info *out);

/* Receives the RDB payload, piece by piece. */
typedef int (*redis_rdb_sink)(void *arg, const void *data, size_t len);

typedef struct redis_sync_info {
	char repl_id[48];
	char repl_offset[24];
	int eof_marker; /* the payload came in the "$EOF:" form (diskless) */
	int64_t started; /* unix seconds when the snapshot was asked for */
} redis_sync_info;

/*
 * Turns the connection into a replica asking for an RDB only (REPLCONF
 * capa eof, rdb-only 1, PSYNC ? -1) and streams the payload into sink.
 * The connection cannot be used for commands afterwards.
 */
int redis_conn_fetch_rdb(redis_conn *c, redis_rdb_sink sink, void *arg, redis_sync_info *out);

/* ---- aof.c ---- */

int redis_aof_push_command(const cairn_host *host, cairn_session *session, int argc,
                           char *const *argv);
/* backup-push --from-file DIR of a multi-part AOF directory. */
int redis_aof_backup_dir(const cairn_host *host, cairn_backup_writer *w, const char *dir);
/* backup-fetch --until: rebuilds DEST/<dirname> from the AOF archive. */
int redis_aof_restore_until(const cairn_host *host, cairn_session *session, const char *dest,
                            int64_t until);
int redis_aof_prune(const cairn_host *host, cairn_session *session);

/* The chunk size of RDB and AOF entries (setting redis-chunk-size). */
int redis_entry_chunking(const cairn_host *host, cairn_backup_writer *w);

#endif
