/*
 * wal.c - WAL archiving: wal-push (archive_command), wal-fetch
 * (restore_command, with optional background prefetch), wal-verify, and the
 * pruning of WAL that no retained backup needs.
 *
 * wal-push runs once per segment, so it does the least it can: no libpq
 * connection, one stat and one put (the core's log_put is idempotent:
 * the same content again succeeds, other content fails and keeps the
 * stored copy). With a passphrase-encrypted repository every start pays
 * the key derivation; a key file avoids that.
 */
#include "pg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where wal-fetch keeps prefetched segments, beside the file it writes. */
#define PG_PREFETCH_DIR ".cairn-prefetch"
#define PG_PREFETCH_MAX 64

/* ---- wal-push ------------------------------------------------------------ */

int pg_cmd_wal_push(const cairn_host *host, cairn_session *s, int argc, char *const *argv)
{
	char name[PG_LOG_NAME_MAX];
	const char *file;
	struct stat sb;
	int error;

	if (argc != 1)
		return host->error(CAIRN_EINVALID, "usage: cairn pg wal-push PATH");
	file = strrchr(argv[0], '/');
	file = file ? file + 1 : argv[0];
	if ((error = pg_log_name(host, file, name, sizeof(name))) < 0)
		return error;
	if (stat(argv[0], &sb) < 0)
		return pg_syscall_error(host, errno, "read WAL file", argv[0]);
	if (!S_ISREG(sb.st_mode))
		return host->error(CAIRN_EINVALID, "WAL file %s is not a regular file", argv[0]);
	return host->log_put(s, name, argv[0], 0, CAIRN_TO_END);
}

/* ---- wal-fetch ----------------------------------------------------------- */

/* The directory part of a path ("." when none), in a buffer of len bytes. */
static void pg_dirname(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, len, ".");
	else if (slash == path)
		snprintf(out, len, "/");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

/*
 * The segment size is in the long header of a segment's first page:
 * xlp_seg_size follows the 24-byte short header and the system identifier.
 */
static uint64_t pg_segment_size_of(const char *path)
{
	unsigned char head[40];
	uint32_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = pread(fd, head, sizeof(head), 0);
	close(fd);
	if (n != (ssize_t)sizeof(head))
		return 0;
	memcpy(&size, head + 32, sizeof(size));
	/* A power of two between 1 MiB and 1 GiB, as initdb allows. */
	if (size < (1u << 20) || size > (1u << 30) || (size & (size - 1)))
		return 0;
	return size;
}

/*
 * Removes prefetched segments before `segno`: recovery has gone past them,
 * and they would stay in pg_wal for good otherwise.
 */
static void pg_prefetch_clean(const char pdir[4200], uint64_t segno, uint64_t seg_size)
{
	char path[4096 + 256 + 2];
	struct dirent *de;
	uint32_t tli;
	uint64_t n;
	DIR *dir = opendir(pdir);

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' ||
		    pg_parse_segment_name(de->d_name, &tli, &n, seg_size) < 0 || n >= segno)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%.4095s/%.255s", pdir, de->d_name) <
		    sizeof(path))
			unlink(path);
	}
	closedir(dir);
}

/*
 * Fetches the `count` segments after `file` into dir/.cairn-prefetch in a
 * detached process, so that PostgreSQL's next restore_command finds them
 * locally. Failures only cost the speed-up: the next wal-fetch fetches
 * normally.
 */
static void pg_prefetch(const cairn_host *host, cairn_session *s, const char *file,
                        const char *dest, int64_t count)
{
	char dir[4096], pdir[4200], target[4300], tmp[4400], next[25], name[PG_LOG_NAME_MAX];
	uint64_t seg_size = pg_segment_size_of(dest), segno;
	uint32_t tli;
	pid_t pid;
	int64_t i;

	if (count <= 0 || strlen(file) != 24 || !seg_size ||
	    pg_parse_segment_name(file, &tli, &segno, seg_size) < 0)
		return;
	if (count > PG_PREFETCH_MAX)
		count = PG_PREFETCH_MAX;
	pg_dirname(dest, dir, sizeof(dir));
	snprintf(pdir, sizeof(pdir), "%s/%s", dir, PG_PREFETCH_DIR);
	if (mkdir(pdir, 0700) < 0 && errno != EEXIST)
		return;
	/* Double fork: the server waits for its restore_command, not for this. */
	pid = fork();
	if (pid < 0)
		return;
	if (pid > 0) {
		waitpid(pid, NULL, 0);
		return;
	}
	if (fork() != 0)
		_exit(0);
	setsid();
	pg_prefetch_clean(pdir, segno, seg_size);
	for (i = 1; i <= count; i++) {
		struct stat sb;

		pg_segment_name(tli, segno + (uint64_t)i, seg_size, next);
		snprintf(target, sizeof(target), "%s/%s", pdir, next);
		if (stat(target, &sb) == 0)
			continue;
		snprintf(name, sizeof(name), "wal/%.8s/%s", next, next);
		/* A temp name, so that a half-fetched segment is never taken. */
		snprintf(tmp, sizeof(tmp), "%s/.%s.%ld", pdir, next, (long)getpid());
		if (host->log_get(s, name, tmp) < 0)
			break;
		if (rename(tmp, target) < 0) {
			unlink(tmp);
			break;
		}
	}
	_exit(0);
}

/* Takes a prefetched copy of file if there is one; 1 when it was taken. */
static int pg_take_prefetched(const char *file, const char *dest)
{
	char dir[4096], path[4300];

	pg_dirname(dest, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s/%s", dir, PG_PREFETCH_DIR, file);
	return rename(path, dest) == 0;
}

int pg_cmd_wal_fetch(const cairn_host *host, cairn_session *s, int argc, char *const *argv)
{
	char name[PG_LOG_NAME_MAX];
	int error;

	if (argc != 2)
		return host->error(CAIRN_EINVALID, "usage: cairn pg wal-fetch NAME DEST");
	if ((error = pg_log_name(host, argv[0], name, sizeof(name))) < 0)
		return error;
	if (!pg_take_prefetched(argv[0], argv[1])) {
		/* Not archived: CAIRN_ENOTFOUND without a message, exit 3 without noise. */
		if ((error = host->log_get(s, name, argv[1])) < 0)
			return error;
	}
	pg_prefetch(host, s, argv[0], argv[1], host->config_int("prefetch"));
	return 0;
}

/* ---- the archive's contents ---------------------------------------------- */

typedef struct pg_segment {
	uint32_t timeline;
	uint64_t segno;
} pg_segment;

typedef struct pg_archive {
	const cairn_host *host;
	uint64_t seg_size;
	pg_segment *segs; /* whole segments only, sorted by (segno, timeline) */
	size_t count, cap;
	uint32_t newest_timeline;
	/* Other WAL files (.backup, .partial) for pruning: their names. */
	char **others;
	size_t other_count, other_cap;
} pg_archive;

static void pg_archive_free(pg_archive *a)
{
	size_t i;

	free(a->segs);
	for (i = 0; i < a->other_count; i++)
		free(a->others[i]);
	free(a->others);
}

static int pg_archive_add(void *arg, const char *key, uint64_t size)
{
	pg_archive *a = arg;
	const char *file = strrchr(key, '/');
	uint32_t tli;
	uint64_t segno;

	(void)size;
	file = file ? file + 1 : key;
	if (strncmp(key, "timelines/", 10) == 0) {
		unsigned int t;

		if (sscanf(file, "%8X", &t) == 1 && t > a->newest_timeline)
			a->newest_timeline = t;
		return 0;
	}
	if (strncmp(key, "wal/", 4) != 0 || pg_parse_segment_name(file, &tli, &segno, a->seg_size) < 0)
		return 0;
	if (strlen(file) != 24) {
		char **grown;

		if (a->other_count == a->other_cap) {
			size_t cap = a->other_cap ? a->other_cap * 2 : 16;

			if (!(grown = realloc(a->others, cap * sizeof(*grown))))
				return pg_out_of_memory(a->host);
			a->others = grown;
			a->other_cap = cap;
		}
		if (!(a->others[a->other_count] = strdup(key)))
			return pg_out_of_memory(a->host);
		a->other_count++;
		return 0;
	}
	if (a->count == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		pg_segment *grown = realloc(a->segs, cap * sizeof(*grown));

		if (!grown)
			return pg_out_of_memory(a->host);
		a->segs = grown;
		a->cap = cap;
	}
	a->segs[a->count].timeline = tli;
	a->segs[a->count].segno = segno;
	a->count++;
	if (tli > a->newest_timeline)
		a->newest_timeline = tli;
	return 0;
}

static int pg_segment_cmp(const void *x, const void *y)
{
	const pg_segment *a = x, *b = y;

	if (a->segno != b->segno)
		return a->segno < b->segno ? -1 : 1;
	if (a->timeline != b->timeline)
		return a->timeline < b->timeline ? -1 : 1;
	return 0;
}

/* Lists the WAL files whose names start with `prefix` ("wal/" for all). */
static int pg_archive_load(const cairn_host *host, cairn_session *s, uint64_t seg_size,
                           const char *prefix, pg_archive *a)
{
	int error;

	memset(a, 0, sizeof(*a));
	a->host = host;
	a->seg_size = seg_size;
	if ((error = host->log_list(s, prefix, pg_archive_add, a)) < 0 ||
	    (strcmp(prefix, "wal/") == 0 &&
	     (error = host->log_list(s, "timelines/", pg_archive_add, a)) < 0))
		return error;
	if (a->count > 1)
		qsort(a->segs, a->count, sizeof(*a->segs), pg_segment_cmp);
	return 0;
}

static int pg_archive_has(const pg_archive *a, uint32_t tli, uint64_t segno)
{
	pg_segment key = {tli, segno};

	if (!a->count)
		return 0;
	return bsearch(&key, a->segs, a->count, sizeof(key), pg_segment_cmp) != NULL;
}

/* ---- backups' needs -------------------------------------------------------- */

typedef struct pg_backups {
	const cairn_host *host;
	size_t count;
	uint64_t seg_size;
	uint64_t oldest_segno;   /* smallest start segment of any backup */
	uint32_t oldest_timeline;
	char oldest_name[128];
	int error;
} pg_backups;

static const char *pg_meta(const char *const *meta, const char *key)
{
	for (; meta && meta[0]; meta += 2)
		if (strcmp(meta[0], key) == 0)
			return meta[1];
	return NULL;
}

static int pg_backup_seen(void *arg, const char *name, int64_t end_time, const char *const *meta)
{
	pg_backups *b = arg;
	const char *start = pg_meta(meta, "start-wal"), *size = pg_meta(meta, "wal-segment-size");
	uint64_t seg_size = size ? strtoull(size, NULL, 10) : 0, segno;
	uint32_t tli;

	(void)end_time;
	if (!start || !seg_size || pg_parse_segment_name(start, &tli, &segno, seg_size) < 0)
		return b->host->error(CAIRN_ECORRUPT, "backup %s has no valid start-wal in its meta",
		                      name);
	if (b->count && seg_size != b->seg_size)
		return b->host->error(CAIRN_EINVALID,
		                      "backups of different WAL segment sizes share this repository");
	b->seg_size = seg_size;
	if (!b->count || segno < b->oldest_segno) {
		b->oldest_segno = segno;
		b->oldest_timeline = tli;
		snprintf(b->oldest_name, sizeof(b->oldest_name), "%s", name);
	}
	b->count++;
	return 0;
}

static int pg_backups_load(const cairn_host *host, cairn_session *s, pg_backups *b)
{
	memset(b, 0, sizeof(*b));
	b->host = host;
	return host->backup_list(s, pg_backup_seen, b);
}

/* ---- timeline history ---------------------------------------------------- */

typedef struct pg_history {
	const cairn_host *host;
	char text[65536]; /* history files are a line per timeline switch */
	size_t len;
} pg_history;

static int pg_history_sink(void *arg, const void *data, size_t len)
{
	pg_history *h = arg;

	if (h->len + len >= sizeof(h->text))
		return h->host->error(CAIRN_EINVALID, "timeline history file too large");
	memcpy(h->text + h->len, data, len);
	h->len += len;
	return 0;
}

/* One ancestor timeline and the first segment it no longer covers. */
typedef struct pg_ancestor {
	uint32_t timeline;
	uint64_t end_segno;
} pg_ancestor;

/*
 * Reads the history of `timeline`: its ancestors in order, each covering
 * the segments before its switch point. A missing history file means no
 * ancestors.
 */
static int pg_history_load(const cairn_host *host, cairn_session *s, uint32_t timeline,
                           uint64_t seg_size, pg_ancestor *out, size_t max, size_t *count)
{
	pg_history *h;
	char name[64], *line, *save = NULL;
	int error;

	*count = 0;
	if (timeline <= 1)
		return 0;
	if (!(h = calloc(1, sizeof(*h))))
		return pg_out_of_memory(host);
	h->host = host;
	snprintf(name, sizeof(name), "timelines/%08X.history", timeline);
	error = host->log_read(s, name, pg_history_sink, h);
	if (error == CAIRN_ENOTFOUND) {
		error = 0;
		goto done;
	}
	if (error < 0)
		goto done;
	h->text[h->len] = '\0';
	for (line = strtok_r(h->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned int tli, hi, lo;

		if (line[0] == '#' || sscanf(line, "%u %X/%X", &tli, &hi, &lo) != 3)
			continue;
		if (*count == max)
			break;
		out[*count].timeline = tli;
		out[*count].end_segno = (((uint64_t)hi << 32) | lo) / seg_size;
		(*count)++;
	}
done:
	free(h);
	return error;
}

static uint32_t pg_timeline_of(const pg_ancestor *anc, size_t count, uint32_t newest,
                               uint64_t segno)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (segno < anc[i].end_segno)
			return anc[i].timeline;
	return newest;
}

/* ---- wal-verify ------------------------------------------------------------ */

int pg_cmd_wal_verify(const cairn_host *host, cairn_session *s, int argc, char *const *argv)
{
	pg_backups b;
	pg_archive a;
	pg_ancestor anc[256];
	size_t anc_count = 0, i;
	uint64_t first, last = 0, segno, gaps = 0, missing = 0, gap_start = 0;
	char from[25], to[25];
	int error, in_gap = 0;

	(void)argv;
	memset(&a, 0, sizeof(a));
	if (argc != 0)
		return host->error(CAIRN_EINVALID, "usage: cairn pg wal-verify");
	if ((error = pg_backups_load(host, s, &b)) < 0)
		return error;
	if (!b.count)
		return host->error(CAIRN_ENOTFOUND, "no pg backups in the repository: nothing to verify "
		                                    "the WAL against");
	if ((error = pg_archive_load(host, s, b.seg_size, "wal/", &a)) < 0)
		goto done;
	if ((error = pg_history_load(host, s, a.newest_timeline, b.seg_size, anc,
	                             sizeof(anc) / sizeof(anc[0]), &anc_count)) < 0)
		goto done;
	first = b.oldest_segno;
	for (i = 0; i < a.count; i++)
		if (a.segs[i].segno > last &&
		    a.segs[i].timeline == pg_timeline_of(anc, anc_count, a.newest_timeline,
		                                         a.segs[i].segno))
			last = a.segs[i].segno;
	if (last < first) {
		pg_segment_name(b.oldest_timeline, first, b.seg_size, from);
		error = host->error(CAIRN_ENOTFOUND,
		                    "no WAL archived from %s on, the start of the oldest backup %s",
		                    from, b.oldest_name);
		goto done;
	}
	for (segno = first; segno <= last + 1; segno++) {
		uint32_t tli = pg_timeline_of(anc, anc_count, a.newest_timeline, segno);
		int have = segno > last || pg_archive_has(&a, tli, segno);

		if (!have && !in_gap) {
			in_gap = 1;
			gap_start = segno;
		} else if (have && in_gap) {
			in_gap = 0;
			gaps++;
			missing += segno - gap_start;
			pg_segment_name(pg_timeline_of(anc, anc_count, a.newest_timeline, gap_start),
			                gap_start, b.seg_size, from);
			pg_segment_name(pg_timeline_of(anc, anc_count, a.newest_timeline, segno - 1),
			                segno - 1, b.seg_size, to);
			printf("missing %s..%s (%" PRIu64 " segment%s)\n", from, to, segno - gap_start,
			       segno - gap_start == 1 ? "" : "s");
		}
	}
	pg_segment_name(pg_timeline_of(anc, anc_count, a.newest_timeline, first), first, b.seg_size,
	                from);
	pg_segment_name(pg_timeline_of(anc, anc_count, a.newest_timeline, last), last, b.seg_size,
	                to);
	if (gaps) {
		error = host->error(CAIRN_ECORRUPT,
		                    "WAL from %s to %s has %" PRIu64 " gap%s (%" PRIu64
		                    " segments missing): a restore cannot pass them",
		                    from, to, gaps, gaps == 1 ? "" : "s", missing);
		goto done;
	}
	printf("ok: WAL is continuous from %s (start of backup %s) to %s, %" PRIu64
	       " segments, timeline %u\n",
	       from, b.oldest_name, to, last - first + 1, a.newest_timeline);
done:
	pg_archive_free(&a);
	return error;
}

int pg_wal_range_present(const cairn_host *host, cairn_session *s, uint32_t timeline,
                         uint64_t start, uint64_t stop, uint64_t seg_size, int *present,
                         char missing[25])
{
	pg_archive a;
	uint64_t segno;
	char first[25], last[25], prefix[64];
	size_t common = 0;
	int error;

	/*
	 * Only the names the range shares a prefix with are listed: this runs
	 * every second while a backup waits, and the archive may be large.
	 */
	pg_segment_name(timeline, start, seg_size, first);
	pg_segment_name(timeline, stop, seg_size, last);
	while (common < 24 && first[common] == last[common])
		common++;
	snprintf(prefix, sizeof(prefix), "wal/%.8s/%.*s", first, (int)common, first);
	*present = 1;
	if ((error = pg_archive_load(host, s, seg_size, prefix, &a)) < 0)
		goto done;
	for (segno = start; segno <= stop; segno++) {
		if (!pg_archive_has(&a, timeline, segno)) {
			*present = 0;
			pg_segment_name(timeline, segno, seg_size, missing);
			break;
		}
	}
done:
	pg_archive_free(&a);
	return error;
}

/* ---- pruning --------------------------------------------------------------- */

/*
 * Removes the WAL before the start of the oldest remaining backup: no
 * backup can use it. Timeline history files stay (they are tiny and
 * recovery reads them to choose a timeline). With no backup left nothing
 * is removed: the WAL may be all that remains of the data.
 */
int pg_prune_logs(const cairn_host *host, cairn_session *s)
{
	pg_backups b;
	pg_archive a;
	char **names = NULL, seg[25];
	size_t count = 0, i;
	int error;

	memset(&a, 0, sizeof(a));
	if ((error = pg_backups_load(host, s, &b)) < 0 || !b.count)
		return error;
	if ((error = pg_archive_load(host, s, b.seg_size, "wal/", &a)) < 0)
		goto done;
	if (!(names = calloc(a.count + a.other_count + 1, sizeof(*names)))) {
		error = pg_out_of_memory(host);
		goto done;
	}
	for (i = 0; i < a.count && a.segs[i].segno < b.oldest_segno; i++) {
		pg_segment_name(a.segs[i].timeline, a.segs[i].segno, b.seg_size, seg);
		if (!(names[count] = malloc(64))) {
			error = pg_out_of_memory(host);
			goto done;
		}
		snprintf(names[count++], 64, "wal/%.8s/%s", seg, seg);
	}
	for (i = 0; i < a.other_count; i++) {
		const char *file = strrchr(a.others[i], '/') + 1;
		uint32_t tli;
		uint64_t segno;

		if (pg_parse_segment_name(file, &tli, &segno, b.seg_size) == 0 &&
		    segno < b.oldest_segno) {
			names[count++] = a.others[i];
			a.others[i] = NULL;
		}
	}
	if (count)
		error = host->log_remove(s, (const char *const *)names, count);
	if (error == 0)
		host->log(CAIRN_LOG_INFO, "removed %zu WAL file%s older than backup %s", count,
		          count == 1 ? "" : "s", b.oldest_name);
done:
	for (i = 0; names && i < count; i++)
		free(names[i]);
	free(names);
	pg_archive_free(&a);
	return error;
}
