/*
 * chunker.h - where to cut a byte stream into chunks.
 *
 * Stateless: the caller keeps a buffer that starts at the current chunk's
 * first byte and asks where the chunk ends. Cut points depend only on the
 * bytes and the parameters, so inserting bytes early in a stream moves only
 * the cut points near the insertion (content-defined chunking).
 */
#ifndef CAIRN_CHUNKER_H
#define CAIRN_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct cairn_chunker_params {
	int fixed;          /* 1: fixed blocks of `block` bytes; 0: FastCDC */
	size_t block;       /* fixed block size */
	size_t min_size;    /* FastCDC: no cut before this many bytes */
	size_t avg_size;    /* FastCDC: target average, a power of two */
	size_t max_size;    /* FastCDC: forced cut here */
	uint64_t seed;      /* FastCDC: selects the gear table (per repository) */
} cairn_chunker_params;

/*
 * Fills a FastCDC gear table from the seed; computed once per params and
 * kept by the caller.
 */
typedef struct cairn_gear {
	uint64_t table[256];
} cairn_gear;
void cairn_gear_init(cairn_gear *g, uint64_t seed);

/*
 * Returns the length of the chunk starting at data[0]: a value in
 * (0, len] when a cut point is known, or 0 when more data is needed to
 * decide (only when !final). With final set, returns the last cut (len at
 * most max_size, or block for fixed). Callers that always pass at least
 * max_size bytes (or block bytes) when !final never get 0.
 */
size_t cairn_chunker_cut(const cairn_chunker_params *p, const cairn_gear *g, const uint8_t *data,
                         size_t len, int final);

/* Validates params (min <= avg <= max, avg power of two, sizes in 64 B..64 MiB). */
int cairn_chunker_check(const cairn_chunker_params *p);

#endif
