/*
 * drivers/postgres/walscan.c - PostgreSQL WAL parser listing block references.
 *
 * The format (PostgreSQL's src/include/access/xlog_internal.h and
 * xlogrecord.h, read from the sources of versions 13 to 17):
 *
 * A segment is a run of 8 kB pages. Each page starts with a header
 * (magic, info flags, timeline, the page's own LSN, and the number of
 * bytes of a record continued from the previous page); the first page of
 * a segment has a long header that adds the system identifier, the
 * segment size and the page size. Headers are 24 and 40 bytes after
 * MAXALIGN. Records start MAXALIGNed, and one may continue over any
 * number of pages and segments; the header of each page it continues on
 * says XLP_FIRST_IS_CONTRECORD and how much of it remains.
 *
 * A record: a 24-byte header (xl_tot_len, xl_xid, xl_prev, xl_info,
 * xl_rmid, 2 padding bytes, xl_crc), then block headers, then the block
 * images and data in block order, then the main data. xl_crc is CRC-32C
 * over everything after the header, then over the header up to xl_crc.
 * An XLOG_SWITCH record ends its segment: the next record starts at the
 * next segment boundary.
 */
#include "walscan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAL_PAGE_SIZE 8192u     /* XLOG_BLCKSZ */
#define DATA_BLOCK_SIZE 8192u   /* BLCKSZ: a full-page image is one block */
#define SHORT_PAGE_HEADER 24u   /* MAXALIGN(sizeof(XLogPageHeaderData)) */
#define LONG_PAGE_HEADER 40u    /* MAXALIGN(sizeof(XLogLongPageHeaderData)) */
#define RECORD_HEADER 24u       /* SizeOfXLogRecord */
#define RECORD_CRC_OFFSET 20u   /* offsetof(XLogRecord, xl_crc) */
#define MAXALIGN_UP(x) (((x) + 7u) & ~(uint64_t)7u)

/* xlp_info, as in 13 to 17 (later versions dropped XLP_BKP_REMOVABLE and
 * renumbered the overwrite flag) */
#define XLP_FIRST_IS_CONTRECORD 0x0001u
#define XLP_LONG_HEADER 0x0002u
#define XLP_BKP_REMOVABLE 0x0004u /* informational: no base backup was running */
#define XLP_FIRST_IS_OVERWRITE_CONTRECORD 0x0008u
#define XLP_ALL_FLAGS 0x000Fu

/* XLogRecordBlockHeader.fork_flags */
#define BKPBLOCK_FORK_MASK 0x0Fu
#define BKPBLOCK_HAS_IMAGE 0x10u
#define BKPBLOCK_HAS_DATA 0x20u
#define BKPBLOCK_WILL_INIT 0x40u
#define BKPBLOCK_SAME_REL 0x80u
#define MAX_FORK 3u /* INIT_FORKNUM */

/* XLogRecordBlockImageHeader.bimg_info */
#define BKPIMAGE_HAS_HOLE 0x01u
#define BKPIMAGE_IS_COMPRESSED_V13 0x02u /* 13 and 14 */
#define BKPIMAGE_COMPRESSED_V15 0x1Cu    /* 15+: PGLZ 0x04 | LZ4 0x08 | ZSTD 0x10 */

#define XLR_MAX_BLOCK_ID 32u
#define XLR_BLOCK_ID_DATA_SHORT 255u
#define XLR_BLOCK_ID_DATA_LONG 254u
#define XLR_BLOCK_ID_ORIGIN 253u
#define XLR_BLOCK_ID_TOPLEVEL_XID 252u /* 14+ */

#define RM_XLOG_ID 0u
#define XLOG_SWITCH 0x40u
#define XLR_RMGR_INFO_MASK 0xF0u

enum scan_state {
	FIRST_PAGE, /* before the first page header of the scan */
	AT_RECORD,  /* pos is where the next record starts */
	IN_RECORD,  /* pos is inside a record being reassembled into buf */
	SKIP_TAIL,  /* pos is inside the tail of a record begun before the scan */
};

struct pg_walscan {
	uint32_t seg_size, timeline;
	uint64_t start_lsn, end_lsn;
	pg_walscan_cb cb;

	uint64_t next_segno; /* the segment pg_walscan_segment expects next */
	uint64_t pos;        /* LSN of the next byte to parse */
	enum scan_state state;
	int done;  /* a record start at or past end_lsn was reached */
	int error; /* sticky: the code of the error that stopped the scan */

	uint16_t magic; /* of the first page; every page must match it */
	int version;    /* major version told by magic */
	int have_sysid;
	uint64_t sysid;
	uint64_t prev_lsn; /* start of the previous record, 0 when unknown */

	/* the record being reassembled (IN_RECORD) or skipped (SKIP_TAIL) */
	uint64_t rec_lsn;
	uint32_t rec_len, rec_have, rec_left;
	uint8_t *buf;
	size_t buf_cap;

	pg_blockref refs[XLR_MAX_BLOCK_ID + 1];
	uint32_t crc_table[8][256]; /* slicing-by-8 tables of CRC-32C */
	char err[400];
};

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (uint16_t)p[1] << 8); }

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* ---- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) ------------- */

static void crc_init_tables(uint32_t t[8][256])
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		t[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
}

/* Continues crc (not inverted: callers start at 0xFFFFFFFF and invert at
 * the end, as PostgreSQL's INIT/FIN_CRC32C do) over n bytes. */
static uint32_t crc_update(const uint32_t t[8][256], uint32_t crc, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint32_t lo = crc ^ get32(p);
		uint32_t hi = get32(p + 4);
		crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
		      t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFF];
	return crc;
}

/* ---- errors ---------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
fail(pg_walscan *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	s->error = code;
	return code;
}

/* The WAL file name of the segment holding lsn, as PostgreSQL names it. */
static void wal_file_name(const pg_walscan *s, uint64_t lsn, char out[25])
{
	uint64_t segno = lsn / s->seg_size;
	uint64_t per_xlogid = UINT64_C(0x100000000) / s->seg_size;
	snprintf(out, 25, "%08X%08X%08X", (unsigned)s->timeline, (unsigned)(segno / per_xlogid),
		 (unsigned)(segno % per_xlogid));
}

#define LSN_FMT "%X/%X" /* as PostgreSQL prints LSNs */
#define LSN_ARGS(lsn) (unsigned)((lsn) >> 32), (unsigned)(lsn)

/* fail() with the place prefixed: "WAL file F offset O (LSN L): ..." */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
fail_at(pg_walscan *s, int code, uint64_t lsn, const char *fmt, ...)
{
	char name[25], why[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	wal_file_name(s, lsn, name);
	return fail(s, code, "WAL file %s offset %u (LSN " LSN_FMT "): %s", name,
		    (unsigned)(lsn % s->seg_size), LSN_ARGS(lsn), why);
}

/* ---- records ---------------------------------------------------------------- */

/* Why a block header is wrong, or NULL: the checks of PostgreSQL's
 * DecodeXLogRecord on the image header. */
static const char *check_image(int version, uint16_t bimg_len, uint16_t hole_offset, uint16_t hole_length,
			       uint8_t bimg_info)
{
	int compressed = version >= 15 ? (bimg_info & BKPIMAGE_COMPRESSED_V15) != 0
				       : (bimg_info & BKPIMAGE_IS_COMPRESSED_V13) != 0;
	int has_hole = (bimg_info & BKPIMAGE_HAS_HOLE) != 0;

	if (has_hole && (hole_offset == 0 || hole_length == 0 || bimg_len == DATA_BLOCK_SIZE))
		return "image has a hole, but its offset, length or image length is impossible";
	if (!has_hole && (hole_offset != 0 || hole_length != 0))
		return "image has no hole, but a hole offset or length";
	if (compressed && bimg_len == DATA_BLOCK_SIZE)
		return "compressed image as long as a block";
	if (!has_hole && !compressed && bimg_len != DATA_BLOCK_SIZE)
		return "uncompressed image without a hole shorter than a block";
	if (hole_offset > DATA_BLOCK_SIZE || hole_length > DATA_BLOCK_SIZE - hole_offset)
		return "image hole past the end of the block";
	return NULL;
}

/*
 * Verifies and reports the complete record rec[0..len) that starts at lsn
 * and whose last byte is just before end (page headers make end differ
 * from lsn + len when it spans pages); sets the position of the next one.
 */
static int finish_record(pg_walscan *s, const uint8_t *rec, uint32_t len, uint64_t lsn, uint64_t end)
{
	uint32_t crc, want_crc = get32(rec + RECORD_CRC_OFFSET);
	uint64_t xl_prev = get64(rec + 8);
	uint8_t info = rec[16], rmid = rec[17];
	const uint8_t *p = rec + RECORD_HEADER;
	uint32_t remaining = len - RECORD_HEADER;
	uint64_t datatotal = 0, main_len = 0;
	int nrefs = 0, max_block_id = -1, have_rel = 0;
	uint32_t spc = 0, db = 0, rel = 0;
	int error;

	crc = crc_update(s->crc_table, 0xFFFFFFFFu, rec + RECORD_HEADER, len - RECORD_HEADER);
	crc = crc_update(s->crc_table, crc, rec, RECORD_CRC_OFFSET) ^ 0xFFFFFFFFu;
	if (crc != want_crc)
		return fail_at(s, PG_WALSCAN_ECORRUPT, lsn,
			       "record of %u bytes has CRC %08X, its header says %08X (corrupt WAL)",
			       (unsigned)len, (unsigned)crc, (unsigned)want_crc);
	if (s->prev_lsn != 0 && xl_prev != s->prev_lsn)
		return fail_at(s, PG_WALSCAN_ECORRUPT, lsn,
			       "record links back to " LSN_FMT ", but the previous record is at " LSN_FMT,
			       LSN_ARGS(xl_prev), LSN_ARGS(s->prev_lsn));

/* Takes n header bytes from p, or fails: they must lie before the data. */
#define TAKE(n)                                                                                      \
	do {                                                                                         \
		if (remaining < (n))                                                                 \
			return fail_at(s, PG_WALSCAN_ECORRUPT, lsn,                                  \
				       "record of %u bytes ends inside its block headers", (unsigned)len); \
		p += (n);                                                                            \
		remaining -= (n);                                                                    \
	} while (0)

	while (remaining > datatotal) {
		uint8_t block_id = p[0];
		TAKE(1);
		if (block_id == XLR_BLOCK_ID_DATA_SHORT) {
			TAKE(1);
			main_len = p[-1];
			datatotal += main_len;
			break; /* the main data header is always last */
		}
		if (block_id == XLR_BLOCK_ID_DATA_LONG) {
			TAKE(4);
			main_len = get32(p - 4);
			datatotal += main_len;
			break;
		}
		if (block_id == XLR_BLOCK_ID_ORIGIN) {
			TAKE(2);
			continue;
		}
		if (block_id == XLR_BLOCK_ID_TOPLEVEL_XID && s->version >= 14) {
			TAKE(4);
			continue;
		}
		if (block_id > XLR_MAX_BLOCK_ID)
			return fail_at(s, PG_WALSCAN_ECORRUPT, lsn, "record has an invalid block id %u",
				       (unsigned)block_id);
		if ((int)block_id <= max_block_id)
			return fail_at(s, PG_WALSCAN_ECORRUPT, lsn, "record has block id %u out of order",
				       (unsigned)block_id);
		max_block_id = block_id;

		TAKE(3);
		uint8_t fork_flags = p[-3];
		uint16_t data_len = get16(p - 2);
		pg_blockref *ref = &s->refs[nrefs++];
		ref->block_id = block_id;
		ref->fork = fork_flags & BKPBLOCK_FORK_MASK;
		ref->has_image = (fork_flags & BKPBLOCK_HAS_IMAGE) != 0;
		ref->will_init = (fork_flags & BKPBLOCK_WILL_INIT) != 0;
		if (ref->fork > MAX_FORK)
			return fail_at(s, PG_WALSCAN_ECORRUPT, lsn, "block %u has an unknown fork %u",
				       (unsigned)block_id, (unsigned)ref->fork);
		if ((fork_flags & BKPBLOCK_HAS_DATA) && data_len == 0)
			return fail_at(s, PG_WALSCAN_ECORRUPT, lsn, "block %u says it has data, but of length 0",
				       (unsigned)block_id);
		if (!(fork_flags & BKPBLOCK_HAS_DATA) && data_len != 0)
			return fail_at(s, PG_WALSCAN_ECORRUPT, lsn,
				       "block %u says it has no data, but data of length %u", (unsigned)block_id,
				       (unsigned)data_len);
		datatotal += data_len;

		if (ref->has_image) {
			TAKE(5);
			uint16_t bimg_len = get16(p - 5), hole_offset = get16(p - 3), hole_length;
			uint8_t bimg_info = p[-1];
			int compressed = s->version >= 15 ? (bimg_info & BKPIMAGE_COMPRESSED_V15) != 0
							  : (bimg_info & BKPIMAGE_IS_COMPRESSED_V13) != 0;
			if (compressed && (bimg_info & BKPIMAGE_HAS_HOLE)) {
				TAKE(2);
				hole_length = get16(p - 2);
			} else if (compressed) {
				hole_length = 0;
			} else {
				hole_length = (uint16_t)(DATA_BLOCK_SIZE - bimg_len);
			}
			if (!compressed && bimg_len > DATA_BLOCK_SIZE)
				return fail_at(s, PG_WALSCAN_ECORRUPT, lsn, "block %u has an image of %u bytes",
					       (unsigned)block_id, (unsigned)bimg_len);
			const char *why = check_image(s->version, bimg_len, hole_offset, hole_length, bimg_info);
			if (why)
				return fail_at(s, PG_WALSCAN_ECORRUPT, lsn, "block %u: %s", (unsigned)block_id, why);
			datatotal += bimg_len;
		}
		if (!(fork_flags & BKPBLOCK_SAME_REL)) {
			TAKE(12);
			spc = get32(p - 12);
			db = get32(p - 8);
			rel = get32(p - 4);
			have_rel = 1;
		} else if (!have_rel) {
			return fail_at(s, PG_WALSCAN_ECORRUPT, lsn,
				       "block %u says same relation as the previous one, but there is none",
				       (unsigned)block_id);
		}
		TAKE(4);
		ref->spc = spc;
		ref->db = db;
		ref->rel = rel;
		ref->block = get32(p - 4);
	}
#undef TAKE
	if (remaining != datatotal)
		return fail_at(s, PG_WALSCAN_ECORRUPT, lsn,
			       "record of %u bytes: its headers announce %llu bytes of data, %u remain",
			       (unsigned)len, (unsigned long long)datatotal, (unsigned)remaining);

	if (lsn >= s->start_lsn) {
		/* main data comes last, after every block's image and data */
		const uint8_t *main_data = rec + len - main_len;
		if (s->cb.record &&
		    (error = s->cb.record(s->cb.arg, rmid, info, main_data, (size_t)main_len, lsn)) != 0)
			return fail_at(s, error, lsn, "the record callback stopped the scan (%d)", error);
		for (int i = 0; s->cb.block && i < nrefs; i++)
			if ((error = s->cb.block(s->cb.arg, &s->refs[i], lsn)) != 0)
				return fail_at(s, error, lsn, "the block callback stopped the scan (%d)", error);
	}

	s->prev_lsn = lsn;
	if (rmid == RM_XLOG_ID && (info & XLR_RMGR_INFO_MASK) == XLOG_SWITCH) {
		/* the rest of the segment is unused: as PostgreSQL's reader, the
		 * next record starts at the first segment boundary at or after end */
		s->pos = (end + s->seg_size - 1) / s->seg_size * s->seg_size;
	} else {
		s->pos = MAXALIGN_UP(end);
	}
	s->state = AT_RECORD;
	return 0;
}

/* ---- pages ------------------------------------------------------------------ */

static int version_of_magic(uint16_t magic)
{
	switch (magic) {
	case 0xD106: return 13;
	case 0xD10D: return 14;
	case 0xD110: return 15;
	case 0xD113: return 16;
	case 0xD116: return 17;
	default: return 0;
	}
}

/* Validates the header of the page at page_lsn (hdr_len bytes at page) and
 * applies its continuation information to the scan state. */
static int page_header(pg_walscan *s, const uint8_t *page, uint64_t page_lsn, uint32_t hdr_len)
{
	uint16_t magic = get16(page), info = get16(page + 2);
	uint32_t tli = get32(page + 4), rem_len = get32(page + 16);
	uint64_t pageaddr = get64(page + 8);
	int first_of_segment = hdr_len == LONG_PAGE_HEADER;

	if (!version_of_magic(magic))
		return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
			       "page has magic 0x%04X, not one of PostgreSQL 13 to 17 "
			       "(another version, or not WAL)",
			       (unsigned)magic);
	if (s->magic && magic != s->magic)
		return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
			       "page has magic 0x%04X, earlier pages 0x%04X", (unsigned)magic,
			       (unsigned)s->magic);
	if (pageaddr != page_lsn) {
		char name[25];
		wal_file_name(s, page_lsn, name);
		return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
			       "segment %s holds another position: its page here says LSN " LSN_FMT
			       " (a recycled or foreign segment)",
			       name, LSN_ARGS(pageaddr));
	}
	if (info & ~XLP_ALL_FLAGS)
		return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn, "page header has unknown flags 0x%04X",
			       (unsigned)info);
	if (first_of_segment != ((info & XLP_LONG_HEADER) != 0))
		return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
			       first_of_segment ? "first page of the segment has a short header"
					       : "page inside the segment has a long header");
	if (tli != s->timeline)
		return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn, "page is of timeline %u, expected %u",
			       (unsigned)tli, (unsigned)s->timeline);
	if (first_of_segment) {
		uint64_t sysid = get64(page + 24);
		uint32_t seg_size = get32(page + 32), blcksz = get32(page + 36);
		if (seg_size != s->seg_size)
			return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
				       "segment says its size is %u bytes, expected %u", (unsigned)seg_size,
				       (unsigned)s->seg_size);
		if (blcksz != WAL_PAGE_SIZE)
			return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
				       "segment says its pages are of %u bytes; only %u is supported",
				       (unsigned)blcksz, WAL_PAGE_SIZE);
		if (s->have_sysid && sysid != s->sysid)
			return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
				       "segment is of database system %llu, earlier ones of %llu "
				       "(WAL of another cluster)",
				       (unsigned long long)sysid, (unsigned long long)s->sysid);
		s->sysid = sysid;
		s->have_sysid = 1;
	}
	if (info & XLP_FIRST_IS_OVERWRITE_CONTRECORD)
		/* an unfinished record was abandoned here after a crash; the
		 * record that marks it is not decoded here, so stop rather than
		 * guess which record the WAL history continues with */
		return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
			       "page follows an abandoned partial record (XLP_FIRST_IS_OVERWRITE_CONTRECORD); "
			       "not supported");
	s->magic = magic;
	s->version = version_of_magic(magic);

	switch (s->state) {
	case FIRST_PAGE:
		if (info & XLP_FIRST_IS_CONTRECORD) {
			if (rem_len == 0)
				return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
					       "page continues a record, but with 0 bytes");
			s->state = SKIP_TAIL;
			s->rec_left = rem_len;
		} else {
			s->state = AT_RECORD;
		}
		break;
	case IN_RECORD:
	case SKIP_TAIL:
		if (!(info & XLP_FIRST_IS_CONTRECORD))
			return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
				       "page does not continue the record at " LSN_FMT
				       " (%u bytes of it missing)",
				       LSN_ARGS(s->rec_lsn), (unsigned)s->rec_left);
		if (rem_len != s->rec_left)
			return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
				       "page continues a record with %u bytes, expected %u", (unsigned)rem_len,
				       (unsigned)s->rec_left);
		break;
	case AT_RECORD:
		if (info & XLP_FIRST_IS_CONTRECORD)
			return fail_at(s, PG_WALSCAN_ECORRUPT, page_lsn,
				       "page continues a record (%u bytes), but the previous record ended",
				       (unsigned)rem_len);
		break;
	}
	return 0;
}

static int truncated(pg_walscan *s, uint64_t lsn, uint64_t data_end)
{
	char name[25];
	wal_file_name(s, lsn, name);
	return fail_at(s, PG_WALSCAN_EEND, lsn,
		       "the data of segment %s ends at offset %u, before end LSN " LSN_FMT
		       " (the WAL ends early, or the segment is truncated)",
		       name, (unsigned)(data_end - (lsn - lsn % s->seg_size)), LSN_ARGS(s->end_lsn));
}

/* Parses the segment starting at seg_lsn, of which data[0..len) is present. */
static int scan_segment(pg_walscan *s, uint64_t seg_lsn, const uint8_t *data, size_t len)
{
	uint64_t seg_end = seg_lsn + s->seg_size, data_end = seg_lsn + len;
	int error;

	while (!s->done && s->pos < seg_end) {
		uint32_t off = (uint32_t)(s->pos - seg_lsn);
		uint32_t page_off = off % WAL_PAGE_SIZE;
		uint64_t page_end = s->pos - page_off + WAL_PAGE_SIZE;

		if (page_off == 0) {
			uint32_t hdr_len = off == 0 ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER;
			/* a record starting here would start after the header */
			if (s->state == AT_RECORD && s->pos + hdr_len >= s->end_lsn) {
				s->done = 1;
				break;
			}
			if (s->pos + hdr_len > data_end)
				return truncated(s, s->pos, data_end);
			if ((error = page_header(s, data + off, s->pos, hdr_len)) != 0)
				return error;
			s->pos += hdr_len;
			continue;
		}

		if (s->state == IN_RECORD || s->state == SKIP_TAIL) {
			uint64_t n = page_end - s->pos;
			if (n > s->rec_left)
				n = s->rec_left;
			if (s->pos + n > data_end)
				return truncated(s, s->pos, data_end);
			if (s->state == IN_RECORD) {
				memcpy(s->buf + s->rec_have, data + off, (size_t)n);
				s->rec_have += (uint32_t)n;
			}
			s->pos += n;
			s->rec_left -= (uint32_t)n;
			if (s->rec_left == 0) {
				if (s->state == SKIP_TAIL) {
					s->pos = MAXALIGN_UP(s->pos);
					s->state = AT_RECORD;
				} else if ((error = finish_record(s, s->buf, s->rec_len, s->rec_lsn, s->pos)) != 0) {
					return error;
				}
			}
			continue;
		}

		/* AT_RECORD: s->pos is MAXALIGNed, so at least 8 bytes (and the
		 * whole xl_tot_len) lie on this page */
		if (s->pos >= s->end_lsn) {
			s->done = 1;
			break;
		}
		if (s->pos + 4 > data_end)
			return truncated(s, s->pos, data_end);
		uint32_t tot_len = get32(data + off);
		if (tot_len == 0)
			return fail_at(s, PG_WALSCAN_EEND, s->pos,
				       "no record here (zeros): the WAL ends before end LSN " LSN_FMT,
				       LSN_ARGS(s->end_lsn));
		if (tot_len < RECORD_HEADER)
			return fail_at(s, PG_WALSCAN_ECORRUPT, s->pos, "record has an invalid length %u",
				       (unsigned)tot_len);
		if (tot_len > PG_WALSCAN_MAX_RECORD)
			return fail_at(s, PG_WALSCAN_ETOOBIG, s->pos,
				       "record of %u bytes is larger than the %u bytes this scanner reassembles",
				       (unsigned)tot_len, (unsigned)PG_WALSCAN_MAX_RECORD);
		if (s->pos + tot_len <= page_end) {
			/* the usual case: the record lies in this page, no copy */
			if (s->pos + tot_len > data_end)
				return truncated(s, s->pos, data_end);
			if ((error = finish_record(s, data + off, tot_len, s->pos, s->pos + tot_len)) != 0)
				return error;
			continue;
		}
		if (tot_len > s->buf_cap) {
			size_t cap = s->buf_cap ? s->buf_cap : 65536;
			while (cap < tot_len)
				cap *= 2;
			uint8_t *nb = realloc(s->buf, cap);
			if (!nb)
				return fail_at(s, PG_WALSCAN_ENOMEM, s->pos,
					       "out of memory for a record of %u bytes", (unsigned)tot_len);
			s->buf = nb;
			s->buf_cap = cap;
		}
		uint32_t n = (uint32_t)(page_end - s->pos);
		if (s->pos + n > data_end)
			return truncated(s, s->pos, data_end);
		memcpy(s->buf, data + off, n);
		s->rec_lsn = s->pos;
		s->rec_len = tot_len;
		s->rec_have = n;
		s->rec_left = tot_len - n;
		s->pos += n;
		s->state = IN_RECORD;
	}
	return 0;
}

/* ---- API -------------------------------------------------------------------- */

int pg_walscan_new(pg_walscan **out, uint32_t seg_size, uint32_t timeline, uint64_t start_lsn,
		   uint64_t end_lsn, const pg_walscan_cb *cb)
{
	pg_walscan *s;

	*out = NULL;
	if (seg_size < (1u << 20) || seg_size > (1u << 30) || (seg_size & (seg_size - 1)) != 0 ||
	    start_lsn >= end_lsn || timeline == 0)
		return PG_WALSCAN_EINVAL;
	if (!(s = calloc(1, sizeof(*s))))
		return PG_WALSCAN_ENOMEM;
	s->seg_size = seg_size;
	s->timeline = timeline;
	s->start_lsn = start_lsn;
	s->end_lsn = end_lsn;
	if (cb)
		s->cb = *cb;
	s->next_segno = start_lsn / seg_size;
	s->pos = s->next_segno * seg_size;
	s->state = FIRST_PAGE;
	crc_init_tables(s->crc_table);
	*out = s;
	return 0;
}

int pg_walscan_segment(pg_walscan *s, uint64_t segno, const uint8_t *data, size_t len)
{
	if (s->error)
		return s->error;
	if (segno != s->next_segno) {
		char got[25], want[25];
		wal_file_name(s, segno * s->seg_size, got);
		wal_file_name(s, s->next_segno * s->seg_size, want);
		return fail(s, PG_WALSCAN_EINVAL, "WAL file %s was given where %s was expected", got, want);
	}
	if (len > s->seg_size || (!data && len))
		return fail(s, PG_WALSCAN_EINVAL, "segment %llu was given with %zu bytes, more than %u",
			    (unsigned long long)segno, len, (unsigned)s->seg_size);
	s->next_segno++;
	if (s->done)
		return 0;
	return scan_segment(s, segno * s->seg_size, data, len);
}

int pg_walscan_finish(pg_walscan *s)
{
	if (s->error)
		return s->error;
	if (!s->done) {
		char want[25];
		wal_file_name(s, s->next_segno * s->seg_size, want);
		return fail(s, PG_WALSCAN_EEND,
			    "the WAL given ends at LSN " LSN_FMT ", before end LSN " LSN_FMT
			    " (WAL file %s is missing)",
			    LSN_ARGS(s->pos), LSN_ARGS(s->end_lsn), want);
	}
	return 0;
}

void pg_walscan_free(pg_walscan *s)
{
	if (!s)
		return;
	free(s->buf);
	free(s);
}

const char *pg_walscan_error(const pg_walscan *s) { return s->err; }
