/* sigv4.c - AWS Signature Version 4 (see sigv4.h). */
#include "sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* More would mean a bug in the caller: S3 requests sign a handful. */
#define SIGV4_HEADERS_MAX 32
#define SIGV4_QUERY_PARAMS_MAX 32

/* A growing string; `failed` makes every later append a no-op. */
typedef struct sigv4_str {
	char *data;
	size_t len;
	size_t cap;
	int failed;
} sigv4_str;

static void str_append(sigv4_str *s, const char *text, size_t n)
{
	if (s->failed)
		return;
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		char *grown;

		while (cap < s->len + n + 1)
			cap *= 2;
		if (!(grown = realloc(s->data, cap))) {
			s->failed = 1;
			return;
		}
		s->data = grown;
		s->cap = cap;
	}
	memcpy(s->data + s->len, text, n);
	s->len += n;
	s->data[s->len] = '\0';
}

static void str_puts(sigv4_str *s, const char *text)
{
	str_append(s, text, strlen(text));
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void s3_sha256_hex(const void *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL))
		md_len = 0;
	hex_encode(md, md_len, out);
}

static int hmac_sha256(const void *key, size_t key_len, const char *msg, unsigned char *out)
{
	unsigned int len = 0;

	return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
	            &len) && len == 32
	           ? 0
	           : -1;
}

size_t s3_uri_encode(const char *s, int keep_slash, char *out, size_t out_len)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' ||
		            (c == '/' && keep_slash);

		if (plain) {
			if (n + 1 < out_len)
				out[n] = (char)c;
			n++;
		} else {
			if (n + 3 < out_len) {
				out[n] = '%';
				out[n + 1] = digits[c >> 4];
				out[n + 2] = digits[c & 15];
			}
			n += 3;
		}
	}
	if (out_len)
		out[n < out_len ? n : out_len - 1] = '\0';
	return n;
}

/* ---- canonical request ------------------------------------------------------ */

typedef struct sigv4_param {
	const char *text; /* "name=value" or "name" */
	size_t len;
	size_t name_len;
} sigv4_param;

/* Parameters sort by name, then by value, bytewise on their encoded forms. */
static int param_cmp(const void *a, const void *b)
{
	const sigv4_param *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->text, y->text, n);

	if (c == 0 && x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	if (c == 0) {
		const char *xv = x->text + x->name_len, *yv = y->text + y->name_len;
		size_t xl = x->len - x->name_len, yl = y->len - y->name_len;

		if (xl && *xv == '=')
			xv++, xl--;
		if (yl && *yv == '=')
			yv++, yl--;
		c = memcmp(xv, yv, xl < yl ? xl : yl);
		if (c == 0 && xl != yl)
			c = xl < yl ? -1 : 1;
	}
	return c;
}

static int canonical_query(const char *query, sigv4_str *out)
{
	sigv4_param params[SIGV4_QUERY_PARAMS_MAX];
	size_t count = 0, i;
	const char *p = query;

	while (p && *p) {
		size_t len = strcspn(p, "&");

		if (len) {
			if (count == SIGV4_QUERY_PARAMS_MAX)
				return -1;
			params[count].text = p;
			params[count].len = len;
			params[count].name_len = strcspn(p, "=&");
			if (params[count].name_len > len)
				params[count].name_len = len;
			count++;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	qsort(params, count, sizeof(params[0]), param_cmp);
	for (i = 0; i < count; i++) {
		if (i)
			str_puts(out, "&");
		str_append(out, params[i].text, params[i].len);
		/* "name" alone is signed as "name=" */
		if (params[i].name_len == params[i].len)
			str_puts(out, "=");
	}
	return 0;
}

typedef struct sigv4_canon_header {
	char name[64];
	const char *value;
} sigv4_canon_header;

static int header_cmp(const void *a, const void *b)
{
	return strcmp(((const sigv4_canon_header *)a)->name, ((const sigv4_canon_header *)b)->name);
}

/* Appends a value trimmed, with inner runs of spaces and tabs collapsed to one space. */
static void append_trimmed(sigv4_str *s, const char *v)
{
	int pending_space = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			pending_space = 1;
			continue;
		}
		if (pending_space)
			str_puts(s, " ");
		pending_space = 0;
		str_append(s, v, 1);
	}
}

int s3_sigv4_authorization(const s3_sigv4_request *req, char **out, char **canonical_out)
{
	sigv4_canon_header headers[SIGV4_HEADERS_MAX];
	sigv4_str canon = {0}, signed_names = {0}, to_sign = {0}, auth = {0};
	char date[9], scope[256], hash[S3_SHA256_HEX_LEN + 1], sig_hex[65];
	unsigned char k1[32], k2[32], sig[32];
	size_t i, j, secret_len;
	char *secret_key = NULL;
	int error = -1;

	*out = NULL;
	if (canonical_out)
		*canonical_out = NULL;
	if (req->header_count > SIGV4_HEADERS_MAX || !req->amz_date || strlen(req->amz_date) != 16)
		return -1;
	for (i = 0; i < req->header_count; i++) {
		size_t n = strlen(req->headers[i].name);

		if (n >= sizeof(headers[i].name))
			return -1;
		for (j = 0; j <= n; j++) {
			char c = req->headers[i].name[j];

			headers[i].name[j] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		headers[i].value = req->headers[i].value;
	}
	qsort(headers, req->header_count, sizeof(headers[0]), header_cmp);

	/* Canonical request: method, path, query, headers, signed names, payload hash. */
	str_puts(&canon, req->method);
	str_puts(&canon, "\n");
	str_puts(&canon, req->path && *req->path ? req->path : "/");
	str_puts(&canon, "\n");
	if (canonical_query(req->query, &canon) < 0)
		goto done;
	str_puts(&canon, "\n");
	for (i = 0; i < req->header_count; i++) {
		str_puts(&canon, headers[i].name);
		str_puts(&canon, ":");
		append_trimmed(&canon, headers[i].value);
		str_puts(&canon, "\n");
		if (i)
			str_puts(&signed_names, ";");
		str_puts(&signed_names, headers[i].name);
	}
	str_puts(&canon, "\n");
	str_puts(&canon, signed_names.data ? signed_names.data : "");
	str_puts(&canon, "\n");
	str_puts(&canon, req->payload_hash);
	if (canon.failed || signed_names.failed)
		goto done;

	/* String to sign: algorithm, date, scope, hash of the canonical request. */
	memcpy(date, req->amz_date, 8);
	date[8] = '\0';
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, req->region, req->service);
	s3_sha256_hex(canon.data, canon.len, hash);
	str_puts(&to_sign, "AWS4-HMAC-SHA256\n");
	str_puts(&to_sign, req->amz_date);
	str_puts(&to_sign, "\n");
	str_puts(&to_sign, scope);
	str_puts(&to_sign, "\n");
	str_puts(&to_sign, hash);
	if (to_sign.failed)
		goto done;

	/* Signing key: HMAC chain over date, region, service, "aws4_request". */
	secret_len = strlen(req->secret_key) + 4;
	if (!(secret_key = malloc(secret_len + 1)))
		goto done;
	memcpy(secret_key, "AWS4", 4);
	memcpy(secret_key + 4, req->secret_key, secret_len - 4 + 1);
	if (hmac_sha256(secret_key, secret_len, date, k1) < 0 ||
	    hmac_sha256(k1, sizeof(k1), req->region, k2) < 0 ||
	    hmac_sha256(k2, sizeof(k2), req->service, k1) < 0 ||
	    hmac_sha256(k1, sizeof(k1), "aws4_request", k2) < 0 ||
	    hmac_sha256(k2, sizeof(k2), to_sign.data, sig) < 0)
		goto done;
	hex_encode(sig, sizeof(sig), sig_hex);

	str_puts(&auth, "AWS4-HMAC-SHA256 Credential=");
	str_puts(&auth, req->access_key);
	str_puts(&auth, "/");
	str_puts(&auth, scope);
	str_puts(&auth, ", SignedHeaders=");
	str_puts(&auth, signed_names.data ? signed_names.data : "");
	str_puts(&auth, ", Signature=");
	str_puts(&auth, sig_hex);
	if (auth.failed)
		goto done;
	*out = auth.data;
	auth.data = NULL;
	if (canonical_out) {
		*canonical_out = canon.data;
		canon.data = NULL;
	}
	error = 0;
done:
	if (secret_key) {
		OPENSSL_cleanse(secret_key, secret_len);
		free(secret_key);
	}
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	free(canon.data);
	free(signed_names.data);
	free(to_sign.data);
	free(auth.data);
	return error;
}
