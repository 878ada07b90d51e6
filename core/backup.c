/* backup.c - writing and reading backups (see backup.h). */
#include "backup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "log.h"
#include "pipeline.h"
#include "settings.h"

volatile int cairn_interrupted;

/*
 * Index text of stored packs goes out every 256 packs or 1 MiB of text,
 * whichever comes first: the text would otherwise grow with the backup
 * (~100 B per chunk; 1 MiB is ~1.3 GB of 128 KiB blocks). Garbage
 * collection merges index objects into one.
 */
#define INDEX_FLUSH_PACKS 256
#define INDEX_FLUSH_BYTES (1u << 20)
/* Chunk lists longer than this are stored as list chunks ("l" lines). */
#define LIST_INLINE_MAX (32u << 10)

typedef struct chunk_ref {
	uint8_t id[CAIRN_HASH_LEN];
	uint32_t len;
} chunk_ref;

/* The chunks of one entry, "l" lines expanded (the reader's and entry_copy_prev's). */
typedef struct chunk_refs {
	chunk_ref *v;
	size_t count, cap;
	uint64_t sum; /* bytes of the chunks */
} chunk_refs;

static void chunk_refs_clear(chunk_refs *refs)
{
	refs->count = 0;
	refs->sum = 0;
}

/* Appends the chunk of a "c" line (a cairn_chunk_list_each callback). */
static int chunk_refs_add(void *arg, const char *line)
{
	chunk_refs *refs = arg;
	int error;

	if (refs->count == refs->cap) {
		size_t cap = refs->cap ? refs->cap * 2 : 64;
		chunk_ref *grown = realloc(refs->v, cap * sizeof(*grown));

		if (!grown)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		refs->v = grown;
		refs->cap = cap;
	}
	if ((error = cairn_manifest_chunk_parse(line, refs->v[refs->count].id,
	                                        &refs->v[refs->count].len)) < 0)
		return error;
	refs->sum += refs->v[refs->count++].len;
	return 0;
}

/*
 * Appends the chunks a manifest line names: one for a "c" line, those of
 * the list chunk for an "l" line. 1 when it was one of those, 0 when not.
 */
static int chunk_refs_line(cairn_repo *repo, chunk_refs *refs, const char *line)
{
	uint8_t id[CAIRN_HASH_LEN];
	uint32_t len;
	int error;

	if (strncmp(line, "c ", 2) == 0)
		return (error = chunk_refs_add(refs, line)) < 0 ? error : 1;
	if (strncmp(line, "l ", 2) != 0)
		return 0;
	if ((error = cairn_manifest_list_parse(line, id, &len)) < 0 ||
	    (error = cairn_chunk_list_each(repo, id, len, chunk_refs_add, refs)) < 0)
		return error;
	return 1;
}

struct cairn_backup_writer {
	cairn_repo *repo;
	cairn_session *session;
	cairn_pipeline *pipe;
	char *lock;
	cairn_backup_info info;
	cairn_objwriter *manifest;
	int committed;

	/* current entry */
	int in_entry;
	cairn_entry entry;
	char *entry_path, *entry_link;
	cairn_chunker_params chunking;
	cairn_buf pending;     /* bytes not yet cut into chunks */
	cairn_buf chunk_lines; /* consumer side: chunk lines of the entry being finished */
	cairn_buf list_lines;  /* "l" lines when those are stored as list chunks */
	uint64_t entry_size;

	/* current pack */
	cairn_upload *pack;
	char pack_hex[CAIRN_PACK_ID_HEX + 1];
	char pack_key[96];
	uint32_t pack_no;
	uint64_t pack_offset;
	cairn_buf pack_trailer;
	cairn_buf frame;

	/* index text of committed packs not yet in an index object */
	cairn_buf index_text;
	size_t index_packs;
	char **index_keys; /* index objects written by this backup */
	size_t index_key_count;
	uint64_t progress_done;

	/* entries of the previous backup of the same source, for entry_reuse */
	int prev_state; /* 0 not loaded, 1 loaded, -1 none usable */
	struct prev_entry **prev;
	size_t prev_cap, prev_count;
	int64_t prev_start;
	char prev_name[CAIRN_NAME_MAX];
	cairn_backup_info prev_info; /* its catalog entry (meta) */

	/* entry_copy_prev: the previous version's chunks of the current entry */
	chunk_refs copy;
	int copy_state; /* 0 not expanded for this entry, 1 ready, -1 unusable */
};

/* An unchanged-file candidate: a FILE entry of the previous backup. */
typedef struct prev_entry {
	char *path;
	uint64_t size;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	cairn_buf refs; /* its "c" or "l" lines */
} prev_entry;

static int check_interrupt(void)
{
	if (cairn_interrupted)
		return cairn_error_set(CAIRN_ECANCELED, "interrupted");
	return 0;
}

/* The -N suffix of a backup name, 1 without one. */
static unsigned long name_suffix(const char *name, size_t *base_len)
{
	const char *dash = strrchr(name, '-');
	const char *p;

	*base_len = strlen(name);
	if (!dash || !dash[1] || dash - name < 17)
		return 1;
	for (p = dash + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return 1;
	*base_len = (size_t)(dash - name);
	return strtoul(dash + 1, NULL, 10);
}

typedef struct suffix_scan {
	size_t skip;
	const char *base;
	unsigned long max;
} suffix_scan;

static int suffix_seen(void *arg, const char *key, uint64_t size)
{
	suffix_scan *scan = arg;
	const char *name = key + scan->skip;
	size_t base_len;
	unsigned long n = name_suffix(name, &base_len);

	(void)size;
	if (base_len == strlen(scan->base) && strncmp(name, scan->base, base_len) == 0 &&
	    n > scan->max)
		scan->max = n;
	return 0;
}

/*
 * <engine>-<UTC stamp>, with -N after the highest suffix ever used in that
 * second (deleted names included, as far as manifests remain), so names of
 * one second sort in the order the backups were taken.
 */
static int unique_name(cairn_repo *repo, const char *engine, char *out, size_t len)
{
	char stamp[32], base[96], prefix[CAIRN_NAME_MAX + 16];
	static const char *const dirs[] = {"catalog/", "manifests/"};
	time_t now = time(NULL);
	struct tm tm;
	suffix_scan scan;
	int i, error;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(base, sizeof(base), "%s-%s", engine, stamp);
	scan.base = base;
	scan.max = 0;
	for (i = 0; i < 2; i++) {
		snprintf(prefix, sizeof(prefix), "%s%s", dirs[i], base);
		scan.skip = strlen(dirs[i]);
		if ((error = cairn_store_list(repo->store, prefix, suffix_seen, &scan)) < 0)
			return error;
	}
	if (scan.max == 0)
		snprintf(out, len, "%s", base);
	else
		snprintf(out, len, "%s-%lu", base, scan.max + 1);
	return 0;
}

static int writer_consume(void *arg, cairn_job *job);

int cairn_backup_writer_new(cairn_backup_writer **out, cairn_repo *repo, const char *engine)
{
	cairn_backup_writer *w;
	char key[CAIRN_NAME_MAX + 16];
	int error, workers;

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	w->repo = repo;
	snprintf(w->info.engine, sizeof(w->info.engine), "%s", engine);
	w->info.start_time = time(NULL);
	if ((error = cairn_lock_acquire(repo, 0, "backup-push", &w->lock)) < 0)
		goto fail;
	if ((error = cairn_repo_load_index_bounded(repo)) < 0)
		goto fail;
	workers = (int)cairn_settings_get_int("workers");
	if ((error = cairn_pipeline_new(&w->pipe, repo,
	                                workers > 0 ? workers : cairn_pipeline_default_workers(),
	                                NULL, writer_consume, w)) < 0)
		goto fail;
	if ((error = unique_name(repo, engine, w->info.name, sizeof(w->info.name))) < 0)
		goto fail;
	snprintf(key, sizeof(key), "manifests/%s", w->info.name);
	if ((error = cairn_objwriter_begin(&w->manifest, repo, key, CAIRN_OBJ_MANIFEST)) < 0)
		goto fail;
	if ((error = cairn_objwriter_printf(w->manifest, "cairn-manifest 1\nname %s\nengine %s\n",
	                                    w->info.name, engine)) < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	cairn_backup_writer_free(w);
	return error;
}

/* ---- packs ---- */

static int pack_open(cairn_backup_writer *w)
{
	uint8_t header[CAIRN_OBJECT_HEADER_LEN];
	int error;

	if ((error = cairn_random_hex(w->pack_hex, CAIRN_PACK_ID_HEX / 2)) < 0)
		return error;
	cairn_pack_key(w->pack_hex, w->pack_key, sizeof(w->pack_key));
	if ((error = cairn_index_pack(&w->repo->index, w->pack_hex, &w->pack_no)) < 0)
		return error;
	if ((error = cairn_store_upload_begin(w->repo->store, w->pack_key, &w->pack)) < 0)
		return error;
	cairn_object_header_write(header, CAIRN_OBJ_PACK);
	if ((error = cairn_store_upload_write(w->repo->store, w->pack, w->pack_key, header,
	                                      sizeof(header))) < 0)
		return error;
	w->pack_offset = CAIRN_OBJECT_HEADER_LEN;
	cairn_buf_clear(&w->pack_trailer);
	return cairn_buf_printf(&w->pack_trailer, "cairn-pack 1\n");
}

static int index_flush(cairn_backup_writer *w)
{
	char key[64], **grown;
	int error;

	if (w->index_packs == 0)
		return 0;
	memcpy(key, "index/", 6);
	if ((error = cairn_random_hex(key + 6, 16)) < 0)
		return error;
	if ((error = cairn_repo_put_object(w->repo, key, CAIRN_OBJ_INDEX, w->index_text.data,
	                                   w->index_text.len)) < 0)
		return error;
	if (!(grown = realloc(w->index_keys, (w->index_key_count + 1) * sizeof(*grown))) ||
	    !(grown[w->index_key_count] = strdup(key))) {
		if (grown)
			w->index_keys = grown;
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	w->index_keys = grown;
	w->index_key_count++;
	w->info.stored_size += w->index_text.len;
	cairn_buf_clear(&w->index_text);
	w->index_packs = 0;
	return 0;
}

static int pack_close(cairn_backup_writer *w)
{
	int error;

	if (!w->pack)
		return 0;
	cairn_buf_clear(&w->frame);
	/* The trailer lists the pack's chunks so an index can be rebuilt from packs. */
	if ((error = cairn_frame_encode(&w->repo->keys, w->repo->codec, w->repo->level,
	                                CAIRN_FRAME_FLAG_LAST, w->pack_trailer.data,
	                                w->pack_trailer.len, NULL, &w->frame)) < 0 ||
	    (error = cairn_store_upload_write(w->repo->store, w->pack, w->pack_key, w->frame.data,
	                                      w->frame.len)) < 0) {
		cairn_store_upload_abort(w->repo->store, w->pack);
		w->pack = NULL;
		return error;
	}
	w->info.stored_size += w->frame.len;
	error = cairn_store_upload_commit(w->repo->store, w->pack, w->pack_key);
	w->pack = NULL;
	if (error < 0)
		return error;
	/* The trailer's chunk lines are the index lines of this pack. */
	if ((w->index_text.len == 0 && (error = cairn_buf_printf(&w->index_text, "cairn-index 1\n")) < 0) ||
	    (error = cairn_buf_printf(&w->index_text, "pack %s\n", w->pack_hex)) < 0 ||
	    (error = cairn_buf_append(&w->index_text, w->pack_trailer.data + 13,
	                              w->pack_trailer.len - 13)) < 0)
		return error;
	if (++w->index_packs >= INDEX_FLUSH_PACKS || w->index_text.len >= INDEX_FLUSH_BYTES)
		return index_flush(w);
	return 0;
}

/* Writes a new chunk's frame into the open pack and indexes it. */
static int store_frame(cairn_backup_writer *w, const cairn_job *job, const char *hex)
{
	cairn_index_entry e;
	int error;

	if (!w->pack && (error = pack_open(w)) < 0)
		return error;
	if ((error = cairn_store_upload_write(w->repo->store, w->pack, w->pack_key, job->frame.data,
	                                      job->frame.len)) < 0)
		return error;
	memset(&e, 0, sizeof(e));
	memcpy(e.id, job->id, sizeof(e.id));
	e.pack = w->pack_no;
	e.offset = w->pack_offset;
	e.length = (uint32_t)job->frame.len;
	e.plain_len = (uint32_t)job->data.len;
	if ((error = cairn_pipeline_index_add(w->pipe, &e)) < 0)
		return error;
	if ((error = cairn_buf_printf(&w->pack_trailer, "%s %" PRIu64 " %zu %zu\n", hex,
	                              w->pack_offset, job->frame.len, job->data.len)) < 0)
		return error;
	w->pack_offset += job->frame.len;
	w->info.stored_size += job->frame.len;
	if (w->pack_offset >= w->repo->pack_size)
		return pack_close(w);
	return 0;
}

/*
 * Stores an entry's chunk lines as list chunks and puts the "l" lines naming
 * them into out. A list chunk ends after a line whose chunk id starts with
 * the hex digit 0 (1 in 16, at least 4 and at most 64 lines): the cut depends
 * on that line alone, so a changed chunk changes only the list chunk holding
 * it, and a list that barely changed shares most list chunks with the
 * previous backup.
 */
static int store_chunk_list(cairn_backup_writer *w, const cairn_buf *lines, cairn_buf *out)
{
	char hex[CAIRN_HASH_LEN * 2 + 1];
	const uint8_t *p, *end = lines->data + lines->len, *nl;
	cairn_job job;
	size_t count;
	int error = 0;

	memset(&job, 0, sizeof(job));
	for (p = lines->data; p < end && error == 0; p += job.data.len) {
		for (nl = p, count = 0; nl < end;) {
			const uint8_t *line = nl;

			nl = memchr(line, '\n', (size_t)(end - line));
			nl = nl ? nl + 1 : end;
			count++;
			if ((count >= 4 && line[2] == '0') || count == 64)
				break;
		}
		job.data.data = (uint8_t *)p;
		job.data.len = (size_t)(nl - p);
		cairn_frame_checksum(&w->repo->keys, job.data.data, job.data.len, job.id);
		cairn_hex_encode(job.id, sizeof(job.id), hex);
		if (!cairn_index_find(&w->repo->index, job.id)) {
			cairn_buf_clear(&job.frame);
			if ((error = cairn_frame_encode(&w->repo->keys, w->repo->codec, w->repo->level, 0,
			                                job.data.data, job.data.len, job.id,
			                                &job.frame)) < 0 ||
			    (error = store_frame(w, &job, hex)) < 0)
				break;
		}
		error = cairn_buf_printf(out, "l %s %zu\n", hex, job.data.len);
	}
	cairn_buf_free(&job.frame);
	return error;
}

/*
 * Receives the pipeline's jobs in the order they were submitted: chunks
 * (stored when new) and, after an entry's chunks, a mark holding the
 * entry's manifest line.
 */
static int writer_consume(void *arg, cairn_job *job)
{
	cairn_backup_writer *w = arg;
	char hex[CAIRN_HASH_LEN * 2 + 1];
	int error;

	if (job->kind == CAIRN_JOB_ENTRY) {
		/* A reused entry: line and references were composed by entry_reuse. */
		if ((error = cairn_objwriter_write(w->manifest, job->data.data, job->data.len)) < 0)
			return error;
		w->info.entries++;
		w->info.size += job->value;
		return 0;
	}
	if (job->kind == CAIRN_JOB_MARK) {
		const cairn_buf *refs = &w->chunk_lines;

		if (w->chunk_lines.len > LIST_INLINE_MAX) {
			cairn_buf_clear(&w->list_lines);
			if ((error = store_chunk_list(w, &w->chunk_lines, &w->list_lines)) < 0)
				return error;
			refs = &w->list_lines;
		}
		if ((error = cairn_objwriter_write(w->manifest, job->data.data, job->data.len)) < 0 ||
		    (error = cairn_objwriter_write(w->manifest, refs->data, refs->len)) < 0)
			return error;
		cairn_buf_clear(&w->chunk_lines);
		w->info.entries++;
		w->info.size += job->value;
		return 0;
	}
	if (job->kind == CAIRN_JOB_REF) {
		/* A block taken from the previous backup: its id is the data. */
		cairn_hex_encode(job->data.data, CAIRN_HASH_LEN, hex);
		if ((error = cairn_buf_printf(&w->chunk_lines, "c %s %" PRIu64 "\n", hex, job->value)) < 0)
			return error;
		w->info.chunks++;
		return 0;
	}
	cairn_hex_encode(job->id, sizeof(job->id), hex);
	if ((error = cairn_buf_printf(&w->chunk_lines, "c %s %zu\n", hex, job->data.len)) < 0)
		return error;
	w->info.chunks++;
	/*
	 * Known when hashed, or stored meanwhile by an earlier job with the same
	 * data: that one is recent, so in memory (unless a spill came between,
	 * when the chunk is stored twice, which costs space, not correctness).
	 */
	if (job->known || cairn_index_find_memory(&w->repo->index, job->id))
		return 0;
	return store_frame(w, job, hex);
}

/* ---- entries ---- */

int cairn_backup_writer_entry_begin(cairn_backup_writer *w, const cairn_entry *entry)
{
	if (w->in_entry)
		return cairn_error_set(CAIRN_EINVALID, "entry_begin of %s before entry_end of %s",
		                       entry->path, w->entry_path);
	if (!entry->path || !*entry->path)
		return cairn_error_set(CAIRN_EINVALID, "entry without a path");
	free(w->entry_path);
	free(w->entry_link);
	w->entry_link = NULL;
	if (!(w->entry_path = strdup(entry->path)) ||
	    (entry->link_target && !(w->entry_link = strdup(entry->link_target))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	w->entry = *entry;
	w->entry.path = w->entry_path;
	w->entry.link_target = w->entry_link;
	memset(&w->chunking, 0, sizeof(w->chunking));
	if (entry->chunking == CAIRN_CHUNK_FIXED) {
		w->chunking.fixed = 1;
		w->chunking.block = entry->block_size ? entry->block_size : (1u << 20);
		if (w->chunking.block > (16u << 20))
			return cairn_error_set(CAIRN_EINVALID, "block size %u of %s is too large",
			                       entry->block_size, entry->path);
	} else {
		w->chunking = w->repo->cdc;
	}
	cairn_buf_clear(&w->pending);
	w->entry_size = 0;
	w->copy_state = 0;
	w->in_entry = 1;
	return 0;
}

static size_t cut_size(const cairn_chunker_params *p)
{
	return p->fixed ? p->block : p->max_size;
}

static int cut_pending(cairn_backup_writer *w, int final)
{
	size_t pos = 0, n;
	int error = 0;

	while (pos < w->pending.len) {
		if (!final && w->pending.len - pos < cut_size(&w->chunking))
			break;
		n = cairn_chunker_cut(&w->chunking, &w->repo->gear, w->pending.data + pos,
		                      w->pending.len - pos, final);
		if (n == 0)
			break;
		if ((error = cairn_pipeline_submit(w->pipe, CAIRN_JOB_CHUNK, w->pending.data + pos, n,
		                                   0)) < 0)
			return error;
		pos += n;
	}
	if (pos) {
		memmove(w->pending.data, w->pending.data + pos, w->pending.len - pos);
		w->pending.len -= pos;
	}
	return check_interrupt();
}

int cairn_backup_writer_entry_write(cairn_backup_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t room, n, limit;
	int error;

	if (!w->in_entry)
		return cairn_error_set(CAIRN_EINVALID, "entry_write outside an entry");
	if (w->entry.type != CAIRN_ENTRY_FILE && w->entry.type != CAIRN_ENTRY_STREAM)
		return cairn_error_set(CAIRN_EINVALID, "entry %s of this type has no data",
		                       w->entry.path);
	/* Buffer at most two cut windows: memory stays bounded by the chunk size. */
	limit = 2 * cut_size(&w->chunking);
	while (len) {
		/*
		 * With nothing pending, whole chunks go from the caller's buffer to
		 * the pipeline without a copy here. Each cut sees a full window, as
		 * in cut_pending, so the chunks are the same however the data
		 * arrives.
		 */
		if (w->pending.len == 0 && len >= cut_size(&w->chunking)) {
			n = cairn_chunker_cut(&w->chunking, &w->repo->gear, p, len, 0);
			if (n == 0 || (error = cairn_pipeline_submit(w->pipe, CAIRN_JOB_CHUNK, p, n, 0)) < 0)
				return n == 0 ? cairn_error_set(CAIRN_ERROR, "chunker made no progress") : error;
			p += n;
			len -= n;
			w->entry_size += n;
			w->progress_done += n;
			if ((error = check_interrupt()) < 0)
				return error;
			continue;
		}
		room = limit - w->pending.len;
		n = len < room ? len : room;
		if ((error = cairn_buf_append(&w->pending, p, n)) < 0)
			return error;
		p += n;
		len -= n;
		w->entry_size += n;
		w->progress_done += n;
		if (w->pending.len == limit && (error = cut_pending(w, 0)) < 0)
			return error;
	}
	cairn_progress_update(w->progress_done, 0);
	return 0;
}

int cairn_backup_writer_entry_end(cairn_backup_writer *w)
{
	cairn_buf line = CAIRN_BUF_INIT;
	int error;

	if (!w->in_entry)
		return cairn_error_set(CAIRN_EINVALID, "entry_end outside an entry");
	if ((error = cut_pending(w, 1)) < 0)
		goto done;
	/* The entry line follows its chunks through the pipeline, keeping manifest order. */
	if ((error = cairn_manifest_entry_line(&line, &w->entry, w->entry_size)) < 0 ||
	    (error = cairn_pipeline_submit(w->pipe, CAIRN_JOB_MARK, line.data, line.len,
	                                   w->entry_size)) < 0)
		goto done;
	w->in_entry = 0;
done:
	cairn_buf_free(&line);
	return error;
}

int cairn_backup_writer_entry_chunk_size(cairn_backup_writer *w, size_t avg_size)
{
	cairn_chunker_params p;
	int error;

	if (!w->in_entry || w->entry_size > 0 || w->chunking.fixed)
		return cairn_error_set(CAIRN_EINVALID,
		                       "entry_chunk_size must follow entry_begin of a content-defined "
		                       "entry, before its data");
	if (avg_size < 256 || avg_size > (16u << 20))
		return cairn_error_set(CAIRN_EINVALID, "chunk size %zu of %s is not within 256 B..16 MiB",
		                       avg_size, w->entry.path);
	p = w->chunking;
	p.min_size = avg_size / 4;
	p.avg_size = avg_size;
	p.max_size = avg_size * 4;
	if ((error = cairn_chunker_check(&p)) < 0)
		return error;
	w->chunking = p;
	return 0;
}

/* ---- reuse of unchanged files ---- */

static uint64_t path_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
	return h;
}

static int prev_insert(cairn_backup_writer *w, prev_entry *e)
{
	size_t i;

	if ((w->prev_count + 1) * 2 > w->prev_cap) {
		size_t cap = w->prev_cap ? w->prev_cap * 2 : 1024;
		prev_entry **table = calloc(cap, sizeof(*table));

		if (!table)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		for (i = 0; i < w->prev_cap; i++) {
			size_t s;

			if (!w->prev[i])
				continue;
			for (s = path_hash(w->prev[i]->path) & (cap - 1); table[s]; s = (s + 1) & (cap - 1))
				;
			table[s] = w->prev[i];
		}
		free(w->prev);
		w->prev = table;
		w->prev_cap = cap;
	}
	for (i = path_hash(e->path) & (w->prev_cap - 1); w->prev[i]; i = (i + 1) & (w->prev_cap - 1))
		;
	w->prev[i] = e;
	w->prev_count++;
	return 0;
}

static prev_entry *prev_find(cairn_backup_writer *w, const char *path)
{
	size_t i;

	if (!w->prev_cap)
		return NULL;
	for (i = path_hash(path) & (w->prev_cap - 1); w->prev[i]; i = (i + 1) & (w->prev_cap - 1))
		if (strcmp(w->prev[i]->path, path) == 0)
			return w->prev[i];
	return NULL;
}

static void prev_entry_free(prev_entry *e)
{
	if (!e)
		return;
	free(e->path);
	cairn_buf_free(&e->refs);
	free(e);
}

static void prev_free(cairn_backup_writer *w)
{
	size_t i;

	for (i = 0; i < w->prev_cap; i++)
		prev_entry_free(w->prev[i]);
	free(w->prev);
	w->prev = NULL;
	w->prev_cap = w->prev_count = 0;
	cairn_backup_info_free(&w->prev_info);
	memset(&w->prev_info, 0, sizeof(w->prev_info));
	free(w->copy.v);
	memset(&w->copy, 0, sizeof(w->copy));
}

/*
 * The newest backup of this engine whose "source" (and "identity", when the
 * driver sets one) equal this backup's: its FILE entries with their chunk
 * references, by path.
 */
static int prev_load(cairn_backup_writer *w)
{
	cairn_backup_info *infos = NULL;
	cairn_objreader *r = NULL;
	prev_entry *cur = NULL;
	const char *source = cairn_backup_info_meta(&w->info, "source");
	const char *identity = cairn_backup_info_meta(&w->info, "identity");
	char key[CAIRN_NAME_MAX + 16], *line, *copy = NULL;
	size_t count = 0, i;
	int rc, error;

	w->prev_state = -1;
	if (!source)
		return 0;
	if ((error = cairn_backup_list(w->repo, w->info.engine, &infos, &count)) < 0)
		return error;
	for (i = count; i-- > 0;) {
		const char *s = cairn_backup_info_meta(&infos[i], "source");
		const char *id = cairn_backup_info_meta(&infos[i], "identity");

		if (s && strcmp(s, source) == 0 && ((!id && !identity) || (id && identity && strcmp(id, identity) == 0))) {
			snprintf(w->prev_name, sizeof(w->prev_name), "%s", infos[i].name);
			w->prev_start = infos[i].start_time;
			w->prev_info = infos[i];
			memset(&infos[i], 0, sizeof(infos[i]));
			break;
		}
	}
	for (i = 0; i < count; i++)
		cairn_backup_info_free(&infos[i]);
	free(infos);
	if (!w->prev_name[0])
		return 0;
	snprintf(key, sizeof(key), "manifests/%s", w->prev_name);
	if ((error = cairn_objreader_open(&r, w->repo, key, CAIRN_OBJ_MANIFEST)) < 0)
		return error;
	while ((rc = cairn_objreader_line(r, &line)) > 0) {
		cairn_entry e;

		if (strncmp(line, "c ", 2) == 0 || strncmp(line, "l ", 2) == 0) {
			if (cur && ((error = cairn_buf_append(&cur->refs, line, strlen(line))) < 0 ||
			            (error = cairn_buf_append(&cur->refs, "\n", 1)) < 0))
				goto done;
			continue;
		}
		if (cur) {
			if ((error = prev_insert(w, cur)) < 0)
				goto done;
			cur = NULL;
		}
		if (strncmp(line, "entry F ", 8) != 0)
			continue;
		free(copy);
		if (!(copy = strdup(line))) {
			error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto done;
		}
		if ((error = cairn_manifest_entry_parse(copy, &e)) < 0)
			goto done;
		if (!(cur = calloc(1, sizeof(*cur))) || !(cur->path = strdup(e.path))) {
			error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto done;
		}
		cur->size = e.size;
		cur->mtime_sec = e.mtime_sec;
		cur->mtime_nsec = e.mtime_nsec;
	}
	if (rc < 0) {
		error = rc;
		goto done;
	}
	if (cur && (error = prev_insert(w, cur)) < 0)
		goto done;
	cur = NULL;
	w->prev_state = 1;
	cairn_log(CAIRN_LOG_INFO, "unchanged files are taken from backup %s", w->prev_name);
	error = 0;
done:
	prev_entry_free(cur);
	free(copy);
	cairn_objreader_free(r);
	if (error < 0)
		prev_free(w);
	return error;
}

/*
 * 1 when the previous backup of this source is loaded (loading it on first
 * use), 0 when there is none or skip-unchanged is off. A failure to load it
 * only costs time: it is reported and every file is read.
 */
static int prev_ready(cairn_backup_writer *w)
{
	if (!cairn_settings_get_bool("skip-unchanged"))
		return 0;
	if (w->prev_state == 0 && prev_load(w) < 0) {
		cairn_log(CAIRN_LOG_WARN, "reading every file: %s", cairn_error_message());
		cairn_error_clear();
		w->prev_state = -1;
	}
	return w->prev_state == 1;
}

const char *cairn_backup_writer_prev_meta(cairn_backup_writer *w, const char *key)
{
	if (!key || !prev_ready(w))
		return NULL;
	if (strcmp(key, "name") == 0)
		return w->prev_name;
	return cairn_backup_info_meta(&w->prev_info, key);
}

/*
 * The previous version's chunk references of the current entry, with "l"
 * lines expanded: 1 when usable for block copies (every chunk but the last
 * one block long), 0 when not.
 */
static int copy_expand(cairn_backup_writer *w)
{
	const prev_entry *p;
	char *text = NULL, *line, *nl;
	size_t i;
	int error = 0;

	if (w->copy_state)
		return w->copy_state > 0;
	w->copy_state = -1;
	chunk_refs_clear(&w->copy);
	if (!prev_ready(w) || !(p = prev_find(w, w->entry_path)))
		return 0;
	if (!(text = strndup((const char *)p->refs.data, p->refs.len)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (line = text; *line && error >= 0; line = nl + 1) {
		if (!(nl = strchr(line, '\n')))
			break;
		*nl = 0;
		if ((error = chunk_refs_line(w->repo, &w->copy, line)) == 0)
			error = cairn_error_set(CAIRN_ECORRUPT,
			                        "chunk list of %s in backup %s: not a chunk line",
			                        w->entry_path, w->prev_name);
	}
	free(text);
	if (error < 0)
		return error;
	for (i = 0; i + 1 < w->copy.count; i++)
		if (w->copy.v[i].len != w->chunking.block)
			return 0;
	w->copy_state = 1;
	return 1;
}

int cairn_backup_writer_entry_copy_prev(cairn_backup_writer *w, uint64_t length)
{
	uint64_t first, count, i;
	uint32_t block = w->chunking.block;
	int error;

	if (!w->in_entry || !w->chunking.fixed || w->pending.len || w->entry_size % block ||
	    length % block)
		return cairn_error_set(CAIRN_EINVALID,
		                       "entry_copy_prev needs a fixed-block entry and whole blocks "
		                       "at a block boundary");
	if (length == 0)
		return 1;
	if ((error = copy_expand(w)) <= 0)
		return error;
	first = w->entry_size / block;
	count = length / block;
	if (first + count > w->copy.count)
		return 0;
	/* Every chunk must be a whole block and still stored (it is: the backup holding it is kept). */
	for (i = first; i < first + count; i++)
		if (w->copy.v[i].len != block || !cairn_index_find(&w->repo->index, w->copy.v[i].id))
			return 0;
	for (i = first; i < first + count; i++) {
		const chunk_ref *c = &w->copy.v[i];

		if ((error = cairn_pipeline_submit(w->pipe, CAIRN_JOB_REF, c->id, CAIRN_HASH_LEN,
		                                   c->len)) < 0)
			return error;
	}
	w->entry_size += length;
	w->progress_done += length;
	w->info.reused_bytes += length;
	cairn_progress_update(w->progress_done, 0);
	return 1;
}

int cairn_backup_writer_entry_reuse(cairn_backup_writer *w, const cairn_entry *entry)
{
	cairn_buf text = CAIRN_BUF_INIT;
	prev_entry *p;
	int error;

	if (w->in_entry)
		return cairn_error_set(CAIRN_EINVALID, "entry_reuse of %s inside entry %s", entry->path,
		                       w->entry_path);
	if (entry->type != CAIRN_ENTRY_FILE || !prev_ready(w) || !(p = prev_find(w, entry->path)))
		return 0;
	/*
	 * Same size and modification time, and modified well before the earlier
	 * backup started: a change in the same second could keep the timestamp.
	 */
	if (p->size != entry->size || p->mtime_sec != entry->mtime_sec ||
	    p->mtime_nsec != entry->mtime_nsec || entry->mtime_sec >= w->prev_start - 1)
		return 0;
	if ((error = cairn_manifest_entry_line(&text, entry, p->size)) < 0 ||
	    (error = cairn_buf_append(&text, p->refs.data, p->refs.len)) < 0 ||
	    (error = cairn_pipeline_submit(w->pipe, CAIRN_JOB_ENTRY, text.data, text.len, p->size)) < 0)
		goto done;
	w->info.reused_bytes += p->size;
	w->progress_done += p->size;
	error = 1;
done:
	cairn_buf_free(&text);
	return error;
}

int cairn_backup_writer_meta_set(cairn_backup_writer *w, const char *key, const char *value)
{
	if (!key || !*key || !value)
		return cairn_error_set(CAIRN_EINVALID, "meta_set needs a key and a value");
	return cairn_backup_info_meta_set(&w->info, key, value);
}

int cairn_backup_writer_commit(cairn_backup_writer *w, cairn_backup_info *info)
{
	cairn_buf text = CAIRN_BUF_INIT;
	char key[CAIRN_NAME_MAX + 16];
	size_t i;
	int error;

	if (w->in_entry)
		return cairn_error_set(CAIRN_EINVALID, "commit inside entry %s", w->entry.path);
	if ((error = cairn_pipeline_drain(w->pipe)) < 0 || (error = pack_close(w)) < 0 ||
	    (error = index_flush(w)) < 0)
		goto done;
	w->info.end_time = time(NULL);
	for (i = 0; i < w->info.meta_count; i++) {
		cairn_buf_clear(&text);
		if ((error = cairn_buf_append(&text, "meta ", 5)) < 0 ||
		    (error = cairn_escape(&text, w->info.meta[i].key)) < 0 ||
		    (error = cairn_buf_append(&text, " ", 1)) < 0 ||
		    (error = cairn_escape(&text, w->info.meta[i].value)) < 0 ||
		    (error = cairn_buf_append(&text, "\n", 1)) < 0 ||
		    (error = cairn_objwriter_write(w->manifest, text.data, text.len)) < 0)
			goto done;
	}
	if ((error = cairn_objwriter_printf(w->manifest, "end %" PRIu64 " %" PRIu64 "\n",
	                                    w->info.entries, w->info.size)) < 0)
		goto done;
	error = cairn_objwriter_commit(w->manifest);
	w->manifest = NULL;
	if (error < 0)
		goto done;
	/* The catalog entry goes last: only now does the backup exist. */
	cairn_buf_clear(&text);
	if ((error = cairn_backup_info_format(&w->info, &text)) < 0)
		goto done;
	snprintf(key, sizeof(key), "catalog/%s", w->info.name);
	if ((error = cairn_repo_put_object(w->repo, key, CAIRN_OBJ_CATALOG, text.data, text.len)) < 0)
		goto done;
	w->committed = 1;
	cairn_progress_end();
	if (info) {
		*info = w->info;
		/* The caller now owns the meta array. */
		w->info.meta = NULL;
		w->info.meta_count = 0;
	}
done:
	cairn_buf_free(&text);
	return error;
}

void cairn_backup_writer_free(cairn_backup_writer *w)
{
	cairn_error_saved saved;
	size_t i;

	if (!w)
		return;
	/* Cleanup talks to the storage; the error being reported must survive it. */
	cairn_error_save(&saved);
	cairn_pipeline_free(w->pipe);
	prev_free(w);
	if (!w->committed) {
		const char *key;

		cairn_store_upload_abort(w->repo->store, w->pack);
		cairn_objwriter_abort(w->manifest);
		/* Index objects of an aborted backup are removed; their packs become garbage. */
		for (i = 0; i < w->index_key_count; i++) {
			key = w->index_keys[i];
			cairn_store_remove(w->repo->store, &key, 1);
		}
		/* The in-memory index now names chunks that were never committed. */
		cairn_index_free(&w->repo->index);
		w->repo->index_loaded = 0;
	}
	cairn_lock_release(w->repo, w->lock);
	for (i = 0; i < w->index_key_count; i++)
		free(w->index_keys[i]);
	free(w->index_keys);
	cairn_backup_info_free(&w->info);
	cairn_buf_free(&w->pending);
	cairn_buf_free(&w->chunk_lines);
	cairn_buf_free(&w->list_lines);
	cairn_buf_free(&w->pack_trailer);
	cairn_buf_free(&w->frame);
	cairn_buf_free(&w->index_text);
	free(w->entry_path);
	free(w->entry_link);
	free(w);
	cairn_progress_end();
	cairn_error_restore(&saved);
}

/* ---- catalog ---- */

int cairn_backup_info_load(cairn_repo *repo, const char *name, cairn_backup_info *out)
{
	cairn_buf text = CAIRN_BUF_INIT;
	char key[CAIRN_NAME_MAX + 16];
	int error;

	memset(out, 0, sizeof(*out));
	if (!cairn_backup_name_valid(name))
		return cairn_error_set(CAIRN_EINVALID, "'%s' is not a valid backup name", name);
	snprintf(key, sizeof(key), "catalog/%s", name);
	error = cairn_repo_get_object(repo, key, CAIRN_OBJ_CATALOG, &text);
	if (error == CAIRN_ENOTFOUND) {
		error = cairn_error_set(CAIRN_ENOTFOUND, "backup %s not found in repository %s", name,
		                        repo->store->display_url);
		cairn_error_hint("'cairn backup-list' shows the backups");
		goto done;
	}
	if (error < 0)
		goto done;
	if ((error = cairn_backup_info_parse(out, (char *)text.data)) < 0) {
		cairn_error_wrap(error, "catalog entry %s", key);
		goto done;
	}
	if (strcmp(out->name, name) != 0)
		error = cairn_error_set(CAIRN_ECORRUPT, "catalog entry %s names another backup (%s)",
		                        key, out->name);
done:
	if (error < 0)
		cairn_backup_info_free(out);
	cairn_buf_free(&text);
	return error;
}

static int info_cmp(const void *a, const void *b)
{
	const cairn_backup_info *x = a, *y = b;
	size_t xl, yl;
	unsigned long xn, yn;
	int c;

	if (x->end_time != y->end_time)
		return x->end_time < y->end_time ? -1 : 1;
	xn = name_suffix(x->name, &xl);
	yn = name_suffix(y->name, &yl);
	if ((c = strncmp(x->name, y->name, xl < yl ? xl : yl)) != 0 || xl != yl)
		return c ? c : (xl < yl ? -1 : 1);
	return xn < yn ? -1 : xn > yn;
}

int cairn_backup_list(cairn_repo *repo, const char *engine, cairn_backup_info **out,
                      size_t *count)
{
	cairn_keylist names = {0};
	cairn_backup_info *infos = NULL;
	size_t i, n = 0;
	int error;

	*out = NULL;
	*count = 0;
	if ((error = cairn_store_list_keys(repo->store, "catalog/", &names)) < 0)
		goto done;
	if (names.count && !(infos = calloc(names.count, sizeof(*infos)))) {
		error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < names.count; i++) {
		if ((error = cairn_backup_info_load(repo, names.keys[i] + strlen("catalog/"),
		                                    &infos[n])) < 0)
			goto done;
		if (engine && strcmp(infos[n].engine, engine) != 0) {
			cairn_backup_info_free(&infos[n]);
			continue;
		}
		n++;
	}
	if (n)
		qsort(infos, n, sizeof(*infos), info_cmp);
	*out = infos;
	*count = n;
	infos = NULL;
done:
	if (infos) {
		for (i = 0; i < n; i++)
			cairn_backup_info_free(&infos[i]);
		free(infos);
	}
	cairn_keylist_free(&names);
	return error;
}

int cairn_backup_resolve(cairn_repo *repo, const char *engine, const char *name,
                         char out[CAIRN_NAME_MAX])
{
	cairn_backup_info *infos;
	size_t count, i;
	int error;

	if (strcmp(name, "LATEST") != 0) {
		snprintf(out, CAIRN_NAME_MAX, "%s", name);
		return 0;
	}
	if ((error = cairn_backup_list(repo, engine, &infos, &count)) < 0)
		return error;
	if (count == 0)
		error = cairn_error_set(CAIRN_ENOTFOUND, "no %s%sbackup in repository %s",
		                        engine ? engine : "", engine ? " " : "",
		                        repo->store->display_url);
	else
		snprintf(out, CAIRN_NAME_MAX, "%s", infos[count - 1].name);
	for (i = 0; i < count; i++)
		cairn_backup_info_free(&infos[i]);
	free(infos);
	return error;
}

/* ---- reader ---- */

struct cairn_backup_reader {
	cairn_repo *repo;
	cairn_session *session;
	cairn_backup_info info;
	cairn_objreader *manifest;
	char *lookahead; /* a line read but not used yet (owned copy) */
	int ended;       /* the "end" line was read */
	char *entry_text;
	cairn_entry entry;
	chunk_refs chunks;
	size_t chunk_next;
	cairn_buf chunk;
	size_t chunk_pos;
	uint64_t entries_read, bytes_total;
	uint64_t bytes_read; /* for progress */
	cairn_pipeline *pipe; /* decodes chunks ahead of the driver's reads */
	int parallel_fetch;   /* workers fetch too (the storage allows concurrent gets) */
	size_t chunk_submit;  /* next chunk of the entry to hand to the pipeline */
	int discarding;
	cairn_buf raw;
};

static int restore_work(cairn_repo *repo, cairn_job *job);
static int reader_consume(void *arg, cairn_job *job);

int cairn_backup_reader_open(cairn_backup_reader **out, cairn_repo *repo, const char *name)
{
	cairn_backup_reader *r;
	char key[CAIRN_NAME_MAX + 16], *line;
	int error, workers;

	*out = NULL;
	if (!(r = calloc(1, sizeof(*r))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	r->repo = repo;
	if ((error = cairn_backup_info_load(repo, name, &r->info)) < 0)
		goto fail;
	if ((error = cairn_repo_load_index_bounded(repo)) < 0)
		goto fail;
	workers = (int)cairn_settings_get_int("workers");
	if (workers <= 0)
		workers = cairn_pipeline_default_workers();
	/* Fetching waits on the storage, not the CPU: more fetches than CPUs pay off. */
	r->parallel_fetch = repo->store->plugin->version >= 6 &&
	                    (repo->store->plugin->caps & CAIRN_STORAGE_CAP_CONCURRENT_GET);
	if (r->parallel_fetch && cairn_settings_get_int("download-concurrency") > workers)
		workers = (int)cairn_settings_get_int("download-concurrency");
	if ((error = cairn_pipeline_new(&r->pipe, repo, workers, restore_work, reader_consume, r)) < 0)
		goto fail;
	snprintf(key, sizeof(key), "manifests/%s", name);
	if ((error = cairn_objreader_open(&r->manifest, repo, key, CAIRN_OBJ_MANIFEST)) < 0)
		goto fail;
	if ((error = cairn_objreader_line(r->manifest, &line)) < 0)
		goto fail;
	if (error == 0 || strcmp(line, "cairn-manifest 1") != 0) {
		error = cairn_error_set(CAIRN_ECORRUPT, "manifest %s has no valid first line", key);
		goto fail;
	}
	*out = r;
	return 0;
fail:
	cairn_backup_reader_free(r);
	return error;
}

static int next_line(cairn_backup_reader *r, char **line)
{
	int rc;

	if (r->lookahead) {
		*line = r->lookahead;
		r->lookahead = NULL;
		return 1;
	}
	if ((rc = cairn_objreader_line(r->manifest, line)) <= 0)
		return rc;
	if (!(*line = strdup(*line)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	return 1;
}

static int reader_damaged(cairn_backup_reader *r, int error)
{
	return cairn_error_wrap(error, "manifest of backup %s", r->info.name);
}

int cairn_backup_reader_next(cairn_backup_reader *r, const cairn_entry **out)
{
	char *line;
	uint64_t sum;
	int rc, error;
	unsigned long long entries, size;

	free(r->entry_text);
	r->entry_text = NULL;
	if (cairn_pipeline_pending(r->pipe)) {
		/* The driver did not read all of the last entry: drop what was decoded ahead. */
		r->discarding = 1;
		error = cairn_pipeline_drain(r->pipe);
		r->discarding = 0;
		if (error < 0)
			return error;
	}
	chunk_refs_clear(&r->chunks);
	r->chunk_next = r->chunk_submit = 0;
	cairn_buf_clear(&r->chunk);
	r->chunk_pos = 0;
	for (;;) {
		if ((rc = next_line(r, &line)) < 0)
			return rc;
		if (rc == 0) {
			if (!r->ended)
				return reader_damaged(r, cairn_error_set(CAIRN_ECORRUPT, "no end line"));
			return 0;
		}
		if (r->ended) {
			free(line);
			return reader_damaged(r, cairn_error_set(CAIRN_ECORRUPT, "lines after the end line"));
		}
		if (strncmp(line, "entry ", 6) == 0)
			break;
		if (strncmp(line, "end ", 4) == 0) {
			rc = sscanf(line + 4, "%llu %llu", &entries, &size);
			free(line);
			if (rc != 2 || entries != r->entries_read || size != r->bytes_total)
				return reader_damaged(r, cairn_error_set(CAIRN_ECORRUPT,
				                                         "end line does not match the entries"));
			r->ended = 1;
			continue;
		}
		if (strncmp(line, "meta ", 5) == 0 || strncmp(line, "name ", 5) == 0 ||
		    strncmp(line, "engine ", 7) == 0) {
			free(line);
			continue;
		}
		error = cairn_error_set(CAIRN_ECORRUPT, "unexpected line '%.40s'", line);
		free(line);
		return reader_damaged(r, error);
	}
	r->entry_text = line;
	if ((error = cairn_manifest_entry_parse(r->entry_text, &r->entry)) < 0)
		return reader_damaged(r, error);
	/* Collect the entry's chunk list, up to the next non-chunk line. */
	for (;;) {
		if ((rc = next_line(r, &line)) < 0)
			return rc;
		if (rc == 0)
			break;
		if ((error = chunk_refs_line(r->repo, &r->chunks, line)) == 0) {
			r->lookahead = line;
			break;
		}
		free(line);
		if (error < 0)
			return reader_damaged(r, error);
	}
	sum = r->chunks.sum;
	if (sum != r->entry.size)
		return reader_damaged(r, cairn_error_set(CAIRN_ECORRUPT,
		                                         "chunks of %s do not add up to its size",
		                                         r->entry.path));
	r->entries_read++;
	r->bytes_total += r->entry.size;
	*out = &r->entry;
	return 1;
}

/* Reads a chunk's stored frame from its pack (on the caller's thread). */
static int chunk_fetch_raw(cairn_repo *repo, const uint8_t id[CAIRN_HASH_LEN], cairn_buf *raw)
{
	const cairn_index_entry *e = cairn_index_find(&repo->index, id);
	char key[96], hex[65];
	size_t start = raw->len;
	int error;

	cairn_hex_encode(id, CAIRN_HASH_LEN, hex);
	if (!e)
		return cairn_error_set(CAIRN_ECORRUPT, "chunk %s is not in the repository index", hex);
	cairn_pack_key(repo->index.packs[e->pack], key, sizeof(key));
	if ((error = cairn_store_get(repo->store, key, e->offset, e->length, raw)) < 0)
		return error;
	if (raw->len - start != e->length) {
		raw->len = start;
		return cairn_error_set(CAIRN_ECORRUPT,
		                       "pack %s is truncated: chunk %s at offset %" PRIu64 " is missing",
		                       key, hex, e->offset);
	}
	return 0;
}

/* "chunk <id> in pack <key> at offset <n>" for messages; looked up only when one is written. */
static void chunk_where(cairn_repo *repo, const uint8_t id[CAIRN_HASH_LEN], char *out, size_t len)
{
	const cairn_index_entry *e = cairn_index_find(&repo->index, id);
	char key[96], hex[65];

	cairn_hex_encode(id, CAIRN_HASH_LEN, hex);
	if (!e) {
		snprintf(out, len, "chunk %s", hex);
		return;
	}
	cairn_pack_key(repo->index.packs[e->pack], key, sizeof(key));
	snprintf(out, len, "chunk %s in pack %s at offset %" PRIu64, hex, key, e->offset);
}

/* Decrypts, decompresses and checks a chunk's frame (on any thread). */
static int chunk_decode(cairn_repo *repo, const uint8_t id[CAIRN_HASH_LEN], uint32_t plain_len,
                        const uint8_t *raw, size_t raw_len, cairn_buf *out)
{
	cairn_frame_header h;
	char where[256];
	size_t start = out->len;
	int error;

	if ((error = cairn_frame_decode(&repo->keys, raw, raw_len, out, &h)) < 0) {
		cairn_error_saved saved;

		/* The lookup may read the index's runs: keep the decoder's message. */
		cairn_error_save(&saved);
		chunk_where(repo, id, where, sizeof(where));
		cairn_error_restore(&saved);
		return cairn_error_wrap(error, "%s", where);
	}
	if (memcmp(h.checksum, id, CAIRN_HASH_LEN) != 0 || out->len - start != plain_len) {
		out->len = start;
		chunk_where(repo, id, where, sizeof(where));
		return cairn_error_set(CAIRN_ECORRUPT, "%s holds another chunk", where);
	}
	return 0;
}

int cairn_chunk_list_each(cairn_repo *repo, const uint8_t id[CAIRN_HASH_LEN], uint32_t len,
                          int (*fn)(void *arg, const char *line), void *arg)
{
	cairn_buf text = CAIRN_BUF_INIT;
	char *p, *nl;
	int error;

	if ((error = cairn_chunk_fetch(repo, id, len, &text)) < 0 ||
	    (error = cairn_buf_terminate(&text)) < 0)
		goto done;
	/* Writers cut list chunks at line ends (store_chunk_list). */
	for (p = (char *)text.data; *p; p = nl + 1) {
		if (!(nl = strchr(p, '\n'))) {
			error = cairn_error_set(CAIRN_ECORRUPT, "chunk list is not made of whole lines");
			goto done;
		}
		*nl = 0;
		if ((error = fn(arg, p)) < 0)
			goto done;
	}
done:
	cairn_buf_free(&text);
	return error;
}

int cairn_chunk_fetch(cairn_repo *repo, const uint8_t id[CAIRN_HASH_LEN], uint32_t plain_len,
                      cairn_buf *out)
{
	cairn_buf raw = CAIRN_BUF_INIT;
	int error;

	if ((error = chunk_fetch_raw(repo, id, &raw)) == 0)
		error = chunk_decode(repo, id, plain_len, raw.data, raw.len, out);
	cairn_buf_free(&raw);
	return error;
}

/*
 * Restore work on a worker: job data is the chunk id followed by its stored
 * frame, or the id alone when the storage lets workers fetch it themselves.
 */
static int restore_work(cairn_repo *repo, cairn_job *job)
{
	cairn_buf raw = CAIRN_BUF_INIT;
	int error;

	cairn_buf_clear(&job->frame);
	if (job->data.len > CAIRN_HASH_LEN)
		return chunk_decode(repo, job->data.data, (uint32_t)job->value,
		                    job->data.data + CAIRN_HASH_LEN, job->data.len - CAIRN_HASH_LEN,
		                    &job->frame);
	if ((error = chunk_fetch_raw(repo, job->data.data, &raw)) == 0)
		error = chunk_decode(repo, job->data.data, (uint32_t)job->value, raw.data, raw.len,
		                     &job->frame);
	cairn_buf_free(&raw);
	return error;
}

/* Takes a decoded chunk, in order; discards those of an entry left unread. */
static int reader_consume(void *arg, cairn_job *job)
{
	cairn_backup_reader *r = arg;
	cairn_buf swap;

	if (r->discarding)
		return 0;
	swap = r->chunk;
	r->chunk = job->frame;
	job->frame = swap;
	r->chunk_pos = 0;
	return 0;
}

/* Fetches the entry's next chunks and hands them to the workers, as far as there is room. */
static int reader_prefetch(cairn_backup_reader *r)
{
	int error;

	while (r->chunk_submit < r->chunks.count) {
		const chunk_ref *c = &r->chunks.v[r->chunk_submit];

		/* Asked before fetching: the weight is the decoded size either way. */
		if (!cairn_pipeline_can_submit(r->pipe, CAIRN_JOB_CHUNK, CAIRN_HASH_LEN, c->len))
			break;
		cairn_buf_clear(&r->raw);
		if ((error = cairn_buf_append(&r->raw, c->id, CAIRN_HASH_LEN)) < 0 ||
		    (!r->parallel_fetch && (error = chunk_fetch_raw(r->repo, c->id, &r->raw)) < 0) ||
		    (error = cairn_pipeline_submit(r->pipe, CAIRN_JOB_CHUNK, r->raw.data, r->raw.len,
		                                   c->len)) < 0)
			return error;
		r->chunk_submit++;
	}
	return 0;
}

int cairn_backup_reader_read(cairn_backup_reader *r, void *buf, size_t len, size_t *out_len)
{
	size_t n;
	int error;

	*out_len = 0;
	if (r->chunk_pos == r->chunk.len) {
		if (r->chunk_next == r->chunks.count)
			return 0;
		if ((error = check_interrupt()) < 0)
			return error;
		cairn_buf_clear(&r->chunk);
		r->chunk_pos = 0;
		if ((error = reader_prefetch(r)) < 0 ||
		    (error = cairn_pipeline_consume_one(r->pipe)) < 0)
			return cairn_error_wrap(error, "restoring %s of backup %s", r->entry.path,
			                        r->info.name);
		r->chunk_next++;
	}
	n = r->chunk.len - r->chunk_pos;
	if (n > len)
		n = len;
	memcpy(buf, r->chunk.data + r->chunk_pos, n);
	r->chunk_pos += n;
	*out_len = n;
	r->bytes_read += n;
	cairn_progress_update(r->bytes_read, r->info.size);
	return 0;
}

const char *cairn_backup_reader_meta(cairn_backup_reader *r, const char *key)
{
	return cairn_backup_info_meta(&r->info, key);
}

const cairn_backup_info *cairn_backup_reader_info(cairn_backup_reader *r)
{
	return &r->info;
}

int cairn_backup_reader_finish(cairn_backup_reader *r)
{
	const cairn_entry *e;
	int rc;

	while ((rc = cairn_backup_reader_next(r, &e)) > 0)
		;
	return rc;
}

void cairn_backup_reader_free(cairn_backup_reader *r)
{
	if (!r)
		return;
	cairn_pipeline_free(r->pipe);
	cairn_buf_free(&r->raw);
	cairn_objreader_free(r->manifest);
	cairn_backup_info_free(&r->info);
	free(r->lookahead);
	free(r->entry_text);
	free(r->chunks.v);
	cairn_buf_free(&r->chunk);
	free(r);
}

void cairn_backup_writer_set_session(cairn_backup_writer *w, cairn_session *s)
{
	w->session = s;
}

cairn_session *cairn_backup_writer_session(cairn_backup_writer *w)
{
	return w->session;
}

void cairn_backup_reader_set_session(cairn_backup_reader *r, cairn_session *s)
{
	r->session = s;
}

cairn_session *cairn_backup_reader_session(cairn_backup_reader *r)
{
	return r->session;
}
