/* frame.c - framed objects (see frame.h and FORMAT.md). */
#include "frame.h"

#include <string.h>

#include "codec.h"
#include "error.h"

static const uint8_t object_magic[4] = {'C', 'R', 'N', 'O'};
static const uint8_t frame_magic[4] = {'C', 'R', 'N', 'F'};
#define FORMAT_VERSION 1

static const char *const type_names[] = {"",      "config",   "key",     "pack",
                                         "index", "manifest", "catalog", "log"};

const char *cairn_object_type_name(cairn_object_type type)
{
	return type >= 1 && type <= 7 ? type_names[type] : "unknown";
}

uint32_t cairn_keys_id(const uint8_t data_key[CAIRN_KEY_LEN])
{
	uint8_t mac[CAIRN_HASH_LEN];

	cairn_hmac_sha256(data_key, CAIRN_KEY_LEN, "cairn key id", 12, mac);
	return cairn_get_u32le(mac);
}

void cairn_object_header_write(uint8_t out[CAIRN_OBJECT_HEADER_LEN], cairn_object_type type)
{
	memcpy(out, object_magic, 4);
	out[4] = FORMAT_VERSION;
	out[5] = (uint8_t)type;
	out[6] = 0;
	out[7] = 0;
}

int cairn_object_header_check(const uint8_t *p, size_t len, cairn_object_type type)
{
	if (len < CAIRN_OBJECT_HEADER_LEN || memcmp(p, object_magic, 4) != 0)
		return cairn_error_set(CAIRN_ECORRUPT, "not a cairn object (bad magic)");
	if (p[4] != FORMAT_VERSION)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
		                       "object format version %d is not supported (this cairn reads %d)",
		                       p[4], FORMAT_VERSION);
	if (p[5] != type)
		return cairn_error_set(CAIRN_ECORRUPT, "object type is %s, expected %s",
		                       cairn_object_type_name(p[5]), cairn_object_type_name(type));
	if (p[6] || p[7])
		return cairn_error_set(CAIRN_ECORRUPT, "object header has non-zero reserved bytes");
	return 0;
}

void cairn_frame_checksum(const cairn_keys *keys, const void *data, size_t len,
                          uint8_t out[CAIRN_HASH_LEN])
{
	if (keys && keys->encrypted)
		cairn_hmac_sha256(keys->id_key, CAIRN_KEY_LEN, data, len, out);
	else
		cairn_sha256(data, len, out);
}

static void header_write(uint8_t *p, const cairn_frame_header *h)
{
	memcpy(p, frame_magic, 4);
	p[4] = FORMAT_VERSION;
	p[5] = (uint8_t)h->codec;
	p[6] = (uint8_t)h->cipher;
	p[7] = (uint8_t)h->flags;
	cairn_put_u32le(p + 8, h->key_id);
	cairn_put_u32le(p + 12, h->stored_len);
	cairn_put_u64le(p + 16, h->plain_len);
	memcpy(p + 24, h->checksum, CAIRN_HASH_LEN);
	/* Bytes 56..63 (payload and header CRCs) are written once the payload exists. */
	memset(p + 56, 0, 8);
}

/* Seals a frame whose payload follows the header: payload CRC, then header CRC. */
static void header_seal(uint8_t *p, uint32_t stored_len)
{
	cairn_put_u32le(p + 56, cairn_crc32c(0, p + CAIRN_FRAME_HEADER_LEN, stored_len));
	cairn_put_u32le(p + 60, cairn_crc32c(0, p, 60));
}

int cairn_frame_header_parse(const uint8_t *p, size_t len, cairn_frame_header *out)
{
	if (len < CAIRN_FRAME_HEADER_LEN)
		return cairn_error_set(CAIRN_ECORRUPT, "truncated frame header (%zu of %d bytes)", len,
		                       CAIRN_FRAME_HEADER_LEN);
	if (memcmp(p, frame_magic, 4) != 0)
		return cairn_error_set(CAIRN_ECORRUPT, "bad frame magic");
	if (cairn_crc32c(0, p, 60) != cairn_get_u32le(p + 60))
		return cairn_error_set(CAIRN_ECORRUPT, "frame header checksum mismatch");
	if (p[4] != FORMAT_VERSION)
		return cairn_error_set(CAIRN_EUNSUPPORTED, "frame format version %d is not supported",
		                       p[4]);
	out->codec = p[5];
	out->cipher = p[6];
	out->flags = p[7];
	out->key_id = cairn_get_u32le(p + 8);
	out->stored_len = cairn_get_u32le(p + 12);
	out->plain_len = cairn_get_u64le(p + 16);
	memcpy(out->checksum, p + 24, CAIRN_HASH_LEN);
	if (out->cipher > CAIRN_CIPHER_AES256GCM)
		return cairn_error_set(CAIRN_EUNSUPPORTED, "unknown cipher id %d", out->cipher);
	if (out->flags & ~CAIRN_FRAME_FLAG_LAST)
		return cairn_error_set(CAIRN_ECORRUPT, "unknown frame flags 0x%x", out->flags);
	if (out->plain_len > CAIRN_FRAME_MAX_PLAIN)
		return cairn_error_set(CAIRN_ECORRUPT, "frame plaintext size %llu is out of range",
		                       (unsigned long long)out->plain_len);
	if (out->cipher == CAIRN_CIPHER_AES256GCM &&
	    out->stored_len < CAIRN_NONCE_LEN + CAIRN_TAG_LEN)
		return cairn_error_set(CAIRN_ECORRUPT, "encrypted frame too short");
	return 0;
}

int cairn_frame_encode(const cairn_keys *keys, int codec, int level, unsigned int flags,
                       const void *plain, size_t len, const uint8_t *checksum, cairn_buf *out)
{
	cairn_frame_header h;
	cairn_buf packed = CAIRN_BUF_INIT;
	const uint8_t *body = plain;
	size_t body_len = len, start = out->len;
	uint8_t nonce[CAIRN_NONCE_LEN];
	int error;

	if (len > CAIRN_FRAME_MAX_PLAIN)
		return cairn_error_set(CAIRN_EINVALID, "frame of %zu bytes is too large", len);
	memset(&h, 0, sizeof(h));
	if (codec != CAIRN_CODEC_NONE && len > 0) {
		if ((error = cairn_codec_compress(codec, level, plain, len, &packed)) < 0)
			goto done;
		if (packed.len < len) {
			body = packed.data;
			body_len = packed.len;
		} else {
			codec = CAIRN_CODEC_NONE;
		}
	} else {
		codec = CAIRN_CODEC_NONE;
	}
	h.codec = codec;
	h.flags = flags;
	h.plain_len = len;
	if (checksum)
		memcpy(h.checksum, checksum, CAIRN_HASH_LEN);
	else
		cairn_frame_checksum(keys, plain, len, h.checksum);
	if (keys && keys->encrypted) {
		h.cipher = CAIRN_CIPHER_AES256GCM;
		h.key_id = keys->key_id;
		h.stored_len = (uint32_t)(body_len + CAIRN_NONCE_LEN + CAIRN_TAG_LEN);
	} else {
		h.stored_len = (uint32_t)body_len;
	}
	if ((error = cairn_buf_reserve(out, CAIRN_FRAME_HEADER_LEN + h.stored_len)) < 0)
		goto done;
	header_write(out->data + out->len, &h);
	out->len += CAIRN_FRAME_HEADER_LEN;
	if (h.cipher == CAIRN_CIPHER_AES256GCM) {
		if ((error = cairn_random_bytes(nonce, sizeof(nonce))) < 0)
			goto done;
		if ((error = cairn_buf_append(out, nonce, sizeof(nonce))) < 0)
			goto done;
		error = cairn_aead_encrypt(keys->data_key, nonce, out->data + start, CAIRN_FRAME_AAD_LEN,
		                           body, body_len, out);
	} else {
		error = cairn_buf_append(out, body, body_len);
	}
	if (error == 0)
		header_seal(out->data + start, h.stored_len);
done:
	if (error < 0)
		out->len = start;
	cairn_buf_free(&packed);
	return error;
}

int cairn_frame_decode(const cairn_keys *keys, const uint8_t *frame, size_t len, cairn_buf *out,
                       cairn_frame_header *hdr_out)
{
	cairn_frame_header h;
	cairn_buf opened = CAIRN_BUF_INIT;
	const uint8_t *body;
	size_t body_len, start = out->len;
	uint8_t sum[CAIRN_HASH_LEN];
	int error;

	if ((error = cairn_frame_header_parse(frame, len, &h)) < 0)
		return error;
	if (len - CAIRN_FRAME_HEADER_LEN < h.stored_len)
		return cairn_error_set(CAIRN_ECORRUPT, "truncated frame: %zu of %u payload bytes",
		                       len - CAIRN_FRAME_HEADER_LEN, h.stored_len);
	body = frame + CAIRN_FRAME_HEADER_LEN;
	body_len = h.stored_len;
	/* Every stored bit counts, even one that would not change the plaintext. */
	if (cairn_crc32c(0, body, body_len) != cairn_get_u32le(frame + 56))
		return cairn_error_set(CAIRN_ECORRUPT, "frame payload checksum mismatch");
	if (h.cipher == CAIRN_CIPHER_AES256GCM) {
		if (!keys || !keys->encrypted) {
			error = cairn_error_set(CAIRN_EAUTH, "data is encrypted and no key was given");
			goto done;
		}
		if (h.key_id != keys->key_id) {
			error = cairn_error_set(CAIRN_EAUTH,
			                        "data is encrypted with key %08x, not with the key given (%08x)",
			                        h.key_id, keys->key_id);
			goto done;
		}
		if ((error = cairn_aead_decrypt(keys->data_key, body, frame, CAIRN_FRAME_AAD_LEN,
		                                body + CAIRN_NONCE_LEN, body_len - CAIRN_NONCE_LEN,
		                                &opened)) < 0) {
			error = cairn_error_set(CAIRN_ECORRUPT, "authentication failed (data was altered)");
			goto done;
		}
		body = opened.data;
		body_len = opened.len;
	} else if (keys && keys->encrypted) {
		/* An encrypted repository never stores clear frames: refuse a swap. */
		error = cairn_error_set(CAIRN_ECORRUPT, "unencrypted frame in an encrypted repository");
		goto done;
	}
	if (h.codec == CAIRN_CODEC_NONE) {
		if (body_len != h.plain_len) {
			error = cairn_error_set(CAIRN_ECORRUPT, "frame size mismatch");
			goto done;
		}
		error = cairn_buf_append(out, body, body_len);
	} else {
		error = cairn_codec_decompress(h.codec, body, body_len, (size_t)h.plain_len, out);
	}
	if (error < 0)
		goto done;
	cairn_frame_checksum(keys, out->data + start, (size_t)h.plain_len, sum);
	if (memcmp(sum, h.checksum, CAIRN_HASH_LEN) != 0) {
		error = cairn_error_set(CAIRN_ECORRUPT, "checksum mismatch (data was altered)");
		goto done;
	}
	if (hdr_out)
		*hdr_out = h;
done:
	if (error < 0)
		out->len = start;
	cairn_buf_free(&opened);
	return error;
}
