/*
 * rdb.c - what cairn checks of an RDB stream: its checksum and its header.
 *
 * An RDB is "REDIS" + 4 version digits, then opcodes, and (since RDB 5) the
 * CRC-64 of everything before it as 8 little-endian bytes at the end. The
 * CRC is the "Jones" CRC-64 (reflected polynomial 0xad93d23594c935a9, no
 * initial or final xor). A server with rdbchecksum no writes 0 there.
 * Checking it catches a transfer cut short or damaged on its way, which
 * the length of the payload alone does not for the "$EOF:" form.
 *
 * The header's aux fields (opcode 0xFA, a string key and a string value)
 * say which server wrote the snapshot and when ("ctime"). cairn reads only
 * them: the dataset itself is never parsed.
 */
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RDB_OPCODE_AUX 0xFA

static uint64_t crc64_table[256];
static int crc64_ready;

static void crc64_init(void)
{
	/* Bit-reversed form of the polynomial 0xad93d23594c935a9. */
	const uint64_t poly = 0x95ac9329ac4bc9b5ULL;
	unsigned int i, bit;

	for (i = 0; i < 256; i++) {
		uint64_t crc = i;

		for (bit = 0; bit < 8; bit++)
			crc = (crc & 1) ? (crc >> 1) ^ poly : crc >> 1;
		crc64_table[i] = crc;
	}
	crc64_ready = 1;
}

uint64_t rdb_crc64(uint64_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (!crc64_ready)
		crc64_init();
	while (len--)
		crc = crc64_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

void rdb_check_init(rdb_check *c)
{
	memset(c, 0, sizeof(*c));
}

void rdb_check_update(rdb_check *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t keep;

	if (c->head_len < RDB_HEAD_MAX) {
		size_t n = RDB_HEAD_MAX - c->head_len < len ? RDB_HEAD_MAX - c->head_len : len;

		memcpy(c->head + c->head_len, p, n);
		c->head_len += n;
	}
	c->size += len;
	/* The last 8 bytes seen are held back: they may be the checksum. */
	if (len >= 8) {
		c->crc = rdb_crc64(c->crc, c->tail, c->tail_len);
		c->crc = rdb_crc64(c->crc, p, len - 8);
		memcpy(c->tail, p + len - 8, 8);
		c->tail_len = 8;
		return;
	}
	if (c->tail_len + len > 8) {
		keep = 8 - len;
		c->crc = rdb_crc64(c->crc, c->tail, c->tail_len - keep);
		memmove(c->tail, c->tail + (c->tail_len - keep), keep);
		c->tail_len = keep;
	}
	memcpy(c->tail + c->tail_len, p, len);
	c->tail_len += len;
}

/* Reads a length (RDB "length encoding"); *special is set for the 11xxxxxx forms. */
static int read_length(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out, int *special)
{
	uint8_t b;
	int i;

	if (*pos >= len)
		return -1;
	b = buf[(*pos)++];
	*special = 0;
	switch (b >> 6) {
	case 0:
		*out = b & 0x3f;
		return 0;
	case 1:
		if (*pos >= len)
			return -1;
		*out = ((uint64_t)(b & 0x3f) << 8) | buf[(*pos)++];
		return 0;
	case 2:
		if (b != 0x80 && b != 0x81)
			return -1;
		if (*pos + (b == 0x80 ? 4 : 8) > len)
			return -1;
		*out = 0;
		for (i = 0; i < (b == 0x80 ? 4 : 8); i++)
			*out = (*out << 8) | buf[(*pos)++];
		return 0;
	default:
		*special = 1;
		*out = b & 0x3f;
		return 0;
	}
}

/*
 * Reads an RDB string into out as text (integers are printed). An
 * LZF-compressed value is skipped and read as "" (aux values are short and
 * never compressed in practice).
 */
static int read_string(const uint8_t *buf, size_t len, size_t *pos, char *out, size_t out_len)
{
	uint64_t n, clen;
	int special;
	int64_t v;

	if (read_length(buf, len, pos, &n, &special) < 0)
		return -1;
	if (special) {
		switch (n) {
		case 0:
			if (*pos + 1 > len)
				return -1;
			v = (int8_t)buf[*pos];
			*pos += 1;
			break;
		case 1:
			if (*pos + 2 > len)
				return -1;
			v = (int16_t)(buf[*pos] | (buf[*pos + 1] << 8));
			*pos += 2;
			break;
		case 2:
			if (*pos + 4 > len)
				return -1;
			v = (int32_t)((uint32_t)buf[*pos] | ((uint32_t)buf[*pos + 1] << 8) |
			              ((uint32_t)buf[*pos + 2] << 16) | ((uint32_t)buf[*pos + 3] << 24));
			*pos += 4;
			break;
		case 3:
			if (read_length(buf, len, pos, &clen, &special) < 0 || special ||
			    read_length(buf, len, pos, &n, &special) < 0 || special || clen > len - *pos)
				return -1;
			*pos += clen;
			if (out_len)
				out[0] = '\0';
			return 0;
		default:
			return -1;
		}
		snprintf(out, out_len, "%lld", (long long)v);
		return 0;
	}
	if (n > len - *pos)
		return -1;
	if (out_len) {
		size_t copy = n < out_len - 1 ? (size_t)n : out_len - 1;

		memcpy(out, buf + *pos, copy);
		out[copy] = '\0';
	}
	*pos += n;
	return 0;
}

/* Copies text into a fixed field, cut to fit. */
static void copy_field(char *out, size_t out_len, const char *text)
{
	size_t n = strnlen(text, out_len - 1);

	memcpy(out, text, n);
	out[n] = '\0';
}

int rdb_header_parse(const uint8_t *buf, size_t len, rdb_header *out)
{
	size_t pos = 9;
	char key[64], value[64];
	int i;

	memset(out, 0, sizeof(*out));
	if (len < 9 || memcmp(buf, "REDIS", 5) != 0)
		return -1;
	for (i = 5; i < 9; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		out->version = out->version * 10 + (buf[i] - '0');
	}
	/* A header cut by RDB_HEAD_MAX keeps the fields read so far. */
	while (pos < len && buf[pos] == RDB_OPCODE_AUX) {
		pos++;
		if (read_string(buf, len, &pos, key, sizeof(key)) < 0 ||
		    read_string(buf, len, &pos, value, sizeof(value)) < 0)
			break;
		if (strcmp(key, "redis-ver") == 0)
			copy_field(out->redis_ver, sizeof(out->redis_ver), value);
		else if (strcmp(key, "ctime") == 0)
			out->ctime = strtoll(value, NULL, 10);
		else if (strcmp(key, "repl-id") == 0)
			copy_field(out->repl_id, sizeof(out->repl_id), value);
		else if (strcmp(key, "repl-offset") == 0)
			copy_field(out->repl_offset, sizeof(out->repl_offset), value);
		else if (strcmp(key, "aof-base") == 0)
			out->aof_base = strcmp(value, "1") == 0;
	}
	return 0;
}

int rdb_check_finish(const cairn_host *host, rdb_check *c, const char *what, rdb_header *hdr)
{
	uint64_t stored = 0;
	int i;

	if (rdb_header_parse(c->head, c->head_len, hdr) < 0)
		return host->error(CAIRN_EINVALID, "%s is not an RDB snapshot (no REDIS header)", what);
	if (hdr->version < 5)
		return 0; /* no checksum before RDB 5 */
	if (c->size < 9 + 1 + 8)
		return host->error(CAIRN_ECORRUPT, "%s is truncated (%llu bytes)", what,
		                   (unsigned long long)c->size);
	for (i = 7; i >= 0; i--)
		stored = (stored << 8) | c->tail[i];
	if (stored != 0 && stored != c->crc)
		return host->error(CAIRN_ECORRUPT,
		                   "%s fails its CRC-64 check (stored %016llx, computed %016llx): it was "
		                   "cut short or damaged",
		                   what, (unsigned long long)stored, (unsigned long long)c->crc);
	return 0;
}
