/* test_codec.c - unit tests for core/codec.c. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "codec.h"
#include "error.h"
#include "tap.h"

#define PREFIX "xyz"
#define PREFIX_LEN 3
#define CANARY 0xA5
#define CANARY_LEN 64

typedef struct sample {
	const char *name;
	const uint8_t *data;
	size_t len;
} sample;

static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

/* xorshift64*: fixed seeds make every run test the same bytes. */
static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static void fill_next(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(rng_next() >> 56);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	rng_seed(seed);
	fill_next(p, n);
}

/*
 * Text lines; with numbered, every line differs (realistic matching work),
 * without, the text repeats every 216 lines (fast even for lzma at 8 MiB).
 */
static void fill_text(uint8_t *p, size_t n, int numbered)
{
	static const char *const words[] = {"backup", "chunk", "pack", "index", "restore", "verify"};
	char line[128];
	size_t pos = 0, i = 0, len;

	while (pos < n) {
		len = numbered ? (size_t)snprintf(line, sizeof(line), "%zu: ", i) : 0;
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s the %s and %s it again\n",
		                        words[i % 6], words[(i / 6) % 6], words[(i / 36) % 6]);
		if (len > n - pos)
			len = n - pos;
		memcpy(p + pos, line, len);
		pos += len;
		i++;
	}
}

/* Messages are lowercase, one line, without a final period. */
static int message_ok(const char *expect_prefix)
{
	const char *m = cairn_error_message();
	size_t n = strlen(m);

	if (n == 0 || strncmp(m, expect_prefix, strlen(expect_prefix)) != 0 || m[n - 1] == '.' ||
	    strchr(m, '\n') || isupper((unsigned char)m[0])) {
		diag("unexpected message: '%s' (wanted prefix '%s')", m, expect_prefix);
		return 0;
	}
	return 1;
}

static void damaged_prefix(int id, char *out, size_t size)
{
	snprintf(out, size, "%s data is damaged: ",
	         id == CAIRN_CODEC_NONE ? "uncompressed" : cairn_codec_name(id));
}

/* Decompresses after a prefix; fails unless out is untouched on error. */
static int decompress_into(int id, const void *in, size_t in_len, size_t plain_len, cairn_buf *out)
{
	int rc;

	cairn_buf_clear(out);
	cairn_buf_append(out, PREFIX, PREFIX_LEN);
	rc = cairn_codec_decompress(id, in, in_len, plain_len, out);
	if (memcmp(out->data, PREFIX, PREFIX_LEN) != 0) {
		diag("prefix overwritten");
		return -1000;
	}
	if (rc < 0 && out->len != PREFIX_LEN) {
		diag("failed decompress changed len to %zu", out->len);
		return -1000;
	}
	if (rc == 0 && out->len != PREFIX_LEN + plain_len) {
		diag("decompress appended %zu bytes, expected %zu", out->len - PREFIX_LEN, plain_len);
		return -1000;
	}
	return rc;
}

static void expect_corrupt(int id, const char *what, const void *in, size_t in_len, size_t plain_len,
                           cairn_buf *out)
{
	char prefix[64];
	int rc = decompress_into(id, in, in_len, plain_len, out);

	damaged_prefix(id, prefix, sizeof(prefix));
	ok(rc == CAIRN_ECORRUPT, "%s: %s -> ECORRUPT (got %d)", cairn_codec_name(id), what, rc);
	if (rc == CAIRN_ECORRUPT)
		message_ok(prefix);
}

/* Damaged input with the wrong plain_len must not write past it. */
static void check_no_overrun(int id, const sample *s, const cairn_buf *comp, cairn_buf *out)
{
	size_t short_len = s->len - 1, i;
	uint8_t *tail;
	int rc, clean = 1;

	cairn_buf_clear(out);
	if (cairn_buf_reserve(out, s->len + CANARY_LEN) < 0) {
		ok(0, "reserve");
		return;
	}
	memset(out->data, CANARY, s->len + CANARY_LEN);
	rc = cairn_codec_decompress(id, comp->data, comp->len, short_len, out);
	tail = out->data + short_len;
	for (i = 0; i < CANARY_LEN + 1; i++)
		clean &= tail[i] == CANARY;
	ok(rc == CAIRN_ECORRUPT && clean && out->len == 0,
	   "%s/%s: plain_len one short -> ECORRUPT, nothing written past it", cairn_codec_name(id),
	   s->name);
}

static void test_sample(int id, const sample *s)
{
	const char *name = cairn_codec_name(id);
	cairn_buf comp = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT, damaged = CAIRN_BUF_INIT;
	size_t positions[16], i;
	int rc, bad = 0;

	cairn_buf_append(&comp, PREFIX, PREFIX_LEN);
	rc = cairn_codec_compress(id, 0, s->data, s->len, &comp);
	if (!ok(rc == 0 && memcmp(comp.data, PREFIX, PREFIX_LEN) == 0, "%s/%s: compress (%zu -> %zu)",
	        name, s->name, s->len, comp.len - PREFIX_LEN)) {
		diag("%s", cairn_error_message());
		goto done;
	}
	/* Drop the prefix so comp holds only the compressed bytes. */
	memmove(comp.data, comp.data + PREFIX_LEN, comp.len - PREFIX_LEN);
	comp.len -= PREFIX_LEN;

	rc = decompress_into(id, comp.data, comp.len, s->len, &out);
	ok(rc == 0 && (s->len == 0 || memcmp(out.data + PREFIX_LEN, s->data, s->len) == 0),
	   "%s/%s: round trip", name, s->name);
	if (rc < 0)
		diag("%s", cairn_error_message());

	expect_corrupt(id, "plain_len one too long", comp.data, comp.len, s->len + 1, &out);
	if (s->len > 0) {
		expect_corrupt(id, "plain_len one short", comp.data, comp.len, s->len - 1, &out);
		expect_corrupt(id, "plain_len halved", comp.data, comp.len, s->len / 2, &out);
		check_no_overrun(id, s, &comp, &out);
	}
	if (comp.len > 0) {
		expect_corrupt(id, "last byte cut", comp.data, comp.len - 1, s->len, &out);
		expect_corrupt(id, "cut in half", comp.data, comp.len / 2, s->len, &out);
	}
	if (id != CAIRN_CODEC_NONE)
		expect_corrupt(id, "no input", comp.data, 0, s->len, &out);

	cairn_buf_append(&damaged, comp.data, comp.len);
	cairn_buf_append(&damaged, "!", 1);
	expect_corrupt(id, "trailing byte", damaged.data, damaged.len, s->len, &out);

	/* Flipped bits need not be detected (lz4 has no checksum) but must not harm. */
	if (comp.len > 0) {
		for (i = 0; i < 16; i++)
			positions[i] = i < 8 ? i % comp.len : (comp.len - 1) * (i - 7) / 9;
		for (i = 0; i < 16; i++) {
			memcpy(damaged.data, comp.data, comp.len);
			damaged.data[positions[i]] ^= (uint8_t)(1u << (i % 8));
			rc = decompress_into(id, damaged.data, comp.len, s->len, &out);
			if (rc != 0 && rc != CAIRN_ECORRUPT) {
				diag("flip at %zu: rc %d: %s", positions[i], rc, cairn_error_message());
				bad++;
			}
		}
		ok(bad == 0, "%s/%s: 16 bit flips -> success or ECORRUPT", name, s->name);
	}
done:
	cairn_buf_free(&comp);
	cairn_buf_free(&out);
	cairn_buf_free(&damaged);
}

static void test_garbage(int id)
{
	static const uint8_t zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};
	static const uint8_t xz_magic[] = {0xfd, '7', 'z', 'X', 'Z', 0x00};
	static const size_t sizes[] = {1, 2, 7, 64, 1000, 4096};
	const char *name = cairn_codec_name(id);
	cairn_buf out = CAIRN_BUF_INIT;
	uint8_t garbage[4096];
	size_t i, len, plain_len;
	int rc, bad = 0, decoded = 0;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill_random(garbage, sizes[i], 1000 + i);
		plain_len = id == CAIRN_CODEC_NONE ? sizes[i] + 1 : 4096;
		rc = decompress_into(id, garbage, sizes[i], plain_len, &out);
		ok(rc == CAIRN_ECORRUPT, "%s: %zu random bytes -> ECORRUPT (got %d)", name, sizes[i], rc);
	}

	/* Past the magic, so the header and block parsers see the garbage. */
	fill_random(garbage, sizeof(garbage), 77);
	memcpy(garbage, zstd_magic, sizeof(zstd_magic));
	expect_corrupt(id, "zstd magic then garbage", garbage, sizeof(garbage), 8192, &out);
	fill_random(garbage, sizeof(garbage), 78);
	memcpy(garbage, xz_magic, sizeof(xz_magic));
	expect_corrupt(id, "xz magic then garbage", garbage, sizeof(garbage), 8192, &out);

	for (i = 0; i < 500; i++) {
		rng_seed(4242 + (uint64_t)id * 100003 + i);
		len = 1 + (size_t)(rng_next() % 512);
		plain_len = (size_t)(rng_next() % 8192);
		fill_next(garbage, len);
		rc = decompress_into(id, garbage, len, plain_len, &out);
		if (rc == 0)
			decoded++;
		else if (rc != CAIRN_ECORRUPT)
			bad++;
	}
	ok(bad == 0, "%s: 500 random inputs -> success or ECORRUPT (%d decoded)", name, decoded);
	cairn_buf_free(&out);
}

static void test_levels(int id, const sample *s)
{
	const char *name = cairn_codec_name(id);
	cairn_buf comp = CAIRN_BUF_INIT, def = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	int level, lo, hi, rc, failed = 0;

	if (id == CAIRN_CODEC_NONE) {
		lo = hi = 0;
	} else {
		lo = 1;
		hi = id == CAIRN_CODEC_ZSTD ? 22 : id == CAIRN_CODEC_LZ4 ? 12 : id == CAIRN_CODEC_LZMA ? 9 : 11;
	}
	for (level = lo; level <= hi; level++) {
		cairn_buf_clear(&comp);
		rc = cairn_codec_compress(id, level, s->data, s->len, &comp);
		if (rc == 0)
			rc = decompress_into(id, comp.data, comp.len, s->len, &out);
		if (rc < 0 || memcmp(out.data + PREFIX_LEN, s->data, s->len) != 0) {
			diag("%s level %d: %s", name, level, cairn_error_message());
			failed++;
		}
	}
	ok(failed == 0, "%s: every level %d-%d round trips", name, lo, hi);

	cairn_buf_clear(&comp);
	rc = cairn_codec_compress(id, 0, s->data, s->len, &comp);
	cairn_codec_compress(id, cairn_codec_default_level(id), s->data, s->len, &def);
	ok(rc == 0 && comp.len == def.len && memcmp(comp.data, def.data, def.len) == 0,
	   "%s: level 0 is the default level %d", name, cairn_codec_default_level(id));

	cairn_buf_clear(&comp);
	rc = cairn_codec_compress(id, hi + 1, s->data, s->len, &comp);
	ok(rc == CAIRN_EINVALID && comp.len == 0, "%s: level %d rejected", name, hi + 1);
	if (rc == CAIRN_EINVALID)
		message_ok(id == CAIRN_CODEC_NONE ? "compression method 'none' takes no level"
		                                  : "compression level");
	rc = cairn_codec_compress(id, -1, s->data, s->len, &comp);
	ok(rc == CAIRN_EINVALID && comp.len == 0, "%s: level -1 rejected", name);

	cairn_buf_free(&comp);
	cairn_buf_free(&def);
	cairn_buf_free(&out);
}

typedef struct parse_case {
	const char *spec;
	int rc;
	int id;
	int level;
	const char *message; /* expected message prefix on failure */
} parse_case;

static void test_parse(void)
{
	static const parse_case cases[] = {
		{"none", 0, CAIRN_CODEC_NONE, 0, NULL},
		{"zstd", 0, CAIRN_CODEC_ZSTD, 3, NULL},
		{"zstd:5", 0, CAIRN_CODEC_ZSTD, 5, NULL},
		{"zstd:0", 0, CAIRN_CODEC_ZSTD, 3, NULL},
		{"zstd:1", 0, CAIRN_CODEC_ZSTD, 1, NULL},
		{"zstd:22", 0, CAIRN_CODEC_ZSTD, 22, NULL},
		{"lz4", 0, CAIRN_CODEC_LZ4, 1, NULL},
		{"lz4:3", 0, CAIRN_CODEC_LZ4, 3, NULL},
		{"lz4:12", 0, CAIRN_CODEC_LZ4, 12, NULL},
		{"lzma", 0, CAIRN_CODEC_LZMA, 6, NULL},
		{"lzma:9", 0, CAIRN_CODEC_LZMA, 9, NULL},
		{"xz", 0, CAIRN_CODEC_LZMA, 6, NULL},
		{"xz:1", 0, CAIRN_CODEC_LZMA, 1, NULL},
		{"brotli", 0, CAIRN_CODEC_BROTLI, 6, NULL},
		{"brotli:11", 0, CAIRN_CODEC_BROTLI, 11, NULL},
		{"brotli:0", 0, CAIRN_CODEC_BROTLI, 6, NULL},
		{"gzip", CAIRN_EINVALID, 0, 0, "unknown compression method 'gzip'"},
		{"gzip:5", CAIRN_EINVALID, 0, 0, "unknown compression method 'gzip'"},
		{"", CAIRN_EINVALID, 0, 0, "unknown compression method ''"},
		{":3", CAIRN_EINVALID, 0, 0, "unknown compression method ''"},
		{"zstd5", CAIRN_EINVALID, 0, 0, "unknown compression method 'zstd5'"},
		{"zstdx", CAIRN_EINVALID, 0, 0, "unknown compression method 'zstdx'"},
		{"zst", CAIRN_EINVALID, 0, 0, "unknown compression method 'zst'"},
		{"zstd:99", CAIRN_EINVALID, 0, 0, "compression level '99' in 'zstd:99' is out of range"},
		{"zstd:23", CAIRN_EINVALID, 0, 0, "compression level '23' in 'zstd:23' is out of range"},
		{"zstd:99999999999999999999", CAIRN_EINVALID, 0, 0, "compression level '9999"},
		{"zstd:-1", CAIRN_EINVALID, 0, 0, "invalid compression level '-1'"},
		{"zstd:+3", CAIRN_EINVALID, 0, 0, "invalid compression level '+3'"},
		{"zstd: 3", CAIRN_EINVALID, 0, 0, "invalid compression level ' 3'"},
		{"zstd:3x", CAIRN_EINVALID, 0, 0, "invalid compression level '3x'"},
		{"zstd:", CAIRN_EINVALID, 0, 0, "invalid compression level ''"},
		{"zstd:3:4", CAIRN_EINVALID, 0, 0, "invalid compression level '3:4'"},
		{"lz4:13", CAIRN_EINVALID, 0, 0, "compression level '13' in 'lz4:13' is out of range"},
		{"lzma:10", CAIRN_EINVALID, 0, 0, "compression level '10' in 'lzma:10' is out of range"},
		{"xz:10", CAIRN_EINVALID, 0, 0, "compression level '10' in 'xz:10' is out of range"},
		{"brotli:12", CAIRN_EINVALID, 0, 0, "compression level '12' in 'brotli:12' is out of range"},
		{"none:1", CAIRN_EINVALID, 0, 0, "compression method 'none' takes no level"},
		{"none:0", CAIRN_EINVALID, 0, 0, "compression method 'none' takes no level"},
	};
	size_t i;
	int id, level, rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const parse_case *c = &cases[i];

		id = level = -1;
		cairn_error_clear();
		rc = cairn_codec_parse(c->spec, &id, &level);
		if (c->rc == 0) {
			ok(rc == 0 && id == c->id && level == c->level, "parse '%s' -> %d:%d (got %d, %d:%d)",
			   c->spec, c->id, c->level, rc, id, level);
		} else {
			ok(rc == c->rc && message_ok(c->message) && cairn_error_hint_text()[0] != 0,
			   "parse '%s' rejected with a hint", c->spec);
		}
	}
	rc = cairn_codec_parse("gzip", &id, &level);
	ok(strstr(cairn_error_hint_text(), "zstd") && strstr(cairn_error_hint_text(), "brotli"),
	   "unknown method hint lists the methods: %s", cairn_error_hint_text());
	rc = cairn_codec_parse(NULL, &id, &level);
	ok(rc == CAIRN_EINVALID, "parse NULL rejected");
}

static void test_names(void)
{
	ok(strcmp(cairn_codec_name(CAIRN_CODEC_NONE), "none") == 0 &&
	       strcmp(cairn_codec_name(CAIRN_CODEC_ZSTD), "zstd") == 0 &&
	       strcmp(cairn_codec_name(CAIRN_CODEC_LZ4), "lz4") == 0 &&
	       strcmp(cairn_codec_name(CAIRN_CODEC_LZMA), "lzma") == 0 &&
	       strcmp(cairn_codec_name(CAIRN_CODEC_BROTLI), "brotli") == 0,
	   "codec names");
	ok(cairn_codec_name(-1) == NULL && cairn_codec_name(CAIRN_CODEC_COUNT) == NULL,
	   "unknown ids have no name");
	ok(cairn_codec_default_level(CAIRN_CODEC_NONE) == 0 &&
	       cairn_codec_default_level(CAIRN_CODEC_ZSTD) == 3 &&
	       cairn_codec_default_level(CAIRN_CODEC_LZ4) == 1 &&
	       cairn_codec_default_level(CAIRN_CODEC_LZMA) == 6 &&
	       cairn_codec_default_level(CAIRN_CODEC_BROTLI) == 6,
	   "default levels");
}

static void test_unknown_id(void)
{
	cairn_buf out = CAIRN_BUF_INIT;
	int rc;

	rc = cairn_codec_compress(CAIRN_CODEC_COUNT, 0, "abc", 3, &out);
	ok(rc == CAIRN_EUNSUPPORTED && out.len == 0, "compress with unknown id -> EUNSUPPORTED");
	rc = cairn_codec_compress(-1, 0, "abc", 3, &out);
	ok(rc == CAIRN_EUNSUPPORTED && out.len == 0, "compress with id -1 -> EUNSUPPORTED");
	rc = cairn_codec_decompress(CAIRN_CODEC_COUNT, "abc", 3, 3, &out);
	ok(rc == CAIRN_EUNSUPPORTED && out.len == 0, "decompress with unknown id -> EUNSUPPORTED");
	cairn_buf_free(&out);
}

/* NULL with length 0 is a valid empty input. */
static void test_null_empty(int id)
{
	cairn_buf comp = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	int rc;

	rc = cairn_codec_compress(id, 0, NULL, 0, &comp);
	if (rc == 0)
		rc = cairn_codec_decompress(id, comp.len ? comp.data : NULL, comp.len, 0, &out);
	ok(rc == 0 && out.len == 0, "%s: NULL empty input round trips", cairn_codec_name(id));
	cairn_buf_free(&comp);
	cairn_buf_free(&out);
}

int main(void)
{
	static const uint8_t one_byte[1] = {'x'};
	size_t random_len = (size_t)1 << 20, text_len = (size_t)8 << 20, numbered_len = 131072;
	uint8_t *random_data = malloc(random_len), *text_data = malloc(text_len);
	uint8_t *numbered_data = malloc(numbered_len);
	sample samples[5];
	size_t i;
	int id;

	if (!random_data || !text_data || !numbered_data) {
		ok(0, "allocate test data");
		goto done;
	}
	fill_random(random_data, random_len, 12345);
	fill_text(text_data, text_len, 0);
	fill_text(numbered_data, numbered_len, 1);
	samples[0] = (sample){"empty", one_byte, 0};
	samples[1] = (sample){"1 byte", one_byte, 1};
	samples[2] = (sample){"random 1 MiB", random_data, random_len};
	samples[3] = (sample){"text 8 MiB", text_data, text_len};
	samples[4] = (sample){"numbered text 100003 bytes", numbered_data, 100003};

	test_names();
	test_parse();
	test_unknown_id();
	for (id = 0; id < CAIRN_CODEC_COUNT; id++) {
		for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
			test_sample(id, &samples[i]);
		test_null_empty(id);
		test_garbage(id);
		test_levels(id, &(sample){"numbered text 16 KiB", numbered_data, 16384});
	}
done:
	free(random_data);
	free(text_data);
	free(numbered_data);
	return tap_done();
}
