/* storage.c - storage access with retries and complete messages (see storage.h). */
#include "storage.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "error.h"
#include "host.h"
#include "log.h"
#include "plugins.h"

#define RETRY_ATTEMPTS 5
#define RETRY_BASE_MS 200

static char *display_url(const char *url)
{
	const char *sep = strstr(url, "://"), *at, *slash;
	char *out;
	size_t head;

	if (!sep)
		return strdup(url);
	at = strchr(sep + 3, '@');
	slash = strchr(sep + 3, '/');
	if (!at || (slash && slash < at))
		return strdup(url);
	head = (size_t)(sep + 3 - url);
	if (!(out = malloc(strlen(url) + 1)))
		return NULL;
	memcpy(out, url, head);
	strcpy(out + head, at + 1);
	return out;
}

int cairn_store_open(cairn_store **out, const char *url)
{
	const cairn_storage_plugin *plugin;
	cairn_store *s;
	int error;

	*out = NULL;
	if (!(plugin = cairn_plugins_storage_for(url))) {
		const char *sep = strstr(url, "://");
		int n = sep ? (int)(sep - url) : 4;

		cairn_error_set(CAIRN_EUNSUPPORTED, "no storage plugin handles '%.*s' URLs",
		                n, sep ? url : "file");
		cairn_error_hint("'cairn plugins' shows what loaded from %s", cairn_plugins_dirs());
		return CAIRN_EUNSUPPORTED;
	}
	if (!(s = calloc(1, sizeof(*s))) || !(s->display_url = display_url(url))) {
		free(s);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	s->plugin = plugin;
	cairn_error_clear();
	if ((error = plugin->open(&s->st, url, cairn_host_get())) < 0) {
		cairn_error_wrap(error, "cannot open repository %s", s->display_url);
		free(s->display_url);
		free(s);
		return error;
	}
	*out = s;
	return 0;
}

void cairn_store_close(cairn_store *s)
{
	if (!s)
		return;
	if (s->st)
		s->st->close(s->st);
	free(s->display_url);
	free(s);
}

static void backoff(int attempt)
{
	unsigned int jitter = 0;
	long ms = RETRY_BASE_MS << attempt;
	struct timespec ts;

	cairn_random_bytes(&jitter, sizeof(jitter));
	ms = ms / 2 + (long)(jitter % (unsigned int)(ms / 2 + 1));
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

static int should_retry(int error, int attempt, const char *what, const char *key)
{
	if (error != CAIRN_ENETWORK || attempt + 1 >= RETRY_ATTEMPTS)
		return 0;
	cairn_log(CAIRN_LOG_WARN, "%s %s failed (%s), retrying", what, key, cairn_error_message());
	backoff(attempt);
	return 1;
}

static int wrap(cairn_store *s, int error, const char *what, const char *key)
{
	if (error == CAIRN_ENOTFOUND)
		return cairn_error_set(error, "object %s not found in repository %s", key,
		                       s->display_url);
	if (!*cairn_error_message())
		cairn_error_set(error, "storage %s gave no reason", s->plugin->name);
	return cairn_error_wrap(error, "cannot %s %s in repository %s", what, key, s->display_url);
}

int cairn_store_upload_begin(cairn_store *s, const char *key, cairn_upload **out)
{
	int error;

	cairn_error_clear();
	if ((error = s->st->put_begin(s->st, key, out)) < 0)
		return wrap(s, error, "write", key);
	return 0;
}

int cairn_store_upload_write(cairn_store *s, cairn_upload *up, const char *key, const void *data,
                             size_t len)
{
	int error;

	cairn_error_clear();
	if ((error = s->st->put_write(up, data, len)) < 0)
		return wrap(s, error, "write", key);
	return 0;
}

int cairn_store_upload_commit(cairn_store *s, cairn_upload *up, const char *key)
{
	int error;

	cairn_error_clear();
	if ((error = s->st->put_commit(up)) < 0)
		return wrap(s, error, "write", key);
	return 0;
}

void cairn_store_upload_abort(cairn_store *s, cairn_upload *up)
{
	if (up)
		s->st->put_abort(up);
}

int cairn_store_put(cairn_store *s, const char *key, const void *data, size_t len)
{
	cairn_upload *up = NULL;
	int error, attempt = 0;

	for (;;) {
		cairn_error_clear();
		error = s->st->put_begin(s->st, key, &up);
		if (error == 0 && (error = s->st->put_write(up, data, len)) < 0)
			s->st->put_abort(up);
		else if (error == 0)
			error = s->st->put_commit(up);
		if (error == 0 || !should_retry(error, attempt++, "write", key))
			break;
	}
	return error < 0 ? wrap(s, error, "write", key) : 0;
}

static int buf_sink(void *arg, const void *data, size_t len)
{
	return cairn_buf_append(arg, data, len);
}

int cairn_store_get_sink(cairn_store *s, const char *key, uint64_t offset, uint64_t length,
                         cairn_sink_fn sink, void *arg)
{
	int error;

	cairn_error_clear();
	/* No retry here: the sink may have received part of the data. */
	if ((error = s->st->get(s->st, key, offset, length, sink, arg)) < 0)
		return wrap(s, error, "read", key);
	return 0;
}

int cairn_store_get(cairn_store *s, const char *key, uint64_t offset, uint64_t length,
                    cairn_buf *out)
{
	size_t start = out->len;
	int error, attempt = 0;

	for (;;) {
		out->len = start;
		cairn_error_clear();
		error = s->st->get(s->st, key, offset, length, buf_sink, out);
		if (error == 0 || !should_retry(error, attempt++, "read", key))
			break;
	}
	if (error < 0) {
		out->len = start;
		return wrap(s, error, "read", key);
	}
	return 0;
}

int cairn_store_stat(cairn_store *s, const char *key, cairn_stat *out)
{
	int error, attempt = 0;

	do {
		cairn_error_clear();
		error = s->st->stat(s->st, key, out);
	} while (error < 0 && should_retry(error, attempt++, "stat", key));
	return error < 0 ? wrap(s, error, "stat", key) : 0;
}

int cairn_store_list(cairn_store *s, const char *prefix, cairn_list_fn cb, void *arg)
{
	int error;

	cairn_error_clear();
	if ((error = s->st->list(s->st, prefix, cb, arg)) < 0)
		return wrap(s, error, "list", *prefix ? prefix : "(all)");
	return 0;
}

int cairn_store_remove(cairn_store *s, const char *const *keys, size_t count)
{
	int error, attempt = 0;

	if (count == 0)
		return 0;
	do {
		cairn_error_clear();
		error = s->st->remove(s->st, keys, count);
	} while (error < 0 && should_retry(error, attempt++, "remove", keys[0]));
	return error < 0 ? wrap(s, error, "remove", keys[0]) : 0;
}

static int keylist_add(void *arg, const char *key, uint64_t size)
{
	cairn_keylist *l = arg;

	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **keys = realloc(l->keys, cap * sizeof(*keys));
		uint64_t *sizes;

		if (!keys)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		l->keys = keys;
		if (!(sizes = realloc(l->sizes, cap * sizeof(*sizes))))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		l->sizes = sizes;
		l->cap = cap;
	}
	if (!(l->keys[l->count] = strdup(key)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	l->sizes[l->count++] = size;
	return 0;
}

typedef struct key_size {
	char *key;
	uint64_t size;
} key_size;

static int key_size_cmp(const void *a, const void *b)
{
	return strcmp(((const key_size *)a)->key, ((const key_size *)b)->key);
}

int cairn_store_list_keys(cairn_store *s, const char *prefix, cairn_keylist *out)
{
	key_size *pairs;
	size_t i;
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = cairn_store_list(s, prefix, keylist_add, out)) < 0) {
		cairn_keylist_free(out);
		return error;
	}
	if (out->count < 2)
		return 0;
	if (!(pairs = malloc(out->count * sizeof(*pairs)))) {
		cairn_keylist_free(out);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	for (i = 0; i < out->count; i++) {
		pairs[i].key = out->keys[i];
		pairs[i].size = out->sizes[i];
	}
	qsort(pairs, out->count, sizeof(*pairs), key_size_cmp);
	for (i = 0; i < out->count; i++) {
		out->keys[i] = pairs[i].key;
		out->sizes[i] = pairs[i].size;
	}
	free(pairs);
	return 0;
}

void cairn_keylist_free(cairn_keylist *l)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}
