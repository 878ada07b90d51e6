/* test_chunker.c - cut point properties of core/chunker.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunker.h"
#include "error.h"
#include "tap.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* Test data from xorshift64*, fixed seed: the same bytes on every run. */
static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1;
	size_t i;

	for (i = 0; i < len; i++) {
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		buf[i] = (uint8_t)((s * 0x2545F4914F6CDD1Dull) >> 56);
	}
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		diag("out of memory");
		exit(2);
	}
	return p;
}

typedef struct cuts {
	size_t *len; /* chunk lengths in stream order */
	size_t count;
	size_t cap;
} cuts;

static void cuts_add(cuts *c, size_t len)
{
	if (c->count == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->len = realloc(c->len, c->cap * sizeof(*c->len));
		if (!c->len) {
			diag("out of memory");
			exit(2);
		}
	}
	c->len[c->count++] = len;
}

static void cuts_free(cuts *c)
{
	free(c->len);
	memset(c, 0, sizeof(*c));
}

static int cuts_equal(const cuts *a, const cuts *b)
{
	return a->count == b->count && memcmp(a->len, b->len, a->count * sizeof(*a->len)) == 0;
}

/* Chunks the whole buffer, handing the chunker everything that is left. */
static cuts chunk_all(const cairn_chunker_params *p, const cairn_gear *g, const uint8_t *data,
                      size_t len)
{
	cuts c = {0};
	size_t off = 0, n;

	while (off < len) {
		n = cairn_chunker_cut(p, g, data + off, len - off, 1);
		if (n == 0 || n > len - off) {
			diag("cut returned %zu with %zu bytes left", n, len - off);
			cuts_add(&c, 0);
			break;
		}
		cuts_add(&c, n);
		off += n;
	}
	return c;
}

/*
 * Chunks as a reader does: data arrives in pieces of `piece` bytes into a
 * buffer that keeps the undecided remainder; final is set once all is in.
 */
static cuts chunk_streaming(const cairn_chunker_params *p, const cairn_gear *g,
                            const uint8_t *data, size_t len, size_t piece)
{
	size_t cap = piece + (p->fixed ? p->block : p->max_size);
	uint8_t *buf = xmalloc(cap);
	size_t have = 0, fed = 0, start, n;
	cuts c = {0};
	int final;

	do {
		n = len - fed < piece ? len - fed : piece;
		memcpy(buf + have, data + fed, n);
		have += n;
		fed += n;
		final = fed == len;
		start = 0;
		while (start < have && (n = cairn_chunker_cut(p, g, buf + start, have - start, final)) > 0) {
			cuts_add(&c, n);
			start += n;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	} while (!final);
	if (have)
		diag("streaming left %zu bytes undecided", have);
	free(buf);
	return c;
}

static int cuts_within_bounds(const cairn_chunker_params *p, const cuts *c, size_t total)
{
	size_t i, sum = 0;

	for (i = 0; i < c->count; i++) {
		int last = i + 1 == c->count;

		if (c->len[i] > p->max_size || c->len[i] == 0 || (!last && c->len[i] < p->min_size)) {
			diag("chunk %zu of %zu has %zu bytes", i, c->count, c->len[i]);
			return 0;
		}
		sum += c->len[i];
	}
	return sum == total;
}

/* End offsets of the chunks (prefix sums). */
static size_t *cut_offsets(const cuts *c)
{
	size_t *off = xmalloc(c->count * sizeof(*off));
	size_t i, pos = 0;

	for (i = 0; i < c->count; i++)
		off[i] = pos += c->len[i];
	return off;
}

static int offset_present(const size_t *off, size_t count, size_t want)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (off[mid] < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < count && off[lo] == want;
}

static const cairn_chunker_params cdc64k = {0, 0, 16 * KiB, 64 * KiB, 256 * KiB, 0x5eed};

static void test_gear(void)
{
	cairn_gear a, b;

	cairn_gear_init(&a, 0);
	cairn_gear_init(&b, 0);
	/* splitmix64 from state 0: its first two outputs are well known */
	ok(a.table[0] == 0xE220A8397B1DCDAFull && a.table[1] == 0x6E789E6AA1B965F4ull,
	   "gear table is splitmix64 of the seed");
	ok(memcmp(&a, &b, sizeof(a)) == 0, "gear table is deterministic");
	cairn_gear_init(&b, 1);
	ok(memcmp(&a, &b, sizeof(a)) != 0, "gear table depends on the seed");
}

static void test_bounds_and_determinism(const uint8_t *data, size_t len)
{
	cairn_gear g;
	cuts a, b;
	double mean;

	cairn_gear_init(&g, cdc64k.seed);
	a = chunk_all(&cdc64k, &g, data, len);
	b = chunk_all(&cdc64k, &g, data, len);
	ok(cuts_within_bounds(&cdc64k, &a, len), "all %zu chunks within [min, max] except the last",
	   a.count);
	ok(cuts_equal(&a, &b), "chunking is deterministic");
	mean = (double)len / (double)a.count;
	diag("average chunk %.0f bytes for avg_size %zu", mean, cdc64k.avg_size);
	ok(mean >= cdc64k.avg_size / 2.0 && mean <= cdc64k.avg_size * 2.0,
	   "average chunk size within a factor of 2 of avg_size");
	cuts_free(&a);
	cuts_free(&b);
}

static void test_small_params(const uint8_t *data)
{
	cairn_chunker_params p = {0, 0, 64, 256, 1024, 99};
	size_t len = 2 * MiB;
	cairn_gear g;
	cuts c;
	double mean;

	ok(cairn_chunker_check(&p) == 0, "smallest sizes are valid");
	cairn_gear_init(&g, p.seed);
	c = chunk_all(&p, &g, data, len);
	mean = (double)len / (double)c.count;
	ok(cuts_within_bounds(&p, &c, len) && mean >= 128 && mean <= 512,
	   "64/256/1024 chunking: bounds hold, average %.0f", mean);
	cuts_free(&c);

	p.min_size = p.avg_size = p.max_size = 4096;
	c = chunk_all(&p, &g, data, len);
	ok(cuts_within_bounds(&p, &c, len) && c.count == len / 4096, "min = avg = max cuts every max");
	cuts_free(&c);
}

static void test_low_entropy(void)
{
	size_t len = 3 * MiB + 5;
	uint8_t *zeros = xmalloc(len);
	cairn_gear g;
	cuts c;

	memset(zeros, 0, len);
	cairn_gear_init(&g, cdc64k.seed);
	c = chunk_all(&cdc64k, &g, zeros, len);
	ok(cuts_within_bounds(&cdc64k, &c, len), "zero bytes: chunks within bounds");
	cuts_free(&c);
	free(zeros);
}

/*
 * Inserting bytes near the start may move the first cut or two; after that
 * the chunk boundaries must fall on the same content as before.
 */
static void test_insertion(const uint8_t *data, size_t len)
{
	size_t at = 1000, ins = 100, blen = len + ins;
	uint8_t *shifted = xmalloc(blen);
	size_t *aoff, *boff, i, shared = 0, first_shared = SIZE_MAX;
	int tail_identical = 1;
	cairn_gear g;
	cuts a, b;

	memcpy(shifted, data, at);
	fill_random(shifted + at, ins, 777);
	memcpy(shifted + at + ins, data + at, len - at);

	cairn_gear_init(&g, cdc64k.seed);
	a = chunk_all(&cdc64k, &g, data, len);
	b = chunk_all(&cdc64k, &g, shifted, blen);
	aoff = cut_offsets(&a);
	boff = cut_offsets(&b);

	for (i = 0; i < b.count; i++) {
		size_t start = i ? boff[i - 1] : 0;
		/* the same chunk: both ends on old boundaries, moved by ins */
		int same = start >= at + ins && offset_present(aoff, a.count, boff[i] - ins) &&
		           (start == at + ins || offset_present(aoff, a.count, start - ins));

		if (same) {
			shared++;
			if (first_shared == SIZE_MAX)
				first_shared = i;
		} else if (first_shared != SIZE_MAX) {
			tail_identical = 0;
		}
	}
	diag("%zu of %zu chunks shared after inserting %zu bytes at %zu; resynchronised at chunk %zu",
	     shared, b.count, ins, at, first_shared);
	ok((double)shared / (double)b.count > 0.9, "more than 90%% of chunks survive an insertion");
	ok(first_shared <= 2 && tail_identical,
	   "chunk sequences are identical from the third chunk on");

	free(aoff);
	free(boff);
	cuts_free(&a);
	cuts_free(&b);
	free(shifted);
}

static void test_seeds(const uint8_t *data, size_t len)
{
	cairn_chunker_params other = cdc64k;
	cairn_gear g1, g2;
	size_t *off1, *off2, i, shared = 0;
	cuts a, b;

	other.seed = cdc64k.seed + 1;
	cairn_gear_init(&g1, cdc64k.seed);
	cairn_gear_init(&g2, other.seed);
	a = chunk_all(&cdc64k, &g1, data, len);
	b = chunk_all(&other, &g2, data, len);
	off1 = cut_offsets(&a);
	off2 = cut_offsets(&b);
	for (i = 0; i + 1 < b.count; i++)
		shared += (size_t)offset_present(off1, a.count, off2[i]);
	diag("seeds %llu and %llu share %zu of %zu cut points", (unsigned long long)cdc64k.seed,
	     (unsigned long long)other.seed, shared, b.count);
	ok(a.len[0] != b.len[0] && shared * 10 < b.count, "different seeds give different cut points");
	free(off1);
	free(off2);
	cuts_free(&a);
	cuts_free(&b);
}

static void test_streaming(const uint8_t *data, size_t len)
{
	cairn_chunker_params fixed = {1, 8 * KiB, 0, 0, 0, 0};
	cairn_gear g;
	cuts whole, streamed;

	cairn_gear_init(&g, cdc64k.seed);
	whole = chunk_all(&cdc64k, &g, data, len);
	streamed = chunk_streaming(&cdc64k, &g, data, len, MiB);
	ok(cuts_equal(&whole, &streamed), "streaming in 1 MiB pieces gives the same cuts");
	cuts_free(&streamed);
	/* pieces smaller than max_size: the chunker must ask for more data */
	streamed = chunk_streaming(&cdc64k, &g, data, len / 4, 5003);
	cuts_free(&whole);
	whole = chunk_all(&cdc64k, &g, data, len / 4);
	ok(cuts_equal(&whole, &streamed), "streaming in 5003-byte pieces gives the same cuts");
	cuts_free(&streamed);
	cuts_free(&whole);

	whole = chunk_all(&fixed, &g, data, len / 4 + 17);
	streamed = chunk_streaming(&fixed, &g, data, len / 4 + 17, 3001);
	ok(cuts_equal(&whole, &streamed), "fixed mode streaming gives the same cuts");
	cuts_free(&streamed);
	cuts_free(&whole);
}

static void test_fixed(const uint8_t *data)
{
	cairn_chunker_params p = {1, 8 * KiB, 0, 0, 0, 0};
	size_t len = 5 * MiB + 123, i;
	int exact = 1;
	cairn_gear g;
	cuts c;

	cairn_gear_init(&g, 0);
	c = chunk_all(&p, &g, data, len);
	for (i = 0; i + 1 < c.count; i++)
		exact &= c.len[i] == p.block;
	ok(exact && c.count == len / p.block + 1 && c.len[c.count - 1] == 123,
	   "fixed mode cuts exact blocks and a short last one");
	ok(cairn_chunker_cut(&p, &g, data, p.block - 1, 0) == 0, "fixed mode asks for a full block");
	ok(cairn_chunker_cut(&p, &g, data, p.block - 1, 1) == p.block - 1,
	   "fixed mode final short block");
	ok(cairn_chunker_cut(&p, &g, data, 3 * p.block, 0) == p.block, "fixed mode with spare data");
	cuts_free(&c);
}

static void test_cut_contract(const uint8_t *data)
{
	const cairn_chunker_params *p = &cdc64k;
	cairn_gear g;
	size_t first, n;

	cairn_gear_init(&g, p->seed);
	first = cairn_chunker_cut(p, &g, data, p->max_size, 0);
	ok(first >= p->min_size && first <= p->max_size, "a max_size buffer always gets a cut");
	ok(cairn_chunker_cut(p, &g, data, first, 0) == first,
	   "a cut inside a short buffer is returned without final");
	ok(cairn_chunker_cut(p, &g, data, first - 1, 0) == 0, "one byte short of the cut: need more");
	ok(cairn_chunker_cut(p, &g, data, first - 1, 1) == first - 1, "final takes what is there");
	ok(cairn_chunker_cut(p, &g, data, p->min_size - 1, 0) == 0, "below min_size: need more");
	ok(cairn_chunker_cut(p, &g, data, 10, 1) == 10, "final below min_size: one short chunk");
	ok(cairn_chunker_cut(p, &g, data, 0, 1) == 0, "final with no data: nothing");
	n = cairn_chunker_cut(p, &g, data, 10 * p->max_size, 0);
	ok(n == first, "more data than max_size: the same cut");
}

/*
 * The first cut points of the test data. They only change when the
 * algorithm or the gear generator does, and then new backups stop
 * deduplicating against existing repositories: change this on purpose only.
 * The values were cross-checked with an independent Python implementation of
 * the algorithm described in chunker.c.
 */
static void test_stable_cuts(const uint8_t *data, size_t len)
{
	static const size_t expect[] = {68665, 93092, 49816, 91440, 69677, 66810, 59667, 74358};
	cairn_gear g;
	cuts c;

	cairn_gear_init(&g, cdc64k.seed);
	c = chunk_all(&cdc64k, &g, data, len);
	ok(c.count >= 8 && memcmp(c.len, expect, sizeof(expect)) == 0, "cut points are stable");
	cuts_free(&c);
}

static void test_check(void)
{
	static const struct {
		cairn_chunker_params p;
		const char *why;
	} bad[] = {
		{{0, 0, 16 * KiB, 48 * KiB, 256 * KiB, 0}, "average not a power of two"},
		{{0, 0, 128 * KiB, 64 * KiB, 256 * KiB, 0}, "min above average"},
		{{0, 0, 16 * KiB, 64 * KiB, 32 * KiB, 0}, "average above max"},
		{{0, 0, 32, 64, 256, 0}, "min below 64 bytes"},
		{{0, 0, 0, 64, 256, 0}, "min of 0"},
		{{0, 0, MiB, 32 * MiB, 128 * MiB, 0}, "max above 64 MiB"},
		{{0, 0, 16 * KiB, 0, 256 * KiB, 0}, "average of 0"},
		{{1, 0, 0, 0, 0, 0}, "fixed block of 0"},
		{{1, 128 * MiB, 0, 0, 0, 0}, "fixed block above 64 MiB"},
	};
	cairn_chunker_params fixed = {1, 8 * KiB, 0, 0, 0, 0};
	size_t i;

	ok(cairn_chunker_check(&cdc64k) == 0, "16K/64K/256K is valid");
	ok(cairn_chunker_check(&fixed) == 0, "fixed 8K is valid");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int error;

		cairn_error_clear();
		error = cairn_chunker_check(&bad[i].p);
		ok(error == CAIRN_EINVALID && cairn_error_message()[0] != 0, "check rejects %s (%s)",
		   bad[i].why, cairn_error_message());
	}
}

int main(void)
{
	size_t len = 32 * MiB;
	uint8_t *data = xmalloc(len);

	fill_random(data, len, 0x0123456789abcdefull);
	test_gear();
	test_bounds_and_determinism(data, len);
	test_small_params(data);
	test_low_entropy();
	test_insertion(data, len);
	test_seeds(data, len);
	test_streaming(data, len);
	test_fixed(data);
	test_cut_contract(data);
	test_stable_cuts(data, len);
	test_check();
	free(data);
	return tap_done();
}
