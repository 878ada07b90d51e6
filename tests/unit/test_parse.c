/*
 * test_parse.c - parsers of stored text (index, manifest lines, catalog
 * entries, escapes) fed damaged and random input: each gives a clear error
 * and never crashes. Run under ASan/UBSan by tests/run.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "manifest.h"
#include "repo.h"
#include "settings.h"
#include "tap.h"

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static const char valid_index[] =
    "cairn-index 1\n"
    "pack 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 8 100 4096\n"
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 108 70 10\n";

static const char valid_entry[] = "entry F 0644 1000 1000 1732640000 5 4106 dir/a%20b.txt";
static const char valid_catalog[] = "cairn-catalog 1\nname dir-20261126T183012Z\nengine dir\n"
                                    "start 1\nend 2\nsize 3\nstored 4\nentries 5\nchunks 6\n"
                                    "meta source /srv/x%20y\n";

/* Mutates a copy of text n times (flip, delete, insert, truncate). */
static char *mutate(const char *text, size_t *len_out)
{
	size_t len = strlen(text), i, n = 1 + rnd() % 4;
	char *s = malloc(len + 16);

	memcpy(s, text, len + 1);
	for (i = 0; i < n && len; i++) {
		size_t at = rnd() % len;

		switch (rnd() % 4) {
		case 0: s[at] = (char)(rnd() & 0xff); if (!s[at]) s[at] = '\n'; break;
		case 1: memmove(s + at, s + at + 1, len - at); len--; break;
		case 2: if (len < strlen(text) + 8) { memmove(s + at + 1, s + at, len - at + 1); s[at] = " \n%0z9"[rnd() % 6]; len++; } break;
		default: len = at; s[len] = 0; break;
		}
	}
	s[len] = 0;
	*len_out = len;
	return s;
}

static void index_parsing(void)
{
	cairn_index idx;
	const cairn_index_entry *e;
	uint8_t id[32];
	int i, failures = 0, noisy = 0, rc;

	memset(&idx, 0, sizeof(idx));
	ok(cairn_index_parse(&idx, valid_index, strlen(valid_index)) == 0 && idx.count == 2,
	   "valid index parses");
	memset(id, 0xbb, sizeof(id));
	e = cairn_index_find(&idx, id);
	ok(e && e->offset == 108 && e->length == 70 && e->plain_len == 10, "index lookup finds a chunk");
	cairn_index_free(&idx);
	for (i = 0; i < 3000; i++) {
		size_t len;
		char *s = mutate(valid_index, &len);

		cairn_error_clear();
		rc = cairn_index_parse(&idx, s, len);
		if (rc < 0) {
			failures++;
			if (rc != CAIRN_ECORRUPT || !*cairn_error_message())
				noisy++;
		}
		cairn_index_free(&idx);
		free(s);
	}
	ok(failures > 1000, "damaged indexes are refused (%d of 3000 mutations)", failures);
	ok(noisy == 0, "every refusal is CAIRN_ECORRUPT with a message");
	ok(cairn_index_parse(&idx, "", 0) == CAIRN_ECORRUPT, "empty index refused");
	ok(cairn_index_parse(&idx, "cairn-index 1\naa 1 2 3\n", 24) == CAIRN_ECORRUPT,
	   "chunk before pack refused: %s", cairn_error_message());
	cairn_index_free(&idx);
}

static void entry_parsing(void)
{
	char line[512];
	cairn_entry e;
	int i, failures = 0, noisy = 0, rc;

	strcpy(line, valid_entry);
	ok(cairn_manifest_entry_parse(line, &e) == 0 && e.type == CAIRN_ENTRY_FILE &&
	       e.mode == 0644 && e.size == 4106 && strcmp(e.path, "dir/a b.txt") == 0,
	   "valid entry parses and unescapes");
	strcpy(line, "entry L 0777 0 0 1 0 0 link ../../etc/passwd");
	ok(cairn_manifest_entry_parse(line, &e) == 0 && strcmp(e.link_target, "../../etc/passwd") == 0,
	   "symlink target may point anywhere (it is data)");
	strcpy(line, "entry F 0644 0 0 1 0 0 ../escape");
	ok(cairn_manifest_entry_parse(line, &e) == CAIRN_ECORRUPT, "'..' path refused: %s",
	   cairn_error_message());
	strcpy(line, "entry F 0644 0 0 1 0 0 /abs");
	ok(cairn_manifest_entry_parse(line, &e) == CAIRN_ECORRUPT, "absolute path refused");
	strcpy(line, "entry F 0644 0 0 1 0 0 a//b");
	ok(cairn_manifest_entry_parse(line, &e) == CAIRN_ECORRUPT, "empty path part refused");
	strcpy(line, "entry F 0644 0 0 1 0 0 a%00b");
	ok(cairn_manifest_entry_parse(line, &e) == CAIRN_ECORRUPT, "escaped NUL refused");
	for (i = 0; i < 3000; i++) {
		size_t len;
		char *s = mutate(valid_entry, &len);

		cairn_error_clear();
		rc = cairn_manifest_entry_parse(s, &e);
		if (rc < 0) {
			failures++;
			if (!*cairn_error_message())
				noisy++;
		} else if (e.path && (e.path[0] == '/' || strstr(e.path, ".."))) {
			noisy++;
		}
		free(s);
	}
	ok(failures > 500, "damaged entry lines are refused (%d of 3000)", failures);
	ok(noisy == 0, "refusals carry a message, nothing unsafe gets through");
}

static void chunk_lines(void)
{
	uint8_t id[32];
	uint32_t len;

	ok(cairn_manifest_chunk_parse("c 0000000000000000000000000000000000000000000000000000000000000001 42", id, &len) == 0 && len == 42 && id[31] == 1,
	   "chunk line parses");
	ok(cairn_manifest_chunk_parse("c 00 42", id, &len) == CAIRN_ECORRUPT, "short id refused");
	ok(cairn_manifest_chunk_parse("c 000000000000000000000000000000000000000000000000000000000000000g 42", id, &len) == CAIRN_ECORRUPT,
	   "bad hex refused");
	ok(cairn_manifest_chunk_parse("c 0000000000000000000000000000000000000000000000000000000000000001 0", id, &len) == CAIRN_ECORRUPT,
	   "empty chunk refused");
	ok(cairn_manifest_chunk_parse("c 0000000000000000000000000000000000000000000000000000000000000001 99999999999", id, &len) == CAIRN_ECORRUPT,
	   "huge chunk refused");
}

static void catalog_parsing(void)
{
	cairn_backup_info info;
	cairn_buf out = CAIRN_BUF_INIT;
	char *copy = strdup(valid_catalog);
	int i, failures = 0, noisy = 0, rc;

	ok(cairn_backup_info_parse(&info, copy) == 0 && info.stored_size == 4 &&
	       strcmp(cairn_backup_info_meta(&info, "source"), "/srv/x y") == 0,
	   "valid catalog entry parses");
	cairn_backup_info_format(&info, &out);
	cairn_buf_terminate(&out);
	ok(strcmp((char *)out.data, valid_catalog) == 0, "catalog entry formats back identically");
	cairn_backup_info_free(&info);
	cairn_buf_free(&out);
	free(copy);
	for (i = 0; i < 3000; i++) {
		size_t len;
		char *s = mutate(valid_catalog, &len);

		cairn_error_clear();
		rc = cairn_backup_info_parse(&info, s);
		if (rc < 0) {
			failures++;
			if (!*cairn_error_message())
				noisy++;
		}
		cairn_backup_info_free(&info);
		free(s);
	}
	ok(failures > 300, "damaged catalog entries are refused (%d of 3000)", failures);
	ok(noisy == 0, "refusals carry a message");
}

static void escapes_and_values(void)
{
	cairn_buf b = CAIRN_BUF_INIT;
	const char *raw = "a b\t%c\x7f\xc3\xa9";
	int64_t t;
	uint64_t size;

	cairn_escape(&b, raw);
	cairn_buf_terminate(&b);
	ok(strcmp((char *)b.data, "a%20b%09%25c%7F\xc3\xa9") == 0, "escape: %s", (char *)b.data);
	ok(cairn_unescape((char *)b.data) == 0 && strcmp((char *)b.data, raw) == 0, "unescape round trip");
	cairn_buf_free(&b);
	ok(cairn_parse_time("2026-11-26T18:30:12Z", &t) == 0 && t == 1795717812, "ISO time parses");
	ok(cairn_parse_time("2026-11-26T20:30:12+02:00", &t) == 0 && t == 1795717812, "offsets apply");
	ok(cairn_parse_time("2026-11-26", &t) == 0 && t == 1795651200, "dates parse");
	ok(cairn_parse_time("yesterday", &t) < 0 && cairn_parse_time("2026-13-01", &t) < 0,
	   "bad times refused");
	ok(cairn_parse_size("4M", &size) == 0 && size == 4u << 20, "sizes parse");
	ok(cairn_parse_size("4X", &size) < 0 && cairn_parse_size("", &size) < 0, "bad sizes refused");
	ok(cairn_backup_name_valid("dir-20261126T183012Z-2") && !cairn_backup_name_valid("../x") &&
	       !cairn_backup_name_valid(""),
	   "backup names are checked");
}

int main(void)
{
	index_parsing();
	entry_parsing();
	chunk_lines();
	catalog_parsing();
	escapes_and_values();
	return tap_done();
}
