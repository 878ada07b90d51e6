/*
 * sigv4.h - AWS Signature Version 4 for the s3 storage.
 *
 * Written here rather than left to libcurl's CURLOPT_AWS_SIGV4 so that the
 * plugin controls exactly what is signed: the real SHA-256 of every body,
 * the session token, the storage class and encryption headers, and a fresh
 * date on every attempt of a retried request. The unit test
 * tests/unit/test_sigv4.c checks it against AWS's published examples.
 *
 * Nothing here keeps state or allocates beyond the strings it returns, so it
 * may be called from several threads at once.
 */
#ifndef CAIRN_S3_SIGV4_H
#define CAIRN_S3_SIGV4_H

#include <stddef.h>

#define S3_SHA256_HEX_LEN 64
/* The payload hash of an empty body. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct s3_sigv4_header {
	const char *name;  /* any case; signed in lowercase */
	const char *value; /* trimmed and inner runs of spaces collapsed when signed */
} s3_sigv4_header;

typedef struct s3_sigv4_request {
	const char *method;
	const char *path;  /* as sent: absolute and already URI-encoded ("/bucket/a%20b") */
	const char *query; /* as sent, "" or NULL for none: "b=2&a=1" (sorted when signed) */
	const s3_sigv4_header *headers; /* every header to sign: host and x-amz-date included */
	size_t header_count;
	const char *payload_hash; /* lowercase hex SHA-256 of the body */
	const char *amz_date;     /* "20130524T000000Z": the x-amz-date header's value */
	const char *region;       /* "us-east-1" */
	const char *service;      /* "s3" */
	const char *access_key;
	const char *secret_key;
} s3_sigv4_request;

/*
 * Computes the Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") into a new string *out that the caller
 * frees. With canonical_out set, also returns the canonical request (for
 * tests and debugging; it holds no secret). Returns 0, or -1 when out of
 * memory or when the input is malformed (too many headers, bad date).
 */
int s3_sigv4_authorization(const s3_sigv4_request *req, char **out, char **canonical_out);

/* Lowercase hex SHA-256 of data into out (S3_SHA256_HEX_LEN + 1 bytes). */
void s3_sha256_hex(const void *data, size_t len, char *out);

/*
 * Appends the URI encoding of s (RFC 3986: all but A-Z a-z 0-9 - . _ ~ as
 * %XX uppercase; '/' kept when keep_slash) to out, which has room for
 * out_len bytes including the NUL. Returns the length it needed (as
 * snprintf does).
 */
size_t s3_uri_encode(const char *s, int keep_slash, char *out, size_t out_len);

#endif
