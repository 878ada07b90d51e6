/* manifest.c - manifest and catalog records (see manifest.h). */
#include "manifest.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cairn/util.h>

#include "error.h"

static const char hexdigits[] = "0123456789ABCDEF";

int cairn_escape(cairn_buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int error;

	for (; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%') {
			char esc[3] = {'%', hexdigits[*p >> 4], hexdigits[*p & 15]};

			error = cairn_buf_append(out, esc, 3);
		} else {
			error = cairn_buf_append(out, p, 1);
		}
		if (error < 0)
			return error;
	}
	return 0;
}

int cairn_unescape(char *s)
{
	char *w = s;
	int hi, lo;

	for (; *s; s++) {
		if (*s != '%') {
			*w++ = *s;
			continue;
		}
		if ((hi = cairn_hex_digit((unsigned char)s[1])) < 0 ||
		    (lo = cairn_hex_digit((unsigned char)s[2])) < 0 ||
		    (hi == 0 && lo == 0))
			return cairn_error_set(CAIRN_ECORRUPT, "bad escape in text");
		*w++ = (char)(hi * 16 + lo);
		s += 2;
	}
	*w = 0;
	return 0;
}

static const char type_letters[] = " FDLS";

int cairn_manifest_entry_line(cairn_buf *out, const cairn_entry *e, uint64_t size)
{
	int error;

	if (e->type < CAIRN_ENTRY_FILE || e->type > CAIRN_ENTRY_STREAM)
		return cairn_error_set(CAIRN_EINVALID, "entry %s has an unknown type %d", e->path,
		                       (int)e->type);
	if ((error = cairn_buf_printf(out, "entry %c %04o %u %u %" PRId64 " %u %" PRIu64 " ",
	                              type_letters[e->type], (unsigned)(e->mode & 07777), e->uid,
	                              e->gid, e->mtime_sec, e->mtime_nsec, size)) < 0 ||
	    (error = cairn_escape(out, e->path)) < 0)
		return error;
	if (e->type == CAIRN_ENTRY_SYMLINK) {
		if ((error = cairn_buf_append(out, " ", 1)) < 0 ||
		    (error = cairn_escape(out, e->link_target ? e->link_target : "")) < 0)
			return error;
	}
	return cairn_buf_append(out, "\n", 1);
}

static int path_safe(const char *path)
{
	const char *p = path;
	size_t n;

	if (strcmp(path, ".") == 0)
		return 1;
	if (!*path || *path == '/')
		return 0;
	while (*p) {
		n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/')
			p++;
		if (!*p && p[-1] == '/')
			return 0;
	}
	return 1;
}

int cairn_manifest_entry_parse(char *line, cairn_entry *e)
{
	char *fields[10], *save = NULL, *tok;
	int n = 0, error;
	const char *t;
	unsigned long long size;
	long long mtime;
	unsigned int mode, uid, gid, nsec;
	char extra;

	memset(e, 0, sizeof(*e));
	for (tok = strtok_r(line, " ", &save); tok && n < 10; tok = strtok_r(NULL, " ", &save))
		fields[n++] = tok;
	if (n < 9 || n > 10 || strcmp(fields[0], "entry") != 0 || strlen(fields[1]) != 1 ||
	    !(t = strchr(type_letters + 1, fields[1][0])))
		return cairn_error_set(CAIRN_ECORRUPT, "malformed entry line");
	e->type = (cairn_entry_type)(t - type_letters);
	if (sscanf(fields[2], "%o%c", &mode, &extra) != 1 || mode > 07777 ||
	    sscanf(fields[3], "%u%c", &uid, &extra) != 1 || sscanf(fields[4], "%u%c", &gid, &extra) != 1 ||
	    sscanf(fields[5], "%lld%c", &mtime, &extra) != 1 ||
	    sscanf(fields[6], "%u%c", &nsec, &extra) != 1 || nsec >= 1000000000u ||
	    sscanf(fields[7], "%llu%c", &size, &extra) != 1)
		return cairn_error_set(CAIRN_ECORRUPT, "malformed entry line");
	if ((n == 10) != (e->type == CAIRN_ENTRY_SYMLINK))
		return cairn_error_set(CAIRN_ECORRUPT, "malformed entry line (link target)");
	if ((error = cairn_unescape(fields[8])) < 0)
		return error;
	if (n == 10 && (error = cairn_unescape(fields[9])) < 0)
		return error;
	if (!path_safe(fields[8]))
		return cairn_error_set(CAIRN_ECORRUPT, "unsafe path in backup: '%s'", fields[8]);
	e->mode = mode;
	e->uid = uid;
	e->gid = gid;
	e->mtime_sec = mtime;
	e->mtime_nsec = nsec;
	e->size = size;
	e->path = fields[8];
	e->link_target = n == 10 ? fields[9] : NULL;
	return 0;
}

static int ref_parse(const char *line, char kind, uint8_t id[CAIRN_HASH_LEN], uint32_t *len)
{
	char hex[65], extra;
	unsigned long n;

	if (line[0] != kind || line[1] != ' ' || strlen(line) < 68 || line[66] != ' ')
		return cairn_error_set(CAIRN_ECORRUPT, "malformed chunk line");
	memcpy(hex, line + 2, 64);
	hex[64] = 0;
	if (cairn_hex_decode(hex, id, CAIRN_HASH_LEN) < 0 ||
	    sscanf(line + 67, "%lu%c", &n, &extra) != 1 || n > (64ul << 20) || n == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "malformed chunk line");
	*len = (uint32_t)n;
	return 0;
}

int cairn_manifest_chunk_parse(const char *line, uint8_t id[CAIRN_HASH_LEN], uint32_t *len)
{
	return ref_parse(line, 'c', id, len);
}

int cairn_manifest_list_parse(const char *line, uint8_t id[CAIRN_HASH_LEN], uint32_t *len)
{
	return ref_parse(line, 'l', id, len);
}

int cairn_backup_info_meta_set(cairn_backup_info *info, const char *key, const char *value)
{
	cairn_meta *grown;
	size_t i;
	char *v;

	if (!(v = strdup(value)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (i = 0; i < info->meta_count; i++) {
		if (strcmp(info->meta[i].key, key) == 0) {
			free(info->meta[i].value);
			info->meta[i].value = v;
			return 0;
		}
	}
	if (!(grown = realloc(info->meta, (info->meta_count + 1) * sizeof(*grown)))) {
		free(v);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	info->meta = grown;
	info->meta[info->meta_count].value = v;
	if (!(info->meta[info->meta_count].key = strdup(key))) {
		free(v);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	info->meta_count++;
	return 0;
}

const char *cairn_backup_info_meta(const cairn_backup_info *info, const char *key)
{
	size_t i;

	for (i = 0; i < info->meta_count; i++)
		if (strcmp(info->meta[i].key, key) == 0)
			return info->meta[i].value;
	return NULL;
}

int cairn_backup_info_format(const cairn_backup_info *info, cairn_buf *out)
{
	size_t i;
	int error;

	if ((error = cairn_buf_printf(out,
	                              "cairn-catalog 1\nname %s\nengine %s\nstart %" PRId64
	                              "\nend %" PRId64 "\nsize %" PRIu64 "\nstored %" PRIu64
	                              "\nentries %" PRIu64 "\nchunks %" PRIu64 "\n",
	                              info->name, info->engine, info->start_time, info->end_time,
	                              info->size, info->stored_size, info->entries, info->chunks)) < 0)
		return error;
	for (i = 0; i < info->meta_count; i++) {
		if ((error = cairn_buf_append(out, "meta ", 5)) < 0 ||
		    (error = cairn_escape(out, info->meta[i].key)) < 0 ||
		    (error = cairn_buf_append(out, " ", 1)) < 0 ||
		    (error = cairn_escape(out, info->meta[i].value)) < 0 ||
		    (error = cairn_buf_append(out, "\n", 1)) < 0)
			return error;
	}
	return 0;
}

int cairn_backup_info_parse(cairn_backup_info *info, char *text)
{
	char *line, *save = NULL, *sp;
	long long v;
	unsigned long long u;
	int first = 1, error, seen = 0;

	memset(info, 0, sizeof(*info));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (first) {
			if (strcmp(line, "cairn-catalog 1") != 0)
				return cairn_error_set(CAIRN_ECORRUPT, "not a catalog entry");
			first = 0;
			continue;
		}
		if (!(sp = strchr(line, ' ')))
			return cairn_error_set(CAIRN_ECORRUPT, "malformed catalog line");
		*sp++ = 0;
		if (strcmp(line, "name") == 0) {
			if (!cairn_backup_name_valid(sp))
				return cairn_error_set(CAIRN_ECORRUPT, "bad backup name in catalog");
			snprintf(info->name, sizeof(info->name), "%s", sp);
			seen |= 1;
		} else if (strcmp(line, "engine") == 0) {
			snprintf(info->engine, sizeof(info->engine), "%s", sp);
			seen |= 2;
		} else if (strcmp(line, "meta") == 0) {
			char *val = strchr(sp, ' ');

			if (!val)
				return cairn_error_set(CAIRN_ECORRUPT, "malformed catalog meta line");
			*val++ = 0;
			if ((error = cairn_unescape(sp)) < 0 || (error = cairn_unescape(val)) < 0 ||
			    (error = cairn_backup_info_meta_set(info, sp, val)) < 0)
				return error;
		} else if (strcmp(line, "start") == 0 && sscanf(sp, "%lld", &v) == 1) {
			info->start_time = v;
		} else if (strcmp(line, "end") == 0 && sscanf(sp, "%lld", &v) == 1) {
			info->end_time = v;
			seen |= 4;
		} else if (strcmp(line, "size") == 0 && sscanf(sp, "%llu", &u) == 1) {
			info->size = u;
		} else if (strcmp(line, "stored") == 0 && sscanf(sp, "%llu", &u) == 1) {
			info->stored_size = u;
		} else if (strcmp(line, "entries") == 0 && sscanf(sp, "%llu", &u) == 1) {
			info->entries = u;
		} else if (strcmp(line, "chunks") == 0 && sscanf(sp, "%llu", &u) == 1) {
			info->chunks = u;
		} else {
			return cairn_error_set(CAIRN_ECORRUPT, "unknown catalog line '%s'", line);
		}
	}
	if (seen != 7)
		return cairn_error_set(CAIRN_ECORRUPT, "catalog entry lacks name, engine or end");
	return 0;
}

void cairn_backup_info_free(cairn_backup_info *info)
{
	size_t i;

	for (i = 0; i < info->meta_count; i++) {
		free(info->meta[i].key);
		free(info->meta[i].value);
	}
	free(info->meta);
	info->meta = NULL;
	info->meta_count = 0;
}

int cairn_backup_name_valid(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n >= CAIRN_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return 0;
	return 1;
}

void cairn_format_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cairn_parse_time(const char *text, int64_t *out)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, s = 0, n = 0, oh = 0, om = 0;
	char sign;
	const char *rest;
	long long unix_time;

	if (text[0] == '@') {
		char extra;

		if (sscanf(text + 1, "%lld%c", &unix_time, &extra) != 1)
			return CAIRN_EINVALID;
		*out = unix_time;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
		return CAIRN_EINVALID;
	rest = text + n;
	if (*rest == 'T' || *rest == ' ') {
		n = 0;
		if (sscanf(rest + 1, "%2d:%2d%n", &h, &mi, &n) != 2)
			return CAIRN_EINVALID;
		rest += 1 + n;
		if (*rest == ':') {
			n = 0;
			if (sscanf(rest + 1, "%2d%n", &s, &n) != 1)
				return CAIRN_EINVALID;
			rest += 1 + n;
			if (*rest == '.') /* fractions of a second are dropped */
				for (rest++; isdigit((unsigned char)*rest); rest++)
					;
		}
	}
	if (*rest == 'Z') {
		rest++;
	} else if (*rest == '+' || *rest == '-') {
		sign = *rest;
		n = 0;
		if (sscanf(rest + 1, "%2d:%2d%n", &oh, &om, &n) != 2)
			return CAIRN_EINVALID;
		rest += 1 + n;
		if (sign == '-') {
			oh = -oh;
			om = -om;
		}
	}
	if (*rest || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return CAIRN_EINVALID;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	*out = (int64_t)timegm(&tm) - (oh * 3600 + om * 60);
	return 0;
}
