/* repo.c - an open repository (see repo.h and FORMAT.md). */
#include "repo.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "error.h"
#include "log.h"
#include "settings.h"

#define OBJECT_FRAME_PLAIN (1u << 20)
#define READ_BLOCK (4u << 20)
#define SCRYPT_N 32768
#define SCRYPT_R 8
#define SCRYPT_P 1
#define KEY_FILE_MAX 4096

int cairn_random_hex(char *out, size_t bytes)
{
	uint8_t raw[64];
	int error;

	if (bytes > sizeof(raw))
		return cairn_error_set(CAIRN_EINVALID, "random id too long");
	if ((error = cairn_random_bytes(raw, bytes)) < 0)
		return error;
	cairn_hex_encode(raw, bytes, out);
	return 0;
}

void cairn_pack_key(const char *pack_hex, char *out, size_t len)
{
	snprintf(out, len, "packs/%.2s/%s", pack_hex, pack_hex);
}

/* ---- index ------------------------------------------------------------ */

static size_t slot_of(const uint8_t *id, size_t cap)
{
	return (size_t)cairn_get_u64le(id) & (cap - 1);
}

static int index_grow_slots(cairn_index *idx)
{
	size_t cap = idx->slot_cap ? idx->slot_cap * 2 : 1024, i, s;
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory growing the chunk index");
	for (i = 0; i < idx->count; i++) {
		for (s = slot_of(idx->entries[i].id, cap); slots[s]; s = (s + 1) & (cap - 1))
			;
		slots[s] = (uint32_t)(i + 1);
	}
	free(idx->slots);
	idx->slots = slots;
	idx->slot_cap = cap;
	return 0;
}

/* ---- runs: sorted entries in unlinked temp files ---- */

/* Entries per page of a run: one read of 14 KiB per lookup that reaches it. */
#define RUN_PAGE 256
/* More runs than this are merged into one (lookups that miss read every run). */
#define RUN_MAX 8
/* Entries read or written at a time while merging. */
#define RUN_IO 4096

struct cairn_index_run {
	int fd;
	uint64_t count;
	uint8_t (*fence)[CAIRN_HASH_LEN]; /* first id of every page */
	size_t fences;
};

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(((const cairn_index_entry *)a)->id, ((const cairn_index_entry *)b)->id,
	              CAIRN_HASH_LEN);
}

static void run_close(cairn_index_run *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->fence);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static int run_syscall_error(int err, const char *what)
{
	return cairn_error_set(cairn_error_from_errno(err), "chunk index: cannot %s its temp file: %s",
	                       what, strerror(err));
}

/* Creates an empty run in an unlinked temp file. */
static int run_create(cairn_index_run *r)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int err;

	memset(r, 0, sizeof(*r));
	if (!dir || !*dir)
		dir = "/var/tmp";
	snprintf(path, sizeof(path), "%s/cairn-index.XXXXXX", dir);
	if ((r->fd = mkostemp(path, O_CLOEXEC)) < 0) {
		err = errno;
		r->fd = -1;
		return cairn_error_set(cairn_error_from_errno(err),
		                       "chunk index: cannot create a temp file in %s: %s (set TMPDIR "
		                       "to a folder with room)",
		                       dir, strerror(err));
	}
	unlink(path);
	return 0;
}

/* Appends n sorted entries (continuing the run's order) and their fences. */
static int run_append(cairn_index_run *r, const cairn_index_entry *e, size_t n)
{
	size_t i, len = n * sizeof(*e), done = 0;

	for (i = 0; i < n; i++) {
		if ((r->count + i) % RUN_PAGE)
			continue;
		if (r->fences % 1024 == 0) {
			void *grown = realloc(r->fence, (r->fences + 1024) * sizeof(*r->fence));

			if (!grown)
				return cairn_error_set(CAIRN_ENOMEM, "out of memory");
			r->fence = grown;
		}
		memcpy(r->fence[r->fences++], e[i].id, CAIRN_HASH_LEN);
	}
	while (done < len) {
		ssize_t w = pwrite(r->fd, (const char *)e + done, len - done,
		                   (off_t)(r->count * sizeof(*e) + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return run_syscall_error(errno, "write");
		done += (size_t)w;
	}
	r->count += n;
	return 0;
}

/* Reads entries [first, first + n) of a run; n is what was read. */
static int run_read(const cairn_index_run *r, uint64_t first, cairn_index_entry *out, size_t *n)
{
	size_t len, done = 0;

	if (first + *n > r->count)
		*n = (size_t)(r->count - first);
	len = *n * sizeof(*out);
	while (done < len) {
		ssize_t got = pread(r->fd, (char *)out + done, len - done,
		                    (off_t)(first * sizeof(*out) + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return run_syscall_error(errno, "read");
		if (got == 0)
			return cairn_error_set(CAIRN_EIO, "chunk index: its temp file is shorter than written");
		done += (size_t)got;
	}
	return 0;
}

/* Finds id in a run: 1 with *out set, 0 when absent, or an error. */
static int run_find(const cairn_index_run *r, const uint8_t *id, cairn_index_entry *out)
{
	cairn_index_entry page[RUN_PAGE];
	size_t lo = 0, hi = r->fences, n = RUN_PAGE;
	int error;

	/* The last page whose first id is <= id. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(r->fence[mid], id, CAIRN_HASH_LEN) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	if ((error = run_read(r, (uint64_t)(lo - 1) * RUN_PAGE, page, &n)) < 0)
		return error;
	lo = 0;
	hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(page[mid].id, id, CAIRN_HASH_LEN);

		if (c == 0) {
			*out = page[mid];
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Merges every run and the sorted in-memory entries into one new run. */
static int runs_merge(cairn_index *idx, cairn_index_run *out)
{
	size_t k = idx->run_count + 1, i;
	cairn_index_entry **buf = calloc(k, sizeof(*buf)), *obuf = NULL;
	size_t *len = calloc(k, sizeof(*len)), *pos = calloc(k, sizeof(*pos)), olen = 0;
	uint64_t *next = calloc(k, sizeof(*next));
	uint8_t last[CAIRN_HASH_LEN];
	int error = 0, have_last = 0;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!buf || !len || !pos || !next || !(obuf = malloc(RUN_IO * sizeof(*obuf)))) {
		error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < idx->run_count; i++)
		if (!(buf[i] = malloc(RUN_IO * sizeof(**buf)))) {
			error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto done;
		}
	/* Input k-1 is the in-memory table, read in place. */
	buf[k - 1] = idx->entries;
	len[k - 1] = idx->count;
	next[k - 1] = idx->count;
	if ((error = run_create(out)) < 0)
		goto done;
	for (;;) {
		size_t best = k;

		for (i = 0; i < k; i++) {
			if (pos[i] == len[i] && i < idx->run_count && next[i] < idx->runs[i].count) {
				len[i] = RUN_IO;
				if ((error = run_read(&idx->runs[i], next[i], buf[i], &len[i])) < 0)
					goto done;
				next[i] += len[i];
				pos[i] = 0;
			}
			if (pos[i] < len[i] &&
			    (best == k || memcmp(buf[i][pos[i]].id, buf[best][pos[best]].id, CAIRN_HASH_LEN) < 0))
				best = i;
		}
		if (best == k)
			break;
		/* Equal ids name the same chunk: one entry is enough. */
		if (!have_last || memcmp(last, buf[best][pos[best]].id, CAIRN_HASH_LEN) != 0) {
			obuf[olen++] = buf[best][pos[best]];
			memcpy(last, buf[best][pos[best]].id, CAIRN_HASH_LEN);
			have_last = 1;
		}
		pos[best]++;
		if (olen == RUN_IO) {
			if ((error = run_append(out, obuf, olen)) < 0)
				goto done;
			olen = 0;
		}
	}
	error = olen ? run_append(out, obuf, olen) : 0;
done:
	for (i = 0; i < idx->run_count && buf; i++)
		free(buf[i]);
	free(buf);
	free(len);
	free(pos);
	free(next);
	free(obuf);
	if (error < 0)
		run_close(out);
	return error;
}

/* Rebuilds the hash slots after the entries moved (sorting for a spill that then failed). */
static void index_rehash(cairn_index *idx)
{
	size_t i, s;

	memset(idx->slots, 0, idx->slot_cap * sizeof(*idx->slots));
	for (i = 0; i < idx->count; i++) {
		for (s = slot_of(idx->entries[i].id, idx->slot_cap); idx->slots[s];
		     s = (s + 1) & (idx->slot_cap - 1))
			;
		idx->slots[s] = (uint32_t)(i + 1);
	}
}

/* Moves the in-memory entries to a run (merging the runs when there are many). */
static int index_spill(cairn_index *idx)
{
	cairn_index_run run, *grown;
	size_t i;
	int error;

	if (!idx->count)
		return 0;
	if (!idx->run_count && !idx->spilled)
		cairn_log(CAIRN_LOG_INFO,
		          "chunk index: more than %" PRIu64 " KiB in memory, the rest goes to temp files in %s",
		          idx->memory >> 10,
		          getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp");
	/* Room for the new run first: nothing may fail once old runs are merged away. */
	if (!(grown = realloc(idx->runs, (idx->run_count + 1) * sizeof(*grown))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	idx->runs = grown;
	qsort(idx->entries, idx->count, sizeof(*idx->entries), entry_cmp);
	if (idx->run_count >= RUN_MAX) {
		if ((error = runs_merge(idx, &run)) < 0) {
			index_rehash(idx);
			return error;
		}
		for (i = 0; i < idx->run_count; i++)
			run_close(&idx->runs[i]);
		idx->run_count = 0;
		idx->spilled = 0;
	} else if ((error = run_create(&run)) < 0 ||
	           (error = run_append(&run, idx->entries, idx->count)) < 0) {
		run_close(&run);
		index_rehash(idx);
		return error;
	}
	idx->runs[idx->run_count++] = run;
	idx->spilled += run.count;
	idx->count = 0;
	memset(idx->slots, 0, idx->slot_cap * sizeof(*idx->slots));
	return 0;
}

const cairn_index_entry *cairn_index_find_memory(const cairn_index *idx,
                                                 const uint8_t id[CAIRN_HASH_LEN])
{
	size_t s;

	if (!idx->slot_cap)
		return NULL;
	for (s = slot_of(id, idx->slot_cap); idx->slots[s]; s = (s + 1) & (idx->slot_cap - 1)) {
		const cairn_index_entry *e = &idx->entries[idx->slots[s] - 1];

		if (memcmp(e->id, id, CAIRN_HASH_LEN) == 0)
			return e;
	}
	return NULL;
}

const cairn_index_entry *cairn_index_find(const cairn_index *idx, const uint8_t id[CAIRN_HASH_LEN])
{
	static __thread cairn_index_entry found;
	const cairn_index_entry *e;
	size_t i;

	if ((e = cairn_index_find_memory(idx, id)))
		return e;
	/*
	 * Newest run first. A run that cannot be read is a local I/O failure:
	 * "absent" would store the chunk again (harmless) on backup and fail
	 * the restore with a clear message, so it is logged, not hidden.
	 */
	for (i = idx->run_count; i-- > 0;) {
		int rc = run_find(&idx->runs[i], id, &found);

		if (rc > 0)
			return &found;
		if (rc < 0) {
			cairn_log(CAIRN_LOG_WARN, "%s", cairn_error_message());
			cairn_error_clear();
		}
	}
	return NULL;
}

int cairn_index_add(cairn_index *idx, const cairn_index_entry *e)
{
	cairn_index_entry *grown;
	size_t s;
	int error;

	if (idx->slot_cap) {
		for (s = slot_of(e->id, idx->slot_cap); idx->slots[s]; s = (s + 1) & (idx->slot_cap - 1))
			if (memcmp(idx->entries[idx->slots[s] - 1].id, e->id, CAIRN_HASH_LEN) == 0)
				return 0;
	}
	if (idx->spill_at && idx->count >= idx->spill_at && (error = index_spill(idx)) < 0)
		return error;
	if ((idx->count + 1) * 2 > idx->slot_cap && (error = index_grow_slots(idx)) < 0)
		return error;
	if (idx->count == idx->cap) {
		size_t cap = idx->cap ? idx->cap * 2 : 1024;

		if (idx->spill_at && cap > idx->spill_at)
			cap = idx->spill_at;
		if (!(grown = realloc(idx->entries, cap * sizeof(*grown))))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory growing the chunk index");
		idx->entries = grown;
		idx->cap = cap;
	}
	idx->entries[idx->count] = *e;
	for (s = slot_of(e->id, idx->slot_cap); idx->slots[s]; s = (s + 1) & (idx->slot_cap - 1))
		;
	idx->slots[s] = (uint32_t)(++idx->count);
	return 0;
}

int cairn_index_set_memory(cairn_index *idx, uint64_t bytes)
{
	/* An entry costs itself plus up to four slots (the table is kept at most half full). */
	uint64_t per = sizeof(cairn_index_entry) + 4 * sizeof(uint32_t);

	if (idx->count || idx->run_count)
		return cairn_error_set(CAIRN_EINVALID, "the chunk index limit must be set before it fills");
	if (bytes < (64u << 10))
		bytes = 64u << 10;
	idx->memory = bytes;
	idx->spill_at = (size_t)(bytes / per);
	return 0;
}

uint64_t cairn_index_size(const cairn_index *idx)
{
	return idx->spilled + idx->count;
}

int cairn_index_pack(cairn_index *idx, const char *pack_hex, uint32_t *out)
{
	size_t i;

	/* Packs are added in runs, so the last one is the usual match. */
	for (i = idx->pack_count; i > 0; i--)
		if (strcmp(idx->packs[i - 1], pack_hex) == 0)
			return *out = (uint32_t)(i - 1), 0;
	if (idx->pack_count == idx->pack_cap) {
		size_t cap = idx->pack_cap ? idx->pack_cap * 2 : 64;
		void *grown = realloc(idx->packs, cap * sizeof(*idx->packs));

		if (!grown)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		idx->packs = grown;
		idx->pack_cap = cap;
	}
	snprintf(idx->packs[idx->pack_count], CAIRN_PACK_ID_HEX + 1, "%s", pack_hex);
	*out = (uint32_t)idx->pack_count++;
	return 0;
}

void cairn_index_free(cairn_index *idx)
{
	size_t i;

	for (i = 0; i < idx->run_count; i++)
		run_close(&idx->runs[i]);
	free(idx->runs);
	free(idx->entries);
	free(idx->slots);
	free(idx->packs);
	memset(idx, 0, sizeof(*idx));
}

static int is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == 0 || s[n] == ' ' || s[n] == '\n';
}

int cairn_index_parse(cairn_index *idx, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl;
	char line[256], id_hex[65];
	cairn_index_entry e;
	uint32_t pack = 0;
	int have_pack = 0, lineno = 0, error;
	unsigned long long offset, length, plain;

	while (p < end) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return cairn_error_set(CAIRN_ECORRUPT, "index line %d is not terminated", lineno + 1);
		n = (size_t)(nl - p);
		lineno++;
		if (n >= sizeof(line))
			return cairn_error_set(CAIRN_ECORRUPT, "index line %d is too long", lineno);
		memcpy(line, p, n);
		line[n] = 0;
		p = nl + 1;
		if (lineno == 1) {
			if (strcmp(line, "cairn-index 1") != 0)
				return cairn_error_set(CAIRN_ECORRUPT, "not an index (first line)");
			continue;
		}
		if (strncmp(line, "pack ", 5) == 0) {
			if (n != 5 + CAIRN_PACK_ID_HEX || !is_hex(line + 5, CAIRN_PACK_ID_HEX))
				return cairn_error_set(CAIRN_ECORRUPT, "index line %d: bad pack id", lineno);
			if ((error = cairn_index_pack(idx, line + 5, &pack)) < 0)
				return error;
			have_pack = 1;
			continue;
		}
		if (!have_pack)
			return cairn_error_set(CAIRN_ECORRUPT, "index line %d: chunk before any pack",
			                       lineno);
		if (n < 65 || !is_hex(line, 64) ||
		    sscanf(line + 64, " %llu %llu %llu", &offset, &length, &plain) != 3 ||
		    length < CAIRN_FRAME_HEADER_LEN || length > CAIRN_FRAME_MAX_PLAIN * 2ULL ||
		    plain > CAIRN_FRAME_MAX_PLAIN)
			return cairn_error_set(CAIRN_ECORRUPT, "index line %d is malformed", lineno);
		memcpy(id_hex, line, 64);
		id_hex[64] = 0;
		memset(&e, 0, sizeof(e));
		cairn_hex_decode(id_hex, e.id, CAIRN_HASH_LEN);
		e.pack = pack;
		e.offset = offset;
		e.length = (uint32_t)length;
		e.plain_len = (uint32_t)plain;
		if ((error = cairn_index_add(idx, &e)) < 0)
			return error;
	}
	if (lineno == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "index is empty");
	return 0;
}

int cairn_repo_load_index_bounded(cairn_repo *repo)
{
	int error;

	if (!repo->index_loaded && repo->index.count == 0 && repo->index.run_count == 0 &&
	    (error = cairn_index_set_memory(&repo->index,
	                                    cairn_settings_get_size("index-memory"))) < 0)
		return error;
	return cairn_repo_load_index(repo);
}

int cairn_repo_load_index(cairn_repo *repo)
{
	cairn_keylist keys = {0};
	cairn_buf text = CAIRN_BUF_INIT;
	size_t i;
	int error;

	if (repo->index_loaded)
		return 0;
	if ((error = cairn_store_list_keys(repo->store, "index/", &keys)) < 0)
		goto done;
	for (i = 0; i < keys.count; i++) {
		cairn_buf_clear(&text);
		if ((error = cairn_repo_get_object(repo, keys.keys[i], CAIRN_OBJ_INDEX, &text)) < 0)
			goto done;
		if ((error = cairn_index_parse(&repo->index, (const char *)text.data, text.len)) < 0) {
			cairn_error_wrap(error, "index %s in repository %s", keys.keys[i],
			                 repo->store->display_url);
			goto done;
		}
	}
	repo->index_loaded = 1;
done:
	cairn_keylist_free(&keys);
	cairn_buf_free(&text);
	return error;
}

/* ---- object writer ------------------------------------------------------ */

struct cairn_objwriter {
	cairn_repo *repo;
	char *key;
	cairn_upload *up;
	cairn_buf plain;
	cairn_buf frame;
};

int cairn_objwriter_begin(cairn_objwriter **out, cairn_repo *repo, const char *key,
                          cairn_object_type type)
{
	cairn_objwriter *w;
	uint8_t header[CAIRN_OBJECT_HEADER_LEN];
	int error;

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))) || !(w->key = strdup(key))) {
		free(w);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	w->repo = repo;
	if ((error = cairn_store_upload_begin(repo->store, key, &w->up)) < 0)
		goto fail;
	cairn_object_header_write(header, type);
	if ((error = cairn_store_upload_write(repo->store, w->up, key, header, sizeof(header))) < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	cairn_objwriter_abort(w);
	return error;
}

static int objwriter_flush(cairn_objwriter *w, unsigned int flags)
{
	int error;

	cairn_buf_clear(&w->frame);
	if ((error = cairn_frame_encode(&w->repo->keys, w->repo->codec, w->repo->level, flags,
	                                w->plain.data, w->plain.len, NULL, &w->frame)) < 0)
		return error;
	cairn_buf_clear(&w->plain);
	return cairn_store_upload_write(w->repo->store, w->up, w->key, w->frame.data, w->frame.len);
}

int cairn_objwriter_write(cairn_objwriter *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t n;
	int error;

	while (len) {
		n = OBJECT_FRAME_PLAIN - w->plain.len;
		if (n > len)
			n = len;
		if ((error = cairn_buf_append(&w->plain, p, n)) < 0)
			return error;
		p += n;
		len -= n;
		if (w->plain.len == OBJECT_FRAME_PLAIN && (error = objwriter_flush(w, 0)) < 0)
			return error;
	}
	return 0;
}

int cairn_objwriter_printf(cairn_objwriter *w, const char *fmt, ...)
{
	char small[1024], *big = NULL;
	va_list ap;
	int n, error;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return cairn_error_set(CAIRN_ERROR, "formatting failed");
	if ((size_t)n < sizeof(small))
		return cairn_objwriter_write(w, small, (size_t)n);
	if (!(big = malloc((size_t)n + 1)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	error = cairn_objwriter_write(w, big, (size_t)n);
	free(big);
	return error;
}

static void objwriter_free(cairn_objwriter *w)
{
	cairn_buf_free(&w->plain);
	cairn_buf_free(&w->frame);
	free(w->key);
	free(w);
}

int cairn_objwriter_commit(cairn_objwriter *w)
{
	int error;

	if ((error = objwriter_flush(w, CAIRN_FRAME_FLAG_LAST)) < 0) {
		cairn_objwriter_abort(w);
		return error;
	}
	error = cairn_store_upload_commit(w->repo->store, w->up, w->key);
	w->up = NULL;
	objwriter_free(w);
	return error;
}

void cairn_objwriter_abort(cairn_objwriter *w)
{
	if (!w)
		return;
	cairn_store_upload_abort(w->repo->store, w->up);
	objwriter_free(w);
}

int cairn_repo_put_object(cairn_repo *repo, const char *key, cairn_object_type type,
                          const void *data, size_t len)
{
	cairn_buf obj = CAIRN_BUF_INIT;
	const uint8_t *p = data;
	size_t n;
	int error;

	/* Small objects are built whole so the storage can retry the put. */
	if ((error = cairn_buf_reserve(&obj, CAIRN_OBJECT_HEADER_LEN)) < 0)
		goto done;
	cairn_object_header_write(obj.data, type);
	obj.len = CAIRN_OBJECT_HEADER_LEN;
	do {
		n = len > OBJECT_FRAME_PLAIN ? OBJECT_FRAME_PLAIN : len;
		if ((error = cairn_frame_encode(&repo->keys, repo->codec, repo->level,
		                                n == len ? CAIRN_FRAME_FLAG_LAST : 0, p, n, NULL,
		                                &obj)) < 0)
			goto done;
		p += n;
		len -= n;
	} while (len);
	error = cairn_store_put(repo->store, key, obj.data, obj.len);
done:
	cairn_buf_free(&obj);
	return error;
}

/* ---- object reader ------------------------------------------------------ */

struct cairn_objreader {
	cairn_repo *repo;
	char *key;
	cairn_buf raw;     /* fetched, not yet consumed bytes */
	size_t raw_pos;
	uint64_t fetched;  /* object offset just after raw's last byte */
	int eof;           /* the storage returned a short read */
	int done;          /* the last frame was read */
	cairn_buf plain;
	size_t line_pos;
	cairn_buf line;
	cairn_frame_header last_header;
	uint64_t last_offset;
	int clear; /* config and key objects are never encrypted */
};

static uint64_t objreader_pos(const cairn_objreader *r)
{
	return r->fetched - (r->raw.len - r->raw_pos);
}

uint64_t cairn_objreader_offset(const cairn_objreader *r)
{
	return objreader_pos(r);
}

const cairn_frame_header *cairn_objreader_last(const cairn_objreader *r, uint64_t *offset,
                                               uint64_t *length)
{
	*offset = r->last_offset;
	*length = CAIRN_FRAME_HEADER_LEN + (uint64_t)r->last_header.stored_len;
	return &r->last_header;
}

/* Makes at least `need` unconsumed bytes available; fewer only at the end. */
static int objreader_fill(cairn_objreader *r, size_t need)
{
	size_t have = r->raw.len - r->raw_pos, want;
	int error;

	if (have >= need || r->eof)
		return 0;
	if (r->raw_pos) {
		memmove(r->raw.data, r->raw.data + r->raw_pos, have);
		r->raw.len = have;
		r->raw_pos = 0;
	}
	want = need - have > READ_BLOCK ? need - have : READ_BLOCK;
	if ((error = cairn_store_get(r->repo->store, r->key, r->fetched, want, &r->raw)) < 0)
		return error;
	if (r->raw.len - have < want)
		r->eof = 1;
	r->fetched += r->raw.len - have;
	return 0;
}

int cairn_objreader_open(cairn_objreader **out, cairn_repo *repo, const char *key,
                         cairn_object_type type)
{
	cairn_objreader *r;
	int error;

	*out = NULL;
	if (!(r = calloc(1, sizeof(*r))) || !(r->key = strdup(key))) {
		free(r);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	r->repo = repo;
	r->clear = type == CAIRN_OBJ_CONFIG || type == CAIRN_OBJ_KEY;
	if ((error = objreader_fill(r, CAIRN_OBJECT_HEADER_LEN)) < 0)
		goto fail;
	if ((error = cairn_object_header_check(r->raw.data, r->raw.len, type)) < 0) {
		cairn_error_wrap(error, "object %s in repository %s is damaged", key,
		                 repo->store->display_url);
		goto fail;
	}
	r->raw_pos = CAIRN_OBJECT_HEADER_LEN;
	*out = r;
	return 0;
fail:
	cairn_objreader_free(r);
	return error;
}

static int objreader_damaged(cairn_objreader *r, int error, uint64_t offset)
{
	return cairn_error_wrap(error, "object %s in repository %s is damaged at offset %" PRIu64,
	                        r->key, r->repo->store->display_url, offset);
}

int cairn_objreader_frame(cairn_objreader *r, const uint8_t **data, size_t *len)
{
	static const cairn_keys no_keys;
	cairn_frame_header h;
	uint64_t at = objreader_pos(r);
	size_t total;
	int error;

	if (r->done)
		return 0;
	if ((error = objreader_fill(r, CAIRN_FRAME_HEADER_LEN)) < 0)
		return error;
	if (r->raw.len - r->raw_pos == 0)
		return objreader_damaged(
		    r, cairn_error_set(CAIRN_ECORRUPT, "truncated: the last frame is missing"), at);
	if ((error = cairn_frame_header_parse(r->raw.data + r->raw_pos, r->raw.len - r->raw_pos,
	                                      &h)) < 0)
		return objreader_damaged(r, error, at);
	total = CAIRN_FRAME_HEADER_LEN + (size_t)h.stored_len;
	if ((error = objreader_fill(r, total)) < 0)
		return error;
	cairn_buf_clear(&r->plain);
	if ((error = cairn_frame_decode(r->clear ? &no_keys : &r->repo->keys, r->raw.data + r->raw_pos,
	                                r->raw.len - r->raw_pos, &r->plain, &h)) < 0)
		return error == CAIRN_EAUTH ? cairn_error_wrap(error, "object %s", r->key)
		                            : objreader_damaged(r, error, at);
	r->raw_pos += total;
	r->last_header = h;
	r->last_offset = at;
	if (h.flags & CAIRN_FRAME_FLAG_LAST) {
		r->done = 1;
		if ((error = objreader_fill(r, 1)) < 0)
			return error;
		if (r->raw.len - r->raw_pos != 0)
			return objreader_damaged(
			    r, cairn_error_set(CAIRN_ECORRUPT, "bytes follow the last frame"),
			    objreader_pos(r));
	}
	*data = r->plain.data;
	*len = r->plain.len;
	return 1;
}

int cairn_objreader_line(cairn_objreader *r, char **line)
{
	const uint8_t *data;
	size_t len;
	uint8_t *nl;
	int rc, error;

	cairn_buf_clear(&r->line);
	for (;;) {
		if (r->line_pos < r->plain.len) {
			nl = memchr(r->plain.data + r->line_pos, '\n', r->plain.len - r->line_pos);
			len = nl ? (size_t)(nl - (r->plain.data + r->line_pos))
			         : r->plain.len - r->line_pos;
			if ((error = cairn_buf_append(&r->line, r->plain.data + r->line_pos, len)) < 0)
				return error;
			r->line_pos += len + (nl ? 1 : 0);
			if (nl)
				break;
		}
		if ((rc = cairn_objreader_frame(r, &data, &len)) < 0)
			return rc;
		if (rc == 0) {
			r->line_pos = r->plain.len;
			if (r->line.len)
				return objreader_damaged(
				    r, cairn_error_set(CAIRN_ECORRUPT, "last line is not terminated"),
				    objreader_pos(r));
			return 0;
		}
		r->line_pos = 0;
	}
	if ((error = cairn_buf_terminate(&r->line)) < 0)
		return error;
	if (memchr(r->line.data, 0, r->line.len))
		return objreader_damaged(r, cairn_error_set(CAIRN_ECORRUPT, "NUL byte in text"),
		                         objreader_pos(r));
	*line = (char *)r->line.data;
	return 1;
}

void cairn_objreader_free(cairn_objreader *r)
{
	if (!r)
		return;
	cairn_buf_free(&r->raw);
	cairn_buf_free(&r->plain);
	cairn_buf_free(&r->line);
	free(r->key);
	free(r);
}

int cairn_repo_get_object(cairn_repo *repo, const char *key, cairn_object_type type,
                          cairn_buf *out)
{
	cairn_objreader *r;
	const uint8_t *data;
	size_t len;
	int rc;

	if ((rc = cairn_objreader_open(&r, repo, key, type)) < 0)
		return rc;
	while ((rc = cairn_objreader_frame(r, &data, &len)) > 0)
		if ((rc = cairn_buf_append(out, data, len)) < 0)
			break;
	cairn_objreader_free(r);
	if (rc == 0)
		rc = cairn_buf_terminate(out);
	return rc;
}

/* ---- keys ------------------------------------------------------------- */

typedef struct user_secret {
	const char *kind; /* "keyfile" or "passphrase" */
	cairn_buf bytes;
} user_secret;

static int read_key_file(const char *path, cairn_buf *out)
{
	uint8_t chunk[1024];
	ssize_t n;
	int fd, error = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		error = cairn_error_errno(errno, "cannot read encryption key file %s", path);
		return error == CAIRN_EAUTH ? error : CAIRN_EINVALID;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (out->len + (size_t)n > KEY_FILE_MAX) {
			error = cairn_error_set(CAIRN_EINVALID,
			                        "encryption key file %s is larger than %d bytes", path,
			                        KEY_FILE_MAX);
			goto done;
		}
		if ((error = cairn_buf_append(out, chunk, (size_t)n)) < 0)
			goto done;
	}
	if (n < 0) {
		error = cairn_error_errno(errno, "cannot read encryption key file %s", path);
		goto done;
	}
	if (out->len < 16)
		error = cairn_error_set(CAIRN_EINVALID,
		                        "encryption key file %s holds %zu bytes; at least 16 are needed",
		                        path, out->len);
done:
	cairn_secure_zero(chunk, sizeof(chunk));
	close(fd);
	return error;
}

/* Collects the secrets the user configured: 0, 1 or 2 of them. */
static int user_secrets(user_secret out[2], int *count)
{
	const char *file = cairn_settings_get("encryption-key-file");
	const char *pass = cairn_settings_get("encryption-passphrase");
	int error;

	*count = 0;
	if (file && *file) {
		out[*count].kind = "keyfile";
		if ((error = read_key_file(file, &out[*count].bytes)) < 0)
			return error;
		(*count)++;
	}
	if (pass && *pass) {
		out[*count].kind = "passphrase";
		if ((error = cairn_buf_append(&out[*count].bytes, pass, strlen(pass))) < 0)
			return error;
		(*count)++;
	}
	return 0;
}

static int derive_kek(const user_secret *s, const uint8_t salt[16], uint64_t n, uint32_t r,
                      uint32_t p, uint8_t kek[CAIRN_KEY_LEN])
{
	if (strcmp(s->kind, "passphrase") == 0)
		return cairn_scrypt((const char *)s->bytes.data, s->bytes.len, salt, 16, n, r, p, kek,
		                    CAIRN_KEY_LEN);
	/* A key file is already high-entropy: HKDF suffices. */
	return cairn_hkdf_sha256(s->bytes.data, s->bytes.len, salt, 16, "cairn key file", kek,
	                         CAIRN_KEY_LEN);
}

static int write_key_object(cairn_repo *repo, const user_secret *s)
{
	uint8_t salt[16], nonce[CAIRN_NONCE_LEN], kek[CAIRN_KEY_LEN], material[2 * CAIRN_KEY_LEN];
	char salt_hex[33], key[64], aad[64], *wrapped_hex = NULL;
	cairn_buf sealed = CAIRN_BUF_INIT, text = CAIRN_BUF_INIT;
	int error;

	if ((error = cairn_random_bytes(salt, sizeof(salt))) < 0 ||
	    (error = cairn_random_bytes(nonce, sizeof(nonce))) < 0)
		goto done;
	if ((error = derive_kek(s, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, kek)) < 0)
		goto done;
	memcpy(material, repo->keys.data_key, CAIRN_KEY_LEN);
	memcpy(material + CAIRN_KEY_LEN, repo->keys.id_key, CAIRN_KEY_LEN);
	snprintf(aad, sizeof(aad), "cairn-key 1 %s", repo->id);
	if ((error = cairn_buf_append(&sealed, nonce, sizeof(nonce))) < 0 ||
	    (error = cairn_aead_encrypt(kek, nonce, aad, strlen(aad), material, sizeof(material),
	                                &sealed)) < 0)
		goto done;
	if (!(wrapped_hex = malloc(sealed.len * 2 + 1))) {
		error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto done;
	}
	cairn_hex_encode(sealed.data, sealed.len, wrapped_hex);
	cairn_hex_encode(salt, sizeof(salt), salt_hex);
	if (strcmp(s->kind, "passphrase") == 0)
		error = cairn_buf_printf(&text, "cairn-key 1\nkdf scrypt\nn %d\nr %d\np %d\n", SCRYPT_N,
		                         SCRYPT_R, SCRYPT_P);
	else
		error = cairn_buf_printf(&text, "cairn-key 1\nkdf hkdf-sha256\n");
	if (error < 0 ||
	    (error = cairn_buf_printf(&text, "salt %s\nwrapped %s\n", salt_hex, wrapped_hex)) < 0)
		goto done;
	if ((error = cairn_random_hex(key + 5, 8)) < 0)
		goto done;
	memcpy(key, "keys/", 5);
	{
		/* Key objects are never encrypted: they hold what opens the rest. */
		cairn_keys saved = repo->keys;

		memset(&repo->keys, 0, sizeof(repo->keys));
		error = cairn_repo_put_object(repo, key, CAIRN_OBJ_KEY, text.data, text.len);
		repo->keys = saved;
		cairn_secure_zero(&saved, sizeof(saved));
	}
done:
	cairn_secure_zero(kek, sizeof(kek));
	cairn_secure_zero(material, sizeof(material));
	cairn_buf_free_secure(&sealed);
	cairn_buf_free(&text);
	free(wrapped_hex);
	return error;
}

static const char *line_value(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return p + n + 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static int line_copy(const char *text, const char *name, char *out, size_t len)
{
	const char *v = line_value(text, name);
	size_t n;

	if (!v)
		return CAIRN_ECORRUPT;
	n = strcspn(v, "\n");
	if (n >= len)
		return CAIRN_ECORRUPT;
	memcpy(out, v, n);
	out[n] = 0;
	return 0;
}

/* 1 when the secret opened this key object, 0 when not, < 0 on error. */
static int try_key_object(cairn_repo *repo, const char *text, const user_secret *s)
{
	char kdf[32], salt_hex[40], wrapped_hex[512], aad[64];
	uint8_t salt[16], wrapped[256], kek[CAIRN_KEY_LEN];
	cairn_buf material = CAIRN_BUF_INIT;
	unsigned long long n = SCRYPT_N;
	unsigned int r = SCRYPT_R, p = SCRYPT_P;
	size_t wrapped_len;
	int error, opened = 0;

	if (strncmp(text, "cairn-key 1\n", 12) != 0 || line_copy(text, "kdf", kdf, sizeof(kdf)) ||
	    line_copy(text, "salt", salt_hex, sizeof(salt_hex)) ||
	    line_copy(text, "wrapped", wrapped_hex, sizeof(wrapped_hex)) ||
	    cairn_hex_decode(salt_hex, salt, sizeof(salt)) < 0)
		return cairn_error_set(CAIRN_ECORRUPT, "key object is malformed");
	wrapped_len = strlen(wrapped_hex) / 2;
	if (wrapped_len != CAIRN_NONCE_LEN + 2 * CAIRN_KEY_LEN + CAIRN_TAG_LEN ||
	    cairn_hex_decode(wrapped_hex, wrapped, wrapped_len) < 0)
		return cairn_error_set(CAIRN_ECORRUPT, "key object is malformed");
	if ((strcmp(kdf, "scrypt") == 0) != (strcmp(s->kind, "passphrase") == 0))
		return 0;
	if (strcmp(kdf, "scrypt") == 0) {
		const char *v;

		if ((v = line_value(text, "n")))
			n = strtoull(v, NULL, 10);
		if ((v = line_value(text, "r")))
			r = (unsigned int)strtoul(v, NULL, 10);
		if ((v = line_value(text, "p")))
			p = (unsigned int)strtoul(v, NULL, 10);
		if (n < 1024 || n > (1u << 22) || (n & (n - 1)) || r < 1 || r > 64 || p < 1 || p > 64)
			return cairn_error_set(CAIRN_ECORRUPT, "key object has bad scrypt parameters");
	} else if (strcmp(kdf, "hkdf-sha256") != 0) {
		return cairn_error_set(CAIRN_EUNSUPPORTED, "key object uses unknown kdf '%s'", kdf);
	}
	if ((error = derive_kek(s, salt, n, r, p, kek)) < 0)
		goto done;
	snprintf(aad, sizeof(aad), "cairn-key 1 %s", repo->id);
	if (cairn_aead_decrypt(kek, wrapped, aad, strlen(aad), wrapped + CAIRN_NONCE_LEN,
	                       wrapped_len - CAIRN_NONCE_LEN, &material) < 0) {
		cairn_error_clear();
		goto done;
	}
	memcpy(repo->keys.data_key, material.data, CAIRN_KEY_LEN);
	memcpy(repo->keys.id_key, material.data + CAIRN_KEY_LEN, CAIRN_KEY_LEN);
	repo->keys.key_id = cairn_keys_id(repo->keys.data_key);
	repo->keys.encrypted = 1;
	opened = 1;
done:
	cairn_secure_zero(kek, sizeof(kek));
	cairn_buf_free_secure(&material);
	return error < 0 ? error : opened;
}

static int open_keys(cairn_repo *repo, user_secret *secrets, int count)
{
	cairn_keylist keys = {0};
	cairn_buf text = CAIRN_BUF_INIT;
	size_t i;
	int s, rc = 0, error;

	if (count == 0) {
		cairn_error_set(CAIRN_EAUTH, "repository %s is encrypted and no key was given",
		                repo->store->display_url);
		cairn_error_hint("set CAIRN_ENCRYPTION_KEY_FILE or CAIRN_ENCRYPTION_PASSPHRASE");
		return CAIRN_EAUTH;
	}
	if ((error = cairn_store_list_keys(repo->store, "keys/", &keys)) < 0)
		goto done;
	for (i = 0; i < keys.count && rc == 0; i++) {
		cairn_buf_clear(&text);
		if ((error = cairn_repo_get_object(repo, keys.keys[i], CAIRN_OBJ_KEY, &text)) < 0)
			goto done;
		for (s = 0; s < count && rc == 0; s++) {
			if ((rc = try_key_object(repo, (const char *)text.data, &secrets[s])) < 0) {
				error = cairn_error_wrap(rc, "key %s in repository %s", keys.keys[i],
				                         repo->store->display_url);
				goto done;
			}
		}
	}
	if (rc == 0) {
		error = cairn_error_set(CAIRN_EAUTH,
		                        "wrong key: the %s given does not open repository %s (%zu keys tried)",
		                        count == 2 ? "key file and passphrase" : secrets[0].kind[0] == 'k' ? "key file" : "passphrase",
		                        repo->store->display_url, keys.count);
	}
done:
	cairn_keylist_free(&keys);
	cairn_buf_free(&text);
	return error;
}

/* ---- config ------------------------------------------------------------ */

static int apply_compression(cairn_repo *repo)
{
	const char *spec = cairn_settings_get("compression");

	return cairn_codec_parse(spec ? spec : "zstd:3", &repo->codec, &repo->level);
}

static int create_repo(cairn_repo *repo, user_secret *secrets, int count)
{
	cairn_buf text = CAIRN_BUF_INIT;
	uint8_t seed[8];
	char seed_hex[17];
	int i, error;

	repo->cdc.fixed = 0;
	repo->cdc.min_size = cairn_settings_get_size("chunk-min-size");
	repo->cdc.avg_size = cairn_settings_get_size("chunk-avg-size");
	repo->cdc.max_size = cairn_settings_get_size("chunk-max-size");
	if ((error = cairn_chunker_check(&repo->cdc)) < 0)
		return error;
	if ((error = cairn_random_hex(repo->id, 16)) < 0 ||
	    (error = cairn_random_bytes(seed, sizeof(seed))) < 0)
		return error;
	cairn_hex_encode(seed, sizeof(seed), seed_hex);
	repo->cdc.seed = cairn_get_u64le(seed); /* replaced by the keyed seed when encrypted */
	if (count) {
		if ((error = cairn_random_bytes(repo->keys.data_key, CAIRN_KEY_LEN)) < 0 ||
		    (error = cairn_random_bytes(repo->keys.id_key, CAIRN_KEY_LEN)) < 0)
			return error;
		repo->keys.key_id = cairn_keys_id(repo->keys.data_key);
		repo->keys.encrypted = 1;
		for (i = 0; i < count; i++)
			if ((error = write_key_object(repo, &secrets[i])) < 0)
				return error;
	}
	error = cairn_buf_printf(&text,
	                         "cairn-repository 1\nid %s\nencryption %s\nchunk-min %zu\n"
	                         "chunk-avg %zu\nchunk-max %zu\nchunk-seed %s\ncreated %lld\n",
	                         repo->id, count ? "aes-256-gcm" : "none", repo->cdc.min_size,
	                         repo->cdc.avg_size, repo->cdc.max_size, count ? "keyed" : seed_hex,
	                         (long long)time(NULL));
	if (error == 0) {
		/* The config is never encrypted; it is written last: it makes the repository exist. */
		cairn_keys saved = repo->keys;

		memset(&repo->keys, 0, sizeof(repo->keys));
		error = cairn_repo_put_object(repo, "config", CAIRN_OBJ_CONFIG, text.data, text.len);
		repo->keys = saved;
		cairn_secure_zero(&saved, sizeof(saved));
	}
	cairn_buf_free(&text);
	if (error == 0)
		cairn_log(CAIRN_LOG_INFO, "created %srepository %s", count ? "encrypted " : "",
		          repo->store->display_url);
	return error;
}

static int parse_config(cairn_repo *repo, const char *text, int *encrypted)
{
	char enc[32], seed_hex[20];
	unsigned long long min, avg, max;
	const char *v;
	uint8_t seed[8];

	if (strncmp(text, "cairn-repository 1\n", 19) != 0)
		return cairn_error_set(CAIRN_EUNSUPPORTED, "unknown repository format (config)");
	if (line_copy(text, "id", repo->id, sizeof(repo->id)) || strlen(repo->id) != 32 ||
	    line_copy(text, "encryption", enc, sizeof(enc)) ||
	    line_copy(text, "chunk-seed", seed_hex, sizeof(seed_hex)) ||
	    !(v = line_value(text, "chunk-min")) || sscanf(v, "%llu", &min) != 1 ||
	    !(v = line_value(text, "chunk-avg")) || sscanf(v, "%llu", &avg) != 1 ||
	    !(v = line_value(text, "chunk-max")) || sscanf(v, "%llu", &max) != 1)
		return cairn_error_set(CAIRN_ECORRUPT, "repository config is malformed");
	repo->cdc.fixed = 0;
	repo->cdc.min_size = (size_t)min;
	repo->cdc.avg_size = (size_t)avg;
	repo->cdc.max_size = (size_t)max;
	if (cairn_chunker_check(&repo->cdc) < 0)
		return cairn_error_set(CAIRN_ECORRUPT, "repository config has bad chunk sizes");
	if (strcmp(enc, "aes-256-gcm") == 0)
		*encrypted = 1;
	else if (strcmp(enc, "none") == 0)
		*encrypted = 0;
	else
		return cairn_error_set(CAIRN_EUNSUPPORTED, "unknown encryption '%s' in config", enc);
	if (*encrypted) {
		/* Keyed chunk boundaries: they reveal nothing about the data. */
		repo->cdc.seed = 0;
	} else {
		if (cairn_hex_decode(seed_hex, seed, sizeof(seed)) < 0)
			return cairn_error_set(CAIRN_ECORRUPT, "repository config has a bad chunk seed");
		repo->cdc.seed = cairn_get_u64le(seed);
	}
	return 0;
}

int cairn_repo_open(cairn_repo **out, const char *url, int create)
{
	cairn_repo *repo;
	cairn_buf text = CAIRN_BUF_INIT;
	user_secret secrets[2];
	cairn_stat st;
	int count = 0, encrypted = 0, error, i;

	*out = NULL;
	memset(secrets, 0, sizeof(secrets));
	if (!(repo = calloc(1, sizeof(*repo))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	repo->pack_size = cairn_settings_get_size("pack-size");
	if ((error = apply_compression(repo)) < 0)
		goto fail;
	if ((error = cairn_store_open(&repo->store, url)) < 0)
		goto fail;
	if ((error = user_secrets(secrets, &count)) < 0)
		goto fail;
	error = cairn_store_stat(repo->store, "config", &st);
	if (error == CAIRN_ENOTFOUND) {
		if (!create) {
			cairn_error_set(CAIRN_ENOTFOUND, "no repository at %s", repo->store->display_url);
			cairn_error_hint("check CAIRN_REPO or --repo; a first backup-push creates one");
			goto fail;
		}
		if ((error = create_repo(repo, secrets, count)) < 0)
			goto fail;
	} else if (error < 0) {
		goto fail;
	} else {
		if ((error = cairn_repo_get_object(repo, "config", CAIRN_OBJ_CONFIG, &text)) < 0)
			goto fail;
		if ((error = parse_config(repo, (const char *)text.data, &encrypted)) < 0) {
			cairn_error_wrap(error, "repository %s", repo->store->display_url);
			goto fail;
		}
		if (encrypted) {
			if ((error = open_keys(repo, secrets, count)) < 0)
				goto fail;
		} else if (count) {
			error = cairn_error_set(CAIRN_EINVALID,
			                        "repository %s is not encrypted, but a key was given",
			                        repo->store->display_url);
			cairn_error_hint("unset CAIRN_ENCRYPTION_KEY_FILE/CAIRN_ENCRYPTION_PASSPHRASE, or "
			                 "use a new repository for encrypted backups");
			goto fail;
		}
	}
	if (repo->keys.encrypted) {
		uint8_t mac[CAIRN_HASH_LEN];

		cairn_hmac_sha256(repo->keys.id_key, CAIRN_KEY_LEN, "cairn chunker seed", 18, mac);
		repo->cdc.seed = cairn_get_u64le(mac);
	}
	cairn_gear_init(&repo->gear, repo->cdc.seed);
	for (i = 0; i < 2; i++)
		cairn_buf_free_secure(&secrets[i].bytes);
	cairn_buf_free(&text);
	*out = repo;
	return 0;
fail:
	for (i = 0; i < 2; i++)
		cairn_buf_free_secure(&secrets[i].bytes);
	cairn_buf_free(&text);
	cairn_repo_free(repo);
	return error < 0 ? error : cairn_error_code_last();
}

void cairn_repo_free(cairn_repo *repo)
{
	if (!repo)
		return;
	cairn_store_close(repo->store);
	cairn_index_free(&repo->index);
	cairn_secure_zero(&repo->keys, sizeof(repo->keys));
	free(repo);
}

/* ---- locks ------------------------------------------------------------ */

typedef struct lock_scan {
	cairn_repo *repo;
	const char *own;
	int exclusive_wanted;
	char holder[512];
	int blocked;
} lock_scan;

static int lock_alive(const char *text)
{
	char host[256], me[256];
	const char *v;
	long long pid = 0, when = 0;

	if (line_copy(text, "host", host, sizeof(host)) || !(v = line_value(text, "pid")) ||
	    sscanf(v, "%lld", &pid) != 1 || !(v = line_value(text, "time")) ||
	    sscanf(v, "%lld", &when) != 1)
		return 1; /* unreadable: assume held, the user removes it */
	if (gethostname(me, sizeof(me)) == 0 && strcmp(host, me) == 0)
		return kill((pid_t)pid, 0) == 0 || errno == EPERM;
	return time(NULL) - when < cairn_settings_get_int("lock-stale-after");
}

static int lock_check(void *arg, const char *key, uint64_t size)
{
	lock_scan *scan = arg;
	cairn_buf text = CAIRN_BUF_INIT;
	int error;

	(void)size;
	if (scan->own && strcmp(key, scan->own) == 0)
		return 0;
	/* A shared lock only waits for exclusive ones. */
	if (!scan->exclusive_wanted && strncmp(key, "locks/exclusive-", 16) != 0)
		return 0;
	error = cairn_store_get(scan->repo->store, key, 0, CAIRN_TO_END, &text);
	if (error == CAIRN_ENOTFOUND) {
		cairn_error_clear();
		return 0;
	}
	if (error < 0)
		return error;
	if (cairn_buf_terminate(&text) == 0 && lock_alive((const char *)text.data)) {
		char what[128] = "?", host[256] = "?", pid[32] = "?";

		line_copy((const char *)text.data, "what", what, sizeof(what));
		line_copy((const char *)text.data, "host", host, sizeof(host));
		line_copy((const char *)text.data, "pid", pid, sizeof(pid));
		snprintf(scan->holder, sizeof(scan->holder), "%s (pid %s on %s, %s)", what, pid, host,
		         key);
		scan->blocked = 1;
	} else {
		const char *stale = key;

		cairn_log(CAIRN_LOG_INFO, "removing stale lock %s", key);
		cairn_store_remove(scan->repo->store, &stale, 1);
	}
	cairn_buf_free(&text);
	return 0;
}

int cairn_lock_acquire(cairn_repo *repo, int exclusive, const char *what, char **out_key)
{
	char key[128], host[256], rnd[17];
	cairn_buf text = CAIRN_BUF_INIT;
	lock_scan scan;
	const char *own;
	int error;

	*out_key = NULL;
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	if ((error = cairn_random_hex(rnd, 8)) < 0)
		return error;
	snprintf(key, sizeof(key), "locks/%s-%s", exclusive ? "exclusive" : "shared", rnd);
	if ((error = cairn_buf_printf(&text, "cairn-lock 1\nwhat %s\nhost %s\npid %ld\ntime %lld\n",
	                              what, host, (long)getpid(), (long long)time(NULL))) < 0)
		goto done;
	/* Announce first, then look: two processes racing both see each other. */
	if ((error = cairn_store_put(repo->store, key, text.data, text.len)) < 0)
		goto done;
	memset(&scan, 0, sizeof(scan));
	scan.repo = repo;
	scan.own = key;
	scan.exclusive_wanted = exclusive;
	if ((error = cairn_store_list(repo->store, "locks/", lock_check, &scan)) < 0 || scan.blocked) {
		own = key;
		cairn_store_remove(repo->store, &own, 1);
		if (scan.blocked) {
			error = cairn_error_set(CAIRN_ELOCKED, "repository %s is locked by %s",
			                        repo->store->display_url, scan.holder);
			cairn_error_hint("wait for it to finish; a lock of a crashed process on this host "
			                 "is removed automatically");
		}
		goto done;
	}
	if (!(*out_key = strdup(key))) {
		own = key;
		cairn_store_remove(repo->store, &own, 1);
		error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
done:
	cairn_buf_free(&text);
	return error;
}

void cairn_lock_release(cairn_repo *repo, char *key)
{
	cairn_error_saved saved;
	const char *k = key;

	if (!key)
		return;
	cairn_error_save(&saved);
	if (cairn_store_remove(repo->store, &k, 1) < 0)
		cairn_log(CAIRN_LOG_WARN, "cannot remove lock %s: %s", key, cairn_error_message());
	cairn_error_restore(&saved);
	free(key);
}
