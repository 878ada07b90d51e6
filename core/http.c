/* http.c - the HTTP client shared by the cloud storages (see http.h). */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define HTTP_DEFAULT_IO_TIMEOUT_MS 60000L
#define HTTP_DEFAULT_BODY_MAX (1024 * 1024)
/* Enough for any error document a server sends; the rest is dropped. */
#define HTTP_ERROR_BODY_MAX (64 * 1024)
/* Connections kept for reuse; more threads than this just open new ones. */
#define HTTP_IDLE_HANDLES_MAX 32

struct cairn_http {
	cairn_http_options opts;
	char *name;
	char *ca_file;
	pthread_mutex_t lock;
	CURL *idle[HTTP_IDLE_HANDLES_MAX];
	size_t idle_count;
};

/* One attempt's state, seen by the libcurl callbacks. */
typedef struct http_transfer {
	const cairn_http_request *req;
	cairn_http_response *resp;
	size_t body_offset;   /* of a buffer body */
	int body_started;     /* a callback body gave bytes: it cannot be replayed unrewound */
	int body_error;       /* negative code of body_read */
	int sink_error;       /* negative code of the sink */
	int too_large;        /* a collected 2xx body passed body_max */
	int oom;
	size_t body_cap;
} http_transfer;

static pthread_once_t http_global_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_result;

static void http_global_init(void)
{
	http_global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- headers ------------------------------------------------------------- */

static int headers_push(cairn_http_headers *h, char *line)
{
	if (h->count == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		char **grown = realloc(h->lines, cap * sizeof(*grown));

		if (!grown) {
			free(line);
			return CAIRN_ENOMEM;
		}
		h->lines = grown;
		h->cap = cap;
	}
	h->lines[h->count++] = line;
	return 0;
}

int cairn_http_headers_add(cairn_http_headers *h, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	char *line = malloc(n + v + 3);

	if (!line)
		return CAIRN_ENOMEM;
	memcpy(line, name, n);
	memcpy(line + n, ": ", 2);
	memcpy(line + n + 2, value, v + 1);
	return headers_push(h, line);
}

const char *cairn_http_headers_get(const cairn_http_headers *h, const char *name)
{
	size_t n = strlen(name), i;

	for (i = 0; i < h->count; i++) {
		const char *line = h->lines[i];

		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			line += n + 1;
			while (*line == ' ' || *line == '\t')
				line++;
			return line;
		}
	}
	return NULL;
}

void cairn_http_headers_clear(cairn_http_headers *h)
{
	size_t i;

	for (i = 0; i < h->count; i++)
		free(h->lines[i]);
	h->count = 0;
}

void cairn_http_headers_free(cairn_http_headers *h)
{
	cairn_http_headers_clear(h);
	free(h->lines);
	h->lines = NULL;
	h->cap = 0;
}

void cairn_http_response_free(cairn_http_response *resp)
{
	cairn_http_headers_free(&resp->headers);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

/* ---- messages ------------------------------------------------------------ */

void cairn_http_display_url(const char *url, char *out, size_t len)
{
	const char *rest = strstr(url, "://"), *host, *at, *end;
	size_t scheme_len;

	if (!rest) {
		snprintf(out, len, "%.*s", (int)strcspn(url, "?#"), url);
		return;
	}
	scheme_len = (size_t)(rest - url) + 3;
	host = rest + 3;
	end = host + strcspn(host, "/?#");
	/* user:password@ never reaches a message */
	at = memchr(host, '@', (size_t)(end - host));
	if (at)
		host = at + 1;
	snprintf(out, len, "%.*s%.*s", (int)scheme_len, url, (int)strcspn(host, "?#"), host);
}

static void set_error(cairn_http_response *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(cairn_http_response *resp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(resp->error, sizeof(resp->error), fmt, ap);
	va_end(ap);
}

/* ---- client -------------------------------------------------------------- */

int cairn_http_new(cairn_http **out, const cairn_http_options *opts, char *err, size_t err_len)
{
	cairn_http *http;

	*out = NULL;
	pthread_once(&http_global_once, http_global_init);
	if (http_global_result != CURLE_OK) {
		snprintf(err, err_len, "cannot initialise libcurl: %s",
		         curl_easy_strerror(http_global_result));
		return CAIRN_ERROR;
	}
	if (!(http = calloc(1, sizeof(*http)))) {
		snprintf(err, err_len, "out of memory");
		return CAIRN_ENOMEM;
	}
	http->opts = *opts;
	if (http->opts.connect_timeout_ms <= 0)
		http->opts.connect_timeout_ms = HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
	if (http->opts.io_timeout_ms <= 0)
		http->opts.io_timeout_ms = HTTP_DEFAULT_IO_TIMEOUT_MS;
	if (http->opts.max_attempts < 1)
		http->opts.max_attempts = 1;
	if (http->opts.retry_base_ms < 1)
		http->opts.retry_base_ms = 1;
	if (http->opts.retry_max_ms < http->opts.retry_base_ms)
		http->opts.retry_max_ms = http->opts.retry_base_ms;
	http->name = strdup(opts->name ? opts->name : "http");
	http->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
	if (!http->name || (opts->ca_file && !http->ca_file)) {
		cairn_http_free(http);
		snprintf(err, err_len, "out of memory");
		return CAIRN_ENOMEM;
	}
	http->opts.name = http->name;
	http->opts.ca_file = http->ca_file;
	pthread_mutex_init(&http->lock, NULL);
	*out = http;
	return 0;
}

void cairn_http_free(cairn_http *http)
{
	size_t i;

	if (!http)
		return;
	for (i = 0; i < http->idle_count; i++)
		curl_easy_cleanup(http->idle[i]);
	pthread_mutex_destroy(&http->lock);
	free(http->name);
	free(http->ca_file);
	free(http);
}

static CURL *handle_acquire(cairn_http *http)
{
	CURL *h = NULL;

	pthread_mutex_lock(&http->lock);
	if (http->idle_count)
		h = http->idle[--http->idle_count];
	pthread_mutex_unlock(&http->lock);
	if (h)
		curl_easy_reset(h); /* keeps its open connection */
	else
		h = curl_easy_init();
	return h;
}

static void handle_release(cairn_http *http, CURL *h)
{
	pthread_mutex_lock(&http->lock);
	if (http->idle_count < HTTP_IDLE_HANDLES_MAX) {
		http->idle[http->idle_count++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&http->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- libcurl callbacks --------------------------------------------------- */

static int status_is_success(long status)
{
	return status >= 200 && status < 300;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	http_transfer *t = arg;
	size_t len = size * n, end = len;
	char *line;

	while (end && (data[end - 1] == '\r' || data[end - 1] == '\n'))
		end--;
	/* A status line starts a response: an interim 100 Continue is forgotten. */
	if (end >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', end);

		t->resp->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		cairn_http_headers_clear(&t->resp->headers);
		return len;
	}
	if (end == 0 || !memchr(data, ':', end))
		return len;
	if (!(line = malloc(end + 1))) {
		t->oom = 1;
		return 0;
	}
	memcpy(line, data, end);
	line[end] = '\0';
	if (headers_push(&t->resp->headers, line) < 0) {
		t->oom = 1;
		return 0;
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	http_transfer *t = arg;
	cairn_http_response *resp = t->resp;
	size_t len = size * n, room;
	int success = status_is_success(resp->status);

	if (success && t->req->sink) {
		int rc = t->req->sink(t->req->sink_arg, data, len);

		if (rc < 0) {
			t->sink_error = rc;
			return 0;
		}
		return len;
	}
	if (resp->body_len + len > t->body_cap) {
		if (success) {
			t->too_large = 1;
			return 0;
		}
		len = t->body_cap - resp->body_len; /* keep the start of an error document */
	}
	room = resp->body_len + len + 1;
	if (len) {
		char *grown = realloc(resp->body, room);

		if (!grown) {
			t->oom = 1;
			return 0;
		}
		resp->body = grown;
		memcpy(resp->body + resp->body_len, data, len);
		resp->body_len += len;
		resp->body[resp->body_len] = '\0';
	}
	return size * n;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	http_transfer *t = arg;
	const cairn_http_request *req = t->req;
	size_t want = size * n;

	if (req->body_read) {
		long got = req->body_read(req->body_arg, buf, want);

		if (got < 0) {
			t->body_error = (int)got;
			return CURL_READFUNC_ABORT;
		}
		if (got > 0)
			t->body_started = 1;
		return (size_t)got;
	}
	if (want > req->body_len - t->body_offset)
		want = req->body_len - t->body_offset;
	memcpy(buf, (const char *)req->body + t->body_offset, want);
	t->body_offset += want;
	return want;
}

/* libcurl rewinds the body when it must resend it (a redirect, auth, a reused dead connection). */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	http_transfer *t = arg;

	if (origin != SEEK_SET || offset != 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (t->req->body_read) {
		if (!t->req->body_rewind || t->req->body_rewind(t->req->body_arg) < 0)
			return CURL_SEEKFUNC_CANTSEEK;
		return CURL_SEEKFUNC_OK;
	}
	t->body_offset = 0;
	return CURL_SEEKFUNC_OK;
}

/* ---- one attempt --------------------------------------------------------- */

static int setup_handle(cairn_http *http, CURL *h, const cairn_http_request *req,
                        struct curl_slist *headers, http_transfer *t, char *errbuf)
{
	const cairn_http_options *o = &http->opts;
	int has_body = req->body_read || req->body_len || strcmp(req->method, "PUT") == 0 ||
	               strcmp(req->method, "POST") == 0;
	CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(h, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	/* No byte moved for io_timeout: a stalled transfer fails, a slow big one does not. */
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, (o->io_timeout_ms + 999) / 1000);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_SSL_VERIFYPEER, o->insecure_skip_verify ? 0L : 1L);
	SET(CURLOPT_SSL_VERIFYHOST, o->insecure_skip_verify ? 0L : 2L);
	if (o->ca_file)
		SET(CURLOPT_CAINFO, o->ca_file);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, t);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, t);
	if (strcmp(req->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (has_body) {
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_CUSTOMREQUEST, req->method);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, t);
		SET(CURLOPT_SEEKFUNCTION, on_seek);
		SET(CURLOPT_SEEKDATA, t);
		SET(CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)(req->body_read ? req->body_size : (int64_t)req->body_len));
		SET(CURLOPT_EXPECT_100_TIMEOUT_MS, 2000L);
	} else if (strcmp(req->method, "GET") != 0) {
		SET(CURLOPT_CUSTOMREQUEST, req->method);
	}
#undef SET
	return rc == CURLE_OK ? 0 : -1;
}

static int curl_code_is_transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

static int status_is_transient(long status)
{
	switch (status) {
	case 408:
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return 1;
	default:
		return 0;
	}
}

/* Backoff before retry number `retry` (1, 2, ...): half fixed, half random. */
static long backoff_ms(const cairn_http_options *o, int retry, const cairn_http_response *resp)
{
	long delay = o->retry_base_ms, half;
	uint32_t r = 0;
	const char *after;
	int i;

	for (i = 1; i < retry && delay < o->retry_max_ms; i++)
		delay *= 2;
	if (delay > o->retry_max_ms)
		delay = o->retry_max_ms;
	half = delay / 2;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)time(NULL) * 2654435761u;
	delay = half + (long)(r % (uint32_t)(delay - half + 1));
	/* A server that says when to come back is believed, within the cap. */
	after = cairn_http_headers_get(&resp->headers, "Retry-After");
	if (after && *after >= '0' && *after <= '9') {
		long ms = strtol(after, NULL, 10) * 1000;

		if (ms > delay)
			delay = ms < o->retry_max_ms ? ms : o->retry_max_ms;
	}
	return delay;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static struct curl_slist *to_slist(const cairn_http_headers *h)
{
	struct curl_slist *list = NULL, *next;
	size_t i;

	/* curl adds "Expect: 100-continue" and "Accept: * / *" itself; an empty value removes one. */
	if (!(list = curl_slist_append(NULL, "Accept:")))
		return NULL;
	for (i = 0; i < h->count; i++) {
		if (!(next = curl_slist_append(list, h->lines[i]))) {
			curl_slist_free_all(list);
			return NULL;
		}
		list = next;
	}
	return list;
}

int cairn_http_perform(cairn_http *http, const cairn_http_request *req, cairn_http_response *resp)
{
	const cairn_http_options *o = &http->opts;
	cairn_http_headers headers = {NULL, 0, 0};
	char where[512], errbuf[CURL_ERROR_SIZE], why[CURL_ERROR_SIZE + 64];
	CURL *h = NULL;
	int error = 0, attempt;
	int max_attempts = req->min_attempts > o->max_attempts ? req->min_attempts : o->max_attempts;

	cairn_http_display_url(req->url, where, sizeof(where));
	if (!(h = handle_acquire(http))) {
		set_error(resp, "%s %s: cannot create a libcurl handle", req->method, where);
		return CAIRN_ENOMEM;
	}
	for (attempt = 1;; attempt++) {
		struct curl_slist *list = NULL;
		http_transfer t;
		CURLcode rc;
		int transient = 0;

		memset(&t, 0, sizeof(t));
		t.req = req;
		t.resp = resp;
		t.body_cap = req->body_max ? req->body_max : HTTP_DEFAULT_BODY_MAX;
		cairn_http_headers_clear(&resp->headers);
		free(resp->body);
		resp->body = NULL;
		resp->body_len = 0;
		resp->status = 0;
		resp->error[0] = '\0';
		resp->attempts = attempt;
		errbuf[0] = '\0';

		cairn_http_headers_clear(&headers);
		if ((error = req->prepare(req->prepare_arg, attempt, &headers, resp->error,
		                          sizeof(resp->error))) < 0)
			break;
		if (attempt > 1 && req->body_read && req->body_rewind &&
		    (error = req->body_rewind(req->body_arg)) < 0) {
			set_error(resp, "%s %s: cannot rewind the request body", req->method, where);
			break;
		}
		if (!(list = to_slist(&headers))) {
			error = CAIRN_ENOMEM;
			set_error(resp, "out of memory");
			break;
		}
		curl_easy_reset(h);
		if (setup_handle(http, h, req, list, &t, errbuf) < 0) {
			curl_slist_free_all(list);
			error = CAIRN_ERROR;
			set_error(resp, "%s %s: libcurl refused an option", req->method, where);
			break;
		}
		rc = curl_easy_perform(h);
		curl_slist_free_all(list);
		if (t.oom) {
			error = CAIRN_ENOMEM;
			set_error(resp, "out of memory");
			break;
		}
		if (t.sink_error) {
			error = t.sink_error;
			break;
		}
		if (t.body_error) {
			error = t.body_error;
			set_error(resp, "%s %s: the request body could not be read", req->method, where);
			break;
		}
		if (t.too_large) {
			error = CAIRN_ERROR;
			set_error(resp, "%s %s: response larger than %zu bytes", req->method, where,
			          t.body_cap);
			break;
		}
		if (rc != CURLE_OK) {
			snprintf(why, sizeof(why), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
			transient = curl_code_is_transient(rc);
			resp->status = 0;
			error = CAIRN_ENETWORK;
			if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
				set_error(resp, "%s %s: TLS verification failed: %s", req->method, where,
				          why);
			else
				set_error(resp, "%s %s: %s", req->method, where, why);
		} else {
			error = 0;
			if (status_is_transient(resp->status) ||
			    (req->retryable && req->retryable(req->retryable_arg, resp->status,
			                                      resp->body ? resp->body : "",
			                                      resp->body_len)))
				transient = 1;
			snprintf(why, sizeof(why), "HTTP %ld", resp->status);
		}
		if (!transient)
			break;
		if (attempt >= max_attempts) {
			if (error < 0)
				set_error(resp, "%s %s: %s (gave up after %d attempt%s)", req->method,
				          where, why, attempt, attempt == 1 ? "" : "s");
			break;
		}
		if (req->body_read && t.body_started && !req->body_rewind)
			break;
		{
			long ms = backoff_ms(o, attempt, resp);

			if (o->log)
				o->log(CAIRN_LOG_WARN, "%s: %s %s: %s; retry %d of %d in %ld ms", o->name,
				       req->method, where, why, attempt, max_attempts - 1, ms);
			sleep_ms(ms);
		}
	}
	cairn_http_headers_free(&headers);
	/* A handle whose transfer failed may hold a broken connection: drop it. */
	if (error < 0)
		curl_easy_cleanup(h);
	else
		handle_release(http, h);
	return error;
}
