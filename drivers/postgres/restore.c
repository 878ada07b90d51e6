/*
 * restore.c - `cairn pg backup-fetch DEST NAME|LATEST`.
 *
 * Writes the data directory and the tablespaces (optionally elsewhere),
 * backup_label and tablespace_map, and, when asked for recovery (--recovery,
 * --until, --target-lsn, --target-name, --immediate, --restore-only), a
 * recovery.signal and the recovery settings in postgresql.auto.conf, with a
 * restore_command that runs this very cairn on this very repository. Starting
 * the server then completes the restore.
 *
 * Partial restore (--restore-only=db[,db/table,...]): the system databases
 * (postgres, template0, template1), the named databases and the named tables
 * come back with their data. The files of every other user relation are
 * written as files of the same size full of zeros (sparse): PostgreSQL reads
 * an all-zero page as a new, empty page, WAL replay overwrites the pages it
 * touches with their full-page images, and so recovery completes while the
 * data those files held in the backup stays out. The catalogs of every
 * database are restored, so the other databases can be connected to and
 * dropped afterwards.
 */
#include "pg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* backup_label and tablespace_map are small; anything larger is not ours. */
#define PG_SMALL_FILE_MAX (1024 * 1024)

typedef struct pg_db {
	uint32_t oid;
	char *name;
	int whole; /* restored with all its data */
} pg_db;

typedef struct pg_rel {
	uint32_t db, filenode;
	int keep;
} pg_rel;

typedef struct pg_tblspc {
	char oid[16];
	char *location;
} pg_tblspc;

typedef struct pg_restore_ctx {
	const cairn_host *host;
	cairn_backup_reader *r;
	const char *dest;
	int force, set_owner;
	unsigned char *buf; /* PG_IO_BUFFER_SIZE */
	/* partial restore */
	char *only;       /* copy of the restore-only setting, NULL: restore everything */
	pg_db *dbs;
	size_t db_count, db_cap;
	pg_rel *rels;
	size_t rel_count, rel_cap;
	int relmap_seen;
	/* tablespaces met so far */
	pg_tblspc *spcs;
	size_t spc_count;
	/* the data directory's own metadata, applied at the end */
	uint32_t root_mode, root_uid, root_gid;
	int root_seen;
	uint64_t restored, zeroed;
} pg_restore_ctx;

static const char *const pg_system_dbs[] = {"postgres", "template0", "template1", NULL};

static int pg_in_system(const char *name)
{
	const char *const *p;

	for (p = pg_system_dbs; *p; p++)
		if (strcmp(*p, name) == 0)
			return 1;
	return 0;
}

/* ---- paths ------------------------------------------------------------------ */

/* A relative path of plain parts: no empty, "." or ".." part. */
static int pg_path_is_safe(const char *p)
{
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!p[n])
			return 1;
		p += n + 1;
	}
}

static pg_tblspc *pg_find_tblspc(pg_restore_ctx *ctx, const char *oid, size_t len)
{
	size_t i;

	for (i = 0; i < ctx->spc_count; i++)
		if (strlen(ctx->spcs[i].oid) == len && strncmp(ctx->spcs[i].oid, oid, len) == 0)
			return &ctx->spcs[i];
	return NULL;
}

/* Where an entry goes: a new string, or NULL after recording an error. */
static char *pg_target_path(pg_restore_ctx *ctx, const char *path)
{
	char *out = NULL;

	if (!pg_path_is_safe(path)) {
		ctx->host->error(CAIRN_ECORRUPT, "unsafe path in backup: %s", path);
		return NULL;
	}
	if (strcmp(path, "pgdata") == 0) {
		out = strdup(ctx->dest);
	} else if (strncmp(path, "pgdata/", 7) == 0) {
		/* Tablespace contents come as tablespace/<oid>/..., never through the link. */
		if (strncmp(path + 7, "pg_tblspc/", 10) == 0 && strchr(path + 17, '/')) {
			ctx->host->error(CAIRN_ECORRUPT, "unexpected path in backup: %s", path);
			return NULL;
		}
		if (asprintf(&out, "%s/%s", ctx->dest, path + 7) < 0)
			out = NULL;
	} else if (strncmp(path, "tablespace/", 11) == 0) {
		const char *oid = path + 11;
		size_t n = strcspn(oid, "/");
		pg_tblspc *spc = pg_find_tblspc(ctx, oid, n);

		if (!spc) {
			ctx->host->error(CAIRN_ECORRUPT, "backup has %s before its tablespace link",
			                 path);
			return NULL;
		}
		if (asprintf(&out, "%s%s", spc->location, oid + n) < 0)
			out = NULL;
	} else {
		ctx->host->error(CAIRN_ECORRUPT, "unexpected path in backup: %s", path);
		return NULL;
	}
	if (!out)
		pg_out_of_memory(ctx->host);
	return out;
}

static int pg_mkdirs(const cairn_host *host, const char *path, mode_t mode)
{
	char *copy = strdup(path), *p;
	int error = 0;

	if (!copy)
		return pg_out_of_memory(host);
	for (p = copy + 1;; p++) {
		char saved = *p;

		if (saved != '/' && saved != '\0')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			error = pg_syscall_error(host, errno, "create directory", copy);
			break;
		}
		*p = saved;
		if (!saved)
			break;
	}
	free(copy);
	return error;
}

/* 1 when path is missing or an empty directory, 0 when it has something. */
static int pg_is_empty_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int empty = 1;

	if (!d)
		return errno == ENOENT;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

static void pg_apply_owner(pg_restore_ctx *ctx, const char *path, uint32_t uid, uint32_t gid)
{
	if (ctx->set_owner && lchown(path, (uid_t)uid, (gid_t)gid) < 0)
		ctx->host->log(CAIRN_LOG_WARN, "cannot set the owner of %s: %s", path,
		               strerror(errno));
}

/* ---- the relation map (partial restore) ------------------------------------- */

static void pg_unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
			*out++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

static pg_db *pg_find_db_by_name(pg_restore_ctx *ctx, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ctx->db_count; i++)
		if (strlen(ctx->dbs[i].name) == len && strncmp(ctx->dbs[i].name, name, len) == 0)
			return &ctx->dbs[i];
	return NULL;
}

static pg_db *pg_find_db(pg_restore_ctx *ctx, uint32_t oid)
{
	size_t i;

	for (i = 0; i < ctx->db_count; i++)
		if (ctx->dbs[i].oid == oid)
			return &ctx->dbs[i];
	return NULL;
}

/*
 * Whether the table schema.table of database db is among the restore-only
 * items; `item` is "table" or "schema.table".
 */
static int pg_table_selected(pg_restore_ctx *ctx, const pg_db *db, const char *schema,
                             const char *table)
{
	const char *p = ctx->only;

	while (*p) {
		size_t n = strcspn(p, ","), dn = strcspn(p, "/");

		if (dn < n && strlen(db->name) == dn && strncmp(p, db->name, dn) == 0) {
			const char *item = p + dn + 1;
			size_t in = n - dn - 1, sn = strlen(schema), tn = strlen(table);

			if ((in == tn && strncmp(item, table, tn) == 0) ||
			    (in == sn + 1 + tn && strncmp(item, schema, sn) == 0 && item[sn] == '.' &&
			     strncmp(item + sn + 1, table, tn) == 0))
				return 1;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int pg_relmap_line(pg_restore_ctx *ctx, char *line)
{
	char *f[5];
	int n = 0;

	f[n++] = line;
	for (; *line && n < 5; line++)
		if (*line == '\t') {
			*line = '\0';
			f[n++] = line + 1;
		}
	if (n == 3 && strcmp(f[0], "database") == 0) {
		pg_db *db;

		if (ctx->db_count == ctx->db_cap) {
			size_t cap = ctx->db_cap ? ctx->db_cap * 2 : 16;
			pg_db *grown = realloc(ctx->dbs, cap * sizeof(*grown));

			if (!grown)
				return pg_out_of_memory(ctx->host);
			ctx->dbs = grown;
			ctx->db_cap = cap;
		}
		db = &ctx->dbs[ctx->db_count];
		pg_unescape(f[2]);
		db->oid = (uint32_t)strtoul(f[1], NULL, 10);
		db->whole = pg_in_system(f[2]);
		if (!(db->name = strdup(f[2])))
			return pg_out_of_memory(ctx->host);
		ctx->db_count++;
		return 0;
	}
	if (n == 5 && strcmp(f[0], "relation") == 0) {
		uint32_t oid = (uint32_t)strtoul(f[1], NULL, 10);
		pg_db *db = pg_find_db(ctx, oid);
		pg_rel *rel;

		if (!db)
			return ctx->host->error(CAIRN_ECORRUPT, "relation map names unknown database %s",
			                        f[1]);
		if (ctx->rel_count == ctx->rel_cap) {
			size_t cap = ctx->rel_cap ? ctx->rel_cap * 2 : 256;
			pg_rel *grown = realloc(ctx->rels, cap * sizeof(*grown));

			if (!grown)
				return pg_out_of_memory(ctx->host);
			ctx->rels = grown;
			ctx->rel_cap = cap;
		}
		pg_unescape(f[3]);
		pg_unescape(f[4]);
		rel = &ctx->rels[ctx->rel_count++];
		rel->db = oid;
		rel->filenode = (uint32_t)strtoul(f[2], NULL, 10);
		rel->keep = pg_table_selected(ctx, db, f[3], f[4]);
		return 0;
	}
	return ctx->host->error(CAIRN_ECORRUPT, "unexpected line in the backup's relation map");
}

static int pg_rel_cmp(const void *x, const void *y)
{
	const pg_rel *a = x, *b = y;

	if (a->db != b->db)
		return a->db < b->db ? -1 : 1;
	if (a->filenode != b->filenode)
		return a->filenode < b->filenode ? -1 : 1;
	return 0;
}

/*
 * Checks every restore-only item against the map: a name that matches
 * nothing is a mistake the user wants to hear about before anything is
 * written.
 */
static int pg_check_only(pg_restore_ctx *ctx)
{
	const char *p = ctx->only;
	size_t i;

	while (*p) {
		size_t n = strcspn(p, ","), dn = strcspn(p, "/");
		pg_db *db = pg_find_db_by_name(ctx, p, dn < n ? dn : n);

		if (n == 0 || !db)
			return ctx->host->error(CAIRN_EINVALID,
			                        "restore-only: database '%.*s' is not in this backup",
			                        (int)(dn < n ? dn : n), p);
		if (dn >= n) {
			db->whole = 1;
		} else {
			int found = 0;

			/* Tables of this item: a kept relation of this database it names. */
			for (i = 0; i < ctx->rel_count && !found; i++)
				found = ctx->rels[i].db == db->oid && ctx->rels[i].keep;
			if (!found)
				return ctx->host->error(CAIRN_EINVALID,
				                        "restore-only: no table in '%.*s' matches in this "
				                        "backup",
				                        (int)n, p);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (ctx->rel_count > 1)
		qsort(ctx->rels, ctx->rel_count, sizeof(*ctx->rels), pg_rel_cmp);
	return 0;
}

static int pg_read_relmap(pg_restore_ctx *ctx)
{
	char line[4096];
	size_t len = 0, n, i;
	int error;

	ctx->relmap_seen = 1;
	if (!ctx->only)
		return 0; /* not read: the host skips its data */
	for (;;) {
		if ((error = ctx->host->entry_read(ctx->r, ctx->buf, PG_IO_BUFFER_SIZE, &n)) < 0)
			return error;
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			if (ctx->buf[i] != '\n') {
				if (len + 1 >= sizeof(line))
					return ctx->host->error(CAIRN_ECORRUPT,
					                        "line too long in the backup's relation map");
				line[len++] = (char)ctx->buf[i];
				continue;
			}
			line[len] = '\0';
			len = 0;
			if ((error = pg_relmap_line(ctx, line)) < 0)
				return error;
		}
	}
	return pg_check_only(ctx);
}

/* Parses "base/<db>/<file>" or "<PG_x_y>/<db>/<file>" below a tablespace. */
static int pg_relation_of(const char *path, uint32_t *db, uint32_t *filenode)
{
	const char *rest, *file;
	char *end;
	unsigned long d, f;

	if (strncmp(path, "pgdata/base/", 12) == 0) {
		rest = path + 12;
	} else if (strncmp(path, "tablespace/", 11) == 0) {
		rest = strchr(path + 11, '/');
		if (!rest || !(rest = strchr(rest + 1, '/')))
			return 0;
		rest++;
	} else {
		return 0;
	}
	d = strtoul(rest, &end, 10);
	if (end == rest || *end != '/')
		return 0;
	file = end + 1;
	f = strtoul(file, &end, 10);
	if (end == file || strchr(file, '/') || (*end && *end != '_' && *end != '.'))
		return 0;
	*db = (uint32_t)d;
	*filenode = (uint32_t)f;
	return 1;
}

/* Whether a file's data is restored (1) or replaced by zeros (0). */
static int pg_keep_data(pg_restore_ctx *ctx, const char *path)
{
	uint32_t dboid, filenode;
	const pg_db *db;
	pg_rel key, *rel;

	if (!ctx->only || !pg_relation_of(path, &dboid, &filenode))
		return 1;
	if (!(db = pg_find_db(ctx, dboid)) || db->whole)
		return 1;
	if (!ctx->rel_count)
		return 1;
	key.db = dboid;
	key.filenode = filenode;
	rel = bsearch(&key, ctx->rels, ctx->rel_count, sizeof(key), pg_rel_cmp);
	/* Not a user relation: a catalog, or created after the map was read. */
	return !rel || rel->keep;
}

/* ---- entries ----------------------------------------------------------------- */

static int pg_restore_dir(pg_restore_ctx *ctx, const cairn_entry *e, const char *target)
{
	struct stat sb;
	int error;

	if (strcmp(e->path, "pgdata") == 0) {
		ctx->root_mode = e->mode;
		ctx->root_uid = e->uid;
		ctx->root_gid = e->gid;
		ctx->root_seen = 1;
		return 0;
	}
	if (mkdir(target, 0700) < 0) {
		if (errno != EEXIST || lstat(target, &sb) < 0 || !S_ISDIR(sb.st_mode))
			return pg_syscall_error(ctx->host, errno == EEXIST ? ENOTDIR : errno,
			                        "create directory", target);
	}
	error = chmod(target, (mode_t)e->mode) < 0
	            ? pg_syscall_error(ctx->host, errno, "set the mode of", target)
	            : 0;
	pg_apply_owner(ctx, target, e->uid, e->gid);
	return error;
}

/* Reads the current entry's data whole (small files only) into a new string. */
static int pg_read_small(pg_restore_ctx *ctx, char **out)
{
	char *text = NULL;
	size_t len = 0, n;
	int error;

	*out = NULL;
	for (;;) {
		if ((error = ctx->host->entry_read(ctx->r, ctx->buf, PG_IO_BUFFER_SIZE, &n)) < 0)
			goto fail;
		if (n == 0)
			break;
		if (len + n > PG_SMALL_FILE_MAX) {
			error = ctx->host->error(CAIRN_ECORRUPT, "unexpectedly large file in backup");
			goto fail;
		}
		{
			char *grown = realloc(text, len + n + 1);

			if (!grown) {
				error = pg_out_of_memory(ctx->host);
				goto fail;
			}
			text = grown;
		}
		memcpy(text + len, ctx->buf, n);
		len += n;
	}
	if (!text && !(text = malloc(1))) {
		error = pg_out_of_memory(ctx->host);
		goto fail;
	}
	text[len] = '\0';
	*out = text;
	return 0;
fail:
	free(text);
	return error;
}

/*
 * tablespace_map lines are "<oid> <path>": the paths of remapped
 * tablespaces are replaced, so that start-up links them where they are now.
 */
static int pg_rewrite_tablespace_map(pg_restore_ctx *ctx, const char *text, int fd,
                                     const char *target)
{
	const char *line = text;

	while (*line) {
		size_t n = strcspn(line, "\n"), o = strcspn(line, " ");
		pg_tblspc *spc = o < n ? pg_find_tblspc(ctx, line, o) : NULL;
		int bad;

		if (spc)
			bad = dprintf(fd, "%.*s %s\n", (int)o, line, spc->location) < 0;
		else
			bad = dprintf(fd, "%.*s\n", (int)n, line) < 0;
		if (bad)
			return pg_syscall_error(ctx->host, errno, "write", target);
		line += n;
		if (*line)
			line++;
	}
	return 0;
}

static int pg_restore_file(pg_restore_ctx *ctx, const cairn_entry *e, const char *target)
{
	const cairn_host *host = ctx->host;
	struct timespec times[2];
	uint64_t written = 0;
	int fd, error = 0, keep = pg_keep_data(ctx, e->path);

	fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return pg_syscall_error(host, errno, "create", target);
	if (strcmp(e->path, "pgdata/tablespace_map") == 0) {
		char *text = NULL;

		if ((error = pg_read_small(ctx, &text)) == 0)
			error = pg_rewrite_tablespace_map(ctx, text, fd, target);
		free(text);
		if (error < 0)
			goto done;
	} else if (!keep) {
		/* Same size, all zeros, sparse: PostgreSQL sees new, empty pages. */
		if (ftruncate(fd, (off_t)e->size) < 0) {
			error = pg_syscall_error(host, errno, "extend", target);
			goto done;
		}
		ctx->zeroed++;
	} else {
		for (;;) {
			size_t n;

			if ((error = host->entry_read(ctx->r, ctx->buf, PG_IO_BUFFER_SIZE, &n)) < 0)
				goto done;
			if (n == 0)
				break;
			if (cairn_write_all(fd, ctx->buf, n) < 0) {
				error = pg_syscall_error(host, errno, "write", target);
				goto done;
			}
			written += n;
		}
		if (written != e->size) {
			error = host->error(CAIRN_ECORRUPT, "restored %s has %" PRIu64
			                                    " bytes, the backup says %" PRIu64,
			                    target, written, e->size);
			goto done;
		}
		ctx->restored++;
	}
	if (fchmod(fd, (mode_t)e->mode) < 0) {
		error = pg_syscall_error(host, errno, "set the mode of", target);
		goto done;
	}
	if (ctx->set_owner && fchown(fd, (uid_t)e->uid, (gid_t)e->gid) < 0)
		host->log(CAIRN_LOG_WARN, "cannot set the owner of %s: %s", target, strerror(errno));
	times[0].tv_sec = times[1].tv_sec = (time_t)e->mtime_sec;
	times[0].tv_nsec = times[1].tv_nsec = (long)e->mtime_nsec;
	if (futimens(fd, times) < 0) {
		error = pg_syscall_error(host, errno, "set the times of", target);
		goto done;
	}
done:
	if (close(fd) < 0 && error == 0)
		error = pg_syscall_error(host, errno, "close", target);
	return error;
}

/*
 * Where tablespace `oid`, at `old` when backed up, goes: the tablespace-map
 * setting maps OLD=NEW pairs, OLD being the OID or the old path.
 */
static int pg_tablespace_location(pg_restore_ctx *ctx, const char *oid, const char *old,
                                  char **out)
{
	const char *p = ctx->host->config_get("tablespace-map");

	*out = NULL;
	while (p && *p) {
		size_t n = strcspn(p, ","), eq = strcspn(p, "=");

		if (eq >= n)
			return ctx->host->error(CAIRN_EINVALID,
			                        "tablespace-map: '%.*s' is not OLD=NEW", (int)n, p);
		if ((strlen(oid) == eq && strncmp(p, oid, eq) == 0) ||
		    (strlen(old) == eq && strncmp(p, old, eq) == 0)) {
			if (p[eq + 1] != '/')
				return ctx->host->error(CAIRN_EINVALID,
				                        "tablespace-map: '%.*s' is not an absolute path",
				                        (int)(n - eq - 1), p + eq + 1);
			*out = strndup(p + eq + 1, n - eq - 1);
			return *out ? 0 : pg_out_of_memory(ctx->host);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	*out = strdup(old);
	return *out ? 0 : pg_out_of_memory(ctx->host);
}

static int pg_restore_symlink(pg_restore_ctx *ctx, const cairn_entry *e, const char *target)
{
	const char *link = e->link_target;
	char *location = NULL;
	pg_tblspc *grown;
	int error = 0;

	if (!link || !*link)
		return ctx->host->error(CAIRN_ECORRUPT, "symlink %s in backup has no target", e->path);
	if (strncmp(e->path, "pgdata/pg_tblspc/", 17) == 0) {
		const char *oid = e->path + 17;

		if (strlen(oid) >= sizeof(grown->oid) || strspn(oid, "0123456789") != strlen(oid))
			return ctx->host->error(CAIRN_ECORRUPT, "unexpected tablespace link %s", e->path);
		if ((error = pg_tablespace_location(ctx, oid, link, &location)) < 0)
			return error;
		if (!ctx->force && !pg_is_empty_dir(location)) {
			error = ctx->host->error(CAIRN_EEXISTS,
			                         "tablespace %s would be restored into %s, which is not "
			                         "empty (use --tablespace-map=%s=NEWDIR or --force)",
			                         oid, location, oid);
			goto done;
		}
		if ((error = pg_mkdirs(ctx->host, location, 0700)) < 0)
			goto done;
		if (!(grown = realloc(ctx->spcs, (ctx->spc_count + 1) * sizeof(*grown)))) {
			error = pg_out_of_memory(ctx->host);
			goto done;
		}
		ctx->spcs = grown;
		snprintf(grown[ctx->spc_count].oid, sizeof(grown->oid), "%s", oid);
		grown[ctx->spc_count++].location = location;
		link = location;
		location = NULL;
	}
	if (ctx->force)
		unlink(target);
	if (symlink(link, target) < 0) {
		error = pg_syscall_error(ctx->host, errno, "create symlink", target);
		goto done;
	}
	pg_apply_owner(ctx, target, e->uid, e->gid);
done:
	free(location);
	return error;
}

/* ---- recovery settings ----------------------------------------------------- */

/* Appends s to a shell command, single-quoted. */
static int pg_shell_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	return fputc('\'', f) == EOF ? -1 : 0;
}

/* Writes `key = 'value'` with the quotes of the value doubled, as postgresql.conf wants. */
static int pg_conf_line(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%s = '", key);
	for (; *value; value++) {
		if (*value == '\'')
			fputc('\'', f);
		fputc(*value, f);
	}
	return fputs("'\n", f) == EOF ? -1 : 0;
}

/* An option of the restore_command: --name='value'. */
static void pg_command_option(FILE *cmd, const char *name, const char *value)
{
	fprintf(cmd, " --%s=", name);
	pg_shell_quote(cmd, value);
}

/*
 * The restore_command: this cairn binary, with the repository, plugin
 * folder, config file and key file it runs with now, made absolute, so
 * the server (another user, another working directory) finds them.
 */
static int pg_restore_command(pg_restore_ctx *ctx, char **out)
{
	const cairn_host *host = ctx->host;
	const char *repo = host->config_get("repo"), *v;
	char exe[PATH_MAX], *abs = NULL, *text = NULL;
	size_t size = 0;
	ssize_t n;
	FILE *cmd;

	*out = NULL;
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0)
		return pg_syscall_error(host, errno, "find the path of", "/proc/self/exe");
	exe[n] = '\0';
	if (!repo || !*repo)
		return host->error(CAIRN_EINVALID, "no repository to restore WAL from (set --repo)");
	if (!(cmd = open_memstream(&text, &size)))
		return pg_out_of_memory(host);
	pg_shell_quote(cmd, exe);
	fputs(" pg wal-fetch %f %p", cmd);
	/* A local repository given as a relative path is made absolute. */
	if (!strstr(repo, "://") && repo[0] != '/' && (abs = realpath(repo, NULL)))
		repo = abs;
	pg_command_option(cmd, "repo", repo);
	free(abs);
	if ((v = host->config_get("plugin-dir")) && *v) {
		abs = realpath(v, NULL);
		pg_command_option(cmd, "plugin-dir", abs ? abs : v);
		free(abs);
	}
	if ((v = host->config_get("config")) && *v) {
		abs = realpath(v, NULL);
		pg_command_option(cmd, "config", abs ? abs : v);
		free(abs);
	}
	if ((v = host->config_get("encryption-key-file")) && *v) {
		abs = realpath(v, NULL);
		pg_command_option(cmd, "encryption-key-file", abs ? abs : v);
		free(abs);
	}
	if (host->config_int("prefetch") > 0)
		fprintf(cmd, " --prefetch=%" PRId64, host->config_int("prefetch"));
	if (fclose(cmd) != 0) {
		free(text);
		return pg_out_of_memory(host);
	}
	if (host->config_get("encryption-passphrase"))
		host->log(CAIRN_LOG_WARN,
		          "the repository is encrypted with a passphrase: the server's restore_command "
		          "needs CAIRN_ENCRYPTION_PASSPHRASE in the server's environment");
	*out = text;
	return 0;
}

/* The recovery target options, checked before anything is written. */
static int pg_recovery_wanted(const cairn_host *host, int *wanted)
{
	uint64_t lsn;
	int targets = (host->config_get("until") != NULL) + (host->config_get("target-lsn") != NULL) +
	              (host->config_get("target-name") != NULL) + host->config_bool("immediate");
	const char *action = host->config_get("target-action");

	if (targets > 1)
		return host->error(CAIRN_EINVALID, "give one recovery target: --until, --target-lsn, "
		                                   "--target-name or --immediate");
	if (host->config_get("target-lsn") && pg_parse_lsn(host->config_get("target-lsn"), &lsn) < 0)
		return host->error(CAIRN_EINVALID, "target-lsn '%s' is not an LSN like 0/3000060",
		                   host->config_get("target-lsn"));
	if (action && strcmp(action, "promote") != 0 && strcmp(action, "pause") != 0 &&
	    strcmp(action, "shutdown") != 0)
		return host->error(CAIRN_EINVALID,
		                   "target-action '%s' is not pause, promote or shutdown", action);
	*wanted = targets > 0 || host->config_bool("recovery") || host->config_get("restore-only");
	return 0;
}

static int pg_write_recovery(pg_restore_ctx *ctx)
{
	const cairn_host *host = ctx->host;
	char *command = NULL, *path = NULL;
	const char *v;
	FILE *f = NULL;
	int fd, error;

	if ((error = pg_restore_command(ctx, &command)) < 0)
		return error;
	if (asprintf(&path, "%s/postgresql.auto.conf", ctx->dest) < 0) {
		path = NULL;
		error = pg_out_of_memory(host);
		goto done;
	}
	if (!(f = fopen(path, "a"))) {
		error = pg_syscall_error(host, errno, "open", path);
		goto done;
	}
	fputs("\n# Written by cairn backup-fetch: recovery from the cairn repository.\n"
	      "# Remove these lines once the restore is complete.\n",
	      f);
	pg_conf_line(f, "restore_command", command);
	if ((v = host->config_get("until")))
		pg_conf_line(f, "recovery_target_time", v);
	if ((v = host->config_get("target-lsn")))
		pg_conf_line(f, "recovery_target_lsn", v);
	if ((v = host->config_get("target-name")))
		pg_conf_line(f, "recovery_target_name", v);
	if (host->config_bool("immediate"))
		pg_conf_line(f, "recovery_target", "immediate");
	if ((v = host->config_get("target-timeline")))
		pg_conf_line(f, "recovery_target_timeline", v);
	if ((host->config_get("until") || host->config_get("target-lsn") ||
	     host->config_get("target-name") || host->config_bool("immediate")) &&
	    (v = host->config_get("target-action")))
		pg_conf_line(f, "recovery_target_action", v);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		error = pg_syscall_error(host, errno, "write", path);
		goto done;
	}
	pg_apply_owner(ctx, path, ctx->root_uid, ctx->root_gid);
	free(path);
	if (asprintf(&path, "%s/recovery.signal", ctx->dest) < 0) {
		path = NULL;
		error = pg_out_of_memory(host);
		goto done;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		error = pg_syscall_error(host, errno, "create", path);
		goto done;
	}
	close(fd);
	pg_apply_owner(ctx, path, ctx->root_uid, ctx->root_gid);
done:
	if (f)
		fclose(f);
	free(path);
	free(command);
	return error;
}

/* ---- the restore ------------------------------------------------------------ */

static int pg_open_dest(pg_restore_ctx *ctx)
{
	struct stat sb;

	if (stat(ctx->dest, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode))
			return ctx->host->error(CAIRN_EINVALID,
			                        "restore destination %s is not a directory", ctx->dest);
		if (!ctx->force && !pg_is_empty_dir(ctx->dest))
			return ctx->host->error(CAIRN_EEXISTS,
			                        "restore destination %s is not empty (use --force to "
			                        "write into it)",
			                        ctx->dest);
		return 0;
	}
	if (errno != ENOENT)
		return pg_syscall_error(ctx->host, errno, "open restore destination", ctx->dest);
	return pg_mkdirs(ctx->host, ctx->dest, 0700);
}

int pg_restore(const cairn_host *host, cairn_backup_reader *r, const char *dest)
{
	pg_restore_ctx ctx = {.host = host, .r = r, .dest = dest};
	const cairn_entry *e;
	const char *only = host->config_get("restore-only");
	size_t i;
	int more, error, recovery = 0, fd;

	ctx.force = host->config_bool("force");
	ctx.set_owner = geteuid() == 0;
	if ((error = pg_recovery_wanted(host, &recovery)) < 0)
		return error;
	if (only && *only && !(ctx.only = strdup(only)))
		return pg_out_of_memory(host);
	if (!host->meta_get(r, "start-wal")) {
		error = host->error(CAIRN_ECORRUPT, "backup has no start-wal: not a pg base backup");
		goto done;
	}
	if ((error = pg_open_dest(&ctx)) < 0)
		goto done;
	if (!(ctx.buf = malloc(PG_IO_BUFFER_SIZE))) {
		error = pg_out_of_memory(host);
		goto done;
	}
	while ((more = host->entry_next(r, &e)) > 0) {
		char *target = NULL;

		if (strcmp(e->path, "relmap") == 0 && e->type == CAIRN_ENTRY_STREAM) {
			if ((error = pg_read_relmap(&ctx)) < 0)
				goto done;
			continue;
		}
		if (ctx.only && !ctx.relmap_seen) {
			error = host->error(CAIRN_EUNSUPPORTED,
			                    "this backup has no relation map: restore-only needs one");
			goto done;
		}
		if (!(target = pg_target_path(&ctx, e->path))) {
			error = CAIRN_ECORRUPT;
			goto done;
		}
		switch (e->type) {
		case CAIRN_ENTRY_DIR:
			error = pg_restore_dir(&ctx, e, target);
			break;
		case CAIRN_ENTRY_FILE:
			error = pg_restore_file(&ctx, e, target);
			break;
		case CAIRN_ENTRY_SYMLINK:
			error = pg_restore_symlink(&ctx, e, target);
			break;
		default:
			error = host->error(CAIRN_ECORRUPT, "unexpected entry %s in backup", e->path);
			break;
		}
		free(target);
		if (error < 0)
			goto done;
	}
	if (more < 0) {
		error = more;
		goto done;
	}
	if (!ctx.root_seen) {
		error = host->error(CAIRN_ECORRUPT, "backup has no data directory");
		goto done;
	}
	if (recovery && (error = pg_write_recovery(&ctx)) < 0)
		goto done;
	/* PostgreSQL refuses a data directory open to others: 0700 or 0750. */
	if (chmod(dest, (mode_t)(ctx.root_mode & 0750)) < 0) {
		error = pg_syscall_error(host, errno, "set the mode of", dest);
		goto done;
	}
	pg_apply_owner(&ctx, dest, ctx.root_uid, ctx.root_gid);
	/* Reported done only once it is all on disk. */
	if ((fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		if (syncfs(fd) < 0)
			error = pg_syscall_error(host, errno, "sync restored files in", dest);
		close(fd);
	}
	if (error == 0 && ctx.only)
		host->log(CAIRN_LOG_WARN,
		          "partial restore: %" PRIu64 " files of other databases and tables were "
		          "written as zeros; drop those databases and tables once the server is up",
		          ctx.zeroed);
	if (error == 0 && !recovery)
		host->log(CAIRN_LOG_INFO, "restored the files only: set restore_command and create "
		                          "recovery.signal (or use --recovery) before starting the server");
done:
	for (i = 0; i < ctx.db_count; i++)
		free(ctx.dbs[i].name);
	free(ctx.dbs);
	free(ctx.rels);
	for (i = 0; i < ctx.spc_count; i++)
		free(ctx.spcs[i].location);
	free(ctx.spcs);
	free(ctx.only);
	free(ctx.buf);
	return error;
}
