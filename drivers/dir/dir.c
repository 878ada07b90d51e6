/*
 * dir.c - the "dir" driver: backs up and restores a directory tree.
 *
 * This is the reference driver: start a new driver by copying it. It shows
 * the parts every driver has: one exported init function that only
 * registers, a descriptor, a backup function that turns a source into
 * entries for the host's backup writer, and a restore function that turns
 * the host's entries back into the source. Chunking, deduplication,
 * compression, encryption and storage all happen in the host.
 *
 * What is kept: regular files (data, mode, owner, mtime), directories and
 * symlinks. Not kept, because cairn_entry has no field for them: hard links
 * (each link becomes a separate file; its data is deduplicated anyway), holes
 * of sparse files, xattrs, ACLs, atimes. FIFOs, sockets and device nodes are
 * skipped with a warning.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <cairn/plugin.h>
#include <cairn/util.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Bounds the memory of a backup or restore, whatever the file sizes. */
#define DIR_IO_BUFFER_SIZE (1024 * 1024)

/* ---- shared helpers --------------------------------------------------- */

/* Reports a failed syscall: "cannot <action> <path>: <strerror>". */
static int dir_syscall_error(const cairn_host *host, int err, const char *action,
                             const char *path)
{
	return host->error(cairn_errno_code(err), "cannot %s %s: %s", action, path, strerror(err));
}

static int dir_out_of_memory(const cairn_host *host)
{
	return host->error(CAIRN_ENOMEM, "out of memory in driver dir");
}

/*
 * Creates `path` and its missing parents, like mkdir -p. `path` is the
 * user's restore destination, so symlinks in it are followed like any
 * command would.
 */
static int dir_make_dirs(const cairn_host *host, const char *path)
{
	char *copy = strdup(path);
	char *p;
	int error = 0;

	if (!copy)
		return dir_out_of_memory(host);
	for (p = copy + 1;; p++) {
		char saved = *p;

		if (saved != '/' && saved != '\0')
			continue;
		*p = '\0';
		if (mkdir(copy, 0777) < 0 && errno != EEXIST) {
			/* Some systems report EACCES before EEXIST for a directory that exists. */
			int err = errno;
			struct stat sb;

			if (stat(copy, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
				error = dir_syscall_error(host, err, "create directory", copy);
				break;
			}
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(copy);
	return error;
}

/* ---- backup ------------------------------------------------------------- */

typedef struct dir_backup_ctx {
	const cairn_host *host;
	cairn_backup_writer *w;
	/*
	 * Absolute path of the entry being visited, for messages and for the
	 * entry path, which is path + rel_offset ("" for the root).
	 */
	char *path;
	size_t path_len, path_cap;
	size_t rel_offset;
	unsigned char *buf; /* DIR_IO_BUFFER_SIZE bytes, reused for every file */
} dir_backup_ctx;

/* Appends "/name" to ctx->path; the caller truncates it back to its old length. */
static int dir_path_push(dir_backup_ctx *ctx, const char *name)
{
	size_t name_len = strlen(name);
	int need_slash = ctx->path_len > 0 && ctx->path[ctx->path_len - 1] != '/';
	size_t need = ctx->path_len + (size_t)need_slash + name_len + 1;

	if (need > ctx->path_cap) {
		size_t cap = ctx->path_cap ? ctx->path_cap : 256;
		char *grown;

		while (cap < need)
			cap *= 2;
		if (!(grown = realloc(ctx->path, cap)))
			return dir_out_of_memory(ctx->host);
		ctx->path = grown;
		ctx->path_cap = cap;
	}
	if (need_slash)
		ctx->path[ctx->path_len++] = '/';
	memcpy(ctx->path + ctx->path_len, name, name_len + 1);
	ctx->path_len += name_len;
	return 0;
}

static void dir_path_pop(dir_backup_ctx *ctx, size_t len)
{
	ctx->path_len = len;
	ctx->path[len] = '\0';
}

static const char *dir_rel_path(const dir_backup_ctx *ctx)
{
	return ctx->path_len > ctx->rel_offset ? ctx->path + ctx->rel_offset : ".";
}

static void dir_entry_from_stat(cairn_entry *entry, cairn_entry_type type, const char *path,
                                const struct stat *sb)
{
	memset(entry, 0, sizeof(*entry));
	entry->type = type;
	entry->path = path;
	entry->mode = (uint32_t)(sb->st_mode & 07777);
	entry->uid = (uint32_t)sb->st_uid;
	entry->gid = (uint32_t)sb->st_gid;
	entry->mtime_sec = (int64_t)sb->st_mtim.tv_sec;
	entry->mtime_nsec = (uint32_t)sb->st_mtim.tv_nsec;
	/* CDC: files change by insertions too, not only in place. */
	entry->chunking = CAIRN_CHUNK_CDC;
}

/* An entry without data: a directory or a symlink. */
static int dir_write_entry(dir_backup_ctx *ctx, const cairn_entry *entry)
{
	int error = ctx->host->entry_begin(ctx->w, entry);

	return error < 0 ? error : ctx->host->entry_end(ctx->w);
}

/*
 * A live tree changes while it is read. An entry that disappears or changes
 * type between readdir and open is what a copy made a moment later would not
 * have either: warn and go on, as tar does.
 */
static int dir_skip_changed(dir_backup_ctx *ctx, const char *why)
{
	ctx->host->log(CAIRN_LOG_WARN, "skipping %s: %s during the backup", ctx->path, why);
	return 0;
}

static int dir_compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Reads the names in `dir` sorted bytewise (not by locale), so that the same
 * tree always gives the same backup. The names of one directory are all the
 * walk holds per level: subtrees are never buffered.
 */
static int dir_read_names(dir_backup_ctx *ctx, DIR *dir, char ***out, size_t *out_count)
{
	char **names = NULL;
	size_t count = 0, cap = 0, i;
	int error = 0;

	for (;;) {
		const struct dirent *de;

		errno = 0;
		if (!(de = readdir(dir))) {
			if (errno)
				error = dir_syscall_error(ctx->host, errno, "read directory",
				                          ctx->path);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (count == cap) {
			size_t new_cap = cap ? cap * 2 : 64;
			char **grown = realloc(names, new_cap * sizeof(*names));

			if (!grown) {
				error = dir_out_of_memory(ctx->host);
				break;
			}
			names = grown;
			cap = new_cap;
		}
		if (!(names[count] = strdup(de->d_name))) {
			error = dir_out_of_memory(ctx->host);
			break;
		}
		count++;
	}
	if (error < 0) {
		for (i = 0; i < count; i++)
			free(names[i]);
		free(names);
		return error;
	}
	if (count > 1)
		qsort(names, count, sizeof(*names), dir_compare_names);
	*out = names;
	*out_count = count;
	return 0;
}

static int dir_backup_children(dir_backup_ctx *ctx, int fd);

/*
 * O_NOFOLLOW because the name was a regular file at fstatat time but may be
 * a symlink now; O_NONBLOCK because it may be a FIFO now, and opening a FIFO
 * waits for a writer. The fstat of the open file decides.
 */
static int dir_backup_file(dir_backup_ctx *ctx, int parent_fd, const char *name)
{
	const cairn_host *host = ctx->host;
	struct stat before, after;
	cairn_entry entry;
	int fd, error;

	fd = openat(parent_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return dir_skip_changed(ctx, "removed");
		if (errno == ELOOP)
			return dir_skip_changed(ctx, "changed type");
		return dir_syscall_error(host, errno, "open", ctx->path);
	}
	if (fstat(fd, &before) < 0) {
		error = dir_syscall_error(host, errno, "stat", ctx->path);
		goto done;
	}
	if (!S_ISREG(before.st_mode)) {
		error = dir_skip_changed(ctx, "changed type");
		goto done;
	}
	dir_entry_from_stat(&entry, CAIRN_ENTRY_FILE, dir_rel_path(ctx), &before);
	/* A file as it was in the previous backup is taken from it, not read again. */
	if (host->version >= 5) {
		entry.size = (uint64_t)before.st_size;
		if ((error = host->entry_reuse(ctx->w, &entry)) != 0) {
			if (error > 0)
				error = 0;
			goto done;
		}
	}
	if ((error = host->entry_begin(ctx->w, &entry)) < 0)
		goto done;
	for (;;) {
		ssize_t n = read(fd, ctx->buf, DIR_IO_BUFFER_SIZE);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			error = dir_syscall_error(host, errno, "read", ctx->path);
			goto done;
		}
		if (n == 0)
			break;
		if ((error = host->entry_write(ctx->w, ctx->buf, (size_t)n)) < 0)
			goto done;
	}
	/*
	 * A file written to while we read it may be backed up half old, half
	 * new. Say so; refusing would make busy trees impossible to back up.
	 */
	if (fstat(fd, &after) == 0 &&
	    (after.st_size != before.st_size || after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
	     after.st_mtim.tv_nsec != before.st_mtim.tv_nsec))
		host->log(CAIRN_LOG_WARN,
		          "%s changed while it was read; its copy may be inconsistent", ctx->path);
	error = host->entry_end(ctx->w);
done:
	close(fd);
	return error;
}

/*
 * Mount points below the source are crossed, like cp -r and unlike
 * tar --one-file-system: backing up what the user sees is the least
 * surprising default.
 */
static int dir_backup_subdir(dir_backup_ctx *ctx, int parent_fd, const char *name)
{
	cairn_entry entry;
	struct stat sb;
	int fd, error;

	fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return dir_skip_changed(ctx, "removed");
		if (errno == ENOTDIR || errno == ELOOP)
			return dir_skip_changed(ctx, "changed type");
		return dir_syscall_error(ctx->host, errno, "open directory", ctx->path);
	}
	if (fstat(fd, &sb) < 0) {
		error = dir_syscall_error(ctx->host, errno, "stat", ctx->path);
		close(fd);
		return error;
	}
	dir_entry_from_stat(&entry, CAIRN_ENTRY_DIR, dir_rel_path(ctx), &sb);
	if ((error = dir_write_entry(ctx, &entry)) < 0) {
		close(fd);
		return error;
	}
	return dir_backup_children(ctx, fd);
}

static int dir_backup_symlink(dir_backup_ctx *ctx, int parent_fd, const char *name,
                              const struct stat *sb)
{
	/* st_size is the target length, except on a few file systems where it is 0. */
	size_t size = sb->st_size > 0 ? (size_t)sb->st_size + 1 : 256;
	char *target = NULL;
	cairn_entry entry;
	int error;

	for (;;) {
		char *grown = realloc(target, size);
		ssize_t n;

		if (!grown) {
			error = dir_out_of_memory(ctx->host);
			goto done;
		}
		target = grown;
		if ((n = readlinkat(parent_fd, name, target, size)) < 0) {
			if (errno == ENOENT)
				error = dir_skip_changed(ctx, "removed");
			else if (errno == EINVAL)
				error = dir_skip_changed(ctx, "changed type");
			else
				error = dir_syscall_error(ctx->host, errno, "read symlink",
				                          ctx->path);
			goto done;
		}
		if ((size_t)n < size) { /* else it may be truncated: retry larger */
			target[n] = '\0';
			break;
		}
		size *= 2;
	}
	dir_entry_from_stat(&entry, CAIRN_ENTRY_SYMLINK, dir_rel_path(ctx), sb);
	entry.link_target = target;
	error = dir_write_entry(ctx, &entry);
done:
	free(target);
	return error;
}

/* Backs up `name` in `parent_fd`, ctx->path being its parent's path. */
static int dir_backup_one(dir_backup_ctx *ctx, int parent_fd, const char *name)
{
	size_t parent_len = ctx->path_len;
	struct stat sb;
	int error;

	if ((error = dir_path_push(ctx, name)) < 0)
		return error;
	/* Never follow a symlink: back up the link itself, not what it points to. */
	if (fstatat(parent_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			error = dir_skip_changed(ctx, "removed");
		else
			error = dir_syscall_error(ctx->host, errno, "stat", ctx->path);
	} else if (S_ISREG(sb.st_mode)) {
		error = dir_backup_file(ctx, parent_fd, name);
	} else if (S_ISDIR(sb.st_mode)) {
		error = dir_backup_subdir(ctx, parent_fd, name);
	} else if (S_ISLNK(sb.st_mode)) {
		error = dir_backup_symlink(ctx, parent_fd, name, &sb);
	} else {
		ctx->host->log(CAIRN_LOG_WARN,
		               "skipping %s: not a regular file, directory or symlink", ctx->path);
	}
	dir_path_pop(ctx, parent_len);
	return error;
}

/*
 * Backs up the contents of the directory `fd` (which it closes), depth
 * first. One open directory per level: the depth of the tree bounds the
 * number of descriptors.
 */
static int dir_backup_children(dir_backup_ctx *ctx, int fd)
{
	DIR *dir = fdopendir(fd);
	char **names = NULL;
	size_t count = 0, i;
	int error;

	if (!dir) {
		error = dir_syscall_error(ctx->host, errno, "read directory", ctx->path);
		close(fd);
		return error;
	}
	if ((error = dir_read_names(ctx, dir, &names, &count)) < 0)
		goto done;
	for (i = 0; i < count && error == 0; i++)
		error = dir_backup_one(ctx, dirfd(dir), names[i]);
done:
	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
	closedir(dir);
	return error;
}

static int dir_backup(const cairn_host *host, cairn_backup_writer *w, int argc,
                      char *const *argv)
{
	dir_backup_ctx ctx = {.host = host, .w = w};
	cairn_entry entry;
	struct stat sb;
	char *source = NULL;
	int fd = -1, error;

	if (argc != 1)
		return host->error(CAIRN_EINVALID, "usage: cairn dir backup-push PATH");
	/* The source itself may be a symlink to a directory: the user named it. */
	fd = open(argv[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOTDIR)
			return host->error(CAIRN_EINVALID, "backup source %s is not a directory",
			                   argv[0]);
		return dir_syscall_error(host, errno, "open backup source", argv[0]);
	}
	if (!(source = realpath(argv[0], NULL))) {
		error = dir_syscall_error(host, errno, "resolve backup source", argv[0]);
		goto done;
	}
	if ((error = host->meta_set(w, "source", source)) < 0)
		goto done;
	if (!(ctx.buf = malloc(DIR_IO_BUFFER_SIZE))) {
		error = dir_out_of_memory(host);
		goto done;
	}
	ctx.rel_offset = strlen(source) + (strcmp(source, "/") != 0);
	if ((error = dir_path_push(&ctx, source)) < 0)
		goto done;

	if (fstat(fd, &sb) < 0) {
		error = dir_syscall_error(host, errno, "stat", source);
		goto done;
	}
	dir_entry_from_stat(&entry, CAIRN_ENTRY_DIR, ".", &sb);
	if ((error = dir_write_entry(&ctx, &entry)) < 0)
		goto done;
	error = dir_backup_children(&ctx, fd);
	fd = -1; /* closed by dir_backup_children */
done:
	if (fd >= 0)
		close(fd);
	free(ctx.buf);
	free(ctx.path);
	free(source);
	return error;
}

/* ---- restore ------------------------------------------------------------ */

/* What restore applies to a file, directory or symlink after creating it. */
typedef struct dir_meta {
	uint32_t mode, uid, gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
} dir_meta;

/* A restored directory whose metadata is applied once its contents are written. */
typedef struct dir_pending_dir {
	char *path; /* relative to dest; "." for dest itself */
	dir_meta meta;
} dir_pending_dir;

typedef struct dir_restore_ctx {
	const cairn_host *host;
	cairn_backup_reader *r;
	const char *dest;       /* as given, for messages */
	int dest_fd;
	int force;
	int set_owner;          /* only root can give files away */
	/* The directory of the previous entry: the next one is usually in it too. */
	char *parent_path;      /* relative to dest, "" for dest */
	int parent_fd;          /* -1, dest_fd or owned */
	dir_pending_dir *dirs;
	size_t dir_count, dir_cap;
	unsigned int tmp_counter;
	unsigned char *buf;     /* DIR_IO_BUFFER_SIZE bytes, reused for every file */
} dir_restore_ctx;

/* Reports a failed syscall on `rel`, a path relative to dest. */
static int dir_restore_error(const dir_restore_ctx *ctx, int err, const char *action,
                             const char *rel)
{
	if (strcmp(rel, ".") == 0)
		return dir_syscall_error(ctx->host, err, action, ctx->dest);
	return ctx->host->error(cairn_errno_code(err), "cannot %s %s/%s: %s", action, ctx->dest, rel,
	                        strerror(err));
}

/*
 * A backup is input like any other: a path must stay inside dest. Absolute
 * paths, "..", "." and empty parts are refused (only "." itself, the root,
 * is allowed).
 */
static int dir_path_is_safe(const char *path)
{
	const char *part = path;
	const char *p;

	if (strcmp(path, ".") == 0)
		return 1;
	for (p = path;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t len = (size_t)(p - part);

			if (len == 0 || (len == 1 && part[0] == '.') ||
			    (len == 2 && part[0] == '.' && part[1] == '.'))
				return 0;
			if (*p == '\0')
				return 1;
			part = p + 1;
		}
	}
}

/*
 * Opens the directory path[0..len) below dest, one component at a time with
 * O_NOFOLLOW, and returns a descriptor the caller closes (dest_fd itself is
 * duplicated when len is 0). This is what keeps a restore inside dest: a
 * symlink restored earlier, or already in dest with --force, is never
 * followed, so a crafted backup cannot write through "a -> /etc" as "a/x".
 * Missing directories are created (0700 until their own entry, if any,
 * gives them their mode), so entries in any order restore.
 */
static int dir_open_below(dir_restore_ctx *ctx, const char *path, size_t len, int *out)
{
	char *copy = strndup(path, len);
	char *part, *next;
	int fd, error = 0;

	*out = -1;
	if (!copy)
		return dir_out_of_memory(ctx->host);
	if ((fd = dup(ctx->dest_fd)) < 0) {
		error = dir_syscall_error(ctx->host, errno, "open directory", ctx->dest);
		goto done;
	}
	for (part = copy; len > 0 && part; part = next) {
		int child;

		if ((next = strchr(part, '/')) != NULL)
			*next++ = '\0';
		child = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (child < 0 && errno == ENOENT) {
			if (mkdirat(fd, part, 0700) < 0 && errno != EEXIST) {
				error = dir_restore_error(ctx, errno, "create directory", copy);
				goto done;
			}
			child = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (child < 0) {
			if (errno == ELOOP || errno == ENOTDIR)
				error = ctx->host->error(
				    CAIRN_EEXISTS,
				    "cannot restore into %s/%s: it is a symlink or not a directory",
				    ctx->dest, copy);
			else
				error = dir_restore_error(ctx, errno, "open directory", copy);
			goto done;
		}
		close(fd);
		fd = child;
		if (next)
			next[-1] = '/'; /* so that messages show the path so far */
	}
	*out = fd;
	fd = -1;
done:
	if (fd >= 0)
		close(fd);
	free(copy);
	return error;
}

static void dir_forget_parent(dir_restore_ctx *ctx)
{
	if (ctx->parent_fd >= 0)
		close(ctx->parent_fd);
	ctx->parent_fd = -1;
	free(ctx->parent_path);
	ctx->parent_path = NULL;
}

/*
 * Returns the (borrowed) descriptor of the directory that contains `path`
 * and sets *name to its last component. Entries come depth first, so most
 * share the previous entry's directory, which is kept open.
 */
static int dir_open_parent(dir_restore_ctx *ctx, const char *path, const char **name,
                           int *out)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;
	int error;

	*name = slash ? slash + 1 : path;
	if (ctx->parent_path && strlen(ctx->parent_path) == len &&
	    memcmp(ctx->parent_path, path, len) == 0) {
		*out = ctx->parent_fd;
		return 0;
	}
	dir_forget_parent(ctx);
	if (!(ctx->parent_path = strndup(path, len)))
		return dir_out_of_memory(ctx->host);
	if ((error = dir_open_below(ctx, path, len, &ctx->parent_fd)) < 0) {
		dir_forget_parent(ctx);
		return error;
	}
	*out = ctx->parent_fd;
	return 0;
}

/*
 * Files and symlinks are made under a temp name and renamed into place: a
 * name in dest never holds a half-written file, and an existing name (with
 * --force) is replaced, never written through. That matters for a symlink
 * (the write would land where it points) and for a hard link (the write
 * would change the other names' content too). Temp names start with '.'
 * and are short, whatever the length of the final name.
 */
static void dir_temp_name(dir_restore_ctx *ctx, char *buf, size_t size)
{
	snprintf(buf, size, ".cairn-restore.%ld.%u", (long)getpid(), ctx->tmp_counter++);
}

static dir_meta dir_meta_of(const cairn_entry *entry)
{
	dir_meta meta = {
		.mode = entry->mode,
		.uid = entry->uid,
		.gid = entry->gid,
		.mtime_sec = entry->mtime_sec,
		.mtime_nsec = entry->mtime_nsec,
	};

	return meta;
}

static void dir_times_of(const dir_meta *meta, struct timespec times[2])
{
	times[0].tv_sec = 0;
	times[0].tv_nsec = UTIME_OMIT; /* the backup has no atime: leave it at now */
	times[1].tv_sec = (time_t)meta->mtime_sec;
	times[1].tv_nsec = (long)meta->mtime_nsec;
}

/* Not being able to set the owner is not a reason to fail a restore. */
static void dir_warn_owner(const dir_restore_ctx *ctx, int err, const char *rel)
{
	ctx->host->log(CAIRN_LOG_WARN, "cannot set owner of %s/%s: %s", ctx->dest, rel,
	               strerror(err));
}

/*
 * Applies owner, then mode, then mtime to an open file or directory. The
 * order matters: chown clears the set-user-ID and set-group-ID bits, and
 * both would update the times.
 */
static int dir_apply_metadata(const dir_restore_ctx *ctx, int fd, const char *rel,
                              const dir_meta *meta)
{
	struct timespec times[2];

	if (ctx->set_owner && fchown(fd, (uid_t)meta->uid, (gid_t)meta->gid) < 0)
		dir_warn_owner(ctx, errno, rel);
	/* The exact mode from the backup, not filtered by our umask, as tar -p. */
	if (fchmod(fd, (mode_t)(meta->mode & 07777)) < 0)
		return dir_restore_error(ctx, errno, "set mode of", rel);
	dir_times_of(meta, times);
	if (futimens(fd, times) < 0)
		return dir_restore_error(ctx, errno, "set times of", rel);
	return 0;
}

static int dir_restore_file(dir_restore_ctx *ctx, const cairn_entry *entry)
{
	const cairn_host *host = ctx->host;
	const char *name;
	char tmp[64];
	dir_meta meta;
	uint64_t written = 0;
	int parent, fd = -1, error;

	if ((error = dir_open_parent(ctx, entry->path, &name, &parent)) < 0)
		return error;
	/* 0600 while being written: nobody else reads a file that is not complete. */
	do {
		dir_temp_name(ctx, tmp, sizeof(tmp));
		fd = openat(parent, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		            0600);
	} while (fd < 0 && errno == EEXIST);
	if (fd < 0)
		return dir_restore_error(ctx, errno, "create", entry->path);

	for (;;) {
		size_t n;

		if ((error = host->entry_read(ctx->r, ctx->buf, DIR_IO_BUFFER_SIZE, &n)) < 0)
			goto done;
		if (n == 0)
			break;
		if (cairn_write_all(fd, ctx->buf, n) < 0) {
			error = dir_restore_error(ctx, errno, "write", entry->path);
			goto done;
		}
		written += n;
	}
	/* The host verifies the data; this guards against a short stream all the same. */
	if (written != entry->size) {
		error = host->error(CAIRN_ECORRUPT,
		                    "restored %s/%s has %llu bytes, the backup says %llu",
		                    ctx->dest, entry->path, (unsigned long long)written,
		                    (unsigned long long)entry->size);
		goto done;
	}
	meta = dir_meta_of(entry);
	if ((error = dir_apply_metadata(ctx, fd, entry->path, &meta)) < 0)
		goto done;
	/* close() can report a deferred write error (NFS); it must not be lost. */
	error = close(fd) < 0 ? dir_restore_error(ctx, errno, "close", entry->path) : 0;
	fd = -1;
	if (error < 0)
		goto done;
	if (renameat(parent, tmp, parent, name) < 0) {
		error = dir_restore_error(ctx, errno, "rename into place", entry->path);
		goto done;
	}
	tmp[0] = '\0'; /* renamed: nothing to clean up */
done:
	if (fd >= 0)
		close(fd);
	if (tmp[0] && unlinkat(parent, tmp, 0) < 0 && errno != ENOENT)
		host->log(CAIRN_LOG_WARN, "cannot remove temp file %s/%s: %s", ctx->dest, tmp,
		          strerror(errno));
	return error;
}

static int dir_restore_symlink(dir_restore_ctx *ctx, const cairn_entry *entry)
{
	dir_meta meta = dir_meta_of(entry);
	struct timespec times[2];
	const char *name;
	char tmp[64];
	int parent, error;

	/*
	 * The target is restored as it was, also when it points outside dest:
	 * that is what the link was. It is harmless here because the restore
	 * never follows symlinks.
	 */
	if (!entry->link_target || entry->link_target[0] == '\0')
		return ctx->host->error(CAIRN_ECORRUPT, "symlink %s in backup has no target",
		                        entry->path);
	if ((error = dir_open_parent(ctx, entry->path, &name, &parent)) < 0)
		return error;
	for (;;) {
		dir_temp_name(ctx, tmp, sizeof(tmp));
		if (symlinkat(entry->link_target, parent, tmp) == 0)
			break;
		if (errno != EEXIST)
			return dir_restore_error(ctx, errno, "create symlink", entry->path);
	}
	/* A symlink has no mode of its own on Linux; owner and mtime it has. */
	if (ctx->set_owner &&
	    fchownat(parent, tmp, (uid_t)entry->uid, (gid_t)entry->gid, AT_SYMLINK_NOFOLLOW) < 0)
		dir_warn_owner(ctx, errno, entry->path);
	dir_times_of(&meta, times);
	if (utimensat(parent, tmp, times, AT_SYMLINK_NOFOLLOW) < 0) {
		error = dir_restore_error(ctx, errno, "set times of", entry->path);
		goto done;
	}
	if (renameat(parent, tmp, parent, name) < 0) {
		error = dir_restore_error(ctx, errno, "rename into place", entry->path);
		goto done;
	}
	tmp[0] = '\0';
done:
	if (tmp[0] && unlinkat(parent, tmp, 0) < 0 && errno != ENOENT)
		ctx->host->log(CAIRN_LOG_WARN, "cannot remove temp file %s/%s: %s", ctx->dest, tmp,
		               strerror(errno));
	return error;
}

/*
 * Creates the directory `path` below dest, 0700 so that we can write into it
 * whatever its final mode. An existing directory is used as it is; with
 * --force a file or symlink of that name is replaced, never followed.
 */
static int dir_make_restored_dir(dir_restore_ctx *ctx, const char *path)
{
	const char *name;
	struct stat sb;
	int parent, error;

	if ((error = dir_open_parent(ctx, path, &name, &parent)) < 0)
		return error;
	if (mkdirat(parent, name, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return dir_restore_error(ctx, errno, "create directory", path);
	if (fstatat(parent, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return dir_restore_error(ctx, errno, "stat", path);
	if (S_ISDIR(sb.st_mode))
		return 0;
	if (!ctx->force)
		return ctx->host->error(
		    CAIRN_EEXISTS, "cannot restore directory %s/%s: a file of that name exists",
		    ctx->dest, path);
	if (unlinkat(parent, name, 0) < 0)
		return dir_restore_error(ctx, errno, "replace", path);
	if (mkdirat(parent, name, 0700) < 0)
		return dir_restore_error(ctx, errno, "create directory", path);
	return 0;
}

/*
 * Creates the directory now and remembers its metadata for the end: writing
 * its contents would change its mtime, and a read-only mode would stop them
 * being written.
 */
static int dir_restore_dir(dir_restore_ctx *ctx, const cairn_entry *entry)
{
	dir_pending_dir *pending;
	int error;

	if (strcmp(entry->path, ".") != 0 &&
	    (error = dir_make_restored_dir(ctx, entry->path)) < 0)
		return error;
	if (ctx->dir_count == ctx->dir_cap) {
		size_t cap = ctx->dir_cap ? ctx->dir_cap * 2 : 64;
		dir_pending_dir *grown = realloc(ctx->dirs, cap * sizeof(*grown));

		if (!grown)
			return dir_out_of_memory(ctx->host);
		ctx->dirs = grown;
		ctx->dir_cap = cap;
	}
	pending = &ctx->dirs[ctx->dir_count];
	if (!(pending->path = strdup(entry->path)))
		return dir_out_of_memory(ctx->host);
	pending->meta = dir_meta_of(entry);
	ctx->dir_count++;
	return 0;
}

/*
 * Applies the metadata of the restored directories in reverse order: entries
 * come parents first, so children are done before their parent's mtime is
 * set and before a read-only parent would block reaching them.
 */
static int dir_apply_pending_dirs(dir_restore_ctx *ctx)
{
	size_t i;
	int error = 0;

	for (i = ctx->dir_count; i-- > 0 && error == 0;) {
		const dir_pending_dir *d = &ctx->dirs[i];
		int is_dest = strcmp(d->path, ".") == 0;
		int fd;

		if (is_dest)
			fd = ctx->dest_fd;
		else if ((error = dir_open_below(ctx, d->path, strlen(d->path), &fd)) < 0)
			break;
		error = dir_apply_metadata(ctx, fd, d->path, &d->meta);
		if (!is_dest)
			close(fd);
	}
	return error;
}

/*
 * Opens dest, creating it if missing. An existing dest must be empty unless
 * --force: this is checked before anything is written, so a refused restore
 * changes nothing.
 */
static int dir_open_dest(dir_restore_ctx *ctx)
{
	const cairn_host *host = ctx->host;
	const struct dirent *de;
	DIR *dir;
	int fd, error = 0;

	ctx->dest_fd = open(ctx->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx->dest_fd < 0 && errno == ENOENT) {
		if ((error = dir_make_dirs(host, ctx->dest)) < 0)
			return error;
		ctx->dest_fd = open(ctx->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (ctx->dest_fd < 0) {
		if (errno == ENOTDIR)
			return host->error(CAIRN_EINVALID,
			                   "restore destination %s is not a directory", ctx->dest);
		return dir_syscall_error(host, errno, "open restore destination", ctx->dest);
	}
	if (ctx->force)
		return 0;
	/* A directory stream of its own: closedir closes the descriptor it is given. */
	if ((fd = openat(ctx->dest_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return dir_syscall_error(host, errno, "open restore destination", ctx->dest);
	if (!(dir = fdopendir(fd))) {
		error = dir_syscall_error(host, errno, "read directory", ctx->dest);
		close(fd);
		return error;
	}
	for (;;) {
		errno = 0;
		if (!(de = readdir(dir))) {
			if (errno)
				error = dir_syscall_error(host, errno, "read directory", ctx->dest);
			break;
		}
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			error = host->error(
			    CAIRN_EEXISTS,
			    "restore destination %s is not empty (use --force to write into it)",
			    ctx->dest);
			break;
		}
	}
	closedir(dir);
	return error;
}

static int dir_restore(const cairn_host *host, cairn_backup_reader *r, const char *dest)
{
	dir_restore_ctx ctx = {.host = host, .r = r, .dest = dest, .dest_fd = -1, .parent_fd = -1};
	const cairn_entry *entry;
	size_t i;
	int more, error;

	ctx.force = host->config_bool("force");
	ctx.set_owner = geteuid() == 0;
	if ((error = dir_open_dest(&ctx)) < 0)
		goto done;
	if (!(ctx.buf = malloc(DIR_IO_BUFFER_SIZE))) {
		error = dir_out_of_memory(host);
		goto done;
	}
	while ((more = host->entry_next(r, &entry)) > 0) {
		const char *path = entry->path;

		if (!dir_path_is_safe(path) ||
		    (strcmp(path, ".") == 0 && entry->type != CAIRN_ENTRY_DIR)) {
			error = host->error(CAIRN_ECORRUPT, "unsafe path in backup: %s", path);
			goto done;
		}
		switch (entry->type) {
		case CAIRN_ENTRY_DIR:
			error = dir_restore_dir(&ctx, entry);
			break;
		case CAIRN_ENTRY_FILE:
			error = dir_restore_file(&ctx, entry);
			break;
		case CAIRN_ENTRY_SYMLINK:
			error = dir_restore_symlink(&ctx, entry);
			break;
		default:
			error = host->error(CAIRN_ECORRUPT,
			                    "unexpected entry type %d for %s in backup",
			                    (int)entry->type, path);
			break;
		}
		if (error < 0)
			goto done;
	}
	if (more < 0) {
		error = more; /* the host recorded the message */
		goto done;
	}
	dir_forget_parent(&ctx);
	if ((error = dir_apply_pending_dirs(&ctx)) < 0)
		goto done;
	/*
	 * One syncfs instead of an fsync per file: far faster for many small
	 * files, and the restore is reported done only once all of it is on
	 * disk. Since Linux 5.8 syncfs also reports writeback errors. It covers
	 * the file system of dest; with --force, directories in dest that are
	 * mount points of other file systems are not covered.
	 */
	if (syncfs(ctx.dest_fd) < 0)
		error = dir_syscall_error(host, errno, "sync restored files in", dest);
done:
	dir_forget_parent(&ctx);
	if (ctx.dest_fd >= 0)
		close(ctx.dest_fd);
	for (i = 0; i < ctx.dir_count; i++)
		free(ctx.dirs[i].path);
	free(ctx.dirs);
	free(ctx.buf);
	return error;
}

/* ---- registration ------------------------------------------------------- */

static const cairn_driver_plugin dir_plugin = {
	.version = CAIRN_ABI_VERSION,
	.name = "dir",
	.aliases = NULL,
	.plugin_version = "1.0.0",
	.description = "a directory tree (the reference driver)",
	.caps = CAIRN_DRIVER_CAP_RESTORE_OVER,
	.settings = NULL, /* "force" is a core setting */
	.backup_usage = "PATH",
	.restore_usage = "DEST NAME|LATEST",
	.backup = dir_backup,
	.restore = dir_restore,
	.commands = NULL,
};

/* The only exported symbol: registers and does nothing else. */
int cairn_plugin_init(const cairn_host *host)
{
	return host->register_driver(&dir_plugin);
}
