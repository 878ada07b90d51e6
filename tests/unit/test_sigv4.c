/*
 * test_sigv4.c - the s3 storage's Signature Version 4 against AWS's
 * published examples: the S3 "sig-v4-header-based-auth" GET with a Range
 * header, and the older generic test suite's request with repeated query
 * parameters (which checks sorting by value). Also the URI encoding rules.
 */
#include <stdlib.h>
#include <string.h>

#include "../../storages/s3/sigv4.h"
#include "tap.h"

static void test_s3_get_object_example(void)
{
	static const s3_sigv4_header headers[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Range", "bytes=0-9"},
	    {"x-amz-content-sha256", S3_EMPTY_SHA256},
	    {"x-amz-date", "20130524T000000Z"},
	};
	static const char expected_canonical[] =
	    "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
	    "x-amz-content-sha256:" S3_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
	    "host;range;x-amz-content-sha256;x-amz-date\n" S3_EMPTY_SHA256;
	static const char expected_auth[] =
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
	    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
	    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
	s3_sigv4_request req = {
	    .method = "GET",
	    .path = "/test.txt",
	    .query = "",
	    .headers = headers,
	    .header_count = sizeof(headers) / sizeof(headers[0]),
	    .payload_hash = S3_EMPTY_SHA256,
	    .amz_date = "20130524T000000Z",
	    .region = "us-east-1",
	    .service = "s3",
	    .access_key = "AKIAIOSFODNN7EXAMPLE",
	    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	};
	char *auth = NULL, *canonical = NULL;
	int rc = s3_sigv4_authorization(&req, &auth, &canonical);

	ok(rc == 0, "GET object example signs");
	ok(canonical && strcmp(canonical, expected_canonical) == 0,
	   "GET object example: canonical request as published");
	ok(auth && strcmp(auth, expected_auth) == 0, "GET object example: signature f0e8bdb8...");
	if (auth && strcmp(auth, expected_auth) != 0)
		diag("got %s", auth);
	free(auth);
	free(canonical);
}

/* The same request with headers in another order and odd spacing signs the same. */
static void test_header_order_and_spacing(void)
{
	static const s3_sigv4_header headers[] = {
	    {"X-Amz-Date", "20130524T000000Z"},
	    {"RANGE", "  bytes=0-9 "},
	    {"x-amz-content-sha256", S3_EMPTY_SHA256},
	    {"host", "examplebucket.s3.amazonaws.com"},
	};
	s3_sigv4_request req = {
	    .method = "GET",
	    .path = "/test.txt",
	    .query = NULL,
	    .headers = headers,
	    .header_count = 4,
	    .payload_hash = S3_EMPTY_SHA256,
	    .amz_date = "20130524T000000Z",
	    .region = "us-east-1",
	    .service = "s3",
	    .access_key = "AKIAIOSFODNN7EXAMPLE",
	    .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	};
	char *auth = NULL;

	ok(s3_sigv4_authorization(&req, &auth, NULL) == 0 && auth &&
	       strstr(auth, "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
	   "header names are lowercased and sorted, values trimmed");
	free(auth);
}

/* AWS's generic test suite: GET /?foo=Zoo&foo=aha, service "host". */
static void test_query_order_by_value(void)
{
	static const s3_sigv4_header headers[] = {
	    {"Date", "Mon, 09 Sep 2011 23:36:00 GMT"},
	    {"Host", "host.foo.com"},
	};
	static const char expected_canonical[] =
	    "GET\n/\nfoo=Zoo&foo=aha\ndate:Mon, 09 Sep 2011 23:36:00 GMT\nhost:host.foo.com\n\n"
	    "date;host\n" S3_EMPTY_SHA256;
	s3_sigv4_request req = {
	    .method = "GET",
	    .path = "/",
	    .query = "foo=aha&foo=Zoo",
	    .headers = headers,
	    .header_count = 2,
	    .payload_hash = S3_EMPTY_SHA256,
	    .amz_date = "20110909T233600Z",
	    .region = "us-east-1",
	    .service = "host",
	    .access_key = "AKIDEXAMPLE",
	    .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	};
	char *auth = NULL, *canonical = NULL;
	char hash[S3_SHA256_HEX_LEN + 1] = "";

	ok(s3_sigv4_authorization(&req, &auth, &canonical) == 0, "query example signs");
	ok(canonical && strcmp(canonical, expected_canonical) == 0,
	   "query parameters sort by name, then value");
	if (canonical)
		s3_sha256_hex(canonical, strlen(canonical), hash);
	ok(strcmp(hash, "e25f777ba161a0f1baf778a87faf057187cf5987f17953320e3ca399feb5f00d") == 0,
	   "canonical request hash as published");
	ok(auth && strstr(auth, "Signature=be7148d34ebccdc6423b19085378aa0bee970bdc61d144bd1a8c48c33079ab09"),
	   "query example: signature as published");
	if (auth && !strstr(auth, "be7148d34ebccdc6423b19085378aa0bee970bdc61d144bd1a8c48c33079ab09"))
		diag("got %s", auth);
	free(auth);
	free(canonical);
}

static void test_uri_encode(void)
{
	char out[64], hash[S3_SHA256_HEX_LEN + 1];
	size_t n;

	n = s3_uri_encode("a b/c~d+e$f", 1, out, sizeof(out));
	ok(strcmp(out, "a%20b/c~d%2Be%24f") == 0 && n == strlen(out), "path keeps '/' and '~'");
	s3_uri_encode("a/b=c&d", 0, out, sizeof(out));
	ok(strcmp(out, "a%2Fb%3Dc%26d") == 0, "query value encodes '/', '=' and '&'");
	n = s3_uri_encode("abc/def", 0, out, 4);
	ok(n == 9 && strcmp(out, "abc") == 0, "too small a buffer truncates and reports the need");
	s3_sha256_hex("", 0, hash);
	ok(strcmp(hash, S3_EMPTY_SHA256) == 0, "SHA-256 of nothing");
}

int main(void)
{
	test_s3_get_object_example();
	test_header_order_and_spacing();
	test_query_order_by_value();
	test_uri_encode();
	return tap_done();
}
