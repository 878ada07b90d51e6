/*
 * aof.c - Redis 7 multi-part AOF: archiving it and rebuilding it at a time.
 *
 * A Redis 7 AOF directory holds a manifest (<appendfilename>.manifest)
 * naming one base file (a snapshot: RDB, or AOF without preamble), the
 * incremental files appended since that base in order, and history files
 * waiting for deletion. A rewrite (BGREWRITEAOF) opens a new incremental
 * file first, then writes a new base; when it is done the manifest names
 * the new base and the incremental files opened since, so each base starts
 * a chain: base, incr, incr, ...
 *
 * Consistency: the files are opened while the manifest stays the same
 * before and after (else it is read again), and read through those open
 * descriptors (/proc/self/fd/N for the host's log_put), so a rewrite that
 * deletes them meanwhile changes nothing for this run.
 *
 * The archive, as log segments of engine redis:
 *
 *   aof/<file>/<start 16 hex>-<end 16 hex>  bytes [start, end) of a base or
 *                                           incremental file
 *   aof/<file>/closed-<size 16 hex>         empty: the file was complete at
 *                                           size (a later file exists)
 *   aof-chain/<base seq 16 hex>-<last incr seq 16 hex>
 *                                           text: which files follow which
 *                                           base, and the base's time
 *
 * aof-push uploads the base once and, for incremental files, only the
 * bytes past what is archived, so a run every minute costs what was
 * written in that minute.
 *
 * Point in time: with aof-timestamp-enabled yes the server writes
 * "#TS:<unix seconds>" before the first command of each second. The
 * rebuild takes the newest base older than the target, the archived
 * incremental files of its chain, and cuts at the first annotation later
 * than the target; a command cut in half at the end is dropped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "redis.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AOF_MANIFEST_MAX (1024 * 1024)
#define AOF_PIN_TRIES 20
#define AOF_NAME_MAX 128

/* ---- the manifest and a pinned set of files ------------------------------ */

typedef struct aof_file {
	char name[AOF_NAME_MAX];
	uint64_t seq;
	char type; /* 'b' base, 'i' incremental, 'h' history */
	int fd;
	uint64_t size;
	int64_t mtime;
} aof_file;

typedef struct aof_set {
	char *dir;
	char dirname[AOF_NAME_MAX];
	char manifest_name[AOF_NAME_MAX];
	char *manifest_text;
	size_t manifest_len;
	aof_file base;
	aof_file *incr;
	size_t incr_count;
	int64_t pinned_at;
} aof_set;

static void aof_set_close_files(aof_set *s)
{
	size_t i;

	if (s->base.fd >= 0)
		close(s->base.fd);
	s->base.fd = -1;
	for (i = 0; i < s->incr_count; i++)
		if (s->incr[i].fd >= 0)
			close(s->incr[i].fd);
	free(s->incr);
	s->incr = NULL;
	s->incr_count = 0;
}

static void aof_set_free(aof_set *s)
{
	aof_set_close_files(s);
	free(s->manifest_text);
	free(s->dir);
	memset(s, 0, sizeof(*s));
	s->base.fd = -1;
}

/* Finds the one *.manifest file of the directory. */
static int find_manifest(const cairn_host *host, const char *dir, char *out, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	if (!d)
		return redis_syscall_error(host, errno, "open AOF directory", dir);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (n > 9 && strcmp(de->d_name + n - 9, ".manifest") == 0) {
			if (found++) {
				closedir(d);
				return host->error(CAIRN_EINVALID,
				                   "%s holds more than one .manifest file: which AOF is it?",
				                   dir);
			}
			snprintf(out, len, "%s", de->d_name);
		}
	}
	closedir(d);
	if (!found)
		return host->error(CAIRN_EINVALID,
		                   "%s has no AOF manifest: it is not a Redis 7 AOF directory (is "
		                   "appendonly yes?)",
		                   dir);
	return 0;
}

static int read_small_file(const cairn_host *host, const char *path, char **out, size_t *out_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	ssize_t n;

	*out = NULL;
	if (fd < 0)
		return redis_syscall_error(host, errno, "read", path);
	if (!(buf = malloc(AOF_MANIFEST_MAX + 1))) {
		close(fd);
		return redis_out_of_memory(host);
	}
	n = redis_pread_full(fd, buf, AOF_MANIFEST_MAX + 1, 0);
	close(fd);
	if (n < 0) {
		free(buf);
		return redis_syscall_error(host, errno, "read", path);
	}
	if (n > AOF_MANIFEST_MAX) {
		free(buf);
		return host->error(CAIRN_EINVALID, "%s is larger than 1 MiB: not an AOF manifest", path);
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = (size_t)n;
	return 0;
}

/* Parses "file <name> seq <n> type <b|i|h>" lines (keys in any order). */
static int parse_manifest(const cairn_host *host, const char *path, char *text, aof_set *s)
{
	char *line, *save = NULL;
	int lineno = 0;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		aof_file f;
		char *tok, *tsave = NULL, *key = NULL;
		int have_name = 0, have_seq = 0;

		lineno++;
		line[strcspn(line, "\r")] = '\0';
		if (!*line || *line == '#')
			continue;
		memset(&f, 0, sizeof(f));
		f.fd = -1;
		for (tok = strtok_r(line, " ", &tsave); tok; tok = strtok_r(NULL, " ", &tsave)) {
			if (!key) {
				key = tok;
				continue;
			}
			if (strcmp(key, "file") == 0) {
				if (!redis_name_is_safe(tok))
					return host->error(CAIRN_EUNSUPPORTED,
					                   "%s line %d: AOF file name '%s' has characters cairn "
					                   "does not archive (use a plain appendfilename)",
					                   path, lineno, tok);
				snprintf(f.name, sizeof(f.name), "%s", tok);
				have_name = 1;
			} else if (strcmp(key, "seq") == 0) {
				f.seq = strtoull(tok, NULL, 10);
				have_seq = 1;
			} else if (strcmp(key, "type") == 0) {
				f.type = tok[0];
			}
			key = NULL;
		}
		if (!have_name || !have_seq || !f.type)
			return host->error(CAIRN_ECORRUPT, "%s line %d is not a manifest line", path, lineno);
		if (f.type == 'b') {
			s->base = f;
		} else if (f.type == 'i') {
			aof_file *grown = realloc(s->incr, (s->incr_count + 1) * sizeof(*grown));

			if (!grown)
				return redis_out_of_memory(host);
			s->incr = grown;
			s->incr[s->incr_count++] = f;
		}
	}
	if (!s->base.name[0])
		return host->error(CAIRN_ECORRUPT, "%s names no base file", path);
	return 0;
}

static int open_pinned(const cairn_host *host, const aof_set *s, aof_file *f, int *vanished)
{
	char *path;
	struct stat st;

	if (asprintf(&path, "%s/%s", s->dir, f->name) < 0)
		return redis_out_of_memory(host);
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		int err = errno;

		if (err == ENOENT) {
			*vanished = 1;
			free(path);
			return 0;
		}
		free(path);
		return redis_syscall_error(host, err, "open", path);
	}
	if (fstat(f->fd, &st) < 0) {
		int err = errno;

		free(path);
		return redis_syscall_error(host, err, "stat", f->name);
	}
	f->size = (uint64_t)st.st_size;
	f->mtime = st.st_mtim.tv_sec;
	free(path);
	return 0;
}

/*
 * Opens the manifest's base and incremental files so that they stay
 * readable whatever the server does next, and checks the manifest did not
 * change meanwhile (a rewrite finishing): otherwise starts over.
 */
static int aof_set_open(const cairn_host *host, const char *dir, aof_set *s)
{
	char *mpath = NULL, *again = NULL, *copy = NULL;
	const char *slash;
	size_t again_len, i;
	int tries, error = 0;

	memset(s, 0, sizeof(*s));
	s->base.fd = -1;
	if (!(s->dir = strdup(dir)))
		return redis_out_of_memory(host);
	/* The directory's own name is what the server's appenddirname must be on restore. */
	{
		size_t n = strlen(s->dir);

		while (n > 1 && s->dir[n - 1] == '/')
			s->dir[--n] = '\0';
	}
	slash = strrchr(s->dir, '/');
	snprintf(s->dirname, sizeof(s->dirname), "%s", slash ? slash + 1 : s->dir);
	if (!redis_name_is_safe(s->dirname)) {
		error = host->error(CAIRN_EUNSUPPORTED, "AOF directory name '%s' is not a plain name",
		                    s->dirname);
		goto done;
	}
	if ((error = find_manifest(host, s->dir, s->manifest_name, sizeof(s->manifest_name))) < 0)
		goto done;
	if (asprintf(&mpath, "%s/%s", s->dir, s->manifest_name) < 0) {
		error = redis_out_of_memory(host);
		goto done;
	}
	for (tries = 0; tries < AOF_PIN_TRIES; tries++) {
		int vanished = 0;

		aof_set_close_files(s);
		free(s->manifest_text);
		s->manifest_text = NULL;
		memset(&s->base, 0, sizeof(s->base));
		s->base.fd = -1;
		if ((error = read_small_file(host, mpath, &s->manifest_text, &s->manifest_len)) < 0)
			goto done;
		free(copy);
		if (!(copy = strdup(s->manifest_text))) {
			error = redis_out_of_memory(host);
			goto done;
		}
		if ((error = parse_manifest(host, mpath, copy, s)) < 0)
			goto done;
		if ((error = open_pinned(host, s, &s->base, &vanished)) < 0)
			goto done;
		for (i = 0; i < s->incr_count && !vanished; i++) {
			s->incr[i].fd = -1;
			if ((error = open_pinned(host, s, &s->incr[i], &vanished)) < 0)
				goto done;
		}
		free(again);
		again = NULL;
		if ((error = read_small_file(host, mpath, &again, &again_len)) < 0)
			goto done;
		if (!vanished && again_len == s->manifest_len &&
		    memcmp(again, s->manifest_text, again_len) == 0) {
			s->pinned_at = (int64_t)time(NULL);
			goto done;
		}
		host->log(CAIRN_LOG_INFO, "the AOF manifest in %s changed while its files were "
		                          "opened (a rewrite): reading it again",
		                          s->dir);
		usleep(100000);
	}
	error = host->error(CAIRN_ENETWORK,
	                    "the AOF manifest in %s kept changing (%d tries): cannot take a "
	                    "consistent set of files",
	                    s->dir, AOF_PIN_TRIES);
done:
	free(copy);
	free(again);
	free(mpath);
	if (error < 0)
		aof_set_free(s);
	return error;
}

/* The time a base stands for: RDB "ctime", a leading "#TS:" annotation, else its mtime. */
static int64_t base_time(const aof_file *f)
{
	uint8_t head[4096];
	ssize_t n = redis_pread_full(f->fd, head, sizeof(head), 0);
	rdb_header hdr;

	if (n > 0 && rdb_header_parse(head, (size_t)n, &hdr) == 0 && hdr.ctime > 0)
		return hdr.ctime;
	if (n > 4 && memcmp(head, "#TS:", 4) == 0)
		return strtoll((const char *)head + 4, NULL, 10);
	/* mtime is when the rewrite ended, after the data's time: a safe upper bound. */
	return f->mtime;
}

/* ---- backup-push --from-file AOFDIR --------------------------------------- */

static int backup_file(const cairn_host *host, cairn_backup_writer *w, const aof_set *s,
                       const aof_file *f, const char *name, uint64_t size, int64_t mtime)
{
	cairn_entry e;
	char path[2 * AOF_NAME_MAX + 2];
	char what[4200];
	int error;

	snprintf(path, sizeof(path), "%s/%s", s->dirname, name);
	snprintf(what, sizeof(what), "%s/%s", s->dir, name);
	memset(&e, 0, sizeof(e));
	e.type = CAIRN_ENTRY_FILE;
	e.path = path;
	e.mode = 0644;
	e.mtime_sec = mtime;
	e.chunking = CAIRN_CHUNK_CDC;
	if ((error = host->entry_begin(w, &e)) < 0 || (error = redis_entry_chunking(host, w)) < 0)
		return error;
	if (f && (error = redis_copy_fd_to_writer(host, w, f->fd, size, what, NULL)) < 0)
		return error;
	if (!f && (error = host->entry_write(w, s->manifest_text, s->manifest_len)) < 0)
		return error;
	return host->entry_end(w);
}

int redis_aof_backup_dir(const cairn_host *host, cairn_backup_writer *w, const char *dir)
{
	aof_set s;
	char text[64], source[4200];
	rdb_header hdr;
	uint8_t head[4096];
	ssize_t n;
	size_t i;
	int error;

	if ((error = aof_set_open(host, dir, &s)) < 0)
		return error;
	if ((error = backup_file(host, w, &s, &s.base, s.base.name, s.base.size, s.base.mtime)) < 0)
		goto done;
	for (i = 0; i < s.incr_count; i++)
		if ((error = backup_file(host, w, &s, &s.incr[i], s.incr[i].name, s.incr[i].size,
		                         s.incr[i].mtime)) < 0)
			goto done;
	/* The manifest last: with it the directory is complete. */
	if ((error = backup_file(host, w, &s, NULL, s.manifest_name, s.manifest_len, s.pinned_at)) < 0)
		goto done;
	snprintf(source, sizeof(source), "file:%s", s.dir);
	if ((error = host->meta_set(w, "source", source)) < 0 ||
	    (error = host->meta_set(w, "kind", "aof")) < 0 ||
	    (error = host->meta_set(w, "aof_dir", s.dirname)) < 0 ||
	    (error = host->meta_set(w, "aof_base", s.base.name)) < 0)
		goto done;
	snprintf(text, sizeof(text), "%lld", (long long)s.pinned_at);
	if ((error = host->meta_set(w, "snapshot_time", text)) < 0)
		goto done;
	snprintf(text, sizeof(text), "%lld", (long long)base_time(&s.base));
	if ((error = host->meta_set(w, "aof_base_time", text)) < 0)
		goto done;
	n = redis_pread_full(s.base.fd, head, sizeof(head), 0);
	if (n > 0 && rdb_header_parse(head, (size_t)n, &hdr) == 0 && hdr.redis_ver[0] &&
	    (error = host->meta_set(w, "redis_version", hdr.redis_ver)) < 0)
		goto done;
done:
	aof_set_free(&s);
	return error;
}

/* ---- the archive as the host lists it ------------------------------------ */

typedef struct seg {
	char file[AOF_NAME_MAX];
	uint64_t start, end;
	int closed; /* a closed-<size> marker: end is the size */
} seg;

typedef struct chain_rec {
	uint64_t base_seq, last_seq;
	char name[64];
} chain_rec;

typedef struct archive {
	seg *segs;
	size_t seg_count, seg_cap;
	chain_rec *chains;
	size_t chain_count, chain_cap;
	const cairn_host *host;
} archive;

static void archive_free(archive *a)
{
	free(a->segs);
	free(a->chains);
	memset(a, 0, sizeof(*a));
}

static int list_segment(void *arg, const char *name, uint64_t size)
{
	archive *a = arg;
	const char *slash;
	seg sg;
	unsigned long long x, y;
	int used;

	(void)size;
	if (strncmp(name, "aof-chain/", 10) == 0) {
		chain_rec c;

		if (sscanf(name + 10, "%16llx-%16llx%n", &x, &y, &used) != 2 || name[10 + used])
			return 0;
		memset(&c, 0, sizeof(c));
		c.base_seq = x;
		c.last_seq = y;
		snprintf(c.name, sizeof(c.name), "%s", name);
		if (a->chain_count == a->chain_cap) {
			size_t cap = a->chain_cap ? 2 * a->chain_cap : 16;
			chain_rec *grown = realloc(a->chains, cap * sizeof(*grown));

			if (!grown)
				return redis_out_of_memory(a->host);
			a->chains = grown;
			a->chain_cap = cap;
		}
		a->chains[a->chain_count++] = c;
		return 0;
	}
	if (strncmp(name, "aof/", 4) != 0 || !(slash = strchr(name + 4, '/')) ||
	    (size_t)(slash - name - 4) >= AOF_NAME_MAX)
		return 0;
	memset(&sg, 0, sizeof(sg));
	snprintf(sg.file, sizeof(sg.file), "%.*s", (int)(slash - name - 4), name + 4);
	if (sscanf(slash + 1, "closed-%16llx%n", &x, &used) == 1 && !slash[1 + used]) {
		sg.closed = 1;
		sg.end = x;
	} else if (sscanf(slash + 1, "%16llx-%16llx%n", &x, &y, &used) == 2 && !slash[1 + used] &&
	           x <= y) {
		sg.start = x;
		sg.end = y;
	} else {
		return 0;
	}
	if (a->seg_count == a->seg_cap) {
		size_t cap = a->seg_cap ? 2 * a->seg_cap : 64;
		seg *grown = realloc(a->segs, cap * sizeof(*grown));

		if (!grown)
			return redis_out_of_memory(a->host);
		a->segs = grown;
		a->seg_cap = cap;
	}
	a->segs[a->seg_count++] = sg;
	return 0;
}

static int seg_order(const void *pa, const void *pb)
{
	const seg *a = pa, *b = pb;
	int c = strcmp(a->file, b->file);

	if (c)
		return c;
	if (a->closed != b->closed)
		return a->closed - b->closed;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	/* Longest first, so a shorter segment at the same start is redundant. */
	return a->end > b->end ? -1 : a->end < b->end;
}

static int archive_load(const cairn_host *host, cairn_session *session, archive *a)
{
	int error;

	memset(a, 0, sizeof(*a));
	a->host = host;
	if ((error = host->log_list(session, "aof/", list_segment, a)) < 0 ||
	    (error = host->log_list(session, "aof-chain/", list_segment, a)) < 0)
		return error;
	qsort(a->segs, a->seg_count, sizeof(*a->segs), seg_order);
	return 0;
}

/* How far a file is archived without holes from 0; *closed_size when it was seen complete. */
static uint64_t archived_end(const archive *a, const char *file, int *closed, uint64_t *closed_size)
{
	uint64_t end = 0;
	size_t i;

	*closed = 0;
	for (i = 0; i < a->seg_count; i++) {
		const seg *sg = &a->segs[i];

		if (strcmp(sg->file, file) != 0)
			continue;
		if (sg->closed) {
			*closed = 1;
			*closed_size = sg->end;
		} else if (sg->start <= end && sg->end > end) {
			end = sg->end;
		}
	}
	return end;
}

/* ---- aof-push ------------------------------------------------------------ */

static void seg_name(char *out, size_t len, const char *file, uint64_t start, uint64_t end)
{
	snprintf(out, len, "aof/%s/%016" PRIx64 "-%016" PRIx64, file, start, end);
}

static int put_fd_range(const cairn_host *host, cairn_session *session, const char *name, int fd,
                        uint64_t offset, uint64_t length)
{
	char path[64];

	/* The pinned descriptor, reopened by path: the file may be deleted already. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return host->log_put(session, name, path, offset, length);
}

/* Writes the chain record of the pinned set (small text) and puts it. */
static int put_chain(const cairn_host *host, cairn_session *session, const aof_set *s,
                     int64_t btime)
{
	const char *tmpdir = getenv("TMPDIR");
	char name[80], *path;
	FILE *f = NULL;
	uint64_t last = s->incr_count ? s->incr[s->incr_count - 1].seq : 0;
	size_t i;
	int fd, error = 0;

	if (asprintf(&path, "%s/cairn-aof-chain.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp") < 0)
		return redis_out_of_memory(host);
	if ((fd = mkstemp(path)) < 0) {
		error = redis_syscall_error(host, errno, "create", path);
		free(path);
		return error;
	}
	if (!(f = fdopen(fd, "w"))) {
		error = redis_syscall_error(host, errno, "write", path);
		close(fd);
		goto done;
	}
	fprintf(f, "cairn-aof-chain 1\ndir %s\nmanifest %s\nbase %s %" PRIu64 " %lld\n", s->dirname,
	        s->manifest_name, s->base.name, s->base.seq, (long long)btime);
	for (i = 0; i < s->incr_count; i++)
		fprintf(f, "incr %s %" PRIu64 "\n", s->incr[i].name, s->incr[i].seq);
	if (fclose(f) != 0) {
		error = redis_syscall_error(host, errno, "write", path);
		goto done;
	}
	snprintf(name, sizeof(name), "aof-chain/%016" PRIx64 "-%016" PRIx64, s->base.seq, last);
	error = host->log_put(session, name, path, 0, CAIRN_TO_END);
done:
	unlink(path);
	free(path);
	return error;
}

static int push_once(const cairn_host *host, cairn_session *session, const char *dir)
{
	aof_set s;
	archive a;
	char name[300];
	uint64_t done_bytes = 0, end, closed_size = 0;
	size_t i, files = 0;
	int closed, error;

	memset(&a, 0, sizeof(a));
	if ((error = aof_set_open(host, dir, &s)) < 0)
		return error;
	if ((error = archive_load(host, session, &a)) < 0 && error != CAIRN_ENOTFOUND)
		goto done;
	error = 0;
	if ((error = put_chain(host, session, &s, base_time(&s.base))) < 0)
		goto done;
	end = archived_end(&a, s.base.name, &closed, &closed_size);
	if (end < s.base.size) {
		seg_name(name, sizeof(name), s.base.name, 0, s.base.size);
		if ((error = put_fd_range(host, session, name, s.base.fd, 0, s.base.size)) < 0)
			goto done;
		done_bytes += s.base.size;
		files++;
	}
	for (i = 0; i < s.incr_count; i++) {
		aof_file *f = &s.incr[i];
		int last = i + 1 == s.incr_count;

		end = archived_end(&a, f->name, &closed, &closed_size);
		if (end > f->size) {
			error = host->error(CAIRN_ECORRUPT,
			                    "%s/%s has %llu bytes but %llu are archived: the file was "
			                    "truncated or replaced",
			                    s.dir, f->name, (unsigned long long)f->size,
			                    (unsigned long long)end);
			goto done;
		}
		if (end < f->size) {
			seg_name(name, sizeof(name), f->name, end, f->size);
			if ((error = put_fd_range(host, session, name, f->fd, end, f->size - end)) < 0)
				goto done;
			done_bytes += f->size - end;
			files++;
		}
		/* A later file exists, so the server writes no more to this one. */
		if (!last && !closed) {
			snprintf(name, sizeof(name), "aof/%s/closed-%016" PRIx64, f->name, f->size);
			if ((error = host->log_put(session, name, "/dev/null", 0, 0)) < 0)
				goto done;
		}
	}
	host->log(CAIRN_LOG_INFO, "aof-push %s: archived %llu new bytes of %zu files (base %s, %zu "
	                          "incremental files)",
	          s.dir, (unsigned long long)done_bytes, files, s.base.name, s.incr_count);
done:
	archive_free(&a);
	aof_set_free(&s);
	return error;
}

/* The AOF directory: argument, redis-aof-dir, or asked from the server. */
static int aof_dir_from_server(const cairn_host *host, char **out)
{
	redis_target t;
	redis_conn *c = NULL;
	redis_server_info si;
	int error;

	*out = NULL;
	if ((error = redis_target_load(host, &t)) < 0)
		return error;
	if ((error = redis_conn_open(host, &t, &c)) < 0 ||
	    (error = redis_conn_server_info(c, &si)) < 0)
		goto done;
	if (!si.dir[0] || !si.appenddirname[0]) {
		error = host->error(CAIRN_EINVALID,
		                    "%s does not tell its AOF directory (CONFIG GET dir/appenddirname "
		                    "denied, or Redis < 7)",
		                    t.where);
		goto done;
	}
	if (strcmp(si.appendonly, "yes") != 0)
		host->log(CAIRN_LOG_WARN, "%s runs with appendonly %s: its AOF does not grow", t.where,
		          si.appendonly);
	if (asprintf(out, "%s/%s", si.dir, si.appenddirname) < 0)
		error = redis_out_of_memory(host);
done:
	redis_conn_close(c);
	redis_target_free(&t);
	return error;
}

int redis_aof_push_command(const cairn_host *host, cairn_session *session, int argc,
                           char *const *argv)
{
	const char *loop = host->config_get("loop");
	const char *dir_setting = host->config_get("redis-aof-dir");
	unsigned int interval = 0;
	char *dir = NULL;
	int error;

	if (argc > 1)
		return host->error(CAIRN_EINVALID, "usage: cairn redis aof-push [AOFDIR] [--loop INTERVAL]");
	if (loop && *loop && redis_parse_interval(loop, &interval) < 0)
		return host->error(CAIRN_EINVALID,
		                   "--loop '%s' is not an interval (seconds, or a number with s, m or h)",
		                   loop);
	if (argc == 1)
		dir = strdup(argv[0]);
	else if (dir_setting && *dir_setting)
		dir = strdup(dir_setting);
	else if ((error = aof_dir_from_server(host, &dir)) < 0)
		return error;
	if (!dir)
		return redis_out_of_memory(host);
	for (;;) {
		struct timespec ts = {(time_t)interval, 0};

		if ((error = push_once(host, session, dir)) < 0 || !interval)
			break;
		/* A signal ends the sleep and the loop; cairn exits with 130 for it. */
		if (nanosleep(&ts, NULL) < 0 && errno == EINTR)
			break;
	}
	free(dir);
	return error;
}

/* ---- the rebuild at a point in time ---------------------------------------- */

typedef struct chain {
	char dirname[AOF_NAME_MAX];
	char manifest[AOF_NAME_MAX];
	aof_file base;
	int64_t base_time;
	aof_file *incr;
	size_t incr_count;
} chain;

static void chain_free(chain *c)
{
	free(c->incr);
	memset(c, 0, sizeof(*c));
}

typedef struct membuf {
	char *data;
	size_t len;
	const cairn_host *host;
} membuf;

static int membuf_sink(void *arg, const void *data, size_t len)
{
	membuf *m = arg;
	char *grown;

	if (m->len + len > AOF_MANIFEST_MAX)
		return m->host->error(CAIRN_ECORRUPT, "an AOF chain record is larger than 1 MiB");
	if (!(grown = realloc(m->data, m->len + len + 1)))
		return redis_out_of_memory(m->host);
	m->data = grown;
	memcpy(m->data + m->len, data, len);
	m->len += len;
	m->data[m->len] = '\0';
	return 0;
}

static int chain_load(const cairn_host *host, cairn_session *session, const char *name, chain *c)
{
	membuf m = {NULL, 0, host};
	char *line, *save = NULL;
	int error;

	memset(c, 0, sizeof(*c));
	if ((error = host->log_read(session, name, membuf_sink, &m)) < 0) {
		if (error == CAIRN_ENOTFOUND)
			error = host->error(CAIRN_ENOTFOUND, "AOF chain record %s vanished", name);
		goto done;
	}
	if (!m.data || strncmp(m.data, "cairn-aof-chain 1\n", 18) != 0) {
		error = host->error(CAIRN_ECORRUPT, "AOF chain record %s is not one", name);
		goto done;
	}
	for (line = strtok_r(m.data + 18, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char fname[AOF_NAME_MAX];
		unsigned long long seq;
		long long t;

		if (sscanf(line, "dir %127s", c->dirname) == 1 ||
		    sscanf(line, "manifest %127s", c->manifest) == 1)
			continue;
		if (sscanf(line, "base %127s %llu %lld", fname, &seq, &t) == 3) {
			snprintf(c->base.name, sizeof(c->base.name), "%s", fname);
			c->base.seq = seq;
			c->base_time = t;
		} else if (sscanf(line, "incr %127s %llu", fname, &seq) == 2) {
			aof_file *grown = realloc(c->incr, (c->incr_count + 1) * sizeof(*grown));

			if (!grown) {
				error = redis_out_of_memory(host);
				goto done;
			}
			c->incr = grown;
			memset(&c->incr[c->incr_count], 0, sizeof(*grown));
			snprintf(c->incr[c->incr_count].name, AOF_NAME_MAX, "%s", fname);
			c->incr[c->incr_count++].seq = seq;
		}
	}
	if (!c->base.name[0] || !redis_name_is_safe(c->base.name) || !redis_name_is_safe(c->dirname) ||
	    !redis_name_is_safe(c->manifest)) {
		error = host->error(CAIRN_ECORRUPT, "AOF chain record %s lacks its base or names", name);
		goto done;
	}
	for (size_t i = 0; i < c->incr_count; i++)
		if (!redis_name_is_safe(c->incr[i].name)) {
			error = host->error(CAIRN_ECORRUPT, "AOF chain record %s names a bad file", name);
			goto done;
		}
done:
	free(m.data);
	if (error < 0)
		chain_free(c);
	return error;
}

/*
 * Follows an AOF command stream to find where it must be cut: at the first
 * "#TS:" annotation later than `until`, or after the last whole command.
 */
typedef struct aof_cutter {
	int64_t until;
	enum { AT_START, IN_ANNOTATION, IN_HEADER, IN_BULK_HEADER, IN_BULK, IN_BULK_CRLF } state;
	uint64_t offset;       /* bytes seen */
	uint64_t boundary;     /* end of the last whole command or annotation */
	uint64_t item_start;   /* where the current command or annotation started */
	char line[32];
	size_t line_len;
	int64_t args_left;
	uint64_t bulk_left;
	int64_t last_ts;       /* last annotation seen, 0 for none */
	int cut;               /* a later annotation was found at cut_at */
	uint64_t cut_at;
	int bad;               /* not an AOF command stream */
} aof_cutter;

static void cutter_reset_file(aof_cutter *k)
{
	k->state = AT_START;
	k->offset = k->boundary = k->item_start = 0;
	k->line_len = 0;
}

static void cutter_header_done(aof_cutter *k)
{
	char *end;
	long long v;

	k->line[k->line_len] = '\0';
	v = strtoll(k->line + 1, &end, 10);
	if (*end || v < 0) {
		k->bad = 1;
		return;
	}
	if (k->state == IN_HEADER) {
		k->args_left = v;
		if (v == 0) {
			k->state = AT_START;
			k->boundary = k->offset;
		} else {
			k->state = IN_BULK_HEADER;
		}
	} else {
		k->bulk_left = (uint64_t)v + 2; /* data and its \r\n */
		k->state = IN_BULK;
	}
	k->line_len = 0;
}

/* Feeds bytes; stops early (returns) once a cut is found. */
static void cutter_feed(aof_cutter *k, const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len && !k->cut && !k->bad) {
		uint8_t b = p[i];

		switch (k->state) {
		case AT_START:
			k->item_start = k->offset;
			k->line_len = 0;
			if (b == '#')
				k->state = IN_ANNOTATION;
			else if (b == '*')
				k->state = IN_HEADER;
			else {
				k->bad = 1;
				continue;
			}
			k->line[k->line_len++] = (char)b;
			break;
		case IN_ANNOTATION:
			if (b == '\n') {
				long long ts;

				k->line[k->line_len] = '\0';
				if (sscanf(k->line, "#TS:%lld", &ts) == 1) {
					if (ts > k->until) {
						k->cut = 1;
						k->cut_at = k->item_start;
						continue;
					}
					k->last_ts = ts;
				}
				k->state = AT_START;
				k->boundary = k->offset + 1;
			} else if (k->line_len < sizeof(k->line) - 1) {
				k->line[k->line_len++] = (char)b;
			}
			break;
		case IN_HEADER:
		case IN_BULK_HEADER:
			if (b == '\n') {
				if (k->line_len && k->line[k->line_len - 1] == '\r')
					k->line_len--;
				if (k->state == IN_BULK_HEADER && k->line[0] != '$') {
					k->bad = 1;
					continue;
				}
				cutter_header_done(k);
			} else if (k->line_len == 0 && k->state == IN_BULK_HEADER) {
				k->line[k->line_len++] = (char)b;
			} else if (k->line_len < sizeof(k->line) - 1) {
				k->line[k->line_len++] = (char)b;
			} else {
				k->bad = 1;
				continue;
			}
			break;
		case IN_BULK: {
			size_t n = len - i < k->bulk_left ? len - i : (size_t)k->bulk_left;

			k->bulk_left -= n;
			k->offset += n;
			i += n;
			if (k->bulk_left == 0) {
				if (--k->args_left == 0) {
					k->state = AT_START;
					k->boundary = k->offset;
				} else {
					k->state = IN_BULK_HEADER;
					k->line_len = 0;
				}
			}
			continue;
		}
		case IN_BULK_CRLF:
			break;
		}
		k->offset++;
		i++;
	}
}

typedef struct rebuild_sink {
	const cairn_host *host;
	int fd;
	const char *path;
	uint64_t skip;     /* bytes of this segment already written (overlap) */
	uint64_t written;  /* bytes of the file written */
	aof_cutter *cutter; /* NULL for the base */
} rebuild_sink;

static int rebuild_write(void *arg, const void *data, size_t len)
{
	rebuild_sink *r = arg;
	const uint8_t *p = data;

	if (r->skip) {
		size_t n = len < r->skip ? len : (size_t)r->skip;

		r->skip -= n;
		p += n;
		len -= n;
	}
	if (!len || (r->cutter && r->cutter->cut))
		return 0;
	if (cairn_write_all(r->fd, p, len) < 0)
		return redis_syscall_error(r->host, errno, "write", r->path);
	if (r->cutter)
		cutter_feed(r->cutter, p, len);
	r->written += len;
	return 0;
}

/* Writes a file from its archived segments, in order from 0. */
static int rebuild_file(const cairn_host *host, cairn_session *session, const archive *a,
                        const char *dir, const char *file, aof_cutter *cutter, uint64_t *out_size,
                        int *out_closed, uint64_t *out_closed_size)
{
	rebuild_sink rs;
	char *path = NULL, name[300];
	size_t i;
	int error = 0;

	memset(&rs, 0, sizeof(rs));
	*out_closed = 0;
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return redis_out_of_memory(host);
	rs.host = host;
	rs.path = path;
	rs.cutter = cutter;
	if ((rs.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		error = redis_syscall_error(host, errno, "create", path);
		goto done;
	}
	for (i = 0; i < a->seg_count; i++) {
		const seg *sg = &a->segs[i];

		if (strcmp(sg->file, file) != 0)
			continue;
		if (sg->closed) {
			*out_closed = 1;
			*out_closed_size = sg->end;
			continue;
		}
		if (sg->start > rs.written || sg->end <= rs.written || (cutter && cutter->cut))
			continue;
		rs.skip = rs.written - sg->start;
		seg_name(name, sizeof(name), file, sg->start, sg->end);
		if ((error = host->log_read(session, name, rebuild_write, &rs)) < 0) {
			if (error == CAIRN_ENOTFOUND)
				error = host->error(CAIRN_ENOTFOUND, "AOF segment %s vanished", name);
			goto done;
		}
	}
	if (cutter) {
		uint64_t keep = cutter->cut ? cutter->cut_at : cutter->boundary;

		if (cutter->bad) {
			error = host->error(CAIRN_ECORRUPT,
			                    "archived %s is not an AOF command stream near byte %llu", file,
			                    (unsigned long long)cutter->offset);
			goto done;
		}
		if (keep < rs.written && ftruncate(rs.fd, (off_t)keep) < 0) {
			error = redis_syscall_error(host, errno, "truncate", path);
			goto done;
		}
	}
	if (fsync(rs.fd) < 0) {
		error = redis_syscall_error(host, errno, "sync", path);
		goto done;
	}
	*out_size = rs.written;
done:
	if (rs.fd >= 0)
		close(rs.fd);
	free(path);
	return error;
}

/*
 * Builds the chain into tmpdir. Returns 1 when the archive cannot serve
 * this chain (the reason logged), so that an older base may be tried.
 */
static int rebuild_chain(const cairn_host *host, cairn_session *session, const archive *a,
                         const chain *c, int superseded, const char *tmpdir, int64_t until)
{
	aof_cutter cutter;
	uint64_t size, closed_size = 0, end;
	size_t i, used = 0;
	int closed, error;
	char *mpath = NULL;
	FILE *mf = NULL;
	char when[40];

	end = archived_end(a, c->base.name, &closed, &closed_size);
	if (end == 0) {
		host->log(CAIRN_LOG_WARN, "AOF base %s is not archived", c->base.name);
		return 1;
	}
	if ((error = rebuild_file(host, session, a, tmpdir, c->base.name, NULL, &size, &closed,
	                          &closed_size)) < 0)
		return error;
	memset(&cutter, 0, sizeof(cutter));
	cutter.until = until;
	for (i = 0; i < c->incr_count && !cutter.cut; i++) {
		int last = i + 1 == c->incr_count;

		cutter_reset_file(&cutter);
		if ((error = rebuild_file(host, session, a, tmpdir, c->incr[i].name, &cutter, &size,
		                          &closed, &closed_size)) < 0)
			return error;
		used = i + 1;
		if (cutter.cut)
			break;
		if (!last && (!closed || size != closed_size)) {
			host->log(CAIRN_LOG_WARN,
			          "the AOF archive misses the end of %s (%llu bytes archived%s): the "
			          "base %s cannot reach the target",
			          c->incr[i].name, (unsigned long long)size,
			          closed ? ", more were written" : "", c->base.name);
			return 1;
		}
	}
	/*
	 * A newer base exists, so the server went on writing into the last
	 * file of this chain until that rewrite: without its end archived,
	 * the writes up to the target may be missing.
	 */
	if (!cutter.cut && superseded && c->incr_count && (!closed || size != closed_size)) {
		host->log(CAIRN_LOG_WARN,
		          "the AOF archive misses the end of %s (aof-push did not run between the "
		          "last writes to it and the next rewrite)",
		          c->incr[c->incr_count - 1].name);
		return 1;
	}
	if (!cutter.cut) {
		if (cutter.last_ts)
			redis_format_time(cutter.last_ts, when, sizeof(when));
		host->log(CAIRN_LOG_WARN,
		          "the archived AOF ends before the target (last timestamp %s): restored "
		          "everything archived",
		          cutter.last_ts ? when : "none");
	}
	if (asprintf(&mpath, "%s/%s", tmpdir, c->manifest) < 0)
		return redis_out_of_memory(host);
	if (!(mf = fopen(mpath, "wx"))) {
		error = redis_syscall_error(host, errno, "create", mpath);
		goto done;
	}
	fprintf(mf, "file %s seq %" PRIu64 " type b\n", c->base.name, c->base.seq);
	for (i = 0; i < used; i++)
		fprintf(mf, "file %s seq %" PRIu64 " type i\n", c->incr[i].name, c->incr[i].seq);
	if (fflush(mf) != 0 || fsync(fileno(mf)) < 0) {
		error = redis_syscall_error(host, errno, "write", mpath);
		goto done;
	}
	error = 0;
done:
	if (mf && fclose(mf) != 0 && error == 0)
		error = redis_syscall_error(host, errno, "write", mpath);
	free(mpath);
	return error;
}

int redis_aof_restore_until(const cairn_host *host, cairn_session *session, const char *dest,
                            int64_t until)
{
	archive a;
	chain *chains = NULL;
	size_t count = 0, i, j;
	char *tmpdir = NULL, *target = NULL, when[40];
	int error, force = host->config_bool("force"), built = 0;
	struct stat st;

	redis_format_time(until, when, sizeof(when));
	if ((error = archive_load(host, session, &a)) < 0)
		return error;
	/* Per base, the record that lists the most incremental files is the whole chain. */
	for (i = 0; i < a.chain_count; i++) {
		for (j = 0; j < a.chain_count; j++)
			if (j != i && a.chains[j].base_seq == a.chains[i].base_seq &&
			    (a.chains[j].last_seq > a.chains[i].last_seq ||
			     (a.chains[j].last_seq == a.chains[i].last_seq && j < i)))
				break;
		if (j < a.chain_count)
			continue;
		{
			chain *grown = realloc(chains, (count + 1) * sizeof(*grown));

			if (!grown) {
				error = redis_out_of_memory(host);
				goto done;
			}
			chains = grown;
		}
		if ((error = chain_load(host, session, a.chains[i].name, &chains[count])) < 0)
			goto done;
		count++;
	}
	if (count == 0) {
		error = host->error(CAIRN_ENOTFOUND,
		                    "no archived AOF in the repository: --until needs aof-push to have "
		                    "run on a server with appendonly yes");
		goto done;
	}
	/* Newest base first. */
	for (i = 0; i < count; i++)
		for (j = i + 1; j < count; j++)
			if (chains[j].base.seq > chains[i].base.seq) {
				chain t = chains[i];

				chains[i] = chains[j];
				chains[j] = t;
			}
	for (i = 0; i < count && !built; i++) {
		chain *c = &chains[i];

		if (c->base_time > until)
			continue;
		free(target);
		free(tmpdir);
		tmpdir = target = NULL;
		if (asprintf(&target, "%s/%s", dest, c->dirname) < 0 ||
		    asprintf(&tmpdir, "%s/.%s.cairn-restore.%ld", dest, c->dirname, (long)getpid()) < 0) {
			error = redis_out_of_memory(host);
			goto done;
		}
		if (lstat(target, &st) == 0 && !force) {
			error = host->error(CAIRN_EEXISTS, "%s exists already (use --force to replace it)",
			                    target);
			goto done;
		}
		if (mkdir(tmpdir, 0755) < 0) {
			error = redis_syscall_error(host, errno, "create directory", tmpdir);
			goto done;
		}
		error = rebuild_chain(host, session, &a, c, i > 0, tmpdir, until);
		if (error != 0) {
			int kept = error;

			error = redis_remove_flat_dir(host, tmpdir);
			if (kept < 0)
				error = kept;
			if (error < 0)
				goto done;
			continue;
		}
		if (lstat(target, &st) == 0 && (error = redis_remove_flat_dir(host, target)) < 0)
			goto done;
		if (rename(tmpdir, target) < 0) {
			error = redis_syscall_error(host, errno, "rename into place", target);
			redis_remove_flat_dir(host, tmpdir);
			goto done;
		}
		free(tmpdir);
		tmpdir = NULL;
		host->log(CAIRN_LOG_INFO, "rebuilt %s from base %s cut at %s", target, c->base.name,
		          when);
		built = 1;
	}
	if (!built)
		error = host->error(CAIRN_ENOTFOUND,
		                    "the AOF archive holds no base older than %s that reaches it", when);
done:
	for (i = 0; i < count; i++)
		chain_free(&chains[i]);
	free(chains);
	free(tmpdir);
	free(target);
	archive_free(&a);
	return error;
}

/* ---- retention ------------------------------------------------------------ */

typedef struct oldest_ctx {
	int64_t oldest;
	size_t backups;
} oldest_ctx;

static int note_backup(void *arg, const char *name, int64_t end_time, const char *const *meta)
{
	oldest_ctx *o = arg;
	int64_t t = end_time;
	size_t i;

	(void)name;
	for (i = 0; meta && meta[i]; i += 2)
		if (strcmp(meta[i], "snapshot_time") == 0)
			t = strtoll(meta[i + 1], NULL, 10);
	if (!o->backups++ || t < o->oldest)
		o->oldest = t;
	return 0;
}

/*
 * Keeps what restores to any time from the oldest remaining backup on: the
 * newest chain whose base is older than that backup, and every later one.
 * Files of older chains only (a file carried into a newer chain is kept)
 * and their chain records are removed.
 */
int redis_aof_prune(const cairn_host *host, cairn_session *session)
{
	oldest_ctx o = {0, 0};
	archive a;
	chain *chains = NULL;
	size_t count = 0, i, j, k;
	uint64_t keep_from = 0;
	int error;

	if ((error = host->backup_list(session, note_backup, &o)) < 0)
		return error;
	/* Without any backup the archive is all there is: keep it. */
	if (o.backups == 0)
		return 0;
	if ((error = archive_load(host, session, &a)) < 0)
		return error == CAIRN_ENOTFOUND ? 0 : error;
	if (!(chains = calloc(a.chain_count + 1, sizeof(*chains)))) {
		error = redis_out_of_memory(host);
		goto done;
	}
	for (i = 0; i < a.chain_count; i++) {
		if ((error = chain_load(host, session, a.chains[i].name, &chains[count])) < 0)
			goto done;
		count++;
		if (chains[count - 1].base_time <= o.oldest && chains[count - 1].base.seq > keep_from)
			keep_from = chains[count - 1].base.seq;
	}
	for (i = 0; i < count; i++) {
		const chain *c = &chains[i];
		const char *one[1];

		if (c->base.seq >= keep_from)
			continue;
		/* Every file of this old chain that no kept chain names. */
		for (k = 0; k <= c->incr_count; k++) {
			const char *file = k == 0 ? c->base.name : c->incr[k - 1].name;
			int needed = 0;

			for (j = 0; j < count && !needed; j++) {
				size_t m;

				if (chains[j].base.seq < keep_from)
					continue;
				needed = strcmp(chains[j].base.name, file) == 0;
				for (m = 0; m < chains[j].incr_count && !needed; m++)
					needed = strcmp(chains[j].incr[m].name, file) == 0;
			}
			if (needed)
				continue;
			for (j = 0; j < a.seg_count; j++) {
				char name[300];

				if (strcmp(a.segs[j].file, file) != 0)
					continue;
				if (a.segs[j].closed)
					snprintf(name, sizeof(name), "aof/%s/closed-%016" PRIx64, file,
					         a.segs[j].end);
				else
					seg_name(name, sizeof(name), file, a.segs[j].start, a.segs[j].end);
				one[0] = name;
				if ((error = host->log_remove(session, one, 1)) < 0)
					goto done;
			}
		}
	}
	for (i = 0; i < a.chain_count; i++) {
		const char *one[1] = {a.chains[i].name};

		if (a.chains[i].base_seq < keep_from && (error = host->log_remove(session, one, 1)) < 0)
			goto done;
	}
done:
	for (i = 0; i < count; i++)
		chain_free(&chains[i]);
	free(chains);
	archive_free(&a);
	return error;
}
