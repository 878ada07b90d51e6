/* maintenance.c - verify, delete, garbage collection (see maintenance.h). */
#include "maintenance.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

/* New index objects garbage collection writes are about this size. */
#define GC_INDEX_OBJECT_BYTES (1u << 20)

static int keys_list(cairn_repo *repo, const char *prefix, cairn_keylist *out)
{
	return cairn_store_list_keys(repo->store, prefix, out);
}

/* A set of chunk ids, on the index's hash table. */
static int idset_add(cairn_index *set, const uint8_t id[CAIRN_HASH_LEN])
{
	cairn_index_entry e;

	memset(&e, 0, sizeof(e));
	memcpy(e.id, id, CAIRN_HASH_LEN);
	return cairn_index_add(set, &e);
}

/* ---- verify ---- */

typedef struct verifier {
	cairn_repo *repo;
	cairn_problem_fn problem;
	void *arg;
	cairn_verify_stats *stats;
	cairn_index checked; /* chunks already verified */
	cairn_index bad_packs_ids;
	char **bad_packs;
	size_t bad_pack_count;
} verifier;

static void report(verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(verifier *v, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->stats->problems++;
	v->problem(v->arg, msg);
}

static void report_error(verifier *v)
{
	report(v, "%s", cairn_error_message());
	cairn_error_clear();
}

/* Reads every frame of an object; 0 when whole, < 0 after reporting. */
static int verify_object(verifier *v, const char *key, cairn_object_type type)
{
	cairn_objreader *r;
	const uint8_t *data;
	size_t len;
	int rc;

	if ((rc = cairn_objreader_open(&r, v->repo, key, type)) < 0) {
		report_error(v);
		return rc;
	}
	while ((rc = cairn_objreader_frame(r, &data, &len)) > 0)
		v->stats->bytes += len;
	if (rc < 0)
		report_error(v);
	v->stats->objects++;
	cairn_objreader_free(r);
	return rc;
}

/* Reads a pack frame by frame and checks its trailer lists exactly those frames. */
static int verify_pack(verifier *v, const char *key)
{
	cairn_objreader *r;
	const uint8_t *data;
	const cairn_frame_header *h;
	cairn_buf expected = CAIRN_BUF_INIT;
	char hex[65];
	uint64_t offset, length;
	size_t len;
	int rc, trailer_bad = 0;

	if ((rc = cairn_objreader_open(&r, v->repo, key, CAIRN_OBJ_PACK)) < 0) {
		report_error(v);
		return rc;
	}
	cairn_buf_printf(&expected, "cairn-pack 1\n");
	while ((rc = cairn_objreader_frame(r, &data, &len)) > 0) {
		h = cairn_objreader_last(r, &offset, &length);
		if (h->flags & CAIRN_FRAME_FLAG_LAST) {
			if (len != expected.len || memcmp(data, expected.data, len) != 0) {
				report(v, "pack %s: its trailer does not list its chunks", key);
				trailer_bad = 1;
				rc = CAIRN_ECORRUPT;
			}
			break;
		}
		cairn_hex_encode(h->checksum, CAIRN_HASH_LEN, hex);
		cairn_buf_printf(&expected, "%s %" PRIu64 " %" PRIu64 " %zu\n", hex, offset, length,
		                 len);
		idset_add(&v->checked, h->checksum);
		v->stats->chunks++;
		v->stats->bytes += len;
	}
	if (rc < 0 && !trailer_bad)
		report_error(v);
	v->stats->objects++;
	cairn_objreader_free(r);
	cairn_buf_free(&expected);
	return rc < 0 ? rc : 0;
}

static void mark_bad_pack(verifier *v, const char *key)
{
	char **grown = realloc(v->bad_packs, (v->bad_pack_count + 1) * sizeof(*grown));

	if (!grown)
		return;
	v->bad_packs = grown;
	if ((v->bad_packs[v->bad_pack_count] = strdup(key)))
		v->bad_pack_count++;
}

static int pack_is_bad(verifier *v, const char *key)
{
	size_t i;

	for (i = 0; i < v->bad_pack_count; i++)
		if (strcmp(v->bad_packs[i], key) == 0)
			return 1;
	return 0;
}

typedef struct manifest_check {
	verifier *v;
	const char *name;
	int fetch;
	int problems;
	cairn_buf chunk;
} manifest_check;

/* Checks one chunk reference: fetched and verified, or present in a sound pack. */
static int check_ref(manifest_check *m, const uint8_t id[CAIRN_HASH_LEN], uint32_t len)
{
	verifier *v = m->v;
	char pack_key[96], hex[65];
	const cairn_index_entry *e;

	cairn_hex_encode(id, CAIRN_HASH_LEN, hex);
	if (m->fetch) {
		if (cairn_index_find(&v->checked, id))
			return 0;
		cairn_buf_clear(&m->chunk);
		if (cairn_chunk_fetch(v->repo, id, len, &m->chunk) < 0) {
			report(v, "backup %s: %s", m->name, cairn_error_message());
			m->problems++;
			return 0;
		}
		idset_add(&v->checked, id);
		v->stats->chunks++;
		v->stats->bytes += m->chunk.len;
		return 0;
	}
	if (!(e = cairn_index_find(&v->repo->index, id))) {
		report(v, "backup %s: chunk %s is in no index", m->name, hex);
		m->problems++;
		return 0;
	}
	cairn_pack_key(v->repo->index.packs[e->pack], pack_key, sizeof(pack_key));
	if (pack_is_bad(v, pack_key) && !cairn_index_find(&v->checked, id)) {
		report(v, "backup %s: chunk %s is in damaged or missing pack %s", m->name, hex,
		       pack_key);
		m->problems++;
	}
	return 0;
}

static int check_chunk_line(void *arg, const char *line)
{
	manifest_check *m = arg;
	uint8_t id[CAIRN_HASH_LEN];
	uint32_t len;

	if (cairn_manifest_chunk_parse(line, id, &len) < 0) {
		report(m->v, "backup %s: %s", m->name, cairn_error_message());
		m->problems++;
		return 0;
	}
	return check_ref(m, id, len);
}

/* Walks a manifest; checks (or, when fetch is set, fetches) every chunk. */
static int verify_manifest(verifier *v, const char *name, int fetch)
{
	cairn_objreader *r;
	manifest_check m;
	char key[CAIRN_NAME_MAX + 16], *line;
	uint8_t id[CAIRN_HASH_LEN];
	uint32_t len;
	int rc, ended = 0;

	memset(&m, 0, sizeof(m));
	m.v = v;
	m.name = name;
	m.fetch = fetch;
	snprintf(key, sizeof(key), "manifests/%s", name);
	if ((rc = cairn_objreader_open(&r, v->repo, key, CAIRN_OBJ_MANIFEST)) < 0) {
		report_error(v);
		return rc;
	}
	while ((rc = cairn_objreader_line(r, &line)) > 0) {
		if (strncmp(line, "end ", 4) == 0)
			ended = 1;
		if (strncmp(line, "c ", 2) == 0) {
			check_chunk_line(&m, line);
		} else if (strncmp(line, "l ", 2) == 0) {
			/* A list chunk: check it, then every chunk it lists. */
			if (cairn_manifest_list_parse(line, id, &len) < 0) {
				report(v, "manifest %s: %s", key, cairn_error_message());
				m.problems++;
				continue;
			}
			check_ref(&m, id, len);
			if (cairn_chunk_list_each(v->repo, id, len, check_chunk_line, &m) < 0) {
				report(v, "backup %s: chunk list: %s", name, cairn_error_message());
				m.problems++;
			}
		}
	}
	if (rc < 0)
		report_error(v);
	else if (!ended)
		report(v, "manifest %s has no end line", key);
	v->stats->objects++;
	cairn_objreader_free(r);
	cairn_buf_free(&m.chunk);
	return rc < 0 || !ended || m.problems ? CAIRN_ECORRUPT : 0;
}

static int verify_index_objects(verifier *v)
{
	cairn_keylist idx = {0};
	cairn_buf text = CAIRN_BUF_INIT;
	size_t i;
	int error;

	if ((error = keys_list(v->repo, "index/", &idx)) < 0)
		return error;
	for (i = 0; i < idx.count; i++) {
		cairn_buf_clear(&text);
		v->stats->objects++;
		if (cairn_repo_get_object(v->repo, idx.keys[i], CAIRN_OBJ_INDEX, &text) < 0) {
			report_error(v);
			continue;
		}
		if (cairn_index_parse(&v->repo->index, (const char *)text.data, text.len) < 0)
			report(v, "index %s: %s", idx.keys[i], cairn_error_message());
	}
	v->repo->index_loaded = 1;
	cairn_keylist_free(&idx);
	cairn_buf_free(&text);
	return 0;
}

static int verify_all(verifier *v)
{
	cairn_keylist k = {0};
	size_t i;
	int error;
	cairn_backup_info info;
	cairn_stat st;
	char key[CAIRN_NAME_MAX + 16];

	verify_object(v, "config", CAIRN_OBJ_CONFIG);
	if ((error = keys_list(v->repo, "keys/", &k)) < 0)
		goto done;
	for (i = 0; i < k.count; i++)
		verify_object(v, k.keys[i], CAIRN_OBJ_KEY);
	cairn_keylist_free(&k);

	cairn_index_free(&v->repo->index);
	v->repo->index_loaded = 0;
	if ((error = verify_index_objects(v)) < 0)
		goto done;

	if ((error = keys_list(v->repo, "packs/", &k)) < 0)
		goto done;
	for (i = 0; i < k.count; i++) {
		if (cairn_interrupted) {
			error = cairn_error_set(CAIRN_ECANCELED, "interrupted");
			goto done;
		}
		if (verify_pack(v, k.keys[i]) < 0)
			mark_bad_pack(v, k.keys[i]);
		cairn_progress_update(i + 1, k.count);
	}
	cairn_progress_end();
	/* Every pack an index names must exist. */
	for (i = 0; i < v->repo->index.pack_count; i++) {
		size_t j;
		int found = 0;

		cairn_pack_key(v->repo->index.packs[i], key, sizeof(key));
		for (j = 0; j < k.count && !found; j++)
			found = strcmp(k.keys[j], key) == 0;
		if (!found) {
			report(v, "pack %s is listed in an index but missing", key);
			mark_bad_pack(v, key);
		}
	}
	cairn_keylist_free(&k);

	if ((error = keys_list(v->repo, "catalog/", &k)) < 0)
		goto done;
	for (i = 0; i < k.count; i++) {
		const char *name = k.keys[i] + strlen("catalog/");

		v->stats->objects++;
		if (cairn_backup_info_load(v->repo, name, &info) < 0) {
			report_error(v);
			continue;
		}
		cairn_backup_info_free(&info);
		snprintf(key, sizeof(key), "manifests/%s", name);
		if (cairn_store_stat(v->repo->store, key, &st) < 0) {
			report(v, "backup %s: its manifest %s is missing", name, key);
			cairn_error_clear();
		}
	}
	cairn_keylist_free(&k);

	if ((error = keys_list(v->repo, "manifests/", &k)) < 0)
		goto done;
	for (i = 0; i < k.count; i++)
		verify_manifest(v, k.keys[i] + strlen("manifests/"), 0);
	cairn_keylist_free(&k);

	if ((error = keys_list(v->repo, "logs/", &k)) < 0)
		goto done;
	for (i = 0; i < k.count; i++)
		verify_object(v, k.keys[i], CAIRN_OBJ_LOG);
done:
	cairn_keylist_free(&k);
	return error;
}

int cairn_verify(cairn_repo *repo, const char *name, cairn_problem_fn problem, void *arg,
                 cairn_verify_stats *stats)
{
	verifier v;
	cairn_backup_info info;
	size_t i;
	int error = 0;

	memset(&v, 0, sizeof(v));
	memset(stats, 0, sizeof(*stats));
	v.repo = repo;
	v.problem = problem;
	v.arg = arg;
	v.stats = stats;
	if (name) {
		if ((error = cairn_backup_info_load(repo, name, &info)) < 0)
			goto done;
		cairn_backup_info_free(&info);
		stats->objects++;
		if ((error = cairn_repo_load_index(repo)) < 0) {
			report_error(&v);
			error = 0;
		}
		verify_manifest(&v, name, 1);
	} else {
		error = verify_all(&v);
	}
	if (error == 0 && stats->problems)
		error = cairn_error_set(CAIRN_ECORRUPT, "verify found %" PRIu64 " problem%s in %s",
		                        stats->problems, stats->problems == 1 ? "" : "s",
		                        repo->store->display_url);
done:
	cairn_index_free(&v.checked);
	for (i = 0; i < v.bad_pack_count; i++)
		free(v.bad_packs[i]);
	free(v.bad_packs);
	return error;
}

/* ---- delete ---- */

int cairn_delete_select(cairn_repo *repo, const char *engine, cairn_delete_mode mode,
                        uint64_t retain, const char *target, char ***out, size_t *count)
{
	cairn_backup_info *infos = NULL;
	size_t n = 0, i, selected = 0, limit = 0;
	char **names = NULL;
	int64_t before = 0;
	int error;

	*out = NULL;
	*count = 0;
	if ((error = cairn_backup_list(repo, engine, &infos, &n)) < 0)
		return error;
	if (mode == CAIRN_DELETE_RETAIN) {
		limit = n > retain ? n - (size_t)retain : 0;
	} else {
		int found = 0;

		for (i = 0; i < n; i++) {
			if (strcmp(infos[i].name, target) == 0) {
				before = infos[i].end_time;
				limit = i; /* everything older than it, in list order */
				found = 1;
			}
		}
		if (!found) {
			if (cairn_parse_time(target, &before) < 0 && cairn_backup_name_valid(target)) {
				error = cairn_error_set(CAIRN_ENOTFOUND,
				                        "backup %s not found in repository %s (nor is it a time)",
				                        target, repo->store->display_url);
				cairn_error_hint("'cairn backup-list' shows the backups; times look like "
				                 "2026-11-26T18:30:00Z");
				goto done;
			}
			if (cairn_parse_time(target, &before) < 0) {
				error = cairn_error_set(CAIRN_EINVALID,
				                        "'%s' is neither a backup of this repository nor a time",
				                        target);
				cairn_error_hint("times look like 2026-11-26T18:30:00Z");
				goto done;
			}
			for (limit = 0; limit < n && infos[limit].end_time < before; limit++)
				;
		}
	}
	if (limit && !(names = calloc(limit, sizeof(*names)))) {
		error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < limit; i++) {
		if (!(names[selected] = strdup(infos[i].name))) {
			error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto done;
		}
		selected++;
	}
	*out = names;
	*count = selected;
	names = NULL;
done:
	if (names) {
		for (i = 0; i < selected; i++)
			free(names[i]);
		free(names);
	}
	for (i = 0; i < n; i++)
		cairn_backup_info_free(&infos[i]);
	free(infos);
	return error;
}

static int mark_line_live(void *arg, const char *line)
{
	uint8_t id[CAIRN_HASH_LEN];
	uint32_t len;
	int error;

	if ((error = cairn_manifest_chunk_parse(line, id, &len)) < 0)
		return error;
	return idset_add(arg, id);
}

/* Adds every chunk of a backup's manifest (list chunks and what they list) to the live set. */
static int mark_live(cairn_repo *repo, const char *name, cairn_index *live)
{
	cairn_objreader *r;
	char key[CAIRN_NAME_MAX + 16], *line;
	uint8_t id[CAIRN_HASH_LEN];
	uint32_t len;
	int rc, ended = 0;

	snprintf(key, sizeof(key), "manifests/%s", name);
	if ((rc = cairn_objreader_open(&r, repo, key, CAIRN_OBJ_MANIFEST)) < 0)
		return rc;
	while ((rc = cairn_objreader_line(r, &line)) > 0) {
		if (strncmp(line, "end ", 4) == 0)
			ended = 1;
		if (strncmp(line, "c ", 2) == 0) {
			if ((rc = mark_line_live(live, line)) < 0)
				break;
		} else if (strncmp(line, "l ", 2) == 0) {
			if ((rc = cairn_manifest_list_parse(line, id, &len)) < 0 ||
			    (rc = idset_add(live, id)) < 0 ||
			    (rc = cairn_chunk_list_each(repo, id, len, mark_line_live, live)) < 0)
				break;
		}
	}
	cairn_objreader_free(r);
	if (rc == 0 && !ended)
		rc = cairn_error_set(CAIRN_ECORRUPT, "manifest %s has no end line", key);
	return rc;
}

static int collect_garbage(cairn_repo *repo, cairn_gc_stats *stats)
{
	cairn_keylist catalog = {0}, manifests = {0}, packs = {0}, indexes = {0};
	cairn_index live = {0};
	cairn_buf text = CAIRN_BUF_INIT;
	uint32_t *live_count = NULL;
	const char **doomed = NULL;
	size_t i, ndoomed = 0, p;
	char key[CAIRN_NAME_MAX + 16], hex[65], new_index[64], **new_indexes = NULL;
	size_t new_count = 0;
	int error;

	/* 1. Where chunks are (list chunks are read through it). */
	cairn_index_free(&repo->index);
	repo->index_loaded = 0;
	if ((error = cairn_repo_load_index(repo)) < 0) {
		cairn_error_wrap(error, "garbage collection stopped, nothing was removed");
		goto done;
	}
	/* 2. What the remaining backups reference. Any doubt stops the collection. */
	if ((error = keys_list(repo, "catalog/", &catalog)) < 0)
		goto done;
	for (i = 0; i < catalog.count; i++) {
		if ((error = mark_live(repo, catalog.keys[i] + strlen("catalog/"), &live)) < 0) {
			cairn_error_wrap(error, "garbage collection stopped, nothing was removed");
			goto done;
		}
	}
	if (repo->index.pack_count &&
	    !(live_count = calloc(repo->index.pack_count, sizeof(*live_count)))) {
		error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < repo->index.count; i++)
		if (cairn_index_find(&live, repo->index.entries[i].id))
			live_count[repo->index.entries[i].pack]++;
	/* Every live chunk must be somewhere, or deleting would hide the damage. */
	for (i = 0; i < live.count; i++) {
		if (!cairn_index_find(&repo->index, live.entries[i].id)) {
			cairn_hex_encode(live.entries[i].id, CAIRN_HASH_LEN, hex);
			error = cairn_error_set(CAIRN_ECORRUPT,
			                        "chunk %s of a remaining backup is in no index; garbage "
			                        "collection stopped, nothing was removed",
			                        hex);
			cairn_error_hint("run 'cairn verify' to see the damage");
			goto done;
		}
	}
	/*
	 * 3. The new index: every entry of every pack that keeps a live chunk,
	 * in objects of about 1 MiB (a backup reads each whole; one object of
	 * the whole index would cost its reader memory in proportion to the
	 * repository).
	 */
	if ((error = keys_list(repo, "index/", &indexes)) < 0 ||
	    (error = keys_list(repo, "packs/", &packs)) < 0)
		goto done;
	for (p = 0; p < repo->index.pack_count; p++)
		stats->packs_kept += live_count[p] != 0;
	/* Entries of one pack are contiguous in load order; a pack line starts each run. */
	p = SIZE_MAX;
	for (i = 0; i <= repo->index.count; i++) {
		const cairn_index_entry *e = i < repo->index.count ? &repo->index.entries[i] : NULL;

		if (e && !live_count[e->pack])
			continue;
		if (text.len && (!e || text.len >= GC_INDEX_OBJECT_BYTES)) {
			char **grown = realloc(new_indexes, (new_count + 1) * sizeof(*grown));

			if (!grown) {
				error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
				goto done;
			}
			new_indexes = grown;
			memcpy(new_index, "index/", 6);
			if ((error = cairn_random_hex(new_index + 6, 16)) < 0 ||
			    (error = cairn_repo_put_object(repo, new_index, CAIRN_OBJ_INDEX, text.data,
			                                   text.len)) < 0)
				goto done;
			if (!(new_indexes[new_count] = strdup(new_index))) {
				error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
				goto done;
			}
			new_count++;
			cairn_buf_clear(&text);
			p = SIZE_MAX;
		}
		if (!e)
			break;
		if (!text.len && (error = cairn_buf_printf(&text, "cairn-index 1\n")) < 0)
			goto done;
		if (e->pack != p &&
		    (error = cairn_buf_printf(&text, "pack %s\n", repo->index.packs[e->pack])) < 0)
			goto done;
		p = e->pack;
		cairn_hex_encode(e->id, CAIRN_HASH_LEN, hex);
		if ((error = cairn_buf_printf(&text, "%s %" PRIu64 " %u %u\n", hex, e->offset,
		                              e->length, e->plain_len)) < 0)
			goto done;
	}
	/* 4. Old indexes go (the new ones cover what is kept), then dead packs and manifests. */
	if (!(doomed = calloc(indexes.count + packs.count + 1, sizeof(*doomed)))) {
		error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < indexes.count; i++) {
		size_t j;
		int fresh = 0;

		for (j = 0; j < new_count && !fresh; j++)
			fresh = strcmp(indexes.keys[i], new_indexes[j]) == 0;
		if (!fresh)
			doomed[ndoomed++] = indexes.keys[i];
	}
	if ((error = cairn_store_remove(repo->store, doomed, ndoomed)) < 0)
		goto done;
	ndoomed = 0;
	for (i = 0; i < packs.count; i++) {
		const char *id = strrchr(packs.keys[i], '/');
		int keep = 0;

		id = id ? id + 1 : packs.keys[i];
		for (p = 0; p < repo->index.pack_count && !keep; p++)
			keep = live_count[p] && strcmp(repo->index.packs[p], id) == 0;
		if (keep)
			continue;
		doomed[ndoomed++] = packs.keys[i];
		stats->packs_deleted++;
		stats->bytes_freed += packs.sizes[i];
	}
	if ((error = cairn_store_remove(repo->store, doomed, ndoomed)) < 0)
		goto done;
	/* Manifests without a catalog entry: deleted backups and interrupted ones. */
	if ((error = keys_list(repo, "manifests/", &manifests)) < 0)
		goto done;
	for (i = 0; i < manifests.count; i++) {
		cairn_stat st;

		snprintf(key, sizeof(key), "catalog/%s", manifests.keys[i] + strlen("manifests/"));
		error = cairn_store_stat(repo->store, key, &st);
		if (error == CAIRN_ENOTFOUND) {
			const char *k = manifests.keys[i];

			cairn_error_clear();
			stats->bytes_freed += manifests.sizes[i];
			if ((error = cairn_store_remove(repo->store, &k, 1)) < 0)
				goto done;
		} else if (error < 0) {
			goto done;
		}
	}
	error = 0;
	/* The in-memory index still names removed packs. */
	cairn_index_free(&repo->index);
	repo->index_loaded = 0;
done:
	cairn_keylist_free(&catalog);
	cairn_keylist_free(&manifests);
	cairn_keylist_free(&packs);
	cairn_keylist_free(&indexes);
	cairn_index_free(&live);
	cairn_buf_free(&text);
	free(live_count);
	free(doomed);
	for (i = 0; i < new_count; i++)
		free(new_indexes[i]);
	free(new_indexes);
	return error;
}

int cairn_delete_apply(cairn_repo *repo, char *const *names, size_t count, cairn_gc_stats *stats,
                       int (*before_gc)(void *arg), void *arg)
{
	char *lock = NULL, key[CAIRN_NAME_MAX + 16];
	const char *k;
	size_t i;
	int error;

	memset(stats, 0, sizeof(*stats));
	if ((error = cairn_lock_acquire(repo, 1, "delete", &lock)) < 0)
		return error;
	for (i = 0; i < count; i++) {
		/* The catalog entry first: from here on the backup does not exist. */
		snprintf(key, sizeof(key), "catalog/%s", names[i]);
		k = key;
		if ((error = cairn_store_remove(repo->store, &k, 1)) < 0)
			goto done;
		snprintf(key, sizeof(key), "manifests/%s", names[i]);
		if ((error = cairn_store_remove(repo->store, &k, 1)) < 0)
			goto done;
		stats->backups_deleted++;
		cairn_log(CAIRN_LOG_INFO, "deleted backup %s", names[i]);
	}
	if (before_gc && (error = before_gc(arg)) < 0)
		goto done;
	error = collect_garbage(repo, stats);
done:
	cairn_lock_release(repo, lock);
	return error;
}
