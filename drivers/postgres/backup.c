/*
 * backup.c - `cairn pg backup-push [PGDATA]`: a non-exclusive base backup.
 *
 * The backup is taken the way PostgreSQL documents for low-level backups:
 * pg_backup_start (pg_start_backup before 15) on a connection held open,
 * a copy of the data directory and the tablespaces read locally, then
 * pg_backup_stop, whose backup_label and tablespace_map are stored as files.
 * Files are read while the server writes them; torn pages are repaired by
 * the full-page images in the WAL replayed at restore, which is why the
 * backup is only complete once the WAL up to the stop point is archived.
 *
 * Relation files are chunked in fixed blocks aligned on pages (block-size,
 * 128 KiB by default: 16 pages). A block is the unit of deduplication, so a
 * later backup stores only the blocks that changed. Smaller blocks dedup
 * better when changes are scattered but cost one index entry per block;
 * 128 KiB keeps the index of a 1 TiB cluster at 8 M entries while a change
 * to a single page costs 128 KiB, not the 1 MiB of the default block.
 */
#include "pg.h"
#include "delta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct pg_backup_ctx {
	const cairn_host *host;
	cairn_backup_writer *w;
	unsigned char *buf; /* PG_IO_BUFFER_SIZE */
	uint32_t block_size;
	uint64_t files, bytes;
	pg_delta *delta;       /* NULL: changed files are read whole */
	uint64_t copied;       /* bytes the delta took from the previous backup */
} pg_backup_ctx;

/* Top-level files of the data directory a base backup leaves out. */
static const char *const pg_skip_files[] = {
    "postmaster.pid",  "postmaster.opts",    "backup_label",          "tablespace_map",
    "backup_label.old", "tablespace_map.old", "backup_manifest",       NULL,
};

/*
 * Top-level directories whose contents a base backup leaves out (the
 * directory itself is kept): WAL comes from the archive, the rest is
 * recreated or reset at start-up.
 */
static const char *const pg_empty_dirs[] = {
    "pg_wal",   "pg_replslot",  "pg_dynshmem", "pg_notify", "pg_serial",
    "pg_snapshots", "pg_stat_tmp", "pg_subtrans", NULL,
};

static int pg_in_list(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (strcmp(*list, name) == 0)
			return 1;
	return 0;
}

/* Length of the leading digits of a relation file name (its filenode). */
static size_t pg_filenode_len(const char *name)
{
	size_t n = strspn(name, "0123456789");

	return n && n < 12 ? n : 0;
}

/* Relation files and SLRU segments: names made of a number and an optional fork/segment. */
static int pg_is_page_file(const char *name)
{
	size_t n = pg_filenode_len(name);

	return n && (name[n] == '\0' || name[n] == '.' || name[n] == '_');
}

static int pg_compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the names of a directory, sorted; ENOENT (dropped meanwhile) gives none. */
static int pg_read_dir(const cairn_host *host, const char *path, char ***out, size_t *count)
{
	DIR *dir = opendir(path);
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	int error = 0;

	*out = NULL;
	*count = 0;
	if (!dir)
		return errno == ENOENT ? 0 : pg_syscall_error(host, errno, "read directory", path);
	for (;;) {
		errno = 0;
		if (!(de = readdir(dir))) {
			if (errno)
				error = pg_syscall_error(host, errno, "read directory", path);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **grown = realloc(names, ncap * sizeof(*grown));

			if (!grown) {
				error = pg_out_of_memory(host);
				break;
			}
			names = grown;
			cap = ncap;
		}
		if (!(names[n] = strdup(de->d_name))) {
			error = pg_out_of_memory(host);
			break;
		}
		n++;
	}
	closedir(dir);
	if (error < 0) {
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return error;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), pg_compare_names);
	*out = names;
	*count = n;
	return 0;
}

static void pg_entry_from_stat(cairn_entry *e, cairn_entry_type type, const char *path,
                               const struct stat *sb)
{
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->path = path;
	e->mode = (uint32_t)(sb->st_mode & 07777);
	e->uid = (uint32_t)sb->st_uid;
	e->gid = (uint32_t)sb->st_gid;
	e->mtime_sec = (int64_t)sb->st_mtim.tv_sec;
	e->mtime_nsec = (uint32_t)sb->st_mtim.tv_nsec;
	e->chunking = CAIRN_CHUNK_CDC;
}

static int pg_write_meta_only(pg_backup_ctx *ctx, const cairn_entry *e)
{
	int error = ctx->host->entry_begin(ctx->w, e);

	return error < 0 ? error : ctx->host->entry_end(ctx->w);
}

/*
 * Reads a changed relation file by blocks: blocks the WAL did not name are
 * taken from the previous backup, the others read. Leaves the file offset
 * where the blocks end, for the plain read of what follows (a tail shorter
 * than a block, or what was appended meanwhile).
 */
static int pg_backup_blocks(pg_backup_ctx *ctx, int fd, const char *path,
                            const pg_delta_file_t *df, uint64_t size)
{
	const cairn_host *host = ctx->host;
	uint64_t block = ctx->block_size, limit = size - size % block, off = 0, end;
	int error = 0, rc;

	while (off < limit) {
		end = off + block;
		if (!pg_delta_changed(ctx->delta, df, off / block)) {
			while (end < limit && !pg_delta_changed(ctx->delta, df, end / block))
				end += block;
			if ((rc = host->entry_copy_prev(ctx->w, end - off)) < 0)
				return rc;
			if (rc == 1) {
				ctx->copied += end - off;
				off = end;
				continue;
			}
		}
		/* Changed (or not in the previous backup after all): read, a buffer at a time. */
		if (end - off > PG_IO_BUFFER_SIZE)
			end = off + PG_IO_BUFFER_SIZE;
		while (off < end) {
			ssize_t n = pread(fd, ctx->buf, (size_t)(end - off), (off_t)off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return pg_syscall_error(host, errno, "read", path);
			if (n == 0)
				goto shrunk;
			ctx->bytes += (uint64_t)n;
			if ((error = host->entry_write(ctx->w, ctx->buf, (size_t)n)) < 0)
				return error;
			off += (uint64_t)n;
		}
		/* A short read left the entry off a block boundary: read the rest plainly. */
		if (off % block)
			break;
	}
shrunk:
	if (lseek(fd, (off_t)off, SEEK_SET) < 0)
		return pg_syscall_error(host, errno, "seek in", path);
	return 0;
}

static int pg_backup_file(pg_backup_ctx *ctx, const char *path, const char *rel,
                          const char *name)
{
	const cairn_host *host = ctx->host;
	pg_delta_file_t df;
	cairn_entry e;
	struct stat sb;
	int fd, error;

	/* A file that vanished was dropped during the backup: WAL replay drops it too. */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : pg_syscall_error(host, errno, "open", path);
	if (fstat(fd, &sb) < 0) {
		error = pg_syscall_error(host, errno, "stat", path);
		goto done;
	}
	pg_entry_from_stat(&e, CAIRN_ENTRY_FILE, rel, &sb);
	if (pg_is_page_file(name)) {
		e.chunking = CAIRN_CHUNK_FIXED;
		e.block_size = ctx->block_size;
	}
	/*
	 * A file with the size and modification time it had in the previous
	 * backup of this cluster (same system identifier), and not modified
	 * since a second before that backup began, is taken from it unread.
	 * Every write PostgreSQL makes to a file updates its modification time.
	 */
	if (host->version >= 5) {
		e.size = (uint64_t)sb.st_size;
		if ((error = host->entry_reuse(ctx->w, &e)) != 0) {
			if (error > 0)
				error = 0;
			goto done;
		}
	}
	if ((error = host->entry_begin(ctx->w, &e)) < 0)
		goto done;
	if (ctx->delta && e.chunking == CAIRN_CHUNK_FIXED && pg_delta_file(ctx->delta, rel, &df) &&
	    (error = pg_backup_blocks(ctx, fd, path, &df, (uint64_t)sb.st_size)) < 0)
		goto done;
	for (;;) {
		ssize_t n = read(fd, ctx->buf, PG_IO_BUFFER_SIZE);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			error = pg_syscall_error(host, errno, "read", path);
			goto done;
		}
		if (n == 0)
			break;
		ctx->bytes += (uint64_t)n;
		if ((error = host->entry_write(ctx->w, ctx->buf, (size_t)n)) < 0)
			goto done;
	}
	ctx->files++;
	error = host->entry_end(ctx->w);
done:
	close(fd);
	return error;
}

static int pg_walk(pg_backup_ctx *ctx, const char *path, const char *rel, int top);

/*
 * A tablespace link: the link is kept (restore recreates or remaps it) and
 * the directory it points to is backed up as tablespace/<oid>.
 */
static int pg_backup_tablespace(pg_backup_ctx *ctx, const char *path, const char *rel,
                                const char *oid, const struct stat *lsb)
{
	char target[PATH_MAX], trel[64];
	cairn_entry e;
	struct stat sb;
	ssize_t n;
	int error;

	if ((n = readlink(path, target, sizeof(target) - 1)) < 0)
		return pg_syscall_error(ctx->host, errno, "read tablespace link", path);
	target[n] = '\0';
	pg_entry_from_stat(&e, CAIRN_ENTRY_SYMLINK, rel, lsb);
	e.link_target = target;
	if ((error = pg_write_meta_only(ctx, &e)) < 0)
		return error;
	if (stat(path, &sb) < 0)
		return pg_syscall_error(ctx->host, errno, "follow tablespace link", path);
	snprintf(trel, sizeof(trel), "tablespace/%s", oid);
	pg_entry_from_stat(&e, CAIRN_ENTRY_DIR, trel, &sb);
	if ((error = pg_write_meta_only(ctx, &e)) < 0)
		return error;
	return pg_walk(ctx, path, trel, 0);
}

/*
 * Backs up the contents of directory `path` as entries below `rel`. `top`
 * is 1 for the data directory itself, where the top-level exclusions apply.
 */
static int pg_walk(pg_backup_ctx *ctx, const char *path, const char *rel, int top)
{
	char **names = NULL, **unlogged = NULL;
	size_t count = 0, unlogged_count = 0, i;
	int error, in_tblspc = strcmp(rel, "pgdata/pg_tblspc") == 0;

	if ((error = pg_read_dir(ctx->host, path, &names, &count)) < 0)
		return error;
	/* Unlogged relations are restored from their init fork: their other forks are left out. */
	if (!(unlogged = calloc(count + 1, sizeof(*unlogged)))) {
		error = pg_out_of_memory(ctx->host);
		goto done;
	}
	for (i = 0; i < count; i++) {
		size_t n = pg_filenode_len(names[i]);

		if (n && strcmp(names[i] + n, "_init") == 0)
			unlogged[unlogged_count++] = names[i];
	}
	for (i = 0; i < count && error == 0; i++) {
		const char *name = names[i];
		char *cpath = NULL, *crel = NULL;
		struct stat sb;
		cairn_entry e;
		size_t j, n;
		int skip = 0;

		if (strncmp(name, "pgsql_tmp", 9) == 0 || strcmp(name, "pg_internal.init") == 0 ||
		    (top && pg_in_list(pg_skip_files, name)))
			continue;
		if ((n = pg_filenode_len(name)) && strcmp(name + n, "_init") != 0)
			for (j = 0; j < unlogged_count && !skip; j++)
				skip = strncmp(unlogged[j], name, n) == 0 && unlogged[j][n] == '_';
		if (skip)
			continue;
		if (asprintf(&cpath, "%s/%s", path, name) < 0 ||
		    asprintf(&crel, "%s/%s", rel, name) < 0) {
			free(cpath);
			error = pg_out_of_memory(ctx->host);
			break;
		}
		if (lstat(cpath, &sb) < 0) {
			if (errno != ENOENT)
				error = pg_syscall_error(ctx->host, errno, "stat", cpath);
		} else if (S_ISLNK(sb.st_mode) && in_tblspc && pg_filenode_len(name) == strlen(name)) {
			error = pg_backup_tablespace(ctx, cpath, crel, name, &sb);
		} else if (S_ISLNK(sb.st_mode) && top && strcmp(name, "pg_wal") == 0) {
			/* pg_wal elsewhere (initdb -X): restored as a plain directory. */
			struct stat tsb;

			if (stat(cpath, &tsb) < 0)
				error = pg_syscall_error(ctx->host, errno, "follow", cpath);
			else {
				pg_entry_from_stat(&e, CAIRN_ENTRY_DIR, crel, &tsb);
				error = pg_write_meta_only(ctx, &e);
			}
		} else if (S_ISLNK(sb.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlink(cpath, target, sizeof(target) - 1);

			if (len < 0) {
				if (errno != ENOENT)
					error = pg_syscall_error(ctx->host, errno, "read link", cpath);
			} else {
				target[len] = '\0';
				pg_entry_from_stat(&e, CAIRN_ENTRY_SYMLINK, crel, &sb);
				e.link_target = target;
				error = pg_write_meta_only(ctx, &e);
			}
		} else if (S_ISDIR(sb.st_mode)) {
			pg_entry_from_stat(&e, CAIRN_ENTRY_DIR, crel, &sb);
			if ((error = pg_write_meta_only(ctx, &e)) == 0 &&
			    !(top && pg_in_list(pg_empty_dirs, name)))
				error = pg_walk(ctx, cpath, crel, 0);
			else if (error == 0 && top && strcmp(name, "pg_wal") == 0) {
				/* PostgreSQL expects pg_wal/archive_status to exist. */
				free(crel);
				crel = NULL;
				if (asprintf(&crel, "%s/pg_wal/archive_status", rel) < 0) {
					error = pg_out_of_memory(ctx->host);
				} else {
					e.path = crel;
					error = pg_write_meta_only(ctx, &e);
				}
			}
		} else if (S_ISREG(sb.st_mode)) {
			error = pg_backup_file(ctx, cpath, crel, name);
		}
		/* Sockets and other special files have no place in a backup. */
		free(cpath);
		free(crel);
	}
done:
	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
	free(unlogged);
	return error;
}

/* ---- the map of databases and user relations (for partial restore) ------ */

/* Writes s with tab, newline and backslash escaped, so a line is one record. */
static int pg_write_escaped(pg_backup_ctx *ctx, const char *s)
{
	char out[512];
	size_t n = 0;
	int error;

	for (; *s; s++) {
		if (n + 3 > sizeof(out)) {
			if ((error = ctx->host->entry_write(ctx->w, out, n)) < 0)
				return error;
			n = 0;
		}
		if (*s == '\\' || *s == '\t' || *s == '\n') {
			out[n++] = '\\';
			out[n++] = *s == '\t' ? 't' : *s == '\n' ? 'n' : '\\';
		} else {
			out[n++] = *s;
		}
	}
	return ctx->host->entry_write(ctx->w, out, n);
}

static int pg_write_text(pg_backup_ctx *ctx, const char *s)
{
	return ctx->host->entry_write(ctx->w, s, strlen(s));
}

/*
 * The "relmap" stream: a line "database\t<oid>\t<name>" per database and
 * "relation\t<db oid>\t<filenode>\t<schema>\t<table>" per file-backed user
 * relation, indexes and TOAST naming the table they belong to. Partial
 * restore uses it to tell the files of the named tables from the rest.
 */
static const char pg_relations_sql[] =
    "SELECT pg_relation_filenode(c.oid), n.nspname, t.relname "
    "FROM pg_class c "
    "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
    "LEFT JOIN pg_class o ON o.reltoastrelid = coalesce(i.indrelid, c.oid) "
    "JOIN pg_class t ON t.oid = coalesce(o.oid, i.indrelid, c.oid) "
    "JOIN pg_namespace n ON n.oid = t.relnamespace "
    "WHERE pg_relation_filenode(c.oid) IS NOT NULL AND t.oid >= 16384";

static int pg_backup_relmap(pg_backup_ctx *ctx, PGconn *conn)
{
	const cairn_host *host = ctx->host;
	PGresult *dbs = NULL, *rels = NULL;
	PGconn *dbconn = NULL;
	cairn_entry e;
	int error, i, j;

	memset(&e, 0, sizeof(e));
	e.type = CAIRN_ENTRY_STREAM;
	e.path = "relmap";
	e.mode = 0600;
	e.mtime_sec = (int64_t)time(NULL);
	if ((error = pg_query(host, conn,
	                      "SELECT oid, datname, datallowconn FROM pg_database ORDER BY oid", 1,
	                      &dbs)) < 0)
		return error;
	if ((error = host->entry_begin(ctx->w, &e)) < 0)
		goto done;
	for (i = 0; i < PQntuples(dbs) && error == 0; i++) {
		if ((error = pg_write_text(ctx, "database\t")) < 0 ||
		    (error = pg_write_text(ctx, PQgetvalue(dbs, i, 0))) < 0 ||
		    (error = pg_write_text(ctx, "\t")) < 0 ||
		    (error = pg_write_escaped(ctx, PQgetvalue(dbs, i, 1))) < 0 ||
		    (error = pg_write_text(ctx, "\n")) < 0)
			break;
	}
	for (i = 0; i < PQntuples(dbs) && error == 0; i++) {
		/* A database that takes no connections (template0) is restored whole. */
		if (strcmp(PQgetvalue(dbs, i, 2), "t") != 0)
			continue;
		/*
		 * A database dropped meanwhile, or one this role may not read, has
		 * no relations in the map: a partial restore then keeps it whole.
		 */
		if (pg_connect(host, PQgetvalue(dbs, i, 1), &dbconn) < 0 ||
		    pg_query(host, dbconn, pg_relations_sql, 1, &rels) < 0) {
			host->log(CAIRN_LOG_WARN,
			          "no relation map for database %s (a partial restore keeps it whole)",
			          PQgetvalue(dbs, i, 1));
			PQfinish(dbconn);
			dbconn = NULL;
			continue;
		}
		for (j = 0; j < PQntuples(rels) && error == 0; j++) {
			if ((error = pg_write_text(ctx, "relation\t")) < 0 ||
			    (error = pg_write_text(ctx, PQgetvalue(dbs, i, 0))) < 0 ||
			    (error = pg_write_text(ctx, "\t")) < 0 ||
			    (error = pg_write_text(ctx, PQgetvalue(rels, j, 0))) < 0 ||
			    (error = pg_write_text(ctx, "\t")) < 0 ||
			    (error = pg_write_escaped(ctx, PQgetvalue(rels, j, 1))) < 0 ||
			    (error = pg_write_text(ctx, "\t")) < 0 ||
			    (error = pg_write_escaped(ctx, PQgetvalue(rels, j, 2))) < 0 ||
			    (error = pg_write_text(ctx, "\n")) < 0)
				break;
		}
		PQclear(rels);
		rels = NULL;
		PQfinish(dbconn);
		dbconn = NULL;
	}
	if (error == 0)
		error = host->entry_end(ctx->w);
done:
	PQclear(rels);
	PQfinish(dbconn);
	PQclear(dbs);
	return error;
}

/* ---- the backup ------------------------------------------------------------ */

/* Stores a file produced by pg_backup_stop (backup_label, tablespace_map). */
static int pg_backup_text_file(pg_backup_ctx *ctx, const char *rel, const char *text,
                               const struct stat *root)
{
	cairn_entry e;
	int error;

	pg_entry_from_stat(&e, CAIRN_ENTRY_FILE, rel, root);
	e.mode = 0600;
	e.mtime_sec = (int64_t)time(NULL);
	e.mtime_nsec = 0;
	if ((error = ctx->host->entry_begin(ctx->w, &e)) < 0 ||
	    (error = ctx->host->entry_write(ctx->w, text, strlen(text))) < 0)
		return error;
	return ctx->host->entry_end(ctx->w);
}

/* The system identifier is the first member of pg_control. */
static int pg_read_system_id(const cairn_host *host, const char *pgdata, uint64_t *out)
{
	char path[PATH_MAX];
	int fd, error = 0;

	snprintf(path, sizeof(path), "%s/global/pg_control", pgdata);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return pg_syscall_error(host, errno, "read", path);
	if (pread(fd, out, sizeof(*out), 0) != (ssize_t)sizeof(*out))
		error = host->error(CAIRN_EINVALID, "%s is too short to be a pg_control file", path);
	close(fd);
	return error;
}

static int pg_check_pgdata(const cairn_host *host, const char *arg, char **out)
{
	char path[PATH_MAX];
	struct stat sb;

	*out = NULL;
	if (!arg || !*arg)
		return host->error(CAIRN_EINVALID, "no data directory: give PGDATA as the argument "
		                                   "of backup-push or set PGDATA");
	if (stat(arg, &sb) < 0)
		return pg_syscall_error(host, errno, "open data directory", arg);
	if (!S_ISDIR(sb.st_mode))
		return host->error(CAIRN_EINVALID, "data directory %s is not a directory", arg);
	snprintf(path, sizeof(path), "%s/PG_VERSION", arg);
	if (access(path, F_OK) < 0)
		return host->error(CAIRN_EINVALID,
		                   "%s is not a PostgreSQL data directory (it has no PG_VERSION)", arg);
	if (!(*out = realpath(arg, NULL)))
		return pg_syscall_error(host, errno, "resolve data directory", arg);
	return 0;
}

/* One line "KEY: value" of a backup label. */
static int pg_label_value(const char *label, const char *key, char *out, size_t len)
{
	const char *p = label;
	size_t klen = strlen(key);

	while (p && *p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':' && p[klen + 1] == ' ') {
			size_t n = strcspn(p + klen + 2, "\n");

			if (n >= len)
				n = len - 1;
			memcpy(out, p + klen + 2, n);
			out[n] = '\0';
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

static int pg_meta_u64(const cairn_host *host, cairn_backup_writer *w, const char *key,
                       uint64_t value)
{
	char text[32];

	snprintf(text, sizeof(text), "%" PRIu64, value);
	return host->meta_set(w, key, text);
}

/* Server notices go through cairn's log, not straight to stderr. */
static void pg_notice(void *arg, const char *message)
{
	const cairn_host *host = arg;

	host->log(CAIRN_LOG_INFO, "PostgreSQL: %.*s", (int)strcspn(message, "\n"), message);
}

int pg_backup(const cairn_host *host, cairn_backup_writer *w, int argc, char *const *argv)
{
	pg_backup_ctx ctx = {.host = host, .w = w};
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char *pgdata = NULL, label[128], sysid_text[32], sql[256], value[128], start_wal[32], stop_wal[25],
	     missing[25], lsn_text[32];
	const char *labelfile, *spcmap;
	uint64_t system_id = 0, local_id, seg_size, page_size, block_size, start_lsn, stop_lsn,
	         start_segno, stop_segno, blocks_per_seg, db_size, begin_lsn = 0;
	pg_delta_params dp;
	uint32_t timeline = 0;
	unsigned int tli_parsed;
	int version = 0, error, in_backup = 0, present = 0, waited;
	long waited_ms, pause_ms;
	int64_t wait_limit = host->config_int("archive-wait");
	struct stat root;
	cairn_entry e;

	if (argc > 1)
		return host->error(CAIRN_EINVALID, "usage: cairn pg backup-push [PGDATA]");
	if ((error = pg_check_pgdata(host, argc ? argv[0] : host->config_get("pgdata"), &pgdata)) <
	    0)
		return error;
	if ((error = pg_connect(host, NULL, &conn)) < 0)
		goto done;
	PQsetNoticeProcessor(conn, pg_notice, (void *)host);

	/* Is this the server of this data directory, and what is it? */
	if ((error = pg_query(host, conn,
	                      "SELECT current_setting('server_version_num'), "
	                      "(SELECT system_identifier FROM pg_control_system()), "
	                      "(SELECT bytes_per_wal_segment FROM pg_control_init()), "
	                      "(SELECT database_block_size FROM pg_control_init()), "
	                      "current_setting('archive_mode'), "
	                      "(SELECT blocks_per_segment FROM pg_control_init())",
	                      1, &res)) < 0)
		goto done;
	version = atoi(PQgetvalue(res, 0, 0));
	system_id = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	seg_size = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	page_size = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
	blocks_per_seg = strtoull(PQgetvalue(res, 0, 5), NULL, 10);
	if (strcmp(PQgetvalue(res, 0, 4), "off") == 0)
		host->log(CAIRN_LOG_WARN, "archive_mode is off: the backup will wait for WAL that is "
		                          "never archived (set archive_mode = on and archive_command = "
		                          "'cairn pg wal-push %%p')");
	PQclear(res);
	res = NULL;
	if (version < 90600) {
		error = host->error(CAIRN_EUNSUPPORTED,
		                    "PostgreSQL %d is too old: non-exclusive backups need 9.6 or later",
		                    version);
		goto done;
	}
	if ((error = pg_read_system_id(host, pgdata, &local_id)) < 0)
		goto done;
	if (local_id != system_id) {
		error = host->error(CAIRN_EINVALID,
		                    "data directory %s belongs to another cluster than the server "
		                    "connected to (system identifier %" PRIu64 ", server's %" PRIu64
		                    "); check PGDATA and PGHOST/PGPORT",
		                    pgdata, local_id, system_id);
		goto done;
	}
	block_size = (uint64_t)host->config_int("block-size");
	if (!page_size || block_size < page_size || block_size % page_size || block_size > (16u << 20)) {
		error = host->error(CAIRN_EINVALID,
		                    "block-size %" PRIu64 " is not a multiple of the page size %" PRIu64
		                    " up to 16 MiB",
		                    block_size, page_size);
		goto done;
	}
	ctx.block_size = (uint32_t)block_size;
	if (!(ctx.buf = malloc(PG_IO_BUFFER_SIZE))) {
		error = pg_out_of_memory(host);
		goto done;
	}

	snprintf(label, sizeof(label), "cairn %ld", (long)time(NULL));
	snprintf(sql, sizeof(sql),
	         version >= 150000 ? "SELECT pg_backup_start('%s', true)"
	                           : "SELECT pg_start_backup('%s', true, false)",
	         label);
	if ((error = pg_query(host, conn, sql, 1, &res)) < 0)
		goto done;
	in_backup = 1;
	/* The start position (the label says it too, but only at the stop). */
	if (pg_parse_lsn(PQgetvalue(res, 0, 0), &begin_lsn) < 0)
		begin_lsn = 0;
	PQclear(res);
	res = NULL;
	if ((error = pg_query(host, conn, "SELECT timeline_id FROM pg_control_checkpoint()", 1,
	                      &res)) < 0)
		goto done;
	timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	host->log(CAIRN_LOG_INFO, "backup started on PostgreSQL %d, data directory %s", version,
	          pgdata);

	snprintf(sysid_text, sizeof(sysid_text), "%llu", (unsigned long long)system_id);
	if ((error = host->meta_set(w, "source", pgdata)) < 0 ||
	    (error = host->meta_set(w, "identity", sysid_text)) < 0 ||
	    (error = pg_backup_relmap(&ctx, conn)) < 0)
		goto done;
	/*
	 * Reading the WAL since the previous backup costs about what reading
	 * that much data does: worth it while there is less of it than data.
	 */
	if (begin_lsn && timeline && host->version >= 7 && host->prev_meta(w, "name")) {
		/*
		 * Sizing every database stats every file: only when there is a
		 * previous backup to take blocks from. Only the databases this role
		 * may size count (none: no limit); it is a rule of thumb.
		 */
		if ((error = pg_query(host, conn,
		                      "SELECT sum(pg_database_size(oid)) FILTER "
		                      "(WHERE has_database_privilege(oid, 'CONNECT')) FROM pg_database",
		                      1, &res)) < 0)
			goto done;
		db_size = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		res = NULL;
		dp = (pg_delta_params){.host = host, .writer = w, .session = host->writer_session(w),
		                       .pgdata = pgdata, .start_lsn = begin_lsn, .timeline = timeline,
		                       .seg_size = seg_size, .page_size = page_size,
		                       .blocks_per_seg = blocks_per_seg, .block_size = ctx.block_size,
		                       .max_wal = db_size ? db_size : UINT64_MAX};
		if ((error = pg_delta_prepare(&dp, &ctx.delta)) < 0)
			goto done;
	}
	if (stat(pgdata, &root) < 0) {
		error = pg_syscall_error(host, errno, "stat", pgdata);
		goto done;
	}
	pg_entry_from_stat(&e, CAIRN_ENTRY_DIR, "pgdata", &root);
	if ((error = pg_write_meta_only(&ctx, &e)) < 0 ||
	    (error = pg_walk(&ctx, pgdata, "pgdata", 1)) < 0)
		goto done;

	/*
	 * wait_for_archive = false: the wait for the WAL is below, bounded by
	 * archive-wait and looking at this repository, not at the archiver.
	 */
	if ((error = pg_query(host, conn,
	                      version >= 150000
	                          ? "SELECT lsn, labelfile, spcmapfile FROM pg_backup_stop(false)"
	                          : "SELECT lsn, labelfile, spcmapfile FROM pg_stop_backup(false, false)",
	                      1, &res)) < 0)
		goto done;
	in_backup = 0;
	labelfile = PQgetvalue(res, 0, 1);
	spcmap = PQgetisnull(res, 0, 2) ? "" : PQgetvalue(res, 0, 2);
	if (pg_parse_lsn(PQgetvalue(res, 0, 0), &stop_lsn) < 0 ||
	    pg_label_value(labelfile, "START WAL LOCATION", value, sizeof(value)) < 0 ||
	    sscanf(value, "%31s", lsn_text) != 1 || pg_parse_lsn(lsn_text, &start_lsn) < 0 ||
	    pg_label_value(labelfile, "START TIMELINE", value, sizeof(value)) < 0 ||
	    sscanf(value, "%u", &tli_parsed) != 1) {
		error = host->error(CAIRN_ERROR, "cannot read the backup label PostgreSQL returned");
		goto done;
	}
	timeline = tli_parsed;
	if ((error = pg_backup_text_file(&ctx, "pgdata/backup_label", labelfile, &root)) < 0 ||
	    (*spcmap &&
	     (error = pg_backup_text_file(&ctx, "pgdata/tablespace_map", spcmap, &root)) < 0))
		goto done;

	/*
	 * The backup is consistent only with the WAL from its start to its stop
	 * point: do not list it before that WAL is in the repository.
	 */
	start_segno = start_lsn / seg_size;
	stop_segno = (stop_lsn - 1) / seg_size;
	pg_segment_name(timeline, start_segno, seg_size, start_wal);
	pg_segment_name(timeline, stop_segno, seg_size, stop_wal);
	/*
	 * The archiver usually needs well under a second for the last segment:
	 * look again after 50 ms, doubling up to a second between looks.
	 */
	for (waited_ms = 0, pause_ms = 50;; waited_ms += pause_ms, pause_ms *= 2) {
		struct timespec pause;

		if ((error = pg_wal_range_present(host, host->writer_session(w), timeline, start_segno,
		                                  stop_segno, seg_size, &present, missing)) < 0)
			goto done;
		if (present || waited_ms >= (long)wait_limit * 1000)
			break;
		if (pause_ms > 1000)
			pause_ms = 1000;
		pause.tv_sec = pause_ms / 1000;
		pause.tv_nsec = (pause_ms % 1000) * 1000000L;
		nanosleep(&pause, NULL);
	}
	waited = (int)(waited_ms / 1000);
	if (!present) {
		error = host->error(CAIRN_ENOTFOUND,
		                    "WAL segment %s, needed by this backup, is not in the repository "
		                    "after %ds: is archive_command = 'cairn pg wal-push %%p' set for this "
		                    "repository?",
		                    missing, waited);
		goto done;
	}

	pg_format_lsn(start_lsn, lsn_text, sizeof(lsn_text));
	if ((error = host->meta_set(w, "start-lsn", lsn_text)) < 0)
		goto done;
	pg_format_lsn(stop_lsn, lsn_text, sizeof(lsn_text));
	snprintf(value, sizeof(value), "%d", version);
	if ((error = host->meta_set(w, "stop-lsn", lsn_text)) < 0 ||
	    (error = pg_meta_u64(host, w, "timeline", timeline)) < 0 ||
	    (error = host->meta_set(w, "start-wal", start_wal)) < 0 ||
	    (error = host->meta_set(w, "stop-wal", stop_wal)) < 0 ||
	    (error = host->meta_set(w, "pg-version", value)) < 0 ||
	    (error = pg_meta_u64(host, w, "system-identifier", system_id)) < 0 ||
	    (error = pg_meta_u64(host, w, "wal-segment-size", seg_size)) < 0 ||
	    (error = pg_meta_u64(host, w, "page-size", page_size)) < 0 ||
	    (error = pg_meta_u64(host, w, "block-size", block_size)) < 0 ||
	    (error = host->meta_set(w, "label", label)) < 0)
		goto done;
	if (ctx.delta && ((error = host->meta_set(w, "delta-from", host->prev_meta(w, "name"))) < 0 ||
	                  (error = pg_meta_u64(host, w, "delta-copied-bytes", ctx.copied)) < 0))
		goto done;
	host->log(CAIRN_LOG_INFO,
	          "backup of %" PRIu64 " files (%" PRIu64 " bytes read, %" PRIu64
	          " unchanged bytes of changed files taken from the previous backup), WAL %s to %s",
	          ctx.files, ctx.bytes, ctx.copied, start_wal, stop_wal);
done:
	if (in_backup && conn) {
		/* Closing the connection aborts a non-exclusive backup; say so explicitly too. */
		PGresult *r = PQexec(conn, version >= 150000 ? "SELECT pg_backup_stop(false)"
		                                             : "SELECT pg_stop_backup(false, false)");
		PQclear(r);
	}
	PQclear(res);
	PQfinish(conn);
	pg_delta_free(ctx.delta);
	free(ctx.buf);
	free(pgdata);
	return error;
}
