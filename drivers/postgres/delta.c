/*
 * delta.c - which blocks of which relations changed since the previous
 * backup, read from the WAL between the two backups' start points.
 *
 * Why this is safe (PostgreSQL 17's incremental backups rest on the same
 * argument): every change to a page of a permanent relation is logged with
 * a reference to that block. A block no record between the previous
 * backup's start (the redo point of its checkpoint, which had flushed every
 * page changed before it) and this backup's start names was not written
 * since the previous backup read it, so that backup's copy is the block as
 * it is now; changes after this start are replayed from the WAL as with any
 * base backup. Hint bits may differ; they are hints. What the WAL does not
 * describe block by block is left to a whole read: other forks than main
 * (the free space map is not logged), relations created or truncated in
 * the range, and everything when a database or tablespace was created,
 * moved or dropped. Any doubt - a segment missing, a page that is not what
 * it should be, a version whose format is unknown - turns the delta off and
 * the backup reads every changed file whole, as before.
 */
#include "delta.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walscan.h"

/* PostgreSQL's resource managers and records the delta must see (stable since 9.x). */
#define RM_SMGR_ID 2
#define RM_DBASE_ID 4
#define RM_TBLSPC_ID 5
#define XLOG_SMGR_CREATE 0x10
#define XLOG_SMGR_TRUNCATE 0x20
#define DEFAULTTABLESPACE_OID 1663u
#define GLOBALTABLESPACE_OID 1664u

/* Marks a whole relation (read every fork whole) in the block table. */
#define DELTA_WHOLE UINT32_MAX

/*
 * Changed blocks are kept as (relation, block / pages per chunk): with the
 * default 128 KiB chunks a table of 1 M entries (16 MiB) covers 128 GiB of
 * changed data; past that a whole read costs no more than the delta.
 */
#define DELTA_MAX_ENTRIES (1u << 20)

typedef struct delta_key {
	uint32_t spc, db, rel, chunk;
} delta_key;

struct pg_delta {
	const cairn_host *host;
	delta_key *table; /* open addressing; rel == 0 marks a free slot */
	size_t cap, count;
	uint32_t pages_per_chunk;
	uint64_t blocks_per_seg;
	int off;          /* the WAL said something the delta cannot follow */
	char reason[200]; /* why it is off */
	uint64_t wal_bytes, refs;
	unsigned local_segs, repo_segs; /* where the segments came from */
};

static uint64_t key_hash(const delta_key *k)
{
	uint64_t h = ((uint64_t)k->spc * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t)k->db << 32 | k->rel);

	h ^= (uint64_t)k->chunk * 0xC2B2AE3D27D4EB4FULL;
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ULL;
	return h ^ (h >> 32);
}

static int delta_off(pg_delta *d, const char *fmt, const char *arg)
{
	if (!d->off) {
		d->off = 1;
		snprintf(d->reason, sizeof(d->reason), fmt, arg);
	}
	return 0;
}

static int table_grow(pg_delta *d)
{
	size_t cap = d->cap ? 2 * d->cap : 4096, i, j;
	delta_key *t = calloc(cap, sizeof(*t));

	if (!t)
		return pg_out_of_memory(d->host);
	for (i = 0; i < d->cap; i++) {
		if (!d->table[i].rel)
			continue;
		for (j = key_hash(&d->table[i]) & (cap - 1); t[j].rel; j = (j + 1) & (cap - 1))
			;
		t[j] = d->table[i];
	}
	free(d->table);
	d->table = t;
	d->cap = cap;
	return 0;
}

static int table_has(const pg_delta *d, const delta_key *k)
{
	size_t i;

	if (!d->cap)
		return 0;
	for (i = key_hash(k) & (d->cap - 1); d->table[i].rel; i = (i + 1) & (d->cap - 1))
		if (memcmp(&d->table[i], k, sizeof(*k)) == 0)
			return 1;
	return 0;
}

static int table_add(pg_delta *d, const delta_key *k)
{
	size_t i;
	int error;

	if (d->off || k->rel == 0)
		return 0;
	if (d->count + 1 > d->cap / 2) {
		if (d->count >= DELTA_MAX_ENTRIES)
			return delta_off(d, "%s", "more than 1 M changed blocks since the previous backup");
		if ((error = table_grow(d)) < 0)
			return error;
	}
	for (i = key_hash(k) & (d->cap - 1); d->table[i].rel; i = (i + 1) & (d->cap - 1))
		if (memcmp(&d->table[i], k, sizeof(*k)) == 0)
			return 0;
	d->table[i] = *k;
	d->count++;
	return 0;
}

/* ---- the WAL scan's callbacks ---- */

static int on_block(void *arg, const pg_blockref *ref, uint64_t lsn)
{
	pg_delta *d = arg;
	delta_key k = {ref->spc, ref->db, ref->rel, 0};

	(void)lsn;
	d->refs++;
	/* Other forks are read whole: only the main fork needs entries. */
	if (ref->fork != 0)
		return 0;
	k.chunk = ref->block / d->pages_per_chunk;
	return table_add(d, &k);
}

static int on_record(void *arg, uint8_t rmid, uint8_t info, const uint8_t *data, size_t len,
                     uint64_t lsn)
{
	pg_delta *d = arg;
	delta_key k = {0, 0, 0, DELTA_WHOLE};
	char where[32];

	pg_format_lsn(lsn, where, sizeof(where));
	if (rmid == RM_DBASE_ID)
		return delta_off(d, "a database was created, moved or dropped (WAL at %s)", where);
	if (rmid == RM_TBLSPC_ID)
		return delta_off(d, "a tablespace was created or dropped (WAL at %s)", where);
	if (rmid != RM_SMGR_ID)
		return 0;
	/* xl_smgr_create: RelFileNode first; xl_smgr_truncate: block number, then RelFileNode. */
	switch (info & 0xF0) {
	case XLOG_SMGR_CREATE:
		if (len < 12)
			return delta_off(d, "a short relation-create record (WAL at %s)", where);
		memcpy(&k.spc, data, 4);
		memcpy(&k.db, data + 4, 4);
		memcpy(&k.rel, data + 8, 4);
		break;
	case XLOG_SMGR_TRUNCATE:
		if (len < 16)
			return delta_off(d, "a short truncate record (WAL at %s)", where);
		memcpy(&k.spc, data + 4, 4);
		memcpy(&k.db, data + 8, 4);
		memcpy(&k.rel, data + 12, 4);
		break;
	default:
		return delta_off(d, "an unknown storage record (WAL at %s)", where);
	}
	return table_add(d, &k);
}

/* ---- reading the WAL ---- */

typedef struct seg_buf {
	unsigned char *data;
	size_t len, cap;
} seg_buf;

static int seg_sink(void *arg, const void *data, size_t len)
{
	seg_buf *b = arg;

	if (len > b->cap - b->len)
		return CAIRN_EINVALID; /* longer than a segment: not one */
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

/*
 * Reads segment `name` from the data directory's pg_wal when it holds that
 * segment (not a recycled file: its first page must carry the segment's own
 * address), else from the repository. 1 when read, 0 when neither has it.
 */
static int read_segment(pg_delta *d, cairn_session *s, const char *pgdata, const char *name,
                        uint64_t segno, uint64_t seg_size, seg_buf *b)
{
	char path[4096], log_name[PG_LOG_NAME_MAX];
	uint64_t pageaddr;
	int fd, error;

	b->len = 0;
	snprintf(path, sizeof(path), "%s/pg_wal/%s", pgdata, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		while (b->len < seg_size) {
			ssize_t n = read(fd, b->data + b->len, seg_size - b->len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			b->len += (size_t)n;
		}
		close(fd);
		/* xlp_pageaddr is at offset 8 of every page header. */
		if (b->len >= 16) {
			memcpy(&pageaddr, b->data + 8, 8);
			if (pageaddr == segno * seg_size) {
				d->local_segs++;
				return 1;
			}
		}
	}
	b->len = 0;
	snprintf(log_name, sizeof(log_name), "wal/%.8s/%s", name, name);
	error = d->host->log_read(s, log_name, seg_sink, b);
	if (error == CAIRN_ENOTFOUND)
		return 0;
	if (error < 0)
		return error;
	d->repo_segs++;
	return 1;
}

int pg_delta_prepare(const pg_delta_params *p, pg_delta **out)
{
	const cairn_host *host = p->host;
	pg_delta *d;
	pg_walscan *scan = NULL;
	pg_walscan_cb cb;
	seg_buf b = {0};
	const char *v;
	uint64_t prev_start = 0, segno, first, last;
	unsigned long long prev_tli = 0, prev_block = 0, prev_seg = 0;
	char name[25], lsn_text[32];
	int error = 0, rc;

	*out = NULL;
	if (!(d = calloc(1, sizeof(*d))))
		return pg_out_of_memory(host);
	d->host = host;
	d->pages_per_chunk = (uint32_t)(p->block_size / p->page_size);
	d->blocks_per_seg = p->blocks_per_seg;
	if (!(v = host->prev_meta(p->writer, "start-lsn")) || pg_parse_lsn(v, &prev_start) < 0 ||
	         !(v = host->prev_meta(p->writer, "timeline")) || sscanf(v, "%llu", &prev_tli) != 1 ||
	         !(v = host->prev_meta(p->writer, "block-size")) || sscanf(v, "%llu", &prev_block) != 1 ||
	         !(v = host->prev_meta(p->writer, "wal-segment-size")) ||
	         sscanf(v, "%llu", &prev_seg) != 1)
		delta_off(d, "%s", "the previous backup lacks its start position");
	else if (prev_tli != p->timeline)
		delta_off(d, "%s", "the previous backup is of another timeline");
	else if (prev_block != p->block_size || prev_seg != p->seg_size)
		delta_off(d, "%s", "the previous backup has another block or segment size");
	else if (prev_start >= p->start_lsn)
		delta_off(d, "%s", "the previous backup does not start before this one");
	else if (p->blocks_per_seg % d->pages_per_chunk || p->page_size * d->pages_per_chunk != p->block_size)
		delta_off(d, "%s", "relation segments are not made of whole blocks");
	else if (p->start_lsn - prev_start > p->max_wal)
		delta_off(d, "%s", "more WAL since the previous backup than the delta limit");
	if (d->off)
		goto finish;

	d->wal_bytes = p->start_lsn - prev_start;
	cb.block = on_block;
	cb.record = on_record;
	cb.arg = d;
	if ((rc = pg_walscan_new(&scan, (uint32_t)p->seg_size, p->timeline, prev_start, p->start_lsn,
	                         &cb)) < 0) {
		if (rc == PG_WALSCAN_ENOMEM)
			error = pg_out_of_memory(host);
		else
			delta_off(d, "%s", "the WAL scanner refused the segment size or range");
		goto finish;
	}
	if (!(b.data = malloc(p->seg_size))) {
		error = pg_out_of_memory(host);
		goto finish;
	}
	b.cap = p->seg_size;
	first = prev_start / p->seg_size;
	last = (p->start_lsn - 1) / p->seg_size;
	for (segno = first; segno <= last && !d->off; segno++) {
		pg_segment_name(p->timeline, segno, p->seg_size, name);
		if ((rc = read_segment(d, p->session, p->pgdata, name, segno, p->seg_size, &b)) < 0) {
			error = rc;
			goto finish;
		}
		if (rc == 0) {
			delta_off(d, "WAL segment %s is neither in pg_wal nor in the repository", name);
			break;
		}
		if ((rc = pg_walscan_segment(scan, segno, b.data, b.len)) < 0) {
			/* Our callbacks fail only for memory; the scanner's failures turn the delta off. */
			if (rc == CAIRN_ENOMEM || rc == PG_WALSCAN_ENOMEM) {
				error = pg_out_of_memory(host);
				goto finish;
			}
			delta_off(d, "%s", pg_walscan_error(scan));
			break;
		}
	}
	if (!d->off && pg_walscan_finish(scan) < 0)
		delta_off(d, "%s", pg_walscan_error(scan));
finish:
	pg_walscan_free(scan);
	free(b.data);
	if (error < 0) {
		pg_delta_free(d);
		return error;
	}
	if (d->off) {
		host->log(CAIRN_LOG_INFO, "changed files are read whole: %s", d->reason);
		pg_delta_free(d);
		return 0;
	}
	pg_format_lsn(prev_start, lsn_text, sizeof(lsn_text));
	host->log(CAIRN_LOG_INFO,
	          "changed files: only blocks the WAL since %s names are read (%" PRIu64
	          " MB of WAL in %u segments from pg_wal and %u from the repository, %" PRIu64
	          " block references, %zu changed blocks)",
	          lsn_text, d->wal_bytes >> 20, d->local_segs, d->repo_segs, d->refs, d->count);
	*out = d;
	return 0;
}

/* Parses "<digits>" or "<digits>.<digits>" (a main-fork segment file name). */
static int parse_relfile(const char *name, uint32_t *rel, uint32_t *seg)
{
	unsigned long long r, s = 0;
	char *end;

	if (*name < '1' || *name > '9')
		return 0;
	errno = 0;
	r = strtoull(name, &end, 10);
	if (errno || r == 0 || r > UINT32_MAX)
		return 0;
	if (*end == '.') {
		if (end[1] < '1' || end[1] > '9')
			return 0;
		s = strtoull(end + 1, &end, 10);
		if (errno || s > UINT32_MAX)
			return 0;
	}
	if (*end)
		return 0;
	*rel = (uint32_t)r;
	*seg = (uint32_t)s;
	return 1;
}

static int parse_oid(const char *s, size_t len, uint32_t *out)
{
	unsigned long long v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return 0;
	*out = (uint32_t)v;
	return 1;
}

int pg_delta_file(const pg_delta *d, const char *path, pg_delta_file_t *f)
{
	const char *p, *slash, *name = strrchr(path, '/');
	delta_key whole;

	if (!d || !name)
		return 0;
	name++;
	memset(f, 0, sizeof(*f));
	if (!parse_relfile(name, &f->rel, &f->seg))
		return 0;
	if (strncmp(path, "pgdata/global/", 14) == 0 && !strchr(path + 14, '/')) {
		f->spc = GLOBALTABLESPACE_OID;
	} else if (strncmp(path, "pgdata/base/", 12) == 0) {
		p = path + 12;
		slash = strchr(p, '/');
		if (!slash || slash + 1 != name || !parse_oid(p, (size_t)(slash - p), &f->db))
			return 0;
		f->spc = DEFAULTTABLESPACE_OID;
	} else if (strncmp(path, "tablespace/", 11) == 0) {
		/* tablespace/<spc>/<version dir>/<db>/<rel> */
		const char *ver, *db;

		p = path + 11;
		if (!(ver = strchr(p, '/')) || !parse_oid(p, (size_t)(ver - p), &f->spc) ||
		    !(db = strchr(ver + 1, '/')) || !(slash = strchr(db + 1, '/')) || slash + 1 != name ||
		    !parse_oid(db + 1, (size_t)(slash - db - 1), &f->db))
			return 0;
	} else {
		return 0;
	}
	whole = (delta_key){f->spc, f->db, f->rel, DELTA_WHOLE};
	if (table_has(d, &whole))
		return 0;
	f->first_chunk = (uint64_t)f->seg * d->blocks_per_seg / d->pages_per_chunk;
	return 1;
}

int pg_delta_changed(const pg_delta *d, const pg_delta_file_t *f, uint64_t chunk)
{
	delta_key k = {f->spc, f->db, f->rel, 0};
	uint64_t c = f->first_chunk + chunk;

	if (c >= DELTA_WHOLE)
		return 1;
	k.chunk = (uint32_t)c;
	return table_has(d, &k);
}

void pg_delta_free(pg_delta *d)
{
	if (!d)
		return;
	free(d->table);
	free(d);
}
