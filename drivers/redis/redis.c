/*
 * redis.c - the "redis" driver: snapshots of a Redis server as one RDB
 * stream, archiving of its multi-part AOF, restore to a point in time.
 *
 *   cairn redis backup-push                  RDB over the replication protocol
 *   cairn redis backup-push --from-file P    an RDB file or an AOF directory
 *   cairn redis aof-push [AOFDIR] [--loop I] archive what the AOF gained
 *   cairn redis backup-fetch DEST NAME       DEST/dump.rdb or DEST/<aofdir>/
 *   cairn redis backup-fetch DEST NAME --until TIME
 *                                            DEST/<aofdir>/ rebuilt from the
 *                                            AOF archive and cut at TIME
 *
 * A snapshot is a single CAIRN_ENTRY_STREAM entry: the server's RDB as it
 * came off the socket, cut into small content-defined chunks (setting
 * redis-chunk-size) because a change of a few keys touches a few scattered
 * places of one big stream. cairn never parses the dataset; it checks the
 * RDB's CRC-64 and reads its header.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "redis.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const cairn_setting redis_settings[] = {
	{"redis-url", CAIRN_SETTING_STRING, "redis://127.0.0.1:6379", "CAIRN_REDIS_URL",
	 "server to back up: redis://[user[:password]@]host[:port] or unix:///path (rediss:// is "
	 "not supported by this build); keep a password out of the command line",
	 0},
	{"redis-host", CAIRN_SETTING_STRING, NULL, "CAIRN_REDIS_HOST WALG_REDIS_HOST",
	 "server host name, overriding the one of redis-url", 0},
	{"redis-port", CAIRN_SETTING_INT, NULL, "CAIRN_REDIS_PORT WALG_REDIS_PORT",
	 "server port, overriding the one of redis-url", 0},
	{"redis-user", CAIRN_SETTING_STRING, NULL, "CAIRN_REDIS_USER WALG_REDIS_USERNAME",
	 "ACL user name (Redis 6+), overriding the one of redis-url", 0},
	{"redis-password", CAIRN_SETTING_STRING, NULL,
	 "CAIRN_REDIS_PASSWORD WALG_REDIS_PASSWORD REDISCLI_AUTH",
	 "password (AUTH), overriding the one of redis-url", CAIRN_SETTING_SECRET},
	{"redis-timeout", CAIRN_SETTING_INT, "60", "CAIRN_REDIS_TIMEOUT",
	 "seconds a silent server is waited for before giving up", 0},
	{"redis-chunk-size", CAIRN_SETTING_SIZE, "1K", "CAIRN_REDIS_CHUNK_SIZE",
	 "average chunk of RDB and AOF data (a power of two): smaller stores less for scattered "
	 "changes, larger keeps manifests small",
	 0},
	{"redis-aof-dir", CAIRN_SETTING_STRING, NULL, "CAIRN_REDIS_AOF_DIR",
	 "the server's AOF directory for aof-push (default: asked from the server)", 0},
	{"from-file", CAIRN_SETTING_STRING, NULL, NULL,
	 "backup-push: back up this RDB file or AOF directory instead of asking the server", 0},
	{"until", CAIRN_SETTING_STRING, NULL, NULL,
	 "backup-fetch: restore the state at this time (unix seconds, or YYYY-MM-DD HH:MM:SS in "
	 "UTC, or with Z/+HH:MM)",
	 0},
	{"loop", CAIRN_SETTING_STRING, NULL, NULL,
	 "aof-push: run again every INTERVAL (seconds, or with s/m/h) until interrupted", 0},
	{NULL, 0, NULL, NULL, NULL, 0},
};

int redis_entry_chunking(const cairn_host *host, cairn_backup_writer *w)
{
	int64_t size = host->config_int("redis-chunk-size");

	/* Hosts before ABI 3 chunk with the repository's sizes: still correct, dedups less. */
	if (host->version < 3 || !host->entry_chunk_size || size <= 0)
		return 0;
	return host->entry_chunk_size(w, (size_t)size);
}

/* ---- backup ------------------------------------------------------------- */

typedef struct stream_ctx {
	const cairn_host *host;
	cairn_backup_writer *w;
	rdb_check *check;
} stream_ctx;

static int stream_sink(void *arg, const void *data, size_t len)
{
	stream_ctx *s = arg;

	rdb_check_update(s->check, data, len);
	return s->host->entry_write(s->w, data, len);
}

static int meta_int(const cairn_host *host, cairn_backup_writer *w, const char *key, long long v)
{
	char text[32];

	snprintf(text, sizeof(text), "%lld", v);
	return host->meta_set(w, key, text);
}

/* Meta every RDB backup has; *hdr comes from the stream itself. */
static int rdb_meta(const cairn_host *host, cairn_backup_writer *w, const rdb_header *hdr,
                    int64_t snapshot_time)
{
	char t[40];
	int error;

	redis_format_time(snapshot_time, t, sizeof(t));
	if ((error = host->meta_set(w, "kind", "rdb")) < 0 ||
	    (error = meta_int(host, w, "rdb_version", hdr->version)) < 0 ||
	    (error = meta_int(host, w, "snapshot_time", snapshot_time)) < 0 ||
	    (error = host->meta_set(w, "snapshot_time_utc", t)) < 0)
		return error;
	if (hdr->redis_ver[0] && (error = host->meta_set(w, "redis_version", hdr->redis_ver)) < 0)
		return error;
	return 0;
}

static int backup_from_server(const cairn_host *host, cairn_backup_writer *w)
{
	redis_target target;
	redis_conn *info_conn = NULL, *sync_conn = NULL;
	redis_server_info si;
	redis_sync_info sync;
	rdb_header hdr;
	rdb_check *check = NULL;
	stream_ctx sc;
	cairn_entry entry;
	int64_t snapshot_time;
	int error, in_entry = 0;

	if ((error = redis_target_load(host, &target)) < 0)
		return error;
	if ((error = redis_conn_open(host, &target, &info_conn)) < 0 ||
	    (error = redis_conn_server_info(info_conn, &si)) < 0)
		goto done;
	if (!(check = malloc(sizeof(*check)))) {
		error = redis_out_of_memory(host);
		goto done;
	}
	rdb_check_init(check);
	if ((error = redis_conn_open(host, &target, &sync_conn)) < 0)
		goto done;
	memset(&entry, 0, sizeof(entry));
	entry.type = CAIRN_ENTRY_STREAM;
	entry.path = "dump.rdb";
	entry.mode = 0644;
	entry.mtime_sec = (int64_t)time(NULL);
	entry.chunking = CAIRN_CHUNK_CDC;
	if ((error = host->entry_begin(w, &entry)) < 0)
		goto done;
	in_entry = 1;
	if ((error = redis_entry_chunking(host, w)) < 0)
		goto done;
	sc.host = host;
	sc.w = w;
	sc.check = check;
	host->log(CAIRN_LOG_INFO, "asking %s for an RDB snapshot", target.where);
	if ((error = redis_conn_fetch_rdb(sync_conn, stream_sink, &sc, &sync)) < 0)
		goto done;
	{
		char what[400];

		snprintf(what, sizeof(what), "the snapshot from %s", target.where);
		if ((error = rdb_check_finish(host, check, what, &hdr)) < 0)
			goto done;
	}
	in_entry = 0;
	if ((error = host->entry_end(w)) < 0)
		goto done;
	/* ctime is when the server forked for the snapshot: the time the data is from. */
	snapshot_time = hdr.ctime ? hdr.ctime : sync.started;
	if ((error = host->meta_set(w, "source", target.where)) < 0 ||
	    (error = rdb_meta(host, w, &hdr, snapshot_time)) < 0 ||
	    (error = meta_int(host, w, "databases", si.databases_used)) < 0 ||
	    (error = meta_int(host, w, "keys", (long long)si.keys)) < 0 ||
	    (error = host->meta_set(w, "transfer", sync.eof_marker ? "diskless" : "disk")) < 0)
		goto done;
	if (!hdr.redis_ver[0] && si.version[0] &&
	    (error = host->meta_set(w, "redis_version", si.version)) < 0)
		goto done;
	if (si.databases_conf[0] &&
	    (error = host->meta_set(w, "databases_configured", si.databases_conf)) < 0)
		goto done;
	if (si.dbfilename[0] && (error = host->meta_set(w, "dbfilename", si.dbfilename)) < 0)
		goto done;
	if (sync.repl_id[0] && ((error = host->meta_set(w, "repl_id", sync.repl_id)) < 0 ||
	                        (error = host->meta_set(w, "repl_offset", sync.repl_offset)) < 0))
		goto done;
	host->log(CAIRN_LOG_INFO, "RDB snapshot of %s: %llu bytes, %llu keys in %d databases",
	          target.where, (unsigned long long)check->size, (unsigned long long)si.keys,
	          si.databases_used);
done:
	(void)in_entry; /* an unfinished entry is dropped with the uncommitted backup */
	free(check);
	redis_conn_close(sync_conn);
	redis_conn_close(info_conn);
	redis_target_free(&target);
	return error;
}

static int backup_rdb_file(const cairn_host *host, cairn_backup_writer *w, const char *path)
{
	rdb_check *check = NULL;
	rdb_header hdr;
	cairn_entry entry;
	struct stat st;
	const char *base = strrchr(path, '/');
	char source[4200];
	int fd, error;

	base = base ? base + 1 : path;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return redis_syscall_error(host, errno, "open", path);
	if (fstat(fd, &st) < 0) {
		error = redis_syscall_error(host, errno, "stat", path);
		goto done;
	}
	if (!(check = malloc(sizeof(*check)))) {
		error = redis_out_of_memory(host);
		goto done;
	}
	rdb_check_init(check);
	memset(&entry, 0, sizeof(entry));
	entry.type = CAIRN_ENTRY_STREAM;
	/* Restored under its own name when that is a plain file name. */
	entry.path = redis_name_is_safe(base) ? base : "dump.rdb";
	entry.mode = st.st_mode & 07777;
	entry.mtime_sec = st.st_mtim.tv_sec;
	entry.mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
	entry.chunking = CAIRN_CHUNK_CDC;
	if ((error = host->entry_begin(w, &entry)) < 0 || (error = redis_entry_chunking(host, w)) < 0)
		goto done;
	if ((error = redis_copy_fd_to_writer(host, w, fd, (uint64_t)st.st_size, path, check)) < 0)
		goto done;
	if ((error = rdb_check_finish(host, check, path, &hdr)) < 0)
		goto done;
	if ((error = host->entry_end(w)) < 0)
		goto done;
	snprintf(source, sizeof(source), "file:%s", path);
	if ((error = host->meta_set(w, "source", source)) < 0 ||
	    (error = rdb_meta(host, w, &hdr, hdr.ctime ? hdr.ctime : st.st_mtim.tv_sec)) < 0 ||
	    (error = host->meta_set(w, "dbfilename", entry.path)) < 0)
		goto done;
done:
	free(check);
	close(fd);
	return error;
}

static int redis_backup(const cairn_host *host, cairn_backup_writer *w, int argc,
                        char *const *argv)
{
	const char *from = host->config_get("from-file");
	struct stat st;

	(void)argv;
	if (argc != 0)
		return host->error(CAIRN_EINVALID,
		                   "usage: cairn redis backup-push [--from-file RDB|AOFDIR] (the server "
		                   "comes from redis-url, not from an argument)");
	if (!from || !*from)
		return backup_from_server(host, w);
	if (stat(from, &st) < 0)
		return redis_syscall_error(host, errno, "back up", from);
	if (S_ISDIR(st.st_mode))
		return redis_aof_backup_dir(host, w, from);
	if (!S_ISREG(st.st_mode))
		return host->error(CAIRN_EINVALID, "%s is neither an RDB file nor an AOF directory",
		                   from);
	return backup_rdb_file(host, w, from);
}

/* ---- restore ------------------------------------------------------------ */

typedef struct restore_ctx {
	const cairn_host *host;
	cairn_backup_reader *r;
	const char *dest;
	int force;
	char made_dir[512]; /* the AOF directory created for this restore */
	uint8_t *buf;
} restore_ctx;

/* Paths of a redis backup are "name" or "dir/name", each part a plain name. */
static int restore_path_ok(const char *path, char *dir, size_t dir_len)
{
	const char *slash = strchr(path, '/');

	dir[0] = '\0';
	if (!slash)
		return redis_name_is_safe(path);
	if ((size_t)(slash - path) >= dir_len || strchr(slash + 1, '/'))
		return 0;
	snprintf(dir, dir_len, "%.*s", (int)(slash - path), path);
	return redis_name_is_safe(dir) && redis_name_is_safe(slash + 1);
}

static int restore_make_dir(restore_ctx *ctx, const char *dir)
{
	const cairn_host *host = ctx->host;
	char *path;
	struct stat st;
	int error = 0;

	if (strcmp(ctx->made_dir, dir) == 0)
		return 0;
	if (asprintf(&path, "%s/%s", ctx->dest, dir) < 0)
		return redis_out_of_memory(host);
	if (lstat(path, &st) == 0) {
		if (!ctx->force) {
			error = host->error(CAIRN_EEXISTS,
			                    "%s exists already (use --force to replace it)", path);
			goto done;
		}
		if (!S_ISDIR(st.st_mode) ? unlink(path) < 0 && errno != ENOENT
		                         : (error = redis_remove_flat_dir(host, path)) < 0) {
			if (!error)
				error = redis_syscall_error(host, errno, "remove", path);
			goto done;
		}
	}
	if (mkdir(path, 0755) < 0) {
		error = redis_syscall_error(host, errno, "create directory", path);
		goto done;
	}
	snprintf(ctx->made_dir, sizeof(ctx->made_dir), "%s", dir);
done:
	free(path);
	return error;
}

static int restore_entry(restore_ctx *ctx, const cairn_entry *e)
{
	const cairn_host *host = ctx->host;
	char dir[256], *target = NULL, *tmp = NULL;
	int fd = -1, error = 0;
	size_t n;

	if ((e->type != CAIRN_ENTRY_STREAM && e->type != CAIRN_ENTRY_FILE) ||
	    !restore_path_ok(e->path, dir, sizeof(dir)))
		return host->error(CAIRN_ECORRUPT, "unexpected entry in a redis backup: %s", e->path);
	if (dir[0] && (error = restore_make_dir(ctx, dir)) < 0)
		return error;
	if (asprintf(&target, "%s/%s", ctx->dest, e->path) < 0 ||
	    asprintf(&tmp, "%s/%s.cairn-restore.%ld", ctx->dest, e->path, (long)getpid()) < 0) {
		error = redis_out_of_memory(host);
		goto done;
	}
	if (!ctx->force && access(target, F_OK) == 0) {
		error = host->error(CAIRN_EEXISTS, "%s exists already (use --force to replace it)",
		                    target);
		goto done;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		error = redis_syscall_error(host, errno, "create", tmp);
		goto done;
	}
	for (;;) {
		if ((error = host->entry_read(ctx->r, ctx->buf, REDIS_IO_BUFFER_SIZE, &n)) < 0)
			goto done;
		if (n == 0)
			break;
		if (cairn_write_all(fd, ctx->buf, n) < 0) {
			error = redis_syscall_error(host, errno, "write", tmp);
			goto done;
		}
	}
	if (fchmod(fd, e->mode & 0777 ? e->mode & 0777 : 0644) < 0 || fsync(fd) < 0) {
		error = redis_syscall_error(host, errno, "write", tmp);
		goto done;
	}
	if (close(fd) < 0) {
		fd = -1;
		error = redis_syscall_error(host, errno, "write", tmp);
		goto done;
	}
	fd = -1;
	if (rename(tmp, target) < 0) {
		error = redis_syscall_error(host, errno, "rename into place", target);
		goto done;
	}
	free(tmp);
	tmp = NULL;
	host->log(CAIRN_LOG_INFO, "wrote %s", target);
done:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(target);
	return error;
}

static int sync_dir(const cairn_host *host, const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int error = 0;

	if (fd < 0)
		return redis_syscall_error(host, errno, "open", path);
	if (fsync(fd) < 0)
		error = redis_syscall_error(host, errno, "sync", path);
	close(fd);
	return error;
}

static int make_dest(const cairn_host *host, const char *dest)
{
	struct stat st;

	if (stat(dest, &st) == 0)
		return S_ISDIR(st.st_mode)
		           ? 0
		           : host->error(CAIRN_EINVALID, "restore destination %s is not a directory", dest);
	if (errno != ENOENT)
		return redis_syscall_error(host, errno, "stat", dest);
	if (mkdir(dest, 0755) < 0)
		return redis_syscall_error(host, errno, "create directory", dest);
	return 0;
}

static int redis_restore(const cairn_host *host, cairn_backup_reader *r, const char *dest)
{
	const char *until_text = host->config_get("until");
	const cairn_entry *e;
	restore_ctx ctx;
	int64_t until;
	int more, error;

	memset(&ctx, 0, sizeof(ctx));
	if (until_text && *until_text) {
		const char *kind = host->meta_get(r, "kind");

		if (redis_parse_time(until_text, &until) < 0)
			return host->error(CAIRN_EINVALID,
			                   "--until '%s' is not a time (unix seconds, or YYYY-MM-DD "
			                   "HH:MM:SS in UTC, or with Z/+HH:MM)",
			                   until_text);
		if ((error = make_dest(host, dest)) < 0)
			return error;
		host->log(CAIRN_LOG_INFO,
		          "--until: rebuilding the AOF from the AOF archive; the %s backup named is "
		          "not read",
		          kind ? kind : "");
		/* The manifest is walked to its end (cheap: no data is fetched). */
		while ((more = host->entry_next(r, &e)) > 0)
			;
		if (more < 0)
			return more;
		return redis_aof_restore_until(host, host->reader_session(r), dest, until);
	}
	ctx.host = host;
	ctx.r = r;
	ctx.dest = dest;
	ctx.force = host->config_bool("force");
	if ((error = make_dest(host, dest)) < 0)
		return error;
	if (!(ctx.buf = malloc(REDIS_IO_BUFFER_SIZE)))
		return redis_out_of_memory(host);
	while ((more = host->entry_next(r, &e)) > 0)
		if ((error = restore_entry(&ctx, e)) < 0)
			goto done;
	if ((error = more) < 0)
		goto done;
	if (ctx.made_dir[0]) {
		char *path;

		if (asprintf(&path, "%s/%s", dest, ctx.made_dir) < 0) {
			error = redis_out_of_memory(host);
			goto done;
		}
		error = sync_dir(host, path);
		free(path);
		if (error < 0)
			goto done;
	}
	error = sync_dir(host, dest);
done:
	free(ctx.buf);
	return error;
}

/* ---- registration --------------------------------------------------------- */

static int redis_prune_logs(const cairn_host *host, cairn_session *session)
{
	return redis_aof_prune(host, session);
}

static const cairn_command redis_commands[] = {
	{"aof-push", "[AOFDIR] [--loop INTERVAL]",
	 "archive the AOF base and what was appended to its incremental files since the last run",
	 redis_aof_push_command},
	{NULL, NULL, NULL, NULL},
};

static const cairn_driver_plugin redis_plugin = {
	.version = CAIRN_ABI_VERSION,
	.name = "redis",
	.aliases = NULL,
	.plugin_version = "1.0.0",
	.description = "Redis 7: RDB snapshots over the replication protocol, AOF archiving, "
	               "point-in-time restore",
	.caps = CAIRN_DRIVER_CAP_RESTORE_OVER,
	.settings = redis_settings,
	.backup_usage = "[--from-file RDB|AOFDIR]",
	.restore_usage = "DEST NAME|LATEST [--until TIME]",
	.backup = redis_backup,
	.restore = redis_restore,
	.commands = redis_commands,
	.prune_logs = redis_prune_logs,
};

/* The only exported symbol: registers and does nothing else. */
int cairn_plugin_init(const cairn_host *host)
{
	return host->register_driver(&redis_plugin);
}
