/*
 * s3.c - the "s3" storage: a repository in a bucket of AWS S3 or of an
 * S3-compatible server (MinIO, versitygw, SeaweedFS, Ceph RGW ...), at
 * s3://bucket/prefix.
 *
 * The key "packs/ab/cd" is the object <prefix>/packs/ab/cd. Requests are
 * signed with Signature Version 4 (sigv4.c) over the real SHA-256 of every
 * body, and sent through the shared HTTP client (core/http.c), which retries
 * transient failures with backoff and re-signs every attempt.
 *
 * A put buffers up to one part. An object that fits is sent with one PUT,
 * so it appears whole or not at all (CAIRN_STORAGE_CAP_ATOMIC_PUT). A larger
 * one becomes a multipart upload: full parts are handed to worker threads,
 * at most upload-concurrency at once, while the caller goes on writing; the
 * part size doubles every 1,000 parts so that an object of unknown size
 * never needs more than S3's 10,000. Memory per upload is at most
 * (upload-concurrency + 1) parts. Every failure path aborts the multipart
 * upload so that no invisible parts are left to pay for.
 *
 * Threads: the core may call into one storage from several threads, each
 * upload from one thread at a time. The storage is read-only after open
 * except for the credentials, which instance-metadata credentials refresh
 * under a lock, and one flag remembering that the server lacks
 * DeleteObjects. Worker threads never call host->error (whose message is
 * per thread): they keep their message in their job, and the thread that
 * called the plugin reports it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <cairn/plugin.h>
#include <cairn/util.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "sigv4.h"

#define S3_MIB (1024u * 1024u)
/* S3's limits: parts of 5 MiB to 5 GiB (the last may be smaller), 10,000 of them. */
#define S3_PART_SIZE_MIN ((uint64_t)5 * S3_MIB)
#define S3_PART_SIZE_MAX ((uint64_t)5 * 1024 * S3_MIB)
#define S3_PARTS_MAX 10000
/* The part size doubles after every this many parts (see s3_part_limit). */
#define S3_PARTS_PER_SIZE 1000
#define S3_DELETE_BATCH 1000
#define S3_CONCURRENCY_MAX 64
/* A small object never costs a whole part of memory: the buffer grows from here. */
#define S3_BUFFER_INITIAL (64 * 1024)
/* A ListObjectsV2 page of 1,000 keys is well under this. */
#define S3_LIST_BODY_MAX (16 * S3_MIB)
/* Instance-metadata credentials are renewed this long before they expire. */
#define S3_CREDENTIALS_REFRESH_BEFORE 300
#define S3_MESSAGE_MAX 1024
/* Attempts at least of an AbortMultipartUpload (see s3_multipart_abort). */
#define S3_ABORT_ATTEMPTS_MIN 16
#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

/* Requests share only the connection pool and the credentials, both locked. */
#define S3_CAPS (CAIRN_STORAGE_CAP_ATOMIC_PUT | CAIRN_STORAGE_CAP_RANGE_GET | \
                 CAIRN_STORAGE_CAP_LIST_SIZES | CAIRN_STORAGE_CAP_CONCURRENT_GET)

typedef struct s3_credentials {
	char *access_key;
	char *secret_key;
	char *token;     /* NULL without a session token */
	time_t expires;  /* 0: never (static credentials) */
	char source[256]; /* where they came from, for messages */
} s3_credentials;

typedef struct s3_storage {
	cairn_storage base; /* first: the host holds a pointer to it */
	const cairn_host *host;
	cairn_http *http;
	char *bucket;
	char *prefix;      /* "" or "dir/sub/" (with the trailing '/') */
	char *url_base;    /* "https://bucket.s3.us-east-1.amazonaws.com" or "http://127.0.0.1:9000" */
	char *host_header; /* host[:port] of url_base */
	char *path_base;   /* "/bucket" (path style) or "" (virtual-hosted style) */
	char *endpoint;    /* as shown in messages: scheme://host[:port] */
	char *region;
	char *storage_class; /* NULL: the bucket's default */
	char *sse;           /* NULL, "AES256" or "aws:kms" */
	char *sse_kms_id;
	uint64_t part_size;
	int concurrency;
	int max_attempts;
	int batch_delete_unsupported; /* atomic: the server answered NotImplemented once */
	int not_found_is_no_such_key; /* atomic: a HEAD 404 proved to mean NoSuchKey once */

	pthread_mutex_t credentials_lock;
	s3_credentials credentials;
	cairn_http *imds;      /* set when the credentials come from instance metadata */
	char *imds_endpoint;
} s3_storage;

/* A growing byte buffer. */
typedef struct s3_buffer {
	unsigned char *data;
	size_t len;
	size_t cap;
} s3_buffer;

typedef enum s3_job_state { S3_JOB_IDLE = 0, S3_JOB_RUNNING, S3_JOB_FINISHED } s3_job_state;

/* One part being uploaded by a worker thread. */
typedef struct s3_part_job {
	struct cairn_upload *up;
	pthread_t thread;
	s3_job_state state; /* under up->lock */
	int number;
	s3_buffer buf;
	char etag[128];
	int error;
	char message[S3_MESSAGE_MAX];
} s3_part_job;

struct cairn_upload {
	s3_storage *st;
	char *key;         /* object key in the bucket: prefix included */
	s3_buffer fill;    /* the part being written */
	uint64_t limit;    /* size at which `fill` is sent as a part */
	uint64_t total;    /* bytes written so far */
	char *upload_id;   /* NULL until the object needs more than one part */
	int parts;         /* parts handed out so far */
	char **etags;      /* [parts]: ETag of each finished part */
	s3_part_job *jobs; /* [st->concurrency] */
	pthread_mutex_t lock;
	pthread_cond_t finished;
	int failed;        /* atomic: a part failed, the other jobs stop retrying */
	int error;         /* first failure, reported by the caller's thread */
	char message[S3_MESSAGE_MAX];
};

/* ---- small helpers ------------------------------------------------------- */

/* snprintf for messages, where cutting a long path short is the right thing. */
static void s3_format(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s3_format(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

static int s3_oom(const s3_storage *st)
{
	return st->host->error(CAIRN_ENOMEM, "out of memory in storage s3");
}

static int s3_buffer_reserve(s3_buffer *b, size_t need, size_t max)
{
	size_t cap;
	unsigned char *grown;

	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : S3_BUFFER_INITIAL;
	while (cap < need)
		cap *= 2;
	if (cap > max)
		cap = max > need ? max : need;
	if (!(grown = realloc(b->data, cap)))
		return CAIRN_ENOMEM;
	b->data = grown;
	b->cap = cap;
	return 0;
}

static void s3_buffer_free(s3_buffer *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static char *s3_strdup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* Allocates the URI encoding of s; NULL when out of memory. */
static char *s3_encode(const char *s, int keep_slash)
{
	size_t n = s3_uri_encode(s, keep_slash, NULL, 0);
	char *out = malloc(n + 1);

	if (out)
		s3_uri_encode(s, keep_slash, out, n + 1);
	return out;
}

/* Appends text to b with &, <, >, " and ' escaped for XML. */
static int s3_xml_escape(s3_buffer *b, const char *text)
{
	for (; *text; text++) {
		const char *rep = NULL;
		char one[2] = {*text, 0};
		size_t n;

		switch (*text) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		default: rep = one; break;
		}
		n = strlen(rep);
		if (s3_buffer_reserve(b, b->len + n + 1, SIZE_MAX) < 0)
			return CAIRN_ENOMEM;
		memcpy(b->data + b->len, rep, n);
		b->len += n;
		b->data[b->len] = 0;
	}
	return 0;
}

static int s3_buffer_puts(s3_buffer *b, const char *text)
{
	size_t n = strlen(text);

	if (s3_buffer_reserve(b, b->len + n + 1, SIZE_MAX) < 0)
		return CAIRN_ENOMEM;
	memcpy(b->data + b->len, text, n + 1);
	b->len += n;
	return 0;
}

/* ---- a little XML and JSON ----------------------------------------------- */

/*
 * S3 answers with small, flat XML documents. xml_find looks for the element
 * <tag>...</tag> in [p, end) and returns its raw content; xml_text decodes
 * the five entities and numeric references into out. No document S3 sends
 * needs more, and nothing here trusts the input to be well formed.
 */
static int xml_find(const char *p, const char *end, const char *tag, const char **content,
                    size_t *len, const char **after)
{
	char open[64], close[64];
	size_t on, cn;
	const char *s, *e;

	on = (size_t)snprintf(open, sizeof(open), "<%s>", tag);
	cn = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
	if (!p || on >= sizeof(open) || cn >= sizeof(close))
		return 0;
	if (!(s = memmem(p, (size_t)(end - p), open, on)))
		return 0;
	s += on;
	if (!(e = memmem(s, (size_t)(end - s), close, cn)))
		return 0;
	*content = s;
	*len = (size_t)(e - s);
	if (after)
		*after = e + cn;
	return 1;
}

static void xml_text(const char *s, size_t len, char *out, size_t out_len)
{
	static const struct {
		const char *name;
		char c;
	} entities[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
	size_t i = 0, o = 0, k;

	if (!out_len)
		return;
	while (i < len && o + 1 < out_len) {
		char c = s[i];

		if (c == '&') {
			for (k = 0; k < sizeof(entities) / sizeof(entities[0]); k++) {
				size_t n = strlen(entities[k].name);

				if (len - i >= n && memcmp(s + i, entities[k].name, n) == 0) {
					out[o++] = entities[k].c;
					i += n;
					break;
				}
			}
			if (k < sizeof(entities) / sizeof(entities[0]))
				continue;
			if (len - i > 3 && s[i + 1] == '#') {
				const char *semi = memchr(s + i, ';', len - i);
				long v = s[i + 2] == 'x' ? strtol(s + i + 3, NULL, 16)
				                         : strtol(s + i + 2, NULL, 10);

				if (semi && v > 0 && v < 128) {
					out[o++] = (char)v;
					i = (size_t)(semi - s) + 1;
					continue;
				}
			}
		}
		out[o++] = c;
		i++;
	}
	out[o] = '\0';
}

/* Decoded text of the first <tag> in body, "" when absent. */
static void xml_get(const char *body, size_t len, const char *tag, char *out, size_t out_len)
{
	const char *content;
	size_t n;

	if (out_len)
		out[0] = '\0';
	if (body && xml_find(body, body + len, tag, &content, &n, NULL))
		xml_text(content, n, out, out_len);
}

/* The string value of "name" in a flat JSON object; 0 when absent. */
static int json_get(const char *body, const char *name, char *out, size_t out_len)
{
	char quoted[64];
	const char *p;
	size_t o = 0;

	snprintf(quoted, sizeof(quoted), "\"%s\"", name);
	if (!body || !(p = strstr(body, quoted)))
		return 0;
	p += strlen(quoted);
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p++ != ':')
		return 0;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p++ != '"')
		return 0;
	for (; *p && *p != '"' && o + 1 < out_len; p++) {
		if (*p == '\\' && p[1])
			p++;
		out[o++] = *p;
	}
	out[o] = '\0';
	return *p == '"';
}

/* ---- errors -------------------------------------------------------------- */

static int s3_is_auth_code(const char *code)
{
	static const char *const codes[] = {
	    "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken",
	    "InvalidToken", "TokenRefreshRequired", "InvalidSecurity", "AllAccessDisabled",
	    "AccountProblem",
	    "XAdminUserNotFound", /* versitygw's answer (with 404) to an unknown access key */
	    NULL};
	int i;

	for (i = 0; codes[i]; i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

static int s3_is_transient_status(long status)
{
	return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
	       status == 504;
}

/*
 * Words a final non-2xx response (or a 200 that carries an <Error>, as a
 * CompleteMultipartUpload may) into message and returns its code. The
 * message names the request and endpoint and the server's own code and
 * text; never a credential (the URL has none, and the query is left out).
 */
static int s3_response_error(const char *method, const char *url, const cairn_http_response *resp,
                             char *message, size_t len)
{
	char code[128], text[512], where[512], tries[64] = "";
	const char *hint = "";
	int error;

	cairn_http_display_url(url, where, sizeof(where));
	xml_get(resp->body, resp->body_len, "Code", code, sizeof(code));
	xml_get(resp->body, resp->body_len, "Message", text, sizeof(text));
	if (resp->attempts > 1)
		snprintf(tries, sizeof(tries), ", after %d attempts", resp->attempts);
	if (!code[0]) {
		/* HEAD answers carry no body: name the status instead. */
		switch (resp->status) {
		case 403: snprintf(code, sizeof(code), "AccessDenied"); break;
		case 404: snprintf(code, sizeof(code), "NotFound"); break;
		default: snprintf(code, sizeof(code), "HTTP %ld", resp->status); break;
		}
	}
	if (s3_is_auth_code(code) || resp->status == 401 || resp->status == 403)
		error = CAIRN_EAUTH;
	else if (strcmp(code, "NoSuchBucket") == 0 || strcmp(code, "PermanentRedirect") == 0 ||
	         strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
	         strcmp(code, "InvalidBucketName") == 0 || resp->status == 301)
		error = CAIRN_EINVALID;
	else if (resp->status == 404 &&
	         (strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NotFound") == 0))
		error = CAIRN_ENOTFOUND;
	else if (resp->status == 501 || strcmp(code, "NotImplemented") == 0)
		error = CAIRN_EUNSUPPORTED;
	else if (s3_is_transient_status(resp->status) || strcmp(code, "SlowDown") == 0 ||
	         strcmp(code, "RequestTimeout") == 0 || strcmp(code, "InternalError") == 0)
		error = CAIRN_ENETWORK;
	else
		error = CAIRN_ERROR;
	if (error == CAIRN_EAUTH)
		hint = "; check the access key, the secret key and the bucket's permissions";
	else if (strcmp(code, "NoSuchBucket") == 0)
		hint = "; create the bucket or fix the repository URL";
	else if (strcmp(code, "AuthorizationHeaderMalformed") == 0 || resp->status == 301)
		hint = "; check the region (s3-region, AWS_REGION)";
	s3_format(message, len, "%s %s: %s%s%s (HTTP %ld%s)%s", method, where, code,
	          text[0] ? ": " : "", text, resp->status, tries, hint);
	return error;
}

/* ---- credentials --------------------------------------------------------- */

static void s3_credentials_clear(s3_credentials *c)
{
	if (c->secret_key)
		OPENSSL_cleanse(c->secret_key, strlen(c->secret_key));
	if (c->token)
		OPENSSL_cleanse(c->token, strlen(c->token));
	free(c->access_key);
	free(c->secret_key);
	free(c->token);
	c->access_key = c->secret_key = c->token = NULL;
	c->expires = 0;
}

static int s3_credentials_set(s3_credentials *c, const char *access_key, const char *secret_key,
                              const char *token)
{
	s3_credentials_clear(c);
	c->access_key = strdup(access_key);
	c->secret_key = strdup(secret_key);
	c->token = token && *token ? strdup(token) : NULL;
	if (!c->access_key || !c->secret_key || (token && *token && !c->token))
		return CAIRN_ENOMEM;
	return 0;
}

/*
 * Reads the profile's keys from an AWS shared credentials file (INI:
 * [profile] then aws_access_key_id = ..., aws_secret_access_key = ...,
 * aws_session_token = ...). Returns 1 when found, 0 when the file or the
 * profile is missing, or a negative code with the reason in message.
 */
static int s3_credentials_from_file(s3_storage *st, const char *path, const char *profile,
                                    char *message, size_t len)
{
	char line[4096], access_key[256] = "", secret_key[256] = "", *token = NULL;
	int in_profile = 0, found = 0, error = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		if (errno == ENOENT)
			return 0;
		s3_format(message, len, "cannot read AWS credentials file %s: %s", path, strerror(errno));
		return CAIRN_EINVALID;
	}
	while (fgets(line, sizeof(line), f)) {
		char *l = cairn_trim(line), *eq, *name, *value;

		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *close = strchr(l, ']');

			if (close)
				*close = '\0';
			name = cairn_trim(l + 1);
			/* ~/.aws/config spells it [profile name]; the credentials file [name]. */
			if (strncmp(name, "profile ", 8) == 0)
				name = cairn_trim(name + 8);
			in_profile = strcmp(name, profile) == 0;
			found |= in_profile;
			continue;
		}
		if (!in_profile || !(eq = strchr(l, '=')))
			continue;
		*eq = '\0';
		name = cairn_trim(l);
		value = cairn_trim(eq + 1);
		if (strcmp(name, "aws_access_key_id") == 0)
			snprintf(access_key, sizeof(access_key), "%s", value);
		else if (strcmp(name, "aws_secret_access_key") == 0)
			snprintf(secret_key, sizeof(secret_key), "%s", value);
		else if (strcmp(name, "aws_session_token") == 0) {
			free(token);
			if (!(token = strdup(value))) {
				error = CAIRN_ENOMEM;
				break;
			}
		}
	}
	fclose(f);
	if (error == 0 && found) {
		if (!access_key[0] || !secret_key[0]) {
			s3_format(message, len,
			         "profile %s in AWS credentials file %s lacks aws_access_key_id or "
			         "aws_secret_access_key",
			         profile, path);
			error = CAIRN_EINVALID;
		} else if ((error = s3_credentials_set(&st->credentials, access_key, secret_key,
		                                       token)) == 0) {
			s3_format(st->credentials.source, sizeof(st->credentials.source),
			         "profile %s of %s", profile, path);
			error = 1;
		}
	}
	OPENSSL_cleanse(secret_key, sizeof(secret_key));
	if (token) {
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
	return error;
}

/* ---- instance metadata (IMDSv2) ------------------------------------------ */

typedef struct s3_plain_call {
	const char *token; /* IMDSv2 session token, or NULL */
	int want_token;    /* asking for one */
} s3_plain_call;

static int s3_imds_prepare(void *arg, int attempt, cairn_http_headers *h, char *err, size_t len)
{
	s3_plain_call *c = arg;
	int error = 0;

	(void)attempt;
	if (c->want_token)
		error = cairn_http_headers_add(h, "X-aws-ec2-metadata-token-ttl-seconds", "21600");
	else if (c->token)
		error = cairn_http_headers_add(h, "X-aws-ec2-metadata-token", c->token);
	if (error < 0)
		s3_format(err, len, "out of memory");
	return error;
}

/* One request to the metadata service; the body is returned in resp. */
static int s3_imds_get(s3_storage *st, const char *method, const char *path, s3_plain_call *c,
                       cairn_http_response *resp, char *message, size_t len)
{
	char url[1024];
	cairn_http_request req;
	int error;

	memset(&req, 0, sizeof(req));
	s3_format(url, sizeof(url), "%s%s", st->imds_endpoint, path);
	req.method = method;
	req.url = url;
	req.prepare = s3_imds_prepare;
	req.prepare_arg = c;
	req.body_max = 64 * 1024;
	cairn_http_response_free(resp);
	if ((error = cairn_http_perform(st->imds, &req, resp)) < 0) {
		s3_format(message, len, "%s", resp->error);
		return error;
	}
	if (resp->status != 200) {
		s3_format(message, len, "%s %s answered HTTP %ld", method, url, resp->status);
		return resp->status == 401 || resp->status == 403 ? CAIRN_EAUTH : CAIRN_ERROR;
	}
	return 0;
}

static time_t s3_parse_iso8601(const char *text)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!strptime(text, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return timegm(&tm);
}

/*
 * Fetches the instance role's credentials: a session token (PUT
 * /latest/api/token), the role name, then its keys. Called at open and,
 * under credentials_lock, when they are about to expire.
 */
static int s3_credentials_from_imds(s3_storage *st, char *message, size_t len)
{
	cairn_http_response resp;
	s3_plain_call call = {NULL, 1};
	char *token = NULL, role[256], path[512], access_key[256], secret_key[256],
	     session[4096], expiration[64];
	int error;

	memset(&resp, 0, sizeof(resp));
	if ((error = s3_imds_get(st, "PUT", "/latest/api/token", &call, &resp, message, len)) < 0)
		goto done;
	if (!resp.body || !(token = strdup(cairn_trim(resp.body)))) {
		error = CAIRN_ENOMEM;
		goto done;
	}
	call.want_token = 0;
	call.token = token;
	if ((error = s3_imds_get(st, "GET", "/latest/meta-data/iam/security-credentials/", &call,
	                         &resp, message, len)) < 0)
		goto done;
	snprintf(role, sizeof(role), "%.*s", (int)strcspn(resp.body ? resp.body : "", "\r\n"),
	         resp.body ? resp.body : "");
	if (!role[0]) {
		s3_format(message, len, "the instance has no IAM role");
		error = CAIRN_EAUTH;
		goto done;
	}
	s3_format(path, sizeof(path), "/latest/meta-data/iam/security-credentials/%s", role);
	if ((error = s3_imds_get(st, "GET", path, &call, &resp, message, len)) < 0)
		goto done;
	if (!json_get(resp.body, "AccessKeyId", access_key, sizeof(access_key)) ||
	    !json_get(resp.body, "SecretAccessKey", secret_key, sizeof(secret_key))) {
		s3_format(message, len, "the credentials of role %s lack AccessKeyId or SecretAccessKey",
		         role);
		error = CAIRN_EAUTH;
		goto done;
	}
	if (!json_get(resp.body, "Token", session, sizeof(session)))
		session[0] = '\0';
	if ((error = s3_credentials_set(&st->credentials, access_key, secret_key, session)) < 0)
		goto done;
	if (json_get(resp.body, "Expiration", expiration, sizeof(expiration)))
		st->credentials.expires = s3_parse_iso8601(expiration);
	s3_format(st->credentials.source, sizeof(st->credentials.source),
	         "instance metadata at %s (role %s)", st->imds_endpoint, role);
done:
	if (resp.body)
		OPENSSL_cleanse(resp.body, resp.body_len);
	cairn_http_response_free(&resp);
	OPENSSL_cleanse(secret_key, sizeof(secret_key));
	OPENSSL_cleanse(session, sizeof(session));
	if (token) {
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
	return error;
}

/*
 * Finds credentials the way AWS's tools do: settings (from the environment:
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then the
 * shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
 * ~/.aws/credentials, profile AWS_PROFILE or "default"), then the instance
 * metadata service unless AWS_EC2_METADATA_DISABLED.
 */
static int s3_credentials_resolve(s3_storage *st, char *message, size_t len)
{
	const cairn_host *host = st->host;
	const char *access_key = host->config_get("aws-access-key-id");
	const char *secret_key = host->config_get("aws-secret-access-key");
	const char *token = host->config_get("aws-session-token");
	const char *profile = host->config_get("aws-profile");
	const char *file = host->config_get("aws-shared-credentials-file");
	const char *home = getenv("HOME");
	char default_file[4096], why_file[512] = "", imds_why[S3_MESSAGE_MAX];
	cairn_http_options opts;
	int error;

	if ((access_key && *access_key) || (secret_key && *secret_key)) {
		if (!access_key || !*access_key || !secret_key || !*secret_key) {
			s3_format(message, len, "%s is set but %s is not",
			         access_key && *access_key ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			         access_key && *access_key ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
			return CAIRN_EINVALID;
		}
		if ((error = s3_credentials_set(&st->credentials, access_key, secret_key, token)) < 0)
			return error;
		s3_format(st->credentials.source, sizeof(st->credentials.source),
		         "the environment or settings");
		return 0;
	}
	if (!file || !*file) {
		s3_format(default_file, sizeof(default_file), "%s/.aws/credentials", home ? home : "");
		file = home && *home ? default_file : NULL;
	}
	if (file) {
		error = s3_credentials_from_file(st, file, profile && *profile ? profile : "default",
		                                 message, len);
		if (error != 0)
			return error < 0 ? error : 0;
		if (profile && *profile) {
			s3_format(message, len, "AWS profile %s not found in %s", profile, file);
			return CAIRN_EINVALID;
		}
		s3_format(why_file, sizeof(why_file), ", no [default] profile in %s", file);
	}
	if (host->config_bool("aws-ec2-metadata-disabled")) {
		s3_format(message, len,
		         "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not "
		         "set%s, and AWS_EC2_METADATA_DISABLED turns off the instance metadata service",
		         why_file);
		return CAIRN_EINVALID;
	}
	memset(&opts, 0, sizeof(opts));
	opts.name = "s3 instance metadata";
	opts.connect_timeout_ms = 1000;
	opts.io_timeout_ms = 5000;
	opts.max_attempts = 2;
	opts.retry_base_ms = 200;
	opts.retry_max_ms = 1000;
	opts.log = NULL; /* off EC2 nothing answers there: that is no news worth a warning */
	if (!(st->imds_endpoint = strdup(host->config_get("aws-ec2-metadata-endpoint")
	                                     ? host->config_get("aws-ec2-metadata-endpoint")
	                                     : "http://169.254.169.254")))
		return CAIRN_ENOMEM;
	{
		size_t n = strlen(st->imds_endpoint);

		while (n && st->imds_endpoint[n - 1] == '/')
			st->imds_endpoint[--n] = '\0';
	}
	if ((error = cairn_http_new(&st->imds, &opts, message, len)) < 0)
		return error;
	if ((error = s3_credentials_from_imds(st, imds_why, sizeof(imds_why))) < 0) {
		s3_format(message, len,
		         "no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not "
		         "set%s, and the instance metadata service gave none (%s)",
		         why_file, imds_why);
		return error == CAIRN_ENOMEM ? error : CAIRN_EINVALID;
	}
	return 0;
}

/*
 * Copies the current credentials for one signature, renewing instance
 * credentials first when they expire soon. The copies are freed (and
 * wiped) with s3_credentials_clear.
 */
static int s3_credentials_snapshot(s3_storage *st, s3_credentials *out, char *message, size_t len)
{
	int error = 0;

	pthread_mutex_lock(&st->credentials_lock);
	if (st->imds && st->credentials.expires &&
	    time(NULL) + S3_CREDENTIALS_REFRESH_BEFORE >= st->credentials.expires) {
		char why[S3_MESSAGE_MAX];

		if ((error = s3_credentials_from_imds(st, why, sizeof(why))) < 0)
			s3_format(message, len, "cannot renew credentials from %s: %s",
			         st->imds_endpoint, why);
	}
	if (error == 0 && (error = s3_credentials_set(out, st->credentials.access_key,
	                                              st->credentials.secret_key,
	                                              st->credentials.token)) < 0)
		s3_format(message, len, "out of memory");
	pthread_mutex_unlock(&st->credentials_lock);
	return error;
}

/* ---- signed requests ----------------------------------------------------- */

/* One S3 request; prepare (below) signs it afresh for every attempt. */
typedef struct s3_call {
	s3_storage *st;
	const char *method;
	const char *key;   /* object key in the bucket, NULL for the bucket itself */
	const char *query; /* "" or "a=1&b=2" with encoded values */
	const void *body;
	size_t body_len;
	char payload_hash[S3_SHA256_HEX_LEN + 1];
	const char *extra[16]; /* signed headers: name, value, ..., NULL */
	char range[64];        /* "bytes=a-b" or "": set per attempt by on_attempt */
	void (*on_attempt)(struct s3_call *c, int attempt);
	void *on_attempt_arg;
	int *cancel;           /* non-zero (atomic): stop before the next attempt */
	int min_attempts;      /* see cairn_http_request */
	cairn_sink_fn sink;
	void *sink_arg;
	size_t body_max;
	char *path; /* as sent, URI-encoded */
	char *url;
} s3_call;

/* A request to prepare: everything zero but what every request names. */
static void s3_call_init(s3_call *c, cairn_http_response *resp, s3_storage *st,
                         const char *method, const char *key, const char *query)
{
	memset(c, 0, sizeof(*c));
	memset(resp, 0, sizeof(*resp));
	c->st = st;
	c->method = method;
	c->key = key;
	c->query = query;
}

static void s3_call_free(s3_call *c)
{
	free(c->path);
	free(c->url);
	c->path = c->url = NULL;
}

static int s3_call_build_url(s3_call *c)
{
	const s3_storage *st = c->st;
	char *encoded = NULL;
	size_t n;

	if (c->key && !(encoded = s3_encode(c->key, 1)))
		return CAIRN_ENOMEM;
	n = strlen(st->path_base) + (encoded ? strlen(encoded) : 0) + 2;
	if (!(c->path = malloc(n))) {
		free(encoded);
		return CAIRN_ENOMEM;
	}
	if (encoded)
		snprintf(c->path, n, "%s/%s", st->path_base, encoded);
	else
		snprintf(c->path, n, "%s", st->path_base[0] ? st->path_base : "/");
	free(encoded);
	n = strlen(st->url_base) + strlen(c->path) + strlen(c->query ? c->query : "") + 2;
	if (!(c->url = malloc(n)))
		return CAIRN_ENOMEM;
	snprintf(c->url, n, "%s%s%s%s", st->url_base, c->path, c->query && *c->query ? "?" : "",
	         c->query ? c->query : "");
	return 0;
}

static int s3_prepare(void *arg, int attempt, cairn_http_headers *h, char *err, size_t len)
{
	s3_call *c = arg;
	s3_storage *st = c->st;
	s3_credentials cred;
	s3_sigv4_header sig[24];
	s3_sigv4_request req;
	char amz_date[32], *auth = NULL;
	size_t n = 0, i;
	struct tm tm;
	time_t now;
	int error;

	memset(&cred, 0, sizeof(cred));
	if (c->cancel && __atomic_load_n(c->cancel, __ATOMIC_ACQUIRE)) {
		s3_format(err, len, "canceled: another part of the upload failed");
		return CAIRN_ECANCELED;
	}
	if (c->on_attempt)
		c->on_attempt(c, attempt);
	if ((error = s3_credentials_snapshot(st, &cred, err, len)) < 0)
		return error;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);

	sig[n++] = (s3_sigv4_header){"Host", st->host_header};
	sig[n++] = (s3_sigv4_header){"x-amz-date", amz_date};
	sig[n++] = (s3_sigv4_header){"x-amz-content-sha256", c->payload_hash};
	if (cred.token)
		sig[n++] = (s3_sigv4_header){"x-amz-security-token", cred.token};
	if (c->range[0])
		sig[n++] = (s3_sigv4_header){"Range", c->range};
	for (i = 0; c->extra[i] && n < sizeof(sig) / sizeof(sig[0]); i += 2)
		sig[n++] = (s3_sigv4_header){c->extra[i], c->extra[i + 1]};

	memset(&req, 0, sizeof(req));
	req.method = c->method;
	req.path = c->path;
	req.query = c->query;
	req.headers = sig;
	req.header_count = n;
	req.payload_hash = c->payload_hash;
	req.amz_date = amz_date;
	req.region = st->region;
	req.service = "s3";
	req.access_key = cred.access_key;
	req.secret_key = cred.secret_key;
	if (s3_sigv4_authorization(&req, &auth, NULL) < 0) {
		error = CAIRN_ENOMEM;
		s3_format(err, len, "cannot sign the request (out of memory)");
		goto done;
	}
	for (i = 0; i < n && error == 0; i++)
		error = cairn_http_headers_add(h, sig[i].name, sig[i].value);
	if (error == 0)
		error = cairn_http_headers_add(h, "Authorization", auth);
	if (error < 0)
		s3_format(err, len, "out of memory");
done:
	free(auth);
	s3_credentials_clear(&cred);
	return error;
}

/* S3's own ways of saying "try again" beyond the transient statuses. */
static int s3_retryable(void *arg, long status, const char *body, size_t len)
{
	char code[64];

	(void)arg;
	xml_get(body, len, "Code", code, sizeof(code));
	if (strcmp(code, "RequestTimeout") == 0 || strcmp(code, "SlowDown") == 0)
		return 1;
	/* CompleteMultipartUpload may answer 200 and fail in the body. */
	return status >= 200 && status < 300 &&
	       (strcmp(code, "InternalError") == 0 || strcmp(code, "ServiceUnavailable") == 0);
}

/*
 * Sends a call. Returns 0 with resp holding a 2xx answer (or any answer
 * when accept_any is set, for callers that judge the status themselves);
 * otherwise a negative code with the message in `message`.
 */
static int s3_call_perform(s3_call *c, cairn_http_response *resp, int accept_any, char *message,
                           size_t len)
{
	cairn_http_request req;
	int error;

	if (!c->payload_hash[0])
		s3_sha256_hex(c->body ? c->body : "", c->body_len, c->payload_hash);
	if (!c->path && (error = s3_call_build_url(c)) < 0) {
		s3_format(message, len, "out of memory");
		return error;
	}
	memset(&req, 0, sizeof(req));
	req.method = c->method;
	req.url = c->url;
	req.body = c->body;
	req.body_len = c->body_len;
	req.prepare = s3_prepare;
	req.prepare_arg = c;
	req.sink = c->sink;
	req.sink_arg = c->sink_arg;
	req.body_max = c->body_max;
	req.retryable = s3_retryable;
	req.min_attempts = c->min_attempts;
	cairn_http_response_free(resp);
	if ((error = cairn_http_perform(c->st->http, &req, resp)) < 0) {
		s3_format(message, len, "%s%s", resp->error[0] ? resp->error : "request failed",
		          strstr(resp->error, "TLS verification failed")
		              ? "; give the certificate authority's PEM file in s3-ca-file "
		                "(WALG_S3_CA_CERT_FILE)"
		              : "");
		return error;
	}
	if (accept_any)
		return 0;
	if (resp->status < 200 || resp->status >= 300 ||
	    (resp->body && memmem(resp->body, resp->body_len, "<Error>", 7)))
		return s3_response_error(c->method, c->url, resp, message, len);
	return 0;
}

/*
 * Reports a message from s3_call_perform or a worker through the host.
 * A transient failure that outlived the retries is reported as a plain
 * failure: CAIRN_ENETWORK would make the core retry the whole operation
 * again, multiplying the budget the user set (s3-max-retries) by its own.
 */
static int s3_report(const s3_storage *st, int error, const char *message)
{
	return st->host->error(error == CAIRN_ENETWORK ? CAIRN_ERROR : error, "%s", message);
}

/* ---- keys ---------------------------------------------------------------- */

/* The same rules as the fs storage, so that a repository can move between them. */
static int s3_check_key(const s3_storage *st, const char *key, int is_prefix)
{
	if (cairn_key_valid(key, is_prefix))
		return 0;
	return st->host->error(CAIRN_EINVALID,
	                       "invalid storage %s \"%s\": parts must be non-empty, made of "
	                       "A-Z a-z 0-9 . _ - and not start with '.'",
	                       is_prefix ? "prefix" : "key", key);
}

/* prefix + key in a new string; NULL after reporting CAIRN_ENOMEM. */
static char *s3_object_key(const s3_storage *st, const char *key)
{
	size_t a = strlen(st->prefix), b = strlen(key);
	char *out = malloc(a + b + 1);

	if (!out) {
		s3_oom(st);
		return NULL;
	}
	memcpy(out, st->prefix, a);
	memcpy(out + a, key, b + 1);
	return out;
}

/* Headers every new object gets: storage class and server-side encryption. */
static void s3_object_headers(const s3_storage *st, s3_call *c)
{
	size_t n = 0;

	if (st->storage_class) {
		c->extra[n++] = "x-amz-storage-class";
		c->extra[n++] = st->storage_class;
	}
	if (st->sse) {
		c->extra[n++] = "x-amz-server-side-encryption";
		c->extra[n++] = st->sse;
	}
	if (st->sse_kms_id) {
		c->extra[n++] = "x-amz-server-side-encryption-aws-kms-key-id";
		c->extra[n++] = st->sse_kms_id;
	}
	c->extra[n] = NULL;
}

/* ---- put ----------------------------------------------------------------- */

/*
 * Size at which part `number` (1-based) is sent: the configured size,
 * doubled every S3_PARTS_PER_SIZE parts, within S3's limits. With 5 MiB
 * parts that reaches 10,000 parts only past 5 TB, S3's largest object.
 */
static uint64_t s3_part_limit(const s3_storage *st, int number)
{
	uint64_t size = st->part_size;
	int doublings = (number - 1) / S3_PARTS_PER_SIZE;

	while (doublings-- > 0 && size < S3_PART_SIZE_MAX)
		size *= 2;
	return size < S3_PART_SIZE_MAX ? size : S3_PART_SIZE_MAX;
}

static void s3_upload_fail(cairn_upload *up, int error, const char *message)
{
	pthread_mutex_lock(&up->lock);
	if (!up->error) {
		up->error = error;
		snprintf(up->message, sizeof(up->message), "%s", message);
	}
	__atomic_store_n(&up->failed, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&up->lock);
}

/* Uploads one part; runs in a worker thread (or the caller's when none could start). */
static int s3_upload_part(cairn_upload *up, s3_part_job *job)
{
	s3_call c;
	cairn_http_response resp;
	char query[1024], *id;
	const char *etag;
	int error;

	memset(&c, 0, sizeof(c));
	memset(&resp, 0, sizeof(resp));
	if (!(id = s3_encode(up->upload_id, 0))) {
		s3_format(job->message, sizeof(job->message), "out of memory");
		return CAIRN_ENOMEM;
	}
	snprintf(query, sizeof(query), "partNumber=%d&uploadId=%s", job->number, id);
	free(id);
	c.st = up->st;
	c.method = "PUT";
	c.key = up->key;
	c.query = query;
	c.body = job->buf.data;
	c.body_len = job->buf.len;
	c.cancel = &up->failed;
	if ((error = s3_call_perform(&c, &resp, 0, job->message, sizeof(job->message))) == 0) {
		etag = cairn_http_headers_get(&resp.headers, "ETag");
		if (!etag || !*etag || strlen(etag) >= sizeof(job->etag)) {
			s3_format(job->message, sizeof(job->message),
			         "PUT part %d of %s: the server answered without an ETag", job->number,
			         up->key);
			error = CAIRN_ERROR;
		} else {
			snprintf(job->etag, sizeof(job->etag), "%s", etag);
		}
	}
	cairn_http_response_free(&resp);
	s3_call_free(&c);
	return error;
}

static void *s3_part_worker(void *arg)
{
	s3_part_job *job = arg;
	cairn_upload *up = job->up;

	job->error = s3_upload_part(up, job);
	if (job->error < 0 && job->error != CAIRN_ECANCELED) {
		up->st->host->log(CAIRN_LOG_WARN, "s3: part %d of %s failed: %s", job->number, up->key,
		                  job->message);
		s3_upload_fail(up, job->error, job->message);
	}
	pthread_mutex_lock(&up->lock);
	job->state = S3_JOB_FINISHED;
	pthread_cond_broadcast(&up->finished);
	pthread_mutex_unlock(&up->lock);
	return NULL;
}

/* Joins a finished job and keeps its ETag; the caller holds no lock. */
static int s3_job_collect(cairn_upload *up, s3_part_job *job)
{
	pthread_join(job->thread, NULL);
	job->state = S3_JOB_IDLE;
	if (job->error < 0)
		return job->error;
	if (!(up->etags[job->number - 1] = strdup(job->etag))) {
		s3_upload_fail(up, CAIRN_ENOMEM, "out of memory");
		return CAIRN_ENOMEM;
	}
	return 0;
}

/* Waits for every job; 0 when all parts so far are uploaded. */
static int s3_jobs_wait_all(cairn_upload *up)
{
	int i, running;

	for (i = 0; i < up->st->concurrency; i++) {
		pthread_mutex_lock(&up->lock);
		running = up->jobs[i].state != S3_JOB_IDLE;
		pthread_mutex_unlock(&up->lock);
		if (running)
			s3_job_collect(up, &up->jobs[i]);
	}
	return __atomic_load_n(&up->failed, __ATOMIC_ACQUIRE) ? up->error : 0;
}

/* Reports the first failure of the upload from the caller's thread. */
static int s3_upload_report(cairn_upload *up)
{
	return s3_report(up->st, up->error ? up->error : CAIRN_ERROR,
	                 up->message[0] ? up->message : "a part upload failed");
}

static int s3_multipart_create(cairn_upload *up)
{
	s3_call c;
	cairn_http_response resp;
	char message[S3_MESSAGE_MAX], id[1024];
	int error;

	s3_call_init(&c, &resp, up->st, "POST", up->key, "uploads=");
	s3_object_headers(up->st, &c);
	if ((error = s3_call_perform(&c, &resp, 0, message, sizeof(message))) == 0) {
		xml_get(resp.body, resp.body_len, "UploadId", id, sizeof(id));
		if (!id[0]) {
			s3_format(message, sizeof(message),
			         "POST %s?uploads: the server answered without an UploadId", up->key);
			error = CAIRN_ERROR;
		} else if (!(up->upload_id = strdup(id))) {
			error = CAIRN_ENOMEM;
			s3_format(message, sizeof(message), "out of memory");
		} else {
			up->st->host->log(CAIRN_LOG_DEBUG, "s3: multipart upload of %s started", up->key);
		}
	}
	cairn_http_response_free(&resp);
	s3_call_free(&c);
	if (error < 0) {
		s3_upload_fail(up, error, message);
		return s3_upload_report(up);
	}
	return 0;
}

/*
 * Aborts the multipart upload after waiting for the jobs (a part that
 * lands after the abort would be kept). It gets the same retries as any
 * request; if it still fails, the parts stay until a lifecycle rule or a
 * later abort removes them, and the user is told.
 */
static void s3_multipart_abort(cairn_upload *up)
{
	s3_call c;
	cairn_http_response resp;
	char message[S3_MESSAGE_MAX], query[1200], *id;
	int error;

	__atomic_store_n(&up->failed, 1, __ATOMIC_RELEASE);
	s3_jobs_wait_all(up);
	if (!up->upload_id)
		return;
	if (!(id = s3_encode(up->upload_id, 0))) {
		up->st->host->log(CAIRN_LOG_WARN, "s3: out of memory aborting upload of %s", up->key);
		return;
	}
	snprintf(query, sizeof(query), "uploadId=%s", id);
	free(id);
	s3_call_init(&c, &resp, up->st, "DELETE", up->key, query);
	/* Parts left behind cost money and nobody sees them: try harder than usual. */
	c.min_attempts = up->st->max_attempts * 2 > S3_ABORT_ATTEMPTS_MIN ? up->st->max_attempts * 2
	                                                                   : S3_ABORT_ATTEMPTS_MIN;
	error = s3_call_perform(&c, &resp, 1, message, sizeof(message));
	if (error == 0 && (resp.status < 200 || resp.status >= 300) && resp.status != 404)
		error = s3_response_error("DELETE", c.url, &resp, message, sizeof(message));
	if (error < 0)
		up->st->host->log(CAIRN_LOG_WARN,
		                  "s3: cannot abort multipart upload %s of %s: %s; its parts use space "
		                  "until it is aborted (a bucket lifecycle rule "
		                  "AbortIncompleteMultipartUpload does it)",
		                  up->upload_id, up->key, message);
	else
		up->st->host->log(CAIRN_LOG_DEBUG, "s3: multipart upload of %s aborted", up->key);
	cairn_http_response_free(&resp);
	s3_call_free(&c);
	free(up->upload_id);
	up->upload_id = NULL;
}

static void s3_upload_free(cairn_upload *up)
{
	int i;

	if (!up)
		return;
	if (up->jobs) {
		for (i = 0; i < up->st->concurrency; i++)
			s3_buffer_free(&up->jobs[i].buf);
		free(up->jobs);
	}
	if (up->etags) {
		for (i = 0; i < up->parts; i++)
			free(up->etags[i]);
		free(up->etags);
	}
	s3_buffer_free(&up->fill);
	pthread_mutex_destroy(&up->lock);
	pthread_cond_destroy(&up->finished);
	free(up->upload_id);
	free(up->key);
	free(up);
}

/* Hands the filled buffer to a job as the next part, waiting for a free job. */
static int s3_dispatch_part(cairn_upload *up)
{
	s3_storage *st = up->st;
	s3_part_job *job = NULL;
	s3_buffer swap;
	char **grown;
	int i, error;

	if (!up->upload_id && (error = s3_multipart_create(up)) < 0)
		return error;
	if (up->parts == S3_PARTS_MAX) {
		s3_upload_fail(up, CAIRN_EINVALID, "object larger than 10,000 parts");
		return s3_upload_report(up);
	}
	pthread_mutex_lock(&up->lock);
	while (!job) {
		for (i = 0; i < st->concurrency && !job; i++)
			if (up->jobs[i].state != S3_JOB_RUNNING)
				job = &up->jobs[i];
		if (!job)
			pthread_cond_wait(&up->finished, &up->lock);
	}
	pthread_mutex_unlock(&up->lock);
	if (job->state == S3_JOB_FINISHED)
		s3_job_collect(up, job);
	if (__atomic_load_n(&up->failed, __ATOMIC_ACQUIRE))
		return s3_upload_report(up);
	if (!(grown = realloc(up->etags, (size_t)(up->parts + 1) * sizeof(*grown)))) {
		s3_upload_fail(up, CAIRN_ENOMEM, "out of memory");
		return s3_upload_report(up);
	}
	up->etags = grown;
	up->etags[up->parts] = NULL;
	swap = job->buf;
	job->buf = up->fill;
	up->fill = swap;
	up->fill.len = 0;
	job->number = ++up->parts;
	job->up = up;
	job->error = 0;
	job->message[0] = '\0';
	job->etag[0] = '\0';
	up->limit = s3_part_limit(st, up->parts + 1);
	job->state = S3_JOB_RUNNING;
	if (pthread_create(&job->thread, NULL, s3_part_worker, job) != 0) {
		/* No thread to be had: upload it here, then it is joinable state-wise. */
		job->error = s3_upload_part(up, job);
		job->state = S3_JOB_IDLE;
		if (job->error < 0) {
			s3_upload_fail(up, job->error, job->message);
			return s3_upload_report(up);
		}
		if (!(up->etags[job->number - 1] = strdup(job->etag))) {
			s3_upload_fail(up, CAIRN_ENOMEM, "out of memory");
			return s3_upload_report(up);
		}
	}
	return 0;
}

static int s3_put_begin(cairn_storage *base, const char *key, cairn_upload **out)
{
	s3_storage *st = (s3_storage *)base;
	cairn_upload *up;
	int error;

	*out = NULL;
	if ((error = s3_check_key(st, key, 0)) < 0)
		return error;
	if (!(up = calloc(1, sizeof(*up))))
		return s3_oom(st);
	up->st = st;
	pthread_mutex_init(&up->lock, NULL);
	pthread_cond_init(&up->finished, NULL);
	up->limit = s3_part_limit(st, 1);
	if (!(up->key = s3_object_key(st, key)) ||
	    !(up->jobs = calloc((size_t)st->concurrency, sizeof(*up->jobs)))) {
		s3_upload_free(up);
		return s3_oom(st);
	}
	*out = up;
	return 0;
}

static int s3_put_write(cairn_upload *up, const void *data, size_t len)
{
	const unsigned char *p = data;
	int error;

	if (__atomic_load_n(&up->failed, __ATOMIC_ACQUIRE))
		return s3_upload_report(up);
	while (len) {
		size_t room, n;

		if (up->fill.len == up->limit && (error = s3_dispatch_part(up)) < 0)
			return error;
		room = (size_t)(up->limit - up->fill.len);
		n = len < room ? len : room;
		if (s3_buffer_reserve(&up->fill, up->fill.len + n, (size_t)up->limit) < 0) {
			s3_upload_fail(up, CAIRN_ENOMEM, "out of memory buffering a part");
			return s3_upload_report(up);
		}
		memcpy(up->fill.data + up->fill.len, p, n);
		up->fill.len += n;
		up->total += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* One PUT for an object that fits in one part. */
static int s3_put_single(cairn_upload *up)
{
	s3_call c;
	cairn_http_response resp;
	char message[S3_MESSAGE_MAX];
	int error;

	s3_call_init(&c, &resp, up->st, "PUT", up->key, "");
	c.body = up->fill.data;
	c.body_len = up->fill.len;
	s3_object_headers(up->st, &c);
	if ((error = s3_call_perform(&c, &resp, 0, message, sizeof(message))) < 0)
		error = s3_report(up->st, error, message);
	cairn_http_response_free(&resp);
	s3_call_free(&c);
	return error;
}

/*
 * The ETag S3 gives a completed multipart upload: the MD5 of the parts'
 * binary MD5s, then "-" and the number of parts. Empty when a part's ETag
 * is not a plain MD5 (encrypted with KMS, or another server's scheme).
 */
static void s3_multipart_etag(const cairn_upload *up, char *out, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE], bin[16];
	unsigned int md_len = 0;
	int i, j;

	out[0] = '\0';
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL))
		goto done;
	for (i = 0; i < up->parts; i++) {
		const char *e = up->etags[i];

		if (*e == '"')
			e++;
		for (j = 0; j < 16; j++) {
			unsigned int byte;

			if (!isxdigit((unsigned char)e[2 * j]) || !isxdigit((unsigned char)e[2 * j + 1]) ||
			    sscanf(e + 2 * j, "%2x", &byte) != 1)
				goto done;
			bin[j] = (unsigned char)byte;
		}
		if (!EVP_DigestUpdate(ctx, bin, sizeof(bin)))
			goto done;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &md_len) || md_len != 16)
		goto done;
	snprintf(out, len, "\"");
	for (j = 0; j < 16; j++)
		snprintf(out + 1 + 2 * j, len - 1 - 2 * (size_t)j, "%02x", md[j]);
	snprintf(out + 33, len - 33, "-%d\"", up->parts);
done:
	EVP_MD_CTX_free(ctx);
}

static int s3_head(s3_storage *st, const char *object_key, cairn_stat *out, char *etag,
                   size_t etag_len, char *message, size_t len);

/*
 * A CompleteMultipartUpload that was retried may find its upload gone
 * because the first attempt succeeded and only its answer was lost. The
 * object is then there with our size (and our ETag where the server uses
 * S3's scheme): that counts as success.
 */
static int s3_completed_anyway(cairn_upload *up)
{
	cairn_stat sb;
	char etag[128], expected[64], message[S3_MESSAGE_MAX];

	if (s3_head(up->st, up->key, &sb, etag, sizeof(etag), message, sizeof(message)) < 0 ||
	    sb.size != up->total)
		return 0;
	s3_multipart_etag(up, expected, sizeof(expected));
	if (etag[0] && expected[0] && strcmp(etag, expected) != 0)
		return 0;
	up->st->host->log(CAIRN_LOG_INFO,
	                  "s3: upload of %s was completed by an earlier attempt whose answer was lost",
	                  up->key);
	return 1;
}

static int s3_multipart_complete(cairn_upload *up)
{
	s3_call c;
	cairn_http_response resp;
	s3_buffer xml = {0};
	char message[S3_MESSAGE_MAX], query[1200], number[32], code[64], *id = NULL;
	int i, error = 0;

	memset(&c, 0, sizeof(c));
	memset(&resp, 0, sizeof(resp));
	error = s3_buffer_puts(&xml, "<CompleteMultipartUpload xmlns=\"" S3_XMLNS "\">");
	for (i = 0; i < up->parts && error == 0; i++) {
		snprintf(number, sizeof(number), "%d", i + 1);
		if ((error = s3_buffer_puts(&xml, "<Part><PartNumber>")) < 0 ||
		    (error = s3_buffer_puts(&xml, number)) < 0 ||
		    (error = s3_buffer_puts(&xml, "</PartNumber><ETag>")) < 0 ||
		    (error = s3_xml_escape(&xml, up->etags[i])) < 0 ||
		    (error = s3_buffer_puts(&xml, "</ETag></Part>")) < 0)
			break;
	}
	if (error == 0)
		error = s3_buffer_puts(&xml, "</CompleteMultipartUpload>");
	if (error < 0 || !(id = s3_encode(up->upload_id, 0))) {
		s3_upload_fail(up, CAIRN_ENOMEM, "out of memory");
		error = CAIRN_ENOMEM;
		goto done;
	}
	snprintf(query, sizeof(query), "uploadId=%s", id);
	c.st = up->st;
	c.method = "POST";
	c.key = up->key;
	c.query = query;
	c.body = xml.data;
	c.body_len = xml.len;
	if ((error = s3_call_perform(&c, &resp, 0, message, sizeof(message))) < 0) {
		xml_get(resp.body, resp.body_len, "Code", code, sizeof(code));
		if (resp.attempts > 1 && strcmp(code, "NoSuchUpload") == 0 && s3_completed_anyway(up))
			error = 0;
		else
			s3_upload_fail(up, error, message);
	}
done:
	if (error == 0)
		up->st->host->log(CAIRN_LOG_DEBUG, "s3: multipart upload of %s completed: %d parts",
		                  up->key, up->parts);
	free(id);
	s3_buffer_free(&xml);
	cairn_http_response_free(&resp);
	s3_call_free(&c);
	return error;
}

static int s3_put_commit(cairn_upload *up)
{
	int error;

	if (__atomic_load_n(&up->failed, __ATOMIC_ACQUIRE)) {
		s3_multipart_abort(up);
		error = s3_upload_report(up);
		goto done;
	}
	if (!up->upload_id) {
		error = s3_put_single(up);
		goto done;
	}
	/* The buffer always holds the last part: a full one is sent only when more follows. */
	if ((error = s3_dispatch_part(up)) == 0 && (error = s3_jobs_wait_all(up)) == 0)
		error = s3_multipart_complete(up);
	if (error < 0) {
		s3_multipart_abort(up);
		error = s3_upload_report(up);
	}
done:
	s3_upload_free(up);
	return error;
}

static void s3_put_abort(cairn_upload *up)
{
	if (!up)
		return;
	s3_multipart_abort(up);
	s3_upload_free(up);
}

/* ---- get and stat -------------------------------------------------------- */

typedef struct s3_get_state {
	uint64_t offset;    /* first byte wanted */
	uint64_t length;    /* bytes wanted, CAIRN_TO_END: all */
	uint64_t delivered; /* bytes given to the sink so far, over all attempts */
	uint64_t start;     /* object offset this attempt asked for */
	uint64_t seen;      /* body bytes this attempt received */
	cairn_http_response *resp;
	cairn_sink_fn sink;
	void *arg;
} s3_get_state;

/* Each attempt asks for what is still missing, so a retry resumes where the last one broke. */
static void s3_get_on_attempt(s3_call *c, int attempt)
{
	s3_get_state *g = c->on_attempt_arg;

	(void)attempt;
	g->start = g->offset + g->delivered;
	g->seen = 0;
	if (g->start == 0 && g->length == CAIRN_TO_END)
		c->range[0] = '\0';
	else if (g->length == CAIRN_TO_END)
		snprintf(c->range, sizeof(c->range), "bytes=%" PRIu64 "-", g->start);
	else
		snprintf(c->range, sizeof(c->range), "bytes=%" PRIu64 "-%" PRIu64, g->start,
		         g->offset + g->length - 1);
}

static int s3_get_sink(void *arg, const void *data, size_t len)
{
	s3_call *c = arg;
	s3_get_state *g = c->on_attempt_arg;
	const unsigned char *p = data;
	int error;

	/* A server that ignores Range answers 200 with the whole object from byte 0. */
	if (g->resp->status == 200 && g->seen < g->start) {
		uint64_t drop = g->start - g->seen;

		if (drop > len)
			drop = len;
		g->seen += drop;
		p += drop;
		len -= (size_t)drop;
	}
	g->seen += len;
	if (g->length != CAIRN_TO_END && g->delivered + len > g->length)
		len = (size_t)(g->length - g->delivered);
	if (!len)
		return 0;
	if ((error = g->sink(g->arg, p, len)) < 0)
		return error;
	g->delivered += len;
	return 0;
}

static int s3_get(cairn_storage *base, const char *key, uint64_t offset, uint64_t length,
                  cairn_sink_fn sink, void *arg)
{
	s3_storage *st = (s3_storage *)base;
	s3_call c;
	s3_get_state g;
	cairn_http_response resp;
	char message[S3_MESSAGE_MAX], *object_key;
	int error;

	if ((error = s3_check_key(st, key, 0)) < 0)
		return error;
	if (!(object_key = s3_object_key(st, key)))
		return CAIRN_ENOMEM;
	if (length == 0) {
		/* Nothing to read, but a missing key is still reported. */
		cairn_stat sb;

		error = s3_head(st, object_key, &sb, NULL, 0, message, sizeof(message));
		if (error < 0 && error != CAIRN_ENOTFOUND)
			error = s3_report(st, error, message);
		free(object_key);
		return error;
	}
	memset(&c, 0, sizeof(c));
	memset(&g, 0, sizeof(g));
	memset(&resp, 0, sizeof(resp));
	g.offset = offset;
	g.length = length;
	g.resp = &resp;
	g.sink = sink;
	g.arg = arg;
	c.st = st;
	c.method = "GET";
	c.key = object_key;
	c.query = "";
	c.on_attempt = s3_get_on_attempt;
	c.on_attempt_arg = &g;
	c.sink = s3_get_sink;
	c.sink_arg = &c;
	error = s3_call_perform(&c, &resp, 1, message, sizeof(message));
	if (error < 0) {
		/* An error of the sink comes with its own message: keep it. */
		if (resp.error[0])
			error = s3_report(st, error, message);
	} else if (resp.status == 416) {
		error = 0; /* a range past the end: nothing there to deliver */
	} else if (resp.status == 404 && (!resp.body_len ||
	                                  strstr(resp.body, "<Code>NoSuchKey</Code>"))) {
		error = CAIRN_ENOTFOUND;
	} else if (resp.status < 200 || resp.status >= 300) {
		error = s3_report(st, s3_response_error("GET", c.url, &resp, message,
		                                        sizeof(message)),
		                  message);
	}
	cairn_http_response_free(&resp);
	s3_call_free(&c);
	free(object_key);
	return error;
}

static time_t s3_parse_http_date(const char *text)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!text || !strptime(text, "%a, %d %b %Y %H:%M:%S", &tm))
		return 0;
	return timegm(&tm);
}

/*
 * HEAD of an object. CAIRN_ENOTFOUND without a message when it is missing.
 * A HEAD answer has no body, so a refusal is asked again as a one-byte GET
 * to learn the server's error code for the message.
 */
static int s3_head(s3_storage *st, const char *object_key, cairn_stat *out, char *etag,
                   size_t etag_len, char *message, size_t len)
{
	s3_call c;
	cairn_http_response resp;
	const char *v;
	int error;

	s3_call_init(&c, &resp, st, "HEAD", object_key, "");
	memset(out, 0, sizeof(*out));
	message[0] = '\0';
	if ((error = s3_call_perform(&c, &resp, 1, message, len)) < 0)
		goto done;
	if (resp.status >= 200 && resp.status < 300) {
		v = cairn_http_headers_get(&resp.headers, "Content-Length");
		out->size = v ? strtoull(v, NULL, 10) : 0;
		out->mtime_sec = s3_parse_http_date(cairn_http_headers_get(&resp.headers, "Last-Modified"));
		if (etag && etag_len) {
			v = cairn_http_headers_get(&resp.headers, "ETag");
			snprintf(etag, etag_len, "%s", v ? v : "");
		}
	} else if (resp.status == 404 &&
	           __atomic_load_n(&st->not_found_is_no_such_key, __ATOMIC_RELAXED)) {
		error = CAIRN_ENOTFOUND;
	} else {
		/*
		 * A HEAD answer has no body to say why. A one-byte GET learns the
		 * server's code: for a refusal, and for the first 404, which may
		 * be NoSuchKey, NoSuchBucket, or a server (versitygw) answering an
		 * unknown access key with 404. Once a 404 proved to be NoSuchKey,
		 * later ones are believed.
		 */
		s3_call get;
		char again[S3_MESSAGE_MAX], code[64];
		long head_status = resp.status;

		error = head_status == 404 ? CAIRN_ENOTFOUND
		                           : s3_response_error("HEAD", c.url, &resp, message, len);
		memset(&get, 0, sizeof(get));
		get.st = st;
		get.method = "GET";
		get.key = object_key;
		get.query = "";
		snprintf(get.range, sizeof(get.range), "bytes=0-0");
		if (s3_call_perform(&get, &resp, 1, again, sizeof(again)) == 0 &&
		    (resp.status < 200 || resp.status >= 300) && resp.body_len) {
			xml_get(resp.body, resp.body_len, "Code", code, sizeof(code));
			if (resp.status == 404 && strcmp(code, "NoSuchKey") == 0) {
				__atomic_store_n(&st->not_found_is_no_such_key, 1, __ATOMIC_RELAXED);
				error = CAIRN_ENOTFOUND;
			} else if (resp.status != 416) {
				error = s3_response_error("HEAD", c.url, &resp, message, len);
			}
		}
		s3_call_free(&get);
	}
done:
	cairn_http_response_free(&resp);
	s3_call_free(&c);
	return error;
}

static int s3_stat(cairn_storage *base, const char *key, cairn_stat *out)
{
	s3_storage *st = (s3_storage *)base;
	char message[S3_MESSAGE_MAX], *object_key;
	int error;

	if ((error = s3_check_key(st, key, 0)) < 0)
		return error;
	if (!(object_key = s3_object_key(st, key)))
		return CAIRN_ENOMEM;
	error = s3_head(st, object_key, out, NULL, 0, message, sizeof(message));
	if (error < 0 && error != CAIRN_ENOTFOUND)
		error = s3_report(st, error, message);
	free(object_key);
	return error;
}

/* ---- list ---------------------------------------------------------------- */

static int s3_list(cairn_storage *base, const char *prefix, cairn_list_fn cb, void *arg)
{
	s3_storage *st = (s3_storage *)base;
	cairn_http_response resp;
	char message[S3_MESSAGE_MAX], token[2048] = "", truncated[16], *full = NULL,
	     *enc_prefix = NULL, *enc_token = NULL, *query = NULL;
	size_t prefix_len = strlen(st->prefix);
	int error;

	memset(&resp, 0, sizeof(resp));
	if ((error = s3_check_key(st, prefix, 1)) < 0)
		return error;
	if (!(full = s3_object_key(st, prefix)))
		return CAIRN_ENOMEM;
	if (!(enc_prefix = s3_encode(full, 0))) {
		error = s3_oom(st);
		goto done;
	}
	do {
		const char *p, *end, *content, *after;
		size_t n;
		s3_call c;

		free(enc_token);
		free(query);
		query = NULL;
		if (!(enc_token = s3_encode(token, 0)) ||
		    asprintf(&query, "%s%s%slist-type=2&max-keys=1000&prefix=%s",
		             token[0] ? "continuation-token=" : "", enc_token, token[0] ? "&" : "",
		             enc_prefix) < 0) {
			query = NULL;
			error = s3_oom(st);
			goto done;
		}
		memset(&c, 0, sizeof(c));
		c.st = st;
		c.method = "GET";
		c.key = NULL;
		c.query = query;
		c.body_max = S3_LIST_BODY_MAX;
		error = s3_call_perform(&c, &resp, 0, message, sizeof(message));
		s3_call_free(&c);
		if (error < 0) {
			error = s3_report(st, error, message);
			goto done;
		}
		p = resp.body ? resp.body : "";
		end = p + resp.body_len;
		while (xml_find(p, end, "Contents", &content, &n, &after)) {
			char key[2048], size[32];

			xml_get(content, n, "Key", key, sizeof(key));
			xml_get(content, n, "Size", size, sizeof(size));
			p = after;
			/* Objects that are not keys of ours (another tool's) are not listed. */
			if (strncmp(key, st->prefix, prefix_len) != 0 || !cairn_key_valid(key + prefix_len, 0))
				continue;
			if ((error = cb(arg, key + prefix_len, strtoull(size, NULL, 10))) < 0)
				goto done;
		}
		xml_get(resp.body, resp.body_len, "IsTruncated", truncated, sizeof(truncated));
		xml_get(resp.body, resp.body_len, "NextContinuationToken", token, sizeof(token));
		if (strcmp(truncated, "true") == 0 && !token[0]) {
			error = st->host->error(CAIRN_ERROR,
			                        "list of %s in bucket %s: the server said there is more "
			                        "but gave no continuation token",
			                        full, st->bucket);
			goto done;
		}
	} while (strcmp(truncated, "true") == 0);
done:
	cairn_http_response_free(&resp);
	free(query);
	free(enc_token);
	free(enc_prefix);
	free(full);
	return error;
}

/* ---- remove -------------------------------------------------------------- */

static int s3_delete_one(s3_storage *st, const char *object_key)
{
	s3_call c;
	cairn_http_response resp;
	char message[S3_MESSAGE_MAX];
	int error;

	s3_call_init(&c, &resp, st, "DELETE", object_key, "");
	error = s3_call_perform(&c, &resp, 1, message, sizeof(message));
	if (error == 0 && (resp.status < 200 || resp.status >= 300) && resp.status != 404)
		error = s3_response_error("DELETE", c.url, &resp, message, sizeof(message));
	if (error < 0)
		error = s3_report(st, error, message);
	cairn_http_response_free(&resp);
	s3_call_free(&c);
	return error;
}

static void s3_base64(const unsigned char *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/*
 * One DeleteObjects request for up to 1,000 keys. Keys it reports as
 * failed are deleted one by one; so is the whole batch when the server
 * does not implement DeleteObjects (some S3-compatible ones).
 */
static int s3_delete_batch(s3_storage *st, char **object_keys, size_t count)
{
	s3_call c;
	cairn_http_response resp;
	s3_buffer xml = {0};
	unsigned char md5[EVP_MAX_MD_SIZE];
	unsigned int md5_len = 0;
	char message[S3_MESSAGE_MAX], md5_b64[32];
	size_t i;
	int error = 0;

	memset(&c, 0, sizeof(c));
	memset(&resp, 0, sizeof(resp));
	if (__atomic_load_n(&st->batch_delete_unsupported, __ATOMIC_RELAXED))
		goto one_by_one;
	error = s3_buffer_puts(&xml, "<Delete xmlns=\"" S3_XMLNS "\"><Quiet>true</Quiet>");
	for (i = 0; i < count && error == 0; i++)
		if ((error = s3_buffer_puts(&xml, "<Object><Key>")) < 0 ||
		    (error = s3_xml_escape(&xml, object_keys[i])) < 0 ||
		    (error = s3_buffer_puts(&xml, "</Key></Object>")) < 0)
			break;
	if (error == 0)
		error = s3_buffer_puts(&xml, "</Delete>");
	if (error < 0 || !EVP_Digest(xml.data, xml.len, md5, &md5_len, EVP_md5(), NULL)) {
		error = s3_oom(st);
		goto done;
	}
	/* S3 requires an integrity header on DeleteObjects. */
	s3_base64(md5, md5_len, md5_b64);
	c.st = st;
	c.method = "POST";
	c.key = NULL;
	c.query = "delete=";
	c.body = xml.data;
	c.body_len = xml.len;
	c.extra[0] = "Content-MD5";
	c.extra[1] = md5_b64;
	c.extra[2] = "Content-Type";
	c.extra[3] = "application/xml";
	c.extra[4] = NULL;
	if ((error = s3_call_perform(&c, &resp, 1, message, sizeof(message))) < 0) {
		error = s3_report(st, error, message);
		goto done;
	}
	if (resp.status == 501 || (resp.status >= 400 && resp.body &&
	                           strstr(resp.body, "<Code>NotImplemented</Code>"))) {
		__atomic_store_n(&st->batch_delete_unsupported, 1, __ATOMIC_RELAXED);
		st->host->log(CAIRN_LOG_DEBUG, "s3: DeleteObjects not supported; deleting one by one");
		goto one_by_one;
	}
	if (resp.status < 200 || resp.status >= 300) {
		error = s3_report(st, s3_response_error("POST", c.url, &resp, message,
		                                        sizeof(message)),
		                  message);
		goto done;
	}
	{
		/* Quiet mode lists only the failures: retry those one at a time. */
		const char *p = resp.body ? resp.body : "", *end = p + resp.body_len, *content, *after;
		size_t n;

		while (error == 0 && xml_find(p, end, "Error", &content, &n, &after)) {
			char key[2048], code[64];

			xml_get(content, n, "Key", key, sizeof(key));
			xml_get(content, n, "Code", code, sizeof(code));
			p = after;
			if (key[0]) {
				st->host->log(CAIRN_LOG_DEBUG, "s3: batch delete of %s failed (%s); retrying alone",
				              key, code);
				error = s3_delete_one(st, key);
			}
		}
	}
	goto done;
one_by_one:
	for (i = 0; i < count && error == 0; i++)
		error = s3_delete_one(st, object_keys[i]);
done:
	s3_buffer_free(&xml);
	cairn_http_response_free(&resp);
	s3_call_free(&c);
	return error;
}

static int s3_remove(cairn_storage *base, const char *const *keys, size_t count)
{
	s3_storage *st = (s3_storage *)base;
	char **object_keys;
	size_t i, done;
	int error = 0;

	/* The whole batch is checked before anything is removed. */
	for (i = 0; i < count; i++)
		if ((error = s3_check_key(st, keys[i], 0)) < 0)
			return error;
	if (!(object_keys = calloc(count ? count : 1, sizeof(*object_keys))))
		return s3_oom(st);
	for (i = 0; i < count; i++)
		if (!(object_keys[i] = s3_object_key(st, keys[i]))) {
			error = CAIRN_ENOMEM;
			goto done;
		}
	for (done = 0; done < count && error == 0; done += S3_DELETE_BATCH)
		error = s3_delete_batch(st, object_keys + done,
		                        count - done < S3_DELETE_BATCH ? count - done : S3_DELETE_BATCH);
done:
	for (i = 0; i < count; i++)
		free(object_keys[i]);
	free(object_keys);
	return error;
}

/* ---- open and close ------------------------------------------------------ */

static void s3_close(cairn_storage *base)
{
	s3_storage *st = (s3_storage *)base;

	if (!st)
		return;
	cairn_http_free(st->http);
	cairn_http_free(st->imds);
	s3_credentials_clear(&st->credentials);
	pthread_mutex_destroy(&st->credentials_lock);
	free(st->bucket);
	free(st->prefix);
	free(st->url_base);
	free(st->host_header);
	free(st->path_base);
	free(st->endpoint);
	free(st->region);
	free(st->storage_class);
	free(st->sse);
	free(st->sse_kms_id);
	free(st->imds_endpoint);
	free(st);
}

static const cairn_storage s3_vtable = {
	.version = CAIRN_ABI_VERSION,
	.caps = S3_CAPS,
	.put_begin = s3_put_begin,
	.put_write = s3_put_write,
	.put_commit = s3_put_commit,
	.put_abort = s3_put_abort,
	.get = s3_get,
	.stat = s3_stat,
	.list = s3_list,
	.remove = s3_remove,
	.close = s3_close,
};

/* Whether a name can be a DNS label of a virtual-hosted bucket address. */
static int s3_bucket_is_dns_safe(const char *bucket, int https)
{
	const char *p;

	for (p = bucket; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      (*p == '.' && !https))) /* a dotted name breaks the TLS wildcard */
			return 0;
	return *bucket != '-';
}

/* An IP address or localhost cannot take a bucket as a subdomain. */
static int s3_host_is_literal(const char *host)
{
	const char *p;
	size_t n = strcspn(host, ":");

	if (host[0] == '[' || (n == 9 && strncmp(host, "localhost", 9) == 0))
		return 1;
	for (p = host; p < host + n; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return 0;
	return 1;
}

static int s3_is_set(const cairn_host *host, const char *name)
{
	const char *v = host->config_get(name);

	return v && *v;
}

static int s3_setting_int(const cairn_host *host, const char *name, int64_t min, int64_t max,
                          int64_t *out)
{
	int64_t v = host->config_int(name);

	if (v < min || v > max)
		return host->error(CAIRN_EINVALID, "setting %s: %" PRId64 " is out of range (%" PRId64
		                                   " to %" PRId64 ")",
		                   name, v, min, max);
	*out = v;
	return 0;
}

/*
 * Opens s3://bucket/prefix. Nothing is sent to the bucket here: the core
 * decides whether a repository exists by a stat of its "config" key.
 * Credentials are found now, so a missing one is reported before any work.
 */
static int s3_open(cairn_storage **out, const char *location, const cairn_host *host)
{
	const char *bucket, *slash, *endpoint, *ca_file;
	char message[S3_MESSAGE_MAX], *p;
	cairn_http_options opts;
	s3_storage *st = NULL;
	int64_t v, retries, base_ms, max_ms, connect_s, io_s;
	int error = 0, https, path_style;
	size_t n;

	*out = NULL;
	if (strncmp(location, "s3://", 5) != 0 || !location[5] || location[5] == '/')
		return host->error(CAIRN_EINVALID,
		                   "invalid S3 repository URL %s: use s3://bucket or s3://bucket/prefix",
		                   location);
	bucket = location + 5;
	slash = strchr(bucket, '/');
	if (!(st = calloc(1, sizeof(*st))))
		return host->error(CAIRN_ENOMEM, "out of memory in storage s3");
	st->base = s3_vtable;
	st->host = host;
	pthread_mutex_init(&st->credentials_lock, NULL);
	n = slash ? (size_t)(slash - bucket) : strlen(bucket);
	if (!(st->bucket = strndup(bucket, n)) || !(st->prefix = malloc(strlen(location) + 2))) {
		error = s3_oom(st);
		goto done;
	}
	for (p = st->bucket; *p; p++)
		if (!cairn_key_char((unsigned char)*p)) {
			error = host->error(CAIRN_EINVALID, "invalid bucket name \"%s\" in %s",
			                    st->bucket, location);
			goto done;
		}
	/* The prefix without leading, trailing or doubled slashes, ending in '/'. */
	st->prefix[0] = '\0';
	for (p = st->prefix; slash && *slash;) {
		size_t part;

		while (*slash == '/')
			slash++;
		part = strcspn(slash, "/");
		if (!part)
			break;
		if ((part == 1 && slash[0] == '.') || (part == 2 && strncmp(slash, "..", 2) == 0)) {
			error = host->error(CAIRN_EINVALID, "invalid prefix in %s: no . or .. parts",
			                    location);
			goto done;
		}
		memcpy(p, slash, part);
		p += part;
		*p++ = '/';
		*p = '\0';
		slash += part;
	}

	/* Settings. */
	st->region = strdup(host->config_get("s3-region") ? host->config_get("s3-region")
	                                                  : "us-east-1");
	st->storage_class = s3_strdup_or_null(host->config_get("s3-storage-class"));
	st->sse = s3_strdup_or_null(host->config_get("s3-sse"));
	st->sse_kms_id = s3_strdup_or_null(host->config_get("s3-sse-kms-id"));
	if (!st->region || (s3_is_set(host, "s3-storage-class") && !st->storage_class) ||
	    (s3_is_set(host, "s3-sse") && !st->sse) ||
	    (s3_is_set(host, "s3-sse-kms-id") && !st->sse_kms_id)) {
		error = s3_oom(st);
		goto done;
	}
	if (st->sse && strcmp(st->sse, "AES256") != 0 && strcmp(st->sse, "aws:kms") != 0 &&
	    strcmp(st->sse, "aws:kms:dsse") != 0) {
		error = host->error(CAIRN_EINVALID,
		                    "setting s3-sse: \"%s\" is not AES256, aws:kms or aws:kms:dsse", st->sse);
		goto done;
	}
	if (st->sse_kms_id && !st->sse) {
		error = host->error(CAIRN_EINVALID, "setting s3-sse-kms-id needs s3-sse=aws:kms");
		goto done;
	}
	if ((error = s3_setting_int(host, "s3-part-size", (int64_t)S3_PART_SIZE_MIN,
	                            (int64_t)S3_PART_SIZE_MAX, &v)) < 0)
		goto done;
	st->part_size = (uint64_t)v;
	if ((error = s3_setting_int(host, "upload-concurrency", 1, S3_CONCURRENCY_MAX, &v)) < 0)
		goto done;
	st->concurrency = (int)v;
	if ((error = s3_setting_int(host, "s3-max-retries", 0, 100, &retries)) < 0 ||
	    (error = s3_setting_int(host, "s3-retry-base-ms", 1, 600000, &base_ms)) < 0 ||
	    (error = s3_setting_int(host, "s3-retry-max-ms", 1, 3600000, &max_ms)) < 0 ||
	    (error = s3_setting_int(host, "s3-connect-timeout", 1, 3600, &connect_s)) < 0 ||
	    (error = s3_setting_int(host, "s3-io-timeout", 1, 86400, &io_s)) < 0)
		goto done;
	st->max_attempts = (int)retries + 1;

	/* Endpoint and addressing style. */
	endpoint = host->config_get("s3-endpoint");
	if (endpoint && *endpoint) {
		const char *rest = strstr(endpoint, "://");

		if (rest && strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) {
			error = host->error(CAIRN_EINVALID, "setting s3-endpoint: %s is not http:// or https://",
			                    endpoint);
			goto done;
		}
		if (asprintf(&st->endpoint, "%s%s", rest ? "" : "https://", endpoint) < 0) {
			st->endpoint = NULL;
			error = s3_oom(st);
			goto done;
		}
	} else if (asprintf(&st->endpoint, "https://s3.%s.amazonaws.com", st->region) < 0) {
		st->endpoint = NULL;
		error = s3_oom(st);
		goto done;
	}
	n = strlen(st->endpoint);
	while (n && st->endpoint[n - 1] == '/')
		st->endpoint[--n] = '\0';
	https = strncmp(st->endpoint, "https://", 8) == 0;
	{
		const char *hostport = strstr(st->endpoint, "://") + 3;

		if (!*hostport || strchr(hostport, '/') || strchr(hostport, '@') || strchr(hostport, '?')) {
			error = host->error(CAIRN_EINVALID,
			                    "setting s3-endpoint: %s must be scheme://host[:port] only",
			                    st->endpoint);
			goto done;
		}
		path_style = host->config_bool("s3-force-path-style") ||
		             !s3_bucket_is_dns_safe(st->bucket, https) || s3_host_is_literal(hostport);
		if (path_style) {
			error = (st->host_header = strdup(hostport)) == NULL ||
			        asprintf(&st->path_base, "/%s", st->bucket) < 0 ||
			        (st->url_base = strdup(st->endpoint)) == NULL;
		} else {
			error = asprintf(&st->host_header, "%s.%s", st->bucket, hostport) < 0 ||
			        (st->path_base = strdup("")) == NULL ||
			        asprintf(&st->url_base, "%s://%s", https ? "https" : "http",
			                 st->host_header) < 0;
		}
		if (error) {
			error = s3_oom(st);
			goto done;
		}
	}

	ca_file = host->config_get("s3-ca-file");
	memset(&opts, 0, sizeof(opts));
	opts.name = "s3";
	opts.connect_timeout_ms = (long)connect_s * 1000;
	opts.io_timeout_ms = (long)io_s * 1000;
	opts.ca_file = ca_file && *ca_file ? ca_file : NULL;
	opts.insecure_skip_verify = host->config_bool("s3-tls-insecure-skip-verify");
	opts.max_attempts = st->max_attempts;
	opts.retry_base_ms = (long)base_ms;
	opts.retry_max_ms = (long)max_ms;
	opts.log = host->log;
	if (opts.insecure_skip_verify && https)
		host->log(CAIRN_LOG_WARN,
		          "s3: TLS certificates of %s are not verified (s3-tls-insecure-skip-verify)",
		          st->endpoint);
	if ((error = cairn_http_new(&st->http, &opts, message, sizeof(message))) < 0) {
		error = host->error(error, "s3: %s", message);
		goto done;
	}
	if ((error = s3_credentials_resolve(st, message, sizeof(message))) < 0) {
		error = host->error(error, "%s", error == CAIRN_ENOMEM ? "out of memory" : message);
		goto done;
	}
	host->log(CAIRN_LOG_DEBUG, "s3: bucket %s, prefix \"%s\", endpoint %s (%s style), region %s, "
	                           "credentials from %s",
	          st->bucket, st->prefix, st->endpoint, path_style ? "path" : "virtual-hosted",
	          st->region, st->credentials.source);
	*out = &st->base;
	st = NULL;
done:
	s3_close(st ? &st->base : NULL);
	return error;
}

/* ---- registration -------------------------------------------------------- */

static const cairn_setting s3_settings[] = {
	{"s3-prefix", CAIRN_SETTING_STRING, NULL, "WALG_S3_PREFIX WALE_S3_PREFIX",
	 "WAL-G's name for the repository URL s3://bucket/prefix (used when repo is not set)",
	 CAIRN_SETTING_REPO_URL},
	{"s3-endpoint", CAIRN_SETTING_STRING, NULL,
	 "CAIRN_S3_ENDPOINT AWS_ENDPOINT AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL",
	 "S3 endpoint, http(s)://host[:port] (default: AWS, https://s3.REGION.amazonaws.com)", 0},
	{"s3-region", CAIRN_SETTING_STRING, "us-east-1", "CAIRN_S3_REGION AWS_REGION AWS_DEFAULT_REGION",
	 "region the requests are signed for", 0},
	{"s3-force-path-style", CAIRN_SETTING_BOOL, "false",
	 "CAIRN_S3_FORCE_PATH_STYLE AWS_S3_FORCE_PATH_STYLE",
	 "address the bucket as endpoint/bucket rather than bucket.endpoint (automatic for IP "
	 "addresses, localhost and bucket names that are not DNS-safe)", 0},
	{"s3-ca-file", CAIRN_SETTING_STRING, NULL, "CAIRN_S3_CA_FILE WALG_S3_CA_CERT_FILE AWS_CA_BUNDLE",
	 "PEM file of the certificate authorities that sign the endpoint's certificate", 0},
	{"s3-tls-insecure-skip-verify", CAIRN_SETTING_BOOL, "false",
	 "CAIRN_S3_TLS_INSECURE_SKIP_VERIFY",
	 "do not verify the endpoint's TLS certificate (insecure: anyone on the path can read "
	 "and change what is stored)", 0},
	{"s3-storage-class", CAIRN_SETTING_STRING, NULL, "CAIRN_S3_STORAGE_CLASS WALG_S3_STORAGE_CLASS",
	 "storage class of new objects (STANDARD, STANDARD_IA, ...; default: the bucket's)", 0},
	{"s3-sse", CAIRN_SETTING_STRING, NULL, "CAIRN_S3_SSE WALG_S3_SSE",
	 "server-side encryption of new objects: AES256 or aws:kms", 0},
	{"s3-sse-kms-id", CAIRN_SETTING_STRING, NULL, "CAIRN_S3_SSE_KMS_ID WALG_S3_SSE_KMS_ID",
	 "KMS key for s3-sse=aws:kms (default: the account's S3 key)", 0},
	{"s3-part-size", CAIRN_SETTING_SIZE, "8M", "CAIRN_S3_PART_SIZE WALG_S3_MAX_PART_SIZE",
	 "multipart upload part size, 5M to 5G; doubles every 1,000 parts of one object; memory per "
	 "upload is (upload-concurrency + 1) parts", 0},
	{"s3-max-retries", CAIRN_SETTING_INT, "8", "CAIRN_S3_MAX_RETRIES WALG_S3_MAX_RETRIES",
	 "retries of a request after connection errors, timeouts, 408, 429, 5xx, SlowDown and "
	 "RequestTimeout", 0},
	{"s3-retry-base-ms", CAIRN_SETTING_INT, "250", "CAIRN_S3_RETRY_BASE_MS",
	 "first backoff between retries in milliseconds; doubles each retry, with jitter", 0},
	{"s3-retry-max-ms", CAIRN_SETTING_INT, "20000", "CAIRN_S3_RETRY_MAX_MS",
	 "longest backoff between retries in milliseconds", 0},
	{"s3-connect-timeout", CAIRN_SETTING_INT, "10", "CAIRN_S3_CONNECT_TIMEOUT",
	 "seconds to wait for a connection", 0},
	{"s3-io-timeout", CAIRN_SETTING_INT, "60", "CAIRN_S3_IO_TIMEOUT",
	 "seconds a request may go without moving a byte before it is retried", 0},
	{"aws-access-key-id", CAIRN_SETTING_STRING, NULL, "AWS_ACCESS_KEY_ID", "AWS access key id", 0},
	{"aws-secret-access-key", CAIRN_SETTING_STRING, NULL, "AWS_SECRET_ACCESS_KEY",
	 "AWS secret access key", CAIRN_SETTING_SECRET},
	{"aws-session-token", CAIRN_SETTING_STRING, NULL, "AWS_SESSION_TOKEN",
	 "AWS session token of temporary credentials", CAIRN_SETTING_SECRET},
	{"aws-profile", CAIRN_SETTING_STRING, NULL, "AWS_PROFILE",
	 "profile of the shared credentials file (default: default)", 0},
	{"aws-shared-credentials-file", CAIRN_SETTING_STRING, NULL, "AWS_SHARED_CREDENTIALS_FILE",
	 "AWS shared credentials file (default: ~/.aws/credentials)", 0},
	{"aws-ec2-metadata-endpoint", CAIRN_SETTING_STRING, "http://169.254.169.254",
	 "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	 "instance metadata service (IMDSv2) asked for credentials when no other source has them", 0},
	{"aws-ec2-metadata-disabled", CAIRN_SETTING_BOOL, "false", "AWS_EC2_METADATA_DISABLED",
	 "never ask the instance metadata service for credentials", 0},
	{NULL, 0, NULL, NULL, NULL, 0},
};

static const char *const s3_schemes[] = {"s3", NULL};

static const cairn_storage_plugin s3_plugin = {
	.version = CAIRN_ABI_VERSION,
	.name = "s3",
	.plugin_version = "1.0.0",
	.description = "AWS S3 and S3-compatible object storage (MinIO, Ceph, versitygw ...)",
	.schemes = s3_schemes,
	.caps = S3_CAPS,
	.settings = s3_settings,
	.open = s3_open,
};

/* The only exported symbol: registers and does nothing else. */
int cairn_plugin_init(const cairn_host *host)
{
	return host->register_storage(&s3_plugin);
}
