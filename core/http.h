/*
 * http.h - the HTTP client shared by the cloud storages (s3 now, gcs and
 * azure later): libcurl underneath, retries with exponential backoff and
 * jitter, a fresh signature on every attempt, and messages that name the
 * endpoint but never a credential.
 *
 * This is not part of libcairn, which must not depend on libcurl: it is a
 * convenience library (libcairnhttp.la) that each cloud storage plugin links
 * into itself. It reports through caller-owned buffers rather than the
 * host's per-thread error, so that worker threads of a plugin can carry a
 * message back to the thread that called the plugin.
 *
 * Threads: a client may be used from several threads at once; a request and
 * its response belong to one thread. Idle connections are kept in the client
 * and reused (keep-alive, TLS sessions).
 *
 * What is retried: connection failures, timeouts, resets, and the statuses
 * 408, 429, 500, 502, 503 and 504, plus whatever the request's `retryable`
 * hook accepts (S3's 400 RequestTimeout). Every other response is final and
 * returned to the caller, which words the error from its body.
 */
#ifndef CAIRN_HTTP_H
#define CAIRN_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <cairn/plugin.h>

typedef struct cairn_http cairn_http;

typedef struct cairn_http_options {
	const char *name;         /* in log lines: "s3" */
	long connect_timeout_ms;  /* 0: 10 s */
	long io_timeout_ms;       /* a transfer moving no byte this long fails; 0: 60 s */
	const char *ca_file;      /* NULL: the system's trust store */
	int insecure_skip_verify; /* no TLS verification: only when the user named it */
	int max_attempts;         /* tries of one request, first included; < 1 means 1 */
	long retry_base_ms;       /* first backoff; doubles each retry */
	long retry_max_ms;        /* longest backoff */
	/* Where retries are reported (WARN); may be NULL. Must be thread-safe. */
	void (*log)(cairn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
} cairn_http_options;

/* A list of "Name: value" header lines. Zero-initialise; free with _free. */
typedef struct cairn_http_headers {
	char **lines;
	size_t count;
	size_t cap;
} cairn_http_headers;

/* Appends "name: value"; CAIRN_ENOMEM on failure. */
int cairn_http_headers_add(cairn_http_headers *h, const char *name, const char *value);
/* Value of the first header called `name` (case-insensitive), NULL if none. */
const char *cairn_http_headers_get(const cairn_http_headers *h, const char *name);
void cairn_http_headers_clear(cairn_http_headers *h);
void cairn_http_headers_free(cairn_http_headers *h);

typedef struct cairn_http_request {
	const char *method; /* GET, HEAD, PUT, POST, DELETE */
	const char *url;    /* only scheme://host/path of it ever reaches a message */

	/* Body: a buffer (body, body_len) ... */
	const void *body;
	size_t body_len;
	/*
	 * ... or, when body_read is set, a callback giving up to len bytes (0 at
	 * the end, negative to fail) of body_size bytes (-1: unknown, sent
	 * chunked). Without body_rewind a request is not retried once its body
	 * started.
	 */
	long (*body_read)(void *arg, char *buf, size_t len);
	int (*body_rewind)(void *arg);
	void *body_arg;
	int64_t body_size;

	/*
	 * Must provide. Called before every attempt (1, 2, ...) with `headers`
	 * emptied: adds all headers of that attempt, signature included, so a
	 * retry is signed afresh. A negative return ends the request with that
	 * code and the message written to err.
	 */
	int (*prepare)(void *arg, int attempt, cairn_http_headers *headers, char *err,
	               size_t err_len);
	void *prepare_arg;

	/*
	 * A 2xx body goes to sink when it is set (a negative return stops the
	 * transfer and is returned as is); otherwise it is collected into the
	 * response, up to body_max bytes (0: 1 MiB; more is an error).
	 */
	cairn_sink_fn sink;
	void *sink_arg;
	size_t body_max;

	/*
	 * May provide: whether a final response should be retried beyond the
	 * transient statuses (the body is there when it was collected).
	 */
	int (*retryable)(void *arg, long status, const char *body, size_t len);
	void *retryable_arg;

	/*
	 * Attempts at least, whatever the client's budget (0: the client's).
	 * For requests whose failure leaves something behind, such as the
	 * abort of a multipart upload.
	 */
	int min_attempts;
} cairn_http_request;

typedef struct cairn_http_response {
	long status;                /* of the last attempt; 0 when nothing answered */
	cairn_http_headers headers; /* of the last attempt, as received */
	char *body;                 /* collected body, NUL-terminated; non-2xx: first 64 KiB */
	size_t body_len;
	int attempts;               /* how many were made */
	char error[512];            /* why, when perform returns < 0 */
} cairn_http_response;

/* Frees what a response holds and zeroes it; accepts a zeroed one. */
void cairn_http_response_free(cairn_http_response *resp);

/*
 * Creates a client. CAIRN_ENOMEM or CAIRN_EINVALID with the reason in err.
 * Call from one thread before any other thread uses libcurl (it runs
 * curl_global_init once per process).
 */
int cairn_http_new(cairn_http **out, const cairn_http_options *opts, char *err, size_t err_len);
void cairn_http_free(cairn_http *http);

/*
 * Sends a request, retrying what is retryable within the client's budget.
 * Returns 0 when a final response arrived, whatever its status (the caller
 * judges resp->status and words the error from resp->body); CAIRN_ENETWORK
 * when no usable response arrived (resp->error names the endpoint and the
 * cause), or the negative code of prepare, the body callback or the sink.
 * resp must be zeroed or freed before; the caller frees it afterwards.
 */
int cairn_http_perform(cairn_http *http, const cairn_http_request *req, cairn_http_response *resp);

/* Writes scheme://host[:port]/path of url (no user info, no query) into out. */
void cairn_http_display_url(const char *url, char *out, size_t len);

#endif
