/*
 * fs.c - the "fs" storage: a repository in a directory of a local or mounted
 * file system.
 *
 * This is the reference storage: start a new storage by copying it. It shows
 * the parts every storage has: one exported init function that only
 * registers, a descriptor, an open function that fills a vtable embedded
 * first in its own struct, and error reporting through host->error.
 *
 * The key "packs/ab/cd" is the file <root>/packs/ab/cd. A put writes a temp
 * file next to its destination and renames it into place, so an object is
 * visible whole or not at all (CAIRN_STORAGE_CAP_ATOMIC_PUT), also after a
 * crash. Temp files start with '.', which keys never do, so list never
 * reports an upload in progress or one left behind by a crash.
 *
 * The core may call into one storage from several threads at once (parallel
 * uploads and fetches), each upload from one thread at a time. After open the
 * storage is read-only, so no locking is needed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <cairn/plugin.h>
#include <cairn/util.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/*
 * Bounds the memory of one upload or download whatever the object size. The
 * core hands over data in pieces of its own choosing, some small; collecting
 * them into large writes keeps the number of syscalls low.
 */
#define FS_IO_BUFFER_SIZE (1024 * 1024)

/* How much written data starts its way to the disk at a time. */
#define FS_WRITEBACK_STEP (8u << 20)

/* Attempts at creating a temp file; see fs_put_begin for why more than one. */
#define FS_CREATE_ATTEMPTS 16

/* Keeps temp names within NAME_MAX (255) whatever the length of the key. */
#define FS_TEMP_BASENAME_MAX 200

/* get opens its own descriptor and buffer: safe on several threads. */
#define FS_CAPS (CAIRN_STORAGE_CAP_ATOMIC_PUT | CAIRN_STORAGE_CAP_RANGE_GET | \
                 CAIRN_STORAGE_CAP_LIST_SIZES | CAIRN_STORAGE_CAP_CONCURRENT_GET)

typedef struct fs_storage {
	cairn_storage base; /* first: the host holds a pointer to it */
	const cairn_host *host;
	char *root;         /* absolute; no trailing '/' unless it is "/" */
	size_t key_offset;  /* where the key starts in a path made by fs_path */
} fs_storage;

/*
 * plugin.h leaves struct cairn_upload incomplete so that each storage
 * completes it with its own state; the host only passes the pointer back.
 */
struct cairn_upload {
	const fs_storage *st;
	char *path;     /* where the object becomes visible */
	char *tmp_path; /* written until commit; NULL once renamed away */
	int fd;         /* of tmp_path; -1 when closed */
	int failed;     /* a write failed: commit must not publish partial data */
	unsigned char *buf;
	size_t used;
	uint64_t written;   /* bytes written to fd so far */
	uint64_t writeback; /* bytes handed to writeback so far */
};

/* ---- errors ----------------------------------------------------------- */

/* Reports a failed syscall: "cannot <action> <path>: <strerror>". */
static int fs_syscall_error(const cairn_host *host, int err, const char *action,
                            const char *path)
{
	return host->error(cairn_errno_code(err), "cannot %s %s: %s", action, path, strerror(err));
}

static int fs_out_of_memory(const fs_storage *st)
{
	return st->host->error(CAIRN_ENOMEM, "out of memory in storage fs");
}

/* ---- keys and paths ----------------------------------------------------- */

/*
 * Checks a key, or with `is_prefix` a list prefix, whose last part may be
 * incomplete or empty ("packs/a", "packs/", ""). A part must be non-empty and
 * must not start with '.': that keeps "." and ".." (and so the way out of the
 * root) out, and leaves dot names to temp files. Keys reach the file system
 * only after this check.
 */
static int fs_check_key(const fs_storage *st, const char *key, int is_prefix)
{
	if (cairn_key_valid(key, is_prefix))
		return 0;
	return st->host->error(CAIRN_EINVALID,
	                       "invalid storage %s \"%s\": parts must be non-empty, made of "
	                       "A-Z a-z 0-9 . _ - and not start with '.'",
	                       is_prefix ? "prefix" : "key", key);
}

/* Whether a directory entry can be a key part (anything else is not ours). */
static int fs_is_key_part(const char *name)
{
	const char *p;

	if (name[0] == '\0' || name[0] == '.')
		return 0;
	for (p = name; *p; p++)
		if (!cairn_key_char((unsigned char)*p))
			return 0;
	return 1;
}

/*
 * Returns root + "/" + the first key_len bytes of key in a new string that
 * the caller frees, or NULL after recording CAIRN_ENOMEM.
 */
static char *fs_path(const fs_storage *st, const char *key, size_t key_len)
{
	size_t root_len = strlen(st->root);
	char *path = malloc(st->key_offset + key_len + 1);

	if (!path) {
		fs_out_of_memory(st);
		return NULL;
	}
	memcpy(path, st->root, root_len);
	if (st->key_offset > root_len)
		path[root_len] = '/';
	memcpy(path + st->key_offset, key, key_len);
	path[st->key_offset + key_len] = '\0';
	return path;
}

/*
 * Collapses "//" and "/./" and drops a trailing "/" or "/." in an absolute
 * path, so messages show the path users expect. ".." is kept: resolving it
 * lexically would be wrong when the component before it is a symlink.
 */
static void fs_normalize_path(char *path)
{
	const char *r = path;
	char *w = path;

	while (*r) {
		const char *part;
		size_t len;

		while (*r == '/')
			r++;
		part = r;
		while (*r && *r != '/')
			r++;
		len = (size_t)(r - part);
		if (len == 0 || (len == 1 && part[0] == '.'))
			continue;
		*w++ = '/';
		memmove(w, part, len); /* w never passes part: each part had a '/' before it */
		w += len;
	}
	if (w == path)
		*w++ = '/';
	*w = '\0';
}

/* ---- directories -------------------------------------------------------- */

/*
 * fsyncs a directory, making the names created or renamed in it durable;
 * returns 0 or an errno value. EINVAL means the file system cannot sync
 * directories (some network file systems): there is nothing better to do
 * there, as PostgreSQL also decides.
 */
static int fs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		err = errno;
	close(fd);
	return err;
}

/* fsyncs the directory that contains `path` (which has a '/'); 0 or errno. */
static int fs_fsync_parent(char *path)
{
	char *slash = strrchr(path, '/');
	int err;

	if (slash == path)
		return fs_fsync_dir("/");
	*slash = '\0';
	err = fs_fsync_dir(path);
	*slash = '/';
	return err;
}

/*
 * Creates the absolute directory `dir` and its missing parents, like
 * mkdir -p; `dir` is modified during the call and restored. A new directory
 * is only durable once its parent is synced: without that, a crash could
 * lose it, and with it the object just renamed into it.
 */
static int fs_make_dirs(const fs_storage *st, char *dir)
{
	int restarts = 0;
	char *p;

	for (p = dir + 1;; p++) {
		const char *action = "create directory";
		char saved = *p;
		int err = 0;

		if (saved != '/' && saved != '\0')
			continue;
		*p = '\0';
		if (mkdir(dir, 0777) == 0) {
			err = fs_fsync_parent(dir);
			action = "sync the parent of new directory";
		} else if (errno != EEXIST) {
			struct stat sb;

			err = errno;
			/* Some systems report EACCES before EEXIST for a directory that exists. */
			if (err != ENOENT && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
				err = 0;
		}
		if (err == ENOENT && restarts++ < FS_CREATE_ATTEMPTS) {
			/*
			 * A concurrent remove pruned a parent we had just made or
			 * found (it removes directories it leaves empty): start over.
			 */
			*p = saved;
			p = dir;
			continue;
		}
		if (err) {
			int error = fs_syscall_error(st->host, err, action, dir);

			*p = saved;
			return error;
		}
		*p = saved;
		if (saved == '\0')
			return 0;
	}
}

/*
 * Removes the directories of `path` that are empty, deepest first, up to but
 * not including the root; `path` is truncated on the way. Best effort: a
 * directory left behind costs nothing and the next put into it reuses it.
 */
static void fs_prune_dirs(const fs_storage *st, char *path)
{
	char *slash;

	while ((slash = strrchr(path + st->key_offset, '/')) != NULL) {
		*slash = '\0';
		if (rmdir(path) == 0 || errno == ENOENT)
			continue; /* ENOENT: removed already, by us or a concurrent remove */
		if (errno != ENOTEMPTY && errno != EEXIST && errno != EBUSY)
			st->host->log(CAIRN_LOG_WARN, "cannot remove empty directory %s: %s", path,
			              strerror(errno));
		return;
	}
}

/* ---- put ---------------------------------------------------------------- */

/*
 * Random part of temp names. Uniqueness comes from O_EXCL; randomness only
 * makes a clash with a temp file left by a crashed process unlikely, so a
 * clock and a counter are good enough when getrandom is unavailable.
 */
static uint64_t fs_temp_suffix(void)
{
	static uint64_t counter;
	uint64_t value = 0;

	if (getrandom(&value, sizeof(value), GRND_NONBLOCK) != (ssize_t)sizeof(value)) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		value = (uint64_t)now.tv_sec * 1000000007u ^ (uint64_t)now.tv_nsec;
	}
	return value ^ __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
}

/*
 * Returns a fresh temp name ".<basename>.tmp.<pid>.<random>" beside `path`
 * in a new string that the caller frees, or NULL after recording
 * CAIRN_ENOMEM. The pid tells an operator whose leftover a temp file is.
 */
static char *fs_temp_path(const fs_storage *st, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t size = strlen(path) + 64;
	char *tmp = malloc(size);

	if (!tmp) {
		fs_out_of_memory(st);
		return NULL;
	}
	snprintf(tmp, size, "%.*s/.%.*s.tmp.%ld.%016llx", (int)(slash - path), path,
	         FS_TEMP_BASENAME_MAX, slash + 1, (long)getpid(),
	         (unsigned long long)fs_temp_suffix());
	return tmp;
}

/*
 * Closes and unlinks what is left of the upload and frees it; directories
 * that put_begin made for it are pruned as remove would. A temp file that
 * cannot be unlinked is only logged: the caller is already reporting the
 * error that brought it here, and list never shows temp files.
 */
static void fs_upload_free(cairn_upload *up)
{
	if (!up)
		return;
	if (up->fd >= 0)
		close(up->fd);
	if (up->tmp_path) {
		if (unlink(up->tmp_path) == 0)
			fs_prune_dirs(up->st, up->path);
		else if (errno != ENOENT)
			up->st->host->log(CAIRN_LOG_WARN, "cannot remove temp file %s: %s",
			                  up->tmp_path, strerror(errno));
	}
	free(up->tmp_path);
	free(up->path);
	free(up->buf);
	free(up);
}

static int fs_put_begin(cairn_storage *base, const char *key, cairn_upload **out)
{
	fs_storage *st = (fs_storage *)base;
	cairn_upload *up;
	char *tmp = NULL;
	int attempt, error = 0, err = 0;

	*out = NULL;
	if ((error = fs_check_key(st, key, 0)) < 0)
		return error;
	up = calloc(1, sizeof(*up));
	if (!up)
		return fs_out_of_memory(st);
	up->st = st;
	up->fd = -1;
	up->buf = malloc(FS_IO_BUFFER_SIZE);
	up->path = fs_path(st, key, strlen(key));
	if (!up->buf || !up->path) {
		error = fs_out_of_memory(st);
		goto done;
	}

	/*
	 * The directory usually exists, so try first and create it on ENOENT.
	 * More than one attempt: EEXIST means a random name clashed, and a
	 * concurrent remove may prune the directory between our mkdir and our
	 * open (it only removes empty directories, and ours is empty until the
	 * temp file exists).
	 */
	for (attempt = 0; attempt < FS_CREATE_ATTEMPTS; attempt++) {
		free(tmp);
		if (!(tmp = fs_temp_path(st, up->path))) {
			error = CAIRN_ENOMEM;
			goto done;
		}
		/* 0666: the umask decides, as for any file a user's program writes. */
		up->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (up->fd >= 0)
			break;
		err = errno;
		if (err == ENOENT) {
			char *slash = strrchr(tmp, '/');

			*slash = '\0';
			error = slash == tmp ? 0 : fs_make_dirs(st, tmp);
			*slash = '/';
			if (error < 0)
				goto done;
		} else if (err != EEXIST) {
			break;
		}
	}
	if (up->fd < 0) {
		error = fs_syscall_error(st->host, err, "create temp file", tmp);
		goto done;
	}
	/* Only now is the temp file ours to unlink. */
	up->tmp_path = tmp;
	tmp = NULL;
	*out = up;
	up = NULL;
done:
	free(tmp);
	fs_upload_free(up);
	return error;
}

/*
 * Starts writing back what the upload wrote so far, every
 * FS_WRITEBACK_STEP bytes: the disk works while the caller produces more,
 * and the fsync at commit waits for the last step only, not for the whole
 * object (a 32 MiB pack otherwise stalls its writer for the length of a
 * full flush). Only a hint: errors show at the fsync.
 */
static void fs_start_writeback(cairn_upload *up)
{
#ifdef SYNC_FILE_RANGE_WRITE
	if (up->written - up->writeback < FS_WRITEBACK_STEP)
		return;
	(void)sync_file_range(up->fd, (off_t)up->writeback, (off_t)(up->written - up->writeback),
	                      SYNC_FILE_RANGE_WRITE);
	up->writeback = up->written;
#else
	(void)up;
#endif
}

/*
 * Writes all of data to the temp file. Errors name the object's key path,
 * not the temp file: that is the name users recognise.
 */
static int fs_write_all(cairn_upload *up, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t n = write(up->fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			up->failed = 1;
			return fs_syscall_error(up->st->host, errno, "write", up->path);
		}
		p += n;
		len -= (size_t)n;
		up->written += (uint64_t)n;
	}
	fs_start_writeback(up);
	return 0;
}

static int fs_flush(cairn_upload *up)
{
	int error = fs_write_all(up, up->buf, up->used);

	up->used = 0;
	return error;
}

static int fs_put_write(cairn_upload *up, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (up->failed)
		return up->st->host->error(CAIRN_EIO, "cannot write %s: an earlier write failed",
		                           up->path);
	while (len > 0) {
		size_t n;
		int error;

		/* A piece as large as the buffer gains nothing from a copy. */
		if (up->used == 0 && len >= FS_IO_BUFFER_SIZE)
			return fs_write_all(up, p, len);
		n = FS_IO_BUFFER_SIZE - up->used;
		if (n > len)
			n = len;
		memcpy(up->buf + up->used, p, n);
		up->used += n;
		p += n;
		len -= n;
		if (up->used == FS_IO_BUFFER_SIZE && (error = fs_flush(up)) < 0)
			return error;
	}
	return 0;
}

/*
 * The order is what makes the put atomic and durable: data synced before the
 * rename (else a crash can leave the new name on empty or partial data), the
 * directory synced after it (else a crash can lose the new name).
 */
static int fs_put_commit(cairn_upload *up)
{
	const fs_storage *st = up->st;
	int error = 0, err;

	if (up->failed) {
		error = st->host->error(CAIRN_EIO, "cannot commit %s: an earlier write failed",
		                        up->path);
		goto done;
	}
	if ((error = fs_flush(up)) < 0)
		goto done;
	if (fsync(up->fd) < 0) {
		error = fs_syscall_error(st->host, errno, "sync", up->path);
		goto done;
	}
	/* close() can report a deferred write error (NFS); it must not be lost. */
	if (close(up->fd) < 0) {
		up->fd = -1;
		error = fs_syscall_error(st->host, errno, "close", up->path);
		goto done;
	}
	up->fd = -1;
	if (rename(up->tmp_path, up->path) < 0) {
		err = errno;
		error = st->host->error(cairn_errno_code(err), "cannot rename %s to %s: %s",
		                        up->tmp_path, up->path, strerror(err));
		goto done;
	}
	free(up->tmp_path);
	up->tmp_path = NULL;
	if ((err = fs_fsync_parent(up->path)) != 0)
		error = fs_syscall_error(st->host, err, "sync the directory of", up->path);
done:
	fs_upload_free(up);
	return error;
}

static void fs_put_abort(cairn_upload *up)
{
	fs_upload_free(up);
}

/* ---- get, stat ---------------------------------------------------------- */

static int fs_get(cairn_storage *base, const char *key, uint64_t offset, uint64_t length,
                  cairn_sink_fn sink, void *arg)
{
	fs_storage *st = (fs_storage *)base;
	unsigned char *buf = NULL;
	char *path;
	size_t buf_size;
	struct stat sb;
	int fd = -1, error = 0;

	if ((error = fs_check_key(st, key, 0)) < 0)
		return error;
	if (!(path = fs_path(st, key, strlen(key))))
		return CAIRN_ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* Not found is no error message of ours: the host words it. */
		if (errno == ENOENT || errno == ENOTDIR)
			error = CAIRN_ENOTFOUND;
		else
			error = fs_syscall_error(st->host, errno, "open", path);
		goto done;
	}
	if (fstat(fd, &sb) < 0) {
		error = fs_syscall_error(st->host, errno, "stat", path);
		goto done;
	}
	if (!S_ISREG(sb.st_mode)) { /* a directory of keys is not an object */
		error = CAIRN_ENOTFOUND;
		goto done;
	}
	if (offset >= (uint64_t)sb.st_size || length == 0)
		goto done;
	/*
	 * The open file cannot change under us: a put replaces the name with a
	 * new file, it never rewrites this one. So the size bounds the read.
	 */
	if (length > (uint64_t)sb.st_size - offset)
		length = (uint64_t)sb.st_size - offset;
	/* Range reads are often small (a pack trailer, one chunk): size the buffer to them. */
	buf_size = length < FS_IO_BUFFER_SIZE ? (size_t)length : FS_IO_BUFFER_SIZE;
	if (!(buf = malloc(buf_size))) {
		error = fs_out_of_memory(st);
		goto done;
	}
	while (length > 0) {
		size_t want = length < buf_size ? (size_t)length : buf_size;
		ssize_t n = pread(fd, buf, want, (off_t)offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			error = fs_syscall_error(st->host, errno, "read", path);
			goto done;
		}
		if (n == 0) /* truncated behind our back: deliver what exists */
			break;
		if ((error = sink(arg, buf, (size_t)n)) < 0)
			goto done; /* the sink recorded its own message */
		offset += (uint64_t)n;
		length -= (uint64_t)n;
	}
done:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return error;
}

static int fs_stat(cairn_storage *base, const char *key, cairn_stat *out)
{
	fs_storage *st = (fs_storage *)base;
	struct stat sb;
	char *path;
	int error = 0;

	if ((error = fs_check_key(st, key, 0)) < 0)
		return error;
	if (!(path = fs_path(st, key, strlen(key))))
		return CAIRN_ENOMEM;
	if (stat(path, &sb) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			error = CAIRN_ENOTFOUND;
		else
			error = fs_syscall_error(st->host, errno, "stat", path);
	} else if (!S_ISREG(sb.st_mode)) {
		error = CAIRN_ENOTFOUND;
	} else {
		out->size = (uint64_t)sb.st_size;
		out->mtime_sec = (int64_t)sb.st_mtime;
	}
	free(path);
	return error;
}

/* ---- list --------------------------------------------------------------- */

typedef struct fs_lister {
	const fs_storage *st;
	const char *prefix;
	size_t prefix_len;
	cairn_list_fn cb;
	void *arg;
	/*
	 * The key being visited. A key that long could not be opened by path
	 * anyway, and the bound ends the walk through a symlink loop.
	 */
	char key[PATH_MAX];
} fs_lister;

/*
 * Reports an error on the file or directory whose key is key[0..len) (a
 * trailing '/' is not shown; len 0 is the root) without building its path.
 */
static int fs_list_error(const fs_lister *l, int err, const char *action, size_t len)
{
	const fs_storage *st = l->st;

	if (len > 0 && l->key[len - 1] == '/')
		len--;
	if (len == 0)
		return fs_syscall_error(st->host, err, action, st->root);
	return st->host->error(cairn_errno_code(err), "cannot %s %s%s%.*s: %s", action, st->root,
	                       st->key_offset > strlen(st->root) ? "/" : "", (int)len, l->key,
	                       strerror(err));
}

/*
 * Visits the directory `fd` (which it closes) whose key, ending in '/', is
 * key[0..len). Symlinks are followed, as open() follows them for get: a user
 * may have moved part of a repository to another disk that way.
 */
static int fs_list_dir(fs_lister *l, int fd, size_t len)
{
	DIR *dir = fdopendir(fd);
	int error = 0;

	if (!dir) {
		error = fs_list_error(l, errno, "list", len);
		close(fd);
		return error;
	}
	for (;;) {
		const struct dirent *de;
		size_t name_len, key_len, common;
		struct stat sb;
		int child;

		errno = 0;
		if (!(de = readdir(dir))) {
			if (errno)
				error = fs_list_error(l, errno, "list", len);
			break;
		}
		/* Dot names are temp files; other odd names were not written by cairn. */
		if (!fs_is_key_part(de->d_name))
			continue;
		name_len = strlen(de->d_name);
		key_len = len + name_len;
		if (key_len + 2 > sizeof(l->key)) {
			error = l->st->host->error(CAIRN_EIO, "cannot list %s: key %.*s%s too long",
			                           l->st->root, (int)len, l->key, de->d_name);
			break;
		}
		memcpy(l->key + len, de->d_name, name_len + 1);
		/* Whether the keys at or below this name can start with the prefix. */
		common = key_len < l->prefix_len ? key_len : l->prefix_len;
		if (memcmp(l->key, l->prefix, common) != 0)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &sb, 0) < 0) {
			if (errno == ENOENT) /* removed since readdir: not a key any more */
				continue;
			error = fs_list_error(l, errno, "stat", key_len);
			break;
		}
		if (S_ISREG(sb.st_mode)) {
			if (key_len >= l->prefix_len &&
			    (error = l->cb(l->arg, l->key, (uint64_t)sb.st_size)) < 0)
				break; /* the callback recorded its own message */
		} else if (S_ISDIR(sb.st_mode)) {
			child = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (child < 0) {
				if (errno == ENOENT)
					continue;
				error = fs_list_error(l, errno, "open directory", key_len);
				break;
			}
			l->key[key_len] = '/';
			l->key[key_len + 1] = '\0';
			if ((error = fs_list_dir(l, child, key_len + 1)) < 0)
				break;
		}
	}
	closedir(dir);
	return error;
}

static int fs_list(cairn_storage *base, const char *prefix, cairn_list_fn cb, void *arg)
{
	fs_storage *st = (fs_storage *)base;
	fs_lister *l;
	const char *slash;
	size_t start_len;
	char *start;
	int fd, error;

	if ((error = fs_check_key(st, prefix, 1)) < 0)
		return error;
	if (strlen(prefix) + 2 > sizeof(l->key))
		return st->host->error(CAIRN_EINVALID, "storage prefix too long: %s", prefix);
	if (!(l = malloc(sizeof(*l))))
		return fs_out_of_memory(st);
	l->st = st;
	l->prefix = prefix;
	l->prefix_len = strlen(prefix);
	l->cb = cb;
	l->arg = arg;

	/*
	 * Start at the deepest directory the prefix names whole: for
	 * "packs/a" that is packs/, where only names starting with "a" are
	 * visited. The walk is then proportional to what matches, not to the
	 * size of the repository.
	 */
	slash = strrchr(prefix, '/');
	start_len = slash ? (size_t)(slash - prefix) + 1 : 0;
	memcpy(l->key, prefix, start_len);
	l->key[start_len] = '\0';
	if (!(start = fs_path(st, prefix, start_len))) {
		error = CAIRN_ENOMEM;
		goto done;
	}
	fd = open(start, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		/* Nothing stored there yet (or ever): an empty listing. */
		if (errno != ENOENT && errno != ENOTDIR)
			error = fs_syscall_error(st->host, errno, "open directory", start);
	} else {
		error = fs_list_dir(l, fd, start_len);
	}
	free(start);
done:
	free(l);
	return error;
}

/* ---- remove ------------------------------------------------------------- */

static int fs_remove(cairn_storage *base, const char *const *keys, size_t count)
{
	fs_storage *st = (fs_storage *)base;
	size_t i;
	int error;

	/* All keys first: a batch with a bad key changes nothing. */
	for (i = 0; i < count; i++)
		if ((error = fs_check_key(st, keys[i], 0)) < 0)
			return error;
	for (i = 0; i < count; i++) {
		char *path = fs_path(st, keys[i], strlen(keys[i]));

		if (!path)
			return CAIRN_ENOMEM;
		if (unlink(path) < 0 && errno != ENOENT && errno != ENOTDIR) {
			error = fs_syscall_error(st->host, errno, "remove", path);
			free(path);
			return error;
		}
		fs_prune_dirs(st, path);
		free(path);
	}
	return 0;
}

/* ---- open, close ------------------------------------------------------ */

static void fs_close(cairn_storage *base)
{
	fs_storage *st = (fs_storage *)base;

	if (!st)
		return;
	free(st->root);
	free(st);
}

static const cairn_storage fs_vtable = {
	.version = CAIRN_ABI_VERSION,
	.caps = FS_CAPS,
	.put_begin = fs_put_begin,
	.put_write = fs_put_write,
	.put_commit = fs_put_commit,
	.put_abort = fs_put_abort,
	.get = fs_get,
	.stat = fs_stat,
	.list = fs_list,
	.remove = fs_remove,
	.close = fs_close,
};

/*
 * Makes `path` absolute against the current directory now, so that a later
 * chdir of the process cannot move the repository.
 */
static int fs_absolute_path(const cairn_host *host, const char *path, char **out)
{
	char *cwd, *abs;
	size_t size;

	*out = NULL;
	if (path[0] == '/') {
		cwd = NULL;
		abs = strdup(path);
	} else {
		if (!(cwd = getcwd(NULL, 0)))
			return host->error(cairn_errno_code(errno),
			                   "cannot resolve repository path %s: cannot get the "
			                   "current directory: %s",
			                   path, strerror(errno));
		size = strlen(cwd) + 1 + strlen(path) + 1;
		if ((abs = malloc(size)) != NULL)
			snprintf(abs, size, "%s/%s", cwd, path);
	}
	free(cwd);
	if (!abs)
		return host->error(CAIRN_ENOMEM, "out of memory in storage fs");
	fs_normalize_path(abs);
	*out = abs;
	return 0;
}

/*
 * Accepts "file:///absolute/path" and plain paths. A file URL is taken
 * literally (no percent-decoding) and must not name a host. The root is not
 * created here: the core decides whether a repository exists by stat'ing its
 * "config" key, and the first put creates the directories it needs.
 */
static int fs_open(cairn_storage **out, const char *location, const cairn_host *host)
{
	const char *path = location;
	fs_storage *st = NULL;
	char *root = NULL;
	struct stat sb;
	int error = 0;

	*out = NULL;
	if (strncmp(location, "file:", 5) == 0) {
		if (strncmp(location, "file:///", 8) != 0)
			return host->error(
			    CAIRN_EINVALID,
			    "unsupported file URL %s: use file:///absolute/path or a plain path",
			    location);
		path = location + 7;
	}
	if (path[0] == '\0')
		return host->error(CAIRN_EINVALID, "empty repository path");
	if ((error = fs_absolute_path(host, path, &root)) < 0)
		return error;
	/* A missing root is fine (see above); one that is not a directory is a mistake. */
	if (stat(root, &sb) < 0) {
		if (errno != ENOENT) {
			error = fs_syscall_error(host, errno, "access repository path", root);
			goto done;
		}
	} else if (!S_ISDIR(sb.st_mode)) {
		error = host->error(CAIRN_EINVALID, "repository path %s is not a directory", root);
		goto done;
	}
	if (!(st = calloc(1, sizeof(*st)))) {
		error = host->error(CAIRN_ENOMEM, "out of memory in storage fs");
		goto done;
	}
	st->base = fs_vtable;
	st->host = host;
	st->root = root;
	st->key_offset = strlen(root) + (strcmp(root, "/") != 0);
	root = NULL;
	*out = &st->base;
done:
	free(root);
	return error;
}

/* ---- registration ------------------------------------------------------- */

static const char *const fs_schemes[] = {"file", NULL};

static const cairn_storage_plugin fs_plugin = {
	.version = CAIRN_ABI_VERSION,
	.name = "fs",
	.plugin_version = "1.0.0",
	.description = "a directory on a local or mounted file system",
	.schemes = fs_schemes,
	.caps = FS_CAPS,
	.settings = NULL,
	.open = fs_open,
};

/* The only exported symbol: registers and does nothing else. */
int cairn_plugin_init(const cairn_host *host)
{
	return host->register_storage(&fs_plugin);
}
