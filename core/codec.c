/* codec.c - compression codecs (see codec.h). */
#include "codec.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <lz4.h>
#include <lz4hc.h>
#include <lzma.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "error.h"

/*
 * Our lzma data needs about its dictionary size to decode: at most 64 MiB
 * (presets 8 and 9), usually far less because compress_lzma caps the
 * dictionary at the input size. The limit stops a damaged header from
 * asking for more.
 */
#define LZMA_DECODE_MEMLIMIT ((uint64_t)128 << 20)

/* Level parsing stops growing here: every range check fails above it. */
#define LEVEL_PARSE_CAP 1000

#define VALID_METHODS                                                                      \
	"valid methods: none, zstd[:1-22], lz4[:1-12], lzma[:1-9] (alias xz), brotli[:1-11]; " \
	"without a level (or with 0) the method's default is used"

typedef struct codec_info {
	const char *name;
	int min_level;
	int max_level;
	int default_level;
} codec_info;

/*
 * Indexed by cairn_codec_id. Level 0 means the default in our API, so a
 * library's own level 0 (lzma preset 0, brotli quality 0) is not offered.
 */
static const codec_info codecs[CAIRN_CODEC_COUNT] = {
	[CAIRN_CODEC_NONE] = {"none", 0, 0, 0},
	[CAIRN_CODEC_ZSTD] = {"zstd", 1, 22, 3},
	[CAIRN_CODEC_LZ4] = {"lz4", 1, 12, 1},
	[CAIRN_CODEC_LZMA] = {"lzma", 1, 9, 6},
	[CAIRN_CODEC_BROTLI] = {"brotli", 1, 11, 6},
};

/* Libraries may reject a NULL pointer even with length 0. */
static const uint8_t empty_input;

static int codec_valid(int id)
{
	return id >= 0 && id < CAIRN_CODEC_COUNT;
}

const char *cairn_codec_name(int id)
{
	return codec_valid(id) ? codecs[id].name : NULL;
}

int cairn_codec_default_level(int id)
{
	return codec_valid(id) ? codecs[id].default_level : 0;
}

static int codec_lookup(const char *name, size_t len)
{
	int id;

	if (len == 2 && memcmp(name, "xz", 2) == 0)
		return CAIRN_CODEC_LZMA;
	for (id = 0; id < CAIRN_CODEC_COUNT; id++) {
		if (strlen(codecs[id].name) == len && memcmp(codecs[id].name, name, len) == 0)
			return id;
	}
	return -1;
}

/* Decimal digits only: no sign, no blanks, no trailing text. */
static int parse_level(const char *text, int *out)
{
	int level = 0;

	if (!*text)
		return -1;
	for (; *text; text++) {
		if (*text < '0' || *text > '9')
			return -1;
		if (level <= LEVEL_PARSE_CAP)
			level = level * 10 + (*text - '0');
	}
	*out = level;
	return 0;
}

int cairn_codec_parse(const char *spec, int *out_id, int *out_level)
{
	const char *colon, *level_text;
	const codec_info *info;
	size_t name_len;
	int id, level = 0;
	int error = 0;

	if (!spec) {
		error = cairn_error_set(CAIRN_EINVALID, "no compression method given");
		cairn_error_hint(VALID_METHODS);
		goto done;
	}
	colon = strchr(spec, ':');
	name_len = colon ? (size_t)(colon - spec) : strlen(spec);
	if ((id = codec_lookup(spec, name_len)) < 0) {
		error = cairn_error_set(CAIRN_EINVALID, "unknown compression method '%.*s'",
		                        (int)(name_len > 200 ? 200 : name_len), spec);
		cairn_error_hint(VALID_METHODS);
		goto done;
	}
	info = &codecs[id];
	if (!colon)
		goto resolved;

	level_text = colon + 1;
	if (id == CAIRN_CODEC_NONE) {
		error = cairn_error_set(CAIRN_EINVALID, "compression method 'none' takes no level: '%s'", spec);
		cairn_error_hint("use 'none' alone");
		goto done;
	}
	if (parse_level(level_text, &level) < 0) {
		error = cairn_error_set(CAIRN_EINVALID, "invalid compression level '%s' in '%s'", level_text,
		                        spec);
		cairn_error_hint("the level is a number from %d to %d, e.g. '%s:%d'", info->min_level,
		                 info->max_level, info->name, info->default_level);
		goto done;
	}
	if (level != 0 && (level < info->min_level || level > info->max_level)) {
		error = cairn_error_set(CAIRN_EINVALID,
		                        "compression level '%s' in '%s' is out of range for %s (%d-%d)",
		                        level_text, spec, info->name, info->min_level, info->max_level);
		cairn_error_hint("use %s:%d to %s:%d, or '%s' alone for the default level %d", info->name,
		                 info->min_level, info->name, info->max_level, info->name,
		                 info->default_level);
		goto done;
	}

resolved:
	*out_id = id;
	*out_level = level ? level : info->default_level;
done:
	return error;
}

/* Resolves level 0 to the default and rejects levels the codec lacks. */
static int resolve_level(int id, int level, int *out)
{
	const codec_info *info = &codecs[id];

	if (level == 0) {
		*out = info->default_level;
		return 0;
	}
	if (level < info->min_level || level > info->max_level) {
		if (id == CAIRN_CODEC_NONE)
			return cairn_error_set(CAIRN_EINVALID, "compression method 'none' takes no level (got %d)",
			                       level);
		return cairn_error_set(CAIRN_EINVALID, "compression level %d is out of range for %s (%d-%d)",
		                       level, info->name, info->min_level, info->max_level);
	}
	*out = level;
	return 0;
}

static int too_large(int id, size_t in_len)
{
	return cairn_error_set(CAIRN_EINVALID, "%s cannot compress %zu bytes in one piece",
	                       codecs[id].name, in_len);
}

/*
 * One zstd context of each kind per thread, kept between calls: making one
 * for every chunk cost a tenth of the compression time (its tables are
 * allocated and cleared each time). Freed when the thread ends.
 */
typedef struct zstd_contexts {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
} zstd_contexts;

static pthread_key_t zstd_key;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;
static int zstd_key_ok;

static void zstd_contexts_free(void *arg)
{
	zstd_contexts *z = arg;

	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static void zstd_key_init(void)
{
	zstd_key_ok = pthread_key_create(&zstd_key, zstd_contexts_free) == 0;
}

/* This thread's contexts, made on first use; NULL when out of memory. */
static zstd_contexts *zstd_thread_contexts(void)
{
	zstd_contexts *z;

	pthread_once(&zstd_once, zstd_key_init);
	if (!zstd_key_ok)
		return NULL;
	if ((z = pthread_getspecific(zstd_key)))
		return z;
	if (!(z = calloc(1, sizeof(*z))))
		return NULL;
	if (!(z->c = ZSTD_createCCtx()) || !(z->d = ZSTD_createDCtx()) ||
	    pthread_setspecific(zstd_key, z) != 0) {
		zstd_contexts_free(z);
		return NULL;
	}
	return z;
}

static int compress_zstd(int level, const uint8_t *in, size_t in_len, cairn_buf *out)
{
	zstd_contexts *z = zstd_thread_contexts();
	size_t bound = ZSTD_compressBound(in_len), n;
	int error;

	if (ZSTD_isError(bound)) {
		error = too_large(CAIRN_CODEC_ZSTD, in_len);
		goto done;
	}
	if ((error = cairn_buf_reserve(out, bound)) < 0)
		goto done;
	n = z ? ZSTD_compressCCtx(z->c, out->data + out->len, bound, in, in_len, level)
	      : ZSTD_compress(out->data + out->len, bound, in, in_len, level);
	if (ZSTD_isError(n)) {
		error = cairn_error_set(ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? CAIRN_ENOMEM
		                                                                               : CAIRN_ERROR,
		                        "zstd compression failed: %s", ZSTD_getErrorName(n));
		goto done;
	}
	out->len += n;
done:
	return error;
}

static int compress_lz4(int level, const uint8_t *in, size_t in_len, cairn_buf *out)
{
	char *dst;
	int bound, n;
	int error;

	if (in_len > LZ4_MAX_INPUT_SIZE) {
		error = too_large(CAIRN_CODEC_LZ4, in_len);
		goto done;
	}
	bound = LZ4_compressBound((int)in_len);
	if ((error = cairn_buf_reserve(out, (size_t)bound)) < 0)
		goto done;
	dst = (char *)out->data + out->len;
	if (level <= 1)
		n = LZ4_compress_default((const char *)in, dst, (int)in_len, bound);
	else
		n = LZ4_compress_HC((const char *)in, dst, (int)in_len, bound, level);
	/* With a full-size bound lz4 only fails when HC cannot allocate its state. */
	if (n <= 0) {
		error = cairn_error_set(CAIRN_ENOMEM, "lz4 compression failed at level %d", level);
		goto done;
	}
	out->len += (size_t)n;
done:
	return error;
}

static int compress_lzma(int level, const uint8_t *in, size_t in_len, cairn_buf *out)
{
	lzma_options_lzma options;
	lzma_filter filters[2];
	size_t bound = lzma_stream_buffer_bound(in_len), pos = 0;
	lzma_ret ret;
	int error;

	if (lzma_lzma_preset(&options, (uint32_t)level)) {
		error = cairn_error_set(CAIRN_ERROR, "lzma preset %d is not supported by liblzma", level);
		goto done;
	}
	/*
	 * A dictionary larger than the input only costs memory and time, on both
	 * sides: presets 6-9 would allocate 8-64 MiB per chunk.
	 */
	if (options.dict_size > in_len)
		options.dict_size = in_len < LZMA_DICT_SIZE_MIN ? LZMA_DICT_SIZE_MIN : (uint32_t)in_len;
	filters[0].id = LZMA_FILTER_LZMA2;
	filters[0].options = &options;
	filters[1].id = LZMA_VLI_UNKNOWN;
	filters[1].options = NULL;

	if (bound == 0) {
		error = too_large(CAIRN_CODEC_LZMA, in_len);
		goto done;
	}
	if ((error = cairn_buf_reserve(out, bound)) < 0)
		goto done;
	ret = lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, NULL, in, in_len,
	                                out->data + out->len, &pos, bound);
	if (ret == LZMA_MEM_ERROR) {
		error = cairn_error_set(CAIRN_ENOMEM, "lzma compression failed: out of memory");
		goto done;
	}
	if (ret != LZMA_OK) {
		error = cairn_error_set(CAIRN_ERROR, "lzma compression failed: liblzma error %d", (int)ret);
		goto done;
	}
	out->len += pos;
done:
	return error;
}

static int compress_brotli(int level, const uint8_t *in, size_t in_len, cairn_buf *out)
{
	size_t bound = BrotliEncoderMaxCompressedSize(in_len), n;
	int window_bits = BROTLI_MIN_WINDOW_BITS;
	int error;

	/* The smallest window that covers the input keeps decoder memory small. */
	while (window_bits < BROTLI_MAX_WINDOW_BITS && ((size_t)1 << window_bits) - 16 < in_len)
		window_bits++;
	if (bound == 0) {
		error = too_large(CAIRN_CODEC_BROTLI, in_len);
		goto done;
	}
	if ((error = cairn_buf_reserve(out, bound)) < 0)
		goto done;
	n = bound;
	if (!BrotliEncoderCompress(level, window_bits, BROTLI_MODE_GENERIC, in_len, in, &n,
	                           out->data + out->len)) {
		error = cairn_error_set(CAIRN_ERROR, "brotli compression failed at quality %d", level);
		goto done;
	}
	out->len += n;
done:
	return error;
}

int cairn_codec_compress(int id, int level, const void *in, size_t in_len, cairn_buf *out)
{
	const uint8_t *src = in_len ? in : &empty_input;
	int error;

	if (!codec_valid(id)) {
		error = cairn_error_set(CAIRN_EUNSUPPORTED, "unknown compression codec id %d", id);
		goto done;
	}
	if ((error = resolve_level(id, level, &level)) < 0)
		goto done;
	switch (id) {
	case CAIRN_CODEC_ZSTD:
		error = compress_zstd(level, src, in_len, out);
		break;
	case CAIRN_CODEC_LZ4:
		error = compress_lz4(level, src, in_len, out);
		break;
	case CAIRN_CODEC_LZMA:
		error = compress_lzma(level, src, in_len, out);
		break;
	case CAIRN_CODEC_BROTLI:
		error = compress_brotli(level, src, in_len, out);
		break;
	default:
		error = cairn_buf_append(out, src, in_len);
		break;
	}
done:
	return error;
}

__attribute__((format(printf, 2, 3))) static int corrupt(int id, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	reason[0] = (char)tolower((unsigned char)reason[0]);
	return cairn_error_set(CAIRN_ECORRUPT, "%s data is damaged: %s",
	                       id == CAIRN_CODEC_NONE ? "uncompressed" : codecs[id].name, reason);
}

static int wrong_length(int id, size_t got, size_t plain_len)
{
	return corrupt(id, "decompressed to %zu bytes, expected %zu", got, plain_len);
}

static int too_long(int id, size_t plain_len)
{
	return corrupt(id, "decompresses to more than the expected %zu bytes", plain_len);
}

static int decompress_zstd(const uint8_t *in, size_t in_len, size_t plain_len, uint8_t *dst)
{
	zstd_contexts *z = zstd_thread_contexts();
	size_t n = z ? ZSTD_decompressDCtx(z->d, dst, plain_len, in, in_len)
	             : ZSTD_decompress(dst, plain_len, in, in_len);

	if (ZSTD_isError(n)) {
		switch (ZSTD_getErrorCode(n)) {
		case ZSTD_error_memory_allocation:
			return cairn_error_set(CAIRN_ENOMEM, "zstd decompression failed: out of memory");
		case ZSTD_error_dstSize_tooSmall:
			return too_long(CAIRN_CODEC_ZSTD, plain_len);
		default:
			return corrupt(CAIRN_CODEC_ZSTD, "%s", ZSTD_getErrorName(n));
		}
	}
	if (n != plain_len)
		return wrong_length(CAIRN_CODEC_ZSTD, n, plain_len);
	return 0;
}

static int decompress_lz4(const uint8_t *in, size_t in_len, size_t plain_len, uint8_t *dst)
{
	int n;

	/* compress_lz4 never produces blocks this large. */
	if (in_len > (size_t)LZ4_compressBound(LZ4_MAX_INPUT_SIZE) || plain_len > LZ4_MAX_INPUT_SIZE)
		return corrupt(CAIRN_CODEC_LZ4, "block of %zu bytes for %zu bytes exceeds the lz4 limits",
		               in_len, plain_len);
	n = LZ4_decompress_safe((const char *)in, (char *)dst, (int)in_len, (int)plain_len);
	if (n < 0)
		return corrupt(CAIRN_CODEC_LZ4,
		               "malformed or truncated block, or more than the expected %zu bytes",
		               plain_len);
	if ((size_t)n != plain_len)
		return wrong_length(CAIRN_CODEC_LZ4, (size_t)n, plain_len);
	return 0;
}

static int decompress_lzma(const uint8_t *in, size_t in_len, size_t plain_len, uint8_t *dst)
{
	uint64_t memlimit = LZMA_DECODE_MEMLIMIT;
	size_t in_pos = 0, out_pos = 0;
	lzma_ret ret;

	ret = lzma_stream_buffer_decode(&memlimit, 0, NULL, in, &in_pos, in_len, dst, &out_pos,
	                                plain_len);
	switch (ret) {
	case LZMA_OK:
		break;
	case LZMA_MEM_ERROR:
		return cairn_error_set(CAIRN_ENOMEM, "lzma decompression failed: out of memory");
	case LZMA_BUF_ERROR:
		return too_long(CAIRN_CODEC_LZMA, plain_len);
	case LZMA_DATA_ERROR:
		return corrupt(CAIRN_CODEC_LZMA, "corrupt or truncated stream");
	case LZMA_FORMAT_ERROR:
		return corrupt(CAIRN_CODEC_LZMA, "not in xz format");
	case LZMA_OPTIONS_ERROR:
		return corrupt(CAIRN_CODEC_LZMA, "unsupported options in stream header");
	case LZMA_MEMLIMIT_ERROR:
		return corrupt(CAIRN_CODEC_LZMA, "stream needs more than %llu MiB of memory",
		               (unsigned long long)(LZMA_DECODE_MEMLIMIT >> 20));
	default:
		return corrupt(CAIRN_CODEC_LZMA, "liblzma error %d", (int)ret);
	}
	if (in_pos != in_len)
		return corrupt(CAIRN_CODEC_LZMA, "%zu bytes of trailing data", in_len - in_pos);
	if (out_pos != plain_len)
		return wrong_length(CAIRN_CODEC_LZMA, out_pos, plain_len);
	return 0;
}

static int brotli_decoder_error(BrotliDecoderErrorCode code)
{
	/* "_ERROR_FORMAT_PADDING_1" becomes "format padding 1". */
	const char *name = BrotliDecoderErrorString(code);
	char reason[64];
	size_t i;

	switch (code) {
	case BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES:
	case BROTLI_DECODER_ERROR_ALLOC_TREE_GROUPS:
	case BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MAP:
	case BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_1:
	case BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_2:
	case BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES:
		return cairn_error_set(CAIRN_ENOMEM, "brotli decompression failed: out of memory");
	default:
		break;
	}
	if (strncmp(name, "_ERROR_", 7) == 0)
		name += 7;
	for (i = 0; name[i] && i < sizeof(reason) - 1; i++)
		reason[i] = name[i] == '_' ? ' ' : (char)tolower((unsigned char)name[i]);
	reason[i] = 0;
	return corrupt(CAIRN_CODEC_BROTLI, "%s", reason);
}

static int decompress_brotli(const uint8_t *in, size_t in_len, size_t plain_len, uint8_t *dst)
{
	BrotliDecoderState *decoder;
	BrotliDecoderResult result;
	const uint8_t *next_in = in;
	size_t avail_in = in_len, avail_out = plain_len, spare_avail = 1;
	uint8_t *next_out = dst, spare, *spare_out = &spare;
	int error = 0;

	if (!(decoder = BrotliDecoderCreateInstance(NULL, NULL, NULL))) {
		error = cairn_error_set(CAIRN_ENOMEM, "brotli decompression failed: out of memory");
		goto done;
	}
	result = BrotliDecoderDecompressStream(decoder, &avail_in, &next_in, &avail_out, &next_out, NULL);
	/*
	 * With dst exactly full the decoder may stop before reading the end of
	 * the stream; one spare byte tells whether more output would follow.
	 */
	if (result == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
		result = BrotliDecoderDecompressStream(decoder, &avail_in, &next_in, &spare_avail, &spare_out,
		                                       NULL);
		if (spare_avail == 0 || result == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
			error = too_long(CAIRN_CODEC_BROTLI, plain_len);
			goto done;
		}
	}
	switch (result) {
	case BROTLI_DECODER_RESULT_SUCCESS:
		break;
	case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
		error = corrupt(CAIRN_CODEC_BROTLI, "truncated stream");
		goto done;
	default:
		error = brotli_decoder_error(BrotliDecoderGetErrorCode(decoder));
		goto done;
	}
	if (avail_in != 0) {
		error = corrupt(CAIRN_CODEC_BROTLI, "%zu bytes of trailing data", avail_in);
		goto done;
	}
	if (avail_out != 0)
		error = wrong_length(CAIRN_CODEC_BROTLI, plain_len - avail_out, plain_len);
done:
	if (decoder)
		BrotliDecoderDestroyInstance(decoder);
	return error;
}

int cairn_codec_decompress(int id, const void *in, size_t in_len, size_t plain_len, cairn_buf *out)
{
	const uint8_t *src = in_len ? in : &empty_input;
	uint8_t *dst;
	int error;

	if (!codec_valid(id)) {
		error = cairn_error_set(CAIRN_EUNSUPPORTED, "unknown compression codec id %d", id);
		goto done;
	}
	/* Every codec but none encodes even empty input as at least one byte. */
	if (id != CAIRN_CODEC_NONE && in_len == 0) {
		error = corrupt(id, "no compressed bytes");
		goto done;
	}
	if ((error = cairn_buf_reserve(out, plain_len)) < 0)
		goto done;
	dst = out->data + out->len;
	switch (id) {
	case CAIRN_CODEC_ZSTD:
		error = decompress_zstd(src, in_len, plain_len, dst);
		break;
	case CAIRN_CODEC_LZ4:
		error = decompress_lz4(src, in_len, plain_len, dst);
		break;
	case CAIRN_CODEC_LZMA:
		error = decompress_lzma(src, in_len, plain_len, dst);
		break;
	case CAIRN_CODEC_BROTLI:
		error = decompress_brotli(src, in_len, plain_len, dst);
		break;
	default:
		if (in_len != plain_len)
			error = corrupt(id, "%zu bytes, expected %zu", in_len, plain_len);
		else
			memcpy(dst, src, in_len);
		break;
	}
	if (error < 0)
		goto done;
	out->len += plain_len;
done:
	return error;
}
