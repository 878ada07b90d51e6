/*
 * codec.h - compression codecs: none, zstd, lz4, lzma (xz), brotli.
 *
 * One-shot functions on bounded buffers (a chunk or a frame, at most a few
 * MiB), so memory is bounded by the chunk size, not by input size.
 * Codec ids are part of the repository format (FORMAT.md): never renumber.
 */
#ifndef CAIRN_CODEC_H
#define CAIRN_CODEC_H

#include <stddef.h>
#include "buf.h"

typedef enum cairn_codec_id {
	CAIRN_CODEC_NONE = 0,
	CAIRN_CODEC_ZSTD = 1,
	CAIRN_CODEC_LZ4 = 2,
	CAIRN_CODEC_LZMA = 3,
	CAIRN_CODEC_BROTLI = 4
} cairn_codec_id;

#define CAIRN_CODEC_COUNT 5

/*
 * Parses "method[:level]" (method: none, zstd, lz4, lzma, xz, brotli;
 * level 0 or absent: the codec's default). On error sets the last error
 * (naming the bad text and the valid methods and level range) and returns
 * CAIRN_EINVALID.
 */
int cairn_codec_parse(const char *spec, int *out_id, int *out_level);
/* "zstd", ...; NULL for an unknown id. */
const char *cairn_codec_name(int id);
/* Level used when 0 is given. */
int cairn_codec_default_level(int id);

/*
 * Appends the compressed form of in[0..in_len) to out. in_len may be 0.
 * Level 0 means the default.
 */
int cairn_codec_compress(int id, int level, const void *in, size_t in_len, cairn_buf *out);

/*
 * Appends exactly plain_len decompressed bytes to out. Damaged input, or
 * output of another length, returns CAIRN_ECORRUPT with a message naming the
 * codec; an unknown id returns CAIRN_EUNSUPPORTED. Never writes more than
 * plain_len bytes whatever the input says.
 */
int cairn_codec_decompress(int id, const void *in, size_t in_len, size_t plain_len, cairn_buf *out);

#endif
