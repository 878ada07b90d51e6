/* test_frame.c - framed objects: round trips, tampering, wrong key, truncation. */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "error.h"
#include "frame.h"
#include "tap.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint8_t next_byte(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)rng;
}

/* Recomputes both CRCs, as someone altering data on purpose would. */
static void reseal(uint8_t *frame, size_t len)
{
	cairn_put_u32le(frame + 56, cairn_crc32c(0, frame + CAIRN_FRAME_HEADER_LEN,
	                                          len - CAIRN_FRAME_HEADER_LEN));
	cairn_put_u32le(frame + 60, cairn_crc32c(0, frame, 60));
}

static void make_keys(cairn_keys *k, uint8_t fill)
{
	memset(k, 0, sizeof(*k));
	k->encrypted = 1;
	memset(k->data_key, fill, sizeof(k->data_key));
	memset(k->id_key, fill ^ 0x5a, sizeof(k->id_key));
	k->key_id = cairn_keys_id(k->data_key);
}

static void round_trips(void)
{
	static const int codecs[] = {CAIRN_CODEC_NONE, CAIRN_CODEC_ZSTD, CAIRN_CODEC_LZ4,
	                             CAIRN_CODEC_LZMA, CAIRN_CODEC_BROTLI};
	size_t sizes[] = {0, 1, 1000, 300000};
	cairn_keys plain_keys, enc_keys;
	uint8_t *data = malloc(300000);
	size_t c, s, i;
	int e;

	memset(&plain_keys, 0, sizeof(plain_keys));
	make_keys(&enc_keys, 7);
	for (i = 0; i < 300000; i++)
		data[i] = i < 150000 ? (uint8_t)(i % 17) : next_byte();
	for (e = 0; e < 2; e++) {
		const cairn_keys *k = e ? &enc_keys : &plain_keys;

		for (c = 0; c < 5; c++) {
			for (s = 0; s < 4; s++) {
				cairn_buf frame = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
				cairn_frame_header h;
				int rc;

				rc = cairn_frame_encode(k, codecs[c], 0, CAIRN_FRAME_FLAG_LAST, data, sizes[s],
				                        NULL, &frame);
				rc = rc ? rc : cairn_frame_decode(k, frame.data, frame.len, &out, &h);
				ok(rc == 0 && out.len == sizes[s] && memcmp(out.data ? (void *)out.data : (void *)"", data, sizes[s]) == 0 &&
				       h.flags == CAIRN_FRAME_FLAG_LAST,
				   "%s %s, %zu bytes round trip", e ? "encrypted" : "clear",
				   cairn_codec_name(codecs[c]), sizes[s]);
				cairn_buf_free(&frame);
				cairn_buf_free(&out);
			}
		}
	}
	free(data);
}

static void tampering(int encrypted)
{
	cairn_keys k;
	cairn_buf frame = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	const char *text = "the quick brown fox jumps over the lazy dog, again and again and again";
	size_t i, caught = 0, wrong_code = 0;

	memset(&k, 0, sizeof(k));
	if (encrypted)
		make_keys(&k, 3);
	cairn_frame_encode(&k, CAIRN_CODEC_ZSTD, 0, 0, text, strlen(text), NULL, &frame);
	for (i = 0; i < frame.len; i++) {
		uint8_t saved = frame.data[i];
		int rc;

		frame.data[i] ^= 0x01;
		cairn_buf_clear(&out);
		rc = cairn_frame_decode(&k, frame.data, frame.len, &out, NULL);
		if (rc < 0)
			caught++;
		if (rc < 0 && rc != CAIRN_ECORRUPT && rc != CAIRN_EUNSUPPORTED && rc != CAIRN_EAUTH)
			wrong_code++;
		frame.data[i] = saved;
	}
	ok(caught == frame.len, "%s frame: every one of %zu flipped bits is caught (%zu)",
	   encrypted ? "encrypted" : "clear", frame.len, caught);
	ok(wrong_code == 0, "%s frame: tampering gives corrupt/auth codes", encrypted ? "encrypted" : "clear");
	cairn_buf_free(&frame);
	cairn_buf_free(&out);
}

static void errors(void)
{
	cairn_keys k, other, none;
	cairn_buf frame = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	const char *text = "secret payload";
	int rc;

	make_keys(&k, 1);
	make_keys(&other, 2);
	memset(&none, 0, sizeof(none));
	cairn_frame_encode(&k, CAIRN_CODEC_LZ4, 0, 0, text, strlen(text), NULL, &frame);
	ok(memmem(frame.data, frame.len, text, strlen(text)) == NULL, "ciphertext hides the plaintext");

	rc = cairn_frame_decode(&other, frame.data, frame.len, &out, NULL);
	ok(rc == CAIRN_EAUTH && strstr(cairn_error_message(), "not with the key given"),
	   "wrong key: its own error (%s)", cairn_error_message());
	rc = cairn_frame_decode(&none, frame.data, frame.len, &out, NULL);
	ok(rc == CAIRN_EAUTH && strstr(cairn_error_message(), "no key"),
	   "no key: its own error (%s)", cairn_error_message());
	frame.data[frame.len - 3] ^= 0x80;
	rc = cairn_frame_decode(&k, frame.data, frame.len, &out, NULL);
	ok(rc == CAIRN_ECORRUPT && strstr(cairn_error_message(), "payload checksum"),
	   "flipped stored bit: caught by the payload CRC (%s)", cairn_error_message());
	reseal(frame.data, frame.len);
	rc = cairn_frame_decode(&k, frame.data, frame.len, &out, NULL);
	ok(rc == CAIRN_ECORRUPT && strstr(cairn_error_message(), "authentication failed"),
	   "tampered byte with CRCs recomputed: its own error (%s)", cairn_error_message());
	frame.data[frame.len - 3] ^= 0x80;
	reseal(frame.data, frame.len);
	rc = cairn_frame_decode(&k, frame.data, frame.len - 5, &out, NULL);
	ok(rc == CAIRN_ECORRUPT && strstr(cairn_error_message(), "truncated"),
	   "truncated frame: its own error (%s)", cairn_error_message());
	rc = cairn_frame_decode(&k, frame.data, 20, &out, NULL);
	ok(rc == CAIRN_ECORRUPT && strstr(cairn_error_message(), "truncated frame header"),
	   "truncated header: its own error (%s)", cairn_error_message());
	ok(out.len == 0, "failed decodes append nothing");
	rc = cairn_frame_decode(&k, frame.data, frame.len, &out, NULL);
	ok(rc == 0 && out.len == strlen(text), "the intact frame still decodes");
	cairn_buf_free(&frame);
	cairn_buf_free(&out);

	/* A clear frame inside an encrypted repository is refused. */
	cairn_frame_encode(&none, CAIRN_CODEC_NONE, 0, 0, text, strlen(text), NULL, &frame);
	cairn_buf_clear(&out);
	rc = cairn_frame_decode(&k, frame.data, frame.len, &out, NULL);
	ok(rc == CAIRN_ECORRUPT, "clear frame refused in an encrypted repository");
	cairn_buf_free(&frame);
	cairn_buf_free(&out);
}

static void object_headers(void)
{
	uint8_t h[CAIRN_OBJECT_HEADER_LEN];

	cairn_object_header_write(h, CAIRN_OBJ_PACK);
	ok(cairn_object_header_check(h, sizeof(h), CAIRN_OBJ_PACK) == 0, "object header checks");
	ok(cairn_object_header_check(h, sizeof(h), CAIRN_OBJ_INDEX) == CAIRN_ECORRUPT,
	   "wrong object type refused");
	ok(cairn_object_header_check(h, 5, CAIRN_OBJ_PACK) == CAIRN_ECORRUPT, "short header refused");
	h[4] = 9;
	ok(cairn_object_header_check(h, sizeof(h), CAIRN_OBJ_PACK) == CAIRN_EUNSUPPORTED,
	   "newer format version refused as unsupported");
}

int main(void)
{
	round_trips();
	tampering(0);
	tampering(1);
	errors();
	object_headers();
	return tap_done();
}
