/* chunker.c - fixed-size and FastCDC cut points (see chunker.h). */
#include "chunker.h"

#include "error.h"

#define CHUNK_SIZE_MIN ((size_t)64)
#define CHUNK_SIZE_MAX ((size_t)64 << 20)

/*
 * The gear table is the output of splitmix64 (Steele, Lea, Flood 2014, as
 * published by Vigna) started from state = seed:
 *
 *   state += 0x9E3779B97F4A7C15
 *   z = state
 *   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
 *   z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *   table[i] = z ^ (z >> 31)          for i = 0 .. 255 in order
 *
 * Changing this changes where chunks are cut, and so how well new backups
 * deduplicate against old ones; stored data stays readable either way.
 */
void cairn_gear_init(cairn_gear *g, uint64_t seed)
{
	uint64_t state = seed, z;
	int i;

	for (i = 0; i < 256; i++) {
		state += 0x9E3779B97F4A7C15ull;
		z = state;
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		g->table[i] = z ^ (z >> 31);
	}
}

/*
 * A mask of the `bits` highest bits. With fp = (fp << 1) + gear[byte], bit
 * k of fp depends on the last k + 1 bytes only, so the top bits give the
 * widest window (about 64 bytes), as the zero-padded masks of the paper do.
 */
static inline uint64_t top_bits(unsigned bits)
{
	return ~(uint64_t)0 << (64 - bits);
}

static unsigned log2_size(size_t v)
{
	unsigned bits = 0;

	while (v >>= 1)
		bits++;
	return bits;
}

/*
 * FastCDC with normalized chunking level 2: before avg_size a cut needs
 * log2(avg) + 2 zero bits (rarer), from avg_size on log2(avg) - 2 (more
 * likely), which squeezes chunk sizes toward avg_size. Hashing starts at
 * min_size (cut-point skipping); the chunk ends just after the byte whose
 * fingerprint matched. Returns 0 when no cut was found before `limit`.
 */
static size_t fastcdc_scan(const cairn_chunker_params *p, const cairn_gear *g, const uint8_t *data,
                           size_t limit)
{
	const uint64_t *gear = g->table;
	unsigned bits = log2_size(p->avg_size);
	uint64_t mask_hard = top_bits(bits + 2), mask_easy = top_bits(bits - 2);
	size_t normal = p->avg_size < limit ? p->avg_size : limit;
	size_t i = p->min_size;
	uint64_t fp = 0;

	for (; i < normal; i++) {
		fp = (fp << 1) + gear[data[i]];
		if (!(fp & mask_hard))
			return i + 1;
	}
	for (; i < limit; i++) {
		fp = (fp << 1) + gear[data[i]];
		if (!(fp & mask_easy))
			return i + 1;
	}
	return 0;
}

size_t cairn_chunker_cut(const cairn_chunker_params *p, const cairn_gear *g, const uint8_t *data,
                         size_t len, int final)
{
	size_t limit, cut;

	/* p has passed cairn_chunker_check: block and avg_size are at least 64. */
	if (p->fixed) {
		if (len >= p->block)
			return p->block;
		return final ? len : 0;
	}

	/*
	 * Scanning is left to right and each decision depends only on bytes
	 * already seen, so a cut found in a short buffer is the one a longer
	 * buffer would give: return it even when !final.
	 */
	limit = len < p->max_size ? len : p->max_size;
	if (limit > p->min_size && (cut = fastcdc_scan(p, g, data, limit)) > 0)
		return cut;
	if (len >= p->max_size)
		return p->max_size;
	return final ? len : 0;
}

static int size_in_range(const char *name, size_t v)
{
	if (v < CHUNK_SIZE_MIN || v > CHUNK_SIZE_MAX)
		return cairn_error_set(CAIRN_EINVALID,
		                       "chunker %s %zu is out of range (%zu bytes to %zu MiB)", name, v,
		                       CHUNK_SIZE_MIN, CHUNK_SIZE_MAX >> 20);
	return 0;
}

int cairn_chunker_check(const cairn_chunker_params *p)
{
	int error;

	if (p->fixed)
		return size_in_range("block size", p->block);

	if ((error = size_in_range("min size", p->min_size)) < 0 ||
	    (error = size_in_range("average size", p->avg_size)) < 0 ||
	    (error = size_in_range("max size", p->max_size)) < 0)
		return error;
	if (p->avg_size & (p->avg_size - 1))
		return cairn_error_set(CAIRN_EINVALID, "chunker average size %zu is not a power of two",
		                       p->avg_size);
	if (p->min_size > p->avg_size || p->avg_size > p->max_size)
		return cairn_error_set(CAIRN_EINVALID,
		                       "chunker sizes must satisfy min <= avg <= max, got %zu, %zu, %zu",
		                       p->min_size, p->avg_size, p->max_size);
	return 0;
}
