/*
 * cairn/util.h - small helpers every plugin needs, header-only so a plugin
 * needs nothing but the headers to use them.
 */
#ifndef CAIRN_UTIL_H
#define CAIRN_UTIL_H

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cairn/plugin.h>

/* Whether c may appear in a storage key part: A-Z a-z 0-9 . _ - */
static inline int cairn_key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/*
 * Whether key is a valid storage key: '/'-separated parts, each non-empty,
 * of key characters, not starting with '.' (reserved for temporary names).
 * With is_prefix, the last part may be incomplete or empty ("packs/a",
 * "packs/", "").
 */
static inline int cairn_key_valid(const char *key, int is_prefix)
{
	const char *part = key, *p;

	for (p = key;; p++) {
		if (*p == '/' || *p == '\0') {
			int is_last = *p == '\0';

			if (!(is_last && is_prefix) && (p == part || *part == '.'))
				return 0;
			if (is_last)
				return 1;
			part = p + 1;
		} else if (!cairn_key_char((unsigned char)*p)) {
			return 0;
		}
	}
}

/* Writes all of data, retrying on EINTR; -1 with errno set on failure. */
static inline int cairn_write_all(int fd, const void *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The code the core gives an errno value: denied, out of memory, or I/O. */
static inline int cairn_errno_code(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
		return CAIRN_EAUTH;
	case ENOMEM:
		return CAIRN_ENOMEM;
	default:
		return CAIRN_EIO;
	}
}

/* The value of a hex digit (either case), -1 for anything else. */
static inline int cairn_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Strips white space at both ends in place; returns the new start. */
static inline char *cairn_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

#endif /* CAIRN_UTIL_H */
