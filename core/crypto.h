/*
 * crypto.h - hashing, MAC, AEAD, KDF and randomness, all through OpenSSL.
 *
 * Secrets passed in are never copied into error messages or logs.
 */
#ifndef CAIRN_CRYPTO_H
#define CAIRN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define CAIRN_HASH_LEN 32
#define CAIRN_KEY_LEN 32
#define CAIRN_NONCE_LEN 12
#define CAIRN_TAG_LEN 16

void cairn_sha256(const void *data, size_t len, uint8_t out[CAIRN_HASH_LEN]);
void cairn_hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                       uint8_t out[CAIRN_HASH_LEN]);

/* Streaming SHA-256 or HMAC-SHA256 (key != NULL). Free accepts NULL. */
typedef struct cairn_hash cairn_hash;
int cairn_hash_new(cairn_hash **out, const uint8_t *hmac_key, size_t key_len);
int cairn_hash_update(cairn_hash *h, const void *data, size_t len);
int cairn_hash_final(cairn_hash *h, uint8_t out[CAIRN_HASH_LEN]);
void cairn_hash_free(cairn_hash *h);

/* Cryptographically secure random bytes; CAIRN_ERROR when the RNG fails. */
int cairn_random_bytes(void *out, size_t len);

/*
 * AES-256-GCM. Encrypt appends ciphertext (same length as plain) followed by
 * the 16-byte tag to out. Decrypt takes ciphertext||tag and appends the
 * plaintext; a tag mismatch returns CAIRN_ECORRUPT ("authentication failed")
 * and appends nothing.
 */
int cairn_aead_encrypt(const uint8_t key[CAIRN_KEY_LEN], const uint8_t nonce[CAIRN_NONCE_LEN],
                       const void *aad, size_t aad_len, const void *plain, size_t len,
                       cairn_buf *out);
int cairn_aead_decrypt(const uint8_t key[CAIRN_KEY_LEN], const uint8_t nonce[CAIRN_NONCE_LEN],
                       const void *aad, size_t aad_len, const void *sealed, size_t sealed_len,
                       cairn_buf *out);

/* scrypt (memory-hard); out_len bytes of key from a passphrase and salt. */
int cairn_scrypt(const char *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
                 uint64_t n, uint32_t r, uint32_t p, uint8_t *out, size_t out_len);

/* HKDF-SHA256 (RFC 5869) expand-and-extract. */
int cairn_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                      const char *info, uint8_t *out, size_t out_len);

/* CRC-32C (Castagnoli). Start with crc = 0. */
uint32_t cairn_crc32c(uint32_t crc, const void *data, size_t len);

/* Lowercase hex; out holds 2*len+1 bytes. */
void cairn_hex_encode(const uint8_t *in, size_t len, char *out);
/* Exactly 2*out_len hex digits; CAIRN_EINVALID otherwise. */
int cairn_hex_decode(const char *hex, uint8_t *out, size_t out_len);

/* Zeroes memory in a way the compiler keeps. */
void cairn_secure_zero(void *p, size_t len);

#endif
