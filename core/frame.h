/*
 * frame.h - framed, self-describing stored objects (FORMAT.md, "Objects").
 *
 * An object is an 8-byte object header followed by frames. A frame is a
 * 64-byte header (magic, codec, cipher, flags, key id, stored length,
 * plaintext length, plaintext checksum, payload CRC, header CRC) and a
 * payload: the compressed bytes, or nonce || AES-256-GCM ciphertext || tag,
 * with the first 56 header bytes as associated data. The last frame of an
 * object has the LAST flag.
 *
 * The checksum is SHA-256 of the plaintext, or HMAC-SHA256 under the
 * repository's id key when encrypted; for chunks it is also the chunk id.
 */
#ifndef CAIRN_FRAME_H
#define CAIRN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"

#define CAIRN_OBJECT_HEADER_LEN 8
#define CAIRN_FRAME_HEADER_LEN 64
#define CAIRN_FRAME_AAD_LEN 56 /* header bytes authenticated by AES-GCM */
#define CAIRN_FRAME_MAX_PLAIN (64u << 20)
#define CAIRN_FRAME_FLAG_LAST 0x1u

typedef enum cairn_object_type {
	CAIRN_OBJ_CONFIG = 1,
	CAIRN_OBJ_KEY = 2,
	CAIRN_OBJ_PACK = 3,
	CAIRN_OBJ_INDEX = 4,
	CAIRN_OBJ_MANIFEST = 5,
	CAIRN_OBJ_CATALOG = 6,
	CAIRN_OBJ_LOG = 7
} cairn_object_type;

typedef enum cairn_cipher_id {
	CAIRN_CIPHER_NONE = 0,
	CAIRN_CIPHER_AES256GCM = 1
} cairn_cipher_id;

/* The keys of an open repository. Zero when unencrypted. */
typedef struct cairn_keys {
	int encrypted;
	uint32_t key_id;
	uint8_t data_key[CAIRN_KEY_LEN]; /* AES-256-GCM */
	uint8_t id_key[CAIRN_KEY_LEN];   /* HMAC for checksums and chunk ids */
} cairn_keys;

typedef struct cairn_frame_header {
	int codec;
	int cipher;
	unsigned int flags;
	uint32_t key_id;
	uint32_t stored_len; /* payload bytes after the header */
	uint64_t plain_len;
	uint8_t checksum[CAIRN_HASH_LEN];
} cairn_frame_header;

/* Derives the key id from a data key (first 4 bytes of an HMAC of it). */
uint32_t cairn_keys_id(const uint8_t data_key[CAIRN_KEY_LEN]);

/* Writes the 8-byte object header for `type`. */
void cairn_object_header_write(uint8_t out[CAIRN_OBJECT_HEADER_LEN], cairn_object_type type);
/* CAIRN_ECORRUPT unless p holds a valid header of `type`. */
int cairn_object_header_check(const uint8_t *p, size_t len, cairn_object_type type);
const char *cairn_object_type_name(cairn_object_type type);

/* Checksum (and chunk id) of plaintext under these keys. */
void cairn_frame_checksum(const cairn_keys *keys, const void *data, size_t len,
                          uint8_t out[CAIRN_HASH_LEN]);

/*
 * Appends one frame holding plain[0..len) to out. `checksum` may be NULL
 * (computed here) or the already computed cairn_frame_checksum. Falls back
 * to codec none when compression does not make the data smaller.
 */
int cairn_frame_encode(const cairn_keys *keys, int codec, int level, unsigned int flags,
                       const void *plain, size_t len, const uint8_t *checksum, cairn_buf *out);

/* Parses and checks a frame header (magic, version, CRC, bounds). */
int cairn_frame_header_parse(const uint8_t *p, size_t len, cairn_frame_header *out);

/*
 * Decodes the frame at frame[0..len) (header and payload) and appends the
 * plaintext to out after checking it against the checksum. Errors:
 * CAIRN_EAUTH (encrypted but no or another key), CAIRN_ECORRUPT (damaged).
 */
int cairn_frame_decode(const cairn_keys *keys, const uint8_t *frame, size_t len, cairn_buf *out,
                       cairn_frame_header *hdr_out);

#endif
