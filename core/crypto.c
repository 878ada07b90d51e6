/* crypto.c - hashing, MAC, AEAD, KDF and randomness (see crypto.h). */
#include "crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cairn/util.h>

#include "error.h"

/*
 * scrypt needs about 128 * r * (N + p + 2) bytes. Parameters come from the
 * repository configuration, so a hostile or damaged repository could ask
 * for any amount: refuse more than this instead of trying.
 */
#define SCRYPT_MAX_MEMORY ((uint64_t)1 << 30)

/* libcrypto takes int lengths in the cipher and RNG calls; feed in slices. */
#define OPENSSL_SLICE ((size_t)1 << 30)

/*
 * Records `what`, followed by the oldest queued OpenSSL error when there is
 * one, and empties OpenSSL's queue. OpenSSL's texts name algorithms and
 * reasons, never the data or keys passed in.
 */
static int crypto_error(int code, const char *what)
{
	char detail[256];
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	if (!e)
		return cairn_error_set(code, "%s", what);
	ERR_error_string_n(e, detail, sizeof(detail));
	return cairn_error_set(code, "%s: %s", what, detail);
}

/*
 * The one-shot digests have no error return (crypto.h). libcrypto fails
 * there only when it is unusable (out of memory, no default provider), and
 * going on with a wrong digest would silently merge unrelated chunks, so
 * stop the process instead.
 */
static void crypto_abort(const char *what)
{
	fprintf(stderr, "cairn: fatal: %s failed in libcrypto\n", what);
	ERR_print_errors_fp(stderr);
	abort();
}

/* ---- hashing -------------------------------------------------------- */

void cairn_sha256(const void *data, size_t len, uint8_t out[CAIRN_HASH_LEN])
{
	if (EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) != 1)
		crypto_abort("SHA-256");
}

void cairn_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                       uint8_t out[CAIRN_HASH_LEN])
{
	size_t out_len = 0;

	/* EVP_Q_mac treats a NULL key as "no key"; HMAC with an empty key is valid. */
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key ? key : (const uint8_t *)"", key_len,
	               data, len, out, CAIRN_HASH_LEN, &out_len) ||
	    out_len != CAIRN_HASH_LEN)
		crypto_abort("HMAC-SHA256");
}

struct cairn_hash {
	EVP_MD_CTX *md;   /* plain SHA-256, or NULL */
	EVP_MAC_CTX *mac; /* HMAC-SHA256, or NULL */
	int finished;
};

int cairn_hash_new(cairn_hash **out, const uint8_t *hmac_key, size_t key_len)
{
	OSSL_PARAM params[2];
	EVP_MAC *mac = NULL;
	cairn_hash *h;
	int error;

	*out = NULL;
	if (!(h = calloc(1, sizeof(*h))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory allocating a hash context");

	if (hmac_key) {
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (!(mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) || !(h->mac = EVP_MAC_CTX_new(mac)) ||
		    !EVP_MAC_init(h->mac, key_len ? hmac_key : (const uint8_t *)"", key_len, params)) {
			error = crypto_error(CAIRN_ERROR, "setting up HMAC-SHA256");
			goto done;
		}
	} else {
		if (!(h->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex2(h->md, EVP_sha256(), NULL)) {
			error = crypto_error(CAIRN_ERROR, "setting up SHA-256");
			goto done;
		}
	}
	*out = h;
	h = NULL;
	error = 0;

done:
	EVP_MAC_free(mac);
	cairn_hash_free(h);
	return error;
}

int cairn_hash_update(cairn_hash *h, const void *data, size_t len)
{
	if (h->finished)
		return cairn_error_set(CAIRN_EINVALID, "hash updated after it was finalized");
	if (len == 0)
		return 0;
	if (h->mac ? !EVP_MAC_update(h->mac, data, len) : !EVP_DigestUpdate(h->md, data, len))
		return crypto_error(CAIRN_ERROR, "hashing failed");
	return 0;
}

int cairn_hash_final(cairn_hash *h, uint8_t out[CAIRN_HASH_LEN])
{
	unsigned int md_len = 0;
	size_t mac_len = 0;

	if (h->finished)
		return cairn_error_set(CAIRN_EINVALID, "hash finalized twice");
	h->finished = 1;
	if (h->mac) {
		if (!EVP_MAC_final(h->mac, out, &mac_len, CAIRN_HASH_LEN) || mac_len != CAIRN_HASH_LEN)
			return crypto_error(CAIRN_ERROR, "finishing HMAC-SHA256");
	} else {
		if (!EVP_DigestFinal_ex(h->md, out, &md_len) || md_len != CAIRN_HASH_LEN)
			return crypto_error(CAIRN_ERROR, "finishing SHA-256");
	}
	return 0;
}

void cairn_hash_free(cairn_hash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->md);
	EVP_MAC_CTX_free(h->mac); /* cleanses the HMAC key schedule */
	free(h);
}

/* ---- randomness ----------------------------------------------------- */

int cairn_random_bytes(void *out, size_t len)
{
	uint8_t *p = out;

	while (len > 0) {
		size_t n = len < OPENSSL_SLICE ? len : OPENSSL_SLICE;

		if (RAND_bytes(p, (int)n) != 1)
			return crypto_error(CAIRN_ERROR, "random number generator failed");
		p += n;
		len -= n;
	}
	return 0;
}

/* ---- AES-256-GCM ---------------------------------------------------- */

/* Feeds AAD (dst NULL) or text through an initialised GCM context. */
static int aead_update(EVP_CIPHER_CTX *ctx, uint8_t *dst, const uint8_t *src, size_t len)
{
	while (len > 0) {
		size_t n = len < OPENSSL_SLICE ? len : OPENSSL_SLICE;
		int produced;

		if (!EVP_CipherUpdate(ctx, dst, &produced, src, (int)n))
			return crypto_error(CAIRN_ERROR, "AES-256-GCM failed");
		if (dst)
			dst += produced;
		src += n;
		len -= n;
	}
	return 0;
}

int cairn_aead_encrypt(const uint8_t key[CAIRN_KEY_LEN], const uint8_t nonce[CAIRN_NONCE_LEN],
                       const void *aad, size_t aad_len, const void *plain, size_t len,
                       cairn_buf *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	uint8_t *dst;
	int error, tail;

	if (len > SIZE_MAX - CAIRN_TAG_LEN)
		return cairn_error_set(CAIRN_EINVALID, "plaintext too large to encrypt");
	if ((error = cairn_buf_reserve(out, len + CAIRN_TAG_LEN)) < 0)
		return error;
	dst = out->data + out->len;

	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    !EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, NULL)) {
		error = crypto_error(CAIRN_ERROR, "setting up AES-256-GCM encryption");
		goto done;
	}
	if ((error = aead_update(ctx, NULL, aad, aad_len)) < 0 ||
	    (error = aead_update(ctx, dst, plain, len)) < 0)
		goto done;
	if (!EVP_EncryptFinal_ex(ctx, dst + len, &tail)) {
		error = crypto_error(CAIRN_ERROR, "finishing AES-256-GCM encryption");
		goto done;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, dst + len,
	                                              CAIRN_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_CIPHER_CTX_get_params(ctx, params)) {
		error = crypto_error(CAIRN_ERROR, "reading the AES-256-GCM tag");
		goto done;
	}
	out->len += len + CAIRN_TAG_LEN;
	error = 0;

done:
	EVP_CIPHER_CTX_free(ctx);
	return error;
}

int cairn_aead_decrypt(const uint8_t key[CAIRN_KEY_LEN], const uint8_t nonce[CAIRN_NONCE_LEN],
                       const void *aad, size_t aad_len, const void *sealed, size_t sealed_len,
                       cairn_buf *out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	uint8_t tag[CAIRN_TAG_LEN];
	uint8_t *dst = NULL;
	size_t len;
	int error, tail;

	if (sealed_len < CAIRN_TAG_LEN)
		return cairn_error_set(CAIRN_ECORRUPT,
		                       "authentication failed: %zu bytes is shorter than the tag",
		                       sealed_len);
	len = sealed_len - CAIRN_TAG_LEN;
	memcpy(tag, (const uint8_t *)sealed + len, CAIRN_TAG_LEN);
	if ((error = cairn_buf_reserve(out, len)) < 0)
		return error;
	dst = out->data + out->len;

	if (!(ctx = EVP_CIPHER_CTX_new()) ||
	    !EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, NULL)) {
		error = crypto_error(CAIRN_ERROR, "setting up AES-256-GCM decryption");
		goto done;
	}
	if ((error = aead_update(ctx, NULL, aad, aad_len)) < 0 ||
	    (error = aead_update(ctx, dst, sealed, len)) < 0)
		goto done;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, CAIRN_TAG_LEN);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_CIPHER_CTX_set_params(ctx, params)) {
		error = crypto_error(CAIRN_ERROR, "setting the AES-256-GCM tag");
		goto done;
	}
	if (EVP_DecryptFinal_ex(ctx, dst + len, &tail) <= 0) {
		ERR_clear_error();
		error = cairn_error_set(CAIRN_ECORRUPT, "authentication failed");
		goto done;
	}
	out->len += len;
	error = 0;

done:
	/* Never leave unauthenticated plaintext behind in the spare capacity. */
	if (error < 0 && dst)
		cairn_secure_zero(dst, len);
	EVP_CIPHER_CTX_free(ctx);
	return error;
}

/* ---- key derivation ------------------------------------------------- */

/* Runs the EVP_KDF `name` with params; out_len bytes into out. */
static int kdf_derive(const char *name, const OSSL_PARAM *params, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	char what[64];
	int error;

	snprintf(what, sizeof(what), "%s key derivation failed", name);
	if (!(kdf = EVP_KDF_fetch(NULL, name, NULL)) || !(ctx = EVP_KDF_CTX_new(kdf)) ||
	    EVP_KDF_derive(ctx, out, out_len, params) <= 0) {
		error = crypto_error(CAIRN_ERROR, what);
		goto done;
	}
	error = 0;

done:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return error;
}

int cairn_scrypt(const char *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
                 uint64_t n, uint32_t r, uint32_t p, uint8_t *out, size_t out_len)
{
	OSSL_PARAM params[7], *param = params;
	uint64_t maxmem = SCRYPT_MAX_MEMORY;
	uint64_t block;

	if (n < 2 || (n & (n - 1)) != 0)
		return cairn_error_set(CAIRN_EINVALID, "scrypt N=%llu is not a power of two above 1",
		                       (unsigned long long)n);
	if (r == 0 || p == 0)
		return cairn_error_set(CAIRN_EINVALID, "scrypt r=%u p=%u: both must be at least 1",
		                       (unsigned)r, (unsigned)p);
	if (out_len == 0)
		return cairn_error_set(CAIRN_EINVALID, "scrypt output length is 0");
	/* Memory as OpenSSL counts it: 128*r bytes per block, N+2 blocks for V plus p for B. */
	block = (uint64_t)128 * r;
	if (n > maxmem / block || n + 2 + p > maxmem / block)
		return cairn_error_set(CAIRN_EINVALID,
		                       "scrypt N=%llu r=%u p=%u needs more than the %llu MiB allowed",
		                       (unsigned long long)n, (unsigned)r, (unsigned)p,
		                       (unsigned long long)(maxmem >> 20));

	*param++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	                                             (void *)(pass_len ? pass : ""), pass_len);
	*param++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	                                             (void *)(salt_len ? salt : (const uint8_t *)""),
	                                             salt_len);
	*param++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*param++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	*param++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	*param++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	*param = OSSL_PARAM_construct_end();
	return kdf_derive("SCRYPT", params, out, out_len);
}

int cairn_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                      const char *info, uint8_t *out, size_t out_len)
{
	OSSL_PARAM params[5], *param = params;

	if (out_len == 0 || out_len > 255 * CAIRN_HASH_LEN)
		return cairn_error_set(CAIRN_EINVALID, "HKDF-SHA256 output length %zu not in 1..%d",
		                       out_len, 255 * CAIRN_HASH_LEN);

	*param++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*param++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	                                             (void *)(ikm_len ? ikm : (const uint8_t *)""),
	                                             ikm_len);
	/* RFC 5869: no salt means HashLen zero bytes, which OpenSSL supplies. */
	if (salt_len)
		*param++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
		                                             salt_len);
	if (info && *info)
		*param++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
		                                             strlen(info));
	*param = OSSL_PARAM_construct_end();
	return kdf_derive("HKDF", params, out, out_len);
}

/* ---- CRC-32C -------------------------------------------------------- */

/*
 * Slicing-by-8 over the reflected Castagnoli polynomial: crc32c_table[k][b]
 * is the CRC of byte b followed by k zero bytes, so eight table lookups
 * consume eight input bytes at once.
 */
static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init_tables(void)
{
	uint32_t b, crc;
	int k, bit;

	for (b = 0; b < 256; b++) {
		crc = b;
		for (bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
		crc32c_table[0][b] = crc;
	}
	for (b = 0; b < 256; b++) {
		crc = crc32c_table[0][b];
		for (k = 1; k < 8; k++) {
			crc = crc32c_table[0][crc & 0xff] ^ (crc >> 8);
			crc32c_table[k][b] = crc;
		}
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The SSE 4.2 crc32 instruction computes CRC-32C: 8 bytes per instruction. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                            size_t len)
{
	uint64_t c = ~crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	for (; len > 0; p++, len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p);
	return ~(uint32_t)c;
}
#endif

uint32_t cairn_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_hw(crc, p, len);
#endif
	pthread_once(&crc32c_once, crc32c_init_tables);
	crc = ~crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t lo = cairn_get_u32le(p) ^ crc;
		uint32_t hi = cairn_get_u32le(p + 4);

		crc = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
		      crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
		      crc32c_table[3][hi & 0xff] ^ crc32c_table[2][(hi >> 8) & 0xff] ^
		      crc32c_table[1][(hi >> 16) & 0xff] ^ crc32c_table[0][hi >> 24];
	}
	for (; len > 0; p++, len--)
		crc = crc32c_table[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- hex ------------------------------------------------------------ */

void cairn_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = 0;
}

int cairn_hex_decode(const char *hex, uint8_t *out, size_t out_len)
{
	size_t i, digits;

	/* The text may be a key: say where it is wrong, never what it says. */
	for (digits = 0; hex[digits]; digits++) {
		if (cairn_hex_digit(hex[digits]) < 0)
			return cairn_error_set(CAIRN_EINVALID, "invalid hex: non-hex character at offset %zu",
			                       digits);
	}
	if (digits % 2 || digits / 2 != out_len)
		return cairn_error_set(CAIRN_EINVALID, "invalid hex: %zu digits for %zu bytes", digits,
		                       out_len);
	for (i = 0; i < out_len; i++)
		out[i] = (uint8_t)(cairn_hex_digit(hex[2 * i]) << 4 |
		                   cairn_hex_digit(hex[2 * i + 1]));
	return 0;
}

/* ---- memory --------------------------------------------------------- */

void cairn_secure_zero(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}
