/* test_crypto.c - known-answer and failure tests for core/crypto.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "error.h"
#include "tap.h"

static int equals_hex(const uint8_t *got, size_t len, const char *want)
{
	char hex[2 * 256 + 1];

	if (len > 256)
		return 0;
	cairn_hex_encode(got, len, hex);
	if (strcmp(hex, want) != 0) {
		diag("got  %s", hex);
		diag("want %s", want);
		return 0;
	}
	return 1;
}

static void test_sha256(void)
{
	uint8_t md[CAIRN_HASH_LEN];

	cairn_sha256("abc", 3, md);
	ok(equals_hex(md, sizeof(md),
	              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	   "sha256(\"abc\")");
	cairn_sha256(NULL, 0, md);
	ok(equals_hex(md, sizeof(md),
	              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	   "sha256 of nothing");
}

static void test_hmac(void)
{
	static const char data[] = "what do ya want for nothing?";
	uint8_t md[CAIRN_HASH_LEN];

	/* RFC 4231 test case 2 */
	cairn_hmac_sha256((const uint8_t *)"Jefe", 4, data, strlen(data), md);
	ok(equals_hex(md, sizeof(md),
	              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
	   "hmac-sha256 RFC 4231 test case 2");
	/* HMAC with an empty key and message, a well known value */
	cairn_hmac_sha256(NULL, 0, NULL, 0, md);
	ok(equals_hex(md, sizeof(md),
	              "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"),
	   "hmac-sha256 with empty key and message");
}

/* Streams buf through a cairn_hash in uneven pieces. */
static int hash_in_pieces(const uint8_t *key, size_t key_len, const uint8_t *buf, size_t len,
                          uint8_t out[CAIRN_HASH_LEN])
{
	cairn_hash *h = NULL;
	size_t off = 0, piece = 1;
	int error;

	if ((error = cairn_hash_new(&h, key, key_len)) < 0)
		goto done;
	while (off < len) {
		size_t n = piece < len - off ? piece : len - off;

		if ((error = cairn_hash_update(h, buf + off, n)) < 0)
			goto done;
		off += n;
		piece = piece * 3 + 1;
	}
	if ((error = cairn_hash_update(h, buf, 0)) < 0)
		goto done;
	error = cairn_hash_final(h, out);

done:
	cairn_hash_free(h);
	return error;
}

static void test_streaming_hash(void)
{
	size_t len = 100000;
	uint8_t *buf = malloc(len);
	uint8_t one[CAIRN_HASH_LEN], streamed[CAIRN_HASH_LEN];
	uint8_t key[40];
	cairn_hash *h = NULL;
	size_t i;

	if (!buf)
		abort();
	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 9));
	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0xa0 + i);

	cairn_sha256(buf, len, one);
	ok(hash_in_pieces(NULL, 0, buf, len, streamed) == 0 && memcmp(one, streamed, 32) == 0,
	   "streaming sha256 equals one-shot");
	cairn_hmac_sha256(key, sizeof(key), buf, len, one);
	ok(hash_in_pieces(key, sizeof(key), buf, len, streamed) == 0 &&
	       memcmp(one, streamed, 32) == 0,
	   "streaming hmac-sha256 equals one-shot");
	cairn_hmac_sha256((const uint8_t *)"", 0, buf, len, one);
	ok(hash_in_pieces((const uint8_t *)"", 0, buf, len, streamed) == 0 &&
	       memcmp(one, streamed, 32) == 0,
	   "streaming hmac-sha256 with an empty key equals one-shot");

	ok(cairn_hash_new(&h, NULL, 0) == 0 && cairn_hash_final(h, streamed) == 0 &&
	       cairn_hash_update(h, "x", 1) == CAIRN_EINVALID &&
	       cairn_hash_final(h, streamed) == CAIRN_EINVALID,
	   "hash refuses use after final");
	cairn_hash_free(h);
	cairn_hash_free(NULL);
	free(buf);
}

static void test_random(void)
{
	uint8_t a[32], b[32], zero[32] = {0};

	ok(cairn_random_bytes(a, sizeof(a)) == 0 && cairn_random_bytes(b, sizeof(b)) == 0 &&
	       memcmp(a, b, sizeof(a)) != 0 && memcmp(a, zero, sizeof(a)) != 0,
	   "random bytes differ between calls");
	ok(cairn_random_bytes(a, 0) == 0, "zero random bytes");
}

/* McGrew & Viega GCM spec test cases 13 and 14 (AES-256, 96-bit IV). */
static void test_aead_vectors(void)
{
	uint8_t key[CAIRN_KEY_LEN] = {0}, nonce[CAIRN_NONCE_LEN] = {0}, zeros[16] = {0};
	cairn_buf out = CAIRN_BUF_INIT;

	ok(cairn_aead_encrypt(key, nonce, NULL, 0, NULL, 0, &out) == 0 &&
	       equals_hex(out.data, out.len, "530f8afbc74536b9a963b4f1c4cb738b"),
	   "aes-256-gcm test case 13 (empty plaintext)");
	cairn_buf_clear(&out);
	ok(cairn_aead_encrypt(key, nonce, NULL, 0, zeros, sizeof(zeros), &out) == 0 &&
	       equals_hex(out.data, out.len,
	                  "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"),
	   "aes-256-gcm test case 14");
	cairn_buf_free(&out);
}

/*
 * Decrypts sealed into a buffer that already holds a prefix and checks that
 * it fails with CAIRN_ECORRUPT and leaves the buffer as it was.
 */
static int decrypt_rejected(const uint8_t *key, const uint8_t *nonce, const void *aad,
                            size_t aad_len, const uint8_t *sealed, size_t sealed_len)
{
	static const char prefix[] = "existing contents";
	cairn_buf out = CAIRN_BUF_INIT;
	int error, unchanged;

	if (cairn_buf_append(&out, prefix, sizeof(prefix)) < 0)
		abort();
	cairn_error_clear();
	error = cairn_aead_decrypt(key, nonce, aad, aad_len, sealed, sealed_len, &out);
	unchanged = out.len == sizeof(prefix) && memcmp(out.data, prefix, sizeof(prefix)) == 0;
	if (error != CAIRN_ECORRUPT || !unchanged ||
	    !strstr(cairn_error_message(), "authentication failed"))
		diag("error %d, unchanged %d, message \"%s\"", error, unchanged, cairn_error_message());
	cairn_buf_free(&out);
	return error == CAIRN_ECORRUPT && unchanged &&
	       strstr(cairn_error_message(), "authentication failed") != NULL;
}

static void test_aead_roundtrip(void)
{
	static const char aad[] = "chunk 0123 of pack 4567";
	uint8_t key[CAIRN_KEY_LEN], wrong_key[CAIRN_KEY_LEN], nonce[CAIRN_NONCE_LEN];
	size_t len = 70000, i;
	uint8_t *plain = malloc(len), *sealed;
	cairn_buf enc = CAIRN_BUF_INIT, dec = CAIRN_BUF_INIT;

	if (!plain)
		abort();
	for (i = 0; i < len; i++)
		plain[i] = (uint8_t)(i ^ (i >> 8));
	for (i = 0; i < CAIRN_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	memcpy(wrong_key, key, sizeof(key));
	wrong_key[31] ^= 1;
	for (i = 0; i < CAIRN_NONCE_LEN; i++)
		nonce[i] = (uint8_t)(0xf0 + i);

	/* Append after existing bytes, as pack writers do. */
	if (cairn_buf_append(&enc, "HDR", 3) < 0)
		abort();
	ok(cairn_aead_encrypt(key, nonce, aad, strlen(aad), plain, len, &enc) == 0 &&
	       enc.len == 3 + len + CAIRN_TAG_LEN && memcmp(enc.data, "HDR", 3) == 0,
	   "encrypt appends ciphertext and tag");
	sealed = enc.data + 3;
	ok(memcmp(sealed, plain, 64) != 0, "ciphertext differs from plaintext");

	if (cairn_buf_append(&dec, "X", 1) < 0)
		abort();
	ok(cairn_aead_decrypt(key, nonce, aad, strlen(aad), sealed, len + CAIRN_TAG_LEN, &dec) == 0 &&
	       dec.len == 1 + len && dec.data[0] == 'X' && memcmp(dec.data + 1, plain, len) == 0,
	   "decrypt round trip");

	sealed[100] ^= 0x01;
	ok(decrypt_rejected(key, nonce, aad, strlen(aad), sealed, len + CAIRN_TAG_LEN),
	   "tampered ciphertext byte is rejected");
	sealed[100] ^= 0x01;
	sealed[len + 5] ^= 0x80;
	ok(decrypt_rejected(key, nonce, aad, strlen(aad), sealed, len + CAIRN_TAG_LEN),
	   "tampered tag is rejected");
	sealed[len + 5] ^= 0x80;
	ok(decrypt_rejected(key, nonce, "chunk 0123 of pack 4568", strlen(aad), sealed,
	                    len + CAIRN_TAG_LEN),
	   "tampered aad is rejected");
	ok(decrypt_rejected(key, nonce, NULL, 0, sealed, len + CAIRN_TAG_LEN), "missing aad is rejected");
	ok(decrypt_rejected(wrong_key, nonce, aad, strlen(aad), sealed, len + CAIRN_TAG_LEN),
	   "wrong key is rejected");
	ok(decrypt_rejected(key, nonce, aad, strlen(aad), sealed, len + CAIRN_TAG_LEN - 1),
	   "truncated sealed buffer is rejected");
	ok(decrypt_rejected(key, nonce, aad, strlen(aad), sealed, CAIRN_TAG_LEN - 1),
	   "sealed buffer shorter than a tag is rejected");
	ok(decrypt_rejected(key, nonce, aad, strlen(aad), sealed, 0), "empty sealed buffer is rejected");

	cairn_buf_clear(&dec);
	ok(cairn_aead_decrypt(key, nonce, aad, strlen(aad), sealed, len + CAIRN_TAG_LEN, &dec) == 0 &&
	       dec.len == len && memcmp(dec.data, plain, len) == 0,
	   "untampered data still decrypts");

	cairn_buf_free(&enc);
	cairn_buf_free_secure(&dec);
	free(plain);
}

static void test_scrypt(void)
{
	uint8_t out[64];

	/* RFC 7914 section 12, third vector */
	ok(cairn_scrypt("password", 8, (const uint8_t *)"NaCl", 4, 1024, 8, 16, out, sizeof(out)) == 0 &&
	       equals_hex(out, sizeof(out),
	                  "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22"
	                  "a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"),
	   "scrypt RFC 7914 vector (N=1024, r=8, p=16)");
	/* RFC 7914 section 12, first vector: empty passphrase and salt */
	ok(cairn_scrypt("", 0, NULL, 0, 16, 1, 1, out, sizeof(out)) == 0 &&
	       equals_hex(out, sizeof(out),
	                  "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded09"
	                  "48f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"),
	   "scrypt RFC 7914 vector with empty passphrase and salt");
	/* The cost a repository is created with needs 128 MiB, well above OpenSSL's default limit. */
	ok(cairn_scrypt("pw", 2, (const uint8_t *)"salt", 4, (uint64_t)1 << 17, 8, 1, out, 32) == 0,
	   "scrypt runs with N=2^17, r=8, p=1");
	ok(cairn_scrypt("pw", 2, (const uint8_t *)"salt", 4, 1000, 8, 1, out, 32) == CAIRN_EINVALID,
	   "scrypt rejects N that is not a power of two");
	ok(cairn_scrypt("pw", 2, (const uint8_t *)"salt", 4, 1024, 0, 1, out, 32) == CAIRN_EINVALID,
	   "scrypt rejects r = 0");
	ok(cairn_scrypt("pw", 2, (const uint8_t *)"salt", 4, (uint64_t)1 << 40, 8, 1, out, 32) ==
	       CAIRN_EINVALID,
	   "scrypt rejects parameters above the memory limit");
	diag("%s", cairn_error_message());
}

static void test_hkdf(void)
{
	uint8_t ikm[22], salt[13], okm[42];
	char info[11];
	size_t i;

	/* RFC 5869 test case 1 */
	memset(ikm, 0x0b, sizeof(ikm));
	for (i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	for (i = 0; i < 10; i++)
		info[i] = (char)(0xf0 + i);
	info[10] = 0;
	ok(cairn_hkdf_sha256(ikm, sizeof(ikm), salt, sizeof(salt), info, okm, sizeof(okm)) == 0 &&
	       equals_hex(okm, sizeof(okm),
	                  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b8"
	                  "87185865"),
	   "hkdf-sha256 RFC 5869 test case 1");
	/* RFC 5869 test case 3: no salt, no info */
	ok(cairn_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, NULL, okm, sizeof(okm)) == 0 &&
	       equals_hex(okm, sizeof(okm),
	                  "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4"
	                  "b61a96c8"),
	   "hkdf-sha256 RFC 5869 test case 3");
	ok(cairn_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, "x", okm, 0) == CAIRN_EINVALID,
	   "hkdf rejects an empty output");
}

static void test_crc32c(void)
{
	static const char check[] = "123456789";
	uint8_t buf[1000];
	uint32_t whole, parts;
	size_t i, split;
	int all_equal = 1;

	ok(cairn_crc32c(0, check, 9) == 0xE3069283u, "crc32c check value");
	ok(cairn_crc32c(0, NULL, 0) == 0, "crc32c of nothing is 0");
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	/* 32 zero bytes: RFC 3720 B.4 */
	memset(buf, 0, 32);
	ok(cairn_crc32c(0, buf, 32) == 0x8A9136AAu, "crc32c of 32 zero bytes (RFC 3720)");
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	whole = cairn_crc32c(0, buf, sizeof(buf));
	for (split = 0; split <= 20; split++) {
		parts = cairn_crc32c(cairn_crc32c(0, buf, split), buf + split, sizeof(buf) - split);
		all_equal &= parts == whole;
		/* unaligned starts and odd tails take the byte-wise path */
		parts = cairn_crc32c(0, buf + split, sizeof(buf) - split - split % 7);
		all_equal &= parts == cairn_crc32c(cairn_crc32c(0, buf + split, 3), buf + split + 3,
		                                   sizeof(buf) - split - split % 7 - 3);
	}
	ok(all_equal, "crc32c chains over any split");
}

static void test_hex(void)
{
	uint8_t bytes[256], back[256];
	char hex[2 * 256 + 1];
	size_t i;
	int error;

	for (i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)i;
	cairn_hex_encode(bytes, sizeof(bytes), hex);
	ok(strlen(hex) == 512 && strncmp(hex, "000102", 6) == 0 && strcmp(hex + 506, "fdfeff") == 0,
	   "hex encode is lowercase and terminated");
	ok(cairn_hex_decode(hex, back, sizeof(back)) == 0 && memcmp(bytes, back, sizeof(bytes)) == 0,
	   "hex round trip");
	ok(cairn_hex_decode("DEADbeef", back, 4) == 0 && back[0] == 0xde && back[3] == 0xef,
	   "hex decode accepts upper case");
	ok(cairn_hex_decode("", back, 0) == 0, "empty hex");

	memset(back, 0x55, 4);
	error = cairn_hex_decode("00112g33", back, 4);
	ok(error == CAIRN_EINVALID && back[0] == 0x55 && !strstr(cairn_error_message(), "00112g33"),
	   "hex decode rejects a non-hex digit, keeps out, does not echo the input");
	ok(cairn_hex_decode("0011223", back, 4) == CAIRN_EINVALID, "hex decode rejects odd length");
	ok(cairn_hex_decode("001122", back, 4) == CAIRN_EINVALID, "hex decode rejects short input");
	ok(cairn_hex_decode("0011223344", back, 4) == CAIRN_EINVALID, "hex decode rejects long input");
	ok(cairn_hex_decode("00 11 22 33", back, 4) == CAIRN_EINVALID, "hex decode rejects spaces");
	ok(cairn_hex_decode("0x112233", back, 4) == CAIRN_EINVALID, "hex decode rejects a 0x prefix");
}

static void test_secure_zero(void)
{
	uint8_t secret[48];
	size_t i;
	int zero = 1;

	memset(secret, 0xa5, sizeof(secret));
	cairn_secure_zero(secret, sizeof(secret));
	for (i = 0; i < sizeof(secret); i++)
		zero &= secret[i] == 0;
	ok(zero, "secure zero clears memory");
}

int main(void)
{
	test_sha256();
	test_hmac();
	test_streaming_hash();
	test_random();
	test_aead_vectors();
	test_aead_roundtrip();
	test_scrypt();
	test_hkdf();
	test_crc32c();
	test_hex();
	test_secure_zero();
	return tap_done();
}
