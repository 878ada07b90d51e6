/*
 * test_redis.c - the pure parts of the redis driver: the RDB CRC-64 and
 * header, time and interval parsing, segment-safe names.
 */
#include <stdint.h>
#include <string.h>

#include "../../drivers/redis/redis.h"
#include "tap.h"

/* An RDB as Redis 7.0.15 writes an AOF base: aux fields, no keys, EOF, CRC. */
static const uint8_t base_rdb[] = {
	'R', 'E', 'D', 'I', 'S', '0', '0', '1', '0', 0xfa, 0x09, 'r', 'e', 'd', 'i', 's', '-',
	'v', 'e', 'r', 0x06, '7', '.', '0', '.', '1', '5', 0xfa, 0x0a, 'r', 'e', 'd', 'i', 's',
	'-', 'b', 'i', 't', 's', 0xc0, 0x40, 0xfa, 0x05, 'c', 't', 'i', 'm', 'e', 0xc2, 0xc1,
	0x81, 0x08, 0x6b, 0xfa, 0x08, 'u', 's', 'e', 'd', '-', 'm', 'e', 'm', 0xc2, 0xc0, 0x60,
	0x0d, 0x00, 0xfa, 0x08, 'a', 'o', 'f', '-', 'b', 'a', 's', 'e', 0xc0, 0x01, 0xff, 0xdf,
	0x05, 0x85, 0x2b, 0x46, 0x70, 0x1c, 0x3d};

static int stub_error(int code, const char *fmt, ...)
{
	(void)fmt;
	return code;
}

int main(void)
{
	cairn_host host;
	rdb_check check;
	rdb_header hdr;
	int64_t t;
	unsigned int secs;
	size_t i;
	uint8_t copy[sizeof(base_rdb)];

	memset(&host, 0, sizeof(host));
	host.error = stub_error;

	ok(rdb_crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9caULL, "CRC-64/Jones check value");

	ok(rdb_header_parse(base_rdb, sizeof(base_rdb), &hdr) == 0, "an RDB header parses");
	ok(hdr.version == 10, "RDB version 10");
	ok(strcmp(hdr.redis_ver, "7.0.15") == 0, "aux redis-ver");
	ok(hdr.ctime == 1795719617, "aux ctime (int-encoded)");
	ok(hdr.aof_base == 1, "aux aof-base");
	ok(rdb_header_parse((const uint8_t *)"*2\r\n", 4, &hdr) < 0, "an AOF is not an RDB");

	/* Fed in pieces of every size the checksum is the same. */
	for (i = 1; i <= 13; i += 3) {
		size_t pos;

		rdb_check_init(&check);
		for (pos = 0; pos < sizeof(base_rdb); pos += i)
			rdb_check_update(&check, base_rdb + pos,
			                 sizeof(base_rdb) - pos < i ? sizeof(base_rdb) - pos : i);
		ok(rdb_check_finish(&host, &check, "test", &hdr) == 0,
		   "stored CRC matches when fed %zu bytes at a time", i);
	}
	memcpy(copy, base_rdb, sizeof(copy));
	copy[30] ^= 1;
	rdb_check_init(&check);
	rdb_check_update(&check, copy, sizeof(copy));
	ok(rdb_check_finish(&host, &check, "test", &hdr) == CAIRN_ECORRUPT, "a flipped bit fails the CRC");
	rdb_check_init(&check);
	rdb_check_update(&check, base_rdb, sizeof(base_rdb) - 20);
	ok(rdb_check_finish(&host, &check, "test", &hdr) == CAIRN_ECORRUPT, "a cut RDB fails the CRC");

	ok(redis_parse_time("1714560000", &t) == 0 && t == 1714560000, "unix seconds");
	ok(redis_parse_time("@1714560000", &t) == 0 && t == 1714560000, "@unix seconds");
	ok(redis_parse_time("2024-05-01 10:40:00", &t) == 0 && t == 1714560000, "date and time (UTC)");
	ok(redis_parse_time("2024-05-01T10:40:00Z", &t) == 0 && t == 1714560000, "ISO 8601 with Z");
	ok(redis_parse_time("2024-05-01T12:40:00+02:00", &t) == 0 && t == 1714560000, "with an offset");
	ok(redis_parse_time("2024-05-01T10:40", &t) == 0 && t == 1714560000, "without seconds");
	ok(redis_parse_time("2000-02-29 00:00:00", &t) == 0 && t == 951782400, "a leap day");
	ok(redis_parse_time("yesterday", &t) < 0, "words are refused");
	ok(redis_parse_time("2024-13-01 00:00:00", &t) < 0, "month 13 is refused");
	ok(redis_parse_time("2024-05-01 10:40:00 junk", &t) < 0, "trailing text is refused");

	ok(redis_parse_interval("60", &secs) == 0 && secs == 60, "interval in seconds");
	ok(redis_parse_interval("5m", &secs) == 0 && secs == 300, "interval in minutes");
	ok(redis_parse_interval("1h", &secs) == 0 && secs == 3600, "interval in hours");
	ok(redis_parse_interval("0", &secs) < 0 && redis_parse_interval("1d", &secs) < 0,
	   "zero and unknown units are refused");

	ok(redis_name_is_safe("appendonly.aof.1.incr.aof"), "AOF file names are segment-safe");
	ok(!redis_name_is_safe("../x") && !redis_name_is_safe(".hidden") &&
	       !redis_name_is_safe("a b") && !redis_name_is_safe(""),
	   "unsafe names are refused");
	return tap_done();
}
