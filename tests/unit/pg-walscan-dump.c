/*
 * tests/unit/pg-walscan-dump.c - prints what drivers/postgres/walscan.c finds
 * in WAL segment files, for tests/integration/pg-walscan.sh to compare with
 * pg_waldump. Not a test by itself.
 *
 *   pg-walscan-dump --seg-size N --timeline T --start LSN --end LSN SEGFILE...
 *
 * SEGFILEs are the segments in order, the first holding LSN --start (their
 * names do not matter: a test may pass a foreign file in a segment's place).
 * Prints, for each record in [start, end):
 *   LSN rmid R info 0xII mainlen L
 *   LSN rel S/D/R fork F blk B        one line per block reference
 * Exit status 0, or 1 with one line "pg-walscan-dump: ERROR" on stderr.
 */
#include "../../drivers/postgres/walscan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fork_names[] = {"main", "fsm", "vm", "init"};

static int print_record(void *arg, uint8_t rmid, uint8_t info, const uint8_t *main_data, size_t main_len,
			uint64_t lsn)
{
	(void)arg;
	(void)main_data;
	printf("%X/%08X rmid %u info 0x%02X mainlen %zu\n", (unsigned)(lsn >> 32), (unsigned)lsn,
	       (unsigned)rmid, (unsigned)info, main_len);
	return 0;
}

static int print_block(void *arg, const pg_blockref *ref, uint64_t lsn)
{
	(void)arg;
	printf("%X/%08X rel %u/%u/%u fork %s blk %u\n", (unsigned)(lsn >> 32), (unsigned)lsn,
	       (unsigned)ref->spc, (unsigned)ref->db, (unsigned)ref->rel, fork_names[ref->fork & 3],
	       (unsigned)ref->block);
	return 0;
}

static int parse_lsn(const char *text, uint64_t *out)
{
	unsigned hi, lo;
	char extra;
	if (sscanf(text, "%X/%X%c", &hi, &lo, &extra) != 2)
		return -1;
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

static int parse_u32(const char *text, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(text, &end, 0);
	if (errno || end == text || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "pg-walscan-dump: usage: pg-walscan-dump --seg-size N --timeline T "
			"--start LSN --end LSN SEGFILE...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint32_t seg_size = 0, timeline = 0;
	uint64_t start = 0, end = 0;
	int i, error = 0, have_start = 0, have_end = 0;
	pg_walscan *s = NULL;
	uint8_t *buf = NULL;
	FILE *f = NULL;
	static char outbuf[1 << 16];

	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--seg-size") == 0) {
			if (parse_u32(argv[i + 1], &seg_size))
				usage();
		} else if (strcmp(argv[i], "--timeline") == 0) {
			if (parse_u32(argv[i + 1], &timeline))
				usage();
		} else if (strcmp(argv[i], "--start") == 0) {
			if (parse_lsn(argv[i + 1], &start))
				usage();
			have_start = 1;
		} else if (strcmp(argv[i], "--end") == 0) {
			if (parse_lsn(argv[i + 1], &end))
				usage();
			have_end = 1;
		} else {
			usage();
		}
	}
	if (i >= argc || !seg_size || !timeline || !have_start || !have_end)
		usage();

	pg_walscan_cb cb = {.block = print_block, .record = print_record, .arg = NULL};
	if ((error = pg_walscan_new(&s, seg_size, timeline, start, end, &cb)) != 0) {
		fprintf(stderr, "pg-walscan-dump: invalid arguments (seg size, timeline or LSN range)\n");
		goto done;
	}
	if (!(buf = malloc(seg_size))) {
		fprintf(stderr, "pg-walscan-dump: out of memory\n");
		error = -1;
		goto done;
	}
	for (uint64_t segno = start / seg_size; i < argc; i++, segno++) {
		if (!(f = fopen(argv[i], "rb"))) {
			fprintf(stderr, "pg-walscan-dump: cannot open %s: %s\n", argv[i], strerror(errno));
			error = -1;
			goto done;
		}
		size_t len = fread(buf, 1, seg_size, f);
		if (ferror(f)) {
			fprintf(stderr, "pg-walscan-dump: cannot read %s: %s\n", argv[i], strerror(errno));
			error = -1;
			goto done;
		}
		fclose(f);
		f = NULL;
		if ((error = pg_walscan_segment(s, segno, buf, len)) != 0)
			break;
	}
	if (!error)
		error = pg_walscan_finish(s);
	if (error)
		fprintf(stderr, "pg-walscan-dump: %s\n", pg_walscan_error(s));

done:
	if (f)
		fclose(f);
	free(buf);
	pg_walscan_free(s);
	if (fflush(stdout) != 0 && !error) {
		fprintf(stderr, "pg-walscan-dump: cannot write the output: %s\n", strerror(errno));
		error = -1;
	}
	return error ? 1 : 0;
}
