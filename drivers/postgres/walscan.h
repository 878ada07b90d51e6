/*
 * drivers/postgres/walscan.h - lists the blocks PostgreSQL WAL records touch.
 *
 * Parses raw WAL segment bytes (as found in pg_wal or an archive, after
 * decompression) and reports, for every record whose start LSN lies in
 * [start_lsn, end_lsn), the record's resource manager, info byte and main
 * data, and each block it references. An incremental backup reads only the
 * blocks so reported, so the scanner never guesses: anything it cannot
 * verify (page headers, record CRCs, block headers, a missing or short
 * segment) ends the scan with an error instead of a silent gap.
 *
 * Formats accepted: the WAL of PostgreSQL 13, 14, 15, 16 and 17 (told
 * apart by the page magic; 8 kB WAL pages, 8 kB data blocks, MAXALIGN 8,
 * little-endian). Any other magic is an error.
 *
 * Plain C11 and libc only: it is linked into the pg driver plugin, which
 * does not call cairn core functions.
 */
#ifndef CAIRN_PG_WALSCAN_H
#define CAIRN_PG_WALSCAN_H

#include <stddef.h>
#include <stdint.h>

/* Return codes: 0 success, else one of these (a callback's own non-zero
 * value is passed through unchanged, see pg_walscan_cb). */
enum {
	PG_WALSCAN_EINVAL = -1,  /* bad argument, or segments fed out of order */
	PG_WALSCAN_ENOMEM = -2,  /* out of memory */
	PG_WALSCAN_ECORRUPT = -3, /* invalid WAL: page header, CRC, record format */
	PG_WALSCAN_EEND = -4,    /* the WAL ends (or the data fed ends) before end_lsn */
	PG_WALSCAN_ETOOBIG = -5, /* a record larger than PG_WALSCAN_MAX_RECORD */
};

/* Records spanning pages are reassembled in memory up to this size; a
 * larger one (PostgreSQL allows up to 1 GB) fails with PG_WALSCAN_ETOOBIG. */
#define PG_WALSCAN_MAX_RECORD (64u << 20)

/* Fork numbers of pg_blockref.fork (ForkNumber). */
enum { PG_FORK_MAIN = 0, PG_FORK_FSM = 1, PG_FORK_VM = 2, PG_FORK_INIT = 3 };

typedef struct pg_blockref {
	uint32_t spc, db, rel; /* RelFileNode / RelFileLocator */
	uint8_t fork;          /* PG_FORK_*: 0 main, 1 fsm, 2 vm, 3 init */
	uint32_t block;
	uint8_t block_id;   /* the reference's id in its record (0..32) */
	uint8_t has_image;  /* the record carries a full-page image of it */
	uint8_t will_init;  /* redo re-initializes the page (BKPBLOCK_WILL_INIT) */
} pg_blockref;

/*
 * The callbacks. Both may be NULL. They are called only for records that
 * start in [start_lsn, end_lsn) and only after the whole record was read
 * and verified: first `record`, then `block` for each block reference in
 * block id order (every fork; the caller filters). Returning non-zero stops
 * the scan: pg_walscan_segment returns that value unchanged and the
 * scanner is unusable afterwards (pg_walscan_finish returns it too).
 * Pointers passed are valid during the call only.
 */
typedef struct pg_walscan_cb {
	int (*block)(void *arg, const pg_blockref *ref, uint64_t lsn);
	/* rmid: resource manager id; info: xl_info (rmgr bits in the high
	 * nibble); main_data/main_len: the record's main data (may be empty) */
	int (*record)(void *arg, uint8_t rmid, uint8_t info, const uint8_t *main_data, size_t main_len,
		      uint64_t lsn);
	void *arg;
} pg_walscan_cb;

typedef struct pg_walscan pg_walscan;

/*
 * Creates a scanner into *out (freed with pg_walscan_free). seg_size is
 * wal_segment_size (a power of two, 1 MiB..1 GiB); timeline is the
 * timeline every page must carry (xlp_tli); start_lsn < end_lsn. cb is
 * copied. Returns 0, PG_WALSCAN_EINVAL or PG_WALSCAN_ENOMEM (then *out is
 * NULL).
 */
int pg_walscan_new(pg_walscan **out, uint32_t seg_size, uint32_t timeline, uint64_t start_lsn,
		   uint64_t end_lsn, const pg_walscan_cb *cb);

/*
 * Feeds one segment: segno is its number (LSN / seg_size); segments come in
 * order without gaps, the first being the one that holds start_lsn.
 * Parsing starts at the beginning of that first segment (the tail of a
 * record begun in an earlier one is skipped), records before start_lsn
 * are verified but not reported. data is the whole segment (len ==
 * seg_size), or for the last one any prefix that holds every record
 * starting before end_lsn completely. Segments fed after the scan reached
 * end_lsn are ignored. The caller keeps ownership of data; nothing points
 * into it after the call. On error the scanner stays failed.
 */
int pg_walscan_segment(pg_walscan *s, uint64_t segno, const uint8_t *data, size_t len);

/*
 * 0 when every record starting before end_lsn was reported, else an error
 * (PG_WALSCAN_EEND when segments are missing, or the error that stopped
 * the scan).
 */
int pg_walscan_finish(pg_walscan *s);

/* Frees s; NULL is fine. */
void pg_walscan_free(pg_walscan *s);

/*
 * The last error as one line: what, where (WAL file name, offset, LSN) and
 * why; "" when there was none. Owned by s, valid until the next call on s.
 */
const char *pg_walscan_error(const pg_walscan *s);

#endif
