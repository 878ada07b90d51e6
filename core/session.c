/* session.c - sessions and log segments (see session.h). */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "crypto.h"
#include "error.h"
#include "log.h"

#define LOG_READ_CHUNK (1u << 20)

int cairn_session_new(cairn_session **out, const char *engine, const char *url)
{
	cairn_session *s;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s))) || !(s->url = strdup(url ? url : ""))) {
		free(s);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	snprintf(s->engine, sizeof(s->engine), "%s", engine);
	*out = s;
	return 0;
}

int cairn_session_repo(cairn_session *s, int create, cairn_repo **out)
{
	int error;

	if (!s->repo && (error = cairn_repo_open(&s->repo, s->url, create)) < 0)
		return error;
	*out = s->repo;
	return 0;
}

void cairn_session_free(cairn_session *s)
{
	if (!s)
		return;
	cairn_repo_free(s->repo);
	free(s->url);
	free(s);
}

static int log_key(cairn_session *s, const char *name, char *out, size_t len)
{
	const char *p;

	if (!name || !*name || name[0] == '/' || strlen(name) > 200)
		return cairn_error_set(CAIRN_EINVALID, "'%s' is not a valid log segment name",
		                       name ? name : "");
	for (p = name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-' || *p == '/') ||
		    ((p == name || p[-1] == '/') && (*p == '.' || *p == '/')))
			return cairn_error_set(CAIRN_EINVALID, "'%s' is not a valid log segment name",
			                       name);
	}
	snprintf(out, len, "logs/%s/%s", s->engine, name);
	return 0;
}

typedef struct hash_sink {
	cairn_hash *hash;
	uint64_t size;
} hash_sink;

static int hash_stored(cairn_repo *repo, const char *key, uint8_t out[CAIRN_HASH_LEN],
                       uint64_t *size)
{
	cairn_objreader *r;
	cairn_hash *h = NULL;
	const uint8_t *data;
	size_t len;
	int rc;

	*size = 0;
	if ((rc = cairn_objreader_open(&r, repo, key, CAIRN_OBJ_LOG)) < 0)
		return rc;
	if ((rc = cairn_hash_new(&h, NULL, 0)) < 0)
		goto done;
	while ((rc = cairn_objreader_frame(r, &data, &len)) > 0) {
		*size += len;
		if ((rc = cairn_hash_update(h, data, len)) < 0)
			goto done;
	}
	if (rc == 0)
		rc = cairn_hash_final(h, out);
done:
	cairn_hash_free(h);
	cairn_objreader_free(r);
	return rc;
}

int cairn_log_put(cairn_session *s, const char *name, const char *path, uint64_t offset,
                  uint64_t length)
{
	cairn_repo *repo;
	cairn_objwriter *w = NULL;
	cairn_hash *h = NULL;
	uint8_t *buf = NULL, local[CAIRN_HASH_LEN], stored[CAIRN_HASH_LEN];
	char key[300];
	struct stat st;
	cairn_stat cst;
	uint64_t left, stored_size;
	ssize_t n;
	int fd = -1, error, exists;

	if ((error = log_key(s, name, key, sizeof(key))) < 0)
		return error;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return cairn_error_errno(errno, "cannot read log segment %s", path);
	if (fstat(fd, &st) < 0) {
		error = cairn_error_errno(errno, "cannot stat log segment %s", path);
		goto done;
	}
	if (offset > (uint64_t)st.st_size) {
		error = cairn_error_set(CAIRN_EINVALID, "offset %llu is beyond the end of %s",
		                        (unsigned long long)offset, path);
		goto done;
	}
	if (length == CAIRN_TO_END || length > (uint64_t)st.st_size - offset)
		length = (uint64_t)st.st_size - offset;
	if ((error = cairn_session_repo(s, 1, &repo)) < 0)
		goto done;
	error = cairn_store_stat(repo->store, key, &cst);
	if (error < 0 && error != CAIRN_ENOTFOUND)
		goto done;
	exists = error == 0;
	cairn_error_clear();
	if (!(buf = malloc(LOG_READ_CHUNK))) {
		error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto done;
	}
	if ((error = cairn_hash_new(&h, NULL, 0)) < 0)
		goto done;
	if (!exists && (error = cairn_objwriter_begin(&w, repo, key, CAIRN_OBJ_LOG)) < 0)
		goto done;
	for (left = length; left;) {
		n = pread(fd, buf, left < LOG_READ_CHUNK ? (size_t)left : LOG_READ_CHUNK,
		          (off_t)(offset + length - left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			error = n < 0 ? cairn_error_errno(errno, "cannot read log segment %s", path)
			              : cairn_error_set(CAIRN_EIO, "log segment %s shrank while read", path);
			goto done;
		}
		left -= (uint64_t)n;
		if ((error = cairn_hash_update(h, buf, (size_t)n)) < 0 ||
		    (w && (error = cairn_objwriter_write(w, buf, (size_t)n)) < 0))
			goto done;
	}
	if ((error = cairn_hash_final(h, local)) < 0)
		goto done;
	if (!exists) {
		error = cairn_objwriter_commit(w);
		w = NULL;
		goto done;
	}
	/* Pushed before: the same content is success, other content is refused. */
	if ((error = hash_stored(repo, key, stored, &stored_size)) < 0)
		goto done;
	if (stored_size != length || memcmp(stored, local, sizeof(local)) != 0) {
		error = cairn_error_set(CAIRN_EEXISTS,
		                        "log segment %s is already archived in %s with other content; "
		                        "the archived copy was kept",
		                        name, repo->store->display_url);
		cairn_error_hint("compare the two copies; an archived segment is never overwritten");
		goto done;
	}
	cairn_log(CAIRN_LOG_INFO, "log segment %s was already archived with the same content", name);
done:
	cairn_objwriter_abort(w);
	cairn_hash_free(h);
	free(buf);
	if (fd >= 0)
		close(fd);
	return error;
}

int cairn_log_read(cairn_session *s, const char *name, cairn_sink_fn sink, void *arg)
{
	cairn_repo *repo;
	cairn_objreader *r = NULL;
	const uint8_t *data;
	char key[300];
	size_t len;
	int rc;

	if ((rc = log_key(s, name, key, sizeof(key))) < 0 ||
	    (rc = cairn_session_repo(s, 0, &repo)) < 0)
		return rc;
	rc = cairn_objreader_open(&r, repo, key, CAIRN_OBJ_LOG);
	if (rc == CAIRN_ENOTFOUND) {
		/* Callers such as restore_command expect a quiet "not there". */
		cairn_error_clear();
		return rc;
	}
	if (rc < 0)
		return rc;
	while ((rc = cairn_objreader_frame(r, &data, &len)) > 0)
		if ((rc = sink(arg, data, len)) < 0)
			break;
	cairn_objreader_free(r);
	return rc;
}

static int fd_sink(void *arg, const void *data, size_t len)
{
	const uint8_t *p = data;
	int fd = *(int *)arg;
	ssize_t n;

	while (len) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return cairn_error_errno(errno, "cannot write log segment");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int cairn_log_get(cairn_session *s, const char *name, const char *dest_path)
{
	char *tmp;
	size_t n = strlen(dest_path) + 32;
	int fd, error;

	if (!(tmp = malloc(n)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	snprintf(tmp, n, "%s.cairn-tmp.%ld", dest_path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		error = cairn_error_errno(errno, "cannot write %s", tmp);
		free(tmp);
		return error;
	}
	error = cairn_log_read(s, name, fd_sink, &fd);
	if (error == 0 && fsync(fd) < 0)
		error = cairn_error_errno(errno, "cannot write %s", tmp);
	if (close(fd) < 0 && error == 0)
		error = cairn_error_errno(errno, "cannot write %s", tmp);
	if (error == 0 && rename(tmp, dest_path) < 0)
		error = cairn_error_errno(errno, "cannot rename %s to %s", tmp, dest_path);
	if (error < 0) {
		cairn_error_saved saved;

		cairn_error_save(&saved);
		unlink(tmp);
		cairn_error_restore(&saved);
	} else if (error == 0 && strchr(name, '/') == NULL) {
		cairn_log(CAIRN_LOG_DEBUG, "fetched log segment %s to %s", name, dest_path);
	}
	free(tmp);
	return error;
}

typedef struct log_list_ctx {
	size_t skip;
	cairn_list_fn cb;
	void *arg;
} log_list_ctx;

static int log_list_one(void *arg, const char *key, uint64_t size)
{
	log_list_ctx *c = arg;

	return c->cb(c->arg, key + c->skip, size);
}

int cairn_log_list(cairn_session *s, const char *prefix, cairn_list_fn cb, void *arg)
{
	cairn_repo *repo;
	char key[300];
	log_list_ctx c;
	int error;

	if ((error = cairn_session_repo(s, 0, &repo)) < 0)
		return error;
	snprintf(key, sizeof(key), "logs/%s/%s", s->engine, prefix ? prefix : "");
	c.skip = strlen("logs/") + strlen(s->engine) + 1;
	c.cb = cb;
	c.arg = arg;
	return cairn_store_list(repo->store, key, log_list_one, &c);
}

int cairn_log_remove(cairn_session *s, const char *const *names, size_t count)
{
	cairn_repo *repo;
	const char **keys;
	size_t i, done = 0;
	int error;

	if ((error = cairn_session_repo(s, 0, &repo)) < 0)
		return error;
	if (!(keys = calloc(count + 1, sizeof(*keys))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (i = 0; i < count; i++) {
		char key[300], *copy;

		if ((error = log_key(s, names[i], key, sizeof(key))) < 0 || !(copy = strdup(key))) {
			if (error == 0)
				error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto done;
		}
		keys[done++] = copy;
	}
	error = cairn_store_remove(repo->store, keys, done);
done:
	for (i = 0; i < done; i++)
		free((char *)keys[i]);
	free(keys);
	return error;
}

int cairn_session_backup_list(cairn_session *s,
                              int (*cb)(void *arg, const char *name, int64_t end_time,
                                        const char *const *meta),
                              void *arg)
{
	cairn_repo *repo;
	cairn_backup_info *infos = NULL;
	const char **meta = NULL;
	size_t count = 0, i, j;
	int error;

	if ((error = cairn_session_repo(s, 0, &repo)) < 0)
		return error;
	if ((error = cairn_backup_list(repo, s->engine, &infos, &count)) < 0)
		return error;
	for (i = 0; i < count && error == 0; i++) {
		const char **grown = realloc(meta, (2 * infos[i].meta_count + 1) * sizeof(*meta));

		if (!grown) {
			error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			break;
		}
		meta = grown;
		for (j = 0; j < infos[i].meta_count; j++) {
			meta[2 * j] = infos[i].meta[j].key;
			meta[2 * j + 1] = infos[i].meta[j].value;
		}
		meta[2 * infos[i].meta_count] = NULL;
		error = cb(arg, infos[i].name, infos[i].end_time, meta);
	}
	for (i = 0; i < count; i++)
		cairn_backup_info_free(&infos[i]);
	free(infos);
	free(meta);
	return error;
}
