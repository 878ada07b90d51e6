/* test_index.c - the chunk index of core/repo.c, in memory and spilled to runs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "repo.h"
#include "tap.h"

/* xorshift64*: the same ids on every run. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static void make_entry(cairn_index_entry *e, uint64_t n)
{
	size_t i;

	memset(e, 0, sizeof(*e));
	for (i = 0; i < CAIRN_HASH_LEN; i += 8) {
		uint64_t r = rng();

		memcpy(e->id + i, &r, 8);
	}
	e->pack = (uint32_t)(n % 7);
	e->offset = n * 4096;
	e->length = (uint32_t)(n % 100000 + 64);
	e->plain_len = (uint32_t)(n % 1000000);
}

/* Every entry is found with its fields; ids never added are not. */
static int check_all(const cairn_index *idx, const cairn_index_entry *all, size_t n, const char *what)
{
	size_t i, wrong = 0, found_absent = 0;

	for (i = 0; i < n; i++) {
		const cairn_index_entry *e = cairn_index_find(idx, all[i].id);

		if (!e || memcmp(e, &all[i], sizeof(*e)) != 0)
			wrong++;
	}
	for (i = 0; i < 2000; i++) {
		cairn_index_entry absent;

		make_entry(&absent, i);
		if (cairn_index_find(idx, absent.id))
			found_absent++;
	}
	return ok(wrong == 0 && found_absent == 0, "%s: %zu entries found as added, %zu wrong; "
	          "no absent id found (%zu were)", what, n - wrong, wrong, found_absent);
}

static void test_spill(size_t n, uint64_t memory, const char *what)
{
	cairn_index idx;
	cairn_index_entry *all = malloc(n * sizeof(*all));
	size_t i;
	int error = 0;

	memset(&idx, 0, sizeof(idx));
	ok(cairn_index_set_memory(&idx, memory) == 0, "%s: memory limit set", what);
	for (i = 0; i < n && error == 0; i++) {
		make_entry(&all[i], i);
		error = cairn_index_add(&idx, &all[i]);
	}
	ok(error == 0, "%s: %zu entries added (%s)", what, n, error ? cairn_error_message() : "ok");
	ok(cairn_index_size(&idx) == n, "%s: the index counts %llu entries", what,
	   (unsigned long long)cairn_index_size(&idx));
	diag("%s: %zu in memory, %zu runs", what, idx.count, idx.run_count);
	check_all(&idx, all, n, what);
	/* Adding again what is in memory changes nothing. */
	if (idx.count) {
		cairn_index_entry again = idx.entries[0];

		again.offset++;
		ok(cairn_index_add(&idx, &again) == 0 &&
		       cairn_index_find(&idx, again.id)->offset == again.offset - 1,
		   "%s: an id already in memory keeps its first entry", what);
	}
	/* An id only in a run, added again: either entry is a valid answer. */
	cairn_index_free(&idx);
	free(all);
}

static void test_no_limit(void)
{
	cairn_index idx;
	cairn_index_entry *all = malloc(20000 * sizeof(*all));
	size_t i;

	memset(&idx, 0, sizeof(idx));
	for (i = 0; i < 20000; i++) {
		make_entry(&all[i], i);
		cairn_index_add(&idx, &all[i]);
	}
	ok(idx.run_count == 0 && idx.count == 20000, "without a limit everything stays in memory");
	check_all(&idx, all, 20000, "no limit");
	cairn_index_free(&idx);
	free(all);
}

static void test_pointer_lifetime(void)
{
	cairn_index idx;
	cairn_index_entry a, b;
	const cairn_index_entry *pa;
	size_t i;

	memset(&idx, 0, sizeof(idx));
	cairn_index_set_memory(&idx, 64 << 10);
	make_entry(&a, 1);
	make_entry(&b, 2);
	cairn_index_add(&idx, &a);
	cairn_index_add(&idx, &b);
	/* Push both into runs. */
	for (i = 0; i < 5000; i++) {
		cairn_index_entry e;

		make_entry(&e, i + 10);
		cairn_index_add(&idx, &e);
	}
	pa = cairn_index_find(&idx, a.id);
	ok(idx.run_count > 0 && pa && memcmp(pa, &a, sizeof(a)) == 0, "an entry found in a run");
	cairn_index_free(&idx);
}

int main(void)
{
	test_no_limit();
	/* 64 KiB: about 900 entries in memory, so runs and merges of runs. */
	test_spill(1000, 64 << 10, "one spill");
	test_spill(30000, 64 << 10, "many runs, merged");
	test_spill(200000, 1 << 20, "200,000 entries in 1 MiB");
	test_pointer_lifetime();
	return tap_done();
}
