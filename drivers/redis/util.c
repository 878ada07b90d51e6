/* util.c - files, times and names for the redis driver (see redis.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "redis.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

int redis_out_of_memory(const cairn_host *host)
{
	return host->error(CAIRN_ENOMEM, "out of memory in driver redis");
}

int redis_syscall_error(const cairn_host *host, int err, const char *action, const char *path)
{
	int code = err == EACCES || err == EPERM ? CAIRN_EAUTH : err == ENOMEM ? CAIRN_ENOMEM : CAIRN_EIO;

	return host->error(code, "cannot %s %s: %s", action, path, strerror(err));
}

ssize_t redis_pread_full(int fd, void *buf, size_t len, uint64_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone, no libc state). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int parse_digits(const char **p, int count, int *out)
{
	int i;

	*out = 0;
	for (i = 0; i < count; i++) {
		if (**p < '0' || **p > '9')
			return -1;
		*out = *out * 10 + (**p - '0');
		(*p)++;
	}
	return 0;
}

int redis_parse_time(const char *text, int64_t *out)
{
	const char *p = text;
	int y, mo, d, h, mi, s = 0, oh, om;
	int64_t t;
	char *end;

	if (*p == '@')
		p++;
	if (*p >= '0' && *p <= '9' && strspn(p, "0123456789") == strlen(p)) {
		errno = 0;
		*out = (int64_t)strtoll(p, &end, 10);
		return errno || *end ? -1 : 0;
	}
	p = text;
	if (parse_digits(&p, 4, &y) < 0 || *p++ != '-' || parse_digits(&p, 2, &mo) < 0 ||
	    *p++ != '-' || parse_digits(&p, 2, &d) < 0 || (*p != ' ' && *p != 'T'))
		return -1;
	p++;
	if (parse_digits(&p, 2, &h) < 0 || *p++ != ':' || parse_digits(&p, 2, &mi) < 0)
		return -1;
	if (*p == ':') {
		p++;
		if (parse_digits(&p, 2, &s) < 0)
			return -1;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return -1;
	t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;

		if (parse_digits(&p, 2, &oh) < 0)
			return -1;
		if (*p == ':')
			p++;
		if (parse_digits(&p, 2, &om) < 0)
			return -1;
		/* 12:00+02:00 is 10:00 UTC. */
		t -= sign * (oh * 3600 + om * 60);
	}
	if (*p)
		return -1;
	*out = t;
	return 0;
}

void redis_format_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm)) {
		snprintf(out, len, "@%lld", (long long)t);
		return;
	}
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int redis_name_is_safe(const char *name)
{
	const char *p;

	if (!name || !*name || name[0] == '.' || strlen(name) > 120)
		return 0;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

int redis_parse_interval(const char *text, unsigned int *out_seconds)
{
	char *end;
	unsigned long v;

	if (!text || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno)
		return -1;
	if (*end == 'm')
		v *= 60, end++;
	else if (*end == 'h')
		v *= 3600, end++;
	else if (*end == 's')
		end++;
	if (*end || v == 0 || v > 7 * 86400)
		return -1;
	*out_seconds = (unsigned int)v;
	return 0;
}

int redis_copy_fd_to_writer(const cairn_host *host, cairn_backup_writer *w, int fd,
                            uint64_t size, const char *what, void *check)
{
	uint8_t *buf;
	uint64_t done = 0;
	int error = 0;

	if (!(buf = malloc(REDIS_IO_BUFFER_SIZE)))
		return redis_out_of_memory(host);
	while (done < size) {
		size_t want = size - done < REDIS_IO_BUFFER_SIZE ? (size_t)(size - done)
		                                                 : REDIS_IO_BUFFER_SIZE;
		ssize_t n = redis_pread_full(fd, buf, want, done);

		if (n < 0) {
			error = redis_syscall_error(host, errno, "read", what);
			break;
		}
		if ((size_t)n < want) {
			error = host->error(CAIRN_EIO, "%s shrank to %llu bytes while it was read", what,
			                    (unsigned long long)(done + (uint64_t)n));
			break;
		}
		if (check)
			rdb_check_update(check, buf, (size_t)n);
		if ((error = host->entry_write(w, buf, (size_t)n)) < 0)
			break;
		done += (uint64_t)n;
	}
	free(buf);
	return error;
}

int redis_remove_flat_dir(const cairn_host *host, const char *path)
{
	DIR *d;
	struct dirent *de;
	char *file;
	int error = 0;

	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : redis_syscall_error(host, errno, "open directory", path);
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (asprintf(&file, "%s/%s", path, de->d_name) < 0) {
			error = redis_out_of_memory(host);
			break;
		}
		if (unlink(file) < 0 && errno != ENOENT)
			error = redis_syscall_error(host, errno, "remove", file);
		free(file);
		if (error)
			break;
	}
	closedir(d);
	if (error == 0 && rmdir(path) < 0 && errno != ENOENT)
		error = redis_syscall_error(host, errno, "remove directory", path);
	return error;
}
